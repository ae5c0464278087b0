"""The DuckDB store: round trips, idempotent upserts, SQL resampling, gaps, bad input, processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from hedge_core.errors import DataError, InvalidInput
from hedge_core.store import MissingSeries, Store, default_db_path, timeframe_seconds


def _bars(n: int, start: str = "2024-01-01", freq: str = "1min", seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=n, freq=freq, tz="UTC", name="ts")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.random(n) * 1e-3)
    low = np.minimum(open_, close) * (1 - rng.random(n) * 1e-3)
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": rng.random(n) * 10}, index=idx)


@pytest.fixture()
def store(tmp_path) -> Store:
    s = Store(tmp_path / "t.duckdb")
    yield s
    s.close()


def test_round_trip_exact_and_gap_preserved(store: Store) -> None:
    df = _bars(500, freq="1h").drop(pd.Timestamp("2024-01-03 05:00", tz="UTC"))
    store.write_bars(df, venue="binance", symbol="BTC/USDT", kind="spot", timeframe="1h")
    out = store.read_bars("binance", "BTC/USDT", "spot", "1h")
    pd.testing.assert_frame_equal(out, df, check_freq=False, check_index_type=False)
    assert str(out.index.tz) == "UTC"
    row = store.series().iloc[0]
    assert (row["rows"], row["gaps"]) == (499, 1)


def test_idempotent_reimport_and_correction(store: Store) -> None:
    df = _bars(1000)
    for _ in range(2):
        store.write_bars(df, venue="binance", symbol="BTC/USDT", kind="spot", timeframe="1m")
    assert store.series().iloc[0]["rows"] == 1000
    corrected = df.iloc[:10].copy()
    corrected["close"] += 1.0
    store.write_bars(corrected, venue="binance", symbol="BTC/USDT", kind="spot", timeframe="1m")
    out = store.read_bars("binance", "BTC/USDT", "spot", "1m")
    assert len(out) == 1000
    np.testing.assert_array_equal(out["close"].to_numpy()[:10], corrected["close"].to_numpy())


def test_resample_in_sql_equals_pandas(store: Store) -> None:
    df = _bars(3 * 1440 + 17).drop(pd.date_range("2024-01-02 03:10", periods=45, freq="1min", tz="UTC"))
    store.write_bars(df, venue="binance", symbol="BTC/USDT", kind="spot", timeframe="1m")
    out = store.read_bars("binance", "BTC/USDT", "spot", "1m", resample="1h")
    ref = df.resample("1h", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}).dropna(subset=["open"])
    pd.testing.assert_frame_equal(out, ref, check_freq=False, check_index_type=False, rtol=1e-12)


def test_window_is_half_open(store: Store) -> None:
    store.write_bars(_bars(48, freq="1h"), venue="v", symbol="BTC/USDT", kind="spot", timeframe="1h")
    out = store.read_bars("v", "BTC/USDT", "spot", "1h", "2024-01-01T10:00Z", "2024-01-01T12:00Z")
    assert list(out.index.hour) == [10, 11]


def test_funding_round_trip_and_last_ts(store: Store) -> None:
    idx = pd.date_range("2024-01-01", periods=9, freq="8h", tz="UTC", name="ts")
    f = pd.DataFrame({"funding_rate": np.linspace(-1e-4, 3e-4, 9)}, index=idx)
    store.write_funding(f, venue="binance", symbol="BTC/USDT:USDT")
    store.write_funding(f, venue="binance", symbol="BTC/USDT:USDT")
    out = store.read_funding("binance", "BTC/USDT:USDT")
    np.testing.assert_array_equal(out["funding_rate"].to_numpy(), f["funding_rate"].to_numpy())
    assert (out["interval_hours"] == 8.0).all()
    assert store.last_ts("binance", "BTC/USDT:USDT", "funding") == idx[-1]
    s = store.series()
    assert s.iloc[0]["kind"] == "funding" and s.iloc[0]["timeframe"] == "8h" and s.iloc[0]["gaps"] == 0


def test_bad_input_rejected_and_nothing_written(store: Store) -> None:
    df = _bars(10)
    with pytest.raises(DataError, match="no timezone"):
        store.write_bars(df.tz_localize(None), venue="v", symbol="BTC/USDT", kind="spot", timeframe="1m")
    with pytest.raises(DataError, match="duplicate timestamp"):
        store.write_bars(pd.concat([df, df.iloc[:1]]), venue="v", symbol="BTC/USDT", kind="spot", timeframe="1m")
    with pytest.raises(InvalidInput, match="kind='candles'"):
        store.write_bars(df, venue="v", symbol="BTC/USDT", kind="candles", timeframe="1m")
    with pytest.raises(InvalidInput, match="timeframe"):
        store.write_bars(df, venue="v", symbol="BTC/USDT", kind="spot", timeframe="1 minute")
    with pytest.raises(DataError, match="missing columns"):
        store.write_bars(df.drop(columns="close"), venue="v", symbol="BTC/USDT", kind="spot", timeframe="1m")
    assert store.series().empty


def test_transaction_rolls_back_everything(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.write_bars(_bars(5), venue="v", symbol="BTC/USDT", kind="spot", timeframe="1m")
            raise RuntimeError("boom")
    assert store.series().empty


def test_missing_series_names_what_exists(store: Store) -> None:
    store.write_bars(_bars(5), venue="v", symbol="BTC/USDT", kind="spot", timeframe="1m")
    with pytest.raises(MissingSeries, match="v/BTC/USDT/spot/1m"):
        store.read_bars("v", "ETH/USDT", "spot", "1m")
    with pytest.raises(InvalidInput, match="multiple"):
        store.read_bars("v", "BTC/USDT", "spot", "1m", resample="90s")


def test_ledger_tables_upsert_on_natural_key(store: Store) -> None:
    t = pd.Timestamp("2024-01-01", tz="UTC")
    fills = pd.DataFrame({"hedge_id": ["h1", "h1"], "trade_id": ["1", "2"], "qty": [1.0, 2.0],
                          "price": [100.0, 101.0], "ts": [t, t]})
    store.write_table("fills", fills)
    store.write_table("fills", fills.assign(qty=[1.0, 2.5]))
    out = store.read_table("fills", hedge_id="h1")
    assert out["qty"].tolist() == [1.0, 2.5]
    store.write_table("param_sets", pd.DataFrame({
        "name": ["carry"], "version": [1], "strategy": ["carry"], "status": ["draft"],
        "params": [{"min_funding_rate": 1e-4}], "created_at": [t]}))
    assert store.read_table("param_sets", name="carry")["params"].iloc[0] == '{"min_funding_rate": 0.0001}'
    with pytest.raises(DataError, match="unknown columns"):
        store.write_table("fills", fills.assign(colour="red"))
    with pytest.raises(DataError, match="naive"):
        store.write_table("fills", fills.assign(ts=[t.tz_localize(None)] * 2))
    with pytest.raises(DataError, match="duplicate key"):
        store.write_table("fills", pd.concat([fills, fills]))


def test_migrations_recorded_once(tmp_path) -> None:
    path = tmp_path / "m.duckdb"
    Store(path).close()
    s = Store(path)
    assert s.schema_version() == 8  # 5: loan_events, 6: exit_marks, 7: book_marks, 8: exit_marks.day
    s.close()


def test_a_version_1_database_is_upgraded_in_place(tmp_path) -> None:
    """A file written before migration 2 keeps its orders and gains the ref_price column (NULL)."""
    import duckdb

    from hedge_core.store_schema import MIGRATIONS

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER, note VARCHAR, applied_at TIMESTAMPTZ DEFAULT now())")
    for sql in MIGRATIONS[0][2]:
        con.execute(sql)
    con.execute("INSERT INTO schema_version (version, note) VALUES (1, 'v1')")
    con.execute("INSERT INTO orders (hedge_id, client_order_id, qty) VALUES ('h', 'c1', 0.5)")
    con.close()
    with Store(path) as s:
        assert s.schema_version() == 8
        assert len(s.read_table("book_marks")) == 0  # migration 7
        assert {"day", "day_start_pnl"} <= set(s.read_table("exit_marks").columns)  # migration 8
        assert len(s.read_table("loan_events")) == 0  # migration 5: the table exists, empty
        assert len(s.read_table("exit_marks")) == 0  # migration 6
        o = s.read_table("orders", hedge_id="h")
        assert list(o["client_order_id"]) == ["c1"] and o["ref_price"].isna().all() and o["reason"].isna().all()
        assert "expected" in s.read_table("funding_payments").columns  # migration 3
        s.write_table("orders", pd.DataFrame([{"hedge_id": "h", "client_order_id": "c2", "qty": 1.0,
                                               "ref_price": 30_000.0}]))
        assert s.read_table("orders", hedge_id="h").set_index("client_order_id")["ref_price"]["c2"] == 30_000.0


def test_default_path_from_env(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HEDGE_DB", str(tmp_path / "x.duckdb"))
    assert default_db_path() == tmp_path / "x.duckdb"
    monkeypatch.delenv("HEDGE_DB")
    assert default_db_path().name == "hedge.duckdb" and default_db_path().parent.name == "data"


def test_timeframe_seconds() -> None:
    assert timeframe_seconds("1m") == 60 and timeframe_seconds("8h") == 28800
    with pytest.raises(InvalidInput):
        timeframe_seconds("0h")


def test_brief_holders_in_separate_processes_never_see_a_lock_error(tmp_path) -> None:
    """Two processes writing and reading through hold=False stores wait for each other, no lock error."""
    path = tmp_path / "p.duckdb"
    Store(path).close()
    script = textwrap.dedent(f"""
        import numpy as np, pandas as pd, sys
        from hedge_core.store import Store
        st = Store({str(path)!r}, hold=False)
        me = int(sys.argv[1])
        for i in range(15):
            idx = pd.date_range("2024-01-01", periods=200, freq="1min", tz="UTC") + pd.Timedelta(days=i)
            df = pd.DataFrame({{c: np.full(200, 100.0 + me) for c in ("open", "high", "low", "close")}}, index=idx)
            st.write_bars(df, venue="p%d" % me, symbol="BTC/USDT", kind="spot", timeframe="1m")
            st.series()
        print("ok")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(k)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert out.strip() == "ok"
    s = Store(path)
    assert sorted(s.series()["rows"].tolist()) == [3000, 3000]


