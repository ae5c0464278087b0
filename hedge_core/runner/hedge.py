"""One running hedge: its feed loop, its hooks into the journal, its clock and its alerts.

A :class:`HedgeTask` owns one :class:`~hedge_core.engine.driver.HedgeDriver`, one exchange
adapter (paper, live or recommend) wrapped in :class:`JournalingAdapter`, and one feed. Every
call into the driver holds the task's lock, so market events, heartbeats and operator commands
are stepped one at a time.

The task is assembled from parts by responsibility (each its own module of this package):
:mod:`~hedge_core.runner.hedge_spec` (:class:`HedgeSpec`), :mod:`~hedge_core.runner.journaling_adapter`,
:mod:`~hedge_core.runner.hedge_recovery` (start and recovery from the journal),
:mod:`~hedge_core.runner.hedge_records` (the venue's records: funding income, continuous reconciliation)
and :mod:`~hedge_core.runner.hedge_status` (summary, replay progress, position snapshots). Everything
public stays importable from here.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from hedge_core.engine.actions import Alert, GuardFired, PlaceOrder, RecordTransition
from hedge_core.engine.context import HedgeContext
from hedge_core.engine.driver import HedgeDriver
from hedge_core.engine.events import (
    Command,
    FillEvent,
    FundingSettled,
    MarketUpdate,
    OperatorCommand,
)
from hedge_core.engine.ledger import QTY_EPS
from hedge_core.engine.states import State
from hedge_core.runner.clock import venue_now
from hedge_core.runner.condition import AlertMessage, Conditions, Level
from hedge_core.runner.freshness import check_fill_slippage, fresh_enough
from hedge_core.runner.hedge_records import (  # noqa: F401 - re-exported: the reconciliation's timings
    FUNDING_SETTLE_LAG_S,
    RECONCILE_WINDOW,
    RECONFIRM_S,
    VenueRecordsMixin,
)
from hedge_core.runner.hedge_recovery import HedgeRecoveryMixin
from hedge_core.runner.hedge_spec import HedgeSpec
from hedge_core.runner.hedge_status import HedgeStatusMixin
from hedge_core.runner.journal import Journal, wall_now
from hedge_core.runner.journaling_adapter import JournalingAdapter
from hedge_core.runner.killpoints import kill_point
from hedge_core.runner.logs import log_event
from hedge_core.runner.market import MarketBuilder, Tick
from hedge_core.runner import best_entry, best_entry_live, roll_watch
from hedge_core.types import Bar, FundingEvent

if TYPE_CHECKING:
    from hedge_core.params.models import StrategyParamsBase

__all__ = ["HedgeSpec", "HedgeTask", "JournalingAdapter"]

log = logging.getLogger("hedge_core.runner.hedge")


class HedgeTask(HedgeRecoveryMixin, VenueRecordsMixin, HedgeStatusMixin):
    """Run one hedge. Build with :meth:`create`; ``await recover()`` or ``start``, then ``run()``."""

    def __init__(self, spec: HedgeSpec, params: StrategyParamsBase, journal: Journal, adapter: Any,
                 feed_factory: Callable[[HedgeTask], Any], supervisor: Any) -> None:
        self.spec = spec
        self.hedge_id = spec.hedge_id
        self.params = params
        self.journal = journal
        self.raw_adapter = adapter
        self.adapter = JournalingAdapter(adapter, self)
        self.feed_factory = feed_factory
        self.sup = supervisor
        self.lock = asyncio.Lock()
        self.driver: HedgeDriver | None = None
        self.purposes: dict[str, tuple[str, str]] = {}
        self.status = "starting"  # starting | running | feed_ended | stopped | failed
        self.error = ""
        self.updates = 0
        self.latencies: list[float] = []  # seconds per monitoring-cycle update (step + actions + journal)
        self.keep_latencies = False
        self.dms_fired = False
        self.armed_symbol: str | None = None  # perp symbol whose venue countdown this hedge armed
        self.no_new_entries = False
        self.feed: Any = None
        self.inputs: Any = None  # InputsTable of a replay (set by the feed factory)
        self.inputs_loader: Callable[[], Awaitable[Any]] | None = None  # replay: computes ``inputs`` (off the loop)
        self.market_data: Any = None  # paper on live data: the venue's public market-data adapter
        self.feed_reason = ""  # why this feed (the start answer says it)
        self.phase = "starting"  # starting | preparing (replay: reading history) | running | done
        # replay window (UTC) and the pace of the replay (wall monotonic s, replay time at that moment)
        self.replay_window: tuple[pd.Timestamp, pd.Timestamp] | None = None
        self._replay_t0: tuple[float, pd.Timestamp] | None = None
        self._replay_t1: float | None = None  # wall monotonic s when the replay stopped
        journal.clocks[self.hedge_id] = self.clock_now  # every journal row of this hedge: its clock
        self.paper_saved_at = 0.0
        self.task: asyncio.Task[Any] | None = None
        self._last_snapshot = 0.0
        self.started_at = wall_now()
        self.alerts: list[dict[str, Any]] = []
        self.conditions = Conditions()  # DEGRADED marks (see runner.condition)
        self.reconcile_due = asyncio.Event()  # wakes the records loop (unknown outcome, funding time)
        self.last_reconcile: dict[str, Any] = {}
        self._funding_booked: set[pd.Timestamp] = set()  # venue funding times booked (journal key)
        self._first_funding_booked: set[pd.Timestamp] = set()  # two perp legs: the first venue's (pair_records)
        self._records_task: asyncio.Task[Any] | None = None
        self.advice: Any = None  # latest hedge_core.advice.Opinion (runner.advisor_watch), None before the first
        self.clients_closed = False  # its venue clients closed (close_clients): COMPLETED, or the runner stopped

    # ---- DEGRADED marks and alerts ----------------------------------------------------------------
    def alert(self, level: Level, kind: str, message: str, **numbers: float) -> None:
        """Tell the operator: the hedge's page, the log and every alert channel (the supervisor's bus)."""
        from types import MappingProxyType

        ts = self.clock_now()
        self.alerts = (self.alerts + [{"level": level, "kind": kind, "message": message, "ts": str(ts)}])[-50:]
        lvl = {"info": logging.INFO, "warning": logging.WARNING}.get(level, logging.ERROR)
        log_event(log, message, level=lvl, hedge_id=self.hedge_id, state=self._state(), kind=kind, numbers=numbers)
        bus = getattr(self.sup, "alert_bus", None)
        if bus is not None:
            bus.emit(AlertMessage(level, kind, message, hedge_id=self.hedge_id, venue=self.spec.venue, ts=ts,
                                  numbers=MappingProxyType(dict(numbers))))

    def degrade(self, key: str, message: str, *, level: Level = "warning", **numbers: float) -> None:
        """Mark the hedge DEGRADED for ``key`` (alerts once per episode: again only when the message changes)."""
        if self.conditions.raise_(key, message):
            self.alert(level, key, f"DEGRADED ({key}): {message}", **numbers)

    def undegrade(self, key: str) -> None:
        """Clear one DEGRADED condition (the part that raised it saw it resolved)."""
        if self.conditions.clear(key):
            self.alert("info", key, f"{key} resolved" + ("" if self.conditions.degraded else ": no longer DEGRADED"))

    # ---- the hedge's clock (runner.clock, principle 10) --------------------------------------------
    @property
    def clock(self) -> str:
        """``replay`` (the replay's time) or ``live`` (the venue's time)."""
        return "replay" if self.spec.feed == "replay" else "live"

    def clock_now(self) -> pd.Timestamp:
        """The hedge's time now: every row it writes carries it.

        Replay: the known instant of the last replayed event (before the first one: where the
        paper venue stopped, else the window start). Live and paper on live data: the venue's
        time (wall clock + the offset ccxt measured), never behind the engine's own clock."""
        last = self.driver.ctx.last_ts if self.driver is not None else None
        if self.clock == "replay":
            if last is not None:
                return last
            core_now = getattr(getattr(self.raw_adapter, "core", None), "now", None)
            if core_now is not None:
                return pd.Timestamp(core_now)
            if self.replay_window is not None:
                return self.replay_window[0]
            return pd.Timestamp(self.spec.start, tz="UTC") if self.spec.start else wall_now()
        now = venue_now(self.market_data if self.market_data is not None else self.raw_adapter)
        return now if last is None or now >= last else last

    def _clock_now(self) -> pd.Timestamp:
        return self.clock_now()

    # ---- hooks (synchronous, called by the driver) ---------------------------------------------
    def _on_intent(self, hedge_id: str, a: PlaceOrder) -> None:
        self.purposes[a.request.client_order_id] = (a.leg, a.purpose)
        ref = self.driver.ctx.order_ref(a.request.client_order_id) if self.driver else math.nan
        self.journal.intent(hedge_id, a, self.clock_now(), self.spec.mode, ref_price=ref)
        log_event(log, "order intent", hedge_id=hedge_id, state=self._state(), leg=a.leg, purpose=a.purpose,
                  side=str(a.request.side), qty=a.request.qty, client_order_id=a.request.client_order_id,
                  retry_of=a.retry_of)
        kill_point("intent_journaled", a.leg, a.purpose)

    def _on_fill(self, hedge_id: str, ev: FillEvent) -> None:
        self.journal.fill(hedge_id, ev, self.spec.leg_venues[0 if ev.leg == "spot" else 1])
        _, purpose = self.purposes.get(ev.fill.client_order_id, (ev.leg, ""))
        if ev.delivered_to is not None:  # the venue's delivery (roll_step.delivered; the engine's critical alert)
            purpose = "delivery"
        log_event(log, "fill", hedge_id=hedge_id, state=self._state(), leg=ev.leg, purpose=purpose,
                  side=str(ev.fill.side), qty=ev.fill.qty, price=ev.fill.price)
        kill_point("fill_journaled", ev.leg, purpose)
        check_fill_slippage(self, ev)  # alert when far from the decision price (runner.freshness)

    def _on_transition(self, hedge_id: str, t: RecordTransition) -> None:
        self.journal.transition(hedge_id, t)
        done = t.to_state == State.COMPLETED
        self.journal.run(self._run_row(t.to_state, ended=done))
        log_event(log, "transition", hedge_id=hedge_id, state=t.to_state, from_state=t.from_state,
                  trigger=t.trigger, reason=t.reason)
        self._snapshot(t.ts, force=True)
        if t.to_state == State.ERROR:
            self.alert("error", "state_error", f"hedge in ERROR ({t.from_state} -> ERROR on {t.trigger}): {t.reason}")
        elif t.to_state in (State.MONITORING_POSITIONS, State.COMPLETED) and self.driver is not None and \
                t.from_state in (State.OPENING_FUTURES_HEDGE, State.CLOSING_POSITIONS):
            c = self.driver.ctx  # lifecycle news (info: sent where HEDGE_ALERT_MIN_LEVEL=info asks for it)
            what = (f"entered: spot {c.spot.qty:g}, perp {c.perp.qty:g}" if t.to_state == State.MONITORING_POSITIONS
                    else f"completed: both legs closed, net PnL {c.pnl:,.2f} USDT")
            self.alert("info", "lifecycle", f"hedge {self.hedge_id} {what}", pnl=float(c.pnl))
        kill_point("transition", t.to_state, t.trigger)

    def _on_guard(self, hedge_id: str, g: GuardFired) -> None:
        self.journal.guard(hedge_id, g)
        nums = {k: float(v) for k, v in dict(g.numbers).items() if isinstance(v, (int, float))}
        self.alert("warning", "dead_mans_switch" if g.name == "dead_mans_switch" else "guard",
                   f"guard {g.name} fired: {g.action}", **nums)

    def _on_alert(self, hedge_id: str, a: Alert) -> None:
        nums = {k: float(v) for k, v in dict(a.numbers).items() if isinstance(v, (int, float))}
        self.alert(str(a.level), "engine", a.message, **nums)  # type: ignore[arg-type]

    def _state(self) -> str:
        return str(self.driver.ctx.state) if self.driver else "NONE"

    # ---- running ------------------------------------------------------------------------------
    async def step(self, event: Any) -> HedgeContext:
        async with self.lock:
            return await self.driver.feed(event)

    async def close_clients(self) -> None:
        """Close this hedge's venue clients once: its adapter (trading; a paper venue saves its state) and, paper
        on live data, the venue's public market data. Called when the hedge is COMPLETED and no exchange-side
        countdown of it is left armed (the end of :meth:`run`, or the supervisor's next beat once the timers are
        disarmed), and at the runner's shutdown."""
        if self.clients_closed:
            return
        self.clients_closed = True
        from hedge_core.runner.hedge_start import close_clients

        await close_clients(self.raw_adapter, self.market_data)
        log_event(log, "venue clients closed", hedge_id=self.hedge_id, state=self._state())

    async def finish(self) -> None:
        """A COMPLETED hedge with no exchange-side countdown left armed: its feed loop stopped (it would only wait
        for the next event to notice) and its venue clients closed, once. The supervisor's beat calls it."""
        if self.clients_closed:
            return
        t = self.task
        if t is not None and not t.done() and t is not asyncio.current_task():
            t.cancel()
            await asyncio.wait({t})  # its own end (feed closed, paper state saved); our cancellation still propagates
        await self.close_clients()

    async def command(self, cmd: Command, reason: str = "") -> HedgeContext:
        ctx = await self.step(OperatorCommand(self.driver.ctx.last_ts, cmd, reason))
        if ctx.state is State.COMPLETED:
            self.status = "stopped"
        return ctx

    async def _market(self, mu: MarketUpdate) -> None:
        if self.spec.perp_pair:  # two perp legs: the first leg trades the perp on its venue (exchange.routed_pair)
            ad = self.raw_adapter  # live (routed_pair_live): the feed's "spot" price is the first venue's own ticker
            # ticker: the first venue's own last price; bars: its own perp close and mark (exchange.pair_feed)
            own = self.spec.feed in ("ticker", "bars") and math.isfinite(mu.spot) and mu.spot > 0
            own_mark = mu.spot_mark if self.spec.feed == "bars" and math.isfinite(mu.spot_mark) else mu.spot
            mu = replace(mu, spot=mu.spot if own else mu.perp, spot_mark=own_mark if own else mu.mark_or_perp,
                         spot_volume=mu.perp_volume,
                         spot_funding_rate=getattr(ad, "first_last_rate", math.nan),
                         spot_funding_interval_hours=getattr(ad, "first_interval_hours", 8.0),
                         spot_next_funding_ts=ad.first_next_funding_ts(mu.ts) if hasattr(ad, "first_next_funding_ts")
                         else None)
            if self.spec.feed == "replay" and hasattr(ad, "replay_funding"):
                # a paper replay: each leg's rate, interval and NEXT settlement from its venue's own stored series
                # (the data venue's grid only for a second venue without one): exchange.routed_pair
                mu = replace(mu, **ad.replay_funding(mu.ts))
            else:
                sched = getattr(self.feed, "leg_funding", None)  # feed bars: each leg's own venue's interval and
                if self.spec.feed == "bars" and callable(sched):  # next settlement (exchange.pair_feed)
                    mu = replace(mu, **sched(mu.ts))
                own_b = float(getattr(ad, "second_last_rate", math.nan))  # paper on bars: B's own last settlement
                if math.isfinite(own_b):
                    mu = replace(mu, funding_rate=own_b)
        if self.driver.ctx.state is State.ANALYZING_MARKET and (
                self.no_new_entries or (getattr(self.sup, "book", None) is not None and self.sup.book.blocks(self))):
            return  # shutting down, or a book guard fires (hedge_core.book.monitor): no new positions
        if self.sup.heartbeat_stale() and not self.dms_fired and self.driver.ctx.state is not State.COMPLETED:
            await self._dead_mans_switch(self.clock_now())
        if not fresh_enough(self, mu):
            self.updates += 1  # received, not acted on: stale prices block new orders (runner.freshness)
            return
        monitoring = self.driver.ctx.state is State.MONITORING_POSITIONS
        t0 = time.perf_counter()
        mu = await roll_watch.priced(self, mu)  # the leg on a dated future: that contract's price (runner.roll_watch)
        if self.spec.perp_venue_choice:  # best execution: the perp venue re-chosen while flat (runner.best_entry)
            await best_entry.before_entry(self, mu)
        async with self.lock:
            await self.driver.feed(mu)
        dt = time.perf_counter() - t0
        self.updates += 1
        if self.keep_latencies and monitoring:  # the monitoring cycle: exits, drift, guards, rebalance
            self.latencies.append(dt)
        await roll_watch.maybe_roll(self, mu)  # the calendar roll, where enabled and a dated future is listed
        self._snapshot(self.driver.ctx.last_ts)  # the hedge's clock (a bar's close may lie before it)

    async def _dead_mans_switch(self, ts: pd.Timestamp) -> None:
        self.dms_fired = True
        age = self.sup.heartbeat_age()
        from types import MappingProxyType

        g = GuardFired("dead_mans_switch", "flatten", MappingProxyType({"silent_s": age, "limit_s": self.sup.dms_timeout_s}), ts)
        self._on_guard(self.hedge_id, g)
        async with self.lock:
            await self.driver.feed(OperatorCommand(ts, Command.FLATTEN, f"dead man's switch: supervisor silent {age:.1f} s"))

    async def _funding(self, ev: FundingEvent, mark: float, first_mark: float | None = None) -> None:
        if self.venue_records:
            # live: the venue's FUNDING_FEE income record is booked (poll_funding), never our estimate
            self.reconcile_due.set()
            return
        take_b = getattr(self.raw_adapter, "take_second_settled", None)  # a perp pair: B's own series (routed_pair)
        for eb in take_b() if callable(take_b) else (ev,):
            before = roll_watch.perpetual_funding(self.driver.ctx)
            qty = roll_watch.perpetual_qty(self.driver.ctx)  # a leg on a dated future pays no funding
            async with self.lock:
                ctx = await self.driver.feed(FundingSettled(eb.ts, eb.rate, mark, interval_hours=eb.interval_hours))
            amount = roll_watch.perpetual_funding(ctx) - before
            if abs(qty) > QTY_EPS:
                self.journal.funding(self.hedge_id, self.spec.leg_venues[1], self.spec.perp_symbol, eb.ts, amount,
                                     eb.rate, qty, mark, expected=amount)  # paper: the venue settles by one formula
        take = getattr(self.raw_adapter, "take_first_settled", None)
        for fa in take() if callable(take) else ():  # two perp legs: the first venue's own settlements
            before, qty = self.driver.ctx.spot.funding, self.driver.ctx.spot.qty
            async with self.lock:
                ctx = await self.driver.feed(FundingSettled(fa.ts, fa.rate, mark if first_mark is None else first_mark,
                                                            interval_hours=fa.interval_hours, leg="spot"))
            if abs(qty) > QTY_EPS:
                amount = ctx.spot.funding - before
                self.journal.funding(self.hedge_id, self.spec.leg_venues[0], self.spec.perp_symbol, fa.ts, amount,
                                     fa.rate, qty, mark if first_mark is None else first_mark, expected=amount)

    async def run(self) -> None:
        """Consume the feed until it ends, the hedge completes or the task is cancelled."""
        self.status = "running"
        self.feed = self.feed_factory(self)
        if self.inputs_loader is not None and self.inputs is None:
            # replay: the analytics of the whole window are computed in a worker thread; the hedge
            # says "preparing" meanwhile and the loop (heartbeats, API) stays free
            self.phase = "preparing"
            self.inputs = await self.inputs_loader()
        self.phase = "running"
        if self.venue_records and self._records_task is None:
            self._records_task = asyncio.create_task(self._records_loop(), name=f"records-{self.hedge_id}")
        pair_bars = self.spec.perp_pair and self.spec.feed == "bars"  # each venue's own bars (exchange.pair_feed)
        mb = MarketBuilder(self.spec.spot_symbol, self.spec.perp_symbol, self.spec.timeframe,
                           first_venue=self.spec.leg_venues[0] if pair_bars else None)
        paper = hasattr(self.raw_adapter, "apply")
        n = 0
        try:
            async for ev in self.feed:
                n += 1
                if self._replay_t0 is None:
                    self._replay_t0 = (time.monotonic(), self.clock_now())
                if n % 64 == 0:
                    await asyncio.sleep(0)  # an as-fast-as-possible replay must not starve other hedges/the API
                if self.driver.ctx.state is State.COMPLETED:
                    break
                if isinstance(ev, Bar):
                    if mb.dirty and mb.instant is not None and mb.known(ev) > mb.instant:
                        mu = mb.take(self.inputs)  # the previous instant is complete: act on it first
                        if mu is not None:
                            await self._market(mu)
                    if paper:
                        await self.raw_adapter.apply(ev)
                    mb.add_bar(ev)
                    if getattr(self.feed, "batch_left", None) == 0:
                        # a live feed's batch ends here and no later bar of this instant can come (a live feed
                        # drops it; a late settlement of it may, handled below after these bars, as in the replay):
                        # act at the bar's close, not when the next bar arrives an interval later
                        mu = mb.take(self.inputs)
                        if mu is not None:
                            await self._market(mu)
                elif isinstance(ev, FundingEvent):
                    mu = mb.take(self.inputs)
                    if mu is not None:
                        await self._market(mu)
                    if paper:
                        await self.raw_adapter.apply(ev)
                    mark = mb.mark if mb.mark > 0 else mb.perp
                    first_mark = None
                    if pair_bars:  # the first leg settles at its own venue's mark and keeps its own rate
                        first_mark = mb.spot_mark if mb.spot_mark > 0 else mb.spot
                        if ev.venue == self.spec.leg_venues[0] and not paper:  # live: the feed's settlement
                            self.raw_adapter.first_last_rate = ev.rate
                            self.raw_adapter.first_interval_hours = ev.interval_hours
                    await self._funding(ev, mark, first_mark)
                    mb.settle(ev)
                elif isinstance(ev, Tick):
                    await self._market(ev.market_update())  # the venue's last settled rate (TickerFeed)
                if self.driver.ctx.state is State.COMPLETED:
                    break
            else:
                mu = mb.take(self.inputs)
                if mu is not None:
                    await self._market(mu)
            self.status = "stopped" if self.driver.ctx.state is State.COMPLETED else "feed_ended"
        except asyncio.CancelledError:
            self.status = "stopped"
            raise
        except Exception as exc:  # a broken hedge must not take the runner down: stop it, say why
            self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
            log_event(log, "hedge task failed", level=logging.ERROR, hedge_id=self.hedge_id, state=self._state(),
                      error=self.error)
        finally:
            self.phase = "done"
            self._replay_t1 = time.monotonic()
            if self._records_task is not None:
                self._records_task.cancel()
                self._records_task = None
            if self.feed is not None:
                await self.feed.aclose()
            await best_entry_live.close_candidates(self)  # the other perp venues' adapters (live best execution)
            if paper and hasattr(self.raw_adapter, "save") and getattr(self.raw_adapter, "state_path", None):
                self.raw_adapter.save()
            if self.driver is not None and self.driver.ctx.state is State.COMPLETED and self.armed_symbol is None:
                await self.close_clients()  # finished; an armed countdown first: the supervisor's next beat
