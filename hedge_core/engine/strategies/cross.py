"""Cross-asset correlation hedge: a spot holding hedged with ANOTHER asset's perp, sized by beta.

Hedge ratio h = perp notional / spot notional = beta of the spot's returns on the hedge asset's
returns (the minimum-variance ratio). ``beta`` and ``correlation`` come in as analytics inputs
(computed by ``analytics.hedge_ratio`` rolling/EWMA/Kalman estimators on data known at t by
``analytics.inputs.market_inputs``, the one timeline of backtests, replays and the runner); the
strategy adopts a new beta every ``reestimate_hours``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from hedge_core.engine.context import HedgeContext
from hedge_core.engine.events import MarketUpdate
from hedge_core.engine.states import State
from hedge_core.engine.strategies.activation import (
    activation_configured,
    activation_fired,
)
from hedge_core.engine.strategies.base import HOLD, Intent
from hedge_core.engine.strategies.protocol import StrategyBase
from hedge_core.params.models import CrossHedgeParams

__all__ = ["STRATEGY", "CrossStrategy", "decide"]


def decide(ctx: HedgeContext, market: MarketUpdate, analytics: Mapping[str, float], params: CrossHedgeParams) -> Intent:
    """Enter when beta is known and correlation clears ``min_correlation``; re-adopt beta on schedule."""
    beta = analytics.get("beta", math.nan)
    corr = analytics.get("correlation", math.nan)
    if ctx.state is State.ANALYZING_MARKET:
        if math.isnan(beta) or math.isnan(corr) or corr < params.min_correlation or beta <= 0:
            return HOLD
        why = f"beta {beta:.3f} ({params.beta_method}), correlation {corr:.2f}"
        if activation_configured(params.activation):
            fired, act = activation_fired(market.spot, market.spot_volume, analytics, params.activation)
            if not fired:
                return HOLD
            why += f"; {act}"
        return Intent(enter=True, target_spot_qty=params.notional / market.spot, target_ratio=beta, reason=why,
                      state_updates={"beta_ts": market.ts, "beta": beta})
    last = ctx.strategy_state.get("beta_ts")
    due = last is None or (market.ts - last).total_seconds() >= params.reestimate_hours * 3600
    if due and not math.isnan(beta) and beta > 0:
        return Intent(target_ratio=beta, reason=f"beta re-estimated: {beta:.3f}",
                      state_updates={"beta_ts": market.ts, "beta": beta})
    return HOLD


class CrossStrategy(StrategyBase[CrossHedgeParams]):
    """The cross-asset hedge through the strategy contract: sized by ``notional``, no loan, fast
    kernel ``hedge``."""

    name = "cross"
    fast_kernel = "hedge"

    def decide(self, ctx: HedgeContext, market: MarketUpdate, analytics: Mapping[str, float],
               params: CrossHedgeParams) -> Intent:
        return decide(ctx, market, analytics, params)


STRATEGY = CrossStrategy()
