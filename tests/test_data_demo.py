"""Demo market generator: deterministic, internally consistent, funding follows the documented formula."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hedge_core.data.demo import DemoParams, binance_like_funding, generate_demo_market, seed_demo
from hedge_core.data.importers import SeriesKey
from hedge_core.data.validate import canonical_bars, timeframe_delta
from hedge_core.store import Store


def key(sym: str, kind: str, tf: str | None = "1h") -> SeriesKey:
    return SeriesKey("demo", sym, kind, None if kind == "funding" else tf)


@pytest.fixture(scope="module")
def year() -> dict:
    return generate_demo_market(days=365, timeframe="1h", seed=11)


def test_deterministic_by_seed() -> None:
    a = generate_demo_market(days=20, timeframe="15m", seed=3)
    b = generate_demo_market(days=20, timeframe="15m", seed=3)
    c = generate_demo_market(days=20, timeframe="15m", seed=4)
    assert a.keys() == b.keys()
    for k in a:
        pd.testing.assert_frame_equal(a[k], b[k])
    assert not np.allclose(a[key("BTC/USDT", "spot", "15m")]["close"], c[key("BTC/USDT", "spot", "15m")]["close"])


@pytest.mark.parametrize("tf,days,n", [("1m", 1, 1440), ("5m", 2, 576), ("4h", 10, 60), ("1d", 40, 40)])
def test_any_bar_size(tf: str, days: int, n: int) -> None:
    m = generate_demo_market(days=days, timeframe=tf, seed=1)
    assert {k.kind for k in m} == {"spot", "perp", "mark", "funding"}
    assert {k.symbol for k in m} == {"BTC/USDT", "BTC/USDT:USDT", "ETH/USDT", "ETH/USDT:USDT"}
    for k, df in m.items():
        if k.kind == "funding":
            assert (df.index.hour % 8 == 0).all() and (df.index.minute == 0).all()
            assert len(df) == days * 3  # 08:00 .. day end inclusive
            continue
        assert len(df) == n
        assert (np.diff(df.index.asi8) == timeframe_delta(tf).value // 1000).all()
        canonical_bars(df, timeframe=tf)  # passes the importers' validation (prices > 0, high >= low, grid)
        o, h, lo, c = (df[x].to_numpy() for x in ("open", "high", "low", "close"))
        assert (h >= np.maximum(o, c)).all() and (lo <= np.minimum(o, c)).all()


def test_basis_is_mean_reverting_ou(year: dict) -> None:
    p = DemoParams()
    spot, perp = year[key("BTC/USDT", "spot")], year[key("BTC/USDT:USDT", "perp")]
    b = (perp["close"] / spot["close"] - 1).to_numpy()
    import statsmodels.api as sm  # here, not at module level: ~2 s of every xdist worker's collection
    # AR(1) on hourly samples: phi = 2^(-1/half-life); fitted with statsmodels OLS
    fit = sm.OLS(b[1:], sm.add_constant(b[:-1])).fit()
    assert fit.params[1] == pytest.approx(2 ** (-1 / p.basis_half_life_hours), abs=0.02)
    assert b.mean() == pytest.approx(p.basis_mean, abs=1e-4)
    assert b.std() == pytest.approx(p.basis_sd, rel=0.15)
    mark = year[key("BTC/USDT:USDT", "mark")]
    assert np.abs(mark["close"] / perp["close"] - 1).max() < 10 * p.mark_noise
    assert mark["volume"].isna().all()


def test_funding_follows_premium(year: dict) -> None:
    spot, perp = year[key("ETH/USDT", "spot")], year[key("ETH/USDT:USDT", "perp")]
    fr = year[key("ETH/USDT:USDT", "funding")]
    prem = perp["close"] / spot["close"] - 1  # premium at each bar's CLOSE (label = open time)
    for t in fr.index[:50]:
        window = prem[(prem.index >= t - pd.Timedelta(hours=8)) & (prem.index < t)]  # closes in (t-8h, t]
        p = window.mean()
        expected = min(max(p + min(max(0.0001 - p, -0.0005), 0.0005), -0.0075), 0.0075)
        assert fr.loc[t, "funding_rate"] == pytest.approx(expected, abs=1e-12)
    assert (fr["interval_hours"] == 8.0).all()


def test_binance_like_funding_hand_cases() -> None:
    # premium inside +-0.05 % of the 0.01 % interest -> exactly the interest rate
    assert binance_like_funding(np.array([0.0003]))[0] == pytest.approx(0.0001)
    assert binance_like_funding(np.array([-0.0002]))[0] == pytest.approx(0.0001)
    # far above: premium - 0.05 %; far below: premium + 0.05 %; capped at +-0.75 %
    assert binance_like_funding(np.array([0.0020]))[0] == pytest.approx(0.0015)
    assert binance_like_funding(np.array([-0.0020]))[0] == pytest.approx(-0.0015)
    assert binance_like_funding(np.array([0.05]))[0] == pytest.approx(0.0075)


def test_assets_correlated_and_regimes(year: dict) -> None:
    rb = np.diff(np.log(year[key("BTC/USDT", "spot")]["close"].to_numpy()))
    re = np.diff(np.log(year[key("ETH/USDT", "spot")]["close"].to_numpy()))
    assert 0.65 < np.corrcoef(rb, re)[0, 1] < 0.95
    # volatility regimes: rolling 7-day vol varies much more than sampling noise alone would give
    vol = pd.Series(rb).rolling(168).std().dropna()
    assert vol.max() / vol.min() > 1.8


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="timeframe"):
        generate_demo_market(days=10, timeframe="1w")
    with pytest.raises(ValueError, match="timezone"):
        generate_demo_market(days=10, start="2024-01-01")
    with pytest.raises(ValueError, match="assets"):
        generate_demo_market(days=10, assets=("DOGE",))


def test_seed_demo_writes_store() -> None:
    st = Store(":memory:")
    summary = seed_demo(st, days=5, timeframe="1h", seed=2)
    s = st.series()
    assert set(s["venue"]) == {"demo"} and len(s) == 8
    assert int(summary["rows"].sum()) == int(s["rows"].sum())
    m = generate_demo_market(days=5, timeframe="1h", seed=2)
    got = st.read_bars("demo", "ETH/USDT:USDT", "perp", "1h")
    np.testing.assert_array_equal(got.to_numpy(), m[key("ETH/USDT:USDT", "perp")].to_numpy())
