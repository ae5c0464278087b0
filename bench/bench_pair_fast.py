"""Benchmark of the cross-venue carry with TWO PERP legs (``xcarry``, ``legs = "perp_perp"``): the pair
kernel (``fast.pair``) against the event path (``run_cross_venue_backtest`` with a pair), same run.

The longest shared window: Binance BTC/USDT hourly perp and mark bars with Bybit's and OKX's own funding
(``HEDGE_SHARED_DATA``; the committed synthetic stand-in when it is absent), 2023-01-04 .. the last bar
(about 18 months, ~13,000 instants), both venue orders (bybit first / okx second and the reverse). One grid
of pair points is evaluated serially in this process:

1. event path: ``run_cross_venue_backtest(params, market).result.kpis`` per point - the baseline;
2. fast path as a sweep runs it: ``fast_xvenue_kpis(params, pair_timelines(market))`` with the two
   timelines built once per venue order (falls back to the event path for a point it refuses);
3. fast path from the Market per point (each run builds its two timelines: what a single run costs).

Prints runs/s of each and the ratios fast / event, after checking that every point's KPIs agree.

Run: ``.venv/bin/python bench/bench_pair_fast.py`` (``--quick``: two months, smaller grid).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from hedge_core.backtest.fast import FastPathUnsupported
from hedge_core.backtest.fast.pair import pair_timelines
from hedge_core.backtest.fast.xvenue import fast_xvenue_kpis
from hedge_core.backtest.sweep import grid_points
from hedge_core.backtest.xvenue import cross_venue_market, run_cross_venue_backtest
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
    cv = md.crossvenue_funding()
    orders = (("bybit", "okx"), ("okx", "bybit"))
    markets = {o: cross_venue_market(prices, cv, perp_venue=o[1], first_venue=o[0]) for o in orders}
    start = prices.first + np.timedelta64(3, "D")
    t = time.perf_counter()
    tls = {o: pair_timelines(m, start=start) for o, m in markets.items()}
    t_build = time.perf_counter() - t
    n = tls[orders[0]].second.n
    base = CrossCarryParams(legs="perp_perp", notional=10_000.0, min_net_carry=0.0, first_perp_taker_fee=0.00055,
                            perp_taker_fee=0.0005, exit=ExitParams(max_holding_hours=24 * 7, rearm=True))
    grid = {"order": list(range(len(orders))), "min_funding_rate": [0.00003, 0.00005, 0.0001],
            "expected_hold_intervals": [9, 21, 42], "exit_below_apr": [None, 0.0, 0.03]}
    if args.quick:
        grid = {"order": [0, 1], "min_funding_rate": [0.00005, 0.0001], "expected_hold_intervals": [21]}
    points = []
    for g in grid_points(grid):
        first, second = orders[g.pop("order")]
        points.append(((first, second), base.model_copy(update={**g, "spot_venue": first, "perp_venue": second})))
    print(f"xcarry perp pair: {len(points)} points, {n} instants per run "
          f"({'shared data' if not md.synthetic else 'synthetic stand-in'}); the two timelines of both venue "
          f"orders built once in {t_build:.2f} s")
    fast_xvenue_kpis(points[0][1], tls[points[0][0]])  # compile / load the kernel before timing
    ev, fa, fm, acc = [], [], [], []
    t_ev, t_fa, t_fm = [], [], []
    for o, p in points:
        t = time.perf_counter()
        ev.append(run_cross_venue_backtest(p, markets[o], start=start).result.kpis)
        t_ev.append(time.perf_counter() - t)
        t = time.perf_counter()
        try:
            fa.append(fast_xvenue_kpis(p, tls[o]))
            acc.append(True)
        except FastPathUnsupported:
            fa.append(run_cross_venue_backtest(p, markets[o], start=start).result.kpis)
            acc.append(False)
        t_fa.append(time.perf_counter() - t)
        if acc[-1]:
            t = time.perf_counter()
            fm.append(fast_xvenue_kpis(p, markets[o], start=start))
            t_fm.append(time.perf_counter() - t)
    for (o, p), e, f in zip(points, ev, fa):
        for k in KPIS:
            a, b = e[k], f[k]
            if not (a == b or (np.isnan(a) and np.isnan(b)) or abs(a - b) <= 1e-9 * max(1.0, abs(a))):
                raise SystemExit(f"KPI {k} differs: event {a} fast {b} at {o} {p.model_dump(include=set(grid))}")
    acc_a = np.array(acc)
    t_ev_a, t_fa_a = np.array(t_ev), np.array(t_fa)
    entries = sum(e["entries"] for e in ev)
    print(f"every point's KPIs equal on both paths ({entries:g} entries in all); the fast path accepted "
          f"{int(acc_a.sum())}/{len(points)} points (the others fell back to the event path)")
    for what, sel in (("accepted points", acc_a), ("whole sweep", np.ones(len(points), dtype=bool))):
        m = int(sel.sum())
        if m == 0:
            continue
        te, tf = float(t_ev_a[sel].sum()), float(t_fa_a[sel].sum())
        print(f"{what:16s}: event path {m / te:8.1f} runs/s ({te / m * 1e3:7.1f} ms/run) [baseline], "
              f"fast path {m / tf:8.1f} runs/s ({tf / m * 1e3:7.2f} ms/run); ratio fast / event {te / tf:.1f}x")
    if t_fm:
        te, tm = float(t_ev_a[acc_a].sum()), float(np.sum(t_fm))
        print(f"{'single runs':16s}: fast path from the Market (two timelines built per run) "
              f"{len(t_fm) / tm:8.1f} runs/s ({tm / len(t_fm) * 1e3:7.1f} ms/run); ratio fast / event {te / tm:.1f}x")


if __name__ == "__main__":
    main()
