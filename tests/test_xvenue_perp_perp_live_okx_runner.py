"""Two LIVE perp legs with OKX as one of them run by a real runner process: OKX first + Bybit second, and Bybit
first + OKX second, real ccxt to both simulators (the runner builds them through
tests/support/simfactory_pplive_okx.py). The runner SIGKILLs itself BETWEEN the legs
(``fill_journaled:spot:entry``: the first leg filled at its venue and journaled, nothing sent to the second yet);
the restarted runner finds the first leg at ITS venue (never re-sent), hedges it at the second, books funding from
each venue's own records (OKX: bills of type 8; Bybit: executions of execType Funding), and closes both.

Simulated behaviours: tests/support/okx_sim.py and bybit_sim.py (each cites the venue documentation it follows).
"""

from __future__ import annotations

import pytest

from tests.support import fault_matrix as fm
from tests.support.live_runner import HID, settle
from tests.support.runner_env import journal, wait_for
from tests.support.simfactory_pplive_okx import FACTORY, port_var

pytestmark = [pytest.mark.timeout(240), pytest.mark.e2e]  # a real runner process

RATE_A, RATE_B = 0.0001, 0.0005  # per 8 h: the first venue lower (the pair goes long there), the second higher
PERP = "BTC/USDT:USDT"
PRICE = 30_000.0  # both simulators of tests/support/fault_matrix.py (fm.PRICE)
SYMBOL = {"okx": fm.OKX_SWAP, "bybit": "BTCUSDT"}


