"""One clock per hedge (ARCHITECTURE.md principle 10; hedge_core/runner/clock.py).

Every row a hedge writes (transitions, orders' intent_ts/updated_ts, fills, funding, position
snapshots, guard firings, alerts) lies within its clock's range:

- a paper replay: inside the replay window (never the wall clock, also for the operator's stop);
- paper on live market data and live: the venue's time. The local Binance simulator's clock is
  skewed ahead of the wall clock (ccxt measures the offset when markets load: Binance "Check Server
  Time" GET /api/v3/time, https://developers.binance.com/docs/binance-spot-api-docs/rest-api/general-endpoints),
  so a row stamped with the runner's wall clock falls outside the venue's range and fails.

Also: a paper hedge started without a feed gets live data when the venue answers and a replay when
offline; replay progress (clock, fraction, ETA) in the summary and the CLI.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from hedge_core.runner.clock import (
    clock_text,
    offline,
    replay_progress,
    resolve_paper_feed,
    venue_now,
    venue_offset_ms,
)
from tests.support.live_runner import live_env
from tests.support.runner_env import make_env, wait_for
from tests.support.sim_thread import PRICE, SimThread

pytestmark = pytest.mark.timeout(240)

TS_COLS = ("ts", "intent_ts", "updated_ts")
TABLES = ("transitions", "orders", "fills", "funding_payments", "position_snapshots", "guard_firings")
SKEW_MS = 120_000  # the simulator's clock runs two minutes ahead of this machine's


# ---- pure parts --------------------------------------------------------------------------------------
@pytest.mark.unit
def test_replay_progress_fraction_and_eta():
    s, e = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-11", tz="UTC")
    p0 = replay_progress(s, e, None, 0.0)
    assert p0.fraction == 0.0 and p0.eta_s is None and p0.now == s
    p = replay_progress(s, e, s + pd.Timedelta(days=2.5), 10.0)
    assert p.fraction == pytest.approx(0.25) and p.eta_s == pytest.approx(30.0)  # 3x the time taken so far
    # a resumed replay: the pace counts from where it resumed, the fraction from the window start
    r = replay_progress(s, e, s + pd.Timedelta(days=6), 4.0, began=s + pd.Timedelta(days=5))
    assert r.fraction == pytest.approx(0.6) and r.eta_s == pytest.approx(16.0)
    end = replay_progress(s, e, e + pd.Timedelta(hours=1), 99.0)
    assert end.fraction == 1.0 and end.eta_s == 0.0
    assert clock_text({"clock": "replay", "replay": {**p.as_dict(), "phase": "running"}}).startswith(
        "replay 2024-01-03 12:00 (25.0 %, ETA 30s)")
    assert "preparing" in clock_text({"clock": "replay", "replay": {**p0.as_dict(), "phase": "preparing"}})
    assert clock_text({"clock": "live"}) == "live"
    done = {"clock": "replay", "replay": {**p.as_dict(), "phase": "done", "eta_s": None}}
    assert clock_text(done) == "replay stopped at 2024-01-03 12:00 (25.0 %)"


@pytest.mark.unit
def test_paper_feed_choice():
    assert resolve_paper_feed({}, is_offline=False, reachable=True)[0] == "bars"
    assert resolve_paper_feed({}, is_offline=False, reachable=False) == (
        "replay", "venue not reachable: replay of stored history")
    assert resolve_paper_feed({}, is_offline=True, reachable=None)[0] == "replay"
    assert resolve_paper_feed({"speed": 100.0}, is_offline=False, reachable=True)[0] == "replay"
    assert resolve_paper_feed({"end": "2024-02-01"}, is_offline=False, reachable=True)[0] == "replay"
    assert resolve_paper_feed({"data_venue": "demo"}, is_offline=False, reachable=True)[0] == "replay"
    assert offline({"HEDGE_OFFLINE": "1"}) and not offline({"HEDGE_OFFLINE": "0"}) and not offline({})


@pytest.mark.unit
def test_venue_now_follows_the_offset_ccxt_measured():
    # ccxt: options["timeDifference"] = local ms - server ms; the venue is ahead when it is negative
    ad = SimpleNamespace(_ex=SimpleNamespace(options={"timeDifference": -SKEW_MS}))
    assert venue_offset_ms(ad) == SKEW_MS
    wrapped = SimpleNamespace(market_data=ad)  # a recommend adapter: looked through
    assert venue_offset_ms(wrapped) == SKEW_MS
    lag = (venue_now(ad) - pd.Timestamp.now(tz="UTC")).total_seconds()
    assert lag == pytest.approx(SKEW_MS / 1000, abs=1.0)
    assert venue_offset_ms(SimpleNamespace()) == 0.0


# ---- every table, every mode ----------------------------------------------------------------------
def _rows(c: Any, hid: str) -> dict[str, pd.DataFrame]:
    return {t: c.history(t, hedge_id=hid) for t in TABLES}


def assert_within(rows: dict[str, pd.DataFrame], alerts: list[dict[str, Any]], lo: pd.Timestamp,
                  hi: pd.Timestamp) -> int:
    """Every timestamp of every table (and every alert) in [lo, hi]; returns how many were checked."""
    n = 0
    for table, df in rows.items():
        for col in TS_COLS:
            if col not in df.columns or not len(df):
                continue
            ts = pd.to_datetime(df[col], utc=True).dropna()
            bad = ts[(ts < lo) | (ts > hi)]
            assert bad.empty, f"{table}.{col}: {list(bad.astype(str))[:3]} outside the hedge's clock [{lo}, {hi}]"
            n += len(ts)
    for a in alerts:
        t = pd.Timestamp(a["ts"])
        assert lo <= t <= hi, f"alert {a['kind']} at {t} outside [{lo}, {hi}]"
        n += 1
    return n


def _settled(c: Any, hid: str, want: str, timeout: float = 90.0) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def done() -> dict[str, Any] | None:
        seen.update(c.hedge(hid))
        return dict(seen) if seen.get("state") == want and not seen.get("pending_orders") else None

    try:
        return wait_for(done, timeout=timeout, what=f"{hid} {want}")
    except AssertionError as exc:
        keys = ("state", "status", "error", "updates", "stale_updates", "degraded", "alerts", "clock_now", "last_ts")
        raise AssertionError(f"{exc}: {({k: seen.get(k) for k in keys})}") from None


@pytest.mark.e2e  # starts runner processes
def test_replay_paper_rows_carry_replay_time(tmp_path):
    """Offline paper without a feed: a replay. Every row (the operator's stop included) is replay time."""
    env = make_env(tmp_path, days=4)
    try:
        p = env.start_runner()
        c = env.client(p)
        wall0 = pd.Timestamp.now(tz="UTC")
        out = c.start("carry-test", mode="paper", hedge_id="rp1", speed=20_000.0)
        assert out["clock"] == "replay" and out["feed"] == "replay" and "replay" in out
        assert pd.Timestamp(out["clock_now"]) < wall0 - pd.Timedelta(days=1)  # the demo market's past
        h = _settled(c, "rp1", "MONITORING_POSITIONS")
        rp = h["replay"]
        start, end = pd.Timestamp(rp["start"]), pd.Timestamp(rp["end"])
        assert 0.0 < rp["fraction"] < 1.0 and start <= pd.Timestamp(rp["now"]) <= end
        assert rp["speed"] == 20_000.0
        time.sleep(0.5)
        c.stop("rp1")  # the operator's stop lands at the replay's time, not the wall clock
        h = _settled(c, "rp1", "COMPLETED")
        rows = _rows(c, "rp1")
        assert {"transitions", "orders", "fills", "position_snapshots"} <= {t for t, d in rows.items() if len(d)}
        assert assert_within(rows, h.get("alerts") or [], start, end) > 10
        stop = rows["transitions"].sort_values("seq").iloc[-1]
        assert stop["to_state"] == "COMPLETED" and pd.Timestamp(stop["ts"]) < wall0
        closes = rows["orders"][rows["orders"]["client_order_id"].isin(
            rows["fills"]["client_order_id"])]
        assert (pd.to_datetime(closes["updated_ts"], utc=True) < wall0).all()
        # the run row keeps the operator's wall-clock start (when the operator did it)
        run = next(r for r in c.runs() if r["hedge_id"] == "rp1")
        assert pd.Timestamp(run["started_at"]) >= wall0 - pd.Timedelta(seconds=5)
        c.shutdown()
        assert p.wait(60) == 0
    finally:
        env.cleanup()


@pytest.fixture
def skewed_sim():
    s = SimThread()
    s.sim.skew_clock(SKEW_MS)
    yield s
    s.close()


def _venue_ts(sim: SimThread) -> pd.Timestamp:
    return pd.Timestamp(sim.sim.now_ms(), unit="ms", tz="UTC")


@pytest.mark.e2e  # starts runner processes
def test_paper_defaults_to_live_data_and_books_the_venues_funding(tmp_path, skewed_sim):
    """Online paper without a feed: live bars from the venue (the simulator), the paper venue fills;
    funding settles at the venue's settlement time and rate; every row carries the venue's time."""
    sim = skewed_sim
    env, extra = live_env(tmp_path, sim)
    vnow = _venue_ts(sim).floor("1h")
    first = vnow - pd.Timedelta(hours=4)
    for k in range(4):  # closed 1h bars up to the venue's last full hour
        ms = int((first + pd.Timedelta(hours=k)).value // 1_000_000)
        px = PRICE * (1 + 0.001 * k)
        for market in ("spot", "fapi", "mark"):
            sim.sim.add_kline("BTCUSDT", market, ms, px, px * 1.002, px * 0.998, px, 1_000.0)
    sim.sim.settle_funding("BTCUSDT", 0.0005, ts_ms=int((first + pd.Timedelta(hours=2)).value // 1_000_000))
    try:
        p = env.start_runner({**extra, "HEDGE_OFFLINE": "0"})
        c = env.client(p)
        v0 = _venue_ts(sim)
        out = c.start("carry-test", mode="paper", start=str(first), poll_s=0.2, hedge_id="pl1", max_bar_age_bars=3)
        assert out["clock"] == "live" and out["feed"] == "bars" and "reachable" in out["feed_reason"]
        assert "replay" not in out
        h = _settled(c, "pl1", "MONITORING_POSITIONS", timeout=60)
        assert h["spot_qty"] > 0 > h["perp_qty"]
        # a settlement on the venue now: the live feed delivers it, the paper venue books it at that time and rate
        t_fund = _venue_ts(sim).floor("s") + pd.Timedelta(seconds=1)
        sim.sim.settle_funding("BTCUSDT", 0.0007, ts_ms=int(t_fund.value // 1_000_000))
        got: list[pd.DataFrame] = []
        wait_for(lambda: got.append(c.history("funding_payments", hedge_id="pl1")) or len(got[-1]) > 0,
                 timeout=60, what="the settled funding on the paper hedge")
        fund = got[-1]
        row = fund.iloc[0]
        assert pd.Timestamp(row["ts"]) == t_fund and row["rate"] == pytest.approx(0.0007)
        assert row["amount"] == pytest.approx(-row["position_qty"] * row["mark_price"] * 0.0007, rel=1e-9)
        assert row["amount"] > 0  # short perp, positive rate: received
        c.stop("pl1")
        h = _settled(c, "pl1", "COMPLETED", timeout=60)
        v1 = _venue_ts(sim)
        rows = _rows(c, "pl1")
        # the venue's clock: from the start on the venue to now on the venue (the wall clock is 2 min behind)
        assert assert_within(rows, h.get("alerts") or [], v0 - pd.Timedelta(seconds=2), v1) > 8
        assert not sim.sim.orders  # paper: the venue only served market data
        c.shutdown()
        assert p.wait(60) == 0
    finally:
        env.cleanup()


@pytest.mark.e2e  # starts runner processes
def test_paper_offline_start_says_replay(tmp_path):
    env = make_env(tmp_path, days=2)
    try:
        p = env.start_runner()
        c = env.client(p)
        out = c.start("carry-test", mode="paper", hedge_id="off1")
        assert out["clock"] == "replay" and "offline" in out["feed_reason"]
        listed = {h["hedge_id"]: h for h in c.hedges()}
        assert listed["off1"]["clock"] == "replay" and "fraction" in listed["off1"]["replay"]
        c.shutdown()
        assert p.wait(60) == 0
    finally:
        env.cleanup()


@pytest.mark.e2e  # starts runner processes
def test_live_hedge_rows_carry_the_venues_time(tmp_path, skewed_sim):
    """Live through real ccxt against the simulator (clock two minutes ahead): intents, order answers,
    fills (the venue's trade records), transitions, snapshots, the operator's stop: the venue's time."""
    sim = skewed_sim
    env, extra = live_env(tmp_path, sim)
    try:
        p = env.start_runner(extra)
        c = env.client(p)
        v0 = _venue_ts(sim)
        out = c.start("carry-test", mode="live", feed="ticker", poll_s=0.2, hedge_id="lv1", confirm_live=True)
        assert out["clock"] == "live"
        _settled(c, "lv1", "MONITORING_POSITIONS", timeout=60)
        c.stop("lv1")
        h = _settled(c, "lv1", "COMPLETED", timeout=60)
        v1 = _venue_ts(sim)
        rows = _rows(c, "lv1")
        assert len(rows["fills"]) >= 4 and len(rows["orders"]) >= 4
        assert assert_within(rows, h.get("alerts") or [], v0 - pd.Timedelta(seconds=2), v1) > 10
        c.shutdown()
        assert p.wait(60) == 0
    finally:
        env.cleanup()


@pytest.mark.e2e  # starts runner processes
def test_cli_hedges_shows_the_clock(tmp_path):
    """`hedge hedges` and `hedge runner status` show each hedge's clock (replay: time, %, ETA)."""
    import subprocess
    import sys

    env = make_env(tmp_path, days=3)
    try:
        p = env.start_runner()
        c = env.client(p)
        c.start("carry-test", mode="paper", hedge_id="cl1", speed=2_000.0)
        wait_for(lambda: c.hedge("cl1").get("replay", {}).get("fraction", 0) > 0, what="replay progress")
        repo = Path(__file__).resolve().parents[1]
        for args in (("hedges",), ("runner", "status")):
            r = subprocess.run([sys.executable, "-m", "hedge_core.cli", *args], cwd=repo, env=env.env,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            line = next(x for x in r.stdout.splitlines() if "cl1" in x)
            assert "replay 20" in line and "%" in line and "ETA" in line, line
        c.shutdown()
        assert p.wait(60) == 0
    finally:
        env.cleanup()



@pytest.mark.e2e  # starts runner processes
def test_paper_falls_back_to_a_replay_when_the_venue_does_not_answer(tmp_path):
    """Online, but the venue's market data does not answer (nothing listens on its port): a replay,
    and the start answer says why."""
    import socket

    from tests.support import live_env as sim_env
    from tests.support.simfactory import FACTORY

    env = make_env(tmp_path, days=2)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ca = tmp_path / "ca.pem"
    sim_env.test_ca().cert_pem.write_to_path(str(ca))
    extra = {"HEDGE_OFFLINE": "0", "HEDGE_RUNNER_ADAPTER_FACTORY": FACTORY, "HEDGE_TEST_SIM_PORT": str(port),
             "HEDGE_TEST_SIM_CA": str(ca), "HEDGE_TEST_SIM_KEY": "k", "HEDGE_TEST_SIM_SECRET": "s"}
    try:
        p = env.start_runner(extra)
        c = env.client(p)
        out = c.start("carry-test", mode="paper", hedge_id="fb1")
        assert out["clock"] == "replay" and out["feed"] == "replay" and "not reachable" in out["feed_reason"]
        assert c.hedge("fb1")["status"] in ("running", "feed_ended", "stopped")
        c.shutdown()
        assert p.wait(60) == 0
    finally:
        env.cleanup()


@pytest.mark.e2e  # starts runner processes
def test_paper_on_live_data_recovers_on_the_venues_clock(tmp_path, skewed_sim):
    """kill -9 a runner with a paper hedge on live data; the restarted runner's RECOVERY row and
    everything after it carry the venue's time (its markets are loaded before the first row)."""
    import signal

    sim = skewed_sim
    env, extra = live_env(tmp_path, sim)
    vnow = _venue_ts(sim).floor("1h")
    first = vnow - pd.Timedelta(hours=4)
    for k in range(4):
        ms = int((first + pd.Timedelta(hours=k)).value // 1_000_000)
        for market in ("spot", "fapi", "mark"):
            sim.sim.add_kline("BTCUSDT", market, ms, PRICE, PRICE * 1.002, PRICE * 0.998, PRICE, 1_000.0)
    sim.sim.settle_funding("BTCUSDT", 0.0005, ts_ms=int((first + pd.Timedelta(hours=2)).value // 1_000_000))
    extra = {**extra, "HEDGE_OFFLINE": "0"}
    try:
        p = env.start_runner(extra)
        c = env.client(p)
        v0 = _venue_ts(sim)
        c.start("carry-test", mode="paper", start=str(first), poll_s=0.2, hedge_id="pr1", max_bar_age_bars=3)
        _settled(c, "pr1", "MONITORING_POSITIONS", timeout=60)
        p.send_signal(signal.SIGKILL)
        p.wait(30)
        p2 = env.start_runner(extra)
        c2 = env.client(p2)
        h = _settled(c2, "pr1", "MONITORING_POSITIONS", timeout=60)
        assert h["clock"] == "live" and h["spot_qty"] > 0 > h["perp_qty"]
        c2.stop("pr1")
        h = _settled(c2, "pr1", "COMPLETED", timeout=60)
        v1 = _venue_ts(sim)
        rows = _rows(c2, "pr1")
        assert "RECOVERY" in set(rows["transitions"]["trigger_name"])
        assert assert_within(rows, h.get("alerts") or [], v0 - pd.Timedelta(seconds=2), v1) > 8
        c2.shutdown()
        assert p2.wait(60) == 0
    finally:
        env.cleanup()
