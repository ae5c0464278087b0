"""The calendar roll of a LIVE perp pair's second leg onto the OKX quarterly and onto the Binance USD-M quarterly, in
process, real ccxt to two simulators each (docs/calendar-roll.md "Two perp legs"; the Bybit USDT future:
tests/test_pair_roll_live.py). The first leg is a perp on the Bybit simulator's linear side; the second venue lists
a quarterly 90 days out (08:00 UTC) at 42,000 against its 40,000 perpetual:

- OKX: a FUTURES row (``instType`` FUTURES, ``expTime``, contracts of ``ctVal`` 0.01 BTC; "Get instruments",
  tests/support/okx_sim.py), ccxt ``BTC/USDT:USDT-YYMMDD``;
- Binance USD-M: ``BinanceSim.list_quarterly`` (exchangeInfo ``contractType`` CURRENT_QUARTER, ``deliveryDate``,
  symbol ``BTCUSDT_YYMMDD``), the same ccxt symbol (both listed by tests/support/pair_quarterly.py).

Funding per 8 h: Bybit 0.001 %, the second venue 0.01 % (10.95 %/yr): the pair is short the second venue, whose
quarterly's basis (5 % over 90 days = 20.28 %/yr) pays more -> perp -> quarterly; the second venue's funding rises to
0.05 %/8 h (54.75 %/yr) -> back. After each move the continuous reconciliation is clean per venue and per contract
(it compares every order's filled quantity and commission with the venue's own trade records); the roll's fees are
the hand figure, 0.05 % taker of each fill's notional at both venues.
"""

from __future__ import annotations

import asyncio

import pytest

from hedge_core.runner import roll_watch
from tests.support.delivery_live import settled
from tests.support.inprocess_hedge import running_hedge, stop
from tests.support.pair_okx_env import pair_params, pair_spec, perp_pair, position, venue_sim
from tests.support.pair_quarterly import PERP, held, second_venue, set_rate

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # local venue simulators


@pytest.mark.parametrize("second", ["okx", "binance"])
def test_the_second_perp_leg_rolls_onto_the_second_venues_quarterly_and_back(tmp_path, monkeypatch, second):
    monkeypatch.setattr(roll_watch, "CHECK_EVERY_S", 0.0)
    sim_b, sid, fut = second_venue(second, 0.0001)
    sim_a = venue_sim("bybit", 0.00001)
    params = {**pair_params("bybit", second), "roll": {"enabled": True}, "rebalance": {"cooldown_s": 0.0}}

    async def go():
        async with perp_pair("bybit", second, sim_a, sim_b) as pv:
            sup, task, store = await running_hedge(tmp_path, pv.adapter, params, hedge_id="pv",
                                                   **pair_spec("bybit", second), records_poll_s=0.2, reconcile_s=0.3)
            try:
                rec = await settled(task, fut, "the second leg rolled to the quarterly", timeout=40)
                first, short = position("bybit", sim_a), held(second, sim_b, sid)
                assert short < 0 < first and abs(first + short) <= 0.001  # within one lot (Bybit 0.001 BTC)
                assert position(second, sim_b) == 0.0  # wholly on the quarterly
                ctx = task.driver.ctx
                assert (ctx.perp.venue, ctx.perp.symbol) == (second, fut) and ctx.spot.venue == "bybit"
                assert ctx.perp.qty == pytest.approx(short, abs=1e-9) and ctx.spot.qty == pytest.approx(first, abs=1e-9)
                v = rec["venues"]
                assert set(v) == {"bybit", second} and v["bybit"]["differences"] == v[second]["differences"] == []
                assert v[second]["positions"] == {fut: {"journal": pytest.approx(short), "venue": pytest.approx(short)},
                                                  PERP: {"journal": 0.0, "venue": 0.0}}
                assert v["bybit"]["spot_base"] == {"journal": pytest.approx(first), "venue": pytest.approx(first)}
                set_rate(second, sim_b, 0.0005)
                rec = await settled(task, PERP, "the second leg back on the perpetual", timeout=40)
                assert held(second, sim_b, sid) == 0.0 and position(second, sim_b) == pytest.approx(short)
                assert position("bybit", sim_a) == pytest.approx(first)  # the first leg never moved
                assert rec["venues"][second]["positions"][fut] == {"journal": 0.0, "venue": 0.0}
                task.journal.flush()
                fills = task.journal.fills("pv")
                q = fills[fills["symbol"] == fut]
                assert set(q["venue"]) == {second} and list(q["side"]) == ["sell", "buy"]
                assert set(q["leg"]) == {"roll", "perp"}
                assert q["fee"].sum() == pytest.approx(0.0005 * (q["qty"] * q["price"]).sum(), rel=1e-9)  # by hand
                assert set(fills.loc[fills["venue"] == "bybit", "symbol"]) == {PERP}
                gf = store.read_table("guard_firings", hedge_id="pv")
                assert list(gf.loc[gf["guard"] == "calendar_roll", "action"]) == ["to_future", "to_perp"]
            finally:
                await stop(task, store)
    asyncio.run(go())
