"""The README's run command in a real browser: `hedge app` seeds an empty database and serves the panel."""

from __future__ import annotations

import pytest

from hedge_core.store import Store
from tests.support.browser import browser_page, panel_process, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_first_run_seeds_demo_and_shows_market_page(tmp_path) -> None:
    db = tmp_path / "first.duckdb"
    env = {"HEDGE_RUNNER_HOME": str(tmp_path / "home"), "HEDGE_PARAMS_DIR": str(tmp_path / "params"),
           "HEDGE_PANEL_AUTOSTART": "0"}  # this test is about seeding; test_browser_e2e covers the runner
    with panel_process(db, extra_env=env) as url, browser_page() as page:
        page.goto(url)
        page.get_by_role("heading", name="Overview").first.wait_for(timeout=60_000)
        page.get_by_role("link", name="Market data", exact=True).first.click()
        page.get_by_text("Coverage").wait_for(timeout=60_000)
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        assert page.get_by_text("SYNTHETIC data").count() >= 1
        # no instrument read yet: the Instruments section says how to fill the table
        page.get_by_text("instruments table is empty").first.wait_for(timeout=30_000)
        assert page.get_by_text("hedge data instruments --venue binance").count() >= 1
        screenshot(page, "market_data_first_run")
    series = Store(db, read_only=True).series()
    assert set(series["venue"]) == {"demo"}
    assert {"spot", "perp", "mark", "funding"} <= set(series["kind"])


def test_market_page_lists_the_stored_instruments(tmp_path) -> None:
    import pandas as pd

    from hedge_core.data.demo import seed_demo
    from hedge_core.data.instruments import snapshot

    db = tmp_path / "inst.duckdb"
    snap = snapshot()
    picked = [snap[(v, s)] for v, s in (("binance", "BTC/USDT"), ("binance", "ETH/USDT:USDT"), ("bybit", "BTC/USDT:USDT"))]
    with Store(db) as st:
        seed_demo(st, days=5, assets=("BTC",))
        st.write_instruments(picked, read_at=pd.Timestamp("2026-11-30T12:00Z"), source="test")
    env = {"HEDGE_RUNNER_HOME": str(tmp_path / "home"), "HEDGE_PARAMS_DIR": str(tmp_path / "params"),
           "HEDGE_PANEL_AUTOSTART": "0"}
    with panel_process(db, extra_env=env, seed=False) as url, browser_page() as page:
        page.goto(url)
        page.get_by_role("heading", name="Overview").first.wait_for(timeout=60_000)
        page.get_by_role("link", name="Market data", exact=True).first.click()
        page.get_by_role("heading", name="Instruments").first.wait_for(timeout=60_000)
        # st.dataframe draws on a canvas; its accessible table carries the cells
        grid = page.locator('[data-testid="stDataFrame"]').filter(has=page.locator("th", has_text="max leverage"))
        grid.first.wait_for(state="attached", timeout=30_000)
        heads = [t.strip() for t in grid.first.locator("th").all_text_contents()]
        assert heads[:11] == ["venue", "symbol", "kind", "tick", "lot", "min qty", "min notional", "contract size",
                              "max leverage", "brackets", "read"]
        rows = grid.first.locator('tbody tr[role="row"]')
        cells = [[c.strip() for c in rows.nth(i).locator("td").all_text_contents()] for i in range(rows.count())]
        assert [(r[0], r[1], r[2]) for r in cells] == [("binance", "BTC/USDT", "spot"),
                                                       ("binance", "ETH/USDT:USDT", "perp"),
                                                       ("bybit", "BTC/USDT:USDT", "perp")]
        perp = snap[("bybit", "BTC/USDT:USDT")]
        assert float(cells[2][8]) == perp.max_leverage and int(cells[2][9]) == len(perp.brackets or ())
        assert {r[10] for r in cells} == {"2026-11-30"}
        assert page.get_by_text("instruments table is empty").count() == 0
        screenshot(page, "market_data_instruments")
