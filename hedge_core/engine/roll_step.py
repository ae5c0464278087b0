"""The calendar roll inside the engine: the hedge leg moves between the perpetual and a dated future of the
same venue and asset (docs/calendar-roll.md). Pure, like :mod:`hedge_core.engine.step`, which hands it three
things with one line each: a :class:`RollRequest` (start a roll), a fill on the contract a roll moves to and a
funding settlement while the leg is (partly) off the perpetual (:func:`takes` / :func:`step_roll`), and the
level-triggered progress of a roll under way at the start of every ``_advance`` (:func:`advance`).

The context holds a roll as data, so it is consistent at every instant and a journal rebuild recovers it
(:func:`restore`):

- ``ctx.perp`` is the leg on the contract the hedge is leaving (its own symbol, fills and money);
- ``ctx.roll_leg`` (leg name ``"roll"``) is the leg on the contract it moves to, ``ctx.roll_qty`` the signed
  base quantity to hold there (the perp leg's quantity at the start, rounded to the destination's lot);
- fills are booked to the leg of their SYMBOL: the ledger never mixes the two contracts.

Order of the two orders: OPEN the destination first (purpose ``roll_open``), then CLOSE the source
(``roll_close``, reduce-only). Between the two fills the hedge holds the leg twice (its delta is the leg's
quantity the other way, the same size of exposure as close-then-open leaves, for the same few seconds), but
the order that is likelier to fail -- the first one on a contract the hedge never traded, with its own
minimums, price band and margin -- fails while nothing has changed; the close is a reduce-only order on a
position the hedge holds. Close-then-open would leave the spot leg naked after a rejected open, and its repair
is another opening order. The cost: margin for both positions for those seconds (too little margin rejects the
open: nothing happened).

Progress (:func:`advance`, nothing while an order of either contract is working):

1. the destination holds less than ``roll_qty`` -> order the rest there (``roll_open``);
2. the destination holds ``roll_qty`` and the source is not flat -> close the source (``roll_close``);
3. both done -> the destination becomes ``ctx.perp`` (the money of the closed source -- realised PnL, fees,
   funding -- moves with it: the hedge's PnL is unchanged by the swap) and the roll is over.

A roll that cannot finish REVERTS: ``roll_qty`` becomes 0, so step 1 closes what the destination holds
(``roll_revert``), and the leg stays where it was (a partly closed source is then topped up by the ordinary
rebalance). It reverts after more than ``execution.hedge_retries`` rejected orders, and when the hedge leaves
the states in which it holds a hedge (an exit, a guard's flatten: CLOSING_POSITIONS closes one contract
afterwards). In PAUSED a roll under way finishes (a half-done roll is the exposure to avoid); in ERROR nothing
is sent. A revert that keeps failing stops the hedge in ERROR with a critical alert.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import pandas as pd

from hedge_core.engine.actions import Action, Alert, AlertLevel, PlaceOrder, RecordTransition, SetLeverage, SetMarginMode
from hedge_core.engine.constants import ORDER_RATE_WINDOW_S
from hedge_core.engine.context import ORDER_REFS_KEPT, HedgeContext, PendingOrder, TransitionRecord, evolve
from hedge_core.engine.events import FillEvent, FundingSettled, MarketUpdate
from hedge_core.engine.ledger import QTY_EPS, Leg, apply_funding, book_fill, funding_amount, leg_from_instrument, mark_leg, slippage_cost
from hedge_core.engine.order_states import OrderState
from hedge_core.engine.states import TRANSITIONS, State, Trigger, next_state
from hedge_core.errors import InvalidInput
from hedge_core.params.models import StrategyParamsBase
from hedge_core.types import Instrument, OrderRequest, OrderType, Side, client_order_id

__all__ = ["ROLL_CLOSE", "ROLL_OPEN", "ROLL_REVERT", "RollRequest", "advance", "book_funding", "is_dated", "perpetual_qty",
           "restore", "step_roll", "takes"]

ROLL_OPEN, ROLL_CLOSE, ROLL_REVERT = "roll_open", "roll_close", "roll_revert"
_SEEN_TRADES_KEPT = 512
#: ccxt's unified symbol of a dated future: ``BASE/QUOTE:SETTLE-YYMMDD`` (e.g. ``BTC/USDT:USDT-261225``)
_DATED = re.compile(r":[A-Za-z0-9]+-\d{6}$")
#: states in which a roll under way goes on to its end (elsewhere it reverts; ERROR: nothing is sent)
_CONTINUE = frozenset({State.MONITORING_POSITIONS, State.REBALANCING, State.PAUSED})
_MONEY = ("realized", "fees", "slippage", "funding", "interest", "cash", "traded_notional")

Advance = Callable[[HedgeContext, pd.Timestamp, StrategyParamsBase, "MarketUpdate | None", list[Action]], HedgeContext]


@lru_cache(maxsize=256)
def is_dated(symbol: str) -> bool:
    """True for a dated future's ccxt unified symbol (``BTC/USDT:USDT-261225``), False for a perpetual."""
    return bool(_DATED.search(symbol))


