"""market_data(): the shared window when present, else the labelled synthetic demo over the same dates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from hedge_core.data.shared import (
    DEMO_LABEL, SAMPLE, STRESS, WINDOWS, load_tidy, market_data, require_shared_data, shared_data_dir,
)
from hedge_core.errors import InvalidInput


@pytest.fixture
def no_shared(tmp_path, monkeypatch) -> Path:
    """HEDGE_SHARED_DATA points at an empty folder: the fresh-clone case."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("HEDGE_SHARED_DATA", str(empty))
    return empty


@pytest.fixture
def fake_shared(tmp_path, monkeypatch) -> Path:
    """A tiny shared folder in the real file layout (two days of BTC/ETH), so the 'shared' branch is
    tested without the real data."""
    root = tmp_path / "shared"
    win = root / SAMPLE
    win.mkdir(parents=True)
    ts = pd.date_range("2023-01-01", periods=48, freq="1h", tz="UTC")
    fts = pd.date_range("2023-01-01", periods=6, freq="8h", tz="UTC")
    for i, pair in enumerate(("BTCUSDT", "ETHUSDT")):
        px = 100.0 * (i + 1) + np.arange(48.0)
        bars = pd.DataFrame({"ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": px, "high": px + 1, "low": px - 1,
                             "close": px + 0.5, "volume": 10.0})
        bars.to_csv(win / f"binance_{pair}_spot_1h.csv", index=False)
        bars.assign(close=px + 0.6).to_csv(win / f"binance_{pair}_perp_1h.csv", index=False)
        bars.drop(columns="volume").to_csv(win / f"binance_{pair}_mark_1h.csv", index=False)
        pd.DataFrame({"ts": fts.strftime("%Y-%m-%dT%H:%M:%SZ"), "funding_rate": 0.0001 * (i + 1)}).to_csv(
            win / f"binance_{pair}_funding_8h.csv", index=False)
    pd.DataFrame({"ts": ["2023-01-01T00:00:00Z", "2023-01-01T00:00:00Z"], "venue": ["binance", "okx"],
                  "symbol": ["BTCUSDT", "BTC-USDT-PERP"], "funding_rate": [0.0001, 0.0002]}).to_csv(
        win / "crossvenue_funding_8h_binance_bybit_okx.csv", index=False)
    monkeypatch.setenv("HEDGE_SHARED_DATA", str(root))
    return root


def test_env_pointing_at_an_empty_folder_means_no_shared_data(no_shared) -> None:
    assert shared_data_dir() is None
    with pytest.raises(FileNotFoundError, match="HEDGE_SHARED_DATA"):
        require_shared_data()


def test_env_is_the_only_candidate_when_set(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HEDGE_SHARED_DATA", str(tmp_path / "does-not-exist"))
    assert shared_data_dir() is None  # never falls through to ../shared/data
    (tmp_path / "x" / STRESS).mkdir(parents=True)
    monkeypatch.setenv("HEDGE_SHARED_DATA", str(tmp_path / "x"))
    assert shared_data_dir() == (tmp_path / "x").resolve()


def test_fallback_is_the_labelled_demo_over_the_window_dates(no_shared) -> None:
    d = market_data(SAMPLE)
    assert (d.source, d.synthetic, d.venue, d.root) == ("demo", True, "demo", None)
    assert DEMO_LABEL.upper() in d.label and "NOT market prices" in d.label
    assert d.title("Funding") == f"Funding ({DEMO_LABEL})"
    start, end = (pd.Timestamp(x) for x in WINDOWS[SAMPLE])
    spot = d.tidy("BTCUSDT", "spot", "1h")
    assert spot.index[0] == start and spot.index[-1] == end - pd.Timedelta(hours=1)
    assert spot.index.is_monotonic_increasing and str(spot.index.tz) == "UTC" and spot.index.name == "ts"
    # the columns of the shared files, so a notebook cannot tell the layouts apart
    assert list(spot.columns) == ["open", "high", "low", "close", "volume"]
    assert list(d.tidy("ETHUSDT", "mark", "1h").columns) == ["open", "high", "low", "close"]
    f = d.tidy("BTCUSDT", "funding", "8h")
    assert list(f.columns) == ["funding_rate"] and f.index[-1] < end
    assert set(f.index.hour) == {0, 8, 16}
    assert all(df.dtypes.eq("float64").all() for df in (spot, f))
    # ETH is its own series, not BTC's relabelled
    assert not np.allclose(d.tidy("ETHUSDT", "spot", "1h")["close"], spot["close"])


def test_demo_is_deterministic_per_seed(no_shared) -> None:
    a = market_data(SAMPLE).tidy("BTCUSDT", "perp", "1h")
    b = market_data(SAMPLE).tidy("BTCUSDT", "perp", "1h")
    c = market_data(SAMPLE, seed=8).tidy("BTCUSDT", "perp", "1h")
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["close"], c["close"])


