"""Benchmark of the backtester and sweeps on one year of 1-minute bars (525,600; synthetic demo market).

Figures (each with its ratio to a baseline measured in the same run):

1. event-driven engine (``run_backtest``: step + HedgeDriver + PaperExchange) for the funding
   carry — goal < 2 s; ratio to a bare numba pass over the same arrays;
2. fast path (numba kernels) — goal < 20 ms; ratio to the same bare numba pass and to a bare
   numpy pass; the carry kernel, then each strategy's kernel (cross ETH spot / BTC perp, grid,
   vol-tier loan book) and one sweep run (kernel + KPIs) per strategy;
3. sweep throughput: full-year runs per second on 2 local worker processes kept from a first sweep
   on the same timeline (goal >= 200 runs/s), the first sweep itself (workers started), and the
   ratio to the same grid run in this process; the same grid on a Dask LocalCluster(2 workers)
   through one Client, twice (the second sweep finds the payload kept on the workers), with the
   overhead ratio of each to the process pool's first and second sweep (goal <= 2x);
4. vectorbt comparison only if vectorbt is installed.

Run: ``.venv/bin/python bench/bench_backtest.py`` (``--quick``: 30 days, smaller grid).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd
from numba import njit

from hedge_core.backtest.event import BacktestConfig, run_backtest
from hedge_core.backtest.timeline import Market, build_timeline, market_from_frames
from hedge_core.data.demo import generate_demo_market
from hedge_core.backtest.fast import run_fast
from hedge_core.params.models import (
    CarryParams,
    CrossHedgeParams,
    ExitParams,
    GridParams,
    GuardParams,
    VolTierLoanParams,
)
from hedge_core.backtest.sweep import Payload, close_pool, evaluate_backtest, grid_search

PARAMS = CarryParams(min_net_carry=-0.01, exit=ExitParams(rearm=True, max_holding_hours=72))


@njit(cache=True)
def bare_pass(spot, perp, mark, rate):  # pragma: no cover - compiled
    """One pass reading the same per-bar arrays the kernel reads: a constant hedged book's PnL."""
    acc = 0.0
    for i in range(1, len(spot)):
        acc += (spot[i] - spot[i - 1]) - (perp[i] - perp[i - 1])
        r = rate[i]
        if not math.isnan(r):
            acc += mark[i] * r
    return acc


