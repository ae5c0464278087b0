"""Second venue: the same adapter configured for Bybit (v5, unified account), through real ccxt,
against the small local Bybit simulator. Covers markets, ticker, funding rate, orders on both
legs (thin create answers completed by polling), cancel by client id, positions, unified balance,
leverage incl. "not modified", the account-wide margin mode, the position-mode switch, own fills
incl. the venue's liquidations (not funding rows), funding history and own funding payments in
the adapter's sign convention, retries, typed errors and the timeout-without-duplicate path.
Bars (spot, perp, mark) and open orders without a symbol are covered too. Not covered for Bybit:
hedge-mode ORDERS (the adapter refuses them)."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core import errors as he
from hedge_core.exchange.base import RetryPolicy
from hedge_core.types import (
    MarginMode,
    MarketKind,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionMode,
    PositionSide,
    Side,
    client_order_id,
)
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
            before = env.sim.now_ms()
            t = await env.adapter.fetch_ticker(PERP)
            assert (t.last, t.mark) == (25_000.0, 25_010.0)
            # the venue's time of the answer (v5 ticker rows have none), not this machine's clock
            assert before <= int(t.ts.value // 1_000_000) <= env.sim.now_ms()
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
            # Bybit takes a spot buy's fee in the coin received (BTC); the perp fees in USDT
            assert bal["BTC"].free == pytest.approx(0.01 * (1 - sim.spot_fee))
            fees = 2 * 600 * sim.taker
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


def test_bybit_margin_mode_is_account_wide_and_position_mode_switches():
    async def go():
        async with bybit_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 30_000.0)
            await a.set_margin_mode(PERP, MarginMode.ISOLATED)  # a unified account: the whole account
            assert sim.margin_mode == "ISOLATED_MARGIN"
            await a.set_margin_mode(PERP, MarginMode.ISOLATED)  # again: still a success
            await a.set_position_mode(PositionMode.HEDGE)
            assert sim.position_mode == 3
            await a.set_position_mode(PositionMode.HEDGE)  # "not modified" (110025) is a success
            assert ("POST /v5/position/switch-mode", 200, 110025) in sim.answers
            with pytest.raises(he.InvalidInput, match="position_side"):  # refused before any request
                await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, cid(20), position_side=PositionSide.SHORT))
            await a.set_position_mode(PositionMode.ONE_WAY)
            await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, cid(21)))
            [p] = await a.fetch_positions()
            assert p.margin_mode is MarginMode.ISOLATED and p.qty == pytest.approx(-0.01)
            with pytest.raises(he.ExchangeError, match="existing position"):
                await a.set_position_mode(PositionMode.HEDGE)
            assert sim.position_mode == 0
            await a.set_margin_mode(PERP, MarginMode.CROSS)
            assert sim.margin_mode == "REGULAR_MARGIN"
            assert (await a.fetch_positions())[0].margin_mode is MarginMode.CROSS
        async with bybit_env() as env:  # a fresh adapter learns the account's mode from the venue
            env.sim.set_price("BTCUSDT", 30_000.0)
            env.sim.margin_mode = "ISOLATED_MARGIN"
            await env.adapter.create_order(OrderRequest(PERP, Side.BUY, 0.01, cid(22)))
            [p] = await env.adapter.fetch_positions()
            assert p.margin_mode is MarginMode.ISOLATED
            assert sum(1 for _m, path, _p in env.sim.requests if path == "/v5/account/info") == 1
            await env.adapter.fetch_positions()
            assert sum(1 for _m, path, _p in env.sim.requests if path == "/v5/account/info") == 1  # cached
    asyncio.run(go())


def test_bybit_own_fills_include_liquidations_but_not_funding():
    """ccxt's fetch_my_trades asks Bybit for execType=Trade only; the adapter reads every fill type,
    so the driver sees a venue liquidation (BustTrade, no order of ours) like on Binance."""
    async def go():
        async with bybit_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 30_000.0)
            o = await a.create_order(OrderRequest(PERP, Side.SELL, 0.02, cid(30)))
            sim.settle_funding("BTCUSDT", 0.0001)
            sim.set_price("BTCUSDT", 33_000.0)
            sim.liquidate("BTCUSDT", 33_000.0)
            fills = await a.fetch_my_trades(PERP)
            assert [(f.order_id, f.side, f.qty, f.price) for f in fills] == [
                (o.id, Side.SELL, pytest.approx(0.02), 30_000.0),
                (fills[1].order_id, Side.BUY, pytest.approx(0.02), 33_000.0)]
            assert fills[1].order_id.startswith("liq-") and fills[0].client_order_id == cid(30)
            assert fills[0].fee == pytest.approx(0.02 * 30_000 * sim.taker)
            assert await a.fetch_positions() == []
            rows = [r for m, path, r in sim.requests if path == "/v5/execution/list"]
            assert rows and all("execType" not in r for r in rows)  # every type asked, funding dropped here
    asyncio.run(go())


@pytest.mark.parametrize("side, rate", [(Side.SELL, 0.0001), (Side.BUY, 0.0001), (Side.SELL, -0.0002)])
def test_bybit_funding_payments_are_signed_received_positive(side, rate):
    """Bybit reports funding as a charge (execFee > 0 paid); the adapter returns what every venue
    returns: + received / - paid, with the rate and mark of the public funding history."""
    async def go():
        async with bybit_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 30_000.0, mark=30_010.0)
            await a.create_order(OrderRequest(PERP, side, 0.02, cid(40)))
            before = sim.coins["USDT"]
            t0 = sim.now_ms()
            sim.settle_funding("BTCUSDT", rate, ts_ms=t0)
            [pay] = await a.fetch_funding_payments(PERP)
            signed_qty = 0.02 if side is Side.BUY else -0.02
            want = -signed_qty * 30_010.0 * rate  # the engine's convention: -qty x mark x rate
            assert pay.amount == pytest.approx(want)
            assert sim.coins["USDT"] - before == pytest.approx(want)  # the venue's own wallet agrees
            assert (pay.rate, pay.mark_price) == (pytest.approx(rate), pytest.approx(30_010.0))
            assert pay.position_qty == pytest.approx(signed_qty)
            [h] = await a.fetch_funding_rate_history(PERP, since=pd.Timestamp(t0 - 1000, unit="ms", tz="UTC"))
            assert h.rate == pytest.approx(rate)
    asyncio.run(go())


def test_bybit_bars_all_kinds_and_open_orders_of_every_market():
    async def go():
        async with bybit_env() as env:
            a, sim = env.adapter, env.sim
            t0 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
            for k in range(5):
                sim.klines["spot"].append([t0 + k * 3_600_000, 100 + k, 102 + k, 99 + k, 101 + k, 10 + k])
                sim.klines["linear"].append([t0 + k * 3_600_000, 100.5 + k, 102.5 + k, 99.5 + k, 101.5 + k, 20 + k])
                sim.klines["mark"].append([t0 + k * 3_600_000, 100.4 + k, 102.4 + k, 99.4 + k, 101.4 + k, 0])
            since = pd.Timestamp(t0 + 3_600_000, unit="ms", tz="UTC")
            spot = await a.fetch_bars(SPOT, MarketKind.SPOT, "1h", since=since)
            perp = await a.fetch_bars(PERP, MarketKind.PERP, "1h", since=since)
            mark = await a.fetch_bars(PERP, MarketKind.MARK, "1h", since=since)
            assert [b.ts for b in spot] == [since + pd.Timedelta(hours=k) for k in range(4)]  # oldest first
            assert (spot[0].open, spot[0].close, spot[0].volume) == (101.0, 102.0, 11.0)
            assert (perp[-1].close, perp[-1].volume) == (105.5, 24.0)
            assert (mark[0].close, mark[0].volume, mark[0].kind) == (102.4, 0.0, MarketKind.MARK)
            sim.set_price("BTCUSDT", 30_000.0)
            s1 = await a.create_order(OrderRequest(SPOT, Side.BUY, 0.01, cid(50), type=OrderType.LIMIT, price=29_000.0))
            p1 = await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, cid(51), type=OrderType.LIMIT, price=31_000.0))
            got = await a.fetch_open_orders()  # every spot and linear market, no symbol
            assert sorted(o.id for o in got) == sorted([s1.id, p1.id])
            assert [o.id for o in await a.fetch_open_orders(PERP)] == [p1.id]
    asyncio.run(go())


def test_ticker_time_is_the_venues_never_the_local_clock():
    """Bybit v5 ticker rows carry no time: the answer's server ``time`` is the venue's time of the price;
    with no venue time at all the ticker's time is unknown (NaT), which runner.freshness never takes as fresh."""
    import pandas as pd

    from hedge_core.exchange.ccxt.adapter import ticker_time
    from hedge_core.runner.freshness import price_age_s

    assert ticker_time({"timestamp": 1_700_000_000_000}, {"time": 1}) == pd.Timestamp(1_700_000_000_000, unit="ms",
                                                                                     tz="UTC")
    assert ticker_time({"timestamp": None}, {"time": 1_700_000_000_500}) == pd.Timestamp(1_700_000_000_500,
                                                                                        unit="ms", tz="UTC")
    unknown = ticker_time({"timestamp": None}, None)
    assert pd.isna(unknown) and price_age_s(unknown, pd.Timestamp.now(tz="UTC")) == float("inf")