def test_stress_window_fallback_covers_2020_to_2022(no_shared) -> None:
    d = market_data(STRESS)
    c = d.tidy("BTCUSDT", "spot", "1h")
    assert c.index[0] == pd.Timestamp("2020-01-01", tz="UTC")
    assert c.index[-1] == pd.Timestamp("2022-12-31T23:00", tz="UTC")


def test_demo_market_and_crossvenue(no_shared) -> None:
    d = market_data(SAMPLE)
    m = d.market("ETH")
    assert (m.venue, m.spot_symbol, m.perp_symbol, m.timeframe) == ("demo", "ETH/USDT", "ETH/USDT:USDT", "1h")
    pd.testing.assert_frame_equal(m.funding, d.tidy("ETHUSDT", "funding", "8h"))
    cv = d.crossvenue_funding()
    assert list(cv.columns) == ["ts", "venue", "symbol", "funding_rate", "interval_hours"]
    assert set(cv["venue"]) == {"demo"} and set(cv["symbol"]) == {"BTCUSDT", "ETHUSDT"}
    assert (cv["interval_hours"] == 8.0).all()


def test_tag_labels_a_figure_only_when_synthetic(no_shared, fake_shared, monkeypatch) -> None:
    monkeypatch.setenv("HEDGE_SHARED_DATA", str(fake_shared))
    shared = market_data(SAMPLE)
    assert shared.tag(go.Figure(layout={"title": "PnL"})).layout.title.text == "PnL"
    monkeypatch.setenv("HEDGE_SHARED_DATA", str(no_shared))
    demo = market_data(SAMPLE)
    assert demo.tag(go.Figure(layout={"title": "PnL"})).layout.title.text == f"PnL ({DEMO_LABEL})"


def test_shared_window_is_read_in_place(fake_shared) -> None:
    d = market_data(SAMPLE)
    assert (d.source, d.synthetic, d.venue) == ("shared", False, "binance")
    assert d.root == (fake_shared / SAMPLE).resolve() and "real Binance data" in d.label
    assert DEMO_LABEL not in d.label and d.title("x") == "x"
    spot = d.tidy("ETHUSDT", "spot", "1h")
    assert len(spot) == 48 and spot["close"].iloc[0] == 200.5
    pd.testing.assert_frame_equal(spot, load_tidy(SAMPLE, "binance", "ETHUSDT", "spot", "1h"))
    assert d.tidy("BTCUSDT", "funding", "8h")["funding_rate"].eq(0.0001).all()
    cv = d.crossvenue_funding()
    assert set(cv["venue"]) == {"binance", "okx"} and (cv["interval_hours"] == 8.0).all()
    assert str(cv["ts"].dt.tz) == "UTC"


def test_a_shared_folder_without_the_window_falls_back(fake_shared) -> None:
    assert market_data(SAMPLE).source == "shared"
    assert market_data(STRESS).source == "demo"  # the fake folder only holds the sample window


@pytest.mark.parametrize(("call", "field"), [
    (lambda: market_data("sample_2019"), "window"),
    (lambda: market_data(SAMPLE).tidy("BTCUSDT", "ohlc", "1h"), "kind"),
    (lambda: market_data(SAMPLE).tidy("BTCUSDT", "spot", "5m"), "timeframe"),
    (lambda: market_data(SAMPLE).tidy("BTCUSDT", "funding", "1h"), "timeframe"),
    (lambda: market_data(SAMPLE).tidy("SOLUSDT", "spot", "1h"), "pair"),
])
def test_bad_arguments_name_the_field(no_shared, call, field) -> None:
    with pytest.raises(InvalidInput) as e:
        call()
    assert e.value.field == field


@pytest.mark.shared_data
def test_real_shared_sample_matches_load_tidy(shared_data, monkeypatch) -> None:
    monkeypatch.setenv("HEDGE_SHARED_DATA", str(shared_data))
    d = market_data(SAMPLE)
    assert d.source == "shared"
    pd.testing.assert_frame_equal(d.tidy("BTCUSDT", "mark", "1h"),
                                  load_tidy(SAMPLE, "binance", "BTCUSDT", "mark", "1h"))
    assert {"binance", "bybit", "okx"} <= set(d.crossvenue_funding()["venue"])
