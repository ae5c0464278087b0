"""Generic exit rules, shared by every strategy. Pure; thresholds are inclusive."""

from __future__ import annotations

import math

import pandas as pd

from hedge_core import money
from hedge_core.engine.context import HedgeContext, seconds_between
from hedge_core.engine.events import MarketUpdate
from hedge_core.params.models import ExitParams
from hedge_core.types import MarketKind

__all__ = ["defer_exit", "defer_for_funding", "exit_reason"]

SOFT_EXITS = ("profit target", "max holding")  # the exits a funding about to be received may hold back


def defer_for_funding(ctx: HedgeContext, ts: pd.Timestamp, reason: str, next_funding_ts: pd.Timestamp | None,
                      expected_rate: float, p: ExitParams) -> bool:
    """True when a soft exit (profit target, max holding time) should wait for a funding the
    position is about to RECEIVE (settling within ``defer_within_s_of_funding``). Stops, trailing,
    basis and funding exits are never deferred."""
    if p.defer_within_s_of_funding is None or next_funding_ts is None or math.isnan(expected_rate):
        return False
    if not (reason.startswith(SOFT_EXITS)):
        return False
    lead = seconds_between(next_funding_ts, ts)
    receives = -ctx.perp.qty * expected_rate > 0  # payment = -qty x mark x rate
    return receives and 0 < lead <= p.defer_within_s_of_funding


def defer_exit(ctx: HedgeContext, ts: pd.Timestamp, reason: str, market: MarketUpdate, p: ExitParams) -> bool:
    """Whether the soft exit ``reason`` waits for funding (``exit.defer_within_s_of_funding``): with a perp
    FIRST leg, what BOTH legs settle within the window (:func:`hedge_core.engine.perp_legs.pair_defers_exit`);
    else the second leg's next funding (:func:`defer_for_funding`)."""
    if ctx.spot.kind is MarketKind.PERP:
        from hedge_core.engine.perp_legs import pair_defers_exit

        return pair_defers_exit(ctx, ts, reason, market, p)
    return defer_for_funding(ctx, ts, reason, market.next_funding_ts, market.expected_funding_rate, p)


def exit_reason(ctx: HedgeContext, ts: pd.Timestamp, spot: float, perp: float, p: ExitParams) -> str:
    """The first exit rule that fires, as a reason with its numbers, or ``""``.

    Order: stop loss, profit target, trailing stop, basis stop, unfavourable funding, max
    holding time. PnL rules use ``ctx.cycle_pnl`` (quote) against ``ctx.entry_notional``;
    ``ctx.profit_target`` (quote) overrides ``profit_target_pct`` when a strategy set one.
    """
    pnl, notional = ctx.cycle_pnl, ctx.entry_notional
    if p.stop_loss_pct is not None and notional > 0 and pnl <= -p.stop_loss_pct * notional:
        return f"stop loss: pnl {pnl:.2f} <= -{p.stop_loss_pct:.4f} x {notional:.2f}"
    target = ctx.profit_target
    if target is None and p.profit_target_pct is not None and notional > 0:
        target = p.profit_target_pct * notional
    if target is not None and target > 0 and pnl >= target:
        return f"profit target: pnl {pnl:.2f} >= {target:.2f}"
    if (p.trailing_giveback is not None and notional > 0 and ctx.peak_pnl > 0
            and ctx.peak_pnl >= p.trailing_min_peak_pct * notional
            and pnl <= ctx.peak_pnl * (1.0 - p.trailing_giveback)):
        return f"trailing stop: pnl {pnl:.2f} <= peak {ctx.peak_pnl:.2f} x (1 - {p.trailing_giveback})"
    if p.basis_stop_bps is not None and ctx.same_base and spot > 0 and not math.isnan(perp):
        bps = abs(money.basis(perp, spot)) * 1e4
        if bps >= p.basis_stop_bps:
            return f"basis stop: |basis| {bps:.1f} bps >= {p.basis_stop_bps}"
    if p.funding_unfavourable_intervals is not None and ctx.unfavourable_funding >= p.funding_unfavourable_intervals:
        return f"funding unfavourable for {ctx.unfavourable_funding} intervals"
    if p.max_holding_hours is not None and ctx.entered_at is not None:
        held = seconds_between(ts, ctx.entered_at) / 3600.0
        if held >= p.max_holding_hours:
            return f"max holding time: {held:.2f} h >= {p.max_holding_hours} h"
    return ""
