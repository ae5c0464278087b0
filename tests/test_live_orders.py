"""Order lifecycle through real ccxt against the local Binance simulator (spot and perp legs)."""

from __future__ import annotations

import asyncio

import pytest

from hedge_core import errors as he
from hedge_core.types import (
    MarginMode,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionSide,
    Side,
    client_order_id,
)
from tests.support.binance_sim import BinanceSim
from tests.support.live_env import TEST_KEY, TEST_SECRET, live_env

SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"


def cid(leg: str, seq: int) -> str:
    return client_order_id("lifecycle", leg, seq)


def run(coro):
    return asyncio.run(coro)


def test_spot_market_and_limit_lifecycle():
    async def go():
        # an account whose spot commission is charged in the quote (the no-BNB default, commission in
        # the asset received, is test_spot_commission_in_the_received_asset_is_reported_as_such below)
        sim = BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET, spot_fee_in_received=False)
        async with live_env(sim=sim) as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 30_000.0)
            buy = await a.create_order(OrderRequest(SPOT, Side.BUY, 0.1, cid("spot", 1)))
            assert (buy.status, buy.filled, buy.avg_price) == (OrderStatus.CLOSED, pytest.approx(0.1), 30_000.0)
            assert buy.client_order_id == cid("spot", 1)
            assert buy.fee == pytest.approx(0.1 * 30_000 * sim.spot_fee)
            bal = await a.fetch_balance("spot")
            assert bal["BTC"].free == pytest.approx(0.1)
            assert bal["USDT"].free == pytest.approx(10_000 - 3_000 * (1 + sim.spot_fee))
            # resting limit sell locks base, then fills when the price crosses it
            sell = await a.create_order(OrderRequest(SPOT, Side.SELL, 0.1, cid("spot", 2),
                                                     type=OrderType.LIMIT, price=31_000.0))
            assert sell.status is OrderStatus.OPEN and sell.filled == 0 and sell.price == 31_000.0
            bal = await a.fetch_balance("spot")
            assert bal["BTC"].used == pytest.approx(0.1) and bal["BTC"].free == pytest.approx(0.0)
            assert [o.client_order_id for o in await a.fetch_open_orders(SPOT)] == [cid("spot", 2)]
            sim.set_price("BTCUSDT", 31_500.0)
            done = await a.fetch_order(SPOT, client_order_id=cid("spot", 2))
            assert done.status is OrderStatus.CLOSED and done.avg_price == pytest.approx(31_000.0)
            assert await a.fetch_open_orders(SPOT) == []
            fills = await a.fetch_my_trades(SPOT)
            assert [(f.side, f.qty, f.price) for f in fills] == [(Side.BUY, 0.1, 30_000.0),
                                                                  (Side.SELL, 0.1, 31_000.0)]
            assert [f.client_order_id for f in fills] == [cid("spot", 1), cid("spot", 2)]
            usdt = (await a.fetch_balance("spot"))["USDT"].total
            assert usdt == pytest.approx(10_000 - 3_000 * 1.001 + 3_100 * 0.999)
    run(go())


def test_perp_lifecycle_limit_cancel_market_reduce_only():
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            await a.set_leverage(PERP, 10)
            lim = await a.create_order(OrderRequest(PERP, Side.SELL, 0.05, cid("perp", 1),
                                                    type=OrderType.LIMIT, price=21_000.0))
            assert lim.status is OrderStatus.OPEN
            open_all = await a.fetch_open_orders()  # both wallets, no symbol
            assert [o.id for o in open_all] == [lim.id]
            canceled = await a.cancel_order(PERP, order_id=lim.id)
            assert canceled.status is OrderStatus.CANCELED and canceled.filled == 0
            short = await a.create_order(OrderRequest(PERP, Side.SELL, 0.05, cid("perp", 2)))
            assert short.status is OrderStatus.CLOSED and short.filled == pytest.approx(0.05)
            [pos] = await a.fetch_positions([PERP])
            assert (pos.qty, pos.entry_price, pos.leverage, pos.margin_mode) == (
                pytest.approx(-0.05), 20_000.0, 10.0, MarginMode.CROSS)
            sim.set_price("BTCUSDT", 19_000.0)
            [pos] = await a.fetch_positions()
            assert pos.unrealized_pnl == pytest.approx(0.05 * 1_000)
            # reduce-only that would increase the short is rejected; closing one is accepted
            with pytest.raises(he.InvalidOrder):
                await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, cid("perp", 3), reduce_only=True))
            close = await a.create_order(OrderRequest(PERP, Side.BUY, 0.05, cid("perp", 4), reduce_only=True))
            assert close.status is OrderStatus.CLOSED and close.reduce_only
            assert await a.fetch_positions() == []  # flat positions are omitted
            fee = 0.05 * 20_000 * sim.fut_taker + 0.05 * 19_000 * sim.fut_taker
            wallet = (await a.fetch_balance("perp"))["USDT"].total
            assert wallet == pytest.approx(10_000 + 0.05 * 1_000 - fee)
            assert len(await a.fetch_my_trades(PERP)) == 2
    run(go())


