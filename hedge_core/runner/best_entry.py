"""Best execution at each entry of a paper replay: the perp venue re-chosen while the hedge is FLAT.

A hedge whose perp venue was chosen by best execution (``HedgeSpec.perp_venue_choice``, runner.best_perp)
chooses again before every market update on which it may enter: in ``ANALYZING_MARKET`` with both legs flat.
Never mid-position: moving an open position between venues is a close at one venue and an open at the other
(fees, funding, margin on each), which the runner never does silently. Paper replays only (feed ``replay``,
legs on two paper venues, :class:`~hedge_core.exchange.routed_paper.RoutedPaper`) here; live and recommend
hedges in :mod:`hedge_core.runner.best_entry_live`; a paper venue on live bars is not switched
(docs/cross-venue.md, "Best execution per order").

The choice (:func:`hedge_core.exchange.best_venue.choose_venue`) walks each allowed venue's paper book for the
entry this update may make: ``notional / perp price`` base on the side of :func:`~hedge_core.runner.best_perp.
entry_side` at the update's expected funding rate, each venue's own perp taker fee. The current venue's book
is its own paper venue's; every other allowed venue's is a throw-away paper venue with this hedge's settings
for it (``paper_venues``), fed the current venue's last perp and mark bars. Nothing changes when the current
venue stays best, or when no venue can fill the size (the engine's entry then meets the venue as it is). A venue
whose free perp margin cannot carry the entry (:func:`hedge_core.engine.sizing_bounds.perp_margin_cap` at the set's
minimum leverage, as the preflight checks it) is ranked last, with why: a venue the start's preflight refused for
its margin is not moved to at the entry either.

A switch to venue ``v``, in this order (each step survives a SIGKILL after it):

1. ``v``'s paper venue is opened from its state file (``<hedge>@<v>.json``; a venue used earlier by this
   hedge keeps its wallet) or created with ``balances["perp.<v>"]`` / ``balances["perp"]``
   (:func:`~hedge_core.runner.best_fallback.leg_balances`), brought to the current bars and saved;
2. the journal: ``hedge_runs`` (its ``info`` = the spec on ``v``, so a restart rebuilds the hedge there) and
   a ``PERP_VENUE_CHOSEN`` transitions row (state unchanged) with every venue's score;
3. kill point ``perp_venue_chosen`` (:mod:`hedge_core.runner.killpoints`);
4. the running hedge moves: the routed adapter's perp venue, the engine's perp leg (venue, lot, minimums,
   brackets; its money so far is kept), the driver's adapter for ``v``, the parameters' perp fee.

Known limit: the paper venue left keeps its wallet in its file (nothing moves between venues).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hedge_core.engine.driver import answers_carry_fills
from hedge_core.engine.ledger import QTY_EPS
from hedge_core.engine.states import State
from hedge_core.errors import InvalidInput
from hedge_core.exchange.best_venue import choose_venue, fetch_venue_books
from hedge_core.runner.best_perp import (
    TRIGGER,
    allowed_perp_venues,
    choice_reason,
    choice_record,
    entry_side,
    perp_taker_fee_of,
)
from hedge_core.runner.killpoints import kill_point
from hedge_core.runner.logs import log_event
from hedge_core.types import MarketKind

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import pandas as pd

    from hedge_core.engine.events import MarketUpdate
    from hedge_core.params.models import StrategyParamsBase
    from hedge_core.runner.hedge import HedgeTask
    from hedge_core.runner.hedge_spec import HedgeSpec
    from hedge_core.types import Instrument

__all__ = ["KILL_POINT", "before_entry", "journal_then_move", "rechoosing"]

log = logging.getLogger("hedge_core.runner.best_entry")

#: The kill point reached once a switch is journaled, before the running hedge moves.
KILL_POINT = "perp_venue_chosen"


def rechoosing(task: HedgeTask) -> bool:
    """Does this hedge re-choose its perp venue at entries? A best-execution choice, paper, replay, two venues."""
    from hedge_core.exchange.routed_paper import RoutedPaper

    s = task.spec
    return bool(s.perp_venue_choice) and s.mode == "paper" and s.feed == "replay" and not s.perp_pair \
        and isinstance(task.raw_adapter, RoutedPaper)


def _flat(task: HedgeTask) -> bool:
    c = task.driver.ctx
    return c.state is State.ANALYZING_MARKET and abs(c.spot.qty) <= QTY_EPS and abs(c.perp.qty) <= QTY_EPS


def _perp_bars(task: HedgeTask) -> list[Any]:
    """The current perp venue's last perp-side bars (perp, mark), in time order."""
    bars = [b for (_, kind), b in task.raw_adapter.perp.core.last_bar.items() if kind is not MarketKind.SPOT]
    return sorted(bars, key=lambda b: (b.ts, str(b.kind)))


