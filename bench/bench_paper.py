"""Benchmark of the paper-exchange core: market updates/s and orders/s with 100 open positions.

Each figure is printed with its ratio to a bare Python loop over the same inputs measured in the
same run (the loop only stores the close / the request in a dict), so the ratio says how many
bare-loop iterations one simulator step costs, independent of the machine.

Run: ``.venv/bin/python bench/bench_paper.py`` (``--quick`` for a smaller size).
"""

from __future__ import annotations

import argparse
import math
import time

import pandas as pd

from hedge_core.analytics.risk import BTCUSDT_BRACKETS
from hedge_core.exchange.paper.core import PaperConfig, PaperCore
from hedge_core.types import Bar, Instrument, MarginMode, MarketKind, OrderRequest, Side

N_POS = 100
T0 = pd.Timestamp("2024-01-01T00:00Z")


def make_core(margin_mode: MarginMode) -> tuple[PaperCore, list[str]]:
    syms = [f"X{i:03d}/USDT:USDT" for i in range(N_POS)]
    insts = tuple(Instrument(s, "bench", MarketKind.PERP, s[:4], "USDT", 0.01, 0.001, 0.001, 5.0,
                             max_leverage=125.0) for s in syms)
    cfg = PaperConfig(venue="bench", instruments=insts, brackets={s: BTCUSDT_BRACKETS for s in syms},
                      default_margin_mode=margin_mode, default_leverage=10.0)
    core = PaperCore(cfg, balances={"perp": {"USDT": 10_000_000.0}})
    for i, s in enumerate(syms):
        px = 100.0 + i
        core.apply(Bar(T0, "bench", s, MarketKind.PERP, px, px, px, px, 1e6))
        core.apply(Bar(T0, "bench", s, MarketKind.MARK, px, px, px, px, 0.0))
    for i, s in enumerate(syms):
        core.create_order(OrderRequest(s, Side.BUY if i % 2 else Side.SELL, 10.0, f"open-{i}"))
    return core, syms


def updates(syms: list[str], hours: int) -> list[Bar]:
    out = []
    for h in range(1, hours + 1):
        ts = T0 + pd.Timedelta(hours=h)
        for i, s in enumerate(syms):
            px = (100.0 + i) * (1.0 + 0.01 * math.sin(h * 0.1 + i))
            out.append(Bar(ts, "bench", s, MarketKind.PERP, px, px * 1.002, px * 0.998, px, 1e6))
            out.append(Bar(ts, "bench", s, MarketKind.MARK, px, px * 1.002, px * 0.998, px, 0.0))
    return out


def bare_loop(items, key) -> float:
    store = {}
    t = time.perf_counter()
    for it in items:
        store[key(it)] = it
    return time.perf_counter() - t


def bench(margin_mode: MarginMode, hours: int, n_orders: int, repeats: int) -> None:
    """Best of ``repeats`` for the simulator and for the bare loop (the machine is shared)."""
    syms = make_core(margin_mode)[1]
    evs = updates(syms, hours)
    reqs = [OrderRequest(syms[k % N_POS], Side.BUY if (k // N_POS) % 2 == 0 else Side.SELL, 0.1, f"b{k}")
            for k in range(n_orders)]
    t_upd = t_ord = math.inf
    for _ in range(repeats):
        core, _ = make_core(margin_mode)
        t = time.perf_counter()
        for ev in evs:
            core.apply(ev)
        t_upd = min(t_upd, time.perf_counter() - t)
        assert len(core.positions_view()) == N_POS, "a position was liquidated: the bench must keep 100 open"
        t = time.perf_counter()
        for r in reqs:
            core.create_order(r)
        t_ord = min(t_ord, time.perf_counter() - t)
    b_upd = min(bare_loop(evs, lambda b: (b.symbol, b.kind)) for _ in range(repeats))
    b_ord = min(bare_loop(reqs, lambda r: r.client_order_id) for _ in range(repeats))
    print(f"[{margin_mode.value:8s}] market updates: {len(evs) / t_upd:10,.0f} /s   "
          f"bare loop {len(evs) / b_upd:12,.0f} /s   ratio {t_upd / b_upd:7.1f}x the bare loop's time")
    print(f"[{margin_mode.value:8s}] market orders:  {n_orders / t_ord:10,.0f} /s   "
          f"bare loop {n_orders / b_ord:12,.0f} /s   ratio {t_ord / b_ord:7.1f}x the bare loop's time")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller size (a few seconds)")
    args = ap.parse_args()
    hours, n_orders, repeats = (20, 2_000, 1) if args.quick else (100, 10_000, 3)
    print(f"paper core, {N_POS} open perp positions, {hours} h x {N_POS} symbols x (perp+mark) bars, "
          f"{n_orders} market orders")
    for mode in (MarginMode.ISOLATED, MarginMode.CROSS):
        bench(mode, hours, n_orders, repeats)


if __name__ == "__main__":
    main()
