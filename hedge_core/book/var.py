"""Portfolio Value-at-Risk of the book: historical and parametric (variance-covariance).

Inputs are the book's net exposure per asset in quote (``delta x price``, signed: long > 0) and
the assets' close prices on a common time grid (the store's bars; :mod:`hedge_core.book.returns`
reads them). Correlation-aware: both methods price the assets' joint moves, so a long BTC and a
short ETH offset each other as much as their history says.

- **historical**: P&L_t = sum_i w_i r_{i,t}, with r the OVERLAPPING ``horizon``-bar simple
  returns ``C_t / C_{t-h} - 1`` of the closes; ``VaR = -quantile(P&L, 1 - confidence)``
  (numpy's linear interpolation).
- **parametric**: ``VaR = z_confidence x sqrt(w' S w x horizon)``, ``S`` the sample covariance
  (ddof=1) of the one-bar returns, ``z`` the standard normal quantile (``statistics.NormalDist``:
  Wichura's AS241, exact to double precision; importing scipy on the runner's event loop would
  stall it for a second); zero mean (the drift
  over a short horizon is noise) and square-root-of-time scaling.

VaR is a POSITIVE quote amount: the loss not exceeded with probability ``confidence`` over
``horizon`` bars of the closes' timeframe (1h bars, horizon 24: one day).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from hedge_core.errors import InvalidInput

__all__ = ["MIN_OBS", "book_var", "check_confidence", "check_horizon", "historical_var", "parametric_var",
           "parametric_var_from_cov"]

MIN_OBS = 20  # fewer joint returns than this: no VaR (the tail quantile would be one or two points)


def check_confidence(confidence: Any) -> float:
    """Validate a confidence level: a number in [0.5, 1) (0.99 = the loss exceeded 1 % of the time)."""
    try:
        c = float(confidence)
    except (TypeError, ValueError):
        raise InvalidInput("confidence", confidence, "a number in [0.5, 1), e.g. 0.95 or 0.99") from None
    if not (math.isfinite(c) and 0.5 <= c < 1.0):
        raise InvalidInput("confidence", confidence, "a number in [0.5, 1), e.g. 0.95 or 0.99")
    return c


def check_horizon(horizon: Any) -> int:
    """Validate a horizon: a whole number of bars in [1, 10000]."""
    try:
        h = float(horizon)
    except (TypeError, ValueError):
        raise InvalidInput("horizon", horizon, "a whole number of bars in [1, 10000]") from None
    if not (math.isfinite(h) and h == int(h) and 1 <= h <= 10_000):
        raise InvalidInput("horizon", horizon, "a whole number of bars in [1, 10000]")
    return int(h)


def _weights(exposures: Any, n: int | None = None) -> np.ndarray:
    w = np.asarray(exposures, dtype="float64").ravel()
    if not np.isfinite(w).all():
        raise InvalidInput("exposures", "non-finite", "finite quote exposures per asset")
    if n is not None and len(w) != n:
        raise InvalidInput("exposures", len(w), f"one exposure per asset column ({n})")
    return w


def historical_var(exposures: Any, horizon_returns: Any, confidence: float = 0.99) -> float:
    """Historical VaR (quote, >= 0 for a loss) of exposures ``w`` (quote, signed) over return rows.

    ``horizon_returns`` is T x n (one row per observation, one column per asset, the returns over
    the VaR horizon). ``VaR = -quantile(R @ w, 1 - confidence)``.
    """
    c = check_confidence(confidence)
    r = np.asarray(horizon_returns, dtype="float64")
    if r.ndim != 2 or len(r) < MIN_OBS:
        raise InvalidInput("returns", f"{len(r) if r.ndim else 0} rows", f">= {MIN_OBS} joint observations")
    if not np.isfinite(r).all():
        raise InvalidInput("returns", "non-finite values", "finite returns (gaps dropped first)")
    pnl = r @ _weights(exposures, r.shape[1])
    return float(-np.quantile(pnl, 1.0 - c))


def parametric_var_from_cov(exposures: Any, cov: Any, confidence: float = 0.99, horizon: int = 1) -> float:
    """Gaussian VaR (quote) of exposures ``w`` with covariance ``cov`` of one-bar returns:
    ``z_confidence x sqrt(w' cov w x horizon)``."""
    c, h = check_confidence(confidence), check_horizon(horizon)
    s = np.atleast_2d(np.asarray(cov, dtype="float64"))
    w = _weights(exposures, s.shape[0])
    if s.shape != (len(w), len(w)) or not np.isfinite(s).all():
        raise InvalidInput("cov", s.shape, f"a finite {len(w)} x {len(w)} covariance matrix")
    var = float(w @ s @ w)
    if var < -1e-12 * max(1.0, float(np.abs(w).sum()) ** 2):
        raise InvalidInput("cov", "not positive semi-definite", "a covariance matrix (w' S w >= 0)")
    return float(NormalDist().inv_cdf(c) * math.sqrt(max(var, 0.0) * h))


def parametric_var(exposures: Any, returns: Any, confidence: float = 0.99, horizon: int = 1) -> float:
    """Gaussian VaR (quote) from one-bar returns (T x n): their sample covariance (ddof=1)."""
    r = np.asarray(returns, dtype="float64")
    if r.ndim != 2 or len(r) < MIN_OBS:
        raise InvalidInput("returns", f"{len(r) if r.ndim else 0} rows", f">= {MIN_OBS} joint observations")
    if not np.isfinite(r).all():
        raise InvalidInput("returns", "non-finite values", "finite returns (gaps dropped first)")
    cov = np.cov(r, rowvar=False, ddof=1)
    return parametric_var_from_cov(exposures, cov, confidence, horizon)


def book_var(exposures: Mapping[str, float], closes: pd.DataFrame, confidence: float = 0.99,
             horizon: int = 24) -> dict[str, Any]:
    """Both VaRs of the book, and what diversification is worth.

    Parameters
    ----------
    exposures
        Net exposure per asset (quote, signed): ``AssetRow.delta_quote``.
    closes
        Close prices, one column per asset, indexed by time (rows with any gap are dropped: the
        returns are joint).
    confidence, horizon
        See :func:`check_confidence`, :func:`check_horizon` (horizon in bars of ``closes``).

    Returns
    -------
    dict
        ``historical``, ``parametric`` (quote, >= 0 for a loss), ``standalone`` (per asset,
        parametric, as if it were alone), ``diversification`` (sum of standalone - parametric,
        >= 0 when correlation helps), ``observations`` (joint one-bar returns used),
        ``confidence``, ``horizon``, ``start``, ``end`` (the returns' window, ISO).
    """
    c, h = check_confidence(confidence), check_horizon(horizon)
    assets = [a for a, x in exposures.items() if x]
    missing = [a for a in assets if a not in closes.columns]
    if missing:
        raise InvalidInput("closes", missing[0], f"close prices for every asset with exposure: {assets}")
    out: dict[str, Any] = {"confidence": c, "horizon": h, "historical": 0.0, "parametric": 0.0, "standalone": {},
                           "diversification": 0.0, "observations": 0, "start": None, "end": None}
    if not assets:
        return out
    px = closes[assets].astype("float64").dropna()
    if (px <= 0).any().any():
        raise InvalidInput("closes", "a price <= 0", "positive close prices")
    one = (px / px.shift(1) - 1.0).dropna()
    hor = (px / px.shift(h) - 1.0).dropna()
    if len(hor) < MIN_OBS:
        raise InvalidInput("returns", f"{len(hor)} joint {h}-bar returns",
                           f">= {MIN_OBS}: a longer history or a shorter horizon")
    w = np.array([float(exposures[a]) for a in assets])
    cov = np.cov(one.to_numpy(), rowvar=False, ddof=1).reshape(len(assets), len(assets))
    out["historical"] = historical_var(w, hor.to_numpy(), c)
    out["parametric"] = parametric_var_from_cov(w, cov, c, h)
    out["standalone"] = {a: parametric_var_from_cov([w[i]], cov[i, i], c, h) for i, a in enumerate(assets)}
    out["diversification"] = sum(out["standalone"].values()) - out["parametric"]
    out["observations"] = int(len(one))
    out["start"], out["end"] = px.index[0].isoformat(), px.index[-1].isoformat()
    return out
