"""The panel's start form runs the runner's preflight (POST /hedges, dry_run for "Check only"): an
amount the perp cannot hedge and an amount beyond the balances are refused naming the range; a good
one is checked without starting anything. And the API's start refuses the same way (issue #12 (c):
5 and 50,000,000 USDT)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from hedge_core.errors import InvalidInput
from hedge_core.runner.client import RunnerClient
from tests.support.browser import kill_runner, panel_env, start_runner

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def runner_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("preflight")
    env = panel_env(root, demo_days=5)
    proc = start_runner(env, root / "runner.log")
    env["HEDGE_PANEL_AUTOSTART"] = "1"
    try:
        yield env
    finally:
        kill_runner(env["HEDGE_RUNNER_HOME"], proc)


def _form(env, monkeypatch, size: float) -> AppTest:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/start_hedge.py").run()
    at.number_input(key="start_size").set_value(size)
    at.radio(key="start_paper_data").set_value("replay of stored history")
    at.text_input(key="start_replay_start").input("2024-01-01T05:00Z")
    return at


@pytest.mark.parametrize("size,fragment", [(5.0, "smallest hedgeable"), (50_000_000.0, "largest bound by")])
def test_start_form_refuses_unhedgeable_sizes(runner_env, monkeypatch, size, fragment) -> None:
    at = _form(runner_env, monkeypatch, size)
    at.button(key="FormSubmitter:start-Start hedge").click()
    at.run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any("Not started" in e and "amount=" in e and fragment in e for e in errors), errors
    assert RunnerClient.discover(runner_env["HEDGE_RUNNER_HOME"]).hedges() == []  # nothing started


def test_start_form_check_only_starts_nothing(runner_env, monkeypatch) -> None:
    at = _form(runner_env, monkeypatch, 1_000.0)
    at.button(key="FormSubmitter:start-Check only (send nothing)").click()
    at.run()
    assert not at.exception, at.exception
    ok = [s.value for s in at.success]
    assert any("Check passed" in s and "size: 1,000.00 USDT within" in s for s in ok), (ok, [e.value for e in at.error])
    assert RunnerClient.discover(runner_env["HEDGE_RUNNER_HOME"]).hedges() == []


def test_api_start_refuses_5_and_50m_and_dry_run_reports(runner_env) -> None:
    c = RunnerClient.discover(runner_env["HEDGE_RUNNER_HOME"])
    ref = "carry-e2e"
    for size in (5.0, 50_000_000.0):
        with pytest.raises(InvalidInput) as e:
            c.start(ref, mode="paper", start="2024-01-01T05:00Z", notional=size)
        assert e.value.field == "amount"
    out = c.start(ref, mode="paper", start="2024-01-01T05:00Z", notional=1_000.0, dry_run=True)
    assert out["dry_run"] is True and out["preflight"]["min_amount"] > 100.0
    assert "perp min notional 100" in out["preflight"]["min_binding"]
    assert c.hedges() == []
