"""A stateful local Binance (spot ``/api/v3`` + USD-M futures ``/fapi``) simulator for tests.

It speaks the REST dialect ccxt 4.5.90 uses for the calls :class:`CcxtLiveAdapter` makes, over
HTTPS on ``127.0.0.1`` (ephemeral port, certificate from a ``trustme`` CA). Real ccxt reaches
it through :func:`tests.support.redirect.redirect_session`: production URLs stay untouched, the
session's resolver maps ``api.binance.com`` / ``fapi.binance.com`` to this server and refuses
every other host.

What it checks and keeps
------------------------
- HMAC-SHA256 signatures (``X-MBX-APIKEY`` header; hex HMAC of the raw query string or form
  body without ``signature``), ``timestamp`` within ``recvWindow`` of the (skewable) server clock.
- Orders (market / limit, GTC), client order ids (``newClientOrderId`` / ``origClientOrderId``),
  spot balances with locks, a futures USDT wallet, one-way or hedge positions, leverage, margin
  type, position mode, funding (settled by a control call) and the own-income ledger.
- The USD-M cancel-all countdown (``POST /fapi/v1/countdownCancelAll``): one deadline per symbol
  on the simulator's clock (:meth:`now_ms`); when it passes without a re-arm, every open futures
  order of that symbol is canceled. Deadlines are checked at the start of every request and by
  :meth:`expire_countdowns` (a test may pass a future ``now_ms`` instead of waiting).
- Binance's real error codes and HTTP statuses: -1021, -1022, -2014/-2015, -2010, -2011, -2013,
  -2019, -2022, -4046, -4059, -4116, -1013 filter failures, HTTP 429 / 418.

What an answer carries (as Binance documents it, not as our adapter would like)
-------------------------------------------------------------------------------
- USD-M ``POST/GET /fapi/v1/order``: status, ``executedQty``, ``avgPrice``, ``cumQuote``; NO
  commission and no fills ("New Order (TRADE)" / "Query Order (USER_DATA)" response,
  https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api). The
  commission, its asset and the realised PnL of each execution are only in ``GET
  /fapi/v1/userTrades`` ("Account Trade List (USER_DATA)": ``commission``, ``commissionAsset``,
  ``realizedPnl``) and in the income ledger.
- Spot ``POST /api/v3/order`` with ``newOrderRespType=FULL`` carries ``fills`` (price, qty,
  commission, commissionAsset, tradeId); ``GET /api/v3/order`` has NO fills ("Query order
  (USER_DATA)"); ``GET /api/v3/myTrades`` ("Account trade list (USER_DATA)") has every execution
  with ``commission`` / ``commissionAsset``. Without BNB fee payment the commission is taken from
  the asset RECEIVED (``spot_fee_in_received=True``: a buy pays in the base asset).
- ``GET /fapi/v1/income`` ("Get Income History (USER_DATA)",
  https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Get-Income-History):
  one row per money movement, ``incomeType`` COMMISSION (every futures execution, negative, with
  its ``tradeId``), REALIZED_PNL (an execution that reduces a position), FUNDING_FEE (each
  settlement), INSURANCE_CLEAR (:meth:`insurance_clear`), DELIVERED_SETTELMENT (:meth:`deliver`: a quarterly's
  delivery, tests/support/binance_sim_delivery.py); ``income`` + received / - paid.
- Auto-deleverage (:meth:`adl`): the venue reduces a position with an order that is not the
  user's (client id ``adl_autoclose``): a userTrade without commission and a REALIZED_PNL row
  ("Auto-Deleveraging (ADL)", https://www.binance.com/en/support/faq/what-is-auto-deleveraging-adl-360033525471).

Fills happen at the simulator's current price for the symbol (no spread, no slippage), which is
what the parity test with the paper exchange relies on. Limit orders that do not cross rest and
fill at their limit price (maker fee) when :meth:`BinanceSim.set_price` crosses them.

Test-control hooks (call from the test, never over HTTP): :meth:`set_price`,
:meth:`set_funding_rate`, :meth:`settle_funding`, :meth:`inject` (force the next N matching
requests to fail with a status/code, or to hang), :meth:`partial_next`, :meth:`thin_next`,
:meth:`skew_clock`, :meth:`deposit`, :meth:`expire_countdowns`, :meth:`adl`, :meth:`insurance_clear`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import re
import ssl
import time
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

SPOT_HOST = "api.binance.com"
FAPI_HOST = "fapi.binance.com"
HOSTS = (SPOT_HOST, FAPI_HOST)
# websocket market streams (ccxt.pro): spot wss://stream.binance.com:9443/ws/<n>,
# USD-M wss://fstream.binance.com/market/ws/<n>; served by BinanceSim._ws on the same server
WS_HOSTS = ("stream.binance.com", "fstream.binance.com")


from tests.support.binance_sim_account import AccountMixin
from tests.support.binance_sim_delivery import DeliveryMixin
from tests.support.binance_sim_market import MarketDataMixin
from tests.support.binance_sim_orders import OrderQueryMixin
from tests.support.binance_sim_types import (  # noqa: F401 - re-exported
    Fault,
    MarketSpec,
    SimError,
    _fmt,
    _Order,
    _s,
)
from tests.support.binance_sim_ws import WebSocketMixin, dumps  # noqa: F401 - dumps re-exported


class BinanceSim(MarketDataMixin, AccountMixin, OrderQueryMixin, WebSocketMixin, DeliveryMixin):
    """The simulator state and its aiohttp application (see module docstring).

    Parameters
    ----------
    api_key, secret:
        The only credentials it accepts.
    markets:
        Listed symbols (spot and perp).
    spot_balances:
        Initial spot wallet, currency -> free amount.
    futures_wallet:
        Initial USD-M wallet balance, USDT.
    spot_fee, futures_taker_fee, futures_maker_fee:
        Fee rates (fraction of notional). Futures fees are charged in USDT.
    spot_fee_in_received:
        True (default; what Binance does without BNB fee payment, "Trading Fees" FAQ /
        ``commissionAsset`` of ``myTrades``): the commission is taken from the asset received,
        base on a buy (``qty * fee`` BTC), quote on a sell. False: every spot commission in the
        quote currency (what the paper exchange models; a stand-in for an account that pays
        fees in another asset, used by the paper-parity tests).
    """

    def __init__(self, *, api_key: str, secret: str, markets: list[MarketSpec] | None = None,
                 spot_balances: dict[str, float] | None = None, futures_wallet: float = 10_000.0,
                 spot_fee: float = 0.001, futures_taker_fee: float = 0.0005,
                 futures_maker_fee: float = 0.0002, default_leverage: int = 20,
                 spot_fee_in_received: bool = True) -> None:
        self.api_key, self.secret = api_key, secret
        self.markets = {m.id: m for m in (markets or [MarketSpec("BTC", tick="0.10"),
                                                      MarketSpec("ETH")])}
        self.spot_fee, self.fut_taker, self.fut_maker = spot_fee, futures_taker_fee, futures_maker_fee
        self.spot_fee_in_received = spot_fee_in_received
        self._quote_fee = 0.0 if spot_fee_in_received else spot_fee  # quote reserved per quote spent
        self.prices: dict[str, float] = {sid: 100.0 for sid in self.markets}
        self.perp_prices: dict[str, float] = dict(self.prices)
        self.marks: dict[str, float] = dict(self.prices)
        self.predicted_rate: dict[str, float] = {sid: 0.0001 for sid in self.markets}
        # USD-M funding interval per symbol, hours (8 unless set: premiumIndex's nextFundingTime is on its grid,
        # and a symbol set to another interval is listed by /fapi/v1/fundingInfo)
        self.funding_interval_hours: dict[str, int] = {}
        self.spot: dict[str, list[float]] = {c: [float(v), 0.0] for c, v in
                                             (spot_balances or {"USDT": 10_000.0}).items()}
        self.wallet = float(futures_wallet)
        self.positions: dict[tuple[str, str], list[float]] = {}  # (sym, side) -> [amt, entry]
        self.leverage: dict[str, int] = {sid: default_leverage for sid in self.markets}
        self.bracket_rows: list[dict[str, Any]] | None = None  # GET /fapi/v1/leverageBracket rows (None: a default table)
        self.symbol_brackets: dict[str, list[dict[str, Any]]] = {}  # per-symbol rows, over bracket_rows
        self.margin_type: dict[str, str] = {sid: "CROSSED" for sid in self.markets}
        self.dual_side = False
        self.orders: dict[tuple[str, int], _Order] = {}
        self._open: dict[tuple[str, int], _Order] = {}  # working orders (NEW / PARTIALLY_FILLED)
        self._by_cid: dict[tuple[str, str], list[_Order]] = {}  # (market, client id) -> orders
        self.trades: list[dict[str, Any]] = []
        self.income: list[dict[str, Any]] = []
        self.adl_orders: list[_Order] = []  # the venue's own orders that reduced our positions (ADL)
        self.funding_history: list[dict[str, Any]] = []
        self.delivered: set[str] = set()  # quarterlies delivered and delisted (binance_sim_delivery)
        self.delivery_prices: dict[str, list[dict[str, Any]]] = {}  # pair -> GET /futures/data/delivery-price rows
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (METHOD, path, params)
        self.answers: list[tuple[str, int, int | None]] = []  # ('METHOD /path', HTTP status, error code)
        self.clock_offset_ms = 0
        self.klines: dict[tuple[str, str], list[list[Any]]] = {}  # (market, symbol) -> rows
        self._partial: list[float] = []
        self._thin = 0
        self._next_id = 1000
        self._trade_id = 1
        self._tran_id = 1
        self._stop = asyncio.Event()
        self.last_headers: dict[str, str] = {}
        self.countdowns: dict[str, int] = {}  # symbol id -> cancel-all deadline, server ms
        self.countdown_cancels: list[tuple[str, int, list[int]]] = []  # (symbol, at ms, order ids)
        self.hook: Any = None  # async (request, 'METHOD /path', params) -> response | None (binance_faults)

    # ------------------------------------------------------------------ control hooks
    def set_price(self, symbol_id: str, price: float, mark: float | None = None,
                  perp: float | None = None) -> None:
        """Set the spot last/fill price, the perp last/fill price (default = spot) and the perp mark
        (default = perp price); resting limit orders that the new price crosses fill at their limit."""
        self.prices[symbol_id] = float(price)
        self.perp_prices[symbol_id] = float(perp if perp is not None else price)
        self.marks[symbol_id] = float(mark if mark is not None else self.perp_prices[symbol_id])
        for o in list(self._open.values()):
            if o.symbol == symbol_id and o.status in ("NEW", "PARTIALLY_FILLED") and o.type == "LIMIT":
                px = self._px(o.market, symbol_id)
                crossed = px <= o.price if o.side == "BUY" else px >= o.price
                if crossed:
                    self._fill(o, o.qty - o.executed, o.price, maker=True)

    def list_quarterly(self, base: str, delivery_ms: int, price: float, *,
                       contract_type: str = "CURRENT_QUARTER", quote: str = "USDT") -> str:
        """List a USD-M quarterly delivery contract of ``base`` delivered at ``delivery_ms`` (08:00 UTC on the
        delivery date, Binance FAQ "Binance USDⓈ-M Quarterly Futures Contract Specifications") with the perpetual's
        filters, traded at ``price``; returns its
        symbol id ``<BASE><QUOTE>_<YYMMDD>`` (e.g. BTCUSDT_261225). It is listed by ``/fapi/v1/exchangeInfo`` only
        (``contractType`` CURRENT_QUARTER | NEXT_QUARTER, ``deliveryDate``), takes orders, holds positions, lists
        userTrades and COMMISSION / REALIZED_PNL income like the perpetual, and pays no funding
        (:meth:`settle_funding` refuses it). :meth:`deliver` delivers it (tests/support/binance_sim_delivery.py)."""
        if contract_type not in ("CURRENT_QUARTER", "NEXT_QUARTER"):
            raise ValueError(f"contract_type {contract_type!r}: CURRENT_QUARTER or NEXT_QUARTER")
        perp = self.markets.get(f"{base}{quote}")
        spec = MarketSpec(base, quote, delivery_ms=int(delivery_ms), contract_type=contract_type,
                          **({} if perp is None else {k: getattr(perp, k) for k in (
                              "tick", "step", "min_qty", "min_notional", "perp_min_notional", "perp_tick",
                              "perp_step", "perp_min_qty")}))
        sid = spec.id
        self.markets[sid] = spec
        self.leverage[sid] = self.leverage.get(f"{base}{quote}", 20)
        self.margin_type[sid] = "CROSSED"
        self.predicted_rate[sid] = 0.0
        self.set_price(sid, price)
        return sid

    def _px(self, market: str, symbol_id: str) -> float:
        return self.perp_prices[symbol_id] if market == "fapi" else self.prices[symbol_id]

    def set_funding_rate(self, symbol_id: str, rate: float) -> None:
        """Predicted rate shown by premiumIndex (``lastFundingRate``)."""
        self.predicted_rate[symbol_id] = float(rate)

    def settle_funding(self, symbol_id: str, rate: float, *, ts_ms: int | None = None,
                       mark: float | None = None) -> list[float]:
        """Settle one funding interval: each position pays/receives -amt x mark x rate.

        Returns the payments (quote, + received) that were booked.
        """
        if self.markets[symbol_id].delivery:  # funding is exchanged on perpetual contracts only
            raise ValueError(f"{symbol_id} is a delivery contract: it settles no funding")
        ts = int(ts_ms if ts_ms is not None else self.now_ms())
        m = float(mark if mark is not None else self.marks[symbol_id])
        self.funding_history.append({"symbol": symbol_id, "fundingTime": ts,
                                     "fundingRate": _fmt(rate), "markPrice": _fmt(m)})
        paid = []
        for (sym, pside), (amt, _entry) in self.positions.items():
            if sym != symbol_id or amt == 0:
                continue
            amount = -amt * m * rate
            self.wallet += amount
            paid.append(amount)
            self._income_row(sym, "FUNDING_FEE", amount, ts)
        return paid

    def _income_row(self, symbol_id: str, kind: str, amount: float, ts: int, trade_id: int | str = "") -> None:
        """One ``/fapi/v1/income`` row (+ received / - paid, USDT); ``tranId`` unique per type."""
        self.income.append({"symbol": symbol_id, "incomeType": kind, "income": _fmt(amount), "asset": "USDT",
                            "info": kind, "time": int(ts), "tranId": self._tran_id, "tradeId": str(trade_id)})
        self._tran_id += 1

    def adl(self, symbol_id: str, qty: float, price: float, side: str = "BOTH") -> dict[str, Any]:
        """Auto-deleverage: the venue closes ``qty`` (base, > 0) of the position at ``price`` with
        an order that is not the user's (client id ``adl_autoclose``). Books a userTrade (no
        commission) and a REALIZED_PNL income row; returns the trade."""
        amt = self.position(symbol_id, side)
        if amt == 0 or qty <= 0 or qty > abs(amt) + 1e-12:
            raise ValueError(f"adl of {qty} on a position of {amt}")
        self._next_id += 1
        now = self.now_ms()
        o = _Order("fapi", symbol_id, self._next_id, "adl_autoclose", "BUY" if amt < 0 else "SELL", "MARKET",
                   float(qty), float(price), "IOC", True, side, now, now)
        realized = self._apply_position(o, qty, price)
        self.wallet += realized
        trade = {"market": "fapi", "symbol": symbol_id, "id": self._trade_id, "orderId": o.order_id,
                 "side": o.side, "price": _fmt(price), "qty": _fmt(qty), "quoteQty": _fmt(qty * price),
                 "commission": "0", "commissionAsset": "USDT", "time": now, "maker": False,
                 "realizedPnl": _fmt(realized), "positionSide": side}
        if realized:
            self._income_row(symbol_id, "REALIZED_PNL", realized, now, self._trade_id)
        self._trade_id += 1
        o.executed, o.cum_quote, o.status = qty, qty * price, "FILLED"
        self.adl_orders.append(o)
        self.trades.append(trade)
        return trade

    def insurance_clear(self, symbol_id: str, amount: float) -> None:
        """A liquidation clearance fee (INSURANCE_CLEAR, ``amount`` < 0 paid) taken from the wallet."""
        self.wallet += amount
        self._income_row(symbol_id, "INSURANCE_CLEAR", amount, self.now_ms())

    def add_kline(self, symbol_id: str, market: str, open_ms: int, o: float, h: float, lo: float,
                  c: float, v: float = 0.0, interval_ms: int = 3_600_000) -> None:
        """Publish one kline; ``market`` is ``spot``, ``fapi`` (perp trades) or ``mark``."""
        rows = self.klines.setdefault((market, symbol_id), [])
        rows[:] = [r for r in rows if r[0] != open_ms]
        rows.append([open_ms, _fmt(o), _fmt(h), _fmt(lo), _fmt(c), _fmt(v), open_ms + interval_ms - 1,
                     _fmt(v * c), 1, "0", "0", "0"])
        rows.sort(key=lambda r: r[0])

    def inject(self, pattern: str = ".*", *, count: int = 1, status: int = 400, code: int | None = None,
               msg: str = "", hang: float = 0.0, after: bool = False, raw: str | None = None) -> None:
        """Force the next ``count`` requests whose ``'METHOD /path'`` matches ``pattern`` (regex)."""
        self.faults.append(Fault(pattern, count, status, code, msg, hang, after, raw))

    def clear_faults(self) -> None:
        self.faults.clear()

    def partial_next(self, fraction: float) -> None:
        """The next new order fills only ``fraction`` of its quantity (limit: rests; market: EXPIRED)."""
        self._partial.append(float(fraction))

    def thin_next(self, n: int = 1) -> None:
        """The next ``n`` order placements answer like ``ACK`` (status NEW, nothing filled) although
        the order executed; only a later GET shows the truth."""
        self._thin += n

    def skew_clock(self, ms: int) -> None:
        """Move the server clock by ``ms`` (negative: the client looks ahead of the server)."""
        self.clock_offset_ms = int(ms)

    def deposit(self, currency: str, amount: float, *, futures: bool = False) -> None:
        if futures:
            self.wallet += amount
        else:
            self.spot.setdefault(currency, [0.0, 0.0])[0] += amount

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    def expire_countdowns(self, now_ms: int | None = None) -> list[int]:
        """Fire every cancel-all countdown whose deadline is at or before ``now_ms`` (default: the
        server clock): cancel the symbol's open futures orders, drop the timer. Returns the ids of
        the orders canceled."""
        now = int(self.now_ms() if now_ms is None else now_ms)
        out: list[int] = []
        for sid, deadline in sorted(self.countdowns.items()):
            if deadline > now:
                continue
            del self.countdowns[sid]
            ids = []
            for o in list(self._open.values()):
                if o.market == "fapi" and o.symbol == sid and o.status in ("NEW", "PARTIALLY_FILLED"):
                    o.status = "CANCELED"
                    o.update_time = now
                    self._open.pop((o.market, o.order_id), None)
                    ids.append(o.order_id)
            self.countdown_cancels.append((sid, now, ids))
            out.extend(ids)
        return out

    def stop_hangs(self) -> None:
        self._stop.set()

    def order_count(self, client_order_id: str) -> int:
        """How many orders carry this client id (the idempotency tests want exactly one)."""
        return sum(len(v) for (_m, c), v in self._by_cid.items() if c == client_order_id)

    def position(self, symbol_id: str, side: str = "BOTH") -> float:
        return self.positions.get((symbol_id, side), [0.0, 0.0])[0]

    # ------------------------------------------------------------------ HTTP plumbing
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ws/{stream}", self._ws)  # websocket streams first: the REST route catches all
        app.router.add_get("/market/ws/{stream}", self._ws)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        resp = await self._dispatch(request)
        code = None
        if resp.status >= 400 and isinstance(resp, web.Response) and resp.body is not None:
            try:
                code = json.loads(resp.body.decode()).get("code")  # type: ignore[union-attr]
            except (ValueError, AttributeError):
                code = None
        self.answers.append((f"{request.method} {request.path}", resp.status, code))
        return resp

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        raw_qs = request.query_string
        body = await request.text()
        params = dict(parse_qsl(raw_qs, keep_blank_values=True))
        params.update(dict(parse_qsl(body, keep_blank_values=True)))
        self.requests.append((request.method, path, params))
        self.last_headers = dict(request.headers)
        key = f"{request.method} {path}"
        if self.hook is not None:  # venue behaviours of tests/support/binance_faults.py
            hooked = await self.hook(request, key, params)
            if hooked is not None:
                return hooked
        self.expire_countdowns()  # the venue's timers run whether or not anyone asks
        fault = self._take_fault(key)
        try:
            if fault is not None and not fault.after:
                if fault.hang:
                    await self._hang(fault.hang)
                else:
                    return self._fault_response(fault)
            route = self._routes().get((request.method, path))
            if route is None:
                return self._error(404, -1100, f"simulator: no route {key}")
            fn, signed = route
            if signed:
                self._check_signature(request, raw_qs, body, params)
            result = fn(params)
            if fault is not None and fault.after:
                await self._hang(fault.hang)
                if not fault.hang:
                    return self._fault_response(fault)
            return web.json_response(result)
        except SimError as e:
            return self._error(e.status, e.code, e.msg)

    async def _hang(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    def _take_fault(self, key: str) -> Fault | None:
        for f in self.faults:
            if f.count > 0 and re.search(f.pattern, key):
                f.count -= 1
                if f.count == 0:
                    self.faults.remove(f)
                return f
        return None

    def _fault_response(self, f: Fault) -> web.Response:
        headers = {"Retry-After": "0"} if f.status in (418, 429) else {}
        if f.raw is not None:
            return web.Response(status=f.status, text=f.raw, headers=headers)
        code = f.code if f.code is not None else {429: -1003, 418: -1003}.get(f.status, -1000)
        msg = f.msg or {429: "Too many requests; current limit of IP is 2400 requests per minute.",
                        418: "Way too many requests; IP banned until 1700000000000."}.get(
                            f.status, "An unknown error occurred while processing the request.")
        return web.json_response({"code": code, "msg": msg}, status=f.status, headers=headers)

    @staticmethod
    def _error(status: int, code: int, msg: str) -> web.Response:
        return web.json_response({"code": code, "msg": msg}, status=status)

    def _check_signature(self, request: web.Request, raw_qs: str, body: str,
                         params: dict[str, str]) -> None:
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            raise SimError(401, -2014, "API-key format invalid.")
        if key != self.api_key:
            raise SimError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        total = raw_qs + body if not (raw_qs and body) else raw_qs + body  # Binance concatenates
        m = re.search(r"(?:^|&)signature=([0-9a-fA-F]+)", total)
        if m is None:
            raise SimError(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        payload = (total[: m.start()] + total[m.end():]).strip("&")
        want = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, m.group(1).lower()):
            raise SimError(400, -1022, "Signature for this request is not valid.")
        ts = int(params.get("timestamp", "0"))
        recv = int(params.get("recvWindow", "5000"))
        now = self.now_ms()
        if ts > now + 1000 or now - ts > recv:
            raise SimError(400, -1021, "Timestamp for this request is outside of the recvWindow.")

    def _routes(self) -> dict[tuple[str, str], tuple[Any, bool]]:
        return {
            ("GET", "/api/v3/time"): (lambda p: {"serverTime": self.now_ms()}, False),
            ("GET", "/fapi/v1/time"): (lambda p: {"serverTime": self.now_ms()}, False),
            ("GET", "/api/v3/ping"): (lambda p: {}, False),
            ("GET", "/api/v3/exchangeInfo"): (self._spot_info, False),
            ("GET", "/fapi/v1/exchangeInfo"): (self._fapi_info, False),
            ("GET", "/api/v3/ticker/24hr"): (lambda p: self._ticker(p, spot=True), False),
            ("GET", "/fapi/v1/ticker/24hr"): (lambda p: self._ticker(p, spot=False), False),
            ("GET", "/api/v3/ticker/bookTicker"): (lambda p: self._book(p, spot=True), False),
            ("GET", "/fapi/v1/ticker/bookTicker"): (lambda p: self._book(p, spot=False), False),
            ("GET", "/fapi/v1/premiumIndex"): (self._premium, False),
            ("GET", "/api/v3/depth"): (lambda p: self._depth(p, spot=True), False),
            ("GET", "/fapi/v1/depth"): (lambda p: self._depth(p, spot=False), False),
            ("GET", "/api/v3/klines"): (lambda p: self._klines(p, "spot"), False),
            ("GET", "/fapi/v1/klines"): (lambda p: self._klines(p, "fapi"), False),
            ("GET", "/fapi/v1/markPriceKlines"): (lambda p: self._klines(p, "mark"), False),
            ("GET", "/fapi/v1/fundingRate"): (self._funding_rates, False),
            ("GET", "/fapi/v1/fundingInfo"): (self._funding_info, False),
            ("POST", "/api/v3/order"): (lambda p: self._new_order(p, "spot"), True),
            ("POST", "/fapi/v1/order"): (lambda p: self._new_order(p, "fapi"), True),
            ("GET", "/api/v3/order"): (lambda p: self._get_order(p, "spot"), True),
            ("GET", "/fapi/v1/order"): (lambda p: self._get_order(p, "fapi"), True),
            ("DELETE", "/api/v3/order"): (lambda p: self._cancel(p, "spot"), True),
            ("DELETE", "/fapi/v1/order"): (lambda p: self._cancel(p, "fapi"), True),
            ("GET", "/api/v3/openOrders"): (lambda p: self._open_orders(p, "spot"), True),
            ("GET", "/fapi/v1/openOrders"): (lambda p: self._open_orders(p, "fapi"), True),
            ("GET", "/api/v3/myTrades"): (lambda p: self._my_trades(p, "spot"), True),
            ("GET", "/fapi/v1/userTrades"): (lambda p: self._my_trades(p, "fapi"), True),
            ("GET", "/api/v3/account"): (self._spot_account, True),
            ("GET", "/fapi/v3/account"): (self._fapi_account, True),
            ("GET", "/fapi/v3/positionRisk"): (self._position_risk, True),
            ("GET", "/fapi/v1/leverageBracket"): (self._brackets, True),
            ("POST", "/fapi/v1/leverage"): (self._set_leverage, True),
            ("POST", "/fapi/v1/marginType"): (self._set_margin_type, True),
            ("POST", "/fapi/v1/positionSide/dual"): (self._set_dual, True),
            ("GET", "/fapi/v1/positionSide/dual"): (lambda p: {"dualSidePosition": self.dual_side}, True),
            ("GET", "/fapi/v1/income"): (self._income, True),
            ("GET", "/futures/data/delivery-price"): (self._delivery_price, False),
            ("POST", "/fapi/v1/countdownCancelAll"): (self._countdown, True),
        }

    # ------------------------------------------------------------------ orders
    def _market(self, sid: str) -> MarketSpec:
        return self.markets[sid]

    def _check_filters(self, m: MarketSpec, qty: float, price: float, fut: bool) -> None:
        step, tick = float(m.step), float(m.tick)
        if qty < float(m.min_qty) - 1e-12 or abs(qty / step - round(qty / step)) > 1e-6:
            raise SimError(400, -1013, "Filter failure: LOT_SIZE")
        if abs(price / tick - round(price / tick)) > 1e-6:
            raise SimError(400, -1013, "Filter failure: PRICE_FILTER")
        min_notional = float(m.perp_min_notional if fut else m.min_notional)
        if qty * price < min_notional - 1e-9:
            if fut:
                raise SimError(400, -4164, f"Order's notional must be no smaller than {min_notional}"
                               " (unless you choose reduce only).")
            raise SimError(400, -1013, "Filter failure: NOTIONAL")

    def _new_order(self, p: dict[str, str], market: str) -> dict[str, Any]:
        sid = self._sym(p, market == "spot")
        self._check_not_delivered(sid)
        m = self._market(sid)
        fut = market == "fapi"
        side, otype = p.get("side", ""), p.get("type", "")
        if side not in ("BUY", "SELL"):
            raise SimError(400, -1102, "Mandatory parameter 'side' was not sent, was empty/null, or malformed.")
        if otype not in ("MARKET", "LIMIT"):
            raise SimError(400, -1116, "Invalid orderType.")
        qty = float(p.get("quantity", "0"))
        price = float(p["price"]) if otype == "LIMIT" else self._px(market, sid)
        client_id = p.get("newClientOrderId") or f"sim-{self._next_id}"
        for o in self._by_cid.get((market, client_id), []):
            if fut:  # futures: a client id is never reused
                raise SimError(400, -4116, "ClientOrderId is duplicated.")
            if o.status in ("NEW", "PARTIALLY_FILLED"):  # spot: only while the first one works
                raise SimError(400, -2010, "Duplicate order sent.")
        reduce_only = p.get("reduceOnly", "false").lower() == "true"
        pside = p.get("positionSide", "BOTH")
        if fut:
            if self.dual_side and pside == "BOTH":
                raise SimError(400, -4061, "Order's position side does not match user's setting.")
            if not self.dual_side and pside != "BOTH":
                raise SimError(400, -4061, "Order's position side does not match user's setting.")
            if reduce_only and self.dual_side:
                raise SimError(400, -1106, "Parameter 'reduceonly' sent when not required.")
        if not (fut and reduce_only):
            self._check_filters(m, qty, price, fut)
        now = self.now_ms()
        self._next_id += 1
        o = _Order(market, sid, self._next_id, client_id, side, otype, qty, price,
                   p.get("timeInForce", "GTC"), reduce_only, pside, now, now)
        fill_qty, fill_px, crosses = 0.0, self._px(market, sid), True
        if otype == "LIMIT":
            crosses = price >= fill_px if side == "BUY" else price <= fill_px
        fraction = self._partial.pop(0) if self._partial else 1.0
        if crosses:
            fill_qty = math.floor(qty * fraction / float(m.step) + 1e-9) * float(m.step)
        # pre-trade checks
        if fut:
            self._check_reduce_only(o)
            if reduce_only and fill_qty > abs(self.position(sid)):
                # a reduce-only order never increases or flips the position: what exceeds it does not
                # execute (USD-M "New Order": reduceOnly; Binance FAQ "What Is a Reduce-Only Order"),
                # e.g. after the venue deleveraged part of it (ADL) while the close was on its way
                fill_qty = abs(self.position(sid))
            self._check_margin(o, fill_qty, fill_px, qty - fill_qty)
        else:
            self._check_spot_funds(o, fill_qty, fill_px)
        self.orders[(market, o.order_id)] = o
        self._by_cid.setdefault((market, client_id), []).append(o)
        self._open[(market, o.order_id)] = o
        if not fut and otype == "LIMIT":
            self._lock_spot(o, qty)
        if fill_qty > 0:
            self._fill(o, fill_qty, fill_px, maker=False)
        if otype == "MARKET" and o.status != "FILLED":
            o.status = "EXPIRED"
        if o.status not in ("NEW", "PARTIALLY_FILLED"):
            self._open.pop((market, o.order_id), None)
        if self._thin > 0:
            self._thin -= 1
            return self._order_json(o, ack=True)
        return self._order_json(o, full=not fut)

    def _check_reduce_only(self, o: _Order) -> None:
        if not o.reduce_only:
            return
        amt = self.position(o.symbol)
        sign = 1 if o.side == "BUY" else -1
        if amt == 0 or sign * amt > 0:
            raise SimError(400, -2022, "ReduceOnly Order is rejected.")

    def _unrealized(self) -> float:
        return sum(amt * (self.marks[sym] - entry) for (sym, _s2), (amt, entry) in self.positions.items())

    def _initial_margin(self) -> float:
        im = sum(abs(amt) * self.marks[sym] / self.leverage[sym]
                 for (sym, _s2), (amt, _e) in self.positions.items())
        for o in self._open.values():
            if o.market == "fapi" and o.status in ("NEW", "PARTIALLY_FILLED") and not o.reduce_only:
                im += (o.qty - o.executed) * o.price / self.leverage[o.symbol]
        return im

    def _available(self) -> float:
        return self.wallet + min(self._unrealized(), 0.0) - self._initial_margin()

    def _check_margin(self, o: _Order, fill_qty: float, fill_px: float, resting: float) -> None:
        if o.reduce_only:
            return
        lev = self.leverage[o.symbol]
        amt = self.position(o.symbol, o.position_side)
        sign = 1 if o.side == "BUY" else -1
        opening = fill_qty if o.position_side != "BOTH" and self._opens(o) else (
            max(0.0, fill_qty - abs(amt)) if sign * amt < 0 else fill_qty)
        if o.position_side != "BOTH" and not self._opens(o):
            opening = 0.0
        need = opening * fill_px / lev + resting * o.price / lev + fill_qty * fill_px * self.fut_taker
        if need > self._available() + 1e-9:
            raise SimError(400, -2019, "Margin is insufficient.")

    @staticmethod
    def _opens(o: _Order) -> bool:
        return (o.position_side == "LONG") == (o.side == "BUY")

    def _check_spot_funds(self, o: _Order, fill_qty: float, fill_px: float) -> None:
        m = self._market(o.symbol)
        if o.side == "BUY":
            need = (o.qty * o.price if o.type == "LIMIT" else fill_qty * fill_px) * (1 + self._quote_fee)
            have = self.spot.get(m.quote, [0.0, 0.0])[0]
        else:
            need = o.qty
            have = self.spot.get(m.base, [0.0, 0.0])[0]
        if need > have + 1e-9:
            raise SimError(400, -2010, "Account has insufficient balance for requested action.")

    def _lock_spot(self, o: _Order, qty: float, sign: int = 1) -> None:
        m = self._market(o.symbol)
        cur, amount = (m.quote, qty * o.price * (1 + self._quote_fee)) if o.side == "BUY" else (m.base, qty)
        b = self.spot.setdefault(cur, [0.0, 0.0])
        b[0] -= sign * amount
        b[1] += sign * amount

    def _fill(self, o: _Order, qty: float, price: float, *, maker: bool) -> None:
        if qty <= 1e-12:
            return
        m = self._market(o.symbol)
        notional = qty * price
        now = self.now_ms()
        if o.market == "spot":
            fee, fee_asset = notional * self.spot_fee, m.quote
            if o.type == "LIMIT":
                self._lock_spot(o, qty, sign=-1)  # release the lock for the filled part
            quote = self.spot.setdefault(m.quote, [0.0, 0.0])
            base = self.spot.setdefault(m.base, [0.0, 0.0])
            if o.side == "BUY":
                if self.spot_fee_in_received:
                    fee, fee_asset = qty * self.spot_fee, m.base
                    quote[0] -= notional
                    base[0] += qty - fee
                else:
                    quote[0] -= notional + fee
                    base[0] += qty
            else:
                base[0] -= qty
                quote[0] += notional - fee
            realized = 0.0
        else:
            fee, fee_asset = notional * (self.fut_maker if maker else self.fut_taker), m.quote
            realized = self._apply_position(o, qty, price)
            self.wallet += realized - fee
            self._income_row(o.symbol, "COMMISSION", -fee, now, self._trade_id)
            if realized:
                self._income_row(o.symbol, "REALIZED_PNL", realized, now, self._trade_id)
        o.executed += qty
        o.cum_quote += notional
        o.update_time = now
        o.status = "FILLED" if o.executed >= o.qty - 1e-12 else "PARTIALLY_FILLED"
        if o.status == "FILLED":
            self._open.pop((o.market, o.order_id), None)
        trade = {"market": o.market, "symbol": o.symbol, "id": self._trade_id, "orderId": o.order_id,
                 "side": o.side, "price": _fmt(price), "qty": _fmt(qty), "quoteQty": _fmt(notional),
                 "commission": _fmt(fee), "commissionAsset": fee_asset, "time": now, "maker": maker,
                 "realizedPnl": _fmt(realized), "positionSide": o.position_side}
        self._trade_id += 1
        self.trades.append(trade)
        o.fills.append(trade)

    def _apply_position(self, o: _Order, qty: float, price: float) -> float:
        key = (o.symbol, o.position_side)
        amt, entry = self.positions.get(key, [0.0, 0.0])
        signed = qty if o.side == "BUY" else -qty
        realized = 0.0
        if amt == 0 or (amt > 0) == (signed > 0):
            new = amt + signed
            entry = (abs(amt) * entry + qty * price) / abs(new)
            amt = new
        else:
            closed = min(qty, abs(amt))
            realized = closed * (price - entry) * (1 if amt > 0 else -1)
            amt += signed
            if abs(amt) < 1e-12:
                amt, entry = 0.0, 0.0
            elif (amt > 0) == (signed > 0):  # flipped through zero
                entry = price
        self.positions[key] = [round(amt, 12), entry]
        return realized


class SimServer:
    """Runs a :class:`BinanceSim` over HTTPS on 127.0.0.1 (ephemeral port).

    Use as ``async with SimServer(sim, ca) as srv:``; ``srv.port`` is the bound port and
    ``srv.client_ssl`` an SSL context trusting the test CA (for the redirect session).
    """

    def __init__(self, sim: BinanceSim, ca: Any, hosts: tuple[str, ...] = HOSTS) -> None:
        self.sim, self.ca, self.hosts = sim, ca, hosts
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> "SimServer":
        cert = self.ca.issue_cert(*self.hosts, "127.0.0.1")
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(server_ctx)
        self._runner = web.AppRunner(self.sim.app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=server_ctx)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    @property
    def client_ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx

    async def __aexit__(self, *exc: object) -> None:
        self.sim.stop_hangs()
        if self._runner is not None:
            await self._runner.cleanup()