def delivery_time(symbol: str) -> pd.Timestamp | None:
    """08:00 UTC on the date of a dated future's symbol (``BTC/USDT:USDT-261225`` -> 2026-12-25 08:00 UTC: when
    Binance, OKX and Bybit deliver their USDT-settled futures); None for a perpetual or an unreadable date."""
    m = re.search(r"-(\d{6})$", symbol) if is_dated(symbol) else None
    if m is None:
        return None
    try:
        return pd.Timestamp(f"20{m.group(1)}T08:00Z")
    except ValueError:
        return None


def perpetual_of(symbol: str) -> str:
    """The perpetual of a dated future's ccxt symbol (``BTC/USDT:USDT-261225`` -> ``BTC/USDT:USDT``); a
    perpetual's symbol unchanged."""
    return re.sub(r"-\d{6}$", "", symbol) if is_dated(symbol) else symbol


def perpetual_qty(ctx: HedgeContext) -> float:
    """Signed base quantity the hedge holds on the perpetual: the perp leg and a roll's leg, each when it is on
    the perpetual (a leg on a dated future pays no funding)."""
    r = ctx.roll_leg
    q = 0.0 if is_dated(ctx.perp.symbol) else ctx.perp.qty  # the common case: no roll (the guards' hot path)
    return q if r is None or is_dated(r.symbol) else q + r.qty


@dataclass(frozen=True, slots=True)
class RollRequest:
    """Move the hedge leg onto ``instrument`` (a dated future of the perp leg's venue and base, or the
    perpetual to return to) now; ``price`` is its price (quote per base, > 0), the roll's slippage reference.
    The runner sends it after :func:`hedge_core.engine.calendar_roll.decide_roll` said TO_FUTURE / TO_PERP."""

    ts: pd.Timestamp
    instrument: Instrument
    price: float
    reason: str = ""


def takes(ctx: HedgeContext, event: object) -> bool:
    """Whether :func:`hedge_core.engine.step.step` hands ``event`` to :func:`step_roll`: a roll request, a fill
    on the destination of a roll (leg ``"roll"``), a funding settlement while the leg is not wholly on the
    perpetual. Everything else (order answers, timeouts, market updates) goes the ordinary way: the pending
    orders of a roll are ordinary pending orders of legs ``"roll"`` and ``"perp"``."""
    if isinstance(event, RollRequest):
        return True
    if isinstance(event, FillEvent):
        return event.leg == "roll" or (ctx.roll_leg is not None and event.fill.symbol == ctx.roll_leg.symbol)
    if isinstance(event, FundingSettled):
        # two perp legs: every settlement goes to engine.perp_legs (the pair's net count), which books the
        # second leg's through :func:`book_funding`; the first leg never rolls
        return not ctx.first_leg_is_perp and (ctx.roll_leg is not None or is_dated(ctx.perp.symbol))
    return False


