"""A small local Bybit v5 simulator (unified trading account) for the second-venue tests.

Narrower than :mod:`tests.support.binance_sim`: it covers what the adapter's core calls need
through ccxt 4.5.90 -- markets (spot + linear), tickers (incl. funding), server time, order
create / realtime query / cancel (the create answer is thin: ids only), the unified wallet,
linear positions (one-way) and set-leverage (incl. 110043 "not modified"), the account margin
mode (``/v5/account/set-margin-mode``: account-wide on a unified account), the position mode
switch (``/v5/position/switch-mode``: 110025 "not modified", 110024 with an open position),
funding settlement (:meth:`BybitSim.settle_funding`) with the public funding history, venue
liquidations (:meth:`BybitSim.liquidate`), klines (spot, linear and mark price, from
``BybitSim.klines``) and the execution list (``/v5/execution/list``, 7-day windows and pages of ``limit`` <= 100: Trade,
Funding and BustTrade rows; ``execFee`` > 0 is a charge, also for funding), USDT linear dated futures
(:meth:`BybitSim.list_future`: contractType LinearFutures, no funding) -- with v5 HMAC
signatures (``X-BAPI-*`` headers: HMAC-SHA256 of timestamp + key + recvWindow + query/body) and
Bybit's ``retCode`` errors (10002 timestamp, 10003/10004 key/sign, 10006 rate limit,
110001 order not found, 110007 insufficient balance). Hedge-mode ORDERS (positionIdx 1/2) are
not simulated: the adapter refuses them for Bybit.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

HOSTS = ("api.bybit.com",)


def _fmt(x: float) -> str:
    out = f"{x:.10f}".rstrip("0").rstrip(".")
    return out if out not in ("", "-0") else "0"


# The documented examples of "Get Instruments Info" (https://bybit-exchange.github.io/docs/v5/market/instrument,
# category spot and linear, BTCUSDT) and "Get Risk Limit" (https://bybit-exchange.github.io/docs/v5/market/risk-limit)
_SPOT_BTC: dict[str, Any] = {
    "symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT", "innovation": "0", "status": "Trading",
    "marginTrading": "none",
    "lotSizeFilter": {"basePrecision": "0.000001", "quotePrecision": "0.00000001", "minOrderQty": "0.000048",
                      "maxOrderQty": "71.73956243", "minOrderAmt": "1", "maxOrderAmt": "2000000"},
    "priceFilter": {"tickSize": "0.01"}}
_LINEAR_BTC: dict[str, Any] = {
    "symbol": "BTCUSDT", "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": "BTC", "quoteCoin": "USDT",
    "settleCoin": "USDT", "launchTime": "1585526400000", "deliveryTime": "0", "deliveryFeeRate": "", "priceScale": "2",
    "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
    "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
    "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": "0.001", "qtyStep": "0.001",
                      "postOnlyMaxOrderQty": "1190.000", "maxMktOrderQty": "500.000", "minNotionalValue": "5"},
    "unifiedMarginTrade": True, "fundingInterval": 480, "copyTrading": "both"}
_RISK_BTC: tuple[dict[str, Any], ...] = (
    {"id": 1, "symbol": "BTCUSDT", "riskLimitValue": "2000000", "maintenanceMargin": "0.005", "initialMargin": "0.01",
     "isLowestRisk": 1, "maxLeverage": "100.00", "mmDeduction": ""},)


class BybitError(Exception):
    def __init__(self, code: int, msg: str, status: int = 200) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


@dataclass
class _Order:
    category: str
    symbol: str
    order_id: str
    link_id: str
    side: str  # Buy | Sell
    type: str  # Market | Limit
    qty: float
    price: float
    reduce_only: bool
    created: int
    status: str = "New"
    cum_qty: float = 0.0
    cum_value: float = 0.0
    cum_fee: float = 0.0
    updated: int = 0


class BybitSim:
    """State + aiohttp app of the Bybit simulator (see module docstring)."""

    def __init__(self, *, api_key: str, secret: str, coins: dict[str, float] | None = None,
                 spot_fee: float = 0.001, linear_taker: float = 0.00055, linear_maker: float = 0.0002) -> None:
        self.api_key, self.secret = api_key, secret
        self.coins: dict[str, float] = dict(coins or {"USDT": 10_000.0})
        self.spot_fee, self.taker, self.maker = spot_fee, linear_taker, linear_maker
        self.prices = {"BTCUSDT": 30_000.0}
        self.marks = dict(self.prices)
        self.funding_rate = {"BTCUSDT": 0.0001}
        self.leverage = {"BTCUSDT": 10}
        self.positions: dict[str, list[float]] = {}  # symbol -> [signed size, avg price]
        self.orders: dict[str, _Order] = {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.answers: list[tuple[str, int, int]] = []
        self.faults: list[list[Any]] = []  # [pattern, count, retCode, msg, http status, hang s]
        self.clock_offset_ms = 0
        self._seq = 0
        self.margin_mode = "REGULAR_MARGIN"  # unified account: one mode for the whole account
        self.position_mode = 0  # 0 one-way, 3 both sides
        self.executions: list[dict[str, Any]] = []  # /v5/execution/list rows, oldest first
        self.funding_history: list[dict[str, Any]] = []  # /v5/market/funding/history rows, oldest first
        self._exec_seq = 0
        # bars by book ("spot", "linear", "mark"): [open time ms, open, high, low, close, volume], oldest first
        self.klines: dict[str, list[list[float]]] = {"spot": [], "linear": [], "mark": []}
        self.hook: Any = None  # async (request, 'METHOD /path', params) -> response | None (bybit_faults)
        # GET /v5/market/instruments-info rows by category, and GET /v5/market/risk-limit rows (linear):
        # the documented BTCUSDT examples by default; a test adds symbols (see _instruments, _risk_limit)
        self.instrument_rows: dict[str, list[dict[str, Any]]] = {"spot": [dict(_SPOT_BTC)], "linear": [dict(_LINEAR_BTC)]}
        self.risk_limits: list[dict[str, Any]] = [dict(r) for r in _RISK_BTC]
        self.delivery: dict[str, int] = {}  # dated futures listed by list_future: symbol -> deliveryTime (ms)
        # a dated future is Delivering from this long before its deliveryTime (start_delivering; None: only when a
        # test calls it). Bybit's help center ("Index Price (Inverse Futures Contract)", bybitHC_Article?id=000001076):
        # from 07:30:00 to 08:00:00 UTC, "30 mins before settlement time", the settlement price is the average index
        self.delivering_window_ms: int | None = 30 * 60_000

    # ---- control hooks
    def set_price(self, symbol: str, price: float, mark: float | None = None) -> None:
        self.prices[symbol] = float(price)
        self.marks[symbol] = float(mark if mark is not None else price)
        for o in list(self.orders.values()):
            if o.symbol == symbol and o.type == "Limit" and o.status in ("New", "PartiallyFilled"):
                if (price <= o.price) if o.side == "Buy" else (price >= o.price):
                    self._fill(o, o.qty - o.cum_qty, o.price, maker=True)

    def list_future(self, base: str, delivery_ms: int, price: float, *, quote: str = "USDT") -> str:
        """List a USDT-settled linear dated future of ``base`` delivered at ``delivery_ms`` (08:00 UTC on the delivery
        date), traded at ``price``, and return its symbol id ``<BASE><QUOTE>-<DDMMMYY>`` (e.g. BTCUSDT-27MAR26).

        As Bybit lists it ("Get Instruments Info", GET /v5/market/instruments-info, category ``linear``,
        https://bybit-exchange.github.io/docs/v5/market/instrument): ``contractType`` LinearFutures (the perpetual is
        LinearPerpetual), ``deliveryTime`` the delivery in ms (``"0"`` for a perpetual), ``settleCoin`` USDT, and the
        perpetual's ``lotSizeFilter`` / ``priceFilter`` / ``leverageFilter``; ``fundingInterval`` 0: a dated future
        exchanges no funding ("Introduction to USDT Futures", Bybit help center: expiring contracts settle at
        delivery and carry no funding fee). It takes orders, holds a one-way position
        (``/v5/position/list`` category linear, like the perpetual), lists Trade executions with ``execFee``, and its
        ticker has empty funding fields and its ``deliveryTime``; :meth:`settle_funding` refuses it; :meth:`deliver`
        delivers it."""
        perp = next((r for r in self.instrument_rows["linear"] if r.get("contractType") == "LinearPerpetual"
                     and r.get("baseCoin") == base and r.get("quoteCoin") == quote), _LINEAR_BTC)
        sid = f"{base}{quote}-{time.strftime('%d%b%y', time.gmtime(delivery_ms / 1000)).upper()}"
        row = {**json.loads(json.dumps(perp)), "symbol": sid, "contractType": "LinearFutures",
               "deliveryTime": str(int(delivery_ms)), "deliveryFeeRate": "0.0005", "fundingInterval": 0,
               "baseCoin": base, "quoteCoin": quote, "settleCoin": quote, "launchTime": str(self.now_ms())}
        self.instrument_rows["linear"] = [r for r in self.instrument_rows["linear"] if r["symbol"] != sid] + [row]
        self.leverage[sid] = self.leverage.get(f"{base}{quote}", 10)
        self.delivery[sid] = int(delivery_ms)
        self.set_price(sid, price)
        return sid

    def _delivery_windows(self) -> None:
        """Every Trading dated future within ``delivering_window_ms`` of its deliveryTime becomes Delivering."""
        if self.delivering_window_ms is None:
            return
        now = self.now_ms()
        for sym, t in self.delivery.items():
            row = next((r for r in self.instrument_rows["linear"] if r["symbol"] == sym), None)
            if row is not None and row.get("status") == "Trading" and now >= t - self.delivering_window_ms:
                row["status"] = "Delivering"

    def start_delivering(self, symbol: str) -> None:
        """The dated future ``symbol`` enters its delivery window: its instrument ``status`` Trading -> Delivering
        (v5 "Get Instruments Info", https://bybit-exchange.github.io/docs/v5/market/instrument, ``status``: "PreLaunch,
        Trading, Delivering, Closed"; the API explorer adds Settling), until :meth:`deliver` makes it Closed. Called
        by a test, or by the simulator itself ``delivering_window_ms`` before the deliveryTime (30 minutes: Bybit's
        help center settles a future at the average index of the last 30 minutes; the v5 API docs name no status
        window). Then, as on the venue: instruments-info without a
        ``status`` omits it (by default "Trading" symbols only; ccxt's markets lose it on a reload), with
        ``status=Delivering`` (or its ``symbol``) answers it; orders on it are refused; ``/v5/position/list`` still
        answers its position by symbol ("Get Position Info", https://bybit-exchange.github.io/docs/v5/position:
        "If symbol passed, it returns data regardless of having position or not"); its ticker still answers
        (mark and index)."""
        row = next((r for r in self.instrument_rows["linear"] if r["symbol"] == symbol), None)
        if row is None or symbol not in self.delivery or row.get("status") != "Trading":
            raise ValueError(f"start_delivering: {symbol!r} is not a Trading dated future of this simulator")
        row["status"] = "Delivering"

    def inject(self, pattern: str, *, count: int = 1, code: int = 10006, msg: str = "Too many visits!",
               status: int = 200, hang_after: float = 0.0) -> None:
        """Force the next ``count`` matching requests to fail with ``code`` -- or, with
        ``hang_after``, to be APPLIED and then answered only after that many seconds."""
        self.faults.append([pattern, count, code, msg, status, hang_after])

    def settle_funding(self, symbol: str = "BTCUSDT", rate: float | None = None, ts_ms: int | None = None) -> None:
        """Settle funding now at the mark: a long pays ``size x mark x rate`` (receives when the
        rate is negative). The charge is an execution row with execType "Funding" and ``execFee``
        = the amount charged (> 0 paid, < 0 received), and a row of the public funding history."""
        if symbol in self.delivery:  # funding is the perpetual's: a dated future pays none (see list_future)
            raise ValueError(f"{symbol} is a dated future (LinearFutures): it settles no funding")
        rate = self.funding_rate[symbol] if rate is None else float(rate)
        ts = self.now_ms() if ts_ms is None else int(ts_ms)
        mark = self.marks[symbol]
        self.funding_history.append({"symbol": symbol, "fundingRate": _fmt(rate),
                                     "fundingRateTimestamp": str(ts)})
        amt = self.positions.get(symbol, [0.0, 0.0])[0]
        if amt == 0:
            return
        charge = amt * mark * rate
        self.coins["USDT"] = self.coins.get("USDT", 0.0) - charge
        self._execution(symbol, "linear", "Funding", "Buy" if amt > 0 else "Sell", abs(amt), mark, charge,
                        rate, ts=ts)

    def liquidate(self, symbol: str = "BTCUSDT", price: float | None = None) -> None:
        """The venue closes the whole position at ``price`` (a BustTrade execution, no order of ours)."""
        amt, entry = self.positions.get(symbol, [0.0, 0.0])
        if amt == 0:
            return
        px = self.marks[symbol] if price is None else float(price)
        fee = abs(amt) * px * self.taker
        self.coins["USDT"] = self.coins.get("USDT", 0.0) + amt * (px - entry) - fee
        self.positions[symbol] = [0.0, 0.0]
        self._execution(symbol, "linear", "BustTrade", "Sell" if amt > 0 else "Buy", abs(amt), px, fee,
                        self.taker, order_id=f"liq-{self._exec_seq + 1}")

    def deliver(self, symbol: str, index: list[float], *, at_ms: int | None = None) -> float:
        """Deliver the USDT future ``symbol`` at the average of ``index`` (the index samples the test gives, quote per
        base); returns the delivery price. As Bybit records it: an execution of ``execType`` "Delivery" (v5 "Enums"
        -> execType, https://bybit-exchange.github.io/docs/v5/enum#exectype) at the delivery price closing the
        position, ``execFee`` = |qty| x price x the instrument's ``deliveryFeeRate`` ("Get Delivery Record",
        https://bybit-exchange.github.io/docs/v5/asset/delivery: ``deliveryPrice``, ``fee``, ``deliveryRpl``), the
        realised PnL less the fee to the wallet; open orders on it cancelled; the instrument's ``status`` Closed
        and orders on it refused. ``at_ms``: the execution's time (default now)."""
        xs = [float(x) for x in index]
        if not xs or not all(math.isfinite(x) and x > 0 for x in xs) or symbol not in self.delivery:
            raise ValueError("deliver: a listed future and its positive index samples")
        px = math.fsum(xs) / len(xs)
        row = next(r for r in self.instrument_rows["linear"] if r["symbol"] == symbol)
        rate = float(row.get("deliveryFeeRate") or 0.0)
        amt, entry = self.positions.get(symbol, [0.0, 0.0])
        if amt:
            fee = abs(amt) * px * rate
            self.coins["USDT"] = self.coins.get("USDT", 0.0) + amt * (px - entry) - fee
            self.positions[symbol] = [0.0, 0.0]
            self._execution(symbol, "linear", "Delivery", "Sell" if amt > 0 else "Buy", abs(amt), px, fee, rate,
                            ts=at_ms)
        for o in self.orders.values():
            if o.symbol == symbol and o.status in ("New", "PartiallyFilled"):
                o.status = "Cancelled"
        row["status"] = "Closed"
        return px

    def adl(self, symbol: str, qty: float, price: float) -> None:
        """Auto-deleverage: the venue closes ``qty`` (base, > 0) of the position at ``price``, no order
        of ours: an execution with execType "AdlTrade" (v5 "Enums" -> execType,
        https://bybit-exchange.github.io/docs/v5/enum#exectype), no fee, the realised PnL to the wallet."""
        amt, entry = self.positions.get(symbol, [0.0, 0.0])
        if amt == 0 or qty <= 0 or qty > abs(amt) + 1e-12:
            raise ValueError(f"adl of {qty} on a position of {amt}")
        sign = 1 if amt > 0 else -1
        self.coins["USDT"] = self.coins.get("USDT", 0.0) + qty * (price - entry) * sign
        rest = round(amt - sign * qty, 12)
        self.positions[symbol] = [rest, entry if rest else 0.0]
        self._execution(symbol, "linear", "AdlTrade", "Sell" if amt > 0 else "Buy", qty, float(price), 0.0, 0.0,
                        order_id=f"adl-{self._exec_seq + 1}")

    def stale_ticker(self, symbol: str, price: float | None) -> None:
        """Control hook: the tickers of ``symbol`` show ``price`` (a lagging, cached answer) while orders
        fill at the current price; None restores live tickers. A v5 ticker row carries no time of its
        own ("Get Tickers", https://bybit-exchange.github.io/docs/v5/market/tickers: no timestamp per
        row, only the answer's ``time``), so the age of its prices cannot be shown."""
        if not hasattr(self, "_stale"):
            self._stale: dict[str, float] = {}
        if price is None:
            self._stale.pop(symbol, None)
        else:
            self._stale[symbol] = float(price)

    def _execution(self, symbol: str, category: str, exec_type: str, side: str, qty: float, price: float,
                   fee: float, fee_rate: float, *, order_id: str = "", link_id: str = "", maker: bool = False,
                   ts: int | None = None, fee_coin: str = "USDT") -> None:
        self._exec_seq += 1
        self.executions.append({
            "category": category, "symbol": symbol, "orderId": order_id, "orderLinkId": link_id, "side": side,
            "orderPrice": _fmt(price), "orderQty": _fmt(qty), "leavesQty": "0", "orderType": "Market",
            "stopOrderType": "", "execFee": _fmt(fee), "execId": f"exec-{self._exec_seq:06d}",
            "execPrice": _fmt(price), "execQty": _fmt(qty), "execType": exec_type, "execValue": _fmt(qty * price),
            "execTime": str(self.now_ms() if ts is None else ts), "isMaker": maker, "feeRate": _fmt(fee_rate),
            "tradeIv": "", "markIv": "", "markPrice": _fmt(self.marks.get(symbol, price)), "indexPrice": "",
            "underlyingPrice": "", "blockTradeId": "", "closedSize": "", "seq": self._exec_seq,
            "feeCurrency": fee_coin})

    def order_count(self, link_id: str) -> int:
        return sum(1 for o in self.orders.values() if o.link_id == link_id)

    def stop_hangs(self) -> None:  # SimServer protocol (this simulator never hangs)
        return None

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    # ---- HTTP
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        params: dict[str, Any] = dict(parse_qsl(request.query_string, keep_blank_values=True))
        if body:
            params.update(json.loads(body))
        key = f"{request.method} {request.path}"
        self.requests.append((request.method, request.path, params))
        if self.hook is not None:  # venue behaviours of tests/support/bybit_faults.py
            hooked = await self.hook(request, key, params)
            if hooked is not None:
                return hooked
        hang = 0.0
        try:
            for f in self.faults:
                if f[1] > 0 and re.search(f[0], key):
                    f[1] -= 1
                    if f[5]:
                        hang = f[5]
                        break
                    if f[4] != 200:
                        self.answers.append((key, f[4], f[2]))
                        return web.Response(status=f[4], text=f[3])
                    raise BybitError(f[2], f[3])
            route = self._routes().get((request.method, request.path))
            if route is None:
                raise BybitError(10001, f"simulator: no route {key}", 404)
            fn, private = route
            if private:
                self._check_sign(request, body if request.method == "POST" else request.query_string)
            result = fn(params)
            if hang:
                await asyncio.sleep(hang)
            self.answers.append((key, 200, 0))
            return web.json_response({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {},
                                      "time": self.now_ms()})
        except BybitError as e:
            self.answers.append((key, e.status, e.code))
            return web.json_response({"retCode": e.code, "retMsg": e.msg, "result": {}, "retExtInfo": {},
                                      "time": self.now_ms()}, status=e.status)

    def _check_sign(self, request: web.Request, payload: str) -> None:
        h = request.headers
        if h.get("X-BAPI-API-KEY") != self.api_key:
            raise BybitError(10003, "API key is invalid.", 401)
        ts, recv = h.get("X-BAPI-TIMESTAMP", "0"), h.get("X-BAPI-RECV-WINDOW", "5000")
        want = hmac.new(self.secret.encode(), (ts + self.api_key + recv + payload).encode(),
                        hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, h.get("X-BAPI-SIGN", "")):
            raise BybitError(10004, "Error sign, please check your signature generation algorithm.", 401)
        now = self.now_ms()
        if int(ts) > now + 1000 or now - int(ts) > int(recv):
            raise BybitError(10002, "invalid request, please check your server timestamp or recv_window param")

    def _routes(self) -> dict[tuple[str, str], tuple[Any, bool]]:
        return {
            ("GET", "/v5/market/time"): (lambda p: {"timeSecond": str(self.now_ms() // 1000),
                                                    "timeNano": str(self.now_ms() * 1_000_000)}, False),
            ("GET", "/v5/market/instruments-info"): (self._instruments, False),
            ("GET", "/v5/market/risk-limit"): (self._risk_limit, False),
            ("GET", "/v5/market/tickers"): (self._tickers, False),
            ("GET", "/v5/market/orderbook"): (self._orderbook, False),
            ("POST", "/v5/order/create"): (self._create, True),
            ("GET", "/v5/order/realtime"): (self._realtime, True),
            ("GET", "/v5/order/history"): (self._realtime, True),
            ("POST", "/v5/order/cancel"): (self._cancel, True),
            ("GET", "/v5/account/wallet-balance"): (self._wallet, True),
            ("GET", "/v5/position/list"): (self._position_list, True),
            ("POST", "/v5/position/set-leverage"): (self._set_leverage, True),
            ("POST", "/v5/account/set-margin-mode"): (self._set_margin_mode, True),
            ("POST", "/v5/position/switch-mode"): (self._switch_mode, True),
            ("GET", "/v5/execution/list"): (self._execution_list, True),
            ("GET", "/v5/account/info"): (lambda p: {"marginMode": self.margin_mode, "unifiedMarginStatus": 4,
                                                     "updatedTime": str(self.now_ms())}, True),
            ("GET", "/v5/market/funding/history"): (self._funding_history, False),
            ("GET", "/v5/market/kline"): (lambda p: self._kline(p, p.get("category", "spot")), False),
            ("GET", "/v5/market/mark-price-kline"): (lambda p: self._kline(p, "mark"), False),
        }

    def set_funding_interval(self, symbol: str, minutes: int) -> None:
        """The linear perpetual ``symbol`` settles every ``minutes`` (its instrument row's ``fundingInterval``, "Get
        Instruments Info": "Funding interval (minute)"; Bybit runs 8 h, 4 h and 1 h perpetuals)."""
        self.instrument_rows["linear"] = [dict(r, fundingInterval=int(minutes)) if r["symbol"] == symbol else r
                                          for r in self.instrument_rows["linear"]]

    # ---- public
    def _instruments(self, p: dict[str, Any]) -> dict[str, Any]:
        # ``status`` filters by symbol status; without it (and without a symbol) the venue answers the Trading
        # symbols only ("Get Instruments Info": "status: Symbol status filter ... by default returns only Trading
        # symbols"), so ccxt's second call (status=PreLaunch) answers none of ours
        self._delivery_windows()
        cat = p.get("category")
        status = p.get("status") or ("Trading" if "symbol" not in p else None)
        rows = [r for r in self.instrument_rows.get(cat or "", []) if p.get("symbol") in (None, r["symbol"])
                and status in (None, r.get("status"))]
        return {"category": cat, "list": rows, "nextPageCursor": ""}

    def _risk_limit(self, p: dict[str, Any]) -> dict[str, Any]:
        # "Get Risk Limit", GET /v5/market/risk-limit (https://bybit-exchange.github.io/docs/v5/market/risk-limit):
        # public; category linear|inverse; optional symbol; ``list`` of tiers {id, symbol, riskLimitValue (the
        # tier's position value cap), maintenanceMargin, initialMargin (fractions), isLowestRisk, maxLeverage,
        # mmDeduction ("" when none)}; ``nextPageCursor`` empty on the last page
        if p.get("category") not in ("linear", "inverse"):
            raise BybitError(10001, "params error: category")
        rows = [r for r in self.risk_limits if p.get("symbol") in (None, r["symbol"])]
        return {"category": p["category"], "list": rows, "nextPageCursor": ""}

    def _tickers(self, p: dict[str, Any]) -> dict[str, Any]:
        sym, cat = p.get("symbol", "BTCUSDT"), p.get("category", "spot")
        px = _fmt(getattr(self, "_stale", {}).get(sym, self.prices[sym]))
        t: dict[str, Any] = {"symbol": sym, "bid1Price": px, "bid1Size": "1", "ask1Price": px, "ask1Size": "1",
                             "lastPrice": px, "prevPrice24h": px, "price24hPcnt": "0", "highPrice24h": px,
                             "lowPrice24h": px, "turnover24h": "0", "volume24h": "0"}
        if cat == "linear":
            # "Get Tickers" ``nextFundingTime`` on the perpetual's own grid: "Get Instruments Info" ``fundingInterval``
            # (minutes) of that symbol (480 unless set_funding_interval changed it)
            row = next((r for r in self.instrument_rows["linear"] if r["symbol"] == sym), {})
            step = int(row.get("fundingInterval") or 480) * 60_000
            nxt = (self.now_ms() // step + 1) * step
            t.update({"markPrice": _fmt(self.marks[sym]), "indexPrice": _fmt(self.marks[sym]),
                      "fundingRate": _fmt(self.funding_rate.get(sym, 0.0)), "nextFundingTime": str(nxt),
                      "openInterest": "0", "openInterestValue": "0"})
            if sym in self.delivery:
                # "Get Tickers" (https://bybit-exchange.github.io/docs/v5/market/tickers), linear: a dated future's row
                # carries ``deliveryTime``, ``basis`` / ``basisRate`` and ``predictedDeliveryPrice``; its funding
                # fields are empty (it exchanges no funding)
                idx = self.marks.get(sym.split("-")[0], self.marks[sym])
                t.update({"fundingRate": "", "nextFundingTime": "0", "deliveryTime": str(self.delivery[sym]),
                          "basis": _fmt(self.prices[sym] - idx), "basisRate": _fmt(self.prices[sym] / idx - 1),
                          "predictedDeliveryPrice": "", "deliveryFeeRate": "0.0005", "indexPrice": _fmt(idx)})
        return {"category": cat, "list": [t]}

    def _orderbook(self, p: dict[str, Any]) -> dict[str, Any]:
        # "Get Orderbook", GET /v5/market/orderbook (https://bybit-exchange.github.io/docs/v5/market/orderbook):
        # result {s, b: bids [["price", "size"]] best first, a: asks, ts, u, seq, cts}, at most `limit` a
        # side. A test sets the levels in `order_books[(category, symbol)]`; else one level of 1 at the price.
        sym, cat = p.get("symbol", "BTCUSDT"), p.get("category", "spot")
        px = self.prices[sym]
        book = getattr(self, "order_books", {}).get((cat, sym), {"bids": [(px, 1)], "asks": [(px, 1)]})
        n = int(p.get("limit", 25))
        return {"s": sym, "b": [[_fmt(float(a)), _fmt(float(b))] for a, b in book["bids"][:n]],
                "a": [[_fmt(float(a)), _fmt(float(b))] for a, b in book["asks"][:n]], "ts": self.now_ms(),
                "u": 1, "seq": 1, "cts": self.now_ms()}

    # ---- orders
    def _create(self, p: dict[str, Any]) -> dict[str, Any]:
        cat, sym = p["category"], p["symbol"]
        self._delivery_windows()
        if any(r["symbol"] == sym and r.get("status") in ("Delivering", "Closed")
               for r in self.instrument_rows.get(cat, [])):
            # delivering (start_delivering) or delivered (deliver): no longer traded
            raise BybitError(10001, "params error: symbol invalid")
        link = p.get("orderLinkId") or ""
        if link and any(o.link_id == link for o in self.orders.values()):
            raise BybitError(110072, "OrderLinkedID is duplicate")
        side, otype, qty = p["side"], p["orderType"], float(p["qty"])
        price = float(p["price"]) if otype == "Limit" else self.prices[sym]
        reduce_only = bool(p.get("reduceOnly", False))
        notional = qty * price
        if cat == "spot":
            need = notional * (1 + self.spot_fee) if side == "Buy" else qty
            have = self.coins.get("USDT" if side == "Buy" else "BTC", 0.0) - self._locked("USDT" if side == "Buy" else "BTC")
            if need > have + 1e-9:
                raise BybitError(170131, "Insufficient balance.")
        else:
            amt = self.positions.get(sym, [0.0, 0.0])[0]
            sign = 1 if side == "Buy" else -1
            if reduce_only and (amt == 0 or sign * amt > 0):
                raise BybitError(110017, "current position is zero, cannot fix reduce-only order qty")
            opening = 0.0 if reduce_only else (qty if sign * amt >= 0 else max(0.0, qty - abs(amt)))
            if opening * price / self.leverage[sym] + notional * self.taker > self._available() + 1e-9:
                raise BybitError(110007, "ab not enough for new order")
        self._seq += 1
        now = self.now_ms()
        o = _Order(cat, sym, f"{self._seq:08d}-bybit", link, side, otype, qty, price, reduce_only, now, updated=now)
        self.orders[o.order_id] = o
        crosses = otype == "Market" or ((price >= self.prices[sym]) if side == "Buy" else (price <= self.prices[sym]))
        if crosses:
            fill = qty
            if cat == "linear" and reduce_only:
                # reduce-only never increases or flips the position ("Place Order": reduceOnly "true
                # means your position can only reduce in size"): what exceeds it does not execute
                fill = min(qty, abs(self.positions.get(sym, [0.0, 0.0])[0]))
            self._fill(o, fill, self.prices[sym], maker=False)
            if fill < qty - 1e-12 and otype == "Market":
                o.status = "PartiallyFilledCanceled"
        return {"orderId": o.order_id, "orderLinkId": o.link_id}  # thin, as on Bybit

    def _locked(self, coin: str) -> float:
        tot = 0.0
        for o in self.orders.values():
            if o.category == "spot" and o.type == "Limit" and o.status in ("New", "PartiallyFilled"):
                rem = o.qty - o.cum_qty
                if o.side == "Buy" and coin == "USDT":
                    tot += rem * o.price * (1 + self.spot_fee)
                if o.side == "Sell" and coin == "BTC":
                    tot += rem
        return tot

    def _im(self) -> float:
        im = sum(abs(a) * self.marks[s] / self.leverage[s] for s, (a, _e) in self.positions.items())
        for o in self.orders.values():
            if o.category == "linear" and o.status in ("New", "PartiallyFilled") and not o.reduce_only:
                im += (o.qty - o.cum_qty) * o.price / self.leverage[o.symbol]
        return im

    def _upnl(self) -> float:
        return sum(a * (self.marks[s] - e) for s, (a, e) in self.positions.items())

    def _available(self) -> float:
        return self.coins.get("USDT", 0.0) + self._upnl() - self._im() - self._locked("USDT")

    def _fill(self, o: _Order, qty: float, price: float, *, maker: bool) -> None:
        notional = qty * price
        fee_coin = "USDT"
        if o.category == "spot":
            # Bybit takes a spot fee in the coin RECEIVED: a buy pays in the base coin, a sell in the
            # quote (execution list ``feeCurrency``, https://bybit-exchange.github.io/docs/v5/order/execution;
            # "Spot trading fees", https://www.bybit.com/en/help-center/article/Trading-Fee-Structure)
            if o.side == "Buy":
                fee, fee_coin = qty * self.spot_fee, "BTC"
                self.coins["USDT"] = self.coins.get("USDT", 0.0) - notional
                self.coins["BTC"] = self.coins.get("BTC", 0.0) + qty - fee
            else:
                fee = notional * self.spot_fee
                self.coins["BTC"] = self.coins.get("BTC", 0.0) - qty
                self.coins["USDT"] = self.coins.get("USDT", 0.0) + notional - fee
        else:
            fee = notional * (self.maker if maker else self.taker)
            amt, entry = self.positions.get(o.symbol, [0.0, 0.0])
            signed = qty if o.side == "Buy" else -qty
            realized = 0.0
            if amt == 0 or (amt > 0) == (signed > 0):
                entry = (abs(amt) * entry + qty * price) / (abs(amt) + qty)
                amt += signed
            else:
                closed = min(qty, abs(amt))
                realized = closed * (price - entry) * (1 if amt > 0 else -1)
                amt += signed
                if abs(amt) < 1e-12:
                    amt, entry = 0.0, 0.0
                elif (amt > 0) == (signed > 0):
                    entry = price
            self.positions[o.symbol] = [round(amt, 12), entry]
            self.coins["USDT"] = self.coins.get("USDT", 0.0) + realized - fee
        self._execution(o.symbol, o.category, "Trade", o.side, qty, price, fee,
                        (self.spot_fee if o.category == "spot" else (self.maker if maker else self.taker)),
                        order_id=o.order_id, link_id=o.link_id, maker=maker, fee_coin=fee_coin)
        o.cum_qty += qty
        o.cum_value += notional
        o.cum_fee += fee
        o.updated = self.now_ms()
        o.status = "Filled" if o.cum_qty >= o.qty - 1e-12 else "PartiallyFilled"

    def _order_json(self, o: _Order) -> dict[str, Any]:
        return {"orderId": o.order_id, "orderLinkId": o.link_id, "blockTradeId": "", "symbol": o.symbol,
                "price": _fmt(o.price) if o.type == "Limit" else "0", "qty": _fmt(o.qty), "side": o.side,
                "isLeverage": "", "positionIdx": 0, "orderStatus": o.status, "cancelType": "UNKNOWN",
                "rejectReason": "EC_NoError", "avgPrice": _fmt(o.cum_value / o.cum_qty) if o.cum_qty else "",
                "leavesQty": _fmt(o.qty - o.cum_qty), "leavesValue": "0", "cumExecQty": _fmt(o.cum_qty),
                "cumExecValue": _fmt(o.cum_value), "cumExecFee": _fmt(o.cum_fee),
                "timeInForce": "GTC" if o.type == "Limit" else "IOC", "orderType": o.type,
                "stopOrderType": "", "orderIv": "", "triggerPrice": "", "takeProfit": "", "stopLoss": "",
                "tpTriggerBy": "", "slTriggerBy": "", "triggerDirection": 0, "triggerBy": "",
                "lastPriceOnCreated": "", "reduceOnly": o.reduce_only, "closeOnTrigger": False,
                "smpType": "None", "smpGroup": 0, "smpOrderId": "", "tpslMode": "", "tpLimitPrice": "",
                "slLimitPrice": "", "placeType": "", "createdTime": str(o.created), "updatedTime": str(o.updated)}

    def _find(self, p: dict[str, Any]) -> list[_Order]:
        out = [o for o in self.orders.values() if o.category == p.get("category")
               and ("symbol" not in p or o.symbol == p["symbol"])
               and ("orderId" not in p or o.order_id == p["orderId"])
               and ("orderLinkId" not in p or o.link_id == p["orderLinkId"])]
        if p.get("openOnly") in ("0", 0):
            out = [o for o in out if o.status in ("New", "PartiallyFilled")]
        return out

    def _realtime(self, p: dict[str, Any]) -> dict[str, Any]:
        if "openOnly" not in p and "orderId" not in p and "orderLinkId" not in p:
            # "Get Open & Closed Orders" (https://bybit-exchange.github.io/docs/v5/order/open-order):
            # openOnly 0 (the default) answers open orders only; an id asks for that order, closed too
            p = {**p, "openOnly": "0"}
        return {"list": [self._order_json(o) for o in self._find(p)], "nextPageCursor": "",
                "category": p.get("category")}

    def _cancel(self, p: dict[str, Any]) -> dict[str, Any]:
        found = [o for o in self._find(p) if o.status in ("New", "PartiallyFilled")]
        if not found:
            raise BybitError(110001, "Order does not exist.")
        o = found[0]
        o.status = "Cancelled"
        o.updated = self.now_ms()
        return {"orderId": o.order_id, "orderLinkId": o.link_id}

    # ---- account
    def _wallet(self, p: dict[str, Any]) -> dict[str, Any]:
        coins = []
        upnl, im = self._upnl(), self._im()
        for c, bal in self.coins.items():
            locked = self._locked(c)
            order_im = im - sum(abs(a) * self.marks[s] / self.leverage[s] for s, (a, _e) in self.positions.items())
            pos_im = im - order_im
            is_usdt = c == "USDT"
            coins.append({"coin": c, "equity": _fmt(bal + (upnl if is_usdt else 0.0)), "usdValue": "0",
                          "walletBalance": _fmt(bal), "locked": _fmt(locked), "spotHedgingQty": "0",
                          "borrowAmount": "0", "accruedInterest": "0",
                          "totalOrderIM": _fmt(order_im if is_usdt else 0.0),
                          "totalPositionIM": _fmt(pos_im if is_usdt else 0.0), "totalPositionMM": "0",
                          "unrealisedPnl": _fmt(upnl if is_usdt else 0.0), "cumRealisedPnl": "0",
                          "bonus": "0", "marginCollateral": True, "collateralSwitch": True,
                          "availableToWithdraw": "", "availableToBorrow": ""})
        return {"list": [{"accountType": "UNIFIED", "accountIMRate": "0", "accountMMRate": "0",
                          "totalEquity": "0", "totalWalletBalance": "0", "totalMarginBalance": "0",
                          "totalAvailableBalance": _fmt(self._available()), "totalPerpUPL": _fmt(upnl),
                          "totalInitialMargin": _fmt(im), "totalMaintenanceMargin": "0", "coin": coins}]}

    def _position_list(self, p: dict[str, Any]) -> dict[str, Any]:
        # by symbol whatever the instrument's status (Trading, Delivering, Closed: see start_delivering); a symbol
        # never held answers no row here
        rows = []
        for sym, (amt, entry) in self.positions.items():
            if "symbol" in p and p["symbol"] != sym:
                continue
            mark = self.marks[sym]
            rows.append({"positionIdx": 0, "riskId": 1, "riskLimitValue": "2000000", "symbol": sym,
                         "side": "Buy" if amt > 0 else ("Sell" if amt < 0 else ""), "size": _fmt(abs(amt)),
                         "avgPrice": _fmt(entry), "positionValue": _fmt(abs(amt) * entry),
                         "tradeMode": 1 if self.margin_mode == "ISOLATED_MARGIN" else 0,
                         "autoAddMargin": 0, "positionStatus": "Normal", "leverage": str(self.leverage[sym]),
                         "markPrice": _fmt(mark), "liqPrice": "", "bustPrice": "",
                         "positionIM": _fmt(abs(amt) * mark / self.leverage[sym]), "positionMM": "0",
                         "positionBalance": "0", "takeProfit": "0", "stopLoss": "0", "trailingStop": "0",
                         "unrealisedPnl": _fmt(amt * (mark - entry)), "curRealisedPnl": "0",
                         "cumRealisedPnl": "0", "adlRankIndicator": 0, "createdTime": "0",
                         "updatedTime": str(self.now_ms()), "seq": 1, "isReduceOnly": False})
        return {"list": rows, "nextPageCursor": "", "category": "linear"}

    def _set_margin_mode(self, p: dict[str, Any]) -> dict[str, Any]:
        mode = p.get("setMarginMode")
        if mode not in ("ISOLATED_MARGIN", "REGULAR_MARGIN", "PORTFOLIO_MARGIN"):
            raise BybitError(10001, f"params error: setMarginMode {mode!r}")
        self.margin_mode = mode
        return {"reasons": []}

    def _switch_mode(self, p: dict[str, Any]) -> dict[str, Any]:
        mode = int(p.get("mode", -1))
        if mode not in (0, 3) or p.get("category") != "linear":
            raise BybitError(10001, "params error: mode/category")
        if mode == self.position_mode:
            raise BybitError(110025, "Position mode is not modified")
        if any(a != 0 for a, _e in self.positions.values()):
            raise BybitError(110024, "You have an existing position, so position mode cannot be switched")
        self.position_mode = mode
        return {}

    def _execution_list(self, p: dict[str, Any]) -> dict[str, Any]:
        # "Get Trade History" (https://bybit-exchange.github.io/docs/v5/order/execution): "limit" [1, 100], default 50
        # (ccxt's "size" is not a parameter of it); the time window is 7 days: neither startTime nor endTime ->
        # the last 7 days; only startTime -> [startTime, startTime + 7 days]; only endTime -> [endTime - 7 days,
        # endTime]; both -> "endTime - startTime <= 7 days"
        week = 7 * 86_400_000
        start, end = p.get("startTime"), p.get("endTime")
        if start is None and end is None:
            end = self.now_ms()
        lo = int(start) if start is not None else int(end) - week
        hi = int(end) if end is not None else lo + week
        if hi - lo > week:
            raise BybitError(10001, "The time range between startTime and endTime cannot exceed 7 days")
        limit = int(p.get("limit", 50))
        if not 1 <= limit <= 100:
            raise BybitError(10001, "params error: limit")
        rows = [r for r in self.executions if r["category"] == p.get("category")
                and ("symbol" not in p or r["symbol"] == p["symbol"])
                and ("execType" not in p or r["execType"] == p["execType"])
                and lo <= int(r["execTime"]) <= hi]
        rows = sorted(rows, key=lambda r: (int(r["execTime"]), r["seq"]), reverse=True)[:limit]  # newest first
        return {"category": p.get("category"), "list": rows, "nextPageCursor": ""}

    def _kline(self, p: dict[str, Any], book: str) -> dict[str, Any]:
        if p.get("symbol") != "BTCUSDT" or book not in self.klines:
            raise BybitError(10001, "params error: symbol/category")
        rows = [r for r in self.klines[book] if ("start" not in p or r[0] >= int(p["start"]))
                and ("end" not in p or r[0] <= int(p["end"]))]
        rows = sorted(rows, key=lambda r: r[0], reverse=True)[:int(p.get("limit", 200))]  # newest first
        out = [[str(int(r[0]))] + [_fmt(x) for x in r[1:5]] + ([] if book == "mark" else [_fmt(r[5]), "0"])
               for r in rows]
        return {"category": p.get("category"), "symbol": p["symbol"], "list": out}

    def _funding_history(self, p: dict[str, Any]) -> dict[str, Any]:
        # v5 "Get Funding Rate History" (GET /v5/market/funding/history): newest first, limit [1, 200] default 200;
        # without startTime / endTime the newest rows up to now (the SETTLED rates; tickers' fundingRate is current)
        rows = [r for r in self.funding_history if r["symbol"] == p.get("symbol")
                and ("startTime" not in p or int(r["fundingRateTimestamp"]) >= int(p["startTime"]))
                and ("endTime" not in p or int(r["fundingRateTimestamp"]) <= int(p["endTime"]))]
        rows = sorted(rows, key=lambda r: int(r["fundingRateTimestamp"]), reverse=True)[:int(p.get("limit", 200))]
        return {"category": p.get("category"), "list": rows}

    def _set_leverage(self, p: dict[str, Any]) -> dict[str, Any]:
        sym = p["symbol"]
        lev = float(p["buyLeverage"])
        if not (1 <= lev <= 100) or math.isnan(lev):
            raise BybitError(10001, "leverage invalid")
        if int(lev) == self.leverage[sym]:
            raise BybitError(110043, "leverage not modified")
        self.leverage[sym] = int(lev)
        return {}
