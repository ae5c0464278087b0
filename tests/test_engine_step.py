"""step(): the entry flow and every real-world edge, event by event (no venue involved)."""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import pytest

from hedge_core.engine import (
    Alert,
    AlertLevel,
    CancelOrder,
    Command,
    FillEvent,
    FundingSettled,
    GuardFired,
    OperatorCommand,
    OrderTimeout,
    OrderUpdate,
    OrderUpdateKind,
    QueryOrder,
    RecordTransition,
    SetLeverage,
    SetMarginMode,
    State,
    Timer,
    step,
)
from hedge_core.params.models import (
    ExecutionParams,
    ExitParams,
    RebalanceParams,
)
from hedge_core.types import Fill, Side
from tests.support.engine_steps import (
    T0,
    H,
    fill_of,
    filled,
    fresh,
    hedged,
    mkt,
    params,
    places,
    run,
)

# ---- entry ------------------------------------------------------------------------------------


def test_clean_entry_spot_then_hedge():
    p = params()
    ctx, acts = step(fresh(), mkt(T0), p)
    assert ctx.state is State.OPENING_SPOT_POSITION
    assert any(isinstance(a, SetMarginMode) for a in acts) and any(isinstance(a, SetLeverage) for a in acts)
    (spot_order,) = places(acts)
    assert spot_order.leg == "spot" and spot_order.request.side is Side.BUY
    assert spot_order.request.qty == pytest.approx(0.25)  # 10,000 / 40,000, lot 1e-5
    ctx, acts = filled(ctx, p, spot_order, T0)
    assert ctx.state is State.OPENING_FUTURES_HEDGE
    (perp_order,) = places(acts)
    assert perp_order.leg == "perp" and perp_order.request.side is Side.SELL and perp_order.request.qty == 0.25
    ctx, acts = filled(ctx, p, perp_order, T0)
    assert ctx.state is State.MONITORING_POSITIONS
    assert ctx.delta == pytest.approx(0.0) and ctx.hedge_ratio == pytest.approx(1.0)
    assert [r.to_state for r in ctx.history] == [State.OPENING_SPOT_POSITION, State.OPENING_FUTURES_HEDGE,
                                                 State.MONITORING_POSITIONS]


def test_no_entry_below_min_funding_rate_or_on_negative_funding_without_spot_short():
    p = params(min_funding_rate=0.0005)
    ctx, acts = step(fresh(), mkt(T0, rate=0.00049), p)
    assert ctx.state is State.ANALYZING_MARKET and not acts
    ctx, acts = step(fresh(), mkt(T0, rate=0.0005), p)
    assert ctx.state is State.OPENING_SPOT_POSITION
    ctx, acts = step(fresh(), mkt(T0, rate=-0.001), p)
    assert ctx.state is State.ANALYZING_MARKET and not places(acts)


def test_negative_funding_with_spot_short_goes_short_spot_long_perp():
    p = params(allow_spot_short=True)
    ctx, acts = step(fresh(), mkt(T0, rate=-0.001), p)
    (o,) = places(acts)
    assert o.request.side is Side.SELL
    ctx, acts = filled(ctx, p, o, T0)
    (h,) = places(acts)
    assert h.leg == "perp" and h.request.side is Side.BUY and h.request.qty == 0.25


def test_borrow_interest_accrues_on_a_spot_short():
    p = params(allow_spot_short=True, borrow_apr=0.0876)
    ctx, acts = step(fresh(), mkt(T0, rate=-0.001), p)
    ctx, acts = filled(ctx, p, places(acts)[0], T0)
    ctx, acts = filled(ctx, p, places(acts)[0], T0)
    ctx, _ = step(ctx, mkt(T0 + H, rate=-0.001), p)
    assert ctx.spot.interest == pytest.approx(0.25 * 40_000 * 0.0876 / 8760)


def test_entry_timed_relative_to_next_funding():
    p = params(enter_within_s_of_funding=3600)
    far = mkt(T0, next_funding_ts=T0 + 3 * H)
    near = mkt(T0 + 2 * H, next_funding_ts=T0 + 3 * H)
    assert step(fresh(), far, p)[0].state is State.ANALYZING_MARKET
    assert step(fresh(), near, p)[0].state is State.OPENING_SPOT_POSITION