def test_partial_fill_then_cancel_keeps_the_filled_part():
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            sim.partial_next(0.4)
            o = await a.create_order(OrderRequest(PERP, Side.BUY, 0.1, cid("perp", 1),
                                                  type=OrderType.LIMIT, price=20_000.0))
            assert o.status is OrderStatus.OPEN and o.filled == pytest.approx(0.04)
            assert o.remaining == pytest.approx(0.06)
            c = await a.cancel_order(PERP, client_order_id=o.client_order_id)
            assert c.status is OrderStatus.CANCELED and c.filled == pytest.approx(0.04)
            [pos] = await a.fetch_positions()
            assert pos.qty == pytest.approx(0.04)
            # a partially filled MARKET order ends EXPIRED with its fill
            sim.partial_next(0.5)
            m = await a.create_order(OrderRequest(PERP, Side.BUY, 0.1, cid("perp", 2)))
            assert m.status is OrderStatus.EXPIRED and m.filled == pytest.approx(0.05)
    run(go())


def test_thin_create_answer_is_completed_by_polling():
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            sim.thin_next(1)
            o = await a.create_order(OrderRequest(PERP, Side.BUY, 0.01, cid("perp", 1)))
            assert o.status is OrderStatus.CLOSED and o.filled == pytest.approx(0.01)
            gets = [r for r in sim.requests if r[:2] == ("GET", "/fapi/v1/order")]
            assert len(gets) >= 1
    run(go())


def test_hedge_mode_orders_use_position_side():
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            from hedge_core.types import PositionMode
            await a.set_position_mode(PositionMode.HEDGE)
            await a.create_order(OrderRequest(PERP, Side.BUY, 0.02, cid("perp", 1),
                                              position_side=PositionSide.LONG))
            await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, cid("perp", 2),
                                              position_side=PositionSide.SHORT))
            pos = {p.position_side: p.qty for p in await a.fetch_positions()}
            assert pos == {PositionSide.LONG: pytest.approx(0.02), PositionSide.SHORT: pytest.approx(-0.01)}
    run(go())


def test_insufficient_margin_and_balance_are_typed():
    async def go():
        sim = BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET, futures_wallet=100.0,
                         spot_balances={"USDT": 50.0})
        async with live_env(sim=sim) as env:
            a = env.adapter
            sim.set_price("BTCUSDT", 20_000.0)
            await a.set_leverage(PERP, 2)
            with pytest.raises(he.InsufficientFunds) as e:  # -2019
                await a.create_order(OrderRequest(PERP, Side.BUY, 0.1, cid("perp", 1)))
            assert "-2019" in str(e.value) and "create_order" in str(e.value)
            with pytest.raises(he.InsufficientFunds):  # spot -2010 "insufficient balance"
                await a.create_order(OrderRequest(SPOT, Side.BUY, 0.01, cid("spot", 1)))
            assert sim.orders == {} and await a.fetch_positions() == []
    run(go())


