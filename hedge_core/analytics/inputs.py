"""Market inputs for the engine: the ``MarketUpdate.analytics`` mapping, vectorised over a history.

:func:`market_inputs` computes, for every bar, the precomputed inputs the strategies read by
name (``sigma_24h``, ``beta``, ``correlation``, ``baseline``, ``baseline_std``, ``volume_avg``,
``var_1d``, ``basis``, ``funding_apr``) from spot / perp / mark / funding frames, using the
``hedge_core.analytics`` functions. The backtester calls it once over the whole history; the
runner calls the SAME function over a trailing window and takes the last row.

No look-ahead: the result is indexed by the instant each row becomes KNOWN (bar open time +
bar length), and every value at known time t uses only bars labelled at or before ``t - bar``
and funding settled at or before t. Computing on a history truncated at any bar gives the same
last row as computing on the full history (tested). Estimators with a start-up state (EWMA,
Kalman) depend on where the history STARTS, so a runner's trailing window should be at least a
few half-lives long (``InputSpec.min_history_bars``).

Units: ``sigma_24h`` fraction per day (not annualised); ``beta``/``correlation``
dimensionless (log returns of the spot-leg asset on the hedge asset); ``baseline`` and
``baseline_std`` quote per base; ``volume_avg`` base per bar; ``var_1d`` positive fraction of
value (99 % one-day historical VaR of the spot leg); ``basis`` = (perp - spot) / spot;
``funding_apr`` = last settled rate x intervals per year.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from hedge_core.analytics.funding import funding_apr
from hedge_core.analytics.hedge_ratio import (
    KalmanParams,
    ewma_beta,
    kalman_beta,
    rolling_beta,
    rolling_correlation,
)
from hedge_core.analytics.volatility import infer_bar_seconds, trailing_24h_vol
from hedge_core.errors import InvalidInput

__all__ = ["INPUT_COLUMNS", "InputSpec", "inputs_known_at", "market_inputs"]

INPUT_COLUMNS = ("sigma_24h", "beta", "correlation", "baseline", "baseline_std", "volume_avg", "var_1d",
                 "basis", "funding_apr")


@dataclass(frozen=True, slots=True)
class InputSpec:
    """How the inputs are estimated. Windows count BARS unless stated.

    Attributes
    ----------
    beta_method : 'rolling' | 'ewma' | 'kalman'
        Estimator of ``beta`` (``analytics.hedge_ratio``).
    beta_window : int
        Rolling window (bars) for ``rolling`` beta and for ``correlation``.
    beta_halflife : float
        EWMA half-life (bars) for ``ewma`` beta.
    kalman_delta : float
        State noise of the Kalman filter (``KalmanParams.delta``).
    baseline_window : int
        Bars of the rolling linear regression of the spot close on time (``baseline``,
        ``baseline_std`` = std of the in-window residuals).
    volume_window : int
        Bars averaged for ``volume_avg`` (spot base volume).
    var_window_days : float
        History (days) of overlapping 24h log returns behind ``var_1d``.
    var_level : float
        VaR confidence level.
    """

    beta_method: Literal["rolling", "ewma", "kalman"] = "ewma"
    beta_window: int = 168
    beta_halflife: float = 72.0
    kalman_delta: float = 1e-4
    baseline_window: int = 48
    volume_window: int = 24
    var_window_days: float = 30.0
    var_level: float = 0.99

    def __post_init__(self) -> None:
        if self.beta_method not in ("rolling", "ewma", "kalman"):
            raise InvalidInput("beta_method", self.beta_method, "'rolling', 'ewma' or 'kalman'")
        for name in ("beta_window", "baseline_window", "volume_window"):
            v = getattr(self, name)
            if not (isinstance(v, int) and 2 <= v <= 1_000_000):
                raise InvalidInput(name, v, "an integer number of bars in [2, 1e6]")
        if not (math.isfinite(self.beta_halflife) and self.beta_halflife > 0):
            raise InvalidInput("beta_halflife", self.beta_halflife, "bars > 0")
        if not (math.isfinite(self.var_window_days) and 1 <= self.var_window_days <= 3650):
            raise InvalidInput("var_window_days", self.var_window_days, "days in [1, 3650]")
        if not (0.5 <= self.var_level < 1):
            raise InvalidInput("var_level", self.var_level, "a level in [0.5, 1)")

    def min_history_bars(self, bar_seconds: float) -> int:
        """Bars a trailing window needs so every column is defined (and EWMA has settled)."""
        day = math.ceil(86_400 / bar_seconds)
        return int(max(self.beta_window, 8 * self.beta_halflife, self.baseline_window, self.volume_window,
                       day * (self.var_window_days + 1)) + 2)


def _check_frame(df: pd.DataFrame | None, name: str, cols: tuple[str, ...]) -> None:
    if df is None:
        return
    if not isinstance(df.index, pd.DatetimeIndex) or df.index.tz is None:
        raise InvalidInput(f"{name}.index", type(df.index).__name__, "a tz-aware UTC DatetimeIndex (bar open times)")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InvalidInput(f"{name}.columns", list(df.columns), f"columns including {list(cols)}")
    if not df.index.is_monotonic_increasing:
        raise InvalidInput(f"{name}.index", "not increasing", "bars sorted by open time")


def _baseline(close: pd.Series, w: int) -> tuple[pd.Series, pd.Series]:
    """Rolling OLS of close on bar number over ``w`` bars: fitted value at the window end and
    the std (ddof=1) of the window's residuals. Bar numbers are centred per window, so the
    result does not depend on where the history starts."""
    y = close.to_numpy(dtype="float64")
    n = len(y)
    fit = np.full(n, np.nan)
    sd = np.full(n, np.nan)
    if n >= w:
        from numpy.lib.stride_tricks import sliding_window_view

        win = sliding_window_view(y, w)  # (n-w+1, w), row k = y[k:k+w]
        x = np.arange(w, dtype="float64") - (w - 1) / 2.0
        sxx = float(x @ x)
        my = win.mean(axis=1)
        slope = (win @ x) / sxx
        resid = win - my[:, None] - slope[:, None] * x[None, :]
        fit[w - 1:] = my + slope * x[-1]
        sd[w - 1:] = np.sqrt((resid * resid).sum(axis=1) / (w - 1))
    return pd.Series(fit, index=close.index), pd.Series(sd, index=close.index)


def market_inputs(spot: pd.DataFrame, perp: pd.DataFrame | None = None, *, mark: pd.DataFrame | None = None,
                  funding: pd.DataFrame | None = None, hedge: pd.DataFrame | None = None,
                  spec: InputSpec = InputSpec(), bar_seconds: float | None = None) -> pd.DataFrame:
    """Analytics inputs per bar, indexed by the instant they are KNOWN (open time + bar).

    Parameters
    ----------
    spot : DataFrame
        Spot bars of the spot-leg asset (open time index, ``close`` and optionally ``volume``).
    perp : DataFrame, optional
        Perp bars of the hedge leg (``close``); gives ``basis`` (same asset) and, without
        ``hedge``, the beta regressor.
    mark : DataFrame, optional
        Mark bars (unused for the inputs today; accepted so callers pass the whole market).
    funding : DataFrame, optional
        ``funding_rate`` (+ ``interval_hours``) indexed by settlement time -> ``funding_apr``
        of the last rate settled at or before each known time.
    hedge : DataFrame, optional
        Bars of the hedge asset when it differs from the spot asset (cross hedge); default perp.
    spec : InputSpec
    bar_seconds : float, optional
        Bar length; inferred from the spot index when None.

    Returns
    -------
    DataFrame
        Columns :data:`INPUT_COLUMNS` (NaN where undefined: not enough history or input absent).
    """
    _check_frame(spot, "spot", ("close",))
    _check_frame(perp, "perp", ("close",))
    _check_frame(hedge, "hedge", ("close",))
    if len(spot) < 3:
        raise InvalidInput("len(spot)", len(spot), ">= 3 bars")
    bar = float(bar_seconds) if bar_seconds is not None else infer_bar_seconds(spot.index)
    dt = pd.Timedelta(seconds=bar)
    close = spot["close"].astype("float64")
    out = pd.DataFrame(index=spot.index, columns=list(INPUT_COLUMNS), dtype="float64")
    out["sigma_24h"] = trailing_24h_vol(close, bar_seconds=bar).reindex(spot.index)
    fit, sd = _baseline(close, spec.baseline_window)
    out["baseline"], out["baseline_std"] = fit, sd
    if "volume" in spot.columns:
        out["volume_avg"] = spot["volume"].astype("float64").rolling(spec.volume_window,
                                                                     min_periods=spec.volume_window).mean()
    # 99 % one-day VaR from overlapping 24h log returns over a trailing time window
    r24 = np.log(close).diff(round(86_400 / bar)) if bar < 86_400 else np.log(close).diff()
    per_day = 86_400 / bar
    win = round(spec.var_window_days * per_day)
    need = max(int(0.75 * win), 10)
    out["var_1d"] = -r24.rolling(win, min_periods=need).quantile(1.0 - spec.var_level)
    reg = hedge if hedge is not None else perp
    if reg is not None:
        y = np.log(close).diff()
        x = np.log(reg["close"].astype("float64").reindex(spot.index)).diff()
        ok = y.notna() & x.notna()
        y2, x2 = y[ok], x[ok]
        if len(y2) >= 3:
            if spec.beta_method == "ewma":
                beta = ewma_beta(y2, x2, halflife=spec.beta_halflife)
            elif spec.beta_method == "rolling":
                beta = rolling_beta(y2, x2, window=min(spec.beta_window, len(y2))) if len(y2) >= spec.beta_window \
                    else pd.Series(np.nan, index=y2.index)
            else:
                kp = KalmanParams(delta=spec.kalman_delta, init_obs=min(spec.beta_window, max(len(y2), 3)))
                beta = kalman_beta(y2, x2, kp)
            corr = rolling_correlation(y2, x2, window=spec.beta_window) if len(y2) >= spec.beta_window \
                else pd.Series(np.nan, index=y2.index)
            out["beta"] = beta.reindex(spot.index).ffill()
            out["correlation"] = corr.reindex(spot.index).ffill()
    if perp is not None:
        p = perp["close"].astype("float64").reindex(spot.index)
        out["basis"] = (p - close) / close
    out.index = out.index + dt
    if funding is not None and len(funding):
        f = funding.sort_index()
        hours = f["interval_hours"] if "interval_hours" in f.columns else 8.0
        apr = funding_apr(f["funding_rate"].astype("float64"), hours)
        # the last settlement at or before each known time (settled at t is known at t)
        pos = np.searchsorted(apr.index.as_unit("ns").asi8, out.index.as_unit("ns").asi8, side="right") - 1
        vals = np.where(pos >= 0, apr.to_numpy()[np.clip(pos, 0, None)], np.nan)
        out["funding_apr"] = vals
    return out


def inputs_known_at(inputs: pd.DataFrame, t: object) -> dict[str, float]:
    """The analytics mapping known at instant ``t``: the last row with known time <= t, NaNs dropped."""
    ts = pd.Timestamp(t)
    i = int(inputs.index.searchsorted(ts, side="right")) - 1
    if i < 0:
        return {}
    row = inputs.iloc[i]
    return {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and math.isfinite(v)}
