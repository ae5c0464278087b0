"""A Bybit USDT future in its delivery window across a runner restart (docs/calendar-roll.md "Delivery at expiry"):
Bybit's "Get Instruments Info" (https://bybit-exchange.github.io/docs/v5/market/instrument) answers Trading symbols
only unless a ``status`` is asked for, so a future whose status is Delivering is missing from the markets ccxt
reloads at a restart. Its position is still open (delivery not executed yet) and "Get Position Info"
(https://bybit-exchange.github.io/docs/v5/position) still answers it by symbol. Before, every read on the unlisted
contract raised InvalidInput and the runner took that for "nothing held": recovery saw the leg flat. Now the
adapter reads it by the venue's own symbol id (``BTCUSDT-<DDMMMYY>``): the restarted runner finds the short, sends
no order while the contract is Delivering, and books the delivery once when the venue executes it.

In process, real ccxt to the Bybit v5 simulator, both legs on Bybit's unified account; hand figures as
tests/test_bybit_delivery.py: the short entered at 42,000 is delivered at (40,900 + 41,100) / 2 = 41,000."""

from __future__ import annotations

import asyncio

import pytest

from hedge_core.errors import InvalidInput
from hedge_core.runner import roll_watch
from hedge_core.runner.hedge import HedgeTask
from hedge_core.types import Side
from tests.support.delivery_live import CARRY, PERP, bybit_future_sim, settled
from tests.support.inprocess_hedge import running_hedge, stop, until
from tests.support.live_env import bybit_env

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # a local venue simulator


