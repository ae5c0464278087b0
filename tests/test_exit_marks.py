"""The exit rules' cycle memory through a restart (hedge_core/runner/exit_marks.py): a context rebuilt from its
fills alone has no peak PnL (the trailing stop is disarmed); with the journaled marks put back it has the
peak it had. Hand-computed numbers; the runner process path is in tests/test_runner_crash_paper.py."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from hedge_core.engine import State, step
from hedge_core.engine.driver import EXIT_MARK_FIELDS
from hedge_core.engine.exits import exit_reason
from hedge_core.params.models import ExitParams
from hedge_core.runner.exit_marks import marks_row, restore_marks
from hedge_core.runner.reconcile import rebuild_context
from tests.support.engine_steps import T0, H, fresh, hedged, mkt, params

TRAIL = ExitParams(profit_target_pct=None, stop_loss_pct=None, max_holding_hours=None,
                   funding_unfavourable_intervals=None, trailing_giveback=0.3, trailing_min_peak_pct=0.002)


def _fills() -> pd.DataFrame:
    """hedged(): 0.25 BTC bought and 0.25 BTC sold short at 40,000, no fee (tests/support/engine_steps.py)."""
    row = {"ts": T0, "fee": 0.0, "fee_currency": "USDT", "slippage": 0.0, "qty": 0.25, "price": 40_000.0}
    return pd.DataFrame([{**row, "trade_id": "a", "leg": "spot", "side": "buy"},
                         {**row, "trade_id": "b", "leg": "perp", "side": "sell"}])


def _rows(*ctxs) -> pd.DataFrame:
    return pd.DataFrame([{"seq": i, **marks_row(c, "step", c.last_ts)} for i, c in enumerate(ctxs)])


def _peaked():
    """The hedge after spot 40,000 -> 40,400 with the perp at 40,000: cycle PnL 0.25 x 400 = 100 USDT, its peak."""
    ctx, _ = hedged(params(exit=TRAIL.model_dump()))
    ctx, _ = step(ctx, mkt(T0 + H, px=40_400.0, perp=40_000.0), params(exit=TRAIL.model_dump()))
    return ctx


def test_a_new_peak_changes_the_marks_the_driver_journals():
    ctx0, _ = hedged(params(exit=TRAIL.model_dump()))
    ctx = _peaked()
    assert ctx.peak_pnl == pytest.approx(100.0) and ctx.cycle_pnl == pytest.approx(100.0)
    assert [f for f in EXIT_MARK_FIELDS if getattr(ctx0, f) != getattr(ctx, f)] == ["peak_pnl"]


def test_the_journaled_peak_rearms_the_trailing_stop_after_a_restart():
    """After the restart the spot falls to 40,140: cycle PnL 0.25 x 140 = 35 <= peak 100 x (1 - 0.3) = 70."""
    p = params(exit=TRAIL.model_dump())
    before = _peaked()
    rebuilt = rebuild_context(fresh(), _fills(), pd.DataFrame(), [], State.MONITORING_POSITIONS,
                              {"spot": 40_400.0, "perp": 40_000.0}, T0 + H)
    assert rebuilt.peak_pnl == 0.0 and rebuilt.pnl_at_entry == 0.0
    restored = restore_marks(rebuilt, _rows(hedged()[0], before))  # the LAST row counts
    for f in EXIT_MARK_FIELDS:
        assert getattr(restored, f) == getattr(before, f), f
    fall = mkt(T0 + 2 * H, px=40_140.0, perp=40_000.0)
    disarmed, _ = step(rebuilt, fall, p)  # fills alone: the peak restarts at 35, nothing fires (the bug)
    assert disarmed.state is State.MONITORING_POSITIONS and disarmed.peak_pnl == pytest.approx(35.0)
    rearmed, _ = step(restored, fall, p)
    assert rearmed.state is State.CLOSING_POSITIONS
    assert rearmed.exit_reason.startswith("trailing stop: pnl 35.00 <= peak 100.00")


def test_a_second_cycle_counts_its_pnl_from_its_own_entry():
    """pnl_at_entry of a re-entered hedge: the cycle PnL is measured from the PnL at the second entry signal
    (here 60 USDT of a first cycle), not from zero."""
    ctx = replace(_peaked(), pnl_at_entry=60.0, peak_pnl=40.0)
    rebuilt = rebuild_context(fresh(), _fills(), pd.DataFrame(), [], State.MONITORING_POSITIONS,
                              {"spot": 40_400.0, "perp": 40_000.0}, T0 + 2 * H)
    rebuilt, _ = step(rebuilt, mkt(T0 + 2 * H, px=40_400.0, perp=40_000.0), params(exit=TRAIL.model_dump()))
    assert rebuilt.cycle_pnl == pytest.approx(100.0)  # counts the first cycle's 60 again
    assert restore_marks(rebuilt, _rows(ctx)).cycle_pnl == pytest.approx(40.0)


def test_no_rows_change_nothing_and_a_flat_hedge_has_no_entry_time():
    rebuilt = rebuild_context(fresh(), _fills(), pd.DataFrame(), [], State.MONITORING_POSITIONS,
                              {"spot": 40_000.0, "perp": 40_000.0}, T0 + H)
    assert restore_marks(rebuilt, pd.DataFrame()) is rebuilt
    flat = fresh()
    row = _rows(replace(flat, peak_pnl=5.0, entered_at=None))
    out = restore_marks(flat, row)
    assert out.entered_at is None and out.peak_pnl == 5.0
