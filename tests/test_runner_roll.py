"""The calendar roll in a real runner process on the paper venue (runner.roll_watch): a carry hedge whose
parameters enable ``roll``, on a paper venue given a simulated quarterly at a 50 %/yr basis, moves its short leg
onto the quarterly; the runner is SIGKILLed between the roll's two orders, restarted, and the leg ends on ONE
contract with the delta hedged, every venue order journaled before it was sent."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.support.runner_env import DEMO_START, journal, make_env, paper_exchange, wait_for

pytestmark = [pytest.mark.timeout(240), pytest.mark.e2e]  # real runner processes

HID = "r1"
SPOT, PERP, QTR = "BTC/USDT", "BTC/USDT:USDT", "BTC/USDT:USDT-240329"
QUARTERLY = {"symbol": QTR, "expiry": "2024-03-29T08:00Z", "basis_apr": 0.5}
PARAMS = {"exit": {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                   "funding_unfavourable_intervals": None},
          "guards": {"funding_cost_apr_limit": None}, "roll": {"enabled": True}}


def _legs(env, qtr=QTR):
    core = paper_exchange(env, HID).core
    b = core.balance("spot").get("BTC")
    pos = {s: sum(p.qty for p in core.positions.values() if p.symbol == s) for s in (PERP, qtr)}
    return (b.total if b is not None else 0.0), pos, core


@pytest.mark.parametrize("kill_at", ["fill_journaled:roll:roll_open", "intent_journaled:perp:roll_close",
                                     "intent_journaled:roll:roll_open"])
def test_kill_between_the_roll_orders_then_restart_ends_on_one_contract_hedged(tmp_path, kill_at):
    env = make_env(tmp_path, export=PARAMS)
    try:
        p = env.start_runner({"HEDGE_RUNNER_KILL_AT": kill_at})
        env.client(p).start("carry-test", mode="paper", start=DEMO_START, speed=36_000, recovery="resume",
                            hedge_id=HID, paper_quarterly=QUARTERLY)
        assert p.wait(90) == -9, "the runner should have SIGKILLed itself in the roll"
        spot, pos, _ = _legs(env)
        if kill_at.startswith("fill_journaled"):  # the open filled, the close not sent: the leg held twice
            assert pos[QTR] < 0 and pos[PERP] < 0
        p2 = env.start_runner()
        c = env.client(p2)
        h = wait_for(lambda: (lambda h: h if h.get("leg_contract") == QTR and h.get("state") == "MONITORING_POSITIONS"
                              and not h.get("pending_orders") and "roll" not in h else None)(c.hedge(HID)),
                     timeout=90, what="the leg on the quarterly")
        assert h["leg_on_future"] is True
        c.pause(HID)
        wait_for(lambda: c.hedge(HID).get("state") == "PAUSED", what="paused")
        p2.terminate()
        p2.wait(60)
        spot, pos, core = _legs(env)
        # the leg on ONE contract, the delta hedged (within the perp's smallest order), as the venue says
        assert abs(pos[PERP]) < 1e-12 and pos[QTR] < 0
        inst = core.instruments[QTR]
        assert abs(spot + pos[QTR]) < max(inst.min_notional / core.ref_price(QTR), inst.min_qty) + inst.lot_size
        # every venue order was journaled before it was sent; the roll's orders carry leg "roll" / purpose
        orders = journal(env, "orders", HID)
        venue = [o for o in core.orders.values() if not o.cid.startswith("liq-")]
        assert {o.cid for o in venue} <= set(orders["client_order_id"])
        on_qtr = [o for o in venue if o.symbol == QTR and o.filled > 0]
        assert len(on_qtr) == 1, [(o.cid, o.filled) for o in on_qtr]  # the open was never sent twice
        fills = journal(env, "fills", HID)
        for o in venue:
            assert fills.loc[fills["client_order_id"] == o.cid, "qty"].sum() == pytest.approx(o.filled, abs=1e-12)
        # the decision is journaled with its numbers: a 50 %/yr basis beats the demo's funding
        g = journal(env, "guard_firings", HID)
        roll = g[g["guard"] == "calendar_roll"]
        if kill_at == "intent_journaled:roll:roll_open":
            # the open was never sent: found absent at the venue (never re-sent blindly), the hedge came back
            # on the perp and the rule decided the move again
            assert list(roll["action"]) == ["to_future"] * 2
            assert "never_sent" in set(orders["status"])
        else:
            assert list(roll["action"]) == ["to_future"]
        tr = journal(env, "transitions", HID)
        assert "RECOVERY" in set(tr["trigger_name"])
        # the roll's decision price is the simulated quarterly: the spot close known at that instant
        # x (1 + 0.5 x days left / 365) (hand formula; the journal's ref_price of the open)
        [o] = on_qtr
        row = orders.loc[orders["client_order_id"] == o.cid].iloc[0]
        t = pd.Timestamp(row["intent_ts"])
        bars = env.store().read_bars("demo", SPOT, "spot", "1h", start=t - pd.Timedelta(hours=1), end=t)
        close = float(bars.loc[t - pd.Timedelta(hours=1), "close"])
        days = (pd.Timestamp("2024-03-29T08:00Z") - t) / pd.Timedelta(days=1)
        assert row["ref_price"] == pytest.approx(close * (1 + 0.5 * days / 365), rel=1e-9)
    finally:
        env.cleanup()


def test_the_leg_returns_to_the_perpetual_before_expiry(tmp_path):
    """A quarterly expiring 2024-01-04 08:00: at the first monitored update (2024-01-01, ~2.9 days left > exit_days
    2) the short moves onto it; once 2 days or fewer are left (from 2024-01-02 08:00) it comes back to the perp."""
    env = make_env(tmp_path, export=PARAMS)
    q = {**QUARTERLY, "symbol": "BTC/USDT:USDT-240104", "expiry": "2024-01-04T08:00Z"}
    try:
        p = env.start_runner()
        c = env.client(p)
        c.start("carry-test", mode="paper", start=DEMO_START, speed=36_000, recovery="resume", hedge_id=HID,
                paper_quarterly=q)
        wait_for(lambda: (lambda h: h.get("leg_contract") == PERP and h.get("last_ts", "") > "2024-01-02T09"
                          and not h.get("pending_orders"))(c.hedge(HID)), timeout=90, what="back on the perp")
        c.pause(HID)
        wait_for(lambda: c.hedge(HID).get("state") == "PAUSED", what="paused")
        p.terminate()
        p.wait(60)
        g = journal(env, "guard_firings", HID)
        roll = g[g["guard"] == "calendar_roll"].sort_values("ts")
        assert list(roll["action"]) == ["to_future", "to_perp"]
        back = pd.Timestamp(roll["ts"].iloc[1])
        assert pd.Timestamp("2024-01-02T08:00Z") <= back <= pd.Timestamp("2024-01-02T09:00Z")
        assert json.loads(roll["numbers"].iloc[1])["days_to_expiry"] <= 2.0
        spot, pos, core = _legs(env, q["symbol"])
        assert abs(pos[q["symbol"]]) < 1e-12 and pos[PERP] < 0
        assert abs(spot + pos[PERP]) < 0.001
    finally:
        env.cleanup()
