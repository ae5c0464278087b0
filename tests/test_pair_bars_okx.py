"""OKX as one venue of a perp pair on live BARS (feed ``bars``), real ccxt against the OKX and Bybit simulators, in
process: the first leg on OKX's ``BTC-USDT-SWAP`` settling every 4 h, the second on Bybit's linear ``BTCUSDT``
every 8 h.

OKX's bars and funding as ``exchange.pair_feed.PairBarsFeed`` reads them through OKX's own adapter: "Get
candlesticks" (``/api/v5/market/candles``, ``history-candles``) and "Get mark price candlesticks"
(``mark-price-candles``), newest first; "Get funding rate history" (``/api/v5/public/funding-rate-history``); its
schedule from "Get funding rate" (``/api/v5/public/funding-rate``: ``fundingTime`` the next settlement,
``nextFundingTime`` the one after; the interval is their difference), https://www.okx.com/docs-v5/en/ (the
simulator cites the sections; its swap's interval is set with ``set_funding_interval``). OKX settles most swaps
every 8 h and some every 4, 2 or 1 h (tests/support/okx_sim.py cites the announcements).
"""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.engine.states import State
from hedge_core.exchange.feeds import event_order_key
from hedge_core.exchange.pair_feed import PairBarsFeed, VenueSchedule
from hedge_core.types import Bar, FundingEvent, MarketKind
from tests.support.inprocess_hedge import running_hedge, stop, until
from tests.support.pair_bars import grid, ms, publish_hour, record_updates, start_paper_pair
from tests.support.pair_okx_env import (
    OKX_SWAP,
    RATE_A,
    RATE_B,
    okx_perp_sim,
    pair_params,
    pair_spec,
    perp_pair,
)
from tests.support.pair_live_env import bybit_perp_sim

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # local venue simulators

H = pd.Timedelta(hours=1)
P = "BTC/USDT:USDT"
A_CLOSE, A_MARK, B_CLOSE, B_MARK = 40_010.0, 40_012.0, 40_090.0, 40_093.0  # OKX's last closes, Bybit's


def publish(pv, hours: int) -> tuple[pd.Timestamp, list[pd.Timestamp], list[pd.Timestamp]]:
    """Both venues' 1h perp and mark candles for the last ``hours`` closed hours (each at its own prices), OKX
    settling RATE_A at each of ITS 4 h times in the window and Bybit RATE_B at each of its 8 h times.
    Returns (first label, OKX's settlement times, Bybit's)."""
    now = pd.Timestamp.now(tz="UTC").floor("1h")
    labels = [now - k * H for k in range(hours, 0, -1)]
    for t in labels:
        publish_hour(pv.first_sim, "okx", t, A_CLOSE, A_MARK)
        publish_hour(pv.second_sim, "bybit", t, B_CLOSE, B_MARK)
    g4, g8 = grid(labels[0], now, 4), grid(labels[0], now, 8)
    for t in g4:
        pv.first_sim.settle_funding(OKX_SWAP, RATE_A, ts_ms=ms(t))
    for t in g8:
        pv.second_sim.settle_funding("BTCUSDT", rate=RATE_B, ts_ms=ms(t))
    return labels[0], g4, g8


def okx_four_bybit_eight():
    """OKX (first leg) every 4 h on the 00:00 grid, Bybit (second) its standard 8 h."""
    okx = okx_perp_sim(rate=RATE_A)
    okx.set_funding_interval(OKX_SWAP, 4)
    return perp_pair("okx", "bybit", first_sim=okx, second_sim=bybit_perp_sim(rate=RATE_B))


