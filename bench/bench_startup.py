"""Benchmark: a whole-process ``hedge backtest`` of one month of 1-hour bars (goal < 1.5 s).

Figures, each the median of ``--runs`` fresh processes (wall seconds, this machine's clock):

1. ``python -m hedge_core.cli backtest --params <carry> --db <demo store> --json`` over one month
   of hourly demo bars (read from DuckDB, timeline + analytics inputs, event-driven replay, KPIs);
2. baselines measured in the same run: a bare interpreter (``python -c pass``) and the floor of
   libraries such a run must load (``import pandas, duckdb, pydantic, typer``); the ratio of (1)
   to each;
3. which heavy libraries the run imported (numba, statsmodels, scipy, plotly, streamlit, dask,
   distributed, ccxt: none is needed for it).

Run: ``.venv/bin/python bench/bench_startup.py`` (``--runs 9``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numba", "statsmodels", "scipy", "plotly", "streamlit", "dask", "distributed", "ccxt")
CARRY = 'strategy = "carry"\nmin_net_carry = -0.01\n[exit]\nrearm = true\nmax_holding_hours = 24\n'


def _median_wall(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs + 1):  # the first run warms the OS file cache: not counted
        t = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as d:
        db, params = Path(d) / "month.duckdb", Path(d) / "carry.toml"
        params.write_text(CARRY)
        seed = ("from hedge_core.data.demo import seed_demo\nfrom hedge_core.store import Store\n"
                f"seed_demo(Store({str(db)!r}), days=34, timeframe='1h', seed=9, assets=('BTC',))")
        subprocess.run([py, "-c", seed], cwd=ROOT, check=True)
        cli = [py, "-m", "hedge_core.cli", "backtest", "--params", str(params), "--db", str(db), "--venue", "demo",
               "--json"]
        t_cli = _median_wall(cli, a.runs)
        t_bare = _median_wall([py, "-c", "pass"], a.runs)
        t_libs = _median_wall([py, "-c", "import pandas, duckdb, pydantic, typer"], a.runs)
        probe = ("import runpy, sys\nsys.argv = " + repr(["hedge", *cli[3:]]) +
                 "\ntry:\n    runpy.run_module('hedge_core.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
                 f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))")
        out = subprocess.run([py, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True).stdout
        heavy = next((ln[6:] for ln in out.splitlines() if ln.startswith("HEAVY ")), "?")
    print(f"hedge backtest, one month of 1h bars, whole process: {t_cli:.2f} s median of {a.runs} "
          f"(goal < 1.5 s: {'met' if t_cli < 1.5 else 'NOT met'}); baselines: bare interpreter {t_bare:.3f} s "
          f"(ratio {t_cli / t_bare:.1f}x), importing pandas+duckdb+pydantic+typer {t_libs:.2f} s (ratio "
          f"{t_cli / t_libs:.2f}x); heavy libraries imported: {heavy}")


if __name__ == "__main__":
    main()
