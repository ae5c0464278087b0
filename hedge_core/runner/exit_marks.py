"""A hedge's exit marks in the runner's journal (table ``exit_marks``) and back (pure).

The exit rules (:func:`hedge_core.engine.exits.exit_reason`) read cycle memory that the fills and funding
cannot rebuild: the PnL when the entry signal fired (``pnl_at_entry``: the cycle's PnL is measured from it),
the cycle's peak PnL (the trailing stop gives back a fraction of it), the entry notional the percentages
apply to, when the legs were entered (max holding time), a strategy's profit target and the count of
unfavourable funding intervals. A restart that rebuilt the context from fills alone set the first two to
zero -- a trailing stop armed before the restart was disarmed, and the cycle's PnL of a second cycle counted
the first one's.

The driver's ``on_exit_marks`` hook says when a step changed them (:data:`MARK_FIELDS`), :func:`marks_row`
is the journal row, :func:`restore_marks` puts the last row back on a rebuilt context. Units: PnL and
notional in quote (USDT), ``peak_pnl`` >= 0, timestamps UTC.

The same rows carry the daily-loss guard's day (``day``, UTC ``'YYYY-MM-DD'``; store migration 8) and the
hedge's PnL at its start (``day_start_pnl``, quote), journaled when the day rolls (the engine starts a day at
the first market update of a new UTC day, at the PnL after that update: ``engine.step``). A restart used to
start the day again at the hedge's PnL then, so a hedge that had lost most of its daily limit could lose all of
it again. :func:`restore_day` puts the journaled day start back when the restart is on the same UTC day.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pandas as pd

from hedge_core.engine.context import HedgeContext
from hedge_core.engine.driver import EXIT_MARK_FIELDS as MARK_FIELDS
from hedge_core.engine.step import day_of

__all__ = ["MARK_FIELDS", "marks_row", "restore_day", "restore_marks"]


def marks_row(ctx: HedgeContext, event: str, ts: pd.Timestamp) -> dict[str, Any]:
    """One ``exit_marks`` row (without ``hedge_id``/``seq``: the journal adds them). ``event``: ``step`` (a step
    changed the marks) or ``recovered`` (what a restart put back); ``ts`` the hedge's clock."""
    return {"ts": ts, "event": event, "state": str(ctx.state), "pnl_at_entry": float(ctx.pnl_at_entry),
            "peak_pnl": float(ctx.peak_pnl), "entry_notional": float(ctx.entry_notional),
            "entered_at": ctx.entered_at, "profit_target": ctx.profit_target,
            "unfavourable_funding": int(ctx.unfavourable_funding),
            "day": ctx.day or None, "day_start_pnl": float(ctx.day_start_pnl) if ctx.day else None}


def _opt_float(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT else float(v)


def restore_marks(ctx: HedgeContext, rows: pd.DataFrame) -> HedgeContext:
    """``ctx`` (rebuilt from the journal's fills and funding) with the marks of the LAST ``exit_marks`` row
    (highest ``seq``); unchanged when there is none. ``entered_at`` is kept from ``ctx`` when the row has none
    and the legs are open (a row written before the legs filled)."""
    if rows is None or not len(rows):
        return ctx
    last = rows.sort_values("seq").iloc[-1]
    entered = last.get("entered_at")
    entered = None if entered is None or pd.isna(entered) else pd.Timestamp(entered)
    if entered is None and not ctx.is_flat:
        entered = ctx.entered_at
    return replace(ctx, pnl_at_entry=float(last["pnl_at_entry"]), peak_pnl=float(last["peak_pnl"]),
                   entry_notional=float(last["entry_notional"]), entered_at=entered,
                   profit_target=_opt_float(last.get("profit_target")),
                   unfavourable_funding=int(last["unfavourable_funding"]))


def restore_day(ctx: HedgeContext, rows: pd.DataFrame, ts: pd.Timestamp) -> HedgeContext:
    """``ctx`` (rebuilt at the restart, hedge clock ``ts``) with the daily-loss guard's day.

    - the last ``exit_marks`` row that has a day (highest ``seq``) is of ``ts``'s day: that day and its
      ``day_start_pnl`` (the guard and ``day_pnl`` count the day's losses from before the restart);
    - it is of an earlier day: a new day, ``ts``'s, starting at ``ctx.pnl`` (the recovered PnL, quote), as the
      engine would have started it at its first update of the day;
    - no row has a day (nothing journaled one: a hedge that never had a market update, rows written before
      store migration 8): unchanged (``day`` empty: the day starts at the first market update, and the hedge
      summary's ``day_pnl`` is unknown until then).
    A journaled day later than ``ts``'s (a clock behind the journal) is put back as well: the engine's own
    day roll moves on from it."""
    if rows is None or not len(rows) or "day" not in rows.columns:
        return ctx
    known = rows[rows["day"].notna() & rows["day_start_pnl"].notna()]
    if not len(known):
        return ctx
    last = known.sort_values("seq").iloc[-1]
    day, today = str(last["day"]), day_of(ts)
    if day >= today:
        return replace(ctx, day=day, day_start_pnl=float(last["day_start_pnl"]))
    return replace(ctx, day=today, day_start_pnl=float(ctx.pnl))
