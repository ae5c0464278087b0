"""The calendar roll of a LIVE hedge with TWO perp legs (``legs = "perp_perp"``), in process, real ccxt to two
simulators: the first leg a perp on the Binance simulator's USD-M side, the second a perp on the Bybit
simulator's linear side, which lists a USDT future 90 days out at 42,000 against the 40,000 perpetual
(``BybitSim.list_future``: "Get Instruments Info" ``contractType`` LinearFutures, ``deliveryTime``; a dated future
settles no funding). docs/calendar-roll.md "Two perp legs": the SECOND leg rolls, the first never does.

The runner's own HedgeTask (roll enabled) judges the second leg against the quarterly's basis measured on its
own venue's perpetual: 42,000 / 40,000 - 1 = 5 % over 90 days = 20.28 %/yr.

- SHORT second leg (Bybit's funding the higher: 0.01 %/8 h = 10.95 %/yr received on the perp): the future's
  20.28 %/yr pays more -> perp -> future; Bybit's funding rises to 0.05 %/8 h (54.75 %/yr) -> back.
- LONG second leg (Bybit's funding the lower, but 0.05 %/8 h = 54.75 %/yr PAID on the perp): the future costs
  20.28 %/yr -> perp -> future; Bybit's funding falls to 0.001 %/8 h (1.095 %/yr paid) -> back.

After each move: a reconciliation pass with no difference, per venue and per contract (Binance: the first
leg's position; Bybit: the second leg's position on the perpetual and on the future); the future's fees equal
Bybit's ``execFee`` and the hand figure (taker 0.055 % of each fill's notional); Binance holds only the entry.
While the second leg is on the future, each venue's funding settles on its own leg: Binance's on the first leg
(by hand, ``-qty x mark x rate``), none on the future at Bybit.
"""

from __future__ import annotations

import asyncio

import pytest

from hedge_core.runner import roll_watch
from tests.support.bybit_sim import BybitSim
from tests.support.delivery_live import settled
from tests.support.inprocess_hedge import running_hedge, stop, until
from tests.support.pair_live_env import PAIR, PRICE, binance_perp_sim, bybit_perp_sim, pair_params, pair_venues
from tests.support.roll_runner import dated_symbol, delivery_ms

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # local venue simulators
PERP = "BTC/USDT:USDT"
FUT_PX = 42_000.0  # 5 % over the 40,000 perpetual


def _pos(sim: BybitSim, sid: str) -> float:
    return sim.positions.get(sid, [0.0, 0.0])[0]


def bybit_with_future(rate: float) -> tuple[BybitSim, str, str]:
    """The Bybit simulator (10,000 USDT, BTCUSDT at 40,000, funding ``rate`` per 8 h) listing a USDT future 90
    days out (08:00 UTC) at 42,000: (sim, venue symbol id, ccxt unified symbol)."""
    sim = bybit_perp_sim(rate=rate)
    delivery = delivery_ms(sim.now_ms())
    sid = sim.list_future("BTC", delivery, FUT_PX)
    return sim, sid, dated_symbol(PERP, delivery)


