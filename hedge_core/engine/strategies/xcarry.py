"""Cross-venue funding carry: long spot on venue A, short perp on venue B (and the reverse for
negative funding where a spot short is allowed).

Entry is the spot/perp carry's rule (:func:`hedge_core.engine.strategies.carry.decide`) with the
round trip costed at both venues' fees (:meth:`CrossCarryParams.as_carry`) and the funding
annualised at the perp venue's own settlement interval (``market.funding_interval_hours``).
Exit: the engine's generic exits, plus ``exit_below_apr``: the perp venue's expected funding APR
that the position receives (``-sign(perp qty) x funding_apr(rate, interval)``) below the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from hedge_core.analytics.funding import funding_apr
from hedge_core.engine.context import HedgeContext
from hedge_core.engine.events import MarketUpdate
from hedge_core.engine.states import State
from hedge_core.engine.strategies import carry
from hedge_core.engine.strategies.base import HOLD, Intent
from hedge_core.engine.strategies.protocol import StrategyBase
from hedge_core.params.xcarry import CrossCarryParams

__all__ = ["decide", "received_apr"]


def received_apr(perp_qty: float, rate: float, interval_hours: float) -> float:
    """Funding APR the perp position receives (fraction per year, + = income): a short receives a
    positive rate, a long a negative one. NaN when the rate is unknown or the position flat."""
    if math.isnan(rate) or perp_qty == 0.0:
        return math.nan
    return -math.copysign(1.0, perp_qty) * float(funding_apr(rate, interval_hours))


def decide(ctx: HedgeContext, market: MarketUpdate, analytics: Mapping[str, float],
           params: CrossCarryParams) -> Intent:
    """Enter like the carry at both venues' fees; exit when the received APR drops below ``exit_below_apr``."""
    if ctx.state is State.ANALYZING_MARKET:
        return carry.decide(ctx, market, analytics, params.as_carry())
    if params.exit_below_apr is not None and ctx.state is State.MONITORING_POSITIONS:
        apr = received_apr(ctx.perp.qty, market.expected_funding_rate, market.funding_interval_hours)
        if not math.isnan(apr) and apr < params.exit_below_apr:
            return Intent(exit=True, reason=f"{params.perp_venue} funding APR received {apr:.4f} "
                                            f"< exit_below_apr {params.exit_below_apr:g}")
    return HOLD


class CrossCarryStrategy(StrategyBase[CrossCarryParams]):
    """Cross-venue carry through the Strategy contract: sized like the carry, no loan, fast kernel
    ``hedge`` (the carry's branch with the ``exit_below_apr`` exit, fed both venues' models:
    :mod:`hedge_core.backtest.fast.xvenue`; see docs/cross-venue.md)."""

    name = "xcarry"
    fast_kernel = "hedge"

    def decide(self, ctx: HedgeContext, market: MarketUpdate, analytics: Mapping[str, float],
               params: CrossCarryParams) -> Intent:
        return decide(ctx, market, analytics, params)


STRATEGY = CrossCarryStrategy()
