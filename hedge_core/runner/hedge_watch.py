"""Supervisor-side watch of every hedge for what the hedge itself does not alert: a hedge task
that died (kind ``task_failed``, critical: nothing manages that hedge any more) and LTV band
changes of loan-backed hedges (kind ``ltv_band``). Both go through the hedge's own ``alert()``
(its page, the log, the runner's alert bus and so every alert channel).

The band is the one the hedge's summary shows (``summary()["loan"]["band"]``, computed by
:func:`hedge_core.ltv.ltv_band` from the hedge's own loan and prices), read every
``interval_s`` seconds by the supervisor-side :class:`LtvBandWatch`, so the alert and the panel
can never disagree. A band change alerts at the level of the band it moves into; the first reading
alerts only when the hedge is already at WARNING or worse (e.g. after a restart).

Polling means a band visited for less than ``interval_s`` (a fast replay) may pass unseen; the
strategy's own band actions do not depend on this watch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from hedge_core.runner.condition import Level
from hedge_core.runner.logs import log_event

__all__ = ["BAND_LEVEL", "HedgeWatch"]

log = logging.getLogger("hedge_core.runner.hedge_watch")
BAND_LEVEL: dict[str, Level] = {"SAFE": "info", "MONITOR": "info", "WARNING": "warning", "CRITICAL": "error",
                                "EMERGENCY": "critical"}


class _Hedge(Protocol):
    hedge_id: str
    status: str
    error: str

    def summary(self) -> dict[str, Any]: ...

    def alert(self, level: Level, kind: str, message: str, **numbers: float) -> None: ...


class HedgeWatch:
    """Compare each hedge's task status and LTV band with the last ones seen; alert the changes."""

    def __init__(self, interval_s: float = 2.0) -> None:
        self.interval_s = interval_s
        self._bands: dict[str, str] = {}
        self._failed: set[str] = set()

    def check(self, hedges: Iterable[_Hedge]) -> list[tuple[str, Level, str]]:
        """One pass over ``hedges``; ``[(hedge_id, level, message)]`` of the alerts raised."""
        out: list[tuple[str, Level, str]] = []
        for h in hedges:
            if h.status == "failed" and h.hedge_id not in self._failed:
                self._failed.add(h.hedge_id)
                text = f"hedge task failed: nothing manages this hedge until an operator acts ({h.error})"
                h.alert("critical", "task_failed", text)
                out.append((h.hedge_id, "critical", text))
            elif h.status != "failed":
                self._failed.discard(h.hedge_id)
            try:
                s = h.summary()
            except Exception as exc:  # noqa: BLE001 - a broken summary must not stop the watch of the others
                log_event(log, "summary failed: LTV band not checked", level=logging.WARNING, hedge_id=h.hedge_id,
                          error=f"{type(exc).__name__}: {exc}")
                continue
            loan = s.get("loan") or {}
            band = loan.get("band")
            if band not in BAND_LEVEL:
                continue
            before = self._bands.get(h.hedge_id)
            self._bands[h.hedge_id] = band
            if band == before or (before is None and BAND_LEVEL[band] == "info"):
                continue
            ltv = loan.get("ltv")
            edges = loan.get("bands") or {}
            text = (f"LTV band {before} -> {band}" if before else f"LTV band {band}") + \
                (f" (LTV {ltv:.1%})" if isinstance(ltv, float) else "")
            nums = {"ltv": float(ltv)} if isinstance(ltv, float) else {}
            nums.update({f"{k}_edge": float(v) for k, v in edges.items() if isinstance(v, (int, float))})
            h.alert(BAND_LEVEL[band], "ltv_band", text, **nums)
            out.append((h.hedge_id, BAND_LEVEL[band], text))
        return out

    async def run(self, hedges: Callable[[], Iterable[_Hedge]]) -> None:
        """Check ``hedges()`` (a callable returning the current hedges) every ``interval_s`` seconds."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.check(list(hedges()))
            except Exception as exc:  # noqa: BLE001 - the watch must outlive one bad pass
                log_event(log, "hedge watch pass failed", level=logging.ERROR, error=f"{type(exc).__name__}: {exc}")
