"""Two LIVE perp legs on two venues run by a real runner process: the first leg a perp on the Binance simulator's
USD-M side, the second a perp on the Bybit simulator's linear side, real ccxt to both (the runner builds them
through tests/support/simfactory_pplive.py). The runner SIGKILLs itself at one of two points:

- ``fill_journaled:spot:entry``: BETWEEN the legs (the first leg filled at Binance and journaled, nothing sent to
  Bybit yet): the restarted runner finds the first leg at Binance (never re-sent), hedges it at Bybit;
- ``transition:MONITORING_POSITIONS``: AFTER both legs: the restarted runner finds both, sends nothing.

Then funding is settled at each venue and booked from each venue's own income records on its leg, and the hedge
is closed on both venues. Simulated behaviours: see tests/support/binance_sim.py and bybit_sim.py (each cites the
venue documentation it follows).
"""

from __future__ import annotations

import pytest

from tests.support.bybit_thread import BybitThread
from tests.support.live_runner import HID, settle
from tests.support.pair_live_env import pair_params
from tests.support.pair_runner import PAIR_START, funding_booked, pair_runner_env
from tests.support.runner_env import journal
from tests.support.sim_thread import PRICE, SimThread
from tests.support.simfactory_pplive import FACTORY

pytestmark = [pytest.mark.timeout(240), pytest.mark.e2e]  # a real runner process

RATE_A, RATE_B = 0.0001, 0.0005  # per 8 h: Binance lower (the pair goes long there), Bybit higher (short)
PERP = "BTC/USDT:USDT"


@pytest.mark.parametrize("kill_at", ["fill_journaled:spot:entry", "transition:MONITORING_POSITIONS"])
def test_live_perp_pair_killed_recovered_funded_per_venue_and_closed(tmp_path, kill_at):
    binance, bybit = SimThread(), BybitThread(rate=RATE_B)
    binance.sim.set_funding_rate("BTCUSDT", RATE_A)
    env, extra = pair_runner_env(tmp_path, binance, bybit, FACTORY, "pp-live", pair_params())
    try:
        p = env.start_runner({**extra, "HEDGE_RUNNER_KILL_AT": kill_at})
        env.client(p).start("pp-live", mode="live", feed="ticker", poll_s=0.2, recovery="resume", hedge_id=HID,
                            confirm_live=True, records_poll_s=0.3, reconcile_s=0.5, **PAIR_START)
        assert p.wait(60) == -9, f"the runner should have SIGKILLed itself at {kill_at}"
        first_orders = [o for o in binance.sim.orders.values() if o.market == "fapi"]
        assert len(first_orders) == 1 and first_orders[0].client_id.startswith("hs")
        if kill_at.startswith("fill_journaled"):
            assert not bybit.sim.orders  # killed between the legs: nothing at Bybit yet
        else:
            assert len(bybit.sim.orders) == 1
        p2 = env.start_runner(extra)
        settle(env, p2, "MONITORING_POSITIONS")
        c = env.client(p2)
        long_a, short_b = binance.sim.position("BTCUSDT"), bybit.sim.positions["BTCUSDT"][0]
        assert long_a > 0 > short_b and abs(long_a + short_b) <= 0.001  # hedged across the two venues
        # nothing re-sent: one first-leg order at Binance, one second-leg order at Bybit
        assert [o.client_id for o in binance.sim.orders.values()] == [first_orders[0].client_id]
        assert len(bybit.sim.orders) == 1 and binance.sim.order_count(first_orders[0].client_id) == 1
        tr = c.history("transitions", hedge_id=HID)
        rec = tr.loc[tr["trigger_name"] == "RECOVERY", "reason"].iloc[0]
        assert "'venues'" in rec and "'binance'" in rec and "'bybit'" in rec and "first perp" in rec
        h = c.hedge(HID)
        assert h["spot_qty"] == pytest.approx(long_a, abs=1e-12) and h["perp_qty"] == pytest.approx(short_b, abs=1e-12)
        # funding at each venue, booked from that venue's own records on its own leg
        binance.sim.settle_funding("BTCUSDT", RATE_A)
        bybit.call(bybit.sim.settle_funding, "BTCUSDT", rate=RATE_B)
        fj = funding_booked(c, HID, lambda fj: set(fj["venue"]) == {"binance", "bybit"}, timeout=30,
                            what="funding booked at both venues")
        a, b = fj[fj["venue"] == "binance"].iloc[0], fj[fj["venue"] == "bybit"].iloc[0]
        assert a["amount"] == pytest.approx(-long_a * PRICE * RATE_A, rel=1e-9)  # the long pays, by hand
        assert b["amount"] == pytest.approx(-short_b * PRICE * RATE_B, rel=1e-9)  # the short receives
        c.stop(HID)
        settle(env, p2, "COMPLETED")
        assert binance.sim.position("BTCUSDT") == 0 and bybit.sim.positions["BTCUSDT"][0] == 0
        fills = c.history("fills", hedge_id=HID)
        assert set(fills.loc[fills["leg"] == "spot", "venue"]) == {"binance"}
        assert set(fills.loc[fills["leg"] == "perp", "venue"]) == {"bybit"}
        assert set(fills["symbol"]) == {PERP}
        assert not [t for t in binance.sim.trades if t["market"] == "spot"]  # no spot anywhere
        orders = c.history("orders", hedge_id=HID)
        assert "rejected" not in set(orders["status"])
        c.shutdown()
        assert p2.wait(60) == 0
        venue_orders = [o.client_id for o in binance.sim.orders.values()] + \
            [o.link_id for o in bybit.sim.orders.values()]
        assert set(venue_orders) <= set(journal(env, "orders", HID)["client_order_id"])  # journaled before sent
    finally:
        env.cleanup()
        binance.close()
        bybit.close()
