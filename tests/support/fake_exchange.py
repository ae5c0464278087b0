"""A fake ccxt exchange answering OHLCV and funding history for downloader tests."""

from __future__ import annotations

import ccxt
import numpy as np
import pandas as pd

H = 3_600_000


T0 = int(pd.Timestamp("2024-01-01T00:00Z").value // 1_000_000)


class FakeExchange:
    """Offline stand-in for a sync ccxt exchange.

    Serves 1h bars from T0 up to ``now`` INCLUDING the still-open bar (like a venue does), at most
    ``max_limit`` per call, from the first bar at or after ``since``; funding every 8h stamped a few
    ms late, like Binance. Every call is logged; ``fail_calls`` makes those call numbers raise.
    """

    id = "fakex"
    enableRateLimit = True
    rateLimit = 0

    def __init__(self, now_ms: int, *, max_limit: int = 500, fail_calls: tuple[int, ...] = (),
                 has_mark: bool = True) -> None:
        self.now = now_ms
        self.max_limit = max_limit
        self.fail_calls = set(fail_calls)
        self.calls: list[tuple] = []
        self.has = {"fetchOHLCV": True, "fetchMarkOHLCV": has_mark, "fetchFundingRateHistory": True}
        self.markets = {"BTC/USDT", "BTC/USDT:USDT", "ETH/USDT", "ETH/USDT:USDT"}

    def milliseconds(self) -> int:
        return self.now

    def _maybe_fail(self) -> None:
        if len(self.calls) in self.fail_calls:
            raise ccxt.NetworkError("fakex connection reset")

    @staticmethod
    def price(symbol: str, t: int, kind: str) -> list[float]:
        base = 40_000.0 if symbol.startswith("BTC") else 2_000.0
        i = (t - T0) // H
        p = base * (1 + 0.001 * np.sin(i / 7.0)) * (1.0002 if ":" in symbol else 1.0)
        if kind == "mark":
            p *= 1.00001
        return [p, p * 1.002, p * 0.997, p * 1.0005]

    def fetch_ohlcv(self, symbol: str, timeframe: str = "1m", since: int | None = None, limit: int | None = None,
                    params: dict | None = None) -> list[list]:
        params = params or {}
        self.calls.append(("ohlcv", symbol, timeframe, since, limit, params.get("price")))
        self._maybe_fail()
        assert symbol in self.markets and timeframe == "1h"
        n = min(limit or self.max_limit, self.max_limit)
        start = max(T0, -(-(since or T0) // H) * H)
        out = []
        t = start
        kind = "mark" if params.get("price") == "mark" else "bar"
        while t <= self.now and len(out) < n:
            o, h, lo, c = self.price(symbol, t, kind)
            out.append([t, o, h, lo, c, None if kind == "mark" else 10.0 + (t - T0) // H % 5])
            t += H
        return out

    def funding_times(self) -> list[int]:
        return [T0 + k * 8 * H + 17 for k in range(0, (self.now - T0) // (8 * H) + 1)]

    def fetch_funding_rate_history(self, symbol: str | None = None, since: int | None = None,
                                   limit: int | None = None, params: dict | None = None) -> list[dict]:
        self.calls.append(("funding", symbol, None, since, limit, None))
        self._maybe_fail()
        n = min(limit or self.max_limit, self.max_limit)
        items = [{"symbol": symbol, "timestamp": t, "fundingRate": 0.0001 * (1 + (t // H) % 3), "info": {}}
                 for t in self.funding_times() if t >= (since or 0) and t <= self.now]
        return items[:n]


NOW = T0 + 1500 * H + 25 * 60_000  # 1500 closed bars, bar 1500 still open (25 minutes in)

