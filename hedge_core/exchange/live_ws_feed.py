"""Live market data from ccxt.pro websockets, behind the :class:`~hedge_core.exchange.feeds.Feed` protocol.

:class:`LiveWebsocketFeed` is :class:`~hedge_core.exchange.live_feed.LivePollingFeed` with its bar
source swapped for spot and perp trade bars: they come from ``watch_ohlcv`` (Binance kline
streams), everything else is the polling feed's code, so both feeds emit the same events in the
same order as the store replay (:func:`~hedge_core.exchange.feeds.iter_events`):

- closing rule (one copy, :meth:`LivePollingFeed._accept_bars`): a bar is emitted once the clock
  says it closed (``ts + timeframe <= now``) AND a newer bar of the same series arrived on the
  stream, which shows the venue sent the old one's final update (ccxt drops Binance's ``x``
  "closed" flag, so the successor is the proof);
- ordering rule (one copy, :meth:`LivePollingFeed._release`): an instant is held ``settle_delay``
  seconds, then its events come out bars before funding, spot < perp < mark;
- REST stays in three places, asked at most once per ``poll_interval``: mark-price bars (ccxt.pro's
  ``watch_mark_price`` streams mark TICKS, not the venue's mark klines the store replays, and
  the ``markPriceKline`` channel shares ccxt's cache key ``ohlcv::<symbol>::<tf>`` with the perp's
  trade klines, so both cannot be watched on one exchange object), settled funding (no stream
  carries settled rates), and a backfill of spot/perp bars from ``start`` up to the first bar the
  stream delivered (a stream starts at "now") or while a stream is failing.

:func:`live_feed` returns this feed when the venue's ccxt.pro class has ``watchOHLCV``, else
the polling feed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pandas as pd

from hedge_core.errors import InvalidInput
from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter, _ts
from hedge_core.exchange.live_feed import LivePollingFeed, _now
from hedge_core.types import Bar, MarketKind

__all__ = ["LiveWebsocketFeed", "live_feed", "pro_exchange_for"]

log = logging.getLogger(__name__)


def pro_exchange_for(adapter: CcxtLiveAdapter) -> Any | None:
    """A ccxt.pro exchange for the adapter's venue with the same options and aiohttp session
    (public streams need no keys), or None when ccxt.pro has no class for the venue.

    Nothing is opened until it is used; the caller closes it (``await ex.close()``).
    """
    import ccxt.pro

    cls = getattr(ccxt.pro, adapter.config.ccxt_id, None)
    if cls is None:
        return None
    cfg: dict[str, Any] = {"enableRateLimit": adapter.rate_limited,
                           "timeout": int(adapter.exchange.timeout),
                           "options": dict(adapter.config.options)}
    if not getattr(adapter.exchange, "own_session", True):  # a session passed in (tests: the redirect)
        cfg["session"] = adapter.exchange.session
    return cls(cfg)


class LiveWebsocketFeed(LivePollingFeed):
    """Spot/perp bars from ccxt.pro ``watch_ohlcv``; mark bars and funding polled (a :class:`Feed`).

    Parameters
    ----------
    adapter : CcxtLiveAdapter
        REST side: mark bars, funding, backfill (see :class:`LivePollingFeed`).
    exchange : ccxt.pro exchange
        Must offer ``watchOHLCV``; e.g. :func:`pro_exchange_for`.
    owns_exchange : bool
        Close ``exchange`` in :meth:`aclose` (True when :func:`live_feed` made it).
    reconnect_delay : float
        Seconds before re-watching a stream that raised (ccxt.pro reconnects on the next watch);
        while a stream is failing its bars are polled.
    Others : as :class:`LivePollingFeed`. ``poll_interval`` is the REST period and the longest
        wait without a stream update.
    """

    def __init__(self, adapter: CcxtLiveAdapter, exchange: Any, spot_symbol: str | None,
                 perp_symbol: str | None, timeframe: str = "1h", *, start: object,
                 poll_interval: float = 5.0, settle_delay: float = 10.0, include_mark: bool = True,
                 include_funding: bool = True, owns_exchange: bool = False, reconnect_delay: float = 1.0,
                 now: Callable[[], pd.Timestamp] = _now,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        super().__init__(adapter, spot_symbol, perp_symbol, timeframe, start=start,
                         poll_interval=poll_interval, settle_delay=settle_delay, include_mark=include_mark,
                         include_funding=include_funding, now=now, sleep=sleep)
        if not (getattr(exchange, "has", None) or {}).get("watchOHLCV"):
            raise InvalidInput("exchange", type(exchange).__name__, "a ccxt.pro exchange with has['watchOHLCV']")
        if reconnect_delay < 0:
            raise InvalidInput("reconnect_delay", reconnect_delay, ">= 0 seconds")
        self.exchange = exchange
        self.owns_exchange = owns_exchange
        self.reconnect_delay = float(reconnect_delay)
        self.streamed = [s for s in self.series if s[1] is not MarketKind.MARK]
        self._rows: dict[tuple[str, MarketKind], dict[int, list[Any]]] = {s: {} for s in self.streamed}
        self._healthy: dict[tuple[str, MarketKind], bool] = {s: False for s in self.streamed}
        self.stream_errors = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: asyncio.Event | None = None
        self._last_rest: pd.Timestamp | None = None
        self._exchange_closed = False

    # -- streams ------------------------------------------------------------------------------
    def start_streams(self) -> None:
        """Subscribe the streams now (the first :meth:`poll` or wait does it otherwise). Starting
        them before the first poll keeps the first round from emitting REST-only instants that the
        streams would then deliver late."""
        self._start_streams()

    def _start_streams(self) -> None:
        if self._tasks or self._closed:
            return
        self._wake = asyncio.Event()
        self._tasks = [asyncio.ensure_future(self._watch(sym, kind)) for sym, kind in self.streamed]

    async def _watch(self, symbol: str, kind: MarketKind) -> None:
        key = (symbol, kind)
        while not self._closed:
            try:
                rows = await self.exchange.watch_ohlcv(symbol, self.timeframe)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure must fall back to polling, not stall the series
                if self._closed:
                    return
                self.stream_errors += 1
                self._healthy[key] = False
                log.warning("ws feed: %s %s stream failed (%s); polling it until it recovers",
                            kind.value, symbol, type(exc).__name__)
                await asyncio.sleep(self.reconnect_delay)
                continue
            self._healthy[key] = True
            for r in rows:  # the updates since the last call; the newest wins (copied: ccxt edits its rows in place)
                self._rows[key][int(r[0])] = list(r)
            assert self._wake is not None
            self._wake.set()

    # -- hooks of LivePollingFeed --------------------------------------------------------------
    def _rest_round(self, now: pd.Timestamp) -> bool:
        if self._last_rest is None or (now - self._last_rest).total_seconds() >= self.poll_interval:
            self._last_rest = now
            return True
        return False

    async def _series_bars(self, symbol: str, kind: MarketKind, rest: bool) -> tuple[list[Bar], pd.Timestamp | None]:
        key = (symbol, kind)
        if kind is MarketKind.MARK:
            return await super()._series_bars(symbol, kind, rest)
        self._start_streams()
        nxt = self._next_label[key]
        rows = self._rows[key]
        for t in [t for t in rows if _ts(t) < nxt]:
            del rows[t]  # emitted or before start
        if not self._healthy[key] or not rows:
            return await super()._series_bars(symbol, kind, rest)  # the polling rules alone
        first, newest = min(rows), max(rows)
        streamed = [self._bar(symbol, kind, rows[t]) for t in sorted(rows)]
        confirmed_before = _ts(newest)
        if _ts(first) <= nxt:
            return streamed, confirmed_before
        # backfill [next label, first streamed bar) over REST; those bars are final once the clock says so.
        # Not a REST round: wait for one (emitting the streamed bars now would skip the backfill).
        if not rest:
            return [], None
        backfill, _ = await super()._series_bars(symbol, kind, rest)
        first_ts = _ts(first)
        return [b for b in backfill if b.ts < first_ts] + streamed, confirmed_before

    def _bar(self, symbol: str, kind: MarketKind, r: list[Any]) -> Bar:
        return Bar(ts=_ts(r[0]), venue=self.venue, symbol=symbol, kind=kind,
                   open=float(r[1]), high=float(r[2]), low=float(r[3]), close=float(r[4]),
                   volume=float(r[5] or 0.0), timeframe=self.timeframe)

    async def _idle(self) -> None:
        """Until a stream update arrives or ``poll_interval`` passes."""
        self._start_streams()
        assert self._wake is not None
        if self._wake.is_set():
            self._wake.clear()
            return
        woke = asyncio.ensure_future(self._wake.wait())
        nap = asyncio.ensure_future(self._sleep(self.poll_interval))
        try:
            await asyncio.wait({woke, nap}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in (woke, nap):
                if not f.done():
                    f.cancel()
            await asyncio.gather(woke, nap, return_exceptions=True)
        self._wake.clear()

    async def aclose(self) -> None:
        """Stop the streams; close the ccxt.pro exchange if this feed made it (idempotent).
        The REST adapter belongs to the caller and stays open."""
        self._closed = True
        if self._wake is not None:
            self._wake.set()
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.owns_exchange and not self._exchange_closed:
            self._exchange_closed = True
            await self.exchange.close()


def live_feed(adapter: CcxtLiveAdapter, spot_symbol: str | None, perp_symbol: str | None,
              timeframe: str = "1h", *, start: object, exchange: Any | None = None,
              websockets: bool = True, **kw: Any) -> LivePollingFeed:
    """The live feed for a pair: websockets when ccxt.pro offers ``watchOHLCV`` for the venue,
    else REST polling. Both yield the same events in the same order.

    Parameters
    ----------
    adapter : CcxtLiveAdapter
        The REST side (a wrapper with ``market_data`` is unwrapped, as in :class:`LivePollingFeed`).
    exchange : ccxt.pro exchange, optional
        Use this one (the caller closes it); default: :func:`pro_exchange_for` the adapter, closed
        by the feed's ``aclose()``.
    websockets : bool
        False forces polling.
    **kw
        Passed to the feed (``poll_interval``, ``settle_delay``, ``now``, ``sleep``, ...).
    """
    if websockets:
        rest = adapter if hasattr(adapter, "fetch_bars") else getattr(adapter, "market_data", adapter)
        owns = exchange is None
        ex = pro_exchange_for(rest) if exchange is None and hasattr(rest, "config") else exchange
        try:
            if ex is not None and (getattr(ex, "has", None) or {}).get("watchOHLCV"):
                return LiveWebsocketFeed(rest, ex, spot_symbol, perp_symbol, timeframe, start=start,
                                         owns_exchange=owns, **kw)
        except BaseException:
            _discard(ex if owns else None)
            raise
        _discard(ex if owns else None)
    kw.pop("reconnect_delay", None)
    return LivePollingFeed(adapter, spot_symbol, perp_symbol, timeframe, start=start, **kw)


def _discard(ex: Any | None) -> None:
    """Drop a ccxt.pro object this module made but never used: it opened no socket; it only holds
    the adapter's session (owned by the adapter's caller), which ccxt would otherwise report as
    unreleased when the object is collected."""
    if ex is not None and not getattr(ex, "clients", None):
        ex.session = None
