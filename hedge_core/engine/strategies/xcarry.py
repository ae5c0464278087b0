"""Cross-venue funding carry: long spot on venue A, short perp on venue B (and the reverse for
negative funding where a spot short is allowed).

Entry is the spot/perp carry's rule (:func:`hedge_core.engine.strategies.carry.decide`) with the
round trip costed at both venues' fees (:meth:`CrossCarryParams.as_carry`) and the funding
annualised at the perp venue's own settlement interval (``market.funding_interval_hours``).
Exit: the engine's generic exits, plus ``exit_below_apr``: the perp venue's expected funding APR
that the position receives (``-sign(perp qty) x funding_apr(rate, interval)``) below the threshold.

Two perp legs (``legs = "perp_perp"``, :func:`decide_perp_perp`): long the perp on the venue whose funding
APR is lower, short on the higher, when the SPREAD clears the round trip at both venues' perp fees over the
expected hold; exit when the spread the pair receives falls below ``exit_below_apr``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from hedge_core import money
from hedge_core.analytics.funding import funding_apr
from hedge_core.engine.context import HedgeContext
from hedge_core.engine.events import MarketUpdate
from hedge_core.engine.states import State
from hedge_core.engine.strategies import carry
from hedge_core.engine.strategies.base import HOLD, Intent
from hedge_core.engine.strategies.protocol import StrategyBase
from hedge_core.exchange.costs import entry_round_trip
from hedge_core.params.xcarry import CrossCarryParams

__all__ = ["decide", "decide_perp_perp", "pair_aprs", "received_apr"]


def received_apr(perp_qty: float, rate: float, interval_hours: float) -> float:
    """Funding APR the perp position receives (fraction per year, + = income): a short receives a
    positive rate, a long a negative one. NaN when the rate is unknown or the position flat."""
    if math.isnan(rate) or perp_qty == 0.0:
        return math.nan
    return -math.copysign(1.0, perp_qty) * float(funding_apr(rate, interval_hours))


def pair_aprs(market: MarketUpdate) -> tuple[float, float]:
    """(first venue's, second venue's) funding APR (fraction per year, + longs pay), each rate annualised at
    its OWN venue's settlement interval: the first leg's last settled ``spot_funding_rate`` every
    ``spot_funding_interval_hours``, the second's expected rate every ``funding_interval_hours``. NaN when unknown."""
    ra, rb = market.spot_funding_rate, market.expected_funding_rate
    a = math.nan if math.isnan(ra) else float(funding_apr(ra, market.spot_funding_interval_hours))
    b = math.nan if math.isnan(rb) else float(funding_apr(rb, market.funding_interval_hours))
    return a, b


def decide_perp_perp(ctx: HedgeContext, market: MarketUpdate, analytics: Mapping[str, float],
                     params: CrossCarryParams) -> Intent:
    """Two perp legs: long where funding is lower, short where it is higher, on the funding spread.

    Entry (ANALYZING_MARKET), all of:

    - both venues' rates known; spread ``s = apr_second - apr_first`` (:func:`pair_aprs`);
    - ``|s| x H / 8760 >= min_funding_rate`` with ``H`` the LONGER of the two settlement intervals (hours):
      the spread per interval of the slower venue;
    - ``|basis| <= max_entry_basis_bps``, basis ``(second price - first price) / first price``;
    - net carry ``money.expected_net_carry(|s|, 0, hold_days, round_trip) + direction x basis >=
      min_net_carry``, ``hold_days = expected_hold_intervals x H / 24``, ``round_trip`` both venues'
      perp fees + slippage (``2 x (first_perp_taker_fee + slip) + 2 x (perp_taker_fee + slip)``:
      :func:`~hedge_core.exchange.costs.entry_round_trip` of :meth:`CrossCarryParams.as_carry`);
    - ``enter_within_s_of_funding`` as the carry.

    Direction: ``s > 0`` (the first venue's funding lower) -> the first leg LONG ``notional / price``, the
    second short; ``s < 0`` -> the first leg short, the second long. Exit (MONITORING_POSITIONS) when
    ``exit_below_apr`` is set and the APR the pair receives, ``received(first) + received(second)``
    (:func:`received_apr` per leg), falls below it.
    """
    apr_a, apr_b = pair_aprs(market)
    if ctx.state is State.MONITORING_POSITIONS and params.exit_below_apr is not None:
        got = received_apr(ctx.spot.qty, market.spot_funding_rate, market.spot_funding_interval_hours) + \
            received_apr(ctx.perp.qty, market.expected_funding_rate, market.funding_interval_hours)
        if not math.isnan(got) and got < params.exit_below_apr:
            return Intent(exit=True, reason=f"funding spread received {got:.4f} APR ({params.spot_venue} "
                                            f"{apr_a:.4f}, {params.perp_venue} {apr_b:.4f}) "
                                            f"< exit_below_apr {params.exit_below_apr:g}")
        return HOLD
    if ctx.state is not State.ANALYZING_MARKET or math.isnan(apr_a) or math.isnan(apr_b):
        return HOLD
    spread = apr_b - apr_a
    hours = max(market.spot_funding_interval_hours, market.funding_interval_hours)
    if abs(spread) * hours / 8760.0 < params.min_funding_rate:
        return HOLD
    basis = money.basis(market.perp, market.spot)
    if abs(basis) * 1e4 > params.max_entry_basis_bps:
        return HOLD
    direction = 1.0 if spread > 0 else -1.0
    days = params.expected_hold_intervals * hours / 24.0
    net = money.expected_net_carry(abs(spread), 0.0, days, entry_round_trip(params.as_carry())) + direction * basis
    if net < params.min_net_carry:
        return HOLD
    if not carry.funding_window_open(market, params.enter_within_s_of_funding):
        return HOLD
    long_v, short_v = params.long_short_venues(apr_a, apr_b)
    why = (f"long {long_v} perp, short {short_v} perp: funding APR {params.spot_venue} {apr_a:.4f}, "
           f"{params.perp_venue} {apr_b:.4f}, spread {abs(spread):.4f}, net carry {net:.5f} over "
           f"{params.expected_hold_intervals} x {hours:g}h")
    return Intent(enter=True, target_spot_qty=direction * params.notional / market.spot,
                  target_ratio=params.rebalance.target_ratio, reason=why)


def decide(ctx: HedgeContext, market: MarketUpdate, analytics: Mapping[str, float],
           params: CrossCarryParams) -> Intent:
    """Enter like the carry at both venues' fees; exit when the received APR drops below ``exit_below_apr``.
    Two perp legs: :func:`decide_perp_perp`."""
    if params.perp_perp:
        return decide_perp_perp(ctx, market, analytics, params)
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
