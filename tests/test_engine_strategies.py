"""Cross-asset, grid, volatility-tiered loan book, activation triggers, external fills."""

from __future__ import annotations

import math
from dataclasses import replace
from types import MappingProxyType

import pandas as pd
import pytest

from hedge_core import ltv as ltvmod
from hedge_core.analytics.volatility import VolTiers, vol_tiered_hedge_ratio
from hedge_core.engine import (
    FillEvent,
    GuardFired,
    MarketUpdate,
    OrderUpdate,
    OrderUpdateKind,
    PlaceOrder,
    State,
    new_hedge,
    step,
)
from hedge_core.engine.strategies.activation import activation_fired
from hedge_core.engine.strategies.grid import Z99, grid_guards, grid_levels, grid_ratio
from hedge_core.engine.strategies.voltier import (
    ltv_guards,
    new_voltier_hedge,
    tier_ratio,
)
from hedge_core.exchange.paper.core import default_instruments
from hedge_core.params.models import (
    ActivationParams,
    CarryParams,
    CrossHedgeParams,
    ExitParams,
    GridParams,
    RebalanceParams,
    VolTierLoanParams,
)
from hedge_core.types import Fill, Side

INST = {i.symbol: i for i in default_instruments()}
T0 = pd.Timestamp("2024-01-01T00:00Z")
H = pd.Timedelta(hours=1)


def mkt(ts, spot, perp=None, rate=0.0001, **an):
    return MarketUpdate(ts=ts, spot=spot, perp=spot if perp is None else perp, funding_rate=rate,
                        analytics=MappingProxyType(an))


def places(acts):
    return [a for a in acts if isinstance(a, PlaceOrder)]


def fill_all(ctx, p, acts, ts, prices):
    for a in places(acts):
        f = Fill("t" + a.request.client_order_id, "o", a.request.client_order_id, a.request.symbol, a.request.side,
                 a.request.qty, prices[a.leg], 0.0, ts)
        ctx, more = step(ctx, FillEvent(f, a.leg), p)
        ctx, more2 = step(ctx, OrderUpdate(ts, a.request.client_order_id, OrderUpdateKind.CLOSED, filled=a.request.qty), p)
        ctx = fill_all(ctx, p, more + more2, ts, prices)
    return ctx


# ---- cross-asset --------------------------------------------------------------------------------


def test_cross_hedge_sizes_the_other_assets_perp_by_beta_and_reestimates_on_schedule():
    p = CrossHedgeParams(notional=6_000.0, min_correlation=0.6, reestimate_hours=24,
                         rebalance=RebalanceParams(target_ratio=1.0, ratio_min=0.2, ratio_max=3.0, cooldown_s=0))
    ctx = new_hedge("x", "cross", INST["ETH/USDT"], INST["BTC/USDT:USDT"], T0)
    ctx2, acts = step(ctx, mkt(T0, 3_000.0, 60_000.0, beta=0.8, correlation=0.59), p)
    assert ctx2.state is State.ANALYZING_MARKET and not acts
    ctx, acts = step(ctx, mkt(T0, 3_000.0, 60_000.0, beta=0.8, correlation=0.6), p)
    assert places(acts)[0].request.symbol == "ETH/USDT" and places(acts)[0].request.qty == pytest.approx(2.0)
    ctx = fill_all(ctx, p, acts, T0, {"spot": 3_000.0, "perp": 60_000.0})
    assert ctx.state is State.MONITORING_POSITIONS
    # perp notional = beta x spot notional: 0.8 x 6,000 / 60,000 = 0.08 BTC
    assert ctx.perp.qty == pytest.approx(-0.08)
    assert ctx.hedge_ratio == pytest.approx(0.8)
    ctx, acts = step(ctx, mkt(T0 + 23 * H, 3_000.0, 60_000.0, beta=1.2, correlation=0.9), p)
    assert ctx.target_ratio == pytest.approx(0.8) and not places(acts)
    ctx, acts = step(ctx, mkt(T0 + 24 * H, 3_000.0, 60_000.0, beta=1.2, correlation=0.9), p)
    assert ctx.target_ratio == pytest.approx(1.2) and ctx.state is State.REBALANCING
    (o,) = places(acts)
    assert o.request.side is Side.SELL and o.request.qty == pytest.approx(0.04)


# ---- grid ---------------------------------------------------------------------------------------


