"""The order-state tables: the engine's view of a sent order, and the venue's order status."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from types import MappingProxyType

import pandas as pd
import pytest

from hedge_core.engine import (
    CancelOrder,
    MarketUpdate,
    OrderUpdate,
    OrderUpdateKind,
    PlaceOrder,
    Timer,
    new_hedge,
    step,
)
from hedge_core.engine.order_states import (
    LIVE_ORDER_STATES,
    ORDER_TRANSITIONS,
    OrderEvent,
    OrderState,
    next_order_state,
    order_table_markdown,
)
from hedge_core.engine.unknown_orders import hold_not_sent
from hedge_core.errors import IllegalOrderTransition, IllegalTransition
from hedge_core.exchange.order_status import (
    VENUE_ORDER_TRANSITIONS,
    VenueOrderEvent,
    next_venue_status,
)
from hedge_core.exchange.paper.core import default_instruments
from hedge_core.params.models import CarryParams
from hedge_core.types import OrderStatus

ROOT = Path(__file__).resolve().parents[1]
INST = {i.symbol: i for i in default_instruments()}
T0 = pd.Timestamp("2024-01-01T00:00Z")


def _reachable(table, start):
    seen, todo = {start}, deque([start])
    while todo:
        s = todo.popleft()
        for (a, _e), b in table.items():
            if a == s and b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


# ---- the engine's table ------------------------------------------------------------------------


def test_table_is_read_only():
    assert isinstance(ORDER_TRANSITIONS, MappingProxyType)
    with pytest.raises(TypeError):
        ORDER_TRANSITIONS[(OrderState.SENT, OrderEvent.ACK)] = OrderState.DONE  # type: ignore[index]


def test_every_state_reachable_from_sent_and_every_live_state_reaches_done():
    assert _reachable(ORDER_TRANSITIONS, OrderState.SENT) == set(OrderState)
    for s in LIVE_ORDER_STATES:
        assert OrderState.DONE in _reachable(ORDER_TRANSITIONS, s), s
    assert not [k for k in ORDER_TRANSITIONS if k[0] is OrderState.DONE]  # done has no exits


@pytest.mark.parametrize("state,event", [(OrderState.ACKED, OrderEvent.NOT_SENT), (OrderState.FINAL, OrderEvent.NOT_SENT),
                                         (OrderState.CANCEL_REQUESTED, OrderEvent.NOT_SENT),
                                         (OrderState.HELD, OrderEvent.ACK), (OrderState.DONE, OrderEvent.ACK)])
def test_illegal_moves_name_from_and_event(state, event):
    with pytest.raises(IllegalOrderTransition, match=f"illegal order transition {state.value} -> {event.value}") as e:
        next_order_state(state, event)
    assert isinstance(e.value, IllegalTransition) and e.value.state == state.value and e.value.trigger == event.value


@pytest.mark.parametrize("state,to", [(OrderState.FINAL, OrderState.FINAL),
                                      (OrderState.CANCEL_REQUESTED, OrderState.CANCEL_REQUESTED),
                                      (OrderState.SENT, OrderState.ACKED), (OrderState.UNKNOWN, OrderState.ACKED)])
def test_an_ack_never_reopens_a_final_order_nor_undoes_a_cancel(state, to):
    assert next_order_state(state, OrderEvent.ACK) is to


def test_a_query_keeps_what_is_known():
    keep = {OrderState.FINAL, OrderState.CANCEL_REQUESTED, OrderState.UNKNOWN}
    for s in LIVE_ORDER_STATES:
        assert next_order_state(s, OrderEvent.QUERY) is (s if s in keep else OrderState.QUERYING)


def test_stored_status_strings_still_load():
    """The values are the strings earlier versions stored: a plain string moves like its member."""
    for s in ("sent", "acked", "querying", "final", "cancel_requested", "unknown", "held"):
        assert OrderState(s).value == s
    assert next_order_state("acked", OrderEvent.CANCEL) is OrderState.CANCEL_REQUESTED
    assert OrderState.ACKED == "acked"  # comparisons against the old strings keep working


def test_docs_carry_the_generated_table():
    assert order_table_markdown() in (ROOT / "docs" / "engine.md").read_text()


# ---- used by step --------------------------------------------------------------------------------


def _entered():
    p = CarryParams(notional=10_000.0, min_net_carry=-1)
    ctx = new_hedge("o", "carry", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0)
    ctx, acts = step(ctx, MarketUpdate(T0, 40_000.0, 40_000.0, funding_rate=0.001), p)
    (place,) = [a for a in acts if isinstance(a, PlaceOrder)]
    return p, ctx, place.request.client_order_id


def test_step_moves_orders_through_the_table():
    p, ctx, coid = _entered()
    assert ctx.pending[coid].status is OrderState.SENT
    ctx, _ = step(ctx, OrderUpdate(T0, coid, OrderUpdateKind.CLOSED, order_id="1", filled=0.25), p)
    assert ctx.pending[coid].status is OrderState.FINAL  # closed at the venue, its fill not booked yet
    ctx, _ = step(ctx, OrderUpdate(T0, coid, OrderUpdateKind.ACK, order_id="1"), p)  # a late duplicate answer
    assert ctx.pending[coid].status is OrderState.FINAL


def test_a_working_order_past_its_timeout_is_cancelled_and_a_late_ack_keeps_the_cancel():
    p, ctx, coid = _entered()
    ctx, _ = step(ctx, OrderUpdate(T0, coid, OrderUpdateKind.ACK, order_id="1"), p)
    assert ctx.pending[coid].status is OrderState.ACKED
    late = T0 + pd.Timedelta(seconds=p.execution.order_timeout_s + 1)
    ctx, acts = step(ctx, Timer(late), p)
    assert [a.client_order_id for a in acts if isinstance(a, CancelOrder)] == [coid]
    assert ctx.pending[coid].status is OrderState.CANCEL_REQUESTED
    ctx, _ = step(ctx, OrderUpdate(T0, coid, OrderUpdateKind.ACK, order_id="1"), p)
    assert ctx.pending[coid].status is OrderState.CANCEL_REQUESTED


def test_not_sent_after_the_venue_answered_is_refused():
    p, ctx, coid = _entered()
    ctx, _ = step(ctx, OrderUpdate(T0, coid, OrderUpdateKind.ACK, order_id="1"), p)
    with pytest.raises(IllegalOrderTransition, match="acked -> NOT_SENT"):
        hold_not_sent(ctx.pending[coid], T0, T0 + pd.Timedelta(seconds=5), "429", [])


# ---- the venue's table -----------------------------------------------------------------------------


def test_venue_table_only_an_open_order_moves():
    assert isinstance(VENUE_ORDER_TRANSITIONS, MappingProxyType)
    assert {a for a, _ in VENUE_ORDER_TRANSITIONS} == {OrderStatus.OPEN}
    assert _reachable(VENUE_ORDER_TRANSITIONS, OrderStatus.OPEN) == {
        OrderStatus.OPEN, OrderStatus.CLOSED, OrderStatus.CANCELED, OrderStatus.EXPIRED}
    assert next_venue_status(OrderStatus.OPEN, OrderStatus.CANCELED) is OrderStatus.CANCELED
    assert next_venue_status(OrderStatus.OPEN, VenueOrderEvent.FILL) is OrderStatus.CLOSED


@pytest.mark.parametrize("final", [OrderStatus.CLOSED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED])
def test_venue_final_statuses_never_change(final):
    with pytest.raises(IllegalOrderTransition, match=f"illegal venue order transition {final.value} -> CANCEL"):
        next_venue_status(final, OrderStatus.CANCELED)
