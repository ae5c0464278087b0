"""The engine's calendar roll (engine.roll_step) driven through the real ccxt okx client against the OKX
simulator's quarterly: a carry hedge entered by the HedgeDriver, the runner's rule (runner.roll_watch.decide)
says TO_FUTURE on the hand example of docs/calendar-roll.md, the engine opens the quarterly then closes the
swap; fills come from the venue's trade records and land on the leg of their contract; the context agrees with
the venue's positions after the move and after the way back."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.engine import MarketUpdate, State
from hedge_core.engine.calendar_roll import RollAction
from hedge_core.engine.roll_step import ROLL_CLOSE, ROLL_OPEN, RollRequest
from hedge_core.runner.roll_watch import decide
from tests.support.live_env import okx_carry_entered, okx_env, okx_quarterly

PERP = "BTC/USDT:USDT"
pytestmark = pytest.mark.integration  # the OKX simulator on 127.0.0.1


def test_the_engine_rolls_a_hedge_leg_to_the_okx_quarterly_and_back():
    async def go():
        async with okx_env() as env:
            a, sim = env.adapter, env.sim
            okx_quarterly(sim)
            drv, m, fut, expiry, now = await okx_carry_entered(a, sim, "rk", 3_000.0)
            c0 = drv.ctx
            assert c0.state is State.MONITORING_POSITIONS and c0.perp.qty < 0
            swap0 = sim.positions["BTC-USDT-SWAP"][0]
            # the rule on the venue's figures: basis 1 % over ~90 days vs funding 0.001 %/8 h (hand example)
            mu = MarketUpdate(now, 30_000.0, 30_000.0, next_funding_rate=0.00001)
            d, to = decide(c0, mu, [(fut, expiry)], 30_300.0, sim.taker, 0.02, 2.0)
            days = (expiry - now) / pd.Timedelta(days=1)
            assert (d.action, to) == (RollAction.TO_FUTURE, fut)
            assert d.future_carry_apr == pytest.approx(0.01 * 365 / days)
            assert d.perp_carry_apr == pytest.approx(0.00001 * 1095)
            n0 = len(drv.actions)
            ctx = await drv.feed(RollRequest(now, m[fut], 30_300.0, d.reason))
            purposes = [x.purpose for x in drv.actions[n0:] if hasattr(x, "purpose")]
            assert purposes == [ROLL_OPEN, ROLL_CLOSE]  # open the quarterly first, then close the swap
            assert ctx.roll_leg is None and ctx.perp.symbol == fut and ctx.pending == {}
            assert sim.positions["BTC-USDT-SWAP"][0] == 0 and sim.positions["BTC-USDT-QTR"][0] == swap0
            assert ctx.perp.qty == pytest.approx(swap0 * 0.01) and ctx.delta == pytest.approx(c0.delta)
            # the roll's fees, as the venue booked them: 0.05 % of each leg's notional (OKX reports them negative)
            qtr = [f for f in sim.fills if f["instId"] == "BTC-USDT-QTR"]
            swap = [f for f in sim.fills if f["instId"] == "BTC-USDT-SWAP"]
            assert -sum(float(f["fee"]) for f in qtr) == pytest.approx(abs(ctx.perp.qty) * 30_300.0 * sim.taker)
            assert ctx.perp.fees == pytest.approx(-sum(float(f["fee"]) for f in qtr + swap), abs=1e-8)
            # funding rises to 0.02 %/8 h (21.9 %/yr): the rule brings the leg back to the swap
            mu2 = MarketUpdate(now, 30_000.0, 30_300.0, next_funding_rate=0.0002)
            d2, _ = decide(ctx, mu2, [(fut, expiry)], 30_300.0, sim.taker, 0.02, 2.0)
            assert d2.action is RollAction.TO_PERP
            ctx = await drv.feed(RollRequest(now, m[PERP], 30_000.0, d2.reason))
            assert ctx.perp.symbol == PERP and ctx.roll_leg is None
            assert sim.positions["BTC-USDT-QTR"][0] == 0 and sim.positions["BTC-USDT-SWAP"][0] == swap0
            assert ctx.delta == pytest.approx(c0.delta)
    asyncio.run(go())
