"""OKX's exchange-side dead man's switch: ``POST /api/v5/trade/cancel-all-after`` ("Cancel All After",
https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-cancel-all-after) through the live adapter
(real ccxt -> the local OKX simulator). One countdown for the whole account, ``timeOut`` in seconds,
0 or [10, 120]; when it runs out every pending order of the account is canceled, spot and derivatives."""

from __future__ import annotations

import asyncio
import math

import pytest

from hedge_core import errors as he
from hedge_core.types import OrderRequest, OrderStatus, OrderType, Side, client_order_id
from tests.support.live_env import okx_env
from tests.support.okx_sim import OkxSim

SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"
ROUTE = ("POST", "/api/v5/trade/cancel-all-after")


def calls(sim: OkxSim) -> list[dict]:
    return [p for m, path, p in list(sim.requests) if (m, path) == ROUTE]


def limit(symbol: str, side: Side, qty: float, price: float, n: int) -> OrderRequest:
    return OrderRequest(symbol, side, qty, client_order_id("okx", "cd", n), type=OrderType.LIMIT, price=price)


def quick() -> OkxSim:
    """The simulator without its 1-request-per-second limit on the timer (tested on its own below)."""
    from tests.support.live_env import TEST_KEY, TEST_PASSPHRASE, TEST_SECRET

    sim = OkxSim(api_key=TEST_KEY, secret=TEST_SECRET, passphrase=TEST_PASSPHRASE)
    sim.cancel_all_min_gap_ms = 0
    return sim


def test_arm_rearm_and_disarm_reach_the_account_timer():
    async def go():
        async with okx_env(sim=quick()) as env:
            a, sim = env.adapter, env.sim
            assert (a.cancel_all_scope(PERP), a.cancel_all_scope(SPOT)) == ("account", "account")
            before = sim.now_ms()
            assert await a.arm_cancel_all_after(PERP, 30) is True
            assert calls(sim)[-1]["timeOut"] == "30"
            assert sim.answers[-1] == ("POST /api/v5/trade/cancel-all-after", 200, "0")
            first = sim.cancel_all_deadline
            assert first is not None and before + 30_000 <= first <= sim.now_ms() + 30_000
            await asyncio.sleep(0.05)
            assert await a.arm_cancel_all_after(SPOT, 30) is True  # the same account timer, re-armed
            assert sim.cancel_all_deadline > first
            assert await a.arm_cancel_all_after(PERP, 0) is True
            assert calls(sim)[-1]["timeOut"] == "0" and sim.cancel_all_deadline is None
    asyncio.run(go())


@pytest.mark.parametrize(("asked", "sent"), [(3.0, "10"), (10.0, "10"), (30.2, "31"), (120.0, "120"), (600.0, "120")])
def test_countdown_is_held_in_okx_range_whole_seconds(asked, sent):
    """OKX takes 0 or 10..120 whole seconds: shorter is sent as 10, longer as 120 (fires sooner, never later),
    a fraction is rounded up."""
    async def go():
        async with okx_env() as env:
            assert await env.adapter.arm_cancel_all_after(PERP, asked) is True
            assert calls(env.sim)[-1]["timeOut"] == sent
    asyncio.run(go())


def test_expiry_cancels_every_pending_order_of_the_account():
    async def go():
        async with okx_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTC-USDT", 30_000.0)
            sim.set_price("BTC-USDT-SWAP", 30_000.0)
            perp = await a.create_order(limit(PERP, Side.SELL, 0.01, 31_000.0, 1))
            spot = await a.create_order(limit(SPOT, Side.BUY, 0.01, 29_000.0, 2))
            assert {perp.status, spot.status} == {OrderStatus.OPEN}
            assert await a.arm_cancel_all_after(PERP, 10)
            deadline = sim.cancel_all_deadline
            assert sim.expire_cancel_all_after(deadline - 1) == []  # not yet
            assert sorted(sim.expire_cancel_all_after(deadline)) == sorted([perp.id, spot.id])
            assert sim.cancel_all_deadline is None  # fired once, then off
            for sym, o in ((PERP, perp), (SPOT, spot)):
                assert (await a.fetch_order(sym, order_id=o.id)).status is OrderStatus.CANCELED
            assert await a.fetch_open_orders(PERP) == [] and await a.fetch_open_orders(SPOT) == []
    asyncio.run(go())


def test_deadline_is_checked_before_every_request():
    async def go():
        async with okx_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTC-USDT-SWAP", 30_000.0)
            o = await a.create_order(limit(PERP, Side.BUY, 0.01, 29_000.0, 3))
            assert await a.arm_cancel_all_after(PERP, 10)
            sim.clock_offset_ms += 10_001  # the server's clock passes the deadline; nobody re-armed
            a.exchange.options["timeDifference"] = -sim.clock_offset_ms  # the client follows the venue's time
            assert (await a.fetch_order(PERP, order_id=o.id)).status is OrderStatus.CANCELED
            [(_at, ids)] = sim.cancel_all_fired
            assert ids == [o.id]
    asyncio.run(go())


def test_disarmed_timer_never_cancels():
    async def go():
        async with okx_env(sim=quick()) as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTC-USDT-SWAP", 30_000.0)
            o = await a.create_order(limit(PERP, Side.BUY, 0.01, 29_000.0, 4))
            assert await a.arm_cancel_all_after(PERP, 10) and await a.arm_cancel_all_after(PERP, 0)
            assert sim.expire_cancel_all_after(sim.now_ms() + 3_600_000) == []
            assert [x.id for x in await a.fetch_open_orders(PERP)] == [o.id]
    asyncio.run(go())


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, "soon"])
def test_bad_seconds_raise_invalid_input_and_send_nothing(bad):
    async def go():
        async with okx_env() as env:
            await env.adapter.load_markets()
            with pytest.raises(he.InvalidInput, match="seconds"):
                await env.adapter.arm_cancel_all_after(PERP, bad)
            assert calls(env.sim) == [] and env.sim.cancel_all_deadline is None
    asyncio.run(go())


def test_unlisted_symbol_is_invalid_input_and_sends_nothing():
    async def go():
        async with okx_env() as env:
            await env.adapter.load_markets()
            with pytest.raises(he.InvalidInput, match="symbol"):
                await env.adapter.arm_cancel_all_after("DOGE/USDT:USDT", 30)
            assert calls(env.sim) == []
    asyncio.run(go())


def test_simulator_refuses_a_timeout_outside_okx_range():
    import ccxt

    async def go():
        async with okx_env() as env:
            await env.adapter.load_markets()
            with pytest.raises(ccxt.BadRequest):  # the raw ccxt escape hatch: not translated
                await env.adapter.exchange.privatePostTradeCancelAllAfter({"timeOut": "5"})
            assert env.sim.answers[-1] == ("POST /api/v5/trade/cancel-all-after", 200, "51000")
            assert env.sim.cancel_all_deadline is None
    asyncio.run(go())


def test_simulator_limits_the_timer_to_one_request_per_second():
    import ccxt

    async def go():
        async with okx_env() as env:
            await env.adapter.load_markets()
            await env.adapter.exchange.privatePostTradeCancelAllAfter({"timeOut": "30"})
            with pytest.raises(ccxt.RateLimitExceeded):
                await env.adapter.exchange.privatePostTradeCancelAllAfter({"timeOut": "30"})
            assert env.sim.answers[-1] == ("POST /api/v5/trade/cancel-all-after", 429, "50011")
    asyncio.run(go())
