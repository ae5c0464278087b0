"""The start of one hedge on the runner: validate, refuse a used id, preflight, start, and either keep the hedge
or change nothing.

:func:`start_hedge` is :meth:`hedge_core.runner.supervisor.Supervisor.start_hedge` (moved here to keep the
supervisor small). A start either ends with a running hedge or leaves the runner as it found it:

- **nothing journaled**: every row the start writes (the ``hedge_runs`` row, the ``START`` transition, a loan
  book's ``start`` row, a best-execution choice) is held in memory (:meth:`Journal.hold`) and reaches the WAL only
  once nothing can fail any more (:meth:`Journal.commit`); a failure drops them (:meth:`Journal.drop`), so a
  restarted runner finds no hedge to recover;
- **the paper venues' state files as they were** (:mod:`hedge_core.runner.paper_files`): restored after a
  refusal, a dry run, or a failure after the preflight (an exception in the task's start);
- **its venue clients closed** (a paper venue dropped unsaved);
- **a clear error**: :class:`~hedge_core.errors.InvalidInput` as raised (the field, the value, what is allowed);
  anything else as :class:`~hedge_core.errors.StartFailed` naming the hedge and the cause.

A hedge id is used once. The journal keys every row by hedge id (``hedge_runs`` by ``hedge_id`` alone,
transitions by ``(hedge_id, seq)``, orders by ``(hedge_id, client_order_id)``, all upserts), so a second hedge
under an id the journal already has would overwrite the first one's history, and a paper venue would resume the
first one's state file. :func:`refuse_used_id` refuses such an id, naming the hedge and its state; a state file
with no journal row behind it (a start interrupted before its first row, another database) is refused too,
naming the file.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pandas as pd

from hedge_core.engine.strategies import strategy_for
from hedge_core.errors import InvalidInput, StartFailed
from hedge_core.params import store as param_store
from hedge_core.runner.clock import offline, resolve_paper_feed
from hedge_core.runner.hedge import HedgeSpec, HedgeTask
from hedge_core.runner.logs import log_event

if TYPE_CHECKING:
    from hedge_core.runner.supervisor import Supervisor

__all__ = ["close_clients", "discard_clients", "refuse_used_id", "start_hedge"]

log = logging.getLogger("hedge_core.runner.supervisor")


def _spec_of(req: dict[str, Any]) -> HedgeSpec:
    try:
        return HedgeSpec.model_validate(req)
    except Exception as exc:
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            e = exc.errors()[0]
            raise InvalidInput(".".join(map(str, e["loc"])), e.get("input"), e["msg"], where="start") from None
        raise


def _ts(x: Any) -> str:
    return "-" if x is None or (not isinstance(x, str) and pd.isna(x)) else str(x)


def refuse_used_id(sup: Supervisor, spec: HedgeSpec) -> None:
    """Raise :class:`InvalidInput` on ``hedge_id`` when a hedge of this runner or its journal has ``spec.hedge_id``
    (the message names its state, start and end), or when a paper state file of that id is in the runner's paper
    folder without a journal row (the message names the file)."""
    hid = spec.hedge_id
    fix = "choose another id, or leave hedge_id out for a generated one"
    h = sup.hedges.get(hid)
    if h is not None:
        state = h._state() if h.driver is not None else h.status
        raise InvalidInput("hedge_id", hid, f"an id not used by this runner: hedge {hid} is {state} "
                           f"(task {h.status}, started {_ts(h.started_at)}); {fix}", where="start")
    sup.journal.flush()
    runs = sup.store.read_table("hedge_runs", hedge_id=hid)
    if len(runs):
        r = runs.iloc[-1]
        raise InvalidInput("hedge_id", hid, f"an id not in this runner's journal: hedge {hid} is {r['state']} "
                           f"({r['mode']}, started {_ts(r['started_at'])}, ended {_ts(r['ended_at'])}); the journal "
                           f"keys every row by hedge id, so a new hedge under it would overwrite that one's history; "
                           f"{fix}", where="start")
    from hedge_core.runner.paper_files import state_files

    left = state_files(sup.home / "paper", hid, {*spec.leg_venues, *_ranked(spec)}) if spec.mode == "paper" else []
    if left:
        raise InvalidInput("hedge_id", hid, f"an id with no paper venue state left behind: {left[0]} exists but the "
                           f"journal has no hedge {hid} (a start interrupted before it was journaled, or another "
                           f"database's hedge): move the file away or {fix}", where="start")


def _ranked(spec: HedgeSpec) -> set[str]:
    ranking = (spec.perp_venue_choice or {}).get("ranking", []) or []
    return {str(s["venue"]) for s in ranking}


async def start_hedge(sup: Supervisor, request: dict[str, Any]) -> dict[str, Any]:
    """Validate, preflight (:mod:`hedge_core.runner.preflight`), journal and start a hedge on ``sup``.

    Raises InvalidInput before anything is written, and StartFailed (nothing kept) when the start fails after
    the preflight. ``dry_run: true`` in the request runs the checks (reading the venue only) and returns
    ``{"dry_run": True, "preflight": {...}}``.
    """
    if sup.stopping:
        raise InvalidInput("runner", "stopping", "a runner that is not shutting down")
    req = dict(request)
    confirm_live = bool(req.pop("confirm_live", False))
    dry_run = bool(req.pop("dry_run", False))  # preflight only: check both legs, start nothing
    ref = req.pop("params", None)
    if ref:
        name, ver = param_store.resolve(str(ref), sup.params_root)
        req["params_name"], req["params_version"] = name, ver
    req.setdefault("hedge_id", sup._new_id(req))
    if req.get("mode") in ("live", "recommend"):
        req.setdefault("feed", "ticker")
    auto_feed = req.get("mode", "paper") == "paper" and req.get("feed") is None
    if auto_feed:  # decided below, once the request is valid: live data when the venue answers
        req["feed"] = "replay" if (offline() or req.get("speed") is not None or req.get("end") is not None
                                   or req.get("data_venue")) else "bars"
    spec = _spec_of(req)
    if spec.mode == "paper" and spec.feed == "ticker":
        raise InvalidInput("feed", "ticker", "'replay' or 'bars' for paper mode (the paper venue fills on bars)")
    refuse_used_id(sup, spec)
    params = sup._params_for(spec)
    strategy = strategy_for(params)
    refusal = strategy.runner_refusal
    if refusal:
        raise InvalidInput("strategy", str(params.strategy), refusal, where="start")
    if spec.mode == "live" and strategy.live_refusal:
        raise InvalidInput("mode", f"live ({params.strategy})", strategy.live_refusal, where="start")
    if spec.mode == "live":
        status = param_store.status_of(spec.params_name, spec.params_version, root=sup.params_root) \
            if spec.params_name else "inline"
        if status != "live":
            raise InvalidInput("params", f"{spec.params_name}@{spec.params_version} ({status})",
                               "a parameter set promoted to live (hedge params promote NAME@V --to live --yes)")
        if not confirm_live:
            raise InvalidInput("confirm_live", False, "True: live mode trades real money")
    feed_reason, probed = f"feed {spec.feed} requested", None
    if auto_feed:
        reachable = None
        if spec.feed == "bars":
            reachable, probed = await sup._probe_venue(spec)
        req_view = {**request, "data_venue": spec.data_venue}
        feed, feed_reason = resolve_paper_feed(req_view, is_offline=offline(), reachable=reachable)
        if feed != spec.feed:
            spec = spec.model_copy(update={"feed": feed})
    try:
        if spec.feed == "replay":
            sup._data_venue(spec)
        if spec.params_name:
            param_store.sync_to_store(sup.store, sup.params_root)
        from hedge_core.runner.best_perp import wants_best

        if wants_best(spec, params):  # best execution: the perp venue chosen now, before anything is written
            spec = await sup._choose_perp_venue(spec, params)
            params = sup._params_for(spec)
    except BaseException:
        await close_clients(probed)
        raise
    return await _start(sup, spec, params, confirm_live=confirm_live, dry_run=dry_run, probed=probed,
                        feed_reason=feed_reason)


async def _start(sup: Supervisor, spec: HedgeSpec, params: Any, *, confirm_live: bool, dry_run: bool, probed: Any,
                 feed_reason: str) -> dict[str, Any]:
    """The preflight and the task's start: a running hedge, or nothing changed (see the module's docstring)."""
    from hedge_core.runner.best_fallback import preflight_start
    from hedge_core.runner.paper_files import start_guard

    guard = start_guard(sup.home / "paper", spec)  # the state files as they were, put back unless the hedge runs
    adapter = None
    try:  # both legs checked at the venue before the first order (runner.preflight; best: down the ranking)
        spec, params, adapter, report = await preflight_start(sup, spec, params, confirm_live=confirm_live,
                                                              apply=not dry_run)
    except BaseException:
        await _undo(sup, guard, None, probed, None)
        raise
    if dry_run:
        await _undo(sup, guard, adapter, probed, None)
        return {"hedge_id": spec.hedge_id, "dry_run": True, "mode": spec.mode, "preflight": report.as_dict(),
                "perp_venue": spec.leg_venues[1], "perp_venue_choice": spec.perp_venue_choice}
    sup.journal.hold(spec.hedge_id)  # every row of the start held until the hedge runs (Journal.hold)
    task = None
    try:
        task = HedgeTask(spec, params, sup.journal, adapter, sup._feed_factory, sup)
        task.feed_reason, task.market_data = feed_reason, probed
        if spec.feed == "replay":
            task.replay_window = sup._replay_window(spec, adapter)[2:]
        await task.start_new(task.clock_now())  # replay: the window start; live data: the venue's time
        if spec.perp_venue_choice:  # the choice and every venue's score, readable in the timeline
            from hedge_core.runner.best_fallback import choice_transitions

            for row in choice_transitions(spec.perp_venue_choice, task.clock_now(), task._state()):
                sup.journal.transition(spec.hedge_id, row)
    except BaseException as exc:
        await _undo(sup, guard, adapter, probed, task, hedge_id=spec.hedge_id)
        if isinstance(exc, (InvalidInput, StartFailed)) or not isinstance(exc, Exception):
            raise
        log_event(log, "hedge start failed: nothing kept", level=logging.ERROR, hedge_id=spec.hedge_id,
                  error=f"{type(exc).__name__}: {exc}")
        raise StartFailed(spec.hedge_id, exc) from exc
    sup.journal.commit(spec.hedge_id)  # from here on nothing can fail: the hedge exists
    sup.hedges[spec.hedge_id] = task
    task.task = asyncio.create_task(task.run(), name=f"hedge-{spec.hedge_id}")
    log_event(log, "hedge started", hedge_id=spec.hedge_id, state=task._state(), mode=spec.mode,
              params=f"{spec.params_name}@{spec.params_version}")
    return task.summary()


async def _undo(sup: Supervisor, guard: Any, adapter: Any, probed: Any, task: HedgeTask | None, *,
                hedge_id: str | None = None) -> None:
    """Leave the runner as the start found it: held journal rows dropped, venue clients discarded (a paper venue
    unsaved), the paper state files put back."""
    if hedge_id is not None:
        sup.journal.drop(hedge_id)
    await discard_clients(adapter, getattr(task, "market_data", None) or probed)
    if probed is not None and probed is not getattr(task, "market_data", probed):
        await close_clients(probed)
    if guard is not None:
        guard.restore()


async def close_clients(*adapters: Any) -> None:
    """Close venue adapters (a hedge's own and, paper on live data, the venue's public market data), each once,
    errors ignored: a ccxt client left open leaks its aiohttp session ("Unclosed client session")."""
    seen: list[Any] = []
    for ad in adapters:
        if ad is None or any(ad is s for s in seen):
            continue
        seen.append(ad)
        try:
            await ad.close()
        except Exception:  # noqa: BLE001
            pass


async def discard_clients(adapter: Any, market_data: Any) -> None:
    """The venue clients of a hedge that is not kept (its start or recovery failed): the adapter discarded (a
    paper venue unsaved, :func:`hedge_core.runner.preflight.discard_adapter`), the market data closed."""
    from hedge_core.runner.preflight import discard_adapter

    if adapter is not None:
        try:
            await discard_adapter(adapter)
        except Exception:  # noqa: BLE001
            pass
    await close_clients(market_data if market_data is not adapter else None)
