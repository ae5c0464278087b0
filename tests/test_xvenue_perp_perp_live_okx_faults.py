"""Faults DURING a live perp pair with OKX as one leg, in process (the runner's own HedgeTask and driver), real
ccxt against two simulators (tests/support/pair_okx_env.py), asserted on the VENUES' own state:

- the second leg's order answer lost (no answer before the client's timeout) and resolved at ITS venue by client
  id, with no duplicate order there and nothing asked of the first venue;
- a rate limit on the second venue while the first leg is open (OKX 50011/50061, Binance 429, Bybit 10006): the
  hedge waits and hedges once, the first leg is not unwound;
- the second venue refusing for insufficient margin (OKX 51008, Binance -2019): the first leg is unwound on
  its own venue, nothing is left at either.

Each venue behaviour is its simulator's, citing its documentation: tests/support/okx_faults.py (OKX v5 "Rate
Limits", "Error Code" 50004/50011/50061, "Transaction Timeouts"), tests/support/binance_faults.py (USD-M "General
Info" -> "LIMITS": 429 with ``Retry-After``), tests/support/bybit_faults.py (v5 "Rate Limit": retCode 10006).
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from hedge_core.engine.states import State
from tests.support.inprocess_hedge import running_hedge, stop, until
from tests.support.pair_okx_env import OKX_SWAP, RATE_B, pair_params, pair_spec, perp_pair, position, venue_sim

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # local venue simulators

# a short client timeout and recvWindow (the fault matrix's): a lost order's outcome window is ~1.3 s, not 12 s
FAST = {"timeout_ms": 1500, "ccxt_options": {"recvWindow": 1000}, "outcome_margin_s": 0.3}


def venue_orders(venue: str, sim) -> list[tuple[str, float]]:
    """(client id, executed BASE) of every order the venue holds for the account, any status."""
    if venue == "okx":
        return [(o.cl_ord_id, o.acc_fill_sz * sim.ct_val(o.inst_id)) for o in sim.orders.values()]
    if venue == "binance":
        return [(o.client_id, o.executed) for o in sim.orders.values()]
    return [(o.link_id, o.cum_qty) for o in sim.orders.values()]


def faults_of(venue: str, sim):
    if venue == "okx":
        from tests.support.okx_faults import OkxFaults
        return OkxFaults(sim)
    if venue == "binance":
        from tests.support.binance_faults import BinanceFaults
        return BinanceFaults(sim)
    from tests.support.bybit_faults import BybitFaults
    return BybitFaults(sim)


LOST = {"okx": dict(inst_id=OKX_SWAP, mode="timeout", execute_after_s=0.0, hang_s=3.0),  # 50004 after 3 s
        "binance": dict(pattern=r"POST /fapi/v1/order$", mode="timeout", execute_after_s=0.0, hang_s=3.0)}


@pytest.mark.parametrize("first,second", [("bybit", "okx"), ("okx", "binance")])
def test_second_leg_answer_lost_is_resolved_at_its_venue_without_a_duplicate(tmp_path, first, second):
    # the second venue takes the second leg's order at once, its answer comes 3 s later (past the client's 1.5 s
    # timeout). The outcome is unknown: it is looked up at THAT venue by client id (found filled), its fill booked
    # from that venue's trade records, nothing re-sent; the first venue is never asked about it.
    async def go():
        async with perp_pair(first, second, **FAST) as pv:
            faults = faults_of(second, pv.second_sim)
            faults.lose_answer(**LOST[second])
            sup, task, store = await running_hedge(tmp_path, pv.adapter, pair_params(first, second),
                                                   hedge_id="lf", **pair_spec(first, second))
            try:
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, timeout=30,
                            what="both legs open")
                await until(lambda: not task.driver.ctx.pending, what="nothing pending")
                # one intent of the second leg, journaled under its venue, never retried
                [intent] = [r for r in task.journal.orders("lf") if r["leg"] == "perp"]
                cid = intent["client_order_id"]
                assert intent["venue"] == second and intent["retry_of"] is None and intent["status"] == "closed"
                venue_cid = cid.replace("-", "") if second == "okx" else cid  # OKX: "up to 32 alphanumerics"
                held = venue_orders(second, pv.second_sim)
                assert [c for c, _q in held] == [venue_cid]  # the venue holds it once: no duplicate
                long_a, short_b = position(first, pv.first_sim), position(second, pv.second_sim)
                assert long_a > 0 > short_b and abs(long_a + short_b) <= 0.001
                assert held[0][1] == pytest.approx(-short_b, rel=1e-12)
                assert task.driver.ctx.perp.qty == pytest.approx(short_b, abs=1e-12)
                asked = [r for r in pv.second_sim.requests if r[0] == "GET" and venue_cid in str(r[2])]
                assert asked  # resolved at its venue by its client id
                assert not [r for r in pv.first_sim.requests if venue_cid in str(r[2]) or cid in str(r[2])]
                if second == "okx":
                    assert faults.unfired() == [] and [c for c, _t in faults.late] == [venue_cid]
                else:
                    assert faults.lost == [] and len(faults.executed_for(cid)) == 1  # the fault fired, once
                fills = task.journal.fills("lf")
                b = fills[fills["leg"] == "perp"]
                assert set(b["venue"]) == {second} and set(b["client_order_id"]) == {cid}
                assert b["qty"].sum() == pytest.approx(-short_b, rel=1e-12)
                assert await task.reconcile_now() == []
            finally:
                await stop(task, store)
    asyncio.run(go())


def _limit(second: str, faults) -> str:
    """Arm the second venue's rate limit on its next order; returns the code its answers carry."""
    if second == "okx":  # 50011 (the instrument's limit) then 50061 (the sub-account's), both HTTP 429
        faults.escalate(r"POST /api/v5/trade/order$", OKX_SWAP)
        return "50061"
    if second == "binance":  # HTTP 429 with Retry-After: 1 (a request before it is over: a 418 ban)
        faults.rate_limit(r"POST /fapi/v1/order$", retry_after_s=1)
        return "429"
    faults.too_many_visits(r"POST /v5/order/create$", reset_s=1.0)  # retCode 10006, resets 1 s later
    return "10006"


