"""Two PERP legs on two venues in LIVE mode with OKX as one leg, real ccxt against two simulators at once
(tests/support/pair_okx_env.py): OKX ``BTC-USDT-SWAP`` first + Binance USD-M second, and Bybit linear first + OKX
second. The hedge is the runner's own HedgeTask and driver (in process), checked against EACH venue's records.

What OKX's simulator does is OKX v5's documented behaviour (tests/support/okx_sim.py): "Place order" ``sz`` in
CONTRACTS of ``ctVal`` 0.01 BTC (https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-place-order),
"Get transaction details" ``fee`` NEGATIVE for a charge, "Get bills details" funding ``type`` 8 with ``balChg``
+ received (https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-bills-details). Binance USD-M and Bybit
as in tests/test_xvenue_perp_perp_live.py.
"""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.engine.events import Command
from hedge_core.engine.states import State
from tests.support.inprocess_hedge import running_hedge, stop, until
from tests.support.pair_okx_env import OKX_SWAP, PRICE, RATE_A, RATE_B, okx_first_pair, okx_long, okx_second_pair, \
    pair_params, pair_spec

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # local venue simulators

OKX_TAKER, BINANCE_TAKER, BYBIT_TAKER = 0.0005, 0.0005, 0.00055  # the simulators' taker rates (their docs)


def okx_funding(sim) -> float:
    """OKX's funding: bills of type 8, ``balChg`` + received (USDT)."""
    return sum(float(b["balChg"]) for b in sim.bills if b["type"] == "8")


def okx_fees(sim) -> float:
    """OKX's fees charged, USDT (its ``fee`` is negative for a charge)."""
    return -sum(float(f["fee"]) for f in sim.fills if f["instType"] == "SWAP")


async def venue_view(task, adapter) -> tuple:
    """What the two venues say about the hedge (runner.pair_records.pair_venue_figures over its order ids)."""
    from hedge_core.runner.pair_records import pair_venue_figures

    ids = {str(r["order_id"]) for r in task.journal.orders(task.hedge_id) if r.get("order_id")}
    return await pair_venue_figures(adapter, task.driver.ctx, ids, pd.Timestamp(task.started_at))


def test_okx_first_binance_second_open_funding_per_venue_reconcile_close(tmp_path):
    async def go():
        async with okx_first_pair() as pv:
            spec = pair_spec("okx", "binance")
            sup, task, store = await running_hedge(tmp_path, pv.adapter, pair_params("okx", "binance"),
                                                   hedge_id="po", **spec, records_poll_s=0.2, reconcile_s=0.5)
            try:
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, what="entry")
                long_a, short_b = okx_long(pv.first_sim), pv.second_sim.position("BTCUSDT")
                assert long_a > 0 > short_b and abs(long_a + short_b) <= 0.001
                ctx = task.driver.ctx
                assert ctx.spot.venue == "okx" and ctx.perp.venue == "binance"
                assert ctx.spot.qty == pytest.approx(long_a, abs=1e-12)
                assert ctx.perp.qty == pytest.approx(short_b, abs=1e-12)
                # funding from each venue's records: OKX bills type 8 (a long pays contracts x ctVal x mark x
                # rate), Binance FUNDING_FEE income (a short receives)
                pv.first_sim.settle_funding(OKX_SWAP, RATE_A)
                pv.second_sim.settle_funding("BTCUSDT", RATE_B)
                await until(lambda: task.driver.ctx.spot.funding != 0 and task.driver.ctx.perp.funding != 0,
                            what="funding booked on both legs")
                paid_a, got_b = -long_a * PRICE * RATE_A, -short_b * PRICE * RATE_B
                assert okx_funding(pv.first_sim) == pytest.approx(paid_a, rel=1e-9)
                assert task.driver.ctx.spot.funding == pytest.approx(paid_a, rel=1e-9) and paid_a < 0
                assert task.driver.ctx.perp.funding == pytest.approx(got_b, rel=1e-9) and got_b > 0
                task.journal.flush()
                fj = store.read_table("funding_payments", hedge_id="po")
                assert sorted(fj["venue"]) == ["binance", "okx"]
                # reconciliation per venue: each venue's position, trades and funding read at that venue
                assert await task.reconcile_now() == []
                figs, paid = await venue_view(task, pv.adapter)
                assert figs.spot_base == pytest.approx(long_a, abs=1e-12)  # OKX contracts x ctVal: base
                assert figs.perp_qty == pytest.approx(short_b, abs=1e-12)
                assert paid["okx"] == pytest.approx(paid_a, rel=1e-9)
                assert paid["binance"] == pytest.approx(got_b, rel=1e-9)
                assert figs.fees == pytest.approx(OKX_TAKER * long_a * PRICE + BINANCE_TAKER * -short_b * PRICE,
                                                  rel=1e-9)  # OKX's negative fee booked as a positive charge
                await task.command(Command.STOP, "test: close both legs")
                await until(lambda: task.driver.ctx.state is State.COMPLETED, what="both legs closed")
                assert okx_long(pv.first_sim) == 0 and pv.second_sim.position("BTCUSDT") == 0
                fills = task.journal.fills("po")
                a, b = fills[fills["leg"] == "spot"], fills[fills["leg"] == "perp"]
                assert set(a["venue"]) == {"okx"} and set(b["venue"]) == {"binance"}
                assert len(a) == len(pv.first_sim.fills) == 2
                # fees by hand, in USDT and POSITIVE for a charge in the journal: OKX taker 0.05 %
                assert a["fee"].sum() == pytest.approx(OKX_TAKER * (a["qty"] * a["price"]).sum(), rel=1e-9)
                assert a["fee"].sum() == pytest.approx(okx_fees(pv.first_sim), abs=1e-9)
                assert b["fee"].sum() == pytest.approx(BINANCE_TAKER * (b["qty"] * b["price"]).sum(), rel=1e-9)
            finally:
                await stop(task, store)
    asyncio.run(go())


