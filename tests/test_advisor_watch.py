"""The runner's advisor watch: opinions kept on the task, alerts once per level change, acting only
when the hedge's spec allows and only through the engine's commands; end to end with a stub LLM."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from hedge_core.advice import Opinion, RiskInput, RuleAnalyzer
from hedge_core.engine.events import Command
from hedge_core.runner.advisor_watch import AdvisorWatch


class FakeHedge:
    """What the watch uses of a HedgeTask."""

    def __init__(self, hedge_id: str, summary: dict[str, Any], may_act: bool = False) -> None:
        self.hedge_id, self._s, self.status, self.advice = hedge_id, summary, "running", None
        self.spec = SimpleNamespace(advisor_may_act=may_act)
        self.raised: list[tuple[str, str, str]] = []
        self.commands: list[tuple[Command, str]] = []

    def summary(self) -> dict[str, Any]:
        return {"hedge_id": self.hedge_id, **self._s}

    def alert(self, level: str, kind: str, message: str, **numbers: float) -> None:
        self.raised.append((level, kind, message))

    async def command(self, cmd: Command, reason: str = "") -> None:
        self.commands.append((cmd, reason))


NEAR = {"liq_distance": 0.10, "liq_distance_reduce": 0.15, "liq_distance_close": 0.08}  # reduce: act
WATCH = {"drift": 0.12, "leverage": 12.0}  # 30 points: watch


def test_alerts_once_per_change_and_acts_only_when_allowed() -> None:
    w = AdvisorWatch(RuleAnalyzer())
    quiet, advised, allowed = FakeHedge("q", {}), FakeHedge("a", NEAR), FakeHedge("b", NEAR, may_act=True)
    stopped = FakeHedge("s", NEAR)
    stopped.status = "stopped"
    out = asyncio.run(w.check([quiet, advised, allowed, stopped]))
    assert [h for h, _ in out] == ["q", "a", "b"] and stopped.advice is None
    assert isinstance(quiet.advice, Opinion) and quiet.advice.level == "ok" and quiet.raised == []
    assert advised.advice.action == "reduce" and advised.raised[0][:2] == ("error", "advice")
    assert advised.commands == []  # advises and alerts only
    assert allowed.commands[0][0] is Command.FLATTEN and "risk advisor rules: reduce" in allowed.commands[0][1]
    asyncio.run(w.check([quiet, advised, allowed]))  # same level again: no new alert, no new command
    assert len(advised.raised) == 1 and len(allowed.commands) == 1
    advised._s = WATCH
    asyncio.run(w.check([advised]))
    assert advised.raised[-1][0] == "warning" and "watch, score 30" in advised.raised[-1][2]


def test_pause_action_sends_pause_and_a_failing_analyzer_skips_the_hedge() -> None:
    class Pauser:
        name = "p"

        def analyze(self, x: RiskInput) -> Opinion:
            if x.hedge_id == "bad":
                raise RuntimeError("boom")
            return Opinion(score=70, level="act", findings=["x"], action="pause", analyzer="p")

    h, bad = FakeHedge("h", {}, may_act=True), FakeHedge("bad", {}, may_act=True)
    out = asyncio.run(AdvisorWatch(Pauser()).check([bad, h]))
    assert [i for i, _ in out] == ["h"] and bad.advice is None and bad.commands == []
    assert h.commands[0][0] is Command.PAUSE


@pytest.fixture
def llm() -> Iterator[str]:
    answer = json.dumps({"score": 80, "level": "act", "findings": ["stub says pause"], "action": "pause"})

    class H(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def test_runner_pauses_only_the_hedge_that_allows_it(tmp_path, llm) -> None:
    from tests.support.runner_env import make_env, wait_for

    env = make_env(tmp_path, days=2)
    try:
        p = env.start_runner({"HEDGE_ADVISOR": "llm", "HEDGE_ADVISOR_URL": llm, "HEDGE_ADVISOR_MODEL": "stub",
                              "HEDGE_ADVISOR_KEY": "sk-e2e-secret", "HEDGE_ADVISOR_INTERVAL_S": "1"})
        c = env.client(p)
        c.start("carry-test", hedge_id="may", advisor_may_act=True, speed=600.0)
        c.start("carry-test", hedge_id="advise", speed=600.0)
        wait_for(lambda: "PAUSED" in str(c.hedge("may").get("state")), what="the advisor pauses 'may'")
        adv = wait_for(lambda: c.hedge("advise").get("advice"), what="an opinion on 'advise'")
        assert adv["analyzer"] == "llm:stub" and adv["action"] == "pause"
        assert "PAUSED" not in str(c.hedge("advise").get("state"))
        assert any(a["kind"] == "advice" for a in c.hedge("advise")["alerts"])
        assert "sk-e2e-secret" not in env.last_log(10**6)
    finally:
        env.cleanup()


def test_runner_refuses_to_start_on_bad_advisor_configuration(tmp_path) -> None:
    from tests.support.runner_env import make_env

    env = make_env(tmp_path, days=2)
    try:
        p = env.start_runner({"HEDGE_ADVISOR": "llm", "HEDGE_ADVISOR_URL": "not a url"}, wait=False)
        assert p.wait(60) == 2
        out = env.last_log(10**6)
        assert "advisor configuration refused" in out and "HEDGE_ADVISOR_URL" in out
    finally:
        env.cleanup()
