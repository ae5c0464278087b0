"""Live trading through async ccxt: :class:`CcxtLiveAdapter` implements
:class:`hedge_core.exchange.base.ExchangeAdapter` for one venue, spot and USDT-margined
perpetuals through the same object (``BTC/USDT`` spot, ``BTC/USDT:USDT`` perp).

Guarantees
----------
- Vendor errors are translated once (:mod:`hedge_core.exchange.errors_map`); only temporary
  ones are retried, with :func:`~hedge_core.exchange.base.with_retry` (bounded backoff + jitter).
- Orders carry the caller's deterministic client order id and are sent ONCE. When
  ``create_order`` ends in a timeout, dropped connection, 5xx or -1007 the outcome is unknown:
  the adapter raises ``OrderOutcomeUnknown`` (after one look-up by client id) and never re-sends;
  the engine resolves it (docs/live-outcome-governor.md).
- Every request passes the account's rate-limit governor (:mod:`hedge_core.exchange.governor`).
- A ``set_*`` call that changes nothing is a success.
- Thin create-order answers (no status / market order not final yet) are completed by polling
  ``fetch_order`` until the order is final or ``fill_poll_timeout`` seconds have passed.
- Clock skew: ``adjustForTimeDifference`` syncs the clock when markets load; a -1021
  (``InvalidNonce``) answer resyncs the clock and retries the call once.
- ccxt's rate limiter stays on; ``enable_rate_limit=False`` exists for the latency benchmark.
- Keys never appear in ``repr`` or logs: ccxt logs through a redacting logger.

Money is float64 (ccxt answers in floats). Quantities are base units; for venues whose perp
amounts are contracts (OKX), the adapter converts with the market's contract size.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import ccxt
import ccxt.async_support as ccxt_async
import pandas as pd

from hedge_core import errors as he
from hedge_core.exchange.base import RetryPolicy, with_retry
from hedge_core.exchange.ccxt import pages
from hedge_core.exchange.ccxt.account import AccountSettingsMixin
from hedge_core.exchange.ccxt.funding import FundingMixin
from hedge_core.exchange.ccxt.delivery import DeliveryMixin
from hedge_core.exchange.ccxt.parse import _f, _ms, _RedactingLogger, _ts, ticker_time
from hedge_core.exchange.credentials import Credentials
from hedge_core.exchange.delivery_ids import DELIVERY_CID_PREFIX
from hedge_core.exchange.errors_map import translate, vendor_status
from hedge_core.exchange.governor import RateGovernor, governor_for
from hedge_core.exchange.outcome import outcome_window_s, unknown_outcome
from hedge_core.exchange.ccxt.venues import VENUES, VenueConfig, own_client_id, venue_client_id
from hedge_core.types import (
    Balance,
    Bar,
    Fill,
    Instrument,
    Liquidity,
    MarginMode,
    MarketKind,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    PositionSide,
    Side,
    Ticker,
    TradingMode,
    is_perp_symbol,
)

T = TypeVar("T")
log = logging.getLogger(__name__)


_STATUS = {"open": OrderStatus.OPEN, "closed": OrderStatus.CLOSED, "canceled": OrderStatus.CANCELED,
           "cancelled": OrderStatus.CANCELED, "expired": OrderStatus.EXPIRED,
           "rejected": OrderStatus.REJECTED}


def _bound_order_requests(ex: Any, header: str) -> None:
    """Make ``ex`` (ccxt okx) send ``header`` = the request's OK-ACCESS-TIMESTAMP + ``options["recvWindow"]``
    (ms) with every order request (``POST trade/order`` / ``trade/batch-orders``): the venue does not process
    it after then ("Transaction Timeouts"), so an order whose answer was lost executes within the adapter's
    outcome window or never. The header is not part of OKX's signature (timestamp + method + path + body)."""
    sign = ex.sign

    def sign_bounded(path: str, api: Any = "public", method: str = "GET", params: Any = None) -> dict[str, Any]:
        out = sign(path, api, method, {} if params is None else params)
        name = api[0] if isinstance(api, (list, tuple)) else api
        if name == "private" and method == "POST" and path in ("trade/order", "trade/batch-orders"):
            hdrs = dict(out.get("headers") or {})
            ts = ex.parse8601(hdrs.get("OK-ACCESS-TIMESTAMP"))
            if ts is not None:
                hdrs[header] = str(int(ts) + int(outcome_window_s(ex.options.get("recvWindow"), 0.0) * 1000))
                out["headers"] = hdrs
        return out

    ex.sign = sign_bounded


