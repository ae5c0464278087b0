"""Guards at each threshold edge: just below / at / just above. Thresholds are inclusive."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from hedge_core.analytics.risk import (
    brackets_for,
    liquidation_distance,
    liquidation_price,
)
from hedge_core.engine import (
    Command,
    GuardFired,
    OperatorCommand,
    RecordTransition,
    State,
    Timer,
    step,
)
from hedge_core.engine.guards import (
    funding_pay_apr,
    market_guards,
    order_guard,
    perp_liquidation_price,
)
from hedge_core.params.models import GuardParams, RebalanceParams
from hedge_core.types import Side
from tests.support.engine_steps import T0, H, filled, fresh, hedged, mkt, params, places

EPS = 1e-9


def names(verdicts):
    return {v.name for v in verdicts}


def test_daily_loss_edges():
    ctx, _ = hedged()
    g = GuardParams(daily_loss_limit=100.0)
    base = replace(ctx, day_start_pnl=ctx.pnl)
    for shift, fires in ((-99.99, False), (-100.0, True), (-100.01, True)):
        c = replace(base, day_start_pnl=ctx.pnl - shift)
        assert ("daily_loss" in names(market_guards(c, T0, g))) is fires, shift


def test_daily_loss_flattens_through_step_and_is_recorded_with_numbers():
    p = params(guards=GuardParams(daily_loss_limit=50.0))
    ctx, _ = hedged(p)
    ctx, acts = step(ctx, mkt(T0 + H, px=40_000.0, perp=40_300.0), p)  # perp leg loses 75 USDT, spot 0
    fired = [a for a in acts if isinstance(a, GuardFired)]
    assert fired and fired[0].name == "daily_loss" and fired[0].numbers["daily_pnl"] <= -50.0
    assert fired[0].numbers["limit"] == -50.0
    assert ctx.state is State.CLOSING_POSITIONS
    assert {a.leg for a in places(acts)} == {"spot", "perp"}


def test_day_rollover_resets_the_daily_anchor():
    p = params(guards=GuardParams(daily_loss_limit=50.0))
    ctx, _ = hedged(p)
    ctx = replace(ctx, day="2023-12-31")
    ctx2, _ = step(ctx, mkt(T0 + H), p)
    assert ctx2.day == "2024-01-01" and ctx2.day_start_pnl == pytest.approx(ctx.pnl)


def _liq_case(leverage: float = 10.0):
    ctx, _ = hedged()
    ctx = replace(ctx, leverage=leverage)
    lp = perp_liquidation_price(ctx)
    # independent: the risk module directly with isolated margin = notional / leverage
    ref = liquidation_price(ctx.perp.qty, ctx.perp.avg_entry, abs(ctx.perp.qty) * ctx.perp.avg_entry / leverage,
                            brackets_for("BTC/USDT:USDT"))
    assert lp == pytest.approx(ref)
    return ctx, lp


@pytest.mark.parametrize("delta,fires", [(+1e-6, False), (0.0, True), (-1e-6, True)])
def test_liquidation_close_edge(delta, fires):
    ctx, lp = _liq_case()
    mark = 39_000.0
    dist = liquidation_distance(ctx.perp.qty, mark, lp)
    g = GuardParams(liq_distance_close=dist - delta, liq_distance_reduce=0.99)
    c = replace(ctx, mark_price=mark, perp_price=mark)
    assert ("liq_distance_close" in names(market_guards(c, T0, g))) is fires


@pytest.mark.parametrize("delta,fires", [(+1e-6, False), (0.0, True), (-1e-6, True)])
def test_liquidation_reduce_edge(delta, fires):
    ctx, lp = _liq_case()
    mark = 39_000.0
    dist = liquidation_distance(ctx.perp.qty, mark, lp)
    g = GuardParams(liq_distance_reduce=dist - delta, liq_distance_close=0.001)
    c = replace(ctx, mark_price=mark, perp_price=mark)
    assert ("liq_distance_reduce" in names(market_guards(c, T0, g))) is fires


def test_liquidation_reduce_then_close_through_step():
    p = params(guards=GuardParams(liq_distance_reduce=0.05, liq_distance_close=0.02, liq_reduce_fraction=0.5,
                                  funding_cost_apr_limit=None))
    ctx, _ = hedged(p)
    ctx = replace(ctx, leverage=10.0)
    lp = perp_liquidation_price(ctx)
    m = lp / 1.04  # 4 % from liquidation: reduce
    ctx, acts = step(ctx, mkt(T0 + H, px=m, perp=m), p)
    assert any(isinstance(a, GuardFired) and a.name == "liq_distance_reduce" for a in acts)
    assert ctx.state is State.REBALANCING
    orders = {a.leg: a for a in places(acts)}
    assert orders["spot"].request.side is Side.SELL and orders["spot"].request.qty == pytest.approx(0.125)
    m2 = lp / 1.01  # 1 % away: close
    for a in orders.values():
        ctx, _ = filled(ctx, p, a, T0 + H, price=m)
    ctx, acts = step(ctx, mkt(T0 + 2 * H, px=m2, perp=m2), p)
    assert any(isinstance(a, GuardFired) and a.name == "liq_distance_close" for a in acts)
    assert ctx.state is State.CLOSING_POSITIONS


def test_funding_cost_breaker_edges():
    ctx, _ = hedged()  # short perp: pays when the rate is negative
    rate = -0.0005
    apr = funding_pay_apr(ctx.perp.qty, rate, 8.0)
    assert apr == pytest.approx(0.0005 * 3 * 365)
    assert funding_pay_apr(ctx.perp.qty, -rate, 8.0) == 0.0  # receiving is never a cost
    c = replace(ctx, last_funding_rate=rate)
    for limit, fires in ((apr + EPS, False), (apr, True), (apr - EPS, True)):
        assert ("funding_cost" in names(market_guards(c, T0, GuardParams(funding_cost_apr_limit=limit)))) is fires


@pytest.mark.parametrize("silent_s,fires", [(59.999, False), (60.0, True), (60.001, True)])
def test_dead_mans_switch_edges(silent_s, fires):
    p = params(guards=GuardParams(heartbeat_timeout_s=60.0))
    ctx, _ = hedged(p)
    ctx, _ = step(ctx, Timer(T0 + H), p)  # heartbeat
    ctx, acts = step(ctx, Timer(T0 + H + pd.Timedelta(seconds=silent_s), heartbeat=False), p)
    assert any(isinstance(a, GuardFired) and a.name == "dead_mans_switch" for a in acts) is fires
    assert (ctx.state is State.CLOSING_POSITIONS) is fires
    if fires:
        assert ctx.kill_latched
        ctx2, _ = step(ctx, OperatorCommand(ctx.last_ts, Command.CANCEL), p)
        assert not ctx2.kill_latched


@pytest.mark.parametrize("recent,held", [(19, False), (20, True)])
def test_order_rate_limit_edge(recent, held):
    ctx, _ = hedged()
    g = GuardParams(max_orders_per_minute=20)
    times = tuple(T0 + pd.Timedelta(seconds=i) for i in range(recent)) + (T0 - pd.Timedelta(seconds=60),)
    c = replace(ctx, order_times=times)  # the order exactly 60 s old no longer counts
    v = order_guard(c, "perp", Side.SELL, 0.01, 40_000.0, T0 + pd.Timedelta(seconds=59), g)
    assert (v is not None and v.name == "order_rate") is held


def test_order_rate_guard_holds_the_order_and_retries_later():
    p = params(guards=GuardParams(max_orders_per_minute=1))
    ctx, acts = step(fresh(), mkt(T0), p)
    spot = places(acts)[0]
    ctx, acts = filled(ctx, p, spot, T0)
    assert not places(acts) and any(isinstance(a, GuardFired) and a.name == "order_rate" for a in acts)
    assert ctx.state is State.OPENING_FUTURES_HEDGE  # the spot leg waits, hedge not given up
    ctx, acts = step(ctx, mkt(T0 + pd.Timedelta(seconds=61)), p)
    assert [a.leg for a in places(acts)] == ["perp"]


@pytest.mark.parametrize("max_notional,held", [(10_400.0, True), (10_400.0 + 1e-6, True), (10_404.0, False)])
def test_position_limit_blocks_growth_but_never_reduction(max_notional, held):
    ctx, _ = hedged()  # spot 0.25 BTC at 40,000
    g = GuardParams(max_position_notional=max_notional)
    # growing to 0.2601 BTC = 10,404 USDT
    v = order_guard(ctx, "spot", Side.BUY, 0.0101, 40_000.0, T0, g)
    assert (v is not None and v.name == "position_limit") is held
    assert order_guard(ctx, "spot", Side.SELL, 0.2, 40_000.0, T0, GuardParams(max_position_notional=1.0)) is None


def test_position_limit_alert_on_market_move():
    ctx, _ = hedged()
    c = replace(ctx, spot_price=80_000.0)
    v = [x for x in market_guards(c, T0, GuardParams(max_position_notional=15_000.0)) if x.name.startswith("position")]
    assert v and v[0].action == "alert" and v[0].numbers["notional"] == pytest.approx(20_000.0)


def test_guard_is_recorded_once_per_episode():
    p = params(guards=GuardParams(max_position_notional=15_000.0))
    ctx, _ = hedged(p)
    ctx, a1 = step(ctx, mkt(T0 + H, px=80_000.0), p)
    ctx, a2 = step(ctx, mkt(T0 + 2 * H, px=80_000.0), p)
    assert sorted(a.name for a in a1 if isinstance(a, GuardFired) and a.name.startswith("position")) == [
        "position_limit_perp", "position_limit_spot"]
    assert not any(isinstance(a, GuardFired) and a.name.startswith("position") for a in a2)


def test_venue_liquidation_price_from_the_feed_wins_over_the_estimate():
    from types import MappingProxyType
    ctx, _ = hedged()
    c = replace(ctx, mark_price=40_000.0, perp_price=40_000.0, leverage=10.0,
                analytics=MappingProxyType({"liq_price": 40_400.0}))  # 1 % away per the venue
    v = market_guards(c, T0, GuardParams(liq_distance_close=0.02))
    assert [x.name for x in v if x.name.startswith("liq")] == ["liq_distance_close"]
    assert v[0].numbers["liq_price"] == 40_400.0


def test_an_order_held_by_a_limit_does_not_loop_the_state_machine():
    p = params(guards=GuardParams(max_position_notional=10_001.0), rebalance=RebalanceParams(cooldown_s=0))
    ctx, _ = hedged(p)
    ctx = replace(ctx, target_spot_qty=0.3)  # growing the spot leg to 12,000 USDT is beyond the limit
    ctx, acts = step(ctx, mkt(T0 + H), p)
    assert len([a for a in acts if isinstance(a, RecordTransition)]) == 2  # one DRIFT / REBALANCED pair
    assert not places(acts) and any(isinstance(a, GuardFired) and a.name == "position_limit" for a in acts)
