"""What the panel and notebooks show of a spot/perp pair: aligned prices, basis and funding.

Reads through the store (SQL stays there) and downsamples long windows in SQL so a chart never
carries more than ``max_points`` bars.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hedge_core.store import MissingSeries, Store, timeframe_seconds
from hedge_core.types import perp_of

_LADDER = ("1m", "5m", "15m", "1h", "4h", "1d", "1w")
SYNTHETIC_VENUES = frozenset({"demo"})


def is_synthetic(venue: str) -> bool:
    """Data from the demo generator is labelled synthetic wherever it is shown."""
    return venue in SYNTHETIC_VENUES


def chart_timeframe(timeframe: str, start: pd.Timestamp, end: pd.Timestamp, max_points: int) -> str:
    """The finest timeframe (a multiple of ``timeframe``) giving at most ``max_points`` bars in [start, end)."""
    base = timeframe_seconds(timeframe)
    span = max((end - start).total_seconds(), base)
    for tf in _LADDER:
        s = timeframe_seconds(tf)
        if s >= base and s % base == 0 and span / s <= max_points:
            return tf
    return _LADDER[-1]


@dataclass(frozen=True)
class PairView:
    """Aligned pair data. ``frame`` index: UTC bar open time; columns spot, perp, mark (close, quote/base),
    basis_bps = (perp - spot) / spot * 1e4 (+ when the perp trades above spot).
    ``funding`` index: funding time; columns funding_rate (per interval, + longs pay), apr (fraction/yr)."""

    venue: str
    spot_symbol: str
    perp_symbol: str
    timeframe: str
    frame: pd.DataFrame
    funding: pd.DataFrame
    synthetic: bool


def pair_view(store: Store, venue: str, spot_symbol: str, start: pd.Timestamp, end: pd.Timestamp, *,
              timeframe: str = "1h", max_points: int = 2000) -> PairView:
    """Spot, perp and mark closes, basis and funding of one pair in ``[start, end)``, downsampled in SQL."""
    perp_symbol = perp_of(spot_symbol)
    tf = chart_timeframe(timeframe, start, end, max_points)
    resample = None if tf == timeframe else tf
    cols = {}
    for name, symbol, kind in (("spot", spot_symbol, "spot"), ("perp", perp_symbol, "perp"),
                               ("mark", perp_symbol, "mark")):
        try:
            cols[name] = store.read_bars(venue, symbol, kind, timeframe, start, end, resample=resample)["close"]
        except MissingSeries:
            if name == "mark":
                continue
            raise
    frame = pd.DataFrame(cols)  # outer join on time: gaps stay NaN, never filled
    frame["basis_bps"] = (frame["perp"] / frame["spot"] - 1.0) * 1e4
    try:
        funding = store.read_funding(venue, perp_symbol, start, end)
    except MissingSeries:
        funding = pd.DataFrame({"funding_rate": [], "interval_hours": []},
                               index=pd.DatetimeIndex([], tz="UTC", name="ts"))
    funding = funding.assign(apr=funding["funding_rate"] * (24 * 365 / funding["interval_hours"]))
    return PairView(venue, spot_symbol, perp_symbol, tf, frame, funding, is_synthetic(venue))


def candles(store: Store, venue: str, symbol: str, kind: str, start: pd.Timestamp, end: pd.Timestamp, *,
            timeframe: str = "1h", max_points: int = 600) -> tuple[pd.DataFrame, str]:
    """OHLC bars of one series in ``[start, end)`` for a candlestick chart, and the bar size shown.

    At most ``max_points`` candles: a longer window is aggregated in SQL to the finest coarser bar
    size (first open, max high, min low, last close). Index: UTC bar open time; prices quote/base.
    """
    tf = chart_timeframe(timeframe, start, end, max_points)
    bars = store.read_bars(venue, symbol, kind, timeframe, start, end, resample=None if tf == timeframe else tf)
    return bars[["open", "high", "low", "close"]], tf


def pairs_available(series: pd.DataFrame) -> pd.DataFrame:
    """(venue, spot_symbol, timeframe) triples that have both a spot and a perp series."""
    if series.empty:
        return pd.DataFrame(columns=["venue", "spot_symbol", "timeframe"])
    spot = series[series["kind"] == "spot"][["venue", "symbol", "timeframe"]]
    perp = series[series["kind"] == "perp"][["venue", "symbol", "timeframe"]]
    spot = spot.assign(perp_symbol=[perp_of(s) for s in spot["symbol"]])
    both = spot.merge(perp, left_on=["venue", "perp_symbol", "timeframe"],
                      right_on=["venue", "symbol", "timeframe"], suffixes=("", "_p"))
    out = both.rename(columns={"symbol": "spot_symbol"})[["venue", "spot_symbol", "timeframe"]]
    return out.sort_values(["venue", "spot_symbol", "timeframe"]).reset_index(drop=True)


def coverage_table(series: pd.DataFrame) -> pd.DataFrame:
    """The store's series with a 'synthetic' flag and coverage in days, for display."""
    if series.empty:
        return series.assign(synthetic=pd.Series(dtype=bool), days=pd.Series(dtype=float))
    days = (pd.to_datetime(series["last"]) - pd.to_datetime(series["first"])).dt.total_seconds() / 86400
    return series.assign(synthetic=series["venue"].map(is_synthetic), days=np.round(days, 1))



