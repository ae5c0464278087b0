"""OKX v5 lost answers and rate limits, hooked into :class:`OkxSim` (``sim.hook``); the OKX counterpart of
tests/support/bybit_faults.py for the live fault matrix (tests/test_live_fault_matrix.py).

Each behaviour follows the OKX v5 docs (https://www.okx.com/docs-v5/en/):

- Every answer is the envelope ``{"code": "...", "msg": "...", "data": [...]}`` ("Error Code",
  https://www.okx.com/docs-v5/en/#error-code).
- Rate limits ("Overview" -> "Rate Limits"): "When a request is rejected by our system due to rate limits,
  the system returns error code 50011 (Rate limit reached ...)", HTTP 429 in the error table; "Error code
  50061 is returned when the sub-account rate limit is exceeded" ("Sub-account rate limit": 1000 order
  requests per 2 s for all of the sub-account's instruments). Neither answer names a reset time (no
  ``Retry-After``, no reset header): the client waits on its own. :meth:`OkxFaults.escalate` answers the
  next matching order 50011 (the instrument's limit) and its retry 50061 (the account's limit, used up by
  another client of the same account).
- Lost answers (:meth:`OkxFaults.lose_answer`): the order is taken, its answer never arrives -- HTTP 503
  from the gateway (50001 "Service temporarily unavailable"), no answer before the client's timeout
  (answered after ``hang_s`` with 50004 "API endpoint request timeout (does not mean that the request was
  successful or failed, please check the request result)"), or a dropped connection. The order may still
  be processed later, but never after the request's deadline (:meth:`OkxSim.deadline_ms`: 30 s after
  OK-ACCESS-TIMESTAMP, or the ``expTime`` header, "Transaction Timeouts"): a late execution past it is
  discarded, as the venue would.

:attr:`OkxFaults.log` keeps (server s, 'METHOD /path') of every request that reached the venue.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from tests.support.okx_sim import OkxSim
from tests.support.okx_sim_book import OkxError

__all__ = ["OkxFaults"]

_RATE = {"50011": "Rate limit reached. Please refer to API documentation and throttle requests accordingly.",
         "50061": "Sub-account rate limit exceeded."}


class OkxFaults:
    def __init__(self, sim: OkxSim) -> None:
        self.sim = sim
        sim.hook = self._hook
        self.log: list[tuple[float, str]] = []
        self._queue: list[tuple[str, str | None, str]] = []  # escalate(): pattern, instId, code
        self._lost: list[tuple[str, str | None, str, float | None, float]] = []
        self._when: list[tuple[str, str | None, Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.late: list[tuple[str, float]] = []  # (clOrdId, server s) of late executions done
        self.discarded: list[str] = []  # clOrdIds whose late execution came after the request's deadline
        self.deadlines: list[tuple[str, int]] = []  # ('METHOD /path', deadline - OK-ACCESS-TIMESTAMP ms) signed

    def now(self) -> float:
        return self.sim.now_ms() / 1000.0

    def escalate(self, pattern: str, inst_id: str | None = None) -> None:
        """The next matching request (of ``inst_id``, if given) gets 50011, the one after it 50061 (module
        docstring); both HTTP 429, nothing is placed."""
        self._queue += [(pattern, inst_id, "50011"), (pattern, inst_id, "50061")]

    def lose_answer(self, pattern: str = r"POST /api/v5/trade/order$", inst_id: str | None = None, *,
                    mode: str = "503", execute_after_s: float | None = 0.0, hang_s: float = 3.0) -> None:
        """The next matching request loses its answer: ``503``, ``timeout`` (50004 after ``hang_s``, past the
        client's timeout) or ``drop`` (connection closed); the order is processed ``execute_after_s`` after
        it arrived (0 at once, None never) -- unless that is past the request's deadline."""
        if mode not in ("503", "timeout", "drop"):
            raise ValueError(f"mode={mode!r}: one of 503, timeout, drop")
        self._lost.append((pattern, inst_id, mode, execute_after_s, hang_s))

    def when(self, pattern: str, fn: Any, inst_id: str | None = None) -> None:
        """Run ``fn()`` (a venue event such as an ADL) when the next matching request arrives, before the
        venue processes it."""
        self._when.append((pattern, inst_id, fn))

    @staticmethod
    def _match(pattern: str, inst_id: str | None, key: str, params: Any) -> bool:
        got = params.get("instId") if isinstance(params, dict) else None
        return bool(re.search(pattern, key)) and (inst_id is None or got == inst_id)

    def unfired(self) -> list[str]:
        return ([f"lost {x[0]} {x[1]}" for x in self._lost] + [f"{q[2]} {q[0]} {q[1]}" for q in self._queue]
                + [f"event at {w[0]} {w[1]}" for w in self._when])

    async def _lose(self, request: web.Request, params: dict[str, Any], mode: str, after: float | None,
                    hang_s: float) -> web.Response:
        deadline_s = self.sim.deadline_ms(request) / 1000.0
        route = self.sim._routes()[(request.method, request.path)][0]
        cl = str(params.get("clOrdId", ""))

        def execute() -> None:
            if self.now() > deadline_s:  # "the request will not be processed" (Transaction Timeouts)
                self.discarded.append(cl)
                return
            try:
                route(params)
            except OkxError:
                return
            self.late.append((cl, self.now()))

        if after is not None:
            if after <= 0:
                execute()
            else:
                async def later() -> None:
                    await asyncio.sleep(after)
                    execute()

                task = asyncio.get_running_loop().create_task(later())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        if mode == "503":
            return web.json_response({"code": "50001", "msg": "Service temporarily unavailable. Try again later",
                                      "data": []}, status=503)
        if mode == "drop":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        await asyncio.sleep(hang_s)
        return web.json_response({"code": "50004", "msg": "API endpoint request timeout (does not mean that the "
                                  "request was successful or failed, please check the request result).", "data": []})

    async def _hook(self, request: web.Request, key: str, params: Any) -> web.Response | None:
        self.log.append((self.now(), key))
        ts = request.headers.get("OK-ACCESS-TIMESTAMP")
        if ts:
            self.deadlines.append((key, self.sim.deadline_ms(request) - self.sim.timestamp_ms(ts)))
        for w in list(self._when):
            if self._match(w[0], w[1], key, params):
                self._when.remove(w)
                w[2]()
        for q in self._queue:
            if self._match(q[0], q[1], key, params):
                self._queue.remove(q)
                return web.json_response({"code": q[2], "msg": _RATE[q[2]], "data": []}, status=429)
        for lost in self._lost:
            if self._match(lost[0], lost[1], key, params):
                self._lost.remove(lost)
                return await self._lose(request, params, *lost[2:])
        return None
