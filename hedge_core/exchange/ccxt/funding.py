"""Funding reads of :class:`~hedge_core.exchange.ccxt.adapter.CcxtLiveAdapter`: the current rate, its
history, and the account's own funding payments (the venue's income records).

A mixin: it uses the adapter's call plumbing (``_call``, ``_ensure_markets``, ``_instrument``, ``_ex``,
``config``, ``_instruments``). Money conventions: a payment is quote, + received; the position it was
paid on comes from :func:`hedge_core.money.funding_position` (the inverse of the one funding formula).
"""

from __future__ import annotations

import math

import pandas as pd

from hedge_core import errors as he
from hedge_core.exchange.ccxt.parse import _f, _interval_hours, _ms, _ts
from hedge_core.money import funding_position
from hedge_core.types import FundingPayment, FundingRate

__all__ = ["FundingMixin"]


class FundingMixin:
    """Funding rate, its history and the account's funding payments (see the module docstring)."""

    # ------------------------------------------------------------------ funding
    async def fetch_funding_rate(self, symbol: str) -> FundingRate:
        """The current (next) funding rate; ``ts`` is the next funding time."""
        await self._ensure_markets()
        self._perp(symbol)
        r = await self._call("fetch_funding_rate", lambda: self._ex.fetch_funding_rate(symbol))
        return FundingRate(symbol=symbol, ts=_ts(r.get("fundingTimestamp") or r.get("timestamp")),
                           rate=_f(r.get("fundingRate")), interval_hours=_interval_hours(r.get("interval")),
                           mark_price=r.get("markPrice"))

    async def fetch_funding_rate_history(self, symbol: str, since: pd.Timestamp | None = None,
                                         limit: int | None = None) -> list[FundingRate]:
        await self._ensure_markets()
        self._perp(symbol)
        if limit is not None and limit <= 0:
            raise he.InvalidInput("limit", limit, "None or an integer > 0")
        since_ms = _ms(since)
        rows = await self._call("fetch_funding_rate_history",
                                lambda: self._ex.fetch_funding_rate_history(symbol, since_ms, limit))
        return [FundingRate(symbol=symbol, ts=_ts(r.get("timestamp")), rate=_f(r.get("fundingRate")),
                            mark_price=_f((r.get("info") or {}).get("markPrice"), float("nan")) or None)
                for r in rows]

    async def fetch_funding_payments(self, symbol: str | None = None,
                                     since: pd.Timestamp | None = None) -> list[FundingPayment]:
        """Own funding settled (+ received / - paid, quote), on every venue.

        Binance's income ledger has only the amount (+ received); rate and mark come from the
        public funding history at the same funding time. Bybit reports funding in its execution
        list as a charge (``execFee`` > 0 paid: the sign is turned) with the rate (``feeRate``) and
        the settlement mark (``execPrice``). ``position_qty = -amount / (mark x rate)``; NaN where
        no rate is found.
        """
        await self._ensure_markets()
        if symbol is not None:
            self._perp(symbol)
        since_ms = _ms(since)
        rows = await self._call("fetch_funding_payments", lambda: self._ex.fetch_funding_history(
            symbol, since_ms, None, {"subType": "linear"}))
        out = []
        history: dict[str, list[FundingRate]] = {}
        for r in rows:
            sym = r.get("symbol") or symbol or ""
            ts = _ts(r.get("timestamp"))
            amount = self.config.funding_amount_sign * _f(r.get("amount"))
            # Bybit's funding row carries its rate (feeRate) and the mark it settled at (execPrice)
            rate = _f(r.get("rate"), float("nan"))
            mark = _f((r.get("info") or {}).get("execPrice"), float("nan"))
            if not (math.isfinite(rate) and math.isfinite(mark) and mark > 0):
                if sym not in history:
                    first = min((_f(x.get("timestamp")) for x in rows if x.get("symbol") == sym), default=0.0)
                    history[sym] = await self.fetch_funding_rate_history(
                        sym, _ts(first - 60_000), None) if sym in self._instruments else []
                near = sorted((abs((h.ts - ts).total_seconds()), i) for i, h in enumerate(history[sym]))
                match = history[sym][near[0][1]] if near and near[0][0] <= 60 else None
                rate = match.rate if match else float("nan")
                mark = _f(match.mark_price, float("nan")) if match else float("nan")
            qty = funding_position(amount, mark, rate)
            out.append(FundingPayment(symbol=sym, ts=ts, amount=amount, rate=rate, position_qty=qty,
                                      mark_price=mark))
        return out
