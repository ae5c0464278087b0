"""Best execution at each entry of a LIVE or RECOMMEND hedge: the perp venue re-chosen while the hedge is FLAT.

The live counterpart of :mod:`hedge_core.runner.best_entry` (paper replays). A hedge whose perp venue was chosen
by best execution (``HedgeSpec.perp_venue_choice``, runner.best_perp) with its legs on two venues
(:class:`~hedge_core.exchange.routed.RoutedAdapter`, :func:`hedge_core.exchange.routed_live.routed_live`) chooses
again before every market update on which it may enter: ``ANALYZING_MARKET`` with both legs flat. Never with a
position open (moving one is a close at one venue and an open at another, which the runner never does silently).

Where each figure comes from (the same as at start, :func:`hedge_core.runner.best_perp.choose_perp_venue`):

- book: each allowed venue's perp order book through its own live adapter (``fetch_order_book``, the venue's
  book through ccxt); the current venue's is the hedge's own perp adapter, every other allowed venue's an adapter
  built with THAT venue's keys (``HEDGE_<VENUE>_API_*`` or its table of the keys file, as
  :mod:`hedge_core.exchange.routed_live` builds a leg), kept for the hedge's life and closed when it ends;
- fee: each venue's own perp taker fee (its ccxt market's ``taker``, :func:`~hedge_core.runner.best_perp.
  perp_taker_fee_of`);
- size and side: ``notional / perp price`` base, on the side of :func:`~hedge_core.runner.best_perp.entry_side`
  at the update's expected funding rate;
- free margin: each venue's perp wallet (``fetch_balance("perp")``): a venue whose free margin cannot carry the
  entry (:func:`hedge_core.engine.sizing_bounds.perp_margin_cap` at the set's minimum leverage) is ranked last,
  with why; a venue whose adapter, keys, markets, wallet or book cannot be read is ranked last with its error.

How often (each ranking reads every allowed venue's book and wallet, about two requests per venue):

- only on an update on which an entry is near: the strategy's own decision (``decide``, as the engine's
  ``ANALYZING_MARKET`` step takes it; no cooldown, kill latch or pending order) enters at the current venue's
  funding rate, with the set's perp fee as it is OR at zero (:func:`entry_near`: a venue whose lower fee alone
  lets the entry through is still looked at). Another venue's funding rate is not read for this (the ranking
  itself prices the entry at the current venue's rate);
- at most every ``HedgeSpec.best_recheck_s`` (default 60 s, wall clock; 0 = at every such update): within that
  time after a ranking the hedge stays where the ranking left it (a refused move is not retried either).

Nothing changes when the current venue stays best, or no venue can fill the size. A switch to venue ``v``, in
this order (each step survives a SIGKILL after it):

1. the venue left: its funding income booked (live, :meth:`poll_funding`), its position read flat (a position
   there, which the hedge's journal does not hold, stops the move: the reconciliation reports it);
2. the preflight of the hedge on ``v`` (:func:`hedge_core.runner.preflight.preflight_for_spec` over the spot
   venue and ``v``): the venue's free margin for the size, and (live) its position mode, margin mode and
   leverage set for the symbol as at start. A refusal keeps the hedge where it is (logged);
3. the journal: ``hedge_runs`` (its ``info`` = the spec on ``v``, so a restart rebuilds the hedge there, with
   ``v``'s keys, :meth:`Supervisor._adapter_for`) and a ``PERP_VENUE_CHOSEN`` transitions row (state unchanged)
   with every venue's score;
4. kill point ``perp_venue_chosen`` (:mod:`hedge_core.runner.killpoints`);
5. the running hedge moves: the routed adapter's perp leg (so the feed's perp ticker and funding rate, orders,
   fills, the venue's trade and income records), the engine's perp leg (venue, lot, minimums, brackets; its
   money so far is kept), the driver's adapter for ``v``, the parameters' perp fee.

Fills, fees and funding are journaled under the venue they happened on (the ``venue`` column). The continuous
reconciliation (:mod:`hedge_core.runner.hedge_records`) compares the venues the hedge is on now: journal rows of
a perp venue it left are set aside (:func:`current_venue_rows`), that venue having been read flat with its
funding booked when the hedge left it.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from hedge_core.errors import InvalidInput
from hedge_core.exchange.best_venue import choose_venue, fetch_venue_books
from hedge_core.exchange.routed import RoutedAdapter
from hedge_core.runner.best_perp import choice_record, entry_side, perp_taker_fee_of
from hedge_core.runner.logs import log_event

if TYPE_CHECKING:
    from hedge_core.engine.events import MarketUpdate
    from hedge_core.exchange.base import ExchangeAdapter
    from hedge_core.runner.hedge import HedgeTask
    from hedge_core.runner.hedge_spec import HedgeSpec

__all__ = ["before_entry_live", "close_candidates", "current_venue_rows", "entry_near", "rechoosing_live"]

log = logging.getLogger("hedge_core.runner.best_entry")


def routed_of(task: HedgeTask) -> RoutedAdapter | None:
    """The hedge's two-venue adapter (recommend: the one its RecommendAdapter reads), None for any other."""
    ra = task.raw_adapter
    inner = getattr(ra, "market_data", ra)
    return inner if isinstance(inner, RoutedAdapter) else None


