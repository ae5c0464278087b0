"""The panel finds the runner, starts it detached when absent (one runner for concurrent loads), reads
the snapshot while it runs, and leaves it running when the panel goes away."""

from __future__ import annotations

import os
import threading

import pytest

from hedge_core.ui.views.runner_link import autostart_enabled, connect, reader, runner_info, stop_runner
from tests.support.browser import kill_runner, panel_env

pytestmark = pytest.mark.timeout(120)


def test_autostart_flag() -> None:
    assert autostart_enabled({}) and not autostart_enabled({"HEDGE_PANEL_AUTOSTART": "0"})


def test_no_runner_without_autostart_says_what_to_do(tmp_path) -> None:
    env = panel_env(tmp_path, demo_days=None, export=False)
    lk = connect(env["HEDGE_DB"], env["HEDGE_RUNNER_HOME"], autostart=False)
    assert not lk.up and "hedge runner start" in lk.message
    assert reader(lk).series().empty  # reads the file itself
    assert runner_info(lk)["address"] is None


def test_autostart_detached_single_runner_and_snapshot_reads(tmp_path, monkeypatch) -> None:
    env = panel_env(tmp_path, demo_days=3, export=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    home = env["HEDGE_RUNNER_HOME"]
    links = []
    try:
        ts = [threading.Thread(target=lambda: links.append(connect(env["HEDGE_DB"], home, autostart=True)))
              for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert all(lk.up for lk in links), [lk.message for lk in links]
        assert len({lk.client.pid for lk in links}) == 1  # two concurrent loads, one runner
        assert sum(lk.started for lk in links) == 1
        pid = links[0].client.pid
        assert os.getsid(pid) == pid  # its own session: the panel's exit does not take it down
        rd = reader(links[0])
        assert rd.read_only and "snapshots" in rd.path  # never the live file while the runner holds it
        assert set(rd.series()["venue"]) == {"demo"}
        again = connect(env["HEDGE_DB"], home, autostart=True)  # re-attach, no new start
        assert again.up and not again.started and again.client.pid == pid
        stop_runner(again)
        assert not connect(env["HEDGE_DB"], home, autostart=False).up
    finally:
        kill_runner(home)
