"""A live hedge on feed ``bars`` acts on an instant at the bar's close, not one bar later: real ccxt against the
Binance simulator (spot, USD-M and mark klines, "Kline/Candlestick Data" / "Mark Price Kline Candlestick Data"; the
settled funding of "Get Funding Rate History"), the runner's own HedgeTask in process.

Before: the runner's market builder acted on the update of instant ``t`` only when the next event came (a bar of a
later instant, or a settlement at ``t``), so on a live feed the last closed bar was acted on one bar late, unless a
venue settled at its close. Now the runner acts when the feed's batch ends (``LivePollingFeed.batch_left``: an
instant is never split over two batches; a late event of it is dropped).

Hour-independent: the bars are published up to the last whole hour ``L`` of the wall
clock and the simulator's only settlement is at ``L - 3h``, never at ``L``. With ``max_bar_age_bars = 1`` every
instant before ``L`` is stale when acted on (older than one bar), so the hedge can only enter on ``L``'s update:
before the fix it never did.
"""

from __future__ import annotations

import asyncio
import time

import pandas as pd
import pytest

from hedge_core.engine.states import State
from hedge_core.runner.hedge import HedgeTask
from tests.support.binance_sim import BinanceSim
from tests.support.inprocess_hedge import running_hedge, stop, until
from tests.support.live_env import TEST_KEY, TEST_SECRET, live_env
from tests.support.pair_bars import ms, record_updates

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # a local venue simulator

H = pd.Timedelta(hours=1)
PRICE = 40_000.0
CARRY = {"strategy": "carry", "notional": 1_000.0, "min_funding_rate": 0.0001, "min_net_carry": -1.0}


def _last_whole_hour() -> pd.Timestamp:
    """The wall clock's last whole hour, at least 15 s before the next one (the update of that hour must still be
    under one bar old when it is stepped)."""
    now = pd.Timestamp.now(tz="UTC")
    left = (now.floor("1h") + H - now).total_seconds()
    if left < 15:
        time.sleep(left + 0.1)
    return pd.Timestamp.now(tz="UTC").floor("1h")


def test_a_live_hedge_on_bars_enters_at_the_last_bars_close(tmp_path, monkeypatch):
    import hedge_core.exchange.live_ws_feed as ws

    monkeypatch.setattr(ws, "pro_exchange_for", lambda adapter: None)  # REST polling (the same closing rules)
    seen = record_updates(monkeypatch)
    moves: list = []
    on_t0 = HedgeTask._on_transition

    def on_transition(self, hedge_id, t):
        moves.append(t)
        return on_t0(self, hedge_id, t)

    monkeypatch.setattr(HedgeTask, "_on_transition", on_transition)
    last = _last_whole_hour()
    start = last - 6 * H
    sim = BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET, spot_balances={"USDT": 10_000.0})
    sim.set_price("BTCUSDT", PRICE)
    for k in range(6):  # closed 1 h bars labelled start .. last - 1h: the last closes at ``last``
        for market in ("spot", "fapi", "mark"):
            sim.add_kline("BTCUSDT", market, ms(start + k * H), PRICE, PRICE, PRICE, PRICE, 10.0)
    sim.settle_funding("BTCUSDT", 0.0005, ts_ms=ms(last - 3 * H))  # settled before ``last``, none at it

    async def go():
        async with live_env(sim=sim) as env:
            sup, task, store = await running_hedge(tmp_path, env.adapter, CARRY, hedge_id="bc1", feed="bars",
                                                   timeframe="1h", start=str(start), max_bar_age_bars=1.0)
            try:
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, what="entry at the close")
                assert task.feed.batch_left == 0
                entry = next(t for t in moves if t.from_state == State.ANALYZING_MARKET)
                assert entry.trigger == "ENTRY_SIGNAL"
                # the one update stepped (the entry's) is the last bar's close: every earlier instant was stale
                assert [mu.ts for mu in seen] == [last]
                assert last <= entry.ts < last + H  # stamped with the venue's clock: within the bar after the close
                assert seen[0].funding_rate == pytest.approx(0.0005)  # the settlement at last - 3h
                assert task.stale_updates == 5  # last - 5h .. last - 1h
            finally:
                await stop(task, store)
    asyncio.run(go())
