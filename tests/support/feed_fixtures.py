"""Fixtures of the live-feed tests: an in-memory store, a synthetic market and publishing it to a simulator."""

from __future__ import annotations

import numpy as np
import pandas as pd

T0 = pd.Timestamp("2024-01-01T00:00Z")
H = pd.Timedelta(hours=1)


class FakeStore:
    def __init__(self, bars: dict[str, pd.DataFrame], funding: pd.DataFrame) -> None:
        self.bars, self.funding = bars, funding

    def read_bars(self, venue, symbol, kind, timeframe, start=None, end=None, resample=None):
        return self.bars[kind]

    def read_funding(self, venue, symbol, start=None, end=None):
        return self.funding


def _market(n: int, seed: int):
    rng = np.random.default_rng(seed)
    idx = pd.date_range(T0, periods=n, freq="1h", tz="UTC")
    frames = {}
    for kind, shift in (("spot", 0.0), ("perp", 5.0), ("mark", 4.0)):
        c = np.round(30_000 + shift + np.cumsum(rng.normal(0, 50, n)), 2)
        o = np.round(c - rng.normal(0, 10, n), 2)
        df = pd.DataFrame({"open": o, "high": np.maximum(o, c) + 1.0, "low": np.minimum(o, c) - 1.0,
                           "close": c}, index=idx)
        if kind != "mark":
            df["volume"] = np.round(rng.uniform(1, 10, n), 3)
        frames[kind] = df
    f_idx = pd.DatetimeIndex([T0, T0 + 8 * H, T0 + 16 * H], tz="UTC")
    funding = pd.DataFrame({"funding_rate": [0.0001, -0.00015, 0.00021]}, index=f_idx)
    return frames, funding


def _publish(sim, frames, funding, upto_label: pd.Timestamp) -> None:
    market_of = {"spot": "spot", "perp": "fapi", "mark": "mark"}
    for kind, df in frames.items():
        for ts, row in df.iterrows():
            if ts <= upto_label:
                sim.add_kline("BTCUSDT", market_of[kind], int(ts.value // 1_000_000), row["open"],
                              row["high"], row["low"], row["close"], row.get("volume", 0.0))
    for ts, row in funding.iterrows():
        if ts <= upto_label + H:
            sim.settle_funding("BTCUSDT", row["funding_rate"], ts_ms=int(ts.value // 1_000_000))