def test_grid_levels_and_ratio_by_hand():
    p = GridParams(levels=4, spacing_sigma=1.0, min_spacing_pct=0.005, max_ratio=1.0, support_levels=(95.5, 120.0))
    lv = grid_levels(100.0, 0.01, p)
    assert lv == pytest.approx((99.0, 98.0, 97.0, 96.0, 95.5))  # resistance 120 above the anchor is ignored
    assert grid_levels(100.0, 0.001, p)[0] == pytest.approx(99.5)  # min spacing wins
    assert grid_levels(100.0, math.nan, p)[0] == pytest.approx(99.5)
    assert grid_ratio(99.01, lv, 1.0) == 0.0
    assert grid_ratio(99.0, lv, 1.0) == pytest.approx(0.2)  # at a level counts as crossed
    assert grid_ratio(90.0, lv, 0.8) == pytest.approx(0.8)


def test_grid_waits_when_volatility_leaves_no_level_above_zero():
    p = GridParams(levels=3, spacing_sigma=10.0, min_spacing_pct=0.005)
    assert grid_levels(40_000.0, 0.1, p) == ()  # spacing 100 %: the first level is already 0
    ctx = new_hedge("g", "grid", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0)
    ctx, acts = step(ctx, mkt(T0, 40_000.0, sigma_24h=0.1), p)
    assert ctx.state is State.ANALYZING_MARKET and not places(acts)
    ctx, acts = step(ctx, mkt(T0 + H, 40_000.0, sigma_24h=0.02), p)  # spacing 20 %: levels 32k, 24k, 16k
    assert ctx.state is not State.ANALYZING_MARKET and places(acts)
    assert ctx.strategy_state["levels"] == pytest.approx((32_000.0, 24_000.0, 16_000.0))


def test_grid_builds_the_hedge_as_price_falls_and_stops_below_the_grid():
    p = GridParams(notional=10_000.0, levels=4, spacing_sigma=1.0, max_ratio=1.0, grid_stop_loss_pct=0.02,
                   rebalance=RebalanceParams(target_ratio=0.0, ratio_min=0.0, ratio_max=2.0, cooldown_s=0))
    ctx = new_hedge("g", "grid", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0)
    ctx, acts = step(ctx, mkt(T0, 40_000.0, sigma_24h=0.01), p)
    ctx = fill_all(ctx, p, acts, T0, {"spot": 40_000.0, "perp": 40_000.0})
    assert ctx.state is State.MONITORING_POSITIONS and ctx.perp.qty == 0.0 and ctx.spot.qty == pytest.approx(0.25)
    ctx, acts = step(ctx, mkt(T0 + H, 39_150.0, sigma_24h=0.01), p)  # below 2 levels (39,600 / 39,200)
    assert ctx.target_ratio == pytest.approx(0.5)
    ctx = fill_all(ctx, p, acts, T0 + H, {"spot": 39_150.0, "perp": 39_150.0})
    assert ctx.perp.qty == pytest.approx(-0.125, abs=0.001)
    ctx, acts = step(ctx, mkt(T0 + 2 * H, 37_632.0 - 1, sigma_24h=0.01), p)  # 38,400 x 0.98 = 37,632
    assert ctx.state is State.CLOSING_POSITIONS and "grid stop loss" in ctx.exit_reason


@pytest.mark.parametrize("delta,fires", [(1e-6, False), (0.0, True), (-1e-6, True)])
def test_grid_var_limit_edge(delta, fires):
    ctx = new_hedge("g", "grid", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0)
    ctx = replace(ctx, state=State.MONITORING_POSITIONS, spot=replace(ctx.spot, qty=0.25),
                  perp=replace(ctx.perp, qty=-0.05), spot_price=40_000.0, perp_price=40_000.0,
                  analytics=MappingProxyType({"sigma_24h": 0.03}))
    var = Z99 * 0.03 * (0.25 - 0.05) * 40_000.0
    v = grid_guards(ctx, T0, GridParams(var_limit=var + delta))
    assert (any(x.name == "grid_var" for x in v)) is fires


@pytest.mark.parametrize("dd,fires", [(99.99, False), (100.0, True), (100.01, True)])
def test_grid_max_drawdown_edge(dd, fires):
    ctx = new_hedge("g", "grid", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0)
    ctx = replace(ctx, state=State.MONITORING_POSITIONS, peak_pnl=500.0, pnl_at_entry=-(500.0 - dd) + 0.0)
    assert ctx.cycle_pnl == pytest.approx(500.0 - dd)
    v = grid_guards(ctx, T0, GridParams(max_drawdown=100.0))
    assert (any(x.name == "grid_drawdown" for x in v)) is fires


