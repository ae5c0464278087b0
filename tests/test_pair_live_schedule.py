"""A perp pair on live BARS: each leg's funding interval and next settlement from its OWN venue's published
schedule (``exchange.pair_feed.VenueSchedule``), real ccxt against the Binance USD-M and Bybit simulators.

What each venue publishes, and where the simulators follow it:

- Binance USD-M "Mark Price" (``GET /fapi/v1/premiumIndex``) ``nextFundingTime``; "Get Funding Rate Info"
  (``GET /fapi/v1/fundingInfo``) ``fundingIntervalHours``, listing only the symbols whose interval (or cap/floor)
  was adjusted: any other perpetual settles every 8 h
  (https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Get-Funding-Rate-Info);
- Bybit v5 "Get Tickers" (``/v5/market/tickers``) ``nextFundingTime`` and "Get Instruments Info"
  (``/v5/market/instruments-info``) ``fundingInterval`` in minutes (https://bybit-exchange.github.io/docs/v5/market/tickers).

The hand-checked case: the first leg on Binance settling every 4 h (00:00, 04:00, ...), the second on Bybit every
8 h (00:00, 08:00, ...). Before, a paper pair on live bars gave its first leg no next settlement and its second the
00:00-aligned grid of the interval its last settlement carried (always 8 h: the funding-history answers carry
none), and a 4 h venue's rate was annualised as per 8 h.
"""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.engine import new_hedge
from hedge_core.engine.context import evolve
from hedge_core.engine.events import MarketUpdate
from hedge_core.engine.ledger import apply_fill
from hedge_core.engine.perp_legs import pair_defers_exit
from hedge_core.engine.states import State
from hedge_core.exchange.pair_feed import PairBarsFeed, VenueSchedule
from hedge_core.params.models import ExitParams
from hedge_core.exchange.paper.core import default_instruments
from hedge_core.types import Bar, FundingEvent, Side
from tests.support.inprocess_hedge import stop, until
from tests.support.pair_bars import grid, ms, publish_hour, record_updates, start_paper_pair
from tests.support.pair_live_env import PAIR, RATE_A, RATE_B, binance_perp_sim, bybit_perp_sim, pair_params, pair_venues

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # local venue simulators

T = pd.Timestamp("2026-03-02 00:00", tz="UTC")
H = pd.Timedelta(hours=1)
A_CLOSE, A_MARK, B_CLOSE, B_MARK = 40_010.0, 40_012.0, 40_090.0, 40_093.0


def test_a_venues_schedule_gives_the_settlement_strictly_after_an_instant_on_its_own_grid():
    four = VenueSchedule(T + 4 * H, 4.0)  # read at 01:00: "next 04:00, every 4 h"
    assert four.next_after(T + 1 * H) == T + 4 * H
    assert four.next_after(T + 4 * H) == T + 8 * H  # strictly after: 04:00 itself has settled by then
    assert four.next_after(T - 30 * pd.Timedelta(minutes=1)) == T  # before the read: the same grid backwards
    assert four.next_after(T + 13 * H) == T + 16 * H  # long after the read: whole intervals on
    odd = VenueSchedule(T + 2 * H, 4.0)  # a venue at 02:00, 06:00, ...: not the 00:00-aligned 04:00
    assert odd.next_after(T + 3 * H) == T + 6 * H
    eight = VenueSchedule(T + 8 * H, 8.0)
    assert eight.next_after(T + 3 * H) == T + 8 * H


