"""The hedge engine: one pure state machine for backtest, paper and live.

``step(ctx, event, params) -> (ctx, actions)`` is the whole engine; :class:`HedgeDriver` is the
small async shell that executes actions against exchange adapters.
"""

from hedge_core.engine.actions import (
    Alert,
    AlertLevel,
    CancelOrder,
    GuardFired,
    PlaceOrder,
    QueryOrder,
    RecordTransition,
    SetLeverage,
    SetMarginMode,
)
from hedge_core.engine.context import (
    HedgeContext,
    PendingOrder,
    TransitionRecord,
    new_hedge,
)
from hedge_core.engine.events import (
    Command,
    FillEvent,
    FundingSettled,
    MarketUpdate,
    OperatorCommand,
    OrderTimeout,
    OrderUpdate,
    OrderUpdateKind,
    Timer,
)
from hedge_core.engine.ledger import Leg, apply_fill
from hedge_core.engine.loan_state import LoanState
from hedge_core.engine.order_states import ORDER_TRANSITIONS, OrderEvent, OrderState, next_order_state
from hedge_core.engine.states import TRANSITIONS, State, Trigger, next_state
from hedge_core.engine.step import order_needs, perp_target, step

__all__ = [
    "LoanState",
    "ORDER_TRANSITIONS",
    "OrderEvent",
    "OrderState",
    "next_order_state",
    "TRANSITIONS",
    "Alert",
    "AlertLevel",
    "CancelOrder",
    "Command",
    "FillEvent",
    "FundingSettled",
    "GuardFired",
    "HedgeContext",
    "Leg",
    "MarketUpdate",
    "OperatorCommand",
    "OrderTimeout",
    "OrderUpdate",
    "OrderUpdateKind",
    "PendingOrder",
    "PlaceOrder",
    "QueryOrder",
    "RecordTransition",
    "SetLeverage",
    "SetMarginMode",
    "State",
    "Timer",
    "TransitionRecord",
    "Trigger",
    "apply_fill",
    "new_hedge",
    "next_state",
    "order_needs",
    "perp_target",
    "step",
]