def step_roll(ctx: HedgeContext, event: RollRequest | FillEvent | FundingSettled, params: StrategyParamsBase,
              advance_all: Advance) -> tuple[HedgeContext, list[Action]]:
    """``step()`` for the events :func:`takes` accepts; ``advance_all`` is step's ``_advance`` (the level-
    triggered state logic, which begins with :func:`advance`)."""
    out: list[Action] = []
    if event.ts > ctx.last_ts:
        ctx = evolve(ctx, last_ts=event.ts)
    now = ctx.last_ts
    if isinstance(event, RollRequest):
        ctx = _start(ctx, event, params, out)
    elif isinstance(event, FillEvent):
        ctx = _on_fill(ctx, event, out)
    else:
        ctx = _on_funding(ctx, event)
    return advance_all(ctx, now, params, None, out), out


# ---- start ------------------------------------------------------------------------------------------


def _refuse(ctx: HedgeContext, why: str, out: list[Action]) -> HedgeContext:
    out.append(Alert(AlertLevel.WARNING, f"calendar roll refused: {why}"))
    return ctx


def _start(ctx: HedgeContext, req: RollRequest, params: StrategyParamsBase, out: list[Action]) -> HedgeContext:
    inst, leg = req.instrument, ctx.perp
    if (ctx.state is State.ANALYZING_MARKET and abs(leg.qty) <= QTY_EPS and not ctx.pending and ctx.roll_leg is None
            and inst.symbol != leg.symbol and inst.venue == leg.venue and inst.base == leg.base):
        # a flat hedge: no order, the leg only points at the contract its next entry hedges on (the runner
        # brings a flat leg back to the perpetual, so a re-entry never opens on a future near its expiry)
        if not (math.isfinite(req.price) and req.price > 0):
            raise InvalidInput("price", req.price, "the destination's price, > 0 (quote per base)")
        home = fold(mark_leg(leg_from_instrument("perp", inst), req.price), leg, "perp")
        out.append(Alert(AlertLevel.INFO, f"flat hedge leg moved from {leg.symbol} to {inst.symbol} (no order)"))
        return evolve(ctx, perp=home, perp_price=req.price, mark_price=req.price)
    if ctx.roll_leg is not None:
        return _refuse(ctx, f"a roll to {ctx.roll_leg.symbol} is under way", out)
    if ctx.state is not State.MONITORING_POSITIONS or ctx.pending:
        return _refuse(ctx, f"the hedge is in {ctx.state} with {len(ctx.pending)} working order(s)", out)
    if inst.symbol == leg.symbol:
        return _refuse(ctx, f"the leg is on {leg.symbol} already", out)
    if inst.venue != leg.venue or inst.base != leg.base or inst.quote != leg.quote:
        return _refuse(ctx, f"{inst.symbol} on {inst.venue} is not a contract of {leg.base}/{leg.quote} on {leg.venue}",
                       out)
    if not (math.isfinite(req.price) and req.price > 0):
        raise InvalidInput("price", req.price, "the destination's price, > 0 (quote per base)")
    dest = mark_leg(leg_from_instrument("roll", inst), req.price)
    qty = math.copysign(dest.round_qty(leg.qty), leg.qty) if abs(leg.qty) > QTY_EPS else 0.0
    if not dest.tradeable(abs(qty), req.price):
        return _refuse(ctx, f"{abs(leg.qty):g} {leg.base} is not an order {inst.symbol} accepts", out)
    out.append(Alert(AlertLevel.INFO, f"calendar roll: {leg.symbol} -> {inst.symbol} ({req.reason or 'requested'})",
                     {"qty": qty, "price": req.price}))
    out.append(SetMarginMode(inst.venue, inst.symbol, params.leverage.margin_mode))
    out.append(SetLeverage(inst.venue, inst.symbol, ctx.leverage))
    return evolve(ctx, roll_leg=dest, roll_qty=qty, phase_rejects=0, phase_orders=0)


