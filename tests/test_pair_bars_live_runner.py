"""Two LIVE perp legs on live BARS (feed ``bars``) run by a real runner process: the first leg a perp on the Binance
simulator's USD-M side, the second a perp on the Bybit simulator's linear side, real ccxt to both (the runner builds
them through tests/support/simfactory_pplive.py). Each venue's perp and mark klines and its funding history are
read through that venue's own adapter (``exchange.pair_feed.PairBarsFeed``; the simulators cite Binance USD-M
"Kline/Candlestick Data", "Mark Price Kline/Candlestick Data", "Get Funding Rate History" and Bybit v5 "Get Kline",
"Get Mark Price Kline", "Get Funding Rate History"). The runner SIGKILLs itself:

- ``fill_journaled:spot:entry``: BETWEEN the legs (the first leg filled at Binance and journaled, nothing sent to
  Bybit yet): the restarted runner, its bars feed starting over, finds the first leg at Binance (never re-sent)
  and hedges it at Bybit;
- ``transition:MONITORING_POSITIONS``: AFTER both legs: the restarted runner finds both and sends nothing.

Then each venue settles funding, booked from that venue's own income records on its own leg, and the hedge is
closed on both venues. Each leg is priced at its own venue's bar close (the first at Binance's, the second at
Bybit's), across the restart.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.support.bybit_thread import BybitThread
from tests.support.live_runner import HID, settle
from tests.support.pair_bars import ms, publish_hour
from tests.support.pair_live_env import RATE_A, RATE_B, pair_params
from tests.support.pair_runner import PAIR_START, funding_booked, pair_runner_env
from tests.support.runner_env import journal, wait_for
from tests.support.sim_thread import PRICE, SimThread
from tests.support.simfactory_pplive import FACTORY

pytestmark = [pytest.mark.timeout(240), pytest.mark.e2e]  # a real runner process

PERP = "BTC/USDT:USDT"
A_CLOSE, A_MARK, B_CLOSE, B_MARK = 40_010.0, 40_012.0, 40_090.0, 40_093.0  # each venue's own kline closes


def publish(binance: SimThread, bybit: BybitThread, hours: int = 4) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Both venues' closed 1h perp and mark klines of the last ``hours`` hours (each venue its own prices) and one
    settlement on each venue 2 h ago, before any position (Binance RATE_A, Bybit RATE_B: the rates the pair enters
    on). Returns (first label, settlement time)."""
    now = pd.Timestamp.now(tz="UTC").floor("1h")
    labels = [now - pd.Timedelta(hours=k) for k in range(hours, 0, -1)]

    def bybit_rows() -> None:
        for t in labels:
            publish_hour(bybit.sim, "bybit", t, B_CLOSE, B_MARK)
    for t in labels:
        publish_hour(binance.sim, "binance", t, A_CLOSE, A_MARK)
    bybit.call(bybit_rows)
    settled = now - pd.Timedelta(hours=2)
    binance.sim.settle_funding("BTCUSDT", RATE_A, ts_ms=ms(settled))
    bybit.call(bybit.sim.settle_funding, "BTCUSDT", rate=RATE_B, ts_ms=ms(settled))
    return labels[0], settled


@pytest.mark.parametrize("kill_at", ["fill_journaled:spot:entry", "transition:MONITORING_POSITIONS"])
def test_live_perp_pair_on_bars_killed_recovered_funded_per_venue_and_closed(tmp_path, kill_at):
    binance, bybit = SimThread(), BybitThread(rate=RATE_B)
    binance.sim.set_funding_rate("BTCUSDT", RATE_A)
    env, extra = pair_runner_env(tmp_path, binance, bybit, FACTORY, "pp-live", pair_params())
    first_label, _settled = publish(binance, bybit)
    try:
        p = env.start_runner({**extra, "HEDGE_RUNNER_KILL_AT": kill_at})
        env.client(p).start("pp-live", mode="live", feed="bars", poll_s=0.2, start=str(first_label),
                            recovery="resume", hedge_id=HID, confirm_live=True, records_poll_s=0.3, reconcile_s=0.5,
                            **PAIR_START)
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
        # entered on each venue's own settled rate read from its funding history (APR = rate x 3 x 365)
        entry = tr.loc[tr["trigger_name"] == "ENTRY_SIGNAL", "reason"].iloc[0]
        assert entry.startswith("long binance perp, short bybit perp")
        assert f"binance {RATE_A * 1095:.4f}" in entry and f"bybit {RATE_B * 1095:.4f}" in entry
        h = c.hedge(HID)
        assert h["spot_qty"] == pytest.approx(long_a, abs=1e-12) and h["perp_qty"] == pytest.approx(short_b, abs=1e-12)
        # the restarted feed priced each leg at its own venue's bar close (Binance first, Bybit second)
        wait_for(lambda: c.hedge(HID).get("spot_price") == pytest.approx(A_CLOSE)
                 and c.hedge(HID).get("perp_price") == pytest.approx(B_CLOSE), timeout=30,
                 what="each leg priced at its own venue's close")
        # funding at each venue, booked from that venue's own records on its own leg
        binance.sim.settle_funding("BTCUSDT", RATE_A)
        bybit.call(bybit.sim.settle_funding, "BTCUSDT", rate=RATE_B)
        fj = funding_booked(c, HID, lambda fj: set(fj["venue"]) == {"binance", "bybit"}, timeout=30,
                            what="funding booked at both venues")
        assert len(fj) == 2  # the settlements before the entry (no position) are not the hedge's
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
