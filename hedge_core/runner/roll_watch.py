"""The calendar roll in the running hedge (docs/calendar-roll.md): on the market updates of a hedge whose
parameters enable ``roll`` and whose venue lists a dated future of the asset (``dated_futures``: the live ccxt
adapter on OKX, a paper venue given a ``paper_quarterly``), ask :func:`hedge_core.engine.calendar_roll.decide_roll`
whether the hedge leg should move; journal a move (``guard_firings`` row ``calendar_roll``, its APRs) and hand
the engine a :class:`~hedge_core.engine.roll_step.RollRequest`. The engine places the two orders through the
driver, each intent journaled before it is sent (``orders``: leg ``roll`` for the destination's orders).

Also: while the leg is on a dated future, the market updates carry that contract's price as the perp price
(:func:`priced`), and a funding settlement of the perpetual is booked and journaled only for the quantity that is
on the perpetual (:func:`perpetual_qty`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pandas as pd

from hedge_core.engine.actions import GuardFired
from hedge_core.engine.calendar_roll import RollAction, RollDecision, RollInputs, decide_roll
from hedge_core.engine.context import HedgeContext
from hedge_core.engine.events import MarketUpdate
from hedge_core.engine.ledger import QTY_EPS
from hedge_core.engine.roll_step import RollRequest, is_dated, perpetual_qty
from hedge_core.engine.states import State
from hedge_core.errors import ExchangeError, InvalidInput
from hedge_core.runner.logs import log_event

if TYPE_CHECKING:
    from hedge_core.runner.hedge import HedgeTask

__all__ = ["decide", "maybe_roll", "perpetual_qty", "priced", "roll_status"]

log = logging.getLogger("hedge_core.runner.hedge")
#: hedge-clock seconds between two looks at the rule (each reads the futures list and a ticker)
CHECK_EVERY_S = 300.0


def perpetual_funding(ctx: HedgeContext) -> float:
    """Funding booked on the legs (quote, + received)."""
    return ctx.perp.funding + (ctx.roll_leg.funding if ctx.roll_leg is not None else 0.0)


async def _price(adapter: Any, symbol: str) -> float:
    try:
        t = await adapter.fetch_ticker(symbol)
    except (ExchangeError, InvalidInput):  # InvalidInput: a contract the venue no longer lists (delivered)
        return math.nan
    px = float(t.last or t.mid or math.nan)
    return px if math.isfinite(px) and px > 0 else math.nan


async def priced(task: HedgeTask, mu: MarketUpdate) -> MarketUpdate:
    """``mu`` with the price of the contract the hedge leg is on when that is not the spec's perpetual (the
    feed prices the perpetual): ``perp`` and ``mark`` become that contract's ticker price. Unchanged
    otherwise, or when the venue does not answer (then the update is dropped by the caller: None price)."""
    sym = task.driver.ctx.perp.symbol
    if sym == task.spec.perp_symbol:
        return mu
    px = await _price(task.raw_adapter, sym)
    return replace(mu, perp=px, mark=px)


def roll_status(ctx: HedgeContext) -> dict[str, Any]:
    """For the hedge's status and panel: the contract the hedge leg is on and a roll under way."""
    out: dict[str, Any] = {"leg_contract": ctx.perp.symbol, "leg_on_future": is_dated(ctx.perp.symbol)}
    if ctx.roll_leg is not None:
        out["roll"] = {"from": ctx.perp.symbol, "to": ctx.roll_leg.symbol, "held_from": ctx.perp.qty,
                       "held_to": ctx.roll_leg.qty, "target_to": ctx.roll_qty}
    return out


def decide(ctx: HedgeContext, mu: MarketUpdate, futures: list[tuple[str, pd.Timestamp]], future_px: float,
           taker_fee: float, margin_apr: float, exit_days: float) -> tuple[RollDecision, str] | None:
    """The rule's answer for the leg as it is and the contract a move would go to (pure). ``futures``: the
    venue's dated futures of the asset by expiry; the leg on one of them is judged against its own, the leg on
    the perpetual against the nearest one beyond ``exit_days``. None when there is nothing to judge."""
    on = ctx.perp.symbol
    rate = mu.expected_funding_rate
    if not (math.isfinite(rate) and mu.spot > 0 and future_px > 0) or abs(ctx.perp.qty) <= QTY_EPS:
        return None
    expiry = dict(futures).get(on) if is_dated(on) else None
    if is_dated(on) and expiry is None:
        return None
    if expiry is None:
        later = [(s, e) for s, e in futures if (e - mu.ts) / pd.Timedelta(days=1) > exit_days]
        if not later:
            return None
        on, expiry = later[0]
    x = RollInputs(now=mu.ts, expiry=expiry, spot=mu.spot, future=future_px, funding_rate=rate,
                   interval_hours=mu.funding_interval_hours, leg_qty=ctx.perp.qty, on_future=is_dated(ctx.perp.symbol),
                   taker_fee=taker_fee)
    return decide_roll(x, margin_apr=margin_apr, exit_days=exit_days), on


