"""The Binance simulator's order queries (find by id or client id, query, cancel, open orders, the order
answer of each market, the account trade list), as a mixin of :class:`tests.support.binance_sim.BinanceSim`.
Answers follow "Query Order (USER_DATA)", "Cancel Order (TRADE)", "Current Open Orders (USER_DATA)" and
"Account Trade List (USER_DATA)" of https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api
and https://developers.binance.com/docs/binance-spot-api-docs/rest-api (see the module docstring of
:mod:`tests.support.binance_sim` for what each answer carries)."""

from __future__ import annotations

from typing import Any

from tests.support.binance_sim_types import SimError, _fmt, _Order

__all__ = ["OrderQueryMixin"]


class OrderQueryMixin:
    """Order query routes; works on the orders and trades :class:`BinanceSim` keeps."""

    def _find(self, p: dict[str, str], market: str) -> _Order:
        sid = self._sym(p, market == "spot")
        if "orderId" in p:
            o = self.orders.get((market, int(p["orderId"])))
            if o is not None and o.symbol == sid:
                return o
        elif "origClientOrderId" in p:
            for o in reversed(self._by_cid.get((market, p["origClientOrderId"]), [])):
                if o.symbol == sid:
                    return o
        else:
            raise SimError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        raise SimError(400, -2013, "Order does not exist.")

    def _get_order(self, p: dict[str, str], market: str) -> dict[str, Any]:
        return self._order_json(self._find(p, market))

    def _cancel(self, p: dict[str, str], market: str) -> dict[str, Any]:
        try:
            o = self._find(p, market)
        except SimError as e:
            if e.code == -2013:
                raise SimError(400, -2011, "Unknown order sent.") from None
            raise
        if o.status not in ("NEW", "PARTIALLY_FILLED"):
            raise SimError(400, -2011, "Unknown order sent.")
        if o.market == "spot" and o.type == "LIMIT":
            self._lock_spot(o, o.qty - o.executed, sign=-1)
        o.status = "CANCELED"
        self._open.pop((o.market, o.order_id), None)
        o.update_time = self.now_ms()
        return self._order_json(o)

    def _open_orders(self, p: dict[str, str], market: str) -> list[dict[str, Any]]:
        sid = p.get("symbol")
        return [self._order_json(o) for o in self._open.values()
                if o.market == market and o.status in ("NEW", "PARTIALLY_FILLED")
                and (sid is None or o.symbol == sid)]

    def _order_json(self, o: _Order, *, ack: bool = False, full: bool = False) -> dict[str, Any]:
        executed, cum, status = (0.0, 0.0, "NEW") if ack else (o.executed, o.cum_quote, o.status)
        price = _fmt(o.price) if o.type == "LIMIT" else "0"
        if o.market == "spot":
            d: dict[str, Any] = {
                "symbol": o.symbol, "orderId": o.order_id, "orderListId": -1, "clientOrderId": o.client_id,
                "price": price if o.type == "LIMIT" else "0.00000000", "origQty": _fmt(o.qty),
                "executedQty": _fmt(executed), "cummulativeQuoteQty": _fmt(cum), "status": status,
                "timeInForce": o.time_in_force, "type": o.type, "side": o.side,
                "workingTime": o.time, "selfTradePreventionMode": "EXPIRE_MAKER"}
            if ack or full:
                d["transactTime"] = o.update_time
            else:
                d.update({"stopPrice": "0", "icebergQty": "0", "time": o.time, "updateTime": o.update_time,
                          "isWorking": True, "origQuoteOrderQty": "0"})
            if full and not ack:
                d["fills"] = [{"price": t["price"], "qty": t["qty"], "commission": t["commission"],
                               "commissionAsset": t["commissionAsset"], "tradeId": t["id"]}
                              for t in o.fills]
            return d
        return {"orderId": o.order_id, "symbol": o.symbol, "status": status, "clientOrderId": o.client_id,
                "price": price, "avgPrice": _fmt(cum / executed) if executed else "0.00",
                "origQty": _fmt(o.qty), "executedQty": _fmt(executed), "cumQty": _fmt(executed),
                "cumQuote": _fmt(cum), "timeInForce": o.time_in_force, "type": o.type,
                "reduceOnly": o.reduce_only, "closePosition": False, "side": o.side,
                "positionSide": o.position_side, "stopPrice": "0", "workingType": "CONTRACT_PRICE",
                "priceProtect": False, "origType": o.type, "priceMatch": "NONE",
                "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0,
                "time": o.time, "updateTime": o.update_time}

    def _my_trades(self, p: dict[str, str], market: str) -> list[dict[str, Any]]:
        """Spot "Account trade list" (``GET /api/v3/myTrades``: "The time between startTime and endTime can't be
        longer than 24 hours"; "If fromId is set, it will get id >= that fromId. Otherwise most recent trades are
        returned"; limit "Default 500; max 1000") and USD-M "Account Trade List" (``GET /fapi/v1/userTrades``: "If
        startTime and endTime are both not sent, then the last 7 days' data will be returned. The time between
        startTime and endTime cannot be longer than 7 days"; "The parameter fromId cannot be sent with startTime or
        endTime"). A window given by one end runs the allowed span from it; rows oldest first, the first ``limit``
        from a start, the newest ``limit`` otherwise. A span too long answers -1127 (the spot API's "More than 24
        hours between startTime and endTime."; the futures page names no code)."""
        sid = self._sym(p, market == "spot")
        span = 86_400_000 if market == "spot" else 7 * 86_400_000
        limit = int(p.get("limit", 500))
        if not 1 <= limit <= 1000:
            raise SimError(400, -1130, "Data sent for parameter 'limit' is not valid.")
        start, end = p.get("startTime"), p.get("endTime")
        if start is not None and end is not None and int(end) - int(start) > span:
            raise SimError(400, -1127, "More than 24 hours between startTime and endTime." if market == "spot"
                           else "The time between startTime and endTime cannot be longer than 7 days.")
        lo = int(start) if start is not None else (int(end) - span if end is not None else None)
        hi = int(end) if end is not None else (int(start) + span if start is not None else None)
        if lo is None and market != "spot" and "fromId" not in p and "orderId" not in p:
            hi = self.now_ms()
            lo = hi - span
        out = []
        for t in self.trades:
            if t["market"] != market or t["symbol"] != sid:
                continue
            if lo is not None and not lo <= t["time"] <= hi:
                continue
            if "fromId" in p and int(t["id"]) < int(p["fromId"]):
                continue
            if "orderId" in p and str(t["orderId"]) != str(p["orderId"]):
                continue
            if market == "spot":
                out.append({"symbol": sid, "id": t["id"], "orderId": t["orderId"], "orderListId": -1,
                            "price": t["price"], "qty": t["qty"], "quoteQty": t["quoteQty"],
                            "commission": t["commission"], "commissionAsset": t["commissionAsset"],
                            "time": t["time"], "isBuyer": t["side"] == "BUY", "isMaker": t["maker"],
                            "isBestMatch": True})
            else:
                out.append({"buyer": t["side"] == "BUY", "commission": t["commission"],
                            "commissionAsset": t["commissionAsset"], "id": t["id"], "maker": t["maker"],
                            "orderId": t["orderId"], "price": t["price"], "qty": t["qty"],
                            "quoteQty": t["quoteQty"], "realizedPnl": t["realizedPnl"], "side": t["side"],
                            "positionSide": t["positionSide"], "symbol": sid, "time": t["time"]})
        out.sort(key=lambda r: (r["time"], int(r["id"])))
        return out[:limit] if start is not None or "fromId" in p else out[-limit:]
