"""The pure transition function of a hedge: ``step(ctx, event, params) -> (ctx, actions)``.

No I/O and no clock: time comes in the event. The same function runs in backtests, paper and
live; only the driver around it differs.

Design: event handlers book what happened (fills, answers, funding, prices) and then
:func:`_advance` looks at the book and the working orders and decides what is missing for the
current state (level-triggered, not edge-triggered). That is what makes the real-world edges
safe: a partial fill, a late fill or a rejection simply changes the book, and the next
``_advance`` hedges what is actually there. Orders are only sent for a leg with nothing working
on it, so an unanswered order blocks duplicates until it is resolved by a query.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import pandas as pd

from hedge_core.engine.actions import (
    Action,
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
from hedge_core import money
from hedge_core.engine import perp_legs, roll_step, unknown_orders
from hedge_core.engine.constants import MAX_ORDER_ROUNDS, ORDER_RATE_WINDOW_S, REARM_COOLDOWN_S
from hedge_core.engine.context import (
    ORDER_REFS_KEPT,
    HedgeContext,
    PendingOrder,
    TransitionRecord,
    evolve,
    seconds_between,
)
from hedge_core.engine.events import (
    Command,
    Event,
    FillEvent,
    FundingSettled,
    MarketUpdate,
    OperatorCommand,
    OrderTimeout,
    OrderUpdate,
    OrderUpdateKind,
    Timer,
)
from hedge_core.engine.exits import defer_exit, exit_reason
from hedge_core.engine.guards import Verdict, market_guards, order_guard
from hedge_core.engine.order_states import OrderEvent, OrderState, next_order_state
from hedge_core.engine.ledger import (
    QTY_EPS,
    accrue_interest,
    book_fill,
    apply_funding,
    funding_amount,
    mark_leg,
    slippage_cost,
)
from hedge_core.engine.sizing import choose_leverage
from hedge_core.engine.states import TRANSITIONS, State, Trigger, next_state
from hedge_core.engine.strategies import strategy_for
from hedge_core.engine.strategies.base import Intent
from hedge_core.engine.targets import _price, _signed_working, _tradeable, order_needs, perp_target
from hedge_core.errors import InvalidInput
from hedge_core.params.models import StrategyParamsBase
from hedge_core.types import MarketKind, OrderRequest, OrderType, Side, client_order_id

__all__ = ["day_of", "order_needs", "perp_target", "step"]

_SEEN_TRADES_KEPT = 512
_NS_PER_DAY = 86_400_000_000_000
_ZERO = timedelta(0)
_UTC = UTC
_PEAK_STATES = frozenset({State.MONITORING_POSITIONS, State.REBALANCING})
_MAX_ROUNDS = MAX_ORDER_ROUNDS  # order rounds per rebalance / close phase before giving up on dust


# ---- public entry point -----------------------------------------------------------------------


def step(ctx: HedgeContext, event: Event, params: StrategyParamsBase) -> tuple[HedgeContext, list[Action]]:
    """Apply one event to one hedge.

    Parameters
    ----------
    ctx : HedgeContext
        The hedge before the event (unchanged by this call).
    event : Event
        Market update, order answer, fill, funding, timer, timeout or operator command.
    params : StrategyParamsBase
        The strategy's parameters (``params.strategy`` selects the strategy: ``strategy_for``).

    Returns
    -------
    (HedgeContext, list[Action])
        The new context and the actions for the driver, in order.
    """
    if roll_step.takes(ctx, event):  # the calendar roll: its request, its fills, funding off the perpetual
        return roll_step.step_roll(ctx, event, params, _advance)  # type: ignore[arg-type]
    out: list[Action] = []
    ts = event.ts
    market: MarketUpdate | None = None
    if isinstance(event, MarketUpdate):
        # the clock moves inside _on_market, in the same copy as the prices (one copy per bar)
        now = max(ctx.last_ts, ts)  # a late-stamped event never moves it back
        market = event
        ctx = _on_market(ctx, event, now, params, out)
        ctx = _advance(ctx, now, params, market, out)
        return ctx, out
    if ts > ctx.last_ts:
        ctx = evolve(ctx, last_ts=ts)
    now = ctx.last_ts  # a late-stamped event never moves the clock backwards
    if isinstance(event, FillEvent):
        ctx = _on_fill(ctx, event, out)
    elif isinstance(event, OrderUpdate):
        ctx = _on_order_update(ctx, event, params, out)
    elif isinstance(event, FundingSettled):
        ctx = _on_funding(ctx, event)
    elif isinstance(event, Timer):
        if event.heartbeat:
            ctx = evolve(ctx, last_heartbeat=event.ts)
        ctx = _check_timeouts(ctx, now, params, out)
        if event.prices_stale and ctx.state in (State.MONITORING_POSITIONS, State.ANALYZING_MARKET):
            return ctx, out  # decide nothing new on stale prices (an entry/close under way goes on)
        ctx = _run_guards(ctx, now, params, out)
    elif isinstance(event, OrderTimeout):
        ctx = _on_timeout(ctx, event, params, out)
    elif isinstance(event, OperatorCommand):
        ctx = _on_command(ctx, event, params, out)
    else:
        raise InvalidInput("event", type(event).__name__, "one of hedge_core.engine.events.Event")
    ctx = _advance(ctx, now, params, market, out)
    return ctx, out


# ---- transitions and orders -------------------------------------------------------------------


def _transition(ctx: HedgeContext, trigger: Trigger, reason: str, ts: pd.Timestamp, out: list[Action]) -> HedgeContext:
    new = next_state(ctx.state, trigger)
    rec = TransitionRecord(ts, ctx.state, new, str(trigger), reason)
    out.append(RecordTransition(str(ctx.state), str(new), str(trigger), reason, ts))
    return evolve(ctx, state=new, history=ctx.history + (rec,), phase_rejects=0, phase_orders=0)


def _try(ctx: HedgeContext, trigger: Trigger, reason: str, ts: pd.Timestamp, out: list[Action]) -> HedgeContext:
    """Transition when the table allows it from the current state; otherwise leave ctx as is."""
    if (ctx.state, trigger) in TRANSITIONS:
        return _transition(ctx, trigger, reason, ts, out)
    return ctx


def _guard_fired(ctx: HedgeContext, v: Verdict, ts: pd.Timestamp, out: list[Action]) -> HedgeContext:
    """Record a guard once per episode (latched until its condition clears)."""
    if v.name in ctx.active_guards:
        return ctx
    out.append(GuardFired(v.name, v.action, MappingProxyType(dict(v.numbers)), ts))
    return evolve(ctx, active_guards=ctx.active_guards | {v.name})


def _place(ctx: HedgeContext, leg: str, signed_qty: float, purpose: str, ts: pd.Timestamp, params: StrategyParamsBase,
           out: list[Action], *, reduce_only: bool = False) -> tuple[HedgeContext, bool]:
    """Emit a market PlaceOrder for ``signed_qty`` (rounded down to the lot) if venue limits allow.

    Returns (ctx, placed). The client order id is deterministic: ``client_order_id(hedge_id,
    leg, seq, attempt)`` with a per-hedge sequence, so a restart replaying the same events
    produces the same ids.
    """
    lg = ctx.leg(leg)
    px = _price(ctx, leg)
    qty = lg.round_qty(signed_qty)
    if not (px > 0 and _tradeable(ctx, leg, signed_qty, reduce_only=reduce_only)):
        return ctx, False
    side = Side.BUY if signed_qty > 0 else Side.SELL
    v = order_guard(ctx, leg, side, qty, px, ts, params.guards)
    if v is not None:
        ctx = _guard_fired(ctx, v, ts, out)
        return ctx, False
    if "order_rate" in ctx.active_guards or "position_limit" in ctx.active_guards:
        ctx = evolve(ctx, active_guards=ctx.active_guards - {"order_rate", "position_limit"})
    coid = client_order_id(ctx.hedge_id, leg, ctx.seq, min(ctx.phase_rejects, 9))
    req = OrderRequest(symbol=lg.symbol, side=side, qty=qty, client_order_id=coid, type=OrderType.MARKET,
                       reduce_only=reduce_only and perp_legs.is_perp(lg))
    out.append(PlaceOrder(leg=leg, venue=lg.venue, request=req, purpose=purpose))
    # the price decided at is the slippage reference of every fill of this order (ledger.slippage_cost)
    po = PendingOrder(client_order_id=coid, leg=leg, side=side, qty=qty, purpose=purpose, seq=ctx.seq,
                      attempt=min(ctx.phase_rejects, 9), sent_ts=ts, reduce_only=req.reduce_only, ref_price=px)
    pending = dict(ctx.pending)
    pending[coid] = po
    refs = dict(ctx.order_refs)
    refs.pop(coid, None)
    refs[coid] = px
    if len(refs) > ORDER_REFS_KEPT:
        refs = dict(list(refs.items())[-ORDER_REFS_KEPT:])
    times = tuple(t for t in ctx.order_times if (ts - t).total_seconds() < ORDER_RATE_WINDOW_S) + (ts,)
    return evolve(ctx, pending=MappingProxyType(pending), seq=ctx.seq + 1, known_orders=ctx.known_orders | {coid},
                   order_times=times, phase_orders=ctx.phase_orders + 1, order_refs=MappingProxyType(refs)), True


def _put(ctx: HedgeContext, p: PendingOrder) -> HedgeContext:
    pending = dict(ctx.pending)
    pending[p.client_order_id] = p
    return evolve(ctx, pending=MappingProxyType(pending))


def _drop(ctx: HedgeContext, coid: str) -> HedgeContext:
    pending = dict(ctx.pending)
    pending.pop(coid, None)
    return evolve(ctx, pending=MappingProxyType(pending))


# ---- event handlers ---------------------------------------------------------------------------


def _day_of(ts: pd.Timestamp) -> str:
    """``ts.strftime('%Y-%m-%d')`` (the daily-loss guard's day), memoised per UTC day."""
    tz = ts.tzinfo
    if tz is _UTC or (tz is not None and ts.utcoffset() == _ZERO):
        return _utc_day(ts.value // _NS_PER_DAY)
    return ts.strftime("%Y-%m-%d")


def day_of(ts: pd.Timestamp) -> str:
    """The daily-loss guard's day of ``ts`` (``'YYYY-MM-DD'``, the UTC day of a UTC timestamp): the day
    ``HedgeContext.day`` holds (the runner's recovery compares a journaled day with it: runner.exit_marks)."""
    return _day_of(ts)


@lru_cache(maxsize=64)
def _utc_day(day_number: int) -> str:
    return pd.Timestamp(day_number * _NS_PER_DAY, tz="UTC").strftime("%Y-%m-%d")


def _on_market(ctx: HedgeContext, m: MarketUpdate, now: pd.Timestamp, params: StrategyParamsBase, out: list[Action]) -> HedgeContext:
    """Book the prices of a market update and move the clock to ``now`` (one context copy).

    The common bar (prices move, nothing else) costs one :func:`evolve`; the day roll and the
    peak PnL are written into that same fresh copy (see :func:`_amend`).
    """
    if not (m.spot > 0 and m.perp > 0 and math.isfinite(m.spot) and math.isfinite(m.perp)):
        out.append(Alert(AlertLevel.WARNING, "market update without valid prices ignored",
                         {"spot": m.spot, "perp": m.perp}))
        return ctx if now is ctx.last_ts else evolve(ctx, last_ts=now)
    if ctx.last_market_ts is not None and m.ts < ctx.last_market_ts:
        # stale (out-of-order) prices never overwrite newer ones
        return ctx if now is ctx.last_ts else evolve(ctx, last_ts=now)
    mark = m.mark_or_perp
    spot_leg = ctx.spot
    # borrow interest on a spot short (carry with negative funding), accrued by elapsed time
    if spot_leg.qty < 0 and ctx.last_market_ts is not None and (apr := getattr(params, "borrow_apr", 0.0)) > 0 \
            and spot_leg.kind is MarketKind.SPOT:
        dt_s = (m.ts - ctx.last_market_ts).total_seconds()
        if dt_s > 0:
            spot_leg = accrue_interest(spot_leg, money.simple_interest(abs(spot_leg.qty) * ctx.spot_price, apr, dt_s))
    ctx = evolve(ctx, last_ts=now, spot=mark_leg(spot_leg, m.first_mark), perp=mark_leg(ctx.perp, mark), spot_price=m.spot,
                 perp_price=m.perp, mark_price=mark, spot_mark_price=m.spot_mark, last_funding_rate=m.funding_rate,
                 spot_funding_rate=m.spot_funding_rate, spot_funding_interval_hours=m.spot_funding_interval_hours,
                 next_funding_rate=m.next_funding_rate, funding_interval_hours=m.funding_interval_hours,
                 analytics=m.analytics, last_market_ts=m.ts)
    day = _day_of(m.ts)
    if day != ctx.day:
        _amend(ctx, day=day, day_start_pnl=ctx.pnl)
    if ctx.state in _PEAK_STATES:
        cycle = ctx.cycle_pnl
        if cycle > ctx.peak_pnl:
            _amend(ctx, peak_pnl=cycle)
    if ctx.pending:
        ctx = _check_timeouts(ctx, now, params, out)
    return _run_guards(ctx, now, params, out)


def _amend(fresh: HedgeContext, **changes: Any) -> None:
    """Write ``changes`` into a context created by :func:`evolve` IN THIS CALL and not yet
    returned or shared (so no one can observe the write): saves a second copy per bar."""
    fresh.__dict__.update(changes)


def _on_fill(ctx: HedgeContext, ev: FillEvent, out: list[Action]) -> HedgeContext:
    f = ev.fill
    if f.trade_id in ctx.seen_trades:
        return ctx  # duplicate report (a query re-delivers fills): book once
    if ev.leg not in ("spot", "perp") or ctx.leg(ev.leg).symbol != f.symbol:
        out.append(Alert(AlertLevel.CRITICAL, f"fill on {f.symbol} does not match leg {ev.leg!r}; not booked",
                         {"qty": f.qty, "price": f.price}))
        return ctx
    if ev.external:
        # EDGE: the venue traded on its own (liquidation / ADL). Book it; _advance re-hedges
        # what is left (a liquidated perp leaves the spot leg naked: it is hedged again).
        out.append(Alert(AlertLevel.CRITICAL, f"external {ev.leg} fill ({'delivery' if ev.delivered_to else 'liquidation/ADL'}) booked",
                         {"qty": f.side.sign * f.qty, "price": f.price, "fee": f.fee}))
        ctx = ctx.with_leg(book_fill(ctx.leg(ev.leg), f.side, f.qty, f.price, f.fee, f.fee_currency, f.slippage))
        ctx = evolve(ctx, seen_trades=(ctx.seen_trades + (f.trade_id,))[-_SEEN_TRADES_KEPT:])
        return ctx if ev.delivered_to is None else roll_step.delivered(ctx, ev, out)
    if f.client_order_id not in ctx.known_orders:
        # not one of ours (another process, or a journal from before a restart): reconciliation's job
        out.append(Alert(AlertLevel.CRITICAL, f"fill for unknown order {f.client_order_id}; not booked",
                         {"qty": f.qty, "price": f.price}))
        return ctx
    leg = ctx.leg(ev.leg)
    ref = ctx.order_ref(f.client_order_id)
    # slippage versus the price this engine decided at; the venue's own figure only when the
    # reference is unknown (a venue liquidation id registered by the caller, an order from before
    # a restart, or one older than ORDER_REFS_KEPT orders)
    slip = slippage_cost(f.side, f.qty, f.price, ref) if ref > 0 else f.slippage
    ctx = ctx.with_leg(book_fill(leg, f.side, f.qty, f.price, f.fee, f.fee_currency, slip))
    if f.fee_currency == leg.base and f.fee and ev.leg == "spot" and f.side is Side.BUY \
            and ctx.target_spot_qty > 0 and not ctx.collateral_spot:
        # the coins the venue kept as its fee are part of the purchase: hedge and hold what arrived
        ctx = evolve(ctx, target_spot_qty=max(ctx.target_spot_qty - f.fee, 0.0))
    ctx = evolve(ctx, seen_trades=(ctx.seen_trades + (f.trade_id,))[-_SEEN_TRADES_KEPT:])
    p = ctx.pending.get(f.client_order_id)
    if p is None:
        # EDGE: late fill after cancel (or after the venue's final answer was processed). The money
        # moved, so it is booked; _advance then re-hedges from the actual book (drift/rebalance,
        # or top-up in OPENING_FUTURES_HEDGE, or more closing in CLOSING_POSITIONS).
        out.append(Alert(AlertLevel.WARNING, f"late fill on {ev.leg} after its order was final: booked, hedge re-evaluated",
                         {"qty": f.side.sign * f.qty, "price": f.price}))
        if ev.leg == "spot" and not ctx.collateral_spot and ctx.state in (
                State.OPENING_FUTURES_HEDGE, State.MONITORING_POSITIONS, State.REBALANCING):
            # adopt the late spot quantity as the target: the perp is then sized to hedge it
            ctx = evolve(ctx, target_spot_qty=ctx.target_spot_qty + f.side.sign * f.qty)
        return ctx
    filled = p.filled + f.qty
    if filled > p.qty + QTY_EPS:
        out.append(Alert(AlertLevel.CRITICAL, f"overfill on {p.client_order_id}: {filled:g} > {p.qty:g}",
                         {"filled": filled, "qty": p.qty}))
    p = replace(p, filled=filled)
    done = filled >= p.qty - QTY_EPS or (p.status == OrderState.FINAL and filled >= p.final_filled - QTY_EPS)
    return _drop(ctx, p.client_order_id) if done else _put(ctx, p)


def _on_order_update(ctx: HedgeContext, ev: OrderUpdate, params: StrategyParamsBase, out: list[Action]) -> HedgeContext:
    p = ctx.pending.get(ev.client_order_id)
    if p is None:
        return ctx  # answer about an order already resolved (duplicate / late answer): nothing to do
    k = ev.kind
    if k is OrderUpdateKind.ACK:
        return _put(ctx, replace(p, status=next_order_state(p.status, OrderEvent.ACK), order_id=ev.order_id or p.order_id))
    if k is OrderUpdateKind.REJECTED:
        out.append(Alert(AlertLevel.WARNING, f"{p.leg} {p.purpose} order rejected: {ev.reason}",
                         {"qty": p.side.sign * p.qty, "rejects": float(ctx.phase_rejects + 1)}))
        ctx = _drop(ctx, p.client_order_id)
        return evolve(ctx, phase_rejects=ctx.phase_rejects + 1)
    if k is OrderUpdateKind.NOT_SENT:
        # EDGE: refused before the venue's matching (429/418, or our governor during a back-off or
        # ban): it does not exist; the leg holds until the wait is over, then a new id goes out
        until = ev.retry_at if ev.retry_at is not None else ctx.last_ts
        return _put(ctx, unknown_orders.hold_not_sent(p, ctx.last_ts, until, ev.reason, out))
    if k is OrderUpdateKind.NOT_FOUND:
        # EDGE: the answer to the create call was lost and the venue (orders and trades by client
        # id) does not show the order. Before sent + recvWindow (+ margin) it may still execute:
        # hold and ask again at the window end. After it, it never will: re-send under a NEW id
        # linked to the first (docs/live-outcome-governor.md).
        if not unknown_orders.is_conclusive(p, ctx.last_ts, ev.window_s):
            end = unknown_orders.window_end(p, ev.window_s)
            return _put(ctx, unknown_orders.hold_unknown(p, ctx.last_ts, end, ctx.leg(p.leg).venue, out))
        if p.resends < params.execution.max_resends:
            return unknown_orders.replace_lost(ctx, p, ctx.last_ts, out)
        out.append(Alert(AlertLevel.WARNING, f"{p.leg} order {p.client_order_id} never reached the venue after "
                         f"{p.resends} re-sends", {"resends": float(p.resends)}))
        ctx = _drop(ctx, p.client_order_id)
        return evolve(ctx, phase_rejects=ctx.phase_rejects + 1)
    # CANCELED or CLOSED: final. Fills may still be on their way: keep the order (blocking new
    # orders on this leg) until what the venue reports as filled is booked.
    reported = ev.filled if ev.filled > 0 else p.filled
    if k is OrderUpdateKind.CANCELED and reported <= QTY_EPS:
        ctx = evolve(ctx, phase_rejects=ctx.phase_rejects + 1)
    if k is OrderUpdateKind.CLOSED and ev.filled <= 0:
        reported = p.qty
    if p.filled >= reported - QTY_EPS:
        return _drop(ctx, p.client_order_id)
    return _put(ctx, replace(p, status=next_order_state(p.status, OrderEvent.FINAL), final_filled=reported, last_query_ts=ctx.last_ts,
                             order_id=ev.order_id or p.order_id))


def _on_funding(ctx: HedgeContext, ev: FundingSettled) -> HedgeContext:
    if ev.leg != "perp" or ctx.first_leg_is_perp:  # two perp legs: each leg's own venue (engine.perp_legs)
        return perp_legs.on_pair_funding(ctx, ev)
    if math.isnan(ev.amount) and ctx.perp.qty == 0.0:
        return ctx
    # the venue's booked amount wins; -qty x mark x rate from our book only when it is unknown
    amount = ev.amount if not math.isnan(ev.amount) else funding_amount(ctx.perp.qty, ev.mark, ev.rate)
    if amount == 0.0 and ctx.perp.qty == 0.0:
        return ctx
    unfav = ctx.unfavourable_funding + 1 if amount < 0 else 0
    return evolve(ctx, perp=apply_funding(ctx.perp, amount), unfavourable_funding=unfav)


def _query(ctx: HedgeContext, p: PendingOrder, ts: pd.Timestamp, params: StrategyParamsBase, out: list[Action]) -> HedgeContext:
    """Ask the venue about ``p`` by client order id. Too many unanswered queries -> ERROR (once);
    in ERROR the queries go on (finding out the truth is always safe), without new alerts."""
    if p.queries >= params.execution.max_queries and ctx.state is not State.ERROR:
        out.append(Alert(AlertLevel.CRITICAL, f"{p.leg} order {p.client_order_id} unresolved after {p.queries} queries",
                         {"queries": float(p.queries)}))
        ctx = _try(ctx, Trigger.FAULT, f"order {p.client_order_id} unresolved", ts, out)
    lg = ctx.leg(p.leg)
    out.append(QueryOrder(leg=p.leg, venue=lg.venue, symbol=lg.symbol, client_order_id=p.client_order_id))
    return _put(ctx, replace(p, status=next_order_state(p.status, OrderEvent.QUERY), queries=p.queries + 1,
                             last_query_ts=ts))


def _on_timeout(ctx: HedgeContext, ev: OrderTimeout, params: StrategyParamsBase, out: list[Action]) -> HedgeContext:
    p = ctx.pending.get(ev.client_order_id)
    if p is None:
        return ctx
    # EDGE: no answer -> the order may or may not exist. Query by client order id before anything
    # is re-sent; the pending entry keeps blocking new orders on this leg meanwhile. When the
    # adapter knows until when the order may still execute, that end is kept: a NOT_FOUND before
    # it proves nothing.
    if ev.window_end is not None:
        end = unknown_orders.window_end(p, 0.0, ev.window_end)
        p = unknown_orders.hold_unknown(p, ctx.last_ts, end, ctx.leg(p.leg).venue, out)
        ctx = _put(ctx, p)
    return _query(ctx, p, ctx.last_ts, params, out)


def _check_timeouts(ctx: HedgeContext, ts: pd.Timestamp, params: StrategyParamsBase, out: list[Action]) -> HedgeContext:
    limit = params.execution.order_timeout_s
    for p in tuple(ctx.pending.values()):
        if p.status == unknown_orders.HELD:
            if unknown_orders.due(p, ts):  # the wait is over: it never reached the venue
                ctx = unknown_orders.replace_lost(ctx, p, ts, out)
            continue
        if p.status == unknown_orders.UNKNOWN and unknown_orders.due(p, ts) \
                and (p.last_query_ts is None or p.last_query_ts < p.resolve_after):
            ctx = _query(ctx, p, ts, params, out)  # the window has passed: ask once more, at once
            continue
        since = p.last_query_ts or p.sent_ts
        if seconds_between(ts, since) < limit:
            continue
        if p.status == OrderState.ACKED:
            # working too long (e.g. a partly filled order): cancel the rest, hedge what filled
            lg = ctx.leg(p.leg)
            out.append(CancelOrder(p.leg, lg.venue, lg.symbol, p.client_order_id, "order timeout"))
            ctx = _put(ctx, replace(p, status=next_order_state(p.status, OrderEvent.CANCEL), last_query_ts=ts))
        else:
            ctx = _query(ctx, p, ts, params, out)
    return ctx


def _run_guards(ctx: HedgeContext, ts: pd.Timestamp, params: StrategyParamsBase, out: list[Action]) -> HedgeContext:
    verdicts = market_guards(ctx, ts, params.guards)
    verdicts += strategy_for(params).guards(ctx, ts, params)
    if not verdicts and not ctx.active_guards:
        return ctx  # the common bar: nothing fired, nothing latched
    fired = {v.name for v in verdicts}
    keep = {"order_rate", "position_limit"} & ctx.active_guards
    active = frozenset((ctx.active_guards & fired) | keep)
    if active != ctx.active_guards:
        ctx = evolve(ctx, active_guards=active)
    for v in verdicts:
        if v.name in ctx.active_guards:
            continue
        if v.action == "reduce" and ctx.state is not State.MONITORING_POSITIONS:
            continue  # acted on (and latched) once the hedge is back in MONITORING_POSITIONS
        ctx = _guard_fired(ctx, v, ts, out)
        if v.action == "flatten":
            if v.name == "dead_mans_switch":
                ctx = evolve(ctx, kill_latched=True)
            ctx = evolve(ctx, rearm_on_flat=False, exit_reason=f"guard {v.name}: {v.reason}")
            ctx = _try(ctx, Trigger.FLATTEN, f"guard {v.name}: {v.reason}", ts, out)
        elif v.action == "reduce" and ctx.state is State.MONITORING_POSITIONS:
            frac = params.guards.liq_reduce_fraction
            if ctx.collateral_spot:
                ctx = evolve(ctx, target_ratio=ctx.target_ratio * (1 - frac))
            else:
                ctx = evolve(ctx, target_spot_qty=ctx.spot.qty * (1 - frac))
            ctx = _transition(ctx, Trigger.RISK_REDUCE, f"guard {v.name}: {v.reason}", ts, out)
        elif v.action == "deploy_reserve":
            if v.loan is not None:
                ctx = evolve(ctx, loan=v.loan)
            out.append(Alert(AlertLevel.WARNING, v.reason, MappingProxyType(dict(v.numbers))))
        elif v.action == "alert":
            out.append(Alert(AlertLevel.WARNING, v.reason, MappingProxyType(dict(v.numbers))))
    return ctx


def _on_command(ctx: HedgeContext, ev: OperatorCommand, params: StrategyParamsBase, out: list[Action]) -> HedgeContext:
    ts, c = ctx.last_ts, ev.command
    why = f"operator {c}" + (f": {ev.reason}" if ev.reason else "")
    if c is Command.FLATTEN:
        # manual kill switch: latched, nothing new is opened until an operator CANCEL
        out.append(GuardFired("kill_switch", "flatten", MappingProxyType({"pnl": ctx.pnl}), ts))
        ctx = evolve(ctx, kill_latched=True, rearm_on_flat=False, exit_reason=why)
        return _try(ctx, Trigger.FLATTEN, why, ts, out)
    if c is Command.STOP:
        ctx = evolve(ctx, rearm_on_flat=False, exit_reason=why)
        if ctx.state in (State.MONITORING_POSITIONS, State.REBALANCING):
            return _transition(ctx, Trigger.EXIT_SIGNAL, why, ts, out)
        return _try(ctx, Trigger.FLATTEN, why, ts, out)
    if c is Command.CANCEL:
        return evolve(ctx, kill_latched=False, active_guards=ctx.active_guards - {"dead_mans_switch"},
                       last_heartbeat=ts)
    if c is Command.PAUSE:
        if ctx.state not in (State.ANALYZING_MARKET, State.MONITORING_POSITIONS, State.REBALANCING):
            out.append(Alert(AlertLevel.WARNING, f"pause refused in {ctx.state}: an entry or exit is in progress"))
            return ctx
        for p in ctx.pending.values():  # a paused rebalance stops working its orders
            lg = ctx.leg(p.leg)
            out.append(CancelOrder(p.leg, lg.venue, lg.symbol, p.client_order_id, "pause"))
            ctx = _put(ctx, replace(p, status=next_order_state(p.status, OrderEvent.CANCEL), last_query_ts=ts))
        return _transition(ctx, Trigger.PAUSE, why, ts, out)
    if c is Command.RESUME:
        if ctx.state not in (State.PAUSED, State.ERROR):
            out.append(Alert(AlertLevel.WARNING, f"resume ignored in {ctx.state}"))
            return ctx
        trig = Trigger.RESUME_FLAT if ctx.is_flat else Trigger.RESUME_HEDGED
        if trig is Trigger.RESUME_FLAT and not ctx.collateral_spot:
            ctx = evolve(ctx, target_spot_qty=0.0)
        return _transition(ctx, trig, why, ts, out)
    if c is Command.REBALANCE_NOW:
        if ctx.state is State.MONITORING_POSITIONS:
            return _transition(ctx, Trigger.REBALANCE_NOW, why, ts, out)
        out.append(Alert(AlertLevel.WARNING, f"rebalance_now ignored in {ctx.state}"))
        return ctx
    raise InvalidInput("command", c, f"one of {[x.value for x in Command]}")


# ---- the level-triggered state logic ----------------------------------------------------------


def _advance(ctx: HedgeContext, ts: pd.Timestamp, params: StrategyParamsBase, market: MarketUpdate | None,
             out: list[Action]) -> HedgeContext:
    if ctx.roll_leg is not None and (ctx := roll_step.advance(ctx, ts, params, out)).roll_leg is not None:
        return ctx  # a calendar roll under way (engine.roll_step) comes first
    for _ in range(8):  # a transition may make the next state act at once (e.g. spot held -> hedge)
        before = ctx.state
        handler = _HANDLERS.get(ctx.state)
        if handler is None:
            return ctx
        ctx = handler(ctx, ts, params, market, out)
        if ctx.state is before:
            return ctx
    return ctx


def _decide(ctx: HedgeContext, market: MarketUpdate, params: StrategyParamsBase) -> Intent:
    return strategy_for(params).decide(ctx, market, market.analytics, params)


def _apply_state_updates(ctx: HedgeContext, intent: Intent) -> HedgeContext:
    if intent.loan is not None:
        ctx = evolve(ctx, loan=intent.loan)
    if not intent.state_updates:
        return ctx
    return evolve(ctx, strategy_state=MappingProxyType({**ctx.strategy_state, **intent.state_updates}))


def _clip_ratio(r: float, params: StrategyParamsBase) -> float:
    return min(max(r, params.rebalance.ratio_min), params.rebalance.ratio_max)


def _analyzing(ctx: HedgeContext, ts: pd.Timestamp, params: StrategyParamsBase, market: MarketUpdate | None,
               out: list[Action]) -> HedgeContext:
    if market is None or ctx.kill_latched or ctx.pending:
        return ctx
    if ctx.cooldown_until is not None and ts < ctx.cooldown_until:
        return ctx
    intent = _decide(ctx, market, params)
    ctx = _apply_state_updates(ctx, intent)
    if not intent.enter:
        return ctx
    target_spot = ctx.spot.qty if ctx.collateral_spot else (intent.target_spot_qty or 0.0)
    ratio = _clip_ratio(intent.target_ratio if intent.target_ratio is not None else params.rebalance.target_ratio, params)
    notional = abs(target_spot) * market.spot * (ratio if ctx.collateral_spot else 1.0)
    lev = intent.leverage if intent.leverage is not None else choose_leverage(
        market.analytics.get("sigma_24h", math.nan), params.leverage, symbol=ctx.perp.symbol,
        notional=abs(target_spot) * market.spot * ratio, side=-1 if target_spot >= 0 else 1, brackets=ctx.perp.brackets)
    ctx = evolve(ctx, target_spot_qty=target_spot, target_ratio=ratio, entry_notional=notional,
                  pnl_at_entry=ctx.pnl, peak_pnl=0.0, profit_target=intent.profit_target, leverage=lev,
                  last_leverage_check=ts, unfavourable_funding=0, exit_reason="", rearm_on_flat=False,
                  entered_at=None)
    out.append(SetMarginMode(ctx.perp.venue, ctx.perp.symbol, params.leverage.margin_mode))
    out.append(SetLeverage(ctx.perp.venue, ctx.perp.symbol, lev))
    out.extend(perp_legs.first_leg_settings(ctx, params.leverage.margin_mode, lev))
    return _transition(ctx, Trigger.ENTRY_SIGNAL, intent.reason or "strategy entry", ts, out)


def _opening_spot(ctx: HedgeContext, ts: pd.Timestamp, params: StrategyParamsBase, market: MarketUpdate | None,
                  out: list[Action]) -> HedgeContext:
    if ctx.pending_on("spot"):
        return ctx  # wait for the entry order's outcome (timeouts are queried, never re-sent blind)
    need = 0.0 if ctx.collateral_spot else ctx.target_spot_qty - ctx.spot.qty
    if ctx.phase_orders == 0 and _tradeable(ctx, "spot", need):
        ctx, placed = _place(ctx, "spot", need, "entry", ts, params, out)
        if placed:
            return ctx
    if abs(ctx.spot.qty) > QTY_EPS:
        # EDGE: partial fill -> hedge what actually filled (perp_target uses the actual spot qty)
        return _transition(ctx, Trigger.SPOT_FILLED, f"spot holds {ctx.spot.qty:g}", ts, out)
    if ctx.phase_orders > 0 and ctx.phase_rejects <= params.execution.hedge_retries and _tradeable(ctx, "spot", need):
        ctx, placed = _place(ctx, "spot", need, "entry", ts, params, out)
        if placed:
            return ctx
    if ctx.phase_orders == 0 and ctx.phase_rejects == 0 and _tradeable(ctx, "spot", need):
        return ctx  # held back by a guard (order rate): try again on the next event
    cool = ts + pd.Timedelta(seconds=params.execution.entry_retry_cooldown_s)
    ctx = evolve(ctx, cooldown_until=cool, target_spot_qty=0.0)
    return _transition(ctx, Trigger.ENTRY_FAILED, f"spot entry failed after {ctx.phase_rejects} rejections", ts, out)


def _opening_futures(ctx: HedgeContext, ts: pd.Timestamp, params: StrategyParamsBase, market: MarketUpdate | None,
                     out: list[Action]) -> HedgeContext:
    if ctx.pending_on("perp") or ctx.pending_on("spot"):
        return ctx
    need = perp_target(ctx) - ctx.perp.qty
    if _tradeable(ctx, "perp", need):
        if ctx.phase_rejects <= params.execution.hedge_retries:
            ctx, _placed = _place(ctx, "perp", need, "hedge", ts, params, out)
            return ctx  # placed, or held back by a guard and retried on the next event
        # EDGE: perp hedge rejected after the spot leg filled. Never leave the spot leg naked
        # silently: unwind it (default) or stop in ERROR with a critical alert.
        numbers = {"spot_qty": ctx.spot.qty, "perp_qty": ctx.perp.qty, "rejects": float(ctx.phase_rejects)}
        if params.execution.unwind_on_hedge_failure:
            out.append(Alert(AlertLevel.CRITICAL, "perp hedge rejected after retries: unwinding the spot leg", numbers))
            ctx = evolve(ctx, rearm_on_flat=False, exit_reason="hedge failed")
            return _transition(ctx, Trigger.HEDGE_FAILED, f"perp hedge rejected {ctx.phase_rejects} times", ts, out)
        out.append(Alert(AlertLevel.CRITICAL, "perp hedge rejected after retries: spot leg is UNHEDGED, operator needed", numbers))
        return _transition(ctx, Trigger.FAULT, "perp hedge failed, unwind disabled", ts, out)
    if abs(ctx.perp.qty) <= QTY_EPS and abs(ctx.spot.qty) > QTY_EPS and abs(perp_target(ctx)) > QTY_EPS:
        # the spot fill is too small to hedge on the perp venue: unwind it rather than hold it naked
        out.append(Alert(AlertLevel.WARNING, "spot fill below the perp minimum: unwinding it",
                         {"spot_qty": ctx.spot.qty}))
        ctx = evolve(ctx, rearm_on_flat=False, exit_reason="spot fill too small to hedge")
        return _transition(ctx, Trigger.HEDGE_FAILED, "spot fill below the perp minimum", ts, out)
    ctx = evolve(ctx, entered_at=ts, target_spot_qty=ctx.spot.qty if not ctx.collateral_spot else ctx.target_spot_qty,
                  entry_notional=ctx.entry_notional if ctx.collateral_spot
                  else abs(ctx.spot.qty) * (ctx.spot_price if ctx.spot_price > 0 else ctx.spot.avg_entry))
    return _transition(ctx, Trigger.HEDGE_FILLED, f"hedged: spot {ctx.spot.qty:g}, perp {ctx.perp.qty:g}", ts, out)


def _monitoring(ctx: HedgeContext, ts: pd.Timestamp, params: StrategyParamsBase, market: MarketUpdate | None,
                out: list[Action]) -> HedgeContext:
    if market is not None:
        intent = _decide(ctx, market, params)
        ctx = _apply_state_updates(ctx, intent)
        if intent.profit_target is not None:
            ctx = evolve(ctx, profit_target=intent.profit_target)
        reason = intent.reason if intent.exit else exit_reason(ctx, ts, market.spot, market.perp, params.exit)
        if reason and not intent.exit and defer_exit(ctx, ts, reason, market, params.exit):
            reason = ""  # timed relative to the next funding: collect it, exit on a later event
        if intent.exit or reason:
            ctx = evolve(ctx, exit_reason=reason, rearm_on_flat=params.exit.rearm)
            return _transition(ctx, Trigger.EXIT_SIGNAL, reason or "strategy exit", ts, out)
        if intent.target_ratio is not None:
            ctx = evolve(ctx, target_ratio=_clip_ratio(intent.target_ratio, params))
        if intent.target_spot_qty is not None and not ctx.collateral_spot:
            ctx = evolve(ctx, target_spot_qty=intent.target_spot_qty)
        ctx = _recheck_leverage(ctx, ts, params, market, out)
    if ctx.pending:
        return ctx
    rb = params.rebalance
    if ctx.last_rebalance_ts is not None and (
            ts <= ctx.last_rebalance_ts or seconds_between(ts, ctx.last_rebalance_ts) < rb.cooldown_s):
        return ctx  # cooldown, and at most one rebalance per instant (a held order never loops)
    spot_need, perp_need = order_needs(ctx)
    spot_due = _tradeable(ctx, "spot", spot_need, rb.min_order_notional)
    drift = ctx.drift
    perp_due = _tradeable(ctx, "perp", perp_need, rb.min_order_notional) and (
        math.isnan(drift) or drift > rb.drift_threshold or abs(ctx.spot.qty) <= QTY_EPS)
    if spot_due or perp_due:
        why = f"drift {drift:.4f} > {rb.drift_threshold}" if perp_due else f"spot target moved by {spot_need:g}"
        return _transition(ctx, Trigger.DRIFT_EXCEEDED, why, ts, out)
    return ctx


def _recheck_leverage(ctx: HedgeContext, ts: pd.Timestamp, params: StrategyParamsBase, market: MarketUpdate,
                      out: list[Action]) -> HedgeContext:
    last = ctx.last_leverage_check
    if last is not None and seconds_between(ts, last) < params.leverage.recheck_hours * 3600:
        return ctx
    sigma = market.analytics.get("sigma_24h", math.nan)
    ctx = evolve(ctx, last_leverage_check=ts)
    if math.isnan(sigma) or not strategy_for(params).rechecks_leverage:
        return ctx
    lev = choose_leverage(sigma, params.leverage, symbol=ctx.perp.symbol, notional=abs(ctx.perp.qty) * market.perp,
                          side=-1 if ctx.perp.qty <= 0 else 1, brackets=ctx.perp.brackets)
    if lev < ctx.leverage:  # only ever lower it with a position on (raising needs no action)
        out.append(SetLeverage(ctx.perp.venue, ctx.perp.symbol, lev))
        out.extend(perp_legs.first_leg_settings(ctx, None, lev))
        ctx = evolve(ctx, leverage=lev)
    return ctx


def _rebalancing(ctx: HedgeContext, ts: pd.Timestamp, params: StrategyParamsBase, market: MarketUpdate | None,
                 out: list[Action]) -> HedgeContext:
    if ctx.pending:
        return ctx
    if market is not None:
        reason = exit_reason(ctx, ts, market.spot, market.perp, params.exit)
        if reason and defer_exit(ctx, ts, reason, market, params.exit):
            reason = ""  # the rule of _monitoring: a soft exit waits for a funding the position receives
        if reason:
            ctx = evolve(ctx, exit_reason=reason, rearm_on_flat=params.exit.rearm)
            return _transition(ctx, Trigger.EXIT_SIGNAL, reason, ts, out)
    spot_need, perp_need = order_needs(ctx)
    rb = params.rebalance
    minimum = rb.min_order_notional
    if ctx.phase_rejects <= params.execution.hedge_retries and ctx.phase_orders < _MAX_ROUNDS:
        placed_any = False
        if _tradeable(ctx, "spot", spot_need, minimum):
            ctx, placed = _place(ctx, "spot", spot_need, "rebalance", ts, params, out)
            placed_any |= placed
        perp_need = perp_target(ctx) - ctx.perp.qty - _signed_working(ctx, "perp")
        reducing = abs(ctx.perp.qty + perp_need) < abs(ctx.perp.qty) and ctx.perp.qty * perp_need < 0
        if _tradeable(ctx, "perp", perp_need, 0.0, reduce_only=reducing):
            ctx, placed = _place(ctx, "perp", perp_need, "rebalance", ts, params, out, reduce_only=reducing)
            placed_any |= placed
        if placed_any or "order_rate" in ctx.active_guards:
            return ctx
    elif _tradeable(ctx, "perp", perp_need, 0.0):
        out.append(Alert(AlertLevel.WARNING, "rebalance incomplete after retries",
                         {"perp_need": perp_need, "rejects": float(ctx.phase_rejects)}))
    ctx = evolve(ctx, last_rebalance_ts=ts)
    return _transition(ctx, Trigger.REBALANCED, f"ratio {ctx.hedge_ratio:.4f}, delta {ctx.delta:g}", ts, out)


def _closing(ctx: HedgeContext, ts: pd.Timestamp, params: StrategyParamsBase, market: MarketUpdate | None,
             out: list[Action]) -> HedgeContext:
    if ctx.pending:
        return ctx
    keep_spot = ctx.collateral_spot or ctx.keep_spot_on_close
    legs = ("perp",) if keep_spot else ("perp", "spot")
    due = [lg for lg in legs if _tradeable(ctx, lg, -ctx.leg(lg).qty, reduce_only=True)]
    if due:
        if ctx.phase_rejects > params.execution.hedge_retries + 2:
            out.append(Alert(AlertLevel.CRITICAL, "closing orders keep failing: operator needed",
                             {"spot_qty": ctx.spot.qty, "perp_qty": ctx.perp.qty}))
            return _transition(ctx, Trigger.FAULT, "close orders rejected", ts, out)
        for lg in due:
            ctx, _ = _place(ctx, lg, -ctx.leg(lg).qty, "close", ts, params, out, reduce_only=True)
        return ctx
    dust = {lg: ctx.leg(lg).qty for lg in legs if abs(ctx.leg(lg).qty) > QTY_EPS}
    if dust:
        out.append(Alert(AlertLevel.INFO, "dust below venue minimums left on the book", dust))
    ctx = evolve(ctx, target_spot_qty=ctx.spot.qty if keep_spot else 0.0, entered_at=None)
    if ctx.rearm_on_flat and not ctx.kill_latched:
        ctx = evolve(ctx, cooldown_until=ts + pd.Timedelta(seconds=REARM_COOLDOWN_S))  # re-enter on a later event
        return _transition(ctx, Trigger.REARM, f"flat after: {ctx.exit_reason}", ts, out)
    return _transition(ctx, Trigger.FLAT, f"flat after: {ctx.exit_reason or 'close'}", ts, out)


def _idle(ctx: HedgeContext, ts: pd.Timestamp, params: StrategyParamsBase, market: MarketUpdate | None,
          out: list[Action]) -> HedgeContext:
    return ctx


_HANDLERS = {
    State.ANALYZING_MARKET: _analyzing,
    State.OPENING_SPOT_POSITION: _opening_spot,
    State.OPENING_FUTURES_HEDGE: _opening_futures,
    State.MONITORING_POSITIONS: _monitoring,
    State.REBALANCING: _rebalancing,
    State.CLOSING_POSITIONS: _closing,
    State.PAUSED: _idle,
    State.ERROR: _idle,
}
