"""A symbol other than BTC/ETH backtests and sweeps from its stored instruments; one without says what is missing.

The market is the seeded demo generator's (synthetic, venue ``demo``) for SOL and PEPE: the shared data
folder holds no SOL series (checked with hedge_core.data.shared: Binance BTC/ETH only).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hedge_core.backtest.cli import app
from hedge_core.backtest.fast import FastPathUnsupported
from hedge_core.backtest.timeline import load_market
from hedge_core.data.demo import AssetModel, DemoParams, generate_demo_market
from hedge_core.data.importers import write_series
from hedge_core.data.instruments import snapshot
from hedge_core.store import Store

runner = CliRunner()
CARRY = 'strategy = "carry"\nmin_net_carry = -0.01\nnotional = 3000.0\n[exit]\nrearm = true\nmax_holding_hours = 24\n'


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("sol") / "sol.duckdb"
    params = DemoParams(assets={"SOL": AssetModel(spot0=100.0, vol_calm=0.7, volume_per_hour=300_000.0),
                                "PEPE": AssetModel(spot0=0.01, vol_calm=0.9, volume_per_hour=1e9)})
    frames = generate_demo_market(days=20, timeframe="1h", seed=11, assets=("SOL", "PEPE"), params=params)
    with Store(path) as st:
        write_series(st, frames)
        # the store's SOL rows (as `hedge data instruments` would write them): perp lot 2 SOL (the snapshot
        # says 1) and the venue's own, steeper table
        snap = snapshot()
        perp = snap[("binance", "SOL/USDT:USDT")]
        own = tuple(replace(b, mmr=b.mmr * 1.5, cum=b.cum * 1.5) for b in perp.brackets)
        st.write_instruments([replace(snap[("binance", "SOL/USDT")], venue="demo"),
                              replace(perp, venue="demo", lot_size=2.0, min_qty=2.0, brackets=own)],
                             read_at=pd.Timestamp("2026-12-01T00:00Z"), source="test")
    return str(path)


@pytest.fixture()
def params_file(tmp_path):
    f = tmp_path / "carry.toml"
    f.write_text(CARRY)
    return str(f)


def test_backtest_cli_on_sol_from_stored_instruments(db, params_file):
    res = runner.invoke(app, ["backtest", "--params", params_file, "--db", db, "--venue", "demo", "--asset", "SOL",
                              "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["kpis"]["entries"] >= 1 and out["totals"]["fees"] > 0


def test_event_backtest_on_sol_trades_whole_lots_and_uses_the_stored_table(db):
    from hedge_core.backtest.cli import _paper
    from hedge_core.backtest.event import BacktestConfig, run_backtest
    from hedge_core.backtest.timeline import load_market
    from hedge_core.params.models import CarryParams

    st = Store(db, read_only=True)
    m = load_market(st, venue="demo", spot_symbol="SOL/USDT", perp_symbol="SOL/USDT:USDT")
    cfg = BacktestConfig(paper=_paper(st, m))
    perp = {i.symbol: i for i in cfg.paper.instruments}["SOL/USDT:USDT"]
    assert perp.lot_size == 2.0 and perp.brackets != snapshot()[("binance", "SOL/USDT:USDT")].brackets
    assert cfg.paper.brackets["SOL/USDT:USDT"] == perp.brackets  # declared: the fast path must not assume defaults
    p = CarryParams(min_net_carry=-0.01, notional=3000.0)
    r = run_backtest(p, m, config=cfg)
    fills = r.fills
    perp_q = fills.loc[fills["symbol"] == "SOL/USDT:USDT", "qty"].to_numpy()
    assert len(perp_q) >= 1 and np.allclose(perp_q % 2.0, 0.0)  # lots of 2 SOL: the store's lot
    st.close()


def test_sweep_cli_on_sol(db, params_file, tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text('[grid]\n"rebalance.drift_threshold" = [0.05, 0.1]\n')
    res = runner.invoke(app, ["sweep", "--params", params_file, "--grid", str(grid), "--db", db, "--venue", "demo",
                              "--asset", "SOL", "--workers", "0", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert len(rows) == 2 and all(not r.get("error") for r in rows)
    # the stored table differs from the committed default; the fast path reads the instrument's own
    # table (as the engine and the paper venue do), so it runs them (parity: the test below)
    assert {r["path"] for r in rows} == {"fast"}
    assert all(r["entries"] >= 1 for r in rows)


def test_fast_path_reads_the_stored_table_and_equals_the_event_path(db):
    """SOL's stored perp has its own, steeper table (1.5x the default MMR and cum) and lots of 2: the
    kernel takes that table (not the committed default) and matches the event path fill for fill."""
    from hedge_core.backtest.cli import _paper
    from hedge_core.backtest.event import BacktestConfig
    from hedge_core.backtest.fast import check_supported
    from hedge_core.backtest.fast.pack import brackets
    from hedge_core.params.models import CarryParams, ExitParams
    from tests.support.parity import assert_fast_equals_event

    st = Store(db, read_only=True)
    m = load_market(st, venue="demo", spot_symbol="SOL/USDT", perp_symbol="SOL/USDT:USDT")
    cfg = BacktestConfig(paper=_paper(st, m))
    st.close()
    default = snapshot()[("binance", "SOL/USDT:USDT")].brackets
    floors, caps, mmrs, cums, maxlevs = brackets(cfg.paper, "SOL/USDT:USDT")
    # the stored table, by hand: each default bracket's MMR and cum x 1.5, floors and caps as they were
    assert mmrs.tolist() == [b.mmr * 1.5 for b in default] and cums.tolist() == [b.cum * 1.5 for b in default]
    assert caps.tolist() == [b.notional_cap for b in default]
    p = CarryParams(min_net_carry=-0.01, notional=3000.0, exit=ExitParams(rearm=True, max_holding_hours=24))
    check_supported(p, cfg.paper, "SOL/USDT:USDT")  # accepted: the venue's table is the instrument's own
    ev, fa = assert_fast_equals_event(p, m, cfg, kpis=True)
    perp_q = fa.fills.loc[fa.fills["leg"] == "perp", "qty"].to_numpy()
    assert len(perp_q) >= 2 and (perp_q % 2.0 == 0.0).all() and len(fa.transitions) >= 4  # the stored lot
    # a paper venue with a table that is not the instrument's own is still refused
    other = replace(cfg.paper, brackets={**cfg.paper.brackets, "SOL/USDT:USDT": default})
    with pytest.raises(FastPathUnsupported, match="custom paper brackets for SOL/USDT:USDT"):
        check_supported(p, other, "SOL/USDT:USDT")


def test_sweep_fast_path_runs_a_snapshot_symbol(tmp_path):
    """Without a store row the committed snapshot serves: SOL's default table is what the fast path reads."""
    from hedge_core.backtest.event import BacktestConfig
    from hedge_core.backtest.sweep import Payload, run_sweep
    from hedge_core.backtest.timeline import build_timeline, market_from_frames
    from hedge_core.params.models import CarryParams

    params = DemoParams(assets={"SOL": AssetModel(spot0=100.0, vol_calm=0.7, volume_per_hour=300_000.0)})
    frames = generate_demo_market(days=20, timeframe="1h", seed=11, assets=("SOL",), params=params)
    m = market_from_frames(frames, asset="SOL")
    cfg = BacktestConfig()
    tl = build_timeline(m, start=m.first + cfg.warmup, spec=cfg.spec)
    table = run_sweep(CarryParams(min_net_carry=-0.01, notional=3000.0), [{"rebalance.drift_threshold": 0.05}],
                      payload=Payload(tl, cfg), workers=0, show_progress=False)
    assert list(table["path"]) == ["fast"] and not table["error"].fillna("").any()


