"""Two paper PERP venues driven by one engine: the first leg a perp on venue A, the second a perp on B.

Both legs trade ``BTC/USDT:USDT`` at the same prices (each venue gets its own copy of the perp and mark
bars); each venue settles its OWN funding rate and the engine hears each settlement on its own leg
(``FundingSettled(leg="spot")`` for A, the default ``"perp"`` for B) with the amount that venue booked.
The driver is given one plain adapter per venue: actions carry their leg's venue, so nothing routes by
symbol.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pandas as pd

from hedge_core.engine import new_hedge
from hedge_core.engine.driver import DriverHooks, HedgeDriver
from hedge_core.engine.events import Timer
from hedge_core.engine.replay import ReplayStep, build_steps, funding_settled
from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.paper.core import PaperConfig, PaperCore, default_instruments
from hedge_core.params.models import StrategyParamsBase
from hedge_core.types import FundingEvent, MarketKind

T0 = pd.Timestamp("2024-01-01T00:00Z")
PERP = "BTC/USDT:USDT"


def perp_venue(name: str, usdt: float, **cfg: object) -> PaperExchange:
    """A paper venue ``name`` with ``usdt`` in its futures wallet (nothing in its spot wallet)."""
    core = PaperCore(PaperConfig(venue=name, instruments=default_instruments(name), **cfg),  # type: ignore[arg-type]
                     balances={"perp": {"USDT": usdt}} if usdt > 0 else {})
    return PaperExchange(core, save_on_apply=False)


def pair_steps(hours: int = 24, seed: int = 1, rate_b: float = 0.0005, price: float = 40_000.0,
               vol: float = 0.005) -> list[ReplayStep]:
    """Hourly replay steps of one perp price path (spot bars = perp bars: not used by a perp pair) with
    venue B's funding ``rate_b`` every 8h."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(T0, periods=hours, freq="1h", tz="UTC")
    close = price * np.exp(np.cumsum(rng.normal(0, vol, hours)))
    bars = pd.DataFrame({"open": close, "high": close * 1.001, "low": close * 0.999, "close": close,
                         "volume": 1_000.0}, index=idx)
    ft = pd.date_range(T0 + pd.Timedelta(hours=8), periods=hours // 8, freq="8h", tz="UTC")
    funding = pd.DataFrame({"funding_rate": np.full(len(ft), rate_b)}, index=ft)
    return build_steps(bars, bars, venue="b", spot_symbol="BTC/USDT", perp_symbol=PERP, mark=bars, funding=funding)


def pair_driver(a: PaperExchange, b: PaperExchange, params: StrategyParamsBase, *, hedge_id: str = "pp1",
                hooks: DriverHooks | None = None, poll_external_fills: bool = True) -> HedgeDriver:
    """The engine with its first leg the perp on ``a`` and its second the perp on ``b``."""
    first = asyncio.run(a.load_markets())[PERP]
    second = asyncio.run(b.load_markets())[PERP]
    ctx = new_hedge(hedge_id, params.strategy, first, second, T0)
    return HedgeDriver(ctx, params, {a.core.config.venue: a, b.core.config.venue: b}, hooks=hooks,
                       poll_external_fills=poll_external_fills)


async def run_pair(drv: HedgeDriver, a: PaperExchange, b: PaperExchange, steps: list[ReplayStep],
                   rate_a: float = 0.0001) -> None:
    """Replay ``steps``: perp and mark bars to both venues, the market update with the first leg's price
    and mark, then each venue's own settlement (A at ``rate_a``, B at the step's rate) fed on its leg."""
    va, vb = a.core.config.venue, b.core.config.venue
    for s in steps:
        for bar in s.bars:
            if bar.kind in (MarketKind.PERP, MarketKind.MARK):
                await a.apply(replace(bar, venue=va))
                await b.apply(replace(bar, venue=vb))
        await drv.feed(Timer(s.ts, heartbeat=False))
        m = s.market
        await drv.feed(replace(m, spot=m.perp, spot_mark=m.mark_or_perp, spot_funding_rate=rate_a))
        if s.funding is not None:
            ev_a = FundingEvent(s.funding.ts, va, PERP, rate_a, s.funding.interval_hours)
            ev_b = replace(s.funding, venue=vb)
            await a.apply(ev_a)
            await b.apply(ev_b)
            await drv.feed(replace(await funding_settled(a, ev_a, m.mark_or_perp), leg="spot"))
            await drv.feed(await funding_settled(b, ev_b, m.mark_or_perp))