def test_partial_spot_fill_is_hedged_by_what_filled():
    p = params()
    ctx, acts = step(fresh(), mkt(T0), p)
    o = places(acts)[0]
    ctx, acts = run(ctx, p, [fill_of(o, T0, qty=0.1),
                             OrderUpdate(T0, o.request.client_order_id, OrderUpdateKind.CANCELED, filled=0.1)])
    assert ctx.state is State.OPENING_FUTURES_HEDGE
    (h,) = places(acts)
    assert h.request.qty == pytest.approx(0.1)
    ctx, _ = filled(ctx, p, h, T0)
    assert ctx.state is State.MONITORING_POSITIONS and ctx.target_spot_qty == pytest.approx(0.1)


def test_final_status_before_fill_blocks_new_orders_until_fill_arrives():
    p = params()
    ctx, acts = step(fresh(), mkt(T0), p)
    o = places(acts)[0]
    ctx, acts = step(ctx, OrderUpdate(T0, o.request.client_order_id, OrderUpdateKind.CLOSED, filled=0.25), p)
    assert not places(acts) and ctx.state is State.OPENING_SPOT_POSITION
    ctx, acts = step(ctx, fill_of(o, T0), p)
    assert ctx.state is State.OPENING_FUTURES_HEDGE and len(places(acts)) == 1


def test_late_fill_after_cancel_is_booked_and_hedged():
    p = params()
    ctx, acts = step(fresh(), mkt(T0), p)
    o = places(acts)[0]
    ctx, acts = run(ctx, p, [fill_of(o, T0, qty=0.2, n=1),
                             OrderUpdate(T0, o.request.client_order_id, OrderUpdateKind.CANCELED, filled=0.2)])
    ctx, _ = filled(ctx, p, places(acts)[0], T0)
    assert ctx.state is State.MONITORING_POSITIONS and ctx.perp.qty == pytest.approx(-0.2)
    # the venue reports 0.05 more filled on the cancelled order
    ctx, acts = step(ctx, fill_of(o, T0 + H, qty=0.05, n=2), p)
    assert ctx.spot.qty == pytest.approx(0.25)
    assert any(isinstance(a, Alert) and "late fill" in a.message for a in acts)
    assert ctx.state is State.REBALANCING
    (h,) = places(acts)
    assert h.leg == "perp" and h.request.side is Side.SELL and h.request.qty == pytest.approx(0.05)


@pytest.mark.parametrize("unwind", [True, False])
def test_perp_rejected_after_spot_filled_retries_then_unwinds(unwind):
    p = params(execution=ExecutionParams(hedge_retries=2, unwind_on_hedge_failure=unwind))
    ctx, acts = step(fresh(), mkt(T0), p)
    ctx, acts = filled(ctx, p, places(acts)[0], T0)
    coids = []
    for i in range(3):
        (h,) = places(acts)
        coids.append(h.request.client_order_id)
        ctx, acts = step(ctx, OrderUpdate(T0, h.request.client_order_id, OrderUpdateKind.REJECTED,
                                          reason="-2019 Margin is insufficient"), p)
    assert len(set(coids)) == 3  # each attempt is a new order
    crit = [a for a in acts if isinstance(a, Alert) and a.level is AlertLevel.CRITICAL]
    assert crit, "a failed hedge is never silent"
    if unwind:
        assert ctx.state is State.CLOSING_POSITIONS
        (u,) = places(acts)
        assert u.leg == "spot" and u.request.side is Side.SELL and u.request.qty == pytest.approx(0.25)
        ctx, acts = filled(ctx, p, u, T0)
        assert ctx.state is State.COMPLETED and ctx.spot.qty == 0.0
    else:
        assert ctx.state is State.ERROR and not places(acts)


def test_timeout_queries_then_resends_under_a_new_linked_client_order_id():
    p = params(execution=ExecutionParams(max_resends=1))
    ctx, acts = step(fresh(), mkt(T0), p)
    o = places(acts)[0]
    coid = o.request.client_order_id
    ctx, acts = step(ctx, OrderTimeout(T0, coid), p)
    assert acts == [QueryOrder("spot", "binance", "BTC/USDT", coid)]
    # nothing new is sent while the order is unresolved, whatever the market does
    ctx, acts = step(ctx, mkt(T0 + pd.Timedelta(seconds=1)), p)
    assert not places(acts)
    ctx, acts = step(ctx, OrderUpdate(T0, coid, OrderUpdateKind.NOT_FOUND), p)
    (again,) = places(acts)
    # a NEW client order id (same seq, next attempt) linked to the first; the same request else
    assert again.retry_of == coid and again.request.client_order_id != coid
    assert again.request.client_order_id[:7] == coid[:7] and again.request.client_order_id[7] == "1"
    assert replace(again.request, client_order_id=coid) == o.request
    coid = again.request.client_order_id
    ctx, acts = step(ctx, OrderTimeout(T0, coid), p)
    ctx, acts = step(ctx, OrderUpdate(T0, coid, OrderUpdateKind.NOT_FOUND), p)
    # max_resends reached: counted as a failed attempt; a NEW id is used for the retry
    (retry,) = places(acts)
    assert retry.request.client_order_id != coid


