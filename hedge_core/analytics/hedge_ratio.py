"""Hedge ratios between a position ``y`` (e.g. spot) and a hedge instrument ``x`` (e.g. a perp).

Conventions
-----------
- Inputs are pandas Series on a tz-aware UTC ``DatetimeIndex``. Two series are aligned on the
  INTERSECTION of their indexes (timestamps present in only one are dropped; the index is never
  assumed dense). This works the same for the same asset (BTC spot vs BTC perp) and across assets
  (ETH spot vs BTC perp).
- NaN/inf values raise :class:`~hedge_core.errors.InvalidInput` naming the first bad timestamp:
  represent gaps as missing rows (``dropna()``), never as NaN.
- Which series to regress is the caller's choice: :func:`returns_of` gives log returns, simple
  returns or price levels. For hedging, returns are the usual choice; regressions on levels are
  for cointegration-style spreads.
- Ratios are dimensionless: ``h`` = units of hedge notional per unit of position notional when
  the inputs are returns; base-per-base when the inputs are price levels. A hedge SELLS
  ``h`` x position of the hedge instrument (sign: the hedge is opposite to the position).
- Fast paths (rolling OLS / correlation, EWMA, Kalman) are O(N) numba recursions; each is tested
  against a slow reference (per-window statsmodels OLS, numpy corrcoef, a plain Python loop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from hedge_core.analytics import _kernels
from hedge_core.analytics._checks import align, check_fraction, check_series, check_window
from hedge_core.errors import InvalidInput

ReturnKind = Literal["log", "simple", "level"]

__all__ = [
    "returns_of",
    "OLSHedge",
    "ols_hedge",
    "rolling_beta",
    "rolling_correlation",
    "min_variance_hedge_ratio",
    "ewma_beta",
    "KalmanParams",
    "kalman_beta",
    "CointegrationResult",
    "cointegration",
    "ADFResult",
    "adf",
    "half_life",
    "BetaStability",
    "beta_stability",
    "hedge_effectiveness",
    "EffectivenessSplit",
    "effectiveness_split",
    "compare_methods",
]


# ---- inputs --------------------------------------------------------------------------------


def returns_of(prices: pd.Series, kind: ReturnKind = "log") -> pd.Series:
    """Per-observation returns of a price series, or the prices themselves.

    Parameters
    ----------
    prices : pd.Series
        Prices (quote per base, > 0) on a UTC index. Gaps are missing rows; a return is taken
        between CONSECUTIVE rows present, so a return across a gap spans the gap (documented, not
        hidden: check the index if that matters).
    kind : {'log', 'simple', 'level'}
        ``log``: ln(p_t / p_{t-1}); ``simple``: p_t / p_{t-1} - 1; ``level``: the prices unchanged.

    Returns
    -------
    pd.Series
        Float64, labelled by the END timestamp of each return (first observation dropped), or the
        prices for ``level``.
    """
    v = check_series(prices, "prices", positive=True, min_len=2)
    if kind == "level":
        return prices.astype("float64")
    if kind == "log":
        r = np.diff(np.log(v))
    elif kind == "simple":
        r = v[1:] / v[:-1] - 1.0
    else:
        raise InvalidInput("kind", kind, "'log', 'simple' or 'level'")
    return pd.Series(r, index=prices.index[1:], name=prices.name, copy=False)


# ---- static OLS --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OLSHedge:
    """Static OLS of ``y = intercept + slope * x + e`` (statsmodels).

    ``slope`` is the hedge ratio; standard errors are the classical (non-robust) ones; ``r2`` is
    the coefficient of determination; ``n`` the number of aligned observations used.
    """

    slope: float
    intercept: float
    slope_se: float
    intercept_se: float
    r2: float
    n: int
    resid_var: float  # residual variance (ddof = 2), in units of y squared


def ols_hedge(y: pd.Series, x: pd.Series) -> OLSHedge:
    """OLS hedge ratio of ``y`` on ``x`` with an intercept, on their common timestamps."""
    ya, xa = align(y, x, min_len=3)
    import statsmodels.api as sm  # lazy: ~1 s of import a backtest never needs

    res = sm.OLS(ya.to_numpy(), sm.add_constant(xa.to_numpy(), has_constant="add")).fit()
    (c, b), (c_se, b_se) = res.params, res.bse
    return OLSHedge(slope=float(b), intercept=float(c), slope_se=float(b_se),
                    intercept_se=float(c_se), r2=float(res.rsquared), n=int(res.nobs),
                    resid_var=float(res.scale))


def min_variance_hedge_ratio(spot: pd.Series, hedge: pd.Series) -> float:
    """Minimum-variance hedge ratio ``h* = rho * sigma_spot / sigma_hedge`` over the common sample.

    Inputs are returns (the caller chooses the kind). Equal to the OLS slope of spot on hedge.
    """
    ya, xa = align(spot, hedge, ("spot", "hedge"), min_len=3)
    yv, xv = ya.to_numpy(), xa.to_numpy()
    sy, sx = yv.std(ddof=1), xv.std(ddof=1)
    if sx == 0.0:
        raise InvalidInput("hedge", "constant series", "a hedge series with non-zero variance")
    if sy == 0.0:
        return 0.0
    rho = np.corrcoef(yv, xv)[0, 1]
    return float(rho * sy / sx)


# ---- rolling (O(N)) ------------------------------------------------------------------------


def _rolling(y: pd.Series, x: pd.Series, window: int, mode: int) -> pd.Series:
    ya, xa = align(y, x)
    w = check_window(window, len(ya))
    out = _kernels.rolling_stat(np.ascontiguousarray(xa.to_numpy()), np.ascontiguousarray(ya.to_numpy()),
                                w, mode)
    return pd.Series(out, index=ya.index, name="beta" if mode == 0 else "correlation", copy=False)


def rolling_beta(y: pd.Series, x: pd.Series, window: int) -> pd.Series:
    """OLS slope of y on x over each trailing window of ``window`` points (NaN until the first full window).

    Computed in O(N) from block-anchored co-moment sums (see ``_kernels``), equal to a per-window
    statsmodels OLS with intercept to ~1e-12. Series are aligned on their common timestamps and
    ``window`` counts aligned observations (not time). A window where ``x`` is constant (centred
    sum of squares below ``1e-14 * window * max(x^2)``) gives NaN.

    Parameters
    ----------
    y, x : pd.Series
        Dependent (position) and regressor (hedge) series on UTC indexes.
    window : int
        Number of aligned observations, ``2 <= window <= len(aligned)``; otherwise InvalidInput.

    Returns
    -------
    pd.Series
        Slope (dimensionless for returns), indexed by the aligned index, named ``beta``.
    """
    return _rolling(y, x, window, 0)


def rolling_correlation(y: pd.Series, x: pd.Series, window: int) -> pd.Series:
    """Pearson correlation of y and x over each trailing window of ``window`` aligned points.

    Same O(N) kernel and conventions as :func:`rolling_beta`; NaN before the first full window
    and where either series is constant in the window.
    """
    return _rolling(y, x, window, 1)


# ---- EWMA ---------------------------------------------------------------------------------


def ewma_beta(y: pd.Series, x: pd.Series, halflife: float) -> pd.Series:
    """Exponentially weighted beta = EW cov(y, x) / EW var(x), recursive (pandas ``adjust=False``).

    ``alpha = 1 - 0.5 ** (1 / halflife)`` with ``halflife`` in observations (> 0). The first
    value is NaN (no variance yet). Equal to ``y.ewm(alpha, adjust=False).cov(x, bias=True) /
    x.ewm(alpha, adjust=False).var(bias=True)``.
    """
    ya, xa = align(y, x)
    hl = float(halflife)
    if not (math.isfinite(hl) and hl > 0):
        raise InvalidInput("halflife", halflife, "a number of observations > 0")
    alpha = 1.0 - 0.5 ** (1.0 / hl)
    out = _kernels.ewm_beta(np.ascontiguousarray(xa.to_numpy()), np.ascontiguousarray(ya.to_numpy()), alpha)
    return pd.Series(out, index=ya.index, name="beta", copy=False)


# ---- Kalman -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KalmanParams:
    """Noise parameters of the time-varying-beta Kalman filter.

    Model: ``y_t = alpha_t + beta_t * x_t + v_t``, ``v_t ~ N(0, obs_var)``; the state
    ``(alpha_t, beta_t)`` follows a random walk with covariance ``Q = delta / (1 - delta) * I``
    (the parametrisation of E. Chan, *Algorithmic Trading*, 2013). ``delta -> 0`` gives
    recursive least squares (a constant beta); larger ``delta`` lets beta move faster.

    Attributes
    ----------
    delta : float
        In [0, 1). Default 1e-4 (per observation).
    obs_var : float or None
        Observation noise variance in units of y squared (> 0). None: the residual variance of an
        OLS on the first ``init_obs`` observations (no look-ahead beyond them).
    init_obs : int
        Observations used for the default ``obs_var`` (>= 3).
    beta0, alpha0 : float
        Prior state. ``p0`` prior variance of each state component (> 0).
    with_alpha : bool
        Estimate a time-varying intercept too (default True); False fits ``y = beta x``.
    """

    delta: float = 1e-4
    obs_var: float | None = None
    init_obs: int = 500
    beta0: float = 0.0
    alpha0: float = 0.0
    p0: float = 1.0
    with_alpha: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.delta) and 0.0 <= self.delta < 1.0):
            raise InvalidInput("delta", self.delta, "a number in [0, 1)")
        if self.obs_var is not None and not (math.isfinite(self.obs_var) and self.obs_var > 0):
            raise InvalidInput("obs_var", self.obs_var, "a variance > 0 or None")
        if self.init_obs < 3:
            raise InvalidInput("init_obs", self.init_obs, ">= 3 observations")
        if not (math.isfinite(self.p0) and self.p0 > 0):
            raise InvalidInput("p0", self.p0, "a prior variance > 0")


def kalman_beta(y: pd.Series, x: pd.Series, params: KalmanParams = KalmanParams(),
                *, full: bool = False) -> pd.Series | pd.DataFrame:
    """Time-varying hedge ratio from a Kalman filter (filtered estimate, no look-ahead).

    Parameters
    ----------
    y, x : pd.Series
        Position and hedge series (returns or levels) on UTC indexes, aligned on the intersection.
    params : KalmanParams
        Noise and prior parameters (see its docstring for the model).
    full : bool
        Return a DataFrame with ``alpha``, ``beta`` and the innovation variance ``s`` instead.

    Returns
    -------
    pd.Series or pd.DataFrame
        ``beta_t`` after observing ``y_t`` (dimensionless for returns).
    """
    ya, xa = align(y, x)
    xv = np.ascontiguousarray(xa.to_numpy())
    yv = np.ascontiguousarray(ya.to_numpy())
    r = params.obs_var
    if r is None:
        m = min(params.init_obs, len(xv))
        if m < 3:
            raise InvalidInput("len(aligned)", len(xv), ">= 3 observations to estimate obs_var")
        X = np.column_stack([np.ones(m), xv[:m]]) if params.with_alpha else xv[:m, None]
        coef, *_ = np.linalg.lstsq(X, yv[:m], rcond=None)
        resid = yv[:m] - X @ coef
        r = float(resid @ resid / max(m - X.shape[1], 1))
        if not r > 0:
            r = float(np.finfo(float).tiny)
    q = params.delta / (1.0 - params.delta)
    if params.with_alpha:
        a, b, s = _kernels.kalman_alpha_beta(xv, yv, q, r, params.alpha0, params.beta0, params.p0, full)
    else:
        b, s = _kernels.kalman_beta_only(xv, yv, q, r, params.beta0, params.p0)
        a = np.zeros_like(b)
    if full:
        return pd.DataFrame({"alpha": a, "beta": b, "s": s}, index=ya.index)
    return pd.Series(b, index=ya.index, name="beta", copy=False)


# ---- diagnostics --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CointegrationResult:
    """Engle-Granger test of ``y`` on ``x`` (statsmodels ``coint``): H0 = no cointegration."""

    tstat: float
    pvalue: float
    crit_1pct: float
    crit_5pct: float
    crit_10pct: float
    hedge: OLSHedge  # the cointegrating regression y = c + b x

    @property
    def cointegrated_5pct(self) -> bool:
        return self.pvalue < 0.05


def cointegration(y: pd.Series, x: pd.Series, maxlag: int | None = None) -> CointegrationResult:
    """Engle-Granger cointegration of two PRICE LEVEL series on their common timestamps.

    ``maxlag``: most ADF lags tried (AIC picks); None = statsmodels' default ``12 (n/100)^(1/4)``,
    slow on long hourly series -- e.g. 24 for hourly data (one day).
    """
    ya, xa = align(y, x, min_len=20)
    from statsmodels.tsa.stattools import coint

    t, p, crit = coint(ya.to_numpy(), xa.to_numpy(), trend="c", autolag="aic", maxlag=maxlag)
    return CointegrationResult(float(t), float(p), float(crit[0]), float(crit[1]), float(crit[2]),
                               ols_hedge(ya, xa))


@dataclass(frozen=True, slots=True)
class ADFResult:
    """Augmented Dickey-Fuller test (statsmodels ``adfuller``, constant): H0 = unit root."""

    stat: float
    pvalue: float
    lags: int
    nobs: int
    crit_5pct: float

    @property
    def stationary_5pct(self) -> bool:
        return self.pvalue < 0.05


def adf(series: pd.Series, maxlag: int | None = None) -> ADFResult:
    """ADF test of one series (e.g. a hedge spread); ``maxlag`` as in :func:`cointegration`."""
    from statsmodels.tsa.stattools import adfuller

    v = check_series(series, "series", min_len=20)
    try:  # statsmodels >= 0.15 warns unless the tuple form is requested explicitly
        out = adfuller(v, maxlag=maxlag, regression="c", autolag="AIC", result_object=False)
    except TypeError:  # older statsmodels: no result_object argument
        out = adfuller(v, maxlag=maxlag, regression="c", autolag="AIC")
    stat, p, lags, nobs, crit = out[:5]
    return ADFResult(float(stat), float(p), int(lags), int(nobs), float(crit["5%"]))


def half_life(spread: pd.Series) -> float:
    """Mean-reversion half-life of a spread, in OBSERVATIONS (multiply by the bar length).

    Fits ``s_t - s_{t-1} = c + phi * s_{t-1} + e`` (AR(1) in differences) by OLS and returns
    ``-ln 2 / ln(1 + phi)``. ``inf`` when the spread does not mean-revert (``phi >= 0``).
    """
    v = check_series(spread, "spread", min_len=10)
    lag, d = v[:-1], np.diff(v)
    import statsmodels.api as sm

    res = sm.OLS(d, sm.add_constant(lag, has_constant="add")).fit()
    phi = float(res.params[1])
    if phi >= 0 or phi <= -1:
        return math.inf if phi >= 0 else 0.0
    return float(-math.log(2.0) / math.log1p(phi))


@dataclass(frozen=True, slots=True)
class BetaStability:
    """How much the hedge ratio moves: rolling-beta dispersion and a Chow break test at the middle.

    ``chow_f``/``chow_pvalue``: F test that intercept and slope are equal in the two halves
    (H0 = stable); ``beta_first``/``beta_second``: OLS slopes of each half.
    """

    mean: float
    std: float
    min: float
    max: float
    range: float
    beta_first: float
    beta_second: float
    chow_f: float
    chow_pvalue: float


def beta_stability(y: pd.Series, x: pd.Series, window: int) -> BetaStability:
    """Stability of the hedge ratio of y on x (rolling-beta dispersion and a mid-sample Chow test)."""
    import statsmodels.api as sm
    from scipy import stats

    rb = rolling_beta(y, x, window).dropna()
    ya, xa = align(y, x, min_len=8)
    n = len(ya)
    k = 2
    mid = n // 2

    def _ssr(yy: np.ndarray, xx: np.ndarray) -> tuple[float, float]:
        res = sm.OLS(yy, sm.add_constant(xx, has_constant="add")).fit()
        return float(res.ssr), float(res.params[1])

    yv, xv = ya.to_numpy(), xa.to_numpy()
    s_all, _ = _ssr(yv, xv)
    s1, b1 = _ssr(yv[:mid], xv[:mid])
    s2, b2 = _ssr(yv[mid:], xv[mid:])
    denom = (s1 + s2) / (n - 2 * k)
    f = ((s_all - s1 - s2) / k) / denom if denom > 0 else math.inf
    p = float(stats.f.sf(f, k, n - 2 * k)) if math.isfinite(f) else 0.0
    vals = rb.to_numpy()
    return BetaStability(mean=float(vals.mean()), std=float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                         min=float(vals.min()), max=float(vals.max()), range=float(vals.max() - vals.min()),
                         beta_first=b1, beta_second=b2, chow_f=float(f), chow_pvalue=p)


def hedge_effectiveness(y: pd.Series, x: pd.Series, h: float | pd.Series, *, lag: int = 1) -> float:
    """Hedge effectiveness ``1 - Var(y - h x) / Var(y)`` (<= 1; 1 = perfect hedge).

    Parameters
    ----------
    y, x : pd.Series
        Returns of the position and of the hedge, aligned on their common timestamps.
    h : float or pd.Series
        Hedge ratio. A Series (time-varying ratio) is aligned to the returns and SHIFTED by
        ``lag`` observations (default 1: the return over (t-1, t] is hedged with the ratio known
        at t-1, so no look-ahead); observations without a ratio are dropped.
    lag : int
        Shift for a Series ``h`` (>= 0).

    Returns
    -------
    float
        May be negative (a hedge that adds variance); NaN if Var(y) == 0.
    """
    ya, xa = align(y, x, min_len=3)
    if isinstance(h, pd.Series):
        if lag < 0:
            raise InvalidInput("lag", lag, ">= 0 observations")
        hh = h.reindex(ya.index).shift(lag)
        keep = hh.notna().to_numpy()
        if keep.sum() < 3:
            raise InvalidInput("h", "fewer than 3 usable ratios", "a hedge-ratio Series overlapping y and x")
        yv, xv, hv = ya.to_numpy()[keep], xa.to_numpy()[keep], hh.to_numpy()[keep]
    else:
        hv = float(h)
        if not math.isfinite(hv):
            raise InvalidInput("h", h, "a finite hedge ratio")
        yv, xv = ya.to_numpy(), xa.to_numpy()
    vu = yv.var(ddof=1)
    if vu == 0:
        return math.nan
    return float(1.0 - (yv - hv * xv).var(ddof=1) / vu)


@dataclass(frozen=True, slots=True)
class EffectivenessSplit:
    """In-sample and out-of-sample hedge effectiveness of an OLS ratio fitted on the train part."""

    h: float
    in_sample: float
    out_of_sample: float
    split_time: pd.Timestamp
    n_train: int
    n_test: int


def effectiveness_split(y: pd.Series, x: pd.Series, train_frac: float = 0.7) -> EffectivenessSplit:
    """Fit ``h`` by OLS on the first ``train_frac`` of the aligned sample; evaluate on both parts.

    ``split_time`` is the first timestamp of the test part.
    """
    tf = check_fraction(train_frac, "train_frac")
    ya, xa = align(y, x, min_len=10)
    k = int(len(ya) * tf)
    if k < 3 or len(ya) - k < 3:
        raise InvalidInput("train_frac", train_frac, "a split leaving >= 3 observations on each side")
    h = ols_hedge(ya.iloc[:k], xa.iloc[:k]).slope
    return EffectivenessSplit(h=h, in_sample=hedge_effectiveness(ya.iloc[:k], xa.iloc[:k], h),
                              out_of_sample=hedge_effectiveness(ya.iloc[k:], xa.iloc[k:], h),
                              split_time=ya.index[k], n_train=k, n_test=len(ya) - k)


def compare_methods(y: pd.Series, x: pd.Series, window: int, halflife: float,
                    kalman: KalmanParams = KalmanParams()) -> pd.DataFrame:
    """Rolling OLS, EWMA and Kalman betas side by side (columns ``rolling``, ``ewma``, ``kalman``),
    plus the static full-sample OLS slope as a constant column ``static``. Inputs as for each method.
    """
    ya, xa = align(y, x)
    return pd.DataFrame({
        "rolling": rolling_beta(ya, xa, window),
        "ewma": ewma_beta(ya, xa, halflife),
        "kalman": kalman_beta(ya, xa, kalman),
        "static": ols_hedge(ya, xa).slope,
    })
