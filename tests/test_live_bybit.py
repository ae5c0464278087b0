"""Second venue: the same adapter configured for Bybit (v5, unified account), through real ccxt,
against the small local Bybit simulator. Covers markets, ticker, funding rate, orders on both
legs (thin create answers completed by polling), cancel by client id, positions, unified balance,
leverage incl. "not modified", retries, typed errors and the timeout-without-duplicate path.
Not covered for Bybit: hedge mode, margin mode, funding history/payments, my trades."""

from __future__ import annotations

import asyncio

import pytest

from hedge_core import errors as he
from hedge_core.exchange.base import RetryPolicy
from hedge_core.types import OrderRequest, OrderStatus, OrderType, Side, client_order_id
from tests.support.live_env import bybit_env

SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"


def cid(n: int) -> str:
    return client_order_id("bybit", "x", n)


def test_bybit_markets_ticker_and_funding():
    async def go():
        async with bybit_env() as env:
            m = await env.adapter.load_markets()
            assert (m[SPOT].tick_size, m[SPOT].lot_size, m[SPOT].min_notional) == (0.01, 1e-06, 1.0)
            assert (m[PERP].tick_size, m[PERP].lot_size, m[PERP].max_leverage) == (0.1, 0.001, 100.0)
            env.sim.set_price("BTCUSDT", 25_000.0, mark=25_010.0)
            t = await env.adapter.fetch_ticker(PERP)
            assert (t.last, t.mark) == (25_000.0, 25_010.0)
            fr = await env.adapter.fetch_funding_rate(PERP)
            assert fr.rate == pytest.approx(0.0001) and fr.mark_price == 25_010.0
    asyncio.run(go())


def test_bybit_order_lifecycle_both_legs():
    async def go():
        async with bybit_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 30_000.0)
            spot = await a.create_order(OrderRequest(SPOT, Side.BUY, 0.01, cid(1)))
            # Bybit answers a create with ids only: the adapter polled the order to its final state
            assert spot.status is OrderStatus.CLOSED and spot.filled == pytest.approx(0.01)
            assert spot.avg_price == pytest.approx(30_000.0)
            short = await a.create_order(OrderRequest(PERP, Side.SELL, 0.02, cid(2)))
            assert short.status is OrderStatus.CLOSED
            lim = await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, cid(3), type=OrderType.LIMIT,
                                                    price=31_000.0))
            assert lim.status is OrderStatus.OPEN and lim.price == 31_000.0
            assert (await a.fetch_order(PERP, client_order_id=cid(3))).id == lim.id
            c = await a.cancel_order(PERP, client_order_id=cid(3))
            assert c.status is OrderStatus.CANCELED and c.id == lim.id
            [p] = await a.fetch_positions()
            assert (p.symbol, p.qty, p.entry_price, p.leverage) == (PERP, pytest.approx(-0.02), 30_000.0, 10.0)
            close = await a.create_order(OrderRequest(PERP, Side.BUY, 0.02, cid(4), reduce_only=True))
            assert close.status is OrderStatus.CLOSED
            assert await a.fetch_positions() == []
            bal = await a.fetch_balance("spot")  # unified account: one wallet
            assert bal["BTC"].free == pytest.approx(0.01)
            fees = 300 * sim.spot_fee + 2 * 600 * sim.taker
            assert bal["USDT"].total == pytest.approx(10_000 - 300 - fees)
            with pytest.raises(he.OrderNotFound):
                await a.cancel_order(PERP, client_order_id="never-sent")
            with pytest.raises(he.OrderNotFound):
                await a.fetch_order(SPOT, client_order_id="never-sent")
    asyncio.run(go())


def test_bybit_leverage_not_modified_is_success():
    async def go():
        async with bybit_env() as env:
            await env.adapter.set_leverage(PERP, 5)
            assert env.sim.leverage["BTCUSDT"] == 5
            await env.adapter.set_leverage(PERP, 5)
            assert ("POST /v5/position/set-leverage", 200, 110043) in env.sim.answers
    asyncio.run(go())


@pytest.mark.parametrize("code, msg, cls", [
    (110007, "ab not enough for new order", he.InsufficientFunds),
    (10004, "Error sign, please check your signature generation algorithm.", he.AuthenticationError),
    (10006, "Too many visits!", he.RateLimited),
    (110001, "Order does not exist.", he.OrderNotFound),
    (10001, "params error: something", he.OperationalError),
])
def test_bybit_errors_are_typed(code, msg, cls):
    async def go():
        async with bybit_env(retry=RetryPolicy(max_attempts=1)) as env:
            await env.adapter.load_markets()
            env.sim.inject("/v5/", count=50, code=code, msg=msg)
            with pytest.raises(cls):
                await env.adapter.create_order(OrderRequest(PERP, Side.BUY, 0.01, cid(9)))
    asyncio.run(go())


def test_bybit_rate_limit_then_success():
    async def go():
        async with bybit_env(retry=RetryPolicy(max_attempts=4, seed=2)) as env:
            await env.adapter.load_markets()
            env.sim.inject("wallet-balance", count=2, code=10006)
            assert (await env.adapter.fetch_balance("perp"))["USDT"].total == pytest.approx(10_000)
            assert env.adapter.retries == 2
    asyncio.run(go())


def test_bybit_timeout_answer_lost_no_duplicate():
    async def go():
        async with bybit_env(timeout_ms=300, retry=RetryPolicy(max_attempts=3, seed=2)) as env:
            a, sim = env.adapter, env.sim
            await a.load_markets()
            sim.inject("POST /v5/order/create", count=1, hang_after=1.0)
            o = await a.create_order(OrderRequest(PERP, Side.BUY, 0.01, cid(7)))
            assert o.status is OrderStatus.CLOSED and sim.order_count(cid(7)) == 1
            assert sum(1 for r in sim.requests if r[:2] == ("POST", "/v5/order/create")) == 1
    asyncio.run(go())
