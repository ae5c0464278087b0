"""Delivery at expiry of a Binance USD-M quarterly, in process, real ccxt to the simulators (spot on the Bybit
simulator, perp on the Binance USD-M simulator; docs/calendar-roll.md "Delivery at expiry").

- The simulator delivers as Binance documents it (tests/support/binance_sim_delivery.py): the position closed at
  the average index of the last 30 minutes, a ``DELIVERED_SETTELMENT`` income row with the realised PnL, the
  price in ``/futures/data/delivery-price``, no userTrade, no fee, open orders cancelled, the contract delisted.
- The live adapter reads it (``fetch_deliveries``: the income row at the published delivery price).
- The runner's own HedgeTask, its short leg on the quarterly when the venue delivers it, books the delivery from
  those records (once; realised PnL = the venue's income), moves the leg to the perpetual with a critical alert
  and sells the spot's hedge there; the reconciliation is then clean per venue and per contract.

Hand figures: the short entered on the quarterly at 42,000 is delivered at (40,100 + 40,300) / 2 = 40,200: it
realises qty x (40,200 - 42,000) = 1,800 USDT per BTC short.
"""

from __future__ import annotations

import asyncio

import pytest

from hedge_core.runner import roll_watch
from hedge_core.types import OrderRequest, OrderType, Side, client_order_id
from tests.support.binance_sim_types import SimError
from tests.support.delivery_live import CARRY, PERP, XR, perp_venue_with_quarterly
from tests.support.delivery_live import settled as _settled
from tests.support.inprocess_hedge import running_hedge, stop
from tests.support.xlive_env import reversed_venues

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # local venue simulators


def test_the_simulator_delivers_and_the_adapter_reads_the_delivery():
    sim, sid, sym, _expiry = perp_venue_with_quarterly()

    async def go():
        async with reversed_venues(perp_sim=sim) as rv:
            a = rv.adapter
            await a.create_order(OrderRequest(symbol=sym, side=Side.SELL, qty=0.02,
                                              client_order_id=client_order_id("dq", "roll", 1)))
            lim = await a.create_order(OrderRequest(symbol=sym, side=Side.SELL, qty=0.01, type=OrderType.LIMIT,
                                                    price=43_000.0, client_order_id=client_order_id("dq", "roll", 2)))
            assert await a.fetch_deliveries(sym) == [] and await a.fetch_deliveries(PERP) == []
            n_trades = len(sim.trades)
            wallet = sim.wallet
            assert sim.deliver(sid, [40_100.0, 40_300.0]) == pytest.approx(40_200.0)
            # the venue's own state: position gone, the income row, the published price, no trade, the order gone
            assert sim.position(sid) == 0.0 and len(sim.trades) == n_trades
            [row] = [r for r in sim.income if r["incomeType"] == "DELIVERED_SETTELMENT"]
            assert float(row["income"]) == pytest.approx(-0.02 * (40_200.0 - 42_000.0))  # +36 USDT, by hand
            assert sim.wallet == pytest.approx(wallet + 36.0)
            assert sim._delivery_price({"pair": "BTCUSDT"})[0]["deliveryPrice"] == pytest.approx(40_200.0)
            assert await a.fetch_open_orders(sym) == []
            assert lim.client_order_id not in {o.client_order_id for o in await a.fetch_open_orders(None)}
            with pytest.raises(SimError):
                sim._new_order({"symbol": sid, "side": "SELL", "type": "MARKET", "quantity": "0.01"}, "fapi")
            # read through real ccxt: one record at the delivery price, no fee, the quantity left to the driver
            [d] = await a.fetch_deliveries(sym)
            assert (d.symbol, d.price, d.fee, d.qty) == (sym, pytest.approx(40_200.0), 0.0, 0.0)
            assert d.client_order_id.startswith("dlv-") and d.trade_id == f"delivery:{row['tranId']}"
            assert await a.fetch_my_trades(sym, None) and all(not t.client_order_id.startswith("dlv-")
                                                              for t in await a.fetch_my_trades(sym, None))
    asyncio.run(go())