def test_append_fast_path_and_backfill_keep_keys_unique(store: Store) -> None:
    """Newer rows take the plain-INSERT path, older/overlapping rows the MERGE path: same result."""
    df = _bars(600)
    store.write_bars(df.iloc[300:], venue="v", symbol="BTC/USDT", kind="spot", timeframe="1m")  # append
    store.write_bars(df.iloc[:350], venue="v", symbol="BTC/USDT", kind="spot", timeframe="1m")  # backfill+overlap
    store.write_bars(df.iloc[590:], venue="v", symbol="BTC/USDT", kind="spot", timeframe="1m")  # overlap at end
    out = store.read_bars("v", "BTC/USDT", "spot", "1m")
    pd.testing.assert_frame_equal(out, df, check_freq=False, check_index_type=False)


def _random_fills(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.sort(rng.integers(0, 3 * 86400, n)), unit="s")
    return pd.DataFrame({
        "hedge_id": rng.choice(["h1", "h2"], n), "trade_id": [f"t{i}" for i in range(n)],
        "leg": rng.choice(["spot", "perp"], n), "side": rng.choice(["buy", "sell"], n),
        "qty": rng.random(n), "price": 100 + rng.random(n), "fee": rng.random(n) * 0.01, "ts": ts})


def test_fill_and_funding_flows_equal_pandas(store: Store) -> None:
    fills = _random_fills(500)
    store.write_table("fills", fills)
    f = fills.assign(sq=np.where(fills["side"] == "sell", -fills["qty"], fills["qty"]))
    f["cash"] = -f["sq"] * f["price"]
    f["bucket"] = f["ts"].dt.floor("6h")
    ref = (f.sort_values("ts").groupby(["hedge_id", "leg", "bucket"])
           .agg(n=("qty", "size"), qty=("sq", "sum"), cash=("cash", "sum"), fees=("fee", "sum"),
                last_price=("price", "last")).reset_index())
    out = store.fill_flows(every="6h")
    np.testing.assert_array_equal(out["ts"].to_numpy(), ref["bucket"].to_numpy())
    for c in ("n", "qty", "cash", "fees", "last_price"):
        np.testing.assert_allclose(out[c].to_numpy(dtype=float), ref[c].to_numpy(dtype=float), rtol=1e-12)
    totals = store.fill_flows(hedge_id="h1")
    assert set(totals["leg"]) == {"spot", "perp"} and (totals["hedge_id"] == "h1").all()
    np.testing.assert_allclose(totals["qty"].sum(), f[f.hedge_id == "h1"]["sq"].sum(), rtol=1e-12)

    pay = pd.DataFrame({"hedge_id": "h1", "venue": "binance", "symbol": "BTC/USDT:USDT",
                        "ts": pd.date_range("2024-01-01", periods=9, freq="8h", tz="UTC"),
                        "amount": np.arange(9.0) - 4})
    store.write_table("funding_payments", pay)
    daily = store.funding_flows("h1", every="1d")
    assert daily["amount"].tolist() == [-9.0, 0.0, 9.0] and daily["n"].tolist() == [3, 3, 3]