class CcxtLiveAdapter(AccountSettingsMixin, FundingMixin, DeliveryMixin):
    """Async ccxt adapter for one venue (spot + USDT-margined perps).

    Parameters
    ----------
    venue:
        ``"binance"`` (tested end to end against the local simulator), ``"bybit"`` or ``"okx"``
        (their calls tested against local simulators: tests/test_live_bybit.py, tests/test_live_okx.py).
    credentials:
        From :func:`hedge_core.exchange.credentials.load_credentials`; None for public data only.
    session:
        An ``aiohttp.ClientSession`` for ccxt to use (tests pass one that redirects to the
        simulator); the caller owns and closes it.
    enable_rate_limit:
        ccxt's client-side rate limiter; keep True in production (False only for benchmarks).
    timeout_ms:
        Per-request timeout, milliseconds.
    retry:
        Backoff policy for temporary errors.
    fill_poll_timeout, fill_poll_interval:
        Seconds to keep polling a thin create-order answer, and the poll interval.
    sandbox:
        Use the venue's testnet URLs (ccxt ``set_sandbox_mode``).
    ccxt_options:
        Extra ccxt ``options`` merged over the venue defaults.
    sleep:
        Injected sleep (tests may pass a fast one).
    logger:
        Logger for ccxt's and the adapter's messages (secrets are scrubbed before it sees them).
    spot_precheck:
        Look a spot order's client id up before sending it (one extra request) so that a reused
        id raises DuplicateOrder instead of creating a second order; perps need no lookup
        (Binance futures reject a reused id with -4116).
    """

    mode = TradingMode.LIVE

    def __init__(self, venue: str = "binance", credentials: Credentials | None = None, *,
                 session: Any = None, enable_rate_limit: bool = True, timeout_ms: int = 10_000,
                 retry: RetryPolicy = RetryPolicy(), fill_poll_timeout: float = 5.0,
                 fill_poll_interval: float = 0.2, sandbox: bool = False,
                 ccxt_options: dict[str, Any] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 logger: logging.Logger | None = None, spot_precheck: bool = True,
                 governor: RateGovernor | None = None, outcome_margin_s: float = 2.0,
                 clock: Callable[[], float] = time.time) -> None:
        if venue not in VENUES:
            raise he.InvalidInput("venue", venue, f"one of {sorted(VENUES)}")
        if timeout_ms <= 0:
            raise he.InvalidInput("timeout_ms", timeout_ms, "> 0 milliseconds")
        if fill_poll_timeout < 0 or fill_poll_interval <= 0:
            raise he.InvalidInput("fill_poll_timeout/fill_poll_interval",
                                  (fill_poll_timeout, fill_poll_interval), ">= 0 and > 0 seconds")
        self.venue = venue
        self.config = VENUES[venue]
        self.retry = retry
        self.fill_poll_timeout = fill_poll_timeout
        self.fill_poll_interval = fill_poll_interval
        self.rate_limited = enable_rate_limit
        self.spot_precheck = spot_precheck
        self._sleep = sleep
        self.credentials = credentials  # redacting repr; the runner registers .secrets with its log scrubber
        self._secrets = credentials.secrets if credentials else ()
        self._log = _RedactingLogger(logger or log, self._secrets)
        options = {**self.config.options, **(ccxt_options or {})}
        cfg: dict[str, Any] = {"enableRateLimit": enable_rate_limit, "timeout": int(timeout_ms),
                               "enableLastJsonResponse": True,  # the answer's server time (ticker_time)
                               "options": options, "logger": self._log}
        if session is not None:
            cfg["session"] = session
        if credentials is not None:
            if credentials.venue != venue:
                raise he.InvalidInput("credentials.venue", credentials.venue, f"{venue!r}")
            cfg.update(credentials.ccxt_config())
        self._ex = getattr(ccxt_async, self.config.ccxt_id)(cfg)
        # currencies come from markets; the venues' currency endpoints are private or heavy
        self._ex.has = {**self._ex.has, "fetchCurrencies": False}
        if sandbox:
            self._ex.set_sandbox_mode(True)
        if self.config.order_deadline_header:
            _bound_order_requests(self._ex, self.config.order_deadline_header)
        self._instruments: dict[str, Instrument] = {}
        self._cid_by_order: dict[str, str] = {}
        self._margin_mode_cache: str | None = None  # account margin mode (venues with account_margin_mode)
        self._order_margin_mode: dict[str, str] = {}  # perp -> 'cross'|'isolated' (venues with margin_mode_per_order)
        self.retries = 0  # temporary errors retried so far (observability)
        # one governor per venue account, shared process-wide (never keyed by the key itself)
        self.governor = governor or governor_for(venue, credentials.api_key if credentials else None)
        if not (outcome_margin_s >= 0 and math.isfinite(outcome_margin_s)):
            raise he.InvalidInput("outcome_margin_s", outcome_margin_s, "seconds >= 0")
        self.outcome_margin_s = float(outcome_margin_s)
        self._clock = clock

    def __repr__(self) -> str:
        return (f"CcxtLiveAdapter(venue={self.venue!r}, keys={'set' if self._secrets else 'none'}, "
                f"rate_limit={self.rate_limited})")

    __str__ = __repr__

    @property
    def exchange(self) -> Any:
        """The underlying ccxt exchange (escape hatch; its errors are NOT translated)."""
        return self._ex

    # ------------------------------------------------------------------ call plumbing
    async def _once(self, method: str, call: Callable[[], Awaitable[T]]) -> T:
        """One vendor call, translated; a clock-skew answer resyncs and retries once.

        The account's rate-limit governor is asked first (it refuses, with a typed error and
        without contacting the venue, during a back-off or a ban) and told every answer after.
        """
        self.governor.before(method)
        try:
            try:
                result = await call()
            except ccxt.InvalidNonce:
                self._log.warning("%s.%s: clock skew (-1021); resyncing time and retrying once",
                                  self.venue, method)
                await self._ex.load_time_difference()
                result = await call()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # translated once, here
            raise self._translate(exc, method) from exc
        self.governor.after_answer(getattr(self._ex, "last_response_headers", None))
        return result

    def _translate(self, exc: BaseException, method: str) -> he.ExchangeError:
        err = translate(exc, venue=self.venue, method=method, redact=self._secrets)
        if isinstance(exc, (ccxt.DDoSProtection, ccxt.RateLimitExceeded)) or isinstance(err, he.RateLimited):
            status, code = vendor_status(exc)
            wait = self.governor.after_error(status, code, str(exc),
                                             getattr(self._ex, "last_response_headers", None))
            if wait is not None:
                if self.governor.banned:
                    err = he.VenueBanned(str(err), venue=self.venue, method=method, retry_after=wait,
                                         until=self.governor.ban_end)
                elif isinstance(err, he.RateLimited):
                    err.retry_after = wait
                else:
                    err = he.RateLimited(str(err), venue=self.venue, method=method, retry_after=wait)
        return err

    async def _call(self, method: str, call: Callable[[], Awaitable[T]]) -> T:
        """:meth:`_once` with bounded retries of temporary errors."""
        return await with_retry(lambda: self._once(method, call), self.retry, sleep=self._sleep,
                                on_retry=self._on_retry(method))

    def _on_retry(self, method: str) -> Callable[[int, he.TemporaryError], None]:
        def note(attempt: int, exc: he.TemporaryError) -> None:
            self.retries += 1
            self._log.warning("%s.%s: temporary error, retry %d: %s", self.venue, method, attempt,
                              type(exc).__name__)
        return note

    async def _ensure_markets(self) -> None:
        if not self._instruments:
            await self.load_markets()

    def _instrument(self, symbol: str) -> Instrument:
        inst = self._instruments.get(symbol)
        if inst is None:
            raise he.InvalidInput("symbol", symbol,
                                  f"a listed {self.venue} market, e.g. 'BTC/USDT' or 'BTC/USDT:USDT'")
        return inst

    def _perp(self, symbol: str) -> Instrument:
        inst = self._instrument(symbol)
        if inst.kind is not MarketKind.PERP:
            raise he.InvalidInput("symbol", symbol, "a perp symbol such as 'BTC/USDT:USDT'")
        return inst

    def _vcid(self, cid: str) -> str:
        """Our client id in the venue's alphabet (OKX: alphanumerics only)."""
        return venue_client_id(cid, self.config.client_id_style)

    def _cs(self, symbol: str) -> float:
        inst = self._instruments.get(symbol)
        return inst.contract_size if inst else 1.0

    def _market_params(self, symbol: str | None) -> dict[str, Any]:
        return dict(self.config.perp_params) if symbol and is_perp_symbol(symbol) else {}

    def _mode_params(self, symbol: str) -> dict[str, Any]:
        """Params of an order or a leverage change: the perp's margin mode on venues where it is per order
        (OKX ``tdMode``/``mgnMode``, ccxt param ``marginMode``; cross until set_margin_mode says otherwise)."""
        if self.config.margin_mode_per_order and is_perp_symbol(symbol):
            return {"marginMode": self._order_margin_mode.get(symbol, "cross")}
        return {}

    def _is_no_change(self, exc: BaseException) -> bool:
        if isinstance(exc, ccxt.NoChange):
            return True
        text = str(exc)
        return isinstance(exc, ccxt.ExchangeError) and any(m in text for m in self.config.no_change_markers)

    # ------------------------------------------------------------------ market data
    async def load_markets(self) -> dict[str, Instrument]:
        """Spot and USDT-margined perp instruments with tick, lot, minimum qty and notional."""
        markets = await self._call("load_markets", lambda: self._ex.load_markets(reload=True))
        out: dict[str, Instrument] = {}
        for sym, m in markets.items():
            if m.get("spot"):
                kind = MarketKind.SPOT
            elif m.get("linear") and (m.get("swap") or (m.get("future") and self.config.dated_futures)):
                kind = MarketKind.PERP  # a dated future is a derivative leg too (no funding; expiry in the symbol)
            else:
                continue
            prec, lim = m.get("precision") or {}, m.get("limits") or {}
            cs = _f(m.get("contractSize"), 1.0) if kind is MarketKind.PERP else 1.0
            lot = _f(prec.get("amount"), 0.0) * cs
            tick = _f(prec.get("price"), 0.0)
            if lot <= 0 or tick <= 0:
                continue  # venue did not publish increments; not tradable through this adapter
            out[sym] = Instrument(
                symbol=sym, venue=self.venue, kind=kind, base=m["base"], quote=m["quote"],
                tick_size=tick, lot_size=lot,
                min_qty=_f((lim.get("amount") or {}).get("min"), lot / cs) * cs,
                min_notional=_f((lim.get("cost") or {}).get("min"), 0.0), contract_size=cs,
                max_leverage=_f((lim.get("leverage") or {}).get("max"), 125.0))
        self._instruments = out
        return dict(out)

    async def fetch_ticker(self, symbol: str) -> Ticker:
        await self._ensure_markets()
        self._readable(symbol)  # a Bybit future in delivery: read by its venue id
        async def ticker_and_envelope() -> tuple[dict[str, Any], Any]:
            got = await self._ex.fetch_ticker(symbol)
            return got, self._ex.last_json_response  # read before any other task can run: no await between

        t, envelope = await self._call("fetch_ticker", ticker_and_envelope)
        bid, ask = t.get("bid"), t.get("ask")
        if bid is None or ask is None:  # Binance futures 24hr ticker has no book
            books = await self._call("fetch_ticker", lambda: self._ex.fetch_bids_asks([symbol]))
            book = books.get(symbol, {})
            bid, ask = book.get("bid"), book.get("ask")
        last = _f(t.get("last") or t.get("close"))
        return Ticker(symbol=symbol, ts=ticker_time(t, envelope), bid=_f(bid, last), ask=_f(ask, last),
                      last=last, mark=t.get("markPrice"))

    async def fetch_bars(self, symbol: str, kind: MarketKind, timeframe: str = "1h",
                         since: pd.Timestamp | None = None, limit: int | None = None) -> list[Bar]:
        """OHLCV bars labelled by open time (public endpoint; not part of the adapter protocol).

        ``kind`` SPOT or PERP reads trade bars of ``symbol``; MARK reads the perp's mark-price bars
        (volume 0). The venue's newest bar may still be forming: callers keep only closed bars.
        """
        await self._ensure_markets()
        inst = self._instrument(symbol)
        kind = MarketKind(kind)
        want = MarketKind.SPOT if kind is MarketKind.SPOT else MarketKind.PERP
        if inst.kind is not want:
            raise he.InvalidInput("symbol", symbol, f"a {want.value} symbol for kind={kind.value}")
        since_ms = _ms(since)
        fetch = self._ex.fetch_mark_ohlcv if kind is MarketKind.MARK else self._ex.fetch_ohlcv
        rows = await self._call("fetch_bars", lambda: fetch(symbol, timeframe, since_ms, limit))
        return [Bar(ts=_ts(r[0]), venue=self.venue, symbol=symbol, kind=kind, open=_f(r[1]), high=_f(r[2]),
                    low=_f(r[3]), close=_f(r[4]), volume=0.0 if kind is MarketKind.MARK else _f(r[5]),
                    timeframe=timeframe) for r in rows]

    async def fetch_order_book(self, symbol: str, limit: int | None = None, *,
                               amount: float | None = None) -> dict[str, list[list[float]]]:
        """The venue's order book of ``symbol`` (public endpoint):
        ``{"bids": [[price, amount], ...] best first, "asks": [...]}``, prices in quote per base and
        amounts in BASE units (the venue's contracts x the instrument's contract size). ``amount`` is
        not used: the venue's book is what it is (see the protocol, ``exchange.base``)."""
        await self._ensure_markets()
        cs = self._instrument(symbol).contract_size
        got = await self._call("fetch_order_book", lambda: self._ex.fetch_order_book(symbol, limit))
        return {side: [[_f(lv[0]), _f(lv[1]) * cs] for lv in got.get(side) or []] for side in ("bids", "asks")}

    async def fetch_balance(self, account: str = "spot") -> dict[str, Balance]:
        """Balances of one wallet (``"spot"`` or ``"perp"``); zero balances omitted.

        Spot: ``free`` and ``used`` (locked by open orders) per currency.
        Perp on Binance (the same definition as the paper exchange): ``total`` = wallet balance
        (realised: deposits, PnL, fees, funding; unrealised PnL excluded), ``free`` = available
        margin capped to ``[0, wallet]``, ``used`` = the rest. Other venues: ccxt's free/used.
        """
        if account not in self.config.balance_params:
            raise he.InvalidInput("account", account, f"one of {sorted(self.config.balance_params)}")
        params = dict(self.config.balance_params[account])
        b = await self._call("fetch_balance", lambda: self._ex.fetch_balance(params))
        out = {}
        assets = (b.get("info") or {}).get("assets") if isinstance(b.get("info"), dict) else None
        if self.venue == "binance" and account == "perp" and isinstance(assets, list):
            for a in assets:
                wallet = _f(a.get("walletBalance"))
                free = min(max(_f(a.get("availableBalance")), 0.0), max(wallet, 0.0))
                if wallet != 0 or free != 0:
                    cur = self._ex.safe_currency_code(a.get("asset"))
                    out[cur] = Balance(currency=cur, free=free, used=wallet - free)
            return out
        for cur, free in (b.get("free") or {}).items():
            used = (b.get("used") or {}).get(cur)
            bal = Balance(currency=cur, free=_f(free), used=_f(used))
            if abs(bal.free) > 0 or abs(bal.used) > 0:
                out[cur] = bal
        return out

    async def fetch_positions(self, symbols: list[str] | None = None) -> list[Position]:
        """Open perp positions; flat ones omitted. ``qty`` is signed base (+ long / - short)."""
        await self._ensure_markets()
        for s in symbols or []:
            self._readable(s)  # a Bybit future in delivery: its position read by its venue id
        params = dict(self.config.positions_params)
        raw = await self._call("fetch_positions", lambda: self._ex.fetch_positions(symbols, dict(params)))
        account_mode = None
        if self.config.account_margin_mode and any(_f(p.get("contracts")) != 0 for p in raw):
            account_mode = await self._account_margin_mode()
        out = []
        for p in raw:
            contracts = _f(p.get("contracts"))
            if contracts == 0:
                continue
            sym = p["symbol"]
            sign = -1.0 if p.get("side") == "short" else 1.0
            lev = p.get("leverage")
            if lev is None and _f(p.get("initialMarginPercentage")) > 0:
                lev = round(1.0 / _f(p["initialMarginPercentage"]))
            mode = MarginMode.ISOLATED if (p.get("marginMode") or account_mode) == "isolated" else MarginMode.CROSS
            pside = PositionSide.BOTH
            if p.get("hedged"):
                pside = PositionSide.SHORT if sign < 0 else PositionSide.LONG
            out.append(Position(
                symbol=sym, qty=sign * contracts * _f(p.get("contractSize"), self._cs(sym)),
                entry_price=_f(p.get("entryPrice")), leverage=_f(lev, 1.0), margin_mode=mode,
                position_side=pside, unrealized_pnl=_f(p.get("unrealizedPnl")),
                liquidation_price=p.get("liquidationPrice"),
                margin=_f(p.get("collateral")) if mode is MarginMode.ISOLATED else 0.0,
                mark_price=p.get("markPrice")))
        return out

    # ------------------------------------------------------------------ orders
    def _to_order(self, o: dict[str, Any], request: OrderRequest | None = None) -> Order:
        sym = o.get("symbol") or (request.symbol if request else "")
        cs = self._cs(sym)
        otype = OrderType(o.get("type") or (request.type if request else "market"))
        amount = o.get("amount")
        qty = _f(amount) * cs if amount is not None else (request.qty if request else 0.0)
        fee = o.get("fee") or {}
        cid = (own_client_id(o.get("clientOrderId") or "", self.config.client_id_style)
               or (request.client_order_id if request else ""))
        oid = str(o.get("id"))
        if cid:
            self._cid_by_order[oid] = cid
        status = o.get("status")
        info = o.get("info") or {}
        reduce_only = o.get("reduceOnly")
        if reduce_only is None:
            reduce_only = request.reduce_only if request else False
        return Order(
            id=oid, client_order_id=cid, symbol=sym,
            side=Side(o.get("side") or (request.side if request else "buy")), type=otype, qty=qty,
            price=_f(o.get("price")) if otype is OrderType.LIMIT and o.get("price") else None,
            filled=_f(o.get("filled")) * cs, avg_price=o.get("average") or None,
            status=_STATUS.get(status or "open", OrderStatus.OPEN),
            ts=_ts(o.get("lastUpdateTimestamp") or o.get("timestamp") or info.get("updateTime")),
            reduce_only=bool(reduce_only), fee=_f(fee.get("cost")),
            fee_currency=fee.get("currency") or "USDT")

    def _order_params(self, req: OrderRequest) -> dict[str, Any]:
        params: dict[str, Any] = {self.config.client_id_param: self._vcid(req.client_order_id),
                                  **self._market_params(req.symbol), **self._mode_params(req.symbol)}
        if req.reduce_only:
            params["reduceOnly"] = True
        if req.position_side is not PositionSide.BOTH:
            if not self.config.hedge_mode_orders:
                raise he.InvalidInput("position_side", req.position_side.value,
                                      f"'both' on {self.venue} (hedge-mode orders are not supported by this adapter)")
            params["positionSide"] = req.position_side.value.upper()
        return params

    def _validate(self, req: OrderRequest) -> Instrument:
        inst = self._instrument(req.symbol)
        if not (req.qty > 0 and math.isfinite(req.qty)):
            raise he.InvalidInput("qty", req.qty, "a finite quantity > 0 (base units)")
        if not req.client_order_id or len(req.client_order_id) > 36:
            raise he.InvalidInput("client_order_id", req.client_order_id,
                                  "1-36 characters (use hedge_core.types.client_order_id())")
        if req.type is OrderType.LIMIT and not (req.price and req.price > 0):
            raise he.InvalidInput("price", req.price, "a limit price > 0 for limit orders")
        if req.type is OrderType.MARKET and req.price is not None:
            raise he.InvalidInput("price", req.price, "None for market orders")
        if req.reduce_only and inst.kind is MarketKind.SPOT:
            raise he.InvalidInput("reduce_only", True, "False for spot orders (perps only)")
        # ccxt would silently TRUNCATE an off-grid amount/price to the market precision; refuse
        # instead, with the venue's own wording (the paper exchange raises the same)
        steps = req.qty / inst.lot_size
        if abs(steps - round(steps)) > 1e-6 or req.qty < inst.min_qty - 1e-12:
            raise he.InvalidOrder(f"Filter failure: LOT_SIZE (qty={req.qty!r}; lot {inst.lot_size:g}, "
                                  f"min qty {inst.min_qty:g}); round with Instrument.round_qty",
                                  venue=self.venue, method="create_order")
        if req.price is not None:
            ticks = req.price / inst.tick_size
            if abs(ticks - round(ticks)) > 1e-6:
                raise he.InvalidOrder(f"Filter failure: PRICE_FILTER (price={req.price!r}; tick "
                                      f"{inst.tick_size:g}); round with Instrument.round_price",
                                      venue=self.venue, method="create_order")
        return inst

    @property
    def outcome_window_s(self) -> float:
        """Seconds after sending during which an unanswered order may still execute: the
        signed requests' ``recvWindow`` (ccxt option; Binance default 10 000 ms, Bybit 5 000 ms)
        plus ``outcome_margin_s``. Only after it has passed does "the venue has no such order"
        prove the order will never exist (see :mod:`hedge_core.engine.unknown_orders`)."""
        return outcome_window_s(self._ex.options.get("recvWindow"), self.outcome_margin_s)

    async def create_order(self, request: OrderRequest) -> Order:
        """Send an order ONCE under the caller's client order id.

        The adapter never re-sends an order itself. When the answer is lost (timeout, dropped
        connection, HTTP 5xx, Binance -1007) the outcome is UNKNOWN: one look-up by client id is
        made (it may already be there), otherwise :class:`~hedge_core.errors.OrderOutcomeUnknown`
        is raised with the window end until which the order may still execute; the caller
        resolves it (:meth:`find_order`) and sends anything new under a NEW client id.
        A 429/418 answer (or the governor refusing) raises RateLimited: the venue did not take it.
        """
        await self._ensure_markets()
        inst = self._validate(request)
        amount = request.qty / inst.contract_size
        params = self._order_params(request)
        if self.spot_precheck and inst.kind is MarketKind.SPOT:
            # Binance spot accepts a reused client id once the first order is final: ask first
            existing = await with_retry(lambda: self._lookup(request.symbol, request.client_order_id),
                                        self.retry, sleep=self._sleep, on_retry=self._on_retry("create_order"))
            if existing is not None:
                raise he.DuplicateOrder(
                    f"client order id {request.client_order_id!r} was already used by order "
                    f"{existing.get('id')} ({existing.get('status')}); fetch it instead of re-sending",
                    venue=self.venue, method="create_order")
        sent_at = self._clock()
        try:
            raw = await self._once("create_order", lambda: self._ex.create_order(
                request.symbol, request.type.value, request.side.value, amount, request.price, dict(params)))
        except (he.RequestTimeout, he.NetworkError) as exc:
            if isinstance(exc.__cause__, ccxt.InvalidNonce):
                raise  # -1021 twice: the venue refused the timestamp, nothing was placed
            found = await self._lookup_quiet(request.symbol, request.client_order_id)
            if found is None:
                raise unknown_outcome(exc, request.client_order_id, sent_at, self.outcome_window_s,
                                      venue=self.venue) from exc
            raw = found
        order = self._to_order(raw, request)
        thin = raw.get("status") is None or (request.type is OrderType.MARKET and not order.status.is_final)
        if thin:
            order = await self._poll_final(order, request)
        return order

    async def find_order(self, symbol: str, client_order_id: str,
                         since: pd.Timestamp | None = None) -> Order | None:
        """The venue's order with this client id, from its order records and, failing that, its
        trade records since ``since`` (OPTIONAL protocol method). None when neither shows it.

        Trade records carry venue order ids only: a trade of an order this adapter has not seen
        is matched by reading that order (by id) and comparing its client id.
        """
        await self._ensure_markets()
        self._instrument(symbol)
        try:
            raw = await self._once("fetch_order", lambda: self._fetch_by_cid(symbol, client_order_id))
            return self._to_order(raw)
        except he.OrderNotFound:
            pass
        for fill in await self.fetch_my_trades(symbol, since):
            if fill.client_order_id == client_order_id:
                return await self.fetch_order(symbol, order_id=fill.order_id)
            if fill.client_order_id:
                continue  # an order we know, with another client id
            try:
                o = await self.fetch_order(symbol, order_id=fill.order_id)
            except he.OrderNotFound:
                continue
            if o.client_order_id == client_order_id:
                return o
        return None

    async def _lookup_quiet(self, symbol: str, cid: str) -> dict[str, Any] | None:
        """:meth:`_lookup`, None also when the look-up itself goes unanswered."""
        try:
            return await self._lookup(symbol, cid)
        except he.TemporaryError:
            return None

    async def _lookup(self, symbol: str, cid: str) -> dict[str, Any] | None:
        """The venue's order with this client id, or None when it does not exist."""
        try:
            return await self._once("create_order", lambda: self._fetch_by_cid(symbol, cid))
        except he.OrderNotFound:
            return None

    async def _fetch_by_cid(self, symbol: str, cid: str) -> dict[str, Any]:
        """Vendor call: one order by client id (raises ccxt.OrderNotFound when unknown)."""
        if self.config.cid_lookup == "bybit_v5":
            # ccxt's bybit fetch_order always sends orderId (even None); ask v5 by orderLinkId
            market = self._ex.market(symbol)
            category = "linear" if market.get("linear") and market.get("contract") else "spot"
            resp = await self._ex.privateGetV5OrderRealtime(
                {"category": category, "symbol": market["id"], "orderLinkId": cid})
            rows = ((resp or {}).get("result") or {}).get("list") or []
            if not rows:
                raise ccxt.OrderNotFound(f"{self.venue} order with client id {cid} not found")
            return self._ex.parse_order(rows[0], market)
        params = {self.config.client_id_query: self._vcid(cid), **self._market_params(symbol)}
        return await self._ex.fetch_order(None, symbol, params)

    async def _poll_final(self, order: Order, request: OrderRequest) -> Order:
        deadline = time.monotonic() + self.fill_poll_timeout
        while True:
            try:
                order = await self.fetch_order(request.symbol, order_id=order.id)
            except he.TemporaryError:
                pass
            if order.status.is_final or (request.type is OrderType.LIMIT and order.status is OrderStatus.OPEN):
                return order
            if time.monotonic() >= deadline:
                return order
            await self._sleep(self.fill_poll_interval)

    def _order_ref(self, symbol: str, order_id: str | None, client_order_id: str | None
                   ) -> tuple[str | None, dict[str, Any]]:
        if (order_id is None) == (client_order_id is None):
            raise he.InvalidInput("order_id/client_order_id", (order_id, client_order_id),
                                  "exactly one of them")
        params = self._market_params(symbol)
        if client_order_id is not None:
            params[self.config.client_id_query] = self._vcid(client_order_id)
        return order_id, params

    async def cancel_order(self, symbol: str, *, order_id: str | None = None,
                           client_order_id: str | None = None) -> Order:
        await self._ensure_markets()
        self._instrument(symbol)
        oid, params = self._order_ref(symbol, order_id, client_order_id)
        raw = await self._call("cancel_order", lambda: self._ex.cancel_order(oid, symbol, dict(params)))
        if raw.get("status") is None:  # thin answer (Bybit: ids only): read the order back
            return await self.fetch_order(symbol, order_id=str(raw.get("id") or oid), client_order_id=None)
        return self._to_order(raw)

    async def fetch_order(self, symbol: str, *, order_id: str | None = None,
                          client_order_id: str | None = None) -> Order:
        await self._ensure_markets()
        self._instrument(symbol)
        oid, params = self._order_ref(symbol, order_id, client_order_id)
        if client_order_id is not None:
            raw = await self._call("fetch_order", lambda: self._fetch_by_cid(symbol, client_order_id))
        else:
            raw = await self._call("fetch_order", lambda: self._ex.fetch_order(oid, symbol, dict(params)))
        return self._to_order(raw)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open orders of one symbol, or of every spot and perp market when ``symbol`` is None."""
        await self._ensure_markets()
        if symbol is not None:
            self._readable(symbol)
            raw = await self._call("fetch_open_orders", lambda: self._ex.fetch_open_orders(
                symbol, None, None, self._market_params(symbol)))
            return [self._to_order(o) for o in raw]
        out: list[Order] = []
        for params in self.config.open_orders_params:
            raw = await self._call("fetch_open_orders",
                                   lambda p=params: self._ex.fetch_open_orders(None, None, None, dict(p)))
            out.extend(self._to_order(o) for o in raw)
        return out

    async def fetch_my_trades(self, symbol: str, since: pd.Timestamp | None = None) -> list[Fill]:
        """The account's own executions of ``symbol`` (fills, the venue's liquidations and ADL), EVERY one since
        ``since`` (the venue's pages and windows walked, :meth:`_trade_records`); without ``since`` the venue's
        default page."""
        await self._ensure_markets()
        self._readable(symbol)
        raw = await self._trade_records(symbol, _ms(since))
        cs = self._cs(symbol)
        out = []
        for t in raw:
            fee = t.get("fee") or {}
            oid = str(t.get("order"))
            info = t.get("info") or {}
            # Bybit lists a delivery among the executions (execType "Delivery"): marked as the venue's delivery
            # (exchange.delivery_ids), so it is only ever booked as one (fetch_deliveries)
            dlv = f"{DELIVERY_CID_PREFIX}{t.get('id')}" if info.get("execType") == "Delivery" else ""
            out.append(Fill(
                trade_id=str(t.get("id")), order_id=oid,
                client_order_id=dlv or self._cid_by_order.get(oid) or own_client_id(
                    str(info.get("clOrdId") or ""), self.config.client_id_style),
                symbol=t.get("symbol") or symbol, side=Side(t["side"]), qty=_f(t.get("amount")) * cs,
                price=_f(t.get("price")), fee=_f(fee.get("cost")), ts=_ts(t.get("timestamp")),
                fee_currency=fee.get("currency") or "USDT",
                liquidity=Liquidity.MAKER if t.get("takerOrMaker") == "maker" else Liquidity.TAKER))
        return out

    async def _account_margin_mode(self) -> str:
        """'isolated' | 'cross' | 'portfolio' of a Bybit unified account (cached; set_margin_mode updates it)."""
        if self._margin_mode_cache is None:
            resp = await self._call("fetch_positions", lambda: self._ex.privateGetV5AccountInfo({}))
            raw = str((resp.get("result") or {}).get("marginMode", ""))
            self._margin_mode_cache = {"ISOLATED_MARGIN": "isolated", "REGULAR_MARGIN": "cross",
                                       "PORTFOLIO_MARGIN": "portfolio"}.get(raw, "cross")
        return self._margin_mode_cache

    _BYBIT_FILL_TYPES = ("Trade", "BustTrade", "AdlTrade", "Delivery")

    async def _trade_records(self, symbol: str, since_ms: int | None) -> list[dict[str, Any]]:
        """ccxt trade structures of ``symbol`` since ``since_ms``, page by page as each venue documents it:
        Binance spot ``myTrades`` 24 h and USD-M ``userTrades`` 7 days per request, oldest first, <= 1,000 rows;
        Bybit ``/v5/execution/list`` 7 days, newest first, <= 100 rows (every execution type read, funding rows
        dropped afterwards, so a page's size tells whether more follow); OKX ``fills-history`` newest first,
        <= 100 rows, ``after`` a ``billId``."""
        now = self._records_now_ms()
        what = f"{self.venue} trades of {symbol}"
        if self.config.trades_query == "bybit_v5":
            market = self._ex.market(symbol)
            rows = await pages.backward(lambda lo, end: self._call("fetch_my_trades", lambda: self._bybit_page(
                market, lo, end)), since_ms if since_ms is not None else now - 7 * 86_400_000, now, page_rows=100,
                span_ms=7 * 86_400_000, key=lambda r: r.get("execId"), what=what)
            return self._ex.parse_trades([r for r in rows if r.get("execType") in self._BYBIT_FILL_TYPES], market)

        def one(start: int | None, params: dict[str, Any]) -> Any:
            return self._call("fetch_my_trades", lambda: self._ex.fetch_my_trades(
                symbol, start, None, {**self._market_params(symbol), **params}))

        if since_ms is None:
            return list(await one(None, {}))
        key = (lambda t: (t.get("id"), (t.get("info") or {}).get("billId")))
        if self.venue == "okx":
            return await pages.back_by_id(lambda after: one(since_ms, {"after": after} if after else {}), page_rows=100,
                                          id_of=lambda t: str((t.get("info") or {}).get("billId")), key=key, what=what)
        span = 86_400_000 if not is_perp_symbol(symbol) else 7 * 86_400_000
        return await pages.forward(lambda start, hi: one(start, {"endTime": hi, "limit": 1_000}), since_ms, now,
                                   page_rows=1_000, span_ms=span, key=key, what=what)

    async def _bybit_page(self, market: dict[str, Any], lo: int, end: int) -> list[dict[str, Any]]:
        """One page of Bybit's execution list (every type), raw rows with ``timestamp`` (= execTime, ms)."""
        req = {"category": "spot" if market.get("spot") else "linear", "symbol": market["id"], "limit": 100,
               "startTime": lo, "endTime": end}
        resp = await self._ex.privateGetV5ExecutionList(req)
        return [{**r, "timestamp": int(r.get("execTime") or 0)} for r in ((resp.get("result") or {}).get("list") or [])]

    async def close(self) -> None:
        """Close the ccxt exchange (a session passed in stays open: its owner closes it)."""
        await self._ex.close()

    async def __aenter__(self) -> "CcxtLiveAdapter":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
