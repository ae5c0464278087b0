"""Sweeps of an xcarry set whose perp venue is chosen at each entry (``hedge sweep --best-perp``,
backtest.xvenue_best_sweep): a sweep point equals the single ``hedge backtest --best-perp`` run with the same
parameters, window and fees.

The market of tests/test_xvenue_best_backtest.py (hand-checked there): both venues at the same price until hour
108, bybit's fee 0.02 % beats okx's 0.05 % (entries on bybit); from hour 108 bybit's perp trades 0.1 % lower and
entries go to okx. So a point choosing per entry differs from the same point run on its one ``perp_venue``.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest
from typer.testing import CliRunner

from hedge_core.backtest.cli import best_perp_inputs
from hedge_core.backtest.event import BacktestConfig
from hedge_core.backtest.sweep import Payload, apply_overrides, run_sweep
from hedge_core.backtest.xvenue import run_cross_venue_backtest
from hedge_core.backtest.xvenue_best_sweep import BestPerpTimelines, evaluate_best_perp
from hedge_core.backtest.xvenue_sweep import VenueMarkets, cross_venue_config
from hedge_core.errors import InvalidInput
from hedge_core.exchange.paper.core import PaperConfig

from tests.support.best_perp_market import FEES, T0, funding, markets, papers, xparams

CFG = BacktestConfig(paper=replace(PaperConfig(), slippage_bps=0.0, impact_k_bps=0.0))
POINTS = [{"notional": 8_000.0, "exit.max_holding_hours": 24.0}, {"notional": 5_000.0, "exit.max_holding_hours": 12.0}]
KPIS = ("net_pnl", "sharpe", "entries", "fees", "funding", "max_drawdown")


def _timelines() -> BestPerpTimelines:
    tl = VenueMarkets(markets()).timelines(config=CFG)
    return BestPerpTimelines(tl.by_venue, FEES)


def test_a_best_perp_sweep_point_equals_the_single_best_perp_backtest() -> None:
    table = run_sweep(xparams(), POINTS, payload=Payload(_timelines(), CFG), workers=0)
    assert table["error"].fillna("").eq("").all(), table["error"].tolist()
    m = markets()
    for i, pt in enumerate(POINTS):
        p = apply_overrides(xparams(), pt)
        cfg = cross_venue_config(CFG, p)
        # the single run as `hedge backtest --best-perp` builds it: each venue's paper model with its own fee
        one = run_cross_venue_backtest(p, m["okx"], config=cfg, **best_perp_inputs(p, m, cfg, FEES))
        assert one.choices is not None and set(one.choices["venue"]) == {"bybit", "okx"}  # chosen per entry
        k = one.result.kpis
        for name in KPIS:
            if name in k:
                assert table[name].iloc[i] == pytest.approx(k[name], rel=1e-12, abs=1e-12), (pt, name)
        assert table["path"].iloc[i] == "event"  # no fast kernel chooses per entry
        # on okx alone (a plain sweep point) the run differs: the per-entry choice is what was swept
        plain = run_cross_venue_backtest(p, m["okx"], config=replace(cfg, perp_paper=papers()["okx"]))
        assert plain.result.kpis["net_pnl"] != pytest.approx(k["net_pnl"], rel=1e-6)


def test_a_point_allowing_a_venue_the_sweep_has_no_funding_of_is_refused_naming_perp_venues() -> None:
    with pytest.raises(InvalidInput, match=r"perp_venues.*venues whose funding the sweep was given: \['bybit', 'okx'\]"):
        evaluate_best_perp(xparams(perp_venues=("bybit", "gate")), _timelines(), CFG)
    with pytest.raises(InvalidInput, match=r"perp_venues.*several perp venues"):
        evaluate_best_perp(xparams(perp_venues=()), _timelines(), CFG)
    with pytest.raises(InvalidInput, match=r"fees\.bybit.*\[0, 0\.01\]"):
        BestPerpTimelines(_timelines().by_venue, {"bybit": 0.5})


def test_best_perp_timelines_survive_pickling_for_worker_processes() -> None:
    import pickle

    t = pickle.loads(pickle.dumps(_timelines()))
    assert isinstance(t, BestPerpTimelines) and dict(t.fees) == FEES and set(t.by_venue) == {"okx", "bybit"}


# ---- hedge sweep --best-perp == hedge backtest --best-perp (the demo store of tests/test_xvenue_best_backtest) ----

@pytest.fixture(scope="module")
def db(tmp_path_factory):
    from hedge_core.data.demo import seed_demo
    from hedge_core.store import Store

    path = tmp_path_factory.mktemp("xbestsweep") / "demo.duckdb"
    st = Store(path)
    seed_demo(st, days=10, timeframe="1h", seed=9, assets=("BTC",))
    first = st.read_bars("demo", "BTC/USDT", "spot", "1h").index[0]
    ts = pd.date_range(first + pd.Timedelta(hours=8), periods=10 * 3 - 1, freq="8h")
    for v, rate in (("okx", 0.0003), ("bybit", 0.0002)):
        st.write_funding(pd.DataFrame({"ts": ts, "funding_rate": rate}), venue=v, symbol="BTC/USDT:USDT")
    del st
    return str(path)


@pytest.mark.integration
def test_cli_sweep_best_perp_point_equals_cli_backtest_best_perp(db, tmp_path) -> None:
    from hedge_core.backtest.cli import app

    x = tmp_path / "x.toml"
    x.write_text('strategy = "xcarry"\nspot_venue = "binance"\nperp_venue = "okx"\nperp_venues = ["bybit"]\n'
                 'min_funding_rate = 0.0001\nmin_net_carry = 0.0\nexpected_hold_intervals = 21\nslippage_rate = 0.0\n'
                 'perp_taker_fee = 0.0005\n[exit]\nmax_holding_hours = 24.0\nrearm = true\n')
    g = tmp_path / "g.toml"
    g.write_text("[grid]\nmin_funding_rate = [0.0001, 0.00015]\n")
    win = ["--db", db, "--venue", "demo", "--start", "2024-01-04", "--end", "2024-01-10"]
    fee = ["--best-perp", "--perp-fee", "bybit=0.0002"]
    res = CliRunner().invoke(app, ["sweep", "--params", str(x), "--grid", str(g), *win, *fee, "--workers", "0",
                                   "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["min_funding_rate"]: r for r in json.loads(res.output)}
    for rate in (0.0001, 0.00015):
        x2 = tmp_path / f"x{rate}.toml"
        x2.write_text(x.read_text().replace("min_funding_rate = 0.0001", f"min_funding_rate = {rate}"))
        one = CliRunner().invoke(app, ["backtest", "--params", str(x2), *win, *fee, "--json"])
        assert one.exit_code == 0, one.output
        out = json.loads(one.output)
        assert out["choices"], "the single run entered"
        for name in ("net_pnl", "sharpe", "entries", "max_drawdown"):
            if out["kpis"].get(name) is not None:
                # the sweep prints 10 significant digits (double_precision=10)
                assert rows[rate][name] == pytest.approx(out["kpis"][name], rel=1e-9, abs=1e-9), (rate, name)
    # without --best-perp the sweep runs okx alone: another result
    plain = CliRunner().invoke(app, ["sweep", "--params", str(x), "--grid", str(g), *win, "--workers", "0", "--json"])
    assert plain.exit_code == 0, plain.output
    assert {r["min_funding_rate"]: r["net_pnl"] for r in json.loads(plain.output)} != \
        {k: r["net_pnl"] for k, r in rows.items()}
    bad = CliRunner().invoke(app, ["sweep", "--params", str(x), "--grid", str(g), *win, "--perp-fee", "bybit=0.0002"])
    assert bad.exit_code == 2 and "only with --best-perp" in bad.output


# ---- walk-forward choosing the perp venue per entry (sweep.walk_forward(best_perp=True)) ----

def test_a_best_perp_walk_forward_fold_equals_the_single_best_perp_run_on_its_test_window() -> None:
    from hedge_core.backtest.sweep import walk_forward
    from hedge_core.backtest.timeline import build_timeline
    from hedge_core.backtest.xvenue_best_sweep import BestPerpMarkets

    m = markets()
    start = T0 + CFG.warmup
    folds = walk_forward(xparams(), {"exit.max_holding_hours": [12.0, 24.0]}, VenueMarkets(m), train="1D",
                         test="2D", start=start, metric="net_pnl", config=CFG, best_perp=True, perp_fees=FEES,
                         workers=0, show_progress=False)
    assert len(folds) >= 2 and (folds["test_error"].fillna("") == "").all(), folds.get("test_error")
    assert set(folds["test_path"]) == {"event"}  # chosen per entry: the event path
    spans_switch = False
    for _, f in folds.iterrows():
        p = apply_overrides(xparams(), {"exit.max_holding_hours": f["exit.max_holding_hours"]})
        cfg = cross_venue_config(CFG, p)
        tls = {v: build_timeline(mk, start=f["test_start"], end=f["test_end"], spec=CFG.spec) for v, mk in m.items()}
        one = run_cross_venue_backtest(p, tls["okx"], config=cfg, **best_perp_inputs(p, tls, cfg, FEES))
        for name in KPIS:
            if name in one.result.kpis:
                assert f[f"test_{name}"] == pytest.approx(one.result.kpis[name], rel=1e-9, abs=1e-9), (f, name)
        if one.choices is not None and "bybit" in set(one.choices["venue"]) and "okx" in set(one.choices["venue"]):
            spans_switch = True
    assert spans_switch  # a fold whose entries went to both venues: chosen per entry, not per fold
    # the same through a BestPerpMarkets market, and a perp_fees without best_perp is refused
    again = walk_forward(xparams(), {"exit.max_holding_hours": [12.0, 24.0]}, BestPerpMarkets(m, FEES), train="1D",
                         test="2D", start=start, metric="net_pnl", config=CFG, workers=0, show_progress=False)
    assert again["test_net_pnl"].tolist() == pytest.approx(folds["test_net_pnl"].tolist(), rel=1e-12)
    with pytest.raises(InvalidInput, match="perp_fees.*only with best_perp"):
        walk_forward(xparams(), {"exit.max_holding_hours": [12.0]}, VenueMarkets(m), train="1D", test="2D",
                     start=start, config=CFG, perp_fees=FEES, workers=0, show_progress=False)
    with pytest.raises(InvalidInput, match=r"fees\.okx.*\[0, 0\.01\]"):
        BestPerpMarkets(m, {"okx": 0.2})
