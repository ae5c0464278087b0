"""Risk guards: pure checks on every market update / timer, and before every order.

A guard returns :class:`Verdict` objects; ``step`` turns them into transitions (flatten,
reduce), held orders and :class:`~hedge_core.engine.actions.GuardFired` records with the
measured numbers. Thresholds are inclusive: a value AT the limit fires.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from hedge_core import money
from hedge_core.analytics.risk import (
    brackets_for,
    liquidation_distance,
    liquidation_price,
    table_key,
    table_of,
)
from hedge_core.engine.constants import ORDER_RATE_WINDOW_S
from hedge_core.engine.context import HedgeContext, seconds_between
from hedge_core.engine.loan_state import LoanState
from hedge_core.engine.roll_step import perpetual_qty
from hedge_core.errors import InvalidInput
from hedge_core.params.models import GuardParams
from hedge_core.engine.ledger import Leg
from hedge_core.types import MarginMode, MarketKind, Side

__all__ = ["Verdict", "funding_pay_apr", "market_guards", "order_guard", "perp_liquidation_price"]


@dataclass(frozen=True, slots=True)
class Verdict:
    name: str  # dead_mans_switch, daily_loss, liq_distance_close, liq_distance_reduce, funding_cost, position_limit
    action: str  # flatten | reduce | hold_order | alert
    numbers: dict[str, float]
    reason: str
    loan: LoanState | None = None  # a loan book's new loan state (deploy_reserve)


def perp_liquidation_price(ctx: HedgeContext) -> float:
    """Isolated-margin liquidation price of the perp leg (quote per base); NaN when flat.

    Margin = |qty| x entry / leverage + ``perp.margin_funding``: the funding settled into the
    OPEN position's isolated margin, the venue's way (it resets when the position goes flat and
    a partial close takes its share out; ``engine.ledger``), not the leg's whole-life funding
    across re-arms. Bracket table: the leg's own (its instrument's: store, venue or snapshot), else
    the committed default of ``analytics.risk.brackets_for``; a symbol with neither falls back to
    the simple ``entry x (1 -/+ (1/L - 0.004))``.
    """
    return leg_liquidation_price(ctx.perp, ctx.leverage)


def leg_liquidation_price(leg: Leg, leverage: float) -> float:
    """Isolated-margin liquidation price (quote per base) of one perp ``leg`` at ``leverage``, the rule of
    :func:`perp_liquidation_price` (the first leg of a hedge of two perp legs uses it too); NaN when flat."""
    q = leg.qty
    if q == 0.0 or leg.avg_entry <= 0:
        return math.nan
    return _isolated_liquidation_price(q, leg.avg_entry, leverage, leg.margin_funding,
                                       table_key(leg_brackets(leg.brackets, leg.symbol)))


def leg_brackets(own: tuple, symbol: str) -> tuple:
    """A leg's bracket table: its own when it has one, else the committed default of ``symbol``, else ()."""
    if own:
        return own
    try:
        return brackets_for(symbol)
    except InvalidInput:
        return ()


@lru_cache(maxsize=256)
def _isolated_liquidation_price(q: float, entry: float, leverage: float, funding: float, table: int) -> float:
    # memoised: a pure function of the position and of the (immutable) bracket table ``table`` stands
    # for (analytics.risk.table_key), which change only on fills and fundings, while the guard asks on
    # every update
    margin = money.isolated_margin(q, entry, leverage) + funding
    brackets = table_of(table)
    if not brackets:
        move = money.flat_liquidation_move(leverage)
        return entry * (1 - move if q > 0 else 1 + move)
    return liquidation_price(q, entry, margin, brackets, margin_mode=MarginMode.ISOLATED)


def funding_pay_apr(perp_qty: float, rate: float, interval_hours: float) -> float:
    """APR the perp position PAYS at funding ``rate`` (0 when it receives). Fraction per year."""
    return money.funding_pay_apr(perp_qty, rate, interval_hours)


def pair_pay_apr(ctx: HedgeContext, second_rate: float) -> float:
    """APR (fraction per year of one leg's notional, >= 0) a hedge of two perp legs PAYS net: each leg's
    signed funding APR at its own venue's rate and interval (``money.funding_apr``; a long pays a positive
    rate), summed, floored at 0. A leg whose rate is unknown (NaN) counts 0. The second leg counts only while
    it is on its perpetual (a calendar roll's dated future pays no funding: :func:`perpetual_qty`)."""
    net = 0.0
    for q, r, h in ((ctx.spot.qty, ctx.spot_funding_rate, ctx.spot_funding_interval_hours),
                    (perpetual_qty(ctx), second_rate, ctx.funding_interval_hours)):
        if q != 0.0 and not math.isnan(r):
            net += math.copysign(1.0, q) * money.funding_apr(r, h)
    return max(net, 0.0)


def _nearer_first_leg(ctx: HedgeContext, dist: float,
                      nums: dict[str, float]) -> tuple[float, dict[str, float], str]:
    """Two perp legs: the first leg's liquidation distance (its own venue's mark, the hedge's leverage) when
    it is nearer than the second's (or the second is flat); ``nums['first_leg'] = 1.0`` and the reason's
    prefix name the leg the figures are of."""
    mark = ctx.spot_mark_price if ctx.spot_mark_price > 0 else ctx.spot_price
    lp = leg_liquidation_price(ctx.spot, ctx.leverage)
    if not (mark > 0 and lp > 0):
        return dist, nums, ""
    d1 = liquidation_distance(ctx.spot.qty, mark, lp)
    if d1 < dist or math.isnan(dist):
        return d1, {"distance": d1, "liq_price": lp, "mark": mark, "first_leg": 1.0}, \
            f"first leg ({ctx.spot.venue}) "
    return dist, nums, ""


