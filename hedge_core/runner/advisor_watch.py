"""Supervisor-side risk second opinion: every ``interval_s`` seconds, ask the configured analyzer
(:func:`hedge_core.advice.advisor_from_env`) about each running hedge, keep the latest opinion on
the task (``task.advice``, shown in its summary and on the Risk page) and alert (kind ``advice``)
when the level changes to ``watch`` (warning) or ``act`` (error), once per change.

Acting: only when the hedge's spec says ``advisor_may_act`` and only on a change to ``act``, through
the engine's own operator commands (``pause`` -> PAUSE, ``reduce``/``flatten`` -> FLATTEN, the
reason naming the advisor): the engine's state table and guards decide; no order is placed here.
The analyzer runs in a worker thread (``asyncio.to_thread``): an LLM call never blocks the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from hedge_core.advice import Analyzer, Opinion, RiskInput
from hedge_core.engine.events import Command
from hedge_core.runner.condition import Level
from hedge_core.runner.logs import log_event

__all__ = ["ADVICE_LEVEL", "AdvisorWatch"]

log = logging.getLogger("hedge_core.runner.advisor_watch")
ADVICE_LEVEL: dict[str, Level] = {"watch": "warning", "act": "error"}
COMMAND = {"pause": Command.PAUSE, "reduce": Command.FLATTEN, "flatten": Command.FLATTEN}


class _Hedge(Protocol):
    hedge_id: str
    status: str
    spec: Any
    advice: Any

    def summary(self) -> dict[str, Any]: ...

    def alert(self, level: Level, kind: str, message: str, **numbers: float) -> None: ...

    async def command(self, cmd: Command, reason: str = "") -> Any: ...


class AdvisorWatch:
    """Ask ``analyzer`` about each running hedge; alert level changes; act when the spec allows."""

    def __init__(self, analyzer: Analyzer, interval_s: float = 60.0) -> None:
        self.analyzer = analyzer
        self.interval_s = interval_s
        self._levels: dict[str, str] = {}

    async def check(self, hedges: Iterable[_Hedge]) -> list[tuple[str, Opinion]]:
        """One pass; ``[(hedge_id, opinion)]`` for the running hedges (others are skipped)."""
        out: list[tuple[str, Opinion]] = []
        for h in hedges:
            if h.status != "running":
                continue
            try:
                x = RiskInput.from_summary(h.summary())
                op = await asyncio.to_thread(self.analyzer.analyze, x)
            except Exception as exc:  # noqa: BLE001 - one hedge's failure must not stop the others
                log_event(log, "advice failed", level=logging.WARNING, hedge_id=h.hedge_id,
                          error=f"{type(exc).__name__}: {exc}")
                continue
            h.advice = op
            out.append((h.hedge_id, op))
            before = self._levels.get(h.hedge_id)
            self._levels[h.hedge_id] = op.level
            if op.level == before or op.level not in ADVICE_LEVEL:
                continue
            text = f"second opinion ({op.analyzer}): {op.level}, score {op.score}, action {op.action}" + \
                (f": {op.findings[0]}" if op.findings else "")
            h.alert(ADVICE_LEVEL[op.level], "advice", text[:500], score=float(op.score))
            if op.level == "act" and op.action in COMMAND and getattr(h.spec, "advisor_may_act", False):
                await self._act(h, op)
        return out

    async def _act(self, h: _Hedge, op: Opinion) -> None:
        reason = f"risk advisor {op.analyzer}: {op.action} (score {op.score})" + \
            (f": {op.findings[0]}" if op.findings else "")
        try:
            await h.command(COMMAND[op.action], reason[:300])
            log_event(log, "advisor acted", hedge_id=h.hedge_id, action=op.action, analyzer=op.analyzer)
        except Exception as exc:  # noqa: BLE001 - the engine refused or failed: say so, never crash the watch
            h.alert("error", "advice", f"advisor could not {op.action}: {type(exc).__name__}: {exc}"[:500])

    async def run(self, hedges: Callable[[], Iterable[_Hedge]]) -> None:
        """Check ``hedges()`` every ``interval_s`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check(list(hedges()))
            except Exception as exc:  # noqa: BLE001 - the watch must outlive one bad pass
                log_event(log, "advisor pass failed", level=logging.ERROR, error=f"{type(exc).__name__}: {exc}")
