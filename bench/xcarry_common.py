"""The set-up the cross-venue carry benchmarks share (``bench_xcarry.py``, ``bench_xcarry_pair.py``); no benchmark here.

The window: Binance BTC/USDT hourly prices with each venue's own funding (``HEDGE_SHARED_DATA``; the committed
synthetic stand-in when it is absent), 2023-01-04 .. the last bar (about 18 months, ~13,000 instants), or two
months with ``--quick``. Points are timed one by one through ``sweep.evaluate_backtest`` (or any callable), and
two paths' KPIs are checked equal point by point before any figure is printed.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hedge_core.backtest.sweep import Payload, evaluate_backtest
from hedge_core.data.shared import market_data
from hedge_core.exchange.costs import CostModelWarning

KPIS = ("net_pnl", "funding", "fees", "entries", "sharpe", "max_drawdown", "n_fills")


def setup(doc: str) -> tuple[argparse.Namespace, Any, Any, Any]:
    """Parse ``--quick``; (args, shared market data, BTC prices over the window, cross-venue funding)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two months and a smaller grid")
    args = ap.parse_args()
    warnings.simplefilter("ignore", CostModelWarning)
    md = market_data()
    prices = md.market("BTC")
    if args.quick:
        prices = prices.window("2023-03-01", "2023-05-01")
    return args, md, prices, md.crossvenue_funding()


def data_label(md: Any) -> str:
    return "shared data" if not md.synthetic else "synthetic stand-in"


def timed(points: Sequence[Any], run: Payload | Callable[[Any], dict[str, float]]
          ) -> tuple[list[dict[str, float]], np.ndarray]:
    """Each point's KPIs and its wall time in seconds (``run``: a sweep payload, or a callable of the point)."""
    call = run if callable(run) else (lambda p: evaluate_backtest(p, run))
    out, secs = [], []
    for p in points:
        t = time.perf_counter()
        out.append(call(p))
        secs.append(time.perf_counter() - t)
    return out, np.array(secs)


def check_equal(points: Sequence[Any], left: Sequence[dict[str, float]], right: Sequence[dict[str, float]],
                names: tuple[str, str], where: Callable[[Any], object], rel: float = 1e-9) -> None:
    """Exit naming the KPI, both values and the point when a KPI differs beyond ``rel`` (NaN equals NaN)."""
    for p, a_k, b_k in zip(points, left, right):
        for k in KPIS:
            a, b = a_k[k], b_k[k]
            if not (a == b or (np.isnan(a) and np.isnan(b)) or abs(a - b) <= rel * max(1.0, abs(a))):
                raise SystemExit(f"KPI {k} differs: {names[0]} {a} {names[1]} {b} at {where(p)}")


def print_fast_vs_event(accepted: np.ndarray, t_event: np.ndarray, t_fast: np.ndarray) -> None:
    """Runs/s of the event path [baseline] and of the fast path, and their ratio: over the points the fast path
    accepted, and over the whole sweep (a refused point ran the event path)."""
    for what, sel in (("accepted points", accepted), ("whole sweep", np.ones(len(accepted), dtype=bool))):
        m = int(sel.sum())
        if m == 0:
            continue
        te, tf = float(t_event[sel].sum()), float(t_fast[sel].sum())
        print(f"{what:16s}: event path {m / te:8.1f} runs/s ({te / m * 1e3:7.1f} ms/run) [baseline], "
              f"fast path {m / tf:8.1f} runs/s ({tf / m * 1e3:7.2f} ms/run); ratio fast / event {te / tf:.1f}x")
