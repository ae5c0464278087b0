"""Scaffolding of the perp-pair-on-live-BARS tests (tests/test_pair_bars_*.py, tests/test_pair_live_schedule*.py):
each venue's settlement grid, publishing an hour's perp and mark candles on a venue's simulator, the market
updates the driver saw, and a PAPER pair started in process on the venues' own public data.

Where each simulator keeps what it publishes (the simulators cite the venues' documentation): Binance USD-M
"Kline/Candlestick Data" and "Mark Price Kline" (``BinanceSim.add_kline``, markets ``fapi`` and ``mark``); Bybit v5
"Get Kline" and "Get Mark Price Kline" (``BybitSim.klines["linear"]``, ``["mark"]``); OKX "Get candlesticks" and
"Get mark price candlesticks" (``OkxSim.candles["SWAP"]``, ``["mark"]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from hedge_core.engine.events import MarketUpdate

# The base volume of each venue's published perp candle (the mark candles carry none).
VOLUME = {"binance": 5.0, "bybit": 7.0, "okx": 5.0}


def grid(lo: pd.Timestamp, hi: pd.Timestamp, hours: int) -> list[pd.Timestamp]:
    """The 00:00-aligned settlement times of a ``hours`` venue in ``(lo, hi]``."""
    step = pd.Timedelta(hours=hours)
    t, out = lo.floor(step) + step, []
    while t <= hi:
        out.append(t)
        t += step
    return out


def ms(t: pd.Timestamp) -> int:
    """``t`` in milliseconds since the epoch (the venues' time unit)."""
    return int(t.value // 1_000_000)


def publish_hour(sim: Any, venue: str, t: pd.Timestamp, close: float, mark: float) -> None:
    """Publish the closed 1h perp candle (open = high = low = close, :data:`VOLUME`) and mark candle labelled ``t``
    for BTC/USDT:USDT on ``venue``'s simulator ``sim`` (``venue``: binance, bybit or okx)."""
    m = ms(t)
    if venue == "binance":
        sim.add_kline("BTCUSDT", "fapi", m, close, close, close, close, VOLUME[venue])
        sim.add_kline("BTCUSDT", "mark", m, mark, mark, mark, mark)
    elif venue == "bybit":
        sim.klines["linear"].append([m, close, close, close, close, VOLUME[venue]])
        sim.klines["mark"].append([m, mark, mark, mark, mark, 0.0])
    elif venue == "okx":
        sim.candles["SWAP"].append([m, close, close, close, close, VOLUME[venue]])
        sim.candles["mark"].append([m, mark, mark, mark, mark, 0.0])
    else:
        raise ValueError(f"venue must be one of binance, bybit, okx; got {venue!r}")


def record_updates(monkeypatch: Any) -> list[MarketUpdate]:
    """Every ``MarketUpdate`` any ``HedgeDriver`` is fed from now on (the driver still gets it), in order."""
    from hedge_core.engine.driver import HedgeDriver

    seen: list[MarketUpdate] = []
    feed0 = HedgeDriver.feed

    async def recording(self, event):
        if isinstance(event, MarketUpdate):
            seen.append(event)
        return await feed0(self, event)

    monkeypatch.setattr(HedgeDriver, "feed", recording)
    return seen


class SharedAdapter:
    """A venue adapter the test owns, lent to the runner: its ``close`` is the test's (the pair's context)."""

    def __init__(self, adapter: Any) -> None:
        self._adapter = adapter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)

    async def close(self) -> None:
        return None


async def start_paper_pair(tmp_path: Path, by_venue: dict[str, Any], hedge: dict[str, Any]) -> tuple[Any, Any]:
    """A Supervisor on a fresh store in ``tmp_path`` whose public market data per venue is the test's adapter in
    ``by_venue`` (production builds a new adapter per call; these are shared), starting the PAPER hedge ``hedge``
    (``start_hedge`` fields; mode paper, poll 0.05 s and 10,000 USDT on each paper venue unless given).
    Returns (its HedgeTask, the store) for :func:`tests.support.inprocess_hedge.stop`."""
    from hedge_core.runner.supervisor import Supervisor
    from hedge_core.store import Store

    store = Store(tmp_path / "db.duckdb", hold=True)
    sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
    sup._market_data = lambda spec: SharedAdapter(by_venue[spec.venue])
    await sup.start_hedge({"mode": "paper", "poll_s": 0.05,
                           "balances": {"spot": {"USDT": 10_000.0}, "perp": {"USDT": 10_000.0}}, **hedge})
    return sup.hedges[hedge["hedge_id"]], store
