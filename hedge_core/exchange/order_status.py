"""The venue's order-status table: what a venue says about an order, and the only moves it makes.

An order is ``open`` until it is filled (``closed``), cancelled (``canceled``) or expired
(``expired``); ``rejected`` orders never open; final statuses never change (Binance spot API,
"Enum definitions - Order status (status)":
https://developers.binance.com/docs/binance-spot-api-docs/enums#order-status-status; a
cancel of a final order is answered with -2011 "Unknown order sent"). The paper venue closes its
orders only through :func:`next_venue_status`. The engine's own view of an order it sent is a
second table, :mod:`hedge_core.engine.order_states`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from hedge_core.errors import IllegalOrderTransition
from hedge_core.types import OrderStatus

__all__ = ["VENUE_ORDER_TRANSITIONS", "VenueOrderEvent", "next_venue_status"]


class VenueOrderEvent(StrEnum):
    FILL = "FILL"  # filled completely
    CANCEL = "CANCEL"  # cancelled (by the owner, or by the venue: a liquidation cancels open orders)
    EXPIRE = "EXPIRE"  # expired (time in force, an unfillable market order's rest)


_VENUE: dict[tuple[OrderStatus, VenueOrderEvent], OrderStatus] = {
    (OrderStatus.OPEN, VenueOrderEvent.FILL): OrderStatus.CLOSED,
    (OrderStatus.OPEN, VenueOrderEvent.CANCEL): OrderStatus.CANCELED,
    (OrderStatus.OPEN, VenueOrderEvent.EXPIRE): OrderStatus.EXPIRED,
}

#: The venue's order table: only an open order changes; closed, canceled, expired and rejected are final.
VENUE_ORDER_TRANSITIONS: Mapping[tuple[OrderStatus, VenueOrderEvent], OrderStatus] = MappingProxyType(_VENUE)
_BY_TARGET = {to: ev for (_, ev), to in _VENUE.items()}


def next_venue_status(status: OrderStatus, to: OrderStatus | VenueOrderEvent) -> OrderStatus:
    """The venue status reached from ``status`` by an event, or by the event that leads to ``to``.

    Raises
    ------
    IllegalOrderTransition
        The move is not in :data:`VENUE_ORDER_TRANSITIONS` (e.g. cancelling a closed order);
        the message reads ``illegal venue order transition FROM -> EVENT``.
    """
    ev = to if isinstance(to, VenueOrderEvent) else _BY_TARGET.get(to)
    try:
        return _VENUE[(status, ev)]  # type: ignore[index]
    except KeyError:
        raise IllegalOrderTransition(str(status), str(ev if ev is not None else to), table="venue order") from None
