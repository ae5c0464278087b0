"""Funding carry (spot/perp): collect funding with a delta-neutral book.

Positive expected funding: long spot, short perp. Negative: short spot (margin borrow) and
long perp, only when ``allow_spot_short``; otherwise stay out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from hedge_core import money
from hedge_core.engine.context import HedgeContext
from hedge_core.engine.events import MarketUpdate
from hedge_core.engine.states import State
from hedge_core.engine.strategies.activation import (
    activation_configured,
    activation_fired,
)
from hedge_core.engine.strategies.base import HOLD, Intent
from hedge_core.engine.strategies.protocol import StrategyBase
from hedge_core.exchange.costs import entry_round_trip
from hedge_core.params.models import CarryParams

__all__ = ["STRATEGY", "CarryStrategy", "decide", "expected_net_carry", "funding_window_open"]



def funding_window_open(market: MarketUpdate, within_s: float | None) -> bool:
    """Whether an entry may be made now: always when ``within_s`` is None, else only in the ``within_s`` seconds
    before the next settlement (False when the next settlement time is unknown)."""
    if within_s is None:
        return True
    if market.next_funding_ts is None:
        return False
    lead = (market.next_funding_ts - market.ts).total_seconds()
    return 0 <= lead <= within_s

def expected_net_carry(rate: float, basis: float, intervals: int, round_trip: float,
                       borrow_apr: float = 0.0, interval_hours: float = 8.0) -> float:
    """Expected net carry of a spot/perp carry over ``intervals`` funding intervals (fraction of notional).

    ``money.expected_net_carry`` of the APR received (``|rate|`` annualised), held
    ``intervals x interval_hours``, minus ``round_trip`` (opening and closing both legs, fraction of
    notional: :func:`hedge_core.exchange.costs.entry_round_trip`, the venue's per-leg fees plus
    slippage) and the borrow cost of a spot short (negative funding only), plus the basis
    convergence gain ``direction x basis`` (positive funding: long spot / short perp gains a perp
    premium ``basis = (perp - spot) / spot`` as it converges).
    """
    direction = 1.0 if rate >= 0 else -1.0
    days = intervals * interval_hours / 24.0
    net = money.expected_net_carry(money.funding_apr(abs(rate), interval_hours), borrow_apr if rate < 0 else 0.0,
                                   days, round_trip)
    return net + direction * basis


def decide(ctx: HedgeContext, market: MarketUpdate, analytics: Mapping[str, float], params: CarryParams) -> Intent:
    """Enter when the expected net carry, after the venue's real round trip
    (:func:`~hedge_core.exchange.costs.entry_round_trip`), clears the threshold; hold otherwise.

    Exits (profit target, stops, time, unfavourable funding, basis) are the engine's generic ones.
    """
    if ctx.state is not State.ANALYZING_MARKET:
        if activation_configured(params.activation) and params.activation.enlarge_ratio_step > 0:
            fired, why = activation_fired(market.spot, market.spot_volume, analytics, params.activation)
            if fired:
                return Intent(target_ratio=min(ctx.target_ratio + params.activation.enlarge_ratio_step,
                                               params.rebalance.ratio_max), reason=why)
        return HOLD
    rate = market.expected_funding_rate
    if math.isnan(rate) or abs(rate) < params.min_funding_rate:
        return HOLD
    if rate < 0 and not params.allow_spot_short:
        return HOLD  # negative funding needs a spot short on margin: not allowed -> stay out
    basis = money.basis(market.perp, market.spot)
    if abs(basis) * 1e4 > params.max_entry_basis_bps:
        return HOLD
    carry = expected_net_carry(rate, basis, params.expected_hold_intervals, entry_round_trip(params),
                               params.borrow_apr, market.funding_interval_hours)
    if carry < params.min_net_carry:
        return HOLD
    if not funding_window_open(market, params.enter_within_s_of_funding):
        return HOLD
    why = f"funding {rate:.6f}/interval, net carry {carry:.5f} over {params.expected_hold_intervals} intervals"
    if activation_configured(params.activation):
        fired, act = activation_fired(market.spot, market.spot_volume, analytics, params.activation)
        if not fired:
            return HOLD
        why += f"; {act}"
    direction = 1.0 if rate > 0 else -1.0
    return Intent(enter=True, target_spot_qty=direction * params.notional / market.spot,
                  target_ratio=params.rebalance.target_ratio, reason=why)


class CarryStrategy(StrategyBase[CarryParams]):
    """Funding carry through the :class:`~hedge_core.engine.strategies.protocol.Strategy` contract:
    sized by ``notional``, no loan, leverage re-chosen from volatility, fast kernel ``hedge``."""

    name = "carry"
    fast_kernel = "hedge"

    def decide(self, ctx: HedgeContext, market: MarketUpdate, analytics: Mapping[str, float],
               params: CarryParams) -> Intent:
        return decide(ctx, market, analytics, params)


STRATEGY = CarryStrategy()
