"""Reconciliation of a hedge whose legs sit on two venues, reported per venue.

:func:`reconcile_per_venue` runs the one reconciliation (:func:`hedge_core.runner.reconcile.
reconcile_orders`) through a :class:`~hedge_core.exchange.routed.RoutedAdapter`: every journaled
order is looked up, cancelled or finalised at ITS venue (the adapter routes by symbol), and fills
the venue reports beyond the journal's are journaled. The result is then split by the venue each
journaled order was sent to (the journal's ``venue`` column, written with the intent), and each
venue's own holdings are read beside it: the spot venue's base balance (spot leg) and the perp
venue's position (perp leg). Nothing is netted between venues and no money moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hedge_core.errors import InvalidInput
from hedge_core.exchange.routed import RoutedAdapter
from hedge_core.exchange.routed_pair import PerpPairAdapter
from hedge_core.runner.journal import Journal
from hedge_core.runner.reconcile import ReconcileReport, reconcile_orders

__all__ = ["VenueReconcile", "reconcile_per_venue"]


@dataclass
class VenueReconcile:
    """What reconciliation did and saw on one venue.

    Attributes
    ----------
    venue : str
    leg : str
        ``spot`` or ``perp``: the hedge's leg on this venue.
    never_sent, cancelled, finalised : list of str
        Client order ids (see :class:`~hedge_core.runner.reconcile.ReconcileReport`).
    fills_added : list of str
        Trade ids journaled from this venue's answers or records.
    holding : float
        The venue's own figure of the leg, base units: spot venue: the base currency's total
        balance in the spot wallet; perp venue: the signed position of the perp symbol (0 = flat).
    """

    venue: str
    leg: str
    never_sent: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    finalised: list[str] = field(default_factory=list)
    fills_added: list[str] = field(default_factory=list)
    holding: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"venue": self.venue, "leg": self.leg, "never_sent": self.never_sent, "cancelled": self.cancelled,
                "finalised": self.finalised, "fills_added": self.fills_added, "holding": self.holding}


async def reconcile_per_venue(hedge_id: str, journal: Journal, adapter: RoutedAdapter | PerpPairAdapter, *,
                              spot_symbol: str,
                              perp_symbol: str, contracts: tuple[str, ...] = ()
                              ) -> tuple[ReconcileReport, dict[str, VenueReconcile]]:
    """Reconcile ``hedge_id``'s journal with both venues; the overall report and one per venue.

    Parameters
    ----------
    adapter : RoutedAdapter or PerpPairAdapter
        The hedge's two venues (spot leg, perp leg; or two perp legs: the first venue's holding is its
        signed position).
    spot_symbol, perp_symbol : str
        The legs' ccxt unified symbols (``BTC/USDT``, ``BTC/USDT:USDT``).
    contracts : tuple of str
        Other contracts of the perp leg to read (a dated future a calendar roll moved it to); the perp
        venue's ``holding`` is the sum over ``perp_symbol`` and these, ``venue_positions`` lists each.

    Returns
    -------
    (ReconcileReport, {venue: VenueReconcile})
        The report of :func:`~hedge_core.runner.reconcile.reconcile_orders` (its
        ``venue_positions`` filled with the perp venue's position) and its split by venue.
    """
    rep = await reconcile_orders(hedge_id, journal, adapter)
    rows = {r["client_order_id"]: r for r in journal.orders(hedge_id)}
    out = {adapter.spot_venue: VenueReconcile(adapter.spot_venue, "spot"),
           adapter.perp_venue: VenueReconcile(adapter.perp_venue, "perp")}

    def venue_of_coid(coid: str) -> str:
        row = rows.get(coid)
        if row is not None and row.get("venue") in out:
            return str(row["venue"])
        return adapter.venue_of(row["symbol"]) if row is not None else adapter.perp_venue

    for name in ("never_sent", "cancelled", "finalised"):
        for coid in getattr(rep, name):
            getattr(out[venue_of_coid(coid)], name).append(coid)
    fills = journal.fills(hedge_id)
    coid_of_tid = dict(zip(fills["trade_id"].astype(str), fills["client_order_id"])) if len(fills) else {}
    for tid in rep.fills_added:
        # the driver's trade ids: "<client order id>:<cumulative filled>" (order answers) or
        # "<symbol>#<venue trade id>" (trade records: two perp legs share the symbol, so their journaled order)
        if "#" in tid and tid in coid_of_tid:
            venue = venue_of_coid(str(coid_of_tid[tid]))
        elif "#" in tid:
            venue = adapter.venue_of(tid.split("#", 1)[0])
        else:
            venue = venue_of_coid(tid.rsplit(":", 1)[0])
        out[venue].fills_added.append(tid)
    first_positions = getattr(adapter, "first_positions", None)
    if callable(first_positions):  # two perp legs (exchange.routed_pair): the first venue's signed position
        out[adapter.spot_venue].leg = "first perp"
        out[adapter.spot_venue].holding = float(sum(p.qty for p in await first_positions([perp_symbol])
                                                    if p.symbol == perp_symbol))
    else:
        base = spot_symbol.split("/", 1)[0]
        bal = (await adapter.fetch_balance("spot")).get(base)
        out[adapter.spot_venue].holding = float(bal.total) if bal is not None else 0.0
    positions: dict[str, float] = {}
    for sym in dict.fromkeys((perp_symbol, *contracts)):  # one request per contract (Bybit: one symbol each)
        try:
            for p in await adapter.fetch_positions([sym]):
                if p.symbol == sym:
                    positions[sym] = positions.get(sym, 0.0) + float(p.qty)
        except InvalidInput:
            if sym == perp_symbol:
                raise
            positions[sym] = 0.0  # a contract the venue no longer lists (a delivered future): nothing held there
    out[adapter.perp_venue].holding = float(sum(positions.values()))
    rep.venue_positions = positions
    return rep, out
