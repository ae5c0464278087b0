"""Cross-asset hedge: the fast path reproduces the event-driven backtester exactly (real data), or refuses.

ETH spot hedged with the BTC perp (and the reverse) on Binance 1h data from /work/shared/data,
loaded into Store(':memory:') by the importers. For every accepted run: identical fills
(instant, leg, side, qty, price, fee, slippage), identical transitions (entries, beta-driven
rebalances, exits, guard flattens) and the same per-instant PnL components to 1e-9 quote.
"""

from __future__ import annotations

import pandas as pd
import pytest

from hedge_core.backtest.event import BacktestConfig, run_backtest
from hedge_core.backtest.timeline import Market, build_timeline, load_market
from hedge_core.data.importers import import_path
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.backtest.fast import (
    FastPathUnsupported,
    check_supported,
    fast_kpis,
    run_fast,
    run_fast_or_event,
)
from hedge_core.analytics.inputs import InputSpec
from hedge_core.params.models import (
    ActivationParams,
    CrossHedgeParams,
    ExitParams,
    GuardParams,
    LeverageParams,
    RebalanceParams,
)
from hedge_core.store import Store
from tests.support.parity import assert_fast_equals_event

pytestmark = pytest.mark.shared_data



def _store(folder):
    st = Store(":memory:")
    for name in ("BTCUSDT", "ETHUSDT"):
        for kind in ("spot_1h", "perp_1h", "mark_1h", "funding_8h"):
            import_path(st, folder / f"binance_{name}_{kind}.csv")
    return st


def _cross_market(st, spot_asset, perp_asset, start, end):
    s = load_market(st, venue="binance", spot_symbol=f"{spot_asset}/USDT", perp_symbol=f"{spot_asset}/USDT:USDT",
                    start=start, end=end)
    p = load_market(st, venue="binance", spot_symbol=f"{perp_asset}/USDT", perp_symbol=f"{perp_asset}/USDT:USDT",
                    start=start, end=end)
    return Market(p.venue, f"{spot_asset}/USDT", f"{perp_asset}/USDT:USDT", "1h", s.spot, p.perp, p.mark, p.funding)


@pytest.fixture(scope="module")
def store(shared_data):
    return _store(shared_data / "sample_2023-01_2024-06")


@pytest.fixture(scope="module")
def eth_btc(store):
    m = _cross_market(store, "ETH", "BTC", "2023-09-01T00:00Z", "2023-12-01T00:00Z")
    return build_timeline(m, start="2023-09-08T00:00Z", end="2023-12-01T00:00Z")


def _rb(**kw):
    base = {"target_ratio": 1.0, "ratio_min": 0.2, "ratio_max": 3.0}
    return RebalanceParams(**{**base, **kw})


CROSS_SETS = {
    "defaults": CrossHedgeParams(),
    "rearm_rebalance": CrossHedgeParams(min_correlation=0.5, reestimate_hours=6,
                                        exit=ExitParams(rearm=True, max_holding_hours=72,
                                                        funding_unfavourable_intervals=None),
                                        rebalance=_rb(drift_threshold=0.02, cooldown_s=0)),
    "stops_trailing_unfav": CrossHedgeParams(min_correlation=0.5, reestimate_hours=12, notional=25_000,
                                             exit=ExitParams(rearm=True, stop_loss_pct=0.004, profit_target_pct=0.006,
                                                             trailing_giveback=0.3, trailing_min_peak_pct=0.002,
                                                             funding_unfavourable_intervals=2,
                                                             max_holding_hours=None),
                                             rebalance=_rb(drift_threshold=0.03)),
    "levered_guard_flatten": CrossHedgeParams(min_correlation=0.5, reestimate_hours=3,
                                              leverage=LeverageParams(liq_buffer=0.2, max_leverage=10, recheck_hours=2),
                                              guards=GuardParams(liq_distance_close=0.21, liq_distance_reduce=0.05),
                                              exit=ExitParams(rearm=True, max_holding_hours=None,
                                                              funding_unfavourable_intervals=None),
                                              rebalance=_rb(drift_threshold=0.02)),
    "long_cooldown_narrow_ratio": CrossHedgeParams(min_correlation=0.4, reestimate_hours=1,
                                                   exit=ExitParams(rearm=True, max_holding_hours=240,
                                                                   profit_target_pct=None, stop_loss_pct=0.05,
                                                                   funding_unfavourable_intervals=None),
                                                   rebalance=_rb(target_ratio=0.8, ratio_min=0.6, ratio_max=0.9, drift_threshold=0.01,
                                                                 cooldown_s=6 * 3600, min_order_notional=50)),
}


def _count(ev, trigger):
    return int((ev.transitions["trigger_name"] == trigger).sum())


@pytest.mark.parametrize("name", sorted(CROSS_SETS))
def test_cross_fast_path_equals_event_driven_eth_on_btc(eth_btc, name):
    ev, _ = assert_fast_equals_event(CROSS_SETS[name], eth_btc)
    if name != "defaults":
        assert _count(ev, "DRIFT_EXCEEDED") >= 2  # beta re-estimates move the target: real rebalances
    if name == "levered_guard_flatten":
        assert _count(ev, "FLATTEN") == 1 and (ev.guard_firings["guard"] == "liq_distance_close").any()
    if name == "stops_trailing_unfav":
        reasons = ev.transitions.loc[ev.transitions["trigger_name"] == "EXIT_SIGNAL", "reason"]
        for rule in ("stop loss", "profit target", "trailing stop", "funding unfavourable"):
            assert reasons.str.startswith(rule).any(), rule
    if name == "long_cooldown_narrow_ratio":  # 6 h cooldown between rebalances
        ts = ev.transitions.loc[ev.transitions["trigger_name"] == "REBALANCED", "ts"]
        assert len(ts) > 50 and ts.diff().min() >= pd.Timedelta(hours=6)


