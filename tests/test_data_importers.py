"""Importers: exact round trip of the shared sample, every file layout, and all-or-nothing on bad input."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hedge_core.data.importers import import_path, import_table, parse_path
from hedge_core.data.shared import SAMPLE
from hedge_core.data.symbols import unified_symbol
from hedge_core.errors import DataError
from hedge_core.store import Store


@pytest.fixture()
def store() -> Store:
    st = Store(":memory:")
    yield st
    st.close()


def snapshot(st: Store) -> dict:
    """Everything market-data the store holds, to prove a failed import changed nothing."""
    out = {"series": st.series()}
    for s in st.series().itertuples(index=False):
        out[(s.venue, s.symbol, s.kind, s.timeframe)] = (
            st.read_funding(s.venue, s.symbol) if s.kind == "funding"
            else st.read_bars(s.venue, s.symbol, s.kind, s.timeframe))
    return out


def assert_same_snapshot(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        pd.testing.assert_frame_equal(a[k], b[k])


def read_expected(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path)
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df.set_index("ts").astype("float64")


# ---- the shared sample round-trips exactly ------------------------------------------------------


@pytest.mark.shared_data
def test_sample_round_trips_exactly(store: Store, shared_data: Path) -> None:
    folder = shared_data / SAMPLE
    summary = import_path(store, folder)
    checked = 0
    for f in sorted(folder.glob("binance_*.csv")):
        venue, pair, kind, tf = f.stem.split("_")
        expected = read_expected(f)
        if kind == "funding":
            got = store.read_funding(venue, unified_symbol(pair, kind))
            assert (got["interval_hours"] == 8.0).all()
            got = got[["funding_rate"]]
        else:
            got = store.read_bars(venue, unified_symbol(pair, kind), kind, tf)
            if "volume" not in expected.columns:  # mark files have no volume: stored as NaN
                assert got["volume"].isna().all()
                got = got.drop(columns="volume")
        # exact: same float bits, same timestamps (gaps preserved, nothing filled)
        assert got.index.equals(expected.index.as_unit(got.index.unit))
        np.testing.assert_array_equal(got.to_numpy(), expected[got.columns].to_numpy())
        row = summary[(summary.symbol == unified_symbol(pair, kind)) & (summary.kind == kind)
                      & (summary.venue == venue)]
        assert int(row["rows"].iloc[0]) == len(expected)
        checked += 1
    assert checked == 8
    # the known spot gap survives
    spot = store.read_bars("binance", "BTC/USDT", "spot", "1h")
    assert pd.Timestamp("2023-03-24T13:00Z") not in spot.index
    assert pd.Timestamp("2023-03-24T12:00Z") in spot.index

    cross = pd.read_csv(folder / "crossvenue_funding_8h_binance_bybit_okx.csv")
    sel = cross[(cross.venue == "okx") & (cross.symbol == "ETHUSD_PERP(coin-m)")]
    got = store.read_funding("okx", "ETH/USD:ETH")
    np.testing.assert_array_equal(got["funding_rate"].to_numpy(), sel["funding_rate"].to_numpy())
    assert list(got.index) == list(pd.to_datetime(sel["ts"], utc=True))


@pytest.mark.shared_data
def test_reimport_is_idempotent(store: Store, shared_data: Path) -> None:
    folder = shared_data / SAMPLE
    import_path(store, folder / "binance_ETHUSDT_perp_1h.csv")
    before = snapshot(store)
    import_path(store, folder / "binance_ETHUSDT_perp_1h.csv")
    assert_same_snapshot(before, snapshot(store))


@pytest.mark.shared_data
def test_freqtrade_feather(store: Store, shared_data: Path) -> None:
    folder = shared_data / "formats" / "freqtrade"
    with pytest.raises(DataError, match="venue"):
        import_path(store, folder)  # the folder does not say which exchange
    assert store.series().empty
    import_path(store, folder, venue="binance")
    raw = pd.read_feather(folder / "XRP_USDT_USDT-5m-futures.feather").set_index("date")
    got = store.read_bars("binance", "XRP/USDT:USDT", "perp", "5m")
    np.testing.assert_array_equal(got.to_numpy(), raw[got.columns].to_numpy())
    assert (got.index == raw.index).all()
    mark = store.read_bars("binance", "XRP/USDT:USDT", "mark", "1h")
    assert len(mark) == 100 and mark["volume"].isna().all()
    fr_raw = pd.read_feather(folder / "XRP_USDT_USDT-8h-funding_rate.feather")
    fr = store.read_funding("binance", "XRP/USDT:USDT")
    np.testing.assert_array_equal(fr["funding_rate"].to_numpy(), fr_raw["open"].to_numpy())
    # freqtrade stamps funding a few ms late; stored on the whole second
    assert (fr.index == fr_raw["date"].dt.floor("s")).all()
    assert (fr.index.hour % 8 == 0).all() and (fr.index.second == 0).all()


# ---- Binance bulk files -----------------------------------------------------------------------


def kline_rows(start: str, n: int, *, unit: str = "ms", price: float = 100.0) -> list[list]:
    t0 = pd.Timestamp(start)
    scale = 1000 if unit == "ms" else 1_000_000
    rows = []
    for i in range(n):
        ot = int((t0 + pd.Timedelta(hours=i)).timestamp()) * scale
        p = price + i
        rows.append([ot, p, p + 2, p - 1, p + 1, p - 89.5, ot + 3600 * scale - 1, 1000.0, 7, 5.0, 500.0, 0])
    return rows


def write_bulk(path: Path, rows: list[list], *, header: str | None, zipped: bool = True) -> Path:
    text = (header + "\n" if header else "") + "\n".join(",".join(str(v) for v in r) for r in rows) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    if zipped:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr(path.with_suffix(".csv").name, text)
    else:
        path.write_text(text)
    return path


KLINE_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
                "taker_buy_quote_volume,ignore")


def test_binance_bulk_layout(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "data"
    um = root / "futures" / "um" / "monthly" / "klines" / "BTCUSDT" / "1h"
    write_bulk(um / "BTCUSDT-1h-2024-01.zip", kline_rows("2024-01-31T22:00Z", 2), header=KLINE_HEADER)
    # the next month's file overlaps by one identical bar (dropped silently) and has no header
    write_bulk(um / "BTCUSDT-1h-2024-02.zip", kline_rows("2024-01-31T23:00Z", 3, price=101.0), header=None)
    mark = root / "futures" / "um" / "monthly" / "markPriceKlines" / "BTCUSDT" / "1h"
    write_bulk(mark / "BTCUSDT-1h-2024-01.csv", kline_rows("2024-01-01T00:00Z", 4), header=None, zipped=False)
    spot = root / "spot" / "monthly" / "klines" / "BTCUSDT" / "1h"
    write_bulk(spot / "BTCUSDT-1h-2025-01.zip", kline_rows("2025-01-01T00:00Z", 3, unit="us"), header=None)
    fund = root / "futures" / "um" / "monthly" / "fundingRate" / "BTCUSDT"
    ft = [int(pd.Timestamp(f"2024-01-01T{h:02d}:00Z").timestamp() * 1000) + 3 for h in (0, 8, 16)]
    write_bulk(fund / "BTCUSDT-fundingRate-2024-01.zip",
               [[ft[0], 8, 0.0001], [ft[1], 8, -0.00025], [ft[2], 4, 0.0003]],
               header="calc_time,funding_interval_hours,last_funding_rate")

    summary = import_path(store, root)
    perp = store.read_bars("binance", "BTC/USDT:USDT", "perp", "1h")
    assert list(perp.index) == list(pd.date_range("2024-01-31T22:00Z", periods=4, freq="h"))
    assert perp["close"].tolist() == [101.0, 102.0, 103.0, 104.0]
    assert perp["volume"].iloc[0] == 10.5
    m = store.read_bars("binance", "BTC/USDT:USDT", "mark", "1h")
    assert len(m) == 4 and m["volume"].isna().all()
    s = store.read_bars("binance", "BTC/USDT", "spot", "1h")  # microsecond open times detected
    assert s.index[0] == pd.Timestamp("2025-01-01T00:00Z") and len(s) == 3
    f = store.read_funding("binance", "BTC/USDT:USDT")
    assert f["funding_rate"].tolist() == [0.0001, -0.00025, 0.0003]
    assert f["interval_hours"].tolist() == [8.0, 8.0, 4.0]
    assert f.index[1] == pd.Timestamp("2024-01-01T08:00Z")
    assert set(summary["kind"]) == {"perp", "mark", "spot", "funding"}


def test_bulk_conflict_across_files_names_both(store: Store, tmp_path: Path) -> None:
    um = tmp_path / "futures" / "um" / "daily" / "klines"
    write_bulk(um / "BTCUSDT-1h-2024-01-01.zip", kline_rows("2024-01-01T00:00Z", 2), header=None)
    write_bulk(um / "BTCUSDT-1h-2024-01-02.zip", kline_rows("2024-01-01T01:00Z", 2, price=150.0), header=None)
    with pytest.raises(DataError) as e:
        import_path(store, tmp_path)
    msg = str(e.value)
    assert "BTCUSDT-1h-2024-01-01.zip" in msg and "BTCUSDT-1h-2024-01-02.zip" in msg
    assert e.value.column == "open" and e.value.row == 1
    assert store.series().empty


def test_bulk_kind_needed_outside_site_layout(store: Store, tmp_path: Path) -> None:
    p = write_bulk(tmp_path / "BTCUSDT-1h-2024-01.zip", kline_rows("2024-01-01T00:00Z", 2), header=None)
    with pytest.raises(DataError, match="kind="):
        import_path(store, p)
    import_path(store, p, kind="perp")
    assert len(store.read_bars("binance", "BTC/USDT:USDT", "perp", "1h")) == 2


# ---- generic tables ---------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["ms", "s"])
def test_generic_csv_epoch(store: Store, tmp_path: Path, unit: str) -> None:
    t = pd.date_range("2024-03-01T00:00Z", periods=3, freq="5min")
    epoch = (t - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, unit=unit)
    df = pd.DataFrame({"time": np.asarray(epoch, dtype="int64"), "o": [1.0, 2, 3],
                       "h": [1.5, 2.5, 3.5], "l": [0.5, 1.5, 2.5], "c": [1.2, 2.2, 3.2], "v": [1.0, 2, 3]})
    p = tmp_path / "x.csv"
    df.to_csv(p, index=False)
    import_table(store, p, venue="bybit", symbol="SOLUSDT", kind="perp", timeframe="5m",
                 columns={"ts": "time", "open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"})
    got = store.read_bars("bybit", "SOL/USDT:USDT", "perp", "5m")
    assert list(got.index) == list(t)
    assert got["close"].tolist() == [1.2, 2.2, 3.2]


def test_generic_parquet_iso_and_funding(store: Store, tmp_path: Path) -> None:
    p = tmp_path / "f.parquet"
    pd.DataFrame({"when": ["2024-01-01T00:00:00+00:00", "2024-01-01T01:00:00+00:00"],
                  "rate": [0.0001, 0.0002]}).to_parquet(p)
    import_table(store, p, venue="hyperliquid", symbol="BTC/USDC:USDC", kind="funding",
                 columns={"ts": "when", "funding_rate": "rate"}, interval_hours=1.0)
    got = store.read_funding("hyperliquid", "BTC/USDC:USDC")
    assert got["funding_rate"].tolist() == [0.0001, 0.0002]
    assert got["interval_hours"].tolist() == [1.0, 1.0]


def test_generic_mapping_names_unknown_columns(store: Store, tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("t,o,h,l,c\n2024-01-01T00:00Z,1,2,0.5,1\n")
    with pytest.raises(DataError, match="not in the file") as e:
        import_table(store, p, venue="x", symbol="A/USDT", kind="spot", timeframe="1h",
                     columns={"ts": "time", "open": "o", "high": "h", "low": "l", "close": "c"})
    assert e.value.column == "time"


def test_cross_venue_interval_hours_column(store: Store, tmp_path: Path) -> None:
    p = tmp_path / "crossvenue_funding_test.csv"
    p.write_text("ts,venue,symbol,funding_rate,interval_hours\n"
                 "2024-01-01T00:00:00Z,Bybit,BTC-USDT-PERP,0.0001,1\n"
                 "2024-01-01T01:00:00Z,Bybit,BTC-USDT-PERP,0.0002,\n"
                 "2024-01-01T00:00:00Z,binance,BTCUSD_PERP(coin-m),0.0003,8\n")
    import_path(store, p)
    by = store.read_funding("bybit", "BTC/USDT:USDT")
    assert by["interval_hours"].tolist() == [1.0, 8.0]  # empty => default 8
    assert store.read_funding("binance", "BTC/USD:BTC")["funding_rate"].tolist() == [0.0003]


def test_exact_duplicates_dropped(store: Store, tmp_path: Path) -> None:
    p = tmp_path / "binance_BTCUSDT_spot_1h.csv"
    p.write_text("ts,open,high,low,close,volume\n"
                 "2024-01-01T01:00:00Z,2,3,1,2,5\n"
                 "2024-01-01T00:00:00Z,1,2,0.5,1.5,\n"
                 "2024-01-01T01:00:00Z,2,3,1,2,5\n")
    s = import_path(store, p)
    got = store.read_bars("binance", "BTC/USDT", "spot", "1h")
    assert len(got) == 2 and int(s["rows"].iloc[0]) == 2
    assert np.isnan(got["volume"].iloc[0])


# ---- bad input: clear error naming file, row and column; nothing written ------------------------

GOOD = "2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n2024-01-01T01:00:00Z,1.5,2.5,1,2,11\n"
BAD_CASES = {
    "missing column": ("ts,open,high,close,volume\n2024-01-01T00:00:00Z,1,2,1.5,10\n", None, "low"),
    "unparsable ts": ("ts,open,high,low,close,volume\n" + GOOD + "2024-13-45T00:00:00Z,1,2,0.5,1,1\n", 3, "ts"),
    "negative price": ("ts,open,high,low,close,volume\n" + GOOD + "2024-01-01T02:00:00Z,1,2,-0.5,1,1\n", 3, "low"),
    "zero price": ("ts,open,high,low,close,volume\n2024-01-01T00:00:00Z,0,2,0.5,1,1\n", 1, "open"),
    "high below low": ("ts,open,high,low,close,volume\n" + GOOD + "2024-01-01T02:00:00Z,1,0.9,1.1,1,1\n", 3,
                       "high"),
    "naive ts": ("ts,open,high,low,close,volume\n" + GOOD + "2024-01-01 02:00:00,1,2,0.5,1,1\n", 3, "ts"),
    "mixed tz": ("ts,open,high,low,close,volume\n" + GOOD + "2024-01-01T04:00:00+02:00,1,2,0.5,1,1\n", 3,
                 "ts"),
    "conflicting duplicate": ("ts,open,high,low,close,volume\n" + GOOD + "2024-01-01T01:00:00Z,1.5,2.5,1,2.1,11\n",
                              3, "close"),
    "not a number": ("ts,open,high,low,close,volume\n" + GOOD + "2024-01-01T02:00:00Z,1,2,abc,1,1\n", 3, "low"),
    "off the grid": ("ts,open,high,low,close,volume\n" + GOOD + "2024-01-01T02:30:00Z,1,2,0.5,1,1\n", 3, "ts"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_writes_nothing(store: Store, tmp_path: Path, case: str) -> None:
    text, row, column = BAD_CASES[case]
    # the folder also holds a valid file and the store already holds data: neither may change
    store.write_bars(pd.DataFrame({"open": [5.0], "high": [6.0], "low": [4.0], "close": [5.5], "volume": [1.0]},
                                  index=pd.DatetimeIndex([pd.Timestamp("2023-06-01T00:00Z")], name="ts")),
                     venue="binance", symbol="ETH/USDT", kind="spot", timeframe="1h")
    before = snapshot(store)
    good = tmp_path / "binance_ETHUSDT_spot_1h.csv"
    good.write_text("ts,open,high,low,close,volume\n" + GOOD)
    bad = tmp_path / "binance_BTCUSDT_perp_1h.csv"
    bad.write_text(text)
    with pytest.raises(DataError) as e:
        import_path(store, tmp_path)
    err = e.value
    assert err.file == str(bad)
    assert err.column == column
    assert err.row == row
    if row is not None:
        assert f"data row {row} = line {row + 1}" in str(err)
    assert_same_snapshot(before, snapshot(store))


def test_bad_funding_rate_percent(store: Store, tmp_path: Path) -> None:
    p = tmp_path / "binance_BTCUSDT_funding_8h.csv"
    p.write_text("ts,funding_rate\n2024-01-01T00:00:00Z,0.01\n2024-01-01T08:00:00Z,1.5\n")
    with pytest.raises(DataError, match="percent") as e:
        import_path(store, p)
    assert (e.value.row, e.value.column) == (2, "funding_rate")
    assert store.series().empty


def test_write_failure_inside_transaction_rolls_back(tmp_path: Path) -> None:
    """A store error on the 2nd series of one import must undo the 1st (one transaction)."""

    class Failing(Store):
        calls = 0

        def write_bars(self, df, **kw):  # noqa: ANN001
            Failing.calls += 1
            if Failing.calls == 2:
                raise RuntimeError("disk full")
            return super().write_bars(df, **kw)

    st = Failing(":memory:")
    for pair in ("BTCUSDT", "ETHUSDT"):
        (tmp_path / f"binance_{pair}_spot_1h.csv").write_text("ts,open,high,low,close,volume\n" + GOOD)
    with pytest.raises(RuntimeError):
        import_path(st, tmp_path)
    assert st.series().empty


@pytest.mark.parametrize("raw,kind,expected", [
    ("BTCUSDT", "spot", "BTC/USDT"), ("BTCUSDT", "perp", "BTC/USDT:USDT"), ("ETHUSDT", "mark", "ETH/USDT:USDT"),
    ("BTCUSD_PERP(coin-m)", "funding", "BTC/USD:BTC"), ("ETHUSD_PERP", "perp", "ETH/USD:ETH"),
    ("BTC-USDT-PERP", "funding", "BTC/USDT:USDT"), ("BTC-USDT-SWAP", "perp", "BTC/USDT:USDT"),
    ("1000PEPEUSDC", "perp", "1000PEPE/USDC:USDC"), ("BTCFDUSD", "spot", "BTC/FDUSD"),
    ("BTC/USDT", "funding", "BTC/USDT:USDT"), ("BTC/USDT:USDT", "spot", "BTC/USDT"),
])
def test_symbol_mapping(raw: str, kind: str, expected: str) -> None:
    assert unified_symbol(raw, kind) == expected


def test_unknown_file_named_directly(store: Store, tmp_path: Path) -> None:
    p = tmp_path / "prices.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="import_table"):
        import_path(store, p)
    (tmp_path / "binance_BTCUSDT_spot_1h.csv").write_text("ts,open,high,low,close,volume\n" + GOOD)
    frames, skipped = parse_path(tmp_path)  # in a folder, unknown files are skipped and reported
    assert skipped == [str(p)] and len(frames) == 1


def test_headerless_bulk_error_names_line(store: Store, tmp_path: Path) -> None:
    rows = kline_rows("2024-01-01T00:00Z", 3)
    rows[1][2] = rows[1][3] - 5  # high below low on data row 2
    p = write_bulk(tmp_path / "futures" / "um" / "BTCUSDT-1h-2024-01.zip", rows, header=None)
    with pytest.raises(DataError) as e:
        import_path(store, p)
    assert (e.value.row, e.value.column) == (2, "high")
    assert "data row 2 = line 2 of the file" in str(e.value)  # no header: data row == line
    assert store.series().empty


@pytest.mark.shared_data
def test_whole_shared_folder_merges_consistently(store: Store, shared_data: Path) -> None:
    """Sample + stress windows + cross-venue file + freqtrade in one import: overlaps agree exactly."""
    summary = import_path(store, shared_data, venue="binance")
    assert summary.attrs["skipped"] == [str(shared_data / "README.md")]
    fr = store.read_funding("binance", "BTC/USDT:USDT")
    stress = read_expected(shared_data / "stress_2020-01_2022-12" / "binance_BTCUSDT_funding_8h.csv")
    sample = read_expected(shared_data / SAMPLE / "binance_BTCUSDT_funding_8h.csv")
    assert len(fr) == len(stress) + len(sample)
    np.testing.assert_array_equal(fr["funding_rate"].to_numpy(),
                                  np.concatenate([stress["funding_rate"], sample["funding_rate"]]))
    spot = store.read_bars("binance", "ETH/USDT", "spot", "1h")
    assert spot.index.is_monotonic_increasing and spot.index.is_unique
