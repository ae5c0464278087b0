"""The venue's records beside the journal: funding income to book, and the continuous reconciliation.

Principle 8: live fills, fees and funding are booked from the venue's own trade and income
records; our own computation is the expectation kept beside them, and reconciliation compares
journal and venue continuously (see ``docs/live-records.md``).

- :func:`new_funding` (pure): the venue's funding payments not booked yet (dedupe by
  venue + symbol + ts, the ``funding_payments`` key), each with the engine's expected figure
  ``-qty x mark x rate`` from its own book.
- :func:`venue_figures` (I/O, read-only): what the venue says about one hedge: perp position,
  the spot base balance, open orders, trades of our orders, funding income.
- :func:`journal_figures` (pure): the same figures from the journal and the hedge's context.
- :func:`compare` (pure): the differences above one lot (quantities) or ``money_tol`` (money).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from hedge_core.engine.context import HedgeContext
from hedge_core.money import funding_payment
from hedge_core.types import Fill, FundingPayment

__all__ = ["Difference", "Figures", "compare", "journal_figures", "new_funding", "quote_fee", "venue_figures"]

MONEY_TOL = 1e-6  # USDT
QTY_TOL = 1e-9  # base: per-order fills are copied from the venue's records, so they agree exactly


def quote_fee(fee: float, fee_currency: str, price: float, base: str) -> float:
    """A commission valued in quote units: one in the base asset at the fill price (quote per base)."""
    return fee * price if fee_currency == base else fee


@dataclass(frozen=True)
class Figures:
    """One side of a reconciliation (journal or venue). Quantities base, money quote (USDT).

    ``fills``: venue order id -> (base filled, commission valued in quote).
    """

    perp_qty: float
    spot_base: float
    open_orders: frozenset[str] = frozenset()
    fills: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    funding: float = 0.0
    trades: tuple[tuple[str, Fill], ...] = ()  # venue side: (leg, trade record) of the hedge's orders

    @property
    def fees(self) -> float:
        return sum(f for _q, f in self.fills.values())


@dataclass(frozen=True)
class Difference:
    """One thing journal and venue disagree on, with both figures."""

    what: str
    journal: float
    venue: float

    def __str__(self) -> str:
        return f"{self.what}: journal {self.journal:.10g}, venue {self.venue:.10g}"


def new_funding(payments: Iterable[FundingPayment], booked: set[pd.Timestamp], since: pd.Timestamp,
                ctx: HedgeContext) -> list[tuple[FundingPayment, float, float, float]]:
    """Venue funding payments to book: ``(payment, rate, mark, expected)`` in time order.

    Skips payments booked already (``booked``: their ``ts``) or before ``since`` (the hedge's start).
    ``rate``/``mark``: the payment's own when known, else the engine's last; ``expected`` (quote,
    + received): ``-ctx.perp.qty x mark x rate``, the engine's figure kept beside the venue's.
    """
    out = []
    for fp in sorted(payments, key=lambda p: p.ts):
        ts = pd.Timestamp(fp.ts)
        if ts in booked or ts < since:
            continue
        rate = fp.rate if fp.rate is not None and math.isfinite(fp.rate) else ctx.last_funding_rate
        mark = fp.mark_price if fp.mark_price is not None and math.isfinite(fp.mark_price) and fp.mark_price > 0 \
            else ctx.mark_price
        expected = funding_payment(ctx.perp.qty, mark, rate) if math.isfinite(mark) and math.isfinite(rate) \
            else math.nan
        out.append((fp, float(rate), float(mark), float(expected)))
    return out


async def venue_figures(adapter: Any, ctx: HedgeContext, order_ids: set[str], since: pd.Timestamp | None
                        ) -> Figures:
    """Read what the venue says about this hedge (positions, spot base, open orders, trades, funding).

    ``order_ids``: the venue ids of the hedge's orders (its journal); trades of other orders are not
    counted per order (an ADL shows in the position instead). Errors propagate (the caller skips the pass).
    """
    spot, perp = ctx.spot, ctx.perp
    positions = await adapter.fetch_positions([perp.symbol])
    pq = sum(p.qty for p in positions if p.symbol == perp.symbol)
    bal = await adapter.fetch_balance("spot")
    b = bal.get(spot.base)
    sb = float(b.free + b.used) if b is not None else 0.0
    opens: set[str] = set()
    for sym in (spot.symbol, perp.symbol):
        opens |= {o.client_order_id for o in await adapter.fetch_open_orders(sym)}
    fills: dict[str, tuple[float, float]] = {}
    trades: list[tuple[str, Fill]] = []
    for leg in (spot, perp):
        for f in await adapter.fetch_my_trades(leg.symbol, since):
            if f.order_id not in order_ids:
                continue
            trades.append((leg.name, f))
            q, c = fills.get(f.order_id, (0.0, 0.0))
            fills[f.order_id] = (q + f.qty, c + quote_fee(f.fee, f.fee_currency, f.price, leg.base))
    funding = sum(p.amount for p in await adapter.fetch_funding_payments(perp.symbol, since)
                  if since is None or p.ts >= since)
    return Figures(pq, sb, frozenset(opens), fills, float(funding), tuple(trades))


def journal_figures(ctx: HedgeContext, fills: pd.DataFrame, funding: pd.DataFrame, venue_open: Iterable[str]
                    ) -> Figures:
    """The journal's side: positions from the context (rebuilt from journaled fills), fills and fees
    per venue order id from the ``fills`` table, funding from ``funding_payments``; ``open_orders``:
    the venue's open orders that are the hedge's AND pending in its context (others are a difference)."""
    per: dict[str, tuple[float, float]] = {}
    for r in fills.itertuples(index=False):
        base = ctx.spot.base if r.leg == "spot" else ctx.perp.base
        q, c = per.get(str(r.order_id), (0.0, 0.0))
        fee = quote_fee(float(r.fee), r.fee_currency or "", float(r.price), base)
        per[str(r.order_id)] = (q + float(r.qty), c + fee)
    tracked = frozenset(c for c in venue_open if c in ctx.pending or c not in ctx.known_orders)
    total = float(funding["amount"].sum()) if len(funding) else 0.0
    return Figures(ctx.perp.qty, ctx.spot.qty, tracked, per, total)


def compare(journal: Figures, venue: Figures, *, spot_lot: float, perp_lot: float,
            money_tol: float = MONEY_TOL) -> list[Difference]:
    """What differs: positions and the spot balance by more than one lot (base), an order's filled
    quantity at all (the journal copies the venue's records), commissions and funding by more than
    ``money_tol`` (quote)."""
    out: list[Difference] = []
    if abs(journal.perp_qty - venue.perp_qty) > perp_lot:
        out.append(Difference("perp position (base)", journal.perp_qty, venue.perp_qty))
    if abs(journal.spot_base - venue.spot_base) > spot_lot:
        out.append(Difference("spot base balance", journal.spot_base, venue.spot_base))
    untracked = sorted(venue.open_orders - journal.open_orders)
    if untracked:
        out.append(Difference(f"open orders at the venue the hedge does not track ({', '.join(untracked)})",
                              0.0, float(len(untracked))))
    for oid in sorted(venue.fills):  # fills are the venue's records: the journal holds them exactly
        jq, jf = journal.fills.get(oid, (0.0, 0.0))
        vq, vf = venue.fills[oid]
        if abs(jq - vq) > QTY_TOL:
            out.append(Difference(f"filled qty of order {oid} (base)", jq, vq))
        elif abs(jf - vf) > money_tol:
            out.append(Difference(f"commission of order {oid} (USDT)", jf, vf))
    if abs(journal.funding - venue.funding) > money_tol:
        out.append(Difference("funding (USDT)", journal.funding, venue.funding))
    return out
