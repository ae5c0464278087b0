"""Why a hedge is not moving: one human sentence for a hedge held in an opening state by a guard.

The engine's ``order_guard`` holds an order back (``position_limit``: the order would take a leg
beyond ``GuardParams.max_position_notional`` / ``max_position_qty``; ``order_rate``: too many
orders in 60 s) and retries on the next event; the hedge stays in ``OPENING_SPOT_POSITION`` or
``OPENING_FUTURES_HEDGE`` with nothing sent. The guard row alone does not tell an operator what to
do: :func:`held_sentence` does, for the hedge summary and its page. Pure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hedge_core.engine.context import HedgeContext
from hedge_core.engine.states import State
from hedge_core.engine.step import perp_target

if TYPE_CHECKING:
    from hedge_core.params.models import StrategyParamsBase

__all__ = ["held_sentence"]

_OPENING = {State.OPENING_SPOT_POSITION: "spot", State.OPENING_FUTURES_HEDGE: "perp"}


def held_sentence(ctx: HedgeContext, params: StrategyParamsBase) -> str | None:
    """A sentence naming the guard, the numbers and the way out; None when no guard holds the hedge."""
    leg = _OPENING.get(ctx.state)
    if leg is None or ctx.pending:
        return None
    g = params.guards
    if "position_limit" in ctx.active_guards:
        qty = ctx.target_spot_qty if leg == "spot" else perp_target(ctx)
        px = ctx.spot_price if leg == "spot" else ctx.perp_price
        n = abs(qty) * px if px > 0 else float("nan")
        return (f"Held in {ctx.state} by the position_limit guard: the {leg} order would take the {leg} leg to "
                f"{abs(qty):g} ({n:,.2f} USDT), beyond max_position_notional {g.max_position_notional:,.0f} USDT / "
                f"max_position_qty {g.max_position_qty:g}. Nothing is sent while it holds: stop the hedge and "
                "start it with a smaller size, or use a parameter set with higher limits.")
    if "order_rate" in ctx.active_guards:
        return (f"Held in {ctx.state} by the order_rate guard: {g.max_orders_per_minute} orders in the last 60 s "
                "reached max_orders_per_minute; the order is retried on the next update once the window allows.")
    return None
