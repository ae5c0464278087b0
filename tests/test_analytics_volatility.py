"""Volatility estimators: hand formulas, 24/7 annualisation, trailing 24h window, tiers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hedge_core.analytics.volatility import (
    VolTiers,
    close_to_close,
    ewma_vol,
    garman_klass,
    infer_bar_seconds,
    parkinson,
    periods_per_year,
    trailing_24h_vol,
    vol_tiered_hedge_ratio,
)
from hedge_core.errors import InvalidInput


def _idx(n, freq="h"):
    return pd.date_range("2024-01-01", periods=n, freq=freq, tz="UTC")


def _gbm(n, sigma_bar, seed=0, freq="h"):
    rng = np.random.default_rng(seed)
    return pd.Series(60_000 * np.exp(np.cumsum(rng.normal(0, sigma_bar, n))), _idx(n, freq))


def test_periods_per_year_is_24_7():
    assert periods_per_year(3600) == 8_760
    assert periods_per_year(60) == 525_600
    assert periods_per_year(8 * 3600) == 1_095
    assert infer_bar_seconds(_idx(10, "5min")) == 300
    # real gaps do not change the inferred bar (median spacing)
    assert infer_bar_seconds(_idx(10).delete([3, 4])) == 3600
    with pytest.raises(InvalidInput, match="bar_seconds"):
        periods_per_year(0)


def test_close_to_close_hand_formula_and_annualisation():
    p = pd.Series([100.0, 101.0, 99.0, 100.5, 102.0], _idx(5))
    r = np.diff(np.log(p.to_numpy()))
    per_bar = r.std(ddof=1)
    assert close_to_close(p, annualise=False) == pytest.approx(per_bar, rel=1e-12)
    assert close_to_close(p) == pytest.approx(per_bar * math.sqrt(8_760), rel=1e-12)
    # explicit bar size overrides inference (e.g. 15-minute bars)
    assert close_to_close(p, bar_seconds=900) == pytest.approx(per_bar * math.sqrt(35_040), rel=1e-12)
    roll = close_to_close(p, window=3, annualise=False)
    assert math.isnan(roll.iloc[1]) and roll.iloc[-1] == pytest.approx(r[-3:].std(ddof=1), rel=1e-12)


def test_estimators_recover_true_vol_on_simulated_bars():
    # 10-second GBM aggregated into hourly OHLC; true annual sigma = 0.001 * sqrt(periods of 10 s)
    m = _gbm(360 * 24 * 40, 0.001, seed=0, freq="10s")
    bars = m.resample("1h").ohlc()
    true_ann = 0.001 * math.sqrt(365 * 24 * 360)
    assert close_to_close(bars["close"]) == pytest.approx(true_ann, rel=0.06)
    # range estimators are biased low by discrete sampling (360 points per bar): within 8 %
    assert parkinson(bars) == pytest.approx(true_ann, rel=0.08)
    assert garman_klass(bars) == pytest.approx(true_ann, rel=0.08)


def test_parkinson_and_garman_klass_hand_values():
    bars = pd.DataFrame({"open": [100.0, 102.0], "high": [105.0, 103.0], "low": [99.0, 98.0],
                         "close": [102.0, 99.0]}, index=_idx(2))
    hl = np.log([105 / 99, 103 / 98]) ** 2
    oc = np.log([102 / 100, 99 / 102]) ** 2
    assert parkinson(bars, annualise=False) == pytest.approx(math.sqrt(hl.mean() / (4 * math.log(2))))
    gk = (0.5 * hl - (2 * math.log(2) - 1) * oc).mean()
    assert garman_klass(bars, annualise=False) == pytest.approx(math.sqrt(gk))
    with pytest.raises(InvalidInput, match="high"):
        parkinson(bars.assign(high=[90.0, 103.0]))
    with pytest.raises(InvalidInput, match="missing"):
        garman_klass(bars.drop(columns="open"))


def test_ewma_vol_recursion():
    p = _gbm(50, 0.01, seed=2)
    r = np.diff(np.log(p.to_numpy()))
    var = r[0] ** 2
    for x in r[1:]:
        var = 0.94 * var + 0.06 * x * x
    assert ewma_vol(p, 0.94, annualise=False).iloc[-1] == pytest.approx(math.sqrt(var), rel=1e-12)


def test_trailing_24h_vol_is_a_daily_figure_over_the_last_24_hours():
    p = _gbm(200, 0.005, seed=3)
    v = trailing_24h_vol(p)
    r = np.diff(np.log(p.to_numpy()))
    t = 100  # vol at the close time index[t] uses returns ending in (t-24h, t]: r[t-24 .. t-1]
    ref = r[t - 24 : t].std(ddof=1) * math.sqrt(24)
    assert v.loc[p.index[t]] == pytest.approx(ref, rel=1e-12)
    assert v.iloc[:16].isna().all()  # fewer than 75 % of 24 returns
    # with a gap, the window is time-based: fewer returns, never a stretched window
    pg = p.drop(p.index[90:95])
    vg = trailing_24h_vol(pg)
    rg = pd.Series(np.diff(np.log(pg.to_numpy())), index=pg.index[1:])
    t_end = p.index[110]
    win = rg[(rg.index > t_end - pd.Timedelta("24h")) & (rg.index <= t_end)]
    assert len(win) == 19  # 24 hourly stamps in (t-24h, t] minus the 5 missing bars
    assert vg.loc[t_end] == pytest.approx(win.std(ddof=1) * math.sqrt(24), rel=1e-12)


@pytest.mark.parametrize("vol,expected", [
    (0.0, 0.20), (0.0199999, 0.20), (0.02, 0.40), (0.0399999, 0.40), (0.04, 0.60), (0.5, 0.60)])
def test_vol_tiers_default_edges(vol, expected):
    assert vol_tiered_hedge_ratio(vol) == expected


def test_vol_tiers_series_custom_and_validation():
    s = pd.Series([0.01, np.nan, 0.03, 0.05], _idx(4))
    out = vol_tiered_hedge_ratio(s)
    assert out.iloc[0] == 0.2 and math.isnan(out.iloc[1]) and out.iloc[2] == 0.4 and out.iloc[3] == 0.6
    t = VolTiers(uppers=(0.01,), ratios=(0.5,), top=1.0)
    assert vol_tiered_hedge_ratio(0.005, t) == 0.5 and vol_tiered_hedge_ratio(0.01, t) == 1.0
    with pytest.raises(InvalidInput, match="uppers"):
        VolTiers(uppers=(0.04, 0.02))
    with pytest.raises(InvalidInput, match="vol"):
        vol_tiered_hedge_ratio(-0.01)


def test_bad_inputs():
    p = _gbm(30, 0.01)
    with pytest.raises(InvalidInput, match="window"):
        close_to_close(p, window=100)
    with pytest.raises(InvalidInput, match="tz"):
        close_to_close(pd.Series(p.to_numpy(), index=p.index.tz_localize(None)))
    q = p.copy()
    q.iloc[5] = np.nan
    with pytest.raises(InvalidInput, match="close"):
        trailing_24h_vol(q)


@pytest.mark.shared_data
def test_real_btc_24h_vol_is_plausible(shared_data):
    from hedge_core.data.shared import SAMPLE, load_tidy

    c = load_tidy(SAMPLE, "binance", "BTCUSDT", "spot", "1h")["close"]
    v = trailing_24h_vol(c).dropna()
    assert 0.005 < v.median() < 0.05
    assert 0.2 < close_to_close(c) < 0.8
