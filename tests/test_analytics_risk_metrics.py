"""Leverage choice, VaR/CVaR (vs scipy/numpy by hand), drawdown, Sharpe/Sortino, hedge-book KPIs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hedge_core.analytics.metrics import (
    drawdown,
    funding_efficiency,
    loan_coverage_ratio,
    ltv_stability,
    max_drawdown,
    net_apr,
    sharpe,
    sortino,
)
from hedge_core.analytics.risk import (
    BTCUSDT_BRACKETS,
    ETHUSDT_BRACKETS,
    cvar_historical,
    cvar_parametric,
    leverage_for_liquidation_buffer,
    leverage_for_target_vol,
    liquidation_distance,
    liquidation_price,
    var_historical,
    var_parametric,
)
from hedge_core.errors import InvalidInput


def _idx(n, freq="h"):
    return pd.date_range("2024-01-01", periods=n, freq=freq, tz="UTC")


@pytest.mark.parametrize("side", [1, -1])
@pytest.mark.parametrize("buffer,notional,table", [
    (0.30, 40_000, BTCUSDT_BRACKETS), (0.10, 600_000, BTCUSDT_BRACKETS), (0.25, 300_000, ETHUSDT_BRACKETS)])
def test_leverage_for_buffer_puts_liquidation_exactly_at_the_buffer(side, buffer, notional, table):
    lev = leverage_for_liquidation_buffer(buffer, notional, table, side=side, max_leverage=200)
    ep = 50_000.0
    qty = side * notional / ep
    lp = liquidation_price(qty, ep, notional / lev, table)  # isolated margin = notional / L
    assert liquidation_distance(qty, ep, lp) == pytest.approx(buffer, rel=1e-9)


def test_leverage_bounds():
    # a tiny buffer would allow > 125x: clipped to the bracket max
    assert leverage_for_liquidation_buffer(0.001, 10_000, BTCUSDT_BRACKETS, side=1) == 125
    # a 1.1x short already has a ~90 % buffer; the lower bound binds above that
    assert leverage_for_liquidation_buffer(0.9, 10_000, BTCUSDT_BRACKETS, side=-1) == pytest.approx(1 / (1.9 * 1.004 - 1))
    assert leverage_for_liquidation_buffer(0.9, 10_000, BTCUSDT_BRACKETS, side=-1, min_leverage=2.0) == 2.0
    assert leverage_for_liquidation_buffer(0.001, 10_000, BTCUSDT_BRACKETS, max_leverage=5) == 5
    assert leverage_for_target_vol(0.2, 0.8) == 1.0  # 0.25 clipped up to min 1
    assert leverage_for_target_vol(0.6, 0.2) == pytest.approx(3.0)
    assert leverage_for_target_vol(0.6, 0.01, max_leverage=20) == 20
    with pytest.raises(InvalidInput, match="buffer"):
        leverage_for_liquidation_buffer(1.5, 10_000, BTCUSDT_BRACKETS)
    with pytest.raises(InvalidInput, match="max_leverage"):
        leverage_for_target_vol(0.6, 0.2, min_leverage=3, max_leverage=2)


def test_var_cvar_historical_hand_case():
    r = np.arange(-10, 90) / 100.0  # 100 returns: -0.10 ... 0.89
    q = np.quantile(r, 0.05)  # independent: numpy quantile
    assert var_historical(r, 0.95) == pytest.approx(-q)
    assert cvar_historical(r, 0.95) == pytest.approx(-r[r <= q].mean())
    assert cvar_historical(r, 0.95) >= var_historical(r, 0.95)


def test_var_cvar_parametric_against_scipy_normal():
    rng = np.random.default_rng(0)
    r = rng.normal(0.001, 0.02, 10_000)
    mu, sd = r.mean(), r.std(ddof=1)
    assert var_parametric(r, 0.99) == pytest.approx(-stats.norm.ppf(0.01, mu, sd))
    # ES of a normal by numerical integration of the tail (independent of the closed form)
    z = stats.norm.ppf(0.01)
    es = -(mu + sd * stats.norm.expect(lambda x: x, lb=-np.inf, ub=z) / 0.01)
    assert cvar_parametric(r, 0.99) == pytest.approx(es, rel=1e-6)
    # historical close to parametric on normal data
    assert var_historical(r, 0.99) == pytest.approx(var_parametric(r, 0.99), rel=0.1)
    with pytest.raises(InvalidInput, match="level"):
        var_historical(r, 99)
    with pytest.raises(InvalidInput, match="returns"):
        var_historical(np.array([0.1, np.nan, 0.2]))


def test_drawdown_and_max_drawdown():
    eq = pd.Series([100.0, 120.0, 90.0, 130.0, 65.0, 70.0], _idx(6))
    assert drawdown(eq).tolist() == pytest.approx([0, 0, -0.25, 0, -0.5, 70 / 130 - 1])
    assert max_drawdown(eq) == pytest.approx(0.5)
    assert max_drawdown(pd.Series([1.0, 2.0, 3.0], _idx(3))) == 0.0


def test_sharpe_sortino_24_7():
    r = pd.Series([0.01, -0.02, 0.015, 0.005, -0.01, 0.02], _idx(6))
    v = r.to_numpy()
    assert sharpe(r) == pytest.approx(v.mean() / v.std(ddof=1) * math.sqrt(8_760))
    assert sharpe(r, bar_seconds=86_400) == pytest.approx(v.mean() / v.std(ddof=1) * math.sqrt(365))
    dd = math.sqrt(np.mean(np.minimum(v, 0) ** 2))
    assert sortino(r) == pytest.approx(v.mean() / dd * math.sqrt(8_760))
    rf = 0.0876
    ex = v - rf / 8_760
    assert sharpe(r, rf_annual=rf) == pytest.approx(ex.mean() / v.std(ddof=1) * math.sqrt(8_760))
    assert sortino(pd.Series([0.01, 0.02, 0.01], _idx(3))) == math.inf
    assert math.isnan(sharpe(pd.Series([0.01] * 4, _idx(4))))


def test_hedge_book_kpis():
    s, e = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-07-01", tz="UTC")
    days = (e - s).days  # 182
    assert net_apr(500.0, 10_000.0, s, e) == pytest.approx(0.05 * 365 / days)
    assert funding_efficiency(200.0, 1_000.0) == 0.2
    assert math.isnan(funding_efficiency(200.0, 0.0))
    assert loan_coverage_ratio(2_500.0, 10_000.0) == 0.25
    ltv = pd.Series([0.5, 0.6, 0.7, 0.6], _idx(4))
    assert ltv_stability(ltv) == 0.75
    # irregular index, time weighted: 0.5 held 1h, 0.7 held 3h, last 0.6 weighted by the median spacing 2h
    ltv2 = pd.Series([0.5, 0.7, 0.6], pd.DatetimeIndex(
        [pd.Timestamp("2024-01-01 00:00", tz="UTC"), pd.Timestamp("2024-01-01 01:00", tz="UTC"),
         pd.Timestamp("2024-01-01 04:00", tz="UTC")]))
    assert ltv_stability(ltv2) == pytest.approx((1 + 2) / (1 + 3 + 2))
    with pytest.raises(InvalidInput, match="initial_loan"):
        loan_coverage_ratio(1.0, 0.0)
    with pytest.raises(InvalidInput, match="end"):
        net_apr(1.0, 1.0, e, s)
