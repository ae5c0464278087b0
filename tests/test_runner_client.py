"""The client helpers notebooks use: spawn a runner process, wait for a hedge state."""

from __future__ import annotations

import pytest

from hedge_core.runner.client import (
    RunnerClient,
    RunnerError,
    RunnerNotRunning,
    spawn_runner,
    wait_for_state,
)
from tests.support.runner_env import DEMO_START, make_env

pytestmark = pytest.mark.timeout(120)


def test_spawn_runner_and_wait_for_state(tmp_path, monkeypatch):
    env = make_env(tmp_path)
    monkeypatch.setenv("HEDGE_RUNNER_HOME", str(env.home))
    with pytest.raises(RunnerNotRunning):
        RunnerClient.discover(env.home)
    proc, c = spawn_runner(db=env.db, home=env.home, params_dir=env.params)
    try:
        assert c.pid == proc.pid and c.token not in repr(c)
        h = c.start("carry-test", mode="paper", start=DEMO_START, speed=36_000)
        s = wait_for_state(c, h["hedge_id"], ("MONITORING_POSITIONS",), timeout=60)
        assert s["state"] == "MONITORING_POSITIONS"
        with pytest.raises(RunnerError, match="not in"):
            wait_for_state(c, h["hedge_id"], "PAUSED", timeout=0.5)
        c.shutdown()
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
