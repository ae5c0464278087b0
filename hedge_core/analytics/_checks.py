"""Input checks shared by the analytics modules (private).

Policy (the same everywhere in ``hedge_core.analytics``):
- series are indexed by a tz-aware UTC, strictly increasing, unique ``DatetimeIndex``;
  anything else raises :class:`~hedge_core.errors.InvalidInput` naming the argument;
- NaN or inf values raise (naming the first offending timestamp) -- gaps must be missing
  rows, never NaN, so that no number is silently computed from a hole;
- two series are aligned on the INTERSECTION of their indexes (a timestamp present in only one
  of them is dropped); an empty or too-short intersection raises.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hedge_core.errors import InvalidInput


def check_index(index: pd.Index, name: str) -> None:
    if not isinstance(index, pd.DatetimeIndex):
        raise InvalidInput(f"{name}.index", type(index).__name__, "a tz-aware UTC pandas DatetimeIndex")
    if index.tz is None or str(index.tz) not in ("UTC", "utc", "Etc/UTC", "Etc/Universal", "Universal", "Zulu"):
        raise InvalidInput(f"{name}.index.tz", index.tz, "UTC (tz-aware; convert with .tz_convert('UTC'))")
    if len(index) > 1 and not index.is_monotonic_increasing:
        raise InvalidInput(f"{name}.index", "unsorted", "strictly increasing timestamps (sort_index())")
    if not index.is_unique:
        dup = index[index.duplicated()][0]
        raise InvalidInput(f"{name}.index", f"duplicate {dup}", "unique timestamps")


def check_series(s: pd.Series, name: str, *, positive: bool = False, min_len: int = 1) -> np.ndarray:
    """Validate ``s`` and return its float64 values."""
    if not isinstance(s, pd.Series):
        raise InvalidInput(name, type(s).__name__, "a pandas Series with a UTC DatetimeIndex")
    check_index(s.index, name)
    if len(s) < min_len:
        raise InvalidInput(f"len({name})", len(s), f">= {min_len} observations")
    try:
        # float64 needs no conversion (to_numpy with na_value would copy and scan for NA)
        v = s.to_numpy() if s.dtype == "float64" else s.to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):
        raise InvalidInput(name, str(s.dtype), "numeric values") from None
    # fast path: a finite sum proves every value finite (overflow falls through to the full check)
    if not np.isfinite(v.sum()) and (bad := ~np.isfinite(v)).any():
        i = int(np.argmax(bad))
        raise InvalidInput(name, f"{v[i]} at {s.index[i]} ({int(bad.sum())} non-finite values)",
                           "finite values; drop gaps as rows (dropna) instead of NaN")
    if positive and (v <= 0).any():
        i = int(np.argmax(v <= 0))
        raise InvalidInput(name, f"{v[i]} at {s.index[i]}", "prices > 0")
    return v


def align(y: pd.Series, x: pd.Series, names: tuple[str, str] = ("y", "x"),
          min_len: int = 2) -> tuple[pd.Series, pd.Series]:
    """Validate both series and keep only their common timestamps."""
    check_series(y, names[0])
    check_series(x, names[1])
    if y.index is x.index or y.index.equals(x.index):  # fast path: already aligned
        idx = y.index
        ya, xa = y, x
    else:
        idx = y.index.intersection(x.index)
        ya, xa = y.loc[idx], x.loc[idx]
    if len(idx) < min_len:
        raise InvalidInput(f"common index of {names[0]} and {names[1]}", len(idx),
                           f">= {min_len} shared timestamps (the indexes barely overlap)")
    if ya.dtype != "float64":
        ya = ya.astype("float64")
    if xa.dtype != "float64":
        xa = xa.astype("float64")
    return ya, xa


def check_window(window: int, n: int, name: str = "window", minimum: int = 2) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)):
        raise InvalidInput(name, window, "an integer number of observations")
    w = int(window)
    if w < minimum or w > n:
        raise InvalidInput(name, window, f"{minimum} <= {name} <= {n} (the number of aligned observations)")
    return w


def check_fraction(value: float, name: str, lo: float = 0.0, hi: float = 1.0,
                   lo_open: bool = True, hi_open: bool = True) -> float:
    v = float(value)
    ok = np.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        raise InvalidInput(name, value, f"a number in {lb}{lo}, {hi}{rb}")
    return v
