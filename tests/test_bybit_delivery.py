"""Delivery of a Bybit USDT future, in process, real ccxt to the Bybit v5 simulator, both legs on Bybit's unified
account (docs/calendar-roll.md "Delivery at expiry"): the simulator delivers as Bybit records it (``BybitSim.deliver``:
an execution of execType "Delivery" at the delivery price, ``execFee`` at the instrument's ``deliveryFeeRate``
0.05 %, the instrument Closed), the live adapter marks it as a delivery (``fetch_my_trades``: client order id
``dlv-<execId>``; ``fetch_deliveries``), and the runner's HedgeTask books it once, moves the leg to the perpetual and
sells the hedge there; reconciled clean per contract.

Hand figures: the short entered on the future at 42,000 is delivered at (40,900 + 41,100) / 2 = 41,000: it realises
qty x (41,000 - 42,000) = +1,000 USDT per BTC short and pays |qty| x 41,000 x 0.05 % = 20.5 USDT per BTC."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.runner import roll_watch
from hedge_core.types import Side
from tests.support.delivery_live import CARRY, PERP, bybit_future_sim, settled
from tests.support.inprocess_hedge import running_hedge, stop
from tests.support.live_env import bybit_env

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # a local venue simulator


def test_a_bybit_future_delivered_is_booked_once_and_the_leg_hedged_again_on_the_perp(tmp_path, monkeypatch):
    monkeypatch.setattr(roll_watch, "CHECK_EVERY_S", 0.0)
    sim, sid, fut, _expiry = bybit_future_sim(usdt=20_000.0)
    sim.funding_rate["BTCUSDT"] = 0.0001

    async def go():
        async with bybit_env(sim=sim) as env:
            sup, task, store = await running_hedge(tmp_path, env.adapter, CARRY, hedge_id="bdlv", venue="bybit",
                                                   records_poll_s=0.2, reconcile_s=0.3)
            try:
                await settled(task, fut, "the leg rolled to the future")
                short = sim.positions[sid][0]
                assert short < 0 and sim.positions.get("BTCUSDT", [0.0])[0] == 0.0
                realized0, fees0 = task.driver.ctx.perp.realized, task.driver.ctx.perp.fees
                assert sim.deliver(sid, [40_900.0, 41_100.0], at_ms=sim.now_ms()) == pytest.approx(41_000.0)
                [ex] = [e for e in sim.executions if e["execType"] == "Delivery"]
                assert float(ex["execFee"]) == pytest.approx(-short * 41_000.0 * 0.0005)
                [d] = await env.adapter.fetch_deliveries(fut)
                assert (d.side, d.qty, d.price) == (Side.BUY, pytest.approx(-short), pytest.approx(41_000.0))
                assert d.client_order_id == f"dlv-{ex['execId']}" and d.fee == pytest.approx(float(ex["execFee"]))
                rec = await settled(task, PERP, "hedged again on the perpetual after the delivery")
                assert rec["venues"]["bybit"]["positions"][fut] == {"journal": 0.0, "venue": 0.0}
                assert sim.positions[sid][0] == 0.0 and sim.positions["BTCUSDT"][0] == pytest.approx(short)
                task.journal.flush()
                fills = task.journal.fills("bdlv")
                dl = fills[fills["client_order_id"].astype(str).str.startswith("dlv-")]
                assert len(dl) == 1 and dl["symbol"].iloc[0] == fut and dl["price"].iloc[0] == pytest.approx(41_000.0)
                ctx = task.driver.ctx
                assert ctx.perp.symbol == PERP
                assert ctx.perp.realized - realized0 == pytest.approx(short * (41_000.0 - 42_000.0))
                # the delivery fee, then the re-hedge's taker fee on the perpetual (0.055 %)
                after = pd.to_datetime(fills["ts"], utc=True) >= pd.Timestamp(int(ex["execTime"]), unit="ms", tz="UTC")
                rehedge = fills[(fills["symbol"] == PERP) & (fills["side"] == "sell") & after]["fee"].sum()
                assert rehedge == pytest.approx(-short * 40_000.0 * 0.00055)  # sold at 40,000, taker 0.055 %
                assert ctx.perp.fees - fees0 == pytest.approx(float(ex["execFee"]) + rehedge, abs=1e-9)
                await asyncio.sleep(0.5)  # more updates: booked once, no move onto the closed contract
                assert len(task.journal.fills("bdlv").query("client_order_id.str.startswith('dlv-')")) == 1
                assert not [a for a in sim.answers if a[2] == 10001]
            finally:
                await stop(task, store)
    asyncio.run(go())
