"""Performance metrics and hedge-book KPIs (pure).

Conventions
-----------
- Returns are simple per-period returns (fractions). Annualisation is 24/7:
  ``periods_per_year = 365 x 24 x 3600 / bar_seconds`` with the bar inferred (median spacing) from
  the index when not given.
- Drawdowns are reported as POSITIVE fractions of the running peak (0.25 = a 25 % fall).
- Money KPIs in quote units (USDT); ratios are fractions.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from hedge_core.analytics._checks import check_series
from hedge_core.analytics.volatility import infer_bar_seconds, periods_per_year
from hedge_core.errors import InvalidInput

__all__ = [
    "drawdown",
    "max_drawdown",
    "sharpe",
    "sortino",
    "net_apr",
    "funding_efficiency",
    "loan_coverage_ratio",
    "ltv_stability",
]


def drawdown(equity: pd.Series) -> pd.Series:
    """Drawdown path ``equity / running_max - 1`` (<= 0). Equity must be > 0."""
    check_series(equity, "equity", positive=True)
    return (equity / equity.cummax() - 1.0).rename("drawdown")


def max_drawdown(equity: pd.Series) -> float:
    """Largest peak-to-trough fall as a positive fraction (0.0 if equity never falls)."""
    return float(-drawdown(equity).min())


def _ppy(returns: pd.Series, bar_seconds: float | None) -> float:
    return periods_per_year(infer_bar_seconds(returns.index) if bar_seconds is None else bar_seconds)


def sharpe(returns: pd.Series, *, bar_seconds: float | None = None, rf_annual: float = 0.0) -> float:
    """Annualised Sharpe ratio: ``mean(r - rf/ppy) / std(r, ddof=1) * sqrt(ppy)`` (24/7).

    NaN when the returns have zero variance.
    """
    v = check_series(returns, "returns", min_len=3)
    ppy = _ppy(returns, bar_seconds)
    ex = v - rf_annual / ppy
    sd = v.std(ddof=1)
    return float(ex.mean() / sd * math.sqrt(ppy)) if sd > 0 else math.nan


def sortino(returns: pd.Series, *, bar_seconds: float | None = None, rf_annual: float = 0.0) -> float:
    """Annualised Sortino ratio: ``mean(r - rf/ppy) / DD * sqrt(ppy)``, with downside deviation
    ``DD = sqrt(mean(min(r - rf/ppy, 0)^2))`` over ALL observations. ``inf`` if no downside."""
    v = check_series(returns, "returns", min_len=3)
    ppy = _ppy(returns, bar_seconds)
    ex = v - rf_annual / ppy
    dd = math.sqrt(float(np.mean(np.minimum(ex, 0.0) ** 2)))
    if dd == 0:
        return math.inf if ex.mean() > 0 else math.nan
    return float(ex.mean() / dd * math.sqrt(ppy))


def net_apr(pnl: float, capital: float, start: pd.Timestamp, end: pd.Timestamp) -> float:
    """Net APR (simple): ``pnl / capital x 365 d / (end - start)``.

    ``pnl`` is net of fees, funding and interest (USDT); ``capital`` > 0 (USDT).
    """
    c = float(capital)
    if not (math.isfinite(c) and c > 0):
        raise InvalidInput("capital", capital, "capital > 0 (USDT)")
    s, e = pd.Timestamp(start), pd.Timestamp(end)
    if s.tzinfo is None or e.tzinfo is None:
        raise InvalidInput("start/end", (start, end), "tz-aware UTC timestamps")
    years = (e - s) / pd.Timedelta(days=365)
    if years <= 0:
        raise InvalidInput("end", str(e), f"> start ({s})")
    return float(pnl) / c / years


def funding_efficiency(funding_paid: float, gross_profit: float) -> float:
    """Share of gross profit spent on funding: ``funding_paid / gross_profit``.

    ``funding_paid`` is the net funding PAID (>= 0 means paid; negative means net received),
    ``gross_profit`` the profit before funding (USDT). NaN when ``gross_profit <= 0`` (undefined:
    there is no profit to spend).
    """
    g = float(gross_profit)
    f = float(funding_paid)
    if not (math.isfinite(g) and math.isfinite(f)):
        raise InvalidInput("funding_paid/gross_profit", (funding_paid, gross_profit), "finite amounts")
    return f / g if g > 0 else math.nan


def loan_coverage_ratio(cumulative_repayment: float, initial_loan: float) -> float:
    """Loan coverage = cumulative repayment / initial loan (1.0 = fully repaid)."""
    il = float(initial_loan)
    if not (math.isfinite(il) and il > 0):
        raise InvalidInput("initial_loan", initial_loan, "an initial loan > 0 (USDT)")
    r = float(cumulative_repayment)
    if not (math.isfinite(r) and r >= 0):
        raise InvalidInput("cumulative_repayment", cumulative_repayment, "finite and >= 0 (USDT)")
    return r / il


def ltv_stability(ltv_series: pd.Series, threshold: float = 0.65) -> float:
    """Share of TIME the LTV stayed strictly below ``threshold`` (default 65 %).

    The LTV is a step function: each observation holds until the next timestamp; the last one is
    weighted with the median spacing. On a regular index this is the share of observations.
    """
    v = check_series(ltv_series, "ltv", min_len=1)
    if not (math.isfinite(threshold) and threshold > 0):
        raise InvalidInput("threshold", threshold, "an LTV fraction > 0")
    if len(v) == 1:
        return float(v[0] < threshold)
    d = np.diff(ltv_series.index.as_unit("ns").asi8).astype("float64")
    w = np.append(d, np.median(d))
    return float(w[v < threshold].sum() / w.sum())
