"""The venue's deliveries of a dated future, read by :class:`~hedge_core.exchange.ccxt.adapter.CcxtLiveAdapter`
(the runner books them: ``HedgeDriver._deliveries``, docs/calendar-roll.md "Delivery at expiry").

Binance USD-M (the one venue read so far): a quarterly still held at its delivery time (08:00 UTC) is closed at
the delivery price, the average index of the last 30 minutes ("Delivery & Settlement of Quarterly Futures",
https://www.binance.com/en/support/faq/a3401595e1734084959c61491bc0dbe3). The account's record of it is a row of
``incomeType`` ``DELIVERED_SETTELMENT`` in ``GET /fapi/v1/income`` ("Get Income History (USER_DATA)"; ``income``
the realised PnL, + received) and the price is public in ``GET /futures/data/delivery-price?pair=`` ("Delivery
Price": ``deliveryTime``, ``deliveryPrice``). The delivery is not a trade (no ``userTrades`` row) and Binance
names no delivery fee.

OKX (FUTURES): delivery at 08:00 UTC on the expiry date at the average index of the last hour ("Introduction to
expiry futures", https://www.okx.com/help/iv-introduction-to-expiry-futures). The account's record is a bill of
``type`` 3 "Delivery", ``subType`` 112 "Delivery long" / 113 "Delivery short" in ``GET /api/v5/account/bills``
("Get bills details", https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-bills-details: ``sz`` contracts,
``px`` the delivery price, ``pnl``, ``fee`` negative when charged; the last 7 days, older ones in
``/account/bills-archive``, 3 months; 100 bills a page at most, newest first, ``after`` a bill id: the older ones;
every page is read). It becomes a fill with its quantity (``sz`` x
the contract size), side (113: a short closed by a buy), price and fee, ids ``delivery:<billId>``. A future OKX no
longer lists (delivered; "Get instruments" answers live, suspend, preopen and test instruments) is read by its
instId ``<BASE>-<QUOTE>-<YYMMDD>``, each fill of quantity 0: the whole position (its contract size is gone too).

Bybit (USDT futures): the delivery is an execution of ``execType`` "Delivery" in ``/v5/execution/list`` (v5 "Enums"
-> execType, https://bybit-exchange.github.io/docs/v5/enum#exectype; "Get Delivery Record": ``deliveryPrice``, the
fee at the instrument's ``deliveryFeeRate``, ``deliveryRpl``): ``fetch_my_trades`` marks it with client order id
``dlv-<execId>`` and ``fetch_deliveries`` returns those fills (quantity, side, delivery price and fee as executed).

A Binance delivery becomes a :class:`~hedge_core.types.Fill` at the delivery price with fee 0, ids
``delivery:<tranId>`` and client order id ``dlv-<tranId>``, and ``qty`` 0: the income row names no quantity
(a delivery closes the WHOLE position on the contract), so the driver books the quantity the leg holds, on the
closing side; the realised PnL it books is then ``qty x (delivery price - entry)``, the venue's ``income``.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from hedge_core.exchange.ccxt import pages
from hedge_core.exchange.ccxt.parse import _f, _ms, _ts
from hedge_core.exchange.delivery_ids import DELIVERY_CID_PREFIX, is_delivery_fill
from hedge_core.types import Fill, Liquidity, Side

__all__ = ["DeliveryMixin", "bybit_dated_id"]

#: ccxt's unified symbol of a dated future: ``BASE/QUOTE:SETTLE-YYMMDD``
_DATED = re.compile(r"^([A-Z0-9]+)/([A-Z0-9]+):[A-Z0-9]+-(\d{6})$")



# English month abbreviations, as Bybit names dated futures (strftime's %b follows the process locale)
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def bybit_dated_id(base: str, quote: str, yymmdd: str) -> str:
    """Bybit's own symbol id of a USDT dated future, ``<BASE><QUOTE>-<DD><MMM><YY>`` (e.g. ``BTCUSDT-27MAR26`` for
    ``yymmdd`` "260327"), whatever the process locale."""
    yy, mm, dd = yymmdd[:2], int(yymmdd[2:4]), yymmdd[4:6]
    if not 1 <= mm <= 12:
        raise ValueError(f"yymmdd: month {mm} outside 1-12 in {yymmdd!r}")
    return f"{base}{quote}-{dd}{_MONTHS[mm - 1]}{yy}"

class DeliveryMixin:
    """``fetch_deliveries`` of the live adapter, and the reads of a Bybit dated future its markets do not list."""

    def _readable(self, symbol: str) -> None:
        """Check that ``symbol`` can be READ (ticker, positions, open orders, trades): a listed instrument, or a
        Bybit dated future the markets do not list (:meth:`_bybit_unlisted_market`: read by the venue's own symbol
        id). Raises :class:`~hedge_core.errors.InvalidInput` naming ``symbol`` otherwise. Orders still need a listed
        instrument (``_instrument``): nothing is ever sent to an unlisted contract."""
        if symbol not in self._instruments and self._bybit_unlisted_market(symbol) is None:
            self._instrument(symbol)  # raises: neither listed nor a Bybit dated future's

    def _bybit_unlisted_market(self, symbol: str) -> dict[str, Any] | None:
        """ccxt's market for a Bybit USDT dated future missing from its markets, or None (another venue, a listed
        or non-dated symbol, no listed perpetual of the same base, quote and settle coin).

        Bybit's "Get Instruments Info" (https://bybit-exchange.github.io/docs/v5/market/instrument) has a ``status``
        filter ("PreLaunch, Trading, Delivering, Closed"; the API explorer adds Settling) and without one answers
        the Trading symbols only ("By default returns Trading & PendingOpen symbols" for linear; ccxt's second call
        asks PreLaunch). A future in its delivery window (Delivering) or delivered (Closed) is therefore missing
        from the markets ccxt reloads (a restart) while its position may still be open. "Get Position Info"
        (GET /v5/position/list, https://bybit-exchange.github.io/docs/v5/position) still answers it by symbol: "If
        symbol passed, it returns data regardless of having position or not"; its ticker, orders and executions
        are read by symbol too. So the future is added to ccxt's markets under the venue's own symbol id
        ``<BASE><QUOTE>-<DDMMMYY>`` (:func:`bybit_dated_id`) with its perpetual's terms (linear, 1 base a
        contract, the same steps), and every read of it goes to the venue: its position is what the venue answers
        (flat only once the venue says so, after the delivery executed), never assumed. It gets no
        :class:`~hedge_core.types.Instrument`: no order is sent to it. A markets reload drops it; the next read adds
        it again."""
        if self.config.ccxt_id != "bybit":
            return None
        markets = self._ex.markets or {}
        known = markets.get(symbol)
        if known is not None:
            return known if known.get("hedge_core_unlisted") else None
        m = _DATED.match(symbol)
        perp = markets.get(symbol.rsplit("-", 1)[0]) if m is not None else None
        if m is None or not perp or not perp.get("linear") or not perp.get("swap"):
            return None
        sid = bybit_dated_id(m.group(1), m.group(2), m.group(3))
        market = {**perp, "id": sid, "symbol": symbol, "type": "future", "swap": False, "future": True,
                  "active": False, "expiry": None, "expiryDatetime": None, "hedge_core_unlisted": True,
                  "info": {**(perp.get("info") or {}), "symbol": sid, "contractType": "LinearFutures"}}
        markets[symbol] = market
        self._ex.markets_by_id[sid] = [market]
        return market

    async def fetch_deliveries(self, symbol: str, since: pd.Timestamp | None = None) -> list[Fill]:
        """The venue's deliveries of the dated future ``symbol`` (ccxt unified, ``BTC/USDT:USDT-261225``) at or
        after ``since``: one fill per delivery record at the delivery price (Binance: fee 0 and ``qty`` 0, the whole
        position; OKX, Bybit: the record's quantity and fee; see the module docstring). ``[]`` for a perpetual and
        on another venue. A Binance record whose delivery price is not published yet is left for a later read."""
        await self._ensure_markets()
        market = self._ex.markets.get(symbol) or {}
        if not market and self.config.ccxt_id == "bybit":  # delivered and no longer listed: read by its venue id
            return await self._bybit_unlisted_deliveries(symbol, since)
        if not market and self.config.ccxt_id == "okx":  # the same on OKX: its bills by the instId
            return await self._okx_unlisted_deliveries(symbol, since)
        if not market.get("future") or self.config.ccxt_id not in ("binance", "okx", "bybit"):
            return []
        if self.config.ccxt_id == "okx":
            return await self._okx_deliveries(symbol, str(market.get("id")), since)
        if self.config.ccxt_id == "bybit":  # the "Delivery" executions of the execution list (fetch_my_trades)
            return [f for f in await self.fetch_my_trades(symbol, since) if is_delivery_fill(f.client_order_id)]
        mid = str(market.get("id"))
        pair = str((market.get("info") or {}).get("pair") or mid.split("_")[0])
        params: dict[str, Any] = {"symbol": mid, "incomeType": "DELIVERED_SETTELMENT", "limit": 1000}
        if since is not None:
            params["startTime"] = _ms(since)
        rows = await self._call("fetch_deliveries", lambda: self._ex.fapiPrivateGetIncome(params))
        if not rows:
            return []
        prices = await self._call("fetch_deliveries", lambda: self._ex.fapiDataGetDeliveryPrice({"pair": pair}))
        by_time = sorted((int(p["deliveryTime"]), _f(p.get("deliveryPrice"))) for p in prices or [])
        out = []
        for r in rows:
            t = int(r.get("time") or 0)
            # the delivery this row settles: the published one nearest the row's time, within an hour
            near = sorted((abs(dt - t), p) for dt, p in by_time if abs(dt - t) <= 3_600_000)
            if not near or not near[0][1] > 0:
                continue
            px = [near[0][1]]
            tid = str(r.get("tranId"))
            out.append(Fill(trade_id=f"delivery:{tid}", order_id=f"delivery:{tid}",
                            client_order_id=f"{DELIVERY_CID_PREFIX}{tid}",
                            symbol=symbol, side=Side.BUY, qty=0.0, price=px[-1],  # side, qty: the leg's
                            fee=0.0, ts=_ts(t), fee_currency=str(r.get("asset") or "USDT"),
                            liquidity=Liquidity.TAKER))
        return out

    async def _bybit_unlisted_deliveries(self, symbol: str, since: pd.Timestamp | None) -> list[Fill]:
        """The "Delivery" executions of a Bybit USDT future the venue no longer lists. In its delivery window its
        instrument is ``Delivering``, once delivered ``Closed``, and "Get Instruments Info"
        (https://bybit-exchange.github.io/docs/v5/market/instrument) answers Trading symbols only by default, so ccxt
        cannot resolve the symbol after its markets reload (a restart; :meth:`_bybit_unlisted_market` adds it back
        for reads once anything else read it). Its executions are still in "Get Trade History" (GET /v5/execution/list,
        https://bybit-exchange.github.io/docs/v5/order/execution: category ``linear``, ``symbol``, ``execType``
        Delivery; without a time the last 7 days) under the venue's own symbol id ``<BASE><QUOTE>-<DDMMMYY>`` (e.g.
        BTCUSDT-27MAR26, the instrument list's naming), read here as :meth:`fetch_my_trades` reads a listed one
        (trade id the ``execId``, client order id ``dlv-<execId>``, quantity in base: linear contracts are 1 base).
        ``[]`` for a symbol that is not a dated future's."""
        m = _DATED.match(symbol)
        if m is None:
            return []
        sid = bybit_dated_id(m.group(1), m.group(2), m.group(3))
        params: dict[str, Any] = {"category": "linear", "symbol": sid, "execType": "Delivery", "limit": 100}
        if since is not None:
            params["startTime"] = _ms(since)
        resp = await self._call("fetch_deliveries", lambda: self._ex.privateGetV5ExecutionList(params))
        out = []
        for r in reversed(((resp or {}).get("result") or {}).get("list") or []):  # newest first
            eid = str(r.get("execId"))
            out.append(Fill(trade_id=eid, order_id=str(r.get("orderId") or ""),
                            client_order_id=f"{DELIVERY_CID_PREFIX}{eid}", symbol=symbol,
                            side=Side.BUY if str(r.get("side")) == "Buy" else Side.SELL,
                            qty=abs(_f(r.get("execQty"))), price=_f(r.get("execPrice")), fee=_f(r.get("execFee")),
                            ts=_ts(int(r.get("execTime") or 0)), fee_currency=str(r.get("feeCurrency") or "USDT"),
                            liquidity=Liquidity.TAKER))
        return out

    async def _okx_unlisted_deliveries(self, symbol: str, since: pd.Timestamp | None) -> list[Fill]:
        """The delivery bills of an OKX future the venue no longer lists. "Get instruments"
        (https://www.okx.com/docs-v5/en/#public-data-rest-api-get-instruments) answers instruments whose ``state``
        is live, suspend, preopen or test: once delivered, a future is gone from the markets ccxt reloads (a
        restart). Its bills are still in "Get bills details" under its instId ``<BASE>-<QUOTE>-<YYMMDD>`` (OKX's
        FUTURES naming, e.g. BTC-USDT-250328). Its contract size is no longer listed either, so each fill has
        ``qty`` 0: the whole position the leg holds (a delivery closes it; the driver sizes it, as Binance's
        record). ``[]`` for a symbol that is not a dated future's."""
        m = _DATED.match(symbol)
        if m is None:
            return []
        return await self._okx_deliveries(symbol, f"{m.group(1)}-{m.group(2)}-{m.group(3)}", since, cs=0.0)

    async def _okx_deliveries(self, symbol: str, inst_id: str, since: pd.Timestamp | None,
                              cs: float | None = None) -> list[Fill]:
        """OKX's delivery bills (``type`` 3) of ``inst_id`` at or after ``since``, EVERY page: "Get bills details"
        answers the newest ``limit`` (at most 100) bills, "after" a bill id the ones before it; ``GET
        /api/v5/account/bills`` reaches back 7 days, ``/account/bills-archive`` 3 months. The last 7 days are read
        from the first, and the archive too when ``since`` is older (or not given); a bill in both is kept once.
        Read one page, a delivery behind 100 newer delivery bills of the account (other contracts) was missed.
        ``cs``: the contract size (base per contract; None: the listed instrument's)."""
        params: dict[str, Any] = {"instType": "FUTURES", "type": "3"}
        since_ms = None if since is None else _ms(since)
        if since_ms is not None:
            params["begin"] = str(since_ms)
        rows = await self._okx_bill_pages("privateGetAccountBills", params)
        if since_ms is None or since_ms < self._records_now_ms() - OKX_RECENT_BILLS_MS:
            seen = {str(r.get("billId")) for r in rows}
            rows += [r for r in await self._okx_bill_pages("privateGetAccountBillsArchive", params)
                     if str(r.get("billId")) not in seen]
        cs = self._cs(symbol) if cs is None else cs
        out = []
        for r in sorted(rows, key=lambda r: (int(r.get("ts") or 0), int(r.get("billId") or 0))):
            if r.get("instId") != inst_id or str(r.get("subType")) not in ("112", "113"):
                continue
            bid = str(r.get("billId"))
            out.append(Fill(trade_id=f"delivery:{bid}", order_id=f"delivery:{bid}",
                            client_order_id=f"{DELIVERY_CID_PREFIX}{bid}",
                            symbol=symbol, side=Side.SELL if str(r.get("subType")) == "112" else Side.BUY,
                            qty=abs(_f(r.get("sz"))) * cs, price=_f(r.get("px")), fee=-_f(r.get("fee")),
                            ts=_ts(int(r.get("ts") or 0)), fee_currency=str(r.get("ccy") or "USDT"),
                            liquidity=Liquidity.TAKER))
        return out

    async def _okx_bill_pages(self, method: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every bill of one OKX bills endpoint (``method``: the ccxt implicit call) matching ``params``: pages of
        ``OKX_BILLS_PAGE`` newest first, each full page followed by the bills before its oldest id (``after``)."""
        call = getattr(self._ex, method)

        async def page(after: str | None) -> list[dict[str, Any]]:
            q = {**params, "limit": str(OKX_BILLS_PAGE), **({"after": after} if after else {})}
            resp = await self._call("fetch_deliveries", lambda: call(q))
            return [{**r, "timestamp": int(r.get("ts") or 0)} for r in (resp or {}).get("data") or []]

        return await pages.back_by_id(page, page_rows=OKX_BILLS_PAGE, id_of=lambda r: str(r.get("billId")),
                                      key=lambda r: str(r.get("billId")), what=f"{self.venue} delivery bills")


OKX_BILLS_PAGE = 100  # "Get bills details": limit, "The maximum is 100; The default is 100"
OKX_RECENT_BILLS_MS = 7 * 86_400_000  # /account/bills reaches back 7 days (older: /account/bills-archive)
