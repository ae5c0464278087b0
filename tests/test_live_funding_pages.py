"""Every funding payment since the hedge started, however many pages the venue cuts them into (real ccxt ->
the local simulators, each paging as its documentation says):

- Binance ``GET /fapi/v1/income`` ("Get Income History"): oldest first from ``startTime``, ``limit`` default 100,
  max 1000; rate and mark come from ``GET /fapi/v1/fundingRate``, which pages the same way;
- Bybit ``GET /v5/execution/list`` ("Get Trade History"): 7 days per request, newest first, ``limit`` [1, 100],
  default 50;
- OKX ``GET /api/v5/account/bills-archive`` ("Get bills details (last 3 months)"): newest first, ``limit`` max
  100, ``begin`` by time, ``after`` by ``billId``.

Read in one request, a hedge older than one page lost its newer funding (Binance, Bybit) or its older funding
(OKX); the ledger then drifts from the venue and the reconciliation flags the hedge."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.types import OrderRequest, Side, client_order_id
from tests.support.live_env import bybit_env, live_env, okx_env

PERP = "BTC/USDT:USDT"
HOUR = 3_600_000


def rate_of(k: int) -> float:
    return 0.0001 * (1 + k % 7) * (-1 if k % 11 == 0 else 1)


def test_binance_reads_every_income_page_and_every_rate_page():
    n = 1_234  # two pages of 1,000; the public rate history is read in pages of 100

    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, client_order_id("binance", "fp", 1)))
            start = sim.now_ms() - (n + 5) * HOUR
            for k in range(n):
                sim.settle_funding("BTCUSDT", rate_of(k), ts_ms=start + k * HOUR, mark=20_000.0 + k)
            # the venue's own page: what one request without paging sees
            assert len(await a.exchange.fetch_funding_history(PERP, start, None, {"subType": "linear"})) == 100
            pays = await a.fetch_funding_payments(PERP, pd.Timestamp(start, unit="ms", tz="UTC"))
            assert len(pays) == n and len({p.ts for p in pays}) == n
            # a short of 0.01 BTC receives 0.01 x mark x rate per settlement (pays when the rate is negative)
            want = sum(0.01 * (20_000.0 + k) * rate_of(k) for k in range(n))
            assert sum(p.amount for p in pays) == pytest.approx(want, rel=1e-12, abs=1e-9)
            last = max(pays, key=lambda p: p.ts)
            assert (last.rate, last.mark_price) == (pytest.approx(rate_of(n - 1)), pytest.approx(20_000.0 + n - 1))
            assert last.position_qty == pytest.approx(-0.01)
            income = [p for m, path, p in sim.requests if path == "/fapi/v1/income"]
            assert len(income) == 3 and [q.get("limit") for q in income] == [None, "1000", "1000"]  # ours: 2 pages
    asyncio.run(go())


def test_bybit_walks_seven_day_windows_and_full_pages():
    days = 20  # 1 h funding: 168 rows a window, more than one page of 100

    async def go():
        async with bybit_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 30_000.0)
            await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, client_order_id("bybit", "fp", 1)))
            start = sim.now_ms() - days * 24 * HOUR - HOUR
            n = days * 24
            for k in range(n):
                sim.settle_funding("BTCUSDT", rate_of(k), ts_ms=start + k * HOUR)
            since = pd.Timestamp(start, unit="ms", tz="UTC")
            # one request from startTime answers 50 rows of its first 7 days
            assert len(await a.exchange.fetch_funding_history(PERP, start, None, {"subType": "linear"})) == 50
            pays = await a.fetch_funding_payments(PERP, since)
            assert len(pays) == n and len({p.ts for p in pays}) == n
            want = sum(0.01 * 30_000.0 * rate_of(k) for k in range(n))
            assert sum(p.amount for p in pays) == pytest.approx(want, rel=1e-12, abs=1e-9)
            assert all(p.rate == pytest.approx(rate_of(k)) for k, p in enumerate(sorted(pays, key=lambda p: p.ts)))
            calls = [p for m, path, p in sim.requests if path == "/v5/execution/list" and p.get("execType") == "Funding"]
            assert all(int(c["endTime"]) - int(c["startTime"]) <= 7 * 24 * HOUR for c in calls[1:])
    asyncio.run(go())


def test_okx_pages_back_by_bill_id_to_the_start():
    n = 250

    async def go():
        async with okx_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTC-USDT-SWAP", 30_000.0)
            await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, client_order_id("okx", "fp", 1)))
            start = sim.now_ms() - (n + 5) * HOUR
            for k in range(n):
                sim.settle_funding("BTC-USDT-SWAP", rate_of(k), ts_ms=start + k * HOUR)
            before = await a.exchange.fetch_funding_history(PERP)  # ccxt alone: the newest 100
            assert len(before) == 100
            pays = await a.fetch_funding_payments(PERP, pd.Timestamp(start, unit="ms", tz="UTC"))
            assert len(pays) == n and len({p.ts for p in pays}) == n
            want = sum(0.01 * 30_000.0 * rate_of(k) for k in range(n))
            assert sum(p.amount for p in pays) == pytest.approx(want, rel=1e-12, abs=1e-9)
            bills = [p for m, path, p in sim.requests if path == "/api/v5/account/bills-archive"]
            assert [("after" in b) for b in bills[-3:]] == [False, True, True] and "subType" not in bills[-1]
            # a later start reads only what follows it
            later = await a.fetch_funding_payments(PERP, pd.Timestamp(start + 200 * HOUR, unit="ms", tz="UTC"))
            assert len(later) == n - 200
    asyncio.run(go())
