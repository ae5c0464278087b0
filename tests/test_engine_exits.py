"""Exit rules at their edges (inclusive thresholds), on crafted contexts."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from hedge_core.engine.exits import exit_reason
from hedge_core.params.models import ExitParams
from tests.support.engine_steps import T0, H, hedged

NOTIONAL = 10_000.0  # hedged(): 0.25 BTC at 40,000


def ctx_with(pnl: float, peak: float = 0.0):
    ctx, _ = hedged()
    # cycle_pnl = pnl - pnl_at_entry
    return replace(ctx, pnl_at_entry=ctx.pnl - pnl, peak_pnl=peak, entry_notional=NOTIONAL)


def reason(ctx, p, ts=T0 + H, spot=40_000.0, perp=40_000.0):
    return exit_reason(ctx, ts, spot, perp, p)


OFF = {"profit_target_pct": None, "stop_loss_pct": None, "max_holding_hours": None, "funding_unfavourable_intervals": None}


@pytest.mark.parametrize("pnl,fires", [(99.99, False), (100.0, True), (100.01, True)])
def test_profit_target_one_percent_of_notional(pnl, fires):
    p = ExitParams(**{**OFF, "profit_target_pct": 0.01})
    assert reason(ctx_with(pnl), p).startswith("profit target") is fires


@pytest.mark.parametrize("pnl,fires", [(-199.99, False), (-200.0, True), (-200.01, True)])
def test_stop_loss_two_percent_of_notional(pnl, fires):
    p = ExitParams(**{**OFF, "stop_loss_pct": 0.02})
    assert reason(ctx_with(pnl), p).startswith("stop loss") is fires


def test_strategy_profit_target_in_quote_overrides_the_percentage():
    p = ExitParams(**{**OFF, "profit_target_pct": 0.01})
    ctx = replace(ctx_with(60.0), profit_target=50.0)
    assert reason(ctx, p).startswith("profit target")


@pytest.mark.parametrize("pnl,fires", [(70.01, False), (70.0, True), (69.99, True)])
def test_trailing_stop_gives_back_thirty_percent_of_peak(pnl, fires):
    p = ExitParams(**{**OFF, "trailing_giveback": 0.3, "trailing_min_peak_pct": 0.002})
    assert reason(ctx_with(pnl, peak=100.0), p).startswith("trailing") is fires


def test_trailing_stop_arms_only_after_the_minimum_peak():
    p = ExitParams(**{**OFF, "trailing_giveback": 0.3, "trailing_min_peak_pct": 0.002})  # 20 USDT
    assert reason(ctx_with(0.0, peak=19.99), p) == ""
    assert reason(ctx_with(0.0, peak=20.0), p).startswith("trailing")


@pytest.mark.parametrize("perp,fires", [(40_039.99, False), (40_040.0, True), (39_960.0, True)])
def test_basis_stop_bps(perp, fires):
    p = ExitParams(**{**OFF, "basis_stop_bps": 10.0})
    assert reason(ctx_with(0.0), p, perp=perp).startswith("basis stop") is fires


@pytest.mark.parametrize("held,fires", [(pd.Timedelta(hours=24) - pd.Timedelta(seconds=1), False),
                                        (pd.Timedelta(hours=24), True)])
def test_max_holding_time_24h(held, fires):
    p = ExitParams(**{**OFF, "max_holding_hours": 24})
    ctx = ctx_with(0.0)
    assert reason(ctx, p, ts=ctx.entered_at + held).startswith("max holding") is fires


@pytest.mark.parametrize("count,fires", [(2, False), (3, True)])
def test_funding_unfavourable_intervals(count, fires):
    p = ExitParams(**{**OFF, "funding_unfavourable_intervals": 3})
    assert reason(replace(ctx_with(0.0), unfavourable_funding=count), p).startswith("funding") is fires
