"""Live market data by polling a venue's public endpoints, behind the :class:`~hedge_core.exchange.feeds.Feed` protocol.

:class:`LivePollingFeed` polls closed OHLCV bars (spot, perp, perp mark) and settled funding
rates through :class:`~hedge_core.exchange.ccxt.adapter.CcxtLiveAdapter` (public calls: no keys
needed; errors translated and temporary ones retried there) and yields the same
:data:`~hedge_core.types.MarketEvent` values, in the same order, as the store replay:

- a bar labelled ``ts`` is yielded once it is closed (``ts + timeframe <= now``);
- events of one instant are held until ``settle_delay`` has passed after it, so a bar published
  a little late still comes out before the funding of the same instant (bars before funding,
  spot < perp < mark, see :func:`~hedge_core.exchange.feeds.event_order_key`);
- a bar that shows up after its instant was emitted, or a settlement after a later instant was, is dropped and
  counted in :attr:`LivePollingFeed.late_dropped` (the order contract wins; the store backfill keeps it); a
  settlement published after its own instant's bars went out (later than ``settle_delay``) still comes out, after
  them (bars before funding at an instant, as in the replay);
- the events released by one round are yielded as one batch, :attr:`LivePollingFeed.batch_left` counting
  those still to come (0 at the batch's last event): the bars of an instant never span two batches, so a consumer
  may act on the last instant of a batch without waiting for the next event (the runner does: one bar earlier than
  waiting for the next bar);
- gaps are not filled.

The closing and ordering rules live here only: :class:`LivePollingFeed` is built from small hooks
(:meth:`~LivePollingFeed._series_bars` where bars come from, :meth:`~LivePollingFeed._rest_round`
when REST is asked, :meth:`~LivePollingFeed._idle` how to wait) that
:class:`hedge_core.exchange.live_ws_feed.LiveWebsocketFeed` overrides to take spot/perp bars from
ccxt.pro websockets; :func:`hedge_core.exchange.live_ws_feed.live_feed` picks one of the two.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pandas as pd

from hedge_core.errors import InvalidInput, TemporaryError
from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter
from hedge_core.exchange.feeds import event_order_key, known_at, timeframe_delta
from hedge_core.types import Bar, FundingEvent, MarketEvent, MarketKind, utc

log = logging.getLogger(__name__)


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


class LivePollingFeed:
    """Poll closed bars and settled funding of one spot/perp pair (a :class:`Feed`).

    Parameters
    ----------
    adapter : CcxtLiveAdapter
        Used for its public calls (``fetch_bars``, ``fetch_funding_rate_history``); a wrapper with
        a ``market_data`` CcxtLiveAdapter (recommend mode) is unwrapped.
    spot_symbol, perp_symbol : str or None
        ``'BTC/USDT'``, ``'BTC/USDT:USDT'``; None skips a leg. Mark bars and funding use the perp.
    timeframe : str
        Bar timeframe, e.g. ``'1h'``.
    start : timestamp, UTC
        First bar label to emit; funding settling after ``start``.
    poll_interval : float
        Seconds between polls when nothing new is ready.
    settle_delay : float
        Seconds an instant is held open for late publications before its events are emitted.
    now, sleep :
        Injectable clock and sleep (tests drive time by hand).
    """

    def __init__(self, adapter: CcxtLiveAdapter, spot_symbol: str | None, perp_symbol: str | None,
                 timeframe: str = "1h", *, start: object, poll_interval: float = 5.0,
                 settle_delay: float = 10.0, include_mark: bool = True, include_funding: bool = True,
                 now: Callable[[], pd.Timestamp] = _now,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if poll_interval <= 0:
            raise InvalidInput("poll_interval", poll_interval, "> 0 seconds")
        if settle_delay < 0:
            raise InvalidInput("settle_delay", settle_delay, ">= 0 seconds")
        if spot_symbol is None and perp_symbol is None:
            raise InvalidInput("spot_symbol/perp_symbol", None, "at least one symbol")
        if not hasattr(adapter, "fetch_bars"):  # e.g. a RecommendAdapter: read through its market data
            adapter = getattr(adapter, "market_data", adapter)
        if not hasattr(adapter, "fetch_bars"):
            raise InvalidInput("adapter", type(adapter).__name__,
                               "a CcxtLiveAdapter (or an adapter whose market_data is one)")
        self.adapter = adapter
        self.venue = adapter.venue
        self.spot_symbol, self.perp_symbol = spot_symbol, perp_symbol
        self.timeframe = timeframe
        self.tf = timeframe_delta(timeframe)
        self.start = utc(start)
        self.poll_interval, self.settle_delay = float(poll_interval), float(settle_delay)
        self._now, self._sleep = now, sleep
        self.series: list[tuple[str, MarketKind]] = []
        if spot_symbol:
            self.series.append((spot_symbol, MarketKind.SPOT))
        if perp_symbol:
            self.series.append((perp_symbol, MarketKind.PERP))
            if include_mark:
                self.series.append((perp_symbol, MarketKind.MARK))
        self.include_funding = bool(perp_symbol) and include_funding
        self._next_label = {s: self.start for s in self.series}
        self._last_funding = self.start
        self._pending: dict[tuple, MarketEvent] = {}
        self.watermark: pd.Timestamp | None = None  # known instant of the last emitted event
        self.late_dropped = 0
        # events still to come of the batch being yielded: 0 at a batch's last event. Every BAR of an instant is
        # released in ONE batch (a late one is dropped, never released after its instant), so at 0 the instants
        # yielded are complete and the consumer may act on them at once (HedgeTask.run flushes its market builder);
        # only a settlement at the last instant may follow in a later batch (after the bars, as in the replay)
        self.batch_left = 0
        self._closed = False

    async def poll(self) -> list[MarketEvent]:
        """One polling round: fetch what is new, return the events now ready, in order."""
        now = self._now()
        await self.fetch(now)
        return self._release(now)

    async def fetch(self, now: pd.Timestamp) -> None:
        """Fetch what is new and stage it (the closing rule), releasing nothing: :meth:`poll`, and a feed
        that merges several venues' feeds (:class:`hedge_core.exchange.pair_feed.PairBarsFeed`)."""
        rest = self._rest_round(now)
        for sym, kind in self.series:
            bars, confirmed_before = await self._series_bars(sym, kind, rest)
            self._accept_bars(sym, kind, bars, now, confirmed_before)
        if self.include_funding and rest:
            assert self.perp_symbol is not None
            rates = await self.adapter.fetch_funding_rate_history(self.perp_symbol, since=self._last_funding)
            for r in rates:
                if self._last_funding < r.ts <= now:
                    self._stage(FundingEvent(r.ts, self.venue, self.perp_symbol, r.rate, r.interval_hours))
                    self._last_funding = r.ts

    # -- hooks a subclass overrides (the websocket feed); the rules below them stay here only --
    def _rest_round(self, now: pd.Timestamp) -> bool:
        """Whether this round asks the REST endpoints (polling: every round)."""
        return True

    async def _series_bars(self, symbol: str, kind: MarketKind, rest: bool) -> tuple[list[Bar], pd.Timestamp | None]:
        """Candidate bars of one series from ``next_label`` on, and ``confirmed_before``: a label
        such that every bar labelled before it is known to be final (None: the clock alone decides)."""
        if not rest:
            return [], None
        bars = await self.adapter.fetch_bars(symbol, kind, self.timeframe, since=self._next_label[(symbol, kind)])
        return bars, None

    async def _idle(self) -> None:
        """Wait before the next round when nothing was ready."""
        await self._sleep(self.poll_interval)

    def _accept_bars(self, symbol: str, kind: MarketKind, bars: list[Bar], now: pd.Timestamp,
                     confirmed_before: pd.Timestamp | None = None) -> None:
        """The closing rule: stage each bar labelled at or after the series' next label that is
        closed by the clock (``ts + timeframe <= now``) and, when ``confirmed_before`` is given,
        labelled before it (a newer bar was seen, so this one is final)."""
        key = (symbol, kind)
        for b in sorted(bars, key=lambda x: x.ts):
            if b.ts < self._next_label[key] or b.ts + self.tf > now:
                continue
            if confirmed_before is not None and b.ts >= confirmed_before:
                continue
            self._stage(b)
            self._next_label[key] = b.ts + self.tf

    def _release(self, now: pd.Timestamp) -> list[MarketEvent]:
        """The ordering rule: staged events whose instant is ``settle_delay`` old, in replay order."""
        ready_before = now - pd.Timedelta(seconds=self.settle_delay)
        ready = sorted((e for e in self._pending.values() if known_at(e) <= ready_before), key=event_order_key)
        for e in ready:
            del self._pending[_key(e)]
        if ready:
            self.watermark = known_at(ready[-1])
        return ready

    def _stage(self, e: MarketEvent) -> None:
        # late: a bar of an instant already released (the consumer acted on it), or a settlement of an instant
        # before the last one released. A settlement AT the last instant released still comes out: after that
        # instant's bars, as the replay orders them (bars before funding); a venue publishes a settlement's row a
        # moment after its time, which may be later than settle_delay (dropped, a settlement was lost for good)
        if self.watermark is not None and (known_at(e) < self.watermark or (
                known_at(e) == self.watermark and not isinstance(e, FundingEvent))):
            self.late_dropped += 1
            log.warning("live feed: %s %s at %s arrived after its instant or a later one was emitted; dropped",
                        type(e).__name__, e.symbol, e.ts)
            return
        self._pending[_key(e)] = e

    async def __aiter__(self) -> AsyncIterator[MarketEvent]:
        while not self._closed:
            try:
                ready = await self.poll()
            except TemporaryError as exc:  # already retried by the adapter; keep polling
                log.warning("live feed poll failed temporarily: %s", exc)
                ready = []
            for i, e in enumerate(ready):
                if self._closed:
                    return
                self.batch_left = len(ready) - 1 - i
                yield e
            if not ready and not self._closed:
                await self._idle()

    async def aclose(self) -> None:
        """Stop the feed (idempotent). The adapter belongs to the caller and stays open."""
        self._closed = True


def _key(e: MarketEvent) -> tuple:
    """One staged event per venue, series and time (two venues' feeds merged keep both venues' events)."""
    if isinstance(e, Bar):
        return ("bar", e.venue, e.symbol, e.kind, e.ts)
    return ("funding", e.venue, e.symbol, e.ts)
