"""Benchmark of a sweep of PERP PAIRS (``xcarry`` with ``legs = "perp_perp"``) against a spot/perp sweep, same run.

The shared window of ``bench_xcarry``: Binance BTC/USDT hourly prices with Binance's, Bybit's and OKX's own
funding (``HEDGE_SHARED_DATA``; the committed synthetic stand-in when it is absent), 2023-01-04 .. the last
bar (about 18 months, ~13,000 instants). One :class:`VenueTimelines` payload holds every venue's timeline. In
this process, serially, through ``sweep.evaluate_backtest``:

1. spot/perp points (spot on binance, the perp on bybit or okx) on the EVENT path
   (``Payload(prefer_fast=False)``: ``run_cross_venue_backtest`` per point): the baseline;
2. the same spot/perp points on the default path (the fast kernel where it accepts the run);
3. perp-pair points (every ordered pair of two of binance / bybit / okx, same grid of the other fields) on
   the event path (``prefer_fast=False``), then on the default path (the pair kernel, ``fast.pair``, where it
   accepts the point). Every pair point's KPIs are checked equal on both paths, and a few points equal to
   their single run (``run_cross_venue_backtest`` on a ``cross_venue_market(..., first_venue=...)``).

Prints runs/s and ms/run of each, the ratios pair / spot-perp event (the cost of the second perp leg: a
second paper venue with its own margin and funding) and pair / spot-perp default path, and the pair's
fast / event ratio. (``bench_pair_fast.py``: the pair kernel alone, both venue orders, single-run cost.)

Run: ``.venv/bin/python bench/bench_xcarry_pair.py`` (``--quick``: two months, smaller grid).
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings

import numpy as np

from hedge_core.backtest.sweep import Payload, evaluate_backtest, grid_points
from hedge_core.backtest.xvenue import cross_venue_market, run_cross_venue_backtest
from hedge_core.backtest.xvenue_sweep import venue_markets
from hedge_core.data.shared import market_data
from hedge_core.exchange.costs import CostModelWarning
from hedge_core.params.models import ExitParams
from hedge_core.params.xcarry import CrossCarryParams

KPIS = ("net_pnl", "funding", "fees", "entries", "sharpe", "max_drawdown", "n_fills")
VENUES = ("binance", "bybit", "okx")


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
    vm = venue_markets(prices, cv, VENUES)
    start = vm.first + np.timedelta64(3, "D")
    tls = vm.timelines(start=start)
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
    pairs = [pp_base.model_copy(update={**g, "spot_venue": a, "perp_venue": b})
             for a, b in itertools.permutations(VENUES, 2) for g in grid_points(grid)]
    print(f"xcarry sweeps: {len(spot_perp)} spot/perp points, {len(pairs)} perp-pair points, {n} instants per run "
          f"({'shared data' if not md.synthetic else 'synthetic stand-in'})")
    fast_p, event_p = Payload(tls), Payload(tls, prefer_fast=False)
    evaluate_backtest(spot_perp[0], fast_p)  # compile / load the kernel before timing
    sp_ev, t_sp_ev = _timed(spot_perp, event_p)
    sp_fa, t_sp_fa = _timed(spot_perp, fast_p)
    pp, t_pp = _timed(pairs, event_p)
    pf, t_pf = _timed(pairs, fast_p)
    for p, e, f in zip(pairs, pp, pf):  # the pair kernel gives the event path's KPIs
        for name in KPIS:
            a, b = e[name], f[name]
            if not (a == b or (np.isnan(a) and np.isnan(b)) or abs(a - b) <= 1e-9 * max(1.0, abs(a))):
                raise SystemExit(f"KPI {name} differs: event {a} fast {b} at {p.spot_venue}/{p.perp_venue}")
    for p, k in list(zip(pairs, pp))[:: max(1, len(pairs) // 3)]:  # a few points: the sweep row is the single run
        m = cross_venue_market(prices, cv, perp_venue=p.perp_venue, first_venue=p.spot_venue)
        single = run_cross_venue_backtest(p, m, start=start).result.kpis
        for name in KPIS:
            a, b = single[name], k[name]
            if not (a == b or (np.isnan(a) and np.isnan(b))):
                raise SystemExit(f"KPI {name} differs: single {a} sweep {b} at {p.spot_venue}/{p.perp_venue}")
    print(f"pair sweep rows equal their single runs; entries: spot/perp {sum(k['entries'] for k in sp_ev):g}, "
          f"pairs {sum(k['entries'] for k in pp):g}; the fast path took "
          f"{sum(k['_fast'] == 1.0 for k in sp_fa)}/{len(spot_perp)} spot/perp points and "
          f"{sum(k['_fast'] == 1.0 for k in pf)}/{len(pairs)} pair points (pair KPIs equal on both paths)")
    te, tf, tp, tpf = float(t_sp_ev.sum()), float(t_sp_fa.sum()), float(t_pp.sum()), float(t_pf.sum())
    ms, mp = len(spot_perp), len(pairs)
    print(f"spot/perp event path  : {ms / te:8.1f} runs/s ({te / ms * 1e3:7.1f} ms/run) [baseline]")
    print(f"spot/perp default path: {ms / tf:8.1f} runs/s ({tf / ms * 1e3:7.1f} ms/run)")
    print(f"perp pairs (event)    : {mp / tp:8.1f} runs/s ({tp / mp * 1e3:7.1f} ms/run); "
          f"ratio pair / spot-perp event {(tp / mp) / (te / ms):.2f}x, pair / spot-perp default "
          f"{(tp / mp) / (tf / ms):.1f}x (per run)")
    print(f"perp pairs (default)  : {mp / tpf:8.1f} runs/s ({tpf / mp * 1e3:7.1f} ms/run); "
          f"ratio pair fast / pair event {tp / tpf:.1f}x")


def _timed(points: list[CrossCarryParams], payload: Payload) -> tuple[list[dict[str, float]], np.ndarray]:
    out, secs = [], []
    for p in points:
        t = time.perf_counter()
        out.append(evaluate_backtest(p, payload))
        secs.append(time.perf_counter() - t)
    return out, np.array(secs)


if __name__ == "__main__":
    main()
