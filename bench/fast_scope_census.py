"""Census of the fast path's refusals over what users actually run (no timing; a count).

Every parameter set a user meets out of the box - the starter sets (``hedge_core.starter_sets``), each strategy's
defaults (what ``hedge params export <strategy>`` writes), the notebooks' runs and sweep grids (04: the default
carry, its 5x4 grid and the walk-forward folds; 06: the four strategies on their windows; 07: the demo grid) and
the bench grids (``bench_backtest.py``, ``bench_xcarry.py``, ``bench_xcarry_pair.py``) - goes through the fast
path exactly as a sweep sends it (``fast_kpis``; xcarry: ``fast.xvenue.fast_xvenue_kpis``), on the demo market
and, when present, on the shared data (sample and stress windows). Each refusal is counted by its reason: the
up-front ones (``scope.check_supported``, one count per reason listed) and the run-time ones (an ``Err`` of a
kernel, the instant dropped). The event path is not run.

Run: ``.venv/bin/python bench/fast_scope_census.py`` (``--quick``: the demo market only).
"""

from __future__ import annotations

import argparse
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from hedge_core.backtest.fast import FastPathUnsupported, fast_kpis
from hedge_core.backtest.fast.xvenue import fast_xvenue_kpis
from hedge_core.backtest.sweep import apply_overrides, grid_points
from hedge_core.backtest.timeline import Market, build_timeline, market_from_frames
from hedge_core.backtest.xvenue import CrossVenueConfig
from hedge_core.backtest.xvenue_sweep import venue_markets
from hedge_core.data.demo import generate_demo_market
from hedge_core.data.shared import SAMPLE, STRESS, market_data
from hedge_core.exchange.costs import CostModelWarning
from hedge_core.params.models import (
    CarryParams,
    CrossHedgeParams,
    ExitParams,
    GridParams,
    GuardParams,
    RebalanceParams,
    VolTierLoanParams,
)
from hedge_core.params.xcarry import CrossCarryParams
from hedge_core.starter_sets import STARTERS

_AT = re.compile(r" at \d{4}-\d\d-\d\d[ T][\d:+.]+$")


def reasons_of(e: FastPathUnsupported) -> list[str]:
    """The refusal's reasons: a run-time one (``Err`` message, instant dropped) or each up-front one."""
    r = e.reason
    if _AT.search(r):
        return ["run time: " + _AT.sub("", r)]
    return ["up front: " + x for x in r.split(", ")] if "(" not in r else ["up front: " + r]


class Census:
    """Counts of accepted runs and of refusal reasons, per group of runs."""

    def __init__(self) -> None:
        self.by_group: dict[str, Counter[str]] = {}
        self.total: Counter[str] = Counter()
        self.runs = 0
        self.refused = 0

    def attempt(self, group: str, run: Callable[[], Any]) -> None:
        c = self.by_group.setdefault(group, Counter())
        self.runs += 1
        try:
            run()
            c["accepted"] += 1
        except FastPathUnsupported as e:
            self.refused += 1
            for why in reasons_of(e):
                c[why] += 1
                self.total[why] += 1

    def report(self) -> None:
        for g, c in self.by_group.items():
            print(f"{g}: " + "; ".join(f"{k} {v}" for k, v in c.most_common()))
        print(f"\n{self.runs} runs, {self.runs - self.refused} accepted, {self.refused} refused")
        print("| reason | runs |\n|---|---:|")
        for k, v in self.total.most_common():
            print(f"| {k} | {v} |")


def hedge_run(p: Any, tl: Any) -> Callable[[], Any]:
    return lambda: fast_kpis(p, tl)


def xcarry_run(p: CrossCarryParams, tls: Any) -> Callable[[], Any]:
    first = {"first_timeline": tls.for_venue(p.spot_venue, "spot_venue")} if p.perp_perp else {}
    return lambda: fast_xvenue_kpis(p, tls.for_venue(p.perp_venue), config=CrossVenueConfig(), **first)


def cross_market(spot_m: Market, perp_m: Market) -> Market:
    return Market(perp_m.venue, spot_m.spot_symbol, perp_m.perp_symbol, perp_m.timeframe, spot_m.spot, perp_m.perp,
                  perp_m.mark, perp_m.funding)


