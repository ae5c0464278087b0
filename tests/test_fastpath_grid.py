"""Grid hedge: the fast path reproduces the event-driven backtester exactly (real data), or refuses.

Binance BTC 1h from /work/shared/data: 2023-08..09 and the May 2021 crash (stress set). For every
accepted run: identical fills, transitions (grid start, level-driven rebalances up and down,
grid stop loss, generic exits, VaR and drawdown flattens), per-instant PnL components and KPIs.
"""

from __future__ import annotations

import pandas as pd
import pytest

from hedge_core.backtest.timeline import build_timeline, load_market
from hedge_core.data.importers import import_path
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.backtest.fast import (
    FastPathUnsupported,
    check_supported,
)
from hedge_core.params.models import ActivationParams, ExitParams, GridParams, RebalanceParams
from hedge_core.store import Store
from tests.support.parity import assert_fast_equals_event

pytestmark = pytest.mark.shared_data

REARM = ExitParams(rearm=True, profit_target_pct=None, stop_loss_pct=None, max_holding_hours=None,
                   funding_unfavourable_intervals=None)


def _btc(folder, start, end):
    st = Store(":memory:")
    for kind in ("spot_1h", "perp_1h", "mark_1h", "funding_8h"):
        import_path(st, folder / f"binance_BTCUSDT_{kind}.csv")
    m = load_market(st, venue="binance", start=start, end=end)
    return build_timeline(m, start=pd.Timestamp(start) + pd.Timedelta(days=3), end=end)


@pytest.fixture(scope="module")
def aug23(shared_data):
    return _btc(shared_data / "sample_2023-01_2024-06", "2023-08-01T00:00Z", "2023-10-01T00:00Z")


@pytest.fixture(scope="module")
def may21(shared_data):
    return _btc(shared_data / "stress_2020-01_2022-12", "2021-04-20T00:00Z", "2021-07-01T00:00Z")


def _sets(px):
    return {
        "defaults": GridParams(),
        "rearm_tight": GridParams(levels=8, spacing_sigma=0.5, min_spacing_pct=0.004,
                                  exit=REARM.model_copy(update={"max_holding_hours": 168})),
        "stop_rearm_support": GridParams(levels=3, spacing_sigma=0.7, support_levels=(px * 0.95, px * 0.9, px * 0.985),
                                         grid_stop_loss_pct=0.01, max_ratio=1.2,
                                         exit=ExitParams(rearm=True, profit_target_pct=0.01, stop_loss_pct=0.03,
                                                         max_holding_hours=240, funding_unfavourable_intervals=None)),
        "var_flatten": GridParams(levels=5, var_limit=150.0, exit=REARM),
        "cooldown_drawdown": GridParams(levels=6, max_drawdown=150.0, exit=REARM.model_copy(update={"profit_target_pct": 0.02}),
                                        rebalance=RebalanceParams(target_ratio=0.0, ratio_min=0.0, ratio_max=2.0,
                                                                  drift_threshold=0.1, cooldown_s=4 * 3600)),
    }


def _count(ev, trigger):
    return int((ev.transitions["trigger_name"] == trigger).sum())


def _exit_reasons(ev):
    return ev.transitions.loc[ev.transitions["trigger_name"] == "EXIT_SIGNAL", "reason"]


@pytest.mark.parametrize("name", ["defaults", "rearm_tight", "stop_rearm_support", "var_flatten", "cooldown_drawdown"])
def test_grid_fast_path_equals_event_driven_aug_2023(aug23, name):
    ev, _ = assert_fast_equals_event(_sets(float(aug23.spot[0]))[name], aug23, kpis=True)
    if name in ("defaults", "rearm_tight", "stop_rearm_support"):
        assert _count(ev, "DRIFT_EXCEEDED") >= 5
        sells = ev.fills[(ev.fills["leg"] == "perp") & (ev.fills["side"] == "sell")]
        buys = ev.fills[(ev.fills["leg"] == "perp") & (ev.fills["side"] == "buy")]
        assert len(sells) and len(buys)  # the short grows and shrinks with the levels
    if name == "stop_rearm_support":
        assert _exit_reasons(ev).str.startswith("grid stop loss").any() and _count(ev, "REARM") >= 10
    if name == "var_flatten":
        assert (ev.guard_firings["guard"] == "grid_var").any() and _count(ev, "FLATTEN") == 1
    if name == "cooldown_drawdown":
        assert (ev.guard_firings["guard"] == "grid_drawdown").any()


def test_grid_through_the_may_2021_crash(may21):
    s = _sets(float(may21.spot[0]))
    ev, _ = assert_fast_equals_event(s["rearm_tight"], may21, kpis=True)
    assert _count(ev, "DRIFT_EXCEEDED") >= 50 and _count(ev, "REARM") >= 5
    ev, _ = assert_fast_equals_event(s["stop_rearm_support"], may21, kpis=True)
    assert _count(ev, "REARM") >= 100 and _exit_reasons(ev).str.startswith("stop loss").any()


def test_grid_waits_while_no_level_is_above_zero(may21):
    """spacing = 20 x sigma_24h >= 100 % puts the only level at or below zero: the grid waits (both
    paths), and enters at the first update whose volatility allows a positive level."""
    p = GridParams(levels=1, spacing_sigma=20.0, exit=REARM.model_copy(update={"max_holding_hours": 72}))
    sigma = pd.Series(may21.column("sigma_24h"), index=may21.index)
    assert 20 * sigma.iloc[0] >= 1.0  # the first update cannot build a level
    ev, _ = assert_fast_equals_event(p, may21, kpis=True)
    entries = ev.transitions.loc[ev.transitions["trigger_name"] == "ENTRY_SIGNAL", "ts"]
    assert len(entries) >= 3 and entries.iloc[0] > may21.index[0]
    assert (20 * sigma.reindex(pd.DatetimeIndex(entries)) < 1.0).all()
    waited = sigma[(sigma.index < entries.iloc[0])]
    assert (20 * waited >= 1.0).all()  # it entered at the first chance, not later


def test_grid_refusals():
    with pytest.raises(FastPathUnsupported, match="activation"):
        check_supported(GridParams(activation=ActivationParams(deviation_z=2.0)), PaperConfig())
    with pytest.raises(FastPathUnsupported, match="slippage noise"):
        check_supported(GridParams(), PaperConfig(slippage_noise_bps=1.0))