def test_the_simulated_future_is_delivering_in_the_last_30_minutes_and_listed_only_when_that_status_is_asked():
    sim, sid, fut, expiry = bybit_future_sim()

    async def go():
        async with bybit_env(sim=sim) as env:
            ex = env.adapter.exchange
            info = ex.publicGetV5MarketInstrumentsInfo

            async def listed(**q: str) -> list[tuple[str, str]]:
                rows = (await info({"category": "linear", **q}))["result"]["list"]
                return [(r["symbol"], r["status"]) for r in rows]

            assert (sid, "Trading") in await listed()
            sim.clock_offset_ms = int(expiry.value // 1_000_000) - sim.now_ms() - 31 * 60_000  # 31 min before
            assert (sid, "Trading") in await listed()
            sim.clock_offset_ms += 2 * 60_000  # 29 min before the deliveryTime: the delivery window
            assert sid not in [s for s, _ in await listed()]  # default: Trading symbols only
            assert await listed(status="Delivering") == [(sid, "Delivering")]
            assert await listed(symbol=sid) == [(sid, "Delivering")]
            assert fut not in await env.adapter.load_markets()
            sim.deliver(sid, [40_000.0])
            assert await listed(status="Closed") == [(sid, "Closed")] and await listed(status="Delivering") == []
    asyncio.run(go())


def test_the_adapter_reads_a_delivering_future_the_markets_do_not_list_by_its_venue_id():
    sim, sid, fut, _expiry = bybit_future_sim(usdt=20_000.0)

    async def go():
        async with bybit_env(sim=sim) as env:
            a = env.adapter
            sim.positions[sid] = [-0.024, 42_000.0]  # a short held on the future
            sim.start_delivering(sid)
            assert fut not in await a.load_markets()  # Delivering: instruments-info omits it by default
            [p] = await a.fetch_positions([fut])
            assert (p.symbol, p.qty, p.entry_price) == (fut, pytest.approx(-0.024), pytest.approx(42_000.0))
            assert await a.fetch_open_orders(fut) == []
            t = await a.fetch_ticker(fut)
            assert t.last == pytest.approx(42_000.0)
            assert await a.fetch_deliveries(fut) == []
            with pytest.raises(InvalidInput):  # still not tradable through the adapter: no instrument of it
                a._instrument(fut)
            assert ("GET", "/v5/position/list") in [(m, path) for m, path, q in sim.requests if q.get("symbol") == sid]
            sim.deliver(sid, [40_900.0, 41_100.0])
            assert await a.fetch_positions([fut]) == []  # the venue's own answer: flat once delivered
            [d] = await a.fetch_deliveries(fut)
            assert (d.side, d.qty, d.price) == (Side.BUY, pytest.approx(0.024), pytest.approx(41_000.0))
    asyncio.run(go())


def test_a_runner_restarted_while_the_future_is_delivering_keeps_the_leg_and_books_the_delivery_once(
        tmp_path, monkeypatch):
    monkeypatch.setattr(roll_watch, "CHECK_EVERY_S", 0.0)
    sim, sid, fut, _expiry = bybit_future_sim(usdt=20_000.0)
    sim.funding_rate["BTCUSDT"] = 0.0001

    async def go():
        async with bybit_env(sim=sim) as env:
            sup, task, store = await running_hedge(tmp_path, env.adapter, CARRY, hedge_id="bdr", venue="bybit",
                                                   records_poll_s=0.2, reconcile_s=0.3)
            task2 = None
            try:
                await settled(task, fut, "the leg rolled to the future")
                short = sim.positions[sid][0]
                assert short < 0
                task.task.cancel()  # the crash
                try:
                    await task.task
                except asyncio.CancelledError:
                    pass
                sim.start_delivering(sid)
                assert fut not in await env.adapter.load_markets()  # the restart's markets: the future is gone
                orders0 = len(sim.orders)
                runs = sup.journal.runs()
                row = runs[runs["hedge_id"] == "bdr"].iloc[0]
                task2 = HedgeTask(task.spec, task.params, sup.journal, env.adapter, sup._feed_factory, sup)
                rep = await task2.recover(str(row["state"]), row["started_at"])
                assert rep["venue_positions"][fut] == pytest.approx(short)  # read at the venue, not taken as flat
                ctx = task2.driver.ctx
                assert ctx.perp.symbol == fut and ctx.perp.qty == pytest.approx(short)
                sup.hedges["bdr"] = task2
                task2.task = asyncio.create_task(task2.run())
                # while Delivering: reconciliation clean with the short on the future, no order of any kind
                await until(lambda: (task2.summary().get("reconcile") or {}).get("differences") == [], timeout=30,
                            what="a clean reconciliation while the future is Delivering")
                ts0 = task2.summary()["reconcile"]["ts"]
                await until(lambda: task2.summary()["reconcile"]["ts"] != ts0, timeout=30, what="another pass")
                rec = task2.summary()["reconcile"]
                assert rec["differences"] == []
                assert rec["venues"]["bybit"]["positions"][fut] == {"journal": pytest.approx(short),
                                                                   "venue": pytest.approx(short)}
                assert len(sim.orders) == orders0  # nothing re-hedged, nothing opened
                assert sim.positions.get("BTCUSDT", [0.0])[0] == 0.0 and sim.positions[sid][0] == short
                assert task2.driver.ctx.perp.symbol == fut and task2.driver.ctx.perp.qty == pytest.approx(short)
                # the venue delivers: booked once, then hedged again on the perpetual
                sim.deliver(sid, [40_900.0, 41_100.0], at_ms=sim.now_ms())
                rec = await settled(task2, PERP, "hedged again on the perpetual after the delivery")
                assert rec["venues"]["bybit"]["positions"][fut] == {"journal": 0.0, "venue": 0.0}
                assert sim.positions[sid][0] == 0.0 and sim.positions["BTCUSDT"][0] == pytest.approx(short)
                await asyncio.sleep(0.5)  # more updates: booked once
                task2.journal.flush()
                fills = task2.journal.fills("bdr")
                dl = fills[fills["client_order_id"].astype(str).str.startswith("dlv-")]
                assert len(dl) == 1 and dl["symbol"].iloc[0] == fut and dl["price"].iloc[0] == pytest.approx(41_000.0)
                assert dl["qty"].iloc[0] == pytest.approx(-short)
                assert not [x for x in sim.answers if x[2] == 10001]  # never an order on the delivering contract
            finally:
                await stop(task2 or task, store)
    asyncio.run(go())
