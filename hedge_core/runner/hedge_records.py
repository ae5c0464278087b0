"""The venue's records of a live hedge: funding booked from the venue's income, and the continuous
reconciliation of journal and venue with its mismatch policy (docs/live-records.md).

:class:`VenueRecordsMixin` is a part of :class:`hedge_core.runner.hedge.HedgeTask`; split out of that
module by responsibility.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from hedge_core.engine.driver import pair_first_venue, record_trade_id
from hedge_core.engine.events import Command, FillEvent, FundingSettled, OperatorCommand
from hedge_core.engine.roll_step import perpetual_qty
from hedge_core.engine.states import State
from hedge_core.runner.best_entry_live import current_venue_rows
from hedge_core.runner.journal import wall_now
from hedge_core.runner.logs import log_event
from hedge_core.runner.pair_records import funding_differences, pair_venue_figures, poll_first_funding
from hedge_core.runner.records import by_venue, compare, journal_figures, leg_contracts, new_funding, venue_figures

if TYPE_CHECKING:
    from hedge_core.engine.driver import HedgeDriver
    from hedge_core.runner.hedge_spec import HedgeSpec
    from hedge_core.runner.journal import Journal

__all__ = ["FUNDING_SETTLE_LAG_S", "RECONCILE_WINDOW", "RECONFIRM_S", "VenueRecordsMixin"]

log = logging.getLogger("hedge_core.runner.hedge")  # the hedge's log (one name for the whole task)

#: Fills and funding are reconciled over this trailing window (Binance's trade and income queries
#: answer at most 7 days from their startTime).
RECONCILE_WINDOW = pd.Timedelta(days=6)
#: Seconds after a funding time before its income record is read.
FUNDING_SETTLE_LAG_S = 5.0
#: Seconds before a difference found by reconciliation is read again (confirmed) and counts.
RECONFIRM_S = 0.2


class VenueRecordsMixin:
    """Funding income and continuous reconciliation of a :class:`~hedge_core.runner.hedge.HedgeTask`."""

    spec: HedgeSpec
    hedge_id: str
    journal: Journal
    raw_adapter: Any
    driver: HedgeDriver | None
    lock: asyncio.Lock
    started_at: pd.Timestamp
    reconcile_due: asyncio.Event
    last_reconcile: dict[str, Any]
    _funding_booked: set[pd.Timestamp]
    _first_funding_booked: set[pd.Timestamp]  # two perp legs: the first venue's settlement times booked

    # ---- the venue's records (live): funding income and the continuous reconciliation ----------
    @property
    def venue_records(self) -> bool:
        """Live hedges book funding from the venue's income records and reconcile continuously."""
        return self.spec.mode == "live"

    async def poll_funding(self) -> int:
        """Book the venue's funding payments not booked yet (FundingSettled with the venue's amount;
        journaled first, with the engine's ``-qty x mark x rate`` as ``expected``). Returns how many.

        Read for the hedge's perpetual (``spec.perp_symbol``) whatever contract the leg is on: a dated
        future pays no funding, and a payment the perpetual settled before a calendar roll moved the
        leg is read (and booked: ``engine.roll_step._on_funding``) after it. ``qty`` journaled: the
        quantity held on the perpetual (``roll_step.perpetual_qty``)."""
        since = pd.Timestamp(self.started_at)
        # the venue's records page (docs/live.md "Funding and trade records"): read from the last one
        # booked on, not from the start, so a months-old hedge asks for one page per poll
        read_from = max([since, *self._funding_booked])
        pays = await self.raw_adapter.fetch_funding_payments(self.spec.perp_symbol, read_from)
        n = 0
        for fp, rate, mark, expected in new_funding(pays, self._funding_booked, since, self.driver.ctx):
            qty = perpetual_qty(self.driver.ctx)
            self.journal.funding(self.hedge_id, self.spec.leg_venues[1], self.spec.perp_symbol, fp.ts, fp.amount, rate, qty,
                                 mark, expected=expected)
            self._funding_booked.add(pd.Timestamp(fp.ts))
            async with self.lock:
                await self.driver.feed(FundingSettled(fp.ts, rate, mark, amount=fp.amount,
                                                      interval_hours=self.driver.ctx.funding_interval_hours))
            log_event(log, "funding booked from the venue's income", hedge_id=self.hedge_id, amount=fp.amount,
                      expected=expected, rate=rate, mark=mark, position_qty=qty)
            n += 1
        if self.spec.perp_pair:  # two perp legs: the first venue's own income, on the first leg (runner.pair_records)
            n += await poll_first_funding(self)
        return n

    async def reconcile_now(self) -> list[str] | None:
        """Compare journal and venue (see ``runner.records``); on a difference mark the hedge
        DEGRADED ("reconcile"), alert, and follow ``spec.on_mismatch``; a clean pass clears the mark.
        None when skipped (orders in flight, or the hedge completed). The pass is kept in
        ``last_reconcile`` (the hedge's status ``reconcile``): its differences, and ``venues``: the same
        per venue (``runner.records.by_venue``: each venue's legs, differences and holdings).

        The venue's figures are read one request after another, so a trade of the venue's own (an
        ADL, a funding settlement) landing between two reads looks like a difference: a difference
        is confirmed by a second full read (the venue's trades and funding booked first) before it counts.
        """
        for attempt in range(2):
            got = await self._compare_once()
            if got is None:
                return None
            venue, fills, diffs, mine = got
            if not diffs:
                break
            if attempt == 0:
                await asyncio.sleep(RECONFIRM_S)
                await self.poll_funding()  # a settlement between the funding read and the comparison
        spot_venue, perp_venue = self.spec.leg_venues
        order_venues = {str(r["order_id"]): str(r["venue"]) for r in self.journal.orders(self.hedge_id)
                        if r.get("order_id") and r.get("venue")}
        self.last_reconcile = {"ts": str(self.clock_now()), "differences": [str(d) for d in diffs],
                               "policy": self.spec.on_mismatch,
                               # the same pass per venue (a routed hedge: spot venue and perp venue apart)
                               "venues": by_venue(diffs, mine, venue, spot_venue=spot_venue, perp_venue=perp_venue,
                                                  spot_symbol=self.spec.spot_symbol, order_venues=order_venues)}
        if not diffs:
            self.undegrade("reconcile")
            return []
        text = "; ".join(map(str, diffs))
        self.degrade("reconcile", f"journal and venue differ (policy {self.spec.on_mismatch}): {text}", level="error")
        await self._on_mismatch(venue, fills)
        return [str(d) for d in diffs]

    async def _compare_once(self) -> tuple[Any, pd.DataFrame, list[Any], Any] | None:
        """One read of both sides under the hedge's lock: (venue figures, journal fills, differences,
        journal figures)."""
        async with self.lock:
            ctx = await self.driver.book_external(self.clock_now())  # the venue's own trades (ADL) first
            if ctx.pending or ctx.state is State.COMPLETED:
                return None
            # fills and funding over a trailing window both sides agree on (Binance answers trade and
            # income queries for at most 7 days from startTime); positions and balances are "now"
            since = max(pd.Timestamp(self.started_at), wall_now() - RECONCILE_WINDOW)
            fills = self.journal.fills(self.hedge_id)
            funding = self.journal.store.read_table("funding_payments", hedge_id=self.hedge_id)
            # a perp leg moved at an entry (runner.best_entry_live): the venues the hedge is on now
            fills, funding = current_venue_rows(self.spec, fills, funding)
            # every contract of the hedge leg: its own, a roll's destination, the perpetual, any it left
            contracts = leg_contracts(ctx, self.spec.perp_symbol,
                                      fills.loc[fills["leg"] != "spot", "symbol"].astype(str) if len(fills) else ())
            if len(fills):
                fills = fills[pd.to_datetime(fills["ts"], utc=True) >= since]
            if len(funding):
                funding = funding[pd.to_datetime(funding["ts"], utc=True) >= since]
            ids = {str(r["order_id"]) for r in self.journal.orders(self.hedge_id) if r.get("order_id")}
            ids |= set(fills["order_id"].astype(str)) if len(fills) else set()
            if self.spec.perp_pair:  # two perp legs: each venue's position, trades and funding (runner.pair_records)
                venue, paid = await pair_venue_figures(self.raw_adapter, ctx, ids, since, perpetual=self.spec.perp_symbol,
                                                       contracts=contracts)  # the second leg per contract
                mine = journal_figures(ctx, fills, funding, venue.open_orders, contracts)
            else:
                venue, paid = await venue_figures(self.raw_adapter, ctx, ids, since, perpetual=self.spec.perp_symbol,
                                                  contracts=contracts), None
                mine = journal_figures(ctx, fills, funding, venue.open_orders, contracts)
            diffs = compare(mine, venue, spot_lot=ctx.spot.lot_size, perp_lot=ctx.perp.lot_size)
            if paid is not None:  # funding compared per venue, not as one sum over both
                diffs = [d for d in diffs if d.what != "funding (USDT)"] + funding_differences(funding, paid)
        return venue, fills, diffs, mine

    async def _on_mismatch(self, venue: Any, fills: pd.DataFrame) -> None:
        policy, state = self.spec.on_mismatch, self.driver.ctx.state
        if policy == "hold":
            if state in (State.ANALYZING_MARKET, State.MONITORING_POSITIONS, State.REBALANCING):
                await self.step(OperatorCommand(self.driver.ctx.last_ts, Command.PAUSE,
                                                "reconcile mismatch, policy hold: resume after checking the venue"))
        elif policy == "flatten":
            if state not in (State.CLOSING_POSITIONS, State.COMPLETED):
                await self.step(OperatorCommand(self.driver.ctx.last_ts, Command.FLATTEN,
                                                "reconcile mismatch, policy flatten"))
        else:  # rehedge: book the venue's fills the journal lacks; the engine re-hedges from the book
            have = set(fills["trade_id"].astype(str)) if len(fills) else set()
            coid_of = {str(r["order_id"]): r["client_order_id"] for r in self.journal.orders(self.hedge_id)
                       if r.get("order_id")}
            for leg, f in venue.trades:
                tid = record_trade_id(f, pair_first_venue(self.driver.ctx, leg))
                if tid in have or record_trade_id(f) in have:  # the bare form: journaled before ids carried the venue
                    continue
                ev = FillEvent(replace(f, trade_id=tid, client_order_id=coid_of.get(f.order_id, f.client_order_id)),
                               leg, external=f.order_id not in coid_of)
                await self.step(ev)

    async def _records_loop(self) -> None:
        """Live: read the venue's funding income every ``records_poll_s`` and reconcile every
        ``reconcile_s`` (sooner after an unknown order outcome or a funding time)."""
        next_fund = next_rec = time.monotonic() + min(self.spec.records_poll_s, self.spec.reconcile_s)
        while True:
            # and a few seconds after each funding time (00/08/16 UTC on Binance): the income row is there
            hours = self.driver.ctx.funding_interval_hours if self.driver else 8.0
            period = pd.Timedelta(hours=hours if hours > 0 else 8.0)
            now_wall = wall_now()
            settle = (now_wall.floor(period) + period + pd.Timedelta(seconds=FUNDING_SETTLE_LAG_S) - now_wall)
            next_fund = min(next_fund, time.monotonic() + settle.total_seconds())
            wait = max(min(next_fund, next_rec) - time.monotonic(), 0.0)
            try:
                await asyncio.wait_for(self.reconcile_due.wait(), timeout=wait)
                due = True
            except asyncio.TimeoutError:
                due = False
            self.reconcile_due.clear()
            now = time.monotonic()
            try:
                if due or now >= next_fund or now >= next_rec:
                    await self.poll_funding()
                    next_fund = now + self.spec.records_poll_s
                if due or now >= next_rec:
                    done = await self.reconcile_now()
                    next_rec = now + (self.spec.reconcile_s if done is not None else min(2.0, self.spec.reconcile_s))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the venue unreadable now: log, try on the next round
                log_event(log, "venue records not read", level=logging.WARNING, hedge_id=self.hedge_id,
                          error=f"{type(exc).__name__}: {exc}")
                next_fund = next_rec = now + min(self.spec.records_poll_s, self.spec.reconcile_s)