def test_timeout_query_finds_the_order_filled_no_resend():
    p = params()
    ctx, acts = step(fresh(), mkt(T0), p)
    o = places(acts)[0]
    ctx, acts = step(ctx, OrderTimeout(T0, o.request.client_order_id), p)
    ctx, acts = filled(ctx, p, o, T0)
    spot_orders = [a for a in places(acts) if a.leg == "spot"]
    assert not spot_orders and ctx.state is State.OPENING_FUTURES_HEDGE


def test_unresolved_order_goes_to_error_after_max_queries():
    p = params(execution=ExecutionParams(max_queries=2))
    ctx, acts = step(fresh(), mkt(T0), p)
    coid = places(acts)[0].request.client_order_id
    for _ in range(2):
        ctx, acts = step(ctx, OrderTimeout(T0, coid), p)
        assert isinstance(acts[0], QueryOrder)
    ctx, acts = step(ctx, OrderTimeout(T0, coid), p)
    assert ctx.state is State.ERROR
    assert any(isinstance(a, Alert) and a.level is AlertLevel.CRITICAL for a in acts)


def test_timer_queries_silent_orders_and_cancels_stale_working_ones():
    p = params(execution=ExecutionParams(order_timeout_s=10))
    ctx, acts = step(fresh(), mkt(T0), p)
    coid = places(acts)[0].request.client_order_id
    ctx, acts = step(ctx, Timer(T0 + pd.Timedelta(seconds=9.9)), p)
    assert not [a for a in acts if isinstance(a, QueryOrder)]
    ctx, acts = step(ctx, Timer(T0 + pd.Timedelta(seconds=10)), p)
    assert [a for a in acts if isinstance(a, QueryOrder)]
    ctx, _ = step(ctx, OrderUpdate(T0, coid, OrderUpdateKind.ACK, order_id="1"), p)
    ctx, acts = step(ctx, Timer(T0 + pd.Timedelta(seconds=21)), p)
    assert [a for a in acts if isinstance(a, CancelOrder) and a.client_order_id == coid]


def test_duplicate_fill_is_booked_once_and_unknown_fill_not_at_all():
    p = params()
    ctx, acts = step(fresh(), mkt(T0), p)
    o = places(acts)[0]
    f = fill_of(o, T0, qty=0.1)
    ctx, _ = run(ctx, p, [f, f])
    assert ctx.spot.qty == pytest.approx(0.1)
    stranger = FillEvent(Fill("x", "o", "not-ours", "BTC/USDT", Side.BUY, 1.0, 40_000.0, 0.0, T0), "spot")
    ctx2, acts = step(ctx, stranger, p)
    assert ctx2.spot.qty == pytest.approx(0.1)
    assert any(isinstance(a, Alert) and a.level is AlertLevel.CRITICAL for a in acts)


def test_same_events_same_actions_deterministic_ids():
    p = params()
    evs = [mkt(T0), mkt(T0 + H)]
    _, a1 = run(fresh(), p, evs)
    _, a2 = run(fresh(), p, evs)
    assert a1 == a2


# ---- monitoring: rebalancing, funding, exits ---------------------------------------------------


@pytest.mark.parametrize("perp_qty,rebalance", [(-0.751, False), (-0.75, False), (-0.749, True)])
def test_drift_threshold_edge(perp_qty, rebalance):
    p = params(rebalance=RebalanceParams(drift_threshold=0.25, ratio_min=0.5, cooldown_s=0))
    ctx, p = hedged(p)
    ctx = replace(ctx, spot=replace(ctx.spot, qty=1.0), perp=replace(ctx.perp, qty=perp_qty), target_spot_qty=1.0)
    ctx, acts = step(ctx, mkt(T0 + H), p)
    assert (ctx.state is State.REBALANCING) is rebalance
    if rebalance:
        (o,) = places(acts)
        assert o.request.qty == pytest.approx(0.251) and o.request.side is Side.SELL
        ctx, _ = filled(ctx, p, o, T0 + H)
        assert ctx.state is State.MONITORING_POSITIONS and abs(ctx.delta) <= 0.001


