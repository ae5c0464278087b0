"""The ccxt.pro websocket feed yields exactly the polling feed's / store replay's events, in order.

Real ccxt.pro talks to the local simulator's Binance kline streams (``wss://stream.binance.com:9443/ws/<n>``
spot, ``wss://fstream.binance.com/market/ws/<n>`` USD-M) through the redirect session; spot/perp
bars are published ONLY on the streams (with intra-bar updates before the final one), mark bars and
funding only over REST.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd
import pytest

from hedge_core.errors import InvalidInput
from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter
from hedge_core.exchange.feeds import Feed, iter_events
from hedge_core.exchange.live_feed import LivePollingFeed
from hedge_core.exchange.live_ws_feed import LiveWebsocketFeed, live_feed
from hedge_core.types import Bar, FundingEvent, MarketKind
from tests.support.binance_sim import HOSTS, WS_HOSTS, BinanceSim, SimServer
from tests.support.feed_fixtures import FakeStore, _market, _publish
from tests.support.live_env import TEST_KEY, TEST_SECRET
from tests.support.live_env import test_ca as make_ca
from tests.support.redirect import redirect_session

T0 = pd.Timestamp("2024-01-01T00:00Z")
H = pd.Timedelta(hours=1)
SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"
MARKET_OF = {"spot": "spot", "perp": "fapi"}


@dataclass
class WsEnv:
    sim: BinanceSim
    adapter: CcxtLiveAdapter
    asked: list[str]  # every host name the session was asked to connect to


@contextlib.asynccontextmanager
async def ws_env() -> AsyncIterator[WsEnv]:
    sim = BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET)
    hosts = HOSTS + WS_HOSTS
    async with SimServer(sim, make_ca(), hosts=hosts) as server:
        session = redirect_session({h: server.port for h in hosts}, server.client_ssl)
        adapter = CcxtLiveAdapter("binance", None, session=session, enable_rate_limit=False, timeout_ms=3000)
        try:
            yield WsEnv(sim, adapter, session.connector._resolver.asked)  # type: ignore[union-attr]
        finally:
            await adapter.close()
            await session.close()


async def _until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def _ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


async def _push(sim: BinanceSim, frames: dict[str, pd.DataFrame], label: pd.Timestamp, *, final: bool,
                feed: LiveWebsocketFeed | None = None) -> None:
    """Push bar ``label`` of spot and perp: a forming update (other close/high/volume), then, if
    ``final``, the final values (``x`` true) exactly as in the frames. With ``feed``, the final
    update is sent only after the feed received the forming one (it must replace it)."""
    for kind in ("spot", "perp"):
        row = frames[kind].loc[label]
        await sim.push_kline("BTCUSDT", MARKET_OF[kind], _ms(label), row["open"], row["high"] + 3.0,
                             row["low"], row["close"] + 7.0, row["volume"] / 2)
        if final and feed is not None:
            key = (SPOT if kind == "spot" else PERP, MarketKind(kind))
            forming = row["close"] + 7.0
            await _until(lambda k=key, c=forming: feed._rows[k].get(_ms(label), [0] * 5)[4] == c)
        if final:
            await sim.push_kline("BTCUSDT", MARKET_OF[kind], _ms(label), row["open"], row["high"],
                                 row["low"], row["close"], row["volume"], closed=True)


async def _subscribed(sim: BinanceSim) -> None:
    await sim.wait_ws_subscribed("spot", "btcusdt@kline_1h")
    await sim.wait_ws_subscribed("fapi", "btcusdt@kline_1h")


def _streamed_upto(feed: LiveWebsocketFeed, label: pd.Timestamp, *, close: float | None = None) -> Callable[[], bool]:
    """True once both streams delivered bar ``label`` (with ``close`` on the spot stream if given)."""
    ms = _ms(label)

    def ok() -> bool:
        for key, rows in feed._rows.items():
            if ms not in rows:
                return False
            if close is not None and key[1] is MarketKind.SPOT and rows[ms][4] != close:
                return False
        return True
    return ok


def test_ws_feed_matches_store_replay_and_polling_feed():
    frames, funding = _market(20, seed=3)
    store = FakeStore(frames, funding)

    async def go():
        clock = {"now": T0 + 8 * H + pd.Timedelta(seconds=30)}
        async with ws_env() as env:
            _publish(env.sim, {"mark": frames["mark"]}, funding, upto_label=T0 + 8 * H)  # REST only
            feed = live_feed(env.adapter, SPOT, PERP, "1h", start=T0, settle_delay=10.0,
                             now=lambda: clock["now"])
            assert isinstance(feed, LiveWebsocketFeed) and isinstance(feed, Feed)
            feed.start_streams()
            await _subscribed(env.sim)
            for i in range(8):
                await _push(env.sim, frames, T0 + i * H, final=True, feed=feed)
            await _push(env.sim, frames, T0 + 8 * H, final=False)  # still forming: never emitted
            await _until(_streamed_upto(feed, T0 + 8 * H, close=frames["spot"]["close"].iloc[8] + 7.0))
            got = await feed.poll()
            want = list(iter_events(store, "binance", SPOT, PERP, "1h", T0, T0 + 8 * H))
            assert got == want  # final values (not the forming updates), replay order
            assert [type(e) for e in got[-4:]] == [Bar, Bar, Bar, FundingEvent]
            assert env.sim.klines.get(("spot", "BTCUSDT")) is None  # spot/perp came from the streams

            clock["now"] += H
            await _push(env.sim, frames, T0 + 8 * H, final=True, feed=feed)
            await _push(env.sim, frames, T0 + 9 * H, final=False)
            await _until(_streamed_upto(feed, T0 + 9 * H))
            nxt = await feed.poll()
            assert nxt == list(iter_events(store, "binance", SPOT, PERP, "1h", T0 + 8 * H, T0 + 9 * H))
            assert len(nxt) == 3
            assert await feed.poll() == []
            await feed.aclose()
            await feed.aclose()  # idempotent
            assert feed.exchange.clients == {} or all(c.closed() for c in feed.exchange.clients.values())
            await _until(lambda: env.sim.ws_connections() == 0)

            # the polling feed on the same venue, once spot/perp are on REST too: the same events
            _publish(env.sim, {k: frames[k] for k in ("spot", "perp")}, funding.iloc[:0], T0 + 9 * H)
            clock["now"] = T0 + 9 * H + pd.Timedelta(seconds=30)
            polling = LivePollingFeed(env.adapter, SPOT, PERP, "1h", start=T0, settle_delay=10.0,
                                      now=lambda: clock["now"])
            assert await polling.poll() == got + nxt
            assert set(env.asked) <= set(HOSTS + WS_HOSTS)
            assert {"stream.binance.com", "fstream.binance.com"} <= set(env.asked)
    asyncio.run(go())


def test_a_bar_closed_by_the_clock_waits_for_its_successor_on_the_stream():
    frames, funding = _market(6, seed=7)
    store = FakeStore(frames, funding)

    async def go():
        clock = {"now": T0 + 3 * H + pd.Timedelta(seconds=30)}
        async with ws_env() as env:
            feed = live_feed(env.adapter, SPOT, PERP, "1h", start=T0, settle_delay=10.0,
                             include_mark=False, include_funding=False, now=lambda: clock["now"])
            feed.start_streams()
            await _subscribed(env.sim)
            for i in range(3):  # bar 2 ended at 3h by the clock, but no newer bar was streamed yet
                await _push(env.sim, frames, T0 + i * H, final=True)
            await _until(_streamed_upto(feed, T0 + 2 * H))
            got = await feed.poll()
            assert got == list(iter_events(store, "binance", SPOT, PERP, "1h", T0, T0 + 2 * H,
                                           include_mark=False, include_funding=False))
            assert max(e.ts for e in got) == T0 + H
            await _push(env.sim, frames, T0 + 3 * H, final=False)
            await _until(_streamed_upto(feed, T0 + 3 * H))
            later = await feed.poll()
            assert [(e.ts, e.kind) for e in later] == [(T0 + 2 * H, MarketKind.SPOT), (T0 + 2 * H, MarketKind.PERP)]
            assert later == list(iter_events(store, "binance", SPOT, PERP, "1h", T0 + 2 * H, T0 + 3 * H,
                                             include_mark=False, include_funding=False))
            await feed.aclose()
    asyncio.run(go())


def test_history_before_the_first_streamed_bar_is_backfilled_over_rest():
    frames, funding = _market(10, seed=11)
    store = FakeStore(frames, funding)

    async def go():
        clock = {"now": T0 + 7 * H + pd.Timedelta(seconds=30)}
        async with ws_env() as env:
            # REST knows bars 0..4 and a forming version of bar 5 (other close): the stream's final one wins
            _publish(env.sim, {k: frames[k].iloc[:5] for k in frames}, funding, upto_label=T0 + 6 * H)
            for kind in ("spot", "perp"):
                r5 = frames[kind].loc[T0 + 5 * H]
                env.sim.add_kline("BTCUSDT", MARKET_OF[kind], _ms(T0 + 5 * H), r5["open"], r5["high"],
                                  r5["low"], r5["close"] + 7.0, r5["volume"])
            _publish(env.sim, {"mark": frames["mark"]}, funding.iloc[:0], upto_label=T0 + 7 * H)
            feed = live_feed(env.adapter, SPOT, PERP, "1h", start=T0, settle_delay=10.0,
                             now=lambda: clock["now"])
            feed.start_streams()
            await _subscribed(env.sim)
            for i in (5, 6):  # the stream starts at bar 5
                await _push(env.sim, frames, T0 + i * H, final=True)
            await _push(env.sim, frames, T0 + 7 * H, final=False)
            await _until(_streamed_upto(feed, T0 + 7 * H))
            got = await feed.poll()
            assert got == list(iter_events(store, "binance", SPOT, PERP, "1h", T0, T0 + 7 * H))
            assert feed.late_dropped == 0
            await feed.aclose()
    asyncio.run(go())


def test_async_iteration_wakes_on_stream_updates_and_closes():
    frames, _funding = _market(5, seed=1)

    async def go():
        clock = {"now": T0 + 4 * H + pd.Timedelta(minutes=1)}
        slept: list[float] = []

        async def sleep(s: float) -> None:  # never returns by itself: only stream updates wake the feed
            slept.append(s)
            await asyncio.Event().wait()

        async with ws_env() as env:
            feed = live_feed(env.adapter, SPOT, None, "1h", start=T0, settle_delay=0.0, poll_interval=7.0,
                             now=lambda: clock["now"], sleep=sleep)
            seen: list[pd.Timestamp] = []

            async def consume() -> None:
                async for e in feed:
                    seen.append(e.ts)

            task = asyncio.ensure_future(consume())
            await env.sim.wait_ws_subscribed("spot", "btcusdt@kline_1h")
            for i in range(5):
                row = frames["spot"].iloc[i]
                await env.sim.push_kline("BTCUSDT", "spot", _ms(T0 + i * H), row["open"], row["high"],
                                         row["low"], row["close"], row["volume"], closed=True)
            await _until(lambda: len(seen) == 4)
            assert seen == [T0 + i * H for i in range(4)]  # bar 4 has no successor yet
            assert slept and set(slept) == {7.0}
            await feed.aclose()
            await asyncio.wait_for(task, 5)
            assert env.sim.ws_connections() == 0
            assert set(env.asked) <= set(HOSTS + WS_HOSTS)
    asyncio.run(go())


def test_factory_falls_back_to_polling_and_checks_arguments():
    class NoWs:
        has: ClassVar[dict[str, Any]] = {"watchOHLCV": False}

    async def go():
        async with ws_env() as env:
            assert type(live_feed(env.adapter, SPOT, PERP, start=T0, websockets=False)) is LivePollingFeed
            assert type(live_feed(env.adapter, SPOT, PERP, start=T0, exchange=NoWs())) is LivePollingFeed
            with pytest.raises(InvalidInput):
                LiveWebsocketFeed(env.adapter, NoWs(), SPOT, PERP, start=T0)
            with pytest.raises(InvalidInput):
                live_feed(env.adapter, None, None, start=T0)
            assert env.asked == []  # building feeds opens nothing
    asyncio.run(go())


def test_a_dropped_stream_is_polled_meanwhile_and_resubscribed():
    frames, funding = _market(8, seed=13)
    store = FakeStore(frames, funding)

    async def go():
        clock = {"now": T0 + 2 * H + pd.Timedelta(seconds=30)}
        async with ws_env() as env:
            feed = live_feed(env.adapter, SPOT, None, "1h", start=T0, settle_delay=0.0,
                             reconnect_delay=0.05, now=lambda: clock["now"])
            feed.start_streams()
            await env.sim.wait_ws_subscribed("spot", "btcusdt@kline_1h")
            for i in range(3):
                row = frames["spot"].iloc[i]
                await env.sim.push_kline("BTCUSDT", "spot", _ms(T0 + i * H), row["open"], row["high"],
                                         row["low"], row["close"], row["volume"], closed=True)
            await _until(lambda: _ms(T0 + 2 * H) in feed._rows[(SPOT, MarketKind.SPOT)])
            first = await feed.poll()
            assert [e.ts for e in first] == [T0, T0 + H]
            # the venue drops the stream; meanwhile bars 2 and 3 are on REST only
            assert await env.sim.drop_ws("spot") == 1
            await _until(lambda: feed.stream_errors >= 1)
            _publish(env.sim, {"spot": frames["spot"].iloc[:4]}, funding.iloc[:0], T0 + 3 * H)
            clock["now"] = T0 + 4 * H + pd.Timedelta(seconds=30)
            during = await feed.poll()
            assert during == list(iter_events(store, "binance", SPOT, None, "1h", T0 + 2 * H, T0 + 4 * H))
            # ccxt.pro reconnects on the next watch and subscribes again
            await env.sim.wait_ws_subscribed("spot", "btcusdt@kline_1h")
            clock["now"] = T0 + 6 * H + pd.Timedelta(seconds=28)
            assert await feed.poll() == []  # REST round; bar 4 is late on REST, nothing streamed yet
            # the stream resumes at bar 5 (bar 4 went out while it was down); bar 4 reaches REST
            for i in (5, 6):
                row = frames["spot"].iloc[i]
                await env.sim.push_kline("BTCUSDT", "spot", _ms(T0 + i * H), row["open"], row["high"],
                                         row["low"], row["close"], row["volume"], closed=True)
            await _until(lambda: _ms(T0 + 6 * H) in feed._rows[(SPOT, MarketKind.SPOT)])
            _publish(env.sim, {"spot": frames["spot"].iloc[:5]}, funding.iloc[:0], T0 + 4 * H)
            clock["now"] = T0 + 6 * H + pd.Timedelta(seconds=30)
            assert await feed.poll() == []  # not a REST round: streamed bar 5 waits for bar 4's backfill
            clock["now"] = T0 + 6 * H + pd.Timedelta(seconds=40)
            after = await feed.poll()  # bar 4 over REST, bar 5 from the stream (REST never had it)
            assert after == list(iter_events(store, "binance", SPOT, None, "1h", T0 + 4 * H, T0 + 6 * H))
            assert feed.late_dropped == 0
            await feed.aclose()
            assert env.sim.ws_connections() == 0
    asyncio.run(go())
