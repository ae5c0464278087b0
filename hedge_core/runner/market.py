"""Market updates for the runner: the same :class:`MarketUpdate` the backtester builds, from a feed.

:class:`MarketBuilder` turns a feed's events (``Bar`` / ``FundingEvent``, known-time order) into
one ``MarketUpdate`` per instant, following the replay order of ``hedge_core.engine.replay``:
bars that ended at t become known -> the engine acts on the update at t -> funding at t settles
(the settled rate is known only after t). Analytics inputs: ``sigma_24h`` of the spot closes
(sample std of the last 24 h of log returns scaled to a day, as ``analytics.volatility.
trailing_24h_vol``), kept incrementally so one update costs microseconds.

:class:`TickerFeed` is the quick live/paper-on-live feed: it polls an adapter's tickers (spot,
perp with mark) and next funding rate (with its venue's settlement interval) every ``interval`` seconds, reads the
venue's last SETTLED rate once per settlement (:class:`hedge_core.exchange.settled_rate.SettledRate`) and yields
:class:`Tick` values.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pandas as pd

from hedge_core.engine.events import MarketUpdate
from hedge_core.errors import ExchangeError
from hedge_core.exchange.feeds import known_at, timeframe_delta
from hedge_core.exchange.settled_rate import SettledRate
from hedge_core.types import Bar, FundingEvent, MarketKind

__all__ = ["InputsTable", "MarketBuilder", "Tick", "TickerFeed", "sigma_24h_of"]


class InputsTable:
    """``MarketUpdate.analytics`` by known time, from :func:`hedge_core.analytics.inputs.market_inputs`
    (the function the backtester uses), computed once over a replay's history; ``at(t)`` is the row
    known at t (no look-ahead: rows are indexed by the instant they become known)."""

    def __init__(self, inputs: pd.DataFrame) -> None:
        self.ns = inputs.index.as_unit("ns").asi8
        self.cols = list(inputs.columns)
        self.values = inputs.to_numpy(dtype="float64")

    @classmethod
    def from_store(cls, store: Any, venue: str, spot_symbol: str, perp_symbol: str, timeframe: str,
                   start: pd.Timestamp, end: pd.Timestamp) -> InputsTable:
        """Read the history of ``[start - warm-up, end)`` and compute the table (one call)."""
        return cls.from_history(*cls.read_history(store, venue, spot_symbol, perp_symbol, timeframe, start, end))

    @staticmethod
    def read_history(store: Any, venue: str, spot_symbol: str, perp_symbol: str, timeframe: str,
                     start: pd.Timestamp, end: pd.Timestamp
                     ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, float]:
        """The store reads of :meth:`from_store`: (spot bars, perp bars, funding or None, bar seconds),
        from ``start`` minus the analytics' warm-up to ``end``."""
        from hedge_core.analytics.inputs import InputSpec

        bar = timeframe_delta(timeframe)
        warm = InputSpec().min_history_bars(bar.total_seconds()) * bar
        s0 = start - warm
        spot = store.read_bars(venue, spot_symbol, "spot", timeframe, start=s0, end=end)
        perp = store.read_bars(venue, perp_symbol, "perp", timeframe, start=s0, end=end)
        try:
            funding = store.read_funding(venue, perp_symbol, start=s0, end=end + pd.Timedelta(seconds=1))
        except Exception:  # noqa: BLE001 - no funding series: funding_apr stays NaN
            funding = None
        return spot, perp, funding, bar.total_seconds()

    @classmethod
    def from_history(cls, spot: pd.DataFrame, perp: pd.DataFrame, funding: pd.DataFrame | None,
                     bar_seconds: float) -> InputsTable:
        """The table from frames read by :meth:`read_history` (pure: safe in a worker thread)."""
        from hedge_core.analytics.inputs import market_inputs

        return cls(market_inputs(spot, perp, funding=funding, bar_seconds=bar_seconds))

    def at(self, t: pd.Timestamp) -> MappingProxyType:
        import numpy as np

        i = int(np.searchsorted(self.ns, t.value, side="right")) - 1
        if i < 0:
            return MappingProxyType({})
        row = self.values[i]
        return MappingProxyType({c: float(v) for c, v in zip(self.cols, row) if math.isfinite(v)})


