"""What one hedge shows: its summary for the API and the panel, replay progress, position snapshots.

:class:`HedgeStatusMixin` is a part of :class:`hedge_core.runner.hedge.HedgeTask` (read-only views of
the task; ``_snapshot`` writes the positions table); split out of that module by responsibility.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import pandas as pd

from hedge_core.engine.context import HedgeContext
from hedge_core.runner.roll_watch import roll_status
from hedge_core.engine.ledger import QTY_EPS
from hedge_core.runner.clock import replay_progress
from hedge_core.runner.held import held_sentence
from hedge_core.types import MarketKind

if TYPE_CHECKING:
    from hedge_core.engine.driver import HedgeDriver
    from hedge_core.params.models import StrategyParamsBase
    from hedge_core.runner.condition import Conditions
    from hedge_core.runner.hedge_spec import HedgeSpec
    from hedge_core.runner.journal import Journal

__all__ = ["HedgeStatusMixin"]


class HedgeStatusMixin:
    """Summary, replay progress and position snapshots of a :class:`~hedge_core.runner.hedge.HedgeTask`."""

    spec: HedgeSpec
    hedge_id: str
    params: StrategyParamsBase
    journal: Journal
    raw_adapter: Any
    driver: HedgeDriver | None
    sup: Any
    conditions: Conditions

    def replay_state(self) -> dict[str, Any] | None:
        """Replay progress for the summary: replay clock, fraction of the window done, ETA (wall s)."""
        if self.clock != "replay" or self.replay_window is None:
            return None
        start, end = self.replay_window
        began = self._replay_t0[1] if self._replay_t0 else None
        t1 = self._replay_t1 if self._replay_t1 is not None else time.monotonic()
        elapsed = t1 - self._replay_t0[0] if self._replay_t0 else 0.0
        now = self.driver.ctx.last_ts if (self.driver is not None and self._replay_t0) else None
        if now is not None and now < start:
            now = None
        p = replay_progress(start, end, now, elapsed, began=began)
        out = {**p.as_dict(), "speed": self.spec.speed, "phase": self.phase}
        if self.phase == "done":
            out["eta_s"] = None  # stopped (window done, hedge completed or failed): nothing left to wait for
        return out

    def _snapshot(self, ts: pd.Timestamp, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_snapshot < self.sup.position_snapshot_s:
            return
        self._last_snapshot = now
        c = self.driver.ctx if self.driver else None
        if c is None:
            return
        rows = [{"venue": lg.venue, "symbol": lg.symbol, "qty": lg.qty, "entry_price": lg.avg_entry,
                 "mark_price": None if math.isnan(px) else px, "unrealized_pnl": lg.unrealized, "liquidation_price": None,
                 "leverage": c.leverage if lg.name == "perp" or lg.kind is MarketKind.PERP else 1.0}
                for lg, px in ((c.spot, c.spot_price), (c.perp, c.mark_price))]
        if c.roll_leg is not None:  # a calendar roll under way: the contract the leg moves to
            r = c.roll_leg
            rows.append({"venue": r.venue, "symbol": r.symbol, "qty": r.qty, "entry_price": r.avg_entry,
                         "mark_price": None if math.isnan(r.last_price) else r.last_price,
                         "unrealized_pnl": r.unrealized, "liquidation_price": None, "leverage": c.leverage})
        self.journal.positions(self.hedge_id, ts, rows)

    def summary(self) -> dict[str, Any]:
        c = self.driver.ctx if self.driver else None
        out = {"hedge_id": self.hedge_id, "status": self.status, "mode": self.spec.mode,
               "params": f"{self.spec.params_name}@{self.spec.params_version}" if self.spec.params_name else "inline",
               "strategy": str(self.params.strategy), "spot_symbol": self.spec.spot_symbol,
               "perp_symbol": self.spec.perp_symbol, "updates": self.updates, "error": self.error,
               "degraded": self.conditions.as_dict(), "reconcile": self.last_reconcile,
               "clock": self.clock, "feed": self.spec.feed, "feed_reason": self.feed_reason,
               "clock_now": str(self.clock_now()), "phase": self.phase,
               "advice": self.advice.model_dump() if self.advice is not None else None}
        rs = self.replay_state()
        if rs is not None:
            out["replay"] = rs
        recs = getattr(self.raw_adapter, "recommendations", None)
        if recs is not None:  # recommend mode: what would have been sent
            out["recommendations"] = [{"ts": str(r.ts), "method": r.method, "request": r.request, "note": r.note}
                                      for r in recs[-20:]]
        if c is not None:
            out.update({"state": str(c.state), "spot_qty": c.spot.qty, "perp_qty": c.perp.qty,
                        "hedge_ratio": None if math.isnan(c.hedge_ratio) else c.hedge_ratio, "pnl": c.pnl,
                        "funding": c.spot.funding + c.perp.funding, "last_ts": str(c.last_ts), "pending_orders": len(c.pending),
                        "kill_latched": c.kill_latched})
            out.update(roll_status(c))  # which contract the hedge leg is on; a calendar roll under way
            out.update(self._panel_fields(c))
        return out

    def _panel_fields(self, c: HedgeContext) -> dict[str, Any]:
        """Extra read-only figures for the panel: delta, drift, PnL split, prices, risk and loan."""

        def num(x: Any) -> float | None:
            return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

        # day_pnl: None (unknown) while the hedge has no day start: a recovered hedge gets the journaled one on the
        # same UTC day, or a new day at its recovered PnL on a later one (runner.exit_marks.restore_day); none is
        # known only when nothing journaled a day (then its WHOLE PnL would count: the book's daily_loss limit and
        # the risk advisor would take earlier days' losses for today's) until its first market update
        out: dict[str, Any] = {
            "delta": num(c.delta), "target_ratio": num(c.target_ratio), "drift": num(c.drift),
            "price_pnl": num(c.spot.realized + c.spot.unrealized + c.perp.realized + c.perp.unrealized),
            "fees": num(c.spot.fees + c.perp.fees), "interest": num(c.spot.interest + c.perp.interest),
            "spot_price": num(c.spot_price), "perp_price": num(c.perp_price), "mark_price": num(c.mark_price),
            "spot_entry": num(c.spot.avg_entry), "perp_entry": num(c.perp.avg_entry), "leverage": num(c.leverage),
            "funding_rate": num(c.last_funding_rate), "day_pnl": num(c.pnl - c.day_start_pnl) if c.day else None,
            "daily_loss_limit": num(getattr(self.params.guards, "daily_loss_limit", None)),
            "liq_distance_reduce": num(self.params.guards.liq_distance_reduce),
            "liq_distance_close": num(self.params.guards.liq_distance_close),
            "entered_at": None if c.entered_at is None else str(c.entered_at), "exit_reason": c.exit_reason,
            "active_guards": sorted(c.active_guards), "alerts": self.alerts[-10:], "venue": self.spec.venue,
            "perp_venue": getattr(self.spec, "perp_venue", None) or self.spec.venue,
            "perp_venue_choice": getattr(self.spec, "perp_venue_choice", None),  # best execution at start
            "started_at": str(self.started_at), "held": held_sentence(c, self.params),
            "stale_updates": getattr(self, "stale_updates", 0)}
        try:
            from hedge_core.analytics.risk import liquidation_distance
            from hedge_core.engine.guards import perp_liquidation_price

            lp = perp_liquidation_price(c)
            out["liq_price"] = num(lp)
            out["liq_distance"] = num(liquidation_distance(c.perp.qty, c.mark_price, lp)) \
                if abs(c.perp.qty) > QTY_EPS and c.mark_price == c.mark_price else None
        except Exception:  # noqa: BLE001 - a display figure must never break the summary
            out["liq_price"] = out["liq_distance"] = None
        book = c.loan  # a loan book's typed loan state (engine.loan_state)
        if book is not None:
            loan = book.loan
            from hedge_core import ltv as ltvmod
            from hedge_core.engine.strategies.voltier import ltv_params

            lp_ = ltv_params(self.params)
            value = ltvmod.ltv(loan.outstanding, c.spot.qty, c.spot_price) \
                if c.spot.qty > 0 and c.spot_price > 0 else None
            out["loan"] = {"outstanding": num(loan.outstanding), "accrued_interest": num(loan.accrued_interest),
                           "collateral_qty": num(c.spot.qty), "ltv": num(value),
                           "band": ltvmod.ltv_band(value, lp_) if value is not None else None,
                           "bands": {"monitor": lp_.monitor, "warning": lp_.warning, "critical": lp_.critical,
                                     "emergency": lp_.emergency},
                           "reserve_left": num(book.reserve_left), "reserve_deployed": num(book.reserve_deployed)}
        return out
