"""Volatility estimators for 24/7 crypto bars, and the volatility-tiered hedge ratio.

Conventions
-----------
- Volatility is a standard deviation of LOG returns, expressed as a fraction (0.02 = 2 %).
- Annualisation is 24/7: ``periods_per_year = 365 * 24 * 3600 / bar_seconds`` (no trading-day
  calendar); an annualised figure is ``sigma_bar * sqrt(periods_per_year)``.
- The bar length is taken as an argument (``bar_seconds``) or inferred as the MEDIAN spacing of
  the index (robust to the real gaps in exchange data).
- OHLC estimators (Parkinson, Garman-Klass) use each bar on its own, so gaps do not bias them;
  close-to-close returns across a gap span the gap (as in :func:`returns_of`).
- Inputs follow the analytics policy: UTC index, no NaN (raise naming the timestamp).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hedge_core.analytics._checks import check_index, check_series
from hedge_core.errors import InvalidInput

SECONDS_PER_YEAR = 365 * 24 * 3600
SECONDS_PER_DAY = 24 * 3600

__all__ = [
    "SECONDS_PER_YEAR",
    "infer_bar_seconds",
    "periods_per_year",
    "close_to_close",
    "parkinson",
    "garman_klass",
    "ewma_vol",
    "trailing_24h_vol",
    "VolTiers",
    "vol_tiered_hedge_ratio",
]


def infer_bar_seconds(index: pd.DatetimeIndex) -> float:
    """Bar length in seconds = the median spacing of ``index`` (>= 2 timestamps, UTC)."""
    check_index(index, "index")
    if len(index) < 2:
        raise InvalidInput("len(index)", len(index), ">= 2 timestamps to infer the bar size")
    d = np.diff(index.as_unit("ns").asi8) / 1e9
    sec = float(np.median(d))
    if sec <= 0:
        raise InvalidInput("index", "zero spacing", "strictly increasing timestamps")
    return sec


def periods_per_year(bar_seconds: float) -> float:
    """24/7 periods per year: ``365 * 24 * 3600 / bar_seconds`` (1h bars -> 8,760)."""
    b = float(bar_seconds)
    if not (math.isfinite(b) and b > 0):
        raise InvalidInput("bar_seconds", bar_seconds, "a bar length in seconds > 0")
    return SECONDS_PER_YEAR / b


def _bar(index: pd.DatetimeIndex, bar_seconds: float | None) -> float:
    if bar_seconds is None:
        return infer_bar_seconds(index)
    periods_per_year(bar_seconds)  # validates
    return float(bar_seconds)


def _finish(var_bar: pd.Series | float, bar_sec: float, annualise: bool):
    scale = periods_per_year(bar_sec) if annualise else 1.0
    if isinstance(var_bar, pd.Series):
        return np.sqrt(var_bar * scale)
    return float(math.sqrt(var_bar * scale))


def _check_win(window: int | None, n: int) -> None:
    if window is not None and (isinstance(window, bool) or not isinstance(window, (int, np.integer))
                               or not 2 <= window <= n):
        raise InvalidInput("window", window, f"None or an integer in [2, {n}] (observations)")


def close_to_close(close: pd.Series, window: int | None = None, *, bar_seconds: float | None = None,
                   annualise: bool = True) -> float | pd.Series:
    """Close-to-close volatility: sample std (ddof=1) of log returns.

    Parameters
    ----------
    close : pd.Series
        Close prices (> 0), UTC index.
    window : int or None
        None: one figure over the whole series. int: trailing window of ``window`` RETURNS
        (NaN before the first full window).
    bar_seconds : float or None
        Bar length; inferred from the index when None.
    annualise : bool
        Multiply by ``sqrt(365*24*3600 / bar_seconds)``; False gives the per-bar figure.
    """
    v = check_series(close, "close", positive=True, min_len=3)
    bar = _bar(close.index, bar_seconds)
    r = pd.Series(np.diff(np.log(v)), index=close.index[1:])
    _check_win(window, len(r))
    var = r.var(ddof=1) if window is None else r.rolling(window).var(ddof=1)
    return _finish(var, bar, annualise)


def _ohlc(df: pd.DataFrame, need: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not isinstance(df, pd.DataFrame):
        raise InvalidInput("bars", type(df).__name__, "a DataFrame with open/high/low/close columns")
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InvalidInput("bars.columns", list(df.columns), f"columns {list(need)} (missing {missing})")
    out = {c: check_series(df[c], f"bars.{c}", positive=True, min_len=2) for c in need}
    if (out["high"] < out["low"]).any():
        i = int(np.argmax(out["high"] < out["low"]))
        raise InvalidInput("bars.high", f"{out['high'][i]} < low {out['low'][i]} at {df.index[i]}", "high >= low")
    return out


def parkinson(bars: pd.DataFrame, window: int | None = None, *, bar_seconds: float | None = None,
              annualise: bool = True) -> float | pd.Series:
    """Parkinson (1980) high-low volatility: ``var = mean(ln(H/L)^2) / (4 ln 2)`` per bar."""
    o = _ohlc(bars, ("high", "low"))
    bar = _bar(bars.index, bar_seconds)
    hl = pd.Series(np.log(o["high"] / o["low"]) ** 2 / (4.0 * math.log(2.0)), index=bars.index)
    _check_win(window, len(hl))
    var = hl.mean() if window is None else hl.rolling(window).mean()
    return _finish(var, bar, annualise)


def garman_klass(bars: pd.DataFrame, window: int | None = None, *, bar_seconds: float | None = None,
                 annualise: bool = True) -> float | pd.Series:
    """Garman-Klass (1980) OHLC volatility:
    ``var = mean(0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2)`` per bar."""
    o = _ohlc(bars, ("open", "high", "low", "close"))
    bar = _bar(bars.index, bar_seconds)
    term = 0.5 * np.log(o["high"] / o["low"]) ** 2 - (2 * math.log(2.0) - 1) * np.log(o["close"] / o["open"]) ** 2
    s = pd.Series(term, index=bars.index)
    _check_win(window, len(s))
    var = s.mean() if window is None else s.rolling(window).mean()
    if isinstance(var, pd.Series):
        var = var.clip(lower=0.0)
    else:
        var = max(var, 0.0)
    return _finish(var, bar, annualise)


def ewma_vol(close: pd.Series, lam: float = 0.94, *, bar_seconds: float | None = None,
             annualise: bool = True) -> pd.Series:
    """RiskMetrics EWMA volatility of log returns: ``var_t = lam var_{t-1} + (1 - lam) r_t^2``.

    Zero-mean returns (RiskMetrics convention); seeded with ``r_1^2``; ``lam`` per bar in (0, 1).
    The value at t uses returns up to and including t. Indexed by return end time.
    """
    v = check_series(close, "close", positive=True, min_len=3)
    if not (0.0 < float(lam) < 1.0):
        raise InvalidInput("lam", lam, "a decay in (0, 1)")
    bar = _bar(close.index, bar_seconds)
    r2 = pd.Series(np.diff(np.log(v)) ** 2, index=close.index[1:])
    var = r2.ewm(alpha=1.0 - float(lam), adjust=False).mean()
    return _finish(var, bar, annualise)


def trailing_24h_vol(close: pd.Series, *, min_coverage: float = 0.75,
                     bar_seconds: float | None = None) -> pd.Series:
    """Trailing 24-hour volatility expressed as a 24h (daily) figure.

    At each timestamp t: the sample std (ddof=1) of the log returns whose END time lies in
    ``(t - 24h, t]`` (a time-based window, so gaps shorten it rather than stretching it), scaled
    to one day: ``sigma_24h = sigma_bar * sqrt(86,400 / bar_seconds)`` (for 1h bars: sqrt(24)).
    This is NOT annualised: 0.02 means a 1-sigma daily move of 2 %.

    Parameters
    ----------
    close : pd.Series
        Close prices (> 0) on a UTC index (bars labelled by open time).
    min_coverage : float
        NaN when fewer than ``min_coverage * 86,400 / bar_seconds`` returns fall in the window.
    bar_seconds : float or None
        Bar length; inferred (median spacing) when None.
    """
    v = check_series(close, "close", positive=True, min_len=3)
    bar = _bar(close.index, bar_seconds)
    if bar > SECONDS_PER_DAY:
        raise InvalidInput("bar_seconds", bar, "<= 86,400 (bars no longer than a day)")
    if not (0.0 < float(min_coverage) <= 1.0):
        raise InvalidInput("min_coverage", min_coverage, "a fraction in (0, 1]")
    r = pd.Series(np.diff(np.log(v)), index=close.index[1:])
    per_day = SECONDS_PER_DAY / bar
    need = max(2, int(math.ceil(min_coverage * per_day)))
    roll = r.rolling(pd.Timedelta(seconds=SECONDS_PER_DAY), min_periods=need)
    return np.sqrt(roll.var(ddof=1) * per_day).rename("vol_24h")


@dataclass(frozen=True, slots=True)
class VolTiers:
    """Volatility tiers: ``vol < upper_i -> ratio_i`` for the first matching tier, else ``top``.

    Default: 24h vol < 2 % -> 0.20, < 4 % -> 0.40, else 0.60.
    """

    uppers: tuple[float, ...] = (0.02, 0.04)
    ratios: tuple[float, ...] = (0.20, 0.40)
    top: float = 0.60

    def __post_init__(self) -> None:
        if len(self.uppers) != len(self.ratios):
            raise InvalidInput("uppers/ratios", (self.uppers, self.ratios), "the same number of entries")
        if any(not (u > 0 and math.isfinite(u)) for u in self.uppers) or list(self.uppers) != sorted(set(self.uppers)):
            raise InvalidInput("uppers", self.uppers, "strictly increasing volatilities > 0")
        for r in (*self.ratios, self.top):
            if not (math.isfinite(r) and 0 <= r <= 10):
                raise InvalidInput("ratios", r, "hedge ratios in [0, 10]")


def vol_tiered_hedge_ratio(vol: float | pd.Series, tiers: VolTiers = VolTiers()) -> float | pd.Series:
    """Hedge ratio from the 24h volatility tier (see :class:`VolTiers`).

    A scalar gives a float; a Series gives a Series (NaN volatility -> NaN ratio, documented:
    no ratio without a volatility reading).
    """
    edges = np.asarray(tiers.uppers)
    levels = np.asarray((*tiers.ratios, tiers.top))
    if isinstance(vol, pd.Series):
        v = vol.to_numpy(dtype="float64")
        if (v[np.isfinite(v)] < 0).any():
            raise InvalidInput("vol", "negative value", "volatilities >= 0")
        out = levels[np.searchsorted(edges, np.nan_to_num(v, nan=0.0), side="right")].astype(float)
        out[~np.isfinite(v)] = np.nan
        return pd.Series(out, index=vol.index, name="hedge_ratio")
    x = float(vol)
    if not (math.isfinite(x) and x >= 0):
        raise InvalidInput("vol", vol, "a finite volatility >= 0")
    return float(levels[np.searchsorted(edges, x, side="right")])
