"""A LIVE hedge with its legs on two venues run by a real runner process: spot on the Binance simulator,
perp on the Bybit simulator, real ccxt to both (the runner builds them through
tests/support/simfactory_xlive.py). The runner SIGKILLs itself right after Bybit accepted the perp
order (its answer never processed); a restarted runner reconciles each order at its own venue, books
Bybit's fills under bybit without re-sending, reports both venues in its RECOVERY row, and the hedge
then closes both legs on their venues."""

from __future__ import annotations

import pytest

from tests.support.bybit_thread import BybitThread
from tests.support.live_runner import HID, settle, two_venue_env
from tests.support.runner_env import journal
from tests.support.sim_thread import SimThread

pytestmark = [pytest.mark.timeout(240), pytest.mark.e2e]  # a real runner process


def test_two_venue_live_hedge_killed_after_the_perp_order_and_recovered(tmp_path):
    binance, bybit = SimThread(spot_fee_in_received=False), BybitThread()
    env, extra = two_venue_env(tmp_path, binance, bybit)
    try:
        p = env.start_runner({**extra, "HEDGE_RUNNER_KILL_AT": "order_sent:perp"})
        env.client(p).start("carry-test", mode="live", feed="ticker", poll_s=0.2, recovery="resume", hedge_id=HID,
                            confirm_live=True, venue="binance", perp_venue="bybit")
        assert p.wait(60) == -9, "the runner should have SIGKILLed itself after the perp order was sent"
        [perp_order] = list(bybit.sim.orders.values())  # Bybit holds the order; the journal only its intent
        fills = journal(env, "fills", HID)
        assert perp_order.link_id not in set(fills["client_order_id"])
        p2 = env.start_runner(extra)
        settle(env, p2, "MONITORING_POSITIONS")
        c = env.client(p2)
        tr = c.history("transitions", hedge_id=HID)
        rec = tr.loc[tr["trigger_name"] == "RECOVERY", "reason"].iloc[0]
        assert "'venues'" in rec and "'binance'" in rec and "'bybit'" in rec and perp_order.link_id in rec
        assert bybit.sim.order_count(perp_order.link_id) == 1  # found at Bybit, never re-sent
        fills = c.history("fills", hedge_id=HID)
        perp, spot = fills[fills["leg"] == "perp"], fills[fills["leg"] == "spot"]
        execs = [e for e in bybit.sim.executions if e["execType"] == "Trade"]
        assert set(perp["venue"]) == {"bybit"} and len(perp) == len(execs)
        assert set(spot["venue"]) == {"binance"} and len(spot) == len(binance.sim.trades)
        assert not [t for t in binance.sim.trades if t["market"] == "fapi"]  # no perp on Binance
        btc, short = sum(binance.sim.spot["BTC"]), bybit.sim.positions["BTCUSDT"][0]
        assert short < 0 < btc and abs(btc + short) <= 0.001  # hedged across the two venues
        assert c.hedge(HID)["spot_qty"] == pytest.approx(btc, abs=1e-12)
        c.stop(HID)
        settle(env, p2, "COMPLETED")
        assert bybit.sim.positions["BTCUSDT"][0] == 0 and sum(binance.sim.spot.get("BTC", [0.0, 0.0])) < 1e-5
        orders = c.history("orders", hedge_id=HID)
        assert "rejected" not in set(orders["status"])
        c.shutdown()
        assert p2.wait(60) == 0
    finally:
        env.cleanup()
        binance.close()
        bybit.close()


def test_continuous_reconciliation_is_reported_per_venue(tmp_path):
    """The runner's continuous reconciliation of a two-venue live hedge, per venue (``reconcile.venues`` in
    the hedge's status, runner.records.by_venue): both venues clean with their holdings, journal beside
    venue; then 0.01 BTC appears in the Binance spot wallet (a deposit the hedge did not make): the
    difference is reported under binance only, Bybit stays clean, and ``hedge runner status`` prints one
    line per venue."""
    import asyncio

    from typer.testing import CliRunner

    from hedge_core.runner.cli import runner_app
    from tests.support.runner_env import wait_for

    binance, bybit = SimThread(spot_fee_in_received=False), BybitThread()
    env, extra = two_venue_env(tmp_path, binance, bybit)
    try:
        p = env.start_runner(extra)
        c = env.client(p)
        c.start("carry-test", mode="live", feed="ticker", poll_s=0.2, recovery="resume", hedge_id=HID,
                confirm_live=True, venue="binance", perp_venue="bybit", reconcile_s=0.5, records_poll_s=0.3)
        settle(env, p, "MONITORING_POSITIONS")

        def venues(pred):
            return wait_for(lambda: (lambda v: v if v and pred(v) else None)(
                (c.hedge(HID).get("reconcile") or {}).get("venues")), timeout=30, what="a reconciliation pass")

        v = venues(lambda v: not v["binance"]["differences"] and not v["bybit"]["differences"])
        assert v["binance"]["legs"] == ["spot"] and v["bybit"]["legs"] == ["perp"]
        btc, short = sum(binance.sim.spot["BTC"]), bybit.sim.positions["BTCUSDT"][0]
        assert v["binance"]["spot_base"] == {"journal": pytest.approx(btc, abs=1e-12), "venue": pytest.approx(btc)}
        assert v["bybit"]["positions"] == {"BTC/USDT:USDT": {"journal": pytest.approx(short), "venue": pytest.approx(short)}}

        async def deposit() -> None:
            binance.sim.spot["BTC"][0] += 0.01

        asyncio.run_coroutine_threadsafe(deposit(), binance.loop).result(10)
        v = venues(lambda v: v["binance"]["differences"])
        assert [d.split(":")[0] for d in v["binance"]["differences"]] == ["spot base balance"]
        assert v["binance"]["spot_base"]["venue"] == pytest.approx(btc + 0.01)
        assert v["bybit"]["differences"] == []
        out = CliRunner().invoke(runner_app, ["status", "--home", str(env.home)])
        assert out.exit_code == 0, out.output
        lines = [ln for ln in out.output.splitlines() if ln.startswith(f"{HID}: reconcile ")]
        assert len(lines) == 2, out.output
        assert lines[0].startswith(f"{HID}: reconcile binance (spot): 1 difference(s): spot base balance")
        assert lines[1].startswith(f"{HID}: reconcile bybit (perp): clean")
    finally:
        env.cleanup()
        binance.close()
        bybit.close()
