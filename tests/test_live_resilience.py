"""Retries, clock skew, timeouts without duplicate orders, and the redirect's host fence."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from hedge_core import errors as he
from hedge_core.exchange.base import RetryPolicy
from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter
from hedge_core.types import OrderRequest, OrderStatus, Side, client_order_id
from tests.support.live_env import live_env

PERP, SPOT = "BTC/USDT:USDT", "BTC/USDT"


def run(coro):
    return asyncio.run(coro)


def test_clock_skew_minus_1021_resyncs_and_retries_once():
    async def go():
        async with live_env(retry=RetryPolicy(max_attempts=1)) as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            await a.load_markets()  # adjustForTimeDifference syncs here
            sim.skew_clock(-30_000)  # server clock now 30 s behind: our timestamps look "ahead"
            n = len(sim.answers)
            o = await a.create_order(OrderRequest(PERP, Side.BUY, 0.01, client_order_id("skew", "p", 1)))
            assert o.status is OrderStatus.CLOSED
            seen = sim.answers[n:]
            assert seen[0] == ("POST /fapi/v1/order", 400, -1021)  # rejected first
            assert any(k.endswith("/time") for k, _s, _c in seen[1:])  # clock resynced
            assert seen[-1][0:2] in {("POST /fapi/v1/order", 200), ("GET /fapi/v1/order", 200)}
            assert sim.order_count(o.client_order_id) == 1
    run(go())


def test_persistent_clock_skew_surfaces_as_temporary_error():
    async def go():
        async with live_env(retry=RetryPolicy(max_attempts=1)) as env:
            await env.adapter.load_markets()
            env.sim.inject(r"/fapi/v3/account", count=5, code=-1021,
                           msg="Timestamp for this request is outside of the recvWindow.")
            with pytest.raises(he.TemporaryError):
                await env.adapter.fetch_balance("perp")
    run(go())


@pytest.mark.parametrize("status", [429, 418])
def test_rate_limit_backs_off_then_succeeds(status):
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    async def go():
        policy = RetryPolicy(max_attempts=5, base_delay=0.2, max_delay=5.0, seed=7)
        async with live_env(retry=policy, sleep=sleep) as env:
            a, sim = env.adapter, env.sim
            await a.load_markets()
            sim.inject(r"GET /fapi/v3/account", count=2, status=status)
            bal = await a.fetch_balance("perp")
            assert bal["USDT"].total == pytest.approx(10_000)
            assert a.retries == 2
            assert slept == policy.delays()[:2]  # the policy's bounded, jittered backoff
            assert [s for k, s, _c in sim.answers if k == "GET /fapi/v3/account"] == [status, status, 200]
    run(go())


def test_rate_limit_gives_up_after_bounded_attempts():
    async def go():
        async with live_env(retry=RetryPolicy(max_attempts=3, seed=1)) as env:
            await env.adapter.load_markets()
            env.sim.inject(r"GET /api/v3/account", count=10, status=429)
            with pytest.raises(he.RateLimited):
                await env.adapter.fetch_balance("spot")
            assert sum(1 for k, *_ in env.sim.answers if k == "GET /api/v3/account") == 3
    run(go())


@pytest.mark.parametrize("applied", [True, False], ids=["answer-lost", "request-lost"])
def test_timeout_during_create_never_doubles_the_order(applied):
    async def go():
        async with live_env(timeout_ms=400, retry=RetryPolicy(max_attempts=4, seed=3)) as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            await a.load_markets()
            cid = client_order_id("timeout", "perp", 1)
            sim.inject(r"POST /fapi/v1/order", count=1, hang=3.0, after=applied)
            if applied:
                o = await a.create_order(OrderRequest(PERP, Side.BUY, 0.01, cid))
                assert o.client_order_id == cid and o.status is OrderStatus.CLOSED
            else:
                # the adapter never re-sends: the outcome stays unknown until the engine resolves
                # it after recvWindow (docs/live-outcome-governor.md)
                with pytest.raises(he.OrderOutcomeUnknown) as ei:
                    await a.create_order(OrderRequest(PERP, Side.BUY, 0.01, cid))
                assert ei.value.client_order_id == cid
                assert (ei.value.window_end - ei.value.sent_at).total_seconds() == pytest.approx(12.0)
            assert sim.order_count(cid) == (1 if applied else 0)
            assert sim.position("BTCUSDT") == pytest.approx(0.01 if applied else 0.0)
            posts = [r for r in sim.requests if r[:2] == ("POST", "/fapi/v1/order")]
            assert all(p[2]["newClientOrderId"] == cid for p in posts)
            # the order was looked up by client id after the lost answer
            lookups = [r for r in sim.requests if r[:2] == ("GET", "/fapi/v1/order")
                       and r[2].get("origClientOrderId") == cid]
            assert lookups
            assert len(posts) == 1
    run(go())


def test_spot_timeout_answer_lost_no_duplicate():
    async def go():
        async with live_env(timeout_ms=400) as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            await a.load_markets()
            cid = client_order_id("timeout", "spot", 1)
            sim.inject(r"POST /api/v3/order", count=1, hang=3.0, after=True)
            o = await a.create_order(OrderRequest(SPOT, Side.BUY, 0.01, cid))
            assert o.status is OrderStatus.CLOSED and sim.order_count(cid) == 1
            # one order executed: 0.01 BTC less Binance's commission taken in BTC (no BNB)
            assert (await a.fetch_balance("spot"))["BTC"].free == pytest.approx(0.01 * (1 - sim.spot_fee))
    run(go())


def test_no_other_host_is_reachable_through_the_session():
    async def go():
        async with live_env() as env:
            s = env.session
            for url in ("https://example.com/", "https://api.bybit.com/v5/market/time",
                        "http://1.1.1.1/", "https://[2606:4700:4700::1111]/", "http://localhost:80/"):
                with pytest.raises((aiohttp.ClientError, OSError)):
                    async with s.get(url) as r:
                        await r.read()
            # a mapped host works through the same session
            async with s.get("https://api.binance.com/api/v3/time") as r:
                assert r.status == 200
            # ccxt of another venue through this session cannot reach anything
            other = CcxtLiveAdapter("okx", session=s, retry=RetryPolicy(max_attempts=1))
            try:
                with pytest.raises(he.NetworkError):
                    await other.load_markets()
            finally:
                await other.close()
            asked = s.connector._resolver.asked
            assert "example.com" in asked and "www.okx.com" in asked
    run(go())