def test_latest_rows_and_counts(store: Store) -> None:
    fills = _random_fills(50)
    store.write_table("fills", fills)
    last = store.read_table("fills", latest=5)
    assert last["ts"].is_monotonic_increasing and len(last) == 5
    assert last["ts"].iloc[-1] == fills["ts"].max()
    counts = store.table_counts("fills")
    assert dict(zip(counts["hedge_id"], counts["rows"])) == fills["hedge_id"].value_counts().to_dict()
    with pytest.raises(InvalidInput, match="colour"):
        store.table_counts("fills", by="colour")
    with pytest.raises(InvalidInput, match="latest"):
        store.read_table("instruments", latest=3)
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    store.write_table("orders", pd.DataFrame({"hedge_id": "h", "client_order_id": [f"c{i}" for i in range(6)],
                                              "intent_ts": [t0 + pd.Timedelta(minutes=5 - i) for i in range(6)]}))
    assert store.read_table("orders", latest=2)["client_order_id"].tolist() == ["c1", "c0"]


def test_checkpoint_makes_a_file_copy_complete(tmp_path) -> None:
    import shutil

    s = Store(tmp_path / "live.duckdb")
    s.write_bars(_bars(100), venue="v", symbol="BTC/USDT", kind="spot", timeframe="1m")
    s.checkpoint()
    shutil.copyfile(tmp_path / "live.duckdb", tmp_path / "copy.duckdb")
    copy = Store(tmp_path / "copy.duckdb", read_only=True)
    assert copy.series().iloc[0]["rows"] == 100
    copy.close()
    s.close()
