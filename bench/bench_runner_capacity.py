"""Runner capacity: 100 paper hedges across three venues in ONE runner process (issue 15).

Set-up (outside the timing): one real DuckDB file holding a demo market per venue (``binance``,
``bybit``, ``okx``: :func:`hedge_core.data.demo.generate_demo_market` with one seed per venue,
relabelled with the venue, BTC and ETH spot/perp/mark/funding), and three exported parameter
sets. The hedges are spread round-robin over the venues and over a mix of strategies:

- ``carry`` (BTC spot / BTC perp), ``cross`` (ETH spot hedged with the BTC perp, beta-sized),
  ``grid`` (BTC), all with both legs on one venue;
- ``xvenue``: the carry with its spot leg on one venue and its perp leg on the next one
  (``perp_venue``: the runner's routed paper adapter, docs/cross-venue.md). The ``xcarry``
  strategy itself is not in the parameter store's strategy union yet, so the runner cannot start
  it; the cross-venue hedges run the carry's rule over two venues. Their replay reads both legs'
  bars from the spot venue's data (a replay feed has one data venue).

Every hedge goes through the runner's own path: ``Supervisor.start_hedge`` (validation,
preflight, paper venue(s) with that venue's instruments from the store / committed snapshot,
journal rows) and a ``HedgeTask`` on a replay feed at full speed, journaling to the DuckDB file.
The feeds wait at a gate until every hedge is started, so the timing covers the market updates
only.

Printed:

- start-up time for N hedges (``start_hedge`` x N plus every feed built) and the RSS before /
  after start-up and at the end (peak);
- total market updates/s of the runner, monitoring-cycle latency p50/p99 (one market update of
  a hedge in MONITORING_POSITIONS: engine step, paper venue, journal), per hedge;
- the same per venue (a cross-venue hedge counts under ``spot>perp``);
- the book refresh time while the hedges run: ``BookMonitor.snapshot().as_dict()`` (the GET
  /book path: summaries, ledger funding, VaR), asked for every ``--book-every`` seconds, p50/max,
  and how long each such request waited for the event loop (hedges replaying at full speed yield
  every 64 events);
- the baseline measured in the same run: ONE carry hedge on one venue through the same runner
  path; the ratio is the per-update cost at N hedges over the baseline's per-update cost.

Goals printed beside: 100 hedges at >= 10,000 updates/s total, cycle p99 < 10 ms, book refresh
< 100 ms. ``--json PATH`` writes the figures and, per hedge, its venues and state (the smoke
test, tests/test_bench_runner_capacity.py, reads it); ``--keep DIR`` keeps the database there.

Run: ``.venv/bin/python bench/bench_runner_capacity.py`` (``--quick``: 30 hedges, fewer bars,
for ``make bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hedge_core.data.demo import DEMO_START, generate_demo_market
from hedge_core.data.importers import write_series
from hedge_core.params import store as param_store
from hedge_core.params.models import CarryParams, CrossHedgeParams, GridParams
from hedge_core.store import Store

VENUES = ("binance", "bybit", "okx")
START = DEMO_START + pd.Timedelta(days=10)  # analytics (beta, sigma) have 10 days of history at the start
NO_EXIT = {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
           "funding_unfavourable_intervals": None}
#: (kind, parameter set, spot symbol, perp symbol, cross-venue?) cycled over the hedges
MIX = (("carry", "cap-carry", "BTC/USDT", "BTC/USDT:USDT", False),
       ("cross", "cap-cross", "ETH/USDT", "BTC/USDT:USDT", False),
       ("grid", "cap-grid", "BTC/USDT", "BTC/USDT:USDT", False),
       ("xvenue", "cap-carry", "BTC/USDT", "BTC/USDT:USDT", True))
GOAL_UPS, GOAL_P99_MS, GOAL_BOOK_MS = 10_000.0, 10.0, 100.0


@dataclass(frozen=True)
class Plan:
    """One hedge of the bench: its id, strategy kind, parameter set, symbols and leg venues."""

    hedge_id: str
    kind: str
    params: str
    spot_symbol: str
    perp_symbol: str
    venue: str
    perp_venue: str | None

    @property
    def label(self) -> str:
        """Venue group of the breakdown: ``binance`` or ``binance>bybit`` for legs on two venues."""
        return self.venue if self.perp_venue is None else f"{self.venue}>{self.perp_venue}"


def plan(n: int) -> list[Plan]:
    """``n`` hedges: venue round-robin over VENUES, strategy over MIX (4 and 3 are coprime, so every
    strategy meets every venue); a cross-venue hedge puts its perp on the next venue."""
    out = []
    for i in range(n):
        kind, params, spot, perp, xv = MIX[i % len(MIX)]
        v = VENUES[i % len(VENUES)]
        out.append(Plan(f"cap{i:03d}-{kind}", kind, params, spot, perp, v,
                        VENUES[(i + 1) % len(VENUES)] if xv else None))
    return out


def seed_venues(db: Path, days: float) -> None:
    """A demo market per venue (one seed each), labelled with the venue, in one DuckDB file."""
    with Store(db) as st:
        for k, venue in enumerate(VENUES):
            frames = generate_demo_market(days=days, seed=7 + k, assets=("BTC", "ETH"))
            write_series(st, {replace(key, venue=venue): df for key, df in frames.items()})


def export_params(root: Path, db: Path) -> None:
    """The three parameter sets the hedges reference (entries made easy so the hedges trade)."""
    sets = {"cap-carry": CarryParams(notional=1000.0, min_funding_rate=0.00001, min_net_carry=-1.0, exit=NO_EXIT),
            "cap-cross": CrossHedgeParams(notional=1000.0, min_correlation=0.0, exit=NO_EXIT),
            "cap-grid": GridParams(notional=1000.0)}
    for name, p in sets.items():
        param_store.export(p, name, created_from="test", root=root, db=db)


def rss_mb() -> float:
    """Resident set size of this process now (MB, from /proc; 0 where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB; ru_maxrss is in kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _pct(x: list[float] | np.ndarray, q: float) -> float:
    a = np.asarray(x, dtype=float)
    return float(np.percentile(a, q)) * 1e3 if a.size else float("nan")


def venue_holdings(task: Any) -> dict[str, float]:
    """What the hedge's paper venue(s) hold: spot base balance and signed perp position (base units),
    read from the simulator cores, not from the hedge's own bookkeeping."""
    ad = task.raw_adapter
    spot_core = getattr(getattr(ad, "spot", ad), "core", None)
    perp_core = getattr(getattr(ad, "perp", ad), "core", None)
    base = task.spec.spot_symbol.split("/")[0]
    spot = float(spot_core.spot.get(base, 0.0)) if spot_core is not None else float("nan")
    perp = float(sum(p.qty for p in perp_core.positions.values() if p.symbol == task.spec.perp_symbol)) \
        if perp_core is not None else float("nan")
    return {"spot_qty": spot, "perp_qty": perp}


async def run_runner(db: Path, home: Path, params_dir: Path, plans: list[Plan], hours: int,
                     book_every: float, profile: Path | None = None) -> dict[str, Any]:
    """Start ``plans`` in one Supervisor, release their replays together, and measure."""
    from hedge_core.runner.supervisor import Supervisor

    rss0 = rss_mb()
    store = Store(db, hold=True)
    sup = Supervisor(store, home, params_root=params_dir, snapshot_dir=None, heartbeat_s=1.0, dms_timeout_s=600)
    gate = asyncio.Event()
    at_gate = [0]
    orig = sup._feed_factory

    class Gated:
        """The runner's replay feed, held at the gate once its events are read (start-up)."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __aiter__(self) -> Any:
            events = list(self.inner.events())  # the store reads happen at start-up, outside the timing
            at_gate[0] += 1
            await gate.wait()
            for ev in events:
                yield ev

        async def aclose(self) -> None:
            await self.inner.aclose()

    sup._feed_factory = lambda task: Gated(orig(task))
    sup.start_background()
    end = START + pd.Timedelta(hours=hours)
    t_start = time.perf_counter()
    for p in plans:
        req: dict[str, Any] = {"params": p.params, "mode": "paper", "hedge_id": p.hedge_id, "start": str(START),
                               "end": str(end), "speed": None, "paper_save_every_event": False,
                               "venue": p.venue, "data_venue": p.venue, "spot_symbol": p.spot_symbol,
                               "perp_symbol": p.perp_symbol}
        if p.perp_venue:
            req["perp_venue"] = p.perp_venue
        await sup.start_hedge(req)
    for h in sup.hedges.values():
        h.keep_latencies = True
    while at_gate[0] < len(plans):  # every task built its feed, read its events and waits
        if any(h.task.done() for h in sup.hedges.values()):
            bad = next(h for h in sup.hedges.values() if h.task.done())
            raise RuntimeError(f"hedge {bad.hedge_id} ended during start-up: {bad.error or bad.status}")
        await asyncio.sleep(0.005)
    startup = time.perf_counter() - t_start
    rss_started = rss_mb()

    book_ms: list[float] = []
    late_ms: list[float] = []  # how much later than asked the probe got the loop (what an API request waits)

    async def book_probe() -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(book_every)
            late_ms.append((time.perf_counter() - t - book_every) * 1e3)
            t = time.perf_counter()
            sup.book.snapshot().as_dict()  # what GET /book serves
            book_ms.append((time.perf_counter() - t) * 1e3)

    probe = asyncio.create_task(book_probe())
    prof = None
    if profile is not None:  # the timed part only (start-up excluded)
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t0 = time.perf_counter()
    gate.set()
    await asyncio.gather(*(h.task for h in sup.hedges.values()))
    wall = time.perf_counter() - t0
    if prof is not None:
        prof.disable()
        prof.dump_stats(str(profile))
    probe.cancel()
    t = time.perf_counter()
    book = sup.book.snapshot().as_dict()  # the book at the end, over the finished replays
    book_ms.append((time.perf_counter() - t) * 1e3)

    by_id = {p.hedge_id: p for p in plans}
    hedges = []
    groups: dict[str, dict[str, Any]] = {}
    for hid, h in sup.hedges.items():
        p = by_id[hid]
        s = h.summary()
        hedges.append({"hedge_id": hid, "kind": p.kind, "venue": p.venue, "perp_venue": p.perp_venue or p.venue,
                       "spot_symbol": p.spot_symbol, "perp_symbol": p.perp_symbol, "state": str(h.driver.ctx.state),
                       "updates": h.updates, "cycles": len(h.latencies), "summary_spot_qty": s.get("spot_qty"),
                       "summary_perp_qty": s.get("perp_qty"), "error": h.error, **venue_holdings(h)})
        g = groups.setdefault(p.label, {"hedges": 0, "updates": 0, "lat": []})
        g["hedges"] += 1
        g["updates"] += h.updates
        g["lat"].extend(h.latencies)
    lat = np.concatenate([np.asarray(h.latencies, dtype=float) for h in sup.hedges.values()])
    updates = sum(h.updates for h in sup.hedges.values())
    await sup.shutdown(flatten=False, timeout_s=5)
    store.close()
    per_venue = {k: {"hedges": g["hedges"], "updates": g["updates"], "ups": g["updates"] / wall,
                     "p50_ms": _pct(g["lat"], 50), "p99_ms": _pct(g["lat"], 99), "cycles": len(g["lat"])}
                 for k, g in sorted(groups.items())}
    return {"n": len(plans), "updates": updates, "wall_s": wall, "ups": updates / wall,
            "us_per_update": wall / updates * 1e6 if updates else float("nan"),
            "p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99), "cycles": int(lat.size),
            "startup_s": startup, "rss_before_mb": rss0, "rss_started_mb": rss_started, "rss_peak_mb": peak_rss_mb(),
            "book_p50_ms": float(np.median(book_ms)), "book_max_ms": float(np.max(book_ms)), "book_probes": len(book_ms),
            "loop_wait_p50_ms": float(np.median(late_ms)) if late_ms else float("nan"),
            "loop_wait_max_ms": float(np.max(late_ms)) if late_ms else float("nan"),
            "monitoring": sum(h["state"] == "MONITORING_POSITIONS" for h in hedges),
            "per_venue": per_venue, "hedges": hedges, "book": book}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="30 hedges, 60 bars each (make bench)")
    ap.add_argument("--hedges", type=int, default=None, help="number of hedges (default 100; --quick 30)")
    ap.add_argument("--hours", type=int, default=None, help="1h bars replayed per hedge (default 400; --quick 60)")
    ap.add_argument("--book-every", type=float, default=0.05, help="seconds between GET /book probes while running")
    ap.add_argument("--json", type=Path, default=None, help="write the figures and per-hedge rows here")
    ap.add_argument("--profile", type=Path, default=None, help="cProfile the timed part of the N-hedge run into this file")
    ap.add_argument("--keep", type=Path, default=None, help="keep the bench database and runner home in this folder")
    a = ap.parse_args(argv)
    n = a.hedges or (30 if a.quick else 100)
    hours = a.hours or (60 if a.quick else 400)
    if n < 1 or hours < 2:
        ap.error(f"--hedges={n} and --hours={hours}: expected >= 1 and >= 2")
    tmp = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    tmp.mkdir(parents=True, exist_ok=True)
    db = tmp / "bench.duckdb"
    try:
        seed_venues(db, days=10 + hours / 24 + 2)
        export_params(tmp / "params", db)
        # the baseline journals into its own copy of the store: a hedge id is used once in a journal
        shutil.copyfile(db, tmp / "base.duckdb")
        base = asyncio.run(run_runner(tmp / "base.duckdb", tmp / "home-base", tmp / "params", [plan(1)[0]], hours,
                                      book_every=1.0))
        r = asyncio.run(run_runner(db, tmp / "home", tmp / "params", plan(n), hours, book_every=a.book_every,
                                   profile=a.profile))
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    ratio = r["us_per_update"] / base["us_per_update"]
    print(f"runner capacity: {n} paper hedges on {len(VENUES)} venues ({', '.join(VENUES)}), {hours} 1h bars each, "
          "one runner process, journal on a DuckDB file")
    mix = ", ".join(f"{k} {sum(h['kind'] == k for h in r['hedges'])}" for k, *_ in MIX)
    print(f"  mix: {mix} (xvenue = carry with spot and perp on two venues)")
    print(f"baseline: 1 carry hedge on binance, same runner path: {base['ups']:,.0f} updates/s, "
          f"{base['us_per_update']:,.0f} us/update, cycle p50 {base['p50_ms']:.3f} ms")
    print(f"start-up: {n} hedges started and their feeds built in {r['startup_s']:.2f} s "
          f"({r['startup_s'] / n * 1e3:.1f} ms per hedge)")
    print(f"memory (RSS): {r['rss_before_mb']:.0f} MB before, {r['rss_started_mb']:.0f} MB with {n} hedges started "
          f"({(r['rss_started_mb'] - r['rss_before_mb']) / n:.2f} MB per hedge), peak {r['rss_peak_mb']:.0f} MB")
    print(f"total: {r['updates']:,} market updates in {r['wall_s']:.2f} s = {r['ups']:,.0f} updates/s, "
          f"{r['us_per_update']:,.0f} us/update ({ratio:.2f}x baseline per update)")
    print(f"monitoring cycle per hedge: p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms over {r['cycles']:,} cycles; "
          f"{r['monitoring']}/{n} hedges in MONITORING_POSITIONS at the end")
    print(f"book refresh while running (GET /book path, {r['book_probes']} probes): p50 {r['book_p50_ms']:.2f} ms, "
          f"max {r['book_max_ms']:.2f} ms; the probe waited p50 {r['loop_wait_p50_ms']:.0f} ms, "
          f"max {r['loop_wait_max_ms']:.0f} ms for the event loop (a GET /book while replays run at full speed)")
    print(f"{'venue':>14} {'hedges':>6} {'updates':>8} {'updates/s':>10} {'p50 ms':>7} {'p99 ms':>7}")
    for k, v in r["per_venue"].items():
        print(f"{k:>14} {v['hedges']:>6} {v['updates']:>8} {v['ups']:>10,.0f} {v['p50_ms']:>7.3f} {v['p99_ms']:>7.3f}")
    print("goals (issue 15)")
    for what, ok in ((f"{GOAL_UPS:,.0f} updates/s total: {r['ups']:,.0f}", r["ups"] >= GOAL_UPS),
                     (f"cycle p99 < {GOAL_P99_MS:g} ms: {r['p99_ms']:.2f} ms", r["p99_ms"] < GOAL_P99_MS),
                     (f"book refresh < {GOAL_BOOK_MS:g} ms: max {r['book_max_ms']:.2f} ms", r["book_max_ms"] < GOAL_BOOK_MS)):
        print(f"  {what} -> {'met' if ok else 'NOT met'}" + ("" if n >= 100 else f" (at {n} hedges, not 100)"))
    out = {"baseline": {k: v for k, v in base.items() if k not in ("hedges", "book")}, "ratio": ratio,
           "hours": hours, **r}
    if a.json:
        a.json.write_text(json.dumps(out, default=str, indent=1), encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