def test_each_adapter_reads_its_venues_own_interval_and_next_settlement():
    async def go():
        a_sim, b_sim = binance_perp_sim(), bybit_perp_sim(rate=RATE_B)
        a_sim.funding_interval_hours["BTCUSDT"] = 4  # listed by /fapi/v1/fundingInfo
        b_sim.set_funding_interval("BTCUSDT", 240)
        async with pair_venues(a_sim, b_sim) as pv:
            a, b = pv.adapter.leg_adapters()
            fa, fb = await a.fetch_funding_rate("BTC/USDT:USDT"), await b.fetch_funding_rate("BTC/USDT:USDT")
            now = pd.Timestamp.now(tz="UTC")
            for fr in (fa, fb):
                assert fr.interval_hours == 4.0
                assert fr.ts == now.floor("4h") + 4 * H or fr.ts == now.ceil("4h")  # the 4 h grid's next
                assert fr.ts > now - pd.Timedelta(seconds=5)
        a_sim = binance_perp_sim()  # not listed by fundingInfo: Binance's standard 8 h
        async with pair_venues(a_sim, bybit_perp_sim(rate=RATE_B)) as pv:
            a, b = pv.adapter.leg_adapters()
            fa, fb = await a.fetch_funding_rate("BTC/USDT:USDT"), await b.fetch_funding_rate("BTC/USDT:USDT")
            assert fa.interval_hours == fb.interval_hours == 8.0
            assert fa.ts == fb.ts == pd.Timestamp.now(tz="UTC").floor("8h") + 8 * H
    asyncio.run(go())


def publish(pv, hours: int = 24) -> tuple[pd.Timestamp, list[pd.Timestamp], list[pd.Timestamp]]:
    """Both venues' 1h perp and mark klines for the last ``hours`` closed hours (each venue at its own prices),
    Binance settling RATE_A at each of ITS 4 h times in the window and Bybit RATE_B at each of its 8 h times.
    Returns (first label, Binance's settlement times, Bybit's)."""
    now = pd.Timestamp.now(tz="UTC").floor("1h")
    labels = [now - k * H for k in range(hours, 0, -1)]
    for t in labels:
        publish_hour(pv.first_sim, "binance", t, A_CLOSE, A_MARK)
        publish_hour(pv.second_sim, "bybit", t, B_CLOSE, B_MARK)
    g4, g8 = grid(labels[0], now, 4), grid(labels[0], now, 8)
    for t in g4:
        pv.first_sim.settle_funding("BTCUSDT", RATE_A, ts_ms=ms(t))
    for t in g8:
        pv.second_sim.settle_funding("BTCUSDT", rate=RATE_B, ts_ms=ms(t))
    return labels[0], g4, g8


def four_and_eight():
    a_sim, b_sim = binance_perp_sim(), bybit_perp_sim(rate=RATE_B)
    a_sim.funding_interval_hours["BTCUSDT"] = 4  # Binance 4 h (first leg), Bybit its standard 8 h (second)
    return pair_venues(a_sim, b_sim)


def test_the_pair_feed_reads_each_venues_schedule_and_stamps_its_settlements_with_its_interval():
    async def go():
        async with four_and_eight() as pv:
            first_label, g4, g8 = publish(pv)
            a, b = pv.adapter.leg_adapters()
            feed = PairBarsFeed(a, b, "BTC/USDT:USDT", "1h", start=first_label, settle_delay=0.0)
            evs = await feed.poll()
            now = pd.Timestamp.now(tz="UTC")
            assert feed.schedules["binance"] == VenueSchedule(now.floor("4h") + 4 * H, 4.0)
            assert feed.schedules["bybit"] == VenueSchedule(now.floor("8h") + 8 * H, 8.0)
            funding = [e for e in evs if isinstance(e, FundingEvent)]
            assert [(e.ts, e.interval_hours) for e in funding if e.venue == "binance"] == [(t, 4.0) for t in g4]
            assert [(e.ts, e.interval_hours) for e in funding if e.venue == "bybit"] == [(t, 8.0) for t in g8]
            # hand-checked at 01:00 and 04:00 of the window's first day
            day = first_label.floor("1D") + pd.Timedelta(days=1)
            assert feed.leg_funding(day + 1 * H) == {
                "spot_funding_interval_hours": 4.0, "spot_next_funding_ts": day + 4 * H,
                "funding_interval_hours": 8.0, "next_funding_ts": day + 8 * H}
            got = feed.leg_funding(day + 4 * H)
            assert got["spot_next_funding_ts"] == day + 8 * H and got["next_funding_ts"] == day + 8 * H
            await feed.aclose()
    asyncio.run(go())


