"""The unknown-outcome protocol in the pure engine (step): window on the hedge's clock, hold,
alert naming the order, new-id retry linked to the first; NOT_SENT (rate limit / ban) holds."""

from __future__ import annotations

import pandas as pd

from hedge_core.engine import MarketUpdate, new_hedge, step
from hedge_core.engine.actions import Alert, PlaceOrder, QueryOrder
from hedge_core.engine.events import OrderTimeout, OrderUpdate, OrderUpdateKind, Timer
from hedge_core.exchange.paper.core import default_instruments
from hedge_core.params.models import CarryParams, ExecutionParams

INST = {i.symbol: i for i in default_instruments()}
T0 = pd.Timestamp("2024-01-01T00:00Z")
S = pd.Timedelta(seconds=1)
P = CarryParams(notional=10_000.0, min_funding_rate=0.0001, min_net_carry=-1.0,
                execution=ExecutionParams(order_timeout_s=5.0, max_queries=10))
WINDOW = 12.0  # Binance recvWindow 10 000 ms + 2 s margin


def started():
    ctx = new_hedge("h1", "carry", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0)
    ctx, acts = step(ctx, MarketUpdate(ts=T0, spot=40_000.0, perp=40_000.0, funding_rate=0.0005), P)
    (o,) = [a for a in acts if isinstance(a, PlaceOrder)]
    return ctx, o


def places(acts):
    return [a for a in acts if isinstance(a, PlaceOrder)]


def test_not_found_inside_the_window_holds_and_alerts_once_then_retries_under_a_new_id_after_it():
    ctx, o = started()
    coid = o.request.client_order_id
    end = T0 + WINDOW * S
    ctx, acts = step(ctx, OrderTimeout(T0, coid, window_end=end), P)
    assert [a for a in acts if isinstance(a, QueryOrder)]
    alerts = [a for a in acts if isinstance(a, Alert)]
    assert len(alerts) == 1 and coid in alerts[0].message and "outcome unknown" in alerts[0].message
    # the venue does not know it yet: proves nothing inside the window
    for t in (1, 5, 11):
        ctx, acts = step(ctx, OrderUpdate(T0 + t * S, coid, OrderUpdateKind.NOT_FOUND, window_s=WINDOW), P)
        assert not places(acts) and not [a for a in acts if isinstance(a, Alert)]
        assert ctx.pending[coid].status == "unknown" and ctx.pending_on("spot")
    # the market moves, timers tick: nothing new on the leg before the window end
    ctx, acts = step(ctx, MarketUpdate(ts=T0 + 6 * S, spot=41_000.0, perp=41_000.0, funding_rate=0.0005), P)
    assert not places(acts)
    # at the window end a timer asks once more, at once
    ctx, acts = step(ctx, Timer(end), P)
    assert [a.client_order_id for a in acts if isinstance(a, QueryOrder)] == [coid]
    ctx, acts = step(ctx, OrderUpdate(end, coid, OrderUpdateKind.NOT_FOUND, window_s=WINDOW), P)
    (retry,) = places(acts)
    new = retry.request.client_order_id
    assert retry.retry_of == coid and new != coid and new[:7] == coid[:7] and new[7] == "1"
    assert (retry.request.side, retry.request.qty, retry.request.symbol) == (o.request.side, o.request.qty,
                                                                           o.request.symbol)
    assert any(coid in a.message and new in a.message for a in acts if isinstance(a, Alert))
    assert set(ctx.pending) == {new} and ctx.pending[new].retry_of == coid and new in ctx.known_orders


def test_late_execution_found_at_the_window_end_books_it_and_sends_nothing_new():
    ctx, o = started()
    coid = o.request.client_order_id
    ctx, _ = step(ctx, OrderTimeout(T0, coid, window_end=T0 + WINDOW * S), P)
    ctx, _ = step(ctx, OrderUpdate(T0 + S, coid, OrderUpdateKind.NOT_FOUND, window_s=WINDOW), P)
    ctx, acts = step(ctx, OrderUpdate(T0 + 13 * S, coid, OrderUpdateKind.ACK, order_id="7"), P)
    assert not places(acts) and ctx.pending[coid].status == "acked"


def test_a_not_found_at_or_after_the_window_is_conclusive_on_the_hedge_clock():
    ctx, o = started()
    coid = o.request.client_order_id
    ctx, _ = step(ctx, OrderTimeout(T0, coid), P)  # no window end known (paper-like)
    ctx, acts = step(ctx, OrderUpdate(T0 + WINDOW * S, coid, OrderUpdateKind.NOT_FOUND, window_s=WINDOW), P)
    assert [p.retry_of for p in places(acts)] == [coid]


def test_not_sent_holds_until_retry_at_then_a_new_linked_id_goes_out():
    ctx, o = started()
    coid = o.request.client_order_id
    until = T0 + 30 * S
    ctx, acts = step(ctx, OrderUpdate(T0, coid, OrderUpdateKind.NOT_SENT, reason="banned", retry_at=until), P)
    (alert,) = [a for a in acts if isinstance(a, Alert)]
    assert coid in alert.message and until.isoformat() in alert.message and not places(acts)
    for t in (5, 10, 29):
        ctx, acts = step(ctx, Timer(T0 + t * S), P)
        assert not places(acts) and not [a for a in acts if isinstance(a, QueryOrder)]
    ctx, acts = step(ctx, Timer(until), P)
    (retry,) = places(acts)
    assert retry.retry_of == coid and retry.request.client_order_id != coid
