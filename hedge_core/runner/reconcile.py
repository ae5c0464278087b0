"""Recovery after a restart: reconcile the journal with the venue, then rebuild the hedge.

:func:`reconcile_orders` (imperative, talks to the venue):

1. every journaled order that is not final is looked up by its client order id:
   - the venue has never seen it -> ``never_sent`` (the intent was written, the send never
     happened); it is NOT re-sent: the engine re-decides from the actual book;
   - still working -> cancelled (its fills are kept); the engine re-decides;
   - final -> its status and cumulative fill are journaled;
2. for every order, fills the venue reports beyond the journal's are journaled, in the driver's
   own trade-id scheme so nothing is booked twice: on a venue whose order answers carry no fills
   (live: Binance, Bybit) from its TRADE RECORDS matched by venue order id (the venue's
   quantity, price, commission and commission asset, e.g. a spot buy's commission in BTC); on
   the paper venue from the order answer (``<client order id>:<cumulative filled>``).

:func:`rebuild_context` (pure): legs from the journaled fills and funding, the client-order-id
sequence continued past every journaled id (a new order can never reuse an old id), and the
state the recovery policy asks for (see :func:`recovery_state`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import pandas as pd

from hedge_core.engine.context import ORDER_REFS_KEPT, HedgeContext
from hedge_core.engine.driver import answers_carry_fills, record_trade_id, snapshot_trade_id
from hedge_core.engine.events import FillEvent
from hedge_core.engine.ledger import QTY_EPS, apply_funding, book_fill, slippage_cost
from hedge_core.engine.states import State
from hedge_core.errors import OrderNotFound
from hedge_core.runner.journal import FINAL_ORDER_STATUSES, Journal
from hedge_core.types import Fill, MarketKind, Order, OrderStatus, Side

__all__ = ["ReconcileReport", "rebuild_context", "reconcile_orders", "recovery_state", "seq_of"]


@dataclass
class ReconcileReport:
    never_sent: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    finalised: list[str] = field(default_factory=list)
    fills_added: list[str] = field(default_factory=list)
    venue_positions: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"never_sent": self.never_sent, "cancelled": self.cancelled, "finalised": self.finalised,
                "fills_added": self.fills_added, "venue_positions": self.venue_positions}


def seq_of(coid: str) -> int | None:
    """Sequence number inside a ``types.client_order_id`` (``h<leg><seq:05d><attempt>-<digest>``)."""
    try:
        return int(coid[2:7]) if coid.startswith("h") and coid[7:8].isdigit() and coid[8:9] == "-" else None
    except ValueError:
        return None


async def reconcile_orders(hedge_id: str, journal: Journal, adapter: Any) -> ReconcileReport:
    """Bring the journal's orders and fills up to what the venue knows (see module docstring)."""
    rep = ReconcileReport()
    answers: dict[str, Order] = {}
    booked = _booked(journal.fills(hedge_id))
    for row in list(journal.orders(hedge_id)):
        coid, sym = row["client_order_id"], row["symbol"]
        if row["status"] in ("rejected", "never_sent"):
            continue
        if row["status"] in FINAL_ORDER_STATUSES and abs(booked.get(coid, (0.0,))[0] - float(row["filled"] or 0)) <= 1e-12:
            continue  # final and every fill booked: nothing to ask the venue
        try:
            o = await adapter.fetch_order(sym, client_order_id=coid)
        except OrderNotFound:
            if row["status"] == "intent":
                journal.mark_never_sent(hedge_id, coid)
                rep.never_sent.append(coid)
            continue
        if o.status is OrderStatus.OPEN:
            try:
                o = await adapter.cancel_order(sym, client_order_id=coid)
            except OrderNotFound:
                o = await adapter.fetch_order(sym, client_order_id=coid)
            rep.cancelled.append(coid)
        elif row["status"] not in FINAL_ORDER_STATUSES:
            rep.finalised.append(coid)
        journal.order_answer(hedge_id, o)
        answers[coid] = o
    if not answers_carry_fills(adapter):
        await _fills_from_records(hedge_id, journal, adapter, answers, rep)
        return rep
    by_coid = _booked(journal.fills(hedge_id))
    for coid, o in answers.items():
        jq, jc, jf = by_coid.get(coid, (0.0, 0.0, 0.0))
        if o.filled > jq + 1e-12 and o.avg_price:
            dq = o.filled - jq
            px = (o.filled * o.avg_price - jc) / dq
            if not px > 0:
                px = o.avg_price
            row = next(r for r in journal.orders(hedge_id) if r["client_order_id"] == coid)
            ref = row.get("ref_price")
            slip = slippage_cost(o.side, dq, px, float(ref)) if ref is not None and math.isfinite(float(ref)) else 0.0
            fill = Fill(trade_id=snapshot_trade_id(o), order_id=o.id, client_order_id=coid, symbol=o.symbol,
                        side=o.side, qty=dq, price=px, fee=max(o.fee - jf, 0.0), ts=o.ts,
                        fee_currency=o.fee_currency, slippage=slip)
            journal.fill(hedge_id, FillEvent(fill, row["leg"]), row["venue"])
            rep.fills_added.append(fill.trade_id)
    return rep


