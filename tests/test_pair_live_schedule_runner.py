"""A PAPER perp pair on live BARS in a real runner process, SIGKILLed and restarted: the first leg on the Binance
simulator's USD-M side settling every 4 h (listed by "Get Funding Rate Info", ``/fapi/v1/fundingInfo``, with
``fundingIntervalHours`` 4), the second on the Bybit simulator's linear side at its standard 8 h; each venue's public
market data through real ccxt (tests/support/simfactory_pppaper.py), the runner's two paper venues each fed their
own venue's bars and settlements (``PerpPairPaper(by_venue=True)``).

The runner SIGKILLs itself while it reads the 24 h of published bars: between the legs (``fill_journaled:spot:entry``:
the first leg filled on the Binance paper venue and journaled, nothing on the Bybit one) or once both are open
(``transition:MONITORING_POSITIONS``). The restarted runner's bars feed starts over from the hedge's start: each paper
venue resumes after the last event its state file holds (before this, the first re-fed bar older than the venue's
clock failed the hedge task), keeps its position, and settles each of its OWN venue's settlements once (never one
it settled before the kill, never at the other venue's times); the first leg is never re-sent; each leg's funding
is the hand sum ``-qty x mark x rate`` over its own venue's settlements from its entry on. Then both legs are
closed.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.support.bybit_thread import BybitThread
from tests.support.live_runner import HID, settle
from tests.support.pair_bars import grid, ms, publish_hour
from tests.support.pair_live_env import RATE_A, RATE_B, pair_params
from tests.support.pair_runner import PAIR_START, funding_booked, pair_runner_env
from tests.support.runner_env import paper_exchange, wait_for
from tests.support.sim_thread import SimThread
from tests.support.simfactory_pppaper import FACTORY

pytestmark = [pytest.mark.timeout(240), pytest.mark.e2e]  # a real runner process

H = pd.Timedelta(hours=1)
PERP = "BTC/USDT:USDT"
A_CLOSE, A_MARK, B_CLOSE, B_MARK = 40_010.0, 40_012.0, 40_090.0, 40_093.0  # each venue's own kline closes


def publish(binance: SimThread, bybit: BybitThread, hours: int = 24):
    """Both venues' closed 1h perp and mark klines of the last ``hours`` hours (each venue its own prices), Binance
    settling RATE_A at each of its 4 h times in the window, Bybit RATE_B at each of its 8 h times.
    Returns (first label, last instant, Binance's settlement times, Bybit's)."""
    now = pd.Timestamp.now(tz="UTC").floor("1h")
    labels = [now - k * H for k in range(hours, 0, -1)]
    g4, g8 = grid(labels[0], now, 4), grid(labels[0], now, 8)

    def bybit_rows() -> None:
        for t in labels:
            publish_hour(bybit.sim, "bybit", t, B_CLOSE, B_MARK)
        for t in g8:
            bybit.sim.settle_funding("BTCUSDT", rate=RATE_B, ts_ms=ms(t))
    for t in labels:
        publish_hour(binance.sim, "binance", t, A_CLOSE, A_MARK)
    for t in g4:
        binance.sim.settle_funding("BTCUSDT", RATE_A, ts_ms=ms(t))
    bybit.call(bybit_rows)
    return labels[0], now, g4, g8


@pytest.mark.parametrize("kill_at", ["fill_journaled:spot:entry", "transition:MONITORING_POSITIONS"])
def test_paper_perp_pair_on_live_bars_killed_restarted_each_venue_settling_its_own_times_once(tmp_path, kill_at):
    binance, bybit = SimThread(), BybitThread(rate=RATE_B)
    binance.sim.funding_interval_hours["BTCUSDT"] = 4
    # ``pp-paper``: first leg binance, second bybit, entering at once, no exits, promoted to paper
    env, extra = pair_runner_env(tmp_path, binance, bybit, FACTORY, "pp-paper", pair_params(), live=False)
    first_label, last, g4, g8 = publish(binance, bybit)
    try:
        p = env.start_runner({**extra, "HEDGE_RUNNER_KILL_AT": kill_at})
        env.client(p).start("pp-paper", mode="paper", feed="bars", poll_s=0.2, start=str(first_label),
                            recovery="resume", hedge_id=HID, **PAIR_START,
                            max_bar_age_bars=48,  # the 24 h of published bars are fresh enough to trade on
                            balances={"spot": {"USDT": 10_000.0}, "perp": {"USDT": 10_000.0}})
        assert p.wait(60) == -9, f"the runner should have SIGKILLed itself at {kill_at}"
        p2 = env.start_runner(extra)
        c = env.client(p2)
        settle(env, p2, "MONITORING_POSITIONS")

        def venues_done():  # both paper venues (their state files) settled every settlement of their venue
            try:
                ea, eb = paper_exchange(env, f"{HID}@binance"), paper_exchange(env, f"{HID}@bybit")
            except (OSError, ValueError):  # a state file being replaced: read it again
                return None
            done = len(ea.core.funding_history) >= len(g4) and len(eb.core.funding_history) >= len(g8)
            return (ea, eb) if done else None
        ea, eb = wait_for(venues_done, timeout=60, what="each paper venue settled its venue's settlements")
        # each paper venue: every settlement of ITS venue once across the kill, at its venue's interval, none of
        # the other venue's times
        assert [(f.ts, f.rate, f.interval_hours) for f in ea.core.funding_history] == [(t, RATE_A, 4.0) for t in g4]
        assert [(f.ts, f.rate, f.interval_hours) for f in eb.core.funding_history] == [(t, RATE_B, 8.0) for t in g8]
        # each leg entered at a bar instant of the 24 h (the paper venue's clock); its funding from then on
        ta = min(f.ts for f in ea.core.fills if f.symbol == PERP)
        tb = min(f.ts for f in eb.core.fills if f.symbol == PERP)
        want = {("binance", t) for t in g4 if t >= ta} | {("bybit", t) for t in g8 if t >= tb}
        n4, n8 = len([t for t in g4 if t >= ta]), len([t for t in g8 if t >= tb])
        assert n4 >= 2 and n8 >= 1, (ta, tb)  # both venues settled while the pair was open (after the restart)
        fj = funding_booked(c, HID, lambda fj: {(v, pd.Timestamp(t)) for v, t in zip(fj["venue"], fj["ts"])} == want,
                            timeout=60, what="each venue's own settlements booked on its leg")
        assert len(fj) == len(want)  # none booked twice across the restart
        h = c.hedge(HID)
        qa, qb = h["spot_qty"], h["perp_qty"]
        assert qa > 0 > qb  # long Binance (the lower funding APR at its 4 h), short Bybit
        a, b = fj[fj["venue"] == "binance"], fj[fj["venue"] == "bybit"]
        assert list(a["amount"]) == pytest.approx([-qa * A_MARK * RATE_A] * n4, rel=1e-9)  # the long pays
        assert list(b["amount"]) == pytest.approx([-qb * B_MARK * RATE_B] * n8, rel=1e-9)  # the short receives
        c.stop(HID)
        settle(env, p2, "COMPLETED")
        fills = c.history("fills", hedge_id=HID)
        assert set(fills.loc[fills["leg"] == "spot", "venue"]) == {"binance"}
        assert set(fills.loc[fills["leg"] == "perp", "venue"]) == {"bybit"}
        assert len(fills.loc[fills["leg"] == "spot"]) == 2 and len(fills.loc[fills["leg"] == "perp"]) == 2  # in, out
        c.shutdown()
        assert p2.wait(60) == 0
        ea, eb = paper_exchange(env, f"{HID}@binance"), paper_exchange(env, f"{HID}@bybit")
        assert len(ea.core.funding_history) == len(g4) and len(eb.core.funding_history) == len(g8)
    finally:
        env.cleanup()
        binance.close()
        bybit.close()
