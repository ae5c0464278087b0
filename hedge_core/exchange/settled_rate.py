"""A perpetual's last SETTLED funding rate at its venue, read at most once per settlement.

The ticker feed (:class:`hedge_core.runner.market.TickerFeed`) polls the venue's CURRENT funding rate (the one the
next settlement will use: ``MarketUpdate.next_funding_rate``); the engine's ``MarketUpdate.funding_rate`` is the
rate the venue last SETTLED. It is what the engine falls back on when no predicted rate is known
(``MarketUpdate.expected_funding_rate``, the funding-cost guard), what the hedge's summary shows as
``funding_rate`` (the panel, the risk advisor) and the rate a venue funding record without its own rate is
journaled at (:func:`hedge_core.runner.records.new_funding`).

Where each venue publishes it; :class:`SettledRate` reads it through the adapter's
``fetch_funding_rate_history(symbol, None, LAST_ROWS)`` (the newest rows, no start time), so the adapter's retries,
error translation and rate-limit governor apply:

- Binance USD-M ``GET /fapi/v1/fundingRate`` ("Get Funding Rate History": "If startTime and endTime are not sent,
  the most recent limit datas are returned", ascending);
- Bybit v5 ``GET /v5/market/funding/history`` ("Get Funding Rate History": without ``startTime`` / ``endTime``, the
  newest ``limit`` rows up to now, newest first). Bybit's tickers ``fundingRate`` is the CURRENT rate, not a
  settled one;
- OKX ``GET /api/v5/public/funding-rate-history`` ("Get funding rate history": newest first, ``limit`` <= 100).

When it is read again: once the settlement after the one held is due (the held row's time plus the venue's
interval, or the venue's announced next settlement when that is sooner). A venue publishes a settlement a moment
after its time, so a read that still answers the old row, and a failed read, are retried after ``retry_s``
seconds; in between the last rate read is kept (NaN before any: the rate is unknown, never 0).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pandas as pd

from hedge_core.errors import ExchangeError, InvalidInput

__all__ = ["LAST_ROWS", "SettledRate"]

log = logging.getLogger(__name__)

LAST_ROWS = 3  # rows asked for: the newest settlements (the last one at or before now is kept)


class SettledRate:
    """The last settled funding rate of ``symbol`` through ``adapter`` (see the module docstring).

    Parameters
    ----------
    adapter : ExchangeAdapter
        Answers ``fetch_funding_rate_history(symbol, since, limit)`` (a live, recommend or routed adapter).
    symbol : str
        The perpetual, ccxt unified (``'BTC/USDT:USDT'``).
    retry_s : float
        Seconds before a failed read, or a read whose newest row is not the settlement due, is tried again (> 0).

    Attributes
    ----------
    rate : float
        The last settled rate (fraction per interval, + longs pay shorts); NaN before a settlement was read.
    ts : pandas.Timestamp or None
        Its settlement time (UTC).
    reads : int
        Requests made (a test counts them: one per settlement).
    """

    def __init__(self, adapter: Any, symbol: str, *, retry_s: float = 30.0) -> None:
        if not retry_s > 0:
            raise InvalidInput("retry_s", retry_s, "> 0 seconds")
        self.adapter, self.symbol, self.retry_s = adapter, symbol, float(retry_s)
        self.rate = math.nan
        self.ts: pd.Timestamp | None = None
        self.reads = 0
        self._valid_until: pd.Timestamp | None = None  # the next settlement after ``ts``: read again from then
        self._retry_at: pd.Timestamp | None = None

    async def read(self, now: pd.Timestamp, *, interval_hours: float = 8.0,
                   next_ts: pd.Timestamp | None = None) -> float:
        """The last settled rate at ``now`` (the venue's time, UTC), asking the venue only when a settlement
        newer than the held one is due.

        ``interval_hours``: the venue's settlement interval (hours); ``next_ts``: its announced next settlement
        (``FundingRate.ts`` of the current-rate answer; None when unknown)."""
        now = pd.Timestamp(now)
        if self._valid_until is not None and now < self._valid_until:
            return self.rate
        if self._retry_at is not None and now < self._retry_at:
            return self.rate
        self.reads += 1
        try:
            rows = await self.adapter.fetch_funding_rate_history(self.symbol, None, LAST_ROWS)
        except ExchangeError as exc:  # kept: the next try after retry_s (the adapter retried temporary errors)
            log.warning("settled funding rate of %s not read (%s); keeping %s", self.symbol, exc, self.rate)
            self._valid_until, self._retry_at = None, now + pd.Timedelta(seconds=self.retry_s)
            return self.rate
        past = [r for r in rows if r.ts is not None and not pd.isna(r.ts) and r.ts <= now and math.isfinite(r.rate)]
        if past:
            last = max(past, key=lambda r: r.ts)
            if self.ts is None or last.ts >= self.ts:
                self.rate, self.ts = float(last.rate), pd.Timestamp(last.ts)
        due = self._next_settlement(interval_hours, next_ts)
        if due is not None and due > now:
            self._valid_until, self._retry_at = due, None
        else:  # nothing settled yet, or the venue has not published the settlement due: ask again soon
            self._valid_until, self._retry_at = None, now + pd.Timedelta(seconds=self.retry_s)
        return self.rate

    def _next_settlement(self, interval_hours: float, next_ts: pd.Timestamp | None) -> pd.Timestamp | None:
        """The settlement after the held one: its time plus the interval, or the announced next one when sooner."""
        if self.ts is None:
            return None
        out = [self.ts + pd.Timedelta(hours=float(interval_hours))] if interval_hours and interval_hours > 0 else []
        if next_ts is not None and not pd.isna(next_ts) and pd.Timestamp(next_ts) > self.ts:
            out.append(pd.Timestamp(next_ts))
        return min(out) if out else None
