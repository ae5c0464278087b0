"""End to end in headless chromium: the panel starts its runner, a paper hedge is started from an
exported parameter set on the Start page, reaches MONITORING_POSITIONS, is stopped from its detail
page and COMPLETES with both legs closed; then the sidebar kill switch flattens two running hedges;
the runner outlives the panel and a restarted panel (`hedge app --no-seed`) re-attaches to it.

Isolated: own database (demo market), runner home and parameter folder; the runner the panel
started (detached) is killed at teardown. Screenshots go to test-artifacts/; with
HEDGE_UPDATE_SCREENSHOTS=1 one screenshot per main page is also written to tests/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from hedge_core.runner.client import RunnerClient, RunnerNotRunning
from tests.support.browser import (ROOT, browser_page, kill_runner, panel_env, panel_process, screenshot, wait_drawn,
                                  wait_for)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]
LOT = 0.001  # perp lot: the spot leg closes to within one lot of the perp (dust stays on spot)
SHOTS = ROOT / "tests" / "screenshots"


def _client(home: str) -> RunnerClient:
    def get():
        try:
            return RunnerClient.discover(home)
        except RunnerNotRunning:
            return None
    return wait_for(get, 60, what="the runner the panel starts")


def _shot(page, name: str) -> None:
    wait_drawn(page)  # ends when drawn, not on a clock
    path = screenshot(page, name)
    if os.environ.get("HEDGE_UPDATE_SCREENSHOTS") == "1":
        page.wait_for_timeout(1500)  # README screenshots only: let plotly's transitions settle too
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)
    assert path.exists()


def _nav(page, title: str) -> None:
    page.get_by_role("link", name=title, exact=True).first.click()
    page.get_by_role("heading", name=title).first.wait_for(timeout=30_000)


def test_start_monitor_stop_and_flatten_all(tmp_path) -> None:
    env = panel_env(tmp_path, demo_days=10, autostart=True)
    home = env["HEDGE_RUNNER_HOME"]
    try:
        with panel_process(Path(env["HEDGE_DB"]), extra_env=env) as url, browser_page() as page:
            page.set_default_timeout(60_000)
            page.goto(url)
            page.get_by_role("heading", name="Overview").first.wait_for(timeout=60_000)
            c = _client(home)  # the panel started the runner
            page.get_by_text("heartbeat").first.wait_for(timeout=30_000)

            # ---- start a paper hedge from the exported set
            _nav(page, "Start a hedge")
            page.get_by_text("carry-e2e@1").first.wait_for(timeout=30_000)
            _shot(page, "start_hedge")
            page.get_by_role("button", name="Start hedge").click()
            page.get_by_text("started ").first.wait_for(timeout=30_000)
            hid = c.hedges()[0]["hedge_id"]
            page.get_by_text("Open its detail page").click()
            page.get_by_role("heading", name="Hedge detail").first.wait_for(timeout=30_000)
            page.get_by_text("state: MONITORING_POSITIONS").first.wait_for(timeout=90_000)
            h = c.hedge(hid)
            assert h["mode"] == "paper" and h["spot_qty"] > 0 and h["perp_qty"] < 0
            page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
            _shot(page, "hedge_detail")

            # ---- stop it (with confirmation) and see COMPLETED, both legs closed
            # the page's own Stop (Streamlit's header shows a "Stop" of its own while a script reruns)
            page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop", exact=True).click()
            page.get_by_role("button", name="Confirm stop").click()
            page.get_by_text("state: COMPLETED").first.wait_for(timeout=60_000)
            h = wait_for(lambda: (lambda x: x if not x.get("pending_orders") else None)(c.hedge(hid)), 30,
                         what="no pending orders")
            assert h["state"] == "COMPLETED"
            assert h["perp_qty"] == pytest.approx(0.0, abs=1e-12) and abs(h["spot_qty"]) < LOT
            screenshot(page, "hedge_completed")

            # ---- two hedges running, then the sidebar kill switch
            ids = [c.start("carry-e2e", mode="paper", start="2024-01-01T05:00Z", speed=3600.0)["hedge_id"]
                   for _ in range(2)]
            for i in ids:
                wait_for(lambda i=i: c.hedge(i).get("state") == "MONITORING_POSITIONS", 60, what=f"{i} hedged")
            _nav(page, "Overview")
            page.get_by_text(ids[1]).first.wait_for(state="attached", timeout=30_000)
            _shot(page, "overview")
            _nav(page, "Risk and LTV")
            page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
            _shot(page, "risk")
            page.get_by_text("Kill switch: flatten all").click()
            # a click that lands while the page reruns can be lost (a loaded box): tick until the box holds it
            confirm = page.get_by_role("checkbox", name="Yes, flatten every hedge now")
            for _ in range(3):
                if not confirm.is_checked():
                    page.get_by_text("Yes, flatten every hedge now").click()
                t_tick = time.monotonic()
                while not confirm.is_checked() and time.monotonic() - t_tick < 10:
                    page.wait_for_timeout(250)
                if confirm.is_checked():
                    break
            page.get_by_role("button", name="FLATTEN ALL").click()
            page.get_by_text("flatten sent to").first.wait_for(timeout=30_000)
            assert not page.get_by_role("checkbox", name="Yes, flatten every hedge now").is_checked()  # re-armed
            for i in ids:
                h = wait_for(lambda i=i: (lambda x: x if x.get("state") == "COMPLETED" and not x.get("pending_orders")
                                          else None)(c.hedge(i)), 60, what=f"{i} flattened")
                assert h["perp_qty"] == pytest.approx(0.0, abs=1e-12) and abs(h["spot_qty"]) < LOT
                assert h["kill_latched"]
            screenshot(page, "flattened")

            # ---- the other main pages render in the browser (screenshots for the README)
            for title, name, marker in (("Research", "research", "Run backtest"),
                                        ("Parameter sets", "params", "carry-e2e"),
                                        ("Market data", "market_data", None), ("Data", "data", "Coverage"),
                                        ("Settings", "settings", "Runner")):
                _nav(page, title)
                if name == "research":  # show a result, not an empty form
                    page.get_by_role("button", name="Run backtest").click()
                    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
                if marker:
                    page.get_by_text(marker).first.wait_for(state="attached", timeout=30_000)
                else:
                    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
                assert page.get_by_text("Traceback").count() == 0
                _shot(page, name)
        # the panel is gone; its runner is not (detached): hedges survive a closed browser/panel ...
        c = RunnerClient.discover(home)
        assert {h["hedge_id"] for h in c.hedges()} >= set(ids) | {hid}
        # ... and a new panel re-attaches to it on the next load (no second runner)
        with panel_process(Path(env["HEDGE_DB"]), extra_env=env, seed=False) as url2, browser_page() as page:
            page.goto(url2)
            page.get_by_role("heading", name="Overview").first.wait_for(timeout=60_000)
            page.get_by_text(hid).first.wait_for(state="attached", timeout=30_000)
            assert RunnerClient.discover(home).pid == c.pid
    finally:
        kill_runner(home)
        shutil.rmtree(Path(home) / "paper", ignore_errors=True)
