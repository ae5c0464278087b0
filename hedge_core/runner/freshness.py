"""Fresh prices only: the runner never acts on a price older than its limit; and slippage alerts.

Where the age is measured
-------------------------
Every price the engine acts on carries the venue's own time:

- ticker feeds (:class:`hedge_core.runner.market.TickerFeed`): the ticker's ``timestamp``
  (Binance: the 24 h ticker's ``closeTime``, the time of the last trade in the window), the older of
  the spot and the perp ticker; exposed by the feed as ``price_time`` for the update it yielded last;
- bar feeds (live polling and websocket bars, paper on live bars): the known time of the update,
  i.e. the close time of its bars (``MarketUpdate.ts`` from :class:`~hedge_core.runner.market.MarketBuilder`);
- a replay (``feed="replay"``) runs on its own clock: it is never stale.

Age = wall clock now - venue time. Limits (``HedgeSpec``): ``max_ticker_age_s`` (default 10 s)
for tickers, ``max_bar_age_bars`` bar lengths (default 2) for bars.

What "blocks new orders" means
------------------------------
A stale market update is NOT stepped into the engine: no entry, no rebalance, no exit decision and
no order sizing is made on it, and the hedge is marked DEGRADED (``stale_price``; alert once per
episode, shown in the summary, ``/health`` and ``hedge runner status``). Everything else still runs:
heartbeat timers resolve pending orders (timeouts, queries), a fill already under way is booked, the
perp hedge of a spot fill that already happened is placed (its size is the filled quantity, not a
price), operator commands (stop, flatten, pause) work. The next fresh price clears the mark and is
stepped as usual. Known gap: the engine's own timer-driven checks use the last (fresh) prices it
holds; a rebalance whose cooldown ends during a stale episode can be decided on those prices.

Slippage alert
--------------
A fill further than ``HedgeSpec.max_slippage_bps`` from the price the engine decided the order at
(``HedgeContext.order_ref``) raises ``task.alert("warning", "slippage", ...)``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from hedge_core.engine.events import FillEvent, MarketUpdate
from hedge_core.types import timeframe_seconds

if TYPE_CHECKING:
    from hedge_core.runner.hedge import HedgeTask

__all__ = ["check_fill_slippage", "fresh_enough", "price_age_s", "slippage_bps"]

STALE = "stale_price"


def price_age_s(venue_ts: pd.Timestamp | None, now: pd.Timestamp) -> float:
    """Seconds from the venue's timestamp to ``now`` (inf when the venue gave none)."""
    if venue_ts is None or pd.isna(venue_ts):
        return math.inf
    return (now - pd.Timestamp(venue_ts)).total_seconds()


def _limit_s(task: HedgeTask) -> tuple[float, str]:
    spec = task.spec
    if spec.feed == "ticker":
        return float(spec.max_ticker_age_s), f"{spec.max_ticker_age_s:g} s (max_ticker_age_s)"
    n = float(spec.max_bar_age_bars)
    return n * timeframe_seconds(spec.timeframe), f"{n:g} x {spec.timeframe} bars (max_bar_age_bars)"


def fresh_enough(task: HedgeTask, mu: MarketUpdate, now: pd.Timestamp | None = None) -> bool:
    """True when ``mu`` may be stepped into the engine; False (and the hedge DEGRADED) when stale.

    A fresh update after a stale episode clears the ``stale_price`` condition.
    """
    if task.spec.feed == "replay":
        return True
    if now is None:  # ages against the venue's clock (runner.clock), the wall clock for a bare task
        clock = getattr(task, "clock_now", None)
        now = clock() if callable(clock) else pd.Timestamp.now(tz="UTC")
    if task.spec.feed == "ticker" and hasattr(task.feed, "price_time"):
        venue_ts = task.feed.price_time  # None (a ticker without a venue time): never fresh
    else:
        venue_ts = mu.ts  # bars: their close time; a feed that reports no venue time: its own stamp
    age = price_age_s(venue_ts, now)
    limit, text = _limit_s(task)
    if age <= limit:
        if task.conditions.active(STALE):
            task.undegrade(STALE)
        return True
    task.stale_updates = getattr(task, "stale_updates", 0) + 1
    msg = (f"{task.spec.spot_symbol}/{task.spec.perp_symbol} price from the venue is {age:,.1f} s old "
           f"(venue time {venue_ts}), limit {text}: no new orders until a fresh price")
    if task.conditions.active(STALE):
        task.conditions.raise_(STALE, msg)  # same episode: the figure moves, the alert is not repeated
    else:
        task.degrade(STALE, msg, age_s=age, limit_s=limit)
    return False


def slippage_bps(price: float, ref: float) -> float:
    """|fill price - decision price| / decision price, basis points (NaN without a reference)."""
    if not (ref > 0) or not (price > 0):
        return math.nan
    return abs(price - ref) / ref * 1e4


def check_fill_slippage(task: HedgeTask, ev: FillEvent) -> None:
    """Alert when a fill is further than ``max_slippage_bps`` from the price its order was decided at."""
    limit = task.spec.max_slippage_bps
    if limit is None or task.driver is None or ev.external:
        return
    ref = task.driver.ctx.order_ref(ev.fill.client_order_id)
    bps = slippage_bps(ev.fill.price, ref)
    if math.isnan(bps) or bps <= limit:
        return
    cost = "cost" if ev.fill.slippage > 0 else "gain"
    task.alert("warning", "slippage",
               f"{ev.leg} {ev.fill.side} {ev.fill.qty:g} {ev.fill.symbol} filled at {ev.fill.price:,.2f}, "
               f"{bps:,.0f} bps from the decision price {ref:,.2f} (limit {limit:g} bps; a {cost} of "
               f"{abs(ev.fill.slippage):,.2f} quote)", bps=bps, limit_bps=float(limit), price=ev.fill.price,
               ref_price=ref, slippage=ev.fill.slippage)
