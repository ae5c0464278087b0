"""Benchmark of the cross-venue carry (``xcarry``) sweep: fast path against the event path, same run.

The longest shared window: Binance BTC/USDT hourly prices with Bybit's and OKX's own funding
(``HEDGE_SHARED_DATA``; the committed synthetic stand-in when it is absent), 2023-01-04 .. the last
bar (about 18 months, ~13,000 instants). One grid of xcarry points over both perp venues is
evaluated serially in this process through ``sweep.evaluate_backtest`` twice:

1. event path (``Payload(prefer_fast=False)``: ``run_cross_venue_backtest`` per point) — the baseline;
2. fast path (``fast.xvenue.fast_xvenue_kpis``: the hedge kernel fed both venues' models).

Prints runs/s of each and the ratio fast / event, after checking that every point's KPIs agree:
over the points the fast path accepts, and over the whole sweep (a point it refuses - e.g. a perp
wallet that can no longer margin the hedge after a year of losses - runs the event path).

Run: ``.venv/bin/python bench/bench_xcarry.py`` (``--quick``: two months, smaller grid).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from hedge_core.backtest.sweep import Payload, evaluate_backtest, grid_points
from hedge_core.backtest.xvenue_sweep import venue_markets
from hedge_core.data.shared import market_data
from hedge_core.exchange.costs import CostModelWarning
from hedge_core.params.models import ExitParams
from hedge_core.params.xcarry import CrossCarryParams

KPIS = ("net_pnl", "funding", "fees", "entries", "sharpe", "max_drawdown", "n_fills")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two months and a smaller grid")
    args = ap.parse_args()
    warnings.simplefilter("ignore", CostModelWarning)
    md = market_data()
    prices = md.market("BTC")
    if args.quick:
        prices = prices.window("2023-03-01", "2023-05-01")
    vm = venue_markets(prices, md.crossvenue_funding(), ["bybit", "okx"])
    tls = vm.timelines(start=vm.first + np.timedelta64(3, "D"))
    n = tls.for_venue("bybit").n
    base = CrossCarryParams(notional=10_000.0, min_net_carry=0.0, spot_venue="binance", perp_venue="bybit",
                            spot_taker_fee=0.001, perp_taker_fee=0.00055,
                            exit=ExitParams(max_holding_hours=24 * 7, rearm=True))
    grid = {"perp_venue": ["bybit", "okx"], "min_funding_rate": [0.00003, 0.00005, 0.0001],
            "expected_hold_intervals": [9, 21, 42], "exit_below_apr": [None, 0.0, 0.03]}
    if args.quick:
        grid = {"perp_venue": ["bybit", "okx"], "min_funding_rate": [0.00005, 0.0001], "expected_hold_intervals": [21]}
    points = [base.model_copy(update=p) for p in grid_points(grid)]
    print(f"xcarry sweep: {len(points)} points, {n} instants per run "
          f"({'shared data' if not md.synthetic else 'synthetic stand-in'})")
    fast_p, event_p = Payload(tls), Payload(tls, prefer_fast=False)
    evaluate_backtest(points[0], fast_p)  # compile / load the kernel before timing
    ev, t_ev = _timed(points, event_p)
    fa, t_fa = _timed(points, fast_p)
    acc = np.array([k["_fast"] == 1.0 for k in fa])
    for p, e, f in zip(points, ev, fa):
        for k in KPIS:
            a, b = e[k], f[k]
            if not (a == b or (np.isnan(a) and np.isnan(b)) or abs(a - b) <= 1e-9 * max(1.0, abs(a))):
                raise SystemExit(f"KPI {k} differs: event {a} fast {b} at {p.model_dump(include=set(grid))}")
    entries = sum(e["entries"] for e in ev)
    print(f"every point's KPIs equal on both paths ({entries:g} entries in all); the fast path accepted "
          f"{int(acc.sum())}/{len(points)} points (the others fell back to the event path)")
    for what, sel in (("accepted points", acc), ("whole sweep", np.ones(len(points), dtype=bool))):
        m = int(sel.sum())
        if m == 0:
            continue
        te, tf = float(t_ev[sel].sum()), float(t_fa[sel].sum())
        print(f"{what:16s}: event path {m / te:8.1f} runs/s ({te / m * 1e3:7.1f} ms/run) [baseline], "
              f"fast path {m / tf:8.1f} runs/s ({tf / m * 1e3:7.1f} ms/run); ratio fast / event {te / tf:.1f}x")


def _timed(points: list[CrossCarryParams], payload: Payload) -> tuple[list[dict[str, float]], np.ndarray]:
    out, secs = [], []
    for p in points:
        t = time.perf_counter()
        out.append(evaluate_backtest(p, payload))
        secs.append(time.perf_counter() - t)
    return out, np.array(secs)

if __name__ == "__main__":
    main()