def sigma_24h_of(closes: list[float] | deque[float], bar_seconds: float) -> float:
    """Daily sigma from the closes of the last 24 h (NaN below 75 % coverage)."""
    n = len(closes)
    per_day = 86_400.0 / bar_seconds
    if n < 3 or (n - 1) < 0.75 * per_day:
        return math.nan
    rets = [math.log(closes[i] / closes[i - 1]) for i in range(1, n)]
    m = sum(rets) / len(rets)
    var = sum((r - m) ** 2 for r in rets) / (len(rets) - 1)
    return math.sqrt(var * per_day)


class MarketBuilder:
    """Accumulate bars of one instant; emit the ``MarketUpdate`` when the instant is complete."""

    def __init__(self, spot_symbol: str, perp_symbol: str, timeframe: str = "1h", interval_hours: float = 8.0,
                 first_venue: str | None = None) -> None:
        self.spot_symbol, self.perp_symbol = spot_symbol, perp_symbol
        # two perp legs on live bars (exchange.pair_feed.PairBarsFeed): the bars of THIS venue are the first
        # leg's (perp close -> spot price, mark close -> spot_mark) and its settlements are not the market's rate
        self.first_venue = first_venue
        self.spot_mark = math.nan
        self.tf = timeframe_delta(timeframe)
        self.bar_s = self.tf.total_seconds()
        self.window = max(int(round(86_400 / self.bar_s)) + 1, 3)
        self.interval_hours = interval_hours
        self.timeframe = timeframe
        self.instant: pd.Timestamp | None = None  # known-time of the bars being gathered
        self.dirty = False
        self.spot = self.perp = self.mark = math.nan
        self.spot_vol = self.perp_vol = 0.0
        # the market's last settled rate. A perp pair (first_venue set): the SECOND venue's, unknown (NaN) until
        # it settles, as the first leg's is, so the pair's entry rule (both rates known) waits for it; a spot/perp
        # pair keeps 0.0 until its venue's first settlement
        self.rate = math.nan if first_venue is not None else 0.0
        self.closes: deque[float] = deque(maxlen=self.window)
        self._memo: tuple[pd.Timestamp | None, pd.Timestamp | None] = (None, None)

    def known(self, bar: Bar) -> pd.Timestamp:
        """Known instant of a bar of this builder's timeframe (cheaper than ``feeds.known_at``)."""
        if bar.timeframe != self.timeframe:
            return known_at(bar)
        ts0, k = self._memo
        if bar.ts != ts0:  # the legs of one instant share their open time: add once
            k = bar.ts + self.tf
            self._memo = (bar.ts, k)
        return k

    def add_bar(self, bar: Bar) -> None:
        self.instant = self.known(bar)
        self.dirty = True
        if self.first_venue is not None and bar.venue == self.first_venue:
            if bar.kind is MarketKind.PERP and bar.symbol == self.perp_symbol:
                self.spot, self.spot_vol = bar.close, bar.volume
                self.closes.append(bar.close)
            elif bar.kind is MarketKind.MARK and bar.symbol == self.perp_symbol:
                self.spot_mark = bar.close
            return
        if bar.kind is MarketKind.SPOT and bar.symbol == self.spot_symbol:
            self.spot, self.spot_vol = bar.close, bar.volume
            self.closes.append(bar.close)
        elif bar.kind is MarketKind.PERP and bar.symbol == self.perp_symbol:
            self.perp, self.perp_vol = bar.close, bar.volume
        elif bar.kind is MarketKind.MARK and bar.symbol == self.perp_symbol:
            self.mark = bar.close

    def settle(self, ev: FundingEvent) -> None:
        if math.isnan(ev.rate):  # a perp pair's added settlement instant (exchange.pair_feed): not this venue's
            return
        if self.first_venue is not None and ev.venue == self.first_venue:  # the first leg's venue: its own rate
            return
        self.rate = ev.rate  # known only after the settlement: used from the next update on
        self.interval_hours = ev.interval_hours

    def take(self, inputs: InputsTable | None = None) -> MarketUpdate | None:
        """The update of the gathered instant (None when nothing new or a leg never priced).

        ``inputs``: analytics from :class:`InputsTable` (replay); without it only ``sigma_24h``
        is computed, incrementally, from the closes seen."""
        if not self.dirty or self.instant is None:
            return None
        self.dirty = False
        if not (self.spot > 0 and self.perp > 0):
            return None
        t = self.instant
        ih = self.interval_hours
        step = int(ih * 3_600_000_000_000)
        nxt = pd.Timestamp((t.value // step + 1) * step, tz="UTC")  # next settlement on the interval grid
        if inputs is not None:
            an = inputs.at(t)
        else:
            sig = sigma_24h_of(self.closes, self.bar_s)
            an = MappingProxyType({"sigma_24h": sig}) if not math.isnan(sig) else MappingProxyType({})
        return MarketUpdate(ts=t, spot=self.spot, perp=self.perp, mark=self.mark, spot_volume=self.spot_vol,
                            perp_volume=self.perp_vol, funding_rate=self.rate, next_funding_ts=nxt,
                            funding_interval_hours=ih, analytics=an,
                            **({"spot_mark": self.spot_mark} if self.first_venue is not None else {}))


@dataclass(frozen=True, slots=True)
class Tick:
    """A polled top of book: prices now (quote per base), the venue's next funding rate (fraction per
    ``interval_hours``, the perp venue's own settlement interval as its funding-rate answer gives it), settling at
    ``next_funding_ts``, and ``last_rate``, the rate the venue last SETTLED (fraction per interval; + longs pay
    shorts; NaN while unknown)."""

    ts: pd.Timestamp
    spot: float
    perp: float
    mark: float
    next_funding_rate: float
    next_funding_ts: pd.Timestamp | None
    price_time: pd.Timestamp | None = None  # venue time of the prices: the older ticker timestamp
    interval_hours: float = 8.0
    last_rate: float = math.nan

    def market_update(self) -> MarketUpdate:
        """The engine's update: ``funding_rate`` the last settled rate, ``next_funding_rate`` the current one."""
        return MarketUpdate(ts=self.ts, spot=self.spot, perp=self.perp, mark=self.mark, funding_rate=self.last_rate,
                            next_funding_rate=self.next_funding_rate, next_funding_ts=self.next_funding_ts,
                            funding_interval_hours=self.interval_hours)


class TickerFeed:
    """Poll tickers of a spot/perp pair (and the perp's next funding rate) every ``interval`` s.

    The perp's last SETTLED rate (``Tick.last_rate``) is read through the same adapter's funding history once per
    settlement (:attr:`settled`, :class:`~hedge_core.exchange.settled_rate.SettledRate`; a perp pair's adapter
    answers with its second venue's, the market's rate).

    ``price_time`` is the venue's time of the last tick's prices (the older of the two tickers'
    timestamps), which :mod:`hedge_core.runner.freshness` ages against the wall clock.

    Errors from the venue are skipped (the next poll tries again); ``aclose()`` stops it.
    """

    def __init__(self, adapter: Any, spot_symbol: str, perp_symbol: str, *, interval: float = 1.0,
                 now: Callable[[], pd.Timestamp] = lambda: pd.Timestamp.now(tz="UTC"),
                 sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        self.adapter, self.spot_symbol, self.perp_symbol = adapter, spot_symbol, perp_symbol
        self.interval = float(interval)
        self._now, self._sleep = now, sleep
        self._closed = False
        self.price_time: pd.Timestamp | None = None  # venue time of the last yielded tick (runner.freshness)
        self.interval_hours = 8.0  # the perp venue's funding interval, hours (its last funding-rate answer's)
        self.settled = SettledRate(adapter, perp_symbol)  # the venue's last settled rate, read once per settlement

    async def __aiter__(self) -> AsyncIterator[Tick]:
        while not self._closed:
            try:
                s = await self.adapter.fetch_ticker(self.spot_symbol)
                p = await self.adapter.fetch_ticker(self.perp_symbol)
                try:
                    fr = await self.adapter.fetch_funding_rate(self.perp_symbol)
                    rate, fts = fr.rate, fr.ts
                    if fr.interval_hours and fr.interval_hours > 0:  # the venue's own interval (a 4 h perp's
                        self.interval_hours = float(fr.interval_hours)  # rate is not annualised as per 8 h)
                except ExchangeError:
                    rate, fts = math.nan, None
                mark = p.mark if p.mark is not None else math.nan
                stamps = [t for t in (s.ts, p.ts) if t is not None and not pd.isna(t)]
                self.price_time = min(stamps) if len(stamps) == 2 else None  # a missing stamp is never fresh
                now = self._now()
                last = await self.settled.read(now, interval_hours=self.interval_hours, next_ts=fts)
                first = getattr(self.adapter, "read_first_settled", None)
                if callable(first):  # a perp pair: its first venue's own settled rate too (routed_pair_live)
                    await first(self.perp_symbol, now)
                yield Tick(now, s.last or s.mid, p.last or p.mid, mark, rate, fts, self.price_time,
                           self.interval_hours, last)
            except ExchangeError:
                pass
            await self._sleep(self.interval)

    async def aclose(self) -> None:
        self._closed = True
