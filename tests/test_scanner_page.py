"""The Funding scanner page (AppTest) and its view-model: the ranked table, a row's spread chart, and
"start a hedge from this row" (prefills the Start form for same-venue rows; refuses cross-venue rows)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from hedge_core.analytics.scanner import ScanConfig
from hedge_core.data.scan_inputs import ScanInputs
from hedge_core.ui.figures.scanner import ranked_figure, spread_figure
from hedge_core.store import Store
from hedge_core.ui.views.scanner import (
    DISPLAY_COLUMNS,
    StartPrefill,
    display_table,
    scan_view,
    start_prefill,
)

ROOT = Path(__file__).resolve().parents[1]
T0 = pd.Timestamp("2024-01-01", tz="UTC")
pytestmark = pytest.mark.timeout(300)


def _funding(rate: float, n: int, hours: float = 8.0) -> pd.DataFrame:
    idx = T0 + pd.to_timedelta(np.arange(1, n + 1) * hours, unit="h")
    return pd.DataFrame({"funding_rate": rate, "interval_hours": hours}, index=pd.DatetimeIndex(idx, name="ts"))


def _fill(db: Path) -> None:
    with Store(db) as st:
        st.write_funding(_funding(0.0001, 90), venue="binance", symbol="BTC/USDT:USDT")
        st.write_funding(_funding(0.00003, 720, hours=1.0), venue="bybit", symbol="BTC/USDT:USDT")
        st.write_funding(_funding(-0.0002, 90), venue="okx", symbol="ETH/USDT:USDT")


def _inputs() -> ScanInputs:
    f = []
    for venue, rate, n, h, sym in (("binance", 0.0001, 90, 8.0, "BTC/USDT:USDT"),
                                   ("bybit", 0.00003, 720, 1.0, "BTC/USDT:USDT")):
        d = _funding(rate, n, h).reset_index().assign(venue=venue, symbol=sym)
        f.append(d)
    return ScanInputs(pd.concat(f, ignore_index=True), pd.DataFrame(), pd.DataFrame())


def test_view_table_figures_and_prefill() -> None:
    v = scan_view(_inputs(), ScanConfig(min_history_days=1))
    t = display_table(v.ranked)
    assert list(t.columns) == DISPLAY_COLUMNS and len(t) == 3
    # bybit spot/perp first: 0.00003 x 8760 = 26.28 %/yr; round trip 2 x 0.0011 + 2 x 0.00065 = 0.35 %
    assert t.iloc[0]["direction"] == "long spot bybit / short perp bybit"
    assert t.iloc[0]["APR %"] == pytest.approx(26.28) and t.iloc[0]["costs %"] == pytest.approx(0.35)
    assert t.iloc[0]["net %"] == pytest.approx(100 * (0.2628 * 30 / 365 - 0.0035))
    assert set(t["funding"]) == {"1h", "8h", "8h/1h"}
    fig = ranked_figure(t)
    assert len(fig.data[0].y) == 3 and fig.data[0].y[-1].startswith("#1 ")  # best on top
    cross = v.ranked[v.ranked["kind"] == "perp_perp"].iloc[0].to_dict()
    from hedge_core.ui.views.scanner import row_spread

    hist = row_spread(v, cross)
    np.testing.assert_allclose(hist["spread"], 0.2628 - 0.1095, rtol=1e-9)
    sf = spread_figure(hist, cross, lookback_start=v.as_of - pd.Timedelta(days=30))
    assert sf.data[0].name == "spread received" and len(sf.data) == 3
    refusal = start_prefill(cross)
    assert isinstance(refusal, str) and "two venues (binance and bybit)" in refusal
    pre = start_prefill(v.ranked.iloc[0].to_dict())
    assert isinstance(pre, StartPrefill) and (pre.spot_symbol, pre.venue, pre.mode) == ("BTC/USDT", "bybit", "paper")
    assert pre.min_size == 0.0 and "runner's venue" in pre.note  # no instruments given: size unknown


def test_prefill_of_a_negative_funding_row_names_allow_spot_short() -> None:
    row = {"kind": "spot_perp", "symbol": "ETH/USDT:USDT", "short_venue": "okx", "short_leg": "spot",
           "direction": "short spot okx / long perp okx", "net_carry": 0.001, "min_size_quote": 12.5}
    pre = start_prefill(row)
    assert isinstance(pre, StartPrefill) and "allow_spot_short" in pre.note and pre.min_size == 12.5
    assert start_prefill({**row, "min_size_quote": math.nan}).min_size == 0.0  # type: ignore[union-attr]


def _env(tmp_path: Path, monkeypatch) -> None:
    from tests.support.browser import panel_env

    env = panel_env(tmp_path, demo_days=None, export=True)
    _fill(Path(env["HEDGE_DB"]))
    for k, v in env.items():
        monkeypatch.setenv(k, v)


@pytest.mark.integration  # the whole panel app in AppTest, like tests/test_panel_*
def test_scanner_page_ranks_charts_and_starts_from_a_row(tmp_path, monkeypatch) -> None:
    _env(tmp_path, monkeypatch)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/scanner.py").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table.columns) == DISPLAY_COLUMNS
    assert table.iloc[0]["direction"] == "long spot bybit / short perp bybit"
    assert "short spot okx / long perp okx" in set(table["direction"])
    charts = at.get("plotly_chart")
    assert len(charts) == 2 and "spread received" in charts[1].proto.spec
    # a cross-venue row: said clearly, no start button
    labels = at.selectbox(key="scan_row").options
    cross = next(i for i, s in enumerate(labels) if "long perp binance / short perp bybit" in s)
    at.selectbox(key="scan_row").set_value(cross).run()
    assert not at.exception, at.exception
    assert any("two venues" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key == "scan_start"]
    # the best (same-venue) row: prefills the start form in paper mode
    at.selectbox(key="scan_row").set_value(0).run()
    at.button(key="scan_start").click().run()
    assert not at.exception, at.exception
    assert at.session_state["start_prefill"]["spot_symbol"] == "BTC/USDT"
    assert at.text_input(key="start_symbol").value == "BTC/USDT"
    assert at.radio(key="start_mode").value == "paper"
    assert any("From the scanner" in i.value for i in at.info)


@pytest.mark.integration  # the whole panel app in AppTest, like tests/test_panel_*
def test_scanner_page_bad_form_input_and_empty_store(tmp_path, monkeypatch) -> None:
    _env(tmp_path, monkeypatch)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/scanner.py").run()
    at.multiselect(key="scan_kinds").set_value([])
    at.button[0].click().run()  # the form's submit
    assert not at.exception, at.exception
    assert any("kinds" in e.value for e in at.error)
    at.multiselect(key="scan_kinds").set_value(["perp_perp"])
    at.number_input(key="scan_min_hist").set_value(3000.0)
    at.button[0].click().run()
    assert any("No pair has 3000 days" in i.value for i in at.info)
    spec = json.dumps([d.value.to_dict() for d in at.dataframe]) if at.dataframe else "[]"
    assert spec == "[]"


@pytest.mark.integration  # the whole panel app in AppTest, like tests/test_panel_*
def test_scanner_page_on_a_store_without_funding(tmp_path, monkeypatch) -> None:
    from tests.support.browser import panel_env

    for k, v in panel_env(tmp_path, demo_days=None, export=False).items():
        monkeypatch.setenv(k, v)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/scanner.py").run()
    assert not at.exception, at.exception
    assert any("Nothing to scan" in i.value and "hedge data import" in i.value for i in at.info)
