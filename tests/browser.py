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

ROOT = Path(__file__).resolve().parents[1]
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
