"""`hedge backtest --params xcarry.toml` with ``legs = "perp_perp"``: a perp on each venue, each venue's own
funding read from the store. A demo store holds one venue's prices (``demo``) and the funding of two perp
venues (okx 0.0003 per 8h, bybit 0.00001): the pair goes long bybit, short okx; the CLI's KPIs are the
library's single run on the same data, and a first venue without funding is named.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from hedge_core.backtest.cli import app
from hedge_core.backtest.event import BacktestConfig
from hedge_core.backtest.timeline import load_market
from hedge_core.backtest.xvenue import cross_venue_market, run_cross_venue_backtest
from hedge_core.backtest.xvenue_sweep import cross_venue_config
from hedge_core.data.demo import seed_demo
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.params.xcarry import CrossCarryParams
from hedge_core.store import Store

pytestmark = pytest.mark.integration  # a DuckDB store file

runner = CliRunner()
RATES = {"okx": 0.0003, "bybit": 0.00001}
TOML = ('strategy = "xcarry"\nlegs = "perp_perp"\nspot_venue = "bybit"\nperp_venue = "okx"\n'
        'min_funding_rate = 0.0001\nmin_net_carry = 0.0\nexpected_hold_intervals = 21\nslippage_rate = 0.0\n')


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("ppbt") / "demo.duckdb"
    st = Store(path)
    seed_demo(st, days=20, timeframe="1h", seed=9, assets=("BTC",))
    first = st.read_bars("demo", "BTC/USDT", "spot", "1h").index[0]
    ts = pd.date_range(first + pd.Timedelta(hours=8), periods=20 * 3 - 1, freq="8h")
    for v, r in RATES.items():
        st.write_funding(pd.DataFrame({"ts": ts, "funding_rate": r}), venue=v, symbol="BTC/USDT:USDT")
    del st
    return str(path)


def _single(db: str, start: str, end: str):
    st = Store(db, hold=False)
    prices = load_market(st, venue="demo", start=start, end=end)
    cv = pd.concat([pd.DataFrame({"ts": (f := st.read_funding(v, "BTC/USDT:USDT")).index, "venue": v,
                                  "symbol": "BTCUSDT", "funding_rate": f["funding_rate"], "interval_hours": 8.0})
                    for v in ("okx", "bybit")], ignore_index=True)
    p = CrossCarryParams(legs="perp_perp", spot_venue="bybit", perp_venue="okx", min_funding_rate=0.0001,
                         min_net_carry=0.0, expected_hold_intervals=21, slippage_rate=0.0)
    cfg = cross_venue_config(BacktestConfig(hedge_id="pp-cli", paper=PaperConfig(venue="demo")), p)
    m = cross_venue_market(prices, cv, perp_venue="okx", first_venue="bybit")
    return run_cross_venue_backtest(p, m, start=start, end=end, config=cfg)


def test_backtest_runs_a_perp_pair_on_each_venues_funding(db, tmp_path):
    f = tmp_path / "pp.toml"
    f.write_text(TOML)
    args = ["backtest", "--params", str(f), "--venue", "demo", "--db", db, "--start", "2024-01-04", "--end",
            "2024-01-18", "--json", "--run-id", "pp-cli"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    single = _single(db, "2024-01-04", "2024-01-18")
    for k in ("net_pnl", "funding", "fees", "entries"):
        assert out["kpis"][k] == pytest.approx(single.result.kpis[k], rel=1e-12, abs=1e-12), k
    assert out["kpis"]["entries"] >= 1
    per = {r["venue"]: r for r in out["per_venue"]}
    assert per["bybit"]["leg"] == "first perp" and per["okx"]["leg"] == "second perp"
    assert per["okx"]["funding"] > 0 > per["bybit"]["funding"]  # short okx receives 0.0003, long bybit pays 0.00001
    assert per["okx"]["funding"] + per["bybit"]["funding"] == pytest.approx(out["kpis"]["funding"], rel=1e-9)
    assert any("bybit on the first leg, okx on the second" in n for n in out["notes"])
    # a first venue without funding in the store is named
    f.write_text(TOML.replace('spot_venue = "bybit"', 'spot_venue = "kraken"'))
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "kraken BTC/USDT:USDT" in res.output and "hedge data import" in res.output


def test_sweep_of_a_perp_pair_reads_both_venues_funding_and_each_row_is_the_single_run(db, tmp_path):
    f, g = tmp_path / "pp.toml", tmp_path / "g.toml"
    f.write_text(TOML)
    g.write_text('[grid]\nexpected_hold_intervals = [3, 21]\nperp_venue = ["okx", "bybit"]\n')
    args = ["sweep", "--params", str(f), "--grid", str(g), "--db", db, "--venue", "demo", "--start", "2024-01-04",
            "--end", "2024-01-18", "--workers", "0", "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = {(r["expected_hold_intervals"], r["perp_venue"]): r for r in json.loads(res.output)}
    assert len(rows) == 4
    single = _single(db, "2024-01-04", "2024-01-18")  # hold 21, long bybit / short okx
    row = rows[(21, "okx")]
    assert row["error"] == "" and row["path"] == "fast" and row["entries"] >= 1
    for k in ("net_pnl", "funding", "fees", "entries"):
        assert row[k] == pytest.approx(single.result.kpis[k], rel=1e-12, abs=1e-12), k
    assert rows[(3, "okx")]["entries"] == 0  # 3 x 0.00029 per 8h does not pay the round trip
    for hold in (3, 21):  # bybit on both legs: that point's row names the field, the sweep went on
        err = rows[(hold, "bybit")]["error"]
        assert "perp_venue" in err and "two different venues" in err
    # a first venue without funding in the store is named, with the import hint
    f.write_text(TOML.replace('spot_venue = "bybit"', 'spot_venue = "kraken"'))
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "kraken BTC/USDT:USDT" in res.output and "hedge data import" in res.output
    # a grid switching a spot/perp set to a pair: the pair points read their first venue's funding too
    spot_perp = tmp_path / "sp.toml"
    spot_perp.write_text(TOML.replace('legs = "perp_perp"\n', ""))
    g.write_text('[grid]\nlegs = ["spot_perp", "perp_perp"]\n')
    res = runner.invoke(app, [*args[:2], str(spot_perp), *args[3:]])
    assert res.exit_code == 0, res.output
    by_legs = {r["legs"]: r for r in json.loads(res.output)}
    assert by_legs["spot_perp"]["error"] == "" and by_legs["perp_perp"]["error"] == ""
    assert by_legs["perp_perp"]["net_pnl"] == pytest.approx(single.result.kpis["net_pnl"], rel=1e-12, abs=1e-12)