def market_guards(ctx: HedgeContext, ts: pd.Timestamp, p: GuardParams) -> list[Verdict]:
    """Guards evaluated on every market update and timer tick, in priority order."""
    out: list[Verdict] = []
    if p.heartbeat_timeout_s is not None and ctx.last_heartbeat is not None:
        silent = seconds_between(ts, ctx.last_heartbeat)
        if silent >= p.heartbeat_timeout_s:
            out.append(Verdict("dead_mans_switch", "flatten",
                               {"silent_s": silent, "limit_s": p.heartbeat_timeout_s},
                               f"no heartbeat for {silent:.0f} s >= {p.heartbeat_timeout_s:.0f} s"))
    if p.daily_loss_limit is not None:
        daily = ctx.pnl - ctx.day_start_pnl
        if daily <= -p.daily_loss_limit:
            out.append(Verdict("daily_loss", "flatten", {"daily_pnl": daily, "limit": -p.daily_loss_limit},
                               f"daily PnL {daily:.2f} <= -{p.daily_loss_limit:.2f}"))
    mark = ctx.mark_price if not math.isnan(ctx.mark_price) else ctx.perp_price
    dist, nums, which = math.nan, {}, ""
    if ctx.perp.qty != 0.0 and mark > 0:
        # the venue's own liquidation price when the feed supplies it (cross margin, added margin),
        # else the isolated-margin estimate from analytics.risk
        lp = ctx.analytics.get("liq_price", math.nan)
        if not lp > 0:
            lp = perp_liquidation_price(ctx)
        dist = liquidation_distance(ctx.perp.qty, mark, lp)
        nums = {"distance": dist, "liq_price": lp, "mark": mark}
    if ctx.spot.qty != 0.0 and ctx.spot.kind is MarketKind.PERP:  # two perp legs: the nearer of the two
        dist, nums, which = _nearer_first_leg(ctx, dist, nums)
    if nums:
        if dist <= p.liq_distance_close:
            out.append(Verdict("liq_distance_close", "flatten", {**nums, "limit": p.liq_distance_close},
                               f"{which}liquidation {dist:.2%} away <= {p.liq_distance_close:.2%}"))
        elif dist <= p.liq_distance_reduce:
            out.append(Verdict("liq_distance_reduce", "reduce", {**nums, "limit": p.liq_distance_reduce},
                               f"{which}liquidation {dist:.2%} away <= {p.liq_distance_reduce:.2%}"))
    if p.funding_cost_apr_limit is not None:
        rate = ctx.next_funding_rate if not math.isnan(ctx.next_funding_rate) else ctx.last_funding_rate
        apr = funding_pay_apr(perpetual_qty(ctx), rate, ctx.funding_interval_hours)  # a dated future pays none
        if ctx.spot.kind is MarketKind.PERP:  # two perp legs: what the PAIR pays, net of the first leg
            apr = pair_pay_apr(ctx, rate)
        if apr > 0 and apr >= p.funding_cost_apr_limit:
            out.append(Verdict("funding_cost", "flatten", {"pay_apr": apr, "limit": p.funding_cost_apr_limit},
                               f"paying funding at {apr:.2%} APR >= {p.funding_cost_apr_limit:.2%}"))
    for leg, px in ((ctx.spot, ctx.spot_price), (ctx.perp, ctx.perp_price)):
        n = abs(leg.qty) * px if px > 0 else 0.0
        if abs(leg.qty) > p.max_position_qty or n > p.max_position_notional:
            out.append(Verdict(f"position_limit_{leg.name}", "alert",
                               {"qty": leg.qty, "notional": n, "max_qty": p.max_position_qty,
                                "max_notional": p.max_position_notional},
                               f"{leg.name} position {leg.qty:g} ({n:.2f} quote) beyond its limit"))
    return out


def order_guard(ctx: HedgeContext, leg: str, side: Side, qty: float, price: float, ts: pd.Timestamp,
                p: GuardParams) -> Verdict | None:
    """Pre-order check: the order-rate limit, and position/notional limits for orders that grow a leg.

    Orders that shrink a leg are never blocked by position limits (closing must stay possible).
    """
    recent = sum(1 for t in ctx.order_times if (ts - t).total_seconds() < ORDER_RATE_WINDOW_S)
    if recent >= p.max_orders_per_minute:
        return Verdict("order_rate", "hold_order", {"orders_last_60s": float(recent),
                                                    "limit": float(p.max_orders_per_minute)},
                       f"{recent} orders in the last 60 s >= {p.max_orders_per_minute}")
    q0 = ctx.leg(leg).qty
    q1 = q0 + side.sign * qty
    if abs(q1) > abs(q0):
        n1 = abs(q1) * price
        if abs(q1) > p.max_position_qty or n1 > p.max_position_notional:
            return Verdict("position_limit", "hold_order",
                           {"new_qty": q1, "new_notional": n1, "max_qty": p.max_position_qty,
                            "max_notional": p.max_position_notional},
                           f"{leg} would reach {q1:g} ({n1:.2f} quote), beyond its limit")
    return None
