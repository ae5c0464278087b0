"""Funding reads of :class:`~hedge_core.exchange.ccxt.adapter.CcxtLiveAdapter`: the current rate, its
history, and the account's own funding payments (the venue's income records).

A mixin: it uses the adapter's call plumbing (``_call``, ``_ensure_markets``, ``_instrument``, ``_ex``,
``config``, ``_instruments``). Money conventions: a payment is quote, + received; the position it was
paid on comes from :func:`hedge_core.money.funding_position` (the inverse of the one funding formula).
"""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd

from hedge_core import errors as he
from hedge_core.exchange.ccxt import pages
from hedge_core.exchange.ccxt.parse import _f, _interval_hours, _ms, _ts
from hedge_core.money import funding_position
from hedge_core.types import FundingPayment, FundingRate

__all__ = ["FundingMixin"]


class FundingMixin:
    """Funding rate, its history and the account's funding payments (see the module docstring)."""

    # ------------------------------------------------------------------ funding
    async def fetch_funding_rate(self, symbol: str) -> FundingRate:
        """The current (next) funding rate; ``ts`` is the next funding time, ``interval_hours`` the venue's own
        settlement interval (Binance USD-M: from ``/fapi/v1/fundingInfo``, :meth:`_funding_interval_hours`). Only a
        perpetual has one: a dated future (``BTC/USDT:USDT-260327``) is refused before any request
        (:meth:`_no_funding_on_future`)."""
        await self._ensure_markets()
        self._perp(symbol)
        self._no_funding_on_future(symbol)
        r = await self._call("fetch_funding_rate", lambda: self._ex.fetch_funding_rate(symbol))
        hours = _interval_hours(r.get("interval"))
        if r.get("interval") is None and getattr(self.config, "funding_interval_source", "") == "fundingInfo":
            hours = await self._funding_interval_hours(symbol)
        return FundingRate(symbol=symbol, ts=_ts(r.get("fundingTimestamp") or r.get("timestamp")),
                           rate=_f(r.get("fundingRate")), interval_hours=hours, mark_price=r.get("markPrice"))

    async def _funding_interval_hours(self, symbol: str) -> float:
        """Binance USD-M's funding interval of ``symbol`` (hours): ``fundingIntervalHours`` of its row in
        ``GET /fapi/v1/fundingInfo`` ("Get Funding Rate Info", which lists only the symbols whose cap, floor or
        interval was adjusted), 8 for a symbol not listed (the venue's standard interval). The listing is read at
        most every ``FUNDING_INFO_TTL_S`` seconds (an interval change is announced ahead; a feed polling every few
        seconds must not ask each time)."""
        now = time.monotonic()
        cached: tuple[float, dict[str, float]] | None = getattr(self, "_funding_info", None)
        if cached is None or now - cached[0] > FUNDING_INFO_TTL_S:
            rows = await self._call("fetch_funding_rate", lambda: self._ex.fetch_funding_intervals())
            cached = (now, {s: _interval_hours(v.get("interval")) for s, v in dict(rows).items()
                            if v.get("interval") is not None})
            self._funding_info = cached
        return float(cached[1].get(symbol, 8.0))

    async def fetch_funding_rate_history(self, symbol: str, since: pd.Timestamp | None = None,
                                         limit: int | None = None) -> list[FundingRate]:
        """The venue's public funding rate history of the perpetual ``symbol`` (a dated future is refused)."""
        await self._ensure_markets()
        self._perp(symbol)
        self._no_funding_on_future(symbol)
        if limit is not None and limit <= 0:
            raise he.InvalidInput("limit", limit, "None or an integer > 0")
        since_ms = _ms(since)
        rows = await self._call("fetch_funding_rate_history",
                                lambda: self._ex.fetch_funding_rate_history(symbol, since_ms, limit))
        return [FundingRate(symbol=symbol, ts=_ts(r.get("timestamp")), rate=_f(r.get("fundingRate")),
                            mark_price=_f((r.get("info") or {}).get("markPrice"), float("nan")) or None)
                for r in rows]

    def _no_funding_on_future(self, symbol: str) -> None:
        """A dated future exchanges no funding (it converges by delivery): asking its funding rate is an invalid
        input, refused before a request (Bybit would answer an empty ``fundingRate`` read as 0, Binance refuses)."""
        if (self._ex.markets.get(symbol) or {}).get("future"):
            raise he.InvalidInput("symbol", symbol, "a perpetual swap (a dated future pays no funding)")

    async def fetch_funding_payments(self, symbol: str | None = None,
                                     since: pd.Timestamp | None = None) -> list[FundingPayment]:
        """Own funding settled (+ received / - paid, quote), on every venue: EVERY record since ``since``
        (the venue's pages and time windows are walked, see :meth:`_funding_records`).

        Binance's income ledger has only the amount (+ received); rate and mark come from the
        public funding history at the same funding time. Bybit reports funding in its execution
        list as a charge (``execFee`` > 0 paid: the sign is turned) with the rate (``feeRate``) and
        the settlement mark (``execPrice``). ``position_qty = -amount / (mark x rate)``; NaN where
        no rate is found.

        A dated future (``BTC/USDT:USDT-261225``) pays no funding: its answer is ``[]`` without a request
        (ccxt's binance refuses the income call for it: "fetchFundingHistory() supports swap contracts only").
        """
        await self._ensure_markets()
        if symbol is not None:
            self._perp(symbol)
            if (self._ex.markets.get(symbol) or {}).get("future"):
                return []
        since_ms = _ms(since)
        rows = await self._funding_records(symbol, since_ms)
        out = []
        history: dict[str, list[FundingRate]] = {}
        exhausted: set[str] = set()  # symbols whose public history has nothing newer
        for r in rows:
            sym = r.get("symbol") or symbol or ""
            ts = _ts(r.get("timestamp"))
            amount = self.config.funding_amount_sign * _f(r.get("amount"))
            # Bybit's funding row carries its rate (feeRate) and the mark it settled at (execPrice)
            rate = _f(r.get("rate"), float("nan"))
            mark = _f((r.get("info") or {}).get("execPrice"), float("nan"))
            if not (math.isfinite(rate) and math.isfinite(mark) and mark > 0):
                known = history.setdefault(sym, [])
                if sym in self._instruments and sym not in exhausted and (
                        not known or known[-1].ts < ts - pd.Timedelta(seconds=60)):
                    # the public history pages too (Binance: 100 rows from startTime by default): read the page
                    # that starts just before this payment when it lies beyond what is read already
                    page = [h for h in await self.fetch_funding_rate_history(sym, ts - pd.Timedelta(seconds=60), None)
                            if not known or h.ts > known[-1].ts]
                    known.extend(page)
                    if not page:
                        exhausted.add(sym)
                near = sorted((abs((h.ts - ts).total_seconds()), i) for i, h in enumerate(known))
                match = known[near[0][1]] if near and near[0][0] <= 60 else None
                rate = match.rate if match else float("nan")
                mark = _f(match.mark_price, float("nan")) if match else float("nan")
            qty = funding_position(amount, mark, rate)
            out.append(FundingPayment(symbol=sym, ts=ts, amount=amount, rate=rate, position_qty=qty,
                                      mark_price=mark))
        return out

    def _records_now_ms(self) -> int:
        """The venue's clock now (ms) plus a minute: where a walk through the venue's record windows ends. ccxt's
        ``timeDifference`` is local minus venue; a venue ahead of the local clock has records "after" our now."""
        diff = self._ex.options.get("timeDifference") or 0
        return int(self._ex.milliseconds() - float(diff)) + 60_000

    async def _funding_records(self, symbol: str | None, since_ms: int | None) -> list[dict[str, Any]]:
        """Every funding record (ccxt funding-history structures) of ``symbol`` since ``since_ms``, walking the
        venue's pages (``VenueConfig.funding_paging``, :mod:`hedge_core.exchange.ccxt.pages`). Without
        ``since_ms``: one request, the venue's default.

        A venue answers one page at a time: Binance 100 rows by default (1,000 at most) from startTime, Bybit 50
        by default (100 at most) and 7 days per request, OKX 100 of the newest. Read once, a hedge older than a
        page would stop seeing its newer funding (Binance, Bybit) or lose older ones (OKX).
        """
        def call(sym: str | None, start: int | None, limit: int | None, params: dict[str, Any]) -> Any:
            return self._call("fetch_funding_payments", lambda: self._ex.fetch_funding_history(sym, start, limit, params))

        style = self.config.funding_paging
        # ccxt's subType picks Bybit's category and Binance's linear book; OKX would send it on as its bills'
        # own ``subType`` filter (173/174 ...), where "linear" matches nothing
        base: dict[str, Any] = {} if style == "bills" else {"subType": "linear"}
        if since_ms is None:
            return list(await call(symbol, None, None, base))
        what = f"{self.venue} funding records"
        if style == "windows":  # Bybit: <= 7 days a request, newest first, <= 100 rows
            n = PAGE_ROWS["windows"]
            return await pages.backward(lambda lo, end: call(symbol, lo, n, {**base, "endTime": end, "limit": n}),
                                        since_ms, self._records_now_ms(), page_rows=n, span_ms=WEEK_MS,
                                        key=_rid, what=what)
        if style == "bills":  # OKX: newest first, <= 100 rows; begin by time, after by billId
            n = PAGE_ROWS["bills"]

            def bills(after: str | None) -> Any:  # unfiltered by symbol: a full page means more to read
                return call(None, None, None, {"begin": str(since_ms), "limit": str(n), **({"after": after} if after else {})})

            rows = await pages.back_by_id(bills, page_rows=n, id_of=lambda r: str(r.get("id")), key=_rid, what=what)
            return [r for r in rows if symbol is None or r.get("symbol") == symbol]
        n = PAGE_ROWS["forward"]  # Binance: oldest first from startTime, <= 1,000 rows, no window
        return await pages.forward(lambda start, _hi: call(symbol, start, n, base), since_ms,
                                   self._records_now_ms(), page_rows=n, span_ms=None, key=_rid, what=what)


FUNDING_INFO_TTL_S = 300.0  # Binance fundingInfo re-read at most every 5 min (see _funding_interval_hours)
PAGE_ROWS = {"forward": 1_000, "windows": 100, "bills": 100}  # the venues' largest page ("limit" max)
WEEK_MS = 7 * 86_400_000  # Bybit: "endTime - startTime <= 7 days"


def _rid(r: dict[str, Any]) -> tuple[Any, ...]:
    """A funding record's identity across overlapping pages: the venue's id, symbol, time and amount."""
    return (r.get("id"), r.get("symbol"), r.get("timestamp"), r.get("amount"))
