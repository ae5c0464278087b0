"""Delivery at expiry in a real runner process on the paper venue: a carry hedge whose roll has ``exit_days`` 0
moves its short leg onto a simulated quarterly and is still on it at expiry; the paper venue delivers it (the
average index of the last 30 minutes: with hourly bars, the spot close known at 08:00), the runner books the
delivery from the venue's record (realised PnL and fee, journaled as a fill of purpose ``delivery``), moves the leg
to the perpetual with a critical alert and hedges the spot again there. Once without a stop, once SIGKILLed right
after the delivery was journaled (before the re-hedge) and restarted."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.support.runner_env import DEMO_START, journal, make_env, paper_exchange, wait_for

pytestmark = [pytest.mark.timeout(240), pytest.mark.e2e]  # real runner processes

HID = "d1"
SPOT, PERP, QTR = "BTC/USDT", "BTC/USDT:USDT", "BTC/USDT:USDT-240104"
QUARTERLY = {"symbol": QTR, "expiry": "2024-01-04T08:00Z", "basis_apr": 0.5, "delivery_fee_rate": 0.0002}
PARAMS = {"exit": {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                   "funding_unfavourable_intervals": None},
          "guards": {"funding_cost_apr_limit": None}, "roll": {"enabled": True, "exit_days": 0}}


@pytest.mark.parametrize("kill_at", [None, "fill_journaled:perp:delivery"])
def test_a_quarterly_held_at_expiry_is_delivered_booked_and_the_leg_hedged_again_on_the_perp(tmp_path, kill_at):
    env = make_env(tmp_path, export=PARAMS)
    try:
        p = env.start_runner({"HEDGE_RUNNER_KILL_AT": kill_at} if kill_at else None)
        env.client(p).start("carry-test", mode="paper", start=DEMO_START, speed=36_000, recovery="resume",
                            hedge_id=HID, paper_quarterly=QUARTERLY)
        if kill_at:
            assert p.wait(120) == -9, "the runner should have SIGKILLed itself after journaling the delivery"
            p = env.start_runner()
        c = env.client(p)
        wait_for(lambda: (lambda h: h.get("leg_contract") == PERP and h.get("last_ts", "") > "2024-01-04T09"
                          and h.get("state") == "MONITORING_POSITIONS" and not h.get("pending_orders"))(c.hedge(HID)),
                 timeout=120, what="hedged again on the perp after the delivery")
        c.pause(HID)
        wait_for(lambda: c.hedge(HID).get("state") == "PAUSED", what="paused")
        p.terminate()
        p.wait(60)
        core = paper_exchange(env, HID).core
        [rec] = core.deliveries
        # the venue's delivery: at 08:00, at the spot close known then (the hourly bar opened 07:00)
        assert pd.Timestamp(rec["ts"]) == pd.Timestamp("2024-01-04T08:00Z") and rec["qty"] < 0
        t7 = pd.Timestamp("2024-01-04T07:00Z")
        bars = env.store().read_bars("demo", SPOT, "spot", "1h", start=t7, end=t7 + pd.Timedelta(hours=1))
        close = float(bars.loc[t7, "close"])
        assert rec["price"] == pytest.approx(close) and rec["samples"] == 1
        assert rec["fee"] == pytest.approx(-rec["qty"] * close * 0.0002)  # hand: |qty| x price x 0.02 %
        assert rec["realized_pnl"] == pytest.approx(rec["qty"] * (close - rec["entry_price"]))
        # booked once from the venue's record, on the leg of the quarterly, as a fill of purpose "delivery"
        fills = journal(env, "fills", HID)
        dl = fills[fills["client_order_id"] == rec["id"]]
        assert len(dl) == 1 and dl["leg"].iloc[0] == "perp" and dl["symbol"].iloc[0] == QTR
        assert dl["price"].iloc[0] == pytest.approx(close) and dl["fee"].iloc[0] == pytest.approx(rec["fee"])
        assert dl["qty"].iloc[0] == pytest.approx(-rec["qty"]) and dl["side"].iloc[0] == "buy"
        # the leg is on the perp now, the delta hedged within a lot, as the venue says
        b = core.balance("spot").get("BTC")
        spot = b.total if b is not None else 0.0
        pos = {s: sum(x.qty for x in core.positions.values() if x.symbol == s) for s in (PERP, QTR)}
        assert pos[QTR] == 0.0 and pos[PERP] < 0
        assert abs(spot + pos[PERP]) < core.instruments[PERP].lot_size + 1e-12
        # every order at the venue journaled before it was sent; none on the quarterly after its expiry
        orders = journal(env, "orders", HID)
        venue = [o for o in core.orders.values() if not o.cid.startswith(("liq-", "dlv-"))]
        assert {o.cid for o in venue} <= set(orders["client_order_id"])
        assert not [o for o in venue if o.symbol == QTR and o.ts >= pd.Timestamp("2024-01-04T08:00Z")]
        # the re-hedge: one perp sell after the delivery, journaled
        after = fills[(fills["symbol"] == PERP) & (pd.to_datetime(fills["ts"], utc=True) >= pd.Timestamp(rec["ts"]))]
        assert len(after) >= 1 and set(after["side"]) == {"sell"}
        if kill_at:
            tr = journal(env, "transitions", HID)
            assert "RECOVERY" in set(tr["trigger_name"])
    finally:
        env.cleanup()
