"""Benchmark of the cross-venue carry with TWO PERP legs (``xcarry``, ``legs = "perp_perp"``): the pair sweep
against a spot/perp sweep, and the pair kernel (``fast.pair``) against the event path, same run.

The set-up of ``bench_xcarry`` (``xcarry_common.py``): Binance BTC/USDT hourly prices with Binance's, Bybit's and
OKX's own funding (``HEDGE_SHARED_DATA``; the committed synthetic stand-in when it is absent), 2023-01-04 .. the
last bar (about 18 months, ~13,000 instants). One :class:`VenueTimelines` payload holds every venue's timeline
(built once, timed). In this process, serially:

1. spot/perp points (spot on binance, the perp on bybit or okx) on the EVENT path through
   ``sweep.evaluate_backtest`` (``Payload(prefer_fast=False)``: ``run_cross_venue_backtest`` per point): the
   baseline of the second perp leg's cost;
2. the same spot/perp points on the default path (the fast kernel where it accepts the run);
3. perp-pair points (every ordered pair of two of binance / bybit / okx, both orders of bybit / okx included,
   same grid of the other fields) on the event path (``prefer_fast=False``): the baseline of the pair kernel;
4. the same pair points on the default path, as a sweep runs them (the pair kernel where it accepts the point,
   the payload's timelines built once; a refused point runs the event path);
5. each pair point the kernel accepted, alone from its Market (``fast_xvenue_kpis(params, market)``: the two
   timelines built per run, what a single run costs).

Every pair point's KPIs are checked equal on the event path, the default path and the single fast run, and a
few points equal to their single event run (``run_cross_venue_backtest`` on a
``cross_venue_market(..., first_venue=...)``). Prints runs/s and ms/run of each; the ratios pair / spot-perp
event (the cost of the second perp leg: a second paper venue with its own margin and funding) and pair /
spot-perp default path; the pair kernel's fast / event ratio over the accepted points and over the whole sweep;
and the single run's fast / event ratio.

Run: ``.venv/bin/python bench/bench_xcarry_pair.py`` (``--quick``: two months, smaller grid).
"""

from __future__ import annotations

import itertools
import time

import numpy as np
from xcarry_common import KPIS, check_equal, data_label, print_fast_vs_event, setup, timed

from hedge_core.backtest.fast.xvenue import fast_xvenue_kpis
from hedge_core.backtest.sweep import Payload, evaluate_backtest, grid_points
from hedge_core.backtest.xvenue import cross_venue_market, run_cross_venue_backtest
from hedge_core.backtest.xvenue_sweep import venue_markets
from hedge_core.params.models import ExitParams
from hedge_core.params.xcarry import CrossCarryParams

VENUES = ("binance", "bybit", "okx")


