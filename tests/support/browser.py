"""Support for real-browser tests: a real panel process and Debian's chromium driven by Playwright.

Screenshots go to ``test-artifacts/`` (kept by CI as artifacts). Without chromium the tests skip
with a reason, except under ``CI=true`` where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        msg = "Debian's chromium is not installed (make test installs it when run as root: apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def panel_process(db: Path, *, extra_env: dict[str, str] | None = None, seed: bool = True,
                  timeout: float = 120.0) -> Iterator[str]:
    """Start the panel the way the README does (``hedge app``) on a free port; yield its URL."""
    port = free_port()
    env = {**os.environ, "HEDGE_DB": str(db), "HEDGE_OFFLINE": "1", **(extra_env or {})}
    log = (ARTIFACTS / f"panel-{port}.log")
    ARTIFACTS.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "hedge_core.cli", "app", "--db", str(db), "--port", str(port),
           "--address", "127.0.0.1"] + ([] if seed else ["--no-seed"])
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise AssertionError(f"panel exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"panel did not come up in {timeout}s:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def browser_page() -> Iterator["object"]:
    """A Playwright page in headless Debian chromium (no browser download)."""
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            yield page
        finally:
            browser.close()


def screenshot(page: "object", name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


# Streamlit's own frontend marks its root element with the script run's state (data-test-script-state on
# [data-testid="stApp"]): "notRunning" once a run has ended, i.e. every element that run draws has arrived
_DRAWN = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
    return [...document.querySelectorAll('.js-plotly-plot')].every(p => p.querySelector('.main-svg'));
}"""


def wait_drawn(page: "object", timeout_ms: float = 30_000) -> None:
    """Wait (on the condition, not a clock) until the page's script run has ended and every plotly chart on it
    has rendered its svg; ``timeout_ms`` in milliseconds."""
    page.wait_for_function(_DRAWN, timeout=timeout_ms)  # type: ignore[attr-defined]


# ---- isolated panel environments (database, runner home, parameter sets) ---------------------------

EXITS_OFF = {"exit": {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                      "funding_unfavourable_intervals": None}}


def panel_env(root: Path, *, demo_days: float | None = 10.0, export: bool = True, autostart: bool = False,
              ) -> dict[str, str]:
    """Env vars of an isolated panel: its own database (demo market when ``demo_days``), runner home and
    parameter folder (one exported carry set 'carry-e2e' with exits off when ``export``)."""
    from hedge_core.params import store as param_store
    from hedge_core.params.models import CarryParams
    from hedge_core.store import Store

    root.mkdir(parents=True, exist_ok=True)
    db, home, params = root / "db" / "hedge.duckdb", root / "home", root / "params"
    with Store(db) as st:
        if demo_days:
            from hedge_core.data.demo import seed_demo

            seed_demo(st, days=demo_days)
    if export:
        # exits and the funding-cost guard off: the demo market's funding turns against the carry within a
        # day of data, and the tests need the hedge to stay on until they stop it
        p = CarryParams(notional=1000.0, min_funding_rate=0.00001, min_net_carry=-1.0,
                        guards={"funding_cost_apr_limit": None}, **EXITS_OFF)
        param_store.export(p, "carry-e2e", created_from="test", root=params, kpis={"sharpe": 1.5, "net_apr": 0.08},
                           data_window=("2024-01-01", "2024-01-10"), index=False)
    return {"HEDGE_DB": str(db), "HEDGE_RUNNER_HOME": str(home), "HEDGE_PARAMS_DIR": str(params),
            "HEDGE_OFFLINE": "1", "HEDGE_PANEL_AUTOSTART": "1" if autostart else "0"}


def start_runner(env: dict[str, str], log: Path) -> subprocess.Popen:
    """A runner on the env's database (fast heartbeat), waited for until its API answers."""
    from hedge_core.runner.client import RunnerClient, RunnerNotRunning

    full = {k: v for k, v in os.environ.items() if not k.startswith("HEDGE_")}
    full.update(env)
    with open(log, "w") as out:
        p = subprocess.Popen([sys.executable, "-m", "hedge_core.runner", "--heartbeat", "0.2"], cwd=ROOT, env=full,
                             stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise AssertionError(f"runner exited with {p.returncode}: {log.read_text()[-2000:]}")
        try:
            if RunnerClient.discover(env["HEDGE_RUNNER_HOME"]).pid == p.pid:
                return p
        except RunnerNotRunning:
            pass
        time.sleep(0.1)
    raise AssertionError(f"runner did not answer: {log.read_text()[-2000:]}")


def kill_runner(home: str | Path, proc: subprocess.Popen | None = None) -> None:
    """Kill the runner of ``home`` (by its runner.json pid) and ``proc``; never anything else."""
    import json
    import signal

    pids = set()
    try:
        pids.add(int(json.loads((Path(home) / "runner.json").read_text())["pid"]))
    except (OSError, ValueError, KeyError):
        pass
    if proc is not None and proc.poll() is None:
        pids.add(proc.pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if proc is not None:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass


def wait_for(pred, timeout: float = 60.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