# ---- fills and funding ------------------------------------------------------------------------------


def _on_fill(ctx: HedgeContext, ev: FillEvent, out: list[Action]) -> HedgeContext:
    """Book a fill of a roll to the leg of its symbol (the destination while the roll is under way, the perp
    leg once it is over), with the pending-order bookkeeping of ``step._on_fill``."""
    f = ev.fill
    if f.trade_id in ctx.seen_trades:
        return ctx
    name = "roll" if ctx.roll_leg is not None and f.symbol == ctx.roll_leg.symbol else "perp"
    leg = ctx.leg(name)
    if leg.symbol != f.symbol:
        out.append(Alert(AlertLevel.CRITICAL, f"fill on {f.symbol} matches no contract of the hedge leg; not booked",
                         {"qty": f.qty, "price": f.price}))
        return ctx
    if f.client_order_id not in ctx.known_orders and not ev.external:
        out.append(Alert(AlertLevel.CRITICAL, f"fill for unknown order {f.client_order_id}; not booked",
                         {"qty": f.qty, "price": f.price}))
        return ctx
    ref = ctx.order_ref(f.client_order_id)
    slip = slippage_cost(f.side, f.qty, f.price, ref) if ref > 0 else f.slippage
    ctx = ctx.with_leg(book_fill(leg, f.side, f.qty, f.price, f.fee, f.fee_currency, slip))
    ctx = evolve(ctx, seen_trades=(ctx.seen_trades + (f.trade_id,))[-_SEEN_TRADES_KEPT:])
    p = ctx.pending.get(f.client_order_id)
    if p is None:
        out.append(Alert(AlertLevel.WARNING, f"late fill on {f.symbol} after its order was final: booked",
                         {"qty": f.side.sign * f.qty, "price": f.price}))
        return ctx
    filled = p.filled + f.qty
    p = replace(p, filled=filled)
    done = filled >= p.qty - QTY_EPS or (p.status == OrderState.FINAL and filled >= p.final_filled - QTY_EPS)
    pending = dict(ctx.pending)
    if done:
        pending.pop(p.client_order_id, None)
    else:
        pending[p.client_order_id] = p
    return evolve(ctx, pending=MappingProxyType(pending))


def book_funding(ctx: HedgeContext, ev: FundingSettled) -> tuple[HedgeContext, float | None]:
    """Book a perpetual's funding settlement (the hedge leg's venue: the second leg of a perp pair) on the leg
    that is on the perpetual. Amount (quote, + received / - paid) as ``step._on_funding``: the venue's, else
    ``-qty x mark x rate``. Returns the context and the amount that counts as a settlement of the leg (for the
    exit on consecutive unfavourable settlements), None when none counts.

    With the leg wholly on the dated future (a future pays no funding) an engine-computed settlement books
    nothing; but a VENUE amount (live: the perpetual's income record, read a few seconds after the funding
    time) is a payment the perpetual made while the leg was still on it -- a roll that finished between the
    settlement and the read. It is booked to the hedge leg's whole-life ``funding`` (the money of the closed
    perpetual moved with the leg when the roll finished, ``fold``), not to the future's margin, and it does
    not count (None: the leg no longer pays funding)."""
    name = next((n for n, lg in (("perp", ctx.perp), ("roll", ctx.roll_leg)) if lg is not None and not is_dated(lg.symbol)),
                None)
    if name is None:
        if math.isnan(ev.amount) or ev.amount == 0.0:
            return ctx, None
        return evolve(ctx, perp=replace(ctx.perp, funding=ctx.perp.funding + ev.amount)), None
    leg = ctx.leg(name)
    amount = ev.amount if not math.isnan(ev.amount) else funding_amount(leg.qty, ev.mark, ev.rate)
    if amount == 0.0 and leg.qty == 0.0:
        return ctx, None
    return ctx.with_leg(apply_funding(leg, amount)), amount


