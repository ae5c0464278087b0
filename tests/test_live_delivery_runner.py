"""Delivery at expiry of a LIVE hedge's quarterly while its runner is down, in real runner processes, real ccxt to
two simulators (spot on the Bybit simulator, perp on the Binance USD-M simulator; docs/calendar-roll.md
"Delivery at expiry"):

1. the runner moves the short leg onto Binance's quarterly (basis 42,000 / 40,000 over 90 days = 20.28 %/yr
   against funding 0.01 %/8 h = 10.95 %/yr) and is SIGKILLed with the leg on it, well before the exit window;
2. while it is down the venue delivers the quarterly (``BinanceSim.deliver``: the average index (40,100 + 40,300)
   / 2 = 40,200, a ``DELIVERED_SETTELMENT`` income row, the contract delisted; the delivery is brought forward to
   now, the simulator's clock being the wall clock) and the perpetual's funding rises to 0.05 %/8 h;
3. the restarted runner recovers the leg on the quarterly from its journal, then books the delivery from
   Binance's records (once: the whole short at 40,200, fee 0, realised = the venue's income), moves the leg to the
   perpetual and sells the hedge there; the reconciliation is clean per venue and per contract, no order was sent
   to the delisted contract, every Binance order journaled before it was sent and never twice.
"""

from __future__ import annotations

import pytest

from tests.support.bybit_thread import BybitThread
from tests.support.roll_runner import ROLL_PARAMS, dated_symbol, delivery_ms, settled_on, start_live
from tests.support.runner_env import journal
from tests.support.sim_thread import SimThread

pytestmark = [pytest.mark.timeout(300), pytest.mark.e2e]  # real runner processes

HID = "xdlv1"
PERP = "BTC/USDT:USDT"
LOT = 0.001  # Binance BTCUSDT stepSize



def test_a_quarterly_delivered_while_the_runner_is_down_is_booked_and_rehedged_after_the_restart(tmp_path):
    from tests.support.live_runner import two_venue_env

    binance, bybit = SimThread(spot_fee_in_received=False), BybitThread()
    env = None
    try:
        sim = binance.sim
        delivery = delivery_ms(sim.now_ms())
        sid = sim.list_quarterly("BTC", delivery, 42_000.0)
        sim.set_funding_rate("BTCUSDT", 0.0001)
        qtr = dated_symbol(PERP, delivery)
        env, extra = two_venue_env(tmp_path, binance, bybit, days=1, export=ROLL_PARAMS)
        p = env.start_runner(extra)
        start_live(env.client(p), "carry-test", HID, venue="bybit", perp_venue="binance")
        settled_on(env, p, HID, qtr)
        short = sim.position(sid)
        assert short < 0 and sim.position("BTCUSDT") == 0.0
        p.kill()  # SIGKILL: the runner is down over the delivery
        p.wait(30)
        sim.set_funding_rate("BTCUSDT", 0.0005)
        assert sim.deliver(sid, [40_100.0, 40_300.0], at_ms=sim.now_ms()) == pytest.approx(40_200.0)
        assert sim.position(sid) == 0.0
        p2 = env.start_runner(extra)
        h = settled_on(env, p2, HID, PERP)
        assert sim.position(sid) == 0.0 and sim.position("BTCUSDT") == pytest.approx(short)
        pos = h["reconcile"]["venues"]["binance"]["positions"]
        assert pos[qtr] == {"journal": 0.0, "venue": 0.0}
        assert pos[PERP]["venue"] == pytest.approx(short) and pos[PERP]["journal"] == pytest.approx(short)
        assert abs(bybit.sim.coins["BTC"] + short) <= LOT  # hedged across the two venues
        assert any("delivered at expiry" in a["message"] for a in h["alerts"])  # the critical alert
        p2.terminate()
        p2.wait(60)
        fills = journal(env, "fills", HID)
        dl = fills[fills["client_order_id"].astype(str).str.startswith("dlv-")]
        assert len(dl) == 1 and dl["symbol"].iloc[0] == qtr and dl["leg"].iloc[0] == "perp"
        assert (dl["side"].iloc[0], dl["qty"].iloc[0]) == ("buy", pytest.approx(-short))
        assert dl["price"].iloc[0] == pytest.approx(40_200.0) and dl["fee"].iloc[0] == 0.0
        [row] = [r for r in sim.income if r["incomeType"] == "DELIVERED_SETTELMENT"]
        assert float(row["income"]) == pytest.approx(short * (40_200.0 - 42_000.0))  # +1,800 per BTC short
        assert not [a for a in sim.answers if a[2] == -1121]  # never an order on the delisted contract
        orders = journal(env, "orders", HID)
        coids = set(orders["client_order_id"])
        venue_orders = list(sim.orders.values())
        assert all(o.client_id in coids for o in venue_orders)
        assert len({o.client_id for o in venue_orders}) == len(venue_orders)
        assert not [o for o in venue_orders if o.symbol == sid and o.client_id not in
                    set(fills.loc[fills["symbol"] == qtr, "client_order_id"])]
        tr = journal(env, "transitions", HID)
        assert "RECOVERY" in set(tr["trigger_name"])
    finally:
        if env is not None:
            env.cleanup()
        binance.close()
        bybit.close()
