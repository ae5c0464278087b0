"""Actions returned by :func:`hedge_core.engine.step.step`: data that the driver executes.

The engine never talks to a venue; it returns these and the driver (or the backtester, or the
recommend adapter) carries them out and feeds the answers back as events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

import pandas as pd

from hedge_core.types import MarginMode, OrderRequest

__all__ = [
    "ORDER_ACTIONS",
    "Action",
    "Alert",
    "AlertLevel",
    "CancelOrder",
    "GuardFired",
    "PlaceOrder",
    "QueryOrder",
    "RecordTransition",
    "SetLeverage",
    "SetMarginMode",
]

_EMPTY: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Send ``request`` on ``venue`` for leg ``leg``; ``purpose`` says why (entry, hedge, ...).

    Persist-before-acting: the driver hands this to ``on_intent`` before sending it.
    """

    leg: str
    venue: str
    request: OrderRequest
    purpose: str
    retry_of: str | None = None  # client id of the lost order this one replaces (new id, same seq)


@dataclass(frozen=True, slots=True)
class CancelOrder:
    leg: str
    venue: str
    symbol: str
    client_order_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class QueryOrder:
    """Ask the venue about ``client_order_id`` (after a timeout, before any re-send)."""

    leg: str
    venue: str
    symbol: str
    client_order_id: str


@dataclass(frozen=True, slots=True)
class SetLeverage:
    venue: str
    symbol: str
    leverage: float


@dataclass(frozen=True, slots=True)
class SetMarginMode:
    venue: str
    symbol: str
    mode: MarginMode


class AlertLevel(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Alert:
    level: AlertLevel
    message: str
    numbers: Mapping[str, float] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class RecordTransition:
    from_state: str
    to_state: str
    trigger: str
    reason: str
    ts: pd.Timestamp


@dataclass(frozen=True, slots=True)
class GuardFired:
    """A guard acted; ``numbers`` holds the measured value and its limit."""

    name: str
    action: str  # "flatten", "reduce", "hold_order", "deploy_reserve", "alert"
    numbers: Mapping[str, float]
    ts: pd.Timestamp


Action = PlaceOrder | CancelOrder | QueryOrder | SetLeverage | SetMarginMode | Alert | RecordTransition | GuardFired
ORDER_ACTIONS = (PlaceOrder, CancelOrder, QueryOrder)