@pytest.mark.parametrize("rollback", [False, True])
def test_a_live_hedge_whose_quarterly_is_delivered_is_booked_and_hedged_again_on_the_perp(tmp_path, monkeypatch,
                                                                                         rollback):
    """``rollback``: the funding rises just before the delivery, so the rule may decide the way back at once: its
    close on the quarterly is then refused (-1121, delisted), which makes the driver read the delivery at once, and
    the roll ends on the perpetual. Without it, the next reconciliation pass reads the delivery. Either way: booked
    once, the leg on the perpetual, never again a move onto the delivered contract (the adapter's cached market
    list still lists it: the delivery here comes 90 days early)."""
    monkeypatch.setattr(roll_watch, "CHECK_EVERY_S", 0.0)  # look at the rule on every update (the clock is real)
    sim, sid, qtr, _expiry = perp_venue_with_quarterly(rate=0.0001)

    async def go():
        async with reversed_venues(perp_sim=sim) as rv:
            sup, task, store = await running_hedge(tmp_path, rv.adapter, CARRY, hedge_id="xdlv", **XR,
                                                   records_poll_s=0.2, reconcile_s=0.3)
            try:
                await _settled(task, qtr, "the leg rolled to the quarterly")
                short = sim.position(sid)
                assert short < 0 and sim.position("BTCUSDT") == 0.0
                realized0 = task.driver.ctx.perp.realized
                if rollback:
                    sim.set_funding_rate("BTCUSDT", 0.0005)
                sim.deliver(sid, [40_100.0, 40_300.0], at_ms=sim.now_ms())  # listed 90 days out: delivered now
                rec = await _settled(task, PERP, "the leg hedged again on the perpetual after the delivery")
                assert sim.position(sid) == 0.0 and sim.position("BTCUSDT") == pytest.approx(short)
                pos = rec["venues"]["binance"]["positions"]
                assert pos[qtr] == {"journal": 0.0, "venue": 0.0}
                assert pos[PERP] == {"journal": pytest.approx(short), "venue": pytest.approx(short)}
                # booked once from the venue's records: the whole short at 40,200, fee 0, realised = the income row
                task.journal.flush()
                fills = task.journal.fills("xdlv")
                dl = fills[fills["client_order_id"].astype(str).str.startswith("dlv-")]
                assert len(dl) == 1 and dl["symbol"].iloc[0] == qtr and dl["leg"].iloc[0] == "perp"
                assert (dl["side"].iloc[0], dl["qty"].iloc[0]) == ("buy", pytest.approx(-short))
                assert dl["price"].iloc[0] == pytest.approx(40_200.0) and dl["fee"].iloc[0] == 0.0
                [row] = [r for r in sim.income if r["incomeType"] == "DELIVERED_SETTELMENT"]
                assert float(row["income"]) == pytest.approx(short * (40_200.0 - 42_000.0))
                assert task.driver.ctx.perp.realized - realized0 == pytest.approx(float(row["income"]), abs=1e-6)
                # the re-hedge: sells on the perpetual after the delivery
                perp_fills = fills[fills["symbol"] == PERP]
                assert set(perp_fills["side"]) >= {"sell"}
                refused = [a for a in sim.answers if a[2] == -1121]  # orders the delisted contract refused
                if not rollback:
                    assert refused == []
                assert len(refused) <= 1  # at most the roll's close, once: then the delivery was read
                await asyncio.sleep(0.5)  # more updates: no move onto the delivered contract
                assert task.driver.ctx.perp.symbol == PERP and len([a for a in sim.answers if a[2] == -1121]) == len(refused)
                alerts = [a["message"] for a in task.alerts]
                assert any("delivered at expiry" in m for m in alerts)
            finally:
                await stop(task, store)
    asyncio.run(go())


def test_a_runner_down_over_the_delivery_books_it_after_the_restart(tmp_path, monkeypatch):
    """The runner stops (its task cancelled: a crash) with the short on the quarterly; the venue delivers it while
    it is down; a new HedgeTask recovers from the journal (the leg on the quarterly, the venue flat there) and its
    first reads book the delivery from the venue's records and re-hedge on the perpetual: not an unknown
    mismatch, never an order on the delisted contract, booked once."""
    monkeypatch.setattr(roll_watch, "CHECK_EVERY_S", 0.0)
    sim, sid, qtr, _expiry = perp_venue_with_quarterly(rate=0.0001)

    async def go():
        from hedge_core.runner.hedge import HedgeTask

        async with reversed_venues(perp_sim=sim) as rv:
            sup, task, store = await running_hedge(tmp_path, rv.adapter, CARRY, hedge_id="xdr", **XR,
                                                   records_poll_s=0.2, reconcile_s=0.3)
            task2 = None
            try:
                await _settled(task, qtr, "the leg rolled to the quarterly")
                short = sim.position(sid)
                task.task.cancel()  # the crash
                try:
                    await task.task
                except asyncio.CancelledError:
                    pass
                sim.set_funding_rate("BTCUSDT", 0.0005)
                sim.deliver(sid, [40_100.0, 40_300.0], at_ms=sim.now_ms())
                runs = sup.journal.runs()
                row = runs[runs["hedge_id"] == "xdr"].iloc[0]
                task2 = HedgeTask(task.spec, task.params, sup.journal, rv.adapter, sup._feed_factory, sup)
                rep = await task2.recover(str(row["state"]), row["started_at"])
                assert set(rep["venues"]) == {"bybit", "binance"}
                assert task2.driver.ctx.perp.symbol == qtr and task2.driver.ctx.perp.qty == pytest.approx(short)
                sup.hedges["xdr"] = task2
                task2.task = asyncio.create_task(task2.run())
                rec = await _settled(task2, PERP, "hedged again on the perpetual after the restart")
                assert sim.position(sid) == 0.0 and sim.position("BTCUSDT") == pytest.approx(short)
                assert rec["venues"]["binance"]["positions"][qtr] == {"journal": 0.0, "venue": 0.0}
                task2.journal.flush()
                fills = task2.journal.fills("xdr")
                dl = fills[fills["client_order_id"].astype(str).str.startswith("dlv-")]
                assert len(dl) == 1 and dl["qty"].iloc[0] == pytest.approx(-short)
                assert dl["price"].iloc[0] == pytest.approx(40_200.0)
                assert not [a for a in sim.answers if a[2] == -1121]
                assert any("delivered at expiry" in a["message"] for a in task2.alerts)
            finally:
                await stop(task2 or task, store)
    asyncio.run(go())