@pytest.mark.parametrize("side, rate_a, rate_b, rate_b_back", [
    ("short", 0.00001, 0.0001, 0.0005),  # Bybit the higher funding: the pair is SHORT there
    ("long", 0.0008, 0.0005, 0.00001),  # Bybit the lower funding: the pair is LONG there (and pays)
])
def test_the_second_perp_leg_rolls_perp_future_perp_reconciled_per_venue_and_contract(
        tmp_path, monkeypatch, side, rate_a, rate_b, rate_b_back):
    monkeypatch.setattr(roll_watch, "CHECK_EVERY_S", 0.0)  # look at the rule on every update (the clock is real)
    sim_b, sid, fut = bybit_with_future(rate_b)
    sim_a = binance_perp_sim(rate=rate_a)
    params = {**pair_params(), "roll": {"enabled": True}, "rebalance": {"cooldown_s": 0.0}}

    async def go():
        async with pair_venues(first_sim=sim_a, second_sim=sim_b) as pv:
            sup, task, store = await running_hedge(tmp_path, pv.adapter, params, hedge_id="proll", **PAIR,
                                                   records_poll_s=0.2, reconcile_s=0.3)
            try:
                # 1. entry on both perpetuals, then the rule moves the SECOND leg onto Bybit's future
                rec = await settled(task, fut, "the second leg rolled to the future", timeout=40)
                first, second = sim_a.position("BTCUSDT"), _pos(sim_b, sid)
                assert (second < 0 < first) if side == "short" else (first < 0 < second)
                assert abs(first + second) <= 0.001 and _pos(sim_b, "BTCUSDT") == 0.0  # wholly on the future
                ctx = task.driver.ctx
                assert (ctx.spot.venue, ctx.spot.symbol, ctx.perp.venue, ctx.perp.symbol) == ("binance", PERP, "bybit", fut)
                assert ctx.spot.qty == pytest.approx(first, abs=1e-12) and ctx.perp.qty == pytest.approx(second, abs=1e-12)
                v = rec["venues"]
                assert set(v) == {"binance", "bybit"} and v["binance"]["differences"] == v["bybit"]["differences"] == []
                assert v["binance"]["spot_base"] == {"journal": pytest.approx(first), "venue": pytest.approx(first)}
                assert v["bybit"]["positions"] == {fut: {"journal": pytest.approx(second), "venue": pytest.approx(second)},
                                                   PERP: {"journal": 0.0, "venue": 0.0}}
                # each venue settles funding on its own leg: Binance's on the first leg, by hand; at Bybit the leg
                # holds nothing on the perpetual (the future pays none): nothing booked on the second leg
                f0 = (ctx.spot.funding, ctx.perp.funding)
                sim_a.settle_funding("BTCUSDT", rate_a)
                sim_b.settle_funding("BTCUSDT", rate=sim_b.funding_rate["BTCUSDT"])
                await until(lambda: task.driver.ctx.spot.funding != f0[0], what="Binance's settlement booked")
                paid_a = -first * PRICE * rate_a
                assert task.driver.ctx.spot.funding - f0[0] == pytest.approx(paid_a, rel=1e-9)
                assert task.driver.ctx.perp.funding == f0[1]
                assert not [r for r in sim_b.executions if r["execType"] == "Funding"]
                await settled(task, fut, "funding reconciled per venue", timeout=40)
                # 2. Bybit's funding moves: the second leg comes back to the perpetual
                sim_b.funding_rate["BTCUSDT"] = rate_b_back
                rec = await settled(task, PERP, "the second leg back on the perpetual", timeout=40)
                assert _pos(sim_b, sid) == 0.0 and _pos(sim_b, "BTCUSDT") == pytest.approx(second)
                assert sim_a.position("BTCUSDT") == pytest.approx(first)  # the first leg never moved
                assert rec["venues"]["bybit"]["positions"] == {
                    PERP: {"journal": pytest.approx(second), "venue": pytest.approx(second)},
                    fut: {"journal": 0.0, "venue": 0.0}}
                # orders: the roll's four on Bybit (two per contract), Binance only the first leg's entry
                task.journal.flush()
                fills = task.journal.fills("proll")
                assert fills.groupby("symbol")["venue"].agg(set).to_dict() == {PERP: {"binance", "bybit"},
                                                                               fut: {"bybit"}}
                assert len(fills[fills["venue"] == "binance"]) == len(
                    [t for t in sim_a.trades if t["market"] == "fapi"]) == 1
                q = fills[fills["symbol"] == fut]
                opening, closing = ("sell", "buy") if side == "short" else ("buy", "sell")
                assert list(q["side"]) == [opening, closing] and set(q["leg"]) == {"roll", "perp"}
                venue_q = [r for r in sim_b.executions if r["symbol"] == sid and r["execType"] == "Trade"]
                assert len(venue_q) == 2
                assert q["fee"].sum() == pytest.approx(sum(float(r["execFee"]) for r in venue_q), abs=1e-9)
                assert q["fee"].sum() == pytest.approx(0.00055 * (q["qty"] * q["price"]).sum(), rel=1e-9)
                gf = store.read_table("guard_firings", hedge_id="proll")
                assert list(gf.loc[gf["guard"] == "calendar_roll", "action"]) == ["to_future", "to_perp"]
            finally:
                await stop(task, store)
    asyncio.run(go())
