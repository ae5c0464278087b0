"""Portfolio VaR against independent references: a 2-asset case computed by hand, numpy's
quantile on a simulated P&L (historical), scipy.stats.norm (parametric); validation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from hedge_core.book.var import (
    book_var,
    check_confidence,
    check_horizon,
    historical_var,
    parametric_var,
    parametric_var_from_cov,
)
from hedge_core.errors import InvalidInput


def test_two_assets_by_hand():
    # w = (1000 long BTC, 500 short ETH), sigma 2 % and 3 %, correlation 0.5:
    # w'Sw = 1000^2*0.0004 + 500^2*0.0009 - 2*1000*500*(0.5*0.02*0.03) = 400 + 225 - 300 = 325
    cov = [[0.0004, 0.5 * 0.02 * 0.03], [0.5 * 0.02 * 0.03, 0.0009]]
    sigma = math.sqrt(325.0)
    z95 = 1.6448536269514722  # the 95 % standard normal quantile, from tables
    assert parametric_var_from_cov([1000, -500], cov, 0.95) == pytest.approx(z95 * sigma, rel=1e-9)
    # horizon 4 bars: twice the one-bar VaR (square root of time)
    assert parametric_var_from_cov([1000, -500], cov, 0.95, 4) == pytest.approx(2 * z95 * sigma, rel=1e-9)
    # the same long/long book is riskier: correlation no longer offsets
    assert parametric_var_from_cov([1000, 500], cov, 0.95) == pytest.approx(z95 * math.sqrt(925.0), rel=1e-9)


def test_parametric_matches_scipy_on_sample_covariance():
    rng = np.random.default_rng(7)
    r = rng.multivariate_normal([0, 0, 0], [[4e-4, 2e-4, 1e-4], [2e-4, 9e-4, 0], [1e-4, 0, 1e-4]], size=500)
    w = np.array([2000.0, -1500.0, 800.0])
    s = np.cov(r, rowvar=False)
    ref = norm.ppf(0.99) * math.sqrt(float(w @ s @ w) * 24)
    assert parametric_var(w, r, 0.99, 24) == pytest.approx(ref, rel=1e-12)


def test_historical_matches_numpy_quantile_on_simulated_pnl():
    rng = np.random.default_rng(11)
    r = rng.standard_t(4, size=(2000, 2)) * 0.01
    w = np.array([1000.0, -300.0])
    pnl = r[:, 0] * 1000.0 - r[:, 1] * 300.0
    for c in (0.9, 0.95, 0.99):
        assert historical_var(w, r, c) == pytest.approx(-np.quantile(pnl, 1 - c), rel=1e-12)


def test_book_var_from_closes_uses_overlapping_horizon_returns_and_is_correlation_aware():
    rng = np.random.default_rng(3)
    n = 400
    common = rng.normal(0, 0.01, n)
    btc = 100 * np.cumprod(1 + common + rng.normal(0, 0.002, n))
    eth = 10 * np.cumprod(1 + common + rng.normal(0, 0.002, n))
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    closes = pd.DataFrame({"BTC": btc, "ETH": eth}, index=idx)
    out = book_var({"BTC": 1000.0, "ETH": -1000.0}, closes, 0.95, 6)
    hor = (closes / closes.shift(6) - 1).dropna().to_numpy()
    assert out["historical"] == pytest.approx(-np.quantile(hor @ [1000, -1000], 0.05), rel=1e-12)
    one = (closes / closes.shift(1) - 1).dropna().to_numpy()
    assert out["parametric"] == pytest.approx(norm.ppf(0.95) * math.sqrt(
        np.array([1000, -1000]) @ np.cov(one, rowvar=False) @ np.array([1000, -1000]) * 6), rel=1e-12)
    assert out["observations"] == n - 1
    # a long/short pair of highly correlated assets: far less risk than either leg alone
    assert out["diversification"] > 0.5 * sum(out["standalone"].values())
    assert book_var({"BTC": 0.0}, closes)["parametric"] == 0.0  # nothing exposed, nothing at risk


def test_validation():
    for bad in (1.0, 0.4, math.nan, "x", None):
        with pytest.raises(InvalidInput, match="confidence"):
            check_confidence(bad)
    for bad in (0, 1.5, -3, 20_000, "a"):
        with pytest.raises(InvalidInput, match="horizon"):
            check_horizon(bad)
    assert check_horizon("24") == 24 and check_confidence("0.95") == 0.95
    with pytest.raises(InvalidInput, match="returns"):
        historical_var([1.0], np.zeros((5, 1)))
    with pytest.raises(InvalidInput, match="exposures"):
        historical_var([1.0, 2.0], np.zeros((30, 1)))
    idx = pd.date_range("2024-01-01", periods=30, freq="1h", tz="UTC")
    with pytest.raises(InvalidInput, match="ETH"):
        book_var({"ETH": 1.0}, pd.DataFrame({"BTC": np.linspace(1, 2, 30)}, index=idx))
    with pytest.raises(InvalidInput, match="joint"):
        book_var({"BTC": 1.0}, pd.DataFrame({"BTC": np.linspace(1, 2, 30)}, index=idx), horizon=24)