def _on_funding(ctx: HedgeContext, ev: FundingSettled) -> HedgeContext:
    """A perpetual's funding while the leg is (partly) off it (:func:`book_funding`); a counted amount < 0 is an
    unfavourable settlement."""
    ctx, amount = book_funding(ctx, ev)
    if amount is None:
        return ctx
    return evolve(ctx, unfavourable_funding=ctx.unfavourable_funding + 1 if amount < 0 else 0)


# ---- progress ---------------------------------------------------------------------------------------


def advance(ctx: HedgeContext, ts: pd.Timestamp, params: StrategyParamsBase, out: list[Action]) -> HedgeContext:
    """One level-triggered look at a roll under way (see the module docstring); ``ctx`` unchanged without one.

    Returns the context with at most one new order; ``ctx.roll_leg`` is None once the roll is over."""
    dest = ctx.roll_leg
    if dest is None or ctx.state is State.ERROR:
        return ctx
    if any(p.leg in ("perp", "roll") for p in ctx.pending.values()):
        return ctx  # wait for the working order's outcome (timeouts are queried by step, never re-sent blind)
    if ctx.roll_qty != 0.0 and ctx.state not in _CONTINUE:
        out.append(Alert(AlertLevel.WARNING, f"calendar roll reverted: the hedge is {ctx.state}",
                         {"roll_qty": ctx.roll_qty, "held": dest.qty}))
        ctx = dest_reset(ctx)
    retries = params.execution.hedge_retries
    need = ctx.roll_qty - dest.qty
    reducing = abs(ctx.roll_qty) < abs(dest.qty)
    if _tradeable(dest, need, reducing=reducing):
        if ctx.phase_rejects > retries + (2 if ctx.roll_qty == 0.0 else 0):
            if ctx.roll_qty != 0.0:
                out.append(Alert(AlertLevel.WARNING, f"calendar roll reverted: {ctx.phase_rejects} rejected orders",
                                 {"roll_qty": ctx.roll_qty, "held": dest.qty}))
                return advance(dest_reset(ctx), ts, params, out)
            return _fault(ctx, f"the roll's revert on {dest.symbol} keeps failing", ts, out)
        purpose = ROLL_OPEN if ctx.roll_qty != 0.0 else ROLL_REVERT
        return _place(ctx, "roll", need, purpose, ts, out, reduce_only=reducing)
    src = ctx.perp
    if ctx.roll_qty != 0.0 and _tradeable(src, -src.qty, reducing=True):
        if ctx.phase_rejects > retries + 2:
            out.append(Alert(AlertLevel.WARNING, f"calendar roll reverted: the close of {src.symbol} keeps failing",
                             {"perp_qty": src.qty, "held": dest.qty}))
            return advance(dest_reset(ctx), ts, params, out)
        return _place(ctx, "perp", -src.qty, ROLL_CLOSE, ts, out, reduce_only=True)
    return _finish(ctx, out)


def dest_reset(ctx: HedgeContext) -> HedgeContext:
    """The roll turned into its revert: nothing is to be held on the destination any more."""
    return evolve(ctx, roll_qty=0.0, phase_rejects=0)


def _tradeable(leg: Leg, need: float, *, reducing: bool) -> bool:
    q = leg.round_qty(need)
    px = leg.last_price
    if reducing:
        return q >= leg.lot_size - QTY_EPS and q >= leg.min_qty - QTY_EPS and q > QTY_EPS
    return px > 0 and leg.tradeable(q, px)


