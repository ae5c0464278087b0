"""Market history for backtests: frames from the store (or the demo generator) and the replay timeline.

:class:`Market` holds the raw bar/funding frames of one spot/perp pair. :func:`build_timeline`
turns it into flat numpy arrays, one row per replay INSTANT t (a bar end time or a funding
time), in the project's replay order: bars that ended at t become known -> the engine acts ->
funding at t settles. Both the event-driven backtester and the fast path read the same
:class:`Timeline`, so they see exactly the same prices, volumes, rates and analytics.

Known-time rules: the spot/perp price at t is the close of the last bar that ENDED at or before
t (gaps keep the last close); the mark is the last known mark close (perp close until the first
mark bar); the ``funding_rate`` shown to the strategy at t is the last rate SETTLED BEFORE t
(the one settling at t is applied after the engine acted); analytics rows are the
:func:`hedge_core.analytics.inputs.market_inputs` row known at t.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hedge_core.errors import InvalidInput
from hedge_core.analytics.inputs import InputSpec, market_inputs
from hedge_core.types import timeframe_delta

__all__ = ["DEFAULT_WARMUP", "Market", "Timeline", "build_timeline", "load_market", "market_from_frames", "utc"]

DEFAULT_WARMUP = pd.Timedelta(days=3)


def utc(x: object) -> pd.Timestamp:
    """A UTC timestamp; a naive value (e.g. the CLI's ``2023-01-01``) is read AS UTC."""
    try:
        t = pd.Timestamp(x)
    except (ValueError, TypeError):
        raise InvalidInput("timestamp", x, "an ISO-8601 date/time (UTC)") from None
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


@dataclass(frozen=True)
class Market:
    """Bars (open-time index, open/high/low/close[/volume]) and funding of one spot/perp pair.

    ``hedge`` is the hedge asset's perp bars for a cross hedge (spot of asset A hedged with the
    perp of asset B); then ``perp``/``mark``/``funding`` are asset B's.
    """

    venue: str
    spot_symbol: str
    perp_symbol: str
    timeframe: str
    spot: pd.DataFrame
    perp: pd.DataFrame
    mark: pd.DataFrame | None = None
    funding: pd.DataFrame | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def bar(self) -> pd.Timedelta:
        return timeframe_delta(self.timeframe)

    @property
    def first(self) -> pd.Timestamp:
        return min(self.spot.index[0], self.perp.index[0])

    @property
    def last(self) -> pd.Timestamp:
        """The last instant with data (last bar end)."""
        return max(self.spot.index[-1], self.perp.index[-1]) + self.bar

    def window(self, start: object | None, end: object | None, warmup: pd.Timedelta = DEFAULT_WARMUP) -> Market:
        """The market cut to bars labelled in ``[start - warmup, end)`` (funding up to ``end``)."""
        t0 = None if start is None else utc(start) - warmup
        t1 = None if end is None else utc(end)

        def cut(df: pd.DataFrame | None, inclusive_end: bool = False) -> pd.DataFrame | None:
            if df is None:
                return None
            m = np.ones(len(df), dtype=bool)
            if t0 is not None:
                m &= df.index >= t0
            if t1 is not None:
                m &= (df.index <= t1) if inclusive_end else (df.index < t1)
            return df[m]
        return Market(self.venue, self.spot_symbol, self.perp_symbol, self.timeframe, cut(self.spot), cut(self.perp),
                      cut(self.mark), cut(self.funding, True), dict(self.meta))


def load_market(store: Any, *, venue: str = "binance", spot_symbol: str = "BTC/USDT",
                perp_symbol: str = "BTC/USDT:USDT", timeframe: str = "1h", start: object | None = None,
                end: object | None = None, warmup: pd.Timedelta = DEFAULT_WARMUP) -> Market:
    """Read one pair from a :class:`hedge_core.store.Store` for ``[start - warmup, end)``.

    ``meta['instruments']`` holds the pair's rows of the store's instruments table, when it has any.
    Raises InvalidInput naming the missing series when the store holds no spot or perp bars.
    """
    t0 = None if start is None else utc(start) - warmup
    t1 = None if end is None else utc(end)

    def read(kind: str, symbol: str) -> pd.DataFrame | None:
        try:
            if kind == "funding":
                return store.read_funding(venue, symbol, start=t0,
                                          end=None if t1 is None else t1 + pd.Timedelta(seconds=1))
            return store.read_bars(venue, symbol, kind, timeframe, start=t0, end=t1)
        except LookupError as exc:  # store.MissingSeries
            if kind in ("spot", "perp"):
                raise InvalidInput(f"{kind} bars", f"{venue} {symbol} {timeframe}",
                                   f"a series in the store ({exc})") from None
            return None
    spot = read("spot", spot_symbol)
    perp = read("perp", perp_symbol)
    for name, df, sym in (("spot", spot, spot_symbol), ("perp", perp, perp_symbol)):
        if df is None or len(df) < 3:
            raise InvalidInput(f"{name} bars", f"{venue} {sym} {timeframe}",
                               "a series in the store with at least 3 bars in the window (see `hedge data`)")
    mark = read("mark", perp_symbol)
    fund = read("funding", perp_symbol)
    # the pair's instruments as the store holds them (read from the venue): a backtest's paper venue
    # takes them over the committed defaults (event.run_backtest); none stored = the snapshot serves
    stored = store.read_instruments(venue, symbols=[spot_symbol, perp_symbol]) if hasattr(store, "read_instruments") else []
    return Market(venue, spot_symbol, perp_symbol, timeframe, spot, perp,
                  mark if mark is not None and len(mark) else None,
                  fund if fund is not None and len(fund) else None,
                  {"instruments": tuple(stored)} if stored else {})


def market_from_frames(frames: dict[Any, pd.DataFrame], *, asset: str = "BTC", quote: str = "USDT",
                       venue: str | None = None, timeframe: str | None = None) -> Market:
    """A Market from ``{SeriesKey: frame}`` (e.g. :func:`hedge_core.data.demo.generate_demo_market`)."""
    spot_sym, perp_sym = f"{asset}/{quote}", f"{asset}/{quote}:{quote}"
    by: dict[tuple[str, str], tuple[Any, pd.DataFrame]] = {}
    for k, v in frames.items():
        by[(k.symbol, k.kind)] = (k, v)
    try:
        ks, spot = by[(spot_sym, "spot")]
        _, perp = by[(perp_sym, "perp")]
    except KeyError:
        raise InvalidInput("frames", sorted(by), f"spot {spot_sym} and perp {perp_sym} frames") from None
    mark = by.get((perp_sym, "mark"), (None, None))[1]
    fund = by.get((perp_sym, "funding"), (None, None))[1]
    return Market(venue or ks.venue, spot_sym, perp_sym, timeframe or ks.timeframe, spot, perp, mark, fund)


@dataclass(frozen=True)
class Timeline:
    """Flat per-instant arrays (length n) shared by the event-driven and fast paths.

    Prices: ``spot``/``perp`` last known closes; ``mark`` last known mark close (NaN before the
    first mark; the engine then uses the perp price); ``*_vol`` the last bar's base volume.
    ``has_*`` says a bar of that series ended at the instant (its OHLCV is in ``*_bar``, shape
    (n, 5)). ``fund_rate`` is the rate settling at the instant (NaN = none; only within the
    span of the price bars, see :func:`build_timeline`), ``last_rate`` the
    last rate settled BEFORE it, ``next_fund_ns`` the next scheduled settlement.
    ``inputs`` (n, k) are the analytics columns ``input_names`` known at the instant.
    """

    venue: str
    spot_symbol: str
    perp_symbol: str
    timeframe: str
    ts: np.ndarray  # int64 ns UTC
    spot: np.ndarray
    perp: np.ndarray
    mark: np.ndarray
    spot_vol: np.ndarray
    perp_vol: np.ndarray
    has_spot: np.ndarray
    has_perp: np.ndarray
    has_mark: np.ndarray
    spot_bar: np.ndarray
    perp_bar: np.ndarray
    mark_bar: np.ndarray
    fund_rate: np.ndarray
    fund_hours: np.ndarray
    last_rate: np.ndarray
    next_fund_ns: np.ndarray
    interval_hours: float
    inputs: np.ndarray
    input_names: tuple[str, ...]
    priced: np.ndarray  # both spot and perp prices known: a MarketUpdate is sent

    @property
    def n(self) -> int:
        return len(self.ts)

    @property
    def index(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(np.asarray(self.ts, dtype="int64").view("datetime64[ns]"), name="ts").tz_localize("UTC")

    def column(self, name: str) -> np.ndarray:
        return self.inputs[:, self.input_names.index(name)]

    @property
    def first_spot_price(self) -> float:
        """The first known spot price of the window, quote per base (sizes wallets and capital)."""
        return self.cached("first_spot_price", lambda: float(self.spot[np.argmax(~np.isnan(self.spot))]))

    def cached(self, key: object, build: Any) -> Any:
        """``build()`` once per timeline and ``key`` (values derived from these arrays alone, e.g. by
        the fast path, reused across a sweep's runs). The arrays are never modified in place, so
        the cache never goes stale; it travels with the timeline when pickled."""
        cache = self.__dict__.setdefault("_derived", {})  # frozen dataclass: __dict__ stays writable
        if key not in cache:
            cache[key] = build()
        return cache[key]


def _ns(idx: pd.DatetimeIndex) -> np.ndarray:
    return pd.DatetimeIndex(idx).as_unit("ns").asi8


def _bars_at(df: pd.DataFrame | None, ends: np.ndarray, bar_ns: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(ends)
    out = np.full((n, 5), np.nan)
    has = np.zeros(n, dtype=bool)
    if df is None or not len(df):
        return out, has
    e = _ns(df.index) + bar_ns
    pos = np.searchsorted(ends, e)
    ok = (pos < n) & (ends[np.clip(pos, 0, n - 1)] == e)
    cols = [c for c in ("open", "high", "low", "close") if c in df.columns]
    vals = df[cols].to_numpy(dtype="float64")
    vol = df["volume"].to_numpy(dtype="float64") if "volume" in df.columns else np.zeros(len(df))
    vol = np.where(np.isnan(vol), 0.0, vol)
    out[pos[ok], :4] = vals[ok]
    out[pos[ok], 4] = vol[ok]
    has[pos[ok]] = True
    return out, has


def _ffill(v: np.ndarray, has: np.ndarray) -> np.ndarray:
    idx = np.where(has, np.arange(len(v)), -1)
    np.maximum.accumulate(idx, out=idx)
    return np.where(idx >= 0, v[np.clip(idx, 0, None)], np.nan)


def timeline_of(market: "Market | Timeline", *, start: object | None, end: object | None,
                warmup: pd.Timedelta, spec: Any) -> "Timeline":
    """The replay timeline of both backtest paths: ``market`` itself when prebuilt, else built over
    ``[start, end]`` with ``start`` defaulting to the first bar plus ``warmup``."""
    if isinstance(market, Timeline):
        return market
    if start is None:
        start = market.first + warmup
    return build_timeline(market, start=start, end=end, spec=spec)


def build_timeline(market: Market, *, start: object | None = None, end: object | None = None,
                   spec: InputSpec | None = None, inputs: pd.DataFrame | None = None,
                   extra_instants: np.ndarray | None = None) -> Timeline:
    """Replay instants in ``[start, end]`` with everything known at each of them.

    The timeline rule: instants are bar end times and funding times, cut to the span of the
    price bars (from the first spot/perp bar's end to the last one's): no funding settles before
    the first price bar or after the last one, whatever ``end`` says. Both backtest paths and
    the sweeps read this one timeline.

    Bars before ``start`` (the warm-up) feed the analytics and the first known prices but are
    not replayed. ``inputs`` may be passed precomputed (sweeps reuse them across runs).
    ``extra_instants`` (int64 ns UTC, optional): more instants to replay (another venue's settlement
    times: a pair of perp venues replays the UNION of both venues' settlements,
    :func:`hedge_core.backtest.xvenue_pair.pair_timelines`); no bar ends and no funding settles there
    unless this market's own series has one. None (every single-venue path): nothing added.
    """
    bar = market.bar
    bar_ns = int(bar.value)
    t0 = _ns(pd.DatetimeIndex([utc(start)]))[0] if start is not None else None
    t1 = _ns(pd.DatetimeIndex([utc(end)]))[0] if end is not None else None
    ends = np.union1d(_ns(market.spot.index) + bar_ns, _ns(market.perp.index) + bar_ns)
    fund = market.funding
    if fund is not None and len(fund):
        ends = np.union1d(ends, _ns(fund.index))
    if extra_instants is not None and len(extra_instants):
        ends = np.union1d(ends, np.asarray(extra_instants, dtype="int64"))
    sb, hs = _bars_at(market.spot, ends, bar_ns)
    pb, hp = _bars_at(market.perp, ends, bar_ns)
    mb, hm = _bars_at(market.mark, ends, bar_ns)
    spot = _ffill(sb[:, 3], hs)
    perp = _ffill(pb[:, 3], hp)
    mark = _ffill(mb[:, 3], hm)
    svol = _ffill(sb[:, 4], hs)
    pvol = _ffill(pb[:, 4], hp)
    svol = np.where(np.isnan(svol), 0.0, svol)
    pvol = np.where(np.isnan(pvol), 0.0, pvol)
    n = len(ends)
    frate = np.full(n, np.nan)
    fhours = np.full(n, np.nan)
    interval = 8.0
    if fund is not None and len(fund):
        fpos = np.searchsorted(ends, _ns(fund.index))
        frate[fpos] = fund["funding_rate"].to_numpy(dtype="float64")
        hrs = fund["interval_hours"].to_numpy(dtype="float64") if "interval_hours" in fund.columns \
            else np.full(len(fund), 8.0)
        fhours[fpos] = hrs
        interval = float(np.median(hrs))
    has_f = ~np.isnan(frate)
    # rate settled strictly before each instant
    settled = _ffill(frate, has_f)
    last_rate = np.concatenate([[np.nan], settled[:-1]])
    last_rate = np.where(np.isnan(last_rate), 0.0, last_rate)
    step = int(interval * 3600e9)
    next_f = (ends // step) * step + step
    if inputs is None:
        inputs = market_inputs(market.spot, market.perp, mark=market.mark, funding=market.funding,
                               spec=spec if spec is not None else InputSpec(),
                               bar_seconds=bar.total_seconds())
    names = tuple(inputs.columns)
    ipos = np.searchsorted(_ns(inputs.index), ends, side="right") - 1
    ivals = inputs.to_numpy(dtype="float64")
    inp = np.where((ipos >= 0)[:, None], ivals[np.clip(ipos, 0, None)], np.nan)
    # The replay runs from the first to the last price bar END: a funding time outside that span
    # has no price known after it (past the data a settlement would be booked at a frozen mark,
    # and the run's days, the APR denominator, would run on past the data).
    first_end = min(_ns(market.spot.index).min(), _ns(market.perp.index).min()) + bar_ns
    last_end = max(_ns(market.spot.index).max(), _ns(market.perp.index).max()) + bar_ns
    keep = (ends >= first_end) & (ends <= last_end)
    if t0 is not None:
        keep &= ends >= t0
    if t1 is not None:
        keep &= ends <= t1
    if not keep.any():
        raise InvalidInput("start/end", (str(start), str(end)),
                           f"a window overlapping the data ({market.first} .. {market.last})")
    priced = ~np.isnan(spot) & ~np.isnan(perp) & (hs | hp)
    k = keep
    return Timeline(market.venue, market.spot_symbol, market.perp_symbol, market.timeframe, ends[k], spot[k], perp[k],
                    mark[k], svol[k], pvol[k], hs[k], hp[k], hm[k], sb[k], pb[k], mb[k], frate[k], fhours[k],
                    last_rate[k], next_f[k], interval, np.ascontiguousarray(inp[k]), names, priced[k])
