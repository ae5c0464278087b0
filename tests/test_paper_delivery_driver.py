"""The HedgeDriver over the paper venue when its quarterly is delivered (hedge_core.engine.driver._deliveries): the
delivery fill in the venue's trade list is booked as a DELIVERY (the leg moved to the perpetual and hedged again
there), never as an ordinary external fill, also when the throttled delivery read is not due (market updates
seconds apart, before the symbol's delivery date: the fill in the trades forces the read); booked once."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.engine import MarketUpdate, State, new_hedge
from hedge_core.engine.driver import DELIVERY_POLL_S, HedgeDriver
from hedge_core.engine.roll_step import RollRequest
from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.paper.core import PaperConfig, PaperCore
from hedge_core.exchange.paper.quarterly import PaperQuarterly
from hedge_core.params.models import CarryParams
from hedge_core.types import Bar, MarketKind

EXP = pd.Timestamp("2026-12-24T08:00Z")  # expires a day BEFORE its symbol's date: the read is not due by date
Q = "BTC/USDT:USDT-261225"
SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"


def _bars(core: PaperCore, ts: pd.Timestamp, px: float, tf: str = "1m") -> None:
    for sym, kind in ((SPOT, MarketKind.SPOT), (PERP, MarketKind.PERP)):
        core.apply(Bar(ts, "binance", sym, kind, px, px, px, px, 100.0, tf))


def test_a_paper_delivery_is_booked_as_a_delivery_even_between_throttled_reads():
    async def go():
        cfg = PaperConfig(slippage_bps=0.0, impact_k_bps=0.0, quarterlies=(PaperQuarterly(Q, EXP, 0.0),))
        core = PaperCore(cfg, balances={"spot": {"USDT": 100_000.0}, "perp": {"USDT": 100_000.0}})
        ex = PaperExchange(core, save_on_apply=False)
        _bars(core, EXP - pd.Timedelta(minutes=2), 30_000.0)  # known at 07:59
        m = await ex.load_markets()
        now = core.now
        drv = HedgeDriver(new_hedge("pd", "carry", m[SPOT], m[PERP], now),
                          CarryParams(notional=3_000.0, min_net_carry=-1.0), {"binance": ex})
        await drv.feed(MarketUpdate(now, 30_000.0, 30_000.0, funding_rate=0.001))
        ctx = await drv.feed(RollRequest(now, m[Q], 30_000.0, "basis"))
        assert ctx.perp.symbol == Q and ctx.perp.qty == pytest.approx(-0.1) and ctx.state is State.MONITORING_POSITIONS
        now = EXP - pd.Timedelta(seconds=30)  # a ticker-paced update at 07:59:30: the first delivery read (none)
        ctx = await drv.feed(MarketUpdate(now, 30_000.0, 30_000.0, funding_rate=0.001))
        # the venue's clock reaches the expiry (the bar known at 08:00): delivered at the average of the two spot
        # closes known in the last 30 minutes, (30,000 + 30,300) / 2 = 30,150; the short entered at 30,000 loses 15
        _bars(core, EXP - pd.Timedelta(minutes=1), 30_300.0)
        [rec] = core.deliveries
        assert rec["price"] == pytest.approx(30_150.0) and rec["realized_pnl"] == pytest.approx(-0.1 * 150.0)
        t = core.now
        assert (t - now).total_seconds() < DELIVERY_POLL_S  # the throttled read is not due, nor by date
        ctx = await drv.feed(MarketUpdate(t, 30_300.0, 30_300.0, funding_rate=0.001))
        assert ctx.perp.symbol == PERP and ctx.roll_leg is None  # booked as a delivery: the leg on the perp
        assert ctx.perp.qty == pytest.approx(-0.1) and abs(ctx.delta) < 1e-9  # hedged again there
        assert Q in drv.delivered_symbols
        n = len(core.fills)
        ctx = await drv.feed(MarketUpdate(t, 30_300.0, 30_300.0, funding_rate=0.001))
        assert len(core.fills) == n and ctx.perp.qty == pytest.approx(-0.1)  # booked once, nothing more sent
    asyncio.run(go())
