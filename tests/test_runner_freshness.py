"""Fresh prices only (runner.freshness): a live hedge on the Binance simulator through REAL ccxt.

A stale ticker (Binance 24 h ticker ``closeTime`` 2 h old, showing 30,000 while orders fill at 40,000;
issue #12 (a)) -> no order is sent, the hedge is DEGRADED (summary, /health) with one alert; a fresh
ticker clears it and the hedge enters at the real price. A fresh ticker with a wrong price is caught
by the slippage alert instead. Spec validation names the field and range."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.engine.events import FillEvent, MarketUpdate
from hedge_core.engine.states import State
from hedge_core.runner.hedge import HedgeSpec, HedgeTask
from hedge_core.runner.supervisor import Supervisor
from hedge_core.store import Store
from hedge_core.types import Fill, Side
from tests.support.binance_sim import BinanceSim
from tests.support.inprocess_hedge import running_hedge, stop, until
from tests.support.live_env import TEST_KEY, TEST_SECRET, live_env

pytestmark = pytest.mark.timeout(120)
CARRY = {"strategy": "carry", "notional": 1_000.0, "min_funding_rate": 0.00001, "min_net_carry": -1.0}


def sim() -> BinanceSim:
    s = BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET, spot_balances={"USDT": 10_000.0})
    s.set_price("BTCUSDT", 40_000.0)
    s.set_funding_rate("BTCUSDT", 0.0005)
    return s





def orders_sent(s: BinanceSim) -> list:
    return [r for r in s.requests if r[0] == "POST" and r[1].endswith("/order")]


def test_stale_ticker_blocks_orders_degrades_and_a_fresh_one_clears(tmp_path):
    s = sim()
    s.stale_ticker("BTCUSDT", 2 * 3_600_000, price=30_000.0)

    async def go():
        async with live_env(sim=s) as env:
            sup, task, store = await running_hedge(tmp_path, env.adapter, CARRY, hedge_id="f1")
            try:
                await until(lambda: task.updates >= 5, what="stale updates")
                assert not orders_sent(s)  # nothing sized on the 2 h old 30,000
                summ = task.summary()
                assert summ["state"] == "ANALYZING_MARKET" and "stale_price" in summ["degraded"]
                assert "limit 10 s (max_ticker_age_s)" in summ["degraded"]["stale_price"]
                assert "BTC/USDT" in summ["degraded"]["stale_price"] and " s old" in summ["degraded"]["stale_price"]
                h = sup.health()
                assert h["status"] == "degraded" and "stale_price" in h["degraded"]["f1"]
                stale_alerts = [m for m in sup.alert_bus.recent if m.kind == "stale_price"]
                assert len(stale_alerts) == 1 and stale_alerts[0].numbers["age_s"] > 7_000  # once per episode
                assert summ["stale_updates"] >= 5 and summ["held"] is None  # stale, not held by a guard
                s.stale_ticker("BTCUSDT", None)  # the venue's ticker is current again
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, what="entry on fresh")
                assert not task.conditions.active("stale_price") and sup.health()["status"] == "ok"
                assert any(m.kind == "stale_price" and "resolved" in m.message for m in sup.alert_bus.recent)
                fills = task.journal.fills("f1")
                assert fills["price"].between(39_999, 40_001).all()  # entered at the real price
                assert not [m for m in sup.alert_bus.recent if m.kind == "slippage"]
            finally:
                await stop(task, store)
    asyncio.run(go())


def test_fill_far_from_the_decision_price_raises_a_slippage_alert(tmp_path):
    s = sim()
    s.stale_ticker("BTCUSDT", 0, price=30_000.0)  # current timestamp, wrong price: freshness cannot see it

    async def go():
        async with live_env(sim=s) as env:
            sup, task, store = await running_hedge(tmp_path, env.adapter, CARRY, hedge_id="f1",
                                                   max_slippage_bps=100.0)
            try:
                await until(lambda: [m for m in sup.alert_bus.recent if m.kind == "slippage"], what="slippage alert")
                m = next(m for m in sup.alert_bus.recent if m.kind == "slippage")
                # decided at 30,000, filled at 40,000: |40,000 - 30,000| / 30,000 = 3,333 bps > 100
                assert m.level == "warning" and m.numbers["bps"] == pytest.approx(10_000 / 3, rel=1e-6)
                assert m.numbers["ref_price"] == 30_000.0 and "3,333 bps" in m.message
                assert any(a["kind"] == "slippage" for a in task.summary()["alerts"])
                assert not task.conditions.active("stale_price")
            finally:
                await stop(task, store)
    asyncio.run(go())


def test_freshness_units_and_spec_validation():
    from hedge_core.runner.freshness import check_fill_slippage, fresh_enough, price_age_s, slippage_bps

    now = pd.Timestamp("2024-01-01T12:00:00Z")
    assert price_age_s(now - pd.Timedelta(seconds=11), now) == 11.0 and price_age_s(None, now) == float("inf")
    assert slippage_bps(40_000.0, 30_000.0) == pytest.approx(3_333.333, rel=1e-6)

    class Stub:  # the parts of a HedgeTask freshness touches
        def __init__(self, feed: str, tf: str = "1h") -> None:
            self.spec = HedgeSpec(hedge_id="u", feed=feed, timeframe=tf)
            from hedge_core.runner.condition import Conditions

            self.conditions, self.feed, self.raised = Conditions(), None, []

        def degrade(self, key, msg, **n):
            self.conditions.raise_(key, msg)
            self.raised.append(msg)

        def undegrade(self, key):
            self.conditions.clear(key)

    bars = Stub("bars")
    # a 1h bar update is known at its close: 2 h 0 min old passes, 2 h 1 s does not (two bars)
    assert fresh_enough(bars, MarketUpdate(now - pd.Timedelta(hours=2), 1.0, 1.0), now)
    assert not fresh_enough(bars, MarketUpdate(now - pd.Timedelta(hours=2, seconds=1), 1.0, 1.0), now)
    assert "limit 2 x 1h bars (max_bar_age_bars)" in bars.raised[0]
    assert not fresh_enough(bars, MarketUpdate(now - pd.Timedelta(hours=3), 1.0, 1.0), now)
    assert len(bars.raised) == 1  # one alert per episode
    assert fresh_enough(bars, MarketUpdate(now, 1.0, 1.0), now) and not bars.conditions.degraded
    replay = Stub("replay")  # a replay has its own clock: never stale
    assert fresh_enough(replay, MarketUpdate(now - pd.Timedelta(days=400), 1.0, 1.0), now)
    for field, bad in (("max_ticker_age_s", 0), ("max_bar_age_bars", -1), ("max_slippage_bps", 20_000)):
        with pytest.raises(Exception) as e:
            HedgeSpec(hedge_id="v", **{field: bad})
        assert field in str(e.value) and "expected a number in (0," in str(e.value)
    ev = FillEvent(Fill("t", "o", "c", "BTC/USDT", Side.BUY, 1.0, 1.0, 0.0, now), "spot")
    stub = Stub("ticker")
    stub.driver = None
    check_fill_slippage(stub, ev)  # no driver yet: nothing to compare, nothing raised


def test_summary_says_why_a_guard_holds_the_hedge(tmp_path):
    """The order_rate guard (1 order a minute) holds the perp hedge after the spot entry: the summary's
    ``held`` sentence names it (the page shows that sentence), and nothing more is sent while it holds."""
    s = sim()

    async def go():
        async with live_env(sim=s) as env:
            store = Store(tmp_path / "db.duckdb", hold=True)
            sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
            spec = HedgeSpec(hedge_id="g1", params_inline={**CARRY, "guards": {"max_orders_per_minute": 1}},
                             mode="live", feed="ticker", poll_s=0.05)
            task = HedgeTask(spec, sup._params_for(spec), sup.journal, env.adapter, sup._feed_factory, sup)
            await task.start_new(pd.Timestamp.now(tz="UTC"))
            task.task = asyncio.create_task(task.run())
            try:
                summ = await until(lambda: (lambda x: x if x.get("held") else None)(task.summary()), what="held")
                assert summ["state"] == "OPENING_FUTURES_HEDGE"
                assert summ["held"].startswith("Held in OPENING_FUTURES_HEDGE by the order_rate guard")
                assert len(orders_sent(s)) == 1  # the spot entry only
            finally:
                await stop(task, store)
    asyncio.run(go())
