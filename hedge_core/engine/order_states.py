"""Order states: the engine's view of each order it sent, and the venue's order status, as explicit tables.

Two tables, in the style of :mod:`hedge_core.engine.states` (a ``(state, event) -> state``
mapping behind ``MappingProxyType``; a pair not listed raises an error naming ``FROM -> EVENT``):

- :data:`ORDER_TRANSITIONS` over :class:`OrderState` — ``PendingOrder.status``, what the ENGINE
  knows about an order it sent and whose outcome is not fully booked yet. ``step`` and
  :mod:`hedge_core.engine.unknown_orders` move an order only through :func:`next_order_state`.
- :data:`VENUE_ORDER_TRANSITIONS` over :class:`hedge_core.types.OrderStatus` — what a VENUE says
  about an order; it lives in :mod:`hedge_core.exchange.order_status` (the paper venue closes
  orders through it without importing the engine) and is re-exported here.

Real-world edges the order table encodes (see ``engine/unknown_orders.py``):

- an ACK after a cancel was requested keeps ``cancel_requested`` (the cancel is still on its
  way); an ACK after the venue already said final keeps ``final`` (a late duplicate answer never
  re-opens an order);
- a query never hides what is already known: ``final``, ``cancel_requested`` and ``unknown``
  stay as they are, anything else becomes ``querying``;
- an answer lost (``LOST``) may happen in any live state (a query can time out too): ``unknown``;
- ``NOT_SENT`` (429/418 or our governor refused the create call) is only possible before the
  venue answered: never from ``acked``, ``final`` or ``cancel_requested``;
- ``done`` (the order left the pending book: all its fills booked, rejected, or replaced by a
  re-send under a new client id) has no exits.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from hedge_core.errors import IllegalOrderTransition
from hedge_core.exchange.order_status import (
    VENUE_ORDER_TRANSITIONS,
    VenueOrderEvent,
    next_venue_status,
)

__all__ = ["LIVE_ORDER_STATES", "ORDER_TRANSITIONS", "VENUE_ORDER_TRANSITIONS", "IllegalOrderTransition",
           "OrderEvent", "OrderState", "VenueOrderEvent", "next_order_state", "next_venue_status",
           "order_table_markdown"]


class OrderState(StrEnum):
    """``PendingOrder.status``. Values are the strings of earlier versions (journals and
    snapshots that stored them still load: ``OrderState("acked")``)."""

    SENT = "sent"  # handed to the adapter, no answer yet
    ACKED = "acked"  # the venue accepted it and it is working
    QUERYING = "querying"  # timed out: asked the venue by client order id
    FINAL = "final"  # the venue says done, but not all its fills are booked yet
    CANCEL_REQUESTED = "cancel_requested"  # we asked the venue to cancel the rest
    UNKNOWN = "unknown"  # the answer was lost; it may still execute until resolve_after
    HELD = "held"  # never reached the venue (rate limited / banned) until resolve_after
    DONE = "done"  # left the pending book (booked, rejected, or replaced by a re-send)


class OrderEvent(StrEnum):
    ACK = "ACK"  # the venue: accepted / working
    QUERY = "QUERY"  # we ask the venue about it by client order id
    CANCEL = "CANCEL"  # we ask the venue to cancel it (working too long, operator pause)
    FINAL = "FINAL"  # the venue: cancelled or closed, with fills still to book
    LOST = "LOST"  # the answer was lost / not found before the execution window ended
    NOT_SENT = "NOT_SENT"  # refused before the venue's matching, with a wait
    SETTLED = "SETTLED"  # everything it filled is booked, or it was rejected
    RESENT = "RESENT"  # proven absent at the venue: replaced by a new client id


O = OrderState
LIVE_ORDER_STATES = frozenset(s for s in OrderState if s is not O.DONE)


def _row(state: OrderState, **moves: OrderState) -> dict[tuple[OrderState, OrderEvent], OrderState]:
    return {(state, OrderEvent[ev]): to for ev, to in moves.items()}


# One row per state: event -> next state. An event missing from a row is illegal from that state.
_TABLE: dict[tuple[OrderState, OrderEvent], OrderState] = {
    **_row(O.SENT, ACK=O.ACKED, QUERY=O.QUERYING, CANCEL=O.CANCEL_REQUESTED, FINAL=O.FINAL, LOST=O.UNKNOWN,
           NOT_SENT=O.HELD, SETTLED=O.DONE, RESENT=O.DONE),
    **_row(O.ACKED, ACK=O.ACKED, QUERY=O.QUERYING, CANCEL=O.CANCEL_REQUESTED, FINAL=O.FINAL, LOST=O.UNKNOWN,
           SETTLED=O.DONE, RESENT=O.DONE),
    **_row(O.QUERYING, ACK=O.ACKED, QUERY=O.QUERYING, CANCEL=O.CANCEL_REQUESTED, FINAL=O.FINAL, LOST=O.UNKNOWN,
           NOT_SENT=O.HELD, SETTLED=O.DONE, RESENT=O.DONE),
    **_row(O.FINAL, ACK=O.FINAL, QUERY=O.FINAL, CANCEL=O.CANCEL_REQUESTED, FINAL=O.FINAL, LOST=O.UNKNOWN,
           SETTLED=O.DONE, RESENT=O.DONE),
    **_row(O.CANCEL_REQUESTED, ACK=O.CANCEL_REQUESTED, QUERY=O.CANCEL_REQUESTED, CANCEL=O.CANCEL_REQUESTED,
           FINAL=O.FINAL, LOST=O.UNKNOWN, SETTLED=O.DONE, RESENT=O.DONE),
    **_row(O.UNKNOWN, ACK=O.ACKED, QUERY=O.UNKNOWN, CANCEL=O.CANCEL_REQUESTED, FINAL=O.FINAL, LOST=O.UNKNOWN,
           NOT_SENT=O.HELD, SETTLED=O.DONE, RESENT=O.DONE),
    **_row(O.HELD, QUERY=O.QUERYING, CANCEL=O.CANCEL_REQUESTED, FINAL=O.FINAL, LOST=O.UNKNOWN, NOT_SENT=O.HELD,
           SETTLED=O.DONE, RESENT=O.DONE),
}
del O

#: The engine's order table. Anything not listed is illegal (``done`` has no exits).
ORDER_TRANSITIONS: Mapping[tuple[OrderState, OrderEvent], OrderState] = MappingProxyType(_TABLE)


def next_order_state(state: OrderState | str, event: OrderEvent) -> OrderState:
    """The engine's order state reached from ``state`` on ``event``.

    Raises
    ------
    IllegalOrderTransition
        ``(state, event)`` is not in :data:`ORDER_TRANSITIONS`; the message reads
        ``illegal order transition FROM -> EVENT``.
    """
    try:
        return _TABLE[(state, event)]  # type: ignore[index]  # a plain str equal to a member hashes alike
    except KeyError:
        raise IllegalOrderTransition(str(state), str(event)) from None


def order_table_markdown() -> str:
    """:data:`ORDER_TRANSITIONS` as a markdown table (one row per state, one column per event;
    ``-`` = illegal). ``docs/engine.md`` carries this text verbatim (a test checks it)."""
    events = list(OrderEvent)
    head = "| from \\ event | " + " | ".join(e.value for e in events) + " |"
    rule = "|---|" + "---|" * len(events)
    rows = [f"| {s.value} | " + " | ".join(_TABLE[(s, e)].value if (s, e) in _TABLE else "-" for e in events) + " |"
            for s in OrderState if s is not OrderState.DONE]
    return "\n".join([head, rule, *rows])