def test_the_soft_exit_deferral_weighs_the_first_legs_own_sooner_settlement():
    # 03:00, a 2 h window: the first venue (4 h) settles at 04:00, inside; the second (8 h) at 08:00, outside.
    # The first leg SHORT 1 BTC at +0.0005 receives 1 x 40,000 x 0.0005 = 20 USDT at 04:00: the exit waits.
    # Without the first venue's schedule (None, as before) nothing settles within the window: it would not.
    feed_fields = {"spot_funding_interval_hours": 4.0, "spot_next_funding_ts": T + 4 * H,
                   "funding_interval_hours": 8.0, "next_funding_ts": T + 8 * H}
    ex = ExitParams(max_holding_hours=1, profit_target_pct=None, stop_loss_pct=None, trailing_giveback=None,
                    funding_unfavourable_intervals=None, defer_within_s_of_funding=7200)
    ctx = new_hedge("h", "xcarry", perp("binance"), perp("bybit"), T)
    ctx = evolve(ctx, spot=apply_fill(ctx.spot, Side.SELL, 1.0, 40_000.0),
                 perp=apply_fill(ctx.perp, Side.BUY, 1.0, 40_000.0), state=State.MONITORING_POSITIONS)
    m = MarketUpdate(T + 3 * H, spot=40_000.0, perp=40_000.0, mark=40_000.0, spot_mark=40_000.0,
                     funding_rate=0.0001, spot_funding_rate=0.0005, **feed_fields)
    assert pair_defers_exit(ctx, T + 3 * H, "max holding time", m, ex)
    old = MarketUpdate(T + 3 * H, spot=40_000.0, perp=40_000.0, mark=40_000.0, spot_mark=40_000.0,
                       funding_rate=0.0001, spot_funding_rate=0.0005, next_funding_ts=T + 8 * H)
    assert not pair_defers_exit(ctx, T + 3 * H, "max holding time", old, ex)


def perp(venue: str):
    """The paper ``BTC/USDT:USDT`` perpetual of ``venue`` (its lot and minimums)."""
    return next(i for i in default_instruments(venue) if i.symbol == "BTC/USDT:USDT")



def test_paper_pair_on_live_bars_gives_each_leg_its_own_venues_schedule_and_settles_each_at_its_own_times(
        tmp_path, monkeypatch):
    seen = record_updates(monkeypatch)

    async def go():
        async with four_and_eight() as pv:
            first_label, g4, g8 = publish(pv)
            a, b = pv.adapter.leg_adapters()
            task, store = await start_paper_pair(tmp_path, {"binance": a, "bybit": b}, {
                "hedge_id": "pls", "params_inline": pair_params(), "feed": "bars", "start": str(first_label), **PAIR,
                # the 24 h of published bars are all fresh enough to trade on: the pair enters early and holds
                # through several settlements of each venue
                "max_bar_age_bars": 48})
            pair = task.raw_adapter
            try:
                last = first_label + 24 * H  # the last published bars' close: acted on at once (no settlement needed)
                await until(lambda: bool(seen) and seen[-1].ts >= last, what="the last bars' update")
                await until(lambda: len(pair.first.core.funding_history) == len(g4)
                            and len(pair.second.core.funding_history) == len(g8), what="every settlement")
                ctx = task.driver.ctx
                assert ctx.state is State.MONITORING_POSITIONS
                # each update: each leg's own venue's interval and its settlement strictly after the instant
                for mu in seen:
                    t = mu.ts
                    assert mu.spot_funding_interval_hours == 4.0 and mu.funding_interval_hours == 8.0, t
                    assert mu.spot_next_funding_ts == t.floor("4h") + 4 * H, t
                    assert mu.next_funding_ts == t.floor("8h") + 8 * H, t
                # each paper venue settled at its own venue's times only, at its own interval
                ca, cb = pair.first.core, pair.second.core
                assert [(f.ts, f.rate, f.interval_hours) for f in ca.funding_history] == [(t, RATE_A, 4.0) for t in g4]
                assert [(f.ts, f.rate, f.interval_hours) for f in cb.funding_history] == [(t, RATE_B, 8.0) for t in g8]
                # funding booked per leg by hand: -qty x that venue's mark x its rate at each of its own
                # settlements at or after the leg's entry fill (long Binance, short Bybit; the marks are constant)
                fa = [f for f in ca.fills if f.symbol == "BTC/USDT:USDT"]
                fb = [f for f in cb.fills if f.symbol == "BTC/USDT:USDT"]
                qa, qb = sum(f.qty for f in fa), -sum(f.qty for f in fb)
                assert qa > 0 > qb and ctx.spot.qty == pytest.approx(qa) and ctx.perp.qty == pytest.approx(qb)
                n4 = len([t for t in g4 if t >= fa[0].ts])
                n8 = len([t for t in g8 if t >= fb[0].ts])
                assert n4 >= 2 and n8 >= 1  # 24 h of bars: settlements on both venues after the entry
                assert ctx.spot.funding == pytest.approx(-qa * A_MARK * RATE_A * n4, rel=1e-9)
                assert ctx.perp.funding == pytest.approx(-qb * B_MARK * RATE_B * n8, rel=1e-9)
                assert ctx.spot_funding_rate == RATE_A
            finally:
                await stop(task, store)
    asyncio.run(go())