def defaults() -> list[tuple[str, Any]]:
    """Each strategy's defaults (``hedge params export <strategy>``) and the starter sets (1,000 USDT)."""
    out = [(name, model(notional=1_000.0)) for name, (model, _note) in STARTERS.items()]
    out += [("default carry", CarryParams()), ("default cross", CrossHedgeParams()), ("default grid", GridParams()),
            ("default voltier", VolTierLoanParams()),
            ("voltier 3x (notebook 06)", VolTierLoanParams(perp_leverage=3.0))]
    return out


def run_markets(c: Census, label: str, btc: Market, eth: Market, start: Any, end: Any) -> None:
    tl = build_timeline(btc, start=start, end=end)
    xtl = build_timeline(cross_market(eth, btc), start=start, end=end)
    for _name, p in defaults():
        c.attempt(f"{label} / defaults and starters", hedge_run(p, xtl if p.strategy == "cross" else tl))
    # notebook 04: the default carry, the 5x4 grid of its tuned set, the walk-forward points per fold
    nb4 = CarryParams(min_funding_rate=0.0002, min_net_carry=-0.01,
                      exit=ExitParams(rearm=True, max_holding_hours=720, profit_target_pct=None, stop_loss_pct=None,
                                      funding_unfavourable_intervals=3))
    grid = {"min_funding_rate": [0.00005, 0.0001, 0.00015, 0.0002, 0.0003],
            "rebalance.drift_threshold": [0.005, 0.02, 0.05, 0.1]}
    for g in grid_points(grid):
        c.attempt(f"{label} / notebook 04 grid", hedge_run(apply_overrides(nb4, g), tl))
    t0, t1 = tl.ts[0], tl.ts[-1]
    day = np.int64(86_400 * 10**9)
    f = t0
    while f + 120 * day <= t1:
        train = build_timeline(btc, start=pd.Timestamp(int(f), tz="UTC"), end=pd.Timestamp(int(f + 90 * day), tz="UTC"))
        for g in grid_points({"min_funding_rate": [0.0001, 0.0002, 0.0003]}):
            c.attempt(f"{label} / notebook 04 walk-forward", hedge_run(apply_overrides(nb4, g), train))
        f += 30 * day
    # notebook 06: the strategies' sets
    nb6 = CarryParams(notional=10_000.0, expected_hold_intervals=21, min_net_carry=0.0,
                      exit=ExitParams(max_holding_hours=24 * 7, rearm=True))
    c.attempt(f"{label} / notebook 06", hedge_run(nb6, tl))
    c.attempt(f"{label} / notebook 06", hedge_run(CrossHedgeParams(
        notional=10_000.0, exit=ExitParams(profit_target_pct=None, stop_loss_pct=0.05, max_holding_hours=24 * 14,
                                           funding_unfavourable_intervals=None, rearm=True),
        rebalance=RebalanceParams(ratio_min=0.2, ratio_max=3.0, drift_threshold=0.10, cooldown_s=4 * 3600)), xtl))
    c.attempt(f"{label} / notebook 06", hedge_run(GridParams(notional=10_000.0, levels=5, spacing_sigma=1.0,
                                                             var_limit=1_500.0), tl))
    # notebook 07 (its grid on this market) and bench_backtest's carry grid and other strategies
    base7 = CarryParams(notional=1_000.0, min_net_carry=-1.0,
                        exit={"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                              "funding_unfavourable_intervals": None, "rearm": True})
    for g in grid_points({"min_funding_rate": [0.0001, 0.0003], "exit.max_holding_hours": [24.0, 96.0, None]}):
        c.attempt(f"{label} / notebook 07 grid", hedge_run(apply_overrides(base7, g), tl))
    bench = CarryParams(min_net_carry=-0.01, exit=ExitParams(rearm=True, max_holding_hours=72))
    for g in grid_points({"min_funding_rate": [0.00005, 0.0001, 0.00015, 0.0002, 0.00025, 0.0003, 0.0004, 0.0005],
                          "rebalance.drift_threshold": [0.01, 0.02, 0.05, 0.1],
                          "exit.max_holding_hours": [24.0, 72.0, 168.0]}):
        c.attempt(f"{label} / bench_backtest grid", hedge_run(apply_overrides(bench, g), tl))
    px0 = float(tl.spot[0])
    c.attempt(f"{label} / bench_backtest others", hedge_run(CrossHedgeParams(min_correlation=0.0, exit=ExitParams(
        rearm=True, max_holding_hours=72, funding_unfavourable_intervals=None)), xtl))
    c.attempt(f"{label} / bench_backtest others", hedge_run(GridParams(exit=ExitParams(
        rearm=True, profit_target_pct=None, stop_loss_pct=None, max_holding_hours=168,
        funding_unfavourable_intervals=None)), tl))
    c.attempt(f"{label} / bench_backtest others", hedge_run(VolTierLoanParams(
        collateral_qty=1.0, loan=0.5 * px0, perp_leverage=3,
        guards=GuardParams(liq_distance_close=0.05, liq_distance_reduce=0.04)), tl))


def run_xcarry(c: Census, label: str, prices: Market, cv: pd.DataFrame, venues: Iterable[str]) -> None:
    venues = tuple(venues)
    vm = venue_markets(prices, cv, list(venues))
    tls = vm.timelines(start=vm.first + np.timedelta64(3, "D"))
    common = dict(notional=10_000.0, min_net_carry=0.0, exit=ExitParams(max_holding_hours=24 * 7, rearm=True))
    sp = CrossCarryParams(spot_venue="binance", perp_venue="bybit", spot_taker_fee=0.001, perp_taker_fee=0.00055,
                          **common)
    for g in grid_points({"perp_venue": ["bybit", "okx"], "min_funding_rate": [0.00003, 0.00005, 0.0001],
                          "expected_hold_intervals": [9, 21, 42], "exit_below_apr": [None, 0.0, 0.03]}):
        c.attempt(f"{label} / bench_xcarry grid", xcarry_run(sp.model_copy(update=g), tls))
    pp = CrossCarryParams(legs="perp_perp", spot_venue="bybit", perp_venue="okx", first_perp_taker_fee=0.00055,
                          perp_taker_fee=0.0005, **common)
    for a in venues:
        for b in venues:
            if a == b:
                continue
            for g in grid_points({"min_funding_rate": [0.00003, 0.00005, 0.0001],
                                  "expected_hold_intervals": [9, 21, 42]}):
                c.attempt(f"{label} / bench_xcarry_pair grid",
                          xcarry_run(pp.model_copy(update={**g, "spot_venue": a, "perp_venue": b}), tls))
    for p in (CrossCarryParams(), CrossCarryParams(legs="perp_perp", spot_venue="bybit", perp_venue="okx")):
        c.attempt(f"{label} / defaults and starters", xcarry_run(p, tls))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the demo market only")
    a = ap.parse_args()
    warnings.simplefilter("ignore", CostModelWarning)
    c = Census()
    frames = generate_demo_market(days=365, timeframe="1h", seed=7)
    btc, eth = market_from_frames(frames, asset="BTC"), market_from_frames(frames, asset="ETH")
    run_markets(c, "demo 1h 365 d", btc, eth, btc.first + pd.Timedelta(days=3), None)
    if not a.quick:
        for window, start, end in ((SAMPLE, "2023-01-04T00:00Z", "2024-06-30T00:00Z"),
                                   (STRESS, "2020-01-04T00:00Z", "2022-12-30T00:00Z")):
            md = market_data(window)
            if md.synthetic:
                print(f"{window}: no shared data (skipped)")
                continue
            run_markets(c, f"shared {window}", md.market("BTC"), md.market("ETH"), start, end)
            try:
                cv = md.crossvenue_funding()
            except FileNotFoundError:
                print(f"{window}: no cross-venue funding (xcarry grids skipped)")
                continue
            venues = [v for v in ("binance", "bybit", "okx") if v in set(cv["venue"])]
            if len(venues) >= 2 and "bybit" in venues and "okx" in venues:
                run_xcarry(c, f"shared {window}", md.market("BTC").window(start, end), cv, venues)
    c.report()


if __name__ == "__main__":
    main()
