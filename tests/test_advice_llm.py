"""LLM analyzer against a local stub OpenAI-compatible endpoint (http.server on 127.0.0.1)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from hedge_core.advice import LLMAnalyzer, RiskInput, RuleAnalyzer

KEY = "sk-test-never-shown-123"
X = RiskInput(hedge_id="h1", liq_distance=0.12, liq_distance_reduce=0.15, liq_distance_close=0.08)


class Stub:
    """What the stub answers next: (status, body string, delay seconds); and the requests it saw."""

    def __init__(self) -> None:
        self.answer: tuple[int, str, float] = (200, "{}", 0.0)
        self.seen: list[tuple[dict[str, str], dict[str, Any]]] = []


def chat(content: str) -> str:
    return json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})


@pytest.fixture
def stub() -> Iterator[tuple[Stub, str]]:
    st = Stub()

    class H(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length", "0"))
            st.seen.append((dict(self.headers), json.loads(self.rfile.read(n))))
            status, body, delay = st.answer
            time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())
            except OSError:
                pass  # the client gave up (timeout case)

        def log_message(self, *a: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield st, f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def test_valid_answer_is_used_and_request_is_openai_shaped(stub: tuple[Stub, str]) -> None:
    st, url = stub
    st.answer = (200, chat(json.dumps({"score": 42, "level": "watch", "findings": ["perp close to reduce"],
                                       "action": "none"})), 0.0)
    o = LLMAnalyzer(url, "tiny", key=KEY, timeout_s=5).analyze(X)
    assert (o.score, o.level, o.action, o.findings, o.analyzer) == (42, "watch", "none", ["perp close to reduce"],
                                                                     "llm:tiny")
    headers, body = st.seen[0]
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert body["model"] == "tiny" and body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["role"] == "system" and '"score"' in body["messages"][0]["content"]
    assert json.loads(body["messages"][1]["content"])["liq_distance"] == 0.12


@pytest.mark.parametrize(("answer", "reason"), [
    ((200, chat("not json at all"), 0.0), "schema"),
    ((200, chat(json.dumps({"score": 150, "level": "act", "findings": [], "action": "flatten"})), 0.0), "score"),
    ((200, chat(json.dumps({"score": 50, "level": "act", "findings": [], "action": "sell"})), 0.0), "action"),
    ((200, chat(json.dumps({"score": 5, "level": "ok", "findings": [], "action": "none", "why": 1})), 0.0), "why"),
    ((200, "<html>", 0.0), "not the expected JSON"),
    ((500, "{}", 0.0), "HTTP 500"),
    ((200, chat("{}"), 2.0), "timed out after 0.5 s"),
])
def test_failures_fall_back_to_rules_with_reason(stub: tuple[Stub, str], answer: tuple[int, str, float],
                                                 reason: str, caplog: pytest.LogCaptureFixture) -> None:
    st, url = stub
    st.answer = answer
    caplog.set_level(logging.DEBUG)
    o = LLMAnalyzer(url, "tiny", key=KEY, timeout_s=0.5).analyze(X)
    rules = RuleAnalyzer().analyze(X)
    assert (o.score, o.level, o.action) == (rules.score, rules.level, rules.action)
    assert o.findings[:-1] == rules.findings
    assert o.findings[-1].startswith("LLM answer not used (tiny)") and reason in o.findings[-1]
    assert o.analyzer == "rules (fallback from llm:tiny)"
    assert KEY not in caplog.text and KEY not in json.dumps(o.model_dump())
    assert any("LLM advice not used" in r.getMessage() for r in caplog.records)


def test_connection_refused_falls_back() -> None:
    o = LLMAnalyzer("http://127.0.0.1:9/v1", "tiny", timeout_s=1).analyze(X)
    assert o.analyzer.startswith("rules") and "connection failed" in o.findings[-1]
