"""The venue's records through a real runner process, real ccxt and the Binance simulator (answers as
Binance documents: USD-M order answers without commission, spot lookups without fills, spot
commission in the asset received): the ledger's fees and funding equal the venue's records, a
restart after kill -9 books the venue's commission in BTC and closes only what is free, and a
reconciliation mismatch marks the hedge DEGRADED and follows its policy."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.live_runner import HID, check_sim, live_env, settle
from tests.support.runner_env import wait_for
from tests.support.sim_thread import SimThread

pytestmark = pytest.mark.timeout(240)


def on_sim(sim: SimThread, fn: Any, *a: Any, **kw: Any) -> Any:
    """Run a simulator control call on the simulator's own loop (its server thread)."""

    async def call() -> Any:
        return fn(*a, **kw)

    return asyncio.run_coroutine_threadsafe(call(), sim.loop).result(30)


def start(c: Any, recovery: str = "resume", on_mismatch: str = "hold") -> None:
    c.start("carry-test", mode="live", feed="ticker", poll_s=0.2, recovery=recovery, hedge_id=HID,
            confirm_live=True, reconcile_s=0.5, records_poll_s=0.3, on_mismatch=on_mismatch)


def venue_fees_usdt(sim: SimThread) -> float:
    """Sum of the venue's commissions on every execution: userTrades in USDT, myTrades valued in USDT
    at the fill price when taken in BTC."""
    total = 0.0
    for t in sim.sim.trades:
        fee = float(t["commission"])
        total += fee * float(t["price"]) if t["commissionAsset"] == "BTC" else fee
    return total


def test_open_funding_adl_rebalance_close_books_the_venues_records(tmp_path):
    sim = SimThread(spot_fee_in_received=True)
    env, extra = live_env(tmp_path, sim)
    try:
        p = env.start_runner(extra)
        c = env.client(p)
        start(c)
        settle(env, p, "MONITORING_POSITIONS")
        paid = on_sim(sim, sim.sim.settle_funding, "BTCUSDT", 0.0005)  # a short receives
        assert len(paid) == 1 and paid[0] > 0
        h = wait_for(lambda: (lambda x: x if x.get("funding", 0) > 0 else None)(c.hedge(HID)), timeout=30,
                     what="funding booked from the income record")
        assert h["funding"] == pytest.approx(paid[0], abs=1e-8)
        pos = sim.sim.position("BTCUSDT")
        on_sim(sim, sim.sim.adl, "BTCUSDT", round(abs(pos) / 3, 3), 40_400.0)
        assert sim.sim.position("BTCUSDT") > pos  # the venue bought back part of the short
        wait_for(lambda: abs(sim.sim.position("BTCUSDT") - pos) < 1e-9, timeout=30,
                 what="the perp re-hedged after the ADL")
        assert sum(1 for o in sim.sim.orders.values() if o.market == "fapi") == 2  # hedge + rebalance
        settle(env, p, "MONITORING_POSITIONS")
        h = c.hedge(HID)
        assert h["reconcile"] and h["reconcile"]["differences"] == []  # a pass ran, journal == venue
        assert "reconcile" not in h["degraded"]
        c.stop(HID)
        settle(env, p, "COMPLETED")
        h = c.hedge(HID)
        fills = c.history("fills", hedge_id=HID)
        funding = c.history("funding_payments", hedge_id=HID)
        adl_ids = {t["id"] for t in sim.sim.trades if t["orderId"] in {o.order_id for o in sim.sim.adl_orders}}
        assert {f"BTC/USDT:USDT#{i}" for i in adl_ids} <= set(fills["trade_id"])  # the ADL trade, booked
        assert len(fills) == len(sim.sim.trades)  # every execution, once
        booked = sum(f * px if cur == "BTC" else f for f, px, cur in
                     zip(fills["fee"], fills["price"], fills["fee_currency"]))
        assert booked == pytest.approx(venue_fees_usdt(sim), abs=1e-8)
        assert h["fees"] == pytest.approx(venue_fees_usdt(sim), abs=1e-8)
        perp_fee = sum(float(t["commission"]) for t in sim.sim.trades if t["market"] == "fapi")
        assert perp_fee > 1.0  # the measured bug: 0 perp fees booked while the venue charged them
        income = [r for r in sim.sim.income if r["incomeType"] == "FUNDING_FEE"]
        assert len(funding) == len(income) == 1
        assert funding["amount"].sum() == pytest.approx(sum(float(r["income"]) for r in income), abs=1e-8)
        assert funding["expected"].iloc[0] == pytest.approx(funding["amount"].iloc[0], rel=1e-6)
        assert h["funding"] == pytest.approx(funding["amount"].sum(), abs=1e-8)
        assert abs(sim.sim.position("BTCUSDT")) < 1e-12 and sum(sim.sim.spot.get("BTC", [0, 0])) < 0.001
        c.shutdown()
        assert p.wait(60) == 0
    finally:
        env.cleanup()
        sim.close()


