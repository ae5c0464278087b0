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

:attr:`BybitFaults.log` keeps (server s, 'METHOD /path') of every request that reached the venue.
"""

from __future__ import annotations

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

    def now(self) -> float:
        return self.sim.now_ms() / 1000.0

    def too_many_visits(self, pattern: str = ".*", *, reset_s: float = 1.0, count: int = 1) -> None:
        """The next ``count`` matching requests: retCode 10006, limit resets ``reset_s`` later."""
        self._limit = (pattern, count, float(reset_s), 10006)

    def ip_limit(self, pattern: str = ".*", *, reset_s: float = 2.0, count: int = 1) -> None:
        """The next ``count`` matching requests: retCode 10018 (IP rate limit), reset ``reset_s`` later."""
        self._limit = (pattern, count, float(reset_s), 10018)

    def ip_ban(self, seconds: float = 600.0) -> None:
        """HTTP 403 "access too frequent" to every request for ``seconds``."""
        self.ban_until = self.now() + seconds

    async def _hook(self, request: web.Request, key: str, params: dict[str, Any]) -> web.Response | None:
        now = self.now()
        self.log.append((now, key))
        if now < self.ban_until:
            return web.Response(status=403, text="access too frequent")
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
