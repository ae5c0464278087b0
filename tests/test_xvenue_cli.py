"""The cross-venue carry through `hedge backtest`, `hedge sweep` and the parameter store (`hedge params`).

A demo store holds prices of one venue (``demo``) and the funding of two perp venues (okx pays 0.0003
per 8h, bybit 0.00001). The CLI's KPIs are the library's single run on the same data; missing data is
named (no prices on any candidate venue, no funding for the perp venue); the store lists, saves and
promotes an xcarry set like the others.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hedge_core.backtest.cli import app
from hedge_core.backtest.event import BacktestConfig
from hedge_core.backtest.timeline import load_market
from hedge_core.backtest.xvenue import cross_venue_market, run_cross_venue_backtest
from hedge_core.backtest.xvenue_sweep import cross_venue_config
from hedge_core.data.demo import seed_demo
from hedge_core.errors import InvalidInput
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.params import promotion
from hedge_core.params import store as param_store
from hedge_core.params.xcarry import CrossCarryParams
from hedge_core.store import Store

pytestmark = pytest.mark.integration  # a DuckDB store file, like tests/test_backtest_cli.py

runner = CliRunner()
RATES = {"okx": 0.0003, "bybit": 0.00001}


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("xbt") / "demo.duckdb"
    st = Store(path)
    seed_demo(st, days=20, timeframe="1h", seed=9, assets=("BTC",))
    first = st.read_bars("demo", "BTC/USDT", "spot", "1h").index[0]
    ts = pd.date_range(first + pd.Timedelta(hours=8), periods=20 * 3 - 1, freq="8h")
    for v, r in RATES.items():
        st.write_funding(pd.DataFrame({"ts": ts, "funding_rate": r}), venue=v, symbol="BTC/USDT:USDT")
    del st
    return str(path)


@pytest.fixture()
def xfile(tmp_path):
    f = tmp_path / "x.toml"
    f.write_text('strategy = "xcarry"\nspot_venue = "binance"\nperp_venue = "bybit"\nmin_funding_rate = 0.0001\n'
                 'min_net_carry = 0.0\nexpected_hold_intervals = 21\nslippage_rate = 0.0\n')
    return str(f)


def _single(db: str, perp_venue: str, start: str, end: str):
    """The library's run on a market built here from the store: demo prices, the perp venue's funding."""
    st = Store(db, hold=False)
    prices = load_market(st, venue="demo", start=start, end=end)
    f = st.read_funding(perp_venue, "BTC/USDT:USDT")
    cv = pd.DataFrame({"ts": f.index, "venue": perp_venue, "symbol": "BTCUSDT", "funding_rate": f["funding_rate"],
                       "interval_hours": 8.0})
    p = CrossCarryParams(spot_venue="binance", perp_venue=perp_venue, min_funding_rate=0.0001, min_net_carry=0.0,
                         expected_hold_intervals=21, slippage_rate=0.0)
    cfg = cross_venue_config(BacktestConfig(hedge_id="x-cli", paper=PaperConfig(venue="demo")), p)
    return run_cross_venue_backtest(p, cross_venue_market(prices, cv, perp_venue=perp_venue), start=start, end=end,
                                    config=cfg)


def test_backtest_runs_xcarry_on_the_perp_venues_funding(db, xfile, tmp_path):
    args = ["backtest", "--params", xfile, "--perp-venue", "okx", "--venue", "demo", "--db", db, "--start", "2024-01-04",
            "--end", "2024-01-18", "--json", "--run-id", "x-cli", "--html", str(tmp_path / "x.html")]
    saved = runner.invoke(app, args[:-5] + ["--save", "--run-id", "x-saved"])
    assert saved.exit_code == 0, saved.output
    row = Store(db, hold=False).read_table("hedge_runs", hedge_id="x-saved")
    assert len(row) == 1 and row["strategy"].iloc[0] == "xcarry"
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["strategy"] == "xcarry"
    single = _single(db, "okx", "2024-01-04", "2024-01-18")
    for k in ("net_pnl", "funding", "fees", "entries"):
        assert out["kpis"][k] == pytest.approx(single.result.kpis[k], rel=1e-12, abs=1e-12), k
    assert out["kpis"]["entries"] >= 1 and out["kpis"]["funding"] > 0  # okx's 0.0003 pays the short perp
    per = {r["venue"]: r for r in out["per_venue"]}
    assert per["okx"]["leg"] == "perp" and per["binance"]["leg"] == "spot"
    assert per["okx"]["funding"] == pytest.approx(out["kpis"]["funding"], rel=1e-9)
    assert "demo's" in out["notes"][0] and "okx's own funding" in out["notes"][0]
    assert "demo&#x27;s" in (tmp_path / "x.html").read_text() or "demo's" in (tmp_path / "x.html").read_text()
    # the params' own perp venue (bybit, 0.00001 per 8h) never pays the fees: no entry
    plain = runner.invoke(app, args[:3] + args[5:-5] + ["--json"])
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.output)["kpis"]["entries"] == 0


def test_missing_data_and_misused_flags_are_named(db, xfile, tmp_path):
    res = runner.invoke(app, ["backtest", "--params", xfile, "--perp-venue", "kraken", "--venue", "demo", "--db", db])
    assert res.exit_code == 2 and "kraken BTC/USDT:USDT" in res.output and "hedge data import" in res.output
    res = runner.invoke(app, ["backtest", "--params", xfile, "--db", db])  # no venue of binance/bybit has prices
    assert res.exit_code == 2 and "price bars" in res.output and "['binance', 'bybit']" in res.output
    res = runner.invoke(app, ["backtest", "--params", xfile, "--perp-venue", "binance", "--venue", "demo", "--db", db])
    assert res.exit_code == 2 and "two different venues" in res.output
    carry = tmp_path / "c.toml"
    carry.write_text('strategy = "carry"\n')
    res = runner.invoke(app, ["backtest", "--params", str(carry), "--perp-venue", "okx", "--venue", "demo", "--db", db])
    assert res.exit_code == 2 and "--perp-venue" in res.output and "xcarry" in res.output


def test_sweep_reads_every_perp_venue_of_the_grid(db, xfile, tmp_path):
    g = tmp_path / "g.toml"
    g.write_text('[grid]\nperp_venue = ["okx", "bybit"]\nexpected_hold_intervals = [3, 21]\n')
    res = runner.invoke(app, ["sweep", "--params", xfile, "--grid", str(g), "--db", db, "--venue", "demo",
                              "--start", "2024-01-04", "--end", "2024-01-18", "--workers", "0", "--json"])
    assert res.exit_code == 0, res.output
    rows = pd.DataFrame(json.loads(res.output))
    assert len(rows) == 4 and (rows["error"] == "").all() and (rows["path"] == "fast").all()
    okx21 = rows[(rows["perp_venue"] == "okx") & (rows["expected_hold_intervals"] == 21)].iloc[0]
    single = _single(db, "okx", "2024-01-04", "2024-01-18")
    assert okx21["net_pnl"] == pytest.approx(single.result.kpis["net_pnl"], rel=1e-9, abs=1e-9)
    # 3 intervals x 0.0003 < the 0.0031 round trip: no entry; bybit's 0.00001 is below min_funding_rate
    assert (rows[rows["expected_hold_intervals"] == 3]["entries"] == 0).all()
    assert (rows[rows["perp_venue"] == "bybit"]["entries"] == 0).all()
    bad = tmp_path / "b.toml"
    bad.write_text('[grid]\nperp_venue = ["okx", "kraken"]\n')
    res = runner.invoke(app, ["sweep", "--params", xfile, "--grid", str(bad), "--db", db, "--venue", "demo"])
    assert res.exit_code == 2 and "kraken BTC/USDT:USDT" in res.output


def test_the_param_store_lists_saves_and_promotes_xcarry_sets(tmp_path):
    root, db = tmp_path / "params", str(tmp_path / "p.duckdb")
    p = CrossCarryParams(spot_venue="binance", perp_venue="okx", perp_taker_fee=0.0005, exit_below_apr=0.02)
    ps = param_store.export(p, "xc", created_from="test", root=root, index=False)
    back = param_store.load("xc@1", root=root)
    assert isinstance(back.params, CrossCarryParams) and back.params == p
    assert "strategy = \"xcarry\"" in ps.path.read_text()
    listed = param_store.list_sets(root).set_index("name")
    assert listed.loc["xc", "strategy"] == "xcarry" and listed.loc["xc", "status"] == "draft"
    assert promotion.promote("xc", 1, "paper", root=root, db=db).status == "paper"
    runs = pd.DataFrame({"hedge_id": ["h1"], "params_name": ["xc"], "params_version": [1], "mode": ["paper"],
                         "state": ["COMPLETED"], "started_at": [pd.Timestamp("2024-01-01", tz="UTC")],
                         "ended_at": [pd.Timestamp("2024-01-02", tz="UTC")]})
    assert promotion.promote("xc", 1, "live", confirm=True, runs_reader=lambda n, v: runs, root=root,
                             db=db).status == "live"
    # a bad value is named and nothing is written
    with pytest.raises(InvalidInput, match="perp_taker_fee"):
        param_store.export({"strategy": "xcarry", "perp_taker_fee": 0.5}, "xc", root=root, index=False)
    assert param_store.versions("xc", root=root) == [1]


def test_hedge_params_export_xcarry_from_the_command_line(tmp_path):
    from hedge_core.params.cli import params_app

    root = tmp_path / "params"
    res = runner.invoke(params_app, ["export", "xcli", "--strategy", "xcarry", "--set", 'perp_venue="okx"',
                                     "--set", "min_funding_rate=0.0002", "--params-dir", str(root)])
    assert res.exit_code == 0, res.output
    got = param_store.load("xcli", root=root).params
    assert isinstance(got, CrossCarryParams) and got.perp_venue == "okx" and got.min_funding_rate == 0.0002
    res = runner.invoke(params_app, ["list", "--params-dir", str(root)])
    assert res.exit_code == 0 and "xcarry" in res.output
    assert np.isfinite(got.leg_fee)
