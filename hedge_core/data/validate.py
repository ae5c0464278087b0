"""Parse and validate raw tables into the canonical bar and funding frames.

Canonical bar frame
    index ``ts``: ``datetime64[us, UTC]``, the bar OPEN time, strictly increasing, on the
    timeframe grid; columns ``open, high, low, close, volume`` as float64 (prices quote/base,
    strictly positive, ``high >= low``; volume in base units, NaN allowed, e.g. mark bars).
Canonical funding frame
    index ``ts`` (UTC, the funding time, floored to whole seconds), columns ``funding_rate``
    (fraction per interval, positive => longs pay shorts) and ``interval_hours`` (float64, > 0).

Every check raises :class:`hedge_core.errors.DataError` naming the file, the 1-based DATA row
(the header is not counted: data row 1 is line 2 of a CSV with a header) and the column.
Exact duplicate rows are dropped silently; duplicate keys with different values are an error.
These functions are pure: frames in, frames out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hedge_core.errors import DataError, InvalidInput
from hedge_core.types import timeframe_delta as _timeframe_delta

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
FUNDING_COLUMNS = ("funding_rate", "interval_hours")
TS_DTYPE = "datetime64[us, UTC]"
ROW_COL = "_row"  # 1-based data row of the source, carried through parsing for error messages
MAX_ABS_FUNDING = 1.0  # a rate of 100 % per interval is a unit error (percent vs fraction)

_OFFSET_RE = r"(Z|[+-]\d{2}:?\d{2})\s*$"


def timeframe_delta(timeframe: str) -> pd.Timedelta:
    """:func:`hedge_core.types.timeframe_delta`, raising DataError (a file's timeframe is data)."""
    try:
        return _timeframe_delta(timeframe)
    except InvalidInput as exc:
        raise DataError(str(exc), column="timeframe") from exc


def _row_of(df: pd.DataFrame, pos: int) -> int:
    return int(df[ROW_COL].iloc[pos]) if ROW_COL in df.columns else pos + 1


def _first_bad(mask: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


def parse_timestamps(values: pd.Series, *, file: str | None, column: str, rows: Sequence[int] | None = None,
                     unit: str | None = None) -> pd.Series:
    """Parse a timestamp column to ``datetime64[us, UTC]``.

    Strings must be ISO-8601 with an explicit offset (``Z`` or ``+00:00``); naive strings and
    a mix of offsets in one column (a local-time export) are rejected. Numbers are epoch
    seconds, milliseconds, microseconds or nanoseconds, detected by magnitude unless ``unit``
    (``'s'``, ``'ms'``, ``'us'``, ``'ns'``) is given. tz-aware datetimes are converted to UTC;
    naive datetimes are rejected.
    """
    rows_arr = np.asarray(rows) if rows is not None else np.arange(1, len(values) + 1)

    def fail(pos: int, msg: str) -> DataError:
        return DataError(msg, file=file, row=int(rows_arr[pos]), column=column)

    v = values.reset_index(drop=True)
    missing = v.isna().to_numpy()
    if (p := _first_bad(missing)) is not None:
        raise fail(p, "timestamp is missing")

    if isinstance(v.dtype, pd.DatetimeTZDtype):
        return v.dt.tz_convert("UTC").astype(TS_DTYPE)
    if pd.api.types.is_datetime64_dtype(v.dtype):
        raise fail(0, "timestamps have no timezone (naive); give UTC timestamps, e.g. '2024-01-01T00:00:00Z'")
    if pd.api.types.is_numeric_dtype(v.dtype) and not pd.api.types.is_bool_dtype(v.dtype):
        return _parse_epoch(v.to_numpy(dtype="float64"), unit=unit, fail=fail)

    s = v.astype("str").str.strip()
    if unit is not None or s.str.fullmatch(r"\d+(\.\d+)?").all():
        num = pd.to_numeric(s, errors="coerce")
        if (p := _first_bad(num.isna().to_numpy())) is not None:
            raise fail(p, f"timestamp {s.iloc[p]!r} is not a number of epoch {unit or 'ms'}")
        return _parse_epoch(num.to_numpy(dtype="float64"), unit=unit, fail=fail)

    if not s.str.endswith("Z").all():
        off = s.str.extract(_OFFSET_RE)[0]
        if (p := _first_bad(off.isna().to_numpy())) is not None:
            raise fail(p, f"timestamp {s.iloc[p]!r} has no timezone (naive) or is not ISO-8601; "
                          "give UTC, e.g. '2024-01-01T00:00:00Z'")
        norm = off.str.replace("Z", "+00:00").str.replace(r"^([+-]\d{2})(\d{2})$", r"\1:\2", regex=True)
        if (p := _first_bad((norm != norm.iloc[0]).to_numpy())) is not None:
            raise fail(p, f"timestamp {s.iloc[p]!r} has offset {norm.iloc[p]} but row {int(rows_arr[0])} "
                          f"has {norm.iloc[0]}: mixed timezones in one file (a local-time export?); "
                          "export in UTC")
    ts = pd.to_datetime(s, format="ISO8601", utc=True, errors="coerce")
    if (p := _first_bad(ts.isna().to_numpy())) is not None:
        raise fail(p, f"timestamp {s.iloc[p]!r} is not an ISO-8601 timestamp")
    return ts.astype(TS_DTYPE)


def _parse_epoch(x: np.ndarray, *, unit: str | None, fail) -> pd.Series:
    if (p := _first_bad(~np.isfinite(x))) is not None:
        raise fail(p, "timestamp is not a finite number")
    if unit is None:
        unit = epoch_unit(x)
    if unit not in ("s", "ms", "us", "ns"):
        raise DataError(f"ts_unit {unit!r} is not allowed; expected 's', 'ms', 'us' or 'ns'", column="ts_unit")
    scale = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 1e-3}[unit]
    us = np.rint(x * scale)
    lo, hi = pd.Timestamp("1990-01-01").value / 1000, pd.Timestamp("2200-01-01").value / 1000
    if (p := _first_bad((us < lo) | (us > hi))) is not None:
        raise fail(p, f"epoch timestamp {float(x[p])!r} ({unit}) is outside 1990..2200; wrong unit?")
    return pd.Series(us.astype("int64").view("datetime64[us]")).dt.tz_localize("UTC")


def epoch_unit(x: np.ndarray) -> str:
    """Guess the unit of epoch numbers by magnitude (1e9 s, 1e12 ms, 1e15 us, 1e18 ns, today)."""
    m = float(np.nanmax(np.abs(x))) if len(x) else 0.0
    return "ns" if m >= 1e17 else "us" if m >= 1e14 else "ms" if m >= 1e11 else "s"


def _numeric(df: pd.DataFrame, col: str, *, file: str | None) -> np.ndarray:
    s = df[col]
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype="float64", na_value=np.nan)
    num = pd.to_numeric(s.astype("str").str.strip().replace({"": None}), errors="coerce")
    bad = num.isna().to_numpy() & s.notna().to_numpy() & (s.astype("str").str.strip() != "").to_numpy()
    if (p := _first_bad(bad)) is not None:
        raise DataError(f"value {s.iloc[p]!r} is not a number", file=file, row=_row_of(df, p), column=col)
    return num.to_numpy(dtype="float64", na_value=np.nan)


