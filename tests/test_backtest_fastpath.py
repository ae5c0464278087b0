"""The fast path reproduces the event-driven backtester exactly (real data), or refuses.

Both paths run on the same Timeline built from a Store(':memory:') filled by the importers from
/work/shared/data. For every accepted run: identical fills (instant, leg, side, qty, price, fee,
slippage), identical transitions, and the same per-instant PnL components to 1e-9 quote.
"""

from __future__ import annotations

import numpy as np
import pytest

from hedge_core.backtest.event import BacktestConfig, run_backtest
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
    CarryParams,
    ExitParams,
    GuardParams,
    LeverageParams,
)
from hedge_core.store import Store
from tests.support.parity import assert_fast_equals_event

pytestmark = pytest.mark.shared_data



@pytest.fixture(scope="module")
def store(shared_data):
    st = Store(":memory:")
    folder = shared_data / "sample_2023-01_2024-06"
    for name in ("BTCUSDT", "ETHUSDT"):
        for kind in ("spot_1h", "perp_1h", "mark_1h", "funding_8h"):
            import_path(st, folder / f"binance_{name}_{kind}.csv")
    return st


@pytest.fixture(scope="module")
def btc(store):
    m = load_market(store, venue="binance", spot_symbol="BTC/USDT", perp_symbol="BTC/USDT:USDT",
                    start="2023-01-04T00:00Z", end="2023-05-01T00:00Z")
    return build_timeline(m, start="2023-01-04T00:00Z", end="2023-05-01T00:00Z")


@pytest.fixture(scope="module")
def eth(store):
    m = load_market(store, venue="binance", spot_symbol="ETH/USDT", perp_symbol="ETH/USDT:USDT",
                    start="2024-01-04T00:00Z", end="2024-03-15T00:00Z")
    return build_timeline(m, start="2024-01-04T00:00Z", end="2024-03-15T00:00Z")


CARRY_SETS = {
    "rearm_72h": CarryParams(min_net_carry=-0.01, exit=ExitParams(rearm=True, max_holding_hours=72)),
    "tight_pt_sl": CarryParams(min_net_carry=-0.01, notional=25_000,
                               exit=ExitParams(rearm=True, profit_target_pct=0.002, stop_loss_pct=0.003,
                                               max_holding_hours=None)),
    "trailing_unfav": CarryParams(min_net_carry=-0.01, min_funding_rate=0.00005,
                                  exit=ExitParams(rearm=True, profit_target_pct=None, stop_loss_pct=0.01,
                                                  trailing_giveback=0.3, trailing_min_peak_pct=0.0005,
                                                  funding_unfavourable_intervals=1, max_holding_hours=None)),
    "levered_guard_flatten": CarryParams(min_net_carry=-0.01,
                                         leverage=LeverageParams(liq_buffer=0.1, max_leverage=5, recheck_hours=4),
                                         guards=GuardParams(liq_distance_close=0.21, liq_distance_reduce=0.1),
                                         exit=ExitParams(rearm=True, max_holding_hours=None)),
    "funding_cost_flatten": CarryParams(min_net_carry=-0.01, min_funding_rate=0.0,
                                        guards=GuardParams(funding_cost_apr_limit=0.005),
                                        exit=ExitParams(rearm=True, max_holding_hours=None,
                                                        funding_unfavourable_intervals=None, stop_loss_pct=None,
                                                        profit_target_pct=None)),
    "basis_stop_lev_recheck": CarryParams(min_net_carry=-0.02, max_entry_basis_bps=20,
                                          leverage=LeverageParams(liq_buffer=0.3, max_leverage=3, recheck_hours=1),
                                          exit=ExitParams(rearm=True, basis_stop_bps=4, max_holding_hours=48)),
}


@pytest.mark.parametrize("name", sorted(CARRY_SETS))
def test_fast_path_equals_event_driven_btc(btc, name):
    ev, _ = assert_fast_equals_event(CARRY_SETS[name], btc)
    if name == "levered_guard_flatten":
        assert ev.final_state == "COMPLETED" and (ev.transitions["trigger_name"] == "FLATTEN").any()
    if name == "funding_cost_flatten":
        assert (ev.guard_firings["guard"] == "funding_cost").any()


def test_fast_path_equals_event_driven_eth_other_venue_model(eth):
    cfg = BacktestConfig(paper=PaperConfig(slippage_bps=3.0, impact_k_bps=25.0, spot_taker_fee=0.00075,
                                           perp_taker_fee=0.0004))
    assert_fast_equals_event(CARRY_SETS["tight_pt_sl"], eth, cfg)
    assert_fast_equals_event(CARRY_SETS["rearm_72h"], eth, cfg)


