"""The fast path against the event-driven backtester on one timeline: one assertion for every
strategy's parity tests (identical fills and transitions, PnL components to 1e-9 quote)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hedge_core.backtest.event import BacktestConfig, run_backtest
from hedge_core.backtest.fast import fast_kpis, run_fast

SNAP = ["spot_price_pnl", "perp_price_pnl", "funding", "fees", "slippage", "interest", "net", "delta",
        "hedge_ratio", "spot_qty", "perp_qty", "spot_price", "perp_price", "mark_price"]


def assert_fast_equals_event(params: Any, tl: Any, config: Any = None, *, fills_required: bool = True,
                             ltv: bool = False, kpis: bool = False) -> tuple[Any, Any]:
    """Run both paths; assert the same fills (instant, leg, side, qty, price, fee, slippage), the
    same per-instant snapshot and transitions; with ``ltv`` the loan book's LTV per instant (after and
    before the engine acted), with
    ``kpis`` the sweep KPIs (``fast_kpis``) equal to the backtest's. Returns (event result, fast result)."""
    config = config if config is not None else BacktestConfig()
    ev = run_backtest(params, tl, config=config)
    fa = run_fast(params, tl, config=config)
    ef = ev.fills.reset_index(drop=True)
    assert len(ef) == len(fa.fills)
    if fills_required:
        assert len(ef) > 0
    assert (ef["ts"].to_numpy() == fa.fills["ts"].to_numpy()).all()
    assert (ef["leg"].to_numpy() == fa.fills["leg"].to_numpy()).all()
    assert (ef["side"].to_numpy() == fa.fills["side"].to_numpy()).all()
    for c in ("qty", "price", "fee", "slippage"):
        np.testing.assert_allclose(ef[c].to_numpy(float), fa.fills[c].to_numpy(float), rtol=1e-12, atol=1e-9,
                                   err_msg=c)
    np.testing.assert_allclose(ev.equity[SNAP].to_numpy(), fa.snap, rtol=1e-12, atol=1e-9, equal_nan=True)
    if ltv:
        np.testing.assert_allclose(ev.equity["ltv"].to_numpy(), fa.ltv, rtol=1e-12, atol=1e-15, equal_nan=True)
        np.testing.assert_allclose(ev.equity["ltv_before"].to_numpy(), fa.ltv_before, rtol=1e-12, atol=1e-15,
                                   equal_nan=True)
    et = ev.transitions[["ts", "from_state", "to_state", "trigger_name"]].reset_index(drop=True)
    assert et.equals(fa.transitions)
    if kpis:
        fk = fast_kpis(params, tl, config=config)
        assert set(fk) == set(ev.kpis)
        for k, v in ev.kpis.items():
            assert fk[k] == pytest.approx(v, rel=1e-9, abs=1e-12, nan_ok=True), k
    return ev, fa


def assert_fast_equals_xvenue(params: Any, market: Any, config: Any = None, *, fills_required: bool = True,
                              **window: Any) -> tuple[Any, Any]:
    """The cross-venue carry: the fast path (``fast.xvenue.run_fast_xvenue``) against the cross-venue
    backtest (``backtest.xvenue.run_cross_venue_backtest``) on the same market and window: the same
    fills, per-instant snapshot, transitions and KPIs (``fast_xvenue_kpis``), as
    :func:`assert_fast_equals_event`. Returns (cross-venue run, fast result)."""
    from hedge_core.backtest.fast.xvenue import fast_xvenue_kpis, run_fast_xvenue
    from hedge_core.backtest.xvenue import CrossVenueConfig, run_cross_venue_backtest

    config = config if config is not None else CrossVenueConfig()
    run = run_cross_venue_backtest(params, market, config=config, **window)
    ev = run.result
    fa = run_fast_xvenue(params, market, config=config, **window)
    ef = ev.fills.reset_index(drop=True)
    assert len(ef) == len(fa.fills)
    if fills_required:
        assert len(ef) > 0
    for c in ("ts", "leg", "side"):
        assert (ef[c].to_numpy() == fa.fills[c].to_numpy()).all(), c
    for c in ("qty", "price", "fee", "slippage"):
        np.testing.assert_allclose(ef[c].to_numpy(float), fa.fills[c].to_numpy(float), rtol=1e-12, atol=1e-9,
                                   err_msg=c)
    np.testing.assert_allclose(ev.equity[SNAP].to_numpy(), fa.snap, rtol=1e-12, atol=1e-9, equal_nan=True)
    et = ev.transitions[["ts", "from_state", "to_state", "trigger_name"]].reset_index(drop=True)
    assert et.equals(fa.transitions)
    fk = fast_xvenue_kpis(params, market, config=config, **window)
    assert set(fk) == set(ev.kpis)
    for k, v in ev.kpis.items():
        assert fk[k] == pytest.approx(v, rel=1e-9, abs=1e-12, nan_ok=True), k
    return run, fa
