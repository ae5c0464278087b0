"""The live polling feed yields exactly the store replay's events, in the same order."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.errors import InvalidInput
from hedge_core.exchange.feeds import Feed, iter_events
from hedge_core.exchange.live_feed import LivePollingFeed
from hedge_core.types import Bar, FundingEvent
from tests.support.feed_fixtures import FakeStore, H, _market, _publish
from tests.support.live_env import live_env

T0 = pd.Timestamp("2024-01-01T00:00Z")
SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"


def test_live_feed_matches_store_replay_order_and_values():
    frames, funding = _market(20, seed=3)

    async def go():
        clock = {"now": T0 + 8 * H + pd.Timedelta(seconds=30)}
        async with live_env() as env:
            # the venue has also published the still-forming bar labelled 8h: it must not be emitted
            _publish(env.sim, frames, funding, upto_label=T0 + 8 * H)
            feed = LivePollingFeed(env.adapter, SPOT, PERP, "1h", start=T0, settle_delay=10.0,
                                   now=lambda: clock["now"])
            assert isinstance(feed, Feed)
            got = await feed.poll()
            want = list(iter_events(FakeStore(frames, funding), "binance", SPOT, PERP, "1h", T0, T0 + 8 * H))
            assert got == want
            assert isinstance(got[-1], FundingEvent) and got[-1].ts == T0 + 8 * H
            assert [type(e) for e in got[-4:]] == [Bar, Bar, Bar, FundingEvent]  # bars before funding
            # one hour later: exactly the next three bars
            clock["now"] += H
            nxt = await feed.poll()
            want2 = list(iter_events(FakeStore(frames, funding), "binance", SPOT, PERP, "1h",
                                     T0 + 8 * H, T0 + 9 * H))
            assert nxt == want2 and len(nxt) == 3
            # nothing new -> nothing emitted
            assert await feed.poll() == []
    asyncio.run(go())


def test_instant_is_held_until_settle_delay_then_late_events_are_dropped():
    frames, funding = _market(12, seed=5)

    async def go():
        async with live_env() as env:
            sim = env.sim
            _publish(sim, {k: v.iloc[:7] for k, v in frames.items()}, funding.iloc[:0], T0 + 6 * H)
            clock = {"now": T0 + 7 * H + pd.Timedelta(seconds=2)}
            feed = LivePollingFeed(env.adapter, SPOT, PERP, "1h", start=T0, settle_delay=10.0,
                                   include_funding=False, now=lambda: clock["now"])
            first = await feed.poll()
            # bars known at 7h are still inside the settle delay: held back
            assert first and max(e.ts for e in first) == T0 + 5 * H
            clock["now"] = T0 + 7 * H + pd.Timedelta(seconds=11)
            second = await feed.poll()
            assert {e.ts for e in second} == {T0 + 6 * H} and len(second) == 3
            # a bar for an already-passed instant that appears only now is dropped, not reordered
            feed._next_label[(SPOT, first[0].kind)] = T0 + 2 * H
            await feed.poll()
            assert feed.late_dropped >= 1
    asyncio.run(go())


def test_async_iteration_polls_sleeps_and_closes():
    frames, funding = _market(4, seed=1)
    slept: list[float] = []

    async def go():
        async with live_env() as env:
            _publish(env.sim, frames, funding.iloc[:1], T0 + 3 * H)
            clock = {"now": T0 + 2 * H + pd.Timedelta(minutes=1)}

            async def sleep(s: float) -> None:
                slept.append(s)
                clock["now"] += H

            feed = LivePollingFeed(env.adapter, SPOT, None, "1h", start=T0, poll_interval=7.0,
                                   settle_delay=0.0, now=lambda: clock["now"], sleep=sleep)
            seen = []
            async for e in feed:
                seen.append(e.ts)
                if len(seen) == 4:
                    await feed.aclose()
            assert seen == [T0, T0 + H, T0 + 2 * H, T0 + 3 * H]
            assert slept == [7.0, 7.0]  # after each empty poll: one sleep, then the next closed bar
    asyncio.run(go())


def test_bad_arguments():
    with pytest.raises(InvalidInput):
        LivePollingFeed(object(), SPOT, None, start=T0)  # type: ignore[arg-type]


def test_recommend_wrapper_is_unwrapped_to_its_market_data():
    async def go():
        async with live_env() as env:
            from hedge_core.exchange.recommend import RecommendAdapter
            feed = LivePollingFeed(RecommendAdapter(env.adapter), SPOT, None, start=T0)
            assert feed.adapter is env.adapter
            with pytest.raises(InvalidInput):
                LivePollingFeed(env.adapter, None, None, start=T0)
    asyncio.run(go())


def test_a_settlement_published_after_its_instants_bars_were_released_still_comes_out():
    """A venue publishes a settlement's funding row a moment after its time (exchange.settled_rate); when that is
    later than ``settle_delay``, the bars known at the same instant have already gone out. The settlement still
    comes out (after them: bars before funding at an instant, as the replay orders them) and is not dropped; a
    BAR of an instant already released is still dropped."""
    frames, funding = _market(12, seed=7)

    async def go():
        async with live_env() as env:
            _publish(env.sim, {k: v.iloc[:8] for k, v in frames.items()}, funding.iloc[:1], T0 + 7 * H)
            clock = {"now": T0 + 8 * H + pd.Timedelta(seconds=11)}
            feed = LivePollingFeed(env.adapter, SPOT, PERP, "1h", start=T0, settle_delay=10.0,
                                   now=lambda: clock["now"])
            first = await feed.poll()
            assert first[-1].ts == T0 + 7 * H and isinstance(first[-1], Bar)  # the bars known at 8h, no funding yet
            assert not any(isinstance(e, FundingEvent) for e in first)
            # the 8h settlement is published 20 s after its time
            env.sim.settle_funding("BTCUSDT", float(funding["funding_rate"].iloc[1]),
                                   ts_ms=int((T0 + 8 * H).value // 1_000_000))
            clock["now"] = T0 + 8 * H + pd.Timedelta(seconds=20)
            second = await feed.poll()
            assert [(type(e), e.ts) for e in second] == [(FundingEvent, T0 + 8 * H)]
            assert second[0].rate == pytest.approx(float(funding["funding_rate"].iloc[1]))
            assert feed.late_dropped == 0
            # a bar of the instant already acted on is still dropped (the order contract)
            feed._next_label[(SPOT, first[0].kind)] = T0 + 7 * H
            assert await feed.poll() == [] and feed.late_dropped == 1
    asyncio.run(go())