def test_rebalance_respects_cooldown_and_min_order_notional():
    p = params(rebalance=RebalanceParams(drift_threshold=0.01, cooldown_s=3600, min_order_notional=500))
    ctx, p = hedged(p)
    ctx = replace(ctx, last_rebalance_ts=T0)
    ctx = replace(ctx, perp=replace(ctx.perp, qty=-0.2))  # 0.05 short of the target = 2,000 USDT
    ctx1, _ = step(ctx, mkt(T0 + pd.Timedelta(minutes=59)), p)
    assert ctx1.state is State.MONITORING_POSITIONS
    ctx2, _ = step(ctx, mkt(T0 + H), p)
    assert ctx2.state is State.REBALANCING
    small = replace(ctx, perp=replace(ctx.perp, qty=-0.24))  # 400 USDT < 500 minimum
    ctx3, _ = step(small, mkt(T0 + H), p)
    assert ctx3.state is State.MONITORING_POSITIONS


def test_funding_booked_and_unfavourable_intervals_exit():
    p = params(exit=ExitParams(funding_unfavourable_intervals=2, profit_target_pct=None, stop_loss_pct=None))
    ctx, p = hedged(p)
    ctx, _ = step(ctx, FundingSettled(T0 + 8 * H, 0.001, 40_000.0), p)
    assert ctx.perp.funding == pytest.approx(0.25 * 40_000 * 0.001)
    assert ctx.unfavourable_funding == 0
    ctx, _ = step(ctx, FundingSettled(T0 + 16 * H, -0.0001, 40_000.0), p)
    ctx, _ = step(ctx, mkt(T0 + 17 * H, rate=-0.0001), p)
    assert ctx.state is State.MONITORING_POSITIONS
    ctx, _ = step(ctx, FundingSettled(T0 + 24 * H, -0.0001, 40_000.0), p)
    ctx, _acts = step(ctx, mkt(T0 + 24 * H, rate=-0.0001), p)
    assert ctx.state is State.CLOSING_POSITIONS and "funding unfavourable" in ctx.exit_reason


def test_exit_closes_both_legs_and_completes():
    ctx, p = hedged(params(exit=ExitParams(max_holding_hours=2)))
    ctx, acts = step(ctx, mkt(T0 + 2 * H), p)
    assert ctx.state is State.CLOSING_POSITIONS
    orders = {a.leg: a for a in places(acts)}
    assert orders["perp"].request.reduce_only and orders["perp"].request.side is Side.BUY
    assert orders["spot"].request.side is Side.SELL
    for a in orders.values():
        ctx, _ = filled(ctx, p, a, T0 + 2 * H)
    assert ctx.state is State.COMPLETED and ctx.is_flat


@pytest.mark.parametrize("lead_min,rate,deferred", [(30, 0.001, True), (61, 0.001, False), (30, -0.001, False)])
def test_soft_exit_deferred_until_a_received_funding(lead_min, rate, deferred):
    ctx, p = hedged(params(exit=ExitParams(max_holding_hours=2, defer_within_s_of_funding=3600)))
    t = T0 + 2 * H
    ctx, _ = step(ctx, mkt(t, rate=rate, next_funding_ts=t + pd.Timedelta(minutes=lead_min)), p)
    assert (ctx.state is State.MONITORING_POSITIONS) is deferred


@pytest.mark.parametrize("lead_min,rate,deferred", [(30, 0.001, True), (61, 0.001, False), (30, -0.001, False)])
def test_soft_exit_deferred_while_rebalancing_too(lead_min, rate, deferred):
    """A soft exit found in REBALANCING waits for a funding the position receives, as in MONITORING_POSITIONS
    (it used to close at once there); a stop never waits."""
    ctx, p = hedged(params(exit=ExitParams(max_holding_hours=2, defer_within_s_of_funding=3600)))
    ctx = replace(ctx, state=State.REBALANCING)
    t = T0 + 2 * H
    ctx, _ = step(ctx, mkt(t, rate=rate, next_funding_ts=t + pd.Timedelta(minutes=lead_min)), p)
    assert (ctx.state is not State.CLOSING_POSITIONS) is deferred, ctx.state


