"""Ingest benchmark: importer and store write path against a raw DuckDB Arrow insert, same run.

    .venv/bin/python bench/bench_ingest.py            # 5,000,000 rows (5 series x 1,000,000 1m bars)
    .venv/bin/python bench/bench_ingest.py --quick    # 500,000 rows

(a) the whole shared sample (sample_2023-01_2024-06) through ``import_path`` (parse + validate + write)
    vs raw ``INSERT INTO t SELECT * FROM <Arrow table>`` of the same rows;
(b) N synthetic 1m OHLCV rows through ``Store.write_bars`` vs the raw insert of the same rows
    (goal: within 2x of raw and >= 3M rows/s);
(c) idempotent re-import of the same 1,000,000 rows (goal < 1 s; row count unchanged);
(d) ``read_bars(resample='1h')`` of one 1m series among all N rows (goal < 50 ms), checked equal to a
    pandas resample of the same rows.

The raw baseline is the one place outside store.py that uses duckdb directly: it IS the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hedge_core.data.importers import import_path, parse_path  # noqa: E402
from hedge_core.data.shared import SAMPLE, shared_data_dir  # noqa: E402
from hedge_core.store import Store  # noqa: E402

RAW_DDL = ("CREATE TABLE t (series_id INTEGER, ts TIMESTAMPTZ, open DOUBLE, high DOUBLE, low DOUBLE, "
           "close DOUBLE, volume DOUBLE)")


def synthetic_1m(n: int, seed: int, start: str = "2020-01-01T00:00Z") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 30_000.0 * np.exp(np.cumsum(rng.normal(0, 0.0008, n)))
    open_ = np.concatenate([[30_000.0], close[:-1]])
    wick = np.abs(rng.normal(0, 0.0004, (2, n)))
    idx = pd.DatetimeIndex(pd.Timestamp(start) + pd.to_timedelta(np.arange(n), unit="min"), name="ts").as_unit("us")
    return pd.DataFrame({"open": open_, "high": np.maximum(open_, close) * (1 + wick[0]),
                         "low": np.minimum(open_, close) * (1 - wick[1]), "close": close,
                         "volume": rng.gamma(2.0, 5.0, n)}, index=idx)


def arrow_of(frames: list[pd.DataFrame]) -> pa.Table:
    parts = []
    for sid, df in enumerate(frames, start=1):
        parts.append(pa.table({"series_id": pa.array(np.full(len(df), sid, dtype=np.int32)),
                               "ts": pa.array(df.index), **{c: pa.array(df[c].to_numpy()) for c in
                                                           ("open", "high", "low", "close", "volume")}}))
    return pa.concat_tables(parts)


def raw_insert(path: Path, table: pa.Table) -> float:
    """Seconds for INSERT INTO t SELECT * FROM <registered Arrow table> into a bare table."""
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone='UTC'")
        con.execute(RAW_DDL)
        con.register("src", table)
        t0 = time.perf_counter()
        con.execute("INSERT INTO t SELECT * FROM src")
        dt = time.perf_counter() - t0
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == table.num_rows
        return dt
    finally:
        con.close()


def line(label: str, rows: int, secs: float, base: float | None = None, goal: str = "") -> None:
    ratio = f"  {secs / base:5.2f}x raw" if base else ""
    print(f"{label:<58} {rows:>10,d} rows {secs * 1000:9.1f} ms {rows / secs / 1e6:7.2f} M rows/s{ratio}"
          f"{'  (' + goal + ')' if goal else ''}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="500,000 rows instead of 5,000,000")
    args = ap.parse_args()
    per_series = 100_000 if args.quick else 1_000_000
    n_series = 5
    tmp = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    print(f"duckdb {duckdb.__version__}, pandas {pd.__version__}; files in {tmp}")

    # (a) the shared sample through the importer
    shared = shared_data_dir()
    if shared is None:
        print("(a) skipped: ../shared/data is absent")
    else:
        folder = shared / SAMPLE
        st = Store(tmp / "a.duckdb")
        t0 = time.perf_counter()
        summary = import_path(st, folder)
        dt = time.perf_counter() - t0
        rows = int(summary["rows"].sum())
        frames, _ = parse_path(folder)
        t0 = time.perf_counter()
        parse_path(folder)
        dt_parse = time.perf_counter() - t0
        bars = [df for k, df in frames.items() if k.kind != "funding"]
        base = raw_insert(tmp / "a_raw.duckdb", arrow_of(bars))
        n_bars = sum(len(b) for b in bars)
        st.close()
        line("(a) sample via import_path (parse+validate+write)", rows, dt)
        line("    of which parse+validate only", rows, dt_parse)
        line("    raw Arrow insert of the sample's bar rows (baseline)", n_bars, base)
        print(f"    import_path / raw insert (per row): {(dt / rows) / (base / n_bars):.1f}x")

    # (b) N synthetic 1m rows through the store's write path vs raw insert of the same rows
    frames_b = [synthetic_1m(per_series, seed=i) for i in range(n_series)]
    n = per_series * n_series
    base = raw_insert(tmp / "b_raw.duckdb", arrow_of(frames_b))
    st = Store(tmp / "b.duckdb")
    t0 = time.perf_counter()
    with st.transaction():
        for i, df in enumerate(frames_b):
            st.write_bars(df, venue="bench", symbol=f"S{i}/USDT", kind="spot", timeframe="1m")
    dt = time.perf_counter() - t0
    line("raw INSERT INTO t SELECT * FROM arrow (baseline)", n, base)
    line("(b) Store.write_bars, 5 series in one transaction", n, dt, base, "goal <= 2x raw, >= 3 M rows/s")

    # (c) idempotent re-import of the same 1,000,000 (or --quick 100,000) rows
    before = st.series()
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        st.write_bars(frames_b[0], venue="bench", symbol="S0/USDT", kind="spot", timeframe="1m")
        times.append(time.perf_counter() - t0)
    after = st.series()
    assert before.equals(after), "re-import changed the series table"
    line("(c) re-import same rows (idempotent), best of 2", per_series, min(times), None, "goal < 1 s")
    print(f"    rows before {int(before['rows'].sum()):,d}  after {int(after['rows'].sum()):,d}")

    # (d) resample 1m -> 1h of one series among all rows, checked against pandas
    got = st.read_bars("bench", "S2/USDT", "spot", "1m", resample="1h")
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        st.read_bars("bench", "S2/USDT", "spot", "1m", resample="1h")
        times.append(time.perf_counter() - t0)
    src = frames_b[2]
    t0 = time.perf_counter()
    ref = src.resample("1h", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    dt_pd = time.perf_counter() - t0
    ref.index = ref.index.as_unit(got.index.unit)
    pd.testing.assert_frame_equal(got[["open", "high", "low", "close"]], ref[["open", "high", "low", "close"]],
                                  check_freq=False, check_exact=True)
    np.testing.assert_allclose(got["volume"].to_numpy(), ref["volume"].to_numpy(), rtol=1e-12)
    med = statistics.median(times)
    print(f"(d) read_bars(resample='1h') of {per_series:,d} 1m rows among {n:,d}: median {med * 1000:.1f} ms "
          f"(goal < 50 ms); pandas resample of the same rows in memory {dt_pd * 1000:.1f} ms "
          f"({med / dt_pd:.1f}x); equal to pandas: yes ({len(got):,d} buckets)")
    st.close()


if __name__ == "__main__":
    main()