def test_fast_path_refuses_a_strategy_without_a_kernel():
    from types import SimpleNamespace

    with pytest.raises(FastPathUnsupported, match="strategy 'basis_arb' has no fast kernel"):
        check_supported(SimpleNamespace(strategy="basis_arb"), PaperConfig())


def test_fast_path_refuses_unmodelled_features():
    with pytest.raises(FastPathUnsupported, match="allow_spot_short"):
        check_supported(CarryParams(allow_spot_short=True), PaperConfig())
    with pytest.raises(FastPathUnsupported, match="participation"):
        check_supported(CarryParams(), PaperConfig(participation=0.1))


def test_runtime_refusal_names_the_instant_and_falls_back(btc):
    tiny = CarryParams(min_net_carry=-0.01, notional=60.0, exit=ExitParams(rearm=True))
    with pytest.raises(FastPathUnsupported, match=r"perp hedge is below the venue minimums .* at 2023-"):
        run_fast(tiny, btc)
    path, kpis = run_fast_or_event(tiny, btc)
    assert path == "event" and "net_apr" in kpis


def test_fast_kpis_equal_event_kpis(btc):
    from hedge_core.backtest.fast import fast_kpis

    p = CARRY_SETS["tight_pt_sl"]
    ev = run_backtest(p, btc).kpis
    fk = fast_kpis(p, btc)
    assert set(fk) == set(ev)
    for k, v in ev.items():
        assert fk[k] == pytest.approx(v, rel=1e-9, abs=1e-12, nan_ok=True), k


def test_fast_path_equals_event_driven_in_the_covid_crash(shared_data):
    """Stress window (spot gaps, funding at its caps, a funding-cost flatten): still identical."""
    st = Store(":memory:")
    folder = shared_data / "stress_2020-01_2022-12"
    for kind in ("spot_1h", "perp_1h", "mark_1h", "funding_8h"):
        import_path(st, folder / f"binance_BTCUSDT_{kind}.csv")
    m = load_market(st, venue="binance", start="2020-02-10T00:00Z", end="2020-04-20T00:00Z")
    tl = build_timeline(m, start="2020-02-10T00:00Z", end="2020-04-20T00:00Z")
    for p in (CarryParams(min_net_carry=-0.01, exit=ExitParams(rearm=True, max_holding_hours=96)),
              CarryParams(min_net_carry=-0.01, min_funding_rate=0.0,
                          exit=ExitParams(rearm=True, max_holding_hours=None, stop_loss_pct=0.01))):
        ev, _ = assert_fast_equals_event(p, tl)
        assert ev.kpis["entries"] >= 1 and (ev.transitions["trigger_name"] == "FLATTEN").any()
    assert (~tl.has_spot).sum() > 0  # the window holds real spot outages


@pytest.mark.parametrize("late_perp", [False, True])
def test_priced_prices_are_the_kernels_snapshot_prices(store, late_perp):
    """Sweeps keep only net / perp qty / hedge ratio per instant and read the prices from
    ``priced_prices(timeline)``: they must be the very doubles both kernels write in full mode,
    including a perp that starts days after the spot (spot bars there are not priced instants)."""
    from dataclasses import replace

    from hedge_core.backtest.fast import priced_prices
    from hedge_core.params.models import VolTierLoanParams

    m = load_market(store, venue="binance", spot_symbol="BTC/USDT", perp_symbol="BTC/USDT:USDT",
                    start="2023-01-01T00:00Z", end="2023-03-01T00:00Z")
    if late_perp:
        cut = m.perp.index[0] + np.timedelta64(5, "D")
        m = replace(m, perp=m.perp[m.perp.index >= cut], mark=m.mark[m.mark.index >= cut])
    tl = build_timeline(m, start="2023-01-02T00:00Z", end="2023-03-01T00:00Z")
    if late_perp:
        assert not tl.priced[0] and np.isnan(tl.perp[0]) and not np.isnan(tl.spot[0])
    s, p = priced_prices(tl)
    px0 = tl.first_spot_price
    for params in (CARRY_SETS["tight_pt_sl"],
                   VolTierLoanParams(collateral_qty=1.0, loan=0.3 * px0, perp_leverage=3)):
        r = run_fast(params, tl)
        np.testing.assert_array_equal(r.snap[:, 11], s)
        np.testing.assert_array_equal(r.snap[:, 12], p)
