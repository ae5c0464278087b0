"""Legs on two venues in LIVE mode, real ccxt against two simulators at once: the spot leg on the Binance
simulator, the perp leg on the Bybit simulator (tests/support/xlive_env.py).

What each simulator does is the venue's documented behaviour (see their module docstrings: Binance
"New Order (TRADE)", "Account Trade List"; Bybit v5 "Place Order", "Get Trade History"
https://bybit-exchange.github.io/docs/v5/order/execution with ``execType`` Trade / Funding). The
hedge is the runner's own HedgeTask and driver (in process), checked against each venue's records:
fills and fees from each venue's executions, funding from the perp venue's Funding executions, the
two-leg rule (the perp venue refusing the hedge unwinds the spot leg on the spot venue) and the
per-venue reconciliation after an answer lost on one venue.
"""

from __future__ import annotations

import asyncio
import time

import pandas as pd
import pytest

from hedge_core.engine.events import Command
from hedge_core.engine.states import State
from hedge_core.runner.hedge import HedgeSpec, HedgeTask
from hedge_core.runner.supervisor import Supervisor
from hedge_core.store import Store
from tests.support.xlive_env import PRICE, binance_spot_sim, bybit_perp_sim, two_venues

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]
CARRY = {"strategy": "carry", "notional": 1_000.0, "min_funding_rate": 0.00001, "min_net_carry": -1.0,
         "exit": {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                  "funding_unfavourable_intervals": None}}


async def until(pred, timeout: float = 20.0, what: str = "condition"):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = pred()
        if v:
            return v
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def running_hedge(tmp_path, adapter, **spec_kw):
    store = Store(tmp_path / "db.duckdb", hold=True)
    sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
    spec = HedgeSpec(hedge_id="xl", params_inline=CARRY, mode="live", venue="binance", perp_venue="bybit",
                     feed="ticker", poll_s=0.05, **spec_kw)
    task = HedgeTask(spec, sup._params_for(spec), sup.journal, adapter, sup._feed_factory, sup)
    await task.start_new(pd.Timestamp.now(tz="UTC"))
    sup.hedges[spec.hedge_id] = task
    task.task = asyncio.create_task(task.run())
    return sup, task, store


async def stop(task, store) -> None:
    task.task.cancel()
    try:
        await task.task
    except asyncio.CancelledError:
        pass
    store.close()


def ctx_funding(task) -> float:
    return task.driver.ctx.perp.funding


def bybit_trades(sim) -> list[dict]:
    return [e for e in sim.executions if e["execType"] == "Trade"]


def test_open_on_both_venues_funding_from_the_perp_venue_fees_from_each_close_both(tmp_path):
    async def go():
        async with two_venues() as tv:
            sup, task, store = await running_hedge(tmp_path, tv.adapter, records_poll_s=0.2, reconcile_s=0.5)
            try:
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, what="entry")
                # each leg on its own venue only: BTC bought on Binance spot, BTCUSDT shorted on Bybit linear
                btc = sum(tv.spot_sim.spot["BTC"])
                short = tv.perp_sim.positions["BTCUSDT"][0]
                assert btc > 0 and short == pytest.approx(-btc, abs=0.001)
                assert not [p for p in tv.spot_sim.positions.values() if p[0]]  # no perp on Binance
                assert "BTC" not in tv.perp_sim.coins  # no spot on Bybit
                # funding from the perp venue's records: a short receives qty x mark x rate (Bybit execFee < 0)
                tv.perp_sim.settle_funding("BTCUSDT", rate=0.0005)
                await until(lambda: task.driver.ctx.perp.funding != 0, what="funding booked")
                task.journal.flush()
                funding = store.read_table("funding_payments", hedge_id="xl")
                assert ctx_funding(task) == pytest.approx(abs(short) * PRICE * 0.0005, rel=1e-9)
                assert len(funding) == 1 and funding["venue"].iloc[0] == "bybit"
                assert funding["amount"].iloc[0] == pytest.approx(abs(short) * PRICE * 0.0005, rel=1e-9)
                await task.command(Command.STOP, "test: close both legs")
                await until(lambda: task.driver.ctx.state is State.COMPLETED, what="both legs closed")
                assert tv.perp_sim.positions["BTCUSDT"][0] == 0
                assert sum(tv.spot_sim.spot.get("BTC", [0.0, 0.0])) < 1e-5  # sold to the lot step
                fills = task.journal.fills("xl")
                spot, perp = fills[fills["leg"] == "spot"], fills[fills["leg"] == "perp"]
                assert set(spot["venue"]) == {"binance"} and set(perp["venue"]) == {"bybit"}
                # fees from each venue's records, checked by hand: spot 0.1 % of notional on Binance,
                # perp 0.055 % taker on Bybit
                assert len(spot) == len(tv.spot_sim.trades) == 2 and len(perp) == len(bybit_trades(tv.perp_sim)) == 2
                assert spot["fee"].sum() == pytest.approx(0.001 * (spot["qty"] * spot["price"]).sum(), rel=1e-9)
                assert spot["fee"].sum() == pytest.approx(sum(float(t["commission"]) for t in tv.spot_sim.trades), abs=1e-9)
                assert perp["fee"].sum() == pytest.approx(0.00055 * (perp["qty"] * perp["price"]).sum(), rel=1e-9)
                assert perp["fee"].sum() == pytest.approx(sum(float(e["execFee"]) for e in bybit_trades(tv.perp_sim)),
                                                          abs=1e-9)
                ctx = task.driver.ctx
                assert ctx.spot.fees + ctx.perp.fees == pytest.approx(spot["fee"].sum() + perp["fee"].sum(), abs=1e-8)
            finally:
                await stop(task, store)
    asyncio.run(go())
