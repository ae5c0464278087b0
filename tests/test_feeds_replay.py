"""Replay feed: ordering by known time, bars before funding, gaps kept, window edges, clock."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from hedge_core.data.shared import SAMPLE, load_tidy
from hedge_core.errors import InvalidInput
from hedge_core.exchange.feeds import Feed, ReplayFeed, event_order_key, iter_events, known_at, timeframe_delta
from hedge_core.store import Store
from hedge_core.types import Bar, FundingEvent, MarketKind

SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"


def _frame(start: str, n: int, price: float = 100.0, drop: tuple[int, ...] = ()) -> pd.DataFrame:
    idx = pd.date_range(start, periods=n, freq="1h", tz="UTC")
    df = pd.DataFrame({"open": price, "high": price + 1, "low": price - 1, "close": price + np.arange(n),
                       "volume": 10.0}, index=idx)
    return df.drop(df.index[list(drop)])


@pytest.fixture
def small_store():
    st = Store(":memory:")
    st.write_bars(_frame("2024-01-01", 24, drop=(5,)), venue="binance", symbol=SPOT, kind="spot", timeframe="1h")
    st.write_bars(_frame("2024-01-01", 24, 101.0), venue="binance", symbol=PERP, kind="perp", timeframe="1h")
    st.write_bars(_frame("2024-01-01", 24, 100.5).drop(columns="volume"), venue="binance", symbol=PERP,
                  kind="mark", timeframe="1h")
    fidx = pd.date_range("2024-01-01", periods=4, freq="8h", tz="UTC")
    st.write_funding(pd.DataFrame({"funding_rate": [1e-4, 2e-4, -1e-4, 3e-4]}, index=fidx),
                     venue="binance", symbol=PERP)
    yield st
    st.close()


def test_timeframe_delta():
    assert timeframe_delta("1m") == pd.Timedelta(minutes=1)
    assert timeframe_delta("8h") == pd.Timedelta(hours=8)
    assert timeframe_delta("1d") == pd.Timedelta(days=1)
    with pytest.raises(InvalidInput, match="timeframe"):
        timeframe_delta("1x")


def test_events_are_emitted_when_known_bars_before_funding(small_store):
    evs = list(iter_events(small_store, "binance", SPOT, PERP, "1h", "2024-01-01T00:00Z", "2024-01-01T16:00Z"))
    keys = [event_order_key(e) for e in evs]
    assert keys == sorted(keys)
    # a bar labelled 07:00 is known at 08:00; funding at 08:00 comes after every bar known at 08:00
    at8 = [e for e in evs if known_at(e) == pd.Timestamp("2024-01-01T08:00Z")]
    assert [type(e).__name__ for e in at8] == ["Bar", "Bar", "Bar", "FundingEvent"]
    assert [e.kind for e in at8[:3]] == [MarketKind.SPOT, MarketKind.PERP, MarketKind.MARK]
    assert all(e.ts == pd.Timestamp("2024-01-01T07:00Z") for e in at8[:3])
    # window [start, end): bars labelled 00:00..15:00, funding in (start, end] -> 08:00 and 16:00
    fund = [e for e in evs if isinstance(e, FundingEvent)]
    assert [e.ts.hour for e in fund] == [8, 16] and fund[0].rate == pytest.approx(2e-4)
    assert max(e.ts for e in evs if isinstance(e, Bar)) == pd.Timestamp("2024-01-01T15:00Z")
    assert evs[-1] == fund[-1]  # the funding at end is the last event (after the bars known at end)


def test_gap_is_kept_not_filled(small_store):
    evs = list(iter_events(small_store, "binance", SPOT, PERP, "1h", "2024-01-01T00:00Z", "2024-01-02T00:00Z"))
    spot = [e.ts.hour for e in evs if isinstance(e, Bar) and e.kind is MarketKind.SPOT]
    assert 5 not in spot and len(spot) == 23
    perp = [e for e in evs if isinstance(e, Bar) and e.kind is MarketKind.PERP]
    assert len(perp) == 24
    assert all(e.volume == 0.0 for e in evs if isinstance(e, Bar) and e.kind is MarketKind.MARK)


def test_replay_clock_speed_and_injected_sleep(small_store):
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)

    async def run(speed):
        feed = ReplayFeed(small_store, "binance", SPOT, PERP, "1h", "2024-01-01T00:00Z", "2024-01-01T04:00Z",
                          speed=speed, sleep=fake_sleep)
        assert isinstance(feed, Feed)
        return [e async for e in feed]

    fast = asyncio.run(run(None))
    assert slept == []
    timed = asyncio.run(run(60.0))
    assert timed == fast
    # 4 distinct known instants, one hour apart (the first one hour after start): 60 s each at 60x
    assert slept == [60.0] * 4


def test_replay_aclose_stops(small_store):
    async def run():
        feed = ReplayFeed(small_store, "binance", SPOT, PERP, "1h", "2024-01-01T00:00Z", "2024-01-02T00:00Z")
        out = []
        async for e in feed:
            out.append(e)
            if len(out) == 5:
                await feed.aclose()
        return out

    assert len(asyncio.run(run())) == 5


def test_bad_arguments(small_store):
    with pytest.raises(InvalidInput, match="speed"):
        ReplayFeed(small_store, "binance", SPOT, PERP, "1h", "2024-01-01T00:00Z", "2024-01-02T00:00Z", speed=0)
    with pytest.raises(InvalidInput, match="end"):
        list(iter_events(small_store, "binance", SPOT, PERP, "1h", "2024-01-02T00:00Z", "2024-01-01T00:00Z"))
    with pytest.raises(ValueError, match="timezone"):
        list(iter_events(small_store, "binance", SPOT, PERP, "1h", "2024-01-01", "2024-01-02"))


@pytest.mark.shared_data
def test_real_data_replay_keeps_the_2023_03_24_spot_gap(shared_data):
    st = Store(":memory:")
    win = slice("2023-03-20", "2023-03-28")
    for kind, sym in (("spot", SPOT), ("perp", PERP), ("mark", PERP)):
        st.write_bars(load_tidy(SAMPLE, "binance", "BTCUSDT", kind, "1h").loc[win], venue="binance", symbol=sym,
                      kind=kind, timeframe="1h")
    f = load_tidy(SAMPLE, "binance", "BTCUSDT", "funding", "8h").loc[win]
    st.write_funding(f, venue="binance", symbol=PERP)
    evs = list(iter_events(st, "binance", SPOT, PERP, "1h", "2023-03-24T00:00Z", "2023-03-25T00:00Z"))
    keys = [event_order_key(e) for e in evs]
    assert keys == sorted(keys)
    spot_ts = [e.ts for e in evs if isinstance(e, Bar) and e.kind is MarketKind.SPOT]
    assert pd.Timestamp("2023-03-24T13:00Z") not in spot_ts and len(spot_ts) == 23
    assert sum(1 for e in evs if isinstance(e, Bar) and e.kind is MarketKind.PERP) == 24
    fund = [e for e in evs if isinstance(e, FundingEvent)]
    assert [e.ts.hour for e in fund] == [8, 16, 0]  # (start, end]
    assert fund[0].rate == pytest.approx(f.loc["2023-03-24T08:00Z", "funding_rate"])
    # at 14:00 (the gap's known time) perp and mark arrive, spot does not
    at14 = [e for e in evs if known_at(e) == pd.Timestamp("2023-03-24T14:00Z")]
    assert [e.kind for e in at14] == [MarketKind.PERP, MarketKind.MARK]
    st.close()
