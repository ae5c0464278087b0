"""The Market data page and what it reads: AppTest on an empty and a filled database."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from hedge_core.ui.views.market import chart_timeframe, pair_view, pairs_available
from hedge_core.store import Store
from hedge_core.ui.figures.market import pair_figure


def _fill(store: Store, venue: str = "demo", days: int = 30) -> None:
    idx = pd.date_range("2024-01-01", periods=days * 24, freq="1h", tz="UTC", name="ts")
    px = 100 + np.arange(len(idx), dtype=float)
    bars = pd.DataFrame({"open": px, "high": px + 1, "low": px - 1, "close": px, "volume": 1.0}, index=idx)
    store.write_bars(bars, venue=venue, symbol="BTC/USDT", kind="spot", timeframe="1h")
    store.write_bars(bars * 1.001, venue=venue, symbol="BTC/USDT:USDT", kind="perp", timeframe="1h")
    store.write_bars(bars * 1.001, venue=venue, symbol="BTC/USDT:USDT", kind="mark", timeframe="1h")
    f = pd.DataFrame({"funding_rate": 1e-4}, index=pd.date_range("2024-01-01", periods=days * 3, freq="8h", tz="UTC"))
    store.write_funding(f, venue=venue, symbol="BTC/USDT:USDT")


def test_pair_view_basis_funding_and_downsampling(tmp_path) -> None:
    st_ = Store(tmp_path / "v.duckdb")
    _fill(st_)
    start, end = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-02-01", tz="UTC")
    v = pair_view(st_, "demo", "BTC/USDT", start, end, max_points=200)
    assert v.timeframe == "4h" and len(v.frame) <= 200 and v.synthetic
    np.testing.assert_allclose(v.frame["basis_bps"], 10.0, rtol=1e-9)
    np.testing.assert_allclose(v.funding["apr"], 1e-4 * 3 * 365)
    assert [t.name for t in pair_figure(v).data] == ["BTC/USDT", "BTC/USDT:USDT", "mark", "basis", "funding"]
    assert pairs_available(st_.series()).to_dict("records") == [
        {"venue": "demo", "spot_symbol": "BTC/USDT", "timeframe": "1h"}]


def test_chart_timeframe_ladder() -> None:
    s, e = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2025-01-01", tz="UTC")
    assert chart_timeframe("1m", s, e, 2000) == "1d"
    assert chart_timeframe("1h", s, s + pd.Timedelta(days=30), 2000) == "1h"


@pytest.mark.parametrize("filled", [False, True])
def test_market_page_renders(tmp_path, monkeypatch, filled: bool) -> None:
    db = tmp_path / "p.duckdb"
    s = Store(db)
    if filled:
        _fill(s)
    s.close()
    monkeypatch.setenv("HEDGE_DB", str(db))
    monkeypatch.setenv("HEDGE_PANEL_AUTOSTART", "0")  # no runner: the page reads the file itself
    monkeypatch.setenv("HEDGE_RUNNER_HOME", str(tmp_path / "home"))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60).run()
    at.switch_page("pages/market_data.py").run()
    assert not at.exception, at.exception
    if filled:
        assert any("SYNTHETIC" in w.value for w in at.warning)
        assert len(at.get("plotly_chart")) == 1
    else:
        assert any("no market data" in i.value for i in at.info)


def test_candles_aggregate_ohlc_like_pandas(tmp_path) -> None:
    from hedge_core.ui.figures.market import candle_figure
    from hedge_core.ui.views.market import candles

    st_ = Store(tmp_path / "c.duckdb")
    _fill(st_, days=10)
    start, end = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-11", tz="UTC")
    ohlc, tf = candles(st_, "demo", "BTC/USDT", "spot", start, end, max_points=60)
    assert tf == "4h" and len(ohlc) == 60
    raw = st_.read_bars("demo", "BTC/USDT", "spot", "1h", start, end)
    ref = raw.resample("4h").agg({"open": "first", "high": "max", "low": "min", "close": "last"})
    pd.testing.assert_frame_equal(ohlc, ref, check_freq=False, check_names=False)
    fig = candle_figure(ohlc, title="demo BTC/USDT", synthetic=True)
    assert fig.data[0].type == "candlestick" and "SYNTHETIC" in fig.layout.title.text


def test_market_page_candlesticks(tmp_path, monkeypatch) -> None:
    db = tmp_path / "p.duckdb"
    s = Store(db)
    _fill(s)
    s.close()
    monkeypatch.setenv("HEDGE_DB", str(db))
    monkeypatch.setenv("HEDGE_PANEL_AUTOSTART", "0")
    monkeypatch.setenv("HEDGE_RUNNER_HOME", str(tmp_path / "home"))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60).run()
    at.switch_page("pages/market_data.py").run()
    at.radio(key="market_chart_style").set_value("candlesticks").run()
    assert not at.exception, at.exception
    at.radio(key="market_candle_leg").set_value("perp").run()
    assert not at.exception, at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 1 and '"candlestick"' in charts[0].proto.spec and "USDT:USDT (" in charts[0].proto.spec


def _instruments(store: Store) -> list:
    from hedge_core.data.instruments import snapshot

    snap = snapshot()
    picked = [snap[("binance", "BTC/USDT")], snap[("binance", "BTC/USDT:USDT")], snap[("bybit", "BTC/USDT:USDT")]]
    store.write_instruments(picked, read_at=pd.Timestamp("2026-11-30T12:00Z"), source="test")
    return picked


def test_instruments_view_lists_the_stored_rows(tmp_path) -> None:
    from hedge_core.ui.views.market import INSTRUMENT_COLUMNS, instruments_view

    st_ = Store(tmp_path / "i.duckdb")
    assert instruments_view(st_).empty and list(instruments_view(st_).columns) == INSTRUMENT_COLUMNS
    picked = _instruments(st_)
    v = instruments_view(st_)
    assert list(v.columns) == INSTRUMENT_COLUMNS
    assert list(zip(v["venue"], v["symbol"], v["kind"])) == [
        ("binance", "BTC/USDT", "spot"), ("binance", "BTC/USDT:USDT", "perp"), ("bybit", "BTC/USDT:USDT", "perp")]
    for inst, row in zip(picked, v.to_dict("records")):  # the figures of the instruments written
        assert (row["tick"], row["lot"], row["min qty"]) == (inst.tick_size, inst.lot_size, inst.min_qty)
        assert row["min notional"] == inst.min_notional and row["contract size"] == inst.contract_size
        assert row["max leverage"] == inst.max_leverage and row["brackets"] == len(inst.brackets or ())
        assert row["read"] == "2026-11-30"
    assert v.loc[0, "brackets"] == 0 and v.loc[1, "brackets"] > 0  # spot: none; the perp carries its table


@pytest.mark.parametrize("with_instruments", [False, True])
def test_market_page_instruments_section(tmp_path, monkeypatch, with_instruments: bool) -> None:
    db = tmp_path / "p.duckdb"
    s = Store(db)
    _fill(s)
    if with_instruments:
        _instruments(s)
    s.close()
    monkeypatch.setenv("HEDGE_DB", str(db))
    monkeypatch.setenv("HEDGE_PANEL_AUTOSTART", "0")
    monkeypatch.setenv("HEDGE_RUNNER_HOME", str(tmp_path / "home"))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60).run()
    at.switch_page("pages/market_data.py").run()
    assert not at.exception, at.exception
    assert "Instruments" in [h.value for h in at.subheader]
    empty = [i.value for i in at.info if "instruments table is empty" in i.value]
    if with_instruments:
        assert not empty
        tables = [d.value for d in at.dataframe if "max leverage" in d.value.columns]
        assert len(tables) == 1 and len(tables[0]) == 3
    else:
        assert len(empty) == 1 and "hedge data instruments --venue" in empty[0]