def test_the_pair_feed_reads_okxs_bars_funding_and_schedule_through_its_own_adapter():
    async def go():
        async with okx_four_bybit_eight() as pv:
            first_label, g4, g8 = publish(pv, hours=24)
            a, b = pv.adapter.leg_adapters()
            feed = PairBarsFeed(a, b, P, "1h", start=first_label, settle_delay=0.0)
            evs = await feed.poll()
            now = pd.Timestamp.now(tz="UTC")
            assert feed.schedules["okx"] == VenueSchedule(now.floor("4h") + 4 * H, 4.0)
            assert feed.schedules["bybit"] == VenueSchedule(now.floor("8h") + 8 * H, 8.0)
            bars = [e for e in evs if isinstance(e, Bar)]
            assert len(bars) == 24 * 2 * 2  # 24 closed hours x (perp, mark) x 2 venues
            assert {(e.venue, e.kind): e.close for e in bars} == {
                ("okx", MarketKind.PERP): A_CLOSE, ("okx", MarketKind.MARK): A_MARK,
                ("bybit", MarketKind.PERP): B_CLOSE, ("bybit", MarketKind.MARK): B_MARK}
            funding = [e for e in evs if isinstance(e, FundingEvent)]
            assert [(e.ts, e.rate, e.interval_hours) for e in funding if e.venue == "okx"] == \
                [(t, RATE_A, 4.0) for t in g4]
            assert [(e.ts, e.rate, e.interval_hours) for e in funding if e.venue == "bybit"] == \
                [(t, RATE_B, 8.0) for t in g8]
            keys = [event_order_key(e) for e in evs]
            assert keys == sorted(keys)
            day = first_label.floor("1D") + pd.Timedelta(days=1)  # hand-checked at 01:00 of the window's day
            assert feed.leg_funding(day + 1 * H) == {
                "spot_funding_interval_hours": 4.0, "spot_next_funding_ts": day + 4 * H,
                "funding_interval_hours": 8.0, "next_funding_ts": day + 8 * H}
            assert await feed.poll() == []
            await feed.aclose()
    asyncio.run(go())


def test_live_pair_on_bars_with_okx_first_prices_each_leg_at_its_venue_and_gives_each_its_schedule(
        tmp_path, monkeypatch):
    seen = record_updates(monkeypatch)

    async def go():
        async with okx_four_bybit_eight() as pv:
            # 12 h: Bybit (8 h) settles at least 2 h before the last instant at any hour, so the pair, entering once
            # both venues' rates are known, enters on a fresh update (6 h had no Bybit settlement in some hours)
            first_label, g4, g8 = publish(pv, hours=12)
            sup, task, store = await running_hedge(tmp_path, pv.adapter, pair_params("okx", "bybit"), hedge_id="pbo",
                                                   **pair_spec("okx", "bybit"), feed="bars", start=str(first_label),
                                                   records_poll_s=0.2, reconcile_s=0.5)
            try:
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, what="entry on bars")
                last = first_label + 12 * H  # the last published bars' close: acted on at once (no settlement needed)
                await until(lambda: bool(seen) and seen[-1].ts >= last, what="the last bars' update")
                ctx = task.driver.ctx
                # the first leg at OKX's own perp close, the second at Bybit's (and its mark)
                assert ctx.spot_price == pytest.approx(A_CLOSE) and ctx.perp_price == pytest.approx(B_CLOSE)
                assert ctx.mark_price == pytest.approx(B_MARK)
                for mu in seen:
                    t = mu.ts
                    assert mu.spot_funding_interval_hours == 4.0 and mu.funding_interval_hours == 8.0, t
                    assert mu.spot_next_funding_ts == t.floor("4h") + 4 * H, t
                    assert mu.next_funding_ts == t.floor("8h") + 8 * H, t
                    assert mu.first_mark == pytest.approx(A_MARK)
                assert pv.adapter.first_last_rate == RATE_A and pv.adapter.first_interval_hours == 4.0
                # OKX's rate at its 4 h (APR 0.219) below Bybit's at 8 h (0.5475): long OKX, short Bybit; OKX in
                # contracts of 0.01 BTC
                qa = pv.first_sim.positions[OKX_SWAP][0] * pv.first_sim.ct_val(OKX_SWAP)
                qb = pv.second_sim.positions["BTCUSDT"][0]
                assert qa > 0 > qb and ctx.spot.qty == pytest.approx(qa) and ctx.perp.qty == pytest.approx(qb)
            finally:
                await stop(task, store)
    asyncio.run(go())