async def _basis_reference(task: HedgeTask, mu: MarketUpdate) -> MarketUpdate:
    """``mu`` with the price the quarterly's basis is measured against as its ``spot``. A hedge with a spot leg:
    ``mu`` (the spot price). Two perp legs (``legs = "perp_perp"``): the pair has no spot price, and ``mu.spot``
    is the FIRST venue's perp, so the basis would mix two venues' prices; the rolling (second) leg's OWN venue's
    perpetual is the reference instead: ``mu.perp`` while the leg is on it, else that perpetual's ticker price
    (NaN when the venue does not answer: the rule then judges nothing)."""
    if not getattr(task.spec, "perp_pair", False):
        return mu
    sym = task.driver.ctx.perp.symbol
    ref = mu.perp if sym == task.spec.perp_symbol else await _price(task.raw_adapter, task.spec.perp_symbol)
    return replace(mu, spot=ref)


def _taker_fee(task: HedgeTask) -> float:
    costs = getattr(task.params, "venue_costs", None)
    if costs is not None:
        return float(costs.perp_taker_fee)
    cfg = getattr(getattr(task.raw_adapter, "core", None), "config", None)
    return float(getattr(cfg, "perp_taker_fee", 0.0005))


async def maybe_roll(task: HedgeTask, mu: MarketUpdate) -> None:
    """After a market update: look at the rule (at most every :data:`CHECK_EVERY_S` of the hedge's clock) for
    a hedge in MONITORING_POSITIONS with nothing working and no roll under way; on TO_FUTURE / TO_PERP journal
    the decision and step the engine with the :class:`RollRequest`. The caller holds no lock."""
    roll = getattr(task.params, "roll", None)
    fn = getattr(task.raw_adapter, "dated_futures", None)
    ctx = task.driver.ctx
    if ctx.state is State.ANALYZING_MARKET and is_dated(ctx.perp.symbol) and abs(ctx.perp.qty) <= QTY_EPS \
            and not ctx.pending and ctx.roll_leg is None:
        # flat after an exit with the leg on a future: the next entry hedges on the perpetual (no order)
        inst = (await task.raw_adapter.load_markets()).get(task.spec.perp_symbol)
        px = await _price(task.raw_adapter, task.spec.perp_symbol)
        if inst is not None and px > 0:
            await task.step(RollRequest(ctx.last_ts, inst, px, "flat: the next entry hedges on the perpetual"))
        return
    if roll is None or not roll.enabled or fn is None:
        return
    if ctx.state is not State.MONITORING_POSITIONS or ctx.pending or ctx.roll_leg is not None:
        return
    last = getattr(task, "_roll_checked", None)
    if last is not None and (mu.ts - last).total_seconds() < CHECK_EVERY_S:
        return
    task._roll_checked = mu.ts  # type: ignore[attr-defined]
    try:
        futures = list(await fn(ctx.perp.base, ctx.perp.quote))
    except ExchangeError:
        return
    # a contract the venue delivered is never a destination again (a live adapter's market list may hold it
    # until it is reloaded)
    gone = getattr(task.driver, "delivered_symbols", set())
    futures = [(s, e) for s, e in futures if s not in gone]
    if not futures:
        return
    fut = ctx.perp.symbol if is_dated(ctx.perp.symbol) else None
    if fut is None:
        later = [s for s, e in futures if (e - mu.ts) / pd.Timedelta(days=1) > roll.exit_days]
        fut = later[0] if later else None
    if fut is None:
        return
    fpx = mu.perp if fut == ctx.perp.symbol else await _price(task.raw_adapter, fut)
    got = decide(ctx, await _basis_reference(task, mu), futures, fpx, _taker_fee(task), roll.margin_apr,
                 roll.exit_days)
    if got is None or got[0].action is RollAction.HOLD:
        return
    d, fut = got
    to_symbol = fut if d.action is RollAction.TO_FUTURE else task.spec.perp_symbol
    markets = await task.raw_adapter.load_markets()
    inst = markets.get(to_symbol)
    if inst is None:
        task.alert("warning", "calendar_roll", f"calendar roll to {to_symbol}: the venue does not list it")
        return
    px = fpx if d.action is RollAction.TO_FUTURE else await _price(task.raw_adapter, to_symbol)
    if not px > 0:
        return
    numbers = {"perp_carry_apr": d.perp_carry_apr, "future_carry_apr": d.future_carry_apr, "cost_apr": d.cost_apr,
               "days_to_expiry": d.days_to_expiry, "qty": ctx.perp.qty, "price": px}
    task.journal.guard(task.hedge_id, GuardFired("calendar_roll", str(d.action), MappingProxyType(numbers), mu.ts))
    log_event(log, "calendar roll decided", hedge_id=task.hedge_id, action=str(d.action), reason=d.reason,
              from_symbol=ctx.perp.symbol, to_symbol=to_symbol, **numbers)
    task.alert("info", "calendar_roll", f"calendar roll {d.action}: {ctx.perp.symbol} -> {to_symbol} ({d.reason})")
    await task.step(RollRequest(ctx.last_ts, inst, px, d.reason))
