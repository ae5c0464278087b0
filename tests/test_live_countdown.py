"""The exchange-side dead man's switch: Binance USD-M ``countdownCancelAll`` through the live adapter
(real ccxt -> local simulator), and the runner re-arming it on its heartbeat."""

from __future__ import annotations

import asyncio
import math

import pytest

from hedge_core import errors as he
from hedge_core.exchange.base import RetryPolicy
from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter
from hedge_core.types import OrderRequest, OrderStatus, OrderType, Side
from tests.support.binance_sim import BinanceSim
from tests.support.live_env import live_env
from tests.support.vendor_faults import FAULTS

PERP, SPOT, ETH_PERP = "BTC/USDT:USDT", "BTC/USDT", "ETH/USDT:USDT"
ROUTE = ("POST", "/fapi/v1/countdownCancelAll")


def countdown_calls(sim: BinanceSim) -> list[dict[str, str]]:
    return [p for m, path, p in list(sim.requests) if (m, path) == ROUTE]


def limit(symbol: str, side: Side, qty: float, price: float, cid: str) -> OrderRequest:
    return OrderRequest(symbol, side, qty, cid, type=OrderType.LIMIT, price=price)


def test_arm_rearm_and_disarm_reach_the_venue():
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            before = sim.now_ms()
            assert await a.arm_cancel_all_after(PERP, 30) is True
            after = sim.now_ms()
            [call] = countdown_calls(sim)
            assert call["symbol"] == "BTCUSDT" and call["countdownTime"] == "30000"
            assert "signature" in call and sim.answers[-1] == ("POST /fapi/v1/countdownCancelAll", 200, None)
            first = sim.countdowns["BTCUSDT"]
            assert before + 30_000 <= first <= after + 30_000
            await asyncio.sleep(0.05)
            assert await a.arm_cancel_all_after(PERP, 30.0) is True  # re-arm: the deadline moves
            second = sim.countdowns["BTCUSDT"]
            assert second > first
            assert await a.arm_cancel_all_after(PERP, 2.5) is True  # shorter: moves it earlier, ms
            assert countdown_calls(sim)[-1]["countdownTime"] == "2500"
            assert sim.countdowns["BTCUSDT"] < second
            assert await a.arm_cancel_all_after(PERP, 0) is True  # 0 disarms
            assert countdown_calls(sim)[-1]["countdownTime"] == "0"
            assert "BTCUSDT" not in sim.countdowns
            # a positive sub-millisecond countdown is never rounded down to 0 (which would disarm)
            assert await a.arm_cancel_all_after(PERP, 0.0001) is True
            assert countdown_calls(sim)[-1]["countdownTime"] == "1"
    asyncio.run(go())


def test_expiry_without_refresh_cancels_the_symbols_open_orders_only():
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            sim.set_price("ETHUSDT", 100.0)
            sell = await a.create_order(limit(PERP, Side.SELL, 0.01, 21_000.0, "cd-perp-1"))
            buy = await a.create_order(limit(PERP, Side.BUY, 0.01, 19_000.0, "cd-perp-2"))
            spot = await a.create_order(limit(SPOT, Side.BUY, 0.01, 19_000.0, "cd-spot-1"))
            eth = await a.create_order(limit(ETH_PERP, Side.BUY, 2.0, 90.0, "cd-eth-1"))
            assert {o.status for o in (sell, buy, spot, eth)} == {OrderStatus.OPEN}
            assert await a.arm_cancel_all_after(PERP, 5.0)
            now = sim.now_ms()
            assert sim.expire_countdowns(now + 4_000) == []  # not yet
            assert await a.arm_cancel_all_after(PERP, 5.0)  # refreshed: the old deadline is gone
            refreshed = sim.countdowns["BTCUSDT"]
            assert sim.expire_countdowns(refreshed - 1) == []
            canceled = sim.expire_countdowns(refreshed)
            assert sorted(canceled) == sorted([int(sell.id), int(buy.id)])
            assert "BTCUSDT" not in sim.countdowns  # fired once, then gone
            assert sim.expire_countdowns(refreshed + 60_000) == []
            # the adapter sees them canceled; spot and the other perp symbol are untouched
            for o in (sell, buy):
                got = await a.fetch_order(PERP, order_id=o.id)
                assert got.status is OrderStatus.CANCELED and got.filled == 0
            assert await a.fetch_open_orders(PERP) == []
            assert [o.id for o in await a.fetch_open_orders(SPOT)] == [spot.id]
            assert [o.id for o in await a.fetch_open_orders(ETH_PERP)] == [eth.id]
    asyncio.run(go())


