"""A perp pair on the live TICKER feed: each leg's funding rate, interval and next settlement from its OWN venue's
funding-rate answer, real ccxt against the Binance USD-M, Bybit and OKX simulators, the runner's own HedgeTask in
process.

What each venue publishes (``fetch_funding_rate``, ccxt ``fundingTimestamp`` / ``interval``), and where the
simulators follow it:

- Binance USD-M "Mark Price" (``GET /fapi/v1/premiumIndex``) ``nextFundingTime``, and "Get Funding Rate Info"
  (``GET /fapi/v1/fundingInfo``) ``fundingIntervalHours`` for the symbols whose interval was adjusted (any other
  settles every 8 h);
- Bybit v5 "Get Tickers" ``nextFundingTime`` and "Get Instruments Info" ``fundingInterval`` (minutes);
- OKX "Get funding rate" (``GET /api/v5/public/funding-rate``) ``fundingTime`` (the next settlement) and
  ``nextFundingTime``: the interval is their difference (tests/support/okx_sim.py ``set_funding_interval``).

Before: the ticker path gave the FIRST leg no next settlement (a soft exit was never held for what that leg was
about to receive) and the SECOND leg the 8 h default interval whatever its venue's (a 4 h venue's rate was
annualised as per 8 h, halving its APR in the pair's entry rule).
"""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.engine.driver import HedgeDriver
from hedge_core.engine.events import MarketUpdate
from hedge_core.engine.states import State
from hedge_core.exchange.pair_feed import VenueSchedule
from hedge_core.runner.hedge import HedgeTask
from tests.support.inprocess_hedge import running_hedge, stop, until
from tests.support.pair_live_env import binance_perp_sim, bybit_perp_sim, pair_venues
from tests.support.pair_okx_env import OKX_SWAP, okx_perp_sim, pair_params, pair_spec, perp_pair

pytestmark = [pytest.mark.timeout(180), pytest.mark.integration]  # local venue simulators

H = pd.Timedelta(hours=1)
P = "BTC/USDT:USDT"


@pytest.fixture
def seen(monkeypatch):
    """Every MarketUpdate and transition the running hedges' drivers see, in order."""
    got: dict[str, list] = {"updates": [], "transitions": []}
    feed0, on_t0 = HedgeDriver.feed, HedgeTask._on_transition

    async def feed(self, event):
        if isinstance(event, MarketUpdate):
            got["updates"].append(event)
        return await feed0(self, event)

    def on_transition(self, hedge_id, t):
        got["transitions"].append(t)
        return on_t0(self, hedge_id, t)

    monkeypatch.setattr(HedgeDriver, "feed", feed)
    monkeypatch.setattr(HedgeTask, "_on_transition", on_transition)
    return got


