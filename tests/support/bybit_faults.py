"""Bybit v5 rate-limit behaviours, hooked into :class:`BybitSim` (``sim.hook``).

Following "Rate Limit Rules" (https://bybit-exchange.github.io/docs/v5/rate-limit):

- API rate limit (per UID, rolling window): ``"retCode": 10006, "retMsg": "Too many visits!"``;
  every answer carries ``X-Bapi-Limit-Status`` (requests left on the endpoint), ``X-Bapi-Limit``
  (the endpoint's limit) and ``X-Bapi-Limit-Reset-Timestamp`` ("the timestamp indicating when
  your request limit resets if you have exceeded your rate_limit. Otherwise, this is just the
  current timestamp"), milliseconds.
- IP limit: 600 requests per 5 s per IP; "If you encounter the error '403, access too frequent',
  ... terminate all HTTP sessions and wait for at least 10 minutes" — :meth:`BybitFaults.ip_ban`
  answers HTTP 403 to everything until it ends. Error code 10018 ("Exceeded the IP Rate Limit",
  v5 "Error Codes") is answered by :meth:`BybitFaults.ip_limit` with the reset header.

Lost answers (:meth:`BybitFaults.lose_answer`) — an order request the venue takes but whose answer
never arrives: HTTP 5xx from the gateway, no answer before the client's timeout, or a dropped
connection. Bybit's error table names the case: 10007 "Response timeout from backend server.
Delivery and request status unknown" (https://bybit-exchange.github.io/docs/v5/error). A signed
request is accepted while ``timestamp + recv_window`` has not passed ("Authentication": "the
request is valid only if server_time - recv_window <= timestamp < server_time + 1000",
https://bybit-exchange.github.io/docs/v5/guide#authentication), so the order may still execute up
to that window after it was sent, never later.

:attr:`BybitFaults.log` keeps (server s, 'METHOD /path') of every request that reached the venue.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from tests.support.bybit_sim import BybitSim

__all__ = ["BybitFaults"]


class BybitFaults:
    def __init__(self, sim: BybitSim) -> None:
        self.sim = sim
        sim.hook = self._hook
        self.log: list[tuple[float, str]] = []
        self._limit: tuple[str, int, float, int] | None = None  # pattern, count, reset s, retCode
        self.reset_at = 0.0  # server s: the endpoint limit's reset (10006 / 10018)
        self.ban_until = 0.0  # server s: HTTP 403 IP ban
        self._queue: list[tuple[str, str | None, float, int]] = []  # escalate(): pattern, category, reset s, code
        self._lost: list[tuple[str, str | None, str, float | None, float]] = []
        self._when: list[tuple[str, str | None, Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.late: list[tuple[str, float]] = []  # (orderLinkId, server s) of late executions done

    def now(self) -> float:
        return self.sim.now_ms() / 1000.0

    def too_many_visits(self, pattern: str = ".*", *, reset_s: float = 1.0, count: int = 1) -> None:
        """The next ``count`` matching requests: retCode 10006, limit resets ``reset_s`` later."""
        self._limit = (pattern, count, float(reset_s), 10006)

    def ip_limit(self, pattern: str = ".*", *, reset_s: float = 2.0, count: int = 1) -> None:
        """The next ``count`` matching requests: retCode 10018 (IP rate limit), reset ``reset_s`` later."""
        self._limit = (pattern, count, float(reset_s), 10018)

    def escalate(self, pattern: str, category: str | None = None, *, reset_s: float = 1.0) -> None:
        """The next matching request (of ``category``, if given) gets 10006 "Too many visits!" (the
        UID's endpoint limit), the next one after it 10018 "Exceeded the IP Rate Limit": a retry of the
        same order meets the IP limit another client on the same IP used up."""
        self._queue += [(pattern, category, reset_s, 10006), (pattern, category, reset_s, 10018)]

    def lose_answer(self, pattern: str = r"POST /v5/order/create$", category: str | None = None, *,
                    mode: str = "503", execute_after_s: float | None = 0.0, hang_s: float = 3.0) -> None:
        """The next matching request loses its answer: ``503`` (gateway), ``timeout`` (answered only
        after ``hang_s``, past the client's timeout) or ``drop`` (connection closed); the order
        executes ``execute_after_s`` after it was sent (0 at once, None never), at most its recv
        window later (module docstring)."""
        if mode not in ("503", "timeout", "drop"):
            raise ValueError(f"mode={mode!r}: one of 503, timeout, drop")
        self._lost.append((pattern, category, mode, execute_after_s, hang_s))

    def when(self, pattern: str, fn: Any, category: str | None = None) -> None:
        """Run ``fn()`` (a venue event such as an ADL) when the next matching request arrives, before
        the venue processes it."""
        self._when.append((pattern, category, fn))

    @staticmethod
    def _match(pattern: str, category: str | None, key: str, params: dict[str, Any]) -> bool:
        return bool(re.search(pattern, key)) and (category is None or params.get("category") == category)

    async def settle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _lose(self, request: web.Request, key: str, params: dict[str, Any], mode: str,
                    after: float | None, hang_s: float) -> web.Response:
        from tests.support.bybit_sim import BybitError

        recv_s = float(request.headers.get("X-BAPI-RECV-WINDOW", "5000")) / 1000.0

        def execute() -> None:
            try:
                self.sim._routes()[("POST", request.path)][0](params)
            except BybitError:
                return
            self.late.append((str(params.get("orderLinkId", "")), self.now()))

        if after is not None:
            if after > recv_s:
                raise ValueError(f"execute_after_s={after} > recv window {recv_s} s")
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
            return web.Response(status=503, text="Service Unavailable")
        if mode == "drop":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        await asyncio.sleep(hang_s)
        return web.json_response({"retCode": 10007, "retMsg": "Response timeout from backend server. Delivery "
                                  "and request status unknown.", "result": {}, "retExtInfo": {},
                                  "time": int(self.now() * 1000)})

    def ip_ban(self, seconds: float = 600.0) -> None:
        """HTTP 403 "access too frequent" to every request for ``seconds``."""
        self.ban_until = self.now() + seconds

    async def _hook(self, request: web.Request, key: str, params: dict[str, Any]) -> web.Response | None:
        now = self.now()
        self.log.append((now, key))
        if now < self.ban_until:
            return web.Response(status=403, text="access too frequent")
        for w in list(self._when):
            if self._match(w[0], w[1], key, params):
                self._when.remove(w)
                w[2]()
        for q in self._queue:
            if self._match(q[0], q[1], key, params):
                self._queue.remove(q)
                self._limit = (q[0], 1, q[2], q[3])
                break
        for lost in self._lost:
            if self._match(lost[0], lost[1], key, params):
                self._lost.remove(lost)
                return await self._lose(request, key, params, *lost[2:])
        if self._limit is not None and re.search(self._limit[0], key):
            pattern, count, reset_s, code = self._limit
            self._limit = (pattern, count - 1, reset_s, code) if count > 1 else None
            self.reset_at = now + reset_s
            msg = "Too many visits!" if code == 10006 else "Exceeded the IP Rate Limit"
            return web.json_response(
                {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": int(now * 1000)},
                headers={"X-Bapi-Limit": "10", "X-Bapi-Limit-Status": "0",
                         "X-Bapi-Limit-Reset-Timestamp": str(int(self.reset_at * 1000))})
        return None
