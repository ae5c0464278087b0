"""Sweep machinery: dotted-path validation, points, backends agree, progress, walk-forward."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hedge_core.backtest.timeline import build_timeline, market_from_frames
from hedge_core.data.demo import generate_demo_market
from hedge_core.errors import InvalidInput
from hedge_core.params.models import CarryParams, ExitParams, VolTierLoanParams
from hedge_core.backtest.sweep import (
    Payload,
    apply_overrides,
    best_row,
    grid_points,
    grid_search,
    random_points,
    random_search,
    run_sweep,
    set_path,
    walk_forward,
)


def toy_evaluate(params, payload):
    """A pure function of the parameters: the machinery is independent of backtests."""
    x = params.min_funding_rate * 1e4
    y = params.rebalance.drift_threshold
    if x > 9:
        raise ValueError("boom")
    return {"score": -(x - 2.0) ** 2 - (y - 0.1) ** 2 + payload, "x": x}


@pytest.fixture(scope="module")
def demo_market():
    return market_from_frames(generate_demo_market(days=60, timeframe="1h", seed=11, assets=("BTC",)))


BASE = CarryParams(min_net_carry=-0.01, exit=ExitParams(rearm=True, max_holding_hours=48))


def test_dotted_paths_set_nested_fields_and_validate():
    p = set_path(BASE, "rebalance.drift_threshold", 0.2)
    assert p.rebalance.drift_threshold == 0.2 and p.rebalance.target_ratio == BASE.rebalance.target_ratio
    p = apply_overrides(BASE, {"exit.max_holding_hours": None, "notional": 5000})
    assert p.exit.max_holding_hours is None and p.notional == 5000
    assert BASE.notional == 10_000  # the base is unchanged
    with pytest.raises(InvalidInput, match=r"rebalance\.drift_thresh.*drift_thresh.*drift_threshold"):
        set_path(BASE, "rebalance.drift_thresh", 0.1)
    with pytest.raises(InvalidInput, match=r"notional.*-5"):
        set_path(BASE, "notional", -5)
    with pytest.raises(InvalidInput, match=r"rebalance\.drift_threshold"):
        set_path(BASE, "rebalance.drift_threshold", 2.0)
    with pytest.raises(InvalidInput, match="notional.x"):
        set_path(BASE, "notional.x", 1)
    with pytest.raises(InvalidInput, match="tier_ratios"):
        set_path(VolTierLoanParams(), "tier_ratios", (0.1,))
    with pytest.raises(InvalidInput, match="bogus"):  # nothing runs when one point is invalid
        run_sweep(BASE, [{"notional": 1.0}, {"bogus": 1}], payload=0.0, evaluate=toy_evaluate, workers=0)


def _tiers_evaluate(params, payload):
    return {"n_tiers": float(len(params.tier_ratios))}


def test_a_combination_the_model_refuses_is_its_rows_error_and_the_sweep_goes_on():
    # VolTierLoanParams' own rule across fields: tier_uppers and tier_ratios of the same length. A grid over one
    # of them can hit it on some points only: those rows name the field, the other points run
    base = VolTierLoanParams()
    n = len(base.tier_uppers)
    seen = []
    table = run_sweep(base, [{"tier_ratios": (0.1,)}, {"tier_ratios": base.tier_ratios}], payload=0.0,
                      evaluate=_tiers_evaluate, workers=0, show_progress=False,
                      progress=lambda d, t: seen.append((d, t)))
    assert "tier_ratios" in table.loc[0, "error"] and "same length" in table.loc[0, "error"]
    assert math.isnan(table.loc[0, "n_tiers"]) and table.loc[0, "path"] == ""
    assert table.loc[1, "error"] == "" and table.loc[1, "n_tiers"] == n
    assert seen == [(1, 1)]  # progress counts the points that run


def test_grid_and_random_points():
    pts = grid_points({"a": [1, 2], "b": [3, 4, 5]})
    assert pts[0] == {"a": 1, "b": 3} and pts[-1] == {"a": 2, "b": 5} and len(pts) == 6
    with pytest.raises(InvalidInput, match="b"):
        grid_points({"a": [1], "b": []})
    space = {"min_funding_rate": {"low": 1e-5, "high": 1e-3, "log": True}, "expected_hold_intervals": [1, 3, 9],
             "notional": {"low": 1000, "high": 2000, "int": True}}
    r1, r2 = random_points(space, 20, seed=5), random_points(space, 20, seed=5)
    assert r1 == r2 and r1 != random_points(space, 20, seed=6)
    assert all(1e-5 <= p["min_funding_rate"] <= 1e-3 and isinstance(p["notional"], int) for p in r1)


# starts processes (a pool of sweep workers): integration, not the in-process fast tier
@pytest.mark.integration
def test_backends_agree_and_progress_is_reported():
    grid = {"min_funding_rate": [0.0001, 0.0002, 0.0003, 0.001], "rebalance.drift_threshold": [0.05, 0.1, 0.2]}
    seen = []
    local = grid_search(BASE, grid, payload=1.5, evaluate=toy_evaluate, workers=2, show_progress=False,
                        progress=lambda d, n: seen.append((d, n)))
    inproc = grid_search(BASE, grid, payload=1.5, evaluate=toy_evaluate, workers=0, show_progress=True)
    pd.testing.assert_frame_equal(local, inproc)
    assert seen[-1] == (12, 12) and sorted(d for d, _ in seen) == list(range(1, 13))
    assert local.loc[(local["min_funding_rate"] == 0.0002) & (local["rebalance.drift_threshold"] == 0.1),
                     "score"].iloc[0] == pytest.approx(1.5)
    best = best_row(local, "score")
    assert best["min_funding_rate"] == 0.0002 and best["rebalance.drift_threshold"] == 0.1
    bad = local[local["min_funding_rate"] == 0.001]
    assert bad["error"].str.contains("ValueError: boom").all() and bad["score"].isna().all()


def test_backtest_sweep_uses_fast_path_and_matches_event(demo_market):
    tl = build_timeline(demo_market, start=demo_market.first + pd.Timedelta(days=3))
    grid = {"min_funding_rate": [0.00005, 0.0001], "exit.max_holding_hours": [24, 96]}
    fast = grid_search(BASE, grid, payload=Payload(tl), workers=0, show_progress=False)
    event = grid_search(BASE, grid, payload=Payload(tl, prefer_fast=False), workers=0, show_progress=False)
    assert (fast["path"] == "fast").all() and (event["path"] == "event").all()
    assert fast["entries"].sum() > 0
    for c in ("net_pnl", "net_apr", "fees", "funding", "entries", "max_drawdown"):
        np.testing.assert_allclose(fast[c], event[c], rtol=1e-9, atol=1e-9, err_msg=c)
    rnd = random_search(BASE, {"min_funding_rate": {"low": 5e-5, "high": 3e-4}}, 3, seed=1, payload=Payload(tl),
                        workers=0, show_progress=False)
    assert len(rnd) == 3 and (rnd["error"] == "").all()


def test_walk_forward_folds(demo_market):
    grid = {"min_funding_rate": [0.00005, 0.0002], "exit.max_holding_hours": [24, 72]}
    wf = walk_forward(BASE, grid, demo_market, train="20D", test="10D", metric="net_pnl", workers=0,
                      show_progress=False)
    assert len(wf) >= 3
    assert (wf["test_start"] == wf["train_end"]).all()
    assert (wf["train_start"].diff().dropna() == pd.Timedelta("10D")).all()
    # the chosen point is the train-window best: re-run one fold's grid and compare
    from hedge_core.backtest.timeline import build_timeline as bt
    f0 = wf.iloc[0]
    tbl = grid_search(BASE, grid, payload=Payload(bt(demo_market, start=f0["train_start"], end=f0["train_end"])),
                      workers=0, show_progress=False)
    best = best_row(tbl, "net_pnl")
    assert best["min_funding_rate"] == f0["min_funding_rate"]
    assert math.isclose(best["net_pnl"], f0["train_net_pnl"], rel_tol=1e-12)
    with pytest.raises(InvalidInput, match="train"):
        walk_forward(BASE, grid, demo_market, train="50D", test="30D", workers=0)


# starts processes (a pool of sweep workers): integration, not the in-process fast tier
@pytest.mark.integration
def test_pool_from_a_threaded_process_uses_the_initializer():
    import threading

    from hedge_core.backtest import sweep

    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)
    t.start()
    try:
        assert sweep._fork_context() is None  # a second thread: no fork
        out = grid_search(BASE, {"min_funding_rate": [0.0001, 0.0002]}, payload=0.5, evaluate=toy_evaluate,
                          workers=2, show_progress=False)
        assert list(out["score"].round(6)) == [round(-1.0 - 0.05 ** 2 + 0.5, 6), round(-0.05 ** 2 + 0.5, 6)]
    finally:
        stop.set()


def pid_evaluate(params, payload):
    import os

    return {"pid": float(os.getpid()), "v": params.min_funding_rate + payload[0]}


# starts processes (a pool of sweep workers): integration, not the in-process fast tier
@pytest.mark.integration
def test_workers_are_kept_for_the_same_payload_and_replaced_otherwise():
    import os
    import signal

    from hedge_core.backtest import sweep

    grid = {"min_funding_rate": [0.0001, 0.0002, 0.0003, 0.0004]}
    pa, pb = [1.0], [2.0]
    try:
        a1 = grid_search(BASE, grid, payload=pa, evaluate=pid_evaluate, workers=2, show_progress=False)
        a2 = grid_search(BASE, grid, payload=pa, evaluate=pid_evaluate, workers=2, show_progress=False)
        pids = set(a1["pid"]) | set(a2["pid"])
        assert len(pids) <= 2  # the same (at most two) processes served both sweeps
        assert os.getpid() not in pids and list(a2["v"]) == pytest.approx([1.0001, 1.0002, 1.0003, 1.0004])
        b = grid_search(BASE, grid, payload=pb, evaluate=pid_evaluate, workers=2, show_progress=False)
        assert not (set(b["pid"]) & pids)  # another payload: new workers that inherited it
        assert list(b["v"]) == pytest.approx([2.0001, 2.0002, 2.0003, 2.0004])
        for pid in set(b["pid"]):  # a kept worker dies between sweeps: the next sweep starts afresh
            os.kill(int(pid), signal.SIGKILL)
        c = grid_search(BASE, grid, payload=pb, evaluate=pid_evaluate, workers=2, show_progress=False)
        assert list(c["v"]) == pytest.approx([2.0001, 2.0002, 2.0003, 2.0004]) and (c["error"] == "").all()
    finally:
        sweep.close_pool()
    assert sweep._POOL == {}


# starts processes (a pool of sweep workers): integration, not the in-process fast tier
@pytest.mark.integration
def test_concurrent_sweeps_from_threads_each_get_their_own_results():
    """Panel sessions are threads of one process: two sweeps at once (different payloads) must not
    tear down each other's kept workers; each returns its own payload's values."""
    import threading

    from hedge_core.backtest import sweep

    grid = {"min_funding_rate": [0.0001, 0.0002, 0.0003]}
    out: dict[float, pd.DataFrame] = {}
    errors: list[BaseException] = []

    def one(base):
        try:
            for _ in range(3):
                out[base] = grid_search(BASE, grid, payload=[base], evaluate=pid_evaluate, workers=2,
                                        show_progress=False)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(b,)) for b in (10.0, 20.0)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        sweep.close_pool()
    assert not errors
    for base in (10.0, 20.0):
        assert list(out[base]["v"]) == pytest.approx([base + 0.0001, base + 0.0002, base + 0.0003])
        assert (out[base]["error"] == "").all()
