"""The Binance simulator's websocket market streams (ccxt.pro's raw-stream protocol), as a mixin of
:class:`tests.support.binance_sim.BinanceSim`: connect, SUBSCRIBE / UNSUBSCRIBE, kline pushes driven by
the test, server-side drops ("Websocket Market Streams",
https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from tests.support.binance_sim_types import _fmt

__all__ = ["WebSocketMixin", "dumps"]


class WebSocketMixin:
    """Websocket routes and their test controls; ``now_ms`` comes from :class:`BinanceSim`."""

    # ------------------------------------------------------------------ websocket market streams
    # Binance's raw-stream protocol as ccxt.pro speaks it: the client connects to /ws/<n> (spot, host
    # stream.binance.com) or /market/ws/<n> (USD-M), sends {"method": "SUBSCRIBE", "params":
    # ["btcusdt@kline_1h"], "id": 1}, gets {"result": null, "id": 1}, then kline events
    # {"e": "kline", "E", "s", "k": {"t", "T", "s", "i", "o", "c", "h", "l", "v", "x", ...}}.
    # The test pushes klines with :meth:`push_kline` (nothing is sent unless a test pushes it).
    def _ws_state(self) -> dict[str, Any]:
        if not hasattr(self, "_ws_st"):
            self._ws_st: dict[str, Any] = {"conns": [], "log": [], "cond": asyncio.Condition()}
        return self._ws_st

    @property
    def ws_log(self) -> list[tuple[str, str, Any]]:
        """(host, path, message) of every websocket connect (message None) and client message."""
        return self._ws_state()["log"]

    def ws_connections(self) -> int:
        """Websocket connections currently open."""
        return sum(1 for c in self._ws_state()["conns"] if not c["ws"].closed)

    async def drop_ws(self, market: str | None = None) -> int:
        """Close every websocket connection (of ``market`` if given) from the server side, as a
        venue restart does; returns how many were closed."""
        conns = [c for c in self._ws_state()["conns"] if market is None or c["market"] == market]
        for c in conns:
            await c["ws"].close(code=1001, message=b"simulator: going away")
        return len(conns)

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        st = self._ws_state()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        market = "fapi" if request.path.startswith("/market/") else "spot"
        conn: dict[str, Any] = {"ws": ws, "market": market, "streams": set()}
        st["conns"].append(conn)
        host = (request.host or "").split(":")[0]
        st["log"].append((host, request.path, None))
        try:
            async for msg in ws:
                if msg.type is not web.WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                st["log"].append((host, request.path, data))
                method, streams = data.get("method"), data.get("params") or []
                if method == "SUBSCRIBE":
                    conn["streams"].update(streams)
                elif method == "UNSUBSCRIBE":
                    conn["streams"].difference_update(streams)
                else:
                    await ws.send_str(dumps({"error": {"code": 2, "msg": f"Invalid request: {method}"},
                                             "id": data.get("id")}))
                    continue
                await ws.send_str(dumps({"result": None, "id": data.get("id")}))
                async with st["cond"]:
                    st["cond"].notify_all()
        finally:
            st["conns"].remove(conn)
        return ws

    async def wait_ws_subscribed(self, market: str, stream: str, timeout: float = 5.0) -> None:
        """Wait until a client subscribed ``stream`` (e.g. ``btcusdt@kline_1h``) on ``market``
        (``spot`` or ``fapi``)."""
        st = self._ws_state()

        def subscribed() -> bool:
            return any(c["market"] == market and stream in c["streams"] and not c["ws"].closed
                       for c in st["conns"])

        async with st["cond"]:
            await asyncio.wait_for(st["cond"].wait_for(subscribed), timeout)

    async def push_kline(self, symbol_id: str, market: str, open_ms: int, o: float, h: float, lo: float,
                         c: float, v: float = 0.0, *, closed: bool = False, interval: str = "1h",
                         interval_ms: int = 3_600_000) -> int:
        """Send one kline update (``market`` ``spot`` or ``fapi``) to every subscriber of
        ``<symbol>@kline_<interval>``; returns how many connections got it."""
        stream = f"{symbol_id.lower()}@kline_{interval}"
        event = {"e": "kline", "E": self.now_ms(), "s": symbol_id,
                 "k": {"t": open_ms, "T": open_ms + interval_ms - 1, "s": symbol_id, "i": interval,
                       "f": 1, "L": 2, "o": _fmt(o), "c": _fmt(c), "h": _fmt(h), "l": _fmt(lo),
                       "v": _fmt(v), "n": 2, "x": closed, "q": _fmt(v * c), "V": "0", "Q": "0", "B": "0"}}
        sent = 0
        for conn in list(self._ws_state()["conns"]):
            if conn["market"] == market and stream in conn["streams"] and not conn["ws"].closed:
                await conn["ws"].send_str(dumps(event))
                sent += 1
        return sent


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))
