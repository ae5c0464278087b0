"""A small local OKX v5 simulator (unified trading account, single-currency margin, net position
mode by default) for the third-venue tests, driven by the REAL ccxt client (4.5.90) through
:mod:`tests.support.redirect` (``www.okx.com`` resolved to 127.0.0.1, TLS with the test CA).

What ccxt's okx client calls, and the section of the OKX v5 API docs (https://www.okx.com/docs-v5/en/)
each behaviour follows:

- ``GET /api/v5/public/time`` ("Get system time"), ``GET /api/v5/public/instruments`` ("Get instruments":
  SPOT, SWAP and FUTURES rows with ``ctVal`` (base per contract), ``lotSz``/``minSz`` (contracts for
  SWAP/FUTURES, base for SPOT), ``tickSz``, ``lever``, ``expTime`` for FUTURES);
- ``GET /api/v5/market/ticker`` ("Get ticker"), ``GET /api/v5/market/books`` ("Get order book"), ``GET /api/v5/public/funding-rate`` and
  ``.../funding-rate-history`` ("Get funding rate", "Get funding rate history"), ``GET /api/v5/public/mark-price``,
  ``GET /api/v5/market/candles`` / ``mark-price-candles`` ("Get candlesticks": newest first, strings);
- ``GET /api/v5/public/position-tiers`` ("Get position tiers": ``minSz``/``maxSz`` in CONTRACTS for SWAP);
- private, signed ("REST Authentication": headers OK-ACCESS-KEY/-SIGN/-TIMESTAMP/-PASSPHRASE, sign =
  base64(HMAC-SHA256(timestamp + method + requestPath(+?query) + body, secret)); a timestamp more than
  30 s away from the server's time is refused with 50102): ``/api/v5/account/balance`` ("Get balance":
  ``details[]`` with ``eq``, ``cashBal``, ``availEq``, ``frozenBal``, ``upl``), ``/account/positions``
  ("Get positions": ``pos`` signed contracts in net mode), ``/trade/order`` and ``/trade/batch-orders``
  ("Place order": ``sz`` in contracts for SWAP/FUTURES, base for a SPOT ``tgtCcy=base_ccy`` order;
  ``clOrdId`` up to 32 alphanumerics; the answer carries ids and ``sCode`` only), ``GET /trade/order``
  ("Get order details"), ``/trade/cancel-order``, ``/trade/orders-pending``, ``/trade/fills`` and
  ``/trade/fills-history`` ("Get transaction details": ``fee`` NEGATIVE for a charge, positive for a
  rebate; spot fees in the currency received), ``/account/bills`` and ``/account/bills-archive`` ("Get
  bills details": funding is ``type`` 8, ``subType`` 173 expense / 174 income, ``balChg`` signed: +
  received), ``/account/set-leverage``, ``/account/config`` and ``/account/set-position-mode``;
  ``POST /trade/cancel-all-after`` ("Cancel All After",
  https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-cancel-all-after: ``timeOut`` in seconds,
  "Range of value can be 0, [10, 120]", 0 disables; one countdown for the account; the answer carries
  ``triggerTime`` (0 when disabled) and ``ts``; when it runs out every pending order is canceled; "Rate Limit:
  1 request per second", a faster call answers 50011, HTTP 429): the deadline is checked before every request
  is served and by :meth:`OkxSim.expire_cancel_all_after`.

Errors follow "Error Code" (https://www.okx.com/docs-v5/en/#error-code): an envelope
``{"code": "...", "msg": "...", "data": []}``; an order that fails answers ``code`` "1" with the reason in
``data[0].sCode``/``sMsg``. 50011 rate limit (HTTP 429), 50102 timestamp expired, 50111 invalid key,
50105 wrong passphrase, 50113 invalid sign (HTTP 401), 51000 parameter error, 51001 instrument unknown,
51008 insufficient balance, 51016 duplicated clOrdId, 51400 cancel of an order that does not exist,
51603 order does not exist, 59000 "settings failed as you have positions or open orders" (position mode
switch with a position). Not simulated: hedge (long/short) mode ORDERS, isolated margin, portfolio margin,
the ``tag`` scope of ``cancel-all-after``, delivery of a FUTURES contract by the clock at expiry (a test calls
:meth:`OkxSim.deliver`: the average of the index samples it gives, a bill of type 3 "Delivery", subType 112/113).
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import hashlib
import hmac
import json
import re
import time
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.support.okx_sim_book import OkxBook, OkxError, fmt

HOSTS = ("www.okx.com",)
BILLS_RECENT_DAYS, BILLS_ARCHIVE_DAYS = 7, 92  # how far back /account/bills and /account/bills-archive reach


# "Get instruments" rows (https://www.okx.com/docs-v5/en/#public-data-rest-api-get-instruments), the fields ccxt
# reads; BTC-USDT-SWAP with its ctVal 0.01 BTC per contract, lotSz/minSz 0.01 contracts (= 0.0001 BTC)
_SPOT_BTC: dict[str, Any] = {
    "instType": "SPOT", "instId": "BTC-USDT", "baseCcy": "BTC", "quoteCcy": "USDT", "settleCcy": "", "ctVal": "",
    "ctMult": "", "ctValCcy": "", "ctType": "", "uly": "", "instFamily": "", "lotSz": "0.00000001",
    "minSz": "0.00001", "tickSz": "0.1", "lever": "10", "state": "live", "listTime": "1548133413000", "expTime": "",
    "alias": "", "maxLmtSz": "9999999999", "maxMktSz": "1000000"}
_SWAP_BTC: dict[str, Any] = {
    "instType": "SWAP", "instId": "BTC-USDT-SWAP", "baseCcy": "", "quoteCcy": "", "settleCcy": "USDT",
    "ctVal": "0.01", "ctMult": "1", "ctValCcy": "BTC", "ctType": "linear", "uly": "BTC-USDT",
    "instFamily": "BTC-USDT", "lotSz": "0.01", "minSz": "0.01", "tickSz": "0.1", "lever": "100", "state": "live",
    "listTime": "1611916828000", "expTime": "", "alias": "", "maxLmtSz": "100000000", "maxMktSz": "12000"}
# a dated linear future (instType FUTURES, "alias" quarter) expiring 2026-12-25 08:00 UTC (OKX delivers at 08:00 UTC)
QUARTERLY_EXPIRY_MS = 1_798_185_600_000
_FUT_BTC: dict[str, Any] = {**_SWAP_BTC, "instType": "FUTURES", "instId": "BTC-USDT-261225", "alias": "quarter",
                            "expTime": str(QUARTERLY_EXPIRY_MS), "lever": "100"}
# "Get position tiers" (https://www.okx.com/docs-v5/en/#public-data-rest-api-get-position-tiers): SWAP tiers in
# contracts, a tier starting one contract above the previous one's maxSz (the shape of OKX's published tables,
# e.g. the announcement "Perpetual Swap Maintenance Margin to be adjusted", 2022-06-09). The BTC numbers are
# ours; tests add a documented table (tests/test_live_okx.py: ADA-USDT-SWAP)
_TIERS_BTC: tuple[dict[str, str], ...] = (
    {"tier": "1", "minSz": "0", "maxSz": "2000", "mmr": "0.004", "imr": "0.01", "maxLever": "100"},
    {"tier": "2", "minSz": "2001", "maxSz": "22000", "mmr": "0.005", "imr": "0.015", "maxLever": "66.66"},
    {"tier": "3", "minSz": "22001", "maxSz": "42000", "mmr": "0.01", "imr": "0.02", "maxLever": "50"},
)


class OkxSim(OkxBook):
    """State + aiohttp app of the OKX simulator (see module docstring); trading state in :class:`OkxBook`."""

    def __init__(self, *, api_key: str, secret: str, passphrase: str, usdt: float = 10_000.0,
                 spot_fee: float = 0.001, taker: float = 0.0005, maker: float = 0.0002) -> None:
        super().__init__(usdt=usdt, spot_fee=spot_fee, taker=taker, maker=maker)
        self.api_key, self.secret, self.passphrase = api_key, secret, passphrase
        self.instrument_rows: dict[str, list[dict[str, Any]]] = {
            "SPOT": [dict(_SPOT_BTC)], "SWAP": [dict(_SWAP_BTC)], "FUTURES": [dict(_FUT_BTC)]}
        self.tiers: dict[str, list[dict[str, str]]] = {"BTC-USDT": [dict(t) for t in _TIERS_BTC]}
        self.requests: list[tuple[str, str, Any]] = []
        self.answers: list[tuple[str, int, str]] = []
        self.faults: list[list[Any]] = []  # [pattern, count, code, msg, http status, hang s]
        self.clock_offset_ms = 0
        self._stale: dict[str, tuple[int, float]] = {}  # instId -> (age ms, price): stale_ticker
        self.hook: Any = None  # async (request, 'METHOD /path', params) -> response | None (okx_faults)
        # bars by book ("SPOT", "SWAP", "mark"): [open ms, o, h, l, c, volume], oldest first
        self.candles: dict[str, list[list[float]]] = {"SPOT": [], "SWAP": [], "mark": []}
        self.funding_grid: dict[str, tuple[int, int]] = {}  # instId -> (interval ms, anchor ms): set_funding_interval
        self.cancel_all_deadline: int | None = None  # "Cancel All After": server ms, None = disabled
        self.cancel_all_fired: list[tuple[int, list[str]]] = []  # (at ms, ordIds canceled)
        self.cancel_all_min_gap_ms = 1_000  # "Rate Limit: 1 request per second" (0: off, for quick unit tests)
        self._cancel_all_last_ms: int | None = None
        for rows in self.instrument_rows.values():
            for r in rows:
                self.register(r)

    # ---- control hooks
    def set_funding_interval(self, inst_id: str, hours: int, anchor_ms: int = 0) -> None:
        """The perpetual swap ``inst_id`` settles every ``hours`` on the grid through ``anchor_ms`` (server ms; 0 =
        00:00 UTC). OKX settles most swaps every 8 h at 00:00, 08:00 and 16:00 UTC ("Introduction to perpetual swap
        funding fee", https://www.okx.com/help/360053909272) and some every 4, 2 or 1 h ("OKX to adjust funding rate
        intervals for certain perpetual futures", https://www.okx.com/help/okx-to-adjust-funding-rate-intervals-for-
        certain-perpetual-futures-2025; "OKX announcement on the upgrade of automatic funding fee settlement frequency
        adjustment mechanism", 2026-04-14, which names ``GET /api/v5/public/funding-rate`` as where "the latest
        settlement frequency" is read). "Get funding rate" (https://www.okx.com/docs-v5/en/#public-data-rest-api-get-
        funding-rate) publishes the times themselves, ``fundingTime`` and ``nextFundingTime``: the interval is their
        difference. The grids OKX announces pass through 00:00 UTC; ``anchor_ms`` off it is a test's grid, so that
        a reader computing a 00:00-aligned grid instead of reading the published times is caught."""
        if inst_id not in self.insts or self.inst_type(inst_id) != "SWAP":
            raise ValueError(f"inst_id={inst_id!r}: a listed SWAP")
        if int(hours) not in (1, 2, 4, 8):
            raise ValueError(f"hours={hours!r}: one of 1, 2, 4, 8 (OKX's settlement frequencies)")
        self.funding_grid[inst_id] = (int(hours) * 3_600_000, int(anchor_ms))

    def inject(self, pattern: str, *, count: int = 1, code: str = "50011", msg: str = "Too Many Requests",
               status: int | None = None, hang_after: float = 0.0) -> None:
        """The next ``count`` requests matching ``pattern`` ('METHOD /path') fail with ``code`` (HTTP 429 for
        50011 as documented, 200 otherwise unless ``status``) -- or, with ``hang_after``, are APPLIED and
        answered only after that many seconds."""
        self.faults.append([pattern, count, code, msg, status or (429 if code == "50011" else 200), hang_after])

    def stop_hangs(self) -> None:  # SimServer protocol
        return None

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    def expire_cancel_all_after(self, now_ms: int | None = None) -> list[str]:
        """Fire the account's cancel-all-after countdown if its deadline is at or before ``now_ms`` (default:
        the server's time): every pending order is canceled, the timer is then off. Returns the ordIds."""
        now = self.now_ms() if now_ms is None else now_ms
        if self.cancel_all_deadline is None or now < self.cancel_all_deadline:
            return []
        self.cancel_all_deadline = None
        ids = []
        for o in self.orders.values():
            if o.state in ("live", "partially_filled"):
                o.state, o.u_time = "canceled", now
                ids.append(o.ord_id)
        self.cancel_all_fired.append((now, ids))
        return ids

    def _cancel_all_after(self, q: dict[str, Any]) -> list[dict[str, str]]:
        raw = str(q.get("timeOut", ""))
        if not raw.isdigit() or not (int(raw) == 0 or 10 <= int(raw) <= 120):
            raise OkxError("51000", "Parameter timeOut error")
        now = self.now_ms()
        if self._cancel_all_last_ms is not None and now - self._cancel_all_last_ms < self.cancel_all_min_gap_ms:
            raise OkxError("50011", "Too Many Requests", 429)
        self._cancel_all_last_ms = now
        self.cancel_all_deadline = None if int(raw) == 0 else now + int(raw) * 1000
        return [{"triggerTime": str(self.cancel_all_deadline or 0), "tag": "", "ts": str(now)}]

    def order_count(self, cl_ord_id: str) -> int:
        return sum(1 for o in self.orders.values() if o.cl_ord_id == cl_ord_id)

    # ---- HTTP
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        params: Any = dict(parse_qsl(request.query_string, keep_blank_values=True))
        if body:
            params = json.loads(body)
        key = f"{request.method} {request.path}"
        self.requests.append((request.method, request.path, params))
        if self.hook is not None:  # venue behaviours of tests/support/okx_faults.py
            hooked = await self.hook(request, key, params)
            if hooked is not None:
                return hooked
        hang = 0.0
        self.expire_cancel_all_after()  # the venue's timer runs whether or not anyone asks
        try:
            for f in self.faults:
                if f[1] > 0 and re.search(f[0], key):
                    f[1] -= 1
                    if f[5]:
                        hang = f[5]
                        break
                    raise OkxError(f[2], f[3], f[4])
            route = self._routes().get((request.method, request.path))
            if route is None:
                raise OkxError("50000", f"simulator: no route {key}", 404)
            fn, private = route
            if private:
                path_q = request.path + (f"?{request.query_string}" if request.query_string else "")
                self._check_sign(request, request.method, path_q, body)
                if self.now_ms() > self.deadline_ms(request):
                    raise OkxError("50102", "Timestamp request expired", 401)
            data = fn(params)
            if hang:
                await asyncio.sleep(hang)
            self.answers.append((key, 200, "0"))
            return web.json_response({"code": "0", "msg": "", "data": data})
        except OkxError as e:
            self.answers.append((key, e.status, e.s_code or e.code))
            data = [{"sCode": e.s_code, "sMsg": e.msg, "ordId": "", "clOrdId": "", "tag": ""}] if e.s_code else []
            return web.json_response({"code": e.code, "msg": "All operations failed" if e.s_code else e.msg, "data": data},
                                     status=e.status)

    def _check_sign(self, request: web.Request, method: str, path_q: str, body: str) -> None:
        # "REST Authentication" -> "Making Requests" / "Signature" (https://www.okx.com/docs-v5/en/#overview-rest-authentication)
        h = request.headers
        if h.get("OK-ACCESS-KEY") != self.api_key:
            raise OkxError("50111", "Invalid OK-ACCESS-KEY", 401)
        if h.get("OK-ACCESS-PASSPHRASE") != self.passphrase:
            raise OkxError("50105", "Invalid OK-ACCESS-PASSPHRASE", 401)
        ts = h.get("OK-ACCESS-TIMESTAMP", "")
        want = base64.b64encode(hmac.new(self.secret.encode(), (ts + method + path_q + body).encode(),
                                         hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(want, h.get("OK-ACCESS-SIGN", "")):
            raise OkxError("50113", "Invalid Sign", 401)
        try:
            t_ms = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) * 1000 + int(ts[20:23])
        except ValueError:
            raise OkxError("50112", "Invalid OK-ACCESS-TIMESTAMP", 401) from None
        # "The request will expire 30 seconds after the timestamp"
        if abs(self.now_ms() - t_ms) > 30_000:
            raise OkxError("50102", "Timestamp request expired", 401)

    @staticmethod
    def timestamp_ms(ts: str) -> int:
        """OK-ACCESS-TIMESTAMP (ISO 8601 with milliseconds, e.g. 2020-12-08T09:08:57.715Z) in ms; 0 if malformed."""
        try:
            return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) * 1000 + int(ts[20:23])
        except ValueError:
            return 0

    def deadline_ms(self, request: web.Request) -> int:
        """The last server time (ms) at which the venue still processes this signed request: 30 s after
        OK-ACCESS-TIMESTAMP ("REST Authentication"; the same 30 s is written out for the WebSocket login:
        "The request will expire 30 seconds after the timestamp"), or the ``expTime`` header when earlier
        ("Overview" -> "Transaction Timeouts": "If expTime is specified in the requests for Place (multiple)
        orders or Amend (multiple) orders, the request will not be processed if the current system time of
        the server is after the expTime", https://www.okx.com/docs-v5/en/#overview-rest-authentication). The
        section names no error code for a passed expTime: the simulator answers 50102, the timestamp rule's."""
        t_ms = self.timestamp_ms(request.headers.get("OK-ACCESS-TIMESTAMP", ""))
        deadline = t_ms + 30_000
        exp = request.headers.get("expTime")
        if exp and request.method == "POST" and request.path.endswith(("/trade/order", "/trade/batch-orders")):
            deadline = min(deadline, int(exp))
        return deadline

    def _routes(self) -> dict[tuple[str, str], tuple[Any, bool]]:
        p = "/api/v5"
        return {
            ("GET", f"{p}/public/time"): (lambda q: [{"ts": str(self.now_ms())}], False),
            ("GET", f"{p}/public/instruments"): (self._instruments, False),
            ("GET", f"{p}/public/position-tiers"): (self._position_tiers, False),
            ("GET", f"{p}/market/ticker"): (self._ticker, False),
            ("GET", f"{p}/market/books"): (self._books, False),
            ("GET", f"{p}/public/funding-rate"): (self._funding_rate, False),
            ("GET", f"{p}/public/funding-rate-history"): (self._funding_rate_history, False),
            ("GET", f"{p}/public/mark-price"): (lambda q: [{"instType": "SWAP", "instId": q["instId"],
                                                            "markPx": fmt(self.marks[q["instId"]]),
                                                            "ts": str(self.now_ms())}], False),
            ("GET", f"{p}/market/candles"): (lambda q: self._candles(q, None), False),
            ("GET", f"{p}/market/history-candles"): (lambda q: self._candles(q, None), False),
            ("GET", f"{p}/market/mark-price-candles"): (lambda q: self._candles(q, "mark"), False),
            ("GET", f"{p}/market/history-mark-price-candles"): (lambda q: self._candles(q, "mark"), False),
            ("GET", f"{p}/account/balance"): (lambda q: [self.balance_row()], True),
            ("GET", f"{p}/account/positions"): (self._positions, True),
            ("POST", f"{p}/trade/order"): (lambda q: [self._place(q)], True),
            ("POST", f"{p}/trade/batch-orders"): (lambda q: [self._place(o) for o in q], True),
            ("GET", f"{p}/trade/order"): (self._get_order, True),
            ("POST", f"{p}/trade/cancel-order"): (self._cancel, True),
            ("GET", f"{p}/trade/orders-pending"): (self._pending, True),
            ("GET", f"{p}/trade/fills"): (self._fills, True),
            ("GET", f"{p}/trade/fills-history"): (self._fills, True),
            ("GET", f"{p}/account/bills"): (lambda q: self._bills(q, days=BILLS_RECENT_DAYS), True),
            ("GET", f"{p}/account/bills-archive"): (lambda q: self._bills(q, days=BILLS_ARCHIVE_DAYS), True),
            ("POST", f"{p}/account/set-leverage"): (self._set_leverage, True),
            ("GET", f"{p}/account/config"): (lambda q: [{"uid": "1", "acctLv": "2", "posMode": self.pos_mode,
                                                         "autoLoan": False, "level": "Lv1"}], True),
            ("POST", f"{p}/account/set-position-mode"): (self._set_position_mode, True),
            ("POST", f"{p}/trade/cancel-all-after"): (self._cancel_all_after, True),
        }

    # ---- public
    def _instruments(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        t = q.get("instType")
        if t not in self.instrument_rows:
            raise OkxError("51000", "Parameter instType error")
        return [r for r in self.instrument_rows[t] if q.get("instId") in (None, r["instId"])]

    def _position_tiers(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        # instType and tdMode required; SWAP/FUTURES need uly or instFamily
        if q.get("instType") not in ("SWAP", "FUTURES", "MARGIN", "OPTION") or q.get("tdMode") not in ("cross", "isolated"):
            raise OkxError("51000", "Parameter instType/tdMode error")
        fam = q.get("instFamily") or q.get("uly")
        if fam not in self.tiers:
            raise OkxError("51000", "Parameter instFamily error")
        return [{**t, "uly": fam, "instFamily": fam, "instId": "", "optMgnFactor": "0", "quoteMaxLoan": "",
                 "baseMaxLoan": ""} for t in self.tiers[fam]]

    def stale_ticker(self, inst_id: str, age_ms: int | None, price: float | None = None) -> None:
        """Control hook: the ticker of ``inst_id`` answers as of ``age_ms`` ago (its ``ts``, "Ticker data
        generation time", "Get ticker"), with the ``price`` of that time; None restores the live ticker.
        Orders still fill at the current price."""
        if age_ms is None:
            self._stale.pop(inst_id, None)
        else:
            self._stale[inst_id] = (int(age_ms), float(price) if price is not None else self.prices[inst_id])

    def _ticker(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        inst = self._inst(q.get("instId"))
        age, old = self._stale.get(inst["instId"], (0, self.prices[inst["instId"]]))
        px = fmt(old)
        return [{"instType": inst["instType"], "instId": inst["instId"], "last": px, "lastSz": "1", "askPx": px,
                 "askSz": "1", "bidPx": px, "bidSz": "1", "open24h": px, "high24h": px, "low24h": px,
                 "volCcy24h": "0", "vol24h": "0", "sodUtc0": px, "sodUtc8": px, "ts": str(self.now_ms() - age)}]

    def _books(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        # "Get order book", GET /api/v5/market/books (https://www.okx.com/docs-v5/en/#order-book-trading-market-data-get-order-book):
        # data [{asks: [[price, size, "0", orders]] best first, bids, ts}], ``sz`` levels a side (default 1, max 400);
        # size in CONTRACTS for SWAP/FUTURES, base for SPOT. A test sets ``order_books[instId]`` as
        # {"bids": [(price, size)], "asks": [...]}; else one level of 1 at the price.
        inst = self._inst(q.get("instId"))
        iid = inst["instId"]
        px = self.prices[iid]
        book = getattr(self, "order_books", {}).get(iid, {"bids": [(px, 1)], "asks": [(px, 1)]})
        n = min(int(q.get("sz", 1)), 400)
        return [{"asks": [[fmt(float(a)), fmt(float(b)), "0", "1"] for a, b in book["asks"][:n]],
                 "bids": [[fmt(float(a)), fmt(float(b)), "0", "1"] for a, b in book["bids"][:n]],
                 "ts": str(self.now_ms())}]

    def _funding_rate(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        inst = self._inst(q.get("instId"))
        if inst["instType"] != "SWAP":
            raise OkxError("51000", "Parameter instId error")  # funding exists for perpetual swaps only
        iid = inst["instId"]
        # ``fundingTime`` the next settlement, ``nextFundingTime`` the one after it, on the swap's own grid
        # (set_funding_interval; 8 h at 00:00, 08:00, 16:00 UTC unless set)
        step, anchor = self.funding_grid.get(iid, (28_800_000, 0))
        nxt = anchor + ((self.now_ms() - anchor) // step + 1) * step
        return [{"instType": "SWAP", "instId": iid, "fundingRate": fmt(self.funding_rate[iid]),
                 "nextFundingRate": "", "fundingTime": str(nxt), "nextFundingTime": str(nxt + step),
                 "method": "current_period", "ts": str(self.now_ms())}]

    def _funding_rate_history(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        # newest first; ``before`` = rows newer than that fundingTime, ``after`` = older
        rows = [r for r in self.funding_history if r["instId"] == q.get("instId")
                and ("before" not in q or int(r["fundingTime"]) > int(q["before"]))
                and ("after" not in q or int(r["fundingTime"]) < int(q["after"]))]
        return sorted(rows, key=lambda r: -int(r["fundingTime"]))[:int(q.get("limit", 100))]

    def _candles(self, q: dict[str, Any], book: str | None) -> list[list[str]]:
        inst = self._inst(q.get("instId"))
        rows = self.candles[book or inst["instType"]]
        rows = [r for r in rows if ("after" not in q or r[0] < int(q["after"]))
                and ("before" not in q or r[0] > int(q["before"]))]
        rows = sorted(rows, key=lambda r: -r[0])[:int(q.get("limit", 100))]
        if book == "mark":
            return [[str(int(r[0]))] + [fmt(x) for x in r[1:5]] + ["1"] for r in rows]
        return [[str(int(r[0]))] + [fmt(x) for x in r[1:5]] + [fmt(r[5]), fmt(r[5]), fmt(r[5] * r[4]), "1"]
                for r in rows]

    # ---- private (settings)
    def _set_leverage(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        inst = self._inst(q.get("instId"))
        lever = float(q.get("lever", 0))
        if not 1 <= lever <= float(inst["lever"]) or q.get("mgnMode") not in ("cross", "isolated"):
            raise OkxError("51000", "Parameter lever error")
        self.leverage[inst["instId"]] = lever
        return [{"lever": fmt(lever), "mgnMode": q["mgnMode"], "instId": inst["instId"], "posSide": "net"}]

    def _set_position_mode(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        mode = q.get("posMode")
        if mode not in ("net_mode", "long_short_mode"):
            raise OkxError("51000", "Parameter posMode error")
        if mode != self.pos_mode and (any(a != 0 for a, _e in self.positions.values())
                                      or any(o.state in ("live", "partially_filled") for o in self.orders.values())):
            raise OkxError("59000", "Settings failed. Close any open positions or orders before modifying settings.")
        self.pos_mode = mode
        return [{"posMode": mode}]

    # ---- private (trading: see OkxBook for the state)
    def _place(self, q: dict[str, Any]) -> dict[str, Any]:
        try:
            o = self.place(q)
        except OkxError as e:
            if e.s_code is None:
                raise OkxError("1", e.msg, 200, s_code=e.code) from None
            raise
        return {"ordId": o.ord_id, "clOrdId": o.cl_ord_id, "tag": "", "ts": str(o.c_time), "sCode": "0", "sMsg": ""}

    def _get_order(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        o = self.find(q)
        if o is None:
            raise OkxError("51603", "Order does not exist")
        return [self.order_json(o)]

    def _cancel(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        o = self.find(q)
        if o is None or o.state not in ("live", "partially_filled"):
            raise OkxError("1", "Cancellation failed as the order does not exist." if o is None
                           else "Cancellation failed as the order has been canceled.", s_code="51400" if o is None else "51401")
        o.state, o.u_time = "canceled", self.now_ms()
        return [{"ordId": o.ord_id, "clOrdId": o.cl_ord_id, "sCode": "0", "sMsg": ""}]

    def _pending(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        return [self.order_json(o) for o in self.orders.values() if o.state in ("live", "partially_filled")
                and q.get("instId") in (None, o.inst_id) and q.get("instType") in (None, self.inst_type(o.inst_id))]

    def _fills(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        if q.get("instType") not in ("SPOT", "SWAP", "FUTURES", "MARGIN", "OPTION"):
            raise OkxError("51000", "Parameter instType error")  # fills-history requires instType
        # "Get transaction details (last 3 months)": newest first; "after" = records earlier than the requested billId,
        # "before" = newer; begin/end by ts (ms); limit max 100, default 100
        limit = int(q.get("limit", 100))
        if not 1 <= limit <= 100:
            raise OkxError("51000", "Parameter limit error")
        rows = [r for r in self.fills if r["instType"] == q["instType"] and q.get("instId") in (None, r["instId"])
                and q.get("ordId") in (None, r["ordId"])
                and ("begin" not in q or int(r["ts"]) >= int(q["begin"]))
                and ("end" not in q or int(r["ts"]) <= int(q["end"]))
                and ("after" not in q or int(r["billId"]) < int(q["after"]))
                and ("before" not in q or int(r["billId"]) > int(q["before"]))]
        return sorted(rows, key=lambda r: (-int(r["ts"]), -int(r["billId"])))[:limit]

    def _bills(self, q: dict[str, Any], *, days: int) -> list[dict[str, Any]]:
        # "Get bills details (last 7 days)" (GET /api/v5/account/bills: "This endpoint can retrieve data from the last
        # 7 days") and "Get bills details (last 3 months)" (GET /api/v5/account/bills-archive: "from the last 3
        # months"), https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-bills-details: filters type,
        # subType, instType, ccy; begin/end (ts, ms); "Pagination is supported, and the response is sorted with the
        # most recent first"; "after": records earlier than the requested billId, "before": newer; limit max 100,
        # default 100. ``days``: how far back the endpoint reaches (3 months taken as 92 days)
        limit = int(q.get("limit", 100))
        if not 1 <= limit <= 100:
            raise OkxError("51000", "Parameter limit error")
        oldest = self.now_ms() - days * 86_400_000
        rows = [b for b in self.bills if int(b["ts"]) >= oldest
                and q.get("type") in (None, b["type"]) and q.get("subType") in (None, b["subType"])
                and q.get("instType") in (None, b["instType"]) and q.get("ccy") in (None, b["ccy"])
                and ("begin" not in q or int(b["ts"]) >= int(q["begin"]))
                and ("end" not in q or int(b["ts"]) <= int(q["end"]))
                and ("after" not in q or int(b["billId"]) < int(q["after"]))
                and ("before" not in q or int(b["billId"]) > int(q["before"]))]
        return sorted(rows, key=lambda r: (-int(r["ts"]), -int(r["billId"])))[:limit]

    def _positions(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        ids = set(q["instId"].split(",")) if q.get("instId") else None
        return [self.position_json(i) for i, (a, _e) in self.positions.items() if a != 0
                and (ids is None or i in ids) and q.get("instType") in (None, self.inst_type(i))]

