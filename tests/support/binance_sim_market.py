"""The Binance simulator's market-data answers (exchange info with filters, tickers, books, premium index,
klines, funding history), as a mixin of :class:`tests.support.binance_sim.BinanceSim`; each answer cites the
Binance documentation section it follows (see the simulator's module docstring)."""

from __future__ import annotations

from typing import Any

from tests.support.binance_sim_types import MarketSpec, SimError, _fmt


class MarketDataMixin:
    """Market-data routes; works on the state :class:`BinanceSim` keeps."""

    def _filters(self, m: MarketSpec, fut: bool) -> list[dict[str, Any]]:
        tick = (m.perp_tick or m.tick) if fut else m.tick
        step = (m.perp_step or m.step) if fut else m.step
        min_qty = (m.perp_min_qty or m.min_qty) if fut else m.min_qty
        price = {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000",
                 "tickSize": tick}
        lot = {"filterType": "LOT_SIZE", "minQty": min_qty, "maxQty": "9000", "stepSize": step}
        if fut:
            return [price, lot, {"filterType": "MARKET_LOT_SIZE", "minQty": min_qty,
                                 "maxQty": "1000", "stepSize": step},
                    {"filterType": "MIN_NOTIONAL", "notional": m.perp_min_notional}]
        return [price, lot, {"filterType": "NOTIONAL", "minNotional": m.min_notional,
                             "applyMinToMarket": True, "maxNotional": "9000000",
                             "applyMaxToMarket": False, "avgPriceMins": 5}]

    def _spot_info(self, p: dict[str, str]) -> dict[str, Any]:
        syms = [{"symbol": m.id, "status": "TRADING", "baseAsset": m.base, "baseAssetPrecision": 8,
                 "quoteAsset": m.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
                 "orderTypes": ["LIMIT", "MARKET"], "icebergAllowed": True, "ocoAllowed": True,
                 "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
                 "filters": self._filters(m, False), "permissions": [], "permissionSets": [["SPOT"]]}
                for m in self.markets.values() if not m.delivery]  # a quarterly is listed on USD-M only
        return {"timezone": "UTC", "serverTime": self.now_ms(), "rateLimits": [],
                "exchangeFilters": [], "symbols": syms}

    def _fapi_info(self, p: dict[str, str]) -> dict[str, Any]:
        # "Exchange Information" (GET /fapi/v1/exchangeInfo, https://developers.binance.com/docs/derivatives/
        # usds-margined-futures/market-data/rest-api/Exchange-Information): ``pair`` the underlying (BTCUSDT for the
        # perpetual and its quarterlies), ``contractType`` PERPETUAL | CURRENT_QUARTER | NEXT_QUARTER, ``deliveryDate``
        # (ms; a perpetual shows 4133404800000, 2100-12-25), a delivery contract's symbol ``<pair>_<YYMMDD>``
        syms = [{"symbol": m.id, "pair": m.pair, "contractType": m.contract_type,
                 "deliveryDate": m.delivery_ms if m.delivery else 4133404800000,
                 "onboardDate": 1569398400000, "status": "DELIVERED" if m.id in self.delivered else "TRADING",
                 "baseAsset": m.base, "quoteAsset": m.quote, "marginAsset": m.quote,
                 "pricePrecision": 2, "quantityPrecision": 3, "baseAssetPrecision": 8,
                 "quotePrecision": 8, "underlyingType": "COIN", "triggerProtect": "0.0500",
                 "filters": self._filters(m, True), "orderTypes": ["LIMIT", "MARKET"],
                 "timeInForce": ["GTC", "IOC", "FOK", "GTX"]} for m in self.markets.values()]
        return {"timezone": "UTC", "serverTime": self.now_ms(), "rateLimits": [],
                "exchangeFilters": [], "assets": [{"asset": "USDT", "marginAvailable": True}],
                "symbols": syms}

    def _sym(self, p: dict[str, str], spot: bool = False) -> str:
        """The listed symbol id of ``p``; -1121 "Invalid symbol." otherwise, and for a USD-M delivery contract
        asked on the spot API (a quarterly is not a spot market)."""
        sid = p.get("symbol", "")
        if sid not in self.markets or (spot and self.markets[sid].delivery):
            raise SimError(400, -1121, "Invalid symbol.")
        return sid

    def stale_ticker(self, symbol_id: str, age_ms: int | None, price: float | None = None) -> None:
        """Control hook: the 24 h tickers of ``symbol_id`` (spot and USD-M) answer as of ``age_ms`` ago,
        optionally with the ``price`` of that time; None restores live tickers. Binance's 24 h ticker
        carries ``closeTime`` (ms), the end of its rolling window, i.e. the time of the statistics it
        shows (developers.binance.com, Spot "24hr Ticker Price Change Statistics" / USD-M "24hr Ticker
        Price Change Statistics": ``closeTime``); ccxt reads it as the ticker's ``timestamp``. A
        lagging or cached ticker shows an old ``closeTime``. Orders still fill at the current price."""
        if not hasattr(self, "_stale"):
            self._stale: dict[str, tuple[int, float | None]] = {}
        if age_ms is None:
            self._stale.pop(symbol_id, None)
        else:
            self._stale[symbol_id] = (int(age_ms), price)

    def _ticker(self, p: dict[str, str], *, spot: bool) -> Any:
        def one(sid: str) -> dict[str, Any]:
            px = _fmt(self._px("spot" if spot else "fapi", sid))
            now = self.now_ms()
            age, old_px = getattr(self, "_stale", {}).get(sid, (0, None))
            now -= age  # closeTime: the time of the statistics shown (stale_ticker)
            px = px if old_px is None else _fmt(old_px)
            t = {"symbol": sid, "priceChange": "0", "priceChangePercent": "0", "weightedAvgPrice": px,
                 "lastPrice": px, "lastQty": "1", "openPrice": px, "highPrice": px, "lowPrice": px,
                 "volume": "100", "quoteVolume": _fmt(100 * float(px)),
                 "openTime": now - 86_400_000, "closeTime": now, "firstId": 1, "lastId": 2, "count": 2}
            if spot:  # the futures 24hr ticker has no bid/ask (as on Binance)
                t.update({"prevClosePrice": px, "bidPrice": px, "bidQty": "1", "askPrice": px,
                          "askQty": "1"})
            return t
        return one(self._sym(p, spot)) if "symbol" in p else [one(s) for s in self._listed(spot)]

    def _listed(self, spot: bool) -> list[str]:
        """Symbol ids listed on the spot API (no delivery contract) or on USD-M (all)."""
        return [sid for sid, m in self.markets.items() if not (spot and m.delivery)]

    def _book(self, p: dict[str, str], *, spot: bool) -> Any:
        def one(sid: str) -> dict[str, Any]:
            px = _fmt(self._px("spot" if spot else "fapi", sid))
            t = {"symbol": sid, "bidPrice": px, "bidQty": "1", "askPrice": px, "askQty": "1"}
            if not spot:
                t["time"] = self.now_ms()
            return t
        return one(self._sym(p, spot)) if "symbol" in p else [one(s) for s in self._listed(spot)]

    def _depth(self, p: dict[str, str], *, spot: bool) -> dict[str, Any]:
        # "Order Book", GET /fapi/v1/depth (https://developers.binance.com/docs/derivatives/usds-margined-futures/
        # market-data/rest-api/Order-Book) and GET /api/v3/depth (https://developers.binance.com/docs/binance-spot-api-docs/
        # rest-api/market-data-endpoints#order-book): {lastUpdateId, [E, T futures], bids, asks}, levels
        # ["price", "qty"] as strings, best first, at most `limit` per side. A test sets the levels in
        # `order_books[(market, symbol id)]`; else one level of 1 at the last price.
        sid = self._sym(p, spot)
        market = "spot" if spot else "fapi"
        px = _fmt(self._px(market, sid))
        book = getattr(self, "order_books", {}).get((market, sid), {"bids": [(px, 1)], "asks": [(px, 1)]})
        n = int(p.get("limit", 500))
        out: dict[str, Any] = {"lastUpdateId": 1}
        if not spot:
            out.update({"E": self.now_ms(), "T": self.now_ms()})
        for side in ("bids", "asks"):
            out[side] = [[_fmt(float(a)), _fmt(float(b))] for a, b in book[side][:n]]
        return out

    def _premium(self, p: dict[str, str]) -> Any:
        # "Mark Price" (GET /fapi/v1/premiumIndex): the funding fields are the perpetual's; a delivery contract
        # exchanges no funding (Binance FAQ "Introduction to Binance Futures Funding Rates": funding is the
        # perpetual's mechanism to track the index; a quarterly converges by delivery), so its row carries empty
        # ``lastFundingRate`` / ``interestRate`` and ``nextFundingTime`` 0
        def one(sid: str) -> dict[str, Any]:
            now = self.now_ms()
            step = int(self.funding_interval_hours.get(sid, 8)) * 3_600_000  # the symbol's own interval
            nxt = (now // step + 1) * step
            row = {"symbol": sid, "markPrice": _fmt(self.marks[sid]),
                   "indexPrice": _fmt(self.marks[sid]), "estimatedSettlePrice": _fmt(self.marks[sid]),
                   "lastFundingRate": _fmt(self.predicted_rate[sid]), "interestRate": "0.0001",
                   "nextFundingTime": nxt, "time": now}
            if self.markets[sid].delivery:
                row.update({"lastFundingRate": "", "interestRate": "", "nextFundingTime": 0})
            return row
        return one(self._sym(p)) if "symbol" in p else [one(s) for s in self.markets]

    def _funding_info(self, p: dict[str, str]) -> list[dict[str, Any]]:
        # "Get Funding Rate Info" (GET /fapi/v1/fundingInfo, https://developers.binance.com/docs/derivatives/
        # usds-margined-futures/market-data/rest-api/Get-Funding-Rate-Info): "Query funding rate info for symbols
        # that had FundingRateCap/ FundingRateFloor / fundingIntervalHours adjustment"; rows {symbol,
        # adjustedFundingRateCap, adjustedFundingRateFloor, fundingIntervalHours, disclaimer}. A symbol at the
        # standard 8 h is not listed.
        return [{"symbol": sid, "adjustedFundingRateCap": "0.02000000", "adjustedFundingRateFloor": "-0.02000000",
                 "fundingIntervalHours": int(h), "disclaimer": False}
                for sid, h in self.funding_interval_hours.items() if int(h) != 8]

    def _klines(self, p: dict[str, str], market: str) -> list[list[Any]]:
        rows = self.klines.get((market, self._sym(p, market == "spot")), [])
        if "startTime" in p:
            rows = [r for r in rows if r[0] >= int(p["startTime"])]
        if "endTime" in p:
            rows = [r for r in rows if r[0] <= int(p["endTime"])]
        return rows[: int(p.get("limit", 500))]

    def _funding_rates(self, p: dict[str, str]) -> list[dict[str, Any]]:
        # "Get Funding Rate History" (GET /fapi/v1/fundingRate): limit default 100, max 1000; "If startTime and
        # endTime are not sent, the most recent limit datas are returned. If the number of data between startTime
        # and endTime is larger than limit, return as startTime + limit. In ascending order."
        rows = sorted((r for r in self.funding_history if "symbol" not in p or r["symbol"] == p["symbol"]),
                      key=lambda r: r["fundingTime"])
        if "startTime" in p:
            rows = [r for r in rows if r["fundingTime"] >= int(p["startTime"])]
        if "endTime" in p:
            rows = [r for r in rows if r["fundingTime"] <= int(p["endTime"])]
        limit = int(p.get("limit", 100))
        if "startTime" not in p and "endTime" not in p:
            return rows[-limit:]
        return rows[:limit]