def test_a_symbol_without_instruments_says_what_is_missing(db, params_file):
    res = runner.invoke(app, ["backtest", "--params", params_file, "--db", db, "--venue", "demo", "--asset", "PEPE"])
    assert res.exit_code == 2
    assert "instrument='demo PEPE/USDT, PEPE/USDT:USDT'" in res.output
    assert "hedge data instruments --venue demo --symbols PEPE/USDT,PEPE/USDT:USDT" in res.output
    assert "Traceback" not in res.output


@pytest.mark.timeout(180)
def test_paper_hedge_on_sol_through_the_runner_from_stored_instruments(tmp_path):
    """A runner process paper-trades SOL on its stored instruments (perp lot 2 SOL, not the snapshot's 1), and refuses a symbol
    with data but no instruments, naming it."""
    from tests.support.runner_env import DEMO_START, make_env, paper_exchange, wait_for

    env = make_env(tmp_path, days=6, export={"exit": {"max_holding_hours": None, "profit_target_pct": None,
                                                      "stop_loss_pct": None, "funding_unfavourable_intervals": None}})
    params = DemoParams(assets={"SOL": AssetModel(spot0=100.0, vol_calm=0.7, volume_per_hour=300_000.0),
                                "PEPE": AssetModel(spot0=0.01, vol_calm=0.9, volume_per_hour=1e9)})
    with Store(env.db) as st:
        write_series(st, generate_demo_market(days=6, timeframe="1h", seed=11, assets=("SOL", "PEPE"), params=params))
        snap = snapshot()
        st.write_instruments([snap[("binance", "SOL/USDT")],
                              replace(snap[("binance", "SOL/USDT:USDT")], lot_size=2.0, min_qty=2.0)],
                             read_at=pd.Timestamp("2026-12-01T00:00Z"), source="test")
    try:
        p = env.start_runner()
        c = env.client(p)
        sol = dict(venue="binance", spot_symbol="SOL/USDT", perp_symbol="SOL/USDT:USDT", data_venue="demo",
                   start=DEMO_START, speed=36_000)
        c.start("carry-test", mode="paper", hedge_id="sol1", **sol)
        wait_for(lambda: c.hedge("sol1")["state"] == "MONITORING_POSITIONS", timeout=90, what="SOL hedge monitoring")
        core = paper_exchange(env, "sol1").core
        assert core.instruments["SOL/USDT:USDT"].lot_size == 2.0  # the store's row (the snapshot says 1)
        perp = [x.qty for (sym, _), x in core.positions.items() if sym == "SOL/USDT:USDT"]
        assert perp and perp[0] < 0 and perp[0] % 2.0 == 0  # lots of 2 SOL: the store's lot
        assert core.spot.get("SOL", 0.0) > 0
        from hedge_core.errors import InvalidInput

        with pytest.raises(InvalidInput, match="PEPE/USDT.*hedge data instruments"):
            c.start("carry-test", mode="paper", hedge_id="pepe1", **{**sol, "spot_symbol": "PEPE/USDT",
                                                                      "perp_symbol": "PEPE/USDT:USDT"})
    finally:
        env.cleanup()


