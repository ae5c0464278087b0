"""Venue behaviours of Binance that cost money when ignored, hooked into :class:`BinanceSim`.

Each behaviour follows the venue's documentation (cited where it is implemented):

- **Rate limits** — spot "LIMITS" (https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits)
  and USD-M "General Info" → "LIMITS": a request breaking a limit gets HTTP 429 with a
  ``Retry-After`` header, "the number of seconds required to wait, in the case of a 429, to prevent
  a ban"; "repeatedly violating rate limits and/or failing to back off after receiving 429s will
  result in an automated IP ban (HTTP status 418)", whose ``Retry-After`` is the time "until the ban
  is over" (bans scale from 2 minutes to 3 days). "The limits on the API are based on the IPs, not
  the API keys": the back-off and the ban cover every path and both hosts. Every answer carries
  ``X-MBX-USED-WEIGHT-1M`` (and order answers ``X-MBX-ORDER-COUNT-10S`` / ``-1D``).
- **Lost answers with late execution** — "General API Information": "HTTP 5XX return codes are used
  for internal errors ... It is important to NOT treat this as a failure operation; the execution
  status is UNKNOWN and could have been a success"; error -1007 "Timeout waiting for response from
  backend server. Send status unknown; execution status unknown." ("Error codes" → 10xx). "Timing
  security": the matching engine takes a signed request while ``timestamp + recvWindow`` has not
  passed, so :meth:`BinanceFaults.lose_answer` may execute the order up to that request's
  ``recvWindow`` after it was sent (never later: the venue would reject it then). Modes: ``503``,
  ``-1007``, ``timeout`` (no answer before the client gives up) and ``drop`` (connection closed).
- Already in :class:`BinanceSim` (order answers, kept there): spot accepts a reused
  ``newClientOrderId`` once the earlier order is final (spot "New order": "A unique id among open
  orders"), USD-M rejects any reuse with -4116 "ClientOrderId is duplicated".

Test controls: :meth:`rate_limit`, :meth:`lose_answer`; observations: :attr:`log` (server time and
``'METHOD /path'`` of EVERY request that reached the venue, refused or not), :meth:`orders_for`
(the orders the venue holds for one intent = one client-id prefix ``h<leg><seq>``).
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support.binance_sim import BinanceSim, SimError

__all__ = ["BinanceFaults"]


@dataclass
class _Lost:
    pattern: str
    mode: str  # 503 | -1007 | timeout | drop
    execute_after_s: float | None  # None: the order never executes
    hang_s: float


class BinanceFaults:
    """Attach to a simulator: ``faults = BinanceFaults(sim)`` (sets ``sim.hook``)."""

    def __init__(self, sim: BinanceSim) -> None:
        self.sim = sim
        sim.hook = self._hook
        self.log: list[tuple[float, str]] = []  # (server epoch s, 'METHOD /path') of every request
        self._limit: tuple[str, int, float, float] | None = None  # pattern, count, retry_after, ban
        self.backoff_until = 0.0  # server s: a request before this is a violation -> 418
        self.ban_until = 0.0
        self.ban_s = 0.0
        self.lost: list[_Lost] = []
        self.late: list[tuple[str, float]] = []  # (client id, server s) of late executions done
        self.answers_418 = 0
        self.answers_429 = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._escalate: list[tuple[str, float, float]] = []  # pattern, retry_after s, ban s
        self._ban_next: float | None = None  # ban seconds for the next request after an escalating 429
        self._when: list[tuple[str, Any]] = []  # pattern, fn() run when the next matching request arrives

    # ---- controls ---------------------------------------------------------------------------
    def rate_limit(self, pattern: str = ".*", *, retry_after_s: int = 1, ban_s: int = 3, count: int = 1) -> None:
        """The next ``count`` requests matching ``pattern`` break a limit: 429 with
        ``Retry-After: retry_after_s``. Any request (any path: limits are per IP) before that back-off
        is over gets the IP banned for ``ban_s`` seconds (418, ``Retry-After`` = seconds to the end)."""
        self._limit = (pattern, count, float(retry_after_s), float(ban_s))

    def lose_answer(self, pattern: str = r"POST /(api/v3|fapi/v1)/order$", *, mode: str = "503",
                    execute_after_s: float | None = 0.0, hang_s: float = 5.0) -> None:
        """The next request matching ``pattern`` loses its answer (``mode``); the order executes
        ``execute_after_s`` seconds after it was sent (0: at once, before the error answer; None:
        never), at most the request's recvWindow later."""
        if mode not in ("503", "-1007", "timeout", "drop"):
            raise ValueError(f"mode={mode!r}: one of 503, -1007, timeout, drop")
        self.lost.append(_Lost(pattern, mode, execute_after_s, hang_s))

    def escalate(self, pattern: str, *, retry_after_s: int = 1, ban_s: int = 2) -> None:
        """The next request matching ``pattern`` gets 429 (``Retry-After: retry_after_s``) and the
        IP's next request of any kind, whenever it comes, gets the 418 ban of ``ban_s`` seconds: limits
        are per IP ("The limits on the API are based on the IPs, not the API keys", LIMITS), so another
        client on the same IP that kept going ("repeatedly violating rate limits") bans ours too."""
        self._escalate.append((pattern, float(retry_after_s), float(ban_s)))

    def when(self, pattern: str, fn: Any) -> None:
        """Run ``fn()`` (a venue event such as an ADL) when the next request matching ``pattern``
        arrives, before the venue processes it."""
        self._when.append((pattern, fn))

    def now(self) -> float:
        return self.sim.now_ms() / 1000.0

    def orders_for(self, client_order_id: str) -> list[Any]:
        """Orders the venue holds (any status) whose client id belongs to the same intent (same
        ``h<leg><seq:05d>`` prefix, any attempt)."""
        prefix = client_order_id[:7]
        return [o for (_m, c), v in self.sim._by_cid.items() if c.startswith(prefix) for o in v]

    def executed_for(self, client_order_id: str) -> list[Any]:
        return [o for o in self.orders_for(client_order_id) if o.executed > 0]

    async def settle(self) -> None:
        """Wait for every scheduled late execution."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ---- the hook ---------------------------------------------------------------------------
    async def _hook(self, request: web.Request, key: str, params: dict[str, str]) -> web.StreamResponse | None:
        now = self.now()
        self.log.append((now, key))
        if self._ban_next is not None:
            self.ban_until, self._ban_next = now + self._ban_next, None
        if now < self.ban_until:
            return self._teapot(now)
        if now < self.backoff_until:
            # failing to back off after a 429: automated IP ban (LIMITS)
            self.ban_until = now + self.ban_s
            self.backoff_until = 0.0
            return self._teapot(now)
        if self._limit is not None and re.search(self._limit[0], key):
            pattern, count, retry_after, ban = self._limit
            self._limit = (pattern, count - 1, retry_after, ban) if count > 1 else None
            self.backoff_until = now + retry_after
            self.ban_s = ban
            self.answers_429 += 1
            return web.json_response(
                {"code": -1003, "msg": "Too many requests; current limit of IP is 6000 request weight per 1 MINUTE."},
                status=429, headers={"Retry-After": str(int(retry_after)), **self._weight()})
        for pattern, fn in list(self._when):
            if re.search(pattern, key):
                self._when.remove((pattern, fn))
                fn()
        for esc in self._escalate:
            if re.search(esc[0], key):
                self._escalate.remove(esc)
                self._ban_next = esc[2]
                self.answers_429 += 1
                msg = "Too many requests; current limit of IP is 6000 request weight per 1 MINUTE."
                return web.json_response({"code": -1003, "msg": msg}, status=429,
                                         headers={"Retry-After": str(int(esc[1])), **self._weight()})
        for lost in self.lost:
            if re.search(lost.pattern, key):
                self.lost.remove(lost)
                return await self._lose(request, key, params, lost, now)
        return None

    def _weight(self) -> dict[str, str]:
        return {"X-MBX-USED-WEIGHT-1M": str(len([t for t, _k in self.log if t >= self.now() - 60]))}

    def _teapot(self, now: float) -> web.Response:
        self.answers_418 += 1
        until_ms = int(self.ban_until * 1000)
        return web.json_response(
            {"code": -1003, "msg": f"Way too much request weight used; IP banned until {until_ms}. "
                                   "Please use WebSocket Streams for live updates to avoid bans."},
            status=418, headers={"Retry-After": str(max(1, math.ceil(self.ban_until - now)))})

    async def _lose(self, request: web.Request, key: str, params: dict[str, str], lost: _Lost,
                    sent: float) -> web.StreamResponse:
        method, path = key.split(" ", 1)
        route = self.sim._routes()[(method, path)][0]
        recv_window_s = float(params.get("recvWindow", 5000)) / 1000.0
        if lost.execute_after_s is not None:
            delay = float(lost.execute_after_s)
            if delay > recv_window_s:
                raise ValueError(f"execute_after_s={delay} > recvWindow {recv_window_s} s: the venue "
                                 "would reject the request by then")
            if delay <= 0:
                self._execute(route, params)
            else:
                task = asyncio.get_running_loop().create_task(self._later(route, params, delay))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        if lost.mode == "503":
            return web.Response(status=503, text="Service Unavailable")
        if lost.mode == "-1007":
            return web.json_response({"code": -1007, "msg": "Timeout waiting for response from backend server. "
                                      "Send status unknown; execution status unknown."}, status=503)
        if lost.mode == "drop":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        await asyncio.sleep(lost.hang_s)  # timeout: the client gives up first
        return web.json_response({"code": -1007, "msg": "late"}, status=408)

    async def _later(self, route: Any, params: dict[str, str], delay: float) -> None:
        await asyncio.sleep(delay)
        self._execute(route, params)

    def _execute(self, route: Any, params: dict[str, str]) -> None:
        try:
            route(params)
        except SimError:
            return  # rejected at execution (e.g. a duplicate id): nothing executed
        self.late.append((params.get("newClientOrderId", ""), self.now()))
