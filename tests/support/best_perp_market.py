"""The market of the per-entry best-perp backtests and sweeps (tests/test_xvenue_best_backtest.py hand-checks
it; tests/test_xvenue_best_sweep.py sweeps it): spot on binance, perps on okx and bybit at the same price until
hour 108 (bybit's lower fee wins), then bybit's perp 0.1 % lower (okx wins)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from hedge_core.backtest.timeline import Market
from hedge_core.backtest.xvenue import cross_venue_market
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.params.models import ExitParams
from hedge_core.params.xcarry import CrossCarryParams

__all__ = ["FEES", "HOURS", "SWITCH_H", "T0", "funding", "markets", "papers", "prices", "xparams"]

T0 = pd.Timestamp("2024-01-01T00:00Z")
HOURS = 24 * 8
SWITCH_H = 108  # the replay starts after the 72 h warmup
FEES = {"okx": 0.0005, "bybit": 0.0002}


def prices(perp_factor: np.ndarray | float = 1.0) -> Market:
    idx = pd.date_range(T0, periods=HOURS, freq="1h", tz="UTC")
    close = 40_000.0 + 100.0 * np.sin(np.arange(HOURS) / 10.0)
    spot = pd.DataFrame({"open": close, "high": close * 1.0005, "low": close * 0.9995, "close": close,
                         "volume": 5_000.0}, index=idx)
    pc = close * 1.0001 * perp_factor
    perp = spot.assign(open=pc, high=pc * 1.0005, low=pc * 0.9995, close=pc)
    return Market("binance", "BTC/USDT", "BTC/USDT:USDT", "1h", spot, perp, perp, None)


def funding(venue: str) -> pd.DataFrame:
    ft = pd.date_range(T0 + pd.Timedelta(hours=8), T0 + pd.Timedelta(hours=HOURS - 1), freq="8h", tz="UTC")
    return pd.DataFrame({"ts": ft, "venue": venue, "symbol": "BTCUSDT", "funding_rate": 0.0001, "interval_hours": 8.0})


def markets() -> dict[str, Market]:
    factor = np.where(np.arange(HOURS) >= SWITCH_H, 0.999, 1.0)
    return {"okx": cross_venue_market(prices(), funding("okx"), perp_venue="okx"),
            "bybit": cross_venue_market(prices(factor), funding("bybit"), perp_venue="bybit")}


def papers() -> dict[str, PaperConfig]:
    return {v: replace(PaperConfig(), venue=v, perp_taker_fee=f, slippage_bps=0.0, impact_k_bps=0.0)
            for v, f in FEES.items()}


def xparams(**kw) -> CrossCarryParams:
    base = {"notional": 8_000.0, "min_funding_rate": 0.00001, "min_net_carry": -1.0, "spot_venue": "binance",
            "perp_venue": "okx", "perp_venues": ("bybit",), "spot_taker_fee": 0.001, "perp_taker_fee": 0.0005,
            "slippage_rate": 0.0, "exit": ExitParams(max_holding_hours=24, profit_target_pct=None, stop_loss_pct=None,
                                                     funding_unfavourable_intervals=None, rearm=True)}
    base.update(kw)
    return CrossCarryParams(**base)
