"""The calendar-migration rule: hold the hedge leg on the perpetual or on a dated (quarterly) future of the
same venue, whichever carries more, and move it (a "roll") when the difference pays for the move.

Pure: prices, rates and times come in as arguments; :func:`decide_roll` returns a :class:`RollDecision` and
:func:`roll_actions` turns it into the two :class:`~hedge_core.engine.actions.PlaceOrder` actions the driver
executes (close the leg held, open the other). It is an engine ACTION FUNCTION, not a state of
:func:`hedge_core.engine.step.step` (that module is at its size limit): the runner or a backtest calls
:func:`decide_roll` on each market update where the venue lists a dated future for the asset, and hands the
actions to the driver (docs/calendar-roll.md).

Carry of each place for the hedge leg, annualised, + = earned (the leg's side ``s``: -1 short, +1 long):

- perpetual: ``-s x funding APR`` (a short receives a positive rate), funding APR =
  :func:`hedge_core.analytics.funding.funding_apr` (rate x 365 x 24 / interval hours);
- quarterly: ``-s x basis APR`` (a short future sold above spot converges down to it at delivery), basis APR
  = (future / spot - 1) x 365 / days to expiry (:func:`hedge_core.analytics.funding.annualised_basis`).

A SHORT hedge (the carry: long spot, short perp) moves to the quarterly when the basis APR exceeds the
funding APR; a LONG hedge leg (it pays funding) moves when the funding APR exceeds the basis APR -- the
wording of the rule in issue #15 ("perp funding APR above the quarterly's annualised basis: roll"). The move
must beat ``margin_apr`` plus the roll's cost: the fees of the two orders (taker, :func:`hedge_core.money.fee`)
as a fraction of the notional, annualised over the days left to expiry (the period the move earns for).
Before expiry (``exit_days``) the leg returns to the perpetual whatever the carry; OKX delivers FUTURES at
08:00 UTC on the expiry date.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

from hedge_core import money
from hedge_core.analytics.funding import annualised_basis, funding_apr
from hedge_core.engine.actions import PlaceOrder
from hedge_core.errors import InvalidInput
from hedge_core.types import OrderRequest, Side, client_order_id

__all__ = ["RollAction", "RollDecision", "RollInputs", "decide_roll", "roll_actions"]

_YEAR_DAYS = 365.0


class RollAction(StrEnum):
    HOLD = "hold"
    TO_FUTURE = "to_future"  # close the perp leg, open the same quantity on the dated future
    TO_PERP = "to_perp"  # close the future leg, open the same quantity on the perp


@dataclass(frozen=True, slots=True)
class RollInputs:
    """What the rule needs at ``now`` (all prices quote per base, > 0).

    Attributes
    ----------
    now, expiry : pd.Timestamp
        tz-aware UTC; ``expiry`` is the dated future's delivery time.
    spot, future : float
        Spot price and the dated future's price.
    funding_rate : float
        The perp's funding rate per interval (fraction; + = longs pay shorts).
    interval_hours : float
        Funding interval, hours (> 0).
    leg_qty : float
        The hedge leg's signed quantity, base (+ long / - short), wherever it is held now (non-zero).
    on_future : bool
        True when the leg is on the dated future now, False on the perp.
    taker_fee : float
        Taker fee rate of the venue's derivatives (fraction, >= 0), paid on both orders of a roll.
    """

    now: pd.Timestamp
    expiry: pd.Timestamp
    spot: float
    future: float
    funding_rate: float
    interval_hours: float
    leg_qty: float
    on_future: bool
    taker_fee: float


@dataclass(frozen=True, slots=True)
class RollDecision:
    """The rule's answer and its numbers (annualised fractions; + = earned by the hedge leg)."""

    action: RollAction
    reason: str
    perp_carry_apr: float
    future_carry_apr: float
    cost_apr: float
    days_to_expiry: float


