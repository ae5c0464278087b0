"""Runner capacity on one process: N concurrent paper hedges on an as-fast-as-possible replay.

For N = 10, 100, 500 hedges (carry, demo market, each with its own paper venue and replay feed,
journaling to a DuckDB file exactly like the runner process) it measures:

- market updates/s processed by the whole runner (all hedges together);
- monitoring-cycle latency: one market update processed while the hedge is MONITORING_POSITIONS
  (engine step: exits, drift, guards, rebalance orders if due; paper venue; journal), p50 and p99;

and prints them beside the original specification's targets (10 strategies, 100 updates/s,
< 100 ms per cycle) and this issue's goal (100 hedges at 10,000 updates/s, p99 < 10 ms).

Baseline measured in the same run: ONE hedge stepped through the same data by the engine's own
replay helper (``engine.replay.run_paper``: paper venue + driver, no runner, no journal, no
asyncio scheduling across hedges); the ratio runner/baseline says what the runner's shell
(journal, per-hedge tasks, feed, market inputs) costs per update.

Run: ``.venv/bin/python bench/bench_runner.py`` (``--quick``: 10 and 100 hedges, fewer bars).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hedge_core.params import store as param_store
from hedge_core.data.demo import seed_demo
from hedge_core.params.models import CarryParams
from hedge_core.store import Store

START = pd.Timestamp("2024-01-01T05:00Z")
PARAMS = dict(notional=1000.0, min_funding_rate=0.00001, min_net_carry=-1.0,
              exit={"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                    "funding_unfavourable_intervals": None})


def baseline(db: Path, hours: int) -> float:
    """Updates/s of one hedge through engine.replay.run_paper (no runner)."""
    from hedge_core.engine.context import new_hedge
    from hedge_core.engine.driver import HedgeDriver
    from hedge_core.engine.replay import build_steps, run_paper
    from hedge_core.exchange.paper import PaperExchange
    from hedge_core.exchange.paper.core import PaperConfig, PaperCore

    end = START + pd.Timedelta(hours=hours)
    with Store(db) as st:
        spot = st.read_bars("demo", "BTC/USDT", "spot", "1h", start=START, end=end)
        perp = st.read_bars("demo", "BTC/USDT:USDT", "perp", "1h", start=START, end=end)
        mark = st.read_bars("demo", "BTC/USDT:USDT", "mark", "1h", start=START, end=end)
        fund = st.read_funding("demo", "BTC/USDT:USDT", start=START, end=end)
    steps = build_steps(spot, perp, venue="binance", spot_symbol="BTC/USDT", perp_symbol="BTC/USDT:USDT",
                        mark=mark, funding=fund)
    core = PaperCore(PaperConfig(), balances={"spot": {"USDT": 1e5}, "perp": {"USDT": 1e5}})
    ex = PaperExchange(core)
    insts = core.instruments
    ctx = new_hedge("base", "carry", insts["BTC/USDT"], insts["BTC/USDT:USDT"], steps[0].ts)
    drv = HedgeDriver(ctx, CarryParams(**PARAMS), {"binance": ex})
    t0 = time.perf_counter()
    asyncio.run(run_paper(drv, {"binance": ex}, steps))
    return len(steps) / (time.perf_counter() - t0)


async def run_runner(db: Path, home: Path, params_dir: Path, n: int, hours: int) -> dict[str, float]:
    from hedge_core.runner.supervisor import Supervisor

    store = Store(db, hold=True)
    sup = Supervisor(store, home, params_root=params_dir, snapshot_dir=None, heartbeat_s=1.0, dms_timeout_s=600)
    gate = asyncio.Event()
    orig = sup._feed_factory

    class Gated:
        def __init__(self, inner):
            self.inner = inner

        async def __aiter__(self):
            events = list(self.inner.events())  # the store reads happen at start-up, outside the timing
            await gate.wait()
            for ev in events:
                yield ev

        async def aclose(self):
            await self.inner.aclose()

    sup._feed_factory = lambda task: Gated(orig(task))
    sup.start_background()
    end = START + pd.Timedelta(hours=hours)
    for i in range(n):
        await sup.start_hedge({"params": "bench", "mode": "paper", "hedge_id": f"b{i:04d}", "start": str(START),
                               "end": str(end), "speed": None, "paper_save_every_event": False,
                               "data_venue": "demo"})
    for h in sup.hedges.values():
        h.keep_latencies = True
    await asyncio.sleep(0.2)  # every task built its feed and waits at the gate
    t0 = time.perf_counter()
    gate.set()
    await asyncio.gather(*(h.task for h in sup.hedges.values()))
    wall = time.perf_counter() - t0
    lat = np.concatenate([np.asarray(h.latencies) for h in sup.hedges.values()])
    states = [h.driver.ctx.state for h in sup.hedges.values()]
    updates = sum(h.updates for h in sup.hedges.values())
    await sup.shutdown(flatten=False, timeout_s=5)
    store.close()
    return {"n": n, "updates": updates, "wall": wall, "ups": updates / wall, "p50": float(np.percentile(lat, 50)) * 1e3,
            "p99": float(np.percentile(lat, 99)) * 1e3, "monitoring": sum(str(s) == "MONITORING_POSITIONS" for s in states)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 and 100 hedges, fewer bars")
    a = ap.parse_args()
    sizes = [10, 100] if a.quick else [10, 100, 500]
    total = 8_000 if a.quick else 40_000  # market updates per size (bars per hedge = total / n)
    tmp = Path(tempfile.mkdtemp(prefix="bench-runner-"))
    db = tmp / "bench.duckdb"
    with Store(db) as st:
        seed_demo(st, days=max(40, total // 10 // 24 + 5), assets=("BTC",))
    param_store.export(CarryParams(**PARAMS), "bench", created_from="test", root=tmp / "params", db=db)
    base_ups = baseline(db, 24 * 20)
    print(f"baseline: engine.replay.run_paper, 1 hedge, no runner: {base_ups:,.0f} updates/s")
    print(f"{'hedges':>6} {'updates':>8} {'wall s':>7} {'updates/s':>10} {'x base':>7} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'in mkt':>6}")
    rows = []
    for n in sizes:
        hours = max(24, total // n)
        r = asyncio.run(run_runner(db, tmp / f"home{n}", tmp / "params", n, hours))
        rows.append(r)
        print(f"{r['n']:>6} {r['updates']:>8} {r['wall']:>7.2f} {r['ups']:>10,.0f} {r['ups'] / base_ups:>7.2f} "
              f"{r['p50']:>7.3f} {r['p99']:>7.3f} {r['monitoring']:>6}")
    print("\ntargets")
    print("  original specification: 10 strategies, 100 updates/s, < 100 ms per monitoring cycle")
    r10 = next(r for r in rows if r["n"] == 10)
    print(f"    measured at 10 hedges: {r10['ups']:,.0f} updates/s ({r10['ups'] / 100:,.0f}x the target), "
          f"p99 {r10['p99']:.2f} ms ({100 / r10['p99']:,.0f}x under 100 ms)")
    r100 = next(r for r in rows if r["n"] == 100)
    ok = r100["ups"] >= 10_000 and r100["p99"] < 10
    print("  issue goal: 100 hedges at 10,000 updates/s, p99 < 10 ms")
    print(f"    measured at 100 hedges: {r100['ups']:,.0f} updates/s, p99 {r100['p99']:.2f} ms -> "
          f"{'MET' if ok else 'NOT MET'}")
    print(f"(median of per-update latencies over all hedges; {statistics.mean([r['wall'] for r in rows]):.1f} s mean wall per size)")


if __name__ == "__main__":
    main()
