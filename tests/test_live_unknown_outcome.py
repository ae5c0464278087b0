"""The unknown-outcome protocol end to end: engine + driver + real ccxt + the Binance simulator
with its documented lost-answer behaviours (tests/support/binance_faults.py).

For a spot entry and a perp hedge, and for each way an answer gets lost (timeout, HTTP 503,
-1007, dropped connection):
- never two venue orders for one intent;
- an order executed late (within recvWindow of its send) is found and booked, nothing re-sent;
- a truly lost order is re-sent only after sent + recvWindow + margin, under a NEW client id
  linked to the first (``retry_of``), and an alert names the order meanwhile.

Windows are small (recvWindow 1 000 ms via the ccxt option, margin 0.2 s) to keep them fast.
"""

from __future__ import annotations

import math

import asyncio

import pandas as pd
import pytest

from hedge_core.engine import MarketUpdate, State, new_hedge
from hedge_core.engine.actions import Alert, PlaceOrder
from hedge_core.engine.driver import DriverHooks, HedgeDriver
from hedge_core.engine.events import Timer
from hedge_core.exchange.governor import reset_registry
from hedge_core.params.models import CarryParams, ExecutionParams
from tests.support.binance_faults import BinanceFaults
from tests.support.live_env import live_env

SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"
RECV_MS, MARGIN = 1000, 0.2
WINDOW = RECV_MS / 1000 + MARGIN
PARAMS = CarryParams(notional=2_000.0, min_net_carry=-1.0,
                     execution=ExecutionParams(order_timeout_s=0.3, max_queries=20))
ORDER_PATH = {"spot": r"POST /api/v3/order$", "perp": r"POST /fapi/v1/order$"}


@pytest.fixture(autouse=True)
def _fresh_governors():
    reset_registry()
    yield
    reset_registry()


def now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


async def _setup(env):
    env.sim.set_price("BTCUSDT", 20_000.0)
    inst = await env.adapter.load_markets()
    alerts: list[Alert] = []
    drv = HedgeDriver(new_hedge("uo", "carry", inst[SPOT], inst[PERP], now()), PARAMS, {"binance": env.adapter},
                      hooks=DriverHooks(on_alert=lambda _h, a: alerts.append(a)), poll_external_fills=False)
    return drv, alerts


def _posts(sim, leg):
    path = "/api/v3/order" if leg == "spot" else "/fapi/v1/order"
    return [r for r in sim.requests if r[:2] == ("POST", path)]


async def _run_until_settled(drv, faults, until_s: float) -> None:
    """Timers on the hedge's (wall) clock until ``until_s`` seconds have passed."""
    end = asyncio.get_running_loop().time() + until_s
    while asyncio.get_running_loop().time() < end:
        await asyncio.sleep(0.1)
        await drv.feed(Timer(now()))
    await faults.settle()


MODES = ["timeout", "503", "-1007", "drop"]


def _ledger_is_the_venue(drv, sim) -> None:
    """One 0.1 BTC entry: the ledger holds what the venue holds. Binance takes a spot buy's commission in
    the BTC received (no BNB), so the spot leg is 0.1 less that commission (0.0999), and the perp hedges
    what is held, rounded down to the perp lot (0.001): -0.099."""
    held = sum(sim.spot.get("BTC", [0.0, 0.0]))
    assert 0.0999 - 1e-9 <= held < 0.1  # the commission left the holding
    assert drv.ctx.spot.qty == pytest.approx(held, abs=1e-12)
    assert drv.ctx.perp.qty == pytest.approx(sim.position("BTCUSDT"), abs=1e-12)
    assert sim.position("BTCUSDT") == pytest.approx(-math.floor(held / 0.001 + 1e-9) * 0.001, abs=1e-12)


@pytest.mark.parametrize("leg", ["spot", "perp"])
@pytest.mark.parametrize("mode", MODES)
def test_late_execution_within_recv_window_is_found_and_booked_never_resent(leg, mode):
    async def go():
        async with live_env(timeout_ms=400, ccxt_options={"recvWindow": RECV_MS},
                            outcome_margin_s=MARGIN) as env:
            faults = BinanceFaults(env.sim)
            drv, alerts = await _setup(env)
            faults.lose_answer(ORDER_PATH[leg], mode=mode, execute_after_s=0.6, hang_s=1.0)
            await drv.feed(MarketUpdate(now(), 20_000.0, 20_000.0, funding_rate=0.001))
            first = _posts(env.sim, leg)[0][2]["newClientOrderId"]
            # the leg holds while the outcome is unknown, and an alert names the order
            assert drv.ctx.pending_on(leg) and drv.ctx.pending[first].status == "unknown"
            assert any(first in a.message and "outcome unknown" in a.message for a in alerts)
            await _run_until_settled(drv, faults, WINDOW + 0.8)
            # executed late by the venue, found at the venue, booked; never re-sent
            assert [c for c, _t in faults.late] == [first]
            assert len(faults.orders_for(first)) == 1 and len(_posts(env.sim, leg)) == 1
            assert not any(isinstance(a, PlaceOrder) and a.retry_of for a in drv.actions)
            assert drv.ctx.state is State.MONITORING_POSITIONS
            _ledger_is_the_venue(drv, env.sim)
    asyncio.run(go())


