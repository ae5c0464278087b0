"""The array KPI shortcuts give the SAME doubles as the analytics functions they replace.

``backtest_kpis.max_drawdown_array`` vs ``analytics.metrics.max_drawdown`` (pandas), and the
in-numpy hedge effectiveness vs ``analytics.hedge_ratio.hedge_effectiveness`` on the same kept
rows, on random equity/price paths and on a real backtest's arrays (exact equality, not approx).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedge_core.analytics import metrics
from hedge_core.analytics.hedge_ratio import hedge_effectiveness
from hedge_core.backtest.kpis import (
    _f64,
    _idx,
    _last_of_day,
    _share_and_effectiveness,
    _snapshot_pass,
    kpis_from_arrays,
    max_drawdown_array,
)


def _effectiveness_and_share(ts_ns, h, perp_qty, spot, perp):
    """(effectiveness, time in market) as kpis_from_arrays computes them (one snapshot pass)."""
    out = _snapshot_pass(0.0, np.empty(0), *_f64(h, perp_qty, spot, perp))
    return _share_and_effectiveness(ts_ns, h, perp_qty, spot, perp, out)[::-1]


def _effectiveness(ts_ns, h, perp_qty, spot, perp):
    return _effectiveness_and_share(ts_ns, h, perp_qty, spot, perp)[0]


def _equity_pass(capital, net):
    e = np.empty(0)
    return _snapshot_pass(float(capital), np.asarray(net, dtype=np.float64), e, e, e, e)[:3]


def _reference_effectiveness(ts_ns, h, perp_qty, spot, perp):
    inm = ~np.isnan(h) & (np.abs(perp_qty) > 0)
    if inm.sum() < 4:
        return math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        y = spot[1:] / spot[:-1] - 1.0
        x = perp[1:] / perp[:-1] - 1.0
    hl = np.where(inm[:-1], h[:-1], np.nan)
    keep = ~np.isnan(y) & ~np.isnan(x) & ~np.isnan(hl)
    if keep.sum() < 3:
        return math.nan
    idx = _idx(ts_ns[1:][keep])
    return hedge_effectiveness(pd.Series(y[keep], index=idx), pd.Series(x[keep], index=idx),
                               pd.Series(hl[keep], index=idx), lag=0)


def _path(seed, n):
    rng = np.random.default_rng(seed)
    ts = np.arange(n, dtype=np.int64) * 3_600_000_000_000 + 1_700_000_000_000_000_000
    spot = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    perp = spot * (1 + rng.normal(0, 0.0005, n))
    q = np.where(rng.random(n) < 0.7, -rng.uniform(0.1, 0.4, n), 0.0)
    h = np.where(q != 0, np.abs(q) * perp / (0.33 * spot), np.nan)
    spot[rng.random(n) < 0.05] = np.nan  # outages
    return ts, h, q, spot, perp


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(5, 400))
def test_effectiveness_shortcut_is_the_analytics_function(seed, n):
    ts, h, q, spot, perp = _path(seed, n)
    a = _effectiveness(ts, h, q, spot, perp)
    b = _reference_effectiveness(ts, h, q, spot, perp)
    assert (math.isnan(a) and math.isnan(b)) or a == b


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 400), st.floats(100.0, 1e6))
def test_max_drawdown_array_is_metrics_max_drawdown(seed, n, capital):
    rng = np.random.default_rng(seed)
    ts = np.arange(n, dtype=np.int64) * 60_000_000_000 + 1_700_000_000_000_000_000
    eq = capital + np.cumsum(rng.normal(0, capital * 0.002, n))
    eq = np.maximum(eq, capital * 0.01)
    assert max_drawdown_array(ts, eq) == metrics.max_drawdown(pd.Series(eq, index=_idx(ts)))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3_000), st.floats(100.0, 1e6), st.booleans())
def test_one_pass_kpi_helpers_equal_the_numpy_pandas_lines(seed, n, capital, crash):
    """_equity_pass / _last_of_day / the time-in-market count give exactly what the numpy and pandas lines
    they replace give (drawdown, ruin, the last instant of each UTC day, time in market)."""
    rng = np.random.default_rng(seed)
    ts = np.unique(rng.integers(0, 400 * 86_400, n)).astype(np.int64) * 1_000_000_000 + 1_700_000_000_000_000_000
    n = len(ts)
    net = np.cumsum(rng.normal(0, capital * 0.01, n))
    if crash:
        net[n // 2:] -= capital * 1.5  # equity goes through zero
    equity = capital + net
    ruined, clean, mdd = _equity_pass(float(capital), net)
    assert ruined == bool((equity <= 0).any())
    assert clean == bool(np.isfinite(equity).all() and (equity > 0).all())
    if clean:
        assert mdd == metrics.max_drawdown(pd.Series(equity, index=_idx(ts)))
    day = ts // 86_400_000_000_000
    assert np.array_equal(_last_of_day(ts), np.flatnonzero(np.append(day[1:] != day[:-1], True)))
    q = np.where(rng.random(n) < 0.4, rng.normal(0, 1, n), 0.0)
    px = np.full(n, 100.0)
    assert _effectiveness_and_share(ts, np.full(n, 0.5), q, px, px)[1] == float((np.abs(q) > 0).mean())


def test_kpis_from_arrays_daily_sharpe_is_the_pandas_resample():
    rng = np.random.default_rng(5)
    n = 60 * 24 * 20
    ts = np.arange(n, dtype=np.int64) * 60_000_000_000 + 1_700_000_000_000_000_000
    net = np.cumsum(rng.normal(0.01, 2.0, n))
    zeros = np.zeros(n)
    k = kpis_from_arrays(ts, net, zeros, np.full(n, np.nan), np.full(n, 100.0), np.full(n, 100.0), None,
                         {"funding": 0.0}, np.array([], dtype=object), None, capital=10_000.0)
    daily = pd.Series(10_000.0 + net, index=_idx(ts)).resample("1D").last()
    # day 1's return from the starting capital, then day over day
    rets = pd.concat([pd.Series([10_000.0]), daily.reset_index(drop=True)]).pct_change().iloc[1:]
    rets.index = daily.index
    assert len(rets) == len(daily)
    assert k["sharpe"] == pytest.approx(metrics.sharpe(rets, bar_seconds=86_400), rel=1e-12)
    assert k["sortino"] == pytest.approx(metrics.sortino(rets, bar_seconds=86_400), rel=1e-12)
    assert k["max_drawdown"] == metrics.max_drawdown(pd.Series(10_000.0 + net, index=_idx(ts)))
    assert k["time_in_market"] == 0.0


@pytest.mark.shared_data
def test_shortcuts_on_a_real_backtest(shared_data):
    from hedge_core.backtest.event import run_backtest
    from hedge_core.backtest.timeline import build_timeline, load_market
    from hedge_core.data.importers import import_path
    from hedge_core.params.models import CrossHedgeParams, ExitParams
    from hedge_core.store import Store

    store = Store(":memory:")
    for kind in ("spot_1h", "perp_1h", "mark_1h", "funding_8h"):
        import_path(store, shared_data / "stress_2020-01_2022-12" / f"binance_BTCUSDT_{kind}.csv")
    m = load_market(store, venue="binance", start="2020-02-10T00:00Z", end="2020-04-20T00:00Z")
    tl = build_timeline(m, start="2020-02-13T00:00Z", end="2020-04-20T00:00Z")
    p = CrossHedgeParams(min_correlation=0.0, exit=ExitParams(rearm=True, max_holding_hours=96))
    eq = run_backtest(p, tl).equity
    ts = eq.index.as_unit("ns").asi8
    args = (ts, eq["hedge_ratio"].to_numpy(), eq["perp_qty"].to_numpy(), eq["spot_price"].to_numpy(),
            eq["perp_price"].to_numpy())
    a, b = _effectiveness(*args), _reference_effectiveness(*args)
    assert not math.isnan(b) and a == b
    e = 10_000.0 + eq["net"].to_numpy()
    assert max_drawdown_array(ts, e) == metrics.max_drawdown(pd.Series(e, index=eq.index)) > 0


def test_ltv_bands_vectorised_is_ltv_band():
    from hedge_core.backtest.kpis import ltv_bands
    from hedge_core.ltv import DEFAULT_PARAMS, ltv_band

    p = DEFAULT_PARAMS
    edges = [p.monitor, p.warning, p.critical, p.emergency]
    v = np.concatenate([np.random.default_rng(3).uniform(0, 1.5, 2000), edges,
                        np.nextafter(edges, 0), np.nextafter(edges, 2), [0.0, 3.0]])
    assert list(ltv_bands(v)) == [ltv_band(x) for x in v]
    assert list(ltv_bands(np.array([-0.1]))) == ["SAFE"]