def test_paper_pair_on_live_bars_with_okx_second_settles_each_paper_venue_at_its_own_venues_times(
        tmp_path, monkeypatch):
    # Bybit (first, 8 h) and OKX (second, 4 h): each paper venue fed its own venue's bars and settling its own
    # venue's published funding at its own times and interval; each leg's funding the hand sum over them
    seen = record_updates(monkeypatch)

    async def go():
        okx = okx_perp_sim(rate=RATE_B)
        okx.set_funding_interval(OKX_SWAP, 4)
        async with perp_pair("bybit", "okx", first_sim=bybit_perp_sim(rate=RATE_A), second_sim=okx) as pv:
            now = pd.Timestamp.now(tz="UTC").floor("1h")
            labels = [now - k * H for k in range(24, 0, -1)]
            for t in labels:
                publish_hour(pv.first_sim, "bybit", t, A_CLOSE, A_MARK)
                publish_hour(pv.second_sim, "okx", t, B_CLOSE, B_MARK)
            g8, g4 = grid(labels[0], now, 8), grid(labels[0], now, 4)
            for t in g8:
                pv.first_sim.settle_funding("BTCUSDT", rate=RATE_A, ts_ms=ms(t))
            for t in g4:
                pv.second_sim.settle_funding(OKX_SWAP, RATE_B, ts_ms=ms(t))
            a, b = pv.adapter.leg_adapters()
            task, store = await start_paper_pair(tmp_path, {"bybit": a, "okx": b}, {
                "hedge_id": "pbop", "params_inline": pair_params("bybit", "okx"), "feed": "bars",
                "start": str(labels[0]), **pair_spec("bybit", "okx"), "max_bar_age_bars": 48})
            pair = task.raw_adapter
            try:
                last = now  # the last published bars' close: acted on at once (no settlement needed)
                await until(lambda: bool(seen) and seen[-1].ts >= last, what="the last bars' update")
                await until(lambda: len(pair.first.core.funding_history) == len(g8)
                            and len(pair.second.core.funding_history) == len(g4), what="every settlement")
                ctx = task.driver.ctx
                assert ctx.state is State.MONITORING_POSITIONS
                for mu in seen:
                    t = mu.ts
                    assert mu.spot_funding_interval_hours == 8.0 and mu.funding_interval_hours == 4.0, t
                    assert mu.spot_next_funding_ts == t.floor("8h") + 8 * H, t
                    assert mu.next_funding_ts == t.floor("4h") + 4 * H, t
                ca, cb = pair.first.core, pair.second.core
                assert [(f.ts, f.rate, f.interval_hours) for f in ca.funding_history] == [(t, RATE_A, 8.0) for t in g8]
                assert [(f.ts, f.rate, f.interval_hours) for f in cb.funding_history] == [(t, RATE_B, 4.0) for t in g4]
                assert ca.ref_price(P) == pytest.approx(A_CLOSE) and cb.ref_price(P) == pytest.approx(B_CLOSE)
                # by hand: -qty x that venue's mark x its rate at each of its own settlements from the leg's entry
                fa = [f for f in ca.fills if f.symbol == P]
                fb = [f for f in cb.fills if f.symbol == P]
                qa, qb = sum(f.qty for f in fa), -sum(f.qty for f in fb)
                assert qa > 0 > qb  # Bybit 0.0001 per 8 h (APR 0.1095) below OKX 0.0005 per 4 h (1.095)
                n8 = len([t for t in g8 if t >= fa[0].ts])
                n4 = len([t for t in g4 if t >= fb[0].ts])
                assert n8 >= 1 and n4 >= 2
                assert ctx.spot.funding == pytest.approx(-qa * A_MARK * RATE_A * n8, rel=1e-9)
                assert ctx.perp.funding == pytest.approx(-qb * B_MARK * RATE_B * n4, rel=1e-9)
            finally:
                await stop(task, store)
    asyncio.run(go())
