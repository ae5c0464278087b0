"""The venue's records beside the journal: funding income to book, and the continuous reconciliation.

Principle 8: live fills, fees and funding are booked from the venue's own trade and income
records; our own computation is the expectation kept beside them, and reconciliation compares
journal and venue continuously (see ``docs/live-records.md``).

- :func:`new_funding` (pure): the venue's funding payments not booked yet (dedupe by
  venue + symbol + ts, the ``funding_payments`` key), each with the engine's expected figure
  ``-qty x mark x rate`` from its own book.
- :func:`leg_contracts` (pure): the contracts the hedge leg is read on: the leg's own (the perpetual or
  a dated future after a calendar roll), a roll's destination, the perpetual, and any contract the journal
  shows a fill on (a position there the journal does not expect is a difference).
- :func:`venue_figures` (I/O, read-only): what the venue says about one hedge: the position on each of
  those contracts, the spot base balance, open orders, trades of our orders, funding income (of the
  perpetual only: a dated future pays none).
- :func:`journal_figures` (pure): the same figures from the journal and the hedge's context.
- :func:`compare` (pure): the differences above one lot (quantities) or ``money_tol`` (money), each
  naming the leg, contract or order it concerns.
- :func:`by_venue` (pure): the same pass reported per venue (a routed hedge's spot venue and perp venue):
  each venue's differences and its holdings, journal beside venue.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from hedge_core.engine.context import HedgeContext
from hedge_core.engine.roll_step import is_dated, perpetual_qty
from hedge_core.errors import InvalidInput
from hedge_core.money import funding_payment
from hedge_core.types import Fill, FundingPayment

__all__ = ["Difference", "Figures", "by_venue", "compare", "journal_figures", "journal_positions", "leg_contracts", "new_funding",
           "quote_fee", "venue_figures"]

MONEY_TOL = 1e-6  # USDT
QTY_TOL = 1e-9  # base: per-order fills are copied from the venue's records, so they agree exactly


def quote_fee(fee: float, fee_currency: str, price: float, base: str) -> float:
    """A commission valued in quote units: one in the base asset at the fill price (quote per base)."""
    return fee * price if fee_currency == base else fee


@dataclass(frozen=True)
class Figures:
    """One side of a reconciliation (journal or venue). Quantities base, money quote (USDT).

    ``fills``: venue order id -> (base filled, commission valued in quote).
    ``contracts``: contract symbol -> signed position (base) on it, for every contract of the hedge leg that
    was read (:func:`leg_contracts`); ``perp_qty`` is their sum. Empty: only ``perp_qty`` is compared.
    """

    perp_qty: float
    spot_base: float
    open_orders: frozenset[str] = frozenset()
    fills: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    funding: float = 0.0
    trades: tuple[tuple[str, Fill], ...] = ()  # venue side: (leg, trade record) of the hedge's orders
    contracts: Mapping[str, float] = field(default_factory=dict)
    open_symbols: Mapping[str, str] = field(default_factory=dict)  # venue side: open order's client id -> symbol

    @property
    def fees(self) -> float:
        return sum(f for _q, f in self.fills.values())


@dataclass(frozen=True)
class Difference:
    """One thing journal and venue disagree on, with both figures; ``leg`` (``spot`` / ``perp``),
    ``symbol`` (the contract or market) and ``order_id`` (the venue's id) say what it concerns, where known
    (:func:`by_venue` reports it under that venue)."""

    what: str
    journal: float
    venue: float
    leg: str = ""
    symbol: str = ""
    order_id: str = ""

    def __str__(self) -> str:
        return f"{self.what}: journal {self.journal:.10g}, venue {self.venue:.10g}"


def new_funding(payments: Iterable[FundingPayment], booked: set[pd.Timestamp], since: pd.Timestamp,
                ctx: HedgeContext) -> list[tuple[FundingPayment, float, float, float]]:
    """Venue funding payments to book: ``(payment, rate, mark, expected)`` in time order.

    Skips payments booked already (``booked``: their ``ts``) or before ``since`` (the hedge's start).
    ``rate``/``mark``: the payment's own when known, else the engine's last; ``expected`` (quote,
    + received): ``-q x mark x rate`` with ``q`` the quantity held on the PERPETUAL
    (:func:`~hedge_core.engine.roll_step.perpetual_qty`: 0 while the leg is wholly on a dated future),
    the engine's figure kept beside the venue's.
    """
    out = []
    for fp in sorted(payments, key=lambda p: p.ts):
        ts = pd.Timestamp(fp.ts)
        if ts in booked or ts < since:
            continue
        rate = fp.rate if fp.rate is not None and math.isfinite(fp.rate) else ctx.last_funding_rate
        mark = fp.mark_price if fp.mark_price is not None and math.isfinite(fp.mark_price) and fp.mark_price > 0 \
            else ctx.mark_price
        expected = funding_payment(perpetual_qty(ctx), mark, rate) if math.isfinite(mark) and math.isfinite(rate) \
            else math.nan
        out.append((fp, float(rate), float(mark), float(expected)))
    return out


def leg_contracts(ctx: HedgeContext, perpetual: str | None = None, journaled: Iterable[str] = ()) -> tuple[str, ...]:
    """The contracts the hedge leg is read on at the venue, in this order, each once: the leg's own
    (``ctx.perp``: the perpetual, or the dated future after a calendar roll), a roll's destination
    (``ctx.roll_leg``), the hedge's ``perpetual`` (its spec's perp symbol; default the leg's) and the
    ``journaled`` contracts (symbols of the hedge's non-spot fills: a contract it left)."""
    syms = [ctx.perp.symbol]
    if ctx.roll_leg is not None:
        syms.append(ctx.roll_leg.symbol)
    if perpetual:
        syms.append(perpetual)
    syms.extend(str(s) for s in journaled if s and str(s) != ctx.spot.symbol)
    return tuple(dict.fromkeys(syms))


def journal_positions(ctx: HedgeContext, contracts: Iterable[str]) -> dict[str, float]:
    """The context's signed position (base) on each of ``contracts``: the perp leg's on its symbol, a roll's
    destination on its own, 0 on any other (a contract the hedge left is flat in its book)."""
    out = {str(s): 0.0 for s in contracts}
    for leg in (ctx.perp, ctx.roll_leg):
        if leg is not None:
            out[leg.symbol] = out.get(leg.symbol, 0.0) + float(leg.qty)
    return out


async def venue_figures(adapter: Any, ctx: HedgeContext, order_ids: set[str], since: pd.Timestamp | None, *,
                        perpetual: str | None = None, contracts: Iterable[str] | None = None) -> Figures:
    """Read what the venue says about this hedge (positions, spot base, open orders, trades, funding).

    ``order_ids``: the venue ids of the hedge's orders (its journal); trades of other orders are not
    counted per order (an ADL shows in the position instead). ``perpetual``: the hedge's perpetual, the
    one contract whose funding income is read (a dated future pays none; default: the leg's symbol, without
    the ``-YYMMDD`` of a dated future).
    ``contracts``: the contracts whose positions, open orders and trades are read (default
    :func:`leg_contracts` of ``ctx`` and ``perpetual``), one position request per contract (Bybit
    answers one symbol per request). Errors propagate (the caller skips the pass).
    """
    spot, perp = ctx.spot, ctx.perp
    # the perpetual of a dated future's unified symbol: BTC/USDT:USDT-261225 -> BTC/USDT:USDT
    perpetual = perpetual or (perp.symbol.rsplit("-", 1)[0] if is_dated(perp.symbol) else perp.symbol)
    syms = tuple(contracts) if contracts is not None else leg_contracts(ctx, perpetual)
    held: dict[str, float] = {s: 0.0 for s in syms}
    gone: set[str] = set()
    for sym in syms:
        try:
            for p in await adapter.fetch_positions([sym]):
                if p.symbol == sym:
                    held[sym] += float(p.qty)
        except InvalidInput:
            if sym == perp.symbol:
                raise
            gone.add(sym)  # a contract the venue no longer lists (a delivered future): nothing is held there
    bal = await adapter.fetch_balance("spot")
    b = bal.get(spot.base)
    sb = float(b.free + b.used) if b is not None else 0.0
    opens: dict[str, str] = {}
    for sym in (spot.symbol, *(s for s in syms if s not in gone)):
        opens.update({o.client_order_id: sym for o in await adapter.fetch_open_orders(sym)})
    fills: dict[str, tuple[float, float]] = {}
    trades: list[tuple[str, Fill]] = []
    roll_sym = ctx.roll_leg.symbol if ctx.roll_leg is not None else None
    for name, sym, base in (("spot", spot.symbol, spot.base),
                            *(("roll" if s == roll_sym else "perp", s, perp.base) for s in syms if s not in gone)):
        for f in await adapter.fetch_my_trades(sym, since):
            if f.order_id not in order_ids:
                continue
            trades.append((name, f))
            q, c = fills.get(f.order_id, (0.0, 0.0))
            fills[f.order_id] = (q + f.qty, c + quote_fee(f.fee, f.fee_currency, f.price, base))
    funding = sum(p.amount for p in await adapter.fetch_funding_payments(perpetual, since)
                  if since is None or p.ts >= since)
    return Figures(float(sum(held.values())), sb, frozenset(opens), fills, float(funding), tuple(trades), held, opens)


def journal_figures(ctx: HedgeContext, fills: pd.DataFrame, funding: pd.DataFrame, venue_open: Iterable[str],
                    contracts: Iterable[str] = ()) -> Figures:
    """The journal's side: positions from the context (rebuilt from journaled fills; per contract on
    ``contracts``, see :func:`journal_positions`), fills and fees per venue order id from the ``fills``
    table, funding from ``funding_payments``; ``open_orders``: the venue's open orders that are the
    hedge's AND pending in its context (others are a difference)."""
    per: dict[str, tuple[float, float]] = {}
    for r in fills.itertuples(index=False):
        base = ctx.spot.base if r.leg == "spot" else ctx.perp.base
        q, c = per.get(str(r.order_id), (0.0, 0.0))
        fee = quote_fee(float(r.fee), r.fee_currency or "", float(r.price), base)
        per[str(r.order_id)] = (q + float(r.qty), c + fee)
    tracked = frozenset(c for c in venue_open if c in ctx.pending or c not in ctx.known_orders)
    total = float(funding["amount"].sum()) if len(funding) else 0.0
    held = journal_positions(ctx, contracts) if contracts else {}
    qty = float(sum(held.values())) if held else ctx.perp.qty
    return Figures(qty, ctx.spot.qty, tracked, per, total, (), held)


def compare(journal: Figures, venue: Figures, *, spot_lot: float, perp_lot: float,
            money_tol: float = MONEY_TOL) -> list[Difference]:
    """What differs: positions and the spot balance by more than one lot (base), an order's filled
    quantity at all (the journal copies the venue's records), commissions and funding by more than
    ``money_tol`` (quote). Positions: per contract where both sides read contracts (a leg moved by a
    calendar roll: ``perp position on BTC/USDT:USDT-261225 (base)``), else the one perp position."""
    out: list[Difference] = []
    if journal.contracts and venue.contracts:
        for sym in dict.fromkeys([*journal.contracts, *venue.contracts]):
            jq, vq = float(journal.contracts.get(sym, 0.0)), float(venue.contracts.get(sym, 0.0))
            if abs(jq - vq) > perp_lot:
                out.append(Difference(f"perp position on {sym} (base)", jq, vq, "perp", sym))
    elif abs(journal.perp_qty - venue.perp_qty) > perp_lot:
        out.append(Difference("perp position (base)", journal.perp_qty, venue.perp_qty, "perp"))
    if abs(journal.spot_base - venue.spot_base) > spot_lot:
        out.append(Difference("spot base balance", journal.spot_base, venue.spot_base, "spot"))
    untracked = sorted(venue.open_orders - journal.open_orders)
    groups: dict[str, list[str]] = {}
    for coid in untracked:  # one difference per market the orders are on (one when the markets are unknown)
        groups.setdefault(venue.open_symbols.get(coid, ""), []).append(coid)
    for sym, ids in groups.items():
        out.append(Difference(f"open orders at the venue the hedge does not track ({', '.join(ids)})",
                              0.0, float(len(ids)), "", sym))
    for oid in sorted(venue.fills):  # fills are the venue's records: the journal holds them exactly
        jq, jf = journal.fills.get(oid, (0.0, 0.0))
        vq, vf = venue.fills[oid]
        if abs(jq - vq) > QTY_TOL:
            out.append(Difference(f"filled qty of order {oid} (base)", jq, vq, order_id=oid))
        elif abs(jf - vf) > money_tol:
            out.append(Difference(f"commission of order {oid} (USDT)", jf, vf, order_id=oid))
    if abs(journal.funding - venue.funding) > money_tol:
        out.append(Difference("funding (USDT)", journal.funding, venue.funding, "perp"))
    return out


def by_venue(diffs: Iterable[Difference], journal: Figures, venue: Figures, *, spot_venue: str, perp_venue: str,
             spot_symbol: str, order_venues: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """One reconciliation pass reported per venue (pure): ``{venue: {"legs", "differences", "spot_base",
    "positions"}}``.

    ``spot_venue`` / ``perp_venue``: the venue of each leg (the same name for a one-venue hedge: one entry
    with both legs). A difference goes to the venue of its order (``order_venues``: venue order id ->
    venue, from the journal), else of its market (``spot_symbol`` -> the spot venue, any other -> the perp
    venue), else of its leg. Holdings, journal beside venue (base units): ``spot_base`` on the spot venue,
    ``positions`` (contract -> journal, venue) on the perp venue. Nothing is netted between venues."""
    out: dict[str, dict[str, Any]] = {}
    for leg, v in (("spot", spot_venue), ("perp", perp_venue)):
        row = out.setdefault(v, {"legs": [], "differences": []})
        row["legs"].append(leg)
    out[spot_venue]["spot_base"] = {"journal": journal.spot_base, "venue": venue.spot_base}
    held = dict(journal.contracts) or {"": journal.perp_qty}
    vheld = dict(venue.contracts) or {"": venue.perp_qty}
    out[perp_venue]["positions"] = {s or "perp": {"journal": float(held.get(s, 0.0)), "venue": float(vheld.get(s, 0.0))}
                                    for s in dict.fromkeys([*held, *vheld])}
    for d in diffs:
        if d.order_id and d.order_id in order_venues and order_venues[d.order_id] in out:
            v = order_venues[d.order_id]
        elif d.symbol:
            v = spot_venue if d.symbol == spot_symbol else perp_venue
        else:
            v = spot_venue if d.leg == "spot" else perp_venue
        out[v]["differences"].append(str(d))
    return out
