"""The ticker feed's LAST SETTLED funding rate (``MarketUpdate.funding_rate``), real ccxt against the Binance USD-M,
Bybit v5 and OKX v5 simulators, in process.

Before: the runner gave the engine 0.0 as the last settled rate on feed ``ticker`` (``HedgeTask.run``), so the
hedge's summary (the panel, the risk advisor) showed no funding, the funding-cost guard and the strategy saw 0 when
no predicted rate was known, and a venue funding record without its own rate was journaled at 0. Now the feed reads
it once per settlement (``hedge_core.exchange.settled_rate.SettledRate``) from each venue's public history, where
the simulators publish it as documented: Binance "Get Funding Rate History" (``GET /fapi/v1/fundingRate``, the most
recent rows without startTime/endTime), Bybit v5 "Get Funding Rate History" (``GET /v5/market/funding/history``),
OKX "Get funding rate history" (``GET /api/v5/public/funding-rate-history``).
"""

from __future__ import annotations

import asyncio
import math

import pandas as pd
import pytest

from hedge_core.advice.model import RiskInput
from hedge_core.engine.states import State
from hedge_core.runner.market import TickerFeed
from hedge_core.runner.pair_records import poll_first_funding
from hedge_core.runner.records import new_funding
from hedge_core.types import FundingPayment
from tests.support.inprocess_hedge import running_hedge, stop, until
from tests.support.pair_bars import record_updates
from tests.support.live_env import bybit_env, live_env, okx_env
from tests.support.pair_okx_env import PRICE, RATE_A, RATE_B, pair_params, pair_spec, perp_pair, venue_sim

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # local venue simulators

H = pd.Timedelta(hours=1)
P = "BTC/USDT:USDT"
PREDICTED = 0.0003  # the venue's current rate (the next settlement's): never the settled one
HISTORY = {"binance": "/fapi/v1/fundingRate", "bybit": "/v5/market/funding/history",
           "okx": "/api/v5/public/funding-rate-history"}
SIM_ID = {"binance": "BTCUSDT", "bybit": "BTCUSDT", "okx": "BTC-USDT-SWAP"}
ENV = {"binance": live_env, "bybit": bybit_env, "okx": okx_env}  # each simulator behind real ccxt