def export_pair(env, first: str, second: str) -> None:
    from hedge_core.params import promotion
    from hedge_core.params import store as param_store
    from hedge_core.params.xcarry import CrossCarryParams

    p = CrossCarryParams(legs="perp_perp", spot_venue=first, perp_venue=second, notional=1000.0,
                         min_funding_rate=0.0, min_net_carry=-1.0,
                         exit={"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                               "funding_unfavourable_intervals": None},
                         guards={"funding_cost_apr_limit": None})
    param_store.export(p, "pp-okx", created_from="test", root=env.params, db=env.db, kpis={"sharpe": 1.0})
    promotion.promote("pp-okx", 1, "paper", root=env.params, db=env.db)
    promotion.promote("pp-okx", 1, "live", confirm=True, gate=promotion.PromotionGate(require_paper_run=False),
                      root=env.params, db=env.db)


def client_ids(v: fm.Venue) -> list[str]:
    """The client ids of every order the venue holds for the account (OKX's without the hyphen)."""
    return [c for c, _q in v.orders()]


@pytest.mark.parametrize("first,second", [("okx", "bybit"), ("bybit", "okx")])
def test_live_okx_pair_killed_between_the_legs_recovered_funded_per_venue_and_closed(tmp_path, first, second):
    a, b = fm.Venue(first), fm.Venue(second)
    a.sim.funding_rate[SYMBOL[first]] = RATE_A
    b.sim.funding_rate[SYMBOL[second]] = RATE_B
    env, extra = fm.runner_env(tmp_path, a)
    export_pair(env, first, second)
    extra = {**extra, "HEDGE_RUNNER_ADAPTER_FACTORY": FACTORY, port_var(first): str(a.server.port),
             port_var(second): str(b.server.port)}
    try:
        p = env.start_runner({**extra, "HEDGE_RUNNER_KILL_AT": "fill_journaled:spot:entry"})
        env.client(p).start("pp-okx", mode="live", feed="ticker", poll_s=0.2, recovery="resume", hedge_id=HID,
                            confirm_live=True, venue=first, perp_venue=second, legs="perp_perp",
                            records_poll_s=0.3, reconcile_s=0.5)
        assert p.wait(90) == -9, "the runner should have SIGKILLed itself between the legs"
        [first_cid] = client_ids(a)
        assert first_cid.startswith("hs") and a.perp() > 0
        assert client_ids(b) == [] and b.perp() == 0  # killed between the legs: nothing at the second venue
        p2 = env.start_runner(extra)
        settle(env, p2, "MONITORING_POSITIONS")
        c = env.client(p2)
        long_a, short_b = a.perp(), b.perp()  # base units (OKX: contracts x ctVal 0.01)
        assert long_a > 0 > short_b and abs(long_a + short_b) <= 0.001  # hedged across the two venues
        # nothing re-sent: one first-leg order at its venue, one second-leg order at the other
        assert client_ids(a) == [first_cid] and len(client_ids(b)) == 1
        tr = c.history("transitions", hedge_id=HID)
        rec = tr.loc[tr["trigger_name"] == "RECOVERY", "reason"].iloc[0]
        assert "'venues'" in rec and f"'{first}'" in rec and f"'{second}'" in rec and "first perp" in rec
        h = c.hedge(HID)
        assert h["spot_qty"] == pytest.approx(long_a, abs=1e-12) and h["perp_qty"] == pytest.approx(short_b, abs=1e-12)
        # funding at each venue, booked from that venue's own records on its own leg
        a.call(a.sim.settle_funding, SYMBOL[first], RATE_A)
        b.call(b.sim.settle_funding, SYMBOL[second], RATE_B)

        def both_booked():
            fj = c.history("funding_payments", hedge_id=HID)
            return [fj] if len(fj) and set(fj["venue"]) == {first, second} else None
        [fj] = wait_for(both_booked, timeout=30, what="funding booked at both venues")
        row_a, row_b = fj[fj["venue"] == first].iloc[0], fj[fj["venue"] == second].iloc[0]
        assert row_a["amount"] == pytest.approx(-long_a * PRICE * RATE_A, rel=1e-9)  # the long pays, by hand
        assert row_b["amount"] == pytest.approx(-short_b * PRICE * RATE_B, rel=1e-9)  # the short receives
        assert row_a["amount"] == pytest.approx(a.funding(), rel=1e-9)  # each venue's own record
        assert row_b["amount"] == pytest.approx(b.funding(), rel=1e-9)
        c.stop(HID)
        settle(env, p2, "COMPLETED")
        assert a.perp() == 0 and b.perp() == 0
        fills = c.history("fills", hedge_id=HID)
        assert set(fills.loc[fills["leg"] == "spot", "venue"]) == {first}
        assert set(fills.loc[fills["leg"] == "perp", "venue"]) == {second}
        assert set(fills["symbol"]) == {PERP}
        # every venue execution journaled once, its fee (OKX: negative for a charge) booked positive in USDT
        for v, leg in ((a, "spot"), (b, "perp")):
            execs = v.executions()
            mine = fills[fills["leg"] == leg]
            # the first leg's records carry its venue: "<venue>:<symbol>#<id>" (engine.driver.record_trade_id)
            assert sorted(mine["trade_id"]) == sorted((f"{v.venue}:" if leg == "spot" else "") + e.trade_id
                                                      for e in execs)
            assert mine["fee"].sum() == pytest.approx(sum(e.fee_usdt for e in execs), abs=1e-9)
        orders = c.history("orders", hedge_id=HID)
        assert "rejected" not in set(orders["status"])
        # OKX's account-wide "Cancel All After" re-armed by the heartbeat within its "1 request per second"
        okx = a if first == "okx" else b
        timer = [x for x in list(okx.sim.answers) if x[0] == "POST /api/v5/trade/cancel-all-after"]
        assert timer and {x[1:] for x in timer} == {(200, "0")}
        c.shutdown()
        assert p2.wait(60) == 0
        journaled = {x.replace("-", "") for x in journal(env, "orders", HID)["client_order_id"]}
        assert {x.replace("-", "") for x in client_ids(a) + client_ids(b)} <= journaled  # journaled before sent
    finally:
        env.cleanup()
        a.close()
        b.close()
