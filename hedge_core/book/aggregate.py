"""Pure aggregation of hedge positions into a :class:`~hedge_core.book.model.BookSnapshot`.

Plain Python over a few hundred rows: one pass groups by asset, by venue and by (asset, venue)
(the netting of issue 15 item 5). No pandas: the book refreshes on every runner tick and for
100 hedges takes well under a millisecond (bench/bench_book.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from hedge_core.book.model import AssetRow, BookSnapshot, HedgePosition, LoanRow, NettedRow, VenueRow
from hedge_core.errors import InvalidInput

__all__ = ["aggregate", "drawdown", "funding_per_day", "liq_distance"]


def liq_distance(qty: float, mark: float, liq: float) -> float:
    """Adverse move to liquidation as a fraction of the mark: long ``(mark - liq) / mark``, short
    ``(liq - mark) / mark`` (the engine's convention, ``analytics.risk.liquidation_distance``);
    NaN when flat or either price is unknown."""
    if qty == 0 or not (mark > 0) or not (liq >= 0) or math.isnan(liq):
        return math.nan
    return (mark - liq) / mark if qty > 0 else (liq - mark) / mark


def funding_per_day(rows: Iterable[Mapping[str, Any]]) -> tuple[tuple[str, float], ...]:
    """Funding booked per UTC day from ledger ``funding_payments`` rows (``ts``, ``amount``: +
    received, quote). Days in order; rows with a missing amount are skipped."""
    days: dict[str, float] = {}
    for r in rows:
        a = r.get("amount")
        if a is None or not math.isfinite(float(a)):
            continue
        ts = pd.Timestamp(r["ts"])
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        d = ts.strftime("%Y-%m-%d")
        days[d] = days.get(d, 0.0) + float(a)
    return tuple(sorted(days.items()))


def drawdown(pnl_history: Sequence[float], *, peak: float = 0.0, worst: float = 0.0) -> tuple[float, float]:
    """(current, maximum) drawdown of a book-PnL history (quote, both >= 0).

    Current = running peak - last value; maximum = the largest peak-to-trough fall. The peak
    starts at ``peak`` (default 0: the book's PnL before any hedge, so a book that only lost has a
    drawdown) and the maximum at ``worst`` (>= 0): what came before the history (the runner's
    journaled book marks, :mod:`hedge_core.book.monitor`).
    """
    for name, v0 in (("peak", peak), ("worst", worst)):
        if not math.isfinite(float(v0)) or (name == "worst" and v0 < 0):
            raise InvalidInput(name, v0, "a finite number" + (" >= 0 (quote)" if name == "worst" else " (quote)"))
    peak, cur, worst = float(peak), 0.0, float(worst)
    for v in pnl_history:
        x = float(v)
        if not math.isfinite(x):
            raise InvalidInput("pnl_history", v, "finite PnL values (quote)")
        peak = max(peak, x)
        cur = peak - x
        worst = max(worst, cur)
    return cur, worst


def aggregate(positions: Iterable[HedgePosition], *, funding_rows: Iterable[Mapping[str, Any]] = (),
              pnl_history: Sequence[float] = (), var: Mapping[str, Any] | None = None,
              drawdown_from: tuple[float, float] = (0.0, 0.0)) -> BookSnapshot:
    """The book of ``positions``.

    Parameters
    ----------
    positions
        One :class:`HedgePosition` per hedge (hedge ids must be unique).
    funding_rows
        Ledger funding rows (``ts``, ``amount``) for :func:`funding_per_day`.
    pnl_history
        Book PnL over time (quote, oldest first) for the drawdown; the current book PnL is
        appended, so an empty history gives the drawdown of the current PnL from 0.
    drawdown_from
        (peak book PnL, max drawdown) before ``pnl_history`` (quote; default (0, 0)): the runner's
        book keeps these two numbers instead of a history (:func:`drawdown`).
    var
        A result of :func:`hedge_core.book.var.book_var` to carry along (computed by the caller:
        it needs returns from the store).
    """
    seen: set[str] = set()
    assets: dict[str, list[float]] = {}  # spot, perp, price x |qty| sum, |qty| sum, hedges, last price
    venues: dict[str, list[Any]] = {}  # gross, net, margin, best distance, hedge, hedges
    nets: dict[tuple[str, str], list[float]] = {}  # spot, perp, mark x |perp|, |perp|, margin, -, n, mark
    loans: list[LoanRow] = []
    pnl = day = fund = 0.0
    n = 0
    for p in positions:
        if p.hedge_id in seen:
            raise InvalidInput("hedge_id", p.hedge_id, "unique hedge ids in the book")
        seen.add(p.hedge_id)
        n += 1
        sp = p.spot_price if p.spot_price > 0 else p.perp_price
        pp = p.perp_price
        sp_ok, pp_ok = sp > 0, pp > 0
        pa, pv = p.perp_asset_, p.perp_venue_
        # each leg counts under its own asset and venue (a cross hedge: ETH spot, BTC perp; two venues)
        for asset, qty, price, ok, col in ((p.asset, p.spot_qty, sp, sp_ok, 0), (pa, p.perp_qty, pp, pp_ok, 1)):
            a = assets.setdefault(asset, [0.0, 0.0, 0.0, 0.0, set(), math.nan])
            a[col] += qty
            if ok:
                a[2] += price * abs(qty)
                a[3] += abs(qty)
                a[5] = price  # a book of flat hedges still tells the asset's price
            a[4].add(p.hedge_id)
        spot_val = p.spot_qty * sp if sp_ok else 0.0
        perp_val = p.perp_qty * pp if pp_ok else 0.0
        for venue, val in ((p.venue, spot_val), (pv, perp_val)):
            v = venues.setdefault(venue, [0.0, 0.0, 0.0, math.nan, "", set()])
            v[0] += abs(val)
            v[1] += val
            v[5].add(p.hedge_id)
        m = p.margin_used
        v = venues[pv]
        v[2] += m  # the perp's margin sits on the perp's venue
        d = liq_distance(p.perp_qty, pp, p.liq_price)
        if not math.isnan(d) and (math.isnan(v[3]) or d < v[3]):
            v[3], v[4] = d, p.hedge_id
        k = nets.setdefault((p.asset, p.venue), [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, set(), math.nan])
        k[0] += p.spot_qty
        k[6].add(p.hedge_id)
        k = nets.setdefault((pa, pv), [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, set(), math.nan])
        k[1] += p.perp_qty
        if pp_ok and p.perp_qty:
            k[2] += pp * abs(p.perp_qty)
            k[3] += abs(p.perp_qty)
        if pp_ok:
            k[7] = pp  # the mark, even of flat positions (display)
        k[4] += m
        k[6].add(p.hedge_id)
        if p.loan_outstanding > 0:
            cv = p.collateral_qty * sp if sp_ok else math.nan
            loans.append(LoanRow(p.hedge_id, p.venue, p.asset, p.loan_outstanding, cv,
                                 p.loan_outstanding / cv if cv > 0 else math.nan))
        pnl += p.pnl
        day += p.day_pnl
        fund += p.funding
    netted = []
    venue_netted: dict[str, float] = {}
    for (asset, venue), k in sorted(nets.items()):
        mark = k[2] / k[3] if k[3] > 0 else k[7]
        imr = k[4] / k[2] if k[2] > 0 else 0.0  # margin per quote of perp notional
        mn = abs(k[1]) * mark * imr if k[1] and mark > 0 else 0.0
        venue_netted[venue] = venue_netted.get(venue, 0.0) + mn
        netted.append(NettedRow(asset, venue, k[0], k[1], k[0] + k[1], mark, k[4], mn, len(k[6])))
    arows = []
    for asset, a in sorted(assets.items()):
        price = a[2] / a[3] if a[3] > 0 else a[5]
        delta = a[0] + a[1]
        arows.append(AssetRow(asset, a[0], a[1], delta, price, delta * price if price > 0 else math.nan, len(a[4])))
    vrows = tuple(VenueRow(venue, v[0], v[1], v[2], venue_netted.get(venue, 0.0), v[3], v[4], len(v[5]))
                  for venue, v in sorted(venues.items()))
    cur, worst = drawdown([*pnl_history, pnl], peak=drawdown_from[0], worst=drawdown_from[1])
    owed = sum(x.outstanding for x in loans)
    coll = sum(x.collateral_value for x in loans if x.collateral_value > 0)
    return BookSnapshot(
        assets=tuple(arows), venues=vrows, netted=tuple(netted), loans=tuple(loans), hedges=n,
        gross=sum(v.gross for v in vrows), net=sum(v.net for v in vrows),
        margin_used=sum(v.margin_used for v in vrows), pnl=pnl, day_pnl=day, funding=fund,
        funding_per_day=funding_per_day(funding_rows), book_ltv=owed / coll if coll > 0 else math.nan,
        drawdown=cur, max_drawdown=worst, var=dict(var or {}))
