"""Alerts out of the runner process: an :class:`~hedge_core.runner.condition.AlertBus` sink that
sends through `Apprise <https://github.com/caronc/apprise>`_ (Telegram, Slack, Discord, e-mail,
JSON webhooks and ~100 more), configured from the environment only
(:mod:`hedge_core.runner.notify_config`, ``docs/alerts.md``).

The sink never blocks and never raises: it filters by level, applies the rate limits
(:mod:`hedge_core.runner.notify_limit`) and puts the message on a bounded queue. A worker
**thread** delivers (Apprise is synchronous). A thread rather than ``async_notify`` on the event
loop: a slow or dead channel then costs the trading loop nothing, and an alert still goes out
while the loop itself is stuck (the case the supervisor's watchdog reports). A full queue drops
the message and counts it; a failed delivery is logged with the channel redacted and counted.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hedge_core.runner.condition import AlertBus, AlertMessage, Level
from hedge_core.runner.logs import log_event
from hedge_core.runner.notify_config import AlertConfig, Channel, load_config, scrub
from hedge_core.runner.notify_limit import CAP_KEY, Digest, RateLimiter

__all__ = ["Notifier", "format_alert", "notifier_from_env"]

log = logging.getLogger("hedge_core.runner.notify")
_TYPE = {"info": "info", "warning": "warning", "error": "failure", "critical": "failure"}  # apprise.NotifyType


@dataclass(frozen=True)
class _Outgoing:
    level: Level
    title: str
    body: str
    kind: str
    hedge_id: str


def format_alert(msg: AlertMessage, held_before: int = 0, window_s: float = 0.0) -> tuple[str, str]:
    """``(title, body)`` of one alert: level, kind and hedge in the title; the message, where and
    when (the hedge's clock), its numbers, and how many similar ones were held back."""
    who = f"hedge {msg.hedge_id}" if msg.hedge_id else (f"venue {msg.venue}" if msg.venue else "runner")
    title = f"[{msg.level.upper()}] {msg.kind}: {who}"
    lines = [msg.message]
    where = [f"hedge {msg.hedge_id}" if msg.hedge_id else "", f"venue {msg.venue}" if msg.venue else "",
             f"at {msg.ts}"]
    lines.append(" | ".join(w for w in where if w))
    if msg.numbers:
        lines.append(", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                               for k, v in msg.numbers.items()))
    if held_before:
        lines.append(f"(+{held_before} similar '{msg.kind}' alerts held back by the rate limit of one per "
                     f"{window_s:g} s)")
    return title, "\n".join(lines)


def _format_digest(d: Digest) -> tuple[str, str]:
    if d.key == CAP_KEY:
        return (f"[{d.level.upper()}] alerts held back: burst cap",
                f"{d.count} alerts were not sent: more than the burst cap (HEDGE_ALERT_BURST) per {d.window_s:g} s. "
                f"Last one: {d.last}")
    kind, hedge_id = d.key
    who = f"hedge {hedge_id}" if hedge_id else "runner"
    return (f"[{d.level.upper()}] {kind}: {who}: {d.count} more",
            f"{d.count} more '{kind}' alerts for {who} in the last {d.window_s:g} s were held back by the rate "
            f"limit. Last one: {d.last}")


class Notifier:
    """Send alerts to the configured Apprise channels from a worker thread.

    Use it as a bus sink (``bus.subscribe(notifier)``); :meth:`start` the worker first and
    :meth:`close` it at shutdown. Counters: ``sent``, ``failed`` (deliveries, per channel),
    ``held`` (rate-limited), ``dropped`` (queue full).
    """

    def __init__(self, config: AlertConfig, *, clock: Any = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._limiter = RateLimiter(config.rate_s, config.burst, config.burst_window_s)
        self._lock = threading.Lock()
        self._q: queue.Queue[_Outgoing | None] = queue.Queue(maxsize=config.queue_size)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.sent = self.failed = self.held = self.dropped = 0
        self._full_logged = False

    def __repr__(self) -> str:  # the bus logs a failing sink by repr: never the URLs
        return f"Notifier({[c.name for c in self.config.channels]})"

    # ---- the sink (any thread; never blocks, never raises) --------------------------------------
    def __call__(self, msg: AlertMessage) -> None:
        try:
            if not self.config.channels_for(msg.level):
                return
            with self._lock:
                send, held_before = self._limiter.admit((msg.kind, msg.hedge_id), msg.message, self._clock(),
                                                        msg.level)
                if not send:
                    self.held += 1
                    return
            title, body = format_alert(msg, held_before, self.config.rate_s)
            self._put(_Outgoing(msg.level, title, body, msg.kind, msg.hedge_id))
        except Exception as exc:  # noqa: BLE001 - an alert channel must never stop trading logic
            log_event(log, "alert not queued", level=logging.ERROR, error=scrub(f"{type(exc).__name__}: {exc}"))

    def _put(self, item: _Outgoing) -> None:
        try:
            self._q.put_nowait(item)
            self._full_logged = False
        except queue.Full:
            self.dropped += 1
            if not self._full_logged:  # once per episode, not once per message
                self._full_logged = True
                log_event(log, "alert queue full: alerts dropped until the channels catch up", level=logging.ERROR,
                          queue_size=self.config.queue_size)

    # ---- the worker ------------------------------------------------------------------------------
    def start(self) -> Notifier:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="alert-notifier", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued for up to ``timeout`` seconds, then stop the worker."""
        if self._thread is None:
            return
        self._stop.set()
        try:
            self._q.put(None, timeout=0.1)
        except queue.Full:
            pass
        self._thread.join(timeout)
        self._thread = None

    def _work(self) -> None:
        while True:
            try:
                if self._step():
                    return
            except Exception as exc:  # noqa: BLE001 - the worker outlives any one bad message
                log_event(log, "alert worker error", level=logging.ERROR, error=scrub(f"{type(exc).__name__}: {exc}"))
                time.sleep(0.1)

    def _step(self) -> bool:
        """One round: deliver one queued message, then the due digests; True when closed and empty."""
        with self._lock:
            wait = self._limiter.next_due(self._clock())
        try:
            item = self._q.get(timeout=min(wait, 1.0) if wait is not None else 1.0)
        except queue.Empty:
            item = None
        if item is not None:
            self.deliver(item.level, item.title, item.body, kind=item.kind, hedge_id=item.hedge_id)
        with self._lock:
            digests = self._limiter.due(self._clock())
        for d in digests:
            title, body = _format_digest(d)
            self.deliver(d.level, title, body, kind=d.key[0], hedge_id=d.key[1])
        return self._stop.is_set() and self._q.empty()

    def deliver(self, level: Level, title: str, body: str, *, kind: str = "", hedge_id: str = "",
                channels: list[Channel] | None = None) -> list[tuple[str, bool]]:
        """Send one message now (blocking, in the caller's thread) to ``channels`` (default: those
        hearing ``level``); ``[(redacted channel, delivered)]``. Never raises."""
        if channels is None:
            channels = self.config.channels_for(level)
        out = []
        for ch in channels:
            try:
                ok = bool(ch.target.notify(body=body, title=title, notify_type=_TYPE[level]))
                err = "" if ok else "the service did not accept it (see the apprise line before)"
            except Exception as exc:  # noqa: BLE001 - a failed send is counted, never raised
                ok, err = False, scrub(f"{type(exc).__name__}: {exc}")
            out.append((ch.name, ok))
            if ok:
                self.sent += 1
                log_event(log, "alert delivered", channel=ch.name, kind=kind, hedge_id=hedge_id, alert_level=level)
            else:
                self.failed += 1
                log_event(log, "alert delivery failed", level=logging.WARNING, channel=ch.name, kind=kind,
                          hedge_id=hedge_id, alert_level=level, error=err, failed_total=self.failed)
        return out


def notifier_from_env(environ: Mapping[str, str] | None = None) -> Notifier | None:
    """A started :class:`Notifier` for ``environ`` (default ``os.environ``), or None when no
    ``HEDGE_ALERT_URLS*`` is set. Raises :class:`~hedge_core.errors.InvalidInput` on a bad
    configuration (the URL shown redacted)."""
    cfg = load_config(os.environ if environ is None else environ)
    if cfg is None:
        return None
    n = Notifier(cfg).start()
    log_event(log, "alert channels configured", channels=[f"{c.name} ({c.var}, {c.threshold}+)" for c in cfg.channels],
              min_level=cfg.min_level, rate_s=cfg.rate_s, burst=cfg.burst)
    return n


def attach(notifier: Notifier | None, bus: AlertBus) -> None:
    """Subscribe ``notifier`` to the runner's alert bus (nothing when alerts are not configured)."""
    if notifier is not None:
        bus.subscribe(notifier)
