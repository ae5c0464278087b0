"""Loan against crypto collateral: interest, LTV bands and actions, reserve deployment, repayment.

Pure functions over frozen values. Money in quote units (USDT), float64. The formulas (interest,
LTV, the reserve schedule, the repayment waterfall) are :mod:`hedge_core.money`'s; this module
holds the loan state, the validation and the bands.

Conventions
-----------
- LTV = loan outstanding / (collateral quantity x price), a fraction (0.65 = 65 %).
  "Loan outstanding" = principal outstanding + accrued unpaid interest.
- Interest is SIMPLE on the outstanding principal, ACT/365 in seconds:
  ``interest = principal x APR x seconds / (365 x 86,400)``; accrued interest does not itself
  bear interest (no compounding).
- Bands (defaults): SAFE < 50 % <= MONITOR < 65 % <= WARNING < 75 % <= CRITICAL < 85 % <= EMERGENCY;
  the lower edge belongs to the higher band. Actions: none, watch, reduce the hedge book by 50 %,
  close losing positions, close all.
- Reserve deployment (defaults): 0 below 65 % LTV; linear from 0 at 65 % to 3,000 at 75 %; linear
  from 3,000 at 75 % to 8,000 at 85 %; the whole reserve (10,000) from 85 % (the EMERGENCY edge)
  on. It is continuous except for the documented jump 8,000 -> 10,000 at 85 %.
- Repayment waterfall from realised profit: accrued interest first, then principal; the rest is
  returned as leftover.
- Panic: distance to liquidation < 5 % AND net equity drop > 10 % (both strict).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import pandas as pd

from hedge_core import money
from hedge_core.errors import InvalidInput

SECONDS_PER_YEAR: Final = money.SECONDS_PER_YEAR

SAFE, MONITOR, WARNING, CRITICAL, EMERGENCY = "SAFE", "MONITOR", "WARNING", "CRITICAL", "EMERGENCY"
BANDS: Final = (SAFE, MONITOR, WARNING, CRITICAL, EMERGENCY)

#: Action of each band.
ACTIONS: Final = {
    SAFE: "none",
    MONITOR: "watch",
    WARNING: "reduce_hedge_50pct",
    CRITICAL: "close_losing_positions",
    EMERGENCY: "close_all",
}

__all__ = [
    "BANDS", "ACTIONS", "SAFE", "MONITOR", "WARNING", "CRITICAL", "EMERGENCY",
    "LtvParams", "DEFAULT_PARAMS", "Loan", "accrue", "ltv", "ltv_band", "band_action",
    "reserve_deployment", "Repayment", "repay_from_profit", "is_panic",
]


def _finite(name: str, v: float, *, lo: float | None = None, lo_open: bool = False) -> float:
    x = float(v)
    if not math.isfinite(x) or (lo is not None and (x <= lo if lo_open else x < lo)):
        rng = "finite" if lo is None else f"finite and {'>' if lo_open else '>='} {lo}"
        raise InvalidInput(name, v, rng)
    return x


@dataclass(frozen=True, slots=True)
class LtvParams:
    """Every LTV threshold and amount, with the product defaults.

    Attributes
    ----------
    monitor, warning, critical, emergency : float
        Lower LTV edges of the bands (fractions, strictly increasing in (0, 1]). SAFE is below
        ``monitor``.
    reserve_start, reserve_mid, reserve_end : float
        LTVs of the reserve schedule: 0 below ``reserve_start``; linear to ``reserve_mid_amount``
        at ``reserve_mid``; linear to ``reserve_end_amount`` just below ``reserve_end``;
        ``reserve_total`` from ``reserve_end`` on.
    reserve_mid_amount, reserve_end_amount, reserve_total : float
        Quote amounts (USDT), ``0 <= mid <= end <= total``.
    panic_liq_distance : float
        Panic when the distance to liquidation is BELOW this fraction (0.05)...
    panic_equity_drop : float
        ...and the net equity drop is ABOVE this fraction (0.10).
    """

    monitor: float = 0.50
    warning: float = 0.65
    critical: float = 0.75
    emergency: float = 0.85
    reserve_start: float = 0.65
    reserve_mid: float = 0.75
    reserve_end: float = 0.85
    reserve_mid_amount: float = 3_000.0
    reserve_end_amount: float = 8_000.0
    reserve_total: float = 10_000.0
    panic_liq_distance: float = 0.05
    panic_equity_drop: float = 0.10

    def __post_init__(self) -> None:
        edges = (self.monitor, self.warning, self.critical, self.emergency)
        if not all(math.isfinite(e) and 0 < e <= 1.5 for e in edges) or list(edges) != sorted(set(edges)):
            raise InvalidInput("band edges (monitor, warning, critical, emergency)", edges,
                               "strictly increasing LTV fractions in (0, 1.5]")
        rs = (self.reserve_start, self.reserve_mid, self.reserve_end)
        if not all(math.isfinite(e) and 0 < e <= 1.5 for e in rs) or list(rs) != sorted(set(rs)):
            raise InvalidInput("reserve LTVs (start, mid, end)", rs, "strictly increasing LTV fractions")
        amts = (self.reserve_mid_amount, self.reserve_end_amount, self.reserve_total)
        if not all(math.isfinite(a) and a >= 0 for a in amts) or list(amts) != sorted(amts):
            raise InvalidInput("reserve amounts (mid, end, total)", amts, "0 <= mid <= end <= total (USDT)")
        for name in ("panic_liq_distance", "panic_equity_drop"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0 < v < 1):
                raise InvalidInput(name, v, "a fraction in (0, 1)")


DEFAULT_PARAMS: Final = LtvParams()


@dataclass(frozen=True, slots=True)
class Loan:
    """State of a loan at ``as_of``.

    Attributes
    ----------
    principal : float
        Principal outstanding, USDT (>= 0).
    apr : float
        Simple annual interest rate on the principal (0.08 = 8 %/yr).
    as_of : pd.Timestamp
        UTC time up to which interest has been accrued.
    accrued_interest : float
        Interest accrued and not yet paid, USDT.
    interest_paid, principal_paid : float
        Paid to date, USDT.
    initial_principal : float or None
        Principal at origination (defaults to ``principal``), for coverage ratios.
    """

    principal: float
    apr: float
    as_of: pd.Timestamp
    accrued_interest: float = 0.0
    interest_paid: float = 0.0
    principal_paid: float = 0.0
    initial_principal: float | None = None

    def __post_init__(self) -> None:
        _finite("principal", self.principal, lo=0.0)
        _finite("apr", self.apr, lo=0.0)
        _finite("accrued_interest", self.accrued_interest, lo=0.0)
        _finite("interest_paid", self.interest_paid, lo=0.0)
        _finite("principal_paid", self.principal_paid, lo=0.0)
        ts = pd.Timestamp(self.as_of)
        if ts.tzinfo is None:
            raise InvalidInput("as_of", self.as_of, "a tz-aware UTC timestamp")
        object.__setattr__(self, "as_of", ts.tz_convert("UTC"))
        if self.initial_principal is None:
            object.__setattr__(self, "initial_principal", float(self.principal) + float(self.principal_paid))

    @property
    def outstanding(self) -> float:
        """Principal + accrued unpaid interest, USDT (the LTV numerator)."""
        return self.principal + self.accrued_interest

    @property
    def repaid(self) -> float:
        """Cumulative repayment (interest + principal), USDT."""
        return self.interest_paid + self.principal_paid


def accrue(loan: Loan, to: pd.Timestamp) -> Loan:
    """Accrue simple ACT/365 interest on the outstanding principal from ``loan.as_of`` to ``to``.

    ``interest = principal x apr x (to - as_of).total_seconds() / (365 x 86,400)``.
    Accruing in several steps gives the same result as one step (the principal does not change).
    ``to`` earlier than ``as_of`` raises.
    """
    t = pd.Timestamp(to)
    if t.tzinfo is None:
        raise InvalidInput("to", to, "a tz-aware UTC timestamp")
    dt = (t - loan.as_of).total_seconds()
    if dt < 0:
        raise InvalidInput("to", str(t), f">= loan.as_of ({loan.as_of}); interest never runs backwards")
    interest = money.simple_interest(loan.principal, loan.apr, dt)
    return replace(loan, as_of=t.tz_convert("UTC"), accrued_interest=loan.accrued_interest + interest)


def ltv(loan_outstanding: float | np.ndarray | pd.Series, collateral_qty: float,
        price: float | np.ndarray | pd.Series):
    """Loan-to-value = loan outstanding / (collateral qty x price) (fraction).

    Works element-wise on arrays/Series of prices. Prices and quantity must be > 0.
    """
    q = _finite("collateral_qty", collateral_qty, lo=0.0, lo_open=True)
    p = np.asarray(price, dtype="float64")
    if not (np.isfinite(p).all() and (p > 0).all()):
        raise InvalidInput("price", "non-finite or <= 0", "prices > 0 (quote per base)")
    lo = np.asarray(loan_outstanding, dtype="float64")
    if not (np.isfinite(lo).all() and (lo >= 0).all()):
        raise InvalidInput("loan_outstanding", loan_outstanding, "finite amounts >= 0 (USDT)")
    out = money.loan_to_value(lo, q, p)
    if isinstance(price, pd.Series):
        return pd.Series(out, index=price.index, name="ltv")
    if np.ndim(out) == 0:
        return float(out)
    return out


def _check_ltv(value: float) -> float:
    return _finite("ltv", value, lo=0.0)


def ltv_band(ltv: float, params: LtvParams = DEFAULT_PARAMS) -> str:
    """Band name of an LTV: 'SAFE', 'MONITOR', 'WARNING', 'CRITICAL' or 'EMERGENCY'.

    Each band's lower edge belongs to it (``ltv == 0.65`` -> 'WARNING'). NaN/negative raise.
    """
    x = _check_ltv(ltv)
    if x < params.monitor:
        return SAFE
    if x < params.warning:
        return MONITOR
    if x < params.critical:
        return WARNING
    if x < params.emergency:
        return CRITICAL
    return EMERGENCY


def band_action(band: str) -> str:
    """Action of a band: none, watch, reduce_hedge_50pct, close_losing_positions, close_all."""
    try:
        return ACTIONS[band]
    except KeyError:
        raise InvalidInput("band", band, f"one of {list(BANDS)}") from None


def reserve_deployment(ltv: float, params: LtvParams = DEFAULT_PARAMS) -> float:
    """Reserve (USDT) to deploy at a given LTV.

    0 below ``reserve_start`` (65 %); linear 0 -> 3,000 on [65 %, 75 %]; linear 3,000 -> 8,000 on
    [75 %, 85 %); the full reserve 10,000 at and above 85 % (a documented jump at the EMERGENCY
    edge). Non-decreasing in LTV.
    """
    p = params
    return money.reserve_deployment(_check_ltv(ltv), p.reserve_start, p.reserve_mid, p.reserve_end,
                                    p.reserve_mid_amount, p.reserve_end_amount, p.reserve_total)


@dataclass(frozen=True, slots=True)
class Repayment:
    """Split of a realised profit by the waterfall (USDT): interest, then principal, then leftover."""

    interest: float
    principal: float
    leftover: float


def repay_from_profit(loan: Loan, profit: float) -> tuple[Loan, Repayment]:
    """Apply realised ``profit`` (USDT, >= 0) to the loan: accrued interest first, then principal.

    Returns the new loan and the split. Accrue interest up to the payment time first
    (:func:`accrue`). A negative profit raises (a loss is not a repayment source).
    """
    amt = _finite("profit", profit, lo=0.0)
    to_interest, to_principal, leftover = money.repayment_split(amt, loan.accrued_interest, loan.principal)
    new = replace(loan,
                  accrued_interest=loan.accrued_interest - to_interest,
                  principal=loan.principal - to_principal,
                  interest_paid=loan.interest_paid + to_interest,
                  principal_paid=loan.principal_paid + to_principal)
    return new, Repayment(to_interest, to_principal, leftover)


def is_panic(liq_distance: float, equity_drop: float, params: LtvParams = DEFAULT_PARAMS) -> bool:
    """Panic condition: ``liq_distance < 5 %`` AND ``equity_drop > 10 %`` (defaults).

    Parameters
    ----------
    liq_distance : float
        Fractional adverse move to liquidation (see ``analytics.risk.liquidation_distance``).
    equity_drop : float
        Net equity drop from its reference (peak or start) as a positive fraction (0.12 = -12 %).
    """
    d = float(liq_distance)
    e = float(equity_drop)
    if math.isnan(d) or math.isnan(e):
        raise InvalidInput("liq_distance/equity_drop", (liq_distance, equity_drop), "numbers (not NaN)")
    return d < params.panic_liq_distance and e > params.panic_equity_drop
