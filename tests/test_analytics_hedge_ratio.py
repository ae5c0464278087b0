"""Hedge ratios vs independent references: per-window statsmodels OLS, numpy corrcoef,
pandas ewm, a plain-Python Kalman recursion, full-sample OLS."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedge_core.analytics.hedge_ratio import (
    KalmanParams,
    adf,
    beta_stability,
    cointegration,
    compare_methods,
    effectiveness_split,
    ewma_beta,
    half_life,
    hedge_effectiveness,
    kalman_beta,
    min_variance_hedge_ratio,
    ols_hedge,
    returns_of,
    rolling_beta,
    rolling_correlation,
)
from hedge_core.errors import InvalidInput


def _idx(n, start="2023-01-01", freq="h"):
    return pd.date_range(start, periods=n, freq=freq, tz="UTC")


def _prices(n, seed, level=60_000.0, beta=1.0, noise=20.0):
    rng = np.random.default_rng(seed)
    x = level + np.cumsum(rng.normal(0, 60, n))
    y = 5.0 + beta * x + rng.normal(0, noise, n)
    idx = _idx(n)
    return pd.Series(y, idx), pd.Series(x, idx)


def _ols_slope(y, x):
    import statsmodels.api as sm  # here, not at module level: ~2 s of every xdist worker's collection

    return sm.OLS(y, sm.add_constant(x, has_constant="add")).fit().params[1]


@pytest.mark.parametrize("kind", ["level", "log"])
def test_rolling_beta_equals_per_window_statsmodels_ols(kind):
    y, x = _prices(20_000, 1)
    if kind == "log":
        y, x = returns_of(y, "log"), returns_of(x, "log")
    w = 1_440
    rb = rolling_beta(y, x, w)
    assert rb.iloc[: w - 1].isna().all() and rb.iloc[w - 1 :].notna().all()
    rng = np.random.default_rng(7)
    for i in list(rng.integers(w - 1, len(y), 25)) + [w - 1, len(y) - 1, w, 2 * w - 1, 2 * w]:
        ref = _ols_slope(y.to_numpy()[i - w + 1 : i + 1], x.to_numpy()[i - w + 1 : i + 1])
        assert rb.iloc[i] == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_rolling_correlation_equals_numpy_corrcoef_on_prices_near_60000():
    y, x = _prices(10_000, 2, noise=80.0)
    w = 500
    rc = rolling_correlation(y, x, w)
    rng = np.random.default_rng(3)
    for i in list(rng.integers(w - 1, len(y), 25)) + [w - 1, len(y) - 1]:
        ref = np.corrcoef(y.to_numpy()[i - w + 1 : i + 1], x.to_numpy()[i - w + 1 : i + 1])[0, 1]
        assert rc.iloc[i] == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_rolling_with_window_equal_to_length_and_short_tail_blocks():
    y, x = _prices(1_003, 4)
    rb = rolling_beta(y, x, 1_003)
    assert rb.iloc[:-1].isna().all()
    assert rb.iloc[-1] == pytest.approx(_ols_slope(y.to_numpy(), x.to_numpy()), rel=1e-9)
    rb = rolling_beta(y, x, 2)
    assert rb.iloc[5] == pytest.approx((y.iloc[5] - y.iloc[4]) / (x.iloc[5] - x.iloc[4]), rel=1e-9)


def test_rolling_aligns_on_index_intersection_and_never_assumes_dense_index():
    y, x = _prices(3_000, 5)
    y_gappy = y.drop(y.index[[10, 11, 500, 2_000]])
    x_gappy = x.drop(x.index[[7, 1_500]])
    rb = rolling_beta(y_gappy, x_gappy, 200)
    common = y_gappy.index.intersection(x_gappy.index)
    assert rb.index.equals(common)
    i = 1_000
    ys, xs = y_gappy.loc[common].to_numpy(), x_gappy.loc[common].to_numpy()
    assert rb.iloc[i] == pytest.approx(_ols_slope(ys[i - 199 : i + 1], xs[i - 199 : i + 1]), rel=1e-9)


def test_constant_x_window_is_nan_not_a_number_from_rounding():
    idx = _idx(300)
    x = pd.Series(np.r_[np.full(150, 61_234.56), 61_234.56 + np.arange(150.0)], idx)
    y = pd.Series(np.arange(300.0), idx)
    rb = rolling_beta(y, x, 50)
    assert rb.iloc[49:150].isna().all()
    assert rb.iloc[-1] == pytest.approx(1.0, rel=1e-9)
    rc = rolling_correlation(pd.Series(np.full(300, 3.0), idx), x, 50)
    assert rc.dropna().empty


@pytest.mark.parametrize("bad,field", [
    ("window_big", "window"), ("window_small", "window"), ("naive", "tz"), ("berlin", "tz"), ("nan", "y"),
    ("noverlap", "common index"), ("unsorted", "index"), ("dup", "index"),
])
def test_bad_input_raises_named_error(bad, field):
    y, x = _prices(100, 6)
    w = 10
    if bad == "window_big":
        w = 101
    elif bad == "window_small":
        w = 1
    elif bad == "naive":
        y = pd.Series(y.to_numpy(), index=y.index.tz_localize(None))
    elif bad == "berlin":
        y = pd.Series(y.to_numpy(), index=y.index.tz_convert("Europe/Berlin"))
    elif bad == "nan":
        y = y.copy()
        y.iloc[40:45] = np.nan
    elif bad == "noverlap":
        x = pd.Series(x.to_numpy(), index=x.index + pd.Timedelta(days=30))
    elif bad == "unsorted":
        y = y.iloc[::-1]
    elif bad == "dup":
        y = pd.concat([y, y.iloc[:1]])
    with pytest.raises(InvalidInput, match=field):
        rolling_beta(y, x, w)


def test_nan_error_names_the_first_bad_timestamp():
    y, x = _prices(50, 8)
    y = y.copy()
    y.iloc[20:23] = np.nan
    with pytest.raises(InvalidInput, match="2023-01-01 20:00:00"):
        rolling_correlation(y, x, 5)


def test_static_ols_matches_statsmodels_and_min_variance_ratio():
    y, x = _prices(2_000, 9)
    ry, rx = returns_of(y), returns_of(x)
    import statsmodels.api as sm  # here, not at module level: ~2 s of every xdist worker's collection
    res = sm.OLS(ry.to_numpy(), sm.add_constant(rx.to_numpy())).fit()
    o = ols_hedge(ry, rx)
    assert o.slope == pytest.approx(res.params[1], rel=1e-12)
    assert o.intercept == pytest.approx(res.params[0], rel=1e-9, abs=1e-15)
    assert o.slope_se == pytest.approx(res.bse[1], rel=1e-12)
    assert o.r2 == pytest.approx(res.rsquared, rel=1e-12)
    assert o.n == len(ry)
    # h* = rho sigma_s / sigma_h equals the OLS slope (independent formula, numpy)
    assert min_variance_hedge_ratio(ry, rx) == pytest.approx(o.slope, rel=1e-9)


def test_returns_of_kinds():
    p = pd.Series([100.0, 110.0, 99.0], _idx(3))
    assert returns_of(p, "simple").tolist() == pytest.approx([0.1, -0.1])
    assert returns_of(p, "log").tolist() == pytest.approx([math.log(1.1), math.log(0.9)])
    assert returns_of(p, "level").equals(p)
    with pytest.raises(InvalidInput, match="kind"):
        returns_of(p, "pct")
    with pytest.raises(InvalidInput, match="prices"):
        returns_of(pd.Series([1.0, -1.0], _idx(2)))


def test_ewma_beta_matches_pandas_ewm():
    y, x = _prices(3_000, 10)
    ry, rx = returns_of(y), returns_of(x)
    hl = 48.0
    alpha = 1 - 0.5 ** (1 / hl)
    ref = (ry.ewm(alpha=alpha, adjust=False).cov(rx, bias=True)
           / rx.ewm(alpha=alpha, adjust=False).var(bias=True))
    got = ewma_beta(ry, rx, hl)
    np.testing.assert_allclose(got.to_numpy()[5:], ref.to_numpy()[5:], rtol=1e-9)


def _kalman_reference(x, y, delta, r, a0, b0, p0, with_alpha=True):
    """Textbook matrix Kalman filter, one step at a time (plain Python + numpy 2x2)."""
    k = 2 if with_alpha else 1
    theta = np.array([a0, b0]) if with_alpha else np.array([b0])
    P = np.eye(k) * p0
    Q = np.eye(k) * delta / (1 - delta)
    out = []
    for xt, yt in zip(x, y):
        P = P + Q
        H = np.array([1.0, xt]) if with_alpha else np.array([xt])
        S = H @ P @ H + r
        K = P @ H / S
        theta = theta + K * (yt - H @ theta)
        P = P - np.outer(K, H) @ P
        out.append(theta[-1])
    return np.array(out)


@pytest.mark.parametrize("with_alpha", [True, False])
def test_kalman_equals_plain_python_recursion(with_alpha):
    y, x = _prices(800, 11)
    ry, rx = returns_of(y), returns_of(x)
    p = KalmanParams(delta=1e-4, obs_var=2e-8, p0=1.0, beta0=0.5, alpha0=0.0, with_alpha=with_alpha)
    got = kalman_beta(ry, rx, p)
    ref = _kalman_reference(rx.to_numpy(), ry.to_numpy(), 1e-4, 2e-8, 0.0, 0.5, 1.0, with_alpha)
    np.testing.assert_allclose(got.to_numpy(), ref, rtol=1e-8, atol=1e-12)
    full = kalman_beta(ry, rx, p, full=True)
    assert list(full.columns) == ["alpha", "beta", "s"] and (full["s"] > 0).all()
    np.testing.assert_array_equal(full["beta"].to_numpy(), got.to_numpy())


def test_kalman_converges_to_ols_beta_on_constant_beta_series():
    rng = np.random.default_rng(12)
    n = 5_000
    x = rng.normal(0, 0.01, n)
    y = 0.0002 + 0.8 * x + rng.normal(0, 0.002, n)
    idx = _idx(n)
    ys, xs = pd.Series(y, idx), pd.Series(x, idx)
    b = kalman_beta(ys, xs, KalmanParams(delta=0.0, p0=1e4))
    ols = ols_hedge(ys, xs).slope
    assert b.iloc[-1] == pytest.approx(ols, abs=1e-4)
    assert abs(b.iloc[-1] - 0.8) < 0.01


def test_kalman_params_validation():
    with pytest.raises(InvalidInput, match="delta"):
        KalmanParams(delta=1.0)
    with pytest.raises(InvalidInput, match="obs_var"):
        KalmanParams(obs_var=0.0)


def test_effectiveness_and_split_and_diagnostics():
    y, x = _prices(4_000, 13, noise=30)
    ry, rx = returns_of(y), returns_of(x)
    h = ols_hedge(ry, rx).slope
    e = hedge_effectiveness(ry, rx, h)
    # equals R^2 for the OLS ratio (independent identity)
    assert e == pytest.approx(ols_hedge(ry, rx).r2, rel=1e-9)
    assert hedge_effectiveness(ry, rx, 0.0) == pytest.approx(0.0, abs=1e-12)
    sp = effectiveness_split(ry, rx, 0.7)
    assert sp.n_train + sp.n_test == len(ry) and sp.split_time == ry.index[sp.n_train]
    assert sp.in_sample <= 1 and sp.out_of_sample <= 1
    # time-varying ratio is lagged: a Series h uses h_{t-1}
    hs = pd.Series(h, index=ry.index)
    assert hedge_effectiveness(ry, rx, hs) == pytest.approx(
        hedge_effectiveness(ry.iloc[1:], rx.iloc[1:], h), rel=1e-12)
    # cointegration of levels built as y = 5 + x + noise
    c = cointegration(y, x)
    assert c.cointegrated_5pct and c.hedge.slope == pytest.approx(1.0, abs=0.01)
    spread = y - c.hedge.slope * x
    assert adf(spread).stationary_5pct
    assert half_life(spread) < 2.0
    st_ = beta_stability(ry, rx, 500)
    assert st_.std >= 0 and st_.range == pytest.approx(st_.max - st_.min)
    assert 0 <= st_.chow_pvalue <= 1
    df = compare_methods(ry, rx, 200, 48)
    assert list(df.columns) == ["rolling", "ewma", "kalman", "static"]


def test_half_life_of_known_ar1():
    rng = np.random.default_rng(14)
    phi = 0.9  # s_t = 0.9 s_{t-1} + e -> half-life ln2 / -ln 0.9 = 6.58
    s = np.zeros(20_000)
    for t in range(1, len(s)):
        s[t] = phi * s[t - 1] + rng.normal()
    hl = half_life(pd.Series(s, _idx(len(s))))
    assert hl == pytest.approx(math.log(2) / -math.log(phi), rel=0.05)
    assert half_life(pd.Series(np.cumsum(np.ones(50)), _idx(50))) == math.inf


_finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=50, deadline=None)
@given(st.lists(_finite, min_size=12, max_size=80).filter(lambda v: np.std(v) > 1e-3),
       st.integers(3, 12))
def test_property_hedge_ratio_of_series_against_itself_is_one(vals, w):
    s = pd.Series(vals, _idx(len(vals)))
    assert min_variance_hedge_ratio(s, s) == pytest.approx(1.0, rel=1e-9)
    assert ols_hedge(s, s).slope == pytest.approx(1.0, rel=1e-9)
    rb = rolling_beta(s, s, w).dropna()
    assert np.allclose(rb.to_numpy(), 1.0, rtol=1e-9)
    assert hedge_effectiveness(s, s, 1.0) == pytest.approx(1.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(_finite, _finite), min_size=5, max_size=60), st.floats(-5, 5))
def test_property_effectiveness_at_most_one(pairs, h):
    y = pd.Series([p[0] for p in pairs], _idx(len(pairs)))
    x = pd.Series([p[1] for p in pairs], _idx(len(pairs)))
    e = hedge_effectiveness(y, x, h)
    assert math.isnan(e) or e <= 1.0 + 1e-12


@pytest.mark.shared_data
def test_real_data_btc_spot_perp_beta_near_one_and_effective(shared_data):
    from hedge_core.data.shared import SAMPLE, load_tidy

    spot = load_tidy(SAMPLE, "binance", "BTCUSDT", "spot", "1h")["close"]
    perp = load_tidy(SAMPLE, "binance", "BTCUSDT", "perp", "1h")["close"]
    rs, rp = returns_of(spot), returns_of(perp)
    rb = rolling_beta(rs, rp, 720).dropna()
    assert abs(rb.median() - 1.0) < 0.02
    sp = effectiveness_split(rs, rp, 0.7)
    assert sp.in_sample > 0.9 and sp.out_of_sample > 0.9
    # the spot gap (2023-03-24 13:00) is handled by alignment, not filled
    assert pd.Timestamp("2023-03-24 13:00", tz="UTC") not in rb.index
