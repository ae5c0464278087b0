"""The book's refresh time: 100 hedges across three venues (issue 15 goal: < 100 ms).

Measured, best of ``--repeat`` runs:

- ``aggregate``: 100 runner summaries -> HedgePosition -> the book (net delta per asset, exposure,
  margin and nearest liquidation per venue, netting per asset and venue, LTV, drawdown) -> the
  book guards;
- ``GET /book`` path: :meth:`BookMonitor.snapshot` over 100 hedge summaries with the funding rows
  read from the ledger (DuckDB, 100 hedges x 90 funding rows) and the portfolio VaR (historical +
  parametric, 90 days of 1h closes of the demo market, closes cached as the runner caches them).

Baseline measured in the same run: a naive pandas groupby of the same rows (DataFrame of the
summaries, notional columns, ``groupby`` by asset, by venue and by (asset, venue)), the figures
a notebook would compute.

Run: ``.venv/bin/python bench/bench_book.py`` (``--quick``: fewer repeats).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hedge_core.book.aggregate import aggregate
from hedge_core.book.guards import BookLimits, check_book
from hedge_core.book.model import from_summary
from hedge_core.book.monitor import BookMonitor
from hedge_core.data.demo import seed_demo
from hedge_core.runner.condition import AlertBus
from hedge_core.store import Store

VENUES = ("binance", "bybit", "okx")
LIMITS = BookLimits(max_gross_exposure=1e9, max_venue_gross=1e9, max_asset_net_delta=1e9, var_limit=1e9,
                    daily_loss_limit=1e9)


def summaries(n: int, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        asset = ("BTC", "ETH")[i % 2]
        px = 42_000.0 if asset == "BTC" else 2_300.0
        q = rng.uniform(0.01, 1.0) * (1.0 if asset == "BTC" else 15.0)
        out.append({"hedge_id": f"h{i:03d}", "venue": VENUES[i % 3], "spot_symbol": f"{asset}/USDT",
                    "spot_qty": q, "perp_qty": -q * rng.uniform(0.95, 1.05), "spot_price": px,
                    "mark_price": px * (1 + rng.normal(0, 1e-3)), "leverage": float(rng.integers(1, 6)),
                    "liq_price": px * rng.uniform(1.2, 2.0), "funding": rng.normal(5, 2), "pnl": rng.normal(0, 50),
                    "day_pnl": rng.normal(0, 10), "loan": None})
    return out


def pandas_baseline(rows: list[dict]) -> dict[str, pd.DataFrame]:
    df = pd.DataFrame(rows)
    df["asset"] = df["spot_symbol"].str.split("/").str[0]
    df["spot_val"] = df["spot_qty"] * df["spot_price"]
    df["perp_val"] = df["perp_qty"] * df["mark_price"]
    df["gross"] = df["spot_val"].abs() + df["perp_val"].abs()
    df["net"] = df["spot_val"] + df["perp_val"]
    df["margin"] = df["perp_qty"].abs() * df["mark_price"] / df["leverage"]
    df["liq_distance"] = (df["liq_price"] - df["mark_price"]) / df["mark_price"]
    df["delta"] = df["spot_qty"] + df["perp_qty"]
    return {"assets": df.groupby("asset")[["spot_qty", "perp_qty", "delta"]].sum(),
            "venues": df.groupby("venue").agg(gross=("gross", "sum"), net=("net", "sum"), margin=("margin", "sum"),
                                              liq=("liq_distance", "min")),
            "netted": df.groupby(["asset", "venue"])[["spot_qty", "perp_qty", "margin"]].sum()}


def best(fn, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--hedges", type=int, default=100)
    a = ap.parse_args()
    repeat = 5 if a.quick else 30
    rows = summaries(a.hedges)

    def pure() -> None:
        check_book(aggregate([from_summary(r) for r in rows]), LIMITS)

    with tempfile.TemporaryDirectory() as tmp:
        st = Store(Path(tmp) / "bench.duckdb")
        seed_demo(st, days=90)
        fund = pd.DataFrame([{"hedge_id": r["hedge_id"], "venue": r["venue"], "symbol": r["spot_symbol"] + ":USDT",
                              "ts": pd.Timestamp("2024-01-01T00:00Z") + pd.Timedelta(hours=8 * k), "amount": 0.1,
                              "rate": 1e-4, "position_qty": r["perp_qty"], "mark_price": r["mark_price"]}
                             for r in rows for k in range(90)])
        st.write_table("funding_payments", fund)
        tasks = {r["hedge_id"]: SimpleNamespace(hedge_id=r["hedge_id"], driver=object(), summary=lambda r=r: r,
                                                spec=SimpleNamespace(venue=r["venue"], spot_symbol=r["spot_symbol"],
                                                                     data_venue="demo"))
                 for r in rows}
        sup = SimpleNamespace(home=Path(tmp), hedges=tasks, store=st, alert_bus=AlertBus(), journal=None)
        mon = BookMonitor(sup)
        first = mon.snapshot()  # reads and caches the closes, as the runner's first refresh does
        assert "error" not in first.var, first.var
        t_pure = best(pure, repeat)
        t_api = best(lambda: mon.snapshot(), repeat)
        t_base = best(lambda: pandas_baseline(rows), repeat)
        st.close()
    print(f"book of {a.hedges} hedges on {len(VENUES)} venues, {len(first.assets)} assets; best of {repeat}")
    print(f"  baseline: naive pandas groupby of the same rows       {t_base:8.2f} ms")
    print(f"  aggregate + guards (pure)                              {t_pure:8.2f} ms  {t_pure / t_base:6.2f}x base")
    print(f"  GET /book path (summaries, ledger funding, VaR)        {t_api:8.2f} ms  {t_api / t_base:6.2f}x base")
    print(f"goal: book refresh < 100 ms for 100 hedges -> {'met' if max(t_pure, t_api) < 100 else 'NOT met'}")
    print(f"  VaR 0.99/24 bars: historical {first.var['historical']:,.2f}, parametric {first.var['parametric']:,.2f} "
          f"over {first.var['observations']} joint 1h returns")


if __name__ == "__main__":
    main()
