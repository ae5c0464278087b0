"""Alerts out of the process (hedge_core.runner.notify*): configuration from the environment with
clear refusals, URLs never shown, per-level routing, rate limits, a worker that never blocks the
caller, and a real runner process delivering a guard firing to a local webhook through Apprise."""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import MappingProxyType

import pytest
from typer.testing import CliRunner

from hedge_core.errors import InvalidInput
from hedge_core.runner.condition import AlertBus, AlertMessage
from hedge_core.runner.logs import JsonFormatter
from hedge_core.runner.notify import Notifier, format_alert, notifier_from_env
from hedge_core.runner.notify_config import load_config, redact_url
from hedge_core.runner.notify_limit import RateLimiter
from tests.support.webhook import TOKEN, Receiver

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def rx():
    r = Receiver()
    yield r
    r.close()


def dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there any more: connection refused
    return port


def wait_for(pred, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def msg(level: str = "warning", kind: str = "guard", text: str = "guard max_position fired: flatten",
        hedge_id: str = "h1") -> AlertMessage:
    return AlertMessage(level, kind, text, hedge_id=hedge_id, venue="demo",  # type: ignore[arg-type]
                        numbers=MappingProxyType({"qty": 0.5}))


# ---- configuration -------------------------------------------------------------------------------


def test_redaction_hides_every_token_position():
    cases = {
        "tgram://123456789:AAFxY0secretBot/4242": "tgram://***/***",  # bot token in the host position
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ops": "slack://***/***",
        "discord://4174216298/JHMHI8qBe7bk2Z": "discord://***/***",
        "mailtos://ops:hunter22@smtp.example.com?to=a@example.com": "mailtos://***@smtp.example.com?***",
        f"json://127.0.0.1:8080/hook/{TOKEN}": "json://127.0.0.1:8080/***",
        "no scheme at all": "***",
    }
    for url, want in cases.items():
        assert redact_url(url) == want


def test_no_url_means_no_notifier_and_defaults():
    assert load_config({}) is None and notifier_from_env({"HEDGE_DB": "x"}) is None
    cfg = load_config({"HEDGE_ALERT_URLS": "json://127.0.0.1:9/a"})
    assert cfg.min_level == "warning" and cfg.rate_s == 60.0 and cfg.burst == 20


@pytest.mark.parametrize("env, var, allowed", [
    ({"HEDGE_ALERT_URLS": f"nosuchservice://{TOKEN}/x"}, "HEDGE_ALERT_URLS", "Apprise URL"),
    ({"HEDGE_ALERT_URLS_WARNING": f"json://127.0.0.1:9/{TOKEN}, tgram://"}, "HEDGE_ALERT_URLS_WARNING", "Apprise URL"),
    ({"HEDGE_ALERT_URLS_WARN": f"json://127.0.0.1:9/{TOKEN}"}, "HEDGE_ALERT_URLS_WARN", "HEDGE_ALERT_URLS_WARNING"),
    ({"HEDGE_ALERT_URLS": "json://127.0.0.1:9/a", "HEDGE_ALERT_MIN_LEVEL": "loud"}, "HEDGE_ALERT_MIN_LEVEL",
     "info, warning, error, critical"),
    ({"HEDGE_ALERT_URLS_INFO": "json://127.0.0.1:9/a"}, "HEDGE_ALERT_URLS_INFO", "at or above HEDGE_ALERT_MIN_LEVEL"),
    ({"HEDGE_ALERT_URLS": "json://127.0.0.1:9/a", "HEDGE_ALERT_RATE_S": "soon"}, "HEDGE_ALERT_RATE_S", ">= 0"),
    ({"HEDGE_ALERT_URLS": "json://127.0.0.1:9/a", "HEDGE_ALERT_BURST": "0"}, "HEDGE_ALERT_BURST", ">= 1"),
])
def test_bad_configuration_names_the_variable_and_never_the_token(env, var, allowed):
    with pytest.raises(InvalidInput) as ei:
        load_config(env)
    assert ei.value.field == var and allowed in str(ei.value)
    assert TOKEN not in str(ei.value)


def test_second_entry_is_named_by_its_place():
    with pytest.raises(InvalidInput, match=r"entry 2: tgram://\*\*\*"):
        load_config({"HEDGE_ALERT_URLS_WARNING": f"json://127.0.0.1:9/{TOKEN}, tgram://{TOKEN}"})


def test_routing_thresholds_per_url():
    cfg = load_config({"HEDGE_ALERT_URLS": "json://127.0.0.1:9/all",
                       "HEDGE_ALERT_URLS_CRITICAL": "json://127.0.0.1:9/crit json://127.0.0.1:9/all",
                       "HEDGE_ALERT_URLS_ERROR": "json://127.0.0.1:9/err"})
    names = lambda lv: sorted(c.var for c in cfg.channels_for(lv))  # noqa: E731
    assert names("info") == []  # below HEDGE_ALERT_MIN_LEVEL (warning)
    assert names("warning") == ["HEDGE_ALERT_URLS"]  # the URL in two variables keeps the lower threshold, once
    assert names("error") == ["HEDGE_ALERT_URLS", "HEDGE_ALERT_URLS_ERROR"]
    assert names("critical") == ["HEDGE_ALERT_URLS", "HEDGE_ALERT_URLS_CRITICAL", "HEDGE_ALERT_URLS_ERROR"]


# ---- rate limits (pure) ----------------------------------------------------------------------------


def test_rate_limit_one_per_key_window_then_a_digest_with_the_count():
    lim = RateLimiter(per_key_s=60, burst=100)
    sends = [lim.admit(("guard", "h1"), f"fired {i}", now=i * 0.1)[0] for i in range(10)]
    assert sends == [True] + [False] * 9
    assert lim.admit(("guard", "h2"), "other hedge", now=1.0) == (True, 0)  # keys are independent
    assert lim.due(now=59.0) == [] and lim.next_due(now=59.0) == pytest.approx(1.0)
    (d,) = lim.due(now=60.0)
    assert d.key == ("guard", "h1") and d.count == 9 and d.last == "fired 9" and d.level == "warning"
    # the digest opened a new window: the next one is held, then reported with the next message
    assert lim.admit(("guard", "h1"), "again", now=61.0) == (False, 0)
    assert lim.admit(("guard", "h1"), "later", now=121.0) == (True, 1)


def test_a_rise_in_level_is_never_held_back():
    lim = RateLimiter(per_key_s=60, burst=100)
    assert lim.admit(("ltv_band", "h1"), "SAFE -> WARNING", now=0.0, level="warning") == (True, 0)
    assert lim.admit(("ltv_band", "h1"), "WARNING -> MONITOR", now=1.0, level="info") == (False, 0)
    assert lim.admit(("ltv_band", "h1"), "MONITOR -> EMERGENCY", now=2.0, level="critical") == (True, 1)
    assert lim.admit(("ltv_band", "h1"), "EMERGENCY -> CRITICAL", now=3.0, level="error") == (False, 0)


def test_burst_cap_holds_back_all_but_critical_and_reports_once():
    lim = RateLimiter(per_key_s=0, burst=3, burst_window_s=60)
    out = [lim.admit(("guard", f"h{i}"), f"m{i}", now=0.0)[0] for i in range(6)]
    assert out == [True, True, True, False, False, False]
    assert lim.admit(("state_error", "h9"), "critical one", now=1.0, level="critical")[0] is True
    assert lim.due(now=30.0) == []
    (d,) = lim.due(now=60.0)
    assert d.key == ("burst_cap", "") and d.count == 3 and d.last == "m5"


# ---- the notifier against a local webhook ------------------------------------------------------


def test_routing_and_rate_limit_end_to_end(rx):
    n = notifier_from_env({"HEDGE_ALERT_URLS": rx.url("all"), "HEDGE_ALERT_URLS_CRITICAL": rx.url("crit"),
                           "HEDGE_ALERT_RATE_S": "1"})
    try:
        bus = AlertBus()
        bus.subscribe(n)
        bus.emit(msg("info", kind="info_kind"))  # below the minimum level: nowhere
        t0 = time.monotonic()
        for _ in range(10):  # ten identical warnings within a second
            bus.emit(msg("warning"))
        bus.emit(msg("critical", kind="state_error", text="hedge in ERROR"))
        wait_for(lambda: len(rx.at("all")) >= 2 and rx.at("crit"), what="first deliveries")
        digest = wait_for(lambda: [p for p in rx.at("all") if "9 more" in p["message"]], what="digest")
        assert time.monotonic() - t0 >= 0.9  # the count comes when the window ends
        alls = rx.at("all")
        assert [p["title"] for p in alls].count("[WARNING] guard: hedge h1") == 1
        first = next(p for p in alls if p["title"] == "[WARNING] guard: hedge h1")
        assert first["type"] == "warning" and "guard max_position fired" in first["message"]
        assert "hedge h1 | venue demo" in first["message"] and "qty=0.5" in first["message"]
        assert "held back" in digest[0]["message"] and "[WARNING]" in digest[0]["title"]
        crit = rx.at("crit")
        assert [p["title"] for p in crit] == ["[CRITICAL] state_error: hedge h1"]  # no warning, no digest
        assert not any("info_kind" in p["title"] for _, p in rx.got)
        assert n.held == 9 and n.failed == 0
    finally:
        n.close()


def test_the_next_message_carries_the_held_count():
    title, body = format_alert(msg(), held_before=4, window_s=60)
    assert title == "[WARNING] guard: hedge h1" and "(+4 similar 'guard' alerts held back" in body


class Lines(logging.Handler):
    """Every formatted record of one logger (independent of how the suite configured logging)."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(JsonFormatter())
        self.lg = logging.getLogger(name)
        self.lg.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def test_dead_receiver_neither_blocks_nor_raises_and_is_counted(rx):
    logs = Lines("hedge_core.runner.notify")
    url = f"json://127.0.0.1:{dead_port()}/hook/{TOKEN}"
    n = notifier_from_env({"HEDGE_ALERT_URLS": f"{url} {rx.url('alive')}", "HEDGE_ALERT_RATE_S": "0",
                           "HEDGE_ALERT_BURST": "1000"})
    try:
        t0 = time.perf_counter()
        for i in range(50):
            n(msg(kind=f"k{i}"))  # the sink returns at once: delivery is the worker's business
        assert time.perf_counter() - t0 < 0.25
        wait_for(lambda: len(rx.at("alive")) == 50, what="the live channel gets everything")
        wait_for(lambda: n.failed == 50, what="failures counted")
        # the receiver may see a message a moment before the worker counts it as sent
        wait_for(lambda: n.sent == 50, what="deliveries counted")
    finally:
        n.close()
    logs.lg.removeHandler(logs)
    assert "delivery failed" in logs.text and "apprise: A Connection error" in logs.text
    assert TOKEN not in logs.text


def test_full_queue_drops_and_counts_instead_of_blocking():
    cfg = load_config({"HEDGE_ALERT_URLS": "json://127.0.0.1:9/x", "HEDGE_ALERT_RATE_S": "0",
                       "HEDGE_ALERT_BURST": "1000"})
    from dataclasses import replace

    n = Notifier(replace(cfg, queue_size=5))  # not started: nothing drains the queue
    for i in range(8):
        n(msg(kind=f"k{i}"))
    assert n.dropped == 3


def test_cli_alerts_test_reports_reached_and_unreached_redacted(rx, monkeypatch):
    from hedge_core.cli import app

    monkeypatch.setenv("HEDGE_ALERT_URLS", rx.url("cli"))
    monkeypatch.setenv("HEDGE_ALERT_URLS_CRITICAL", f"json://127.0.0.1:{dead_port()}/x/{TOKEN}")
    r = CliRunner().invoke(app, ["alerts", "test"])
    assert r.exit_code == 1, r.output
    assert "reached      HEDGE_ALERT_URLS[1] json://127.0.0.1:" in r.output
    assert "NOT reached  HEDGE_ALERT_URLS_CRITICAL[1]" in r.output and "1 of 2 channels reached" in r.output
    assert TOKEN not in r.output
    assert [p["title"] for p in rx.at("cli")] == ["[TEST] hedge alerts"]
    monkeypatch.delenv("HEDGE_ALERT_URLS_CRITICAL")
    assert CliRunner().invoke(app, ["alerts", "test"]).exit_code == 0
    monkeypatch.delenv("HEDGE_ALERT_URLS")
    r = CliRunner().invoke(app, ["alerts", "test"])
    assert r.exit_code == 2 and "HEDGE_ALERT_URLS" in r.output
    monkeypatch.setenv("HEDGE_ALERT_URLS", f"nosuch://{TOKEN}")
    r = CliRunner().invoke(app, ["alerts", "test"])
    assert r.exit_code == 2 and "HEDGE_ALERT_URLS=" in r.output and TOKEN not in r.output


# ---- a real runner process ---------------------------------------------------------------------------

EXIT_OFF = {"exit": {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                     "funding_unfavourable_intervals": None}}


def test_runner_process_sends_a_guard_firing_and_never_logs_the_urls(tmp_path, rx):
    from tests.support.runner_env import DEMO_START, make_env
    from tests.support.runner_env import wait_for as wait_runner

    env = make_env(tmp_path, export=EXIT_OFF)
    dead = f"json://127.0.0.1:{dead_port()}/dead/{TOKEN}"
    alerts = {"HEDGE_ALERT_URLS": f"{rx.url('all')},{dead}", "HEDGE_ALERT_URLS_CRITICAL": rx.url("crit")}
    try:
        p = env.start_runner(alerts)
        c = env.client(p)
        c.start("carry-test", mode="paper", start=DEMO_START, speed=36_000, hedge_id="n1")
        wait_runner(lambda: c.hedge("n1")["state"] == "MONITORING_POSITIONS", what="monitoring")
        c.flatten_all()  # the engine's kill switch fires: a guard alert on the bus
        got = wait_for(lambda: [m for m in rx.at("all") if m["title"] == "[WARNING] guard: hedge n1"],
                       what="the guard alert at the webhook")
        assert "guard kill_switch fired" in got[0]["message"] and "hedge n1 | venue" in got[0]["message"]
        # the dead channel slowed nothing: the flatten completes and the API answers at once
        wait_runner(lambda: c.hedge("n1")["state"] == "COMPLETED", what="flattened")
        t0 = time.monotonic()
        assert c.health()["ok"] is True and time.monotonic() - t0 < 1.0
        assert not any("guard" in m["title"] for m in rx.at("crit"))  # warning: not for the critical-only URL
        p.send_signal(__import__("signal").SIGTERM)
        assert p.wait(60) == 0
    finally:
        env.cleanup()
    logs = (env.home / "logs" / "runner.jsonl").read_text() + env.last_log(10**7)
    assert "alert channels configured" in logs and "alert delivered" in logs
    assert "alert delivery failed" in logs  # the dead receiver: logged, counted, redacted
    assert TOKEN not in logs


def test_runner_refuses_to_start_on_bad_alert_configuration(tmp_path):
    from tests.support.runner_env import make_env

    env = make_env(tmp_path, days=2)
    try:
        p = env.start_runner({"HEDGE_ALERT_URLS": f"json://127.0.0.1:9/{TOKEN} nosuchservice://{TOKEN}/x"},
                             wait=False)
        assert p.wait(60) == 2
        out = env.last_log(10**6)
        assert "alert configuration refused" in out and "HEDGE_ALERT_URLS" in out and "entry 2" in out
        assert TOKEN not in out and not (env.home / "runner.json").exists()
    finally:
        env.cleanup()


# ---- LTV band changes -----------------------------------------------------------------------------


class BandHedge:
    """What the watch uses of a HedgeTask: ``status``, ``error``, ``summary()`` and ``alert()``."""

    def __init__(self, hedge_id: str, band: str | None, ltv: float = 0.5) -> None:
        self.hedge_id, self.band, self.ltv, self.raised = hedge_id, band, ltv, []
        self.status, self.error = "running", ""

    def summary(self) -> dict:
        if self.band is None:
            return {"hedge_id": self.hedge_id}  # no loan: not watched
        return {"hedge_id": self.hedge_id, "loan": {"band": self.band, "ltv": self.ltv,
                                                   "bands": {"warning": 0.65, "critical": 0.75}}}

    def alert(self, level, kind, message, **numbers) -> None:
        self.raised.append((level, kind, message, numbers))


def test_ltv_band_changes_alert_at_the_level_of_the_new_band():
    from hedge_core.runner.hedge_watch import HedgeWatch

    w = HedgeWatch()
    safe, hot, plain = BandHedge("a", "SAFE", 0.3), BandHedge("b", "WARNING", 0.66), BandHedge("c", None)
    assert w.check([safe, hot, plain]) == [("b", "warning", "LTV band WARNING (LTV 66.0%)")]  # first look: only bad
    assert w.check([safe, hot, plain]) == []  # no change, no alert
    safe.band, safe.ltv = "EMERGENCY", 0.9
    hot.band, hot.ltv = "MONITOR", 0.55
    assert w.check([safe, hot]) == [("a", "critical", "LTV band SAFE -> EMERGENCY (LTV 90.0%)"),
                                    ("b", "info", "LTV band WARNING -> MONITOR (LTV 55.0%)")]
    level, kind, _, nums = safe.raised[-1]
    assert (level, kind) == ("critical", "ltv_band") and nums == {"ltv": 0.9, "warning_edge": 0.65,
                                                                  "critical_edge": 0.75}
    assert plain.raised == []


def test_a_failed_hedge_task_alerts_critical_once():
    from hedge_core.runner.hedge_watch import HedgeWatch

    w, h = HedgeWatch(), BandHedge("f1", None)
    assert w.check([h]) == []
    h.status, h.error = "failed", "KeyError: 'x'"
    ((hid, level, text),) = w.check([h])
    assert (hid, level) == ("f1", "critical") and "KeyError: 'x'" in text
    assert w.check([h]) == []  # once per failure, not every pass
    assert h.raised[0][:2] == ("critical", "task_failed")


def broken_ticker_adapter(spec):
    """Runner-side hook (HEDGE_RUNNER_ADAPTER_FACTORY): a paper venue whose ticker raises a bug-like
    error (not an ExchangeError, which the ticker feed retries): the hedge task dies."""
    import pandas as pd

    from hedge_core.exchange.factory import make_adapter
    from hedge_core.types import Ticker

    ad = make_adapter("paper", spec.venue, balances=spec.balances)  # funded like any paper hedge
    calls = [0]

    async def fetch_ticker(symbol):
        calls[0] += 1
        if calls[0] <= 2:  # the start's preflight reads both legs' tickers: a fresh price, it passes
            return Ticker(symbol=symbol, ts=pd.Timestamp.now(tz="UTC"), bid=40_000.0, ask=40_000.0, last=40_000.0)
        raise RuntimeError("simulated bug in the ticker path")

    ad.fetch_ticker = fetch_ticker
    return ad


def test_runner_process_alerts_a_dead_hedge_task(tmp_path, rx):
    from tests.support.runner_env import make_env
    from tests.support.runner_env import wait_for as wait_runner

    env = make_env(tmp_path, days=2)
    try:
        p = env.start_runner({"HEDGE_ALERT_URLS_CRITICAL": rx.url("crit"), "HEDGE_RUNNER_ADAPTER_FACTORY":
                              "tests.test_runner_notify:broken_ticker_adapter"})
        c = env.client(p)
        c.start("carry-test", mode="recommend", hedge_id="r1")
        wait_runner(lambda: c.hedge("r1")["status"] == "failed", what="the hedge task dies")
        got = wait_for(lambda: rx.at("crit"), what="the critical alert")
        assert got[0]["title"] == "[CRITICAL] task_failed: hedge r1" and "simulated bug" in got[0]["message"]
        assert any(a["kind"] == "task_failed" for a in c.hedge("r1")["alerts"])  # on the hedge's page too
    finally:
        env.cleanup()


def test_a_blocked_event_loop_still_gets_its_critical_alert_out(tmp_path, rx):
    """The watchdog thread reports a stuck loop on the bus; the notifier's own thread delivers it
    while the loop (here: time.sleep in the loop's thread, no loop work at all) stays blocked."""
    from hedge_core.runner.supervisor import Supervisor
    from hedge_core.store import Store

    n = notifier_from_env({"HEDGE_ALERT_URLS_CRITICAL": rx.url("crit")})
    store = Store(tmp_path / "h.duckdb")
    sup = Supervisor(store, tmp_path / "home", dms_timeout_s=0.3)
    sup.alert_bus.subscribe(n)
    try:
        sup.loop_tick = time.monotonic()  # the last tick of a loop that now blocks
        watchdog = threading.Thread(target=sup._watch, daemon=True)
        watchdog.start()
        got = wait_for(lambda: rx.at("crit"), what="the loop_blocked alert")
        assert got[0]["title"] == "[CRITICAL] loop_blocked: runner" and "event loop blocked" in got[0]["message"]
    finally:
        sup.stopping = True
        n.close()
        store.close()
