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
(``bench_xcarry_pair.py``: the same set-up, ``xcarry_common.py``, with two perp legs.)

Run: ``.venv/bin/python bench/bench_xcarry.py`` (``--quick``: two months, smaller grid).
"""

from __future__ import annotations

import numpy as np
from xcarry_common import check_equal, data_label, print_fast_vs_event, setup, timed

from hedge_core.backtest.sweep import Payload, evaluate_backtest, grid_points
from hedge_core.backtest.xvenue_sweep import venue_markets
from hedge_core.params.models import ExitParams
from hedge_core.params.xcarry import CrossCarryParams


def main() -> None:
    args, md, prices, cv = setup(__doc__)
    vm = venue_markets(prices, cv, ["bybit", "okx"])
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
    print(f"xcarry sweep: {len(points)} points, {n} instants per run ({data_label(md)})")
    fast_p, event_p = Payload(tls), Payload(tls, prefer_fast=False)
    evaluate_backtest(points[0], fast_p)  # compile / load the kernel before timing
    ev, t_ev = timed(points, event_p)
    fa, t_fa = timed(points, fast_p)
    acc = np.array([k["_fast"] == 1.0 for k in fa])
    check_equal(points, ev, fa, ("event", "fast"), lambda p: p.model_dump(include=set(grid)))
    entries = sum(e["entries"] for e in ev)
    print(f"every point's KPIs equal on both paths ({entries:g} entries in all); the fast path accepted "
          f"{int(acc.sum())}/{len(points)} points (the others fell back to the event path)")
    print_fast_vs_event(acc, t_ev, t_fa)


if __name__ == "__main__":
    main()
