"""A runner replay of two perp legs carries the UNION of both venues' settlement instants
(``exchange.pair_feed``): venue A settling every 4h at 02:00, 06:00, ... and venue B every 8h at 00:00,
08:00, ... each settle exactly at their own times, whatever the replayed data venue's funding times are."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.exchange.feeds import ReplayFeed, event_order_key
from hedge_core.exchange.pair_feed import SettlementInstantsFeed, is_instant_only, settlement_times
from hedge_core.exchange.routed_pair import PerpPairPaper
from hedge_core.runner.market import MarketBuilder
from hedge_core.types import Bar, FundingEvent
from tests.support.perp_pair import PERP, T0, perp_venue

pytestmark = pytest.mark.unit
H = pd.Timedelta(hours=1)


class _Store:
    """The data venue: 4h bars labelled 00:00, 04:00, ... 20:00 (ends 04:00 .. 24:00), funding at 08:00 and
    16:00 only (a venue that settles every 8h)."""

    def read_bars(self, venue, symbol, kind, timeframe, start=None, end=None, resample=None):
        idx = pd.date_range(T0, periods=6, freq="4h", tz="UTC")
        return pd.DataFrame({"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}, index=idx)

    def read_funding(self, venue, symbol, start=None, end=None):
        return pd.DataFrame({"funding_rate": [0.0001, 0.0001], "interval_hours": 8.0},
                            index=pd.DatetimeIndex([T0 + 8 * H, T0 + 16 * H]))


def _funding(hours: list[int], rate: float, interval: float) -> pd.DataFrame:
    return pd.DataFrame({"funding_rate": rate, "interval_hours": interval},
                        index=pd.DatetimeIndex([T0 + h * H for h in hours]))


def _events(feed) -> list:
    async def run():
        return [ev async for ev in feed]
    return asyncio.run(run())


FA = _funding(list(range(2, 30, 4)), 0.00002, 4.0)  # A: 02:00, 06:00, ..., 26:00 (4h)
FB = _funding(list(range(0, 32, 8)), 0.0005, 8.0)  # B: 00:00, 08:00, 16:00, 24:00 (8h)


def test_the_feed_adds_each_venues_times_the_data_venue_lacks_in_event_order():
    inner = ReplayFeed(_Store(), "binance", None, PERP, "4h", T0, T0 + 24 * H)
    evs = _events(SettlementInstantsFeed(inner, settlement_times(FA, FB)))
    keys = [event_order_key(e) for e in evs]
    assert keys == sorted(keys)  # bars before funding at one instant, instants in time order
    added = [(e.ts - T0) / H for e in evs if isinstance(e, FundingEvent) and is_instant_only(e)]
    own = [(e.ts - T0) / H for e in evs if isinstance(e, FundingEvent) and not is_instant_only(e)]
    # A's 02:00 .. 22:00 and B's 24:00 (the last bars' instant); B's 08:00 and 16:00 are the data venue's own
    # events (not doubled); B's 00:00 is the replay's start and A's 26:00 lies past the last bar: dropped
    assert added == [2, 6, 10, 14, 18, 22, 24] and own == [8, 16]
    last_bar = max(i for i, e in enumerate(evs) if isinstance(e, Bar))
    assert evs[-1].ts == T0 + 24 * H and last_bar < len(evs) - 1  # 24:00 settles after the bars ending then


def test_each_paper_venue_settles_its_own_rate_at_its_own_instants_and_the_market_keeps_the_data_rate():
    pair = PerpPairPaper(perp_venue("bybit", 5_000.0), perp_venue("okx", 5_000.0), first_funding=FA,
                         second_funding=FB)
    assert list(pair.settlement_times()) == sorted(set(FA.index) | set(FB.index))
    mb = MarketBuilder("BTC/USDT", PERP, "4h")
    inner = ReplayFeed(_Store(), "binance", None, PERP, "4h", T0, T0 + 24 * H)
    a_times, b_times = [], []
    for ev in _events(SettlementInstantsFeed(inner, pair.settlement_times())):
        if isinstance(ev, FundingEvent):
            asyncio.run(pair.apply(ev))
            mb.settle(ev)
            a_times += [(x.ts - T0) / H for x in pair.take_first_settled()]
            b_times += [(x.ts - T0) / H for x in pair.take_second_settled()]
    assert a_times == [2, 6, 10, 14, 18, 22] and b_times == [8, 16, 24]
    assert [f.rate for f in pair.first.core.funding_history] == [0.00002] * 6
    assert [f.rate for f in pair.second.core.funding_history] == [0.0005] * 3
    assert pair.first_interval_hours == 4.0 and pair.first_next_funding_ts(T0 + 3 * H) == T0 + 6 * H
    assert mb.rate == 0.0001  # the data venue's last rate (16:00), not overwritten by an added instant
    # without B's own series B falls back to the data venue's events, never to an added instant
    fb = PerpPairPaper(perp_venue("bybit", 1.0), perp_venue("okx", 1.0), first_funding=FA)
    inner = ReplayFeed(_Store(), "binance", None, PERP, "4h", T0, T0 + 24 * H)
    for ev in _events(SettlementInstantsFeed(inner, fb.settlement_times())):
        if isinstance(ev, FundingEvent):
            asyncio.run(fb.apply(ev))
    assert [(x.ts - T0) / H for x in fb.take_second_settled()] == [8, 16]


def test_an_instant_passed_again_after_a_restart_is_not_settled_twice():
    # the replay resumes at the second venue's clock: an instant only the first venue settled comes again
    pair = PerpPairPaper(perp_venue("bybit", 5_000.0), perp_venue("okx", 5_000.0), first_funding=FA,
                         second_funding=FB)
    t6 = T0 + 6 * H
    for _ in range(2):
        asyncio.run(pair.apply(FundingEvent(t6, "binance", PERP, float("nan"), float("nan"))))
    assert [(f.ts - T0) / H for f in pair.first.core.funding_history] == [6]
    assert len(pair.take_first_settled()) == 1
    live = PerpPairPaper(perp_venue("bybit", 5_000.0), perp_venue("okx", 5_000.0), by_venue=True)
    for _ in range(2):
        asyncio.run(live.apply(FundingEvent(t6, "bybit", PERP, 0.0001, 8.0)))
    assert len(live.first.core.funding_history) == 1 and len(live.take_first_settled()) == 1
