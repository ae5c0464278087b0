"""Vol-tiered loan book: the fast path reproduces the event-driven backtester exactly (real data), or refuses.

Binance BTC 1h from /work/shared/data (Store(':memory:') filled by the importers): a calm window
(2024-03..05) and the 2020-2022 stress set (the May 2021 crash and LUNA, May-June 2022) where
the LTV bands deploy the reserve, the EMERGENCY band and the liquidation-distance / funding-cost
guards flatten the book. For every accepted run: identical fills, transitions, per-instant PnL
components and LTV, and identical KPIs including the loan's own money.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hedge_core.backtest.timeline import build_timeline, load_market
from hedge_core.data.importers import import_path
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.backtest.fast import (
    FastPathUnsupported,
    check_supported,
    run_fast,
    run_fast_or_event,
)
from hedge_core.params.models import (
    GuardParams,
    LeverageParams,
    RebalanceParams,
    VolTierLoanParams,
)
from hedge_core.store import Store
from tests.support.parity import SNAP, assert_fast_equals_event

pytestmark = pytest.mark.shared_data



def _btc(folder, start, end, replay_start):
    st = Store(":memory:")
    for kind in ("spot_1h", "perp_1h", "mark_1h", "funding_8h"):
        import_path(st, folder / f"binance_BTCUSDT_{kind}.csv")
    m = load_market(st, venue="binance", start=start, end=end)
    return build_timeline(m, start=replay_start, end=end)


@pytest.fixture(scope="module")
def calm(shared_data):
    return _btc(shared_data / "sample_2023-01_2024-06", "2024-03-01T00:00Z", "2024-06-01T00:00Z", "2024-03-04T00:00Z")


@pytest.fixture(scope="module")
def crash_2021(shared_data):
    return _btc(shared_data / "stress_2020-01_2022-12", "2021-04-20T00:00Z", "2021-07-01T00:00Z", "2021-04-23T00:00Z")


@pytest.fixture(scope="module")
def luna_2022(shared_data):
    return _btc(shared_data / "stress_2020-01_2022-12", "2022-04-25T00:00Z", "2022-07-01T00:00Z", "2022-04-28T00:00Z")


def _book(tl, ltv0, **kw):
    """A book whose loan starts at ``ltv0`` of 1 BTC at the first replayed price."""
    px0 = float(tl.spot[0])
    return VolTierLoanParams(collateral_qty=1.0, loan=ltv0 * px0, **kw)


def _guards(ev, prefix):
    return int(ev.guard_firings["guard"].str.startswith(prefix).sum()) if len(ev.guard_firings) else 0


def _count(ev, trigger):
    return int((ev.transitions["trigger_name"] == trigger).sum())


def test_voltier_calm_window_tiers_rebalances_and_profit_exits(calm):
    for p in (_book(calm, 0.3, perp_leverage=3, guards=GuardParams(liq_distance_close=0.05, liq_distance_reduce=0.04)),
              _book(calm, 0.7, perp_leverage=4, reserve=20_000, pt_k=1.0,
                    guards=GuardParams(liq_distance_close=0.1, liq_distance_reduce=0.05),
                    rebalance=RebalanceParams(target_ratio=1.0, ratio_min=0.0, ratio_max=1.0, drift_threshold=0.05))):
        ev, _ = assert_fast_equals_event(p, calm, fills_required=False, ltv=True, kpis=True)
        assert _count(ev, "DRIFT_EXCEEDED") >= 20 and _count(ev, "REARM") >= 5
    assert ev.kpis["reserve_deployed"] > 0  # starts at 70 % LTV: the WARNING band deploys reserve


def test_voltier_spec_defaults_flattened_by_the_emergency_band(calm):
    # 0.27 BTC against 16,200 USDT: LTV far above 85 %
    ev, fa = assert_fast_equals_event(VolTierLoanParams(collateral_qty=0.27), calm, fills_required=False, ltv=True,
                                      kpis=True)
    assert len(fa.fills) == 0 and _count(ev, "FLATTEN") == 1 and _guards(ev, "ltv_emergency") == 1
    assert ev.kpis["reserve_deployed"] == pytest.approx(10_000.0)


def test_voltier_through_the_may_2021_crash(crash_2021):
    """LTV bands deploy the reserve step by step, then EMERGENCY / liquidation distance flatten."""
    p = _book(crash_2021, 0.6, perp_leverage=5, reserve=5000,
              guards=GuardParams(liq_distance_close=0.06, liq_distance_reduce=0.05))
    ev, _ = assert_fast_equals_event(p, crash_2021, fills_required=False, ltv=True, kpis=True)
    assert _guards(ev, "ltv_reserve") >= 5 and _guards(ev, "ltv_emergency") == 1 and _count(ev, "FLATTEN") == 1
    p2 = _book(crash_2021, 0.3, perp_leverage=3, guards=GuardParams(liq_distance_close=0.05, liq_distance_reduce=0.04))
    ev2, _ = assert_fast_equals_event(p2, crash_2021, fills_required=False, ltv=True, kpis=True)
    assert _guards(ev2, "funding_cost") == 1 and _count(ev2, "REARM") >= 10 and ev2.kpis["loan_repaid_from_profit"] > 0


def test_voltier_through_luna(luna_2022):
    p = _book(luna_2022, 0.6, perp_leverage=5, reserve=5000,
              guards=GuardParams(liq_distance_close=0.06, liq_distance_reduce=0.05))
    ev, _ = assert_fast_equals_event(p, luna_2022, fills_required=False, ltv=True, kpis=True)
    assert _guards(ev, "ltv_reserve") >= 10 and _guards(ev, "liq_distance_close") == 1


def test_voltier_paper_liquidation_is_refused_and_falls_back(crash_2021):
    # guards effectively off at 25x: the venue liquidates; the kernel refuses at that instant
    p = _book(crash_2021, 0.5, perp_leverage=25, guards=GuardParams(liq_distance_close=0.001, liq_distance_reduce=0.0005))
    with pytest.raises(FastPathUnsupported, match="liquidate"):
        run_fast(p, crash_2021)
    path, kpis = run_fast_or_event(p, crash_2021)
    assert path == "event" and not math.isnan(kpis["ltv_max"])


def test_voltier_refusals():
    with pytest.raises(FastPathUnsupported, match="cross margin"):
        from hedge_core.types import MarginMode

        check_supported(VolTierLoanParams(leverage=LeverageParams(max_leverage=25, margin_mode=MarginMode.CROSS)),
                        PaperConfig())
    with pytest.raises(FastPathUnsupported, match="participation"):
        check_supported(VolTierLoanParams(), PaperConfig(participation=0.5))


def test_loan_book_snapshot_excludes_the_collateral(calm):
    p = _book(calm, 0.3, perp_leverage=3, guards=GuardParams(liq_distance_close=0.05, liq_distance_reduce=0.04))
    fa = run_fast(p, calm)
    s = pd.DataFrame(fa.snap, columns=SNAP)
    assert (s["spot_price_pnl"] == 0).all() and (s["spot_qty"] == 1.0).all()
    np.testing.assert_allclose(s["net"], s["perp_price_pnl"] + s["funding"] - s["fees"], atol=1e-9)
