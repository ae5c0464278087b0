"""The README's run command in a real browser: `hedge app` seeds an empty database and serves the panel."""

from __future__ import annotations

import pytest

from hedge_core.store import Store
from tests.browser import browser_page, panel_process, screenshot

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
        screenshot(page, "market_data_first_run")
    series = Store(db, read_only=True).series()
    assert set(series["venue"]) == {"demo"}
    assert {"spot", "perp", "mark", "funding"} <= set(series["kind"])