def test_rearm_goes_back_to_analyzing_and_re_enters_later():
    ctx, p = hedged(params(exit=ExitParams(max_holding_hours=1, rearm=True)))
    ctx, acts = step(ctx, mkt(T0 + H), p)
    for a in places(acts):
        ctx, _ = filled(ctx, p, a, T0 + H)
    assert ctx.state is State.ANALYZING_MARKET
    ctx, acts = step(ctx, mkt(T0 + 2 * H), p)
    assert ctx.state is State.OPENING_SPOT_POSITION


# ---- operator ---------------------------------------------------------------------------------


def test_pause_resume_and_refused_pause_while_opening():
    p = params()
    ctx, acts = step(fresh(), mkt(T0), p)
    ctx2, acts = step(ctx, OperatorCommand(T0, Command.PAUSE), p)
    assert ctx2.state is State.OPENING_SPOT_POSITION and any(isinstance(a, Alert) for a in acts)
    ctx, p = hedged(params(rebalance=RebalanceParams(cooldown_s=0)))
    ctx, _ = step(ctx, OperatorCommand(T0 + H, Command.PAUSE), p)
    assert ctx.state is State.PAUSED
    ctx = replace(ctx, perp=replace(ctx.perp, qty=-0.1))
    ctx, acts = step(ctx, mkt(T0 + 2 * H), p)
    assert not places(acts)  # paused: no rebalance
    ctx, acts = step(ctx, OperatorCommand(T0 + 3 * H, Command.RESUME), p)
    # resumed into MONITORING_POSITIONS, whose first look at the book finds the drift at once
    assert [a.to_state for a in acts if isinstance(a, RecordTransition)] == ["MONITORING_POSITIONS", "REBALANCING"]
    assert places(acts)[0].request.qty == pytest.approx(0.15)


def test_kill_switch_flattens_and_latches_until_cancel():
    ctx, p = hedged()
    ctx, acts = step(ctx, OperatorCommand(T0 + H, Command.FLATTEN), p)
    assert any(isinstance(a, GuardFired) and a.name == "kill_switch" for a in acts)
    assert ctx.state is State.CLOSING_POSITIONS and ctx.kill_latched
    for a in places(acts):
        ctx, _ = filled(ctx, p, a, T0 + H)
    assert ctx.state is State.COMPLETED
    fresh_ctx, _ = step(fresh(), OperatorCommand(T0, Command.FLATTEN), p)
    ctx2, acts = step(fresh_ctx, mkt(T0 + H), p)
    assert ctx2.state is State.COMPLETED and not places(acts)


def test_stop_closes_then_completes_without_rearm():
    ctx, p = hedged(params(exit=ExitParams(rearm=True)))
    ctx, acts = step(ctx, OperatorCommand(T0 + H, Command.STOP), p)
    assert ctx.state is State.CLOSING_POSITIONS
    for a in places(acts):
        ctx, _ = filled(ctx, p, a, T0 + H)
    assert ctx.state is State.COMPLETED


def test_rebalance_now_command():
    ctx, p = hedged()
    ctx, acts = step(ctx, OperatorCommand(T0 + H, Command.REBALANCE_NOW), p)
    assert ctx.state is State.MONITORING_POSITIONS  # nothing to do: straight back
    assert [a.trigger for a in acts if isinstance(a, RecordTransition)] == ["REBALANCE_NOW", "REBALANCED"]


def test_bad_market_update_is_ignored_with_an_alert():
    ctx, p = hedged()
    ctx2, acts = step(ctx, mkt(T0 + H, px=math.nan), p)
    assert ctx2.spot_price == ctx.spot_price and any(isinstance(a, Alert) for a in acts)


def test_small_residual_perp_is_closed_reduce_only_below_min_notional():
    ctx, p = hedged()
    # 0.001 BTC x 40,000 = 40 USDT < the perp's 100 USDT min notional: still closable reduce-only
    ctx = replace(ctx, spot=replace(ctx.spot, qty=0.0), perp=replace(ctx.perp, qty=-0.001), target_spot_qty=0.0)
    ctx, acts = step(ctx, OperatorCommand(T0 + H, Command.STOP), p)
    (o,) = places(acts)
    assert o.leg == "perp" and o.request.reduce_only and o.request.qty == pytest.approx(0.001)