def test_kill_after_spot_sent_restart_books_the_btc_commission_and_closes_what_is_free(tmp_path):
    sim = SimThread(spot_fee_in_received=True)
    env, extra = live_env(tmp_path, sim)
    try:
        p = env.start_runner({**extra, "HEDGE_RUNNER_KILL_AT": "order_sent:spot:entry"})
        start(env.client(p))
        assert p.wait(60) == -9
        p2 = env.start_runner(extra)
        settle(env, p2, "MONITORING_POSITIONS")
        check_sim(env, sim.sim, flat=False)
        fills = env.client(p2).history("fills", hedge_id=HID)
        spot = fills[fills["leg"] == "spot"]
        venue_spot = [t for t in sim.sim.trades if t["market"] == "spot"]
        assert len(spot) == len(venue_spot) == 1
        assert spot["fee_currency"].iloc[0] == "BTC"
        assert spot["fee"].iloc[0] == pytest.approx(float(venue_spot[0]["commission"]), abs=1e-12)
        held = sum(sim.sim.spot["BTC"])
        c = env.client(p2)
        assert c.hedge(HID)["spot_qty"] == pytest.approx(held, abs=1e-12)
        tr = c.history("transitions", hedge_id=HID)
        rec = tr[tr["trigger_name"] == "RECOVERY"]["reason"].iloc[0]
        assert "policy resume (on mismatch: hold)" in rec  # the recovery names the policies it used
        c.stop(HID)
        settle(env, p2, "COMPLETED")
        orders = c.history("orders", hedge_id=HID)
        assert "rejected" not in set(orders["status"])
        check_sim(env, sim.sim, flat=True)  # no naked leg above one lot
        assert sum(sim.sim.spot.get("BTC", [0.0, 0.0])) < 0.001
        c.shutdown()
        assert p2.wait(60) == 0
    finally:
        env.cleanup()
        sim.close()


@pytest.mark.parametrize("policy", ["hold", "flatten"])
def test_reconcile_mismatch_degrades_and_follows_the_policy(tmp_path, policy):
    sim = SimThread()
    env, extra = live_env(tmp_path, sim)
    try:
        p = env.start_runner(extra)
        c = env.client(p)
        start(c, on_mismatch=policy)
        settle(env, p, "MONITORING_POSITIONS")
        on_sim(sim, sim.sim.deposit, "BTC", 0.01)  # coins the journal knows nothing of
        health = wait_for(lambda: (lambda x: x if x.get("status") == "degraded" else None)(c.health()),
                          timeout=30, what="/health degraded")
        assert "reconcile" in health["degraded"][HID]
        assert "spot base balance" in health["degraded"][HID]["reconcile"]
        h = c.hedge(HID)
        assert "reconcile" in h["degraded"] and h["reconcile"]["policy"] == policy
        if policy == "hold":
            settle(env, p, "PAUSED")
            n = len(sim.sim.orders)
            on_sim(sim, sim.sim.deposit, "BTC", -0.01)  # the venue agrees again: a clean pass clears it
            wait_for(lambda: c.health().get("status") == "ok", timeout=30, what="condition cleared")
            assert "reconcile" not in c.hedge(HID)["degraded"]
            assert c.hedge(HID)["state"] == "PAUSED" and len(sim.sim.orders) == n  # held until the operator
            c.resume(HID)
            settle(env, p, "MONITORING_POSITIONS")
        else:
            settle(env, p, "COMPLETED")
            assert abs(sim.sim.position("BTCUSDT")) < 1e-12
            assert sum(sim.sim.spot["BTC"]) == pytest.approx(0.01, abs=0.001)  # the foreign coins stay
        c.shutdown()
        assert p.wait(60) == 0
    finally:
        env.cleanup()
        sim.close()
