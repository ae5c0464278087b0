"""Block bootstrap (joint, seeded), Monte Carlo KPI distributions, stress-window run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hedge_core.backtest.timeline import market_from_frames
from hedge_core.data.demo import generate_demo_market
from hedge_core.errors import InvalidInput
from hedge_core.backtest.montecarlo import (
    block_indices,
    mc_summary,
    monte_carlo,
    resample_market,
    stress_run,
    stress_summary,
)
from hedge_core.params.models import CarryParams, ExitParams, GuardParams, VolTierLoanParams


@pytest.fixture(scope="module")
def market():
    return market_from_frames(generate_demo_market(days=40, timeframe="1h", seed=21, assets=("BTC",)))


def test_block_indices_are_seeded_circular_blocks():
    rng = np.random.default_rng(1)
    idx = block_indices(100, 10, rng)
    assert len(idx) == 100
    blocks = idx.reshape(10, 10)
    assert (np.diff(blocks, axis=1) % 100 == 1).all()  # consecutive within a block (circular)
    assert (block_indices(100, 10, np.random.default_rng(1)) == idx).all()
    with pytest.raises(InvalidInput, match="block"):
        block_indices(10, 0, rng)


def test_resample_is_joint_and_reproducible(market):
    a = resample_market(market, block=24, seed=7, path=3)
    b = resample_market(market, block=24, seed=7, path=3)
    c = resample_market(market, block=24, seed=7, path=4)
    pd.testing.assert_frame_equal(a.spot, b.spot)
    assert not np.allclose(a.spot["close"], c.spot["close"])
    assert a.spot["close"].iloc[0] == market.spot["close"].iloc[0] and len(a.spot) == len(market.spot)
    src_r = np.diff(np.log(market.spot["close"].to_numpy()))
    src_b = market.perp["close"].to_numpy() / market.spot["close"].to_numpy() - 1
    new_r = np.diff(np.log(a.spot["close"].to_numpy()))
    new_b = a.perp["close"].to_numpy() / a.spot["close"].to_numpy() - 1
    # every synthetic bar's (return, basis) pair is ONE source bar's pair: same blocks for both
    for j in (1, 50, 400, len(new_r) - 1):
        k = int(np.argmin(np.abs(src_r - new_r[j - 1])))
        assert new_r[j - 1] == pytest.approx(src_r[k], abs=1e-12)
        assert new_b[j] == pytest.approx(src_b[k + 1], abs=1e-12)
    f = a.funding
    assert ((f.index.hour % 8) == 0).all() and (f.index.minute == 0).all()
    assert set(np.round(f["funding_rate"], 12)) <= set(np.round(market.funding["funding_rate"], 12)) | {0.0}
    assert (a.spot["high"] >= a.spot["close"] - 1e-9).all() and (a.spot["low"] <= a.spot["close"] + 1e-9).all()


def test_monte_carlo_distribution_seeded_any_workers(market):
    p = CarryParams(min_net_carry=-0.01, exit=ExitParams(rearm=True, max_holding_hours=48))
    t0 = monte_carlo(p, market, n_paths=6, block=48, seed=2, workers=0)
    t2 = monte_carlo(p, market, n_paths=6, block=48, seed=2, workers=2)
    pd.testing.assert_frame_equal(t0, t2)
    assert list(t0["path_id"]) == list(range(6)) and (t0["error"] == "").all() and (t0["path"] == "fast").all()
    assert t0["net_pnl"].nunique() == 6
    s = mc_summary(t0)
    assert s.loc["q50", "net_apr"] == pytest.approx(np.quantile(t0["net_apr"], 0.5))
    assert s.loc["p_positive", "net_pnl"] == pytest.approx((t0["net_pnl"] > 0).mean())


@pytest.mark.shared_data
def test_stress_window_shows_liquidation_guards_and_ltv(shared_data):
    p0 = 7200.0  # BTC near the start of 2020
    p = VolTierLoanParams(perp_leverage=20, collateral_qty=round(16_200 / (0.6 * p0), 4),
                          guards=GuardParams(liq_distance_close=0.02, liq_distance_reduce=0.03))
    r = stress_run(p, start="2020-02-20T00:00Z", end="2020-04-01T00:00Z")
    assert r.equity["ltv"].notna().all() and r.equity["ltv"].max() > 0.6
    ev = stress_summary(r)
    assert len(ev) > 0 and ev["ts"].is_monotonic_increasing
    assert r.kpis["entries"] >= 1