# ---- volatility-tiered loan book ---------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.0, 0.0199, 0.02, 0.0399, 0.04, 0.2])
def test_tier_ratio_matches_analytics_volatility(sigma):
    p = VolTierLoanParams()
    assert tier_ratio(sigma, p) == vol_tiered_hedge_ratio(sigma, VolTiers((0.02, 0.04), (0.2, 0.4), 0.6))


def voltier_ctx(p, price=60_000.0):
    return new_voltier_hedge("v", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0, price, p)


def test_voltier_hedges_collateral_never_trades_spot_and_repays_loan_from_profit():
    p = VolTierLoanParams(collateral_qty=0.5, exit=ExitParams(profit_target_pct=None, stop_loss_pct=None,
                                                               trailing_giveback=0.3, max_holding_hours=None,
                                                               funding_unfavourable_intervals=None, rearm=True),
                          guards=VolTierLoanParams().guards.model_copy(update={"liq_distance_reduce": 0.02,
                                                                                 "liq_distance_close": 0.01}))
    ctx = voltier_ctx(p)
    ctx, acts = step(ctx, mkt(T0, 60_000.0, sigma_24h=0.03), p)
    assert [a.leg for a in places(acts)] == ["perp"]  # the collateral is never bought
    assert any(getattr(a, "leverage", None) == 25.0 for a in acts)
    ctx = fill_all(ctx, p, acts, T0, {"perp": 60_000.0})
    assert ctx.state is State.MONITORING_POSITIONS and ctx.perp.qty == pytest.approx(-0.2)  # tier 0.4 x 0.5
    assert ctx.profit_target == pytest.approx(1.5 * 0.03 * 0.2 * 60_000.0)  # PT = k sigma notional = 540
    ctx, acts = step(ctx, mkt(T0 + H, 57_000.0, sigma_24h=0.03), p)  # short gains 600 >= 540
    assert ctx.state is State.CLOSING_POSITIONS and "profit target" in ctx.exit_reason
    assert [a.leg for a in places(acts)] == ["perp"]  # closing keeps the collateral
    loan_before = ctx.loan.loan
    ctx = fill_all(ctx, p, acts, T0 + H, {"perp": 57_000.0})
    assert ctx.state is State.ANALYZING_MARKET and ctx.spot.qty == 0.5
    ctx, _ = step(ctx, mkt(T0 + 2 * H, 57_000.0, sigma_24h=math.nan), p)
    loan = ctx.loan.loan
    expected = ltvmod.repay_from_profit(ltvmod.accrue(loan_before, T0 + 2 * H), 600.0)[0]
    assert loan.principal == pytest.approx(expected.principal)
    assert loan.interest_paid == pytest.approx(expected.interest_paid)


def test_voltier_reserve_deployment_and_emergency_flatten_follow_ltv_module():
    p = VolTierLoanParams(collateral_qty=0.27, loan=16_200.0, reserve=10_000.0)
    ctx = voltier_ctx(p)
    price = 16_200.0 / (0.27 * 0.70)  # LTV 70 %: WARNING band, reserve partly deployed
    c = replace(ctx, spot_price=price)
    v = ltv_guards(c, T0, p)
    dep = [x for x in v if x.action == "deploy_reserve"]
    assert dep and dep[0].numbers["deployed"] == pytest.approx(1_500.0)  # 0 -> 3,000 over 65-75 %
    assert dep[0].loan.loan.principal == pytest.approx(16_200.0 - 1_500.0)
    assert not [x for x in v if x.action == "flatten"]
    c = replace(ctx, spot_price=16_200.0 / (0.27 * 0.85))
    assert [x.name for x in ltv_guards(c, T0, p) if x.action == "flatten"] == ["ltv_emergency"]
    c = replace(ctx, spot_price=16_200.0 / (0.27 * 0.8499))
    assert not [x for x in ltv_guards(c, T0, p) if x.action == "flatten"]


def test_voltier_ltv_guard_through_step_records_and_updates_loan():
    p = VolTierLoanParams(collateral_qty=0.27)  # the specification's fixed collateral
    ctx = voltier_ctx(p)
    ctx, acts = step(ctx, mkt(T0, 16_200.0 / (0.27 * 0.70), sigma_24h=math.nan), p)
    g = [a for a in acts if isinstance(a, GuardFired)]
    assert g and g[0].action == "deploy_reserve"
    assert ctx.loan.reserve_deployed == pytest.approx(1_500.0)


# ---- activation triggers ------------------------------------------------------------------------


