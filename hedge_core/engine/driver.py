"""The imperative shell around :func:`step`: execute actions on adapters, feed answers back.

:class:`HedgeDriver` owns one hedge context and one adapter per venue. ``await feed(event)``
runs ``step`` and executes the returned actions; every adapter answer becomes an event that is
stepped in turn (fills before the order's status), until nothing is left to do.

Persistence hooks (all optional, synchronous, called in this order of events):
``on_intent(hedge_id, PlaceOrder)`` BEFORE an order is sent (persist before acting — the
client order id is in the request, so a restart can look it up instead of re-sending);
``on_fill(hedge_id, FillEvent)``; ``on_transition(hedge_id, RecordTransition)``;
``on_guard(hedge_id, GuardFired)``; ``on_alert(hedge_id, Alert)``; ``on_loan(hedge_id, (before,
after))`` when a loan book's loan or cycle target changed in a step, before that step's actions;
``on_exit_marks(hedge_id, ctx)`` when a step changed the cycle memory the exit rules read
(:data:`EXIT_MARK_FIELDS`: a new peak PnL, a new entry) or the daily-loss guard's day rolled
(:data:`DAY_FIELDS`), before that step's actions.

Where fills come from (principle 8, "the venue's records are the truth"):

- **Trade records** (every adapter unless it declares ``answers_carry_fills = True``; always the
  live ccxt adapter): Binance's USD-M order answers carry no commission and no fills, and a spot
  order lookup has no fills either, so an order snapshot is only a signal. When a snapshot shows
  more filled than is booked for that order, the driver reads the venue's own trade records
  (``adapter.fetch_my_trades``: Binance spot ``myTrades`` / USD-M ``userTrades``, Bybit's
  execution list), matches them to the order by venue order id (or client order id), and books
  each record once: quantity, price, commission and commission asset as the venue reports them,
  trade id ``<symbol>#<venue trade id>`` (:func:`record_trade_id`). When the records are not
  visible yet, nothing is invented: the order's status still says how much filled, so the
  engine keeps the order pending and queries it again, and the next snapshot reads the records
  again. An order answer is never booked with a made-up fee of 0.
- **Order snapshots** (``answers_carry_fills = True``: the paper venue and test doubles whose
  answers are complete): each new snapshot yields one fill for the increment since the previous
  one (``Order.filled``, ``avg_price``, ``fee``), trade id ``<client order id>:<cumulative
  filled>`` (:func:`snapshot_trade_id`). No extra call per fill: backtests stay fast.

On a trade-records venue a spot SELL never asks for more than the venue says is free: the
driver caps it to the base asset's free balance (``fetch_balance("spot")``) rounded down to the
lot and reports the dust left below one lot (an INFO alert) instead of trading it.

Either way each fill carries ``slippage = ledger.slippage_cost(side, qty, price, ref)`` against
the price ``step()`` decided the order at (``HedgeContext.order_ref``), the figure the ledger books.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

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
from hedge_core.engine.context import HedgeContext
from hedge_core.engine.events import (
    Event,
    FillEvent,
    MarketUpdate,
    OrderTimeout,
    OrderUpdate,
    OrderUpdateKind,
)
from hedge_core.engine.ledger import QTY_EPS, slippage_cost
from hedge_core.engine.roll_step import delivery_time, is_dated, perpetual_of
from hedge_core.engine.order_states import OrderState
from hedge_core.engine.step import step
from hedge_core.errors import (
    DuplicateOrder,
    ExchangeError,
    InvalidInput,
    OrderNotFound,
    OrderOutcomeUnknown,
    RateLimited,
    RequestTimeout,
    TemporaryError,
)
from hedge_core.exchange.base import ExchangeAdapter, RetryPolicy, with_retry
from hedge_core.exchange.delivery_ids import is_delivery_fill
from hedge_core.params.models import StrategyParamsBase
from hedge_core.types import Fill, MarketKind, Order, OrderStatus, Side

#: Seconds of the hedge's clock between two reads of the venue's deliveries of a dated future the leg holds, before
#: its delivery time (from then on: every poll). A reconciliation pass always reads them.
DELIVERY_POLL_S = 60.0

__all__ = ["DELIVERY_POLL_S", "DriverHooks", "HedgeDriver", "answers_carry_fills", "pair_first_venue",
           "record_trade_id", "run_now", "snapshot_trade_id"]

T = TypeVar("T")


def snapshot_trade_id(order: Order) -> str:
    """Trade id of the fill derived from an order snapshot: ``<client order id>:<cumulative filled>``.

    Client order ids are unique per hedge across venues (venue order ids are not), so two legs on
    two venues never produce the same id. Reconciliation should use the same function.
    """
    return f"{order.client_order_id}:{order.filled:.12g}"


def record_trade_id(fill: Fill, venue: str | None = None) -> str:
    """Trade id of a fill read from the venue's trade records: ``<symbol>#<venue trade id>``.

    Binance numbers spot and USD-M trades in separate sequences, so the bare venue id of a spot
    trade can equal a perp trade's; the unified symbol makes it unique per hedge.

    ``venue``: given for the FIRST leg of two perp legs (:func:`pair_first_venue`): both legs trade ONE
    unified symbol on two venues whose trade-id sequences are their own (two venues listing a new perp
    both count from 1), so the first leg's records are ``<venue>:<symbol>#<venue trade id>`` and never
    meet the second leg's on the journal's key or in the driver's seen-set.
    """
    tid = f"{fill.symbol}#{fill.trade_id}"
    return f"{venue}:{tid}" if venue else tid


def pair_first_venue(ctx: HedgeContext, leg: str) -> str | None:
    """The venue that keys ``leg``'s record trade ids apart (:func:`record_trade_id`): the first leg's
    venue when ``leg`` is the first (``"spot"``) and it is a perp (two perp legs); else None."""
    return ctx.spot.venue if leg == "spot" and ctx.spot.kind is MarketKind.PERP else None


def answers_carry_fills(adapter: Any) -> bool:
    """True when ``adapter`` declares its order answers complete (``answers_carry_fills = True``:
    filled quantity, average price and fee of every fill); otherwise fills come from its trade records."""
    return bool(getattr(adapter, "answers_carry_fills", False))


@dataclass(frozen=True)
class _RecordsNeeded:
    """Placeholder in an event list: this order shows new fills, to be read from trade records."""

    leg: str
    order: Order
    ts: pd.Timestamp


def run_now(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to completion, synchronously; its result.

    RuntimeError (and the coroutine closed) if it suspends: it awaited something that needs an
    event loop, and what it did before that point is not undone.
    """
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("the coroutine suspended (an adapter awaited real I/O): run it in an event loop "
                       "(await driver.feed(...)) instead of driver.feed_now(...)")