def _place(ctx: HedgeContext, name: str, signed_qty: float, purpose: str, ts: pd.Timestamp, out: list[Action], *,
           reduce_only: bool) -> HedgeContext:
    """A market order of the roll on leg ``name`` ('roll' or 'perp'), client id ``hr<seq><attempt>-...``;
    the leg's last price is its slippage reference (the perp leg's: the hedge's perp price)."""
    lg = ctx.leg(name)
    px = ctx.perp_price if name == "perp" and ctx.perp_price > 0 else lg.last_price
    qty = lg.round_qty(signed_qty)
    side = Side.BUY if signed_qty > 0 else Side.SELL
    attempt = min(ctx.phase_rejects, 9)
    coid = client_order_id(ctx.hedge_id, "roll", ctx.seq, attempt)
    req = OrderRequest(symbol=lg.symbol, side=side, qty=qty, client_order_id=coid, type=OrderType.MARKET,
                       reduce_only=reduce_only)
    out.append(PlaceOrder(leg=name, venue=lg.venue, request=req, purpose=purpose))
    po = PendingOrder(client_order_id=coid, leg=name, side=side, qty=qty, purpose=purpose, seq=ctx.seq,
                      attempt=attempt, sent_ts=ts, reduce_only=reduce_only, ref_price=px)
    pending = {**ctx.pending, coid: po}
    refs = {k: v for k, v in ctx.order_refs.items() if k != coid}
    refs[coid] = px
    if len(refs) > ORDER_REFS_KEPT:
        refs = dict(list(refs.items())[-ORDER_REFS_KEPT:])
    times = tuple(t for t in ctx.order_times if (ts - t).total_seconds() < ORDER_RATE_WINDOW_S) + (ts,)
    return evolve(ctx, pending=MappingProxyType(pending), seq=ctx.seq + 1, known_orders=ctx.known_orders | {coid},
                  order_times=times, phase_orders=ctx.phase_orders + 1, order_refs=MappingProxyType(refs))


def fold(into: Leg, other: Leg, name: str) -> Leg:
    """``into`` renamed ``name`` with the money of ``other`` (a flat leg: realised PnL, fees, slippage,
    funding, interest, cash flow and traded notional) added: the hedge's net PnL is the same before and after.
    Plain sums of booked figures, no money formula."""
    if abs(other.qty) > QTY_EPS:
        raise InvalidInput("roll leg", other.qty, f"a flat {other.symbol} leg to fold into {into.symbol}")
    changes: dict[str, Any] = {k: getattr(into, k) + getattr(other, k) for k in _MONEY}
    return replace(into, name=name, **changes)


def delivered(ctx: HedgeContext, ev: FillEvent, out: list[Action]) -> HedgeContext:
    """After the venue's delivery of the leg's dated future was booked (``ev.delivered_to``): the leg, flat on a
    contract that no longer trades, points at the perpetual with its money kept (:func:`fold`: the delivery's
    realised PnL and fee stay in the hedge's PnL), so the ordinary rebalance re-hedges the spot there.

    A roll back to the perpetual under way (its close on the future refused: the contract is delisted): the
    delivery closed the roll's source, so the roll ends on its destination (at once when nothing of it is working;
    else :func:`advance` finishes it once its order's answer is in). Left as it is, with a critical alert
    (operator needed): a leg still holding after the delivery fill (a partial record), and a roll under way to
    another contract."""
    assert ev.delivered_to is not None
    inst, px = ev.delivered_to
    leg = ctx.perp
    if ev.leg != "perp" or leg.symbol != ev.fill.symbol or not is_dated(leg.symbol):
        out.append(Alert(AlertLevel.CRITICAL, f"delivery of {ev.fill.symbol} is not the hedge leg's ({leg.symbol})"))
        return ctx
    dest = ctx.roll_leg
    if dest is not None and dest.symbol == inst.symbol and abs(leg.qty) <= QTY_EPS:
        out.append(Alert(AlertLevel.CRITICAL, f"{leg.symbol} delivered at expiry at {ev.fill.price:g} (fee "
                         f"{ev.fill.fee:g}) while the roll to {inst.symbol} was under way: it ends there",
                         {"qty": ev.fill.side.sign * ev.fill.qty, "price": ev.fill.price, "fee": ev.fill.fee}))
        if any(p.leg in ("perp", "roll") for p in ctx.pending.values()):
            return evolve(ctx, roll_qty=ctx.roll_qty if ctx.roll_qty != 0.0 else dest.qty)
        return evolve(ctx, perp=fold(dest, leg, "perp"), roll_leg=None, roll_qty=0.0, perp_price=px, mark_price=px,
                      phase_rejects=0, phase_orders=0)
    if abs(leg.qty) > QTY_EPS or dest is not None:
        out.append(Alert(AlertLevel.CRITICAL, f"{leg.symbol} delivered but {leg.qty:g} still booked on it or a roll "
                         "under way: operator needed", {"qty": leg.qty}))
        return ctx
    if not (math.isfinite(px) and px > 0):
        raise InvalidInput("price", px, "the perpetual's price, > 0 (quote per base)")
    home = fold(mark_leg(leg_from_instrument("perp", inst), px), leg, "perp")
    out.append(Alert(AlertLevel.CRITICAL, f"{leg.symbol} delivered at expiry at {ev.fill.price:g} (fee "
                     f"{ev.fill.fee:g}); the hedge leg moves to {inst.symbol} and is hedged again there",
                     {"qty": ev.fill.side.sign * ev.fill.qty, "price": ev.fill.price, "fee": ev.fill.fee}))
    return evolve(ctx, perp=home, perp_price=px, mark_price=px, phase_rejects=0, phase_orders=0)