def settle(venue: str, sim, t: pd.Timestamp, rate: float) -> None:
    """Publish a settlement of ``rate`` at ``t`` in the simulator's public history (no position: nothing paid)."""
    sim.settle_funding(SIM_ID[venue], rate, ts_ms=int(t.value // 1_000_000))


def history_reads(venue: str, sim) -> int:
    return sum(1 for r in sim.requests if r[1].endswith(HISTORY[venue]))


@pytest.mark.parametrize("venue", ["binance", "bybit", "okx"])
def test_ticker_feed_gives_the_venues_last_settled_rate_read_once_per_settlement(venue):
    t2 = pd.Timestamp.now(tz="UTC").floor("8h")  # the venue's last settlement (8 h on the 00:00 grid)
    t3 = t2 + 8 * H  # its next one: the simulator announces it as the next settlement
    sim = venue_sim(venue, PREDICTED)
    settle(venue, sim, t2 - 8 * H, 0.0001)
    settle(venue, sim, t2, 0.0002)
    clock = {"t": t2 + H}
    # (venue time of the tick, settlement published before it, settled rate expected, history reads so far)
    steps = [(t2 + H, None, 0.0002, 1),                # first tick: read once
             (t2 + 2 * H, None, 0.0002, 1),            # same settlement: not read again
             (t3 + pd.Timedelta(seconds=1), None, 0.0002, 2),   # t3 due, not published yet: the old rate kept
             (t3 + pd.Timedelta(seconds=5), None, 0.0002, 2),   # within retry_s: not asked again
             (t3 + pd.Timedelta(seconds=40), 0.0004, 0.0004, 3),  # asked again: t3's rate
             (t3 + 3 * H, None, 0.0004, 3)]            # until the settlement after t3: not asked again

    async def go():
        async with ENV[venue](sim=sim) as env:
            feed = TickerFeed(env.adapter, "BTC/USDT", P, interval=0.0,
                              now=lambda: clock["t"])
            got = []
            i = 0
            async for tick in feed:
                got.append((tick.market_update(), history_reads(venue, sim)))
                i += 1
                if i == len(steps):
                    await feed.aclose()
                    break
                t, publish, _, _ = steps[i]
                clock["t"] = t
                if publish is not None:
                    settle(venue, sim, t3, publish)
            return got

    got = asyncio.run(go())
    assert len(got) == len(steps)
    for (mu, reads), (t, _, rate, n) in zip(got, steps):
        assert mu.ts == t
        assert mu.funding_rate == pytest.approx(rate), t  # before: 0.0 on every tick
        assert mu.next_funding_rate == pytest.approx(PREDICTED), t  # the current rate stays the predicted one
        assert reads == n, t


def test_a_live_hedge_on_ticker_shows_and_journals_the_settled_rate(tmp_path, monkeypatch):
    # Binance: settled 0.0002 at the last 8 h settlement, predicted 0.0003. The engine's last rate, the summary
    # (panel, risk advisor) and the rate a funding record without its own rate is journaled at are the settled one.
    seen = record_updates(monkeypatch)
    t2 = pd.Timestamp.now(tz="UTC").floor("8h")
    sim = venue_sim("binance", PREDICTED)
    settle("binance", sim, t2 - 8 * H, 0.0001)
    settle("binance", sim, t2, 0.0002)
    params = {"strategy": "carry", "notional": 1_000.0, "min_funding_rate": 0.01, "min_net_carry": -1.0}

    async def go():
        async with ENV["binance"](sim=sim) as env:
            sup, task, store = await running_hedge(tmp_path, env.adapter, params, hedge_id="sr1")
            try:
                await until(lambda: len(seen) >= 3, what="three ticker updates")
                assert all(mu.funding_rate == pytest.approx(0.0002) for mu in seen)  # before: 0.0
                assert all(mu.next_funding_rate == pytest.approx(PREDICTED) for mu in seen)
                ctx = task.driver.ctx
                assert ctx.state is State.ANALYZING_MARKET  # 0.0003 < min_funding_rate: nothing traded
                assert ctx.last_funding_rate == pytest.approx(0.0002)
                summ = task.summary()
                assert summ["funding_rate"] == pytest.approx(0.0002)
                assert RiskInput.from_summary(summ).funding_rate == pytest.approx(0.0002)
                # a venue record of the t2 settlement that carries no rate is journaled at the settled one
                rec = FundingPayment(symbol=P, ts=t2, amount=-0.2, rate=math.nan, position_qty=math.nan,
                                     mark_price=40_000.0)
                [(_, rate, _, _)] = new_funding([rec], set(), t2 - H, ctx)
                assert rate == pytest.approx(0.0002)
                assert history_reads("binance", sim) == 1  # one read for the many ticks of one settlement
            finally:
                await stop(task, store)
    asyncio.run(go())


@pytest.mark.parametrize("first,second", [("binance", "bybit"), ("bybit", "okx"), ("okx", "binance")])
def test_a_ticker_pair_gets_the_second_venues_settled_rate(tmp_path, monkeypatch, first, second):
    # each venue settled its own rate (first 0.00011, second 0.00055): the market's last settled rate is the SECOND
    # venue's, read through its own adapter; the engine's first-leg rate stays its venue's current one (RATE_A,
    # unchanged), the first venue's settled one is read through ITS adapter for the journal
    seen = record_updates(monkeypatch)
    t2 = pd.Timestamp.now(tz="UTC").floor("8h")

    async def go():
        async with perp_pair(first, second) as pv:
            settle(first, pv.first_sim, t2, 0.00011)
            settle(second, pv.second_sim, t2, 0.00055)
            params = {**pair_params(first, second), "min_funding_rate": 0.01}
            sup, task, store = await running_hedge(tmp_path, pv.adapter, params, hedge_id="sr2",
                                                   **pair_spec(first, second))
            try:
                await until(lambda: len(seen) >= 3, what="three ticker updates")
                for mu in seen:
                    assert mu.funding_rate == pytest.approx(0.00055)  # before: 0.0
                    assert mu.spot_funding_rate == pytest.approx(RATE_A)  # the first venue's current rate
                    assert mu.next_funding_rate == pytest.approx(RATE_B)  # the second venue's current rate
                assert task.driver.ctx.last_funding_rate == pytest.approx(0.00055)
                assert task.summary()["funding_rate"] == pytest.approx(0.00055)
                # each venue's history read once, through its own adapter
                assert history_reads(second, pv.second_sim) == 1 and history_reads(first, pv.first_sim) == 1
                assert pv.adapter.first_settled_rate == pytest.approx(0.00011)
                # a first-venue funding record without its own rate is journaled at that venue's settled rate
                # (before: its current rate, RATE_A)
                journaled = []
                book = task.journal.funding
                monkeypatch.setattr(task.journal, "funding", lambda *a, **k: (journaled.append(a), book(*a, **k)))
                now = pd.Timestamp.now(tz="UTC")

                async def no_rate(symbol=None, since=None):
                    return [FundingPayment(symbol=P, ts=now, amount=0.0, rate=math.nan, position_qty=math.nan,
                                           mark_price=PRICE)]

                monkeypatch.setattr(pv.adapter, "first_funding_payments", no_rate)
                assert await poll_first_funding(task) == 1
                [(hid, venue, _sym, _ts, _amount, rate, *_)] = journaled
                assert (hid, venue) == ("sr2", first) and rate == pytest.approx(0.00011)
            finally:
                await stop(task, store)
    asyncio.run(go())