def test_stale_market_update_does_not_overwrite_newer_prices():
    ctx, p = hedged()
    ctx, _ = step(ctx, mkt(T0 + 2 * H, px=41_000.0), p)
    ctx2, acts = step(ctx, mkt(T0 + H, px=39_000.0), p)
    assert ctx2.spot_price == 41_000.0 and ctx2.last_ts == T0 + 2 * H and not acts


def test_rebalance_orders_respect_lot_size_and_venue_min_notional():
    p = params(rebalance=RebalanceParams(drift_threshold=0.001, cooldown_s=0, min_order_notional=0.0))
    ctx, p = hedged(p)
    # perp short by 0.0437 BTC: the order is rounded DOWN to the 0.001 lot
    ctx1 = replace(ctx, perp=replace(ctx.perp, qty=-0.25 + 0.0437))
    ctx1, acts = step(ctx1, mkt(T0 + H), p)
    (o,) = places(acts)
    assert o.request.qty == pytest.approx(0.043)
    # 0.0015 BTC short = 60 USDT: below the perp's 100 USDT minimum notional, no order
    ctx2 = replace(ctx, perp=replace(ctx.perp, qty=-0.25 + 0.0015))
    ctx2, acts = step(ctx2, mkt(T0 + H), p)
    assert not places(acts) and ctx2.state is State.MONITORING_POSITIONS


def test_spot_commission_in_base_is_held_less_and_hedged_and_closed_as_held():
    """Binance spot without BNB: 0.25 BTC bought, 0.00025 BTC kept as commission -> 0.24975 held. The
    engine books what arrived, hedges it, does not buy the commission back, and closes what it holds."""
    p = params(rebalance=RebalanceParams(cooldown_s=0, drift_threshold=0.0001))
    ctx, acts = step(fresh(), mkt(T0), p)
    (spot_order,) = places(acts)
    fee_btc = 0.25 * 0.001
    ctx, acts = run(ctx, p, [
        FillEvent(Fill("t-s", "o", spot_order.request.client_order_id, "BTC/USDT", Side.BUY, 0.25, 40_000.0,
                       fee_btc, T0, fee_currency="BTC"), "spot"),
        OrderUpdate(T0, spot_order.request.client_order_id, OrderUpdateKind.CLOSED, filled=0.25)])
    assert ctx.spot.qty == pytest.approx(0.24975) and ctx.spot.fees == pytest.approx(10.0)
    assert ctx.target_spot_qty == pytest.approx(0.24975)
    (perp_order,) = places(acts)
    assert perp_order.request.qty == pytest.approx(0.249)  # the held coins, on the perp's 0.001 lot
    ctx, _ = filled(ctx, p, perp_order, T0)
    ctx, acts = step(ctx, mkt(T0 + H), p)
    assert not [a for a in places(acts) if a.leg == "spot"]  # nothing bought back to reach 0.25
    ctx, acts = step(ctx, OperatorCommand(T0 + H, Command.STOP, "test"), p)
    spot_close = [a for a in places(acts) if a.leg == "spot"] or \
        [a for a in places(run(ctx, p, [fill_of(a, T0 + H) for a in places(acts) if a.leg == "perp"])[1])
         if a.leg == "spot"]
    assert spot_close and spot_close[0].request.side is Side.SELL
    assert spot_close[0].request.qty == pytest.approx(0.24975)  # what is held, not what was bought


def test_a_tick_on_stale_prices_resolves_orders_but_decides_no_rebalance():
    """runner.freshness marks the prices stale: the heartbeat still ticks, but the drift computed from the
    last (stale) prices starts no rebalance until prices are fresh again."""
    from dataclasses import replace as dc_replace

    from hedge_core.engine.context import evolve
    from hedge_core.engine.events import Timer

    ctx, p = hedged()
    ctx = evolve(ctx, perp=dc_replace(ctx.perp, qty=-0.15))  # 0.1 BTC of the hedge gone (e.g. an ADL)
    stale, acts = step(ctx, Timer(T0 + H, prices_stale=True), p)
    assert stale.state is State.MONITORING_POSITIONS and not places(acts)
    assert stale.last_heartbeat == T0 + H  # the heartbeat itself is stamped
    fresh_ctx, acts = step(ctx, Timer(T0 + H), p)
    assert fresh_ctx.state is not State.MONITORING_POSITIONS  # the same tick on fresh prices rebalances
