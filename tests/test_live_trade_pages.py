"""Every own execution since ``since``, however the venue pages and windows them (real ccxt -> the local
simulators, each following its documentation):

- Binance spot ``GET /api/v3/myTrades``: "The time between startTime and endTime can't be longer than 24 hours",
  limit "Default 500; max 1000"; USD-M ``GET /fapi/v1/userTrades``: "cannot be longer than 7 days";
- Bybit ``GET /v5/execution/list``: 7 days per request, newest first, ``limit`` [1, 100] (funding rows share the
  list: a page of funding still means more pages);
- OKX ``GET /api/v5/trade/fills-history``: newest first, 100 rows, ``after`` = ``billId``.

The reconciliation compares the venue's fills per order with the journal over a trailing window: read in one
request, the venue side missed fills past the first day (Binance spot) or page, and a sound hedge was flagged."""

from __future__ import annotations

import asyncio

import pandas as pd

from hedge_core.types import OrderRequest, Side, client_order_id
from tests.support.live_env import bybit_env, live_env, okx_env

SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"
HOUR = 3_600_000


def ts(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC")


def spread(rows: list[dict], template: dict, n: int, start: int, step: int, **fields) -> None:
    """``n`` copies of ``template``, the k-th at ``start + k*step`` ms, other fields from ``fields[name](k)``."""
    for k in range(n):
        rows.append({**template, **{f: fn(k) for f, fn in fields.items()}})


def test_binance_spot_one_day_windows_and_perp_seven_day_windows():
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            await a.create_order(OrderRequest(SPOT, Side.BUY, 0.01, client_order_id("binance", "tp", 1)))
            await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, client_order_id("binance", "tp", 2)))
            spot_t = next(t for t in sim.trades if t["market"] == "spot")
            perp_t = next(t for t in sim.trades if t["market"] != "spot")
            now = sim.now_ms()
            start = now - 20 * 24 * HOUR
            # 1,100 spot fills over 5 days (one page of 1,000 cannot hold a busy day) and 1,300 perp fills over 19 days
            spread(sim.trades, spot_t, 1_100, start, 0, id=lambda k: 10_000_000 + k,
                   time=lambda k: start + (k * 5 * 24 * HOUR) // 1_100 if k < 900 else start + 3 * HOUR + k)
            spread(sim.trades, perp_t, 1_300, start, 0, id=lambda k: 20_000_000 + k,
                   time=lambda k: start + k * HOUR * 19 * 24 // 1_300)
            one = await a.exchange.fetch_my_trades(SPOT, start)  # ccxt alone: one request
            assert len(one) < 1_100
            spot = await a.fetch_my_trades(SPOT, ts(start))
            assert len(spot) == 1_101 and len({f.trade_id for f in spot}) == 1_101
            perp = await a.fetch_my_trades(PERP, ts(start))
            assert len(perp) == 1_301 and len({f.trade_id for f in perp}) == 1_301
            for path, span in (("/api/v3/myTrades", 24 * HOUR), ("/fapi/v1/userTrades", 7 * 24 * HOUR)):
                calls = [p for _m, pth, p in sim.requests if pth == path and "endTime" in p]
                assert calls and all(int(c["endTime"]) - int(c["startTime"]) <= span for c in calls)
            assert not [x for x in sim.answers if x[2] is not None and x[0].endswith(("myTrades", "userTrades"))]
    asyncio.run(go())


def test_bybit_execution_windows_with_funding_rows_in_the_pages():
    async def go():
        async with bybit_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 30_000.0)
            await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, client_order_id("bybit", "tp", 1)))
            trade = next(r for r in sim.executions if r["execType"] == "Trade")
            now = sim.now_ms()
            start = now - 20 * 24 * HOUR
            # 300 trades and 480 hourly funding rows over 20 days: pages of 100 are mostly funding
            spread(sim.executions, trade, 300, start, 0, execId=lambda k: f"t-{k:05d}",
                   execTime=lambda k: str(start + k * 20 * 24 * HOUR // 300 + 7), seq=lambda k: 100_000 + k)
            spread(sim.executions, {**trade, "execType": "Funding", "orderId": "", "orderLinkId": ""}, 480, start, 0,
                   execId=lambda k: f"f-{k:05d}", execTime=lambda k: str(start + k * HOUR), seq=lambda k: 200_000 + k)
            fills = await a.fetch_my_trades(PERP, ts(start))
            assert len(fills) == 301 and len({f.trade_id for f in fills}) == 301
    asyncio.run(go())


def test_okx_fills_page_back_by_bill_id():
    async def go():
        async with okx_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTC-USDT-SWAP", 30_000.0)
            await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, client_order_id("okx", "tp", 1)))
            fill = sim.fills[-1]
            now = sim.now_ms()
            start = now - 10 * 24 * HOUR
            spread(sim.fills, fill, 250, start, 0, tradeId=lambda k: str(3_000_000 + k),
                   billId=lambda k: str(4_000_000 + k), ts=lambda k: str(start + k * HOUR))
            assert len(await a.exchange.fetch_my_trades(PERP, start)) == 100  # ccxt alone: the newest 100
            fills = await a.fetch_my_trades(PERP, ts(start))
            assert len(fills) == 251 and len({f.trade_id for f in fills}) == 251
            later = await a.fetch_my_trades(PERP, ts(start + 200 * HOUR))
            assert len(later) == 51
    asyncio.run(go())