def test_bybit_first_okx_second_open_funding_per_venue_reconcile_close(tmp_path):
    async def go():
        async with okx_second_pair() as pv:
            spec = pair_spec("bybit", "okx")
            sup, task, store = await running_hedge(tmp_path, pv.adapter, pair_params("bybit", "okx"),
                                                   hedge_id="pb", **spec, records_poll_s=0.2, reconcile_s=0.5)
            try:
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, what="entry")
                long_a, short_b = pv.first_sim.positions["BTCUSDT"][0], okx_long(pv.second_sim)
                assert long_a > 0 > short_b and abs(long_a + short_b) <= 0.001
                # OKX holds CONTRACTS: the short in contracts is the base quantity / ctVal 0.01
                assert pv.second_sim.positions[OKX_SWAP][0] == pytest.approx(short_b / 0.01, abs=1e-9)
                ctx = task.driver.ctx
                assert ctx.spot.venue == "bybit" and ctx.perp.venue == "okx"
                assert ctx.perp.qty == pytest.approx(short_b, abs=1e-12)
                pv.first_sim.settle_funding("BTCUSDT", rate=RATE_A)
                pv.second_sim.settle_funding(OKX_SWAP, RATE_B)
                await until(lambda: task.driver.ctx.spot.funding != 0 and task.driver.ctx.perp.funding != 0,
                            what="funding booked on both legs")
                paid_a, got_b = -long_a * PRICE * RATE_A, -short_b * PRICE * RATE_B  # by hand
                assert okx_funding(pv.second_sim) == pytest.approx(got_b, rel=1e-9)  # bill subType 174 income
                assert [b["subType"] for b in pv.second_sim.bills if b["type"] == "8"] == ["174"]
                assert task.driver.ctx.spot.funding == pytest.approx(paid_a, rel=1e-9) and paid_a < 0
                assert task.driver.ctx.perp.funding == pytest.approx(got_b, rel=1e-9) and got_b > 0
                task.journal.flush()
                fj = store.read_table("funding_payments", hedge_id="pb")
                row_b = fj[fj["venue"] == "okx"].iloc[0]
                assert row_b["amount"] == pytest.approx(got_b, rel=1e-9) and row_b["position_qty"] < 0
                assert await task.reconcile_now() == []
                figs, paid = await venue_view(task, pv.adapter)
                assert figs.spot_base == pytest.approx(long_a, abs=1e-12)
                assert figs.perp_qty == pytest.approx(short_b, abs=1e-12)  # OKX contracts x ctVal: base
                assert paid == pytest.approx({"bybit": paid_a, "okx": got_b}, rel=1e-9)
                assert figs.fees == pytest.approx(BYBIT_TAKER * long_a * PRICE + OKX_TAKER * -short_b * PRICE,
                                                  rel=1e-9)
                # a second settlement at OKX alone: booked under okx, at the same rule
                pv.second_sim.settle_funding(OKX_SWAP, RATE_B, ts_ms=pv.second_sim.now_ms() + 1000)
                await until(lambda: task.driver.ctx.perp.funding > 1.5 * got_b, what="the second OKX settlement")
                assert task.driver.ctx.perp.funding == pytest.approx(2 * got_b, rel=1e-9)
                assert task.driver.ctx.spot.funding == pytest.approx(paid_a, rel=1e-9)
                assert await task.reconcile_now() == []
                await task.command(Command.STOP, "test: close both legs")
                await until(lambda: task.driver.ctx.state is State.COMPLETED, what="both legs closed")
                assert pv.first_sim.positions["BTCUSDT"][0] == 0 and okx_long(pv.second_sim) == 0
                fills = task.journal.fills("pb")
                a, b = fills[fills["leg"] == "spot"], fills[fills["leg"] == "perp"]
                assert set(a["venue"]) == {"bybit"} and set(b["venue"]) == {"okx"}
                assert len(b) == len(pv.second_sim.fills) == 2
                assert b["qty"].sum() == pytest.approx(2 * abs(short_b), rel=1e-12)  # base, not contracts
                assert b["fee"].sum() == pytest.approx(OKX_TAKER * (b["qty"] * b["price"]).sum(), rel=1e-9)
                assert b["fee"].sum() == pytest.approx(okx_fees(pv.second_sim), abs=1e-9)
                assert a["fee"].sum() == pytest.approx(BYBIT_TAKER * (a["qty"] * a["price"]).sum(), rel=1e-9)
            finally:
                await stop(task, store)
    asyncio.run(go())