def test_deadline_is_checked_on_every_request():
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            o = await a.create_order(limit(PERP, Side.BUY, 0.01, 19_000.0, "cd-perp-3"))
            assert await a.arm_cancel_all_after(PERP, 0.2)
            await asyncio.sleep(0.3)  # nobody re-arms
            assert await a.fetch_open_orders(PERP) == []  # the timer fired before this request was served
            assert (await a.fetch_order(PERP, order_id=o.id)).status is OrderStatus.CANCELED
            [(sid, _at, ids)] = sim.countdown_cancels
            assert (sid, ids) == ("BTCUSDT", [int(o.id)])
    asyncio.run(go())


def test_disarmed_timer_never_cancels():
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            o = await a.create_order(limit(PERP, Side.BUY, 0.01, 19_000.0, "cd-perp-4"))
            assert await a.arm_cancel_all_after(PERP, 1.0)
            assert await a.arm_cancel_all_after(PERP, 0)
            assert sim.expire_countdowns(sim.now_ms() + 3_600_000) == []
            assert [x.id for x in await a.fetch_open_orders(PERP)] == [o.id]
    asyncio.run(go())


def test_spot_and_other_venues_return_false_and_send_nothing():
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            await a.load_markets()
            n = len(sim.requests)
            assert (a.cancel_all_scope(SPOT), a.cancel_all_scope(PERP)) == ("", "symbol")
            assert await a.arm_cancel_all_after(SPOT, 10) is False
            assert await a.arm_cancel_all_after(SPOT, 0) is False
            assert len(sim.requests) == n and sim.countdowns == {}
        for venue in ("bybit",):  # no session: any request would fail loudly (OKX's account timer:
            other = CcxtLiveAdapter(venue)  # tests/test_live_okx_countdown.py)
            try:
                assert other.cancel_all_scope(PERP) == ""
                assert await other.arm_cancel_all_after(PERP, 10) is False
                assert other._instruments == {}  # not even markets were loaded
            finally:
                await other.close()
    asyncio.run(go())


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, "soon"])
def test_bad_seconds_raise_invalid_input_and_send_nothing(bad):
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            await a.load_markets()
            n = len(sim.requests)
            with pytest.raises(he.InvalidInput, match="seconds"):
                await a.arm_cancel_all_after(PERP, bad)
            assert len(sim.requests) == n and sim.countdowns == {}
    asyncio.run(go())


def test_unlisted_perp_symbol_is_invalid_input():
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            await a.load_markets()
            with pytest.raises(he.InvalidInput, match="symbol"):
                await a.arm_cancel_all_after("DOGE/USDT:USDT", 10)
            assert countdown_calls(sim) == []
    asyncio.run(go())


def test_simulator_rejects_a_malformed_countdown_like_binance():
    import ccxt

    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            await a.load_markets()
            with pytest.raises(ccxt.ExchangeError):  # the raw ccxt escape hatch: not translated
                await a.exchange.fapiPrivatePostCountdownCancelAll({"symbol": "BTCUSDT"})
            assert sim.answers[-1] == ("POST /fapi/v1/countdownCancelAll", 400, -1102)
            assert sim.countdowns == {}
    asyncio.run(go())


def test_error_mapping():
    """Every vendor error of the shared table maps to the same hedge error as for the other methods,
    and only temporary ones are retried."""
    async def go():
        got: dict[str, str] = {}
        retried: dict[str, bool] = {}
        async with live_env(timeout_ms=300, retry=RetryPolicy(max_attempts=2, seed=0)) as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            await a.load_markets()
            for name, (kw, _want) in FAULTS.items():
                sim.clear_faults()
                for pattern, kw1 in (kw if isinstance(kw, list) else [(".*", kw)]):
                    if pattern in (".*", "/fapi/"):
                        sim.inject(pattern, count=1_000, **kw1)
                before = a.retries
                try:
                    await a.arm_cancel_all_after(PERP, 10)
                    got[name] = "no error"
                except he.ExchangeError as exc:
                    got[name] = type(exc).__name__
                    assert exc.venue == "binance" and exc.method == "arm_cancel_all_after", exc
                retried[name] = a.retries > before
                sim.clear_faults()
            assert sim.countdowns == {}  # every call failed: nothing armed
        want = {name: cls.__name__ for name, (_kw, cls) in FAULTS.items()}
        assert got == want
        assert retried == {name: issubclass(cls, he.TemporaryError) for name, (_kw, cls) in FAULTS.items()}
    asyncio.run(go())


# ---------------------------------------------------------------- runner level (subprocess, real ccxt)
@pytest.fixture
def sim_thread():
    from tests.support.sim_thread import SimThread

    s = SimThread()
    yield s
    s.close()


