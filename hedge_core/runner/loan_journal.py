"""A loan book's loan in the runner's journal (table ``loan_events``) and back (pure).

The loan of a loan book (``voltier``: :class:`hedge_core.engine.loan_state.LoanState` on
``HedgeContext.loan``) is off-venue: no venue record holds it, so the journal is its only copy.
One row per change that is not interest accrual:

=============  ===============================================================================
``start``      the book opened: principal, APR, ``as_of`` = start, the whole reserve left, the
               collateral (base) and the first spot price it was sized at
``reserve``    the LTV bands deployed reserve into the loan (also a ``reserve_deployments`` row)
``repay``      a cycle's realised profit repaid interest and/or principal
``booked``     a cycle closed without profit (the perp's realised money already applied moved)
``cycle``      the hedge's target ratio or profit target changed (entry, a volatility tier)
``recovered``  the loan rebuilt after a restart, interest accrued to the recovery instant
=============  ===============================================================================

Interest accrual is deterministic (ACT/365 simple interest on the principal from ``as_of``,
:func:`hedge_core.ltv.accrue`) and is NOT an event: the state at any instant ``t`` after the last
row is ``accrue(last row's loan, t)``. Every row carries the whole state, so recovery reads only
the last one (and the ``start`` row for the collateral and the first price).
Money in quote (USDT), every amount >= 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from hedge_core import ltv as ltvmod
from hedge_core.engine.context import HedgeContext
from hedge_core.engine.loan_state import LoanState
from hedge_core.errors import InvalidInput

__all__ = ["loan_event", "loan_from_row", "loan_origin", "loan_row", "reserve_row"]


def loan_event(before: LoanState | None, after: LoanState, *, ratio_before: float = math.nan,
               ratio_after: float = math.nan, target_before: float | None = None,
               target_after: float | None = None) -> str | None:
    """The journal event of a step that changed a loan book from ``before`` to ``after``; None when
    only interest accrued (``as_of`` and ``accrued_interest`` moved, nothing else)."""
    if before is None:
        return "start"
    if after.reserve_deployed != before.reserve_deployed or after.reserve_left != before.reserve_left:
        return "reserve"
    a, b = after.loan, before.loan
    if (a.principal, a.interest_paid, a.principal_paid, after.repaid) != \
            (b.principal, b.interest_paid, b.principal_paid, before.repaid):
        return "repay"
    if after.booked != before.booked:
        return "booked"
    if not (ratio_after == ratio_before or (math.isnan(ratio_after) and math.isnan(ratio_before))) \
            or target_after != target_before:
        return "cycle"
    return None


def loan_row(ctx: HedgeContext, event: str, ts: pd.Timestamp, *, first_price: float,
             started_at: pd.Timestamp) -> dict[str, Any]:
    """One ``loan_events`` row (without ``hedge_id``/``seq``: the journal adds them) of ``ctx.loan``
    at ``ts`` (the hedge's clock). ``first_price``: the spot price the collateral was sized at
    (quote per base); ``started_at``: when the loan book opened (UTC)."""
    book = ctx.loan
    if book is None:
        raise InvalidInput("ctx.loan", None, "a loan book's context (HedgeContext.loan set)")
    loan = book.loan
    return {"ts": ts, "event": event, "principal": float(loan.principal), "apr": float(loan.apr),
            "as_of": loan.as_of, "accrued_interest": float(loan.accrued_interest),
            "interest_paid": float(loan.interest_paid), "principal_paid": float(loan.principal_paid),
            "initial_principal": float(loan.initial_principal or loan.principal),
            "reserve_left": float(book.reserve_left), "reserve_deployed": float(book.reserve_deployed),
            "booked": float(book.booked), "repaid": float(book.repaid), "collateral_qty": float(ctx.spot.qty),
            "first_price": float(first_price), "started_at": started_at,
            "target_ratio": float(ctx.target_ratio),
            "profit_target": None if ctx.profit_target is None else float(ctx.profit_target)}


def reserve_row(before: LoanState, after: HedgeContext, ts: pd.Timestamp) -> dict[str, Any]:
    """A ``reserve_deployments`` row of a ``reserve`` event: LTV before the deployment, the amount
    (quote) and the cumulative amount deployed."""
    book = after.loan
    if book is None:
        raise InvalidInput("after.loan", None, "a loan book's context (HedgeContext.loan set)")
    value = math.nan
    if after.spot.qty > 0 and after.spot_price > 0:
        value = float(ltvmod.ltv(before.outstanding, after.spot.qty, after.spot_price))
    amount = float(book.reserve_deployed - before.reserve_deployed)
    return {"ts": ts, "ltv": None if math.isnan(value) else value, "amount": amount,
            "cumulative": float(book.reserve_deployed), "reason": "LTV band reserve deployment"}


def _ts(v: Any) -> pd.Timestamp:
    t = pd.Timestamp(v)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def loan_from_row(row: Mapping[str, Any]) -> LoanState:
    """The loan state a ``loan_events`` row records (exactly: every field is journaled)."""
    loan = ltvmod.Loan(principal=float(row["principal"]), apr=float(row["apr"]), as_of=_ts(row["as_of"]),
                       accrued_interest=float(row["accrued_interest"]), interest_paid=float(row["interest_paid"]),
                       principal_paid=float(row["principal_paid"]),
                       initial_principal=float(row["initial_principal"]))
    return LoanState(loan=loan, reserve_left=float(row["reserve_left"]),
                     reserve_deployed=float(row["reserve_deployed"]), booked=float(row["booked"]),
                     repaid=float(row["repaid"]))


def loan_origin(rows: pd.DataFrame) -> tuple[pd.Timestamp, float, Mapping[str, Any]]:
    """(when the book opened, the first spot price, the last row) of a hedge's ``loan_events``.

    Raises InvalidInput when the journal holds no ``start`` row (a loan book cannot be rebuilt
    without it: the operator must look at it)."""
    if rows is None or not len(rows):
        raise InvalidInput("loan_events", "no rows", "a journaled loan (the loan book's start row)")
    rows = rows.sort_values("seq")
    first = rows.iloc[0]
    if first["event"] != "start":
        raise InvalidInput("loan_events", str(first["event"]), "a first row of event 'start'")
    return _ts(first["started_at"]), float(first["first_price"]), rows.iloc[-1].to_dict()
