"""The supervisor: many hedges in one asyncio process, heartbeats, dead man's switch, snapshots.

One :class:`Supervisor` per runner process. It holds the live database (the single writer),
starts/recovers :class:`~hedge_core.runner.hedge.HedgeTask` objects, beats a heartbeat, and
publishes read-only snapshots of the database for other processes (see ``readme_runner.md``).

Dead man's switch, in three layers:

1. every ``heartbeat_s`` the supervisor's heartbeat task stamps ``last_beat`` and sends each hedge
   a ``Timer(heartbeat=True)`` (also drives the engine's order-timeout queries and its own
   ``GuardParams.heartbeat_timeout_s`` guard);
2. every hedge checks the heartbeat's age before acting on a market update: older than
   ``dms_timeout_s`` -> a ``dead_mans_switch`` guard firing is journaled and the hedge is flattened
   (engine kill switch: latched, nothing new opens until an operator resumes);
3. a watchdog THREAD (independent of the event loop) logs a critical alert when the loop itself
   is blocked for longer than ``dms_timeout_s`` and puts it on the alert bus (``loop_blocked``: the
   out-of-process channels of :mod:`hedge_core.runner.notify` send from their own thread, so it
   leaves even while the loop is stuck). A blocked loop cannot send orders: where the venue
   offers it, an exchange-side cancel-all countdown (Binance futures ``countdownCancelAll``) is
   re-armed with every heartbeat through ``adapter.arm_cancel_all_after(symbol, seconds)`` when
   the adapter has that method (``CcxtLiveAdapter`` on Binance USD-M perps, one timer per symbol, and
   OKX, one timer for the whole account, re-armed at most every ``ACCOUNT_TIMER_REARM_S`` per venue; countdown
   ``2 x dms_timeout_s``; the paper and recommend adapters have none; legs on two venues: each venue's timer
   through its own adapter, the perp leg's venue (``RoutedAdapter``) or both perp venues of a pair,
   :mod:`hedge_core.runner.countdown`). A hedge whose perp leg moved to another venue at a flat entry has the
   timer on the venue left disarmed there and armed on the new one. Once a hedge has COMPLETED
   (both legs closed) the next beat disarms its countdowns (``seconds = 0``) unless another
   unfinished hedge is covered by one (same venue; same perp symbol or an account-wide timer), so the timer
   cannot cancel orders the operator places by hand afterwards. A hedge that failed or was interrupted keeps its
   last arm: the venue then cancels its orphaned orders when the countdown runs out.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pandas as pd

from hedge_core.params import store as param_store
from hedge_core.engine.events import Command, Timer
from hedge_core.engine.states import State
from hedge_core.errors import InvalidInput
from hedge_core.runner.ban_watch import BanWatch
from hedge_core.runner.condition import AlertBus, AlertMessage, Conditions
from hedge_core.runner.countdown import ACCOUNT_TIMER_REARM_S, Countdowns  # noqa: F401 - re-exported
from hedge_core.runner.hedge import HedgeSpec, HedgeTask
from hedge_core.runner.hedge_start import discard_clients
from hedge_core.runner.clock import venue_now
from hedge_core.runner.journal import Journal, wall_now
from hedge_core.runner.logs import log_event, register_secret

if TYPE_CHECKING:
    from hedge_core.params.models import StrategyParamsBase

__all__ = ["Supervisor"]

log = logging.getLogger("hedge_core.runner.supervisor")
ADAPTER_FACTORY_ENV = "HEDGE_RUNNER_ADAPTER_FACTORY"  # "module:function(spec) -> adapter" (tests: simulator)
STALL_ENV = "HEDGE_RUNNER_STALL_HEARTBEAT_AFTER"  # test hook: the heartbeat task stops after N s
PROBE_S = 5.0  # seconds the venue has to answer before a paper hedge falls back to a replay


def _save_paper(ex: Any, path: Any = None) -> Path | None:
    """Save a paper venue's state atomically (temp file + rename) WITHOUT fsync.

    The simulated venue must survive a SIGKILL of the runner (the page cache does: rename is
    atomic), not a power cut; skipping the fsync makes an order ~3 ms cheaper.
    """
    from hedge_core.exchange.paper import save_state

    target = Path(path) if path is not None else ex.state_path
    if target is None:
        return None
    return save_state(ex.core.state_dict(), target, fsync=False)


class Supervisor:
    """Run hedges. ``store`` is a held :class:`hedge_core.store.Store` (the live database)."""

    def __init__(self, store: Any, home: str | Path, *, params_root: str | Path | None = None,
                 snapshot_dir: str | Path | None = None, heartbeat_s: float = 1.0, dms_timeout_s: float = 10.0,
                 snapshot_s: float = 2.0, position_snapshot_s: float = 30.0, flush_s: float = 0.25,
                 fsync: bool = False) -> None:
        self.store = store
        self.journal = Journal(store, Path(home) / "journal", fsync=fsync)
        self.flush_s = flush_s
        self.home = Path(home)
        self.params_root = params_root
        self.snapshot_dir = Path(snapshot_dir) if snapshot_dir else None
        self.heartbeat_s = heartbeat_s
        self.dms_timeout_s = dms_timeout_s
        self.countdowns = Countdowns(self)  # the exchange-side cancel-all timers, venue by venue
        self.snapshot_s = snapshot_s
        self.position_snapshot_s = position_snapshot_s
        self.hedges: dict[str, HedgeTask] = {}
        self.last_beat = time.monotonic()
        self.loop_tick = time.monotonic()
        self.started = wall_now()
        self.stopping = False
        self.recovering = False  # recover_all is bringing hedges back: the book is a part (book.monitor)
        self.snapshots_taken = 0
        self._snap_writes = -1
        self._snap_taken: pd.Timestamp | None = None
        self._bg: list[asyncio.Task[Any]] = []
        self._watchdog: threading.Thread | None = None
        self._stall_after = float(os.environ.get(STALL_ENV, "0") or 0)
        self._inputs: dict[tuple[str, ...], Any] = {}
        self._series_cache: tuple[float, pd.DataFrame] | None = None
        self.alert_bus = AlertBus()  # every alert of every hedge and venue account; sinks subscribe
        self.venue_conditions: dict[str, Conditions] = {}  # venue account -> DEGRADED marks (bans, ...)
        # rate-limit bans of the venue accounts this process uses -> venue_conditions + alert_bus
        self.ban_watch = BanWatch(lambda v: self.venue_conditions.setdefault(v, Conditions()), self.alert_bus)
        from hedge_core.book.monitor import BookMonitor

        self.book = BookMonitor(self)  # the book of every hedge, and its guards (docs/book.md)

    # ---- health ----------------------------------------------------------------------------------
    def heartbeat_age(self) -> float:
        return time.monotonic() - self.last_beat

    def heartbeat_stale(self) -> bool:
        return self.heartbeat_age() > self.dms_timeout_s

    def health(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for h in self.hedges.values():
            st = h.summary().get("state", h.status)
            states[st] = states.get(st, 0) + 1
        snap = self.snapshot_dir / "latest.duckdb" if self.snapshot_dir else None
        degraded: dict[str, dict[str, str]] = {h.hedge_id: h.conditions.as_dict() for h in self.hedges.values()
                                               if h.conditions.degraded}
        degraded.update({f"venue:{v}": c.as_dict() for v, c in self.venue_conditions.items() if c.degraded})
        if self.book.conditions.degraded:
            degraded["book"] = self.book.conditions.as_dict()
        status = "stale" if self.heartbeat_stale() else ("degraded" if degraded else "ok")
        return {"ok": not self.heartbeat_stale(), "status": status, "degraded": degraded, "pid": os.getpid(), "heartbeat_age_s": self.heartbeat_age(),
                "loop_lag_s": max(time.monotonic() - self.loop_tick - 0.5, 0.0), "dms_timeout_s": self.dms_timeout_s,
                "hedges": len(self.hedges), "states": states, "started_at": str(self.started),
                "db": self.store.path, "snapshot": str(snap) if snap else None, "snapshots_taken": self.snapshots_taken,
                "stopping": self.stopping}

    # ---- background loops ----------------------------------------------------------------------
    def start_background(self) -> None:
        self._bg.append(asyncio.create_task(self._heartbeat_loop(), name="heartbeat"))
        self._bg.append(asyncio.create_task(self._tick_loop(), name="loop-tick"))
        self._bg.append(asyncio.create_task(self._flush_loop(), name="journal-flush"))
        self._bg.append(asyncio.create_task(self.book.loop(), name="book"))
        if self.snapshot_dir is not None:
            self._bg.append(asyncio.create_task(self._snapshot_loop(), name="snapshots"))
        self._watchdog = threading.Thread(target=self._watch, name="runner-watchdog", daemon=True)
        self._watchdog.start()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            try:
                self.journal.flush()
            except Exception as exc:  # noqa: BLE001 - the WAL keeps the rows; the next flush retries
                log_event(log, "journal flush failed (rows kept in the WAL)", level=logging.ERROR, error=str(exc))

    async def _tick_loop(self) -> None:
        while True:
            self.loop_tick = time.monotonic()
            await asyncio.sleep(0.5)

    def _watch(self) -> None:
        warned = False
        while not self.stopping:
            time.sleep(0.5)
            lag = time.monotonic() - self.loop_tick
            if lag > self.dms_timeout_s and not warned:
                warned = True
                log_event(log, "event loop blocked: dead man's switch cannot act from inside; exchange-side "
                          "cancel timers (where armed) will cancel open orders", level=logging.CRITICAL, lag_s=lag)
                self.alert_bus.emit(AlertMessage("critical", "loop_blocked", f"runner event loop blocked for {lag:.1f} s: "
                                                 "nothing can trade or flatten until it frees (the alert channels "
                                                 "send from their own thread)", numbers=MappingProxyType({"lag_s": lag})))
            elif lag < 1.0:
                warned = False

    async def _heartbeat_loop(self) -> None:
        t0 = time.monotonic()
        while True:
            if self._stall_after and time.monotonic() - t0 > self._stall_after:
                log_event(log, "test hook: heartbeat task stalled", level=logging.WARNING)
                await asyncio.Event().wait()  # a stuck supervisor task: never beats again
            self.last_beat = time.monotonic()
            for h in list(self.hedges.values()):
                if h.armed_symbol is not None and _completed(h):
                    await self._disarm_countdown(h)
                if _completed(h) and h.armed_symbol is None and not h.clients_closed:
                    await h.finish()  # finished, timers disarmed: its feed loop stopped, its venue clients closed
                if h.driver is None or h.status not in ("running", "feed_ended"):
                    continue
                if h.driver.ctx.state is State.COMPLETED:
                    continue
                ts = h.clock_now()  # the hedge's clock: replay time, or the venue's time (runner.clock)
                try:
                    await h.step(Timer(ts, heartbeat=True, prices_stale=h.conditions.active("stale_price")))
                    await self._arm_countdown(h)
                except Exception as exc:  # noqa: BLE001 - one hedge's venue trouble must not stop the beat
                    log_event(log, "heartbeat step failed", level=logging.ERROR, hedge_id=h.hedge_id, error=str(exc))
                if (h.spec.mode == "paper" and not h.spec.paper_save_every_event and hasattr(h.raw_adapter, "save")
                        and h.raw_adapter.state_path and time.monotonic() - h.paper_saved_at > 5.0):
                    h.paper_saved_at = time.monotonic()  # the venue saves itself after every order anyway
                    h.raw_adapter.save()
            await asyncio.sleep(self.heartbeat_s)

    async def _arm_countdown(self, h: HedgeTask) -> None:
        """Re-arm the hedge's exchange-side countdowns (``2 x dms_timeout_s``) on every venue it trades, each
        account-wide timer (OKX) at most every ``ACCOUNT_TIMER_REARM_S`` per venue; disarm the timer of a venue
        its perp leg left (:class:`hedge_core.runner.countdown.Countdowns`)."""
        await self.countdowns.arm(h)

    async def _disarm_countdown(self, h: HedgeTask) -> None:
        """Disarm a COMPLETED hedge's countdowns on every venue it armed unless another unfinished hedge is
        covered by one (:meth:`hedge_core.runner.countdown.Countdowns.disarm`)."""
        await self.countdowns.disarm(h)

    async def _snapshot_loop(self) -> None:
        while True:
            try:
                self.snapshot()
            except Exception as exc:  # noqa: BLE001 - a failed snapshot is logged and retried
                log_event(log, "snapshot failed", level=logging.ERROR, error=str(exc))
            await asyncio.sleep(self.snapshot_s)

    def snapshot(self, force: bool = False) -> Path | None:
        """Copy the live database to ``<snapshot_dir>/latest.duckdb`` (atomic rename).

        DuckDB copies it through the runner's own connection (:meth:`Store.copy_to`): opening the
        live file by path here (e.g. ``shutil.copyfile``) would silently drop the runner's POSIX
        lock and let another process write into the live database. Synchronous on the event loop:
        no journal write can happen during the copy, so the copy is a consistent database.
        Skipped when nothing was written since the last one.
        """
        if self.snapshot_dir is None or self.store.memory:
            return None
        if not force and self.journal.writes == self._snap_writes:
            if self._snap_taken is not None:  # nothing written since: the snapshot is still current
                self._snap_meta(self._snap_taken)
            return None
        self.journal.flush()
        dst = self.store.copy_to(self.snapshot_dir / "latest.duckdb")
        self._snap_taken = wall_now()
        self._snap_meta(self._snap_taken)
        self._snap_writes = self.journal.writes
        self.snapshots_taken += 1
        return dst

    def _snap_meta(self, taken: pd.Timestamp) -> None:
        """``latest.json``: ``taken_at`` (copy time) and ``current_at`` (last time the snapshot was
        confirmed to hold every journaled row). Written atomically: readers never see half a file."""
        import json

        meta = self.snapshot_dir / f".latest.json.{os.getpid()}.tmp"
        meta.write_text(json.dumps({"taken_at": taken.isoformat(), "current_at": wall_now().isoformat(),
                                    "source": self.store.path}) + "\n", encoding="utf-8")
        os.replace(meta, self.snapshot_dir / "latest.json")

    # ---- building hedges -------------------------------------------------------------------------
    def _params_for(self, spec: HedgeSpec) -> StrategyParamsBase:
        params = self._base_params_for(spec)
        if getattr(spec, "notional", None) is not None:  # the operator's size overrides the set's notional
            if "notional" not in type(params).model_fields:
                raise InvalidInput("notional", spec.notional, f"no size override for a {params.strategy} set")
            params = param_store.parse({**params.model_dump(mode="json"), "notional": spec.notional},
                                       where="size")
        check_legs = getattr(params, "check_legs", None)  # xcarry: the hedge's venues are the set's
        from hedge_core.runner.best_perp import allowed_perp_venues, wants_best

        if wants_best(spec, params):  # chosen at start among the allowed venues (runner.best_perp)
            allowed = allowed_perp_venues(params)  # a set without perp venues: InvalidInput naming perp_venue
            if callable(check_legs):
                check_legs(spec.venue, allowed[0])  # the spot venue must be the set's
        elif callable(check_legs):
            check_legs(*spec.leg_venues)
        legs = getattr(params, "legs", None)  # xcarry: a perp pair's set runs as a perp pair, and only so
        if legs is not None and legs != spec.legs:
            raise InvalidInput("legs", spec.legs, f"the set's legs {legs!r}")
        choice = spec.perp_venue_choice
        if choice and "perp_taker_fee" in type(params).model_fields:  # the chosen venue's fee, not the set's
            params = params.model_copy(update={"perp_venue": spec.perp_venue, "perp_taker_fee": float(choice["taker_fee"])})
        return params

    def _base_params_for(self, spec: HedgeSpec) -> StrategyParamsBase:
        if spec.params_inline is not None:
            return param_store.parse(spec.params_inline, where="params_inline")
        if not spec.params_name:
            raise InvalidInput("params", None, "NAME[@VERSION] of an exported parameter set")
        return param_store.load(spec.params_name, spec.params_version, root=self.params_root).params

    def _adapter_for(self, spec: HedgeSpec, *, confirm_live: bool = False) -> Any:
        hook = os.environ.get(ADAPTER_FACTORY_ENV)
        if hook and spec.mode != "paper":
            mod, _, fn = hook.partition(":")
            ad = self._register_secrets(getattr(importlib.import_module(mod), fn)(spec))
            if spec.mode == "recommend":  # the hook builds the venue adapter; recommend never sends
                from hedge_core.exchange.recommend import RecommendAdapter
                from hedge_core.exchange.routed_pair_live import recommend_pair

                ad = recommend_pair(ad) if spec.perp_pair else RecommendAdapter(ad)  # a pair: each venue wrapped
            return ad
        from hedge_core.exchange.factory import make_adapter

        if spec.mode == "paper":
            if spec.perp_pair:  # a perp on each venue, routed by leg (exchange.routed_pair)
                return self._paper_pair(spec)
            if spec.perp_venue and spec.perp_venue != spec.venue:  # legs on two venues (docs/cross-venue.md)
                from hedge_core.exchange.routed_paper import RoutedPaper, venue_state_path
                from hedge_core.runner.best_fallback import leg_balances

                return RoutedPaper(*(self._paper(spec, v, {a: leg_balances(spec, a, v)},
                                                 venue_state_path(self.home / "paper", spec.hedge_id, v))
                                     for v, a in ((spec.venue, "spot"), (spec.perp_venue, "perp"))))
            return self._paper(spec, spec.venue, spec.balances, self.home / "paper" / f"{spec.hedge_id}.json")
        if spec.leg_venues[0] != spec.leg_venues[1]:  # live/recommend legs on two venues: each its own account
            from hedge_core.exchange.routed_live import routed_live
            from hedge_core.exchange.routed_pair_live import routed_pair_live

            build = routed_pair_live if spec.perp_pair else routed_live  # two perp legs: routed by leg
            return self._register_secrets(build(spec.mode, *spec.leg_venues, confirm_live=confirm_live))
        return self._register_secrets(make_adapter(spec.mode, spec.venue, confirm_live=confirm_live))

    def _paper_pair(self, spec: HedgeSpec) -> Any:
        """Two paper PERP venues: ``balances['spot']`` funds the first venue's futures wallet,
        ``balances['perp']`` the second's; each venue settles its own stored funding series (the second,
        without one, the replayed data venue's, with a warning).

        Raises InvalidInput naming the first venue when the store has no funding of it."""
        from hedge_core.exchange.routed_pair import PerpPairPaper
        from hedge_core.exchange.routed_paper import venue_state_path

        a, b = spec.leg_venues
        if spec.feed == "bars":  # live bars: each paper venue gets its own venue's bars and published funding
            return PerpPairPaper(*(self._paper(spec, v, {"perp": spec.balances.get(k, {})},
                                               venue_state_path(self.home / "paper", spec.hedge_id, v))
                                   for v, k in ((a, "spot"), (b, "perp"))), by_venue=True)
        try:
            fund = self.store.read_funding(a, spec.perp_symbol)
        except LookupError:
            fund = None
        if fund is None or not len(fund):
            raise InvalidInput("funding", f"{a} {spec.perp_symbol}", "the first perp venue's funding series in the "
                               "store (hedge data import crossvenue_funding_*.csv)")
        papers = [self._paper(spec, v, {"perp": spec.balances.get(k, {})}, venue_state_path(self.home / "paper",
                                                                                              spec.hedge_id, v))
                  for v, k in ((a, "spot"), (b, "perp"))]
        try:  # the second venue settles its own stored series too; without one, the data venue's (warned)
            fund_b = self.store.read_funding(b, spec.perp_symbol)
        except LookupError:
            fund_b = None
        data_fund = None
        if fund_b is None or not len(fund_b):
            log_event(log, "perp pair: no stored funding of the second venue: it settles the replayed data venue's "
                      "series", level=logging.WARNING, hedge_id=spec.hedge_id, venue=b, symbol=spec.perp_symbol)
            try:  # what the market then knows of the second leg's rate, interval and next settlement
                data_fund = self.store.read_funding(self._data_venue(spec), spec.perp_symbol)
            except (LookupError, InvalidInput):  # no data venue (the replay names it) or no series of it
                data_fund = None
        return PerpPairPaper(papers[0], papers[1], first_funding=fund, second_funding=fund_b, data_funding=data_fund)

    def _paper(self, spec: HedgeSpec, venue: str, balances: dict[str, dict[str, float]], path: Path | None) -> Any:
        from hedge_core.data.instruments import pair_instruments, venue_instruments
        from hedge_core.exchange.factory import make_adapter
        from hedge_core.exchange.paper.core import PaperConfig

        # the hedge's pair from the store's instruments (else the committed snapshot; InvalidInput names a
        # symbol found in neither), beside the venue's other snapshot symbols; each instrument carries the
        # venue it trades on (a leg's orders are journaled under it)
        pair = pair_instruments(spec.spot_symbol, spec.perp_symbol, venue, self.store)
        rest = tuple(i for i in venue_instruments(venue) if i.symbol not in {p.symbol for p in pair})
        own = dict(getattr(spec, "paper_venues", {}).get(venue, {}))  # this venue's fees/slippage (HedgeSpec)
        quarterlies = (spec.paper_quarterly,) if spec.paper_quarterly and venue == spec.leg_venues[1] else ()
        cfg = PaperConfig(venue=venue, participation=spec.paper_participation, instruments=pair + rest,
                          quarterlies=quarterlies, **own)
        ex = make_adapter("paper", venue, paper_config=cfg, balances=balances, state_path=path)
        ex.save_on_apply = spec.paper_save_every_event
        ex._saved = lambda ex=ex: _save_paper(ex)  # atomic rename, no fsync (see _save_paper)
        ex.save = lambda path=None, ex=ex: _save_paper(ex, path)
        return ex

    async def _choose_perp_venue(self, spec: HedgeSpec, params: StrategyParamsBase) -> HedgeSpec:
        """``spec`` with its perp venue chosen among the set's allowed venues (runner.best_perp): the books
        are read through throw-away adapters, closed again; InvalidInput (nothing written) when none can fill."""
        from hedge_core.runner.best_perp import (allowed_perp_venues, choose_perp_venue, close_candidates, perp_candidates,
                                                 replay_start_rate)

        adapters, unread = await perp_candidates(self, spec, allowed_perp_venues(params))
        try:
            ts = self._replay_window(spec, None)[2] if spec.feed == "replay" else wall_now()
            chosen, choice = await choose_perp_venue(spec, params, adapters, unread=unread, ts=ts,
                                                     rate=replay_start_rate(self, spec))  # the entry's side
        finally:
            await close_candidates(adapters)
        log_event(log, "perp venue chosen", hedge_id=spec.hedge_id, venue=choice.venue, amount=choice.amount,
                  scores={s.venue: (s.net_quote if not s.reason else s.reason) for s in choice.ranking})
        return chosen

    def _register_secrets(self, ad: Any) -> Any:
        """Keys and secrets of the adapter never reach a log line (see runner.logs.RedactFilter);
        its venue account's rate-limit bans show in ``/health`` and on the alert bus."""
        legs = getattr(ad, "leg_adapters", None) or getattr(getattr(ad, "market_data", None), "leg_adapters", None)
        for part in (ad, *(legs() if callable(legs) else ())):  # legs on two venues: each venue's account
            self.ban_watch.watch(part)
            creds = getattr(part, "credentials", None) or getattr(getattr(part, "market_data", None), "credentials", None)
            sec = getattr(creds, "secrets", ()) or ()
            for s in (sec() if callable(sec) else sec):
                register_secret(s)
        return ad

    def _series(self) -> pd.DataFrame:
        """``store.series()``, cached for 5 s (starting many hedges reads it once)."""
        now = time.monotonic()
        if self._series_cache is None or now - self._series_cache[0] > 5.0:
            self._series_cache = (now, self.store.series())
        return self._series_cache[1]

    def _data_venue(self, spec: HedgeSpec) -> str:
        if spec.data_venue:
            return spec.data_venue
        series = self._series()
        have = set(zip(series["venue"], series["symbol"], series["kind"])) if len(series) else set()
        for v in (spec.venue, "binance", "demo"):
            if (v, spec.spot_symbol, "spot") in have and (v, spec.perp_symbol, "perp") in have:
                return v
        raise InvalidInput("data_venue", None, f"a venue with {spec.spot_symbol} spot and {spec.perp_symbol} perp "
                           f"bars in {self.store.path} (import data or seed the demo market first)")

    def _replay_window(self, spec: HedgeSpec, adapter: Any) -> tuple[str, pd.Timestamp, pd.Timestamp, pd.Timestamp]:
        """(data venue, first stored bar, replay start, replay end) of a replay; a paper venue that
        already replayed part of it (a restart) resumes where it stopped."""
        venue = self._data_venue(spec)
        series = self._series()
        row = series[(series["venue"] == venue) & (series["symbol"] == spec.spot_symbol) & (series["kind"] == "spot")]
        first, last = pd.Timestamp(row["first"].iloc[0]), pd.Timestamp(row["last"].iloc[0])
        start = pd.Timestamp(spec.start) if spec.start else first
        if start.tzinfo is None:
            start = start.tz_localize("UTC")
        end = pd.Timestamp(spec.end) if spec.end else last + pd.Timedelta(spec.timeframe)
        if end.tzinfo is None:
            end = end.tz_localize("UTC")
        core_now = getattr(getattr(adapter, "core", None), "now", None)
        if core_now is not None and pd.Timestamp(core_now) > start:
            start = pd.Timestamp(core_now)  # resume where the paper venue stopped (bars known after it)
        return venue, first, start, end

    def _feed_factory(self, task: HedgeTask) -> Any:
        spec = task.spec
        if spec.feed == "replay":
            from hedge_core.exchange.feeds import ReplayFeed

            venue, first, start, end = self._replay_window(spec, task.raw_adapter)
            if task.replay_window is None:
                task.replay_window = (start, end)
            key = (venue, spec.spot_symbol, spec.perp_symbol, spec.timeframe, str(first), str(end))
            if key in self._inputs:  # one analytics table per data window, shared by every hedge on it
                task.inputs = self._inputs[key]
            else:
                task.inputs_loader = lambda: self._load_inputs(key, venue, spec, first, end)
            feed = ReplayFeed(self.store, venue, spec.spot_symbol, spec.perp_symbol, spec.timeframe, start, end,
                              speed=spec.speed)
            times = getattr(task.raw_adapter, "settlement_times", None)
            if spec.perp_pair and callable(times):  # two perp venues: the UNION of both venues' settlement times
                from hedge_core.exchange.pair_feed import SettlementInstantsFeed

                return SettlementInstantsFeed(feed, times())
            return feed
        if spec.feed == "ticker":
            from hedge_core.runner.market import TickerFeed

            md = task.raw_adapter
            return TickerFeed(md, spec.spot_symbol, spec.perp_symbol, interval=spec.poll_s,
                              now=lambda: venue_now(md))  # Tick times: the venue's clock
        from hedge_core.exchange.live_ws_feed import LiveWebsocketFeed, live_feed

        if spec.perp_pair:  # two perp venues on live bars: each venue's bars and funding through its own adapter
            return self._pair_bars_feed(task)
        if hasattr(task.raw_adapter, "fetch_bars"):
            md = task.raw_adapter
        else:
            md = task.market_data if task.market_data is not None else self._market_data(spec)
        task.market_data = md
        feed = live_feed(md, spec.spot_symbol, spec.perp_symbol, spec.timeframe, poll_interval=spec.poll_s,
                         start=pd.Timestamp(spec.start) if spec.start else venue_now(md) - pd.Timedelta(days=2),
                         now=lambda: venue_now(md))  # a bar is closed on the venue's clock
        if isinstance(feed, LiveWebsocketFeed):  # ccxt.pro streams where the venue has them, else REST polling
            feed.start_streams()  # before the first poll, so REST never emits an instant the streams deliver late
        return feed

    def _pair_bars_feed(self, task: HedgeTask) -> Any:
        """The ``bars`` feed of a perp pair (:func:`hedge_core.exchange.pair_feed.pair_bars_feed`)."""
        from hedge_core.exchange.pair_feed import pair_bars_feed

        feed, md = pair_bars_feed(task.spec, task.raw_adapter, task.market_data, self._market_data, venue_now)
        if task.spec.mode == "paper":
            task.market_data = md  # the first venue's public data: the hedge's clock
        return feed

    async def _load_inputs(self, key: tuple[str, ...], venue: str, spec: HedgeSpec, first: pd.Timestamp,
                           end: pd.Timestamp) -> Any:
        """A replay's analytics table: history read here (the store's connection belongs to the loop),
        the computation in a worker thread so heartbeats and the API keep answering meanwhile."""
        if key not in self._inputs:
            from hedge_core.runner.market import InputsTable

            frames = InputsTable.read_history(self.store, venue, spec.spot_symbol, spec.perp_symbol,
                                              spec.timeframe, first, end)
            table = await asyncio.to_thread(InputsTable.from_history, *frames)
            self._inputs.setdefault(key, table)
        return self._inputs[key]

    async def _probe_venue(self, spec: HedgeSpec) -> tuple[bool, Any]:
        """Does the venue's public market data answer (markets load within ``PROBE_S``)? The adapter
        is kept for the hedge's feed when it does."""
        md = None
        try:
            md = self._market_data(spec)
            await asyncio.wait_for(md.load_markets(), timeout=PROBE_S)
            return True, md
        except (Exception, asyncio.TimeoutError) as exc:  # noqa: BLE001 - unreachable: replay instead
            log_event(log, "venue not reachable: paper hedge replays stored history", venue=spec.venue,
                      error=f"{type(exc).__name__}: {exc}")
            if md is not None:
                try:
                    await md.close()
                except Exception:  # noqa: BLE001
                    pass
            return False, None

    def _market_data(self, spec: HedgeSpec) -> Any:
        """Public market data of ``spec.venue`` (paper trading on live bars): no keys needed."""
        hook = os.environ.get(ADAPTER_FACTORY_ENV)
        if hook:
            mod, _, fn = hook.partition(":")
            return self._register_secrets(getattr(importlib.import_module(mod), fn)(spec))
        from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter

        return self._register_secrets(CcxtLiveAdapter(spec.venue, None))

    def _new_id(self, spec: dict[str, Any]) -> str:
        base = spec.get("params_name") or "inline"
        return f"{base}-{spec.get('mode', 'paper')}-{uuid.uuid4().hex[:8]}"

    # ---- operations --------------------------------------------------------------------------
    async def start_hedge(self, request: dict[str, Any]) -> dict[str, Any]:
        """Validate, preflight, journal and start a hedge (:func:`hedge_core.runner.hedge_start.start_hedge`).

        Raises InvalidInput before anything is written (a hedge id already used is refused), StartFailed when the
        start fails after the preflight (nothing kept). ``dry_run: true`` in the request runs the checks (reading
        the venue only) and returns ``{"dry_run": True, "preflight": {...}}``.
        """
        from hedge_core.runner.hedge_start import start_hedge

        return await start_hedge(self, request)

    async def recover_all(self) -> list[dict[str, Any]]:
        """Reconcile and resume/flatten every hedge the journal says is not finished, then restore the book's
        drawdown marks (:meth:`hedge_core.book.monitor.BookMonitor.restore`). Meanwhile :attr:`recovering` is True:
        the book holds only the hedges recovered so far, and a book guard's flatten waits for the whole book."""
        self.recovering = True
        try:
            return await self._recover_all()
        finally:
            self.recovering = False

    async def _recover_all(self) -> list[dict[str, Any]]:
        """:meth:`recover_all` itself."""
        replayed = self.journal.replay_wal()  # rows a killed runner appended but never flushed
        if replayed:
            log_event(log, "journal WAL replayed", rows=replayed)
        runs = self.journal.runs()
        out = []
        if not len(runs):
            self.book.restore()  # the book's drawdown marks (book.monitor)
            return out
        for r in runs.to_dict("records"):
            if r["state"] == State.COMPLETED or (r.get("ended_at") is not None and not pd.isna(r.get("ended_at"))):
                continue
            import json

            info = r["info"] if isinstance(r["info"], dict) else json.loads(r["info"] or "{}")
            adapter = task = None
            try:
                spec = HedgeSpec.model_validate(info)
                params = self._params_for(spec)
                adapter = self._adapter_for(spec, confirm_live=True)  # it was confirmed when it was started
                task = HedgeTask(spec, params, self.journal, adapter, self._feed_factory, self)
                rep = await task.recover(str(r["state"]), r.get("started_at"))
                self.hedges[spec.hedge_id] = task
                if task.driver.ctx.state is not State.COMPLETED:
                    task.task = asyncio.create_task(task.run(), name=f"hedge-{spec.hedge_id}")
                else:
                    task.status = "stopped"
                out.append({"hedge_id": spec.hedge_id, "state": str(task.driver.ctx.state), **rep})
            except Exception as exc:  # noqa: BLE001 - one unrecoverable hedge must not block the others
                if task is None or self.hedges.get(task.hedge_id) is not task:  # not kept: its venue clients closed
                    await discard_clients(adapter, getattr(task, "market_data", None))
                log_event(log, "recovery failed: hedge left as is, operator needed", level=logging.CRITICAL,
                          hedge_id=r["hedge_id"], state=r["state"], error=f"{type(exc).__name__}: {exc}")
                out.append({"hedge_id": r["hedge_id"], "error": f"{type(exc).__name__}: {exc}"})
        self.book.restore()  # the book's peak and max drawdown, once its hedges are back (book.monitor)
        return out

    def get(self, hedge_id: str) -> HedgeTask:
        h = self.hedges.get(hedge_id)
        if h is None or h.driver is None:
            raise InvalidInput("hedge_id", hedge_id, f"a hedge of this runner: {sorted(self.hedges)}")
        return h

    async def command(self, hedge_id: str, cmd: str, reason: str = "") -> dict[str, Any]:
        try:
            c = Command(cmd)
        except ValueError:
            raise InvalidInput("command", cmd, f"one of {[x.value for x in Command]}") from None
        h = self.get(hedge_id)
        await h.command(c, reason or "operator")
        return h.summary()

    async def flatten_all(self, reason: str = "operator flatten-all") -> list[dict[str, Any]]:
        """Flatten every unfinished hedge; the summaries of the hedges it was sent to (finished ones are
        not counted: "flatten sent to N hedges" must not include a hedge that was already COMPLETED)."""
        out = []
        for h in list(self.hedges.values()):
            if h.driver is not None and h.driver.ctx.state is not State.COMPLETED:
                await h.command(Command.FLATTEN, reason)
                out.append(h.summary())
        return out

    async def shutdown(self, *, flatten: bool | None = None, timeout_s: float = 30.0) -> None:
        """Stop: no new positions; flatten hedges whose policy (or ``flatten``) says so; keep the rest.

        On return nothing of the runner is left running: the hedges' tasks and the background loops have ended
        (awaited, not only cancelled), the watchdog thread has stopped, the venue clients and the journal are
        closed. ``timeout_s`` (seconds) bounds the wait for hedges with pending orders."""
        if self.stopping:
            return
        self.stopping = True
        log_event(log, "runner stopping", flatten=flatten)
        for h in self.hedges.values():
            h.no_new_entries = True
        for h in list(self.hedges.values()):
            if h.driver is None or h.driver.ctx.state is State.COMPLETED:
                continue
            want = flatten if flatten is not None else h.spec.on_shutdown == "flatten"
            try:
                if want:
                    await h.command(Command.STOP, "runner shutdown: flatten policy")
                elif h.driver.ctx.state is State.ANALYZING_MARKET:
                    pass  # nothing on: the journal resumes it on the next start
            except Exception as exc:  # noqa: BLE001
                log_event(log, "shutdown command failed", level=logging.ERROR, hedge_id=h.hedge_id, error=str(exc))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            busy = [h for h in self.hedges.values() if h.driver is not None and h.driver.ctx.pending]
            if not busy:
                break
            await asyncio.sleep(0.1)
        for h in self.hedges.values():
            if h.task is not None and not h.task.done():
                h.task.cancel()
        for h in self.hedges.values():
            if h.task is not None:
                try:
                    await h.task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001
                    pass
            await h.close_clients()
        for t in self._bg:
            t.cancel()
        if self._bg:  # their cancellation finished here: none is left pending when the caller's loop closes
            await asyncio.gather(*self._bg, return_exceptions=True)
        wd_deadline = time.monotonic() + 2.0  # the watchdog sees ``stopping`` within its 0.5 s sleep
        while self._watchdog is not None and self._watchdog.is_alive() and time.monotonic() < wd_deadline:
            await asyncio.sleep(0.02)  # not join(): the loop keeps serving while it ends
        try:
            self.journal.flush()
            self.snapshot(force=True)
        except Exception as exc:  # noqa: BLE001 - logged; the journal is still closed (its WAL keeps unflushed rows)
            log_event(log, "final journal flush or snapshot failed", level=logging.ERROR, error=str(exc))
        finally:
            self.journal.close()
        log_event(log, "runner stopped")


def _completed(h: HedgeTask) -> bool:
    return h.driver is not None and h.driver.ctx.state is State.COMPLETED
