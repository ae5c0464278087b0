"""A real LIVE runner process SIGKILLed at ``perp_venue_chosen`` (runner.best_entry_live), then restarted.

Real ccxt against three simulators served on their own threads (they outlive the runner): spot on Binance, the
perp leg on Bybit v5 or OKX v5 (tests/support/simfactory_bestlive.py, each venue its own keys). The xcarry set
allows bybit and okx; the hedge starts with ``perp_venue="best"``: bybit's bid is better (runner.best_perp), it
enters there, holds 7.2 s, exits and re-arms. Meanwhile okx's bid becomes better (Bybit "Get Orderbook",
OKX "Get order book", sizes in contracts of 0.01 BTC), so at the flat re-entry the runner journals the move to
okx and is killed at the kill point, before the move. The restarted runner rebuilds the hedge on okx from its
journal (okx's keys), recovers, enters on okx, and its continuous reconciliation is clean on binance and okx;
bybit's round trip stays journaled under bybit, equal to bybit's own records.
"""

from __future__ import annotations

import pytest

from hedge_core.params import promotion
from hedge_core.params import store as param_store
from hedge_core.params.xcarry import CrossCarryParams
from hedge_core.runner.best_entry import KILL_POINT
from hedge_core.runner.best_perp import TRIGGER
from tests.support.fault_matrix import OKX_SWAP, Venue
from tests.support.live_runner import live_env
from tests.support.runner_env import journal, wait_for
from tests.support.sim_thread import PRICE, SimThread
from tests.support.simfactory_bestlive import FACTORY

pytestmark = [pytest.mark.timeout(240), pytest.mark.e2e]  # a real runner process

XC = CrossCarryParams(notional=1000.0, min_funding_rate=0.00001, min_net_carry=-1.0, spot_venue="binance",
                      perp_venue="bybit", perp_venues=("okx",),
                      exit={"max_holding_hours": 0.002, "rearm": True, "profit_target_pct": None,
                            "stop_loss_pct": None, "funding_unfavourable_intervals": None})
HID = "bl"


def _books(bybit: Venue, okx: Venue, *, bybit_bid: float, okx_bid: float) -> None:
    """Deep books (5 BTC a side), each set on its simulator's own loop; OKX sizes in contracts of 0.01 BTC."""
    bybit.call(setattr, bybit.sim, "order_books",
               {("linear", "BTCUSDT"): {"bids": [(bybit_bid, 5.0)], "asks": [(40_010.0, 5.0)]}})
    okx.call(setattr, okx.sim, "order_books", {OKX_SWAP: {"bids": [(okx_bid, 500.0)], "asks": [(40_010.0, 500.0)]}})


def test_a_live_runner_killed_at_perp_venue_chosen_recovers_on_the_new_venue_and_enters_there(tmp_path):
    binance, bybit, okx = SimThread(spot_fee_in_received=False), Venue("bybit"), Venue("okx")
    bybit.call(bybit.sim.set_price, "BTCUSDT", PRICE)
    okx.call(okx.sim.set_price, OKX_SWAP, PRICE)
    env, extra = live_env(tmp_path, binance)
    extra = {**extra, "HEDGE_RUNNER_ADAPTER_FACTORY": FACTORY, "HEDGE_TEST_BYBIT_PORT": str(bybit.server.port),
             "HEDGE_TEST_OKX_PORT": str(okx.server.port)}
    param_store.export(XC, "xc-test", created_from="test", root=env.params, db=env.db, kpis={"sharpe": 1.0})
    promotion.promote("xc-test", 1, "paper", root=env.params, db=env.db)
    promotion.promote("xc-test", 1, "live", confirm=True, gate=promotion.PromotionGate(require_paper_run=False),
                      root=env.params, db=env.db)
    try:
        _books(bybit, okx, bybit_bid=39_990.0, okx_bid=39_900.0)  # bybit better at the start
        p = env.start_runner({**extra, "HEDGE_RUNNER_KILL_AT": KILL_POINT})
        c = env.client(p)
        out = c.start("xc-test", mode="live", feed="ticker", poll_s=0.2, hedge_id=HID, confirm_live=True,
                      venue="binance", perp_venue="best", recovery="resume", reconcile_s=0.5, records_poll_s=0.3,
                      best_recheck_s=1.0)
        assert out["perp_venue"] == "bybit"
        wait_for(lambda: (lambda h: h if h.get("state") == "MONITORING_POSITIONS" and not h.get("pending_orders")
                          else None)(c.hedge(HID)), timeout=60, what="entry on bybit")
        assert bybit.call(lambda: bybit.sim.positions["BTCUSDT"][0]) < 0
        _books(bybit, okx, bybit_bid=39_800.0, okx_bid=39_990.0)  # okx better from now on
        assert p.wait(90) == -9, "the runner should have SIGKILLed itself at perp_venue_chosen"
        # journaled before the kill: the run row says okx; bybit flat; okx never got an order
        assert journal(env, "hedge_runs", HID)["perp_venue"].iloc[0] == "okx"
        tr = journal(env, "transitions", HID)
        moves = tr[tr["trigger_name"] == TRIGGER]
        assert len(moves) == 2 and "at entry, from flat (was bybit): perp venue okx chosen" in moves["reason"].iloc[-1]
        assert bybit.call(lambda: bybit.sim.positions["BTCUSDT"][0]) == 0
        assert okx.call(lambda: list(okx.sim.orders)) == []

        p2 = env.start_runner(extra)
        c2 = env.client(p2)

        def on_okx() -> dict | None:
            h = c2.hedge(HID)
            v = (h.get("reconcile") or {}).get("venues") or {}
            clean = set(v) == {"binance", "okx"} and not v["binance"]["differences"] and not v["okx"]["differences"]
            held = h.get("state") == "MONITORING_POSITIONS" and not h.get("pending_orders")
            return h if held and clean and v["okx"]["positions"]["BTC/USDT:USDT"]["venue"] < 0 else None
        wait_for(on_okx, timeout=60, what="recovered on okx, entered there, reconciled clean per venue")
        c2.shutdown()
        p2.wait(60)
        tr = journal(env, "transitions", HID)
        assert "RECOVERY" in set(tr["trigger_name"])
        fills = journal(env, "fills", HID)
        perp = fills[fills["leg"] == "perp"]
        by_execs = bybit.call(lambda: [e for e in bybit.sim.executions if e["execType"] == "Trade"])
        on_bybit = perp[perp["venue"] == "bybit"]
        assert len(on_bybit) == len(by_execs) == 2  # bybit's round trip, under bybit
        assert on_bybit["fee"].sum() == pytest.approx(sum(float(e["execFee"]) for e in by_execs), rel=1e-9)
        okx_fills = okx.call(lambda: list(okx.sim.fills))
        assert len(perp[perp["venue"] == "okx"]) == len(okx_fills) >= 1
        assert set(fills.loc[fills["leg"] == "spot", "venue"]) == {"binance"}
    finally:
        env.cleanup()
        binance.close()
        bybit.close()
        okx.close()
