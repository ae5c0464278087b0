"""The operator's journey in headless chromium, end to end, with every part real:

sign in (HEDGE_PANEL_PASSWORD) -> start a paper hedge from a STARTER set on the Start page (made by
`hedge app` on its first run) -> watch it enter on LIVE-LIKE prices (paper fills on the local Binance
simulator's bars, reached by real ccxt; clock "live") -> receive its lifecycle alert at a local webhook
(Apprise json://) -> download its fills as CSV from its page -> stop it (COMPLETED, both legs closed).

Screenshots go to test-artifacts/ (journey_*.png).
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from hedge_core.runner.client import RunnerClient, RunnerNotRunning
from tests.support.browser import (
    browser_page,
    kill_runner,
    panel_env,
    panel_process,
    screenshot,
    wait_for,
)
from tests.support import live_env as sim_env
from tests.support.live_env import TEST_KEY, TEST_SECRET
from tests.support.sim_thread import PRICE, SimThread
from tests.support.webhook import Receiver

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]
PASSWORD = "journey-pass-8c1f"
FACTORY = "tests.support.simfactory:make_adapter"


def _seed_live_bars(sim: SimThread) -> None:
    """Closed 1h bars up to the current hour on the simulator (spot, perp, mark) and a funding rate that
    pays the carry: the paper hedge's live feed reads them like a venue's klines."""
    now = pd.Timestamp.now(tz="UTC").floor("1h")
    for k in range(6, 0, -1):
        t = now - pd.Timedelta(hours=k)
        px = PRICE * (1 + 0.0005 * (6 - k))
        for market in ("spot", "fapi", "mark"):
            sim.sim.add_kline("BTCUSDT", market, int(t.value // 1_000_000), px, px * 1.001, px * 0.999, px, 1_000.0)
    sim.sim.set_funding_rate("BTCUSDT", 0.001)
    sim.sim.settle_funding("BTCUSDT", 0.001, ts_ms=int((now - pd.Timedelta(hours=8)).value // 1_000_000))


def test_sign_in_start_from_a_starter_set_watch_live_alert_download_stop(tmp_path) -> None:
    sim, rx = SimThread(), Receiver()
    _seed_live_bars(sim)
    env = panel_env(tmp_path, demo_days=3, export=False, autostart=True)  # no set: the first run makes starters
    env.pop("HEDGE_OFFLINE")  # the "venue" (the simulator) answers: paper trades on live data
    ca = tmp_path / "ca.pem"
    sim_env.test_ca().cert_pem.write_to_path(str(ca))
    env.update({"HEDGE_PANEL_PASSWORD": PASSWORD, "HEDGE_ALERT_URLS": rx.url("hook"), "HEDGE_ALERT_MIN_LEVEL": "info",
                "HEDGE_RUNNER_ADAPTER_FACTORY": FACTORY, "HEDGE_TEST_SIM_PORT": str(sim.server.port),
                "HEDGE_TEST_SIM_CA": str(ca), "HEDGE_TEST_SIM_KEY": TEST_KEY, "HEDGE_TEST_SIM_SECRET": TEST_SECRET})
    home = env["HEDGE_RUNNER_HOME"]
    try:
        with panel_process(Path(env["HEDGE_DB"]), extra_env={**env, "HEDGE_OFFLINE": ""}) as url, \
                browser_page() as page:
            page.set_default_timeout(60_000)
            # ---- sign in: nothing but the form until the password is given
            page.goto(url)
            page.get_by_role("heading", name="Sign in").first.wait_for(timeout=60_000)
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("heading", name="Overview").first.wait_for(timeout=60_000)
            screenshot(page, "journey_signed_in")

            # ---- start a paper hedge from a starter set (live market data: the default)
            page.get_by_role("link", name="Start a hedge", exact=True).first.click()
            page.get_by_role("heading", name="Start a hedge").first.wait_for(timeout=30_000)
            page.get_by_text("starter-carry@1").first.wait_for(timeout=30_000)
            page.get_by_role("button", name="Start hedge").click()
            page.get_by_text("started ").first.wait_for(timeout=60_000)
            assert page.get_by_text("clock: live").count() >= 1  # paper fills on the venue's live prices
            c = wait_for(lambda: _client(home), 30, what="the runner")
            (h0,) = c.hedges()
            hid = h0["hedge_id"]
            assert h0["params"] == "starter-carry@1" and h0["mode"] == "paper"
            screenshot(page, "journey_started")

            # ---- watch it enter on the live-like prices
            page.get_by_text("Open its detail page").click()
            page.get_by_role("heading", name="Hedge detail").first.wait_for(timeout=30_000)
            page.get_by_text("state: MONITORING_POSITIONS").first.wait_for(timeout=120_000)
            h = c.hedge(hid)
            assert h["clock"] == "live" and h["spot_qty"] > 0 > h["perp_qty"]
            assert not sim.sim.orders  # paper: the venue only served market data
            screenshot(page, "journey_monitoring")

            # ---- its alert reached the local webhook (through Apprise, out of the process)
            got = wait_for(lambda: [m for m in rx.at("hook") if hid in m.get("message", "")
                                    and "entered" in m.get("message", "")], 30, what="the lifecycle alert")
            assert got[0]["type"] == "info"

            # ---- download its fills from its page (once the runner's snapshot, a few seconds old, has them)
            button = page.get_by_role("button", name=re.compile(r"^fills \([1-9]"))
            button.first.wait_for(timeout=60_000)
            with page.expect_download() as dl:
                button.first.click()
            fills = pd.read_csv(io.BytesIO(Path(dl.value.path()).read_bytes()))
            assert set(fills["leg"]) == {"spot", "perp"} and (fills["hedge_id"] == hid).all()

            # ---- stop it (with confirmation): COMPLETED, both legs closed
            main = page.get_by_test_id("stMainBlockContainer")  # not Streamlit's own header "Stop" (script running)
            main.get_by_role("button", name="Stop", exact=True).click()
            page.get_by_role("button", name="Confirm stop").click()
            page.get_by_text("state: COMPLETED").first.wait_for(timeout=90_000)
            h = wait_for(lambda: (lambda x: x if x.get("state") == "COMPLETED" and not x.get("pending_orders")
                                  else None)(c.hedge(hid)), 60, what="completed")
            assert h["perp_qty"] == pytest.approx(0.0, abs=1e-12) and abs(h["spot_qty"]) < 0.001
            page.get_by_text("the hedge is finished").first.wait_for(timeout=30_000)
            assert main.get_by_role("button", name="Stop", exact=True).count() == 0  # no commands when finished
            screenshot(page, "journey_completed")
            assert page.get_by_text("Traceback").count() == 0
    finally:
        kill_runner(home)
        shutil.rmtree(Path(home) / "paper", ignore_errors=True)
        rx.close()
        sim.close()


def _client(home: str) -> RunnerClient | None:
    try:
        return RunnerClient.discover(home)
    except RunnerNotRunning:
        return None
