"""Data-quality report: coverage, gaps, duplicates, outliers and off-schedule funding.

Pure functions over frames (:func:`bar_quality`, :func:`funding_quality`, :func:`report`); the thin
:func:`series_quality` / :func:`store_report` read from a store and call them.

Fields (per series)
-------------------
``expected``  bars between first and last inclusive on the timeframe grid (funding: events on the
              schedule between first and last);
``present``   distinct timestamps present; ``coverage = present / expected`` (1.0 = no gaps);
``gaps``      list of missing ranges ``{start, end, missing}`` (start/end = first/last missing label);
``duplicates`` rows whose timestamp repeats an earlier row;
``outliers``  bars whose log return (close/previous close, consecutive rows) has a robust z-score
              ``|r - median| / (1.4826 * MAD)`` above ``z_threshold``: ``{ts, log_return, z}``;
``ohlc_errors`` bars with high < max(open, close) or low > min(open, close) or a price <= 0;
``off_schedule`` (funding) events whose time is not on the interval grid (8h at 00/08/16 UTC unless
              ``interval_hours`` says otherwise), ``{ts, interval_hours}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hedge_core.data.validate import timeframe_delta

REPORT_COLUMNS = ["venue", "symbol", "kind", "timeframe", "first", "last", "rows", "expected", "present",
                  "coverage", "n_gaps", "missing", "duplicates", "outliers", "ohlc_errors", "off_schedule"]


def _gaps(idx: pd.DatetimeIndex, step: pd.Timedelta) -> list[dict[str, Any]]:
    if len(idx) < 2:
        return []
    u = idx.unique().sort_values()
    d = np.diff(u.as_unit("ns").asi8)
    step_n = pd.Timedelta(step).value  # nanoseconds
    where = np.flatnonzero(d > step_n)
    out = []
    for i in where:
        missing = int(-(-d[i] // step_n)) - 1  # ceil: off-grid neighbours still leave whole labels missing
        out.append({"start": u[i] + step, "end": u[i] + step * missing, "missing": missing})
    return out


def robust_z(x: np.ndarray) -> np.ndarray:
    """``(x - median) / (1.4826 * MAD)``; NaN-safe; zeros when the MAD is 0."""
    med = np.nanmedian(x)
    mad = 1.4826 * np.nanmedian(np.abs(x - med))
    if not np.isfinite(mad) or mad == 0:
        return np.zeros_like(x)
    return (x - med) / mad


def bar_quality(df: pd.DataFrame, timeframe: str, *, z_threshold: float = 15.0) -> dict[str, Any]:
    """Quality of one bar series (frame indexed by UTC open time with open/high/low/close).

    Returns a dict with the fields of the module docstring (timestamps as pandas Timestamps).
    """
    step = timeframe_delta(timeframe)
    idx = pd.DatetimeIndex(df.index)
    rows = len(df)
    present = int(idx.nunique())
    out: dict[str, Any] = {"rows": rows, "present": present, "duplicates": rows - present,
                           "first": idx.min() if rows else None, "last": idx.max() if rows else None}
    out["expected"] = int((out["last"] - out["first"]) / step) + 1 if rows else 0
    out["coverage"] = present / out["expected"] if out["expected"] else float("nan")
    out["gaps"] = _gaps(idx, step)
    out["missing"] = int(sum(g["missing"] for g in out["gaps"]))
    o, h, lo, c = (df[k].to_numpy(dtype="float64") for k in ("open", "high", "low", "close"))
    bad = (h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (np.minimum.reduce([o, h, lo, c]) <= 0)
    out["ohlc_errors"] = int(np.nansum(bad))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.diff(np.log(c))
    z = robust_z(r)
    hit = np.flatnonzero(np.abs(z) > z_threshold)
    out["outliers"] = [{"ts": idx[i + 1], "log_return": float(r[i]), "z": float(z[i])} for i in hit]
    return out


def funding_quality(df: pd.DataFrame, *, interval_hours: float | None = None,
                    anchor_hour: int = 0) -> dict[str, Any]:
    """Quality of one funding series (index ts; ``funding_rate``[, ``interval_hours``]).

    The schedule is every ``interval_hours`` (per row from the frame's column, else the argument,
    else 8) from ``anchor_hour`` UTC: 8h -> 00/08/16 UTC. Gaps are counted on that schedule.
    """
    idx = pd.DatetimeIndex(df.index)
    rows = len(df)
    if "interval_hours" in df.columns and interval_hours is None:
        ih = df["interval_hours"].to_numpy(dtype="float64")
    else:
        ih = np.full(rows, float(interval_hours or 8.0))
    step_s = np.rint(ih * 3600).astype("int64")
    secs = (idx.as_unit("s").asi8 - anchor_hour * 3600)
    off = (secs % np.where(step_s > 0, step_s, 1)) != 0
    present = int(idx.nunique())
    out: dict[str, Any] = {"rows": rows, "present": present, "duplicates": rows - present,
                           "first": idx.min() if rows else None, "last": idx.max() if rows else None,
                           "ohlc_errors": 0, "outliers": []}
    out["off_schedule"] = [{"ts": idx[i], "interval_hours": float(ih[i])} for i in np.flatnonzero(off)]
    main_h = float(pd.Series(ih).mode().iloc[0]) if rows else 8.0
    step = pd.Timedelta(hours=main_h)
    on = idx[~off]
    out["expected"] = int((on.max() - on.min()) / step) + 1 if len(on) else 0
    out["gaps"] = _gaps(on, step)
    out["missing"] = int(sum(g["missing"] for g in out["gaps"]))
    out["coverage"] = on.nunique() / out["expected"] if out["expected"] else float("nan")
    return out


def report(frames: dict[Any, pd.DataFrame], *, z_threshold: float = 15.0) -> tuple[pd.DataFrame, list[dict]]:
    """Quality of many series. ``frames`` maps keys with ``venue, symbol, kind, timeframe`` attributes
    (e.g. :class:`hedge_core.data.importers.SeriesKey`) to frames.

    Returns ``(table, details)``: one table row per series (counts, see ``REPORT_COLUMNS``) and a
    JSON-ready list of dicts with the full gap/outlier/off-schedule lists (timestamps ISO strings).
    """
    rows, details = [], []
    for key, df in frames.items():
        q = (funding_quality(df) if key.kind == "funding"
             else bar_quality(df, key.timeframe, z_threshold=z_threshold))
        tf = key.timeframe or (f"{float(df['interval_hours'].median()):g}h" if "interval_hours" in df.columns
                               and len(df) else "")
        head = {"venue": key.venue, "symbol": key.symbol, "kind": key.kind, "timeframe": tf}
        rows.append({**head, **{k: q[k] for k in ("first", "last", "rows", "expected", "present", "coverage",
                                                   "duplicates", "ohlc_errors", "missing")},
                     "n_gaps": len(q["gaps"]), "outliers": len(q["outliers"]),
                     "off_schedule": len(q.get("off_schedule", []))})
        details.append(to_jsonable({**head, **q}))
    return pd.DataFrame(rows, columns=REPORT_COLUMNS), details


def to_jsonable(obj: Any) -> Any:
    """Timestamps -> ISO strings, numpy scalars -> Python, NaN -> None, recursively."""
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not np.isfinite(obj) else float(obj)
    return obj


def series_quality(store: Any, venue: str, symbol: str, kind: str, timeframe: str | None = None, *,
                   z_threshold: float = 15.0) -> dict[str, Any]:
    """Quality dict of one stored series (reads it from the store)."""
    if kind == "funding":
        return funding_quality(store.read_funding(venue, symbol))
    return bar_quality(store.read_bars(venue, symbol, kind, timeframe), timeframe, z_threshold=z_threshold)


def store_report(store: Any, *, z_threshold: float = 15.0) -> tuple[pd.DataFrame, list[dict]]:
    """:func:`report` over every series in the store."""
    from hedge_core.data.importers import SeriesKey

    frames = {}
    for s in store.series().itertuples(index=False):
        if s.kind == "funding":
            key = SeriesKey(s.venue, s.symbol, "funding", None)
            frames[key] = store.read_funding(s.venue, s.symbol)
        else:
            key = SeriesKey(s.venue, s.symbol, s.kind, s.timeframe)
            frames[key] = store.read_bars(s.venue, s.symbol, s.kind, s.timeframe)
    return report(frames, z_threshold=z_threshold)
