"""`hedge scan` through typer's CliRunner on a small store (and the store/loader functions it reads through)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hedge_core.cli import app
from hedge_core.data.scan_inputs import load_scan_inputs
from hedge_core.store import Store

runner = CliRunner()
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def _funding(rate: float, n: int, hours: float = 8.0) -> pd.DataFrame:
    idx = T0 + pd.to_timedelta(np.arange(1, n + 1) * hours, unit="h")
    return pd.DataFrame({"funding_rate": rate, "interval_hours": hours}, index=pd.DatetimeIndex(idx, name="ts"))


@pytest.fixture()
def db(tmp_path) -> str:
    path = tmp_path / "scan.duckdb"
    with Store(path) as st:
        st.write_funding(_funding(0.0001, 90), venue="binance", symbol="BTC/USDT:USDT")  # 10.95 %/yr, 30 days
        st.write_funding(_funding(0.00003, 720, hours=1.0), venue="bybit", symbol="BTC/USDT:USDT")  # 26.28 %/yr
        st.write_funding(_funding(0.0002, 90), venue="okx", symbol="ETH/USDT:USDT")  # 21.9 %/yr
        bars = pd.DataFrame({"open": 40_000.0, "high": 40_000.0, "low": 40_000.0, "close": 40_000.0, "volume": 1.0},
                            index=pd.date_range(T0, periods=24, freq="1h", name="ts"))
        st.write_bars(bars, venue="binance", symbol="BTC/USDT:USDT", kind="perp", timeframe="1h")
    return str(path)


def test_read_funding_all_and_loader(db: str) -> None:
    with Store(db, read_only=True) as st:
        f = st.read_funding_all()
        assert list(f.columns) == ["ts", "venue", "symbol", "funding_rate", "interval_hours"]
        assert len(f) == 90 + 720 + 90 and str(f["ts"].dt.tz) == "UTC"
        assert f.groupby("venue")["interval_hours"].first().to_dict() == {"binance": 8.0, "bybit": 1.0, "okx": 8.0}
        cut = st.read_funding_all(end=T0 + pd.Timedelta(days=1))
        assert cut["ts"].max() < T0 + pd.Timedelta(days=1) and len(cut) == 2 + 23 + 2
        inp = load_scan_inputs(st, as_of=T0 + pd.Timedelta(days=10))
    assert inp.funding["ts"].max() == T0 + pd.Timedelta(days=10)  # as_of itself is known
    assert inp.venues == ["binance", "bybit", "okx"]
    assert set(inp.instruments["source"]) == {"paper defaults"}  # the store has no instrument rows
    assert inp.prices.to_dict("records") == [{"venue": "binance", "symbol": "BTC/USDT:USDT", "price": 40_000.0}]


def test_scan_table_and_json(db: str) -> None:
    res = runner.invoke(app, ["scan", "--db", db, "--min-history", "1"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert "lookback 30 d" in lines[0] and "venues binance, bybit, okx" in lines[0]
    assert "long spot bybit / short perp bybit" in lines[2]  # the best: 26.28 %/yr on bybit's own spot/perp
    res = runner.invoke(app, ["scan", "--db", db, "--json", "--kind", "perp_perp", "--hold", "60"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["hold_days"] == 60 and doc["kinds"] == ["perp_perp"] and len(doc["rows"]) == 1
    r = doc["rows"][0]
    # short bybit 0.00003 x 8760 = 0.2628, long binance 0.1095: spread 0.1533/yr
    # round trip 2 x (0.0005 + 0.0001) + 2 x (0.00055 + 0.0001) = 0.0025; 60 d: 0.1533 x 60/365 - 0.0025
    assert r["direction"] == "long perp binance / short perp bybit"
    assert r["apr_received"] == pytest.approx(0.1533, rel=1e-9)
    assert r["net_carry"] == pytest.approx(0.1533 * 60 / 365 - 0.0025, rel=1e-9)
    assert (r["long_interval_h"], r["short_interval_h"]) == (8.0, 1.0)
    # paper-default limits (perp min 0.001 BTC, min notional 100): 100 / 40000 = 0.0025 -> lot 0.001 -> 0.003
    assert r["min_size_base"] == pytest.approx(0.003) and r["min_size_quote"] == pytest.approx(120.0)
    res = runner.invoke(app, ["scan", "--db", db, "--json", "--venue", "okx", "--top", "1"])
    assert [x["symbol"] for x in json.loads(res.output)["rows"]] == ["ETH/USDT:USDT"]


@pytest.mark.parametrize("args, needle", [
    (["--lookback", "0"], "--lookback='0' is not allowed; expected a number in (0, 3650]"),
    (["--hold", "abc"], "--hold='abc'"),
    (["--top", "0"], "--top=0 is not allowed; expected an integer in [1, 10000]"),
    (["--top", "x"], "--top='x'"),
    (["--min-history", "-2"], "--min-history='-2'"),
    (["--slippage-bps", "500"], "--slippage-bps='500' is not allowed; expected a number in [0, 100]"),
    (["--borrow-apr", "2"], "--borrow-apr='2'"),
    (["--kind", "spot_spot"], "--kind="),
    (["--venue", "kraken"], ("--venue='kraken' is not allowed; expected venues that have funding in the data: "
                             "binance, bybit, okx")),
    (["--as-of", "yesterday-ish"], "--as-of='yesterday-ish'"),
    (["--as-of", "2020-01-01"], ("--as-of='2020-01-01 00:00:00+00:00' is not allowed; expected a time at or after "
                                  "the first stored funding event 2024-01-01 01:00:00+00:00")),
])
def test_bad_input_is_one_line_naming_the_option(db: str, args: list[str], needle: str) -> None:
    res = runner.invoke(app, ["scan", "--db", db, *args])
    assert res.exit_code == 2
    out = res.output.strip()
    assert out.startswith("error: ") and needle in out and len(out.splitlines()) == 1, out


def test_missing_database_and_empty_store(tmp_path) -> None:
    res = runner.invoke(app, ["scan", "--db", str(tmp_path / "none.duckdb")])
    assert res.exit_code == 2 and "no database at" in res.output and not (tmp_path / "none.duckdb").exists()
    Store(tmp_path / "empty.duckdb").close()
    res = runner.invoke(app, ["scan", "--db", str(tmp_path / "empty.duckdb")])
    assert res.exit_code == 2 and "funding=" in res.output and "hedge data import" in res.output
