"""The calendar roll of a LIVE hedge whose perp leg is on BYBIT, in a real runner process, real ccxt to two
simulators: spot on the Binance simulator, perp on the Bybit v5 simulator listing a USDT-settled linear future 90
days out (``BybitSim.list_future``: "Get Instruments Info" ``contractType`` LinearFutures, symbol ``BTCUSDT-DDMMMYY``,
``deliveryTime``; docs/calendar-roll.md). The runner builds the routed adapter through tests/support/simfactory_xlive.py.

1. perp -> future (basis 42,000 / 40,000 over 90 days = 20.28 %/yr against funding 0.01 %/8 h = 10.95 %/yr),
   SIGKILLed after the future's open FILLED and was journaled (Bybit holds the leg on both contracts); the restarted
   runner reads both contracts at recovery, closes the perpetual, and the leg is on the future;
2. the way back (funding 0.05 %/8 h = 54.75 %/yr), a new runner SIGKILLed at the future close's INTENT (the
   perpetual reopened, the close journaled, never sent); the next runner finds it absent at Bybit (``never_sent``,
   not re-sent), closes the future, and the leg is back on the perpetual.

After each restart the continuous reconciliation is clean per venue (Binance: the spot base; Bybit: the position on
each contract, journal beside venue); at the end every venue order on each venue was journaled before it was sent
and never twice, every Bybit execution journaled once with the venue's ``execFee``, no funding execution on the
future, and no order on Binance's futures API.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.bybit_thread import BybitThread
from tests.support.roll_runner import (ROLL_PARAMS, dated_symbol, delivery_ms, pause_and_stop, restart_killed_at,
                                       settled_on, start_live)
from tests.support.runner_env import journal
from tests.support.sim_thread import SimThread

pytestmark = [pytest.mark.timeout(300), pytest.mark.e2e]  # real runner processes

HID = "broll1"
SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"
LOT = 0.001  # Bybit BTCUSDT qtyStep


def _env(tmp: Any, binance: SimThread, bybit: BybitThread) -> tuple[Any, dict[str, str]]:
    """The parameter set (roll enabled) promoted to live; the factory reaching both simulators."""
    from tests.support.live_runner import two_venue_env

    return two_venue_env(tmp, binance, bybit, days=1, export=ROLL_PARAMS)


def _future(bybit: BybitThread) -> tuple[str, str]:
    """Bybit lists BTCUSDT-DDMMMYY 90 days out (08:00 UTC) at 42,000; the perpetual funds 0.01 %/8 h.
    Returns (venue id, ccxt symbol)."""
    def setup() -> tuple[str, str]:
        sim = bybit.sim
        delivery = delivery_ms(sim.now_ms())
        sid = sim.list_future("BTC", delivery, 42_000.0)
        sim.funding_rate["BTCUSDT"] = 0.0001
        return sid, dated_symbol(PERP, delivery)

    return bybit.call(setup)


def _pos(bybit: BybitThread, sid: str) -> float:
    return bybit.call(lambda: bybit.sim.positions.get(sid, [0.0, 0.0])[0])


def _start(c: Any) -> None:
    start_live(c, "carry-test", HID, venue="binance", perp_venue="bybit")


def _settled_on(env: Any, p: Any, contract: str) -> dict:
    """The hedge monitoring with its leg on ``contract``, nothing working, no roll under way, then a NEW
    reconciliation pass with no difference on either venue (returned)."""
    h = settled_on(env, p, HID, contract)
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
    assert all(o.category == "linear" for o in venue_orders)  # the spot leg is on Binance
    assert len({o.link_id for o in venue_orders}) == len(venue_orders)  # never two orders for one id
    for o in binance.sim.orders.values():  # Binance: the spot leg only
        assert o.client_id in coids and o.market == "spot"
    # every Bybit Trade execution journaled once, with the venue's execFee (USDT)
    execs = bybit.call(lambda: [dict(r) for r in bybit.sim.executions if r["execType"] == "Trade"])
    perp_fills = fills[fills["venue"] == "bybit"]
    assert len(perp_fills) == len(execs) == len(set(perp_fills["trade_id"]))
    assert perp_fills["fee"].sum() == pytest.approx(sum(float(r["execFee"]) for r in execs), abs=1e-9)
    q = perp_fills[perp_fills["symbol"] == fut]
    assert len(q) == len([r for r in execs if r["symbol"] == sid]) >= 2
    assert not bybit.call(lambda: [r for r in bybit.sim.executions if r["symbol"] == sid and r["execType"] == "Funding"])


def test_a_live_hedge_with_its_perp_leg_on_bybit_rolls_perp_future_perp_through_two_kills(tmp_path):
    binance, bybit = SimThread(spot_fee_in_received=False), BybitThread(rate=0.0001)
    env = None
    try:
        sid, fut = _future(bybit)
        env, extra = _env(tmp_path, binance, bybit)
        # 1. perp -> future, killed after the future's open filled (the perpetual still short)
        p = env.start_runner({**extra, "HEDGE_RUNNER_KILL_AT": "fill_journaled:roll:roll_open"})
        _start(env.client(p))
        assert p.wait(90) == -9, f"the runner should have SIGKILLed itself in the roll: {env.last_log()}"
        f_pos, p_pos = _pos(bybit, sid), _pos(bybit, "BTCUSDT")
        assert f_pos < 0 and p_pos < 0, (f_pos, p_pos)  # the leg held twice at Bybit, as the kill point says
        roll_rows = journal(env, "orders", HID).query("leg == 'roll'")
        assert list(roll_rows["symbol"]) == [fut] and not roll_rows["reduce_only"].any()  # the open only
        p2 = env.start_runner(extra)
        h = _settled_on(env, p2, fut)
        assert h["leg_on_future"] is True
        assert _pos(bybit, "BTCUSDT") == 0.0 and _pos(bybit, sid) == pytest.approx(f_pos)
        pos = h["reconcile"]["venues"]["bybit"]["positions"]
        assert pos[fut]["venue"] == pytest.approx(f_pos) and pos[fut]["journal"] == pytest.approx(f_pos)
        assert pos[PERP] == {"journal": 0.0, "venue": 0.0}
        btc = sum(binance.sim.spot["BTC"])
        assert h["reconcile"]["venues"]["binance"]["spot_base"]["venue"] == pytest.approx(btc)
        assert abs(btc + f_pos) <= LOT  # hedged across the two venues
        tr = journal(env, "transitions", HID)
        rec = tr[tr["trigger_name"] == "RECOVERY"]["reason"].iloc[-1]
        assert fut in rec and PERP in rec and "'bybit'" in rec and "'binance'" in rec  # both contracts, both venues
        # 2. the way back: funding 0.05 %/8 h; a new runner looks at the rule at once and is killed at the
        # future close's intent (the perpetual reopened, the close never sent)
        bybit.call(lambda: bybit.sim.funding_rate.__setitem__("BTCUSDT", 0.0005))
        code = restart_killed_at(env, extra, p2, "intent_journaled:perp:roll_close")
        assert code == -9, f"the runner should have SIGKILLed itself at the close's intent: {env.last_log()}"
        assert _pos(bybit, sid) < 0 and _pos(bybit, "BTCUSDT") < 0
        n_fut_orders = bybit.call(lambda: len([o for o in bybit.sim.orders.values() if o.symbol == sid]))
        p4 = env.start_runner(extra)
        h = _settled_on(env, p4, PERP)
        assert _pos(bybit, sid) == 0.0 and _pos(bybit, "BTCUSDT") < 0
        assert abs(sum(binance.sim.spot["BTC"]) + _pos(bybit, "BTCUSDT")) <= LOT
        pos = h["reconcile"]["venues"]["bybit"]["positions"]
        assert pos[fut] == {"journal": 0.0, "venue": 0.0}
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