def test_unknown_order_and_filter_failures():
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            with pytest.raises(he.OrderNotFound):
                await a.fetch_order(PERP, order_id="424242")
            with pytest.raises(he.OrderNotFound):
                await a.fetch_order(SPOT, client_order_id="nope")
            with pytest.raises(he.OrderNotFound):
                await a.cancel_order(PERP, client_order_id="nope")
            with pytest.raises(he.InvalidOrder):  # below the perp MIN_NOTIONAL of 100 USDT
                await a.create_order(OrderRequest(PERP, Side.BUY, 0.001, cid("perp", 1)))
            n = len(sim.requests)
            with pytest.raises(he.InvalidOrder, match="PRICE_FILTER"):  # tick 0.10
                await a.create_order(OrderRequest(PERP, Side.BUY, 0.01, cid("perp", 2),
                                                  type=OrderType.LIMIT, price=20_000.05))
            with pytest.raises(he.InvalidOrder, match="LOT_SIZE"):  # lot 0.001
                await a.create_order(OrderRequest(PERP, Side.BUY, 0.0105, cid("perp", 3)))
            assert len(sim.requests) == n  # refused before sending
    run(go())


@pytest.mark.parametrize("req, field", [
    (OrderRequest(PERP, Side.BUY, 0.0, "x1"), "qty"),
    (OrderRequest(PERP, Side.BUY, 0.1, ""), "client_order_id"),
    (OrderRequest(PERP, Side.BUY, 0.1, "x2", type=OrderType.LIMIT), "price"),
    (OrderRequest(SPOT, Side.SELL, 0.1, "x3", reduce_only=True), "reduce_only"),
    (OrderRequest("DOGE/EUR", Side.BUY, 0.1, "x4"), "symbol"),
])
def test_bad_order_input_is_rejected_before_sending(req, field):
    async def go():
        async with live_env() as env:
            await env.adapter.load_markets()
            n = len(env.sim.requests)
            with pytest.raises(he.InvalidInput) as e:
                await env.adapter.create_order(req)
            assert e.value.field == field
            assert len(env.sim.requests) == n  # nothing was sent
    run(go())


def test_reusing_a_client_order_id_never_creates_a_second_order():
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            for sym in (SPOT, PERP):
                c = cid("dup", 1 if sym == SPOT else 2)
                first = await a.create_order(OrderRequest(sym, Side.BUY, 0.01, c))
                assert first.status is OrderStatus.CLOSED
                # Binance spot itself would accept the reused id now that the first is final;
                # the adapter's pre-check refuses it, futures refuse it with -4116
                with pytest.raises(he.DuplicateOrder):
                    await a.create_order(OrderRequest(sym, Side.BUY, 0.01, c))
                assert sim.order_count(c) == 1
                assert (await a.fetch_order(sym, client_order_id=c)).id == first.id
    run(go())


def test_spot_commission_in_the_received_asset_is_reported_as_such():
    """Binance (without BNB) takes a spot buy's commission in BASE: 0.1 BTC bought -> 0.0999 BTC."""
    async def go():
        sim = BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET, spot_fee_in_received=True)
        async with live_env(sim=sim) as env:
            a = env.adapter
            sim.set_price("BTCUSDT", 30_000.0)
            buy = await a.create_order(OrderRequest(SPOT, Side.BUY, 0.1, cid("fee", 1)))
            assert (buy.fee, buy.fee_currency) == (pytest.approx(0.1 * 0.001), "BTC")
            [fill] = await a.fetch_my_trades(SPOT)
            assert (fill.fee, fill.fee_currency) == (pytest.approx(0.0001), "BTC")
            bal = await a.fetch_balance("spot")
            assert bal["BTC"].free == pytest.approx(0.0999)
            assert bal["USDT"].free == pytest.approx(10_000 - 3_000)
            # 0.0999 is off the 0.001 lot grid: refused before sending (ccxt would truncate silently)
            n = len(sim.requests)
            with pytest.raises(he.InvalidOrder, match="LOT_SIZE"):
                await a.create_order(OrderRequest(SPOT, Side.SELL, 0.0999, cid("fee", 2)))
            assert len(sim.requests) == n
            sell = await a.create_order(OrderRequest(SPOT, Side.SELL, 0.099, cid("fee", 3)))
            assert sell.fee_currency == "USDT" and sell.fee == pytest.approx(0.099 * 30_000 * 0.001)
    run(go())