#: Columns of :func:`instruments_view`, in display order.
INSTRUMENT_COLUMNS = ["venue", "symbol", "kind", "tick", "lot", "min qty", "min notional", "contract size",
                      "max leverage", "brackets", "read"]
#: What the Market data page says when the store holds no instrument (how to fill it).
INSTRUMENTS_EMPTY = ("The store's instruments table is empty: orders and margins use the committed snapshot "
                     "(hedge_core/data/instruments_snapshot.json). Read a venue's limits and brackets with "
                     "`hedge data instruments --venue binance` (add `-s SOL` for more symbols; "
                     "`hedge data download` also reads the instruments of what it downloads). See docs/instruments.md.")


def _bracket_count(raw: object) -> int:
    """Number of maintenance brackets in a stored JSON cell (``[[floor, cap, lev, mmr, cum], ...]``); 0 when none."""
    import json

    if raw is None or (isinstance(raw, float) and np.isnan(raw)):
        return 0
    rows = json.loads(raw) if isinstance(raw, str) else raw
    return len(rows) if isinstance(rows, (list, tuple)) else 0


def instruments_view(store: Store) -> pd.DataFrame:
    """The store's instruments, one row per (venue, symbol), for the Market data page.

    Columns :data:`INSTRUMENT_COLUMNS`: tick (quote), lot, min qty (base units), min notional (quote),
    contract size (base per contract), max leverage (x), brackets (number of maintenance-margin
    brackets stored; 0 = the perp uses the committed default table), read (UTC date the venue was read).
    A limit the venue does not publish stays empty. Sorted by venue, spot before perp, symbol.
    """
    df = store.instruments_table()
    if df.empty:
        return pd.DataFrame(columns=INSTRUMENT_COLUMNS)
    read = pd.to_datetime(df["updated_at"], utc=True) if "updated_at" in df else pd.Series(pd.NaT, index=df.index)
    out = pd.DataFrame({
        "venue": df["venue"], "symbol": df["symbol"], "kind": df["kind"], "tick": df["tick_size"],
        "lot": df["lot_size"], "min qty": df["min_qty"], "min notional": df["min_notional"],
        "contract size": df["contract_size"], "max leverage": df["max_leverage"],
        "brackets": [_bracket_count(b) for b in (df["brackets"] if "brackets" in df else [None] * len(df))],
        "read": read.dt.strftime("%Y-%m-%d"),
    })
    order = out["kind"].map({"spot": 0, "perp": 1}).fillna(2)
    return (out.assign(_o=order).sort_values(["venue", "_o", "symbol"]).drop(columns="_o")
            .reset_index(drop=True)[INSTRUMENT_COLUMNS])
