"""Loan money: simple interest, LTV, the repayment waterfall and the reserve schedule.
See :mod:`hedge_core.money` for the conventions."""

from __future__ import annotations

from hedge_core.lazyjit import jitable

__all__ = [
    "SECONDS_PER_YEAR",
    "simple_interest",
    "loan_to_value",
    "collateral_for_ltv",
    "repayment_split",
    "reserve_deployment",
]

#: ACT/365 in seconds (loan interest).
SECONDS_PER_YEAR = 365 * 86_400


# ---- loans ------------------------------------------------------------------------------------


@jitable
def simple_interest(principal: float, apr: float, seconds: float) -> float:
    """Simple ACT/365 interest, quote: ``principal x apr x seconds / (365 x 86,400)``."""
    return principal * apr * seconds / SECONDS_PER_YEAR


@jitable
def loan_to_value(outstanding: float, collateral_qty: float, price: float) -> float:
    """LTV = loan outstanding / (collateral qty x price), a fraction."""
    return outstanding / (collateral_qty * price)


@jitable
def collateral_for_ltv(outstanding: float, ltv: float, price: float) -> float:
    """Collateral quantity (base) at which ``outstanding`` starts at ``ltv`` at ``price``:
    ``outstanding / (ltv x price)`` (the inverse of :func:`loan_to_value`)."""
    return outstanding / (ltv * price)


@jitable
def repayment_split(amount: float, accrued: float, principal: float) -> tuple[float, float, float]:
    """Waterfall of a repayment ``amount`` (>= 0): accrued interest first, then principal.

    Returns (to_interest, to_principal, leftover)."""
    to_interest = min(amount, accrued)
    rest = amount - to_interest
    to_principal = min(rest, principal)
    return to_interest, to_principal, rest - to_principal


@jitable
def reserve_deployment(ltv: float, start: float, mid: float, end: float, mid_amount: float,
                       end_amount: float, total: float) -> float:
    """Reserve to deploy at ``ltv``, quote: 0 below ``start``; linear 0 -> ``mid_amount`` on
    [start, mid); linear ``mid_amount`` -> ``end_amount`` on [mid, end); ``total`` from ``end`` on."""
    if ltv < start:
        return 0.0
    if ltv < mid:
        return mid_amount * (ltv - start) / (mid - start)
    if ltv < end:
        return mid_amount + (end_amount - mid_amount) * ((ltv - mid) / (end - mid))
    return total
