"""The runner's control API: aiohttp on 127.0.0.1 only, every request with the runner's token.

``Authorization: Bearer <token>`` (the token is generated at start and stored in
``<home>/token`` with 0600 permissions; :class:`hedge_core.runner.client.RunnerClient` reads it).
A missing or wrong token gets 401 and nothing else. Errors are JSON ``{"error", "field",
"value", "allowed"}`` with 400 for invalid input.

Endpoints (JSON in and out)::

    GET  /health                         heartbeat age, loop lag, hedge count by state
    GET  /hedges                         every hedge's summary
    POST /hedges                         start {params: "NAME[@V]", mode, spot_symbol, perp_symbol,
                                         feed, start, end, speed, recovery, on_shutdown, confirm_live}
    GET  /hedges/{id}                    one summary
    POST /hedges/{id}/{command}          pause | resume | stop | flatten | rebalance_now | cancel
    POST /flatten-all                    kill switch on every hedge
    GET  /hedges/{id}/{table}            transitions | fills | funding | positions | orders | guards
    GET  /history/{table}                any ledger table; ?hedge_id=&start=&end=&limit=
    GET  /bars                           ?venue=&symbol=&kind=&timeframe=&start=&end=
    GET  /runs                           hedge_runs
    GET  /book                           the book of every hedge (docs/book.md); ?confidence=&horizon= of the VaR
    POST /params/sync                    index data/params/*.toml into param_sets
    POST /snapshot                       take a database snapshot now
    POST /shutdown                       {flatten: bool|null}: stop the runner
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
from typing import Any

import pandas as pd
from aiohttp import web

from hedge_core.params import store as param_store
from hedge_core.errors import HedgeError, InvalidInput

log = logging.getLogger("hedge_core.runner.control_api")
__all__ = ["LOOPBACK", "TABLE_ALIASES", "make_app"]

LOOPBACK = "127.0.0.1"
TABLE_ALIASES = {"transitions": "transitions", "fills": "fills", "funding": "funding_payments",
                 "positions": "position_snapshots", "orders": "orders", "guards": "guard_firings",
                 "funding_payments": "funding_payments", "position_snapshots": "position_snapshots",
                 "guard_firings": "guard_firings", "hedge_runs": "hedge_runs", "param_sets": "param_sets",
                 "ltv_history": "ltv_history", "reserve_deployments": "reserve_deployments",
                 "loan_events": "loan_events", "loan": "loan_events", "exit_marks": "exit_marks",
                 "book_marks": "book_marks"}


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, pd.Timestamp):
        return None if pd.isna(v) else v.isoformat()
    if v is pd.NaT:
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def frame_json(df: pd.DataFrame) -> list[dict[str, Any]]:
    if df is None or not len(df):
        return []
    return [_clean(r) for r in json.loads(df.to_json(orient="records", date_format="iso", date_unit="us"))]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(_clean(data), status=status, dumps=lambda o: json.dumps(o, default=str))


def make_app(sup: Any, token: str, *, on_shutdown: Any = None) -> web.Application:
    """The aiohttp application over a :class:`~hedge_core.runner.supervisor.Supervisor`."""

    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        got = request.headers.get("Authorization", "")
        if not (got.startswith("Bearer ") and hmac.compare_digest(got[7:].encode(), token.encode())):
            return _json({"error": "missing or wrong token (Authorization: Bearer <token from the runner's token file>)"}, 401)
        if request.method == "GET" and request.path != "/health":
            sup.journal.flush()  # reads see every row journaled so far
        try:
            return await handler(request)
        except InvalidInput as exc:
            v = exc.value if isinstance(exc.value, (str, int, float, bool, type(None))) else repr(exc.value)
            return _json({"error": str(exc), "field": exc.field, "value": v, "allowed": exc.allowed,
                          "where": exc.where}, 400)
        except HedgeError as exc:
            return _json({"error": str(exc), "type": type(exc).__name__}, 409)
        except Exception as exc:  # noqa: BLE001 - a bug answers in one line; the traceback goes to the runner log
            log.exception("control API %s %s failed", request.method, request.path)
            return _json({"error": f"internal error in {request.method} {request.path}: {type(exc).__name__}: {exc} "
                                   "(the traceback is in the runner's log)", "type": type(exc).__name__}, 500)

    async def body(request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            data = await request.json()
        except json.JSONDecodeError as exc:
            raise InvalidInput("body", exc.msg, "a JSON object") from None
        if not isinstance(data, dict):
            raise InvalidInput("body", type(data).__name__, "a JSON object")
        return data

    def q(request: web.Request) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in ("hedge_id", "start", "end"):
            if request.query.get(k):
                out[k] = request.query[k]
        if request.query.get("limit"):
            try:
                out["limit"] = int(request.query["limit"])
            except ValueError:
                raise InvalidInput("limit", request.query["limit"], "a positive integer") from None
        return out

    async def health(_: web.Request) -> web.Response:
        return _json(sup.health())

    async def hedges(_: web.Request) -> web.Response:
        return _json([h.summary() for h in sup.hedges.values()])

    async def start(request: web.Request) -> web.Response:
        b = await body(request)
        sup.book.check_start(b)  # a firing book guard blocks new entries there
        return _json(await sup.start_hedge(b), 201)

    async def book(request: web.Request) -> web.Response:
        snap = sup.book.snapshot(confidence=request.query.get("confidence"), horizon=request.query.get("horizon"))
        return _json(snap.as_dict())

    async def one(request: web.Request) -> web.Response:
        return _json(sup.get(request.match_info["id"]).summary())

    async def command(request: web.Request) -> web.Response:
        b = await body(request)
        return _json(await sup.command(request.match_info["id"], request.match_info["cmd"], str(b.get("reason", ""))))

    async def flatten_all(request: web.Request) -> web.Response:
        b = await body(request)
        return _json(await sup.flatten_all(str(b.get("reason", "operator flatten-all"))))

    def _table(name: str) -> str:
        t = TABLE_ALIASES.get(name)
        if t is None:
            raise InvalidInput("table", name, f"one of {sorted(TABLE_ALIASES)}")
        return t

    async def hedge_table(request: web.Request) -> web.Response:
        hid = request.match_info["id"]
        args = q(request)
        args["hedge_id"] = hid
        return _json(frame_json(sup.store.read_table(_table(request.match_info["table"]), **args)))

    async def history(request: web.Request) -> web.Response:
        return _json(frame_json(sup.store.read_table(_table(request.match_info["table"]), **q(request))))

    async def bars(request: web.Request) -> web.Response:
        a = request.query
        need = [k for k in ("venue", "symbol", "kind", "timeframe") if not a.get(k)]
        if need:
            raise InvalidInput(need[0], None, "venue, symbol, kind and timeframe query parameters")
        df = sup.store.read_bars(a["venue"], a["symbol"], a["kind"], a["timeframe"], start=a.get("start"),
                                 end=a.get("end"))
        return _json(frame_json(df.reset_index()))

    async def runs(_: web.Request) -> web.Response:
        return _json(frame_json(sup.store.read_table("hedge_runs")))

    async def params_sync(_: web.Request) -> web.Response:
        return _json({"rows": param_store.sync_to_store(sup.store, sup.params_root)})

    async def snapshot(_: web.Request) -> web.Response:
        p = sup.snapshot(force=True)
        return _json({"snapshot": str(p) if p else None})

    async def shutdown(request: web.Request) -> web.Response:
        b = await body(request)
        fl = b.get("flatten")
        if on_shutdown is not None:
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(on_shutdown(fl)))
        return _json({"stopping": True, "flatten": fl}, 202)

    app = web.Application(middlewares=[auth])
    app.add_routes([
        web.get("/health", health), web.get("/hedges", hedges), web.post("/hedges", start),
        web.get("/hedges/{id}", one), web.post("/hedges/{id}/{cmd}", command),
        web.get("/hedges/{id}/{table}", hedge_table), web.post("/flatten-all", flatten_all),
        web.get("/history/{table}", history), web.get("/bars", bars), web.get("/runs", runs), web.get("/book", book),
        web.post("/params/sync", params_sync), web.post("/snapshot", snapshot), web.post("/shutdown", shutdown),
    ])
    return app