@pytest.mark.parametrize("leg", ["spot", "perp"])
@pytest.mark.parametrize("mode", MODES)
def test_truly_lost_order_is_resent_after_the_window_under_a_new_linked_id(leg, mode):
    async def go():
        async with live_env(timeout_ms=400, ccxt_options={"recvWindow": RECV_MS},
                            outcome_margin_s=MARGIN) as env:
            faults = BinanceFaults(env.sim)
            drv, alerts = await _setup(env)
            faults.lose_answer(ORDER_PATH[leg], mode=mode, execute_after_s=None, hang_s=1.0)
            await drv.feed(MarketUpdate(now(), 20_000.0, 20_000.0, funding_rate=0.001))
            first_send = next(t for t, k in faults.log if k.startswith("POST") and k.endswith("/order"))
            first = _posts(env.sim, leg)[0][2]["newClientOrderId"]
            await _run_until_settled(drv, faults, WINDOW + 0.8)
            posts = _posts(env.sim, leg)
            assert len(posts) == 2
            second = posts[1][2]["newClientOrderId"]
            # a NEW id: same intent (seq), next attempt; journaled / alerted as a retry of the first
            assert second != first and second[:7] == first[:7] and second[7] == "1"
            (retry,) = [a for a in drv.actions if isinstance(a, PlaceOrder) and a.retry_of]
            assert (retry.request.client_order_id, retry.retry_of) == (second, first)
            assert any(first in a.message and second in a.message for a in alerts)
            # not before the window: the resend reached the venue >= sent + recvWindow + margin
            path = ORDER_PATH[leg].split(" ", 1)[1].rstrip("$")
            resend_at = [t for t, k in faults.log if k == "POST " + path][1]
            assert resend_at - first_send >= WINDOW - 0.05
            # one venue order executed for the intent; the hedge completes its entry
            assert len(faults.executed_for(first)) == 1
            assert drv.ctx.state is State.MONITORING_POSITIONS
            _ledger_is_the_venue(drv, env.sim)
    asyncio.run(go())


def test_executed_before_the_error_answer_is_found_at_once():
    async def go():
        async with live_env(timeout_ms=400, ccxt_options={"recvWindow": RECV_MS},
                            outcome_margin_s=MARGIN) as env:
            faults = BinanceFaults(env.sim)
            drv, alerts = await _setup(env)
            faults.lose_answer(ORDER_PATH["spot"], mode="503", execute_after_s=0.0)
            await drv.feed(MarketUpdate(now(), 20_000.0, 20_000.0, funding_rate=0.001))
            first = _posts(env.sim, "spot")[0][2]["newClientOrderId"]
            assert len(faults.orders_for(first)) == 1 and len(_posts(env.sim, "spot")) == 1
            assert drv.ctx.state is State.MONITORING_POSITIONS and not drv.ctx.pending
    asyncio.run(go())


def test_late_execution_beyond_recv_window_is_refused_by_the_simulator():
    async def go():
        async with live_env() as env:
            faults = BinanceFaults(env.sim)
            with pytest.raises(ValueError, match="recvWindow"):
                faults.lose_answer(mode="503", execute_after_s=11.0)
                await faults._lose(None, "POST /api/v3/order", {"recvWindow": "10000"}, faults.lost.pop(), 0.0)
    asyncio.run(go())


def test_find_order_falls_back_to_the_venues_trade_records():
    # an order the client-id look-up does not show (Binance: "Order does not exist." -2013, e.g. an
    # order the query endpoint no longer serves) is still found through the account's trades
    from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter
    from hedge_core.types import OrderRequest, Side, client_order_id

    async def go():
        async with live_env() as env:
            env.sim.set_price("BTCUSDT", 20_000.0)
            await env.adapter.load_markets()
            cid = client_order_id("tr", "perp", 3)
            placed = await env.adapter.create_order(OrderRequest(PERP, Side.SELL, 0.01, cid))
            fresh = CcxtLiveAdapter("binance", env.credentials, session=env.session, enable_rate_limit=False,
                                    governor=env.adapter.governor)  # knows no order ids (a restart)
            try:
                await fresh.load_markets()
                env.sim.inject(r"GET /fapi/v1/order$", count=1, code=-2013, msg="Order does not exist.")
                found = await fresh.find_order(PERP, cid, now() - pd.Timedelta(minutes=1))
                assert found is not None and found.client_order_id == cid and found.id == placed.id
                assert [r[1] for r in env.sim.requests if r[1] == "/fapi/v1/userTrades"]  # via the trades
                assert await fresh.find_order(PERP, client_order_id("tr", "perp", 4)) is None
            finally:
                await fresh.close()
    asyncio.run(go())
