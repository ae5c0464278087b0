"""What a hedge still has to trade: the perp target that hedges the spot leg as it is, the signed quantities
still to order on each leg (working orders counted), and whether a quantity rounds to an order the venue
accepts. Pure functions of a :class:`~hedge_core.engine.context.HedgeContext`; the formulas are
:mod:`hedge_core.money`'s. Split out of :mod:`hedge_core.engine.step` (which re-exports the public ones).
"""

from __future__ import annotations

from hedge_core import money
from hedge_core.engine.context import HedgeContext
from hedge_core.engine.ledger import QTY_EPS
from hedge_core.types import MarketKind

__all__ = ["order_needs", "perp_target"]


def perp_target(ctx: HedgeContext) -> float:
    """Signed perp quantity that hedges the spot leg AS IT IS (base units of the perp).

    Same base: ``-ratio x spot qty``; cross-asset: ``-ratio x spot notional / perp price``.
    Hedging the actual spot quantity (not the target) means a partial spot fill is hedged by
    exactly what filled.
    """
    return money.perp_target(ctx.same_base, ctx.target_ratio, ctx.spot.qty, ctx.perp.qty, ctx.spot_price,
                             ctx.perp_price)


def _signed_working(ctx: HedgeContext, leg: str) -> float:
    return sum(p.side.sign * p.remaining for p in ctx.pending.values() if p.leg == leg)


def order_needs(ctx: HedgeContext) -> tuple[float, float]:
    """Signed quantities still to trade on (spot, perp) to reach the targets (working orders counted)."""
    spot_need = 0.0 if ctx.collateral_spot else ctx.target_spot_qty - ctx.spot.qty - _signed_working(ctx, "spot")
    perp_need = perp_target(ctx) - ctx.perp.qty - _signed_working(ctx, "perp")
    return spot_need, perp_need


def _price(ctx: HedgeContext, leg: str) -> float:
    return ctx.spot_price if leg == "spot" else ctx.perp_price


def _tradeable(ctx: HedgeContext, leg: str, need: float, min_notional: float = 0.0, *,
               reduce_only: bool = False) -> bool:
    """Whether ``need`` (signed base) rounds to an order the venue accepts.

    A reduce-only perp order is exempt from the venue's min notional (Binance rule), so a small
    residual perp position can always be closed.
    """
    lg = ctx.leg(leg)
    px = _price(ctx, leg)
    if not px > 0:
        return False
    q = lg.round_qty(need)
    if reduce_only and (leg == "perp" or lg.kind is MarketKind.PERP):
        return q >= lg.lot_size - QTY_EPS and q >= lg.min_qty - QTY_EPS
    return lg.tradeable(q, px) and q * px >= min_notional - 1e-9
