"""Grid hedge: hold spot; the perp short grows one step per grid level the price falls below.

Levels sit below the anchor (the entry price) at multiples of a spacing taken from volatility
(``spacing_sigma x sigma_24h``, at least ``min_spacing_pct``), merged with optional support
levels. Hedge ratio = max_ratio x (levels crossed / levels). Stop loss below the lowest level;
a VaR limit and a max drawdown flatten the book (extra guards).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from hedge_core.engine.context import HedgeContext
from hedge_core.engine.events import MarketUpdate
from hedge_core.engine.guards import Verdict
from hedge_core.engine.states import State
from hedge_core.engine.strategies.activation import (
    activation_configured,
    activation_fired,
)
from hedge_core.engine.strategies.base import HOLD, Intent
from hedge_core.engine.strategies.protocol import StrategyBase
from hedge_core.params.models import GridParams

__all__ = ["STRATEGY", "Z99", "GridStrategy", "decide", "grid_guards", "grid_levels", "grid_ratio"]

Z99 = 2.3263478740408408  # one-sided 99 % normal quantile


def grid_levels(anchor: float, sigma_24h: float, p: GridParams) -> tuple[float, ...]:
    """Descending grid prices below ``anchor`` (quote per base)."""
    spacing = p.min_spacing_pct if math.isnan(sigma_24h) else max(p.spacing_sigma * sigma_24h, p.min_spacing_pct)
    levels = [anchor * (1 - k * spacing) for k in range(1, p.levels + 1)]
    levels += [s for s in p.support_levels if 0 < s < anchor]
    return tuple(sorted({lv for lv in levels if lv > 0}, reverse=True))


def grid_ratio(price: float, levels: tuple[float, ...], max_ratio: float) -> float:
    """max_ratio x (levels at or above ``price``) / (number of levels)."""
    if not levels:
        return 0.0
    crossed = sum(1 for lv in levels if price <= lv)
    return max_ratio * crossed / len(levels)


def decide(ctx: HedgeContext, market: MarketUpdate, analytics: Mapping[str, float], params: GridParams) -> Intent:
    if ctx.state is State.ANALYZING_MARKET:
        if activation_configured(params.activation):
            fired, why = activation_fired(market.spot, market.spot_volume, analytics, params.activation)
            if not fired:
                return HOLD
        else:
            why = "grid start"
        levels = grid_levels(market.spot, analytics.get("sigma_24h", math.nan), params)
        if not levels:
            # spacing x levels >= 100 % (a very volatile day): no grid price above zero, so wait
            return HOLD
        return Intent(enter=True, target_spot_qty=params.notional / market.spot, target_ratio=0.0,
                      reason=f"{why}: anchor {market.spot:.2f}, {len(levels)} levels down to {levels[-1]:.2f}",
                      state_updates={"anchor": market.spot, "levels": levels})
    levels = ctx.strategy_state.get("levels", ())
    if not levels:
        return HOLD
    stop = levels[-1] * (1 - params.grid_stop_loss_pct)
    if market.spot <= stop:
        return Intent(exit=True, reason=f"grid stop loss: {market.spot:.2f} <= {stop:.2f}")
    return Intent(target_ratio=grid_ratio(market.spot, levels, params.max_ratio))


def grid_guards(ctx: HedgeContext, ts: pd.Timestamp, params: GridParams) -> list[Verdict]:
    """VaR limit (1-day 99 % of the net exposure, from ``sigma_24h``) and max drawdown."""
    out: list[Verdict] = []
    if ctx.state not in (State.MONITORING_POSITIONS, State.REBALANCING):
        return out
    sigma = ctx.analytics.get("sigma_24h", math.nan)
    if params.var_limit is not None and not math.isnan(sigma):
        net = abs(ctx.spot.qty * ctx.spot_price + ctx.perp.qty * ctx.perp_price)
        var = Z99 * sigma * net
        if var >= params.var_limit:
            out.append(Verdict("grid_var", "flatten", {"var_1d": var, "limit": params.var_limit},
                               f"1-day 99% VaR {var:.2f} >= {params.var_limit:.2f}"))
    if params.max_drawdown is not None:
        dd = ctx.peak_pnl - ctx.cycle_pnl
        if dd >= params.max_drawdown:
            out.append(Verdict("grid_drawdown", "flatten", {"drawdown": dd, "limit": params.max_drawdown},
                               f"drawdown {dd:.2f} >= {params.max_drawdown:.2f}"))
    return out


class GridStrategy(StrategyBase[GridParams]):
    """The grid hedge through the strategy contract: sized by ``notional``, VaR and drawdown
    guards (:func:`grid_guards`), fast kernel ``hedge``."""

    name = "grid"
    fast_kernel = "hedge"

    def decide(self, ctx: HedgeContext, market: MarketUpdate, analytics: Mapping[str, float],
               params: GridParams) -> Intent:
        return decide(ctx, market, analytics, params)

    def guards(self, ctx: HedgeContext, ts: pd.Timestamp, params: GridParams) -> list[Verdict]:
        return grid_guards(ctx, ts, params)


STRATEGY = GridStrategy()
