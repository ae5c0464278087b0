"""The README's run command in a real browser: `hedge app` seeds an empty database and serves the panel."""

from __future__ import annotations

import pytest

from hedge_core.store import Store
from tests.browser import browser_page, panel_process, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_first_run_seeds_demo_and_shows_market_page(tmp_path) -> None:
    db = tmp_path / "first.duckdb"
    with panel_process(db) as url, browser_page() as page:
        page.goto(url)
        page.get_by_text("Coverage").wait_for(timeout=60_000)
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        assert page.get_by_text("SYNTHETIC data").count() >= 1
        screenshot(page, "market_data")
    series = Store(db, read_only=True).series()
    assert set(series["venue"]) == {"demo"}
    assert {"spot", "perp", "mark", "funding"} <= set(series["kind"])