def best_of(fn, n: int) -> float:
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="30 days instead of 365, smaller sweep grid")
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--event-days", type=float, default=None,
                    help="days replayed by the event-driven engine (default: the whole market)")
    a = ap.parse_args()
    days = 30 if a.quick else 365
    t = time.perf_counter()
    frames = generate_demo_market(days=days, timeframe="1m", seed=7, assets=("BTC", "ETH"))
    market = market_from_frames(frames, asset="BTC")
    t_gen = time.perf_counter() - t
    t = time.perf_counter()
    tl = build_timeline(market, start=market.first + pd.Timedelta(days=3))
    t_tl = time.perf_counter() - t
    n = tl.n
    print(f"market: {days} days of 1m bars, {n:,} replay instants (generated in {t_gen:.1f} s; timeline with "
          f"analytics inputs built in {t_tl:.2f} s, shared by both paths)")

    bare_pass(tl.spot, tl.perp, tl.mark, tl.fund_rate)
    t_bare = best_of(lambda: bare_pass(tl.spot, tl.perp, tl.mark, tl.fund_rate), 7)
    t_np = best_of(lambda: float(np.nansum(np.diff(tl.spot) - np.diff(tl.perp)) + np.nansum(tl.mark * tl.fund_rate)), 7)
    print(f"baseline: bare numba pass {t_bare * 1e3:.3f} ms, bare numpy pass {t_np * 1e3:.3f} ms")

    run_fast(PARAMS, tl)  # compile / load the cached kernel
    t_fast = best_of(lambda: run_fast(PARAMS, tl), 7)
    fr = run_fast(PARAMS, tl)
    print(f"fast path: {t_fast * 1e3:.2f} ms for {n:,} instants ({len(fr.fills)} fills) "
          f"(goal < 20 ms: {'met' if t_fast < 0.02 else 'NOT met'}); ratio to bare numba {t_fast / t_bare:.1f}x, "
          f"to bare numpy {t_fast / t_np:.1f}x")

    eth = market_from_frames(frames, asset="ETH")
    cross_m = Market(market.venue, "ETH/USDT", "BTC/USDT:USDT", "1m", eth.spot, market.perp, market.mark,
                     market.funding)
    cross_tl = build_timeline(cross_m, start=market.first + pd.Timedelta(days=3))
    px0 = float(tl.spot[0])
    others = {
        "cross (ETH spot / BTC perp)": (CrossHedgeParams(min_correlation=0.0, exit=ExitParams(
            rearm=True, max_holding_hours=72, funding_unfavourable_intervals=None)), cross_tl),
        "grid": (GridParams(exit=ExitParams(rearm=True, profit_target_pct=None, stop_loss_pct=None,
                                            max_holding_hours=168, funding_unfavourable_intervals=None)), tl),
        "voltier (1 BTC, 50 % LTV, 3x)": (VolTierLoanParams(collateral_qty=1.0, loan=0.5 * px0, perp_leverage=3,
                                                            guards=GuardParams(liq_distance_close=0.05,
                                                                               liq_distance_reduce=0.04)), tl),
    }
    for name, (p, t_l) in others.items():
        try:
            run_fast(p, t_l)
        except Exception as e:  # noqa: BLE001 - a refusal is a figure too
            print(f"fast path {name}: refused ({e})")
            continue
        t_k = best_of(lambda p=p, t_l=t_l: run_fast(p, t_l), 5)
        pay = Payload(t_l, BacktestConfig())
        evaluate_backtest(p, pay)
        t_e = best_of(lambda p=p, pay=pay: evaluate_backtest(p, pay), 3)
        fr = run_fast(p, t_l)
        print(f"fast path {name}: {t_k * 1e3:.2f} ms ({len(fr.fills)} fills, {len(fr.transitions)} transitions); "
              f"ratio to bare numba {t_k / t_bare:.1f}x; one sweep run incl. KPIs {t_e * 1e3:.1f} ms")

    ev_tl = tl
    if a.event_days is not None:
        ev_tl = build_timeline(market, start=market.first + pd.Timedelta(days=3),
                               end=market.first + pd.Timedelta(days=3 + a.event_days))
    t = time.perf_counter()
    r = run_backtest(PARAMS, ev_tl, config=BacktestConfig(hedge_id="bench"), keep_timeline=False)
    t_ev = time.perf_counter() - t
    per = t_ev / ev_tl.n
    print(f"event-driven engine: {t_ev:.2f} s for {ev_tl.n:,} instants ({per * 1e6:.1f} us/instant, "
          f"{len(r.fills)} fills) (goal < 2 s: {'met' if t_ev < 2 else 'NOT met'}); ratio to bare numba "
          f"{t_ev / (t_bare * ev_tl.n / n):,.0f}x, to the fast path {t_ev / (t_fast * ev_tl.n / n):,.0f}x")

    grid = {"min_funding_rate": [0.00005, 0.0001, 0.00015, 0.0002] if a.quick else
            [0.00005, 0.0001, 0.00015, 0.0002, 0.00025, 0.0003, 0.0004, 0.0005],
            "exit.max_holding_hours": [24, 72] if a.quick else [24, 48, 72, 96, 120, 168, 240, 336, 504, 720]}
    npts = int(np.prod([len(v) for v in grid.values()]))
    payload = Payload(tl, BacktestConfig())
    evaluate_backtest(PARAMS, payload)
    t_one = best_of(lambda: evaluate_backtest(PARAMS, payload), 3)
    close_pool()
    t = time.perf_counter()
    cold = grid_search(PARAMS, grid, payload=payload, workers=2, show_progress=False)
    t_cold = time.perf_counter() - t  # incl. starting the 2 workers and their first (cold) runs
    t = time.perf_counter()
    table = grid_search(PARAMS, grid, payload=payload, workers=2, show_progress=False)
    t_pool = time.perf_counter() - t  # the kept workers (a second sweep on the same timeline)
    t = time.perf_counter()
    grid_search(PARAMS, grid, payload=payload, workers=0, show_progress=False)
    t_seq = time.perf_counter() - t
    rps = npts / t_pool
    print(f"sweep: {npts} full-{days}-day runs on 2 kept worker processes in {t_pool:.2f} s = {rps:.1f} runs/s "
          f"(goal >= 200/s for 365 days: {'met' if rps >= 200 and days == 365 else 'NOT met'}); the first sweep "
          f"(starting the workers) {t_cold:.2f} s = {npts / t_cold:.1f} runs/s; the same grid in this process "
          f"{t_seq:.2f} s = {npts / t_seq:.1f} runs/s -> speed-up {t_seq / t_pool:.2f}x on 2 cores; one run of the "
          f"bench params in-process (fast path + KPIs) {t_one * 1e3:.1f} ms; results identical: "
          f"{cold.equals(table)}; paths {table['path'].value_counts().to_dict()}")
    close_pool()
    if not a.no_dask:
        from distributed import Client, LocalCluster

        t = time.perf_counter()
        with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cl, \
                Client(cl) as client:
            t_start = time.perf_counter() - t
            t = time.perf_counter()
            dt = grid_search(PARAMS, grid, payload=payload, scheduler=client, show_progress=False)
            t_dask_cold = time.perf_counter() - t  # scatter + the workers' first (cold) runs
            t = time.perf_counter()
            dt2 = grid_search(PARAMS, grid, payload=payload, scheduler=client, show_progress=False)
            t_dask = time.perf_counter() - t  # the payload kept on the workers (a second sweep)
        close_pool()
        same = dt.equals(table) and dt2.equals(table)
        print(f"dask LocalCluster(2 workers), a second sweep through the same Client: {t_dask:.2f} s = "
              f"{npts / t_dask:.1f} runs/s; overhead ratio to the kept process pool {t_dask / t_pool:.2f}x "
              f"(goal <= 2x: {'met' if t_dask <= 2 * t_pool else 'NOT met'}); the first sweep (payload scattered, "
              f"cold workers) {t_dask_cold:.2f} s, ratio to the pool's first sweep {t_dask_cold / t_cold:.2f}x "
              f"(cluster start {t_start:.1f} s not counted); results identical: {same}")
    try:
        import vectorbt  # noqa: F401
    except ImportError:
        print("vectorbt comparison: skipped (vectorbt is not installed)")
    else:  # pragma: no cover
        print("vectorbt is installed but no comparison is implemented")


if __name__ == "__main__":
    main()
