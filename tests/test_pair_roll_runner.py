"""The calendar roll of a LIVE hedge with TWO perp legs in a real runner process, real ccxt to two simulators: the
first leg a perp on the Binance simulator's USD-M side, the second a perp on the Bybit v5 simulator's linear side,
which lists a USDT-settled future 90 days out at 42,000 (``BybitSim.list_future``: "Get Instruments Info"
``contractType`` LinearFutures, ``deliveryTime``; docs/calendar-roll.md "Two perp legs"). The runner builds the pair
through tests/support/simfactory_pplive.py.

Funding per 8 h: Binance 0.001 %, Bybit 0.01 % (10.95 %/yr): the pair is long Binance, short Bybit; the future's
basis against Bybit's perpetual, 42,000 / 40,000 - 1 = 5 % over 90 days = 20.28 %/yr, pays the short more.

1. perp -> future, SIGKILLed after the future's open FILLED and was journaled (Bybit holds the second leg on both
   contracts); the restarted runner reads both contracts at recovery, closes the perpetual, the second leg is on the
   future, the first untouched at Binance;
2. Bybit's funding rises to 0.05 %/8 h (54.75 %/yr): a new runner SIGKILLed at the future close's INTENT (the
   perpetual reopened, the close journaled, never sent); the next runner finds it absent at Bybit (``never_sent``,
   not re-sent), closes the future, the second leg is back on the perpetual.

After each restart the continuous reconciliation is clean per venue (Binance: the first leg's position; Bybit: the
second leg's position on each contract, journal beside venue). At the end: every order at each venue journaled
before it was sent and never twice, every Bybit execution journaled once with its ``execFee``, no funding execution
on the future, one order at Binance (the first leg's entry).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.bybit_thread import BybitThread
from tests.support.live_runner import HID
from tests.support.pair_live_env import pair_params
from tests.support.pair_runner import pair_runner_env
from tests.support.roll_runner import (ROLL_PARAMS, dated_symbol, delivery_ms, pause_and_stop, restart_killed_at,
                                       settled_on, start_live)
from tests.support.runner_env import journal
from tests.support.sim_thread import SimThread
from tests.support.simfactory_pplive import FACTORY

pytestmark = [pytest.mark.timeout(300), pytest.mark.e2e]  # real runner processes

PERP = "BTC/USDT:USDT"
RATE_A, RATE_B = 0.00001, 0.0001  # per 8 h: Binance lower (long there), Bybit higher (short there)
LOT = 0.001  # Bybit BTCUSDT qtyStep


def _future(bybit: BybitThread) -> tuple[str, str]:
    def setup() -> tuple[str, str]:
        sim = bybit.sim
        delivery = delivery_ms(sim.now_ms())
        sid = sim.list_future("BTC", delivery, 42_000.0)
        return sid, dated_symbol(PERP, delivery)

    return bybit.call(setup)


def _pos(bybit: BybitThread, sid: str) -> float:
    return bybit.call(lambda: bybit.sim.positions.get(sid, [0.0, 0.0])[0])


def _start(c: Any) -> None:
    start_live(c, "pp-roll", HID, venue="binance", perp_venue="bybit", legs="perp_perp")


def _settled_on(env: Any, p: Any, contract: str) -> dict:
    """The second leg on ``contract``, nothing working, no roll under way, then a NEW clean reconciliation pass."""
    h = settled_on(env, p, HID, contract, leg="the second leg")
    venues = h["reconcile"]["venues"]
    assert set(venues) == {"binance", "bybit"}
    assert venues["binance"]["differences"] == venues["bybit"]["differences"] == []
    return h


def _venue_checks(env: Any, binance: SimThread, bybit: BybitThread, sid: str, fut: str) -> None:
    orders = journal(env, "orders", HID)
    fills = journal(env, "fills", HID)
    coids = set(orders["client_order_id"])
    venue_orders = bybit.call(lambda: list(bybit.sim.orders.values()))
    for o in venue_orders:  # Bybit: every order journaled before it was sent, every execution journaled
        assert o.link_id in coids, f"bybit order {o.link_id} on {o.symbol} was not journaled"
        booked = fills.loc[fills["client_order_id"] == o.link_id, "qty"].sum()
        assert booked == pytest.approx(o.cum_qty, abs=1e-12), (o.link_id, o.symbol, booked, o.cum_qty)
    assert all(o.category == "linear" for o in venue_orders)
    assert len({o.link_id for o in venue_orders}) == len(venue_orders)  # never two orders for one id
    first = list(binance.sim.orders.values())  # Binance: the first leg's entry only, never rolled
    assert len(first) == 1 and first[0].market == "fapi" and first[0].client_id in coids
    execs = bybit.call(lambda: [dict(r) for r in bybit.sim.executions if r["execType"] == "Trade"])
    second = fills[fills["venue"] == "bybit"]
    assert len(second) == len(execs) == len(set(second["trade_id"]))  # every Bybit execution journaled once
    assert second["fee"].sum() == pytest.approx(sum(float(r["execFee"]) for r in execs), abs=1e-9)
    q = second[second["symbol"] == fut]
    assert len(q) == len([r for r in execs if r["symbol"] == sid]) >= 2
    assert q["fee"].sum() == pytest.approx(0.00055 * (q["qty"] * q["price"]).sum(), rel=1e-9)  # taker, by hand
    assert not bybit.call(lambda: [r for r in bybit.sim.executions if r["symbol"] == sid and r["execType"] == "Funding"])


def test_the_second_perp_leg_rolls_perp_future_perp_through_two_kills(tmp_path):
    binance, bybit = SimThread(), BybitThread(rate=RATE_B)
    binance.sim.set_funding_rate("BTCUSDT", RATE_A)
    env = None
    try:
        sid, fut = _future(bybit)
        # ``pp-roll``: two perp legs (binance first, bybit second), entering at once, roll enabled, promoted to live
        env, extra = pair_runner_env(tmp_path, binance, bybit, FACTORY, "pp-roll", {**pair_params(), **ROLL_PARAMS},
                                     days=1)
        # 1. perp -> future, killed after the future's open filled (the perpetual still short)
        p = env.start_runner({**extra, "HEDGE_RUNNER_KILL_AT": "fill_journaled:roll:roll_open"})
        _start(env.client(p))
        assert p.wait(90) == -9, f"the runner should have SIGKILLed itself in the roll: {env.last_log()}"
        f_pos, p_pos = _pos(bybit, sid), _pos(bybit, "BTCUSDT")
        assert f_pos < 0 and p_pos < 0, (f_pos, p_pos)  # the second leg held twice at Bybit
        long_a = binance.sim.position("BTCUSDT")
        assert long_a > 0 and abs(long_a + p_pos) <= LOT
        roll_rows = journal(env, "orders", HID).query("leg == 'roll'")
        assert list(roll_rows["symbol"]) == [fut] and not roll_rows["reduce_only"].any()  # the open only
        p2 = env.start_runner(extra)
        h = _settled_on(env, p2, fut)
        assert h["leg_on_future"] is True
        assert _pos(bybit, "BTCUSDT") == 0.0 and _pos(bybit, sid) == pytest.approx(f_pos)
        assert binance.sim.position("BTCUSDT") == pytest.approx(long_a)  # the first leg untouched
        v = h["reconcile"]["venues"]
        assert v["bybit"]["positions"] == {fut: {"journal": pytest.approx(f_pos), "venue": pytest.approx(f_pos)},
                                           PERP: {"journal": 0.0, "venue": 0.0}}
        assert v["binance"]["spot_base"] == {"journal": pytest.approx(long_a), "venue": pytest.approx(long_a)}
        assert h["spot_qty"] == pytest.approx(long_a, abs=1e-12) and h["perp_qty"] == pytest.approx(f_pos, abs=1e-12)
        tr = journal(env, "transitions", HID)
        rec = tr[tr["trigger_name"] == "RECOVERY"]["reason"].iloc[-1]
        assert fut in rec and PERP in rec and "'bybit'" in rec and "'binance'" in rec  # both contracts, both venues
        # 2. the way back: Bybit's funding 0.05 %/8 h; a new runner looks at the rule at once and is killed at the
        # future close's intent (the perpetual reopened, the close never sent)
        bybit.call(lambda: bybit.sim.funding_rate.__setitem__("BTCUSDT", 0.0005))
        code = restart_killed_at(env, extra, p2, "intent_journaled:perp:roll_close")
        assert code == -9, f"the runner should have SIGKILLed itself at the close's intent: {env.last_log()}"
        assert _pos(bybit, sid) < 0 and _pos(bybit, "BTCUSDT") < 0
        n_fut_orders = bybit.call(lambda: len([o for o in bybit.sim.orders.values() if o.symbol == sid]))
        p4 = env.start_runner(extra)
        h = _settled_on(env, p4, PERP)
        assert _pos(bybit, sid) == 0.0 and abs(binance.sim.position("BTCUSDT") + _pos(bybit, "BTCUSDT")) <= LOT
        assert binance.sim.position("BTCUSDT") == pytest.approx(long_a)
        assert h["reconcile"]["venues"]["bybit"]["positions"][fut] == {"journal": 0.0, "venue": 0.0}
        orders = journal(env, "orders", HID)
        assert "never_sent" in set(orders["status"])  # the killed close: found absent, never re-sent blindly
        assert bybit.call(lambda: len([o for o in bybit.sim.orders.values() if o.symbol == sid])) == n_fut_orders + 1
        g = journal(env, "guard_firings", HID)
        assert list(g.loc[g["guard"] == "calendar_roll", "action"]) == ["to_future", "to_perp"]
        pause_and_stop(env, p4, HID)
        _venue_checks(env, binance, bybit, sid, fut)
    finally:
        if env is not None:
            env.cleanup()
        binance.close()
        bybit.close()
