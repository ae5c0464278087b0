"""market_inputs: no look-ahead (truncated history -> same last row), references per window."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hedge_core.analytics.risk import var_historical
from hedge_core.analytics.volatility import trailing_24h_vol
from hedge_core.data.demo import generate_demo_market
from hedge_core.errors import InvalidInput
from hedge_core.analytics.inputs import (
    INPUT_COLUMNS,
    InputSpec,
    inputs_known_at,
    market_inputs,
)


@pytest.fixture(scope="module")
def demo():
    frames = generate_demo_market(days=40, timeframe="1h", seed=3, assets=("BTC", "ETH"))
    by = {(k.symbol, k.kind): v for k, v in frames.items()}
    return by


def _frames(demo):
    return (demo[("BTC/USDT", "spot")], demo[("BTC/USDT:USDT", "perp")], demo[("BTC/USDT:USDT", "funding")],
            demo[("ETH/USDT:USDT", "perp")])


@pytest.mark.parametrize("method", ["ewma", "rolling", "kalman"])
def test_no_look_ahead_truncated_history_gives_same_last_row(demo, method):
    spot, perp, funding, eth = _frames(demo)
    spec = InputSpec(beta_method=method, beta_window=48, var_window_days=5)
    full = market_inputs(spot, perp, funding=funding, hedge=eth, spec=spec)
    for cut in (300, 517, 800, len(spot) - 1):
        s = spot.iloc[:cut]
        part = market_inputs(s, perp[perp.index < s.index[-1] + pd.Timedelta("1h")],
                             funding=funding[funding.index <= s.index[-1] + pd.Timedelta("1h")],
                             hedge=eth[eth.index <= s.index[-1]], spec=spec)
        last = part.iloc[-1]
        assert part.index[-1] == s.index[-1] + pd.Timedelta("1h")  # known one bar after the open
        ref = full.loc[part.index[-1]]
        for c in INPUT_COLUMNS:
            a, b = last[c], ref[c]
            assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12), (c, cut)


def test_future_bars_do_not_change_past_rows(demo):
    spot, perp, funding, _ = _frames(demo)
    base = market_inputs(spot, perp, funding=funding)
    shocked = spot.copy()
    shocked.iloc[-10:, shocked.columns.get_loc("close")] *= 3.0  # change only the last 10 bars
    alt = market_inputs(shocked, perp, funding=funding)
    known_before = base.index <= spot.index[-11] + pd.Timedelta("1h")
    pd.testing.assert_frame_equal(base[known_before], alt[known_before])
    assert not np.allclose(base["baseline"].iloc[-1], alt["baseline"].iloc[-1])


def test_references_per_window(demo):
    spot, perp, funding, _ = _frames(demo)
    spec = InputSpec(baseline_window=24, volume_window=12, var_window_days=5)
    out = market_inputs(spot, perp, funding=funding, spec=spec)
    close = spot["close"]
    i = 400
    t_known = spot.index[i] + pd.Timedelta("1h")
    win = close.iloc[i - 23:i + 1].to_numpy()
    coef = np.polyfit(np.arange(24.0), win, 1)
    fit = np.polyval(coef, 23.0)
    resid = win - np.polyval(coef, np.arange(24.0))
    assert out.loc[t_known, "baseline"] == pytest.approx(fit, rel=1e-10)
    assert out.loc[t_known, "baseline_std"] == pytest.approx(resid.std(ddof=1), rel=1e-8)
    assert out.loc[t_known, "volume_avg"] == pytest.approx(spot["volume"].iloc[i - 11:i + 1].mean(), rel=1e-12)
    assert out.loc[t_known, "sigma_24h"] == pytest.approx(trailing_24h_vol(close).loc[spot.index[i]], rel=1e-12)
    r24 = np.log(close).diff(24).iloc[i - 119:i + 1].dropna()
    assert out.loc[t_known, "var_1d"] == pytest.approx(var_historical(r24.to_numpy(), 0.99), rel=1e-9)
    assert out.loc[t_known, "basis"] == pytest.approx((perp["close"].iloc[i] - close.iloc[i]) / close.iloc[i])


def test_funding_known_at_settlement(demo):
    spot, perp, funding, _ = _frames(demo)
    out = market_inputs(spot, perp, funding=funding)
    t = funding.index[5]
    assert out.loc[t, "funding_apr"] == pytest.approx(funding["funding_rate"].iloc[5] * 3 * 365)
    before = out.index[out.index.get_loc(t) - 1]
    assert out.loc[before, "funding_apr"] == pytest.approx(funding["funding_rate"].iloc[4] * 3 * 365)
    m = inputs_known_at(out, t + pd.Timedelta("30min"))
    assert m["funding_apr"] == out.loc[t, "funding_apr"]
    assert inputs_known_at(out, spot.index[0]) == {}


def test_bad_input_names_the_field(demo):
    spot, perp, _, _ = _frames(demo)
    with pytest.raises(InvalidInput, match="beta_method"):
        InputSpec(beta_method="ols")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="spot.index"):
        market_inputs(spot.reset_index(drop=True), perp)
    with pytest.raises(InvalidInput, match="spot.columns"):
        market_inputs(spot[["open"]], perp)
