"""One running hedge: its spec, its journaling adapter, its feed loop and its recovery.

A :class:`HedgeTask` owns one :class:`~hedge_core.engine.driver.HedgeDriver`, one exchange
adapter (paper, live or recommend) wrapped in :class:`JournalingAdapter`, and one feed. Every
call into the driver holds the task's lock, so market events, heartbeats and operator commands
are stepped one at a time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from hedge_core.engine.actions import Alert, GuardFired, PlaceOrder, RecordTransition
from hedge_core.engine.context import HedgeContext, new_hedge
from hedge_core.engine.driver import DriverHooks, HedgeDriver, record_trade_id
from hedge_core.engine.events import (
    Command,
    FillEvent,
    FundingSettled,
    MarketUpdate,
    OperatorCommand,
    Timer,
)
from hedge_core.engine.ledger import QTY_EPS
from hedge_core.engine.states import State
from hedge_core.errors import DuplicateOrder, ExchangeError, RequestTimeout, TemporaryError
from hedge_core.exchange.costs import cost_mismatch, of_adapter, resolve_costs
from hedge_core.exchange.routed import RoutedAdapter
from hedge_core.runner.clock import replay_progress, venue_now
from hedge_core.runner.condition import AlertMessage, Conditions, Level
from hedge_core.runner.freshness import check_fill_slippage, fresh_enough
from hedge_core.runner.held import held_sentence
from hedge_core.runner.journal import Journal, wall_now
from hedge_core.runner.killpoints import kill_point
from hedge_core.runner.logs import log_event
from hedge_core.runner.market import MarketBuilder, Tick
from hedge_core.runner.reconcile import (
    rebuild_context,
    reconcile_orders,
    recovery_state,
)
from hedge_core.runner.reconcile_venues import reconcile_per_venue
from hedge_core.runner.records import compare, journal_figures, new_funding, venue_figures
from hedge_core.types import Bar, FundingEvent, Instrument, Order

if TYPE_CHECKING:
    from hedge_core.params.models import StrategyParamsBase

__all__ = ["HedgeSpec", "HedgeTask", "JournalingAdapter"]

log = logging.getLogger("hedge_core.runner.hedge")

#: Fills and funding are reconciled over this trailing window (Binance's trade and income queries
#: answer at most 7 days from their startTime).
RECONCILE_WINDOW = pd.Timedelta(days=6)
#: Seconds after a funding time before its income record is read.
FUNDING_SETTLE_LAG_S = 5.0
#: Seconds before a difference found by reconciliation is read again (confirmed) and counts.
RECONFIRM_S = 0.2


class HedgeSpec(BaseModel):
    """How to run one hedge (stored in ``hedge_runs.info``; never holds a secret).

    ``recovery``: after a crash/restart, ``resume`` the hedge from the journal or ``flatten`` it.
    ``on_shutdown``: on SIGTERM / ``runner stop``, ``keep`` the positions (paused for new
    entries; resumed on the next start) or ``flatten`` them before exiting.
    ``feed``: ``replay`` (store data at ``speed`` x real time: the hedge runs on the replay
    clock), ``ticker`` (poll the venue's tickers every ``poll_s``; live default) or ``bars``
    (closed bars from the venue: websockets where offered, REST polling otherwise). A paper
    request without a feed gets ``bars`` when the venue answers and ``replay`` when offline or
    asked for (see :func:`hedge_core.runner.clock.resolve_paper_feed`).
    ``reconcile_s`` (0 < s <= 3600, default 60), ``records_poll_s`` (0 < s <= 3600, default 30),
    ``on_mismatch`` (``hold`` | ``rehedge`` | ``flatten``, default ``hold``): live hedges only —
    the continuous reconciliation with the venue's records and its policy (docs/live-records.md).
    """

    model_config = ConfigDict(extra="forbid")

    hedge_id: str
    params_name: str | None = None
    params_version: int | None = None
    params_inline: dict[str, Any] | None = None
    mode: Literal["paper", "live", "recommend"] = "paper"
    venue: str = "binance"
    # legs on two venues (paper only so far, docs/cross-venue.md): the perp leg's venue; None = ``venue``.
    # ``balances['spot']`` funds the spot wallet on ``venue``, ``balances['perp']`` the futures wallet on it.
    perp_venue: str | None = None
    spot_symbol: str = "BTC/USDT"
    perp_symbol: str = "BTC/USDT:USDT"
    feed: Literal["replay", "ticker", "bars"] = "replay"
    data_venue: str | None = None
    timeframe: str = "1h"
    start: str | None = None
    end: str | None = None
    speed: float | None = Field(3600.0, gt=0)
    poll_s: float = Field(1.0, gt=0, le=3600)
    recovery: Literal["resume", "flatten"] = "resume"
    on_shutdown: Literal["keep", "flatten"] = "keep"
    balances: dict[str, dict[str, float]] = Field(
        default_factory=lambda: {"spot": {"USDT": 100_000.0}, "perp": {"USDT": 100_000.0}})
    notional: float | None = Field(None, gt=0, le=1e9)  # size override of the set's notional (quote)
    paper_participation: float | None = Field(None, gt=0, le=1)
    paper_save_every_event: bool = True
    created_from: str = "api"
    # live: how often journal and venue are compared (s), how often the venue's funding income is read
    # (s), and what a mismatch does: hold (no new orders until an operator resumes), rehedge (book the
    # venue's missing fills, the engine re-hedges the difference) or flatten. See docs/live-records.md.
    reconcile_s: float = Field(60.0, gt=0, le=3600)
    records_poll_s: float = Field(30.0, gt=0, le=3600)
    on_mismatch: Literal["hold", "rehedge", "flatten"] = "hold"
    # fresh prices and slippage (runner.freshness): ages against the venue's own timestamps
    max_ticker_age_s: float = 10.0  # seconds, in (0, 3600]
    max_bar_age_bars: float = 2.0  # bar lengths after the bar's close, in (0, 100]
    max_slippage_bps: float | None = 50.0  # alert above this distance from the decision price, (0, 10000]; None = off
    # risk second opinion (hedge_core.advice, docs/risk-advisor.md): may its "act" opinions pause or flatten
    # this hedge (through the engine's own commands and guards)? False = it only advises and alerts.
    advisor_may_act: bool = False

    @model_validator(mode="after")
    def _perp_venue(self) -> HedgeSpec:
        if self.perp_venue is not None and self.perp_venue != self.venue and self.mode != "paper":
            raise ValueError(f"perp_venue={self.perp_venue!r} with mode={self.mode!r}: legs on two venues run in "
                             "paper mode only so far (docs/cross-venue.md)")
        return self

    @property
    def leg_venues(self) -> tuple[str, str]:
        """(spot leg venue, perp leg venue)."""
        return self.venue, self.perp_venue or self.venue

    @field_validator("max_ticker_age_s", "max_bar_age_bars", "max_slippage_bps")
    @classmethod
    def _freshness_range(cls, v: float | None, info: ValidationInfo) -> float | None:
        hi = {"max_ticker_age_s": (3600.0, "seconds"), "max_bar_age_bars": (100.0, "bars"),
              "max_slippage_bps": (10_000.0, "basis points")}[info.field_name]
        if v is None and info.field_name == "max_slippage_bps":
            return v
        if v is None or not (math.isfinite(v) and 0 < v <= hi[0]):
            raise ValueError(f"{info.field_name}={v!r}: expected a number in (0, {hi[0]:g}] {hi[1]}")
        return float(v)


class JournalingAdapter:
    """Wrap an adapter: journal every order answer, and offer the ``order_sent`` kill point."""

    def __init__(self, inner: Any, task: HedgeTask) -> None:
        self.inner = inner
        self.task = task
        self.venue = inner.venue
        self.mode = inner.mode

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _answer(self, o: Order) -> Order:
        self.task.journal.order_answer(self.task.hedge_id, o)
        return o

    async def create_order(self, request: Any) -> Order:
        try:
            o = await self.inner.create_order(request)
        except (DuplicateOrder, RequestTimeout, TemporaryError):
            self.task.reconcile_due.set()  # unknown outcome: compare with the venue once it is resolved
            raise
        except ExchangeError as exc:  # the venue refused it: no order exists
            self.task.journal.rejected(self.task.hedge_id, request.client_order_id, f"{type(exc).__name__}: {exc}")
            raise
        leg, purpose = self.task.purposes.get(request.client_order_id, ("", ""))
        kill_point("order_sent", leg, purpose)
        return self._answer(o)

    async def fetch_order(self, symbol: str, **kw: Any) -> Order:
        return self._answer(await self.inner.fetch_order(symbol, **kw))

    async def cancel_order(self, symbol: str, **kw: Any) -> Order:
        return self._answer(await self.inner.cancel_order(symbol, **kw))


class HedgeTask:
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
        self._records_task: asyncio.Task[Any] | None = None
        self.advice: Any = None  # latest hedge_core.advice.Opinion (runner.advisor_watch), None before the first

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

    # ---- setup --------------------------------------------------------------------------------
    async def _instruments(self) -> tuple[Instrument, Instrument]:
        markets = await self.raw_adapter.load_markets()
        try:
            spot, perp = markets[self.spec.spot_symbol], markets[self.spec.perp_symbol]
        except KeyError as exc:
            from hedge_core.errors import InvalidInput

            raise InvalidInput("symbol", str(exc), f"a market of {self.spec.venue}: {sorted(markets)}") from None
        self._resolve_costs()
        return spot, await self._venue_brackets(perp)

    def _resolve_costs(self) -> None:
        """Price the entry filter with the venue's own fees (``exchange.costs``): the paper config's,
        or the ccxt markets' taker fees; logs a warning naming both figures when the parameters differ."""
        venue = of_adapter(self.raw_adapter, self.spec.spot_symbol, self.spec.perp_symbol)
        msg = cost_mismatch(self.params, venue)
        if msg is not None:
            log.warning("hedge %s: %s", self.hedge_id, msg)
        self.params = resolve_costs(self.params, venue, warn=False)

    async def _venue_brackets(self, perp: Instrument) -> Instrument:
        """The perp instrument with the venue's maintenance brackets on it (the adapter's optional
        ``fetch_brackets``): this hedge's leverage rule and liquidation guard use the venue's table,
        and no other hedge in the process sees it. A failure keeps the instrument's own table (or the
        committed default) and says so."""
        fetch = getattr(self.raw_adapter, "fetch_brackets", None)
        if fetch is None or not getattr(self.raw_adapter, "offers_brackets", False):
            return perp
        try:
            table = tuple(await fetch(self.spec.perp_symbol))
            if not table:
                raise ValueError("empty bracket table")
        except Exception as exc:  # noqa: BLE001 - the defaults still work; an operator should know
            log_event(log, "venue brackets not loaded: built-in defaults in use", level=logging.WARNING,
                      hedge_id=self.hedge_id, symbol=self.spec.perp_symbol, error=f"{type(exc).__name__}: {exc}")
            return perp
        log_event(log, "venue brackets loaded", hedge_id=self.hedge_id, symbol=self.spec.perp_symbol,
                  brackets=len(table), first_max_leverage=table[0].max_leverage, first_mmr=table[0].mmr)
        from dataclasses import replace

        return replace(perp, brackets=table)

    def _hooks(self) -> DriverHooks:
        return DriverHooks(on_intent=self._on_intent, on_fill=self._on_fill, on_transition=self._on_transition,
                           on_guard=self._on_guard, on_alert=self._on_alert)

    def _run_row(self, state: str, ended: bool = False) -> dict[str, Any]:
        s = self.spec
        return {"hedge_id": s.hedge_id, "mode": s.mode, "strategy": str(self.params.strategy),
                "params_name": s.params_name, "params_version": s.params_version, "spot_venue": s.venue,
                "spot_symbol": s.spot_symbol, "perp_venue": s.leg_venues[1], "perp_symbol": s.perp_symbol, "state": state,
                "started_at": self.started_at, "ended_at": wall_now() if ended else None,
                "synthetic": (s.data_venue or "") == "demo", "info": s.model_dump(mode="json")}

    async def start_new(self, ts: pd.Timestamp) -> None:
        spot, perp = await self._instruments()
        ctx = new_hedge(self.hedge_id, str(self.params.strategy), spot, perp, ts)
        self.driver = HedgeDriver(ctx, self.params, {v: self.adapter for v in self.spec.leg_venues}, hooks=self._hooks())
        self.journal.run(self._run_row(str(ctx.state)))
        self.journal.transition(self.hedge_id, {"ts": ts, "from_state": None, "to_state": str(ctx.state),
                                                "trigger_name": "START", "reason": f"started ({self.spec.mode})"})

    async def recover(self, last_state: str, started_at: Any) -> dict[str, Any]:
        """Reconcile with the venue and rebuild the driver by the recovery policy."""
        if started_at is not None and not pd.isna(started_at):
            self.started_at = pd.Timestamp(started_at)
        spot, perp = await self._instruments()
        self.journal.load(self.hedge_id)
        per_venue = None
        if isinstance(self.raw_adapter, RoutedAdapter):  # legs on two venues: each looked up at its venue
            rep, per_venue = await reconcile_per_venue(self.hedge_id, self.journal, self.raw_adapter,
                                                       spot_symbol=spot.symbol, perp_symbol=perp.symbol)
        else:
            rep = await reconcile_orders(self.hedge_id, self.journal, self.raw_adapter)
        fills = self.journal.fills(self.hedge_id)
        self.journal.flush()
        funding = self.journal.store.read_table("funding_payments", hedge_id=self.hedge_id)
        prices: dict[str, float] = {}
        for leg, sym in (("spot", spot.symbol), ("perp", perp.symbol)):
            try:
                t = await self.raw_adapter.fetch_ticker(sym)
                prices[leg] = float(t.last or t.mid)
            except ExchangeError:
                prices[leg] = math.nan
        try:
            rep.venue_positions = {p.symbol: p.qty for p in await self.raw_adapter.fetch_positions([perp.symbol])}
        except ExchangeError:
            pass
        if self.clock == "live" and self.market_data is None and not hasattr(self.raw_adapter, "fetch_bars") \
                and self.spec.mode == "paper":
            await self._attach_market_data()  # paper on live data: the venue's clock before the first row
        ts = self._clock_now()
        ctx0 = new_hedge(self.hedge_id, str(self.params.strategy), spot, perp, ts)
        flat_probe = rebuild_context(ctx0, fills, funding, [], State.MONITORING_POSITIONS, prices, ts)
        state = recovery_state(last_state, self.spec.recovery, flat_probe.is_flat)
        rows = self.journal.orders(self.hedge_id)
        coids = [r["client_order_id"] for r in rows]
        refs = {r["client_order_id"]: float(r["ref_price"]) for r in rows if r.get("ref_price") is not None}
        ctx = rebuild_context(ctx0, fills, funding, coids, state, prices, ts, refs=refs)
        self.driver = HedgeDriver(ctx, self.params, {v: self.adapter for v in self.spec.leg_venues}, hooks=self._hooks())
        self._funding_booked = {pd.Timestamp(t) for t in funding["ts"]} if len(funding) else set()
        report = rep.as_dict()
        if per_venue is not None:
            report["venues"] = {v: r.as_dict() for v, r in per_venue.items()}
        self.journal.transition(self.hedge_id, {"ts": ts, "from_state": last_state, "to_state": str(state),
                                                "trigger_name": "RECOVERY",
                                                "reason": f"restart, policy {self.spec.recovery} (on mismatch: "
                                                          f"{self.spec.on_mismatch}): {report}"})
        self.journal.run(self._run_row(str(state), ended=state is State.COMPLETED))
        log_event(log, "hedge recovered", hedge_id=self.hedge_id, state=str(state), last_state=last_state,
                  spot_qty=ctx.spot.qty, perp_qty=ctx.perp.qty, **rep.as_dict())
        if state is not State.COMPLETED:
            async with self.lock:  # act at once: close, or hedge a naked leg
                await self.driver.feed(Timer(ctx.last_ts, heartbeat=True))
        return report

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

    async def _attach_market_data(self) -> None:
        """Paper on live data after a restart: the venue's public market data (its clock offset is
        measured when its markets load); unreachable now: the wall clock until the feed connects."""
        try:
            self.market_data = self.sup._market_data(self.spec)
            await self.market_data.load_markets()
        except Exception as exc:  # noqa: BLE001 - the feed retries; the clock falls back to the wall clock
            log_event(log, "venue market data not loaded at recovery", level=logging.WARNING, hedge_id=self.hedge_id,
                      error=f"{type(exc).__name__}: {exc}")

    def _clock_now(self) -> pd.Timestamp:
        return self.clock_now()

    def replay_state(self) -> dict[str, Any] | None:
        """Replay progress for the summary: replay clock, fraction of the window done, ETA (wall s)."""
        if self.clock != "replay" or self.replay_window is None:
            return None
        start, end = self.replay_window
        began = self._replay_t0[1] if self._replay_t0 else None
        t1 = self._replay_t1 if self._replay_t1 is not None else time.monotonic()
        elapsed = t1 - self._replay_t0[0] if self._replay_t0 else 0.0
        now = self.driver.ctx.last_ts if (self.driver is not None and self._replay_t0) else None
        if now is not None and now < start:
            now = None
        p = replay_progress(start, end, now, elapsed, began=began)
        out = {**p.as_dict(), "speed": self.spec.speed, "phase": self.phase}
        if self.phase == "done":
            out["eta_s"] = None  # stopped (window done, hedge completed or failed): nothing left to wait for
        return out

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

    def _snapshot(self, ts: pd.Timestamp, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_snapshot < self.sup.position_snapshot_s:
            return
        self._last_snapshot = now
        c = self.driver.ctx if self.driver else None
        if c is None:
            return
        rows = [{"venue": lg.venue, "symbol": lg.symbol, "qty": lg.qty, "entry_price": lg.avg_entry,
                 "mark_price": None if math.isnan(px) else px, "unrealized_pnl": lg.unrealized, "liquidation_price": None,
                 "leverage": c.leverage if lg.name == "perp" else 1.0}
                for lg, px in ((c.spot, c.spot_price), (c.perp, c.mark_price))]
        self.journal.positions(self.hedge_id, ts, rows)

    # ---- running ------------------------------------------------------------------------------
    async def step(self, event: Any) -> HedgeContext:
        async with self.lock:
            return await self.driver.feed(event)

    async def command(self, cmd: Command, reason: str = "") -> HedgeContext:
        ctx = await self.step(OperatorCommand(self.driver.ctx.last_ts, cmd, reason))
        if ctx.state is State.COMPLETED:
            self.status = "stopped"
        return ctx

    async def _market(self, mu: MarketUpdate) -> None:
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
        async with self.lock:
            await self.driver.feed(mu)
        dt = time.perf_counter() - t0
        self.updates += 1
        if self.keep_latencies and monitoring:  # the monitoring cycle: exits, drift, guards, rebalance
            self.latencies.append(dt)
        self._snapshot(self.driver.ctx.last_ts)  # the hedge's clock (a bar's close may lie before it)

    async def _dead_mans_switch(self, ts: pd.Timestamp) -> None:
        self.dms_fired = True
        age = self.sup.heartbeat_age()
        from types import MappingProxyType

        g = GuardFired("dead_mans_switch", "flatten", MappingProxyType({"silent_s": age, "limit_s": self.sup.dms_timeout_s}), ts)
        self._on_guard(self.hedge_id, g)
        async with self.lock:
            await self.driver.feed(OperatorCommand(ts, Command.FLATTEN, f"dead man's switch: supervisor silent {age:.1f} s"))

    async def _funding(self, ev: FundingEvent, mark: float) -> None:
        if self.venue_records:
            # live: the venue's FUNDING_FEE income record is booked (poll_funding), never our estimate
            self.reconcile_due.set()
            return
        before = self.driver.ctx.perp.funding
        qty = self.driver.ctx.perp.qty
        async with self.lock:
            ctx = await self.driver.feed(FundingSettled(ev.ts, ev.rate, mark, interval_hours=ev.interval_hours))
        amount = ctx.perp.funding - before
        if abs(qty) > QTY_EPS:
            self.journal.funding(self.hedge_id, self.spec.leg_venues[1], self.spec.perp_symbol, ev.ts, amount, ev.rate, qty,
                                 mark, expected=amount)  # paper: the venue settles by the same formula

    # ---- the venue's records (live): funding income and the continuous reconciliation ----------
    @property
    def venue_records(self) -> bool:
        """Live hedges book funding from the venue's income records and reconcile continuously."""
        return self.spec.mode == "live"

    async def poll_funding(self) -> int:
        """Book the venue's funding payments not booked yet (FundingSettled with the venue's amount;
        journaled first, with the engine's ``-qty x mark x rate`` as ``expected``). Returns how many."""
        since = pd.Timestamp(self.started_at)
        pays = await self.raw_adapter.fetch_funding_payments(self.spec.perp_symbol, since)
        n = 0
        for fp, rate, mark, expected in new_funding(pays, self._funding_booked, since, self.driver.ctx):
            qty = self.driver.ctx.perp.qty
            self.journal.funding(self.hedge_id, self.spec.leg_venues[1], self.spec.perp_symbol, fp.ts, fp.amount, rate, qty,
                                 mark, expected=expected)
            self._funding_booked.add(pd.Timestamp(fp.ts))
            async with self.lock:
                await self.driver.feed(FundingSettled(fp.ts, rate, mark, amount=fp.amount,
                                                      interval_hours=self.driver.ctx.funding_interval_hours))
            log_event(log, "funding booked from the venue's income", hedge_id=self.hedge_id, amount=fp.amount,
                      expected=expected, rate=rate, mark=mark, position_qty=qty)
            n += 1
        return n

    async def reconcile_now(self) -> list[str] | None:
        """Compare journal and venue (see ``runner.records``); on a difference mark the hedge
        DEGRADED ("reconcile"), alert, and follow ``spec.on_mismatch``; a clean pass clears the mark.
        None when skipped (orders in flight, or the hedge completed).

        The venue's figures are read one request after another, so a trade of the venue's own (an
        ADL, a funding settlement) landing between two reads looks like a difference: a difference
        is confirmed by a second full read (the venue's trades and funding booked first) before it counts.
        """
        for attempt in range(2):
            got = await self._compare_once()
            if got is None:
                return None
            venue, fills, diffs = got
            if not diffs:
                break
            if attempt == 0:
                await asyncio.sleep(RECONFIRM_S)
                await self.poll_funding()  # a settlement between the funding read and the comparison
        self.last_reconcile = {"ts": str(self.clock_now()), "differences": [str(d) for d in diffs],
                               "policy": self.spec.on_mismatch}
        if not diffs:
            self.undegrade("reconcile")
            return []
        text = "; ".join(map(str, diffs))
        self.degrade("reconcile", f"journal and venue differ (policy {self.spec.on_mismatch}): {text}", level="error")
        await self._on_mismatch(venue, fills)
        return [str(d) for d in diffs]

    async def _compare_once(self) -> tuple[Any, pd.DataFrame, list[Any]] | None:
        """One read of both sides under the hedge's lock: (venue figures, journal fills, differences)."""
        async with self.lock:
            ctx = await self.driver.book_external(self.clock_now())  # the venue's own trades (ADL) first
            if ctx.pending or ctx.state is State.COMPLETED:
                return None
            # fills and funding over a trailing window both sides agree on (Binance answers trade and
            # income queries for at most 7 days from startTime); positions and balances are "now"
            since = max(pd.Timestamp(self.started_at), wall_now() - RECONCILE_WINDOW)
            fills = self.journal.fills(self.hedge_id)
            funding = self.journal.store.read_table("funding_payments", hedge_id=self.hedge_id)
            if len(fills):
                fills = fills[pd.to_datetime(fills["ts"], utc=True) >= since]
            if len(funding):
                funding = funding[pd.to_datetime(funding["ts"], utc=True) >= since]
            ids = {str(r["order_id"]) for r in self.journal.orders(self.hedge_id) if r.get("order_id")}
            ids |= set(fills["order_id"].astype(str)) if len(fills) else set()
            venue = await venue_figures(self.raw_adapter, ctx, ids, since)
            diffs = compare(journal_figures(ctx, fills, funding, venue.open_orders), venue,
                            spot_lot=ctx.spot.lot_size, perp_lot=ctx.perp.lot_size)
        return venue, fills, diffs

    async def _on_mismatch(self, venue: Any, fills: pd.DataFrame) -> None:
        policy, state = self.spec.on_mismatch, self.driver.ctx.state
        if policy == "hold":
            if state in (State.ANALYZING_MARKET, State.MONITORING_POSITIONS, State.REBALANCING):
                await self.step(OperatorCommand(self.driver.ctx.last_ts, Command.PAUSE,
                                                "reconcile mismatch, policy hold: resume after checking the venue"))
        elif policy == "flatten":
            if state not in (State.CLOSING_POSITIONS, State.COMPLETED):
                await self.step(OperatorCommand(self.driver.ctx.last_ts, Command.FLATTEN,
                                                "reconcile mismatch, policy flatten"))
        else:  # rehedge: book the venue's fills the journal lacks; the engine re-hedges from the book
            have = set(fills["trade_id"].astype(str)) if len(fills) else set()
            coid_of = {str(r["order_id"]): r["client_order_id"] for r in self.journal.orders(self.hedge_id)
                       if r.get("order_id")}
            for leg, f in venue.trades:
                tid = record_trade_id(f)
                if tid in have:
                    continue
                ev = FillEvent(replace(f, trade_id=tid, client_order_id=coid_of.get(f.order_id, f.client_order_id)),
                               leg, external=f.order_id not in coid_of)
                await self.step(ev)

    async def _records_loop(self) -> None:
        """Live: read the venue's funding income every ``records_poll_s`` and reconcile every
        ``reconcile_s`` (sooner after an unknown order outcome or a funding time)."""
        next_fund = next_rec = time.monotonic() + min(self.spec.records_poll_s, self.spec.reconcile_s)
        while True:
            # and a few seconds after each funding time (00/08/16 UTC on Binance): the income row is there
            hours = self.driver.ctx.funding_interval_hours if self.driver else 8.0
            period = pd.Timedelta(hours=hours if hours > 0 else 8.0)
            now_wall = wall_now()
            settle = (now_wall.floor(period) + period + pd.Timedelta(seconds=FUNDING_SETTLE_LAG_S) - now_wall)
            next_fund = min(next_fund, time.monotonic() + settle.total_seconds())
            wait = max(min(next_fund, next_rec) - time.monotonic(), 0.0)
            try:
                await asyncio.wait_for(self.reconcile_due.wait(), timeout=wait)
                due = True
            except asyncio.TimeoutError:
                due = False
            self.reconcile_due.clear()
            now = time.monotonic()
            try:
                if due or now >= next_fund or now >= next_rec:
                    await self.poll_funding()
                    next_fund = now + self.spec.records_poll_s
                if due or now >= next_rec:
                    done = await self.reconcile_now()
                    next_rec = now + (self.spec.reconcile_s if done is not None else min(2.0, self.spec.reconcile_s))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the venue unreadable now: log, try on the next round
                log_event(log, "venue records not read", level=logging.WARNING, hedge_id=self.hedge_id,
                          error=f"{type(exc).__name__}: {exc}")
                next_fund = next_rec = now + min(self.spec.records_poll_s, self.spec.reconcile_s)

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
        mb = MarketBuilder(self.spec.spot_symbol, self.spec.perp_symbol, self.spec.timeframe)
        paper = hasattr(self.raw_adapter, "apply")
        last_rate = 0.0
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
                elif isinstance(ev, FundingEvent):
                    mu = mb.take(self.inputs)
                    if mu is not None:
                        await self._market(mu)
                    if paper:
                        await self.raw_adapter.apply(ev)
                    mark = mb.mark if mb.mark > 0 else mb.perp
                    await self._funding(ev, mark)
                    mb.settle(ev)
                elif isinstance(ev, Tick):
                    await self._market(ev.market_update(last_rate))
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
            if paper and hasattr(self.raw_adapter, "save") and getattr(self.raw_adapter, "state_path", None):
                self.raw_adapter.save()

    def summary(self) -> dict[str, Any]:
        c = self.driver.ctx if self.driver else None
        out = {"hedge_id": self.hedge_id, "status": self.status, "mode": self.spec.mode,
               "params": f"{self.spec.params_name}@{self.spec.params_version}" if self.spec.params_name else "inline",
               "strategy": str(self.params.strategy), "spot_symbol": self.spec.spot_symbol,
               "perp_symbol": self.spec.perp_symbol, "updates": self.updates, "error": self.error,
               "degraded": self.conditions.as_dict(), "reconcile": self.last_reconcile,
               "clock": self.clock, "feed": self.spec.feed, "feed_reason": self.feed_reason,
               "clock_now": str(self.clock_now()), "phase": self.phase,
               "advice": self.advice.model_dump() if self.advice is not None else None}
        rs = self.replay_state()
        if rs is not None:
            out["replay"] = rs
        recs = getattr(self.raw_adapter, "recommendations", None)
        if recs is not None:  # recommend mode: what would have been sent
            out["recommendations"] = [{"ts": str(r.ts), "method": r.method, "request": r.request, "note": r.note}
                                      for r in recs[-20:]]
        if c is not None:
            out.update({"state": str(c.state), "spot_qty": c.spot.qty, "perp_qty": c.perp.qty,
                        "hedge_ratio": None if math.isnan(c.hedge_ratio) else c.hedge_ratio, "pnl": c.pnl,
                        "funding": c.perp.funding, "last_ts": str(c.last_ts), "pending_orders": len(c.pending),
                        "kill_latched": c.kill_latched})
            out.update(self._panel_fields(c))
        return out

    def _panel_fields(self, c: HedgeContext) -> dict[str, Any]:
        """Extra read-only figures for the panel: delta, drift, PnL split, prices, risk and loan."""

        def num(x: Any) -> float | None:
            return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

        out: dict[str, Any] = {
            "delta": num(c.delta), "target_ratio": num(c.target_ratio), "drift": num(c.drift),
            "price_pnl": num(c.spot.realized + c.spot.unrealized + c.perp.realized + c.perp.unrealized),
            "fees": num(c.spot.fees + c.perp.fees), "interest": num(c.spot.interest + c.perp.interest),
            "spot_price": num(c.spot_price), "perp_price": num(c.perp_price), "mark_price": num(c.mark_price),
            "spot_entry": num(c.spot.avg_entry), "perp_entry": num(c.perp.avg_entry), "leverage": num(c.leverage),
            "funding_rate": num(c.last_funding_rate), "day_pnl": num(c.pnl - c.day_start_pnl),
            "daily_loss_limit": num(getattr(self.params.guards, "daily_loss_limit", None)),
            "liq_distance_reduce": num(self.params.guards.liq_distance_reduce),
            "liq_distance_close": num(self.params.guards.liq_distance_close),
            "entered_at": None if c.entered_at is None else str(c.entered_at), "exit_reason": c.exit_reason,
            "active_guards": sorted(c.active_guards), "alerts": self.alerts[-10:], "venue": self.spec.venue,
            "started_at": str(self.started_at), "held": held_sentence(c, self.params),
            "stale_updates": getattr(self, "stale_updates", 0)}
        try:
            from hedge_core.analytics.risk import liquidation_distance
            from hedge_core.engine.guards import perp_liquidation_price

            lp = perp_liquidation_price(c)
            out["liq_price"] = num(lp)
            out["liq_distance"] = num(liquidation_distance(c.perp.qty, c.mark_price, lp)) \
                if abs(c.perp.qty) > QTY_EPS and c.mark_price == c.mark_price else None
        except Exception:  # noqa: BLE001 - a display figure must never break the summary
            out["liq_price"] = out["liq_distance"] = None
        book = c.loan  # a loan book's typed loan state (engine.loan_state)
        if book is not None:
            loan = book.loan
            from hedge_core import ltv as ltvmod
            from hedge_core.engine.strategies.voltier import ltv_params

            lp_ = ltv_params(self.params)
            value = ltvmod.ltv(loan.outstanding, c.spot.qty, c.spot_price) \
                if c.spot.qty > 0 and c.spot_price > 0 else None
            out["loan"] = {"outstanding": num(loan.outstanding), "accrued_interest": num(loan.accrued_interest),
                           "collateral_qty": num(c.spot.qty), "ltv": num(value),
                           "band": ltvmod.ltv_band(value, lp_) if value is not None else None,
                           "bands": {"monitor": lp_.monitor, "warning": lp_.warning, "critical": lp_.critical,
                                     "emergency": lp_.emergency},
                           "reserve_left": num(book.reserve_left), "reserve_deployed": num(book.reserve_deployed)}
        return out
