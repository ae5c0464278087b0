"""The calendar roll of a LIVE hedge in a real runner process, through real ccxt, against the OKX simulator
(tests/support/okx_sim.py: a FUTURES quarterly 90 days out beside the swap; docs/calendar-roll.md).

A carry hedge (long spot, short swap) whose parameters enable ``roll`` moves its short leg perp -> quarterly
-> perp. Each move is interrupted by SIGKILL at one of the roll's kill points (runner/killpoints.py):

1. perp -> quarterly, killed after the quarterly's open FILLED and was journaled (the swap not closed yet: the
   venue holds the leg twice); the restarted runner reads BOTH contracts at recovery, closes the swap, and the
   leg is on the quarterly;
2. the way back (funding raised to 0.05 %/8 h), killed at the quarterly close's INTENT (the swap reopened, the
   close journaled but never sent); the next runner finds the close absent at the venue and closes the quarterly.

After each restart the continuous reconciliation (journal vs venue, per contract, funding of the perpetual only)
reports no difference, and a funding payment the swap settled while the runner was down (the leg held twice),
read after the restart completed the roll, is booked on the leg; at the end the venue's own state: the leg on ONE contract, the delta within one lot, every
venue order journaled before it was sent and never sent twice, every venue execution journaled with the venue's
commission, and a funding settlement of the swap booked from the venue's bills.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import fault_matrix as fm
from tests.support.fault_matrix import OKX_SPOT, OKX_SWAP, Venue
from tests.support.roll_runner import (ROLL_PARAMS, dated_symbol, delivery_ms, pause_and_stop, restart_killed_at,
                                       settled_on, start_live)
from tests.support.runner_env import journal, wait_for

pytestmark = [pytest.mark.timeout(240), pytest.mark.e2e]  # real runner processes

HID = "roll1"
OKX_QTR = "BTC-USDT-QTR"
SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"


def _env(tmp: Any, v: Venue) -> tuple[Any, dict[str, str]]:
    """The fault matrix's live environment (parameter set promoted to live, the adapter factory reaching the
    simulator) with the roll enabled in the parameter set."""
    from hedge_core.params import promotion
    from tests.support import live_env as sim_env
    from tests.support.live_env import TEST_KEY, TEST_PASSPHRASE, TEST_SECRET
    from tests.support.runner_env import make_env

    env = make_env(tmp, days=1, export=ROLL_PARAMS)
    promotion.promote("carry-test", 1, "paper", root=env.params, db=env.db)
    promotion.promote("carry-test", 1, "live", confirm=True, gate=promotion.PromotionGate(require_paper_run=False),
                      root=env.params, db=env.db)
    ca = tmp / "ca.pem"
    sim_env.test_ca().cert_pem.write_to_path(str(ca))
    return env, {"HEDGE_RUNNER_ADAPTER_FACTORY": fm.FACTORY, "HEDGE_TEST_SIM_PORT": str(v.server.port),
                 "HEDGE_TEST_SIM_CA": str(ca), "HEDGE_TEST_SIM_KEY": TEST_KEY, "HEDGE_TEST_SIM_SECRET": TEST_SECRET,
                 "HEDGE_TEST_SIM_PASSPHRASE": TEST_PASSPHRASE}


def _quarterly(v: Venue) -> str:
    """List a quarterly expiring 90 days out (08:00 UTC, OKX's delivery time) at 31,500 against 30,000 spot: a
    5 % basis, 20.3 %/yr, above the swap's 0.01 %/8 h (10.95 %/yr) by more than the fees and the 2 % margin."""
    def setup() -> str:
        sim = v.sim
        expiry_ms = delivery_ms(sim.now_ms())
        row = {**sim.instrument_rows["FUTURES"][0], "instId": OKX_QTR, "expTime": str(expiry_ms)}
        sim.instrument_rows["FUTURES"] = [row]
        sim.register(row)
        sim.set_price(OKX_QTR, 31_500.0)
        sim.funding_rate[OKX_SWAP] = 0.0001
        return dated_symbol(PERP, expiry_ms)

    return v.call(setup)


def _positions(v: Venue) -> dict[str, float]:
    """The venue's signed positions in BASE (OKX holds contracts of ctVal base)."""
    return v.call(lambda: {i: v.sim.positions.get(i, [0.0, 0.0])[0] * v.sim.ct_val(i) for i in (OKX_SWAP, OKX_QTR)})


def _start(c: Any) -> None:
    start_live(c, "carry-test", HID, venue="okx")


def _settled_on(env: Any, p: Any, contract: str) -> dict:
    """The hedge monitoring with its leg on ``contract``, nothing working, no roll under way, and a
    reconciliation pass after that with no difference."""
    return settled_on(env, p, HID, contract, timeout=60)


def _venue_checks(v: Venue, env: Any) -> None:
    orders = journal(env, "orders", HID)
    fills = journal(env, "fills", HID)
    coids = set(orders["client_order_id"])
    venue_orders = v.call(lambda: [(o.cl_ord_id, o.inst_id, o.acc_fill_sz * v.sim.ct_val(o.inst_id))
                                   for o in v.sim.orders.values()])
    from hedge_core.exchange.ccxt.venues import venue_client_id

    ours = {venue_client_id(c, "alnum"): c for c in coids}
    for cid, inst, executed in venue_orders:
        assert cid in ours, f"venue order {cid} on {inst} was not journaled before it was sent"
        booked = fills.loc[fills["client_order_id"] == ours[cid], "qty"].sum()
        assert booked == pytest.approx(executed, abs=1e-12), (cid, inst, booked, executed)
    assert len({c for c, _i, _e in venue_orders}) == len(venue_orders)  # never two venue orders for one id
    # every venue execution journaled once, with the venue's commission (OKX: fee < 0 is a charge)
    sim_fills = v.call(lambda: list(v.sim.fills))
    assert len(fills) == len(sim_fills) == len(set(fills["trade_id"]))
    venue_fee = sum(-float(f["fee"]) * (float(f["fillPx"]) if f["feeCcy"] == "BTC" else 1.0) for f in sim_fills)
    booked_fee = sum(f * px if cur == "BTC" else f for f, px, cur in zip(fills["fee"], fills["price"], fills["fee_currency"]))
    assert booked_fee == pytest.approx(venue_fee, abs=1e-8)


def test_a_live_okx_hedge_rolls_perp_quarterly_perp_through_two_kills(tmp_path):
    v = Venue("okx")
    env = None
    try:
        qtr = _quarterly(v)
        env, extra = _env(tmp_path, v)
        # 1. perp -> quarterly, killed after the quarterly's open filled (the swap still short)
        p = env.start_runner({**extra, "HEDGE_RUNNER_KILL_AT": "fill_journaled:roll:roll_open"})
        _start(env.client(p))
        assert p.wait(90) == -9, f"the runner should have SIGKILLed itself in the roll: {env.last_log()}"
        pos = _positions(v)
        assert pos[OKX_QTR] < 0 and pos[OKX_SWAP] < 0, pos  # the leg held twice, as the kill point says
        orders = journal(env, "orders", HID)
        roll_rows = orders[orders["leg"] == "roll"]
        assert list(roll_rows["symbol"]) == [qtr] and not roll_rows["reduce_only"].any()  # the open only
        # the swap settles funding while the runner is down (the leg held twice): its income record is read
        # after the restart, once the roll is complete and the leg wholly on the quarterly -- and booked
        v.settle_funding()
        flow1 = v.funding()
        assert flow1 == pytest.approx(-pos[OKX_SWAP] * fm.PRICE["okx"] * 0.0005)  # hand: -qty x mark x rate
        p2 = env.start_runner(extra)
        h = _settled_on(env, p2, qtr)
        assert h["leg_on_future"] is True
        c2 = env.client(p2)
        h = wait_for(lambda: (lambda h: h if abs(h.get("funding", 0.0) - flow1) < 1e-8 else None)(c2.hedge(HID)),
                     timeout=30, what="the swap's funding booked on the leg after the roll")
        assert h["reconcile"]["differences"] == []  # funding compared for the perpetual, not the quarterly
        pos = _positions(v)
        assert pos[OKX_SWAP] == 0.0 and pos[OKX_QTR] < 0, pos
        spot = v.spot_base()
        assert abs(spot + pos[OKX_QTR]) <= fm.LOT, (spot, pos)
        tr = journal(env, "transitions", HID)
        rec = tr[tr["trigger_name"] == "RECOVERY"]["reason"].iloc[-1]
        assert qtr in rec and PERP in rec  # recovery read both contracts' positions (venue_positions)
        # 2. the way back: the swap's funding rises to 0.05 %/8 h (54.75 %/yr); a new runner looks at the rule at
        # once and is killed at the quarterly close's intent (the swap reopened, the close never sent)
        v.call(lambda: v.sim.funding_rate.__setitem__(OKX_SWAP, 0.0005))
        code = restart_killed_at(env, extra, p2, "intent_journaled:perp:roll_close")
        assert code == -9, f"the runner should have SIGKILLed itself at the close's intent: {env.last_log()}"
        pos = _positions(v)
        assert pos[OKX_QTR] < 0 and pos[OKX_SWAP] < 0, pos
        p4 = env.start_runner(extra)
        _settled_on(env, p4, PERP)
        pos = _positions(v)
        assert pos[OKX_QTR] == 0.0 and pos[OKX_SWAP] < 0, pos
        assert abs(v.spot_base() + pos[OKX_SWAP]) <= fm.LOT
        orders = journal(env, "orders", HID)
        assert "never_sent" in set(orders["status"])  # the killed close: found absent, never re-sent blindly
        # 3. a funding settlement of the swap is booked from the venue's bills (the perpetual's income)
        pos = _positions(v)
        v.settle_funding()
        c = env.client(p4)
        want = v.funding()
        assert want - flow1 == pytest.approx(-pos[OKX_SWAP] * fm.PRICE["okx"] * 0.0005)
        wait_for(lambda: abs(c.hedge(HID).get("funding", 0.0) - want) < 1e-8, timeout=30, what="funding booked")
        _settled_on(env, p4, PERP)
        g = journal(env, "guard_firings", HID)
        assert list(g.loc[g["guard"] == "calendar_roll", "action"]) == ["to_future", "to_perp"]
        pause_and_stop(env, p4, HID)
        _venue_checks(v, env)
        fund = journal(env, "funding_payments", HID)
        assert float(fund["amount"].sum()) == pytest.approx(want, abs=1e-8)
        assert set(fund["symbol"]) == {PERP}
    finally:
        if env is not None:
            env.cleanup()
        v.close()


def test_a_live_roll_killed_at_the_opens_intent_is_found_never_sent_and_decided_again(tmp_path):
    """SIGKILL at the quarterly open's intent (journaled, never sent): the restarted runner finds the order
    absent at OKX (``never_sent``, not re-sent), the leg is on the swap, the rule decides the move again and
    the leg ends on the quarterly, reconciled clean; one quarterly order at the venue."""
    v = Venue("okx")
    env = None
    try:
        qtr = _quarterly(v)
        env, extra = _env(tmp_path, v)
        p = env.start_runner({**extra, "HEDGE_RUNNER_KILL_AT": "intent_journaled:roll:roll_open"})
        _start(env.client(p))
        assert p.wait(90) == -9, f"the runner should have SIGKILLed itself at the open's intent: {env.last_log()}"
        pos = _positions(v)
        assert pos[OKX_QTR] == 0.0 and pos[OKX_SWAP] < 0, pos  # nothing reached the venue
        p2 = env.start_runner(extra)
        _settled_on(env, p2, qtr)
        pos = _positions(v)
        assert pos[OKX_SWAP] == 0.0 and pos[OKX_QTR] < 0 and abs(v.spot_base() + pos[OKX_QTR]) <= fm.LOT, pos
        pause_and_stop(env, p2, HID)
        orders = journal(env, "orders", HID)
        assert "never_sent" in set(orders["status"])
        g = journal(env, "guard_firings", HID)
        assert list(g.loc[g["guard"] == "calendar_roll", "action"]) == ["to_future", "to_future"]
        qtr_orders = v.call(lambda: [o for o in v.sim.orders.values() if o.inst_id == OKX_QTR])
        assert len(qtr_orders) == 1  # the killed intent was never sent, the second decision sent one
        _venue_checks(v, env)
    finally:
        if env is not None:
            env.cleanup()
        v.close()