Hook = Callable[[str, Any], None]

#: The context fields the exit rules (engine.exits) read that fills and funding cannot rebuild after a restart
#: (journaled by the runner: runner.exit_marks)
EXIT_MARK_FIELDS = ("pnl_at_entry", "peak_pnl", "entry_notional", "entered_at", "profit_target",
                    "unfavourable_funding")
#: The daily-loss guard's day and the hedge's PnL at its start (set when the UTC day rolls): journaled with the
#: exit marks, so a restart on the same day counts the day's earlier losses (runner.exit_marks)
DAY_FIELDS = ("day", "day_start_pnl")
#: Every field whose change calls the ``on_exit_marks`` hook
MARK_HOOK_FIELDS = EXIT_MARK_FIELDS + DAY_FIELDS

#: Retry policy of settings calls (leverage, margin mode); frozen, so safe as a shared default.
SETTINGS_RETRY = RetryPolicy(max_attempts=3, seed=0)
#: Order states in which the venue has not answered the create call yet.
_UNANSWERED = frozenset({OrderState.SENT, OrderState.QUERYING, OrderState.UNKNOWN})


@dataclass
class DriverHooks:
    on_intent: Hook | None = None
    on_fill: Hook | None = None
    on_transition: Hook | None = None
    on_guard: Hook | None = None
    on_alert: Hook | None = None
    #: a loan book's memory changed in a step (``ctx.loan``, ``target_ratio`` or ``profit_target``);
    #: payload ``(context before, context after)``, called BEFORE the step's actions are executed
    on_loan: Hook | None = None
    #: the exit rules' cycle memory or the daily-loss guard's day changed in a step (:data:`MARK_HOOK_FIELDS`);
    #: payload: the context after, called BEFORE the step's actions are executed
    on_exit_marks: Hook | None = None