@pytest.mark.parametrize("price,fires", [(102.999, False), (103.0, True), (97.0, True)])
def test_deviation_trigger_edges(price, fires):
    a = ActivationParams(deviation_z=3.0)
    assert activation_fired(price, 0.0, {"baseline": 100.0, "baseline_std": 1.0}, a)[0] is fires


@pytest.mark.parametrize("vol,fires", [(299.0, False), (300.0, True)])
def test_volume_spike_trigger_edges(vol, fires):
    a = ActivationParams(volume_spike=3.0)
    assert activation_fired(100.0, vol, {"volume_avg": 100.0}, a)[0] is fires


def test_activation_gates_carry_entry():
    p = CarryParams(notional=5_000.0, min_net_carry=-1, activation=ActivationParams(volume_spike=3.0))
    ctx = new_hedge("a", "carry", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0)
    quiet = MarketUpdate(T0, 40_000.0, 40_000.0, spot_volume=100.0, funding_rate=0.001,
                         analytics=MappingProxyType({"volume_avg": 100.0}))
    assert step(ctx, quiet, p)[0].state is State.ANALYZING_MARKET
    spike = replace(quiet, spot_volume=300.0)
    assert step(ctx, spike, p)[0].state is State.OPENING_SPOT_POSITION


# ---- external fills (venue liquidation) ---------------------------------------------------------


def test_external_liquidation_fill_is_booked_and_the_spot_leg_rehedged():
    p = CarryParams(notional=10_000.0, min_net_carry=-1, rebalance=RebalanceParams(cooldown_s=0))
    ctx = new_hedge("l", "carry", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0)
    ctx, acts = step(ctx, mkt(T0, 40_000.0, rate=0.001), p)
    ctx = fill_all(ctx, p, acts, T0, {"spot": 40_000.0, "perp": 40_000.0})
    liq = Fill("L1", "o9", "liq-1", "BTC/USDT:USDT", Side.BUY, 0.25, 44_000.0, 5.0, T0 + H)
    ctx, acts = step(ctx, FillEvent(liq, "perp", external=True), p)
    assert ctx.perp.qty == 0.0 and ctx.perp.realized == pytest.approx(-1_000.0)
    assert any(getattr(a, "level", None) == "critical" for a in acts)
    # the naked spot leg is hedged again at once
    assert ctx.state is State.REBALANCING and [a.leg for a in places(acts)] == ["perp"]
    assert places(acts)[0].request.side is Side.SELL and places(acts)[0].request.qty == pytest.approx(0.25)


# ---- leverage rule ------------------------------------------------------------------------------


def test_leverage_choice_keeps_the_liquidation_buffer_per_analytics_risk():
    from hedge_core.analytics.risk import brackets_for, liquidation_price
    from hedge_core.engine.sizing import choose_leverage, required_buffer
    from hedge_core.params.models import LeverageParams
    p = LeverageParams(min_leverage=1, max_leverage=20, liq_buffer=0.2, target_vol_multiple=6.0)
    assert required_buffer(math.nan, p) == 0.2 and required_buffer(0.05, p) == pytest.approx(0.3)
    for sigma in (math.nan, 0.01, 0.05):
        lev = choose_leverage(sigma, p, symbol="BTC/USDT:USDT", notional=10_000.0, side=-1)
        assert lev == int(lev) and 1 <= lev <= 20
        lp = liquidation_price(-0.25, 40_000.0, 10_000.0 / lev, brackets_for("BTC/USDT:USDT"))
        assert (lp - 40_000.0) / 40_000.0 >= required_buffer(sigma, p) - 1e-12  # buffer kept
        lp_more = liquidation_price(-0.25, 40_000.0, 10_000.0 / (lev + 1), brackets_for("BTC/USDT:USDT"))
        assert lev == 20 or (lp_more - 40_000.0) / 40_000.0 < required_buffer(sigma, p)  # the highest such
    assert choose_leverage(0.5, LeverageParams(min_leverage=2, max_leverage=5, liq_buffer=0.9)) == 2.0


def test_target_vol_caps_the_leverage():
    from hedge_core.engine.sizing import choose_leverage
    from hedge_core.params.models import LeverageParams
    p = LeverageParams(min_leverage=1, max_leverage=20, liq_buffer=0.05, target_vol_multiple=1.0, target_vol=0.1)
    assert choose_leverage(0.02, p) == 5.0  # 0.10 / 0.02, below what the 5 % buffer allows
    assert choose_leverage(0.02, p.model_copy(update={"target_vol": None})) > 5.0