def _bring_up(ex: Any, bars: list[Any]) -> None:
    """Apply ``bars`` a paper venue has not seen yet (by time), in order."""
    core = ex.core
    for b in bars:
        seen = core.last_bar.get((b.symbol, b.kind))
        if seen is not None and seen.ts >= b.ts:
            continue
        try:
            core.apply(b)
        except InvalidInput:  # the venue's clock is past this bar (it was fed a later event): its book stands
            continue


def _allowed(task: HedgeTask) -> tuple[str, ...]:
    """The set's allowed perp venues, in the set's order (read once per hedge). Not from ``task.params``: those
    carry the chosen venue as ``perp_venue``, which drops the set's own ``perp_venue`` from the list."""
    got = getattr(task, "_best_entry_allowed", None)
    if got is None:
        got = allowed_perp_venues(task.sup._base_params_for(task.spec))
        task._best_entry_allowed = got  # type: ignore[attr-defined]
    return got


def _cache(task: HedgeTask) -> dict[str, Any]:
    key = json.dumps(task.spec.paper_venues, sort_keys=True)
    cache = getattr(task, "_best_entry_candidates", None)
    if cache is None or cache[0] != key:
        cache = (key, {})
        task._best_entry_candidates = cache  # type: ignore[attr-defined]
    return cache[1]


def _candidates(task: HedgeTask, allowed: tuple[str, ...]) -> dict[str, Any]:
    """Throw-away paper venues of the allowed venues other than the current one (cached per settings), each
    with that venue's perp wallet for this hedge: its state file's when the hedge used it before, else
    ``balances["perp.<v>"]`` / ``balances["perp"]``."""
    from hedge_core.exchange.paper import PaperExchange
    from hedge_core.exchange.routed_paper import venue_state_path
    from hedge_core.runner.best_fallback import leg_balances

    out = _cache(task)
    cur = task.spec.perp_venue
    for v in allowed:
        if v != cur and v not in out:
            path = venue_state_path(task.sup.home / "paper", task.hedge_id, v)
            if path.exists():  # read only: the throw-away venue gets its wallet, the file is not touched
                wallet = {c: b.free for c, b in PaperExchange.load(path).core.balance("perp").items()}
            else:
                wallet = leg_balances(task.spec, "perp", v)
            out[v] = task.sup._paper(task.spec, v, {"perp": wallet}, None)
    return {v: ad for v, ad in out.items() if v != cur and v in allowed}


async def _short_of_margin(params: Any, adapters: dict[str, Any], fees: dict[str, float],
                           quote: str) -> dict[str, str]:
    """Venues whose free perp margin cannot carry the entry (``engine.sizing_bounds.perp_margin_cap`` at the
    set's minimum leverage, prices 1 % higher, as the preflight): venue -> why."""
    from hedge_core.engine.sizing_bounds import perp_margin_cap

    notional, ratio = float(params.notional), float(params.rebalance.target_ratio)
    out = {}
    for v, ad in adapters.items():
        bal = (await ad.fetch_balance("perp")).get(quote)
        free = float(bal.free) if bal is not None else 0.0
        cap = perp_margin_cap(free, ratio, float(params.leverage.min_leverage), fees[v], 0.01)
        if cap < notional:
            out[v] = f"perp margin {free:,.2f} {quote} free carries {cap:,.2f} < notional {notional:,.2f}"
    return out


async def before_entry(task: HedgeTask, mu: MarketUpdate) -> str | None:
    """Re-choose the perp venue before ``mu`` is stepped, when the hedge may enter on it (flat).

    Returns the venue switched to, or None (not flat, not re-choosing, the current venue still best, or no
    venue deep enough).
    """
    if task.spec.mode != "paper":  # live and recommend: each venue's book through its live adapter
        from hedge_core.runner.best_entry_live import before_entry_live

        return await before_entry_live(task, mu)
    if not rechoosing(task) or task.driver is None or task.no_new_entries or not _flat(task):
        return None
    params = task.params
    allowed = _allowed(task)
    cur = str(task.spec.perp_venue)
    price = float(mu.perp)
    if not price > 0:
        return None
    symbol = task.spec.perp_symbol
    amount = float(params.notional) / price  # type: ignore[attr-defined]  # an xcarry set (allowed above)
    rate = float(mu.expected_funding_rate)
    bars = _perp_bars(task)
    adapters: dict[str, Any] = {cur: task.raw_adapter.perp}
    for v, ad in _candidates(task, allowed).items():
        _bring_up(ad, bars)
        adapters[v] = ad
    fees = {v: perp_taker_fee_of(ad, symbol) for v, ad in adapters.items()}
    short = await _short_of_margin(params, adapters, fees, task.driver.ctx.perp.quote)
    books, unread = await fetch_venue_books({v: ad for v, ad in adapters.items() if v not in short}, symbol,
                                            {v: f for v, f in fees.items() if v not in short}, amount=amount)
    unread.update(short)  # ranked last, with why
    try:
        choice = choose_venue(entry_side(params, rate), amount, books, allowed=list(allowed), unread=unread)
    except InvalidInput:
        return None  # no venue deep enough: the entry meets the current venue as it is
    if choice.venue == cur:
        return None
    # stamped with the update's known time (the hedge's clock once it is stepped), never behind the hedge's clock
    ts = max(mu.ts, task.clock_now())
    await _switch(task, choice, {**choice_record(choice, symbol, price, fees, ts, rate), "ts_known": ts}, bars)
    return choice.venue


