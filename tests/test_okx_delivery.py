"""Delivery of an OKX quarterly (FUTURES) through the real ccxt okx client against the OKX simulator
(docs/calendar-roll.md "Delivery at expiry"): the simulator delivers as OKX documents it (``OkxSim.deliver``: the
average index of the last hour, a bill of type 3 "Delivery", subType 113 "Delivery short" with sz, px, pnl and the
fee, the instrument expired), the live adapter reads it (``fetch_deliveries``), and the engine's HedgeDriver with
its leg on that quarterly books it at the next reconciliation pass (``book_external``), moves the leg to the swap
and sells the hedge there.

Hand figures: 1.99 contracts of 0.01 BTC short at 30,300 (the spot bought 0.02 BTC and OKX kept 0.1 % of it as
its fee: 0.01998 BTC hedged to the contract lot), delivered at (30,050 + 30,150) / 2 = 30,100: realised
0.0199 x 200 = 3.98 USDT; delivery fee 0.0199 x 30,100 x 0.02 % = 0.119798 USDT (the bill's fee -0.119798)."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.engine import MarketUpdate, State
from hedge_core.engine.roll_step import RollRequest
from hedge_core.types import Side
from tests.support.live_env import okx_carry_entered, okx_env, okx_quarterly

PERP = "BTC/USDT:USDT"
pytestmark = pytest.mark.integration  # the OKX simulator on 127.0.0.1


def test_an_okx_quarterly_delivered_is_read_booked_and_the_leg_hedged_again_on_the_swap():
    async def go():
        async with okx_env() as env:
            a, sim = env.adapter, env.sim
            okx_quarterly(sim)
            drv, m, fut, _expiry, now = await okx_carry_entered(a, sim, "dk", 600.0)
            ctx = await drv.feed(RollRequest(now, m[fut], 30_300.0, "basis"))
            assert ctx.perp.symbol == fut and sim.positions["BTC-USDT-QTR"][0] == pytest.approx(-1.99)
            assert await a.fetch_deliveries(fut) == [] and await a.fetch_deliveries(PERP) == []
            realized0, fees0 = ctx.perp.realized, ctx.perp.fees
            n_qtr = len([o for o in sim.orders.values() if o.inst_id == "BTC-USDT-QTR"])
            ctx = await drv.feed(MarketUpdate(now, 30_000.0, 30_300.0, funding_rate=0.001))  # first read: nothing
            assert ctx.perp.symbol == fut
            # the venue delivers (brought forward to now: the simulator's clock is the wall clock)
            assert sim.deliver("BTC-USDT-QTR", [30_050.0, 30_150.0], fee_rate=0.0002) == pytest.approx(30_100.0)
            [bill] = [b for b in sim.bills if b["type"] == "3"]
            assert bill["subType"] == "113" and float(bill["sz"]) == pytest.approx(1.99)
            assert float(bill["px"]) == pytest.approx(30_100.0)
            assert float(bill["pnl"]) == pytest.approx(3.98) and float(bill["fee"]) == pytest.approx(-0.119798)
            assert sim.positions["BTC-USDT-QTR"][0] == 0 and sim.insts["BTC-USDT-QTR"]["state"] == "expired"
            [d] = await a.fetch_deliveries(fut)
            assert (d.side, d.qty, d.price, d.fee) == (Side.BUY, pytest.approx(0.0199), pytest.approx(30_100.0),
                                                       pytest.approx(0.119798))
            assert d.trade_id == f"delivery:{bill['billId']}"
            # a market update within DELIVERY_POLL_S of the last read, before the symbol's delivery date: not read
            later = pd.Timestamp(sim.now_ms(), unit="ms", tz="UTC")
            ctx = await drv.feed(MarketUpdate(later, 30_000.0, 30_000.0, funding_rate=0.001))
            assert ctx.perp.symbol == fut and ctx.perp.qty == pytest.approx(-0.0199)
            # the next reconciliation pass reads it (book_external): booked once, the leg on the swap, hedged there
            ctx = await drv.book_external(later)
            assert ctx.perp.symbol == PERP and ctx.roll_leg is None and ctx.state is State.MONITORING_POSITIONS
            assert ctx.perp.realized - realized0 == pytest.approx(3.98)
            # the delivery fee, then the re-hedge's taker fee on the swap
            assert ctx.perp.fees - fees0 == pytest.approx(0.119798 + 0.0199 * 30_000.0 * sim.taker)
            assert sim.positions["BTC-USDT-SWAP"][0] == pytest.approx(-1.99) and ctx.perp.qty == pytest.approx(-0.0199)
            assert abs(ctx.delta) < 0.0001  # hedged within one contract lot
            ctx = await drv.feed(MarketUpdate(later, 30_000.0, 30_000.0, funding_rate=0.001))
            assert ctx.perp.realized - realized0 == pytest.approx(3.98)  # not booked twice
            assert len([o for o in sim.orders.values() if o.inst_id == "BTC-USDT-QTR"]) == n_qtr  # none after delivery
    asyncio.run(go())