def test_okx_publishes_its_swaps_own_interval_and_grid_and_the_adapter_reads_them():
    # OKX 4 h on a grid through 02:00 (02:00, 06:00, 10:00, ...): the next settlement is read, not computed
    async def go():
        sim = okx_perp_sim()
        anchor = pd.Timestamp("2026-01-01 02:00", tz="UTC")
        sim.set_funding_interval(OKX_SWAP, 4, anchor_ms=anchor.value // 1_000_000)
        async with perp_pair("okx", "bybit", first_sim=sim) as pv:
            okx, _ = pv.adapter.leg_adapters()
            fr = await okx.fetch_funding_rate(P)
            now = pd.Timestamp.now(tz="UTC")
            assert fr.interval_hours == 4.0
            assert fr.ts == anchor + ((now - anchor) // (4 * H) + 1) * 4 * H  # 02:00 + 4 h k, strictly after now
            assert (fr.ts - anchor) % (4 * H) == pd.Timedelta(0) and fr.ts.hour % 4 == 2
            sim.set_funding_interval(OKX_SWAP, 1)  # hourly on the 00:00 grid
            fr = await okx.fetch_funding_rate(P)
            assert fr.interval_hours == 1.0 and fr.ts == pd.Timestamp.now(tz="UTC").floor("1h") + H
        with pytest.raises(ValueError, match="hours"):
            sim.set_funding_interval(OKX_SWAP, 3)
        with pytest.raises(ValueError, match="SWAP"):
            sim.set_funding_interval("BTC-USDT", 4)
    asyncio.run(go())


def test_the_pair_keeps_the_first_venues_published_schedule_and_answers_its_next_settlement():
    async def go():
        a_sim, b_sim = binance_perp_sim(), bybit_perp_sim()
        b_sim.set_funding_interval("BTCUSDT", 240)  # Bybit 4 h (second), Binance its standard 8 h (first)
        async with pair_venues(a_sim, b_sim) as pv:
            pair = pv.adapter
            assert pair.first_schedule is None and pair.first_next_funding_ts(pd.Timestamp.now(tz="UTC")) is None
            fb = await pair.fetch_funding_rate(P)
            now = pd.Timestamp.now(tz="UTC")
            assert (fb.interval_hours, fb.ts) == (4.0, now.floor("4h") + 4 * H)  # the second venue's, returned
            assert pair.first_schedule == VenueSchedule(now.floor("8h") + 8 * H, 8.0)  # the first's, kept
            assert pair.first_interval_hours == 8.0 and pair.first_last_rate == pytest.approx(0.0001)
            day = now.floor("1D")
            assert pair.first_next_funding_ts(day + 3 * H) == day + 8 * H  # on its grid, strictly after
            assert pair.first_next_funding_ts(day + 8 * H) == day + 16 * H
    asyncio.run(go())


def test_ticker_pair_gives_each_leg_its_venues_interval_and_next_settlement_and_enters_on_the_4h_apr(
        tmp_path, seen):
    # Binance (first) 0.0001 per 8 h, Bybit (second) 0.0005 per 4 h. By hand:
    #   APR binance = 0.0001 x 8760 / 8 = 0.1095; APR bybit = 0.0005 x 8760 / 4 = 1.0950; spread 0.9855;
    #   the longer interval H = 8 h: 0.9855 x 8 / 8760 = 0.00090 per interval >= min_funding_rate 0.0006: enter.
    # With the second leg's interval taken as 8 h (before): APR bybit 0.5475, spread 0.4380 -> 0.00040 < 0.0006,
    # and the pair never entered.
    async def go():
        a_sim, b_sim = binance_perp_sim(rate=0.0001), bybit_perp_sim(rate=0.0005)
        b_sim.set_funding_interval("BTCUSDT", 240)
        async with pair_venues(a_sim, b_sim) as pv:
            params = {**pair_params("binance", "bybit"), "min_funding_rate": 0.0006}
            sup, task, store = await running_hedge(tmp_path, pv.adapter, params, hedge_id="pt4",
                                                   **pair_spec("binance", "bybit"), records_poll_s=0.2,
                                                   reconcile_s=0.5)
            try:
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, what="entry on ticker")
                for mu in seen["updates"]:
                    t = mu.ts
                    assert mu.spot_funding_interval_hours == 8.0 and mu.funding_interval_hours == 4.0, t
                    assert mu.spot_next_funding_ts == t.floor("8h") + 8 * H, t  # before: None
                    assert mu.next_funding_ts == t.floor("4h") + 4 * H, t
                    assert mu.spot_funding_rate == pytest.approx(0.0001)
                    assert mu.expected_funding_rate == pytest.approx(0.0005)
                entry = next(t for t in seen["transitions"] if "funding APR" in t.reason)
                assert ("long binance perp, short bybit perp: funding APR binance 0.1095, bybit 1.0950, "
                        "spread 0.9855") in entry.reason and "x 8h" in entry.reason
                assert a_sim.position("BTCUSDT") > 0 > b_sim.positions["BTCUSDT"][0]
            finally:
                await stop(task, store)
    asyncio.run(go())


def _okx_first_off_grid(lead: pd.Timedelta) -> tuple[object, pd.Timestamp]:
    """OKX (first leg) settling every 4 h on a grid whose next settlement is ``lead`` from now, 30 s past a whole
    minute (never 00:00-aligned), at -0.0003 per 4 h (a long receives); returns (simulator, that settlement)."""
    sim = okx_perp_sim(rate=-0.0003)
    nxt = (pd.Timestamp.now(tz="UTC") + lead).floor("1min") + pd.Timedelta(seconds=30)
    sim.set_funding_interval(OKX_SWAP, 4, anchor_ms=nxt.value // 1_000_000)
    return sim, nxt


async def _past_binance_settlement() -> pd.Timedelta:
    """Time to Binance's next 8 h settlement (00:00, 08:00, 16:00), waiting past it first when it is under 3 min
    away (the test needs it clearly outside the deferral window, and OKX's settlement before it a minute or more
    away: no settlement passes while the test runs)."""
    now = pd.Timestamp.now(tz="UTC")
    t8 = now.floor("8h") + 8 * H - now
    if t8 < pd.Timedelta(minutes=3):
        await asyncio.sleep(t8.total_seconds() + 2.0)
        now = pd.Timestamp.now(tz="UTC")
        t8 = now.floor("8h") + 8 * H - now
    return t8


@pytest.mark.timeout(420)  # at most 3 min waiting past Binance's settlement (_past_binance_settlement)
@pytest.mark.parametrize("inside", [True, False], ids=["window-holds-okx-settlement", "window-too-short"])
def test_ticker_pair_soft_exit_waits_for_the_first_legs_own_off_grid_settlement(tmp_path, seen, inside):
    # First leg OKX every 4 h on an off-00:00 grid at -0.0003 (long: receives 0.0003 x its notional), second leg
    # Binance every 8 h at +0.0001 (short: receives too). APRs by hand: okx -0.0003 x 8760 / 4 = -0.657, binance
    # 0.1095: spread 0.7665 > 0, so the pair goes LONG okx, SHORT binance. A max holding time of 0.36 s fires at
    # once after the entry; with exit.defer_within_s_of_funding between OKX's next settlement and Binance's, only
    # the FIRST leg settles within the window and it receives: the exit waits. Before, the ticker path gave the
    # first leg no next settlement and the pair exited. A window shorter than OKX's lead holds nothing: it exits.
    async def go():
        t8 = await _past_binance_settlement()
        lead = min(t8 / 2, pd.Timedelta(minutes=20))
        sim, okx_next = _okx_first_off_grid(lead)
        lead = okx_next - pd.Timestamp.now(tz="UTC")
        window = (lead + t8) / 2 if inside else lead / 2
        assert okx_next.minute * 60 + okx_next.second != 0  # off the 00:00-aligned grids
        async with perp_pair("okx", "binance", first_sim=sim, second_sim=binance_perp_sim(rate=0.0001)) as pv:
            params = pair_params("okx", "binance")
            params["exit"] = {**params["exit"], "max_holding_hours": 0.0001,
                              "defer_within_s_of_funding": round(window.total_seconds(), 3)}
            sup, task, store = await running_hedge(tmp_path, pv.adapter, params, hedge_id=f"pto{int(inside)}",
                                                   **pair_spec("okx", "binance"), records_poll_s=0.2,
                                                   reconcile_s=0.5)
            try:
                await until(lambda: task.driver.ctx.entered_at is not None, what="entry on ticker")
                assert pv.first_sim.positions[OKX_SWAP][0] > 0 > pv.second_sim.position("BTCUSDT")
                if inside:
                    n = len(seen["updates"])
                    await until(lambda: len(seen["updates"]) >= n + 20, what="20 more ticker updates")
                    assert task.driver.ctx.state is State.MONITORING_POSITIONS  # held: the exit waits
                    assert not any("max holding" in t.reason for t in seen["transitions"])
                else:
                    await until(lambda: task.driver.ctx.state is State.COMPLETED, what="the soft exit")
                    assert any("max holding" in t.reason for t in seen["transitions"])
                for mu in seen["updates"]:
                    t = mu.ts
                    assert mu.spot_funding_interval_hours == 4.0 and mu.funding_interval_hours == 8.0, t
                    assert mu.spot_next_funding_ts == okx_next, t  # OKX's own grid, not 00:00-aligned
                    assert mu.next_funding_ts == t.floor("8h") + 8 * H, t
                    assert mu.spot_funding_rate == pytest.approx(-0.0003)
            finally:
                await stop(task, store)
    asyncio.run(go())


def test_the_ticker_feed_carries_the_perp_venues_interval_and_keeps_it_over_a_failed_funding_read():
    # the market update of a tick is annualised at the venue's own interval (before: always the 8 h default)
    from hedge_core.errors import NetworkError
    from hedge_core.runner.market import TickerFeed
    from hedge_core.types import FundingRate, Ticker

    T0 = pd.Timestamp("2026-03-02 01:00", tz="UTC")
    answers = [FundingRate(P, T0 + 3 * H, 0.0002, interval_hours=4.0), NetworkError("funding-rate timed out")]

    class Venue:
        async def fetch_ticker(self, symbol):
            return Ticker(symbol, T0, 99.0, 101.0, 100.0, mark=100.5)

        async def fetch_funding_rate(self, symbol):
            a = answers.pop(0)
            if isinstance(a, Exception):
                raise a
            return a

        async def fetch_funding_rate_history(self, symbol, since=None, limit=None):  # the last settled rate
            return [FundingRate(P, T0 - H, 0.0001)]

    async def go():
        feed = TickerFeed(Venue(), "BTC/USDT", P, interval=0.0, now=lambda: T0)
        got = []
        async for tick in feed:
            got.append(tick.market_update())
            if len(got) == 2:
                await feed.aclose()
        return got

    first, second = asyncio.run(go())
    assert (first.funding_interval_hours, first.next_funding_rate, first.next_funding_ts) == (4.0, 0.0002, T0 + 3 * H)
    assert second.funding_interval_hours == 4.0 and second.next_funding_ts is None  # the rate unknown, not the interval