def main() -> None:
    args, md, prices, cv = setup(__doc__)
    vm = venue_markets(prices, cv, VENUES)
    start = vm.first + np.timedelta64(3, "D")
    t = time.perf_counter()
    tls = vm.timelines(start=start)
    t_build = time.perf_counter() - t
    n = tls.for_venue("bybit").n
    common = dict(notional=10_000.0, min_net_carry=0.0, exit=ExitParams(max_holding_hours=24 * 7, rearm=True))
    grid = {"min_funding_rate": [0.00003, 0.00005, 0.0001], "expected_hold_intervals": [9, 21, 42]}
    if args.quick:
        grid = {"min_funding_rate": [0.00005, 0.0001], "expected_hold_intervals": [21]}
    sp_base = CrossCarryParams(spot_venue="binance", perp_venue="bybit", spot_taker_fee=0.001,
                               perp_taker_fee=0.00055, **common)
    pp_base = CrossCarryParams(legs="perp_perp", spot_venue="bybit", perp_venue="okx", first_perp_taker_fee=0.00055,
                               perp_taker_fee=0.0005, **common)
    spot_perp = [sp_base.model_copy(update={**g, "perp_venue": v}) for v in ("bybit", "okx") for g in grid_points(grid)]
    orders = list(itertools.permutations(VENUES, 2))
    pairs = [pp_base.model_copy(update={**g, "spot_venue": a, "perp_venue": b}) for a, b in orders
             for g in grid_points(grid)]
    markets = {(a, b): cross_venue_market(prices, cv, perp_venue=b, first_venue=a) for a, b in orders}
    print(f"xcarry sweeps: {len(spot_perp)} spot/perp points, {len(pairs)} perp-pair points, {n} instants per run "
          f"({data_label(md)}); the payload's timelines of every venue built once in {t_build:.2f} s")
    fast_p, event_p = Payload(tls), Payload(tls, prefer_fast=False)
    evaluate_backtest(spot_perp[0], fast_p)  # compile / load the kernels before timing
    evaluate_backtest(pairs[0], fast_p)
    sp_ev, t_sp_ev = timed(spot_perp, event_p)
    sp_fa, t_sp_fa = timed(spot_perp, fast_p)
    pp, t_pp = timed(pairs, event_p)
    pf, t_pf = timed(pairs, fast_p)
    acc = np.array([k["_fast"] == 1.0 for k in pf])
    single = [p for p, a in zip(pairs, acc) if a]
    ps, t_ps = timed(single, lambda p: fast_xvenue_kpis(p, markets[(p.spot_venue, p.perp_venue)], start=start))

    def where(p: CrossCarryParams) -> str:
        return f"{p.spot_venue}/{p.perp_venue} {p.model_dump(include=set(grid))}"

    check_equal(pairs, pp, pf, ("event", "fast"), where)  # the pair kernel gives the event path's KPIs
    check_equal(single, [k for k, a in zip(pp, acc) if a], ps, ("event", "single fast run"), where)
    for p, k in list(zip(pairs, pp))[:: max(1, len(pairs) // 3)]:  # a few points: the sweep row is the single run
        one = run_cross_venue_backtest(p, markets[(p.spot_venue, p.perp_venue)], start=start).result.kpis
        for name in KPIS:
            a, b = one[name], k[name]
            if not (a == b or (np.isnan(a) and np.isnan(b))):
                raise SystemExit(f"KPI {name} differs: single {a} sweep {b} at {where(p)}")
    print(f"pair sweep rows equal their single runs; entries: spot/perp {sum(k['entries'] for k in sp_ev):g}, "
          f"pairs {sum(k['entries'] for k in pp):g}; the fast path took "
          f"{sum(k['_fast'] == 1.0 for k in sp_fa)}/{len(spot_perp)} spot/perp points and "
          f"{int(acc.sum())}/{len(pairs)} pair points (the others fell back to the event path; pair KPIs equal on "
          f"both paths)")
    te, tf, tp = float(t_sp_ev.sum()), float(t_sp_fa.sum()), float(t_pp.sum())
    ms, mp = len(spot_perp), len(pairs)
    print(f"spot/perp event path  : {ms / te:8.1f} runs/s ({te / ms * 1e3:7.1f} ms/run) [baseline]")
    print(f"spot/perp default path: {ms / tf:8.1f} runs/s ({tf / ms * 1e3:7.1f} ms/run)")
    print(f"perp pairs (event)    : {mp / tp:8.1f} runs/s ({tp / mp * 1e3:7.1f} ms/run); "
          f"ratio pair / spot-perp event {(tp / mp) / (te / ms):.2f}x, pair / spot-perp default "
          f"{(tp / mp) / (tf / ms):.1f}x (per run)")
    print("perp pairs on the default path (the pair kernel) against their event path [baseline]:")
    print_fast_vs_event(acc, t_pp, t_pf)
    if len(single):
        te_a, tm = float(t_pp[acc].sum()), float(t_ps.sum())
        print(f"{'single runs':16s}: fast path from the Market (two timelines built per run) "
              f"{len(single) / tm:8.1f} runs/s ({tm / len(single) * 1e3:7.1f} ms/run); ratio fast / event "
              f"{te_a / tm:.1f}x")


if __name__ == "__main__":
    main()