def rechoosing_live(task: HedgeTask) -> bool:
    """Does this live/recommend hedge re-choose its perp venue at entries? A best-execution choice, legs on
    two venues (spot leg and perp leg)."""
    s = task.spec
    return bool(s.perp_venue_choice) and s.mode in ("live", "recommend") and not s.perp_pair \
        and routed_of(task) is not None


async def _build(task: HedgeTask, venue: str) -> ExchangeAdapter:
    """A live adapter of ``venue`` for the perp leg, with that venue's own keys (live: required)."""
    from hedge_core.runner.supervisor import ADAPTER_FACTORY_ENV

    sup, spec = task.sup, task.spec
    hook = os.environ.get(ADAPTER_FACTORY_ENV)
    if hook:  # tests: the simulators' factory builds the two legs; the spot one is not needed here
        mod, _, fn = hook.partition(":")
        both = getattr(importlib.import_module(mod), fn)(spec.model_copy(update={"perp_venue": venue,
                                                                                "perp_venue_choice": None}))
        spot, perp = both.leg_adapters()
        await spot.close()
        return sup._register_secrets(perp)
    from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter
    from hedge_core.exchange.credentials import load_credentials
    from hedge_core.exchange.routed_live import _keys_hint

    creds = load_credentials(venue, required=False)
    if creds is None and spec.mode == "live":
        raise InvalidInput("credentials", None, f"API keys on the perp venue {_keys_hint(venue)}")
    return sup._register_secrets(CcxtLiveAdapter(venue, creds))


def _cache(task: HedgeTask) -> dict[str, Any]:
    got = getattr(task, "_best_live_candidates", None)
    if got is None:
        got = {}
        task._best_live_candidates = got  # type: ignore[attr-defined]
    return got


