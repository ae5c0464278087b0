"""The venues' records of a LIVE hedge with two perp legs on two venues (``legs = "perp_perp"``): each
venue's funding income booked on its own leg, and the continuous reconciliation read at each venue.

Principle 8 per venue: the first leg's funding is the FIRST venue's income records (Binance ``FUNDING_FEE``,
Bybit ``execType`` Funding), journaled under that venue and fed to the engine as
``FundingSettled(leg="spot", amount=<the venue's>)``; the second leg's is the second venue's
(:meth:`hedge_core.runner.hedge_records.VenueRecordsMixin.poll_funding`). The engine's
``-qty x mark x rate`` (:func:`hedge_core.money.funding_payment`) is kept beside each as ``expected``.

- :func:`booked_funding` (pure): the settlement times already journaled, per leg (both venues settle at
  the same instants, so one set of times would skip the second venue's row of an instant the first booked).
- :func:`poll_first_funding` (I/O): books the first venue's payments not booked yet.
- :func:`pair_venue_figures` (I/O, read-only): what the two venues say about the hedge, in the
  :class:`~hedge_core.runner.records.Figures` of a one-venue hedge (``spot_base`` is the first venue's
  signed position; the second leg per contract, a calendar roll's dated future included) plus the funding
  each venue paid.
- :func:`funding_differences` (pure): journal and venue funding compared per venue.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from hedge_core.engine.context import HedgeContext
from hedge_core.engine.events import FundingSettled
from hedge_core.engine.roll_step import is_dated
from hedge_core.errors import InvalidInput
from hedge_core.money import funding_payment
from hedge_core.runner.records import MONEY_TOL, Difference, Figures, leg_contracts, quote_fee
from hedge_core.types import Fill

__all__ = ["booked_funding", "funding_differences", "pair_venue_figures", "poll_first_funding"]


def booked_funding(funding: pd.DataFrame, first_venue: str | None) -> tuple[set[pd.Timestamp], set[pd.Timestamp]]:
    """(second leg's booked times, first leg's booked times) from the journal's ``funding_payments`` rows.

    ``first_venue``: the first perp leg's venue (two perp legs), or None: every row is the perp leg's."""
    if not len(funding):
        return set(), set()
    ts = pd.to_datetime(funding["ts"], utc=True)
    if first_venue is None or "venue" not in funding:
        return {pd.Timestamp(t) for t in ts}, set()
    first = (funding["venue"] == first_venue).to_numpy()
    return {pd.Timestamp(t) for t, f in zip(ts, first) if not f}, {pd.Timestamp(t) for t, f in zip(ts, first) if f}


async def poll_first_funding(task: Any) -> int:
    """Book the FIRST venue's funding payments of a perp pair not booked yet (journaled first, then fed to the
    engine on the first leg with the venue's amount). Returns how many; 0 when the adapter has no first venue.

    ``task``: the :class:`~hedge_core.runner.hedge.HedgeTask` (its ``raw_adapter`` a PerpPairLive)."""
    read = getattr(task.raw_adapter, "first_funding_payments", None)
    if not callable(read):
        return 0
    since = pd.Timestamp(task.started_at)
    pays = await read(task.spec.perp_symbol, max([since, *task._first_funding_booked]))  # from the last booked on
    n = 0
    for fp in sorted(pays, key=lambda p: p.ts):
        ts = pd.Timestamp(fp.ts)
        if ts in task._first_funding_booked or ts < since:
            continue
        ctx: HedgeContext = task.driver.ctx
        rate = fp.rate if fp.rate is not None and math.isfinite(fp.rate) else _first_rate(task.raw_adapter)
        mark = fp.mark_price if fp.mark_price is not None and math.isfinite(fp.mark_price) and fp.mark_price > 0 \
            else (ctx.spot_mark_price if math.isfinite(ctx.spot_mark_price) else ctx.spot_price)
        qty = ctx.spot.qty
        expected = funding_payment(qty, mark, rate) if math.isfinite(mark) and math.isfinite(rate) else math.nan
        task.journal.funding(task.hedge_id, task.spec.leg_venues[0], task.spec.perp_symbol, fp.ts, fp.amount,
                             float(rate), qty, float(mark), expected=float(expected))
        task._first_funding_booked.add(ts)
        hours = float(getattr(task.raw_adapter, "first_interval_hours", 8.0) or 8.0)
        async with task.lock:
            await task.driver.feed(FundingSettled(fp.ts, float(rate), float(mark), amount=fp.amount,
                                                  interval_hours=hours, leg="spot"))
        n += 1
    return n


def _first_rate(adapter: Any) -> float:
    """The rate a first-venue funding record without its own is journaled at: the first venue's last SETTLED rate
    (``PerpPairLive.first_settled_rate``, read on feed ticker), else its last read rate (``first_last_rate``: the
    feed's settlements on bars, the current rate on ticker before a settled one was read); NaN when neither."""
    settled = float(getattr(adapter, "first_settled_rate", math.nan))
    return settled if math.isfinite(settled) else float(getattr(adapter, "first_last_rate", math.nan))


async def pair_venue_figures(adapter: Any, ctx: HedgeContext, order_ids: set[str], since: pd.Timestamp | None,
                             *, perpetual: str | None = None, contracts: Iterable[str] | None = None
                             ) -> tuple[Figures, dict[str, float]]:
    """Read both venues: ``(figures, {venue: funding paid there since ``since``})``.

    ``figures.spot_base`` is the FIRST venue's signed position of the first leg's perpetual (``ctx.spot``; the
    first leg never rolls); ``figures.contracts`` the SECOND venue's signed position on each contract of the
    second leg (``contracts``, default :func:`~hedge_core.runner.records.leg_contracts` of ``ctx`` and
    ``perpetual``: its own, a calendar roll's destination, the perpetual, a contract it left), one request per
    contract (0 and nothing else read on a contract the venue no longer lists: a delivered future, as
    :func:`~hedge_core.runner.records.venue_figures` does), and ``perp_qty`` their sum; fills are each venue's
    trade records of the hedge's orders (``order_ids``) on those contracts, with the leg they belong to
    (``roll`` for a roll's destination); funding: each venue's income of its PERPETUAL (a dated future pays none;
    ``perpetual``: the pair's perp symbol, default the second leg's without a dated future's ``-YYMMDD``),
    ``figures.funding`` their sum.
    Errors propagate (the caller skips the pass)."""
    first, second = adapter.leg_adapters()
    first_sym = ctx.spot.symbol
    perpetual = perpetual or (ctx.perp.symbol.rsplit("-", 1)[0] if is_dated(ctx.perp.symbol) else ctx.perp.symbol)
    syms = tuple(contracts) if contracts is not None else leg_contracts(ctx, perpetual)
    first_qty = float(sum(p.qty for p in await first.fetch_positions([first_sym]) if p.symbol == first_sym))
    held: dict[str, float] = {s: 0.0 for s in syms}
    gone: set[str] = set()
    for sym in syms:  # one request per contract (Bybit answers one symbol per request)
        try:
            held[sym] += float(sum(p.qty for p in await second.fetch_positions([sym]) if p.symbol == sym))
        except InvalidInput:
            if sym == ctx.perp.symbol:
                raise
            gone.add(sym)  # a contract the venue no longer lists (a delivered future): nothing is held there
    live = tuple(s for s in syms if s not in gone)
    opens: dict[str, str] = {o.client_order_id: first_sym for o in await first.fetch_open_orders(first_sym)}
    for sym in live:
        opens.update({o.client_order_id: sym for o in await second.fetch_open_orders(sym)})
    fills: dict[str, tuple[float, float]] = {}
    trades: list[tuple[str, Fill]] = []
    roll_sym = ctx.roll_leg.symbol if ctx.roll_leg is not None else None
    reads = (("spot", first, first_sym), *(("roll" if s == roll_sym else "perp", second, s) for s in live))
    for name, ad, sym in reads:
        base = ctx.spot.base if name == "spot" else ctx.perp.base
        for f in await ad.fetch_my_trades(sym, since):
            if f.order_id not in order_ids:
                continue
            trades.append((name, f))
            q, c = fills.get(f.order_id, (0.0, 0.0))
            fills[f.order_id] = (q + f.qty, c + quote_fee(f.fee, f.fee_currency, f.price, base))
    paid: dict[str, float] = {}
    for ad, sym in ((first, first_sym), (second, perpetual)):
        paid[ad.venue] = float(sum(p.amount for p in await ad.fetch_funding_payments(sym, since)
                                   if since is None or p.ts >= since))
    figs = Figures(float(sum(held.values())), first_qty, frozenset(opens), fills, sum(paid.values()), tuple(trades),
                   held, opens)
    return figs, paid


def funding_differences(journal_funding: pd.DataFrame, paid: dict[str, float],
                        money_tol: float = MONEY_TOL) -> list[Difference]:
    """Funding per venue: the journal's rows under each venue against what that venue paid (quote)."""
    out = []
    for venue, v in sorted(paid.items()):
        j = float(journal_funding.loc[journal_funding["venue"] == venue, "amount"].sum()) \
            if len(journal_funding) else 0.0
        if abs(j - v) > money_tol:
            out.append(Difference(f"funding at {venue} (USDT)", j, v))
    return out