def _finish(ctx: HedgeContext, out: list[Action]) -> HedgeContext:
    dest, src = ctx.roll_leg, ctx.perp
    assert dest is not None
    if ctx.roll_qty != 0.0 or (abs(src.qty) <= QTY_EPS and abs(dest.qty) > QTY_EPS):
        if abs(src.qty) > QTY_EPS:  # dust below the source's minimum stays on the source: keep both, say so
            out.append(Alert(AlertLevel.WARNING, f"calendar roll: {src.qty:g} left on {src.symbol} below its minimum"))
            return ctx
        leg = fold(dest, src, "perp")
        px = dest.last_price
        out.append(Alert(AlertLevel.INFO, f"calendar roll done: the hedge leg is on {leg.symbol}", {"qty": leg.qty}))
        return evolve(ctx, perp=leg, roll_leg=None, roll_qty=0.0, perp_price=px, mark_price=px, phase_rejects=0,
                      phase_orders=0)
    if abs(dest.qty) > QTY_EPS:
        out.append(Alert(AlertLevel.WARNING, f"calendar roll reverted with {dest.qty:g} left on {dest.symbol}"))
        return ctx
    out.append(Alert(AlertLevel.INFO, f"calendar roll reverted: the hedge leg stays on {src.symbol}", {"qty": src.qty}))
    return evolve(ctx, perp=fold(src, dest, "perp"), roll_leg=None, roll_qty=0.0, phase_rejects=0, phase_orders=0)


def _fault(ctx: HedgeContext, why: str, ts: pd.Timestamp, out: list[Action]) -> HedgeContext:
    out.append(Alert(AlertLevel.CRITICAL, f"calendar roll: {why}: operator needed",
                     {"perp_qty": ctx.perp.qty, "roll_qty": ctx.roll_leg.qty if ctx.roll_leg else 0.0}))
    if (ctx.state, Trigger.FAULT) not in TRANSITIONS:
        return ctx
    new = next_state(ctx.state, Trigger.FAULT)
    out.append(RecordTransition(str(ctx.state), str(new), str(Trigger.FAULT), why, ts))
    rec = TransitionRecord(ts, ctx.state, new, str(Trigger.FAULT), why)
    return evolve(ctx, state=new, history=ctx.history + (rec,), phase_rejects=0, phase_orders=0)


# ---- recovery ---------------------------------------------------------------------------------------


