"""The demo market's fast-path fixtures (30 days of 1h bars, seed 5, BTC and ETH; timelines from day 3): shared by
tests/test_fastpath_hedge_guards.py and tests/test_fastpath_hedge_failed.py, whose wallets and thresholds are tuned
to them."""

from __future__ import annotations

import pandas as pd
import pytest

from hedge_core.backtest.timeline import Market, build_timeline, market_from_frames
from hedge_core.data.demo import generate_demo_market


@pytest.fixture(scope="module")
def demo_frames():
    return generate_demo_market(days=30, timeframe="1h", seed=5, assets=("BTC", "ETH"))


@pytest.fixture(scope="module")
def demo_tl(demo_frames):
    m = market_from_frames(demo_frames)
    return build_timeline(m, start=m.first + pd.Timedelta(days=3))


@pytest.fixture(scope="module")
def demo_cross_tl(demo_frames):
    btc, eth = market_from_frames(demo_frames), market_from_frames(demo_frames, asset="ETH")
    m = Market(btc.venue, "ETH/USDT", "BTC/USDT:USDT", "1h", eth.spot, btc.perp, btc.mark, btc.funding)
    return build_timeline(m, start=btc.first + pd.Timedelta(days=3))