def test_cross_btc_on_eth_other_venue_model_and_kalman_beta(store):
    m = _cross_market(store, "BTC", "ETH", "2024-01-01T00:00Z", "2024-03-01T00:00Z")
    tl = build_timeline(m, start="2024-01-08T00:00Z", end="2024-03-01T00:00Z",
                        spec=InputSpec(beta_method="kalman", beta_window=72))
    cfg = BacktestConfig(paper=PaperConfig(slippage_bps=3.0, impact_k_bps=25.0, spot_taker_fee=0.00075,
                                           perp_taker_fee=0.0004))
    p = CrossHedgeParams(min_correlation=0.3, reestimate_hours=4,
                         exit=ExitParams(rearm=True, max_holding_hours=96, funding_unfavourable_intervals=None),
                         rebalance=_rb(drift_threshold=0.02))
    ev, _ = assert_fast_equals_event(p, tl, cfg)
    assert _count(ev, "DRIFT_EXCEEDED") >= 3 and _count(ev, "ENTRY_SIGNAL") >= 3


def test_cross_through_the_covid_crash(shared_data):
    """March 2020: spot outages, betas jumping, funding-cost flatten; still identical."""
    st = _store(shared_data / "stress_2020-01_2022-12")
    m = _cross_market(st, "ETH", "BTC", "2020-02-01T00:00Z", "2020-04-20T00:00Z")
    tl = build_timeline(m, start="2020-02-10T00:00Z", end="2020-04-20T00:00Z")
    for p in (CrossHedgeParams(min_correlation=0.5, reestimate_hours=8,
                               exit=ExitParams(rearm=True, max_holding_hours=120, stop_loss_pct=0.03,
                                               funding_unfavourable_intervals=None),
                               rebalance=_rb(drift_threshold=0.03)),
              CrossHedgeParams(min_correlation=0.5, reestimate_hours=8,
                               guards=GuardParams(funding_cost_apr_limit=0.01),
                               exit=ExitParams(rearm=True, max_holding_hours=None, profit_target_pct=None,
                                               stop_loss_pct=None, funding_unfavourable_intervals=None),
                               rebalance=_rb(drift_threshold=0.03))):
        ev, _ = assert_fast_equals_event(p, tl)
        assert _count(ev, "ENTRY_SIGNAL") >= 1 and _count(ev, "DRIFT_EXCEEDED") >= 1


def test_cross_kpis_equal_event_kpis(eth_btc):
    p = CROSS_SETS["rearm_rebalance"]
    ev = run_backtest(p, eth_btc).kpis
    fk = fast_kpis(p, eth_btc)
    assert set(fk) == set(ev)
    for k, v in ev.items():
        assert fk[k] == pytest.approx(v, rel=1e-9, abs=1e-12, nan_ok=True), k
    assert ev["rebalance_count"] >= 3


def test_cross_refusals():
    with pytest.raises(FastPathUnsupported, match="activation"):
        check_supported(CrossHedgeParams(activation=ActivationParams(volume_spike=3.0)), PaperConfig())
    with pytest.raises(FastPathUnsupported, match="target_vol"):
        check_supported(CrossHedgeParams(leverage=LeverageParams(target_vol=0.05)), PaperConfig())
    check_supported(CrossHedgeParams(exit=ExitParams(defer_within_s_of_funding=600)), PaperConfig())  # modelled


def test_cross_runtime_refusal_falls_back(eth_btc):
    # a 2-order-per-minute cap holds the closing pair: the kernel refuses, the event path runs
    p = CrossHedgeParams(min_correlation=0.5, guards=GuardParams(max_orders_per_minute=1))
    with pytest.raises(FastPathUnsupported, match="order-rate guard"):
        run_fast(p, eth_btc)
    path, kpis = run_fast_or_event(p, eth_btc)
    assert path == "event" and "net_apr" in kpis


def test_sizing_follows_the_legs_base_assets_not_the_strategy(store, eth_btc):
    """The engine sizes the perp by ``ctx.same_base``: a cross hedge on one asset is sized like a
    carry (and may use the basis stop), a grid on two assets by notional. Both still identical."""
    btc = load_market(store, venue="binance", spot_symbol="BTC/USDT", perp_symbol="BTC/USDT:USDT",
                      start="2023-09-01T00:00Z", end="2023-12-01T00:00Z")
    tl = build_timeline(btc, start="2023-09-08T00:00Z", end="2023-12-01T00:00Z")
    p = CrossHedgeParams(min_correlation=0.5, reestimate_hours=6,
                         exit=ExitParams(rearm=True, basis_stop_bps=8, max_holding_hours=96,
                                         funding_unfavourable_intervals=None),
                         rebalance=_rb(drift_threshold=0.01))
    ev, _ = assert_fast_equals_event(p, tl)
    assert ev.transitions["reason"].str.startswith("basis stop").any()
    from hedge_core.params.models import GridParams

    g = GridParams(levels=6, spacing_sigma=0.5, min_spacing_pct=0.004,
                   exit=ExitParams(rearm=True, profit_target_pct=None, stop_loss_pct=None, max_holding_hours=120,
                                   funding_unfavourable_intervals=None))
    ev, _ = assert_fast_equals_event(g, eth_btc)
    assert _count(ev, "DRIFT_EXCEEDED") >= 5