async def _fills_from_records(hedge_id: str, journal: Journal, adapter: Any, answers: Mapping[str, Order],
                              rep: ReconcileReport) -> None:
    """Journal the venue's trade records of the answered orders that the journal lacks (by venue
    order id; trade id ``<symbol>#<venue trade id>``, the driver's scheme, ``<venue>:...`` on the first
    of two perp legs): quantity, price,
    commission and commission asset as the venue recorded them. An order lookup carries no
    fills (Binance ``GET /api/v3/order``, ``GET /fapi/v1/order``), so nothing is built from it."""
    fills = journal.fills(hedge_id)
    have = set(fills["trade_id"].astype(str)) if len(fills) else set()
    rows = {r["client_order_id"]: r for r in journal.orders(hedge_id)}
    # two perp legs of one symbol (exchange.routed_pair): the symbol cannot tell the venues apart, so each
    # order's trade records are read at the venue its client id routes to
    route = getattr(adapter, "adapter_for_order", None)
    by_symbol: dict[tuple[str, int], list[tuple[str, Order]]] = {}
    sources: dict[int, Any] = {}
    for coid, o in answers.items():
        if o.filled > 1e-12:
            src = route(coid) if callable(route) else adapter
            sources[id(src)] = src
            by_symbol.setdefault((o.symbol, id(src)), []).append((coid, o))
    for (sym, src_id), items in by_symbol.items():
        starts = [pd.Timestamp(rows[c]["intent_ts"]) for c, _ in items if rows[c].get("intent_ts") is not None]
        since = min(starts) - pd.Timedelta(minutes=5) if starts else None
        trades = await sources[src_id].fetch_my_trades(sym, since)
        for coid, o in items:
            row = rows[coid]
            ref = row.get("ref_price")
            ref = float(ref) if ref is not None and math.isfinite(float(ref)) else math.nan
            # two perp legs: the first leg's records carry its venue (record_trade_id); a record journaled
            # before they did (the bare form) is booked already
            venue = row["venue"] if callable(route) and row["leg"] == "spot" else None
            for t in sorted(trades, key=lambda t: (t.ts, t.trade_id)):
                tid = record_trade_id(t, venue)
                if t.order_id != o.id or tid in have or record_trade_id(t) in have:
                    continue
                slip = slippage_cost(t.side, t.qty, t.price, ref) if ref > 0 else 0.0
                fill = replace(t, trade_id=tid, client_order_id=coid, slippage=slip)
                journal.fill(hedge_id, FillEvent(fill, row["leg"]), row["venue"])
                have.add(tid)
                rep.fills_added.append(tid)


def _booked(fills: pd.DataFrame) -> dict[str, tuple[float, float, float]]:
    """client order id -> (qty, cost, fee) booked in the journal."""
    out: dict[str, tuple[float, float, float]] = {}
    for r in fills.itertuples(index=False):
        q, c, f = out.get(r.client_order_id, (0.0, 0.0, 0.0))
        out[r.client_order_id] = (q + float(r.qty), c + float(r.qty) * float(r.price), f + float(r.fee))
    return out