class HedgeDriver:
    """Run one hedge against its venue adapters.

    Parameters
    ----------
    ctx : HedgeContext
        Initial context (``engine.new_hedge``), or one restored from a journal.
    params : strategy params
    adapters : mapping venue -> ExchangeAdapter
        One adapter per venue the legs live on (paper, live, recommend, or fault-wrapped).
    hooks : DriverHooks, optional
    retry : RetryPolicy
        Used for settings calls (leverage, margin mode) only; order calls are never blindly
        retried: a timeout becomes an ``OrderTimeout`` event and the engine queries first.
    sleep : coroutine function, optional
        Injected into ``with_retry`` (tests pass a no-op).
    """

    def __init__(self, ctx: HedgeContext, params: StrategyParamsBase, adapters: Mapping[str, ExchangeAdapter], *,
                 hooks: DriverHooks | None = None, retry: RetryPolicy = SETTINGS_RETRY,
                 sleep: Callable[[float], Any] | None = None, poll_external_fills: bool = True) -> None:
        for leg in (ctx.spot, ctx.perp):
            if leg.venue not in adapters:
                raise InvalidInput("adapters", sorted(adapters), f"an adapter for venue {leg.venue!r} ({leg.name} leg)")
        self.ctx = ctx
        self.params = params
        self.adapters = dict(adapters)
        self.hooks = hooks or DriverHooks()
        self.retry = retry
        self._sleep = sleep
        self._reported: dict[str, tuple[float, float, float]] = {}  # coid -> (filled, cost, fee)
        self.actions: list[Action] = []  # everything step() asked for, in order (for inspection)
        self.max_events_per_feed = 1000
        self.poll_external_fills = poll_external_fills
        self._external_seen: set[str] = set()
        self._delivery_seen: set[str] = set()  # trade ids of the venue's deliveries booked by this driver
        self._delivery_read: dict[str, pd.Timestamp] = {}  # leg -> last delivery read (hedge clock)
        self.delivered_symbols: set[str] = set()  # dated futures whose delivery this driver booked
        self._last_polls: dict[str, pd.Timestamp] = {}  # leg -> last external-fill poll (hedge clock)
        self._complete = {v: answers_carry_fills(a) for v, a in self.adapters.items()}
        self._all_complete = all(self._complete.values())
        self._record_booked: dict[str, float] = {}  # coid -> base booked from trade records
        self._records_seen: set[str] = set()  # record trade ids booked by this driver
        self._order_ids: set[str] = set()  # venue order ids of our orders (never "external")
        self.records_missing: dict[str, float] = {}  # coid -> base the venue says filled, records not yet seen

    # ---- public ---------------------------------------------------------------------------
    async def feed(self, event: Event) -> HedgeContext:
        """Step ``event`` and everything it causes; returns the new context."""
        queue: list[Event] = [event]
        if isinstance(event, MarketUpdate) and self.poll_external_fills:
            # what the venue did on its own when these bars became known (liquidation, ADL)
            # is booked before the engine acts on the new prices
            queue = await self._external_fills(event.ts) + queue
        n = 0
        while queue:
            n += 1
            if n > self.max_events_per_feed:  # a venue answering in a loop must not hang the runner
                self._hook("on_alert", Alert(AlertLevel.CRITICAL, "event loop limit reached in one feed"))
                break
            ev = queue.pop(0)
            if isinstance(ev, FillEvent):
                self._hook("on_fill", ev)
            prev = self.ctx
            self.ctx, actions = step(self.ctx, ev, self.params)
            if self.hooks.on_loan is not None and self.ctx.loan is not None and (
                    self.ctx.loan is not prev.loan or self.ctx.target_ratio != prev.target_ratio
                    or self.ctx.profit_target != prev.profit_target):
                self._hook("on_loan", (prev, self.ctx))  # persist the loan before acting on the step
            if self.hooks.on_exit_marks is not None and any(
                    getattr(prev, f) != getattr(self.ctx, f) for f in MARK_HOOK_FIELDS):
                self._hook("on_exit_marks", self.ctx)
            self.actions.extend(actions)
            for a in actions:  # answers carry the hedge's clock (a late-stamped event never moves it back)
                queue.extend(await self._execute(a, self.ctx.last_ts))
        return self.ctx

    def feed_now(self, event: Event) -> HedgeContext:
        """:meth:`feed` without an event loop, for adapters whose calls never suspend (the paper
        venue, the recommend adapter): the SAME coroutine, driven to completion in one step.

        Raises RuntimeError when an adapter really awaits (network I/O, a real sleep); use
        ``await feed(...)`` for those. The backtester replays through this (no loop, no thread).
        """
        return run_now(self.feed(event))

    async def book_external(self, ts: pd.Timestamp) -> HedgeContext:
        """Book the venue's own trades on the perp (liquidation, ADL) found since the last poll, and the delivery
        of a dated future the leg holds (read on every call), without a market update (reconciliation calls it
        before it compares positions: a delivered leg is never a position difference)."""
        if not self.poll_external_fills:
            return self.ctx
        for ev in await self._external_fills(ts, deliveries=True):
            self.ctx = await self.feed(ev)
        return self.ctx

    async def _external_fills(self, ts: pd.Timestamp, refused: str = "", *, deliveries: bool = False) -> list[Event]:
        """Perp trades the hedge did not order (liquidation, ADL) since the last poll, and the venue's delivery of
        a dated future the leg holds (:meth:`_deliveries`; ``deliveries``: read it whatever the last read).
        ``refused``: the client id of an order the venue just refused (it never executes: not an unresolved
        order). A first leg that is a perp too (two perp legs) is polled at its own venue the same way."""
        out = await self._external_fills_of("perp", ts, refused, deliveries)
        if self.ctx.spot.kind is MarketKind.PERP:
            out += await self._external_fills_of("spot", ts, refused)
        return out

    async def _external_fills_of(self, name: str, ts: pd.Timestamp, refused: str,
                                 deliveries: bool = False) -> list[Event]:
        leg = self.ctx.leg(name)
        since = self._last_polls.get(name)
        self._last_polls[name] = ts
        if leg.qty == 0.0 and since is not None:
            return []
        out: list[Event] = await self._deliveries(name, ts, deliveries) if name == "perp" else []
        try:
            trades = await self.adapters[leg.venue].fetch_my_trades(leg.symbol, since)
        except (ExchangeError, AttributeError, InvalidInput):  # InvalidInput: a delivered contract no longer listed
            return out
        known_ids = self._order_ids | {p.order_id for p in self.ctx.pending.values() if p.order_id}
        # an order of ours whose answer was lost has no venue id yet: its (late) execution would look
        # like nobody's. Until it is resolved at the venue no unattributed trade is booked as external;
        # they are read again (from the same point) on a later poll.
        unresolved = any(p.leg == name and not p.order_id and p.status in _UNANSWERED
                         and c != refused for c, p in self.ctx.pending.items())
        for f in trades:
            if f.client_order_id in self.ctx.known_orders or f.order_id in known_ids:
                continue
            if f.trade_id in self._delivery_seen:
                continue  # a delivery listed among the trades (paper): booked by _deliveries
            if is_delivery_fill(f.client_order_id):
                # a delivery the throttled read has not booked yet: read the deliveries now, never book it as an
                # ordinary external fill (the leg would stay on a contract that no longer trades)
                out += await self._deliveries(name, ts, True)
                continue
            if unresolved and since is not None:
                self._last_polls[name] = since
                continue
            # the paper venue's own ids stay as they were (its journals and replays are unchanged); two venues
            # trade the same symbol: the first leg's venue keeps the ids apart (record_trade_id)
            venue = pair_first_venue(self.ctx, name)
            if self._complete.get(leg.venue, False):
                tid = f"{venue}:{f.trade_id}" if venue else f.trade_id
            else:
                tid = record_trade_id(f, venue)
            if tid in self._external_seen or tid in self._records_seen:
                continue
            self._external_seen.add(tid)
            if tid != f.trade_id:
                f = replace(f, trade_id=tid)
            if since is None:
                continue  # first poll: trades from before this hedge existed are not ours
            out.append(FillEvent(f, name, external=True))
        return out

    async def _deliveries(self, name: str, ts: pd.Timestamp, force: bool) -> list[Event]:
        """The venue's delivery of the dated future the leg holds (``fetch_deliveries``, where the adapter has
        it): each a FillEvent with ``delivered_to`` = (the perpetual's instrument, its price now), so the engine
        books it and moves the leg to the perpetual (``roll_step.delivered``). Read only while the leg holds a
        dated future; from all time (a restart's first read too: a delivery closes a position the leg still
        holds, so it is never from before the hedge). When: on every call once the hedge's clock has reached the
        contract's delivery time (``roll_step.delivery_time``), with ``force`` (a reconciliation pass), at the
        first call, and otherwise at most every :data:`DELIVERY_POLL_S` of the hedge's clock (Binance's income
        query weighs 30)."""
        leg = self.ctx.leg(name)
        adapter = self.adapters[leg.venue]
        fn = getattr(adapter, "fetch_deliveries", None)
        if fn is None or not is_dated(leg.symbol) or abs(leg.qty) <= QTY_EPS:
            return []
        last = self._delivery_read.get(name)
        due = delivery_time(leg.symbol)
        if not (force or last is None or (due is not None and ts >= due)
                or (ts - last).total_seconds() >= DELIVERY_POLL_S):
            return []
        self._delivery_read[name] = ts
        try:
            got = [f for f in await fn(leg.symbol, None) if f.trade_id not in self._delivery_seen]
            if not got:
                return []
            perp = perpetual_of(leg.symbol)
            inst = (await adapter.load_markets()).get(perp)
            px = float((await adapter.fetch_ticker(perp)).last or 0.0)
        except (ExchangeError, InvalidInput):
            return []
        if inst is None or not (px > 0):
            return []
        out: list[Event] = []
        for f in got:
            self._delivery_seen.add(f.trade_id)
            self.delivered_symbols.add(f.symbol)
            if f.qty <= 0.0:  # the record names no quantity (Binance's income row): the whole position the leg holds
                f = replace(f, qty=abs(leg.qty), side=Side.BUY if leg.qty < 0 else Side.SELL)
            out.append(FillEvent(f, name, external=True, delivered_to=(inst, px)))
        return out

    # ---- execution ------------------------------------------------------------------------
    def _hook(self, name: str, payload: Any) -> None:
        fn = getattr(self.hooks, name)
        if fn is not None:
            fn(self.ctx.hedge_id, payload)

    async def _execute(self, a: Action, ts: pd.Timestamp) -> list[Event]:
        if isinstance(a, PlaceOrder):
            return await self._records(await self._place(a, ts))
        if isinstance(a, CancelOrder):
            return await self._records(await self._cancel(a, ts))
        if isinstance(a, QueryOrder):
            return await self._records(await self._query(a.leg, a.venue, a.symbol, a.client_order_id, ts))
        if isinstance(a, (SetLeverage, SetMarginMode)):
            return await self._setting(a)
        if isinstance(a, RecordTransition):
            self._hook("on_transition", a)
        elif isinstance(a, GuardFired):
            self._hook("on_guard", a)
        elif isinstance(a, Alert):
            self._hook("on_alert", a)
        return []

    async def _cap_spot_sell(self, a: PlaceOrder) -> PlaceOrder | None:
        """A spot sell on a trade-records venue sells at most what the venue says is FREE.

        The base asset's free balance (``fetch_balance("spot")``) rounded DOWN to the lot: never the
        ledger's larger figure (a commission taken in the base asset the ledger did not know of would
        make the venue refuse the whole order, -2010, and leave the perp leg naked). What is left
        below one lot is reported as dust, not traded. None when nothing sellable is free.
        """
        leg = self.ctx.spot
        rq = a.request
        if a.leg != "spot" or rq.side is not Side.SELL or self._complete.get(a.venue, False) \
                or leg.kind is not MarketKind.SPOT:  # a perp first leg sells short from its margin
            return a
        try:
            bal = await self.adapters[a.venue].fetch_balance("spot")
        except ExchangeError:
            return a  # unknown: send as decided; the venue refuses an order it cannot fill
        b = bal.get(leg.base)
        free = float(b.free) if b is not None else 0.0
        if free >= rq.qty - 1e-12:
            return a
        lot = leg.lot_size if leg.lot_size > 0 else 1e-8
        qty = round(math.floor(free / lot + 1e-9) * lot, 12)
        self._hook("on_alert", Alert(AlertLevel.INFO, f"spot sell capped to the venue's free {leg.base}: "
                                     f"{qty:g} instead of {rq.qty:g}; dust {free - qty:g} {leg.base} left",
                                     {"free": free, "ledger_qty": rq.qty, "sent_qty": qty, "dust": free - qty}))
        if qty < max(leg.min_qty, lot) - 1e-12:
            return None
        return replace(a, request=replace(rq, qty=qty))

    async def _place(self, a: PlaceOrder, ts: pd.Timestamp) -> list[Event]:
        capped = await self._cap_spot_sell(a)
        if capped is None:
            return [OrderUpdate(ts, a.request.client_order_id, OrderUpdateKind.REJECTED,
                                reason=f"nothing free to sell: the venue's free {self.ctx.spot.base} is below one lot")]
        a = capped
        self._hook("on_intent", a)  # persist before acting
        adapter = self.adapters[a.venue]
        coid = a.request.client_order_id
        try:
            order = await adapter.create_order(a.request)
        except DuplicateOrder:
            # the venue already has this id (our earlier send did arrive): fetch, never re-send
            return await self._query(a.leg, a.venue, a.request.symbol, coid, ts)
        except OrderOutcomeUnknown as exc:
            # the answer was lost: the order may exist or still execute until exc.window_end
            return [OrderTimeout(ts, coid, window_end=_on_hedge_clock(exc.window_end, exc.sent_at, ts))]
        except RateLimited as exc:
            if exc.retry_after:
                # refused before the venue's matching (429/418 or the governor): it does not exist
                return [OrderUpdate(ts, coid, OrderUpdateKind.NOT_SENT, reason=str(exc),
                                    retry_at=ts + pd.Timedelta(seconds=float(exc.retry_after)))]
            return [OrderTimeout(ts, coid)]
        except (RequestTimeout, TemporaryError):
            # no (trustworthy) answer: the order may exist -> the engine queries by client id
            return [OrderTimeout(ts, coid)]
        except ExchangeError as exc:
            rejected: list[Event] = [OrderUpdate(ts, coid, OrderUpdateKind.REJECTED, reason=str(exc))]
            if self.poll_external_fills and a.leg == "perp" and is_dated(a.request.symbol):
                # an order on the dated future the leg holds refused: the venue may have delivered (delisted) it;
                # read its deliveries now, so no retry goes to a contract that no longer trades
                return await self._external_fills(ts, refused=coid, deliveries=True) + rejected
            if a.request.reduce_only and self.poll_external_fills and (
                    a.leg == "perp" or self.ctx.spot.kind is MarketKind.PERP):
                # nothing (or less) to reduce: the venue may have reduced the position itself (ADL,
                # liquidation) since the last read; book that first, so no retry is sized on a position
                # that is gone (each one would be refused again until the retries run out)
                return await self._external_fills(ts, refused=coid) + rejected
            return rejected
        return self._snapshot(a.leg, order, ts)

    async def _cancel(self, a: CancelOrder, ts: pd.Timestamp) -> list[Event]:
        try:
            order = await self.adapters[a.venue].cancel_order(a.symbol, client_order_id=a.client_order_id)
        except OrderNotFound:  # already final (filled or cancelled): read its final state
            return await self._query(a.leg, a.venue, a.symbol, a.client_order_id, ts)
        except ExchangeError:
            return []  # the engine re-checks on its next timer (status cancel_requested -> query)
        return self._snapshot(a.leg, order, ts)

    async def _query(self, leg: str, venue: str, symbol: str, coid: str, ts: pd.Timestamp) -> list[Event]:
        """Look ``coid`` up at the venue: its order records by client id and, where the adapter
        offers ``find_order``, its trade records since the order was sent. A NOT_FOUND carries the
        adapter's late-execution window (``outcome_window_s``; 0 where orders never execute late)."""
        adapter = self.adapters[venue]
        window = _window_s(adapter)
        try:
            try:
                order = await adapter.fetch_order(symbol, client_order_id=coid)
            except OrderNotFound:
                find = getattr(adapter, "find_order", None)
                if not callable(find):
                    raise
                p = self.ctx.pending.get(coid)
                since = p.sent_ts - pd.Timedelta(minutes=1) if p is not None else None
                found = await find(symbol, coid, since)  # the venue's trade records too
                if found is None:
                    raise
                # read it back through the adapter chain (a journaling wrapper records the answer)
                order = await adapter.fetch_order(symbol, order_id=found.id)
        except OrderNotFound:
            return [OrderUpdate(ts, coid, OrderUpdateKind.NOT_FOUND, reason="venue has no such client order id",
                                window_s=window)]
        except ExchangeError:
            return []  # unanswered query: the engine asks again after order_timeout_s
        return self._snapshot(leg, order, ts)

    async def _setting(self, a: SetLeverage | SetMarginMode) -> list[Event]:
        adapter = self.adapters[a.venue]
        kw: dict[str, Any] = {} if self._sleep is None else {"sleep": self._sleep}
        try:
            if isinstance(a, SetLeverage):
                await with_retry(lambda: adapter.set_leverage(a.symbol, a.leverage), self.retry, **kw)
            else:
                await with_retry(lambda: adapter.set_margin_mode(a.symbol, a.mode), self.retry, **kw)
        except ExchangeError as exc:
            self._hook("on_alert", Alert(AlertLevel.WARNING, f"{type(a).__name__} on {a.symbol} failed: {exc}"))
        return []

    async def _records(self, events: list[Any]) -> list[Event]:
        """Replace each :class:`_RecordsNeeded` placeholder by the fills read from trade records."""
        if not any(isinstance(e, _RecordsNeeded) for e in events):
            return events
        out: list[Event] = []
        for e in events:
            out.extend(await self._record_fills(e) if isinstance(e, _RecordsNeeded) else [e])
        return out

    async def _record_fills(self, need: _RecordsNeeded) -> list[Event]:
        """Fills of ``need.order`` from the venue's trade records not booked yet (see module docstring).

        An unanswered read books nothing: the order's status update (which follows) says how much
        filled, so the engine keeps the order pending and asks again.
        """
        order, leg = need.order, need.leg
        coid = order.client_order_id
        adapter = self.adapters[self.ctx.leg(leg).venue]
        p = self.ctx.pending.get(coid)
        since = p.sent_ts - pd.Timedelta(minutes=5) if p is not None and p.sent_ts is not None else None
        try:
            trades = await adapter.fetch_my_trades(order.symbol, since)
        except ExchangeError as exc:
            self._hook("on_alert", Alert(AlertLevel.WARNING, f"trade records of {coid} unreadable: {exc}"))
            trades = []
        events: list[Event] = []
        ref = self.ctx.order_ref(coid)
        for f in sorted(trades, key=lambda t: (t.ts, t.trade_id)):
            if f.order_id != order.id and not (f.client_order_id and f.client_order_id == coid):
                continue
            tid = record_trade_id(f, pair_first_venue(self.ctx, leg))
            legacy = record_trade_id(f)  # a first perp leg's records journaled before they carried the venue
            if {tid, legacy} & (self._records_seen | set(self.ctx.seen_trades)):
                continue
            self._records_seen.add(tid)
            slip = slippage_cost(f.side, f.qty, f.price, ref) if ref > 0 else 0.0
            self._record_booked[coid] = self._record_booked.get(coid, 0.0) + f.qty
            events.append(FillEvent(replace(f, trade_id=tid, client_order_id=coid, slippage=slip), leg))
        missing = order.filled - self._record_booked.get(coid, 0.0)
        if missing > 1e-12:
            self.records_missing[coid] = missing
        else:
            self.records_missing.pop(coid, None)
        return events

    def _snapshot(self, leg: str, order: Order, ts: pd.Timestamp) -> list[Event]:
        """Events for one order snapshot: a fill for the new part, then its status.

        For an adapter whose answers do not carry fills the fill is a :class:`_RecordsNeeded`
        placeholder, resolved from trade records by :meth:`_records` (the caller, ``_execute``).
        """
        events: list[Event] = []
        coid = order.client_order_id
        if not self._all_complete and not self._complete.get(self.ctx.leg(leg).venue, False):
            if order.id:
                self._order_ids.add(order.id)
            if order.filled > self._record_booked.get(coid, 0.0) + 1e-12:
                events.append(_RecordsNeeded(leg, order, ts))  # type: ignore[arg-type]
            return events + self._status(order, ts)
        prev_filled, prev_cost, prev_fee = self._reported.get(coid, (0.0, 0.0, 0.0))
        avg = order.avg_price if order.avg_price is not None else math.nan
        if order.filled > prev_filled + 1e-12 and avg > 0:
            cost = order.filled * avg
            dq = order.filled - prev_filled
            px = (cost - prev_cost) / dq
            if not px > 0:
                px = avg
            fee = max(order.fee - prev_fee, 0.0)
            # the engine books slippage against the price it decided at (the same function and
            # reference as step() uses); carried on the Fill so journals and hooks see it too
            ref = self.ctx.order_ref(coid)
            slip = slippage_cost(order.side, dq, px, ref) if ref > 0 else 0.0
            fill = Fill(trade_id=snapshot_trade_id(order), order_id=order.id, client_order_id=coid,
                        symbol=order.symbol, side=order.side, qty=dq, price=px, fee=fee,
                        ts=ts, fee_currency=order.fee_currency, slippage=slip)
            self._reported[coid] = (order.filled, cost, order.fee)
            events.append(FillEvent(fill, leg))
        return events + self._status(order, ts)

    @staticmethod
    def _status(order: Order, ts: pd.Timestamp) -> list[Event]:
        kind = {OrderStatus.OPEN: OrderUpdateKind.ACK, OrderStatus.CLOSED: OrderUpdateKind.CLOSED,
                OrderStatus.CANCELED: OrderUpdateKind.CANCELED, OrderStatus.EXPIRED: OrderUpdateKind.CANCELED,
                OrderStatus.REJECTED: OrderUpdateKind.REJECTED}[order.status]
        return [OrderUpdate(ts, order.client_order_id, kind, reason=str(order.status), order_id=order.id,
                            filled=order.filled)]


def _window_s(adapter: object) -> float:
    """The adapter's late-execution window, seconds (0 when it has none: paper never executes late)."""
    try:
        w = float(getattr(adapter, "outcome_window_s", 0.0) or 0.0)
    except (TypeError, ValueError):
        return 0.0
    return w if math.isfinite(w) and w > 0 else 0.0


def _on_hedge_clock(window_end: pd.Timestamp | None, sent_at: pd.Timestamp | None,
                    ts: pd.Timestamp) -> pd.Timestamp | None:
    """The adapter's window end (wall time) moved onto the hedge's clock: ``ts`` + what was left
    of the window when the order was sent (so a replayed clock is honoured too)."""
    if window_end is None or sent_at is None:
        return None
    return ts + (window_end - sent_at)