def test_okx_account_timer_in_a_pair_is_rearmed_within_its_limit_and_the_other_venue_never_skipped(tmp_path):
    # OKX "Cancel All After" (https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-cancel-all-after): ONE
    # timer for the account, "Rate Limit: 1 request per second" (the simulator answers a faster call 50011). The
    # supervisor's beats re-arm the OKX venue of the pair at most every ACCOUNT_TIMER_REARM_S
    # (before, every beat: 50011 answers); and OKX refusing never keeps Binance's USD-M countdown from its re-arm
    from hedge_core.errors import RateLimited

    async def go():
        async with okx_first_pair() as pv:
            sup, task, store = await running_hedge(tmp_path, pv.adapter, pair_params("okx", "binance"),
                                                   hedge_id="po", **pair_spec("okx", "binance"))
            try:
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, what="entry")
                assert pv.adapter.cancel_all_scope("BTC/USDT:USDT") == "account"
                okx_calls = lambda: [p for m, path, p in pv.first_sim.requests  # noqa: E731
                                     if path == "/api/v5/trade/cancel-all-after"]
                bin_calls = lambda: [r for r in pv.second_sim.requests  # noqa: E731
                                     if r[1] == "/fapi/v1/countdownCancelAll"]
                for _beat in range(3):  # three beats within a second
                    await sup._arm_countdown(task)
                assert len(okx_calls()) == 1 and okx_calls()[0]["timeOut"] == "120"  # 2 x 600 s, held at OKX's 120
                assert [a for a in pv.first_sim.answers if "cancel-all-after" in a[0]] == \
                    [("POST /api/v5/trade/cancel-all-after", 200, "0")]
                # Binance's per-symbol countdown is re-armed at every beat (its own timer, no throttle of OKX's)
                assert len(bin_calls()) == 3
                # OKX refusing (its 1 request per second, straight after): Binance is still re-armed, then the
                # error is raised for the supervisor to log
                with pytest.raises(RateLimited):
                    await pv.adapter.arm_cancel_all_after("BTC/USDT:USDT", 20.0)
                assert len(bin_calls()) == 4 and "BTCUSDT" in pv.second_sim.countdowns
            finally:
                await stop(task, store)
    asyncio.run(go())
