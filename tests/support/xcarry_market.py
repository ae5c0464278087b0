"""A cross-venue carry market for the fast-path tests: Binance prices and okx funding on a schedule of its own."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hedge_core.backtest.timeline import Market
from hedge_core.backtest.xvenue import cross_venue_market


def okx_funding_market(spot: pd.DataFrame, perp: pd.DataFrame, rates: list[tuple[float, float]],
                       interval_h: float) -> Market:
    """Binance ``spot``/``perp`` hourly bars (the perp also the mark) and okx funding every ``interval_h`` hours
    from the first bar + ``interval_h`` to the last bar: ``rates`` = [(from day, rate per interval), ...], the last
    one that started applies (NaN before the first)."""
    t0, last = spot.index[0], spot.index[-1]
    ft = pd.date_range(t0 + pd.Timedelta(hours=interval_h), last, freq=f"{int(interval_h)}h", tz="UTC")
    day = (ft - t0) / pd.Timedelta(days=1)
    r = np.full(len(ft), np.nan)
    for d0, rate in rates:
        r[day >= d0] = rate
    cv = pd.DataFrame({"ts": ft, "venue": "okx", "symbol": "BTCUSDT", "funding_rate": r, "interval_hours": interval_h})
    prices = Market("binance", "BTC/USDT", "BTC/USDT:USDT", "1h", spot, perp, perp, None)
    return cross_venue_market(prices, cv, perp_venue="okx")
