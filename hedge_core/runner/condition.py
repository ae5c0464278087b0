"""DEGRADED marks and the runner's alert bus: how any part of the runner says "something is wrong".

A hedge (or a venue account) is **DEGRADED** while at least one named condition holds: a
reconciliation mismatch, a stale price, a rate-limit ban, an order whose outcome is unknown.
DEGRADED is not an engine state: the hedge keeps its state-machine state (e.g.
``MONITORING_POSITIONS``); the mark says that the runner does not fully trust what it sees and
which conditions block new orders. The panel, ``/health`` and ``hedge runner status`` show it.

Conditions are keyed so that the part that raised one clears it (``stale_price`` is cleared by
the next fresh price, ``reconcile`` by the next clean reconciliation) without touching the others.

Every new condition is also an :class:`AlertMessage` on the :class:`AlertBus`; sinks (log, and
the out-of-process notifier in :mod:`hedge_core.runner.notify`) subscribe to the bus.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import pandas as pd

__all__ = ["AlertBus", "AlertMessage", "Conditions", "Level"]

Level = Literal["info", "warning", "error", "critical"]
LEVELS: tuple[Level, ...] = ("info", "warning", "error", "critical")
log = logging.getLogger("hedge_core.runner.condition")


@dataclass(frozen=True)
class AlertMessage:
    """One thing an operator should hear about.

    ``kind`` is a stable machine name (``guard``, ``state_error``, ``degraded``, ``reconcile``,
    ``rate_limit_ban``, ``dead_mans_switch``, ``ltv_band``, ``unknown_order``, ``stale_price``,
    ``slippage``); ``hedge_id`` is empty for account- or runner-wide messages. ``ts`` is the
    hedge's clock where there is one (principle 10), else the wall clock.
    """

    level: Level
    kind: str
    message: str
    hedge_id: str = ""
    venue: str = ""
    ts: pd.Timestamp = field(default_factory=lambda: pd.Timestamp.now(tz="UTC"))
    numbers: MappingProxyType[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level={self.level!r}: one of {LEVELS}")


Sink = Callable[[AlertMessage], None]


class AlertBus:
    """Fan an :class:`AlertMessage` out to every subscribed sink; a failing sink never breaks the
    caller (it is logged) and never stops the other sinks."""

    def __init__(self) -> None:
        self._sinks: list[Sink] = []
        self.recent: list[AlertMessage] = []  # the last 200, newest last (panel, /health)

    def subscribe(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def emit(self, msg: AlertMessage) -> None:
        self.recent = (self.recent + [msg])[-200:]
        for sink in list(self._sinks):
            try:
                sink(msg)
            except Exception as exc:  # noqa: BLE001 - an alert channel must never stop trading logic
                log.error("alert sink %r failed: %s: %s", sink, type(exc).__name__, exc)


class Conditions:
    """Named DEGRADED conditions of one hedge or venue account.

    ``raise_(key, message)`` returns True when the condition is new (or its message changed), so
    callers alert once per episode rather than on every update.
    """

    def __init__(self) -> None:
        self._active: dict[str, str] = {}

    def raise_(self, key: str, message: str) -> bool:
        if not key:
            raise ValueError("key: a non-empty condition name, e.g. 'stale_price'")
        new = self._active.get(key) != message
        self._active[key] = message
        return new

    def clear(self, key: str) -> bool:
        """Drop one condition; True when it was active."""
        return self._active.pop(key, None) is not None

    def active(self, key: str) -> bool:
        return key in self._active

    @property
    def degraded(self) -> bool:
        return bool(self._active)

    def as_dict(self) -> dict[str, str]:
        return dict(self._active)