def recovery_state(last_state: str, policy: str, is_flat: bool) -> State:
    """State a recovered hedge continues in.

    ======================  ===========================  ==============================
    last journaled state     policy ``resume``            policy ``flatten``
    ======================  ===========================  ==============================
    COMPLETED                COMPLETED                    COMPLETED
    PAUSED / ERROR           PAUSED / ERROR (operator)    CLOSING (or COMPLETED if flat)
    CLOSING_POSITIONS        CLOSING (finish the close)   CLOSING
    anything else, flat      ANALYZING_MARKET             COMPLETED
    anything else, in mkt    MONITORING_POSITIONS         CLOSING_POSITIONS
    ======================  ===========================  ==============================

    MONITORING with an unhedged leg rebalances at once (the engine sees the drift), so a spot
    leg that filled before a crash is hedged, never left naked.
    """
    if last_state == State.COMPLETED:
        return State.COMPLETED
    if policy == "flatten" or last_state == State.CLOSING_POSITIONS:
        return State.COMPLETED if is_flat else State.CLOSING_POSITIONS
    if last_state in (State.PAUSED, State.ERROR):
        return State(last_state)
    return State.ANALYZING_MARKET if is_flat else State.MONITORING_POSITIONS


def rebuild_context(ctx0: HedgeContext, fills: pd.DataFrame, funding: pd.DataFrame, coids: Iterable[str],
                    state: State, prices: Mapping[str, float], ts: pd.Timestamp, *,
                    refs: Mapping[str, float] | None = None) -> HedgeContext:
    """A context restored from the journal (pure; see module docstring).

    ``prices``: last known ``spot`` and ``perp`` prices (quote per base), NaN when unknown.
    ``refs``: journaled reference prices by client order id (the last ``ORDER_REFS_KEPT`` are
    kept, so a late fill of an order placed before the restart gets its slippage).
    """
    spot, perp = ctx0.spot, ctx0.perp
    trades: list[str] = []
    first_ts: pd.Timestamp | None = None
    if len(fills):
        for r in fills.sort_values(["ts", "trade_id"]).itertuples(index=False):
            leg = spot if r.leg == "spot" else perp
            leg = book_fill(leg, Side(r.side), float(r.qty), float(r.price), float(r.fee), r.fee_currency or "",
                            float(r.slippage) if r.slippage is not None and not math.isnan(r.slippage) else 0.0)
            if r.leg == "spot":
                spot = leg
            else:
                perp = leg
            trades.append(str(r.trade_id))
            first_ts = first_ts or pd.Timestamp(r.ts)
    if len(funding):
        # two perp legs: a row journaled under the first leg's venue is that leg's funding
        first = spot.kind is MarketKind.PERP and "venue" in funding
        venues = funding["venue"] if first else [None] * len(funding)
        for amt, venue in zip(funding["amount"], venues):
            if first and venue == spot.venue:
                spot = apply_funding(spot, float(amt))
            else:
                perp = apply_funding(perp, float(amt))
    coids = list(coids)
    seqs = [s for s in (seq_of(c) for c in coids) if s is not None]
    sp, pp = float(prices.get("spot", math.nan)), float(prices.get("perp", math.nan))
    sp = sp if sp > 0 else (spot.avg_entry if spot.avg_entry > 0 else math.nan)
    pp = pp if pp > 0 else (perp.avg_entry if perp.avg_entry > 0 else math.nan)
    in_market = state in (State.MONITORING_POSITIONS, State.CLOSING_POSITIONS, State.PAUSED, State.ERROR)
    return replace(
        ctx0, state=state, spot=spot, perp=perp, seq=(max(seqs) + 1) if seqs else 0,
        known_orders=frozenset(coids), seen_trades=tuple(trades[-512:]),
        target_spot_qty=spot.qty if in_market else 0.0, spot_price=sp, perp_price=pp,
        mark_price=pp, last_ts=max(ts, ctx0.last_ts),
        entered_at=first_ts if in_market and abs(spot.qty) > QTY_EPS else None,
        entry_notional=abs(spot.qty) * (spot.avg_entry or sp or 0.0),
        exit_reason="recovery: flatten policy" if state is State.CLOSING_POSITIONS else "",
        order_refs=MappingProxyType(dict(list((refs or {}).items())[-ORDER_REFS_KEPT:])))