def _require_columns(df: pd.DataFrame, needed: Sequence[str], *, file: str | None) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        have = [c for c in df.columns if c != ROW_COL]
        raise DataError(f"missing column(s) {missing}; the file has {have}", file=file, column=missing[0])


def canonical_bars(df: pd.DataFrame, *, file: str | None = None, timeframe: str | None = None,
                   ts_unit: str | None = None, check_grid: bool = True,
                   keep_rows: bool = False) -> pd.DataFrame:
    """Validate a raw bar table and return the canonical bar frame.

    Parameters
    ----------
    df : DataFrame
        Columns ``ts, open, high, low, close[, volume]`` (``ts`` may be the index), optionally
        ``_row`` = the 1-based data row of the source for error messages.
    file : str, optional
        Source name used in errors.
    timeframe : str, optional
        When given (and ``check_grid``), every ``ts`` must lie on the timeframe grid
        (multiples of the bar size since the Unix epoch; days start at 00:00 UTC).
    ts_unit : str, optional
        Unit of epoch-number timestamps (detected by magnitude when omitted).
    keep_rows : bool
        Keep the ``_row`` column (for :func:`merge_frames`).
    """
    df = _with_ts_column(df)
    _require_columns(df, ("ts", *PRICE_COLUMNS), file=file)
    if ROW_COL not in df.columns:
        df = df.assign(**{ROW_COL: np.arange(1, len(df) + 1)})
    ts = parse_timestamps(df["ts"], file=file, column="ts", rows=df[ROW_COL].to_numpy(), unit=ts_unit)
    out = pd.DataFrame({c: _numeric(df, c, file=file) for c in PRICE_COLUMNS})
    out["volume"] = _numeric(df, "volume", file=file) if "volume" in df.columns else np.nan
    out[ROW_COL] = df[ROW_COL].to_numpy()
    out.index = pd.DatetimeIndex(ts, name="ts")

    for c in PRICE_COLUMNS:
        x = out[c].to_numpy()
        if (p := _first_bad(~np.isfinite(x))) is not None:
            raise DataError("price is missing or not finite", file=file, row=_row_of(out, p), column=c)
        if (p := _first_bad(x <= 0)) is not None:
            raise DataError(f"price {float(x[p])!r} is not allowed; prices must be > 0", file=file,
                            row=_row_of(out, p), column=c)
    hi, lo = out["high"].to_numpy(), out["low"].to_numpy()
    if (p := _first_bad(hi < lo)) is not None:
        raise DataError(f"high {float(hi[p])!r} < low {float(lo[p])!r}; expected high >= low", file=file,
                        row=_row_of(out, p), column="high")
    vol = out["volume"].to_numpy()
    if (p := _first_bad(np.isinf(vol) | (vol < 0))) is not None:
        raise DataError(f"volume {float(vol[p])!r} is not allowed; expected >= 0 (or empty)", file=file,
                        row=_row_of(out, p), column="volume")
    if timeframe is not None and check_grid:
        step = timeframe_delta(timeframe)
        if step <= pd.Timedelta(days=1):
            off = out.index.asi8 % (step.value // 1000)  # index is in microseconds
            if (p := _first_bad(off != 0)) is not None:
                raise DataError(f"ts {out.index[p]} is not on the {timeframe} grid (bars are labelled "
                                f"by their open time; wrong timeframe?)", file=file, row=_row_of(out, p),
                                column="ts")
    return finish(out, list(BAR_COLUMNS), file=file, keep_rows=keep_rows)


def canonical_funding(df: pd.DataFrame, *, file: str | None = None, interval_hours: float = 8.0,
                      ts_unit: str | None = None, keep_rows: bool = False) -> pd.DataFrame:
    """Validate a raw funding table and return the canonical funding frame.

    ``df`` has ``ts, funding_rate[, interval_hours]``; a missing or empty ``interval_hours``
    takes the ``interval_hours`` argument. Funding times are floored to whole seconds (venues
    stamp settlements a few milliseconds late, e.g. Binance ``...00:00:00.017``).
    """
    df = _with_ts_column(df)
    _require_columns(df, ("ts", "funding_rate"), file=file)
    if ROW_COL not in df.columns:
        df = df.assign(**{ROW_COL: np.arange(1, len(df) + 1)})
    ts = parse_timestamps(df["ts"], file=file, column="ts", rows=df[ROW_COL].to_numpy(), unit=ts_unit)
    out = pd.DataFrame({"funding_rate": _numeric(df, "funding_rate", file=file)})
    if "interval_hours" in df.columns:
        ih = _numeric(df, "interval_hours", file=file)
        out["interval_hours"] = np.where(np.isnan(ih), float(interval_hours), ih)
    else:
        out["interval_hours"] = float(interval_hours)
    out[ROW_COL] = df[ROW_COL].to_numpy()
    out.index = pd.DatetimeIndex(ts, name="ts").floor("s")

    r = out["funding_rate"].to_numpy()
    if (p := _first_bad(~np.isfinite(r))) is not None:
        raise DataError("funding rate is missing or not finite", file=file, row=_row_of(out, p),
                        column="funding_rate")
    if (p := _first_bad(np.abs(r) >= MAX_ABS_FUNDING)) is not None:
        raise DataError(f"funding rate {float(r[p])!r} is not allowed; expected a fraction per interval with "
                        f"|rate| < {MAX_ABS_FUNDING} (0.0001 = 0.01 %; percent given?)", file=file,
                        row=_row_of(out, p), column="funding_rate")
    ih = out["interval_hours"].to_numpy()
    if (p := _first_bad(~(ih > 0) | ~np.isfinite(ih))) is not None:
        raise DataError(f"interval_hours {float(ih[p])!r} is not allowed; expected > 0", file=file,
                        row=_row_of(out, p), column="interval_hours")
    return finish(out, list(FUNDING_COLUMNS), file=file, keep_rows=keep_rows)


def _with_ts_column(df: pd.DataFrame) -> pd.DataFrame:
    if "ts" in df.columns:
        return df
    if df.index.name == "ts" or isinstance(df.index, pd.DatetimeIndex):
        return df.rename_axis("ts").reset_index()
    return df


def finish(df: pd.DataFrame, columns: list[str], *, file: str | None = None,
           files: Sequence[str] | None = None, keep_rows: bool = False) -> pd.DataFrame:
    """Sort by ts, drop exact duplicate rows, reject duplicate keys with different values.

    ``df`` carries ``_row`` (and optionally ``_file``: an integer index into ``files``) for
    error messages; both are dropped from the result.
    """
    order = np.argsort(df.index.asi8, kind="stable")
    if not (np.diff(order) == 1).all():
        df = df.iloc[order]
    idx = df.index.asi8
    dup = np.zeros(len(df), dtype=bool)
    if len(df) > 1:
        dup[1:] = idx[1:] == idx[:-1]
    if dup.any():
        vals = df[columns].to_numpy(dtype="float64")
        prev = np.roll(vals, 1, axis=0)
        same = (vals == prev) | (np.isnan(vals) & np.isnan(prev))
        conflict = dup & ~same.all(axis=1)
        if (p := _first_bad(conflict)) is not None:
            col = columns[int(np.flatnonzero(~same[p])[0])]

            def where(i: int) -> str:
                if files is not None and "_file" in df.columns:
                    return f"{files[int(df['_file'].iloc[i])]} data row {_row_of(df, i)}"
                return f"data row {_row_of(df, i)}"

            raise DataError(
                f"duplicate ts {df.index[p]} with different values: {col}={float(vals[p - 1, columns.index(col)])!r} "
                f"at {where(p - 1)} vs {float(vals[p, columns.index(col)])!r} at {where(p)}",
                file=(files[int(df['_file'].iloc[p])] if files is not None and "_file" in df.columns else file),
                row=_row_of(df, p), column=col)
        df = df[~dup]
    data = {c: df[c].to_numpy(dtype="float64") for c in columns}
    if keep_rows:
        data[ROW_COL] = df[ROW_COL].to_numpy()
    index = df.index if str(df.index.dtype) == TS_DTYPE else df.index.astype(TS_DTYPE)
    return pd.DataFrame(data, index=pd.DatetimeIndex(index, name="ts"))


def merge_frames(parts: Sequence[tuple[str, pd.DataFrame]], columns: list[str]) -> pd.DataFrame:
    """Merge canonical frames of one series coming from several files (e.g. monthly bulk files).

    Overlaps must agree exactly; a conflict names both files and rows. Parts are canonical
    frames built with ``keep_rows=True`` (they still carry ``_row``); the result is canonical.
    """
    if len(parts) == 1:
        name, df = parts[0]
        return finish(df, columns, file=name)
    files = [p[0] for p in parts]
    frames = [df.assign(_file=i) for i, (_, df) in enumerate(parts)]
    return finish(pd.concat(frames), columns, files=files)
