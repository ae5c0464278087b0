"""The typed state of a loan book (the ``voltier`` strategy): the loan, the reserve and the repayments.

One frozen value on :attr:`hedge_core.engine.context.HedgeContext.loan` (None for a hedge
without a loan), replacing the untyped ``strategy_state["loan"]``, ``["reserve_left"]``,
``["reserve_deployed"]``, ``["booked"]`` and ``["repaid"]`` entries of earlier versions. A
strategy changes it through :attr:`Intent.loan <hedge_core.engine.strategies.base.Intent>`,
a guard through :attr:`Verdict.loan <hedge_core.engine.guards.Verdict>`; ``step`` stores it.

Compatibility: :func:`LoanState.from_mapping` reads the old ``strategy_state`` layout (an
``ltv.Loan`` or a bare number under ``"loan"``), so a context or snapshot written by an earlier
version loads into the typed form (:func:`hedge_core.engine.context.new_hedge` does it);
:meth:`LoanState.as_mapping` writes the same keys back for readers of the old layout.

Money in quote units (USDT). Signs: every amount here is >= 0 (money paid out of the reserve or
out of profit into the loan).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from hedge_core import ltv as ltvmod
from hedge_core.errors import InvalidInput

__all__ = ["LOAN_KEYS", "LoanState"]

#: The ``strategy_state`` keys of the untyped layout this value replaces.
LOAN_KEYS = ("loan", "reserve_left", "reserve_deployed", "booked", "repaid")


@dataclass(frozen=True, slots=True)
class LoanState:
    """A loan book's memory.

    Attributes
    ----------
    loan : ltv.Loan
        Principal outstanding, accrued unpaid interest and interest paid (quote), accrued up to
        ``loan.as_of`` (the last instant the strategy decided).
    reserve_left : float
        USDT reserve not deployed yet (quote, >= 0 in normal operation).
    reserve_deployed : float
        Reserve paid into the loan by the LTV bands so far (quote, cumulative).
    booked : float
        The perp leg's realised money (realised PnL + funding - fees, quote) already applied to
        the loan: the next cycle repays only what was gained beyond it.
    repaid : float
        Interest + principal repaid out of realised profit so far (quote, cumulative; the
        reserve's repayments are in ``reserve_deployed``).
    """

    loan: ltvmod.Loan
    reserve_left: float
    reserve_deployed: float = 0.0
    booked: float = 0.0
    repaid: float = 0.0

    @property
    def outstanding(self) -> float:
        """Principal + accrued unpaid interest (quote) as of ``loan.as_of``."""
        return float(self.loan.outstanding)

    def accrued_to(self, t: pd.Timestamp) -> LoanState:
        """The state with the loan's interest accrued to ``t`` (unchanged when ``t`` is not later)."""
        if t > self.loan.as_of:
            return replace(self, loan=ltvmod.accrue(self.loan, t))
        return self

    def outstanding_at(self, t: pd.Timestamp) -> float:
        """Loan outstanding (quote) at ``t``, interest accrued to it when later than ``loan.as_of``."""
        return self.accrued_to(t).outstanding

    def as_mapping(self) -> dict[str, Any]:
        """The old untyped ``strategy_state`` layout (keys :data:`LOAN_KEYS`)."""
        return {"loan": self.loan, "reserve_left": self.reserve_left, "reserve_deployed": self.reserve_deployed,
                "booked": self.booked, "repaid": self.repaid}

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any], *, as_of: pd.Timestamp | None = None,
                     apr: float = 0.0, reserve: float = math.nan) -> LoanState:
        """Read the old ``strategy_state`` layout.

        Parameters
        ----------
        m : mapping
            ``{"loan": ltv.Loan | number, "reserve_left", "reserve_deployed", "booked", "repaid"}``;
            only ``loan`` is required. A bare number is a principal with nothing accrued.
        as_of : Timestamp, optional
            Accrual start of a bare-number loan (required then).
        apr : float
            APR (fraction per year) of a bare-number loan.
        reserve : float
            The book's whole reserve (quote): ``reserve_left = reserve - reserve_deployed`` when the
            mapping has no ``reserve_left``; NaN (unknown) = nothing left.

        Raises
        ------
        InvalidInput
            ``strategy_state.loan`` missing or of another type; ``as_of`` missing for a number.
        """
        loan = m.get("loan")
        if isinstance(loan, (int, float)) and not isinstance(loan, bool):
            if as_of is None:
                raise InvalidInput("strategy_state.loan", loan, "an ltv.Loan, or a number with as_of given")
            loan = ltvmod.Loan(principal=float(loan), apr=apr, as_of=as_of)
        if not isinstance(loan, ltvmod.Loan):
            raise InvalidInput("strategy_state.loan", type(loan).__name__, "an ltv.Loan (a loan book's loan)")
        deployed = float(m.get("reserve_deployed", 0.0))
        left = m.get("reserve_left")
        if left is None:
            left = reserve - deployed if not math.isnan(reserve) else 0.0
        return cls(loan=loan, reserve_left=float(left), reserve_deployed=deployed,
                   booked=float(m.get("booked", 0.0)), repaid=float(m.get("repaid", 0.0)))
