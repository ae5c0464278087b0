"""market_scan_inputs: a notebook's MarketData through the store's import path into the scanner's inputs
(notebook 03's cross-venue ranking), checked against the source files / demo frames read directly."""

from __future__ import annotations

import pandas as pd
import pytest

from hedge_core.analytics.scanner import ScanConfig, scan
from hedge_core.data.scan_inputs import market_scan_inputs
from hedge_core.data.shared import SAMPLE, MarketData, market_data
from hedge_core.errors import InvalidInput

AS_OF = pd.Timestamp("2024-03-31", tz="UTC")


@pytest.fixture(scope="module")
def demo() -> MarketData:
    from hedge_core.data.demo import generate_demo_market

    frames = generate_demo_market(days=40, seed=3, start="2024-03-01T00:00Z")
    return MarketData("demo", SAMPLE, demo=frames, seed=3)


def test_demo_funding_and_prices_are_the_frames_known_at_as_of(demo: MarketData) -> None:
    inp = market_scan_inputs(demo, as_of=AS_OF)
    assert set(inp.funding["venue"]) == {"demo"}
    for key, df in demo.demo.items():
        if key.kind == "funding":
            got = inp.funding[inp.funding["symbol"] == key.symbol].set_index("ts")["funding_rate"]
            want = df.loc[df.index <= AS_OF, "funding_rate"]  # nothing stamped after as_of
            assert len(got) == len(want) > 0
            assert got.to_numpy() == pytest.approx(want.to_numpy(), abs=0)
        if key.kind == "perp":
            closed = df.loc[df.index + pd.Timedelta(hours=1) <= AS_OF, "close"]  # the last bar closed by as_of
            px = inp.prices.set_index(["venue", "symbol"]).loc[("demo", key.symbol), "price"]
            assert px == pytest.approx(closed.iloc[-1], rel=1e-12)
    ranked = scan(inp.funding, ScanConfig(as_of=AS_OF, lookback_days=20, hold_days=30), instruments=inp.instruments,
                  prices=inp.prices)
    assert set(ranked["kind"]) == {"spot_perp"} and len(ranked) == 2  # one venue: no venue pair


def test_as_of_naive_or_before_the_data_is_refused(demo: MarketData) -> None:
    with pytest.raises(InvalidInput, match="as_of"):
        market_scan_inputs(demo, as_of=pd.Timestamp("2024-03-31"))
    with pytest.raises(InvalidInput, match="as_of"):
        market_scan_inputs(demo, as_of=pd.Timestamp("2020-01-01", tz="UTC"))


@pytest.mark.shared_data
def test_shared_sample_has_three_venues_and_the_csv_rows(shared_data) -> None:
    data = market_data(SAMPLE)
    assert data.source == "shared"
    inp = market_scan_inputs(data, as_of=AS_OF)
    cv = data.crossvenue_funding()
    want = cv[cv["ts"] <= AS_OF]
    assert set(inp.funding["venue"]) == {"binance", "bybit", "okx"}
    assert len(inp.funding) == len(want)
    btc = inp.funding[(inp.funding["venue"] == "bybit") & (inp.funding["symbol"] == "BTC/USDT:USDT")]
    ref = want[(want["venue"] == "bybit") & (want["symbol"] == "BTCUSDT")]
    assert len(btc) == len(ref) > 0
    assert btc["funding_rate"].sum() == pytest.approx(ref["funding_rate"].sum(), rel=1e-12)
    ranked = scan(inp.funding, ScanConfig(as_of=AS_OF, lookback_days=90, hold_days=30), instruments=inp.instruments,
                  prices=inp.prices)
    assert {"spot_perp", "perp_perp"} <= set(ranked["kind"])
