"""The calendar roll of a LIVE two-venue hedge in a real runner process, real ccxt to two simulators: spot on the
Bybit simulator, perp on the Binance USD-M simulator listing a quarterly 90 days out (``BinanceSim.list_quarterly``:
exchangeInfo ``contractType`` CURRENT_QUARTER, symbol ``BTCUSDT_YYMMDD``; docs/calendar-roll.md). The runner builds
the routed adapter through tests/support/simfactory_xlive.py.

1. perp -> quarterly (basis 42,000 / 40,000 over 90 days = 20.28 %/yr against funding 0.01 %/8 h = 10.95 %/yr),
   SIGKILLed after the quarterly's open FILLED and was journaled (Binance holds the leg on both contracts); the
   restarted runner reads both contracts at recovery, closes the perpetual, and the leg is on the quarterly;
2. the way back (funding 0.05 %/8 h = 54.75 %/yr), a new runner SIGKILLed at the quarterly close's INTENT (the
   perpetual reopened, the close journaled, never sent); the next runner finds it absent at Binance
   (``never_sent``, not re-sent), closes the quarterly, and the leg is back on the perpetual.

After each restart the continuous reconciliation is clean per venue (Bybit: the spot base; Binance: the position
on each contract, journal beside venue); at the end every venue order on each venue was journaled before it was
sent and never twice, every execution journaled with the venue's commission, and no order or derivative position
exists on the spot venue.
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

HID = "xroll1"
SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"
LOT = 0.001  # Binance BTCUSDT stepSize


def _env(tmp: Any, binance: SimThread, bybit: BybitThread) -> tuple[Any, dict[str, str]]:
    """The parameter set (roll enabled) promoted to live; the factory reaching both simulators."""
    from tests.support.live_runner import two_venue_env

    return two_venue_env(tmp, binance, bybit, days=1, export=ROLL_PARAMS)


def _quarterly(binance: SimThread) -> tuple[str, str]:
    """Binance lists BTCUSDT_YYMMDD 90 days out (08:00 UTC) at 42,000; the perpetual funds 0.01 %/8 h.
    Returns (venue id, ccxt symbol)."""
    sim = binance.sim
    delivery = delivery_ms(sim.now_ms())
    sid = sim.list_quarterly("BTC", delivery, 42_000.0)
    sim.set_funding_rate("BTCUSDT", 0.0001)
    return sid, dated_symbol(PERP, delivery)


def _start(c: Any) -> None:
    start_live(c, "carry-test", HID, venue="bybit", perp_venue="binance")


def _settled_on(env: Any, p: Any, contract: str) -> dict:
    """The hedge monitoring with its leg on ``contract``, nothing working, no roll under way, then a NEW
    reconciliation pass with no difference on either venue (returned)."""
    h = settled_on(env, p, HID, contract)
    venues = h["reconcile"]["venues"]
    assert set(venues) == {"bybit", "binance"}
    assert venues["bybit"]["differences"] == venues["binance"]["differences"] == []
    return h


def _venue_checks(env: Any, binance: SimThread, bybit: BybitThread, sid: str) -> None:
    orders = journal(env, "orders", HID)
    fills = journal(env, "fills", HID)
    coids = set(orders["client_order_id"])
    venue_orders = list(binance.sim.orders.values())
    for o in venue_orders:  # Binance: every order journaled before it was sent, every execution journaled
        assert o.client_id in coids, f"binance order {o.client_id} on {o.symbol} was not journaled"
        booked = fills.loc[fills["client_order_id"] == o.client_id, "qty"].sum()
        assert booked == pytest.approx(o.executed, abs=1e-12), (o.client_id, o.symbol, booked, o.executed)
    assert all(o.market == "fapi" for o in venue_orders)  # nothing on Binance spot: the spot leg is on Bybit
    assert len({o.client_id for o in venue_orders}) == len(venue_orders)  # never two orders for one id
    for o in bybit.sim.orders.values():  # Bybit: the spot leg only
        assert o.link_id in coids
    assert not any(p[0] for p in bybit.sim.positions.values())
    # every Binance execution journaled once, with the venue's commission (USDT)
    perp_fills = fills[fills["venue"] == "binance"]
    assert len(perp_fills) == len(binance.sim.trades) == len(set(perp_fills["trade_id"]))
    assert perp_fills["fee"].sum() == pytest.approx(sum(float(t["commission"]) for t in binance.sim.trades), abs=1e-9)
    q = perp_fills[perp_fills["symbol"].str.endswith(sid.split("_")[1])]
    assert len(q) == len([t for t in binance.sim.trades if t["symbol"] == sid]) >= 2


def test_a_two_venue_live_hedge_rolls_perp_quarterly_perp_through_two_kills(tmp_path):
    binance, bybit = SimThread(spot_fee_in_received=False), BybitThread()
    env = None
    try:
        sid, qtr = _quarterly(binance)
        env, extra = _env(tmp_path, binance, bybit)
        # 1. perp -> quarterly, killed after the quarterly's open filled (the perpetual still short)
        p = env.start_runner({**extra, "HEDGE_RUNNER_KILL_AT": "fill_journaled:roll:roll_open"})
        _start(env.client(p))
        assert p.wait(90) == -9, f"the runner should have SIGKILLed itself in the roll: {env.last_log()}"
        q_pos, p_pos = binance.sim.position(sid), binance.sim.position("BTCUSDT")
        assert q_pos < 0 and p_pos < 0, (q_pos, p_pos)  # the leg held twice at Binance, as the kill point says
        roll_rows = journal(env, "orders", HID).query("leg == 'roll'")
        assert list(roll_rows["symbol"]) == [qtr] and not roll_rows["reduce_only"].any()  # the open only
        p2 = env.start_runner(extra)
        h = _settled_on(env, p2, qtr)
        assert h["leg_on_future"] is True
        assert binance.sim.position("BTCUSDT") == 0.0 and binance.sim.position(sid) == pytest.approx(q_pos)
        pos = h["reconcile"]["venues"]["binance"]["positions"]
        assert pos[qtr]["venue"] == pytest.approx(q_pos) and pos[qtr]["journal"] == pytest.approx(q_pos)
        assert pos[PERP] == {"journal": 0.0, "venue": 0.0}
        btc = bybit.sim.coins["BTC"]
        assert h["reconcile"]["venues"]["bybit"]["spot_base"]["venue"] == pytest.approx(btc)
        assert abs(btc + q_pos) <= LOT  # hedged across the two venues
        tr = journal(env, "transitions", HID)
        rec = tr[tr["trigger_name"] == "RECOVERY"]["reason"].iloc[-1]
        assert qtr in rec and PERP in rec and "'bybit'" in rec and "'binance'" in rec  # both contracts, both venues
        # 2. the way back: funding 0.05 %/8 h; a new runner looks at the rule at once and is killed at the
        # quarterly close's intent (the perpetual reopened, the close never sent)
        binance.sim.set_funding_rate("BTCUSDT", 0.0005)
        code = restart_killed_at(env, extra, p2, "intent_journaled:perp:roll_close")
        assert code == -9, f"the runner should have SIGKILLed itself at the close's intent: {env.last_log()}"
        assert binance.sim.position(sid) < 0 and binance.sim.position("BTCUSDT") < 0
        n_qtr_orders = len([o for o in binance.sim.orders.values() if o.symbol == sid])
        p4 = env.start_runner(extra)
        h = _settled_on(env, p4, PERP)
        assert binance.sim.position(sid) == 0.0 and binance.sim.position("BTCUSDT") < 0
        assert abs(bybit.sim.coins["BTC"] + binance.sim.position("BTCUSDT")) <= LOT
        pos = h["reconcile"]["venues"]["binance"]["positions"]
        assert pos[qtr] == {"journal": 0.0, "venue": 0.0}
        orders = journal(env, "orders", HID)
        assert "never_sent" in set(orders["status"])  # the killed close: found absent, never re-sent blindly
        assert len([o for o in binance.sim.orders.values() if o.symbol == sid]) == n_qtr_orders + 1  # one close
        g = journal(env, "guard_firings", HID)
        assert list(g.loc[g["guard"] == "calendar_roll", "action"]) == ["to_future", "to_perp"]
        pause_and_stop(env, p4, HID)
        _venue_checks(env, binance, bybit, sid)
    finally:
        if env is not None:
            env.cleanup()
        binance.close()
        bybit.close()
