"""The calendar roll of a hedge whose legs are on TWO venues, in process, real ccxt to two simulators: spot on
the Bybit simulator, perp on the Binance USD-M simulator, which lists a quarterly (``BinanceSim.list_quarterly``:
exchangeInfo ``contractType`` CURRENT_QUARTER, symbol ``BTCUSDT_YYMMDD``, ``deliveryDate``; docs/calendar-roll.md,
docs/cross-venue.md).

- The routed adapter lists the PERP venue's dated futures and routes every call on one (orders, positions, trades,
  open orders, ticker) to the perp venue; the spot venue is never asked about it.
- The runner's own HedgeTask (roll enabled) moves the short leg perp -> quarterly when the quarterly's basis
  (42,000 vs 40,000 spot, 90 days: 5 % x 365 / 90 = 20.28 %/yr) beats the perpetual's funding (0.01 %/8 h =
  10.95 %/yr), and back when the funding rises to 0.05 %/8 h (54.75 %/yr); each step reconciled per venue (the
  spot base on Bybit, the position on each contract at Binance) and per contract, with no difference.
"""

from __future__ import annotations

import asyncio

import pytest

from hedge_core.engine.states import State
from hedge_core.runner import roll_watch
from hedge_core.types import OrderRequest, OrderType, Side, client_order_id
from tests.support.delivery_live import CARRY, PERP, QTR_PX, XR, perp_venue_with_quarterly
from tests.support.delivery_live import settled as _settled
from tests.support.inprocess_hedge import running_hedge, stop
from tests.support.xlive_env import PRICE, reversed_venues

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # local venue simulators


def test_the_routed_adapter_lists_and_routes_the_perp_venues_quarterly():
    sim, sid, sym, expiry = perp_venue_with_quarterly()

    async def go():
        async with reversed_venues(perp_sim=sim) as rv:
            a = rv.adapter
            assert await a.dated_futures("BTC") == [(sym, expiry)] and await a.dated_futures("ETH") == []
            markets = await a.load_markets()
            assert markets[sym].venue == "binance" and a.venue_of(sym) == "binance"
            assert (await a.fetch_ticker(sym)).last == pytest.approx(QTR_PX)
            n_spot = len(rv.spot_sim.requests)
            o = await a.create_order(OrderRequest(symbol=sym, side=Side.SELL, qty=0.01,
                                                  client_order_id=client_order_id("xq", "roll", 1)))
            assert o.filled == pytest.approx(0.01) and sim.position(sid) == pytest.approx(-0.01)
            assert [p.qty for p in await a.fetch_positions([sym])] == [pytest.approx(-0.01)]
            [f] = await a.fetch_my_trades(sym)
            assert (f.symbol, f.price, f.fee) == (sym, QTR_PX, pytest.approx(0.01 * QTR_PX * 0.0005))  # 0.21 USDT
            lim = await a.create_order(OrderRequest(symbol=sym, side=Side.SELL, qty=0.01, type=OrderType.LIMIT,
                                                    price=43_000.0, client_order_id=client_order_id("xq", "roll", 2)))
            assert [x.client_order_id for x in await a.fetch_open_orders(sym)] == [lim.client_order_id]
            assert (await a.fetch_order(sym, client_order_id=lim.client_order_id)).qty == pytest.approx(0.01)
            await a.cancel_order(sym, client_order_id=lim.client_order_id)
            assert await a.fetch_funding_payments(sym) == []  # a dated future pays no funding
            # the spot venue (Bybit) was asked nothing about the quarterly, and holds no order
            assert not [r for r in rv.spot_sim.requests[n_spot:] if "BTCUSDT_" in str(r)]
            assert not rv.spot_sim.orders
    asyncio.run(go())


def _venues(task) -> dict:
    return (task.summary().get("reconcile") or {}).get("venues") or {}


def test_a_two_venue_live_hedge_rolls_perp_quarterly_perp(tmp_path, monkeypatch):
    monkeypatch.setattr(roll_watch, "CHECK_EVERY_S", 0.0)  # look at the rule on every update (the clock is real)
    sim, sid, qtr, _expiry = perp_venue_with_quarterly(rate=0.0001)

    async def go():
        async with reversed_venues(perp_sim=sim) as rv:
            sup, task, store = await running_hedge(tmp_path, rv.adapter, CARRY, hedge_id="xroll", **XR,
                                                   records_poll_s=0.2, reconcile_s=0.3)
            try:
                # 1. entry on the perpetual, then the rule moves the short leg to Binance's quarterly
                rec = await _settled(task, qtr, "the leg rolled to the quarterly")
                btc = rv.spot_sim.coins["BTC"]  # Bybit's unified wallet
                short = sim.position(sid)
                assert short < 0 and sim.position("BTCUSDT") == 0.0  # wholly on the quarterly
                assert task.driver.ctx.perp.qty == pytest.approx(short, abs=1e-12)
                assert not any(p[0] for p in rv.spot_sim.positions.values())  # no derivative on Bybit
                v = rec["venues"]
                assert set(v) == {"bybit", "binance"} and v["bybit"]["differences"] == v["binance"]["differences"] == []
                pos = v["binance"]["positions"]
                assert pos[qtr] == {"journal": pytest.approx(short), "venue": pytest.approx(short)}
                assert pos[PERP] == {"journal": 0.0, "venue": 0.0}
                assert v["bybit"]["spot_base"]["journal"] == pytest.approx(v["bybit"]["spot_base"]["venue"])
                assert abs(v["bybit"]["spot_base"]["venue"] + short) <= 0.001  # hedged across the venues
                assert btc == pytest.approx(v["bybit"]["spot_base"]["venue"])
                # 2. funding rises to 0.05 %/8 h (54.75 %/yr): back to the perpetual
                sim.set_funding_rate("BTCUSDT", 0.0005)
                rec = await _settled(task, PERP, "the leg back on the perpetual")
                assert sim.position(sid) == 0.0 and sim.position("BTCUSDT") == pytest.approx(short)
                pos = rec["venues"]["binance"]["positions"]
                assert pos[qtr] == {"journal": 0.0, "venue": 0.0}
                assert pos[PERP]["venue"] == pytest.approx(short) and pos[PERP]["journal"] == pytest.approx(short)
                # every order on its venue: the roll's four on Binance USD-M (two per contract), none on Bybit's
                # derivatives; fills journaled per contract with the venue's commission
                task.journal.flush()
                fills = task.journal.fills("xroll")
                by_sym = fills.groupby("symbol")["venue"].agg(set).to_dict()
                assert by_sym == {"BTC/USDT": {"bybit"}, PERP: {"binance"}, qtr: {"binance"}}
                q = fills[fills["symbol"] == qtr]
                assert list(q["side"]) == ["sell", "buy"] and set(q["leg"]) == {"roll", "perp"}
                venue_q = [t for t in sim.trades if t["symbol"] == sid]
                assert q["fee"].sum() == pytest.approx(sum(float(t["commission"]) for t in venue_q), abs=1e-9)
                assert q["fee"].sum() == pytest.approx(0.0005 * (q["qty"] * q["price"]).sum(), rel=1e-9)  # taker, by hand
                gf = store.read_table("guard_firings", hedge_id="xroll")
                assert list(gf.loc[gf["guard"] == "calendar_roll", "action"]) == ["to_future", "to_perp"]
            finally:
                await stop(task, store)
    asyncio.run(go())
