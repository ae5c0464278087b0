"""Engine benchmark: step() throughput for one hedge, and the monitoring cycle of 100 hedges.

Run: ``.venv/bin/python bench/bench_engine.py`` (``--quick`` for a smaller size).

1. events/s through ``step()`` for one hedge in MONITORING_POSITIONS fed hourly market updates
   (exits, strategy, drift, guards, leverage re-check all evaluated on every event), beside a bare
   loop over the same events that only re-prices two legs and computes the drift (the floor any
   engine pays);
2. monitoring-cycle latency with N hedges in one process: one cycle steps every hedge once;
   p50/p99 per cycle and per hedge per cycle (goal: < 1 ms per hedge per cycle), beside the bare
   loop's cycle.
"""

from __future__ import annotations

import argparse
import time
from types import MappingProxyType

import numpy as np
import pandas as pd

from hedge_core.engine import (
    FillEvent,
    MarketUpdate,
    OrderUpdate,
    OrderUpdateKind,
    PlaceOrder,
    State,
    new_hedge,
    step,
)
from hedge_core.exchange.paper.core import default_instruments
from hedge_core.params.models import CarryParams, ExitParams
from hedge_core.types import Fill

INST = {i.symbol: i for i in default_instruments()}
T0 = pd.Timestamp("2024-01-01T00:00Z")
PARAMS = CarryParams(notional=10_000.0, min_net_carry=-1.0,
                     exit=ExitParams(max_holding_hours=None, profit_target_pct=0.5, stop_loss_pct=0.5))


def hedged(hid: str, px: float = 40_000.0):
    """A hedge in MONITORING_POSITIONS (entered through step() with instant fills)."""
    ctx = new_hedge(hid, "carry", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0)
    ctx, acts = step(ctx, MarketUpdate(T0, px, px, funding_rate=0.001), PARAMS)
    while True:
        orders = [a for a in acts if isinstance(a, PlaceOrder)]
        if not orders:
            break
        acts = []
        for a in orders:
            r = a.request
            ctx, x = step(ctx, FillEvent(Fill("t" + r.client_order_id, "o", r.client_order_id, r.symbol, r.side,
                                              r.qty, px, 0.0, T0), a.leg), PARAMS)
            ctx, y = step(ctx, OrderUpdate(T0, r.client_order_id, OrderUpdateKind.CLOSED, filled=r.qty), PARAMS)
            acts += x + y
    assert ctx.state is State.MONITORING_POSITIONS
    return ctx


def events(n: int, seed: int = 0) -> list[MarketUpdate]:
    rng = np.random.default_rng(seed)
    px = 40_000.0 * np.exp(np.cumsum(rng.normal(0, 0.0005, n)))
    basis = 1.0 + rng.normal(0, 0.0002, n)
    an = [MappingProxyType({"sigma_24h": 0.02}) for _ in range(n)]
    return [MarketUpdate(T0 + pd.Timedelta(hours=i + 1), float(p), float(p * b), funding_rate=0.0001, analytics=a)
            for i, (p, b, a) in enumerate(zip(px, basis, an))]


def bare(state: tuple[float, float], ev: MarketUpdate) -> tuple[tuple[float, float], bool]:
    """The floor: re-price two legs and test the drift threshold."""
    spot_qty, perp_qty = state
    h = abs(perp_qty) * ev.perp / (abs(spot_qty) * ev.spot)
    return state, abs(h - 1.0) > 0.05


def bench_single(n: int) -> tuple[float, float, int]:
    evs = events(n)
    ctx = hedged("bench")
    acted = 0
    t = time.perf_counter()
    for ev in evs:
        ctx, acts = step(ctx, ev, PARAMS)
        acted += bool(acts)
    eng = time.perf_counter() - t
    st = (ctx.spot.qty, ctx.perp.qty)
    t = time.perf_counter()
    for ev in evs:
        st, _ = bare(st, ev)
    base = time.perf_counter() - t
    return n / eng, n / base, acted


def bench_cycle(hedges: int, cycles: int) -> tuple[np.ndarray, np.ndarray]:
    ctxs = [hedged(f"h{i}") for i in range(hedges)]
    evs = events(cycles, seed=1)
    lat, lat_bare = [], []
    states = [(c.spot.qty, c.perp.qty) for c in ctxs]
    for ev in evs:
        t = time.perf_counter()
        for i in range(hedges):
            ctxs[i], _ = step(ctxs[i], ev, PARAMS)
        lat.append(time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(hedges):
            states[i], _ = bare(states[i], ev)
        lat_bare.append(time.perf_counter() - t)
    return np.array(lat), np.array(lat_bare)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (seconds)")
    args = ap.parse_args()
    n, hedges, cycles = (2_000, 100, 50) if args.quick else (20_000, 100, 500)
    eps, eps_bare, acted = bench_single(n)
    print(f"step() one hedge, {n:,} market updates: {eps:,.0f} events/s "
          f"({1e6 / eps:.1f} us/event); bare loop {eps_bare:,.0f} events/s; "
          f"engine/bare time ratio {eps_bare / eps:.1f}x; events with actions: {acted}")
    lat, lat_bare = bench_cycle(hedges, cycles)
    p50, p99 = np.percentile(lat, 50), np.percentile(lat, 99)
    b50, b99 = np.percentile(lat_bare, 50), np.percentile(lat_bare, 99)
    print(f"monitoring cycle, {hedges} hedges x {cycles} cycles: p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms per cycle "
          f"= {p50 / hedges * 1e3:.3f} / {p99 / hedges * 1e3:.3f} ms per hedge (goal < 1 ms); "
          f"bare loop p50 {b50 * 1e3:.3f} ms, p99 {b99 * 1e3:.3f} ms; ratio p50 {p50 / b50:.1f}x")
    ok = p99 / hedges < 1e-3
    print(f"goal {'met' if ok else 'NOT met'}: p99 per hedge {p99 / hedges * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