ORDER_PATH = {"okx": r"POST /api/v5/trade/order$", "binance": r"POST /fapi/v1/order$",
              "bybit": r"POST /v5/order/create$"}


@pytest.mark.parametrize("first,second", [("bybit", "okx"), ("okx", "binance"), ("okx", "bybit")])
def test_rate_limit_on_the_second_venue_while_the_first_leg_is_open(tmp_path, first, second):
    # the first leg fills at its venue; the second venue answers the second leg's order with its rate limit.
    # A rate limit is temporary: the hedge waits and hedges ONCE at the second venue (nothing placed by the
    # limited requests), the first leg is not unwound, the hedge is not stopped
    async def go():
        async with perp_pair(first, second) as pv:
            faults = faults_of(second, pv.second_sim)
            code = _limit(second, faults)
            first_at_limit: list[float] = []
            limit_at: list[float] = []
            faults.when(ORDER_PATH[second], lambda: (first_at_limit.append(position(first, pv.first_sim)),
                                                     limit_at.append(time.monotonic())))
            sup, task, store = await running_hedge(tmp_path, pv.adapter, pair_params(first, second),
                                                   hedge_id="rl", **pair_spec(first, second))
            try:
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, timeout=60,
                            what="both legs open")
                naked_s = time.monotonic() - limit_at[0]
                await until(lambda: not task.driver.ctx.pending, what="nothing pending")
                assert first_at_limit and first_at_limit[0] > 0  # the first leg was open when the limit came
                # the venue REFUSED the order (nothing placed): the leg waits out the limit and a new client id
                # goes out; it is not an unknown outcome held for a lookup window (OKX names no reset time: it
                # was, and the first leg stood naked ~24 s over two lookups)
                alerts = [a["message"] for a in task.summary()["alerts"]]
                assert any(" not sent (" in m and code in m for m in alerts), alerts
                assert naked_s < 8.0, f"the first leg stood naked {naked_s:.1f} s"
                long_a, short_b = position(first, pv.first_sim), position(second, pv.second_sim)
                assert long_a > 0 > short_b and abs(long_a + short_b) <= 0.001
                assert long_a == pytest.approx(first_at_limit[0], abs=1e-12)  # never unwound
                held = venue_orders(second, pv.second_sim)
                assert len(held) == 1 and held[0][1] == pytest.approx(-short_b, rel=1e-12)  # hedged once
                assert len(venue_orders(first, pv.first_sim)) == 1
                assert task.driver.ctx.state is State.MONITORING_POSITIONS
                assert not any("unwinding" in a["message"] for a in task.summary()["alerts"])
                assert await task.reconcile_now() == []
            finally:
                await stop(task, store)
    asyncio.run(go())


REFUSED = {"okx": "51008", "binance": "-2019", "bybit": "110007"}  # insufficient margin, per venue's error table


@pytest.mark.parametrize("first,second", [("bybit", "okx"), ("okx", "binance"), ("okx", "bybit")])
def test_second_venue_refusing_for_margin_unwinds_the_first_leg_on_its_venue(tmp_path, first, second):
    # the second venue's account holds 1 USDT: every order of the second leg is refused (OKX 51008 "Insufficient
    # USDT margin in account", Binance -2019 "Margin is insufficient", Bybit 110007) after the first leg filled
    # -> after the retries the engine closes the first leg ON ITS VENUE, reduce-only; nothing is left anywhere
    async def go():
        async with perp_pair(first, second, second_sim=venue_sim(second, RATE_B, usdt=1.0)) as pv:
            sup, task, store = await running_hedge(tmp_path, pv.adapter, pair_params(first, second),
                                                   hedge_id="rf", **pair_spec(first, second))
            try:
                first_orders = lambda: venue_orders(first, pv.first_sim)  # noqa: E731
                await until(lambda: len(first_orders()) >= 2, timeout=30, what=f"the first leg unwound on {first}")
                await until(lambda: not task.driver.ctx.pending, what="nothing pending")
                opened, closed = first_orders()[:2]
                assert opened[1] > 0 and closed[1] == pytest.approx(opened[1], rel=1e-12)  # all of it, back
                assert position(first, pv.first_sim) == 0 and abs(task.driver.ctx.spot.qty) < 1e-12
                refused = [a for a in pv.second_sim.answers if re.search(ORDER_PATH[second], a[0])]
                assert len(refused) == task.params.execution.hedge_retries + 1
                assert {str(a[2]) for a in refused} == {REFUSED[second]}
                assert position(second, pv.second_sim) == 0
                assert not [q for _c, q in venue_orders(second, pv.second_sim) if q > 0]  # nothing executed there
                assert any("unwinding" in a["message"] for a in task.summary()["alerts"])
                assert task.driver.ctx.state is not State.ERROR
                orders = task.journal.orders("rf")
                assert {r["venue"] for r in orders if r["leg"] == "spot"} == {first}
                assert {r["venue"] for r in orders if r["leg"] == "perp"} == {second}
                side_of = {r["client_order_id"]: r for r in orders if r["leg"] == "spot"}
                assert [r["reduce_only"] for r in side_of.values()] == [False, True]  # the unwind only reduces
            finally:
                await stop(task, store)
    asyncio.run(go())