def _check(x: RollInputs, margin_apr: float, exit_days: float) -> None:
    for name in ("now", "expiry"):
        t = getattr(x, name)
        if not isinstance(t, pd.Timestamp) or t.tzinfo is None:
            raise InvalidInput(name, t, "a tz-aware UTC pd.Timestamp")
    for name in ("spot", "future"):
        v = getattr(x, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise InvalidInput(name, v, "a price > 0 (quote per base)")
    if not math.isfinite(x.funding_rate) or abs(x.funding_rate) >= 1:
        raise InvalidInput("funding_rate", x.funding_rate, "a finite fraction per interval in (-1, 1)")
    if not (math.isfinite(x.interval_hours) and x.interval_hours > 0):
        raise InvalidInput("interval_hours", x.interval_hours, "hours > 0")
    if not (math.isfinite(x.leg_qty) and x.leg_qty != 0):
        raise InvalidInput("leg_qty", x.leg_qty, "a finite, non-zero signed base quantity")
    if not (math.isfinite(x.taker_fee) and 0 <= x.taker_fee < 0.1):
        raise InvalidInput("taker_fee", x.taker_fee, "a fee rate in [0, 0.1)")
    if not (math.isfinite(margin_apr) and margin_apr >= 0):
        raise InvalidInput("margin_apr", margin_apr, "an annualised fraction >= 0")
    if not (math.isfinite(exit_days) and exit_days >= 0):
        raise InvalidInput("exit_days", exit_days, "days >= 0")


def decide_roll(x: RollInputs, *, margin_apr: float = 0.02, exit_days: float = 2.0) -> RollDecision:
    """Whether to move the hedge leg between the perp and the dated future now (see the module docstring).

    ``margin_apr``: the carry advantage (annualised fraction) the move must show beyond its cost (hysteresis
    against flapping); ``exit_days``: days before expiry at which a leg on the future returns to the perp
    (and no move to the future is made). Raises InvalidInput naming the field for bad inputs.
    """
    _check(x, margin_apr, exit_days)
    days = (x.expiry - x.now) / pd.Timedelta(days=1)
    side = 1.0 if x.leg_qty > 0 else -1.0
    notional = abs(x.leg_qty) * x.spot
    perp = -side * float(funding_apr(x.funding_rate, x.interval_hours))
    basis = annualised_basis(x.future / x.spot - 1.0, x.expiry, at=x.now) if days > 0 else math.nan
    fut = -side * basis if math.isfinite(basis) else math.nan
    # the roll's two orders (close one place, open the other) at taker fees, per unit of notional, earned
    # back over the days left to expiry
    cost_frac = (money.fee(abs(x.leg_qty), x.spot, x.taker_fee) + money.fee(abs(x.leg_qty), x.future, x.taker_fee)) / notional
    cost = cost_frac * _YEAR_DAYS / days if days > 0 else math.inf
    if x.on_future and days <= exit_days:
        return RollDecision(RollAction.TO_PERP, f"expiry in {days:.2f} d <= exit_days {exit_days:g}", perp, fut,
                            cost, days)
    if days <= exit_days:
        return RollDecision(RollAction.HOLD, f"expiry in {days:.2f} d: too close to move to the future", perp,
                            fut, cost, days)
    if not x.on_future and fut - perp > cost + margin_apr:
        return RollDecision(RollAction.TO_FUTURE, f"future carry {fut:.4%} > perp carry {perp:.4%} + cost "
                            f"{cost:.4%} + margin {margin_apr:.4%}", perp, fut, cost, days)
    if x.on_future and perp - fut > cost + margin_apr:
        return RollDecision(RollAction.TO_PERP, f"perp carry {perp:.4%} > future carry {fut:.4%} + cost "
                            f"{cost:.4%} + margin {margin_apr:.4%}", perp, fut, cost, days)
    return RollDecision(RollAction.HOLD, "the difference does not pay for the move", perp, fut, cost, days)


def roll_actions(decision: RollDecision, *, hedge_id: str, venue: str, perp_symbol: str, future_symbol: str,
                 leg_qty: float, seq: int) -> tuple[PlaceOrder, ...]:
    """The orders of a roll, in order: close the leg where it is (reduce-only), then open ``|leg_qty|`` on the
    other contract on the same side. ``seq`` numbers the two client ids (``seq`` and ``seq + 1``, leg
    letter "r"). Empty for HOLD. Both are market orders: the driver records each intent before sending it.
    """
    if decision.action is RollAction.HOLD:
        return ()
    if not (math.isfinite(leg_qty) and leg_qty != 0):
        raise InvalidInput("leg_qty", leg_qty, "a finite, non-zero signed base quantity")
    src, dst = ((perp_symbol, future_symbol) if decision.action is RollAction.TO_FUTURE
                else (future_symbol, perp_symbol))
    qty = abs(leg_qty)
    opening = Side.SELL if leg_qty < 0 else Side.BUY
    closing = Side.BUY if leg_qty < 0 else Side.SELL
    close = OrderRequest(src, closing, qty, client_order_id(hedge_id, "roll", seq), reduce_only=True)
    open_ = OrderRequest(dst, opening, qty, client_order_id(hedge_id, "roll", seq + 1))
    why = f"roll {decision.action.value}"
    return (PlaceOrder("perp", venue, close, why), PlaceOrder("perp", venue, open_, why))
