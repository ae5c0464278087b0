"""Market-data feeds: the :class:`Feed` protocol and the store-backed :class:`ReplayFeed`.

A feed is an async iterator of :data:`hedge_core.types.MarketEvent` (``Bar | FundingEvent``),
emitted in time order at the instant each event becomes KNOWN:

- a bar labelled ``ts`` (open time) with timeframe ``tf`` is known at ``ts + tf``;
- a funding event is known at its settlement time ``ts``;
- at one instant, bars come before funding (common.md: bars ending at t -> actions -> funding at t),
  and bars are ordered spot, perp, mark, then by symbol.

The same ordering drives paper trading (``ReplayFeed`` or the live polling feed) and backtests
(:func:`iter_events`, a synchronous generator over the same events), so the two cannot drift.

Window convention of ``start``/``end`` (both UTC, inclusive/exclusive as below): the replay covers
the period ``[start, end)``: bars LABELLED in ``[start, end)`` (known in ``(start, end]``) and
funding settling in ``(start, end]``. Gaps in the data are kept as they are: a missing bar is
simply not emitted (nothing is forward-filled or invented).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from hedge_core.errors import InvalidInput
from hedge_core.types import Bar, FundingEvent, MarketEvent, MarketKind, timeframe_delta, utc

__all__ = [
    "Feed",
    "BarSource",
    "ReplayFeed",
    "iter_events",
    "known_at",
    "event_order_key",
    "timeframe_delta",
]

_KIND_RANK = {MarketKind.SPOT: 0, MarketKind.PERP: 1, MarketKind.MARK: 2}


@runtime_checkable
class Feed(Protocol):
    """An async iterator of market events in the order they become known.

    Implementations: :class:`ReplayFeed` (store replay), the live ccxt polling feed.
    Contract:

    - events are yielded in non-decreasing :func:`known_at` order; at equal instants bars
      before funding (see :func:`event_order_key`);
    - a bar is yielded only once it is closed (at ``bar.ts + timeframe`` or later);
    - gaps are not filled: a missing bar is not yielded;
    - ``aclose()`` stops the feed and releases its resources (idempotent).
    """

    def __aiter__(self) -> AsyncIterator[MarketEvent]: ...

    async def aclose(self) -> None: ...


class BarSource(Protocol):
    """The part of :class:`hedge_core.store.Store` a replay reads (a fake with the same
    signatures works in tests)."""

    def read_bars(self, venue: str, symbol: str, kind: str, timeframe: str,
                  start: pd.Timestamp | None = None, end: pd.Timestamp | None = None,
                  resample: str | None = None) -> pd.DataFrame: ...

    def read_funding(self, venue: str, symbol: str, start: pd.Timestamp | None = None,
                     end: pd.Timestamp | None = None) -> pd.DataFrame: ...


def known_at(event: MarketEvent) -> pd.Timestamp:
    """Instant an event becomes known: bar open time + timeframe; funding at its settlement time."""
    if isinstance(event, Bar):
        return event.ts + timeframe_delta(event.timeframe)
    return event.ts


def event_order_key(event: MarketEvent) -> tuple[pd.Timestamp, int, int, str]:
    """Sort key: (known instant, bars before funding, spot < perp < mark, symbol)."""
    if isinstance(event, Bar):
        return known_at(event), 0, _KIND_RANK[event.kind], event.symbol
    return event.ts, 1, 0, event.symbol


def _bars_from_frame(df: pd.DataFrame, venue: str, symbol: str, kind: MarketKind, timeframe: str,
                     tf: pd.Timedelta) -> tuple[np.ndarray, list[Bar]]:
    """(known-at instants as int64 ns, Bar objects) of a bar frame indexed by open time."""
    if df is None or len(df) == 0:
        return np.empty(0, dtype="int64"), []
    idx = pd.DatetimeIndex(df.index)
    if idx.tz is None:
        raise InvalidInput("bars.index", "naive timestamps", "a UTC tz-aware DatetimeIndex")
    idx = idx.tz_convert("UTC")
    o = df["open"].to_numpy(dtype="float64")
    h = df["high"].to_numpy(dtype="float64")
    lo = df["low"].to_numpy(dtype="float64")
    c = df["close"].to_numpy(dtype="float64")
    if "volume" in df.columns:
        v = np.nan_to_num(df["volume"].to_numpy(dtype="float64"), nan=0.0)
    else:
        v = np.zeros(len(df))
    bars = [Bar(ts, venue, symbol, kind, float(o[i]), float(h[i]), float(lo[i]), float(c[i]),
                float(v[i]), timeframe)
            for i, ts in enumerate(idx)]
    known = (idx + tf).asi8.astype("int64")
    return known, bars


def iter_events(source: BarSource, venue: str, spot_symbol: str | None, perp_symbol: str | None,
                timeframe: str, start: object, end: object, *, include_mark: bool = True,
                include_funding: bool = True,
                after: tuple[pd.Timestamp, int, int, str] | None = None) -> Iterator[MarketEvent]:
    """Synchronous, time-ordered market events of one spot/perp pair, for backtests.

    Parameters
    ----------
    source : BarSource
        A :class:`hedge_core.store.Store` (or anything with the same ``read_bars``/``read_funding``).
    venue : str
        Lowercase ccxt id, e.g. ``'binance'``.
    spot_symbol, perp_symbol : str or None
        ``'BTC/USDT'`` and ``'BTC/USDT:USDT'``; None skips that leg. Mark bars and funding are read
        on ``perp_symbol``.
    timeframe : str
        Bar timeframe, e.g. ``'1h'``.
    start, end : timestamp-like, UTC
        Period ``[start, end)``: bars labelled in it, funding settling in ``(start, end]``.
    after : event order key, optional
        Skip every event whose :func:`event_order_key` is ``<= after``: resume a replay exactly
        after the last event a restored simulator applied (``PaperCore.last_event_key``).

    Yields
    ------
    Bar or FundingEvent
        In :func:`event_order_key` order.
    """
    t0, t1 = utc(start), utc(end)
    if t1 <= t0:
        raise InvalidInput("end", str(t1), f"a time after start={t0}")
    tf = timeframe_delta(timeframe)
    series: list[tuple[str, MarketKind]] = []
    if spot_symbol:
        series.append((spot_symbol, MarketKind.SPOT))
    if perp_symbol:
        series.append((perp_symbol, MarketKind.PERP))
        if include_mark:
            series.append((perp_symbol, MarketKind.MARK))
    chunks_known: list[np.ndarray] = []
    chunks_rank: list[np.ndarray] = []
    events: list[MarketEvent] = []
    for symbol, kind in series:
        df = source.read_bars(venue, symbol, kind.value, timeframe, start=t0, end=t1)
        if df is not None and len(df):
            ix = pd.DatetimeIndex(df.index)
            keep = (ix >= t0) & (ix < t1)  # the store's own end semantics are not relied upon
            df = df[keep]
        known, bars = _bars_from_frame(df, venue, symbol, kind, timeframe, tf)
        chunks_known.append(known)
        chunks_rank.append(np.full(len(bars), _KIND_RANK[kind], dtype="int64"))
        events.extend(bars)
    if perp_symbol and include_funding:
        # the store reads [start, end); funding settling exactly at `end` belongs to the window
        fdf = source.read_funding(venue, perp_symbol, start=t0, end=t1 + pd.Timedelta(seconds=1))
        if fdf is not None and len(fdf):
            ix = pd.DatetimeIndex(fdf.index).tz_convert("UTC")
            keep = (ix > t0) & (ix <= t1)
            fdf, ix = fdf[keep], ix[keep]
            rates = fdf["funding_rate"].to_numpy(dtype="float64")
            hours = (fdf["interval_hours"].to_numpy(dtype="float64") if "interval_hours" in fdf.columns
                     else np.full(len(fdf), 8.0))
            fevents = [FundingEvent(ts, venue, perp_symbol, float(rates[i]), float(hours[i]))
                       for i, ts in enumerate(ix)]
            chunks_known.append(ix.asi8.astype("int64"))
            chunks_rank.append(np.full(len(fevents), 3, dtype="int64"))  # after every bar kind
            events.extend(fevents)
    if not events:
        return
    known_all = np.concatenate(chunks_known)
    rank_all = np.concatenate(chunks_rank)
    order = np.lexsort((rank_all, known_all))  # stable: primary known instant, then rank
    for i in order:
        ev = events[i]
        if after is not None and event_order_key(ev) <= after:
            continue
        yield ev


class ReplayFeed:
    """Replay a pair's spot, perp, mark bars and funding from a store, as a :class:`Feed`.

    Parameters
    ----------
    store : BarSource
        :class:`hedge_core.store.Store` or a fake with the same read API.
    venue, spot_symbol, perp_symbol, timeframe, start, end
        See :func:`iter_events`.
    speed : float or None
        None: as fast as possible (no sleeping). ``speed=1``: real time; ``speed=60``: one minute
        of data per wall-clock second. Between two consecutive known instants the feed sleeps
        ``(t_next - t_prev) / speed`` seconds.
    sleep : coroutine function
        Injectable sleep (tests pass a recorder); default :func:`asyncio.sleep`.
    after : event order key, optional
        Resume point, see :func:`iter_events`.
    """

    def __init__(self, store: BarSource, venue: str, spot_symbol: str | None, perp_symbol: str | None,
                 timeframe: str, start: object, end: object, speed: float | None = None, *,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 include_mark: bool = True, include_funding: bool = True,
                 after: tuple[pd.Timestamp, int, int, str] | None = None) -> None:
        if speed is not None and not (float(speed) > 0):
            raise InvalidInput("speed", speed, "None (as fast as possible) or a number > 0")
        self.store = store
        self.venue = venue
        self.spot_symbol = spot_symbol
        self.perp_symbol = perp_symbol
        self.timeframe = timeframe
        self.start, self.end = utc(start), utc(end)
        timeframe_delta(timeframe)  # validate early
        self.speed = None if speed is None else float(speed)
        self._sleep = sleep
        self._include_mark = include_mark
        self._include_funding = include_funding
        self._after = after
        self._closed = False
        self.now: pd.Timestamp | None = None  # known instant of the last emitted event

    def events(self) -> Iterator[MarketEvent]:
        """The same events synchronously (no clock)."""
        return iter_events(self.store, self.venue, self.spot_symbol, self.perp_symbol, self.timeframe,
                           self.start, self.end, include_mark=self._include_mark,
                           include_funding=self._include_funding, after=self._after)

    async def __aiter__(self) -> AsyncIterator[MarketEvent]:
        prev: pd.Timestamp = self.start if self._after is None else max(self.start, self._after[0])
        for ev in self.events():
            if self._closed:
                return
            t = known_at(ev)
            if self.speed is not None and prev is not None and t > prev:
                await self._sleep((t - prev).total_seconds() / self.speed)
                if self._closed:
                    return
            prev = t
            self.now = t
            yield ev

    async def aclose(self) -> None:
        self._closed = True
