"""The runner's control API on a real runner process: token (401 without it), loopback only,
0600 token file, the hedge lifecycle through the client, clear refusals that start nothing,
signals (SIGTERM keeps or flattens by policy) and the dead man's switch."""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

import pytest
import requests

from hedge_core.errors import InvalidInput
from tests.support.runner_env import (
    DEMO_START,
    journal,
    make_env,
    paper_exchange,
    wait_for,
)

pytestmark = pytest.mark.timeout(180)
EXIT_OFF = {"exit": {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                     "funding_unfavourable_intervals": None}}


def listening_addresses(port: int) -> set[str]:
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for ln in lines:
            parts = ln.split()
            addr, p = parts[1].rsplit(":", 1)
            if int(p, 16) == port and parts[3] == "0A":  # LISTEN
                out.add(addr)
    return out


def test_token_loopback_lifecycle_and_refusals(tmp_path):
    env = make_env(tmp_path, export=EXIT_OFF)
    try:
        p = env.start_runner()
        c = env.client(p)
        info = json.loads((env.home / "runner.json").read_text())
        assert info["host"] == "127.0.0.1"
        assert listening_addresses(info["port"]) == {"0100007F"}  # 127.0.0.1 only, no 0.0.0.0 / ::
        mode = stat.S_IMODE(os.stat(env.home / "token").st_mode)
        assert mode == 0o600
        url = f"http://127.0.0.1:{info['port']}"
        for path in ("/health", "/hedges", "/history/fills"):
            assert requests.get(url + path, timeout=5).status_code == 401
            assert requests.get(url + path, headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
        assert requests.post(url + "/flatten-all", timeout=5).status_code == 401
        assert requests.post(url + "/hedges", json={"params": "carry-test"}, timeout=5).status_code == 401
        assert c.health()["ok"] is True
        assert c.hedges() == []  # nothing was started by the refused calls

        # refusals: clear error, nothing started, nothing written
        with pytest.raises(InvalidInput, match="carry-nope"):
            c.start("carry-nope", mode="paper")
        with pytest.raises(InvalidInput, match="promoted to live"):
            c.start("carry-test", mode="live", confirm_live=True)
        with pytest.raises(InvalidInput, match="recovery"):
            c.start("carry-test", mode="paper", recovery="sometimes")
        # a version file edited by hand into something invalid: named, refused, nothing started
        v1 = (env.params / "carry-test" / "v1.toml").read_text()
        (env.params / "carry-test" / "v2.toml").write_text(v1.replace("notional = 1000.0", "notional = 0.0"))
        with pytest.raises(InvalidInput, match=r"notional=0\.0.*> 0"):
            c.start("carry-test@2", mode="paper")
        (env.params / "carry-test" / "v2.toml").unlink()
        assert c.hedges() == [] and c.runs() == []

        # lifecycle
        h = c.start("carry-test", mode="paper", start=DEMO_START, speed=36_000, hedge_id="api1")
        assert h["hedge_id"] == "api1"
        wait_for(lambda: c.hedge("api1")["state"] == "MONITORING_POSITIONS", what="monitoring")
        assert c.pause("api1")["state"] == "PAUSED"
        assert c.resume("api1")["state"] == "MONITORING_POSITIONS"
        c.rebalance_now("api1")
        for table in ("transitions", "fills", "orders", "positions"):
            df = c.history(table, hedge_id="api1")
            assert len(df) > 0, table
        tr = c.history("transitions", hedge_id="api1")
        assert {"PAUSED", "MONITORING_POSITIONS"} <= set(tr["to_state"])
        assert c.health()["heartbeat_age_s"] < 2.0
        bars = c.bars("demo", "BTC/USDT", "spot", "1h", start="2024-01-02T00:00Z", end="2024-01-02T05:00Z")
        assert len(bars) == 5
        out = c.flatten_all()
        assert out[0]["hedge_id"] == "api1"
        wait_for(lambda: c.hedge("api1")["state"] == "COMPLETED", what="flattened")
        g = c.history("guards", hedge_id="api1")
        assert "kill_switch" in set(g["guard"])
        with pytest.raises(InvalidInput):
            c.command("api1", "explode")
    finally:
        env.cleanup()


@pytest.mark.parametrize("on_shutdown", ["keep", "flatten"])
def test_sigterm_keeps_or_flattens_by_policy(tmp_path, on_shutdown):
    env = make_env(tmp_path, export=EXIT_OFF)
    try:
        p = env.start_runner()
        c = env.client(p)
        c.start("carry-test", mode="paper", start=DEMO_START, speed=36_000, hedge_id="t1", on_shutdown=on_shutdown)
        wait_for(lambda: c.hedge("t1")["state"] == "MONITORING_POSITIONS", what="monitoring")
        p.send_signal(signal.SIGTERM)
        assert p.wait(60) == 0
        assert not (env.home / "runner.json").exists()
        runs = env.store().read_table("hedge_runs", hedge_id="t1")
        core = paper_exchange(env, "t1").core
        perp = sum(x.qty for x in core.positions.values())
        if on_shutdown == "keep":
            assert runs["state"].iloc[0] == "MONITORING_POSITIONS" and perp < 0
            p2 = env.start_runner()  # the next start resumes it
            c2 = env.client(p2)
            wait_for(lambda: c2.hedge("t1")["state"] == "MONITORING_POSITIONS", what="resumed")
            assert "RECOVERY" in set(journal(env, "transitions", "t1")["trigger_name"])
        else:
            assert runs["state"].iloc[0] == "COMPLETED" and perp == 0
    finally:
        env.cleanup()


def test_dead_mans_switch_flattens_when_the_supervisor_stalls(tmp_path):
    # no other guard may end the hedge first: how much data time passes before the stall depends on the machine
    env = make_env(tmp_path, export={**EXIT_OFF, "guards": {"funding_cost_apr_limit": None}})
    try:
        p = env.start_runner({"HEDGE_RUNNER_STALL_HEARTBEAT_AFTER": "4"}, args=["--dms-timeout", "1.5"])
        c = env.client(p)
        c.start("carry-test", mode="paper", start=DEMO_START, speed=18_000, hedge_id="d1")
        wait_for(lambda: c.hedge("d1")["state"] == "MONITORING_POSITIONS", what="monitoring")
        wait_for(lambda: c.hedge("d1")["state"] == "COMPLETED", timeout=30, what="dead man's switch flatten")
        g = c.history("guards", hedge_id="d1")
        row = g[g["guard"] == "dead_mans_switch"].iloc[0]
        assert row["action"] == "flatten" and json.loads(row["numbers"])["silent_s"] > 1.5
        assert c.hedge("d1")["kill_latched"] is True
        assert c.health()["ok"] is False
        assert sum(x.qty for x in paper_exchange(env, "d1").core.positions.values()) == 0
    finally:
        env.cleanup()


def test_a_bug_behind_the_api_answers_one_json_line_not_a_traceback(caplog):
    """An unexpected exception in a handler is a 500 with a one-line JSON error (type and message); the
    traceback goes to the runner's log only."""
    import asyncio as _asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from hedge_core.runner.control_api import make_app

    class Broken:
        journal = type("J", (), {"flush": staticmethod(lambda: None)})()

        def health(self):
            raise RuntimeError("simulated bug")

    async def go():
        async with TestClient(TestServer(make_app(Broken(), "tok"))) as cl:
            r = await cl.get("/health", headers={"Authorization": "Bearer tok"})
            return r.status, await r.json()

    status, body = _asyncio.run(go())
    assert status == 500 and body["type"] == "RuntimeError"
    assert "simulated bug" in body["error"] and "Traceback" not in body["error"]
    assert any("Traceback" in (r.exc_text or "") or r.exc_info for r in caplog.records)
