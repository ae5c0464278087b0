"""The unknown-outcome protocol of an order, as pure functions over :class:`PendingOrder`.

An order whose answer was lost (timeout, dropped connection, HTTP 5xx, Binance -1007) may exist,
or may still execute until its ``recvWindow`` (+ a margin) after it was sent — Binance executes
a signed request whose ``timestamp + recvWindow`` has not passed, and its spot API accepts a
reused ``newClientOrderId`` once the first order is final. So:

1. The order's outcome is UNKNOWN. The pending entry stays (it blocks new orders on its leg) and
   the order is looked up at the venue by client order id and trade records.
2. Found -> booked from the venue's answer like any other order.
3. Not found BEFORE the window end (sent + window) -> still unknown: the leg holds, an alert names
   the order once, and it is looked up again when the window has passed.
4. Not found AT/AFTER the window end -> the order will never exist: a NEW order goes out under a
   NEW client order id, same sequence number, next attempt digit
   (``h<leg><seq:05d><attempt>-<digest>``), carrying ``retry_of`` = the lost id (journaled with the
   intent and named in the alert).
5. Refused before reaching the venue (429/418 or the rate-limit governor, with a wait): ``held``
   until the wait is over, then step 4's new-id retry (no window: it never reached the venue).

Times are the hedge's clock (venue time live; replay time in replays). The paper venue never
executes late (window 0): a NOT_FOUND there is conclusive at once, as before.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import pandas as pd

from hedge_core.engine.actions import Alert, AlertLevel, PlaceOrder
from hedge_core.engine.context import ORDER_REFS_KEPT, HedgeContext, PendingOrder, evolve
from hedge_core.engine.order_states import OrderEvent, OrderState, next_order_state
from hedge_core.types import OrderRequest, OrderType, client_order_id

__all__ = ["due", "hold_not_sent", "hold_unknown", "is_conclusive", "replace_lost", "retry_of", "window_end"]

UNKNOWN, HELD = OrderState.UNKNOWN, OrderState.HELD


def window_end(p: PendingOrder, window_s: float, known_end: pd.Timestamp | None = None) -> pd.Timestamp:
    """When a lost order can no longer execute: sent + ``window_s`` seconds, or a later end the
    adapter reported, or a hold already in place — whichever is last."""
    end = p.sent_ts + pd.Timedelta(seconds=max(float(window_s), 0.0))
    for other in (known_end, p.resolve_after):
        if other is not None and other > end:
            end = other
    return end


def is_conclusive(p: PendingOrder, ts: pd.Timestamp, window_s: float) -> bool:
    """Whether "the venue has no such order", seen at ``ts``, proves it will never exist."""
    return ts >= window_end(p, window_s)


def hold_unknown(p: PendingOrder, ts: pd.Timestamp, end: pd.Timestamp, venue: str,
                 out: list) -> PendingOrder:
    """Mark ``p`` unknown until ``end``; alert once (the first time it becomes unknown)."""
    if p.status != UNKNOWN:
        out.append(Alert(AlertLevel.WARNING,
                         f"{p.leg} order {p.client_order_id} on {venue}: outcome unknown (answer lost); "
                         f"the leg holds until it is resolved at the venue after {end.isoformat()}",
                         {"window_s": max((end - p.sent_ts).total_seconds(), 0.0)}))
    return replace(p, status=next_order_state(p.status, OrderEvent.LOST), resolve_after=end, last_query_ts=ts)


def hold_not_sent(p: PendingOrder, ts: pd.Timestamp, until: pd.Timestamp, reason: str, out: list) -> PendingOrder:
    """``p`` never reached the venue (rate limited / banned): hold until ``until``; alert once."""
    if p.status != HELD:
        out.append(Alert(AlertLevel.WARNING,
                         f"{p.leg} order {p.client_order_id} not sent ({reason}); the leg holds until "
                         f"{until.isoformat()}, then it is sent under a new client order id",
                         {"wait_s": max((until - ts).total_seconds(), 0.0)}))
    return replace(p, status=next_order_state(p.status, OrderEvent.NOT_SENT), resolve_after=until, last_query_ts=ts)


def due(p: PendingOrder, ts: pd.Timestamp) -> bool:
    """A held / unknown order whose wait is over at ``ts``."""
    return p.status in (UNKNOWN, HELD) and p.resolve_after is not None and ts >= p.resolve_after


def retry_of(hedge_id: str, p: PendingOrder, symbol: str, venue: str, ts: pd.Timestamp,
             out: list) -> PendingOrder:
    """The re-send of a lost order: a NEW client id (same seq, next attempt) linked to ``p``.

    Appends the PlaceOrder (with ``retry_of``) and an alert naming both ids; returns the new
    pending entry (the caller replaces ``p`` by it).
    """
    attempt = (p.attempt + 1) % 10
    coid = client_order_id(hedge_id, p.leg, p.seq, attempt)
    req = OrderRequest(symbol=symbol, side=p.side, qty=p.qty, client_order_id=coid, type=OrderType.MARKET,
                       reduce_only=p.reduce_only)
    out.append(Alert(AlertLevel.WARNING,
                     f"{p.leg} order {p.client_order_id} proven absent at the venue; re-sent as {coid} "
                     f"(retry of {p.client_order_id})", {"resends": float(p.resends + 1)}))
    out.append(PlaceOrder(leg=p.leg, venue=venue, request=req, purpose=p.purpose, retry_of=p.client_order_id))
    return PendingOrder(client_order_id=coid, leg=p.leg, side=p.side, qty=p.qty, purpose=p.purpose, seq=p.seq,
                        attempt=attempt, sent_ts=ts, reduce_only=p.reduce_only, resends=p.resends + 1,
                        ref_price=p.ref_price, retry_of=p.client_order_id)


def replace_lost(ctx: HedgeContext, p: PendingOrder, ts: pd.Timestamp, out: list) -> HedgeContext:
    """``ctx`` with the lost order ``p`` replaced by its re-send (:func:`retry_of`): the new id is a
    known order of the hedge with the same slippage reference; the old id stays known (a fill of it
    would still be booked)."""
    lg = ctx.leg(p.leg)
    new = retry_of(ctx.hedge_id, p, lg.symbol, lg.venue, ts, out)
    pending = dict(ctx.pending)
    pending.pop(p.client_order_id, None)
    pending[new.client_order_id] = new
    refs = dict(ctx.order_refs)
    refs[new.client_order_id] = p.ref_price
    if len(refs) > ORDER_REFS_KEPT:
        refs = dict(list(refs.items())[-ORDER_REFS_KEPT:])
    return evolve(ctx, pending=MappingProxyType(pending), known_orders=ctx.known_orders | {new.client_order_id},
                  order_refs=MappingProxyType(refs))