def restore(ctx: HedgeContext, fills: pd.DataFrame, funding: pd.DataFrame, instruments: Mapping[str, Instrument],
            roll_orders: list[Mapping[str, Any]], prices: Mapping[str, float]) -> HedgeContext:
    """The hedge leg of a context rebuilt from the journal (``runner.reconcile.rebuild_context``, which books
    every non-spot fill to the perp leg), re-booked BY SYMBOL when the journal holds fills on more than one
    contract: on one contract now -> ``ctx.perp`` is that one (the others' money folded in); on two -> a roll
    under way: ``ctx.perp`` the contract it leaves, ``ctx.roll_leg`` the one the last journaled roll order
    (``roll_orders``: order rows of leg "roll", oldest first) went to, ``ctx.roll_qty`` that order's signed
    target (0 when it was a revert), so the next :func:`advance` completes or reverts it.

    ``instruments``: symbol -> Instrument of every contract in the fills; ``prices``: symbol -> last price.
    Funding rows (of the perpetual) are booked to the perpetual's leg. ``ctx`` unchanged when every non-spot
    fill is on ``ctx.perp``'s symbol and no roll order was journaled.
    """
    perp_fills = fills[fills["leg"] != "spot"] if len(fills) else fills
    symbols = list(dict.fromkeys(str(s) for s in perp_fills["symbol"])) if len(perp_fills) else []
    home = ctx.perp.symbol
    if set(symbols) <= {home} and not roll_orders:
        return ctx
    legs: dict[str, Leg] = {}
    for sym in dict.fromkeys([home, *symbols]):
        if sym == home:
            base = _blank(ctx.perp)
        else:
            if sym not in instruments:
                raise InvalidInput("instruments", sorted(instruments), f"the instrument of {sym} (journaled fills)")
            base = leg_from_instrument("perp", instruments[sym])
        legs[sym] = base
    for r in perp_fills.sort_values(["ts", "trade_id"]).itertuples(index=False):
        lg = legs[str(r.symbol)]
        slip = float(r.slippage) if r.slippage is not None and not math.isnan(r.slippage) else 0.0
        legs[str(r.symbol)] = book_fill(lg, Side(r.side), float(r.qty), float(r.price), float(r.fee),
                                        r.fee_currency or "", slip)
    if len(funding):
        legs[home] = apply_funding(legs[home], float(funding["amount"].sum()))
    for sym, lg in legs.items():
        px = float(prices.get(sym, math.nan))
        legs[sym] = mark_leg(lg, px if px > 0 else lg.avg_entry)
    held = [s for s, lg in legs.items() if abs(lg.qty) > QTY_EPS]
    last = roll_orders[-1] if roll_orders else None
    if len(held) == 2 and last is not None and str(last["symbol"]) in held:
        dst = str(last["symbol"])
        [src] = [s for s in held if s != dst]
        qty = 0.0 if last.get("reduce_only") else float(last["qty"]) * Side(last["side"]).sign
        src_leg, dst_leg = legs.pop(src), replace(legs.pop(dst), name="roll")
        for lg in legs.values():
            src_leg = fold(src_leg, lg, "perp")
        return evolve(ctx, perp=src_leg, roll_leg=dst_leg, roll_qty=qty, perp_price=src_leg.last_price,
                      mark_price=src_leg.last_price)
    if len(held) > 1:
        raise InvalidInput("fills", held, "the hedge leg on at most one contract outside a journaled roll")
    keep = held[0] if held else home  # flat: a new entry hedges on the perpetual
    leg = legs.pop(keep)
    for lg in legs.values():
        leg = fold(leg, lg, "perp")
    return evolve(ctx, perp=leg, roll_leg=None, roll_qty=0.0, perp_price=leg.last_price, mark_price=leg.last_price)


def _blank(leg: Leg) -> Leg:
    """``leg``'s instrument (symbol, venue, limits, brackets) without position or money."""
    return replace(leg, name="perp", qty=0.0, avg_entry=0.0, fees=0.0, slippage=0.0, funding=0.0, margin_funding=0.0,
                   interest=0.0, realized=0.0, cash=0.0, traded_notional=0.0, last_price=math.nan)
