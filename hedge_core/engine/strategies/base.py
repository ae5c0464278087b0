"""What a strategy returns: an :class:`Intent` (targets, enter/exit), never orders.

A strategy is a pure function ``decide(ctx, market, analytics, params) -> Intent``; ``step``
turns intents into orders through the state machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hedge_core.engine.loan_state import LoanState

__all__ = ["HOLD", "Intent"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Intent:
    """A strategy's wish at one instant.

    Attributes
    ----------
    enter : bool
        Flat -> open the hedge with ``target_spot_qty`` and ``target_ratio``.
    exit : bool
        In the market -> close (``reason`` says why).
    target_spot_qty : float or None
        Signed base quantity wanted on the spot leg (None = unchanged).
    target_ratio : float or None
        Hedge ratio h wanted (None = unchanged); clipped to the params' ratio bounds.
    profit_target : float or None
        Profit target in quote for this cycle (overrides ExitParams.profit_target_pct).
    leverage : float or None
        Perp leverage to set at entry (None = the risk rule chooses).
    state_updates : mapping
        Values merged into ``ctx.strategy_state`` (anchor prices, grid levels, timestamps...).
    loan : LoanState or None
        A loan book's new loan state (replaces ``ctx.loan``; None = unchanged).
    """

    enter: bool = False
    exit: bool = False
    target_spot_qty: float | None = None
    target_ratio: float | None = None
    profit_target: float | None = None
    leverage: float | None = None
    reason: str = ""
    state_updates: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    loan: LoanState | None = None


HOLD = Intent()