def test_live_pair_on_bars_gives_each_leg_its_own_venues_schedule(tmp_path, monkeypatch):
    # the same feed drives a LIVE pair on bars: each leg's interval and next settlement are its venue's, and the
    # first leg's rate is annualised at its venue's 4 h (the settlement the feed stamped)
    from tests.support.inprocess_hedge import running_hedge

    seen = record_updates(monkeypatch)

    async def go():
        async with four_and_eight() as pv:
            first_label, g4, g8 = publish(pv, hours=6)
            sup, task, store = await running_hedge(tmp_path, pv.adapter, pair_params(), hedge_id="pll", **PAIR,
                                                   feed="bars", start=str(first_label), records_poll_s=0.2,
                                                   reconcile_s=0.5)
            try:
                last = first_label + 6 * H  # the last published bars' close: acted on at once (no settlement needed)
                await until(lambda: bool(seen) and seen[-1].ts >= last, what="the last bars' update")
                assert seen
                for mu in seen:
                    t = mu.ts
                    assert mu.spot_next_funding_ts == t.floor("4h") + 4 * H, t
                    assert mu.next_funding_ts == t.floor("8h") + 8 * H, t
                    assert mu.spot_funding_interval_hours == 4.0 and mu.funding_interval_hours == 8.0, t
                assert pv.adapter.first_last_rate == RATE_A and pv.adapter.first_interval_hours == 4.0
            finally:
                await stop(task, store)
    asyncio.run(go())


def test_a_paper_venue_on_live_bars_skips_what_it_applied_before_a_restart():
    # the restarted runner's bars feed starts over: each paper venue resumes after its own last applied event
    from hedge_core.exchange.routed_pair import PerpPairPaper
    from hedge_core.types import MarketKind
    from tests.support.perp_pair import perp_venue

    a, b = perp_venue("binance", 1_000.0), perp_venue("bybit", 1_000.0)
    pair = PerpPairPaper(a, b, by_venue=True)
    P = "BTC/USDT:USDT"

    def bar(venue: str, t: pd.Timestamp, close: float) -> Bar:
        return Bar(t, venue, P, MarketKind.PERP, close, close, close, close, 1.0, "1h")

    async def go():
        await pair.apply(bar("binance", T, 100.0))
        await pair.apply(bar("binance", T + H, 101.0))
        await pair.apply(FundingEvent(T + 2 * H, "binance", P, 0.0001, 4.0))
        await pair.apply(bar("bybit", T, 200.0))
        # the feed starting over: everything binance applied is skipped (no "events in time order" error),
        # nothing is settled twice; bybit, behind, still takes its next bar
        await pair.apply(bar("binance", T, 999.0))
        await pair.apply(FundingEvent(T + 2 * H, "binance", P, 0.0001, 4.0))
        await pair.apply(bar("bybit", T + H, 201.0))
    asyncio.run(go())
    assert a.core.ref_price(P) == 101.0 and a.core.now == T + 2 * H
    assert [f.ts for f in a.core.funding_history] == [T + 2 * H]
    assert b.core.ref_price(P) == 201.0
