"""`hedge data ...` through typer's CliRunner (offline: the exchange is a fake)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hedge_core.data.cli import data_app
from hedge_core.data.shared import SAMPLE
from hedge_core.store import Store
from tests.support.fake_exchange import NOW, FakeExchange

runner = CliRunner()


def run(*args: str) -> object:
    return runner.invoke(data_app, list(args))


def test_seed_demo_status_json_and_quality(tmp_path: Path) -> None:
    db = tmp_path / "h.duckdb"
    r = run("seed", "--demo", "--days", "3", "--db", str(db))
    assert r.exit_code == 0, r.output
    assert "SYNTHETIC" in r.output
    r = run("status", "--json", "--db", str(db))
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.output.strip().splitlines()]
    assert len(lines) == 8
    assert set(lines[0]) == {"venue", "symbol", "kind", "timeframe", "first", "last", "rows", "gaps"}
    perp = next(x for x in lines if x["symbol"] == "BTC/USDT:USDT" and x["kind"] == "perp")
    assert perp == {"venue": "demo", "symbol": "BTC/USDT:USDT", "kind": "perp", "timeframe": "1h",
                    "first": "2024-01-01T00:00:00+00:00", "last": "2024-01-03T23:00:00+00:00", "rows": 72, "gaps": 0}
    r = run("status", "--db", str(db))
    assert r.exit_code == 0 and "ETH/USDT:USDT" in r.output
    r = run("quality", "--db", str(db))
    assert r.exit_code == 0 and "coverage" in r.output
    r = run("quality", "--json", "--db", str(db))
    assert r.exit_code == 0 and len(r.output.strip().splitlines()) == 8
    r = run("seed", "--demo", "--db", str(db))
    assert r.exit_code == 0 and "nothing to do" in r.output


def test_db_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "env.duckdb"
    monkeypatch.setenv("HEDGE_DB", str(db))
    assert run("seed", "--demo", "--days", "2").exit_code == 0
    assert db.exists()


@pytest.mark.shared_data
def test_import_file_and_bad_file(tmp_path: Path, shared_data: Path) -> None:
    db = tmp_path / "h.duckdb"
    r = run("import", str(shared_data / SAMPLE / "binance_BTCUSDT_funding_8h.csv"), "--db", str(db))
    assert r.exit_code == 0, r.output
    assert "BTC/USDT:USDT" in r.output and "1641" in r.output
    bad = tmp_path / "binance_BTCUSDT_spot_1h.csv"
    bad.write_text("ts,open,high,low,close\n2024-01-01T00:00:00Z,1,0.5,0.9,1\n")
    r = run("import", str(bad), "--db", str(db))
    assert r.exit_code == 1
    assert "row 1" in r.output and "'high'" in r.output and "Traceback" not in r.output
    with Store(db) as st:
        assert list(st.series()["kind"]) == ["funding"]


def test_import_generic_table(tmp_path: Path) -> None:
    db = tmp_path / "h.duckdb"
    p = tmp_path / "mine.csv"
    p.write_text("time,o,h,l,c\n1704067200000,1,2,0.5,1.5\n1704070800000,1.5,2,1,1.8\n")
    r = run("import", str(p), "--db", str(db), "--venue", "kraken", "--kind", "spot", "--symbol", "XBTUSDT",
            "--timeframe", "1h", "--map", "ts=time,open=o,high=h,low=l,close=c")
    assert r.exit_code == 0, r.output
    with Store(db) as st:
        got = st.read_bars("kraken", "XBT/USDT", "spot", "1h")
    assert got["close"].tolist() == [1.5, 1.8]


def test_download_with_fake_exchange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hedge_core.data.download as dl

    ex = FakeExchange(NOW)
    monkeypatch.setattr(dl, "make_exchange", lambda venue: ex)
    db = tmp_path / "h.duckdb"
    args = ("download", "--db", str(db), "-s", "BTC/USDT", "-k", "perp", "-k", "funding",
            "--since", "2024-01-01T00:00Z", "--no-progress", "--no-instruments")  # offline: bars only
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert "1500" in r.output
    n_calls = len(ex.calls)
    r = run(*args)  # nothing missing: bars are not requested again
    assert r.exit_code == 0
    assert [c for c in ex.calls[n_calls:] if c[0] == "ohlcv"] == []
    r = run("download", "--db", str(db), "--since", "2024-01-01")
    assert r.exit_code == 1 and "timezone" in r.output


def test_download_also_stores_the_instruments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``hedge data download`` reads the symbols' instruments from the venue (here the Binance simulator
    through real ccxt) and stores them; ``hedge data instruments --list`` shows them."""
    import hedge_core.data.download as dl
    import hedge_core.data.instruments_venue as iv
    from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter
    from hedge_core.exchange.credentials import Credentials
    from hedge_core.exchange.governor import RateGovernor
    from tests.support.binance_sim import HOSTS
    from tests.support.live_env import TEST_KEY, TEST_SECRET
    from tests.support.redirect import sim_adapter
    from tests.support.sim_thread import SimThread

    th = SimThread()
    try:
        def adapter(venue: str) -> CcxtLiveAdapter:  # its own redirect session, closed with it
            return sim_adapter(venue, Credentials(venue, TEST_KEY, TEST_SECRET, source="test"),
                               {h: th.server.port for h in HOSTS}, th.server.client_ssl, enable_rate_limit=False,
                               governor=RateGovernor(venue, "dl-test"))

        monkeypatch.setattr(dl, "make_exchange", lambda venue: FakeExchange(NOW))
        monkeypatch.setattr(iv, "_default_adapter", adapter)
        db = tmp_path / "h.duckdb"
        r = run("download", "--db", str(db), "-s", "BTC/USDT", "-k", "perp", "--since", "2024-01-01T00:00Z",
                "--no-progress")
        assert r.exit_code == 0, r.output
        assert "instruments read from binance" in r.output and "note:" not in r.output
        with Store(db) as st:
            spot, perp = st.read_instruments("binance")
        assert (spot.symbol, perp.symbol) == ("BTC/USDT", "BTC/USDT:USDT")
        assert perp.tick_size == 0.1 and len(perp.brackets) == 2  # the simulator's exchangeInfo and brackets
        r = run("instruments", "--db", str(db), "--list")
        assert r.exit_code == 0 and "BTC/USDT:USDT" in r.output and "binance load_markets + fetch_leverage_tiers" in r.output
    finally:
        th.close()


def test_instruments_command_errors_are_one_line(tmp_path: Path) -> None:
    r = run("instruments", "--db", str(tmp_path / "x.duckdb"), "--venue", "nope")
    assert r.exit_code == 1 and r.output.startswith("error: venue='nope'") and "Traceback" not in r.output
    r = run("instruments", "--db", str(tmp_path / "missing.duckdb"), "--list")
    assert r.exit_code == 1 and "no database" in r.output
