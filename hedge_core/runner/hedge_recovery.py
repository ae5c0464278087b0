"""Start and recovery of one hedge: instruments (with the venue's brackets), the driver, and the
rebuild of a hedge from its journal after a restart, reconciled with the venue by the recovery policy.

:class:`HedgeRecoveryMixin` is a part of :class:`hedge_core.runner.hedge.HedgeTask` (it uses the
task's spec, journal, adapters and hooks); split out of that module by responsibility.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from hedge_core.engine.context import HedgeContext, new_hedge
from hedge_core.engine.driver import DriverHooks, HedgeDriver
from hedge_core.engine.events import Timer
from hedge_core.engine.states import State
from hedge_core.engine.roll_step import is_dated, perpetual_of, restore
from hedge_core.engine.strategies import strategy_for
from hedge_core.errors import ExchangeError, InvalidInput
from hedge_core.exchange.costs import cost_mismatch, of_adapter, resolve_costs
from hedge_core.exchange.routed import RoutedAdapter
from hedge_core.exchange.routed_pair import PerpPairAdapter
from hedge_core.runner.exit_marks import marks_row, restore_day, restore_marks
from hedge_core.runner.killpoints import kill_point
from hedge_core.runner.journal import wall_now
from hedge_core.runner.loan_journal import loan_event, loan_from_row, loan_origin, loan_row, reserve_row
from hedge_core.runner.logs import log_event
from hedge_core.runner.reconcile import rebuild_context, reconcile_orders, recovery_state
from hedge_core.runner.reconcile_venues import reconcile_per_venue
from hedge_core.types import Instrument

if TYPE_CHECKING:
    import asyncio

    from hedge_core.params.models import StrategyParamsBase
    from hedge_core.runner.hedge_spec import HedgeSpec
    from hedge_core.runner.journal import Journal

__all__ = ["HedgeRecoveryMixin"]

log = logging.getLogger("hedge_core.runner.hedge")  # the hedge's log (one name for the whole task)


class HedgeRecoveryMixin:
    """Setup and recovery of a :class:`~hedge_core.runner.hedge.HedgeTask` (see there)."""

    spec: HedgeSpec
    hedge_id: str
    params: StrategyParamsBase
    journal: Journal
    raw_adapter: Any
    adapter: Any
    driver: HedgeDriver | None
    lock: asyncio.Lock
    started_at: pd.Timestamp
    market_data: Any
    sup: Any
    _funding_booked: set[pd.Timestamp]
    #: a loan book's (start instant, first spot price): the collateral's sizing, journaled with every loan row
    loan_origin: tuple[pd.Timestamp, float]

    # ---- setup --------------------------------------------------------------------------------
    async def _instruments(self) -> tuple[Instrument, Instrument]:
        legs = getattr(self.raw_adapter, "leg_instruments", None)
        if callable(legs):  # two perp legs (exchange.routed_pair): each leg's perp on its own venue
            first, second = await legs(self.spec.perp_symbol)
            self._resolve_costs()
            return first, await self._venue_brackets(second)
        markets = await self.raw_adapter.load_markets()
        try:
            spot, perp = markets[self.spec.spot_symbol], markets[self.spec.perp_symbol]
        except KeyError as exc:
            from hedge_core.errors import InvalidInput

            raise InvalidInput("symbol", str(exc), f"a market of {self.spec.venue}: {sorted(markets)}") from None
        self._resolve_costs()
        return spot, await self._venue_brackets(perp)

    def _resolve_costs(self) -> None:
        """Price the entry filter with the venue's own fees (``exchange.costs``): the paper config's,
        or the ccxt markets' taker fees; logs a warning naming both figures when the parameters differ."""
        venue = of_adapter(self.raw_adapter, self.spec.spot_symbol, self.spec.perp_symbol)
        msg = cost_mismatch(self.params, venue)
        if msg is not None:
            log.warning("hedge %s: %s", self.hedge_id, msg)
        self.params = resolve_costs(self.params, venue, warn=False)

    async def _venue_brackets(self, perp: Instrument) -> Instrument:
        """The perp instrument with the venue's maintenance brackets on it (the adapter's optional
        ``fetch_brackets``): this hedge's leverage rule and liquidation guard use the venue's table,
        and no other hedge in the process sees it. A failure keeps the instrument's own table (or the
        committed default) and says so."""
        fetch = getattr(self.raw_adapter, "fetch_brackets", None)
        if fetch is None or not getattr(self.raw_adapter, "offers_brackets", False):
            return perp
        try:
            table = tuple(await fetch(self.spec.perp_symbol))
            if not table:
                raise ValueError("empty bracket table")
        except Exception as exc:  # noqa: BLE001 - the defaults still work; an operator should know
            log_event(log, "venue brackets not loaded: built-in defaults in use", level=logging.WARNING,
                      hedge_id=self.hedge_id, symbol=self.spec.perp_symbol, error=f"{type(exc).__name__}: {exc}")
            return perp
        log_event(log, "venue brackets loaded", hedge_id=self.hedge_id, symbol=self.spec.perp_symbol,
                  brackets=len(table), first_max_leverage=table[0].max_leverage, first_mmr=table[0].mmr)
        from dataclasses import replace

        return replace(perp, brackets=table)

    def _driver_adapters(self) -> dict[str, Any]:
        """The driver's adapter per venue: the task's journaling adapter on both legs' venues; two perp legs of
        one symbol (``exchange.routed_pair``): each venue's own adapter, journaled, so the driver routes every
        order, look-up and trade poll by the leg's venue."""
        by_venue = getattr(self.raw_adapter, "by_venue", None)
        if self.spec.perp_pair and callable(by_venue):
            from hedge_core.runner.journaling_adapter import JournalingAdapter

            return {v: JournalingAdapter(ad, self) for v, ad in by_venue().items()}  # type: ignore[arg-type]
        return {v: self.adapter for v in self.spec.leg_venues}

    def _hooks(self) -> DriverHooks:
        return DriverHooks(on_intent=self._on_intent, on_fill=self._on_fill, on_transition=self._on_transition,
                           on_guard=self._on_guard, on_alert=self._on_alert, on_loan=self._on_loan,
                           on_exit_marks=self._on_exit_marks)

    def _on_exit_marks(self, hedge_id: str, ctx: HedgeContext) -> None:
        """Journal the exit rules' cycle memory when a step changed it (a new peak PnL, a new entry): a
        restart puts it back (runner.exit_marks) so a trailing stop armed before it stays armed."""
        self.journal.exit_marks(hedge_id, marks_row(ctx, "step", ctx.last_ts))
        kill_point("exit_marks_journaled")

    def _on_loan(self, hedge_id: str, change: tuple[HedgeContext, HedgeContext]) -> None:
        """Journal a loan book's loan when it changed other than by interest accrual (runner.loan_journal);
        a reserve deployment also gets its ``reserve_deployments`` row."""
        before, after = change
        if after.loan is None:
            return
        ev = loan_event(before.loan, after.loan, ratio_before=before.target_ratio, ratio_after=after.target_ratio,
                        target_before=before.profit_target, target_after=after.profit_target)
        if ev is None:
            return
        ts = after.last_ts
        self.journal.loan(hedge_id, loan_row(after, ev, ts, first_price=self.loan_origin[1],
                                             started_at=self.loan_origin[0]))
        if ev == "reserve" and before.loan is not None:
            self.journal.reserve(hedge_id, reserve_row(before.loan, after, ts))

    def _run_row(self, state: str, ended: bool = False) -> dict[str, Any]:
        s = self.spec
        return {"hedge_id": s.hedge_id, "mode": s.mode, "strategy": str(self.params.strategy),
                "params_name": s.params_name, "params_version": s.params_version, "spot_venue": s.venue,
                "spot_symbol": s.perp_symbol if s.perp_pair else s.spot_symbol, "perp_venue": s.leg_venues[1], "perp_symbol": s.perp_symbol, "state": state,
                "started_at": self.started_at, "ended_at": wall_now() if ended else None,
                "synthetic": (s.data_venue or "") == "demo", "info": s.model_dump(mode="json")}

    async def start_new(self, ts: pd.Timestamp) -> None:
        spot, perp = await self._instruments()
        strategy = strategy_for(self.params)
        if strategy.loan_book:
            # the spot leg IS the collateral, sized at the first price; the loan starts at ``ts``
            price = await self._first_price(ts)
            ctx = strategy.new_context(self.hedge_id, spot, perp, ts, price, self.params)
            self._fund_collateral(ctx)
            self.loan_origin = (ctx.started_at, price)
        else:
            ctx = new_hedge(self.hedge_id, str(self.params.strategy), spot, perp, ts)
        self.driver = HedgeDriver(ctx, self.params, self._driver_adapters(), hooks=self._hooks())
        self.journal.run(self._run_row(str(ctx.state)))
        self.journal.transition(self.hedge_id, {"ts": ts, "from_state": None, "to_state": str(ctx.state),
                                                "trigger_name": "START", "reason": f"started ({self.spec.mode})"})
        if ctx.loan is not None:
            self.journal.loan(self.hedge_id, loan_row(ctx, "start", ts, first_price=self.loan_origin[1],
                                                      started_at=self.loan_origin[0]))
            log_event(log, "loan book started", hedge_id=self.hedge_id, principal=ctx.loan.loan.principal,
                      apr=ctx.loan.loan.apr, collateral_qty=ctx.spot.qty, first_price=self.loan_origin[1],
                      reserve=ctx.loan.reserve_left)

    async def _first_price(self, ts: pd.Timestamp) -> float:
        """The spot price (quote per base) a loan book's collateral is valued at, at ``ts``: the venue's
        ticker (live data, a paper venue that already has bars), else in a replay the close of the last
        stored bar closed by ``ts`` (the open of the first bar when the window starts at the data's start)."""
        sym = self.spec.spot_symbol
        for ad in (self.raw_adapter, self.market_data):
            if ad is None:
                continue
            try:
                t = await ad.fetch_ticker(sym)
            except ExchangeError:
                continue
            px = float(t.last or t.mid)
            if math.isfinite(px) and px > 0:
                return px
        if self.spec.feed == "replay":
            venue = self.sup._data_venue(self.spec)
            tf = pd.Timedelta(self.spec.timeframe)
            bars = self.sup.store.read_bars(venue, sym, "spot", self.spec.timeframe, start=ts - pd.Timedelta(days=7),
                                            end=ts + tf)
            closed = bars[bars.index + tf <= ts]
            if len(closed):
                return float(closed["close"].iloc[-1])
            later = bars[bars.index >= ts]
            if len(later):
                return float(later["open"].iloc[0])
        from hedge_core.errors import InvalidInput

        raise InvalidInput("price", sym, f"a first {sym} price at {ts} (ticker or stored bars) to size the collateral")

    def _fund_collateral(self, ctx: HedgeContext) -> None:
        """Paper: the spot wallet holds the collateral (base units) from the start, like the operator's
        own collateral on a real account; saved at once so a restart finds it."""
        if self.spec.mode != "paper" or ctx.spot.qty <= 0:
            return
        from hedge_core.exchange.paper import PaperExchange
        from hedge_core.exchange.routed_paper import RoutedPaper

        ad = self.raw_adapter
        paper = ad.spot if isinstance(ad, RoutedPaper) else ad
        if not isinstance(paper, PaperExchange):
            return
        paper.core.deposit("spot", ctx.spot.base, float(ctx.spot.qty))
        if getattr(paper, "state_path", None):
            paper.save()

    async def recover(self, last_state: str, started_at: Any) -> dict[str, Any]:
        """Reconcile with the venue and rebuild the driver by the recovery policy."""
        if started_at is not None and not pd.isna(started_at):
            self.started_at = pd.Timestamp(started_at)
        spot, perp = await self._instruments()
        self.journal.load(self.hedge_id)
        per_venue = None
        if isinstance(self.raw_adapter, (RoutedAdapter, PerpPairAdapter)):  # two venues: each order at its venue
            rep, per_venue = await reconcile_per_venue(self.hedge_id, self.journal, self.raw_adapter,
                                                       spot_symbol=spot.symbol, perp_symbol=perp.symbol,
                                                       contracts=self._leg_contracts(perp.symbol))
        else:
            rep = await reconcile_orders(self.hedge_id, self.journal, self.raw_adapter)
        fills = self.journal.fills(self.hedge_id)
        self.journal.flush()
        funding = self.journal.store.read_table("funding_payments", hedge_id=self.hedge_id)
        prices: dict[str, float] = {}
        for leg, sym in (("spot", spot.symbol), ("perp", perp.symbol)):
            try:
                t = await self.raw_adapter.fetch_ticker(sym)
                prices[leg] = float(t.last or t.mid)
            except ExchangeError:
                prices[leg] = math.nan
        # every contract the hedge leg was on: the perpetual, and each one the journal shows a fill or a roll
        # order on (a calendar roll's dated future; both during a roll killed between its two orders)
        contracts = self._leg_contracts(perp.symbol, fills)
        positions: dict[str, float] = {}
        try:
            for sym in contracts:  # one request per contract (Bybit answers one symbol per request)
                try:
                    for p in await self.raw_adapter.fetch_positions([sym]):
                        if p.symbol == sym:
                            positions[sym] = positions.get(sym, 0.0) + float(p.qty)
                except InvalidInput:  # a contract the venue no longer lists (a delivered future): nothing held
                    positions[sym] = 0.0
            rep.venue_positions = positions
        except ExchangeError:
            pass
        if self.clock == "live" and self.market_data is None and not hasattr(self.raw_adapter, "fetch_bars") \
                and self.spec.mode == "paper":
            await self._attach_market_data()  # paper on live data: the venue's clock before the first row
        ts = self._clock_now()
        strategy = strategy_for(self.params)
        last_loan: dict[str, Any] | None = None
        if strategy.loan_book:  # the collateral and the loan come back from the journal (runner.loan_journal)
            started, price, last_loan = loan_origin(self.journal.loan_events(self.hedge_id))
            self.loan_origin = (started, price)
            ctx0 = strategy.new_context(self.hedge_id, spot, perp, started, price, self.params)
            ctx0 = replace(ctx0, loan=loan_from_row(last_loan).accrued_to(ts))
        else:
            ctx0 = new_hedge(self.hedge_id, str(self.params.strategy), spot, perp, ts)
        flat_probe = rebuild_context(ctx0, fills, funding, [], State.MONITORING_POSITIONS, prices, ts)
        state = recovery_state(last_state, self.spec.recovery, flat_probe.is_flat)
        rows = self.journal.orders(self.hedge_id)
        coids = [r["client_order_id"] for r in rows]
        refs = {r["client_order_id"]: float(r["ref_price"]) for r in rows if r.get("ref_price") is not None}
        ctx = rebuild_context(ctx0, fills, funding, coids, state, prices, ts, refs=refs)
        ctx = await self._restore_roll(ctx, fills, funding, rows)  # the leg by contract; a half-done calendar roll
        # the exit rules' cycle memory (peak PnL, PnL at entry, ...) is not in the fills: its journal rows
        marks = self.journal.exit_mark_rows(self.hedge_id)
        ctx = restore_marks(ctx, marks)
        # the daily-loss guard's day: the journaled day start on the same UTC day, else a new day at the recovered PnL
        ctx = restore_day(ctx, marks, ts)
        self.journal.exit_marks(self.hedge_id, marks_row(ctx, "recovered", ts))
        if last_loan is not None:
            if not ctx.is_flat:  # the cycle's own target ratio and profit target, as journaled
                pt = last_loan.get("profit_target")
                ctx = replace(ctx, target_ratio=float(last_loan["target_ratio"]),
                              profit_target=None if pt is None or pd.isna(pt) else float(pt))
            self.journal.loan(self.hedge_id, loan_row(ctx, "recovered", ts, first_price=self.loan_origin[1],
                                                      started_at=self.loan_origin[0]))
        self.driver = HedgeDriver(ctx, self.params, self._driver_adapters(), hooks=self._hooks())
        from hedge_core.runner.pair_records import booked_funding  # per venue: both settle at the same instants

        self._funding_booked, self._first_funding_booked = booked_funding(
            funding, self.spec.venue if self.spec.perp_pair else None)
        report = rep.as_dict()
        if per_venue is not None:
            report["venues"] = {v: r.as_dict() for v, r in per_venue.items()}
        self.journal.transition(self.hedge_id, {"ts": ts, "from_state": last_state, "to_state": str(state),
                                                "trigger_name": "RECOVERY",
                                                "reason": f"restart, policy {self.spec.recovery} (on mismatch: "
                                                          f"{self.spec.on_mismatch}): {report}"})
        self.journal.run(self._run_row(str(state), ended=state is State.COMPLETED))
        log_event(log, "hedge recovered", hedge_id=self.hedge_id, state=str(state), last_state=last_state,
                  spot_qty=ctx.spot.qty, perp_qty=ctx.perp.qty, **rep.as_dict())
        if state is not State.COMPLETED:
            async with self.lock:  # act at once: close, or hedge a naked leg
                await self.driver.feed(Timer(ctx.last_ts, heartbeat=True))
        return report

    def _leg_contracts(self, perpetual: str, fills: pd.DataFrame | None = None) -> tuple[str, ...]:
        """The perpetual, then every other contract of the hedge leg in the journal (non-spot fills, orders of
        leg ``roll`` or ``perp``), each once: the contracts whose positions recovery reads."""
        if fills is None:
            fills = self.journal.fills(self.hedge_id)
        syms = [perpetual]
        if len(fills):
            syms += [str(x) for x in fills.loc[fills["leg"] != "spot", "symbol"]]
        syms += [str(r["symbol"]) for r in self.journal.orders(self.hedge_id)
                 if r.get("leg") in ("perp", "roll") and r.get("symbol")]
        return tuple(dict.fromkeys(syms))

    async def _restore_roll(self, ctx: HedgeContext, fills: pd.DataFrame, funding: pd.DataFrame,
                            rows: list[dict[str, Any]]) -> HedgeContext:
        """The hedge leg re-booked by contract when the journal shows a calendar roll (engine.roll_step.restore):
        the leg on the dated future it was moved to, or a roll killed between its two orders rebuilt as under way
        (the first step completes it, or reverts it). Unchanged for a hedge that never rolled."""
        roll_rows = sorted((r for r in rows if r.get("leg") == "roll" and r.get("status") not in ("rejected", "never_sent")),
                           key=lambda r: pd.Timestamp(r["intent_ts"]))
        legs = fills[fills["leg"] != "spot"] if len(fills) else fills
        symbols = {str(s) for s in legs["symbol"]} if len(legs) else set()
        if symbols <= {ctx.perp.symbol} and not roll_rows:
            return ctx
        markets = dict(await self.raw_adapter.load_markets())
        for sym in symbols - set(markets):
            # a dated future the venue delivered and no longer lists (Bybit, OKX): its perpetual's instrument under
            # its symbol, so the leg is rebuilt where the journal left it and the delivery read books it (no order
            # is sent to a delivered contract: the engine moves the flat leg to the perpetual)
            perp = markets.get(perpetual_of(sym))
            if is_dated(sym) and perp is not None:
                markets[sym] = replace(perp, symbol=sym)
        prices: dict[str, float] = {}
        for sym in symbols | {ctx.perp.symbol}:
            try:
                t = await self.raw_adapter.fetch_ticker(sym)
                prices[sym] = float(t.last or t.mid)
            except (ExchangeError, InvalidInput):  # InvalidInput: no longer listed
                prices[sym] = math.nan
        if ctx.first_leg_is_perp and len(funding) and "venue" in funding:  # two perp legs: the second leg rolls,
            funding = funding[funding["venue"] != ctx.spot.venue]  # the first venue's rows are the first leg's
        out = restore(ctx, fills, funding, markets, roll_rows, prices)
        log_event(log, "hedge leg restored by contract", hedge_id=self.hedge_id, leg_contract=out.perp.symbol,
                  perp_qty=out.perp.qty, roll_to=out.roll_leg.symbol if out.roll_leg is not None else None,
                  roll_held=out.roll_leg.qty if out.roll_leg is not None else 0.0, roll_target=out.roll_qty)
        return out

    async def _attach_market_data(self) -> None:
        """Paper on live data after a restart: the venue's public market data (its clock offset is
        measured when its markets load); unreachable now: the wall clock until the feed connects."""
        try:
            self.market_data = self.sup._market_data(self.spec)
            await self.market_data.load_markets()
        except Exception as exc:  # noqa: BLE001 - the feed retries; the clock falls back to the wall clock
            log_event(log, "venue market data not loaded at recovery", level=logging.WARNING, hedge_id=self.hedge_id,
                      error=f"{type(exc).__name__}: {exc}")
