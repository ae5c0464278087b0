"""The loan book's kernel with the liquidation-distance REDUCE guard (formerly refused: ``Err.LIQ_REDUCE``).

The census (``bench/fast_scope_census.py``) found the loan book's defaults (``VolTierLoanParams()``: 25x) refused on
the demo market and both shared windows: at 25x the perp comes within ``liq_distance_reduce`` (15 %) of its
liquidation. The engine (``step._run_guards``) cuts a collateral book's TARGET RATIO by ``liq_reduce_fraction``
(the collateral never trades) and moves to REBALANCING; ``step._rebalancing`` checks the generic exits first (the
cycle's own profit target among them), then trades the perp down; the verdict stays latched while it fires.

Reference: the event-driven backtester (``tests/support/parity.assert_fast_equals_event``: fills, snapshots,
transitions, the LTV per instant and the KPIs with the loan's money). Each case runs against the same book with a
REDUCE limit that never fires (``liq_distance_reduce = liq_distance_close``) and asserts that the fills moved.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hedge_core.backtest.fast import run_fast
from hedge_core.backtest.timeline import build_timeline, market_from_frames
from hedge_core.data.demo import generate_demo_market
from hedge_core.params.models import ExitParams, GuardParams, VolTierLoanParams
from tests.support.parity import assert_fast_equals_event

pytestmark = pytest.mark.filterwarnings("ignore::hedge_core.exchange.costs.CostModelWarning")


@pytest.fixture(scope="module")
def demo_tl():
    m = market_from_frames(generate_demo_market(days=30, timeframe="1h", seed=7))
    return build_timeline(m, start=m.first + pd.Timedelta(days=3))


def _never_reduces(p: VolTierLoanParams) -> VolTierLoanParams:
    g = p.guards.model_copy(update={"liq_distance_reduce": p.guards.liq_distance_close})
    return p.model_copy(update={"guards": g})


def _reductions(tr: pd.DataFrame) -> list[int]:
    return list(np.flatnonzero(tr["trigger_name"].to_numpy() == "RISK_REDUCE"))


def _assert_moved(fa, tl, p) -> None:
    other = run_fast(_never_reduces(p), tl)
    assert not _reductions(other.transitions)
    same = len(other.fills) == len(fa.fills) and np.allclose(other.fills["qty"], fa.fills["qty"])
    assert not same  # the guard changed the fills


def test_the_default_loan_book_reduces_as_the_event_path(demo_tl):
    p = VolTierLoanParams()  # 25x, reduce at 15 %, a quarter of the ratio
    ev, fa = assert_fast_equals_event(p, demo_tl, ltv=True, kpis=True)
    tr = fa.transitions
    red = _reductions(tr)
    assert len(red) >= 2 and all(tr["trigger_name"].iloc[k + 1] == "REBALANCED" for k in red)
    _assert_moved(fa, demo_tl, p)
    # each reduction leaves the hedge ratio at (1 - fraction) x a tier's ratio, to within a lot of the collateral
    lot = 0.001
    ratios = np.array([*p.tier_ratios, p.tier_top]) * (1 - p.guards.liq_reduce_fraction)
    qty = fa.snap[:, 9]
    for k in red:
        i = int(np.searchsorted(demo_tl.ts, tr["ts"].iloc[k].value))
        cut = fa.fills[(fa.fills["ts"] == tr["ts"].iloc[k])]
        assert len(cut) >= 1 and (cut["leg"] == "perp").all() and (cut["side"] == "buy").all()  # reduce the short
        h = -fa.snap[i, 10] / qty[i]
        assert np.min(np.abs(ratios - h)) <= lot / qty[i] + 1e-12, (tr["ts"].iloc[k], h)
    # the guard's firings as the engine logged them: one per reduction (latched while it kept firing)
    fired = ev.guard_firings[ev.guard_firings["guard"] == "liq_distance_reduce"]
    assert len(fired) >= len(red)


@pytest.mark.parametrize("rearm", [True, False])
def test_a_reduce_and_an_exit_at_the_same_instant_leave_from_rebalancing(rearm, demo_tl):
    """A REDUCE limit every position is within, and a 1 h holding time: the hour after each entry the REDUCE
    fires and, from REBALANCING, the max-holding exit (or a flatten listed after the REDUCE's verdict) closes the
    perp as held (no reduction order)."""
    p = VolTierLoanParams(perp_leverage=3, guards=GuardParams(liq_distance_close=0.05, liq_distance_reduce=0.9),
                          exit=ExitParams(max_holding_hours=1, rearm=rearm))
    ev, fa = assert_fast_equals_event(p, demo_tl, ltv=True, kpis=True)
    tr = fa.transitions
    red = _reductions(tr)
    after = [tr["trigger_name"].iloc[k + 1] for k in red]
    assert red and set(after) <= {"EXIT_SIGNAL", "FLATTEN"}
    assert all(tr["from_state"].iloc[k + 1] == "REBALANCING" for k in red)
    if rearm:  # the last cycle's reduction meets the funding-cost flatten (listed after it) at the same instant
        assert after[-1] == "FLATTEN" and after.count("EXIT_SIGNAL") == len(red) - 1
    for k in red:  # the close is the perp's whole position, one order
        f = fa.fills[fa.fills["ts"] == tr["ts"].iloc[k]]
        assert len(f) == 1
    if not rearm:
        assert len(red) == 1 and tr["to_state"].iloc[-1] == "COMPLETED"
    # the fills are those of the book that never reduces (the exit closes what is held); its transitions are not
    other = run_fast(_never_reduces(p), demo_tl)
    assert len(other.fills) == len(fa.fills) and np.allclose(other.fills["qty"], fa.fills["qty"])
    assert not _reductions(other.transitions) and not other.transitions.equals(tr)


def test_the_verdict_stays_latched_while_it_fires(demo_tl):
    """Within 90 % of liquidation from the first hour: one reduction per cycle, never a second while it fires
    (the tier's rebalance back up does not re-arm it)."""
    p = VolTierLoanParams(perp_leverage=3, guards=GuardParams(liq_distance_close=0.05, liq_distance_reduce=0.9),
                          exit=ExitParams(max_holding_hours=48, rearm=True))
    ev, fa = assert_fast_equals_event(p, demo_tl, ltv=True, kpis=True)
    tr = fa.transitions
    entries = int((tr["trigger_name"] == "HEDGE_FILLED").sum())
    assert entries >= 3 and len(_reductions(tr)) == entries
    assert (tr["trigger_name"] == "DRIFT_EXCEEDED").sum() >= entries  # back up to the tier, latched: no re-cut
    _assert_moved(fa, demo_tl, p)


@pytest.mark.shared_data
def test_the_default_loan_book_on_the_shared_sample_equals_the_event_path(shared_data):
    from hedge_core.data.shared import market_data

    tl = build_timeline(market_data().market("BTC"), start="2023-01-04T00:00Z", end="2024-06-30T00:00Z")
    p = VolTierLoanParams()
    ev, fa = assert_fast_equals_event(p, tl, ltv=True, kpis=True)
    assert _reductions(fa.transitions)
    _assert_moved(fa, tl, p)


def test_a_rejected_entry_hedge_ends_the_loan_book_as_the_event_path(demo_tl):
    """A perp wallet that cannot margin the first hedge: 1 + hedge_retries rejected orders, HEDGE_FAILED, the
    collateral kept (no fill at all), COMPLETED; the loan accrues no further (the strategy no longer decides)."""
    from hedge_core.backtest.event import BacktestConfig

    p = VolTierLoanParams(perp_leverage=3)
    ev, fa = assert_fast_equals_event(p, demo_tl, BacktestConfig(perp_usdt=100.0), ltv=True, kpis=True,
                                      fills_required=False)
    assert len(fa.fills) == 0
    assert list(fa.transitions["trigger_name"]) == ["ENTRY_SIGNAL", "SPOT_FILLED", "HEDGE_FAILED", "FLAT"]
    assert fa.transitions["to_state"].iloc[-1] == "COMPLETED"
    assert len(run_fast(p, demo_tl).fills) > 0  # a wallet that margins it trades
