"""Panel page render time with a large store: every page, measured with streamlit's AppTest.

Store: a year of 1-minute spot, perp and mark bars (BTC, ~1.58M bar rows) + 8h funding, and one
journaled hedge with 1,000,000 fills (250,000 orders), its transitions and funding payments.
Baseline: the same page rendered on an empty database in the same run. Each figure is the best of
``--repeat`` renders (the script run after switching to the page, sidebar included); no runner
(HEDGE_PANEL_AUTOSTART=0), so pages read the database file itself.

    .venv/bin/python bench/bench_panel.py            # full size
    .venv/bin/python bench/bench_panel.py --quick    # 100k fills, 30 days of 1m bars
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hedge_core.store import Store  # noqa: E402

PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("[!_]*.py"))
HID = "bench-hedge"
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def build(db: Path, *, days: int, fills: int) -> None:
    rng = np.random.default_rng(0)
    st = Store(db)
    n = days * 1440
    idx = pd.date_range(T0, periods=n, freq="1min", tz="UTC", name="ts")
    px = 40_000 * np.exp(np.cumsum(rng.normal(0, 5e-4, n)))
    bars = pd.DataFrame({"open": px, "high": px * 1.0005, "low": px * 0.9995, "close": px, "volume": 1.0}, index=idx)
    st.write_bars(bars, venue="binance", symbol="BTC/USDT", kind="spot", timeframe="1m")
    st.write_bars(bars * 1.0003, venue="binance", symbol="BTC/USDT:USDT", kind="perp", timeframe="1m")
    st.write_bars(bars * 1.0002, venue="binance", symbol="BTC/USDT:USDT", kind="mark", timeframe="1m")
    fidx = pd.date_range(T0, periods=days * 3, freq="8h", tz="UTC")
    st.write_funding(pd.DataFrame({"funding_rate": rng.normal(1e-4, 5e-5, len(fidx))}, index=fidx),
                     venue="binance", symbol="BTC/USDT:USDT")
    ts = T0 + pd.to_timedelta(np.sort(rng.integers(0, n * 60, fills)), unit="s")
    orders = fills // 4
    oid = np.repeat(np.arange(orders), 4)[:fills]
    st.write_table("fills", pd.DataFrame({
        "hedge_id": HID, "trade_id": np.arange(fills).astype(str), "order_id": oid.astype(str),
        "client_order_id": np.char.add("c", oid.astype(str)), "venue": "binance",
        "symbol": np.where(oid % 2 == 0, "BTC/USDT", "BTC/USDT:USDT"), "leg": np.where(oid % 2 == 0, "spot", "perp"),
        "side": np.where(rng.random(fills) < 0.5, "buy", "sell"), "qty": rng.uniform(0.001, 0.01, fills),
        "price": np.interp(np.arange(fills), np.arange(fills), px[np.minimum((ts - T0).total_seconds() // 60, n - 1)
                                                                  .astype(int)]),
        "fee": 0.01, "fee_currency": "USDT", "liquidity": "taker", "slippage": 0.0, "ts": ts}))
    ots = ts[::4][:orders]
    st.write_table("orders", pd.DataFrame({
        "hedge_id": HID, "client_order_id": np.char.add("c", np.arange(orders).astype(str)),
        "order_id": np.arange(orders).astype(str), "venue": "binance", "symbol": "BTC/USDT",
        "leg": np.where(np.arange(orders) % 2 == 0, "spot", "perp"), "side": "buy", "type": "market", "qty": 0.01,
        "status": "closed", "filled": 0.01, "avg_price": 40_000.0, "intent_ts": ots, "updated_ts": ots, "mode": "paper"}))
    st.write_table("funding_payments", pd.DataFrame({
        "hedge_id": HID, "venue": "binance", "symbol": "BTC/USDT:USDT", "ts": fidx, "amount": 1.0, "rate": 1e-4,
        "position_qty": -0.1, "mark_price": 40_000.0}))
    st.write_table("transitions", pd.DataFrame({
        "hedge_id": HID, "seq": np.arange(1, 2001), "ts": T0 + pd.to_timedelta(np.linspace(0, (days - 1) * 86400, 2000), unit="s"),
        "from_state": "MONITORING_POSITIONS", "to_state": "REBALANCING", "trigger_name": "DRIFT_EXCEEDED", "reason": "bench"}))
    st.write_table("hedge_runs", pd.DataFrame([{
        "hedge_id": HID, "mode": "paper", "strategy": "carry", "params_name": "bench", "params_version": 1,
        "spot_venue": "binance", "spot_symbol": "BTC/USDT", "perp_venue": "binance", "perp_symbol": "BTC/USDT:USDT",
        "state": "MONITORING_POSITIONS", "started_at": T0, "ended_at": None, "synthetic": False,
        "info": '{"timeframe": "1m"}'}]))
    st.close()


def render_times(db: Path, env_root: Path, repeat: int) -> dict[str, float]:
    from streamlit.testing.v1 import AppTest

    os.environ.update({"HEDGE_DB": str(db), "HEDGE_PANEL_AUTOSTART": "0", "HEDGE_OFFLINE": "1",
                       "HEDGE_RUNNER_HOME": str(env_root / "home"), "HEDGE_PARAMS_DIR": str(env_root / "params")})
    import streamlit as st

    out = {}
    for page in PAGES:
        times = []
        st.cache_data.clear()  # the first render is cold (no cached coverage table)
        for _ in range(repeat + 1):
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
            if page == "pages/hedge_detail.py":
                at.session_state["detail_hedge"] = HID
            t0 = time.perf_counter()
            at.switch_page(page).run()
            times.append(time.perf_counter() - t0)
            if at.exception:
                raise RuntimeError(f"{page}: {at.exception[0].value}")
        out[page] = (times[0], min(times[1:]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100k fills and 30 days of 1m bars")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    days, fills = (30, 100_000) if a.quick else (365, 1_000_000)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        empty, big = root / "empty.duckdb", root / "big.duckdb"
        Store(empty).close()
        t = time.perf_counter()
        build(big, days=days, fills=fills)
        print(f"built store: {days} days of 1m bars x 3 kinds, {fills:,} fills in {time.perf_counter() - t:.1f} s")
        from hedge_core.params import store as param_store
        from hedge_core.params.models import CarryParams

        param_store.export(CarryParams(), "bench", created_from="test", root=root / "params", index=False)
        render_times(empty, root, 1)  # warm-up: imports and first-run caches are not counted
        base = render_times(empty, root, a.repeat)
        full = render_times(big, root, a.repeat)
    print("seconds per page render; cold = first render (empty caches), warm = best of the next renders")
    print(f"{'page':26s} {'empty cold':>10s} {'empty warm':>10s} {'large cold':>10s} {'large warm':>10s} "
          f"{'ratio cold':>10s} {'ratio warm':>10s}")
    for p in PAGES:
        (bc, bw), (fc, fw) = base[p], full[p]
        print(f"{p:26s} {bc:10.3f} {bw:10.3f} {fc:10.3f} {fw:10.3f} {fc / bc:10.2f} {fw / bw:10.2f}")
    worst_cold = max(v[0] for v in full.values())
    worst_warm = max(v[1] for v in full.values())
    print(f"slowest page with the large store: cold {worst_cold:.3f} s, warm {worst_warm:.3f} s "
          f"(budget 1 s: {'met' if worst_cold < 1.0 else 'cold OVER' if worst_warm < 1.0 else 'OVER'})")


if __name__ == "__main__":
    main()
