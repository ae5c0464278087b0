"""Two PERP legs on live BARS (feed ``bars``), real ccxt against two local simulators at once (the Binance
simulator's USD-M side first, the Bybit simulator's linear side second; tests/support/pair_live_env.py).

Each venue's perp and mark klines and its funding history are read through ITS OWN adapter
(``exchange.pair_feed.PairBarsFeed``): Binance USD-M "Kline/Candlestick Data" (``/fapi/v1/klines``), "Mark Price
Kline/Candlestick Data" (``/fapi/v1/markPriceKlines``), "Get Funding Rate History" (``/fapi/v1/fundingRate``),
https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api; Bybit v5 "Get Kline"
(``/v5/market/kline``), "Get Mark Price Kline" (``/v5/market/mark-price-kline``), "Get Funding Rate History"
(``/v5/market/funding/history``), https://bybit-exchange.github.io/docs/v5/market/kline (the simulators cite
them). The first leg is priced and marked by the FIRST venue's bars, the second by the second's, and the first
leg's funding rate is its own venue's. Live: the runner's own HedgeTask in process; paper on live bars: the
runner's two paper venues each fed their own venue's bars and funding.
"""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.engine.states import State
from hedge_core.exchange.pair_feed import PairBarsFeed
from hedge_core.types import Bar, FundingEvent, MarketKind
from tests.support.inprocess_hedge import running_hedge, stop, until
from tests.support.pair_bars import ms, publish_hour, start_paper_pair
from tests.support.pair_live_env import PAIR, RATE_A, RATE_B, pair_params, pair_venues

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # local venue simulators

H_MS = 3_600_000
A_CLOSE, A_MARK, B_CLOSE, B_MARK = 40_010.0, 40_012.0, 40_090.0, 40_093.0  # each venue's own last closes


def publish(pv, hours: int = 4) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Both venues' 1h perp and mark klines for the last ``hours`` closed hours (different prices per venue),
    and one settlement on each venue 2 h ago (Binance RATE_A, Bybit RATE_B). Returns (first label, settle)."""
    now = pd.Timestamp.now(tz="UTC").floor("1h")
    labels = [now - pd.Timedelta(hours=k) for k in range(hours, 0, -1)]
    for t in labels:
        publish_hour(pv.first_sim, "binance", t, A_CLOSE, A_MARK)
        publish_hour(pv.second_sim, "bybit", t, B_CLOSE, B_MARK)
    settle = now - pd.Timedelta(hours=2)
    pv.first_sim.settle_funding("BTCUSDT", RATE_A, ts_ms=ms(settle))
    pv.second_sim.settle_funding("BTCUSDT", rate=RATE_B, ts_ms=ms(settle))
    return labels[0], settle


def test_the_pair_feed_reads_each_venues_bars_and_funding_through_its_own_adapter():
    async def go():
        async with pair_venues() as pv:
            first_label, settle = publish(pv)
            a, b = pv.adapter.leg_adapters()
            feed = PairBarsFeed(a, b, "BTC/USDT:USDT", "1h", start=first_label, settle_delay=0.0)
            evs = await feed.poll()
            bars = [e for e in evs if isinstance(e, Bar)]
            funding = [e for e in evs if isinstance(e, FundingEvent)]
            # 4 closed hours x (perp, mark) x 2 venues, each bar under its own venue at its own price
            assert len(bars) == 16
            got = {(e.venue, e.kind): e.close for e in bars}
            assert got == {("binance", MarketKind.PERP): A_CLOSE, ("binance", MarketKind.MARK): A_MARK,
                           ("bybit", MarketKind.PERP): B_CLOSE, ("bybit", MarketKind.MARK): B_MARK}
            assert {(e.venue, e.rate, e.ts) for e in funding} == {("binance", RATE_A, settle),
                                                                  ("bybit", RATE_B, settle)}
            from hedge_core.exchange.feeds import event_order_key

            keys = [event_order_key(e) for e in evs]
            assert keys == sorted(keys)  # bars before funding at the settlement instant, instants in order
            assert await feed.poll() == []  # nothing new: nothing repeated
            await feed.aclose()
    asyncio.run(go())


def test_live_pair_on_bars_prices_each_leg_at_its_own_venue_and_enters(tmp_path):
    async def go():
        async with pair_venues() as pv:
            first_label, _settle = publish(pv)
            sup, task, store = await running_hedge(tmp_path, pv.adapter, pair_params(), hedge_id="pb", **PAIR,
                                                   feed="bars", start=str(first_label), records_poll_s=0.2,
                                                   reconcile_s=0.5)
            try:
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, what="entry on bars")
                ctx = task.driver.ctx
                # the first leg at Binance's own perp close and mark, the second at Bybit's
                assert ctx.spot_price == pytest.approx(A_CLOSE) and ctx.perp_price == pytest.approx(B_CLOSE)
                assert ctx.mark_price == pytest.approx(B_MARK)
                assert pv.adapter.first_last_rate == pytest.approx(RATE_A)  # the first venue's own settlement
                # long the lower funding (Binance), short the higher (Bybit), each at its own venue
                assert pv.first_sim.position("BTCUSDT") > 0 > pv.second_sim.positions["BTCUSDT"][0]
                assert isinstance(task.feed, PairBarsFeed)
            finally:
                await stop(task, store)
    asyncio.run(go())



def test_paper_pair_on_live_bars_feeds_each_paper_venue_its_own_venues_bars_and_funding(tmp_path):
    async def go():
        async with pair_venues() as pv:
            first_label, settle = publish(pv)
            a, b = pv.adapter.leg_adapters()
            task, store = await start_paper_pair(tmp_path, {"binance": a, "bybit": b}, {
                "hedge_id": "pbp", "params_inline": pair_params(), "feed": "bars", "start": str(first_label), **PAIR})
            pair = task.raw_adapter
            assert pair.own_bars  # no stored funding needed: each venue's published funding settles it
            try:
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, what="paper entry on bars")
                ca, cb = pair.first.core, pair.second.core
                # each paper venue saw its own venue's bars only, and settled its own venue's funding
                assert ca.ref_price("BTC/USDT:USDT") == pytest.approx(A_CLOSE)
                assert cb.ref_price("BTC/USDT:USDT") == pytest.approx(B_CLOSE)
                assert ca.mark_price("BTC/USDT:USDT") == pytest.approx(A_MARK)
                assert cb.mark_price("BTC/USDT:USDT") == pytest.approx(B_MARK)
                assert [f.rate for f in ca.funding_history] == [RATE_A]
                assert [f.rate for f in cb.funding_history] == [RATE_B]
                assert pair.first_last_rate == RATE_A and pair.second_last_rate == RATE_B
                # the first leg filled at Binance's own close, the second at Bybit's (within the paper slippage)
                fa = [f for f in ca.fills if f.symbol == "BTC/USDT:USDT"]
                fb = [f for f in cb.fills if f.symbol == "BTC/USDT:USDT"]
                assert fa and fb and str(fa[0].side) == "buy" and str(fb[0].side) == "sell"
                assert abs(fa[0].price / A_CLOSE - 1) < 5e-3 and abs(fb[0].price / B_CLOSE - 1) < 5e-3
                assert task.driver.ctx.spot_price == pytest.approx(A_CLOSE)
            finally:
                await stop(task, store)
    asyncio.run(go())