@pytest.mark.timeout(120)
def test_runner_heartbeat_arms_the_countdown_and_disarms_it_when_the_hedge_completes(tmp_path, sim_thread):
    """A live hedge run by the runner process through the ccxt adapter: every heartbeat re-arms the
    venue's countdown on the perp symbol with 2 x the dead man's switch timeout; after an operator
    stop closes both legs, the next beat disarms it (so it cannot cancel orders placed by hand
    later) and no beat arms it again."""
    import time

    from tests.support.live_runner import HID, settle, start_live
    from tests.support.live_runner import live_env as runner_env
    from tests.support.runner_env import wait_for

    sim = sim_thread.sim
    # the account's own maintenance table (leverage capped at 4x): the runner must load it
    sim.bracket_rows = [{"bracket": 1, "initialLeverage": 4, "notionalCap": 5_000_000, "notionalFloor": 0,
                         "maintMarginRatio": 0.01, "cum": 0.0}]
    env, extra = runner_env(tmp_path, sim_thread)
    try:
        p = env.start_runner(extra, args=["--dms-timeout", "3"])
        c = env.client(p)
        start_live(c, "resume")
        wait_for(lambda: len(countdown_calls(sim)) >= 3, timeout=60, what="three countdown re-arms")
        import json

        logged = [json.loads(x) for x in (env.home / "logs" / "runner.jsonl").read_text().splitlines() if x.strip()]
        [b] = [x for x in logged if x.get("msg") == "venue brackets loaded"]
        assert (b["symbol"], b["first_max_leverage"], b["first_mmr"]) == ("BTC/USDT:USDT", 4.0, 0.01)
        assert 1 <= sim.leverage["BTCUSDT"] <= 4
        first = sim.countdowns["BTCUSDT"]
        calls = countdown_calls(sim)
        assert {(x["symbol"], x["countdownTime"]) for x in calls} == {("BTCUSDT", "6000")}
        assert all("signature" in x for x in calls)
        assert sim.countdowns["BTCUSDT"] > sim.now_ms()  # armed, in the future
        n = len(calls)
        wait_for(lambda: len(countdown_calls(sim)) >= n + 2, timeout=30, what="more re-arms")
        assert sim.countdowns["BTCUSDT"] > first  # each beat moves the deadline
        assert sim.countdown_cancels == []  # refreshed in time: the venue never fired
        assert [m for m, path, _ in list(sim.requests) if path == ROUTE[1]] == ["POST"] * len(countdown_calls(sim))
        wait_for(lambda: c.hedge(HID).get("state") == "MONITORING_POSITIONS", timeout=60, what="monitoring")
        c.stop(HID)
        settle(env, p, "COMPLETED")
        wait_for(lambda: countdown_calls(sim)[-1]["countdownTime"] == "0", timeout=30, what="countdown disarmed")
        assert "BTCUSDT" not in sim.countdowns
        n = len(countdown_calls(sim))
        time.sleep(3.0)  # several beats
        assert len(countdown_calls(sim)) == n  # a completed hedge neither re-arms nor disarms again
        assert sim.countdown_cancels == []
        env.client(p).shutdown()
        assert p.wait(60) == 0
    finally:
        env.cleanup()


@pytest.mark.timeout(120)
def test_frozen_runner_stops_re_arming_and_the_venue_cancels(tmp_path, sim_thread, monkeypatch):
    """SIGSTOP the runner (a hung process cannot send anything): the countdown is no longer
    refreshed, and the venue cancels the perp symbol's open orders on its own."""
    import os
    import signal
    import time

    from tests.support.live_runner import live_env as runner_env
    from tests.support.live_runner import start_live
    from tests.support.runner_env import wait_for
    from tests.support.simfactory import make_adapter

    sim = sim_thread.sim
    env, extra = runner_env(tmp_path, sim_thread)
    for k, v in extra.items():
        monkeypatch.setenv(k, v)
    try:
        p = env.start_runner(extra, args=["--dms-timeout", "1.5"])  # countdown 3 s
        start_live(env.client(p), "resume")
        wait_for(lambda: len(countdown_calls(sim)) >= 2, timeout=60, what="countdown armed")

        async def with_client(fn):  # the test's own client on the same account
            a = make_adapter(None)
            session = a.exchange.session
            try:
                return await fn(a)
            finally:
                await a.close()
                await session.close()

        o = asyncio.run(with_client(lambda a: a.create_order(limit(PERP, Side.BUY, 0.01, 30_000.0, "cd-frozen-1"))))
        assert o.status is OrderStatus.OPEN
        assert sim.countdown_cancels == []  # the runner keeps refreshing it
        os.kill(p.pid, signal.SIGSTOP)
        try:
            n = len(countdown_calls(sim))
            time.sleep(4.0)  # > the 3 s countdown
            assert len(countdown_calls(sim)) <= n + 1  # at most one arm was in flight
            deadline = sim.countdowns.get("BTCUSDT", 0)
            assert deadline <= sim.now_ms()
            # the request lets the simulator's timer fire before it is served
            got = asyncio.run(with_client(lambda a: a.fetch_order(PERP, order_id=o.id)))
            assert got.status is OrderStatus.CANCELED
            assert [(sid, ids) for sid, _at, ids in sim.countdown_cancels] == [("BTCUSDT", [int(o.id)])]
        finally:
            os.kill(p.pid, signal.SIGCONT)
    finally:
        env.cleanup()

