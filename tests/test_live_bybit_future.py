"""A Bybit USDT-settled linear dated future through real ccxt against the Bybit v5 simulator
(tests/support/bybit_sim.py ``list_future``: "Get Instruments Info" category linear, ``contractType`` LinearFutures,
symbol ``BTCUSDT-DDMMMYY``, ``deliveryTime``): the live adapter lists it as a dated future
(``VenueConfig.dated_futures``), trades it under category linear, reads its position and its own executions with the
venue's ``execFee``, and never reads funding for it.

Hand figures (taker 0.055 %, the simulator's linear taker fee): perpetual 40,000, future 42,000 (5 % basis); a
0.02 BTC short at 42,000 pays 0.02 x 42,000 x 0.00055 = 0.462 USDT; bought back at 41,000 it realises
0.02 x (42,000 - 41,000) = 20.0 USDT and pays 0.02 x 41,000 x 0.00055 = 0.451 USDT.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from hedge_core import errors as he
from hedge_core.exchange.routed import is_perp_symbol
from hedge_core.types import MarketKind, OrderRequest, OrderStatus, OrderType, Side, client_order_id
from tests.support.bybit_sim import BybitSim
from tests.support.delivery_live import CARRY, bybit_future_sim, settled
from tests.support.live_env import bybit_env
from tests.support.roll_runner import dated_symbol, delivery_ms

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # a local venue simulator
PERP = "BTC/USDT:USDT"


def _req(symbol: str, side: Side, qty: float, *, reduce_only: bool = False, seq: int = 1) -> OrderRequest:
    return OrderRequest(symbol=symbol, side=side, qty=qty, client_order_id=client_order_id("bf", "roll", seq),
                        reduce_only=reduce_only)


def test_the_future_is_listed_as_bybit_lists_it():
    sim, sid, _sym, expiry = bybit_future_sim()
    assert sid == "BTCUSDT-" + time.strftime("%d%b%y", time.gmtime(expiry.timestamp())).upper()  # BTCUSDT-27MAR26
    rows = {r["symbol"]: r for r in sim._instruments({"category": "linear"})["list"]}
    assert rows[sid]["contractType"] == "LinearFutures" and rows["BTCUSDT"]["contractType"] == "LinearPerpetual"
    assert rows[sid]["deliveryTime"] == str(int(expiry.timestamp() * 1000)) and rows["BTCUSDT"]["deliveryTime"] == "0"
    assert rows[sid]["settleCoin"] == "USDT" and rows[sid]["lotSizeFilter"] == rows["BTCUSDT"]["lotSizeFilter"]
    assert rows[sid]["priceFilter"] == rows["BTCUSDT"]["priceFilter"]
    assert sid not in {r["symbol"] for r in sim._instruments({"category": "spot"})["list"]}  # not a spot market
    assert sim._instruments({"category": "linear", "status": "PreLaunch"})["list"] == []
    [t] = sim._tickers({"category": "linear", "symbol": sid})["list"]
    assert t["fundingRate"] == "" and t["nextFundingTime"] == "0" and t["deliveryTime"] == rows[sid]["deliveryTime"]
    assert float(t["basis"]) == pytest.approx(2_000.0)
    with pytest.raises(ValueError, match="dated future"):
        sim.settle_funding(sid, 0.0001)


def test_the_adapter_lists_trades_and_reads_a_bybit_future():
    sim, sid, sym, expiry = bybit_future_sim()

    async def run() -> None:
        async with bybit_env(sim=sim) as env:
            a = env.adapter
            markets = await a.load_markets()
            inst = markets[sym]
            assert inst.kind is MarketKind.PERP and inst.venue == "bybit" and is_perp_symbol(sym)
            assert (inst.lot_size, inst.min_qty, inst.contract_size, inst.tick_size) == (0.001, 0.001, 1.0, 0.1)
            assert PERP in markets and "BTC/USDT" in markets
            assert await a.dated_futures("BTC") == [(sym, expiry)]
            assert await a.dated_futures("ETH") == []
            assert (await a.fetch_ticker(sym)).last == pytest.approx(42_000.0)
            # open the short on the future: a category-linear order on BTCUSDT-DDMMMYY
            o = await a.create_order(_req(sym, Side.SELL, 0.02))
            assert o.status is OrderStatus.CLOSED and o.filled == pytest.approx(0.02)
            sent = [p for m, path, p in sim.requests if m == "POST" and path == "/v5/order/create"]
            assert (sent[-1]["category"], sent[-1]["symbol"]) == ("linear", sid)
            assert sim.positions[sid][0] == pytest.approx(-0.02) and "BTCUSDT" not in sim.positions
            pos = {p.symbol: p for p in await a.fetch_positions()}
            assert set(pos) == {sym} and pos[sym].qty == pytest.approx(-0.02)
            assert pos[sym].entry_price == pytest.approx(42_000.0)
            # the perpetual settles funding; the future's position pays none, and nothing asks the venue for it
            sim.settle_funding("BTCUSDT", 0.0005)
            n = len(sim.requests)
            assert await a.fetch_funding_payments(sym) == []
            for read in (a.fetch_funding_rate(sym), a.fetch_funding_rate_history(sym)):
                with pytest.raises(he.InvalidInput, match="dated future pays no funding"):
                    await read
            assert len(sim.requests) == n  # refused before any request
            assert not [r for r in sim.executions if r["execType"] == "Funding"]
            assert (await a.fetch_funding_rate(PERP)).rate == pytest.approx(0.0001)  # the perpetual's is read
            # bought back at 41,000, reduce-only
            sim.set_price(sid, 41_000.0)
            c = await a.create_order(_req(sym, Side.BUY, 0.02, reduce_only=True, seq=2))
            assert c.status is OrderStatus.CLOSED and sim.positions[sid][0] == 0.0
            fills = await a.fetch_my_trades(sym)
            assert [(f.side, f.qty, f.price) for f in fills] == [(Side.SELL, 0.02, 42_000.0), (Side.BUY, 0.02, 41_000.0)]
            assert [f.fee for f in fills] == [pytest.approx(0.462), pytest.approx(0.451)]
            assert {f.symbol for f in fills} == {sym} and await a.fetch_my_trades(PERP) == []
            assert sim.coins["USDT"] == pytest.approx(10_000.0 + 20.0 - 0.462 - 0.451)
            # a resting limit on the future is among the open orders, found by client id, and canceled there
            r = await a.create_order(OrderRequest(symbol=sym, side=Side.SELL, qty=0.01, price=43_000.0,
                                                  type=OrderType.LIMIT, client_order_id=client_order_id("bf", "roll", 3)))
            assert r.status is OrderStatus.OPEN
            assert [x.client_order_id for x in await a.fetch_open_orders(sym)] == [r.client_order_id]
            assert (await a.fetch_order(sym, client_order_id=r.client_order_id)).qty == pytest.approx(0.01)
            assert (await a.cancel_order(sym, client_order_id=r.client_order_id)).status is OrderStatus.CANCELED

    asyncio.run(run())


XV = {"venue": "binance", "perp_venue": "bybit"}  # the spot leg on Binance, the perp leg on Bybit


def _pos(sim: BybitSim, sid: str) -> float:
    return sim.positions.get(sid, [0.0, 0.0])[0]


def test_a_live_hedge_with_its_perp_leg_on_bybit_rolls_perp_future_perp(tmp_path, monkeypatch):
    """The runner's own HedgeTask (roll enabled) moves the short leg from Bybit's perpetual to its USDT future when
    the future's basis (42,000 vs 40,000, 90 days: 5 % x 365 / 90 = 20.28 %/yr) beats the perpetual's funding
    (0.01 %/8 h = 10.95 %/yr), and back when the funding rises to 0.05 %/8 h (54.75 %/yr); each step reconciled per
    venue and per contract (runner/records.py ``leg_contracts``) with no difference."""
    from hedge_core.runner import roll_watch
    from tests.support.inprocess_hedge import running_hedge, stop
    from tests.support.xlive_env import bybit_perp_sim, two_venues

    monkeypatch.setattr(roll_watch, "CHECK_EVERY_S", 0.0)  # look at the rule on every update (the clock is real)
    sim = bybit_perp_sim(rate=0.0001)
    delivery = delivery_ms(sim.now_ms())
    sid = sim.list_future("BTC", delivery, 42_000.0)
    fut = dated_symbol(PERP, delivery)

    async def go():
        async with two_venues(perp_sim=sim) as tv:
            sup, task, store = await running_hedge(tmp_path, tv.adapter, CARRY, hedge_id="broll", **XV,
                                                   records_poll_s=0.2, reconcile_s=0.3)
            try:
                # 1. entry on the perpetual, then the rule moves the short leg to Bybit's future
                rec = await settled(task, fut, "the leg rolled to the future")
                short = _pos(sim, sid)
                assert short < 0 and _pos(sim, "BTCUSDT") == 0.0  # wholly on the future
                assert task.driver.ctx.perp.qty == pytest.approx(short, abs=1e-12)
                v = rec["venues"]
                assert set(v) == {"binance", "bybit"} and v["binance"]["differences"] == v["bybit"]["differences"] == []
                pos = v["bybit"]["positions"]
                assert pos[fut] == {"journal": pytest.approx(short), "venue": pytest.approx(short)}
                assert pos[PERP] == {"journal": 0.0, "venue": 0.0}
                assert abs(v["binance"]["spot_base"]["venue"] + short) <= 0.001  # hedged across the venues
                # 2. funding rises to 0.05 %/8 h (54.75 %/yr): back to the perpetual
                sim.funding_rate["BTCUSDT"] = 0.0005
                rec = await settled(task, PERP, "the leg back on the perpetual")
                assert _pos(sim, sid) == 0.0 and _pos(sim, "BTCUSDT") == pytest.approx(short)
                pos = rec["venues"]["bybit"]["positions"]
                assert pos[fut] == {"journal": 0.0, "venue": 0.0}
                assert pos[PERP]["venue"] == pytest.approx(short) and pos[PERP]["journal"] == pytest.approx(short)
                # fills journaled per contract on their venue, with Bybit's execFee (taker 0.055 %, by hand)
                task.journal.flush()
                fills = task.journal.fills("broll")
                by_sym = fills.groupby("symbol")["venue"].agg(set).to_dict()
                assert by_sym == {"BTC/USDT": {"binance"}, PERP: {"bybit"}, fut: {"bybit"}}
                q = fills[fills["symbol"] == fut]
                assert list(q["side"]) == ["sell", "buy"] and set(q["leg"]) == {"roll", "perp"}
                venue_q = [r for r in sim.executions if r["symbol"] == sid and r["execType"] == "Trade"]
                assert len(venue_q) == 2
                assert q["fee"].sum() == pytest.approx(sum(float(r["execFee"]) for r in venue_q), abs=1e-9)
                assert q["fee"].sum() == pytest.approx(0.00055 * (q["qty"] * q["price"]).sum(), rel=1e-9)
                assert not [r for r in sim.executions if r["symbol"] == sid and r["execType"] == "Funding"]
                gf = store.read_table("guard_firings", hedge_id="broll")
                assert list(gf.loc[gf["guard"] == "calendar_roll", "action"]) == ["to_future", "to_perp"]
            finally:
                await stop(task, store)
    asyncio.run(go())


def test_a_live_hedge_with_both_legs_on_bybit_rolls_perp_future_perp(tmp_path, monkeypatch):
    """Both legs on Bybit's unified account (spot BTC/USDT and the perp leg, one wallet): the runner's HedgeTask
    rolls the short leg perp -> USDT future -> perp on the same rule as above, reconciled per contract with no
    difference; the spot balance is untouched by the roll (its orders are all category linear)."""
    from hedge_core.runner import roll_watch
    from tests.support.inprocess_hedge import running_hedge, stop

    monkeypatch.setattr(roll_watch, "CHECK_EVERY_S", 0.0)
    sim, sid, fut, _expiry = bybit_future_sim(price=42_000.0, usdt=20_000.0)
    sim.funding_rate["BTCUSDT"] = 0.0001

    async def go():
        async with bybit_env(sim=sim) as env:
            sup, task, store = await running_hedge(tmp_path, env.adapter, CARRY, hedge_id="broll2", venue="bybit",
                                                   records_poll_s=0.2, reconcile_s=0.3)
            try:
                rec = await settled(task, fut, "the leg rolled to the future")
                short, btc = _pos(sim, sid), sim.coins.get("BTC", 0.0)
                assert short < 0 and _pos(sim, "BTCUSDT") == 0.0 and abs(btc + short) <= 0.001
                v = rec["venues"]["bybit"]  # one venue holding both legs, reconciled per contract
                assert v["legs"] == ["spot", "perp"] and v["differences"] == []
                assert v["positions"] == {fut: {"journal": pytest.approx(short), "venue": pytest.approx(short)},
                                          PERP: {"journal": 0.0, "venue": 0.0}}
                assert v["spot_base"] == {"journal": pytest.approx(btc), "venue": pytest.approx(btc)}
                n_spot = len([o for o in sim.orders.values() if o.category == "spot"])
                sim.funding_rate["BTCUSDT"] = 0.0005
                rec = await settled(task, PERP, "the leg back on the perpetual")
                assert rec["venues"]["bybit"]["positions"][fut] == {"journal": 0.0, "venue": 0.0}
                assert _pos(sim, sid) == 0.0 and _pos(sim, "BTCUSDT") == pytest.approx(short)
                assert sim.coins["BTC"] == pytest.approx(btc)  # the roll never touched the spot leg
                assert len([o for o in sim.orders.values() if o.category == "spot"]) == n_spot
                assert [o.symbol for o in sim.orders.values() if o.symbol == sid] == [sid, sid]  # open, close
                gf = store.read_table("guard_firings", hedge_id="broll2")
                assert list(gf.loc[gf["guard"] == "calendar_roll", "action"]) == ["to_future", "to_perp"]
            finally:
                await stop(task, store)
    asyncio.run(go())