async def _candidates(task: HedgeTask, allowed: tuple[str, ...], cur: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The other allowed venues' adapters (built once, markets loaded) and why a venue has none."""
    out, unread = _cache(task), {}
    for v in allowed:
        if v == cur or v in out:
            continue
        try:
            ad = await _build(task, v)
            try:
                await ad.load_markets()
            except BaseException:
                await ad.close()
                raise
            out[v] = ad
        except Exception as exc:  # noqa: BLE001 - a venue that cannot be reached is ranked last, with why
            unread[v] = f"{type(exc).__name__}: {exc}"
    return {v: ad for v, ad in out.items() if v != cur and v in allowed}, unread


async def close_candidates(task: HedgeTask) -> None:
    """Close the candidate venues' adapters of a hedge that ends (errors ignored: they only read)."""
    for ad in list(_cache(task).values()):
        try:
            await ad.close()
        except Exception:  # noqa: BLE001
            pass
    _cache(task).clear()


async def _short_of_margin(task: HedgeTask, adapters: dict[str, Any], fees: dict[str, float]) -> dict[str, str]:
    """:func:`hedge_core.runner.best_entry._short_of_margin` per venue; a wallet that cannot be read: why."""
    from hedge_core.runner.best_entry import _short_of_margin as short

    out: dict[str, str] = {}
    for v, ad in adapters.items():
        try:
            out.update(await short(task.params, {v: ad}, fees, task.driver.ctx.perp.quote))
        except Exception as exc:  # noqa: BLE001 - ranked last, with why
            out[v] = f"perp wallet not read: {type(exc).__name__}: {exc}"
    return out


async def before_entry_live(task: HedgeTask, mu: MarketUpdate) -> str | None:
    """Re-choose the perp venue of a live/recommend hedge before ``mu`` is stepped, when it may enter (flat).

    Returns the venue switched to, or None (not flat, not re-choosing, the current venue still best, no venue
    deep enough, or the move refused: the venue left not flat, the preflight on the new venue).
    """
    from hedge_core.runner.best_entry import _allowed, _flat

    if not rechoosing_live(task) or task.driver is None or task.no_new_entries or not _flat(task):
        return None
    routed = routed_of(task)
    assert routed is not None
    price = float(mu.perp)
    if not price > 0 or not entry_near(task, mu):
        return None
    now = time.monotonic()
    last = getattr(task, "_best_live_ranked_at", None)
    if last is not None and now - last < float(task.spec.best_recheck_s):
        return None  # ranked less than best_recheck_s ago: the venue it left the hedge on stands
    task._best_live_ranked_at = now  # type: ignore[attr-defined]
    params, symbol, cur = task.params, task.spec.perp_symbol, str(routed.perp_venue)
    allowed = _allowed(task)
    amount = float(params.notional) / price  # type: ignore[attr-defined]  # an xcarry set (allowed above)
    rate = float(mu.expected_funding_rate)
    others, unread = await _candidates(task, allowed, cur)
    adapters: dict[str, Any] = {cur: routed.perp, **others}
    fees: dict[str, float] = {}
    for v, ad in list(adapters.items()):
        try:
            fees[v] = perp_taker_fee_of(ad, symbol)
        except InvalidInput as exc:
            unread[v] = str(exc)
            adapters.pop(v)
    short = await _short_of_margin(task, adapters, fees)
    books, unreadable = await fetch_venue_books({v: ad for v, ad in adapters.items() if v not in short}, symbol,
                                                {v: f for v, f in fees.items() if v not in short}, amount=amount)
    unread.update(unreadable)
    unread.update(short)  # ranked last, with why
    try:
        choice = choose_venue(entry_side(params, rate), amount, books, allowed=list(allowed), unread=unread)
    except InvalidInput:
        return None  # no venue deep enough: the entry meets the current venue as it is
    if choice.venue == cur:
        return None
    ts = max(mu.ts, task.clock_now())  # the update's known time, never behind the hedge's clock
    record = {**choice_record(choice, symbol, price, fees, ts, rate), "at": "entry", "previous": cur}
    moved = await _switch(task, routed, adapters[choice.venue], record, ts)
    return choice.venue if moved else None


def entry_near(task: HedgeTask, mu: MarketUpdate) -> bool:
    """Would the strategy enter on ``mu`` (the engine's ``ANALYZING_MARKET`` decision: no cooldown, kill latch or
    pending order, then the strategy's ``decide``) with the set's perp fee as it is, or with a zero perp fee (the
    most a cheaper allowed venue could change)? A decision that cannot be taken here counts as near."""
    from hedge_core.engine.strategies import strategy_for

    c = task.driver.ctx
    if c.kill_latched or c.pending or (c.cooldown_until is not None and mu.ts < c.cooldown_until):
        return False
    params = task.params
    update: dict[str, Any] = {}
    if hasattr(params, "perp_taker_fee"):
        update["perp_taker_fee"] = 0.0
    costs = getattr(params, "venue_costs", None)
    if costs is not None:
        update["venue_costs"] = replace(costs, perp_taker_fee=0.0)
    try:
        strategy = strategy_for(params)
        return any(bool(strategy.decide(c, mu, mu.analytics, p).enter)
                   for p in (params, params.model_copy(update=update)))
    except Exception:  # noqa: BLE001 - unknown: rank, as at every update before
        return True


async def _left_flat(task: HedgeTask, old: Any) -> str | None:
    """Book the venue left's funding and read its position: why the move stops, or None."""
    if task.venue_records:
        await task.poll_funding()  # a payment of the position just closed there is booked on that venue
    lot = float(task.driver.ctx.perp.lot_size or 0.0)
    held = sum(float(p.qty) for p in await old.fetch_positions([task.spec.perp_symbol])
               if p.symbol == task.spec.perp_symbol)
    if abs(held) > max(lot, 1e-12):
        return f"{old.venue} still holds {held:g} {task.spec.perp_symbol} (the journal holds none)"
    return None


async def _switch(task: HedgeTask, routed: RoutedAdapter, new: Any, record: dict[str, Any],
                  ts: pd.Timestamp) -> bool:
    from hedge_core.runner.preflight import preflight_for_spec

    sup, spec, v = task.sup, task.spec, str(record["venue"])
    old = routed.perp
    new_spec: HedgeSpec = spec.model_copy(update={"perp_venue": v, "perp_venue_choice": record})
    params = sup._params_for(new_spec)
    inst = None
    # everything that reads a venue happens BEFORE the journal: a failure here leaves the hedge where it is
    try:
        why = await _left_flat(task, old)
        if why is None:
            try:  # the same checks (and live, the same settings) as a start on v
                await preflight_for_spec(sup, new_spec, params, RoutedAdapter(routed.spot, new), apply=True)
            except InvalidInput as exc:
                why = f"the preflight on {v} refused: {exc}"
        if why is None:
            inst = (await new.load_markets())[spec.perp_symbol]
    except Exception as exc:  # noqa: BLE001 - a venue unreadable now: the entry meets the current venue
        why = f"{type(exc).__name__}: {exc}"
    if why is not None or inst is None:
        log_event(log, "perp venue not moved at entry", level=logging.WARNING, hedge_id=task.hedge_id, venue=v,
                  previous=spec.perp_venue, why=why)
        return False
    from hedge_core.runner.best_entry import _flat, journal_then_move

    async def to_new() -> Any:  # the routed adapter's perp leg is v's adapter (a restart: v's keys)
        routed.perp, routed.perp_venue, routed.venue = new, v, f"{routed.spot_venue}+{v}"
        read_mode = getattr(new, "fetch_position_mode", None)
        if callable(read_mode):
            routed.fetch_position_mode = read_mode
        elif "fetch_position_mode" in vars(routed):
            del routed.fetch_position_mode
        ra = task.raw_adapter
        if ra is not routed:  # recommend: the RecommendAdapter over the routed legs
            ra.venue, ra._markets = routed.venue, None
        task.adapter.venue = ra.venue
        return inst

    async with task.lock:
        if not _flat(task):  # something filled meanwhile: never move an open leg
            return False
        await journal_then_move(task, task._state(), new_spec, params, record, ts, to_new)
    cache = _cache(task)
    cache.pop(v, None)
    cache[str(spec.perp_venue)] = old  # the venue left: a candidate of the next entry
    log_event(log, "perp venue re-chosen at entry", hedge_id=task.hedge_id, venue=v, previous=spec.perp_venue,
              scores={s["venue"]: (s["net_quote"] if not s["reason"] else s["reason"]) for s in record["ranking"]})
    return True


def current_venue_rows(spec: HedgeSpec, fills: pd.DataFrame, funding: pd.DataFrame
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The journal's fills and funding rows on the venues the hedge is on now (a hedge whose perp venue moved at
    an entry: the rows of a perp venue it left, flat, are set aside); any other hedge's rows as they are."""
    if not spec.perp_venue_choice or spec.perp_pair:
        return fills, funding
    perp_venue = spec.leg_venues[1]
    if len(fills) and "venue" in fills.columns:
        fills = fills[(fills["leg"] == "spot") | (fills["venue"].astype(str) == perp_venue)]
    if len(funding) and "venue" in funding.columns:
        funding = funding[funding["venue"].astype(str) == perp_venue]
    return fills, funding
