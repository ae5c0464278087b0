"""File importers: parse and validate EVERYTHING first, then write it in one store transaction.

Formats
-------
- the tidy CSV layout of ``../shared/data``: ``<venue>_<PAIR>_<kind>_<tf>.csv`` (``ts`` ISO-8601
  UTC bar open time; ``open, high, low, close[, volume]`` or ``funding_rate``);
- cross-venue funding ``crossvenue_funding*.csv``: ``ts, venue, symbol, funding_rate[, interval_hours]``;
- generic CSV / Parquet / Feather with a column mapping (:func:`import_table`);
- freqtrade data files ``XRP_USDT_USDT-1h-futures.feather`` (``-mark``, ``-funding_rate``; spot without
  suffix; ``.parquet`` too);
- Binance bulk files (``BTCUSDT-1h-2024-01.zip``, ``BTCUSDT-fundingRate-2024-01.zip``, zipped or not).

Bad input raises :class:`hedge_core.errors.DataError` naming file, row and column, and nothing is
written. Rows in errors are 1-based DATA rows (the header line is not counted; the message adds the
line number of text files). Exact duplicate rows are dropped; conflicting duplicates are an error,
also across files of one import (e.g. a monthly file overlapping a daily one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hedge_core.data import binance_bulk
from hedge_core.data.symbols import check_kind, unified_symbol
from hedge_core.data.validate import (
    BAR_COLUMNS,
    FUNDING_COLUMNS,
    ROW_COL,
    canonical_bars,
    canonical_funding,
    merge_frames,
    parse_timestamps,
    timeframe_delta,
)
from hedge_core.errors import DataError

TIDY_NAME = re.compile(r"^(?P<venue>[a-z0-9]+)_(?P<pair>.+?)_(?P<kind>spot|perp|mark|funding)_(?P<tf>\d+[smhdw])\.csv$")
CROSSVENUE_NAME = re.compile(r"^crossvenue_funding.*\.csv$")
FREQTRADE_NAME = re.compile(
    r"^(?P<pair>[A-Za-z0-9]+(?:_[A-Za-z0-9]+){1,2})-(?P<tf>\d+[smhdwM])"
    r"(?:-(?P<ct>futures|mark|funding_rate|index|premiumIndex|spot))?\.(?:feather|parquet)$")
FREQTRADE_KINDS = {None: "spot", "spot": "spot", "futures": "perp", "mark": "mark", "funding_rate": "funding"}
DATA_SUFFIXES = {".csv", ".zip", ".feather", ".parquet"}


@dataclass(frozen=True, slots=True, order=True)
class SeriesKey:
    """One stored series. ``timeframe`` is None for funding (its interval is per row)."""

    venue: str
    symbol: str
    kind: str  # spot | perp | mark | funding
    timeframe: str | None


Parts = dict[SeriesKey, list[tuple[str, pd.DataFrame]]]


# ---- error location ---------------------------------------------------------------------------


@contextmanager
def _located(file: str, *, header_lines: int | None) -> Iterator[None]:
    """Add 'data row N = line M' to DataErrors raised while parsing one file.

    ``header_lines`` is the number of lines before data row 1 in a text file, None for binary
    formats (Feather/Parquet, where data row N is the N-th record, 0-based position N-1).
    """
    try:
        yield
    except DataError as e:
        if e.row is None or "(data row" in str(e) or (e.file and e.file != file):
            raise
        where = (f"data row {e.row} = line {e.row + header_lines} of the file" if header_lines is not None
                 else f"data row {e.row} = record at 0-based position {e.row - 1}")
        msg = _bare_message(e)
        raise DataError(f"{msg} ({where})", file=e.file or file, row=e.row, column=e.column) from None


def _bare_message(e: DataError) -> str:
    """The message of a DataError without its 'file .., row .., column ..: ' prefix."""
    parts = [p for p in (f"file {e.file}" if e.file else None, f"row {e.row}" if e.row is not None else None,
                         f"column {e.column!r}" if e.column else None) if p]
    prefix = ", ".join(parts) + ": "
    text = str(e)
    return text[len(prefix):] if parts and text.startswith(prefix) else text


def _rows(n: int) -> np.ndarray:
    return np.arange(1, n + 1)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise DataError(f"cannot be read as CSV ({e})", file=str(path)) from None


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".feather":
            return pd.read_feather(path)
    except Exception as e:  # pyarrow raises several unrelated types for a corrupt file
        raise DataError(f"cannot be read as {suffix[1:]} ({type(e).__name__}: {e})", file=str(path)) from None
    return _read_csv(path)


# ---- parsers (pure apart from reading the file) -----------------------------------------------


def parse_tidy_csv(path: str | Path) -> Parts:
    """Parse one ``<venue>_<PAIR>_<kind>_<tf>.csv`` file of the shared layout."""
    path = Path(path)
    m = TIDY_NAME.match(path.name)
    if not m:
        raise DataError("file name is not '<venue>_<PAIR>_<kind>_<timeframe>.csv'", file=str(path))
    venue, kind, tf = m.group("venue"), m.group("kind"), m.group("tf")
    symbol = unified_symbol(m.group("pair"), kind)
    raw = _read_csv(path)
    with _located(str(path), header_lines=1):
        if kind == "funding":
            hours = timeframe_delta(tf) / pd.Timedelta(hours=1)
            frame = canonical_funding(raw, file=str(path), interval_hours=hours, keep_rows=True)
            return {SeriesKey(venue, symbol, "funding", None): [(str(path), frame)]}
        frame = canonical_bars(raw, file=str(path), timeframe=tf, keep_rows=True)
    return {SeriesKey(venue, symbol, kind, tf): [(str(path), frame)]}


def parse_crossvenue_funding(path: str | Path, *, default_interval_hours: float = 8.0) -> Parts:
    """Parse a cross-venue funding file: ``ts, venue, symbol, funding_rate[, interval_hours]``.

    Source ids map to perp symbols: ``BTCUSDT -> BTC/USDT:USDT``, ``BTCUSD_PERP(coin-m) -> BTC/USD:BTC``,
    ``BTC-USDT-PERP -> BTC/USDT:USDT``. ``interval_hours`` defaults to 8 when absent or empty.
    """
    path = Path(path)
    raw = _read_csv(path)
    missing = [c for c in ("ts", "venue", "symbol", "funding_rate") if c not in raw.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}; the file has {list(raw.columns)}", file=str(path),
                        column=missing[0])
    raw[ROW_COL] = _rows(len(raw))
    out: Parts = {}
    with _located(str(path), header_lines=1):
        # parse the timestamps once for the whole file (one offset check across all venues)
        raw["ts"] = parse_timestamps(raw["ts"], file=str(path), column="ts", rows=raw[ROW_COL].to_numpy()).array
        for col in ("venue", "symbol"):
            bad = raw[col].isna() | (raw[col].astype("str").str.strip() == "")
            if bad.any():
                raise DataError(f"{col} is empty", file=str(path), row=int(raw[ROW_COL][bad].iloc[0]), column=col)
        for (venue, raw_symbol), grp in raw.groupby(["venue", "symbol"], sort=True):
            try:
                symbol = unified_symbol(str(raw_symbol), "funding")
            except DataError as e:
                raise DataError(_bare_message(e), file=str(path), row=int(grp[ROW_COL].iloc[0]),
                                column="symbol") from None
            cols = ["ts", "funding_rate", ROW_COL] + (["interval_hours"] if "interval_hours" in grp.columns else [])
            frame = canonical_funding(grp[cols], file=str(path), interval_hours=default_interval_hours,
                                      keep_rows=True)
            key = SeriesKey(str(venue).strip().lower(), symbol, "funding", None)
            out.setdefault(key, []).append((str(path), frame))
    return out


def parse_freqtrade(path: str | Path, *, venue: str | None = None) -> Parts:
    """Parse one freqtrade data file (Feather or Parquet).

    ``XRP_USDT_USDT-1h-futures.feather`` -> perp bars of ``XRP/USDT:USDT``; ``-mark`` -> mark bars;
    ``-funding_rate`` -> funding (freqtrade stores the rate in ``open``; the interval is the
    file's timeframe); no suffix -> spot bars of ``XRP/USDT``. The venue comes from ``venue`` or
    from a folder named like a ccxt exchange id (freqtrade keeps ``user_data/data/<exchange>/``).
    """
    path = Path(path)
    m = FREQTRADE_NAME.match(path.name)
    if not m:
        raise DataError("file name is not freqtrade's '<BASE>_<QUOTE>[_<SETTLE>]-<tf>[-<candle type>].feather'",
                        file=str(path))
    ct = m.group("ct")
    if ct not in FREQTRADE_KINDS:
        raise DataError(f"freqtrade candle type {ct!r} is not imported; supported: futures, mark, funding_rate, "
                        "spot", file=str(path))
    kind = FREQTRADE_KINDS[ct]
    venue = venue or venue_from_path(path)
    if venue is None:
        raise DataError("the venue is not in the path (freqtrade keeps user_data/data/<exchange>/); pass venue=",
                        file=str(path))
    parts = m.group("pair").split("_")
    symbol = f"{parts[0]}/{parts[1]}" if kind == "spot" else (
        f"{parts[0]}/{parts[1]}:{parts[2]}" if len(parts) == 3 else unified_symbol(f"{parts[0]}/{parts[1]}", kind))
    tf = m.group("tf")
    raw = _read_table(path)
    if "date" not in raw.columns:
        raise DataError(f"missing column 'date'; the file has {list(raw.columns)}", file=str(path), column="date")
    with _located(str(path), header_lines=None):
        if kind == "funding":
            frame = canonical_funding(pd.DataFrame({"ts": raw["date"], "funding_rate": raw.get("open")}),
                                      file=str(path), interval_hours=timeframe_delta(tf) / pd.Timedelta(hours=1),
                                      keep_rows=True) if "open" in raw.columns else None
            if frame is None:
                raise DataError("missing column 'open' (freqtrade stores the funding rate there)", file=str(path),
                                column="open")
            return {SeriesKey(venue, symbol, "funding", None): [(str(path), frame)]}
        bars = raw.rename(columns={"date": "ts"})
        if kind == "mark" and "volume" in bars.columns:
            bars = bars.drop(columns="volume")  # freqtrade fills mark volume with NaN or index volume
        frame = canonical_bars(bars, file=str(path), timeframe=tf, keep_rows=True)
    return {SeriesKey(venue, symbol, kind, tf): [(str(path), frame)]}


def venue_from_path(path: Path) -> str | None:
    """The last folder of ``path`` named like a ccxt exchange id, e.g. ``.../data/binance/futures``."""
    import ccxt  # local import: ccxt is slow to import and only needed here

    ids = set(ccxt.exchanges)
    for part in reversed(path.parent.parts):
        if part.lower() in ids:
            return part.lower()
    return None


def parse_binance_bulk(path: str | Path, *, kind: str | None = None, symbol: str | None = None,
                       venue: str | None = None) -> Parts:
    """Parse one Binance bulk-download klines or fundingRate file (see :mod:`.binance_bulk`)."""
    path = Path(path)
    venue = venue or "binance"
    header = binance_bulk.has_header(path)
    with _located(str(path), header_lines=1 if header else 0):
        if binance_bulk.FUNDING_NAME.match(path.name) or kind == "funding":
            sym, frame = binance_bulk.parse_funding(path, symbol=symbol)
            return {SeriesKey(venue, sym, "funding", None): [(str(path), frame)]}
        sym, k, tf, frame = binance_bulk.parse_klines(path, kind=kind, symbol=symbol)
    return {SeriesKey(venue, sym, k, tf): [(str(path), frame)]}


def parse_table(source: str | Path | pd.DataFrame, *, venue: str, symbol: str, kind: str,
                timeframe: str | None = None, columns: Mapping[str, str] | None = None,
                ts_unit: str | None = None, interval_hours: float = 8.0) -> Parts:
    """Parse a generic CSV/Parquet/Feather file (or a DataFrame) with a column mapping.

    Parameters
    ----------
    venue, symbol, kind, timeframe
        The series this table is (``kind`` in spot/perp/mark/funding; ``timeframe`` required for bars).
        ``symbol`` may be unified (``BTC/USDT:USDT``) or a venue id (``BTCUSDT``).
    columns
        ``{our_column: their_column}`` for ``ts, open, high, low, close, volume`` or
        ``ts, funding_rate, interval_hours``; unmapped columns are looked up under our name.
    ts_unit
        ``'s'``, ``'ms'``, ``'us'`` or ``'ns'`` for epoch numbers (detected when omitted);
        ISO-8601 strings must carry a timezone.
    """
    check_kind(kind)
    name = "<DataFrame>" if isinstance(source, pd.DataFrame) else str(source)
    raw = source.copy() if isinstance(source, pd.DataFrame) else _read_table(Path(source))
    if isinstance(source, pd.DataFrame) and isinstance(raw.index, pd.DatetimeIndex):
        raw = raw.rename_axis("ts").reset_index()
    header_lines = 1 if name.lower().endswith(".csv") else None
    mapping = dict(columns or {})
    wanted = ("ts", "funding_rate", "interval_hours") if kind == "funding" else ("ts", *BAR_COLUMNS)
    unknown = [k for k in mapping if k not in wanted]
    if unknown:
        raise DataError(f"column mapping names {unknown}, not ours; allowed keys: {list(wanted)}", file=name,
                        column=unknown[0])
    absent = [their for our, their in mapping.items() if their not in raw.columns]
    if absent:
        raise DataError(f"mapped column(s) {absent} are not in the file; it has {list(raw.columns)}", file=name,
                        column=absent[0])
    frame = pd.DataFrame({our: raw[mapping.get(our, our)] for our in wanted if mapping.get(our, our) in raw.columns})
    frame[ROW_COL] = _rows(len(raw))
    sym = unified_symbol(symbol, kind)
    with _located(name, header_lines=header_lines):
        if kind == "funding":
            out = canonical_funding(frame, file=name, interval_hours=interval_hours, ts_unit=ts_unit, keep_rows=True)
            return {SeriesKey(venue, sym, "funding", None): [(name, out)]}
        if timeframe is None:
            raise DataError("timeframe is required for bars (e.g. '1h')", file=name, column="timeframe")
        out = canonical_bars(frame, file=name, timeframe=timeframe, ts_unit=ts_unit, keep_rows=True)
    return {SeriesKey(venue, sym, kind, timeframe): [(name, out)]}


# ---- dispatch ---------------------------------------------------------------------------------


def parser_for(path: Path) -> Callable[..., Parts] | None:
    """The parser for a file name, None for a file this module does not recognise."""
    name = path.name
    if CROSSVENUE_NAME.match(name):
        return parse_crossvenue_funding
    if TIDY_NAME.match(name):
        return parse_tidy_csv
    if FREQTRADE_NAME.match(name):
        return parse_freqtrade
    if binance_bulk.is_bulk_name(name):
        return parse_binance_bulk
    return None


def parse_path(path: str | Path, *, venue: str | None = None, kind: str | None = None) -> tuple[
        dict[SeriesKey, pd.DataFrame], list[str]]:
    """Parse a file or a folder (recursively) into merged canonical frames, one per series.

    ``venue`` is used where files do not name their venue (freqtrade; Binance bulk defaults to
    'binance'); ``kind`` is used for Binance klines outside the data.binance.vision folder layout.
    Returns ``(frames by series, skipped files)``: files with unknown names are skipped in a folder
    and an error when named directly.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("no such file or folder", file=str(path))
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    parts: Parts = {}
    skipped: list[str] = []
    for f in files:
        parser = parser_for(f)
        if parser is None:
            if path.is_file():
                raise DataError("file name matches no known layout (tidy '<venue>_<PAIR>_<kind>_<tf>.csv', "
                                "'crossvenue_funding*.csv', freqtrade '<PAIR>-<tf>[-futures|-mark|-funding_rate]"
                                ".feather', Binance bulk 'BTCUSDT-1h-2024-01.zip'); use import_table with a "
                                "column mapping for other files", file=str(f))
            skipped.append(str(f))
            continue
        if parser is parse_freqtrade:
            got = parser(f, venue=venue)
        elif parser is parse_binance_bulk:
            got = parser(f, kind=kind, venue=venue)
        else:
            got = parser(f)
        for key, lst in got.items():
            parts.setdefault(key, []).extend(lst)
    if not parts:
        raise DataError("no importable files found", file=str(path))
    return merge_parts(parts), skipped


def merge_parts(parts: Parts) -> dict[SeriesKey, pd.DataFrame]:
    """Merge each series' pieces; overlapping rows must agree exactly (conflicts name both files).

    A file without data rows (a header only) is refused: importing it would register an empty series.
    """
    for key in sorted(parts):
        for file, frame in parts[key]:
            if len(frame) == 0:
                raise DataError(f"no data rows (only a header): nothing to import for {key.venue} {key.symbol} "
                                f"{key.kind}; give a file with at least one row", file=file)
    out = {}
    for key in sorted(parts):
        cols = list(FUNDING_COLUMNS) if key.kind == "funding" else list(BAR_COLUMNS)
        out[key] = merge_frames(parts[key], cols)
    return out


# ---- writing ----------------------------------------------------------------------------------


def write_series(store: Any, frames: Mapping[SeriesKey, pd.DataFrame], *,
                 sources: Mapping[SeriesKey, list[str]] | None = None) -> pd.DataFrame:
    """Write validated canonical frames inside ONE store transaction (all or nothing).

    Returns the summary: one row per series with ``venue, symbol, kind, timeframe, rows, first, last``
    (``rows`` = rows in the input after dropping exact duplicates; re-importing is idempotent).
    """
    rows = []
    with store.transaction():
        for key, df in frames.items():
            if key.kind == "funding":
                store.write_funding(df, venue=key.venue, symbol=key.symbol)
            else:
                store.write_bars(df, venue=key.venue, symbol=key.symbol, kind=key.kind, timeframe=key.timeframe)
            rows.append({"venue": key.venue, "symbol": key.symbol, "kind": key.kind,
                         "timeframe": key.timeframe or _funding_tf(df), "rows": len(df),
                         "first": df.index[0] if len(df) else pd.NaT, "last": df.index[-1] if len(df) else pd.NaT})
    return pd.DataFrame(rows, columns=["venue", "symbol", "kind", "timeframe", "rows", "first", "last"])


def _funding_tf(df: pd.DataFrame) -> str:
    """The store's label of a funding series: its median interval, e.g. '8h'."""
    return f"{float(np.median(df['interval_hours'])) if len(df) else 8.0:g}h"


def import_path(store: Any, path: str | Path, *, venue: str | None = None, kind: str | None = None) -> pd.DataFrame:
    """Import a file or a folder (recursing) of any recognised layout; all or nothing.

    Returns the per-series summary of :func:`write_series`; ``summary.attrs['skipped']`` lists
    files in the folder whose names match no layout.
    """
    frames, skipped = parse_path(path, venue=venue, kind=kind)
    summary = write_series(store, frames)
    summary.attrs["skipped"] = skipped
    return summary


def import_table(store: Any, source: str | Path | pd.DataFrame, *, venue: str, symbol: str, kind: str,
                 timeframe: str | None = None, columns: Mapping[str, str] | None = None,
                 ts_unit: str | None = None, interval_hours: float = 8.0) -> pd.DataFrame:
    """Import a generic table with a column mapping (see :func:`parse_table`); all or nothing."""
    parts = parse_table(source, venue=venue, symbol=symbol, kind=kind, timeframe=timeframe, columns=columns,
                        ts_unit=ts_unit, interval_hours=interval_hours)
    return write_series(store, merge_parts(parts))
