"""`hedge backtest` / `hedge sweep` through typer's CliRunner on a demo store."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hedge_core.backtest.cli import app, read_grid, read_params
from hedge_core.data.demo import seed_demo
from hedge_core.errors import InvalidInput
from hedge_core.params.models import CarryParams
from hedge_core.store import Store

runner = CliRunner()


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("bt") / "demo.duckdb"
    st = Store(path)
    seed_demo(st, days=20, timeframe="1h", seed=9, assets=("BTC",))
    del st
    return str(path)


@pytest.fixture()
def params_file(tmp_path):
    f = tmp_path / "carry.toml"
    f.write_text('strategy = "carry"\nmin_net_carry = -0.01\n[exit]\nrearm = true\nmax_holding_hours = 24\n')
    return str(f)


def test_backtest_json_prints_kpis_and_ledger_totals(db, params_file, tmp_path):
    args = ["backtest", "--params", params_file, "--start", "2024-01-04", "--end", "2024-01-18", "--db", db,
            "--venue", "demo", "--json", "--save", "--run-id", "cli-1", "--html", str(tmp_path / "t.html")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert set(out["totals"]) == {"price_pnl", "funding", "fees", "slippage", "interest", "net"}
    assert out["totals"]["net"] == pytest.approx(out["kpis"]["net_pnl"])
    assert out["kpis"]["entries"] >= 1 and "net_apr" in out["kpis"] and "sharpe" in out["kpis"]
    assert (tmp_path / "t.html").stat().st_size > 10_000
    assert len(Store(db).read_table("hedge_runs", hedge_id="cli-1")) == 1
    plain = runner.invoke(app, args[:-6])
    assert plain.exit_code == 0 and "net_apr" in plain.output


def test_param_store_toml_and_json_files(tmp_path):
    from hedge_core.params import store as param_store

    ps = param_store.export(CarryParams(min_funding_rate=0.0003), "cli-carry", created_from="test",
                            root=tmp_path / "params")
    assert read_params(str(ps.path)).min_funding_rate == 0.0003
    j = tmp_path / "p.json"
    j.write_text(json.dumps({"strategy": "carry", "rebalance": {"drift_threshold": 0.1}}))
    assert read_params(str(j)).rebalance.drift_threshold == 0.1


def test_bad_params_and_grid_name_the_field(db, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('strategy = "carry"\nmin_funding_rate = -1\n')
    res = runner.invoke(app, ["backtest", "--params", str(bad), "--db", db, "--venue", "demo"])
    assert res.exit_code == 2 and "min_funding_rate" in res.output
    g = tmp_path / "g.toml"
    g.write_text('"rebalance.drift_treshold" = [0.1]\n')
    good = tmp_path / "ok.toml"
    good.write_text('strategy = "carry"\n')
    res = runner.invoke(app, ["sweep", "--params", str(good), "--grid", str(g), "--db", db, "--venue", "demo",
                              "--workers", "0"])
    assert res.exit_code == 2 and "drift_treshold" in res.output
    with pytest.raises(InvalidInput, match="random.space"):
        g.write_text("[random]\nn = 3\n")
        read_grid(str(g))


def test_sweep_grid_and_random(db, params_file, tmp_path):
    g = tmp_path / "grid.toml"
    g.write_text('[grid]\nmin_funding_rate = [0.00005, 0.0001]\n"exit.max_holding_hours" = [12, 48]\n')
    res = runner.invoke(app, ["sweep", "--params", params_file, "--grid", str(g), "--db", db, "--venue", "demo",
                              "--workers", "0", "--json", "--metric", "net_pnl", "--out", str(tmp_path / "r.csv")])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert len(rows) == 4 and all(r["path"] == "fast" for r in rows)
    assert rows[0]["net_pnl"] >= rows[-1]["net_pnl"]
    assert (tmp_path / "r.csv").exists()
    r = tmp_path / "rnd.json"
    r.write_text(json.dumps({"random": {"n": 3, "seed": 1, "space": {"min_funding_rate": {"low": 5e-5, "high": 2e-4}}}}))
    res = runner.invoke(app, ["sweep", "--params", params_file, "--grid", str(r), "--db", db, "--venue", "demo",
                              "--workers", "0"])
    assert res.exit_code == 0 and "min_funding_rate" in res.output