async def journal_then_move(task: HedgeTask, state: str, new_spec: HedgeSpec, params: StrategyParamsBase,
                            record: dict[str, Any], ts: pd.Timestamp,
                            move_adapter: Callable[[], Awaitable[Instrument]]) -> None:
    """The move of a flat hedge's perp leg to ``new_spec.perp_venue`` (``v``) once everything that reads a venue
    is done, paper and live alike (call it holding ``task.lock``):

    1. the journal: ``hedge_runs`` (its ``info`` = ``new_spec``, so a restart rebuilds the hedge on ``v``) and a
       :data:`~hedge_core.runner.best_perp.TRIGGER` transitions row at ``ts`` (state ``state`` unchanged) whose
       reason gives every venue's score (``record``, :func:`~hedge_core.runner.best_perp.choice_reason`);
    2. kill point :data:`KILL_POINT` (a SIGKILL here: the journal says ``v``);
    3. ``move_adapter()``: the hedge's adapter moves its perp leg to ``v`` (paper: the routed pair's perp venue;
       live: the routed adapter's perp adapter) and returns ``v``'s perp instrument;
    4. the engine: ``task.params`` = ``params`` (``v``'s perp fee) and the costs resolved again, the perp leg's
       venue, lot, minimums and brackets (``v``'s table, else the instrument's; its money so far is kept), the
       driver's adapter and parameters for ``v``.
    """
    v = str(new_spec.perp_venue)
    previous = task.spec.perp_venue
    task.spec = new_spec
    task.journal.run(task._run_row(state))
    task.journal.transition(task.hedge_id, {"ts": ts, "from_state": state, "to_state": state, "trigger_name": TRIGGER,
                                            "reason": f"at entry, from flat (was {previous}): " + choice_reason(record)})
    kill_point(KILL_POINT, v)
    inst = await move_adapter()
    task.params = params
    task._resolve_costs()
    inst = await task._venue_brackets(inst)  # the venue's table, else the instrument's (never raises)
    d = task.driver
    leg = replace(d.ctx.perp, venue=v, lot_size=inst.lot_size, min_qty=inst.min_qty,
                  min_notional=inst.min_notional, brackets=inst.brackets)
    d.ctx = replace(d.ctx, perp=leg)
    d.adapters = {**d.adapters, v: task.adapter}
    d._complete = {**d._complete, v: answers_carry_fills(task.adapter)}
    d.params = task.params


async def _switch(task: HedgeTask, choice: Any, record: dict[str, Any], bars: list[Any]) -> None:
    from hedge_core.exchange.routed_paper import venue_state_path
    from hedge_core.runner.best_fallback import leg_balances

    sup, spec, v = task.sup, task.spec, choice.venue
    old = task.raw_adapter.perp
    ts = record.pop("ts_known")
    record = {**record, "at": "entry", "previous": spec.perp_venue}
    new_spec = spec.model_copy(update={"perp_venue": v, "perp_venue_choice": record})
    # 1. the new venue's paper state: its file (a venue used before keeps its wallet) or fresh, up to now
    new = sup._paper(new_spec, v, {"perp": leg_balances(new_spec, "perp", v)},
                     venue_state_path(sup.home / "paper", spec.hedge_id, v))
    _bring_up(new, bars)
    # the replay resumes from the feed position both venues share (the old venue's, restored or applied)
    new.core._last_event, new.core._restored_key = old.core._last_event, old.core._restored_key
    new.save()
    params = sup._params_for(new_spec)
    state = task._state()

    async def to_new() -> Instrument:  # the routed paper pair's perp venue is v
        ra = task.raw_adapter
        ra.perp, ra.perp_venue, ra.venue = new, v, f"{ra.spot_venue}+{v}"
        return (await ra.load_markets())[spec.perp_symbol]

    # 2.-4. the journal, the kill point (v's file is saved: the restart builds the hedge on v), the move
    async with task.lock:
        await journal_then_move(task, state, new_spec, params, record, ts, to_new)
    if hasattr(old, "save") and getattr(old, "state_path", None):
        old.save()
    _cache(task).pop(spec.perp_venue, None)  # the venue left: its candidate is rebuilt from its file
    log_event(log, "perp venue re-chosen at entry", hedge_id=task.hedge_id, venue=v, previous=spec.perp_venue,
              scores={s.venue: (s.net_quote if not s.reason else s.reason) for s in choice.ranking})