def test_run_backtest_on_a_loaded_market_takes_the_stored_rows_over_the_defaults(db):
    """``load_market`` carries the pair's stored rows; ``run_backtest`` with the default config uses them
    (lots of 2 SOL), while a config given its own SOL row explicitly keeps it."""
    from hedge_core.backtest.event import BacktestConfig, run_backtest
    from hedge_core.backtest.timeline import load_market
    from hedge_core.exchange.paper.config import PaperConfig
    from hedge_core.params.models import CarryParams

    st = Store(db, read_only=True)
    m = load_market(st, venue="demo", spot_symbol="SOL/USDT", perp_symbol="SOL/USDT:USDT")
    st.close()
    # the spot row is the snapshot's (step 0.01 SOL, Binance's 2023-09-08 answer), the perp row the store's
    assert [i.lot_size for i in m.meta["instruments"]] == [0.01, 2.0]
    assert m.window(m.first + pd.Timedelta("2D"), None).meta["instruments"] == m.meta["instruments"]
    p = CarryParams(min_net_carry=-0.01, notional=3000.0)
    r = run_backtest(p, m)
    q = r.fills.loc[r.fills["symbol"] == "SOL/USDT:USDT", "qty"].to_numpy()
    assert len(q) and np.allclose(q % 2.0, 0.0)
    snap = snapshot()
    mine = replace(snap[("binance", "SOL/USDT:USDT")], venue="demo", lot_size=5.0, min_qty=5.0)
    cfg = PaperConfig(venue="demo", instruments=(replace(snap[("binance", "SOL/USDT")], venue="demo"), mine))
    r2 = run_backtest(p, m, config=BacktestConfig(paper=cfg))
    q2 = r2.fills.loc[r2.fills["symbol"] == "SOL/USDT:USDT", "qty"].to_numpy()
    assert len(q2) and np.allclose(q2 % 5.0, 0.0)
