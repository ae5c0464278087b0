"""Delivery at expiry of a LIVE perp pair's SECOND leg held on its venue's dated future (docs/calendar-roll.md "Two
perp legs", "Delivery at expiry"), in process, real ccxt to two simulators each, the runner's own HedgeTask:

- second leg on the Bybit simulator's USDT future (first leg Binance USD-M): Bybit delivers it as an execution of
  ``execType`` "Delivery" with ``execFee`` at the contract's ``deliveryFeeRate`` (0.05 %);
- second leg on the OKX simulator's quarterly (FUTURES, contracts of 0.01 BTC; first leg Bybit linear): OKX delivers
  it as a bill of ``type`` 3, ``subType`` 113 "Delivery short", ``fee`` at the rate the test gives (0.02 %).

The pair is short the second venue (its funding 0.01 %/8 h = 10.95 %/yr against the first's 0.001 %): the future's
basis (42,000 over the 40,000 perpetual, 90 days out: 20.28 %/yr) pays more, so the second leg rolls onto it. The
venue then delivers it at the average of the index samples the test gives, 41,000: by hand, realised
``qty x (41,000 - 42,000)`` (+1,000 USDT per BTC short) and a fee of ``|qty| x 41,000 x rate``. The driver books it
ONCE on the second leg (from the venue's record), moves that leg back to the venue's perpetual and sells the hedge
there again; the first leg's money is untouched. After it each venue's reconciliation is clean per contract, and
each leg's ledger equals its venue's own records to 1e-8 once each venue has settled funding on its perpetual:
realised PnL - fees + funding is the venue's wallet change, the fees the sum of the venue's fee records (trades and
the delivery).
"""

from __future__ import annotations

import asyncio

import pytest

from hedge_core.exchange.delivery_ids import is_delivery_fill
from hedge_core.runner import roll_watch
from tests.support.delivery_live import settled
from tests.support.inprocess_hedge import running_hedge, stop, until
from tests.support.pair_okx_env import pair_params, pair_spec, perp_pair, position, venue_sim
from tests.support.pair_quarterly import PERP, QTR_PX, held, second_venue, settle, venue_cash, venue_fees

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # local venue simulators
WALLET = 10_000.0  # each venue's USDT at the start (tests/support/pair_okx_env.venue_sim)
DELIVERED = 41_000.0


def deliver(venue: str, sim, sid: str) -> float:
    """The venue delivers ``sid`` at 41,000 now; returns its delivery fee rate."""
    if venue == "bybit":
        assert sim.deliver(sid, [40_900.0, 41_100.0], at_ms=sim.now_ms()) == pytest.approx(DELIVERED)
        [ex] = [e for e in sim.executions if e["execType"] == "Delivery"]
        return float(ex["feeRate"])
    assert sim.deliver(sid, [40_950.0, 41_050.0], fee_rate=0.0002) == pytest.approx(DELIVERED)
    [bill] = [b for b in sim.bills if b["type"] == "3"]
    assert bill["subType"] == "113" and sim.insts[sid]["state"] == "expired"
    return 0.0002


