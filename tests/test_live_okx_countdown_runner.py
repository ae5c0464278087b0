"""OKX's account-wide cancel-all-after timer driven by a real runner process (real ccxt -> the local OKX
simulator, tests/support/okx_sim.py): the heartbeat re-arms it within OKX's limits (``timeOut`` 10..120 s,
1 request per second, https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-cancel-all-after), the
completed hedge disarms it, and a frozen runner lets it fire: the venue cancels the account's pending orders."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.support import fault_matrix as fm
from tests.support.live_runner import HID, settle
from tests.support.runner_env import wait_for

ROUTE = ("POST", "/api/v5/trade/cancel-all-after")


def calls(v: fm.Venue) -> list[dict]:
    return [p for m, path, p in list(v.sim.requests) if (m, path) == ROUTE]


def start(c) -> None:
    c.start("carry-test", mode="live", venue="okx", feed="ticker", poll_s=0.2, recovery="resume", hedge_id=HID,
            confirm_live=True)


@pytest.mark.timeout(150)
def test_runner_arms_the_account_timer_within_okx_limits_and_disarms_it_when_done(tmp_path):
    v = fm.Venue("okx")
    env, extra = fm.runner_env(tmp_path, v)
    try:
        p = env.start_runner(extra, args=["--dms-timeout", "3"])  # asks 6 s: OKX's floor, 10 s, is sent
        c = env.client(p)
        start(c)
        wait_for(lambda: len(calls(v)) >= 3, timeout=60, what="three re-arms of the account timer")
        assert {x["timeOut"] for x in calls(v)} == {"10"}
        assert v.sim.cancel_all_deadline > v.sim.now_ms()
        # heartbeats every 0.2 s, yet never two requests within OKX's one per second
        assert [a for a in list(v.sim.answers) if a[0] == " ".join(ROUTE)] == [(" ".join(ROUTE), 200, "0")] * len(calls(v))
        wait_for(lambda: c.hedge(HID).get("state") == "MONITORING_POSITIONS", timeout=60, what="monitoring")
        c.stop(HID)
        settle(env, p, "COMPLETED")
        wait_for(lambda: calls(v)[-1]["timeOut"] == "0", timeout=30, what="timer disarmed")
        assert v.sim.cancel_all_deadline is None
        assert {a[1:] for a in list(v.sim.answers) if a[0] == " ".join(ROUTE)} == {(200, "0")}  # never refused
        n = len(calls(v))
        time.sleep(3.0)
        assert len(calls(v)) == n and v.sim.cancel_all_fired == []  # neither re-armed nor fired
        env.client(p).shutdown()
        assert p.wait(60) == 0
    finally:
        env.cleanup()
        v.close()


@pytest.mark.timeout(150)
def test_frozen_runner_stops_re_arming_and_okx_cancels_the_accounts_orders(tmp_path):
    v = fm.Venue("okx")
    env, extra = fm.runner_env(tmp_path, v)
    try:
        p = env.start_runner(extra, args=["--dms-timeout", "3"])
        c = env.client(p)
        start(c)
        wait_for(lambda: c.hedge(HID).get("state") == "MONITORING_POSITIONS", timeout=60, what="monitoring")
        wait_for(lambda: v.sim.cancel_all_deadline is not None, timeout=30, what="timer armed")
        # an order resting on the account (a leg's limit order left working, or one placed by hand)
        o = v.call(v.sim.place, {"instId": fm.OKX_SWAP, "tdMode": "cross", "side": "buy", "ordType": "limit",
                                 "sz": "1", "px": "20000", "clOrdId": "resting1"})
        os.kill(p.pid, signal.SIGSTOP)  # a hung runner sends nothing
        try:
            wait_for(lambda: v.call(v.sim.expire_cancel_all_after) or v.sim.cancel_all_fired, timeout=20,
                     what="OKX's timer to fire")
            [(_at, ids)] = v.sim.cancel_all_fired
            assert o.ord_id in ids and v.sim.orders[o.ord_id].state == "canceled"
            assert v.perp() < 0  # orders only: the hedge's position stays
        finally:
            os.kill(p.pid, signal.SIGCONT)
        p.kill()
        p.wait(30)
    finally:
        env.cleanup()
        v.close()
