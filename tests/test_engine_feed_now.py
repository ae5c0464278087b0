"""HedgeDriver.feed_now: the same coroutine as feed(), driven without an event loop (paper venue)."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from hedge_core.engine import Timer, new_hedge
from hedge_core.engine.driver import HedgeDriver, run_now
from hedge_core.engine.replay import build_steps
from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.paper.core import PaperConfig, PaperCore, default_instruments
from hedge_core.params.models import CarryParams, ExitParams

INST = {i.symbol: i for i in default_instruments()}
T0 = pd.Timestamp("2024-01-01T00:00Z")
P = CarryParams(notional=8_000.0, min_funding_rate=0.0001, min_net_carry=-1.0,
                exit=ExitParams(max_holding_hours=10, rearm=True))


def _steps(hours: int = 40):
    rng = np.random.default_rng(11)
    idx = pd.date_range(T0, periods=hours, freq="1h", tz="UTC")
    close = 40_000 * np.exp(np.cumsum(rng.normal(0, 0.006, hours)))
    bars = pd.DataFrame({"open": close, "high": close * 1.001, "low": close * 0.999, "close": close,
                         "volume": 1_000.0}, index=idx)
    perp = bars.assign(close=bars["close"] * 1.0002, open=bars["open"] * 1.0002)
    ft = pd.date_range(T0 + pd.Timedelta(hours=8), periods=hours // 8, freq="8h", tz="UTC")
    return build_steps(bars, perp, venue="binance", spot_symbol="BTC/USDT", perp_symbol="BTC/USDT:USDT", mark=perp,
                       funding=pd.DataFrame({"funding_rate": 0.0004}, index=ft))


def _driver() -> tuple[HedgeDriver, PaperExchange]:
    ex = PaperExchange(PaperCore(PaperConfig(), balances={"spot": {"USDT": 20_000.0}, "perp": {"USDT": 10_000.0}}),
                       save_on_apply=False)
    ctx = new_hedge("fn", "carry", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0)
    return HedgeDriver(ctx, P, {"binance": ex}), ex


def test_feed_now_equals_awaited_feed_on_the_paper_venue():
    steps = _steps()
    a, ex_a = _driver()

    async def run_async():
        for s in steps:
            for b in s.bars:
                await ex_a.apply(b)
            await a.feed(Timer(s.ts, heartbeat=False))
            await a.feed(s.market)
    asyncio.run(run_async())

    b, ex_b = _driver()
    for s in steps:
        for bar in s.bars:
            ex_b.core.apply(bar)
        b.feed_now(Timer(s.ts, heartbeat=False))
        b.feed_now(s.market)

    assert len(ex_a.core.fills) >= 8 and [f.price for f in ex_a.core.fills] == [f.price for f in ex_b.core.fills]
    assert a.actions == b.actions
    assert a.ctx.history == b.ctx.history and a.ctx.state is b.ctx.state
    assert a.ctx.spot == b.ctx.spot and a.ctx.perp == b.ctx.perp


def test_run_now_refuses_a_coroutine_that_suspends():
    async def waits():
        await asyncio.sleep(0)
        return 1

    async def returns():
        return 2

    assert run_now(returns()) == 2
    with pytest.raises(RuntimeError, match="event loop"):
        run_now(waits())