@pytest.mark.parametrize("first, second", [("binance", "bybit"), ("bybit", "okx")])
def test_the_second_legs_future_delivered_is_booked_once_on_its_venue_and_hedged_again_on_the_perpetual(
        tmp_path, monkeypatch, first, second):
    monkeypatch.setattr(roll_watch, "CHECK_EVERY_S", 0.0)
    sim_b, sid, fut = second_venue(second, 0.0001)
    sim_a = venue_sim(first, 0.00001)
    params = {**pair_params(first, second), "roll": {"enabled": True}, "rebalance": {"cooldown_s": 0.0}}

    async def go():
        async with perp_pair(first, second, sim_a, sim_b) as pv:
            sup, task, store = await running_hedge(tmp_path, pv.adapter, params, hedge_id="pdl",
                                                   **pair_spec(first, second), records_poll_s=0.2, reconcile_s=0.3)
            try:
                await settled(task, fut, "the second leg rolled to the future", timeout=40)
                short, long_ = held(second, sim_b, sid), position(first, sim_a)
                assert short < 0 < long_ and position(second, sim_b) == 0.0
                ctx = task.driver.ctx
                spot0 = (ctx.spot.qty, ctx.spot.realized, ctx.spot.fees, ctx.spot.funding)
                realized0, fees0 = ctx.perp.realized, ctx.perp.fees
                rate = deliver(second, sim_b, sid)
                assert held(second, sim_b, sid) == 0.0
                rec = await settled(task, PERP, "hedged again on the perpetual after the delivery", timeout=40)
                v = rec["venues"]
                assert v[first]["differences"] == v[second]["differences"] == []
                assert v[second]["positions"][fut] == {"journal": 0.0, "venue": 0.0}
                assert position(second, sim_b) == pytest.approx(short)  # hedged again on the perpetual
                assert position(first, sim_a) == pytest.approx(long_)  # the first leg never moved
                # booked once, on the second leg, at its venue: the delivery's realised PnL and fee, by hand
                task.journal.flush()
                fills = task.journal.fills("pdl")
                dl = fills[fills["client_order_id"].map(is_delivery_fill)]
                assert len(dl) == 1
                assert (dl["leg"].iloc[0], dl["venue"].iloc[0], dl["symbol"].iloc[0], dl["side"].iloc[0]) == (
                    "perp", second, fut, "buy")
                assert dl["qty"].iloc[0] == pytest.approx(-short) and dl["price"].iloc[0] == pytest.approx(DELIVERED)
                assert dl["fee"].iloc[0] == pytest.approx(-short * DELIVERED * rate, rel=1e-9)
                ctx = task.driver.ctx
                assert (ctx.perp.venue, ctx.perp.symbol, ctx.roll_leg) == (second, PERP, None)
                assert ctx.perp.qty == pytest.approx(short) and abs(ctx.perp.qty + ctx.spot.qty) <= 0.001
                assert ctx.perp.realized - realized0 == pytest.approx(short * (DELIVERED - QTR_PX), rel=1e-9)
                rehedge = fills[(fills["symbol"] == PERP) & (fills["venue"] == second) & (fills["side"] == "sell")
                                & (fills["ts"] >= dl["ts"].iloc[0])]
                assert rehedge["qty"].sum() == pytest.approx(-short)
                assert ctx.perp.fees - fees0 == pytest.approx(dl["fee"].iloc[0] + rehedge["fee"].sum(), rel=1e-9)
                assert (ctx.spot.qty, ctx.spot.realized, ctx.spot.fees, ctx.spot.funding) == spot0  # untouched
                # each venue settles funding on its own leg (the second leg's on the perpetual again), booked from
                # the venue's income records; then each venue's ledger is that venue's own records
                settle(first, sim_a, 0.00001)
                settle(second, sim_b, 0.0001)
                await until(lambda: task.driver.ctx.spot.funding != spot0[3] and task.driver.ctx.perp.funding != 0.0,
                            what="each venue's funding booked on its leg")
                ctx = task.driver.ctx
                assert ctx.spot.funding - spot0[3] == pytest.approx(-long_ * 40_000.0 * 0.00001, rel=1e-6)  # pays
                assert ctx.perp.funding == pytest.approx(-short * 40_000.0 * 0.0001, rel=1e-6)  # the short receives
                for leg, venue, sim in ((ctx.spot, first, sim_a), (ctx.perp, second, sim_b)):
                    assert leg.fees == pytest.approx(venue_fees(venue, sim), abs=1e-8), venue
                    assert leg.realized - leg.fees + leg.funding == pytest.approx(venue_cash(venue, sim) - WALLET,
                                                                                  abs=1e-8), venue
                await asyncio.sleep(0.5)  # more updates and passes: booked once, no order to the delivered contract
                task.journal.flush()
                assert task.journal.fills("pdl")["client_order_id"].map(is_delivery_fill).sum() == 1
                # on the future: the roll's open only (the delivery closed it; nothing was sent there after)
                assert len([o for o in task.journal.orders("pdl") if o["symbol"] == fut]) == 1
            finally:
                await stop(task, store)
    asyncio.run(go())


