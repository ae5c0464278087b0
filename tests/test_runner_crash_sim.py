"""kill -9 the runner while it trades through REAL ccxt against the local Binance simulator
(tests/support/binance_sim.py, running in this test process so it outlives every runner), restart,
and check on the simulator: no naked leg, no duplicate order, every venue fill in the journal, and
the policy followed. Then grep the database, logs and parameter files for the API key and secret."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from tests.support.live_env import TEST_KEY, TEST_SECRET
from tests.support.live_runner import HID, check_sim, live_env, settle, start_live
from tests.support.runner_env import journal, wait_for
from tests.support.sim_thread import PRICE, SimThread

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def sim(tmp_path):
    s = SimThread()
    yield s
    s.close()


@pytest.mark.parametrize("kill_at,policy", [
    ("intent_journaled:spot:entry", "resume"),
    ("order_sent:spot:entry", "resume"),
    ("fill_journaled:spot:entry", "resume"),
    ("intent_journaled:perp:hedge", "flatten"),
    ("order_sent:perp:hedge", "resume"),
])
def test_live_adapter_kill_and_recover(tmp_path, sim, kill_at, policy):
    env, extra = live_env(tmp_path, sim)
    try:
        p = env.start_runner({**extra, "HEDGE_RUNNER_KILL_AT": kill_at})
        start_live(env.client(p), policy)
        assert p.wait(60) == -9
        p2 = env.start_runner(extra)
        settle(env, p2, "MONITORING_POSITIONS" if policy == "resume" else "COMPLETED")
        check_sim(env, sim.sim, flat=policy == "flatten")
    finally:
        env.cleanup()


def test_live_adapter_kill_mid_close_then_secrets_absent(tmp_path, sim):
    env, extra = live_env(tmp_path, sim)
    try:
        p = env.start_runner({**extra, "HEDGE_RUNNER_KILL_AT": "order_sent:perp:close"})
        c = env.client(p)
        start_live(c, "resume")
        wait_for(lambda: c.hedge(HID).get("state") == "MONITORING_POSITIONS", what="monitoring")
        try:
            c.stop(HID)
        except Exception:  # noqa: BLE001 - the runner dies while answering
            pass
        assert p.wait(60) == -9
        p2 = env.start_runner(extra)
        settle(env, p2, "COMPLETED")
        check_sim(env, sim.sim, flat=True)
        env.client(p2).shutdown()
        assert p2.wait(60) == 0
    finally:
        env.cleanup()
    # secrets: nowhere in the database, the logs, the parameter files or the paper states
    files = [f for f in tmp_path.rglob("*") if f.is_file() and f.name != "ca.pem"]
    assert any(f.suffix == ".duckdb" for f in files) and any(f.suffix == ".jsonl" for f in files)
    assert any(f.suffix == ".toml" for f in files)
    for f in files:
        data = f.read_bytes()
        for s in (TEST_KEY, TEST_SECRET):
            assert s.encode() not in data, f"{s[:6]}... found in {f}"


def test_paper_hedge_on_live_polled_bars(tmp_path, sim):
    """Paper mode with the live polling feed (closed bars + settled funding from the venue's public
    endpoints, here the simulator): the paper venue fills on those bars; nothing is sent to the venue."""
    env, extra = live_env(tmp_path, sim)
    now = pd.Timestamp.now(tz="UTC").floor("1h")
    start = now - pd.Timedelta(hours=4)
    for k in range(4):
        t = start + pd.Timedelta(hours=k)
        ms = int(t.value // 1_000_000)
        px = PRICE * (1 + 0.001 * k)
        for market in ("spot", "fapi", "mark"):
            sim.sim.add_kline("BTCUSDT", market, ms, px, px * 1.002, px * 0.998, px, 1_000.0)
    sim.sim.settle_funding("BTCUSDT", 0.0005, ts_ms=int((start + pd.Timedelta(hours=2)).value // 1_000_000))
    try:
        p = env.start_runner(extra)
        c = env.client(p)
        # the last bar is acted on at its close (plus the feed's settle delay); three bars of age allowed
        # (runner.freshness) so the catch-up's earlier bars are traded on too, whatever the wall clock's minute
        c.start("carry-test", mode="paper", feed="bars", start=str(start), poll_s=0.2, hedge_id="pb1",
                max_bar_age_bars=3)
        h = wait_for(lambda: (lambda x: x if x.get("state") == "MONITORING_POSITIONS" else None)(c.hedge("pb1")),
                     timeout=60, what="paper hedge on live bars")
        assert h["updates"] >= 3 and h["spot_qty"] > 0 > h["perp_qty"]
        fills = c.history("fills", hedge_id="pb1")
        assert set(fills["leg"]) == {"spot", "perp"}
        assert not sim.sim.orders  # paper: the venue only served market data
        with pytest.raises(Exception, match="paper venue fills on bars"):
            c.start("carry-test", mode="paper", feed="ticker")
    finally:
        env.cleanup()


def test_recommend_mode_records_what_it_would_send_and_sends_nothing(tmp_path, sim):
    env, extra = live_env(tmp_path, sim)
    try:
        p = env.start_runner(extra)
        c = env.client(p)
        c.start("carry-test", mode="recommend", feed="ticker", poll_s=0.2, hedge_id="rec1")
        h = wait_for(lambda: (lambda x: x if any(r["method"] == "create_order" for r in x.get("recommendations", []))
                              else None)(c.hedge("rec1")), timeout=60, what="a recommended order")
        rec = next(r for r in h["recommendations"] if r["method"] == "create_order")
        assert rec["request"]["symbol"] == "BTC/USDT" and rec["request"]["side"] == "buy"
        assert not sim.sim.orders  # nothing reached the venue
        assert h["spot_qty"] == 0 and h["perp_qty"] == 0
        orders = c.history("orders", hedge_id="rec1")
        assert len(orders) >= 1 and set(orders["status"]) <= {"rejected", "intent"}
    finally:
        env.cleanup()


def test_live_hedge_with_spot_commission_in_base_closes_what_it_holds(tmp_path):
    """Binance without BNB keeps a spot buy's commission in BTC: the live hedge holds less than it
    bought, hedges that, and its close sells exactly the coins held (no insufficient-balance reject,
    no coin left beyond a lot), with a kill -9 and a restart in between (the journal rebuilds the
    holding net of the commission)."""
    sim = SimThread(spot_fee_in_received=True)
    env, extra = live_env(tmp_path, sim)
    try:
        p = env.start_runner({**extra, "HEDGE_RUNNER_KILL_AT": "fill_journaled:perp:hedge"})
        start_live(env.client(p), "resume")
        assert p.wait(60) == -9
        p2 = env.start_runner(extra)
        settle(env, p2, "MONITORING_POSITIONS")
        held = sum(sim.sim.spot.get("BTC", [0.0, 0.0]))
        fills = journal(env, "fills", HID)
        bought = fills.loc[(fills["leg"] == "spot") & (fills["side"] == "buy"), "qty"].sum()
        assert 0 < held < bought  # the venue kept its commission in BTC
        c = env.client(p2)
        assert c.hedge(HID)["spot_qty"] == pytest.approx(held, abs=1e-12)
        c.stop(HID)
        settle(env, p2, "COMPLETED")
        orders = journal(env, "orders", HID)
        assert "rejected" not in set(orders["status"])
        assert sum(sim.sim.spot.get("BTC", [0.0, 0.0])) < 0.001  # less than one spot lot (0.001) of dust
        assert abs(sim.sim.position("BTCUSDT")) < 1e-12
        env.client(p2).shutdown()
        assert p2.wait(60) == 0
    finally:
        env.cleanup()
        sim.close()


def test_live_bar_feed_of_the_runner_streams_over_websockets(tmp_path):
    """A live hedge on closed bars (feed="bars"): the runner builds the ccxt.pro feed, subscribes the
    spot and perp kline streams, backfills over REST, and a bar closed on the streams (never
    published over REST) reaches the hedge."""
    sim = SimThread()
    now = pd.Timestamp.now(tz="UTC").floor("1min")
    t_first = now - pd.Timedelta(minutes=40)
    for k in range(38):  # closed 1m bars up to now - 2 min, spot, perp and mark, over REST
        ms = int((t_first + pd.Timedelta(minutes=k)).value // 1_000_000)
        for market in ("spot", "fapi", "mark"):
            sim.sim.add_kline("BTCUSDT", market, ms, PRICE, PRICE + 5, PRICE - 5, PRICE + k % 3, 10.0)
    env, extra = live_env(tmp_path, sim)
    try:
        p = env.start_runner(extra)
        c = env.client(p)
        c.start("carry-test", mode="live", feed="bars", timeframe="1m", poll_s=0.5, start=str(t_first),
                recovery="resume", hedge_id=HID, confirm_live=True)

        def on_sim(coro):
            return asyncio.run_coroutine_threadsafe(coro, sim.loop).result(30)

        on_sim(sim.sim.wait_ws_subscribed("spot", "btcusdt@kline_1m", timeout=25))
        on_sim(sim.sim.wait_ws_subscribed("fapi", "btcusdt@kline_1m", timeout=25))
        backfilled = wait_for(lambda: (lambda h: h if h.get("updates", 0) >= 30 else None)(c.hedge(HID)),
                              timeout=30, what="REST backfill processed")["updates"]
        label = int((t_first + pd.Timedelta(minutes=38)).value // 1_000_000)  # now - 2 min: closed
        sim.sim.add_kline("BTCUSDT", "mark", label, PRICE, PRICE + 9, PRICE - 9, PRICE + 7, 0.0)  # mark: REST
        for market in ("spot", "fapi"):  # the bar, closed, then its successor forming: the stream confirms it
            on_sim(sim.sim.push_kline("BTCUSDT", market, label, PRICE, PRICE + 9, PRICE - 9, PRICE + 7, 12.0,
                                      closed=True, interval="1m", interval_ms=60_000))
            on_sim(sim.sim.push_kline("BTCUSDT", market, label + 60_000, PRICE + 7, PRICE + 8, PRICE + 6,
                                      PRICE + 7, 1.0, interval="1m", interval_ms=60_000))
        wait_for(lambda: c.hedge(HID).get("updates", 0) > backfilled, timeout=30, what="the streamed bar")
        env.client(p).shutdown()
        assert p.wait(60) == 0
    finally:
        env.cleanup()
        sim.close()


def test_kill_after_a_new_peak_resumes_with_the_same_peak(tmp_path, sim):
    """The trailing stop's memory through a SIGKILL: a funding settlement of 1 % pays the short leg about
    0.024 BTC x 40,000 x 0.01 = 9.6 USDT, more than the entry's fees, so the cycle PnL makes a new peak; the
    runner is killed once that peak is journaled (exit_marks), and the restarted runner's recovery puts back
    the peak and the PnL at entry of the last row (runner.exit_marks) instead of zero."""
    env, extra = live_env(tmp_path, sim)
    try:
        p = env.start_runner(extra)
        c = env.client(p)
        # the venue's funding income is read every records_poll_s (default 30 s): 0.3 s, so the wait below
        # ends on the journaled peak instead of on that clock
        start_live(c, "resume", records_poll_s=0.3)
        settle(env, p, "MONITORING_POSITIONS")
        asyncio.run_coroutine_threadsafe(_call(sim.sim.settle_funding, "BTCUSDT", 0.01), sim.loop).result(30)

        def peaked() -> bool:
            rows = c.history("exit_marks", hedge_id=HID)
            return bool(len(rows)) and rows["peak_pnl"].max() > 5.0

        wait_for(peaked, timeout=60, what="a journaled peak above 5 USDT")
        p.kill()
        assert p.wait(60) == -9
        before = journal(env, "exit_marks", HID).sort_values("seq")
        last = before.iloc[-1]
        assert last["state"] == "MONITORING_POSITIONS" and last["peak_pnl"] > 5.0
        p2 = env.start_runner(extra)
        c2 = env.client(p2)
        wait_for(lambda: "recovered" in set(c2.history("exit_marks", hedge_id=HID)["event"]), what="the recovery row")
        rows = c2.history("exit_marks", hedge_id=HID)
        rec = rows[rows["event"] == "recovered"].iloc[0]
        for col in ("peak_pnl", "pnl_at_entry", "entry_notional", "unfavourable_funding"):
            assert rec[col] == pytest.approx(last[col], abs=1e-12), col
        assert pd.Timestamp(rec["entered_at"]) == pd.Timestamp(last["entered_at"])
        assert c2.hedge(HID)["state"] == "MONITORING_POSITIONS"
        check_sim(env, sim.sim, flat=False)
    finally:
        env.cleanup()


async def _call(fn, *a):
    return fn(*a)


@pytest.mark.parametrize("kill_at,policy", [
    ("intent_journaled:spot:entry", "resume"),
    ("order_sent:spot:entry", "flatten"),
    ("fill_journaled:spot:entry", "resume"),
    ("intent_journaled:perp:hedge", "flatten"),
    ("order_sent:perp:hedge", "resume"),
])
def test_okx_runner_kill_and_recover(tmp_path, kill_at, policy):
    """The kill points and policies of the Binance runner test above, on the OKX simulator (tests/support/
    okx_sim.py, the fault matrix's harness): SIGKILL, restart, reconcile by client id (``clOrdId``, 51603 for
    an order never sent), the policy followed, and on the venue's own state: no naked leg, one venue order per
    intent, every OKX fill journaled with OKX's fee. A resumed hedge is then closed to COMPLETED."""
    from tests.support import fault_matrix as fm

    v = fm.Venue("okx")
    env, extra = fm.runner_env(tmp_path, v)
    try:
        p = env.start_runner({**extra, "HEDGE_RUNNER_KILL_AT": kill_at})
        c = env.client(p)
        c.start("carry-test", mode="live", venue="okx", feed="ticker", poll_s=0.1, recovery=policy, hedge_id=HID,
                confirm_live=True, reconcile_s=0.5, records_poll_s=0.3)
        assert p.wait(60) == -9
        p2 = env.start_runner(extra)
        settle(env, p2, "MONITORING_POSITIONS" if policy == "resume" else "COMPLETED")
        c = env.client(p2)

        def problems() -> list[str]:
            return fm.invariants(v, c.history("fills", hedge_id=HID), c.history("funding_payments", hedge_id=HID),
                                 c.hedge(HID))

        wait_for(lambda: not problems(), timeout=30, what=f"the venue and the journal to agree: {problems()}")
        assert "RECOVERY" in set(c.history("transitions", hedge_id=HID)["trigger_name"])
        if kill_at.startswith("intent_journaled"):
            assert "never_sent" in set(c.history("orders", hedge_id=HID)["status"])
        if policy == "flatten":
            assert abs(v.perp()) < 1e-12 and v.spot_base() < fm.LOT
        else:
            assert v.perp() < 0 < v.spot_base()
            c.stop(HID)
            settle(env, p2, "COMPLETED")
            assert abs(v.perp()) < 1e-12 and v.spot_base() < fm.LOT and not problems()
    finally:
        env.cleanup()
        v.close()