@pytest.mark.parametrize("first, second", [("binance", "bybit"), ("bybit", "okx")])
def test_a_runner_down_over_the_second_legs_delivery_books_it_after_the_restart(tmp_path, monkeypatch, first, second):
    """The runner stops (its task cancelled: a crash) with the second leg on the future; the venue delivers it while
    it is down and no longer lists it (Bybit's instrument list answers Trading symbols only; OKX's quarterly
    expired); a new HedgeTask recovers from the journal (the second leg on the future, the venue flat there: a
    delisted contract is read as holding nothing, its instrument the perpetual's under its symbol) and its first
    reads book the delivery from the venue's record (Bybit: its "Delivery" execution read by Bybit's own symbol
    id; OKX: the delivery bill) and hedge again on the perpetual: booked once, never an order on the delisted
    contract, each leg's ledger its venue's records."""
    monkeypatch.setattr(roll_watch, "CHECK_EVERY_S", 0.0)
    sim_b, sid, fut = second_venue(second, 0.0001)
    sim_a = venue_sim(first, 0.00001)
    params = {**pair_params(first, second), "roll": {"enabled": True}, "rebalance": {"cooldown_s": 0.0}}

    async def go():
        from hedge_core.runner.hedge import HedgeTask

        async with perp_pair(first, second, sim_a, sim_b) as pv:
            sup, task, store = await running_hedge(tmp_path, pv.adapter, params, hedge_id="pdr",
                                                   **pair_spec(first, second), records_poll_s=0.2, reconcile_s=0.3)
            task2 = None
            try:
                await settled(task, fut, "the second leg rolled to the quarterly", timeout=40)
                short, long_ = held(second, sim_b, sid), position(first, sim_a)
                task.task.cancel()  # the crash
                try:
                    await task.task
                except asyncio.CancelledError:
                    pass
                rate = deliver(second, sim_b, sid)
                runs = sup.journal.runs()
                row = runs[runs["hedge_id"] == "pdr"].iloc[0]
                task2 = HedgeTask(task.spec, task.params, sup.journal, pv.adapter, sup._feed_factory, sup)
                rep = await task2.recover(str(row["state"]), row["started_at"])
                assert set(rep["venues"]) == {first, second}
                if second == "bybit":  # delisted: the markets reloaded at recovery no longer hold the future
                    assert fut not in await pv.adapter.second.load_markets()
                    [ex] = [e for e in sim_b.executions if e["execType"] == "Delivery"]
                    [d] = await pv.adapter.second.fetch_deliveries(fut)  # read by Bybit's own symbol id
                    assert (d.trade_id, d.client_order_id, d.symbol) == (ex["execId"], f"dlv-{ex['execId']}", fut)
                    assert (d.side.value, d.qty, d.price) == ("buy", pytest.approx(-short), pytest.approx(DELIVERED))
                    assert d.fee == pytest.approx(float(ex["execFee"]))
                ctx = task2.driver.ctx
                assert (ctx.perp.symbol, ctx.spot.venue) == (fut, first) and ctx.perp.qty == pytest.approx(short)
                sup.hedges["pdr"] = task2
                task2.task = asyncio.create_task(task2.run())
                rec = await settled(task2, PERP, "hedged again on the perpetual after the restart", timeout=40)
                assert rec["venues"][second]["positions"][fut] == {"journal": 0.0, "venue": 0.0}
                assert position(second, sim_b) == pytest.approx(short)
                assert position(first, sim_a) == pytest.approx(long_)
                task2.journal.flush()
                fills = task2.journal.fills("pdr")
                dl = fills[fills["client_order_id"].map(is_delivery_fill)]
                assert len(dl) == 1 and (dl["leg"].iloc[0], dl["venue"].iloc[0]) == ("perp", second)
                assert dl["qty"].iloc[0] == pytest.approx(-short) and dl["price"].iloc[0] == pytest.approx(DELIVERED)
                assert dl["fee"].iloc[0] == pytest.approx(-short * DELIVERED * rate, rel=1e-9)
                assert len([o for o in task2.journal.orders("pdr") if o["symbol"] == fut]) == 1  # the roll's open only
                ctx = task2.driver.ctx
                for leg, venue, sim in ((ctx.spot, first, sim_a), (ctx.perp, second, sim_b)):
                    assert leg.fees == pytest.approx(venue_fees(venue, sim), abs=1e-8), venue
                    assert leg.realized - leg.fees + leg.funding == pytest.approx(venue_cash(venue, sim) - WALLET,
                                                                                  abs=1e-8), venue
            finally:
                await stop(task2 or task, store)
    asyncio.run(go())
