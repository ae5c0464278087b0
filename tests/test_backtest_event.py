"""Event-driven backtester: money checked against independent references, store round trip,
any bar size, liquidation reported to the engine, tearsheet export."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hedge_core.analytics import metrics
from hedge_core.analytics.funding import funding_payments, mark_known_at
from hedge_core.backtest.event import BacktestConfig, load_run, run_backtest, save_run
from hedge_core.backtest.timeline import (
    Market,
    build_timeline,
    load_market,
    market_from_frames,
)
from hedge_core.data.demo import generate_demo_market, seed_demo
from hedge_core.errors import InvalidInput
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.ui.figures.tearsheet import kpi_table, ltv_figure, tearsheet, to_html
from hedge_core.params.models import (
    CarryParams,
    ExitParams,
    GuardParams,
    LeverageParams,
    VolTierLoanParams,
)
from hedge_core.store import Store

P = CarryParams(min_net_carry=-0.01, exit=ExitParams(rearm=True, max_holding_hours=36))


@pytest.fixture(scope="module")
def demo():
    return market_from_frames(generate_demo_market(days=30, timeframe="1h", seed=5, assets=("BTC",)))


@pytest.fixture(scope="module")
def run(demo):
    cfg = BacktestConfig(hedge_id="bt-test", paper=PaperConfig(impact_k_bps=0.0, slippage_bps=2.0))
    return run_backtest(P, demo, config=cfg)


def test_fills_at_bar_close_with_slippage_and_fees(run, demo):
    f = run.fills
    assert len(f) >= 4 and run.kpis["entries"] >= 2
    closes = {"spot": demo.spot["close"], "perp": demo.perp["close"]}
    for _, x in f.iterrows():
        ref = closes[x["leg"]].loc[x["ts"] - pd.Timedelta("1h")]  # the bar that ended at the fill instant
        sign = 1 if x["side"] == "buy" else -1
        assert x["price"] == pytest.approx(ref * (1 + sign * 2.0 / 1e4), rel=1e-12)
        rate = 0.001 if x["leg"] == "spot" else 0.0005
        assert x["fee"] == pytest.approx(x["qty"] * x["price"] * rate, rel=1e-9)
        assert x["slippage"] == pytest.approx(x["qty"] * ref * 2.0 / 1e4, rel=1e-9)
    assert run.totals()["fees"] == pytest.approx(f["fee"].sum(), rel=1e-12)
    assert run.totals()["slippage"] == pytest.approx(f["slippage"].sum(), rel=1e-12)


def test_funding_matches_an_independent_ledger(run, demo):
    f = run.fills[run.fills["leg"] == "perp"]
    pos = pd.Series((np.where(f["side"] == "buy", 1.0, -1.0) * f["qty"]).cumsum().to_numpy(),
                    index=pd.DatetimeIndex(f["ts"]))
    pos = pos.groupby(level=0).last()
    rates = demo.funding["funding_rate"]
    rates = rates[(rates.index > run.start) & (rates.index <= run.end)]
    mark = mark_known_at(demo.mark["close"], "1h")
    ref = funding_payments(pos, rates, mark)
    assert run.totals()["funding"] == pytest.approx(ref.sum(), rel=1e-9, abs=1e-9)
    assert run.funding_payments["amount"].sum() == pytest.approx(ref.sum(), rel=1e-9, abs=1e-9)
    assert run.totals()["funding"] != 0.0


def test_ledger_identities_and_cash_flows(run):
    e = run.equity
    np.testing.assert_allclose(e["net"], e["price_pnl"] + e["funding"] - e["fees"] - e["interest"], atol=1e-8)
    f = run.fills
    flat = (e["spot_qty"].iloc[-1] == 0) and (e["perp_qty"].iloc[-1] == 0)
    if flat:  # price PnL of a flat book = sum of trade cash flows
        cash = (np.where(f["side"] == "buy", -1.0, 1.0) * f["qty"] * f["price"]).sum()
        assert e["price_pnl"].iloc[-1] == pytest.approx(cash, abs=1e-6)
    led = run.ledger
    assert led["net"].sum() == pytest.approx(e["net"].iloc[-1], abs=1e-8)
    assert set(run.orders["status"]) <= {"closed"} and len(run.orders) == len(f)
    assert list(run.transitions["trigger_name"][:3]) == ["ENTRY_SIGNAL", "SPOT_FILLED", "HEDGE_FILLED"]


def test_kpis_use_metrics_definitions(run):
    k = run.kpis
    e = run.equity
    assert k["net_apr"] == pytest.approx(metrics.net_apr(e["net"].iloc[-1], run.capital, e.index[0], e.index[-1]))
    eq_d = (run.capital + e["net"]).resample("1D").last().dropna()
    daily = pd.concat([pd.Series([run.capital]), eq_d.reset_index(drop=True)]).pct_change().iloc[1:]  # day 1 from capital
    assert len(daily) == len(eq_d)
    ppy = 365.0
    assert k["sharpe"] == pytest.approx(daily.mean() / daily.std(ddof=1) * math.sqrt(ppy), rel=1e-9)
    eq = run.capital + e["net"]
    assert k["max_drawdown"] == pytest.approx(float((1 - eq / eq.cummax()).max()), rel=1e-12)
    assert 0 <= k["time_in_market"] <= 1 and k["hedge_effectiveness"] > 0.9
    assert run.capital == P.notional


def test_store_round_trip_and_any_bar_size():
    st = Store(":memory:")
    seed_demo(st, days=6, timeframe="15m", seed=2, assets=("BTC",))
    m = load_market(st, venue="demo", timeframe="15m", start="2024-01-02T00:00Z", end="2024-01-06T00:00Z")
    r = run_backtest(CarryParams(min_net_carry=-0.01, exit=ExitParams(rearm=True, max_holding_hours=12)), m,
                     start="2024-01-02T00:00Z", end="2024-01-06T00:00Z", config=BacktestConfig(hedge_id="bt-15m"))
    assert (np.diff(r.equity.index.asi8) == 15 * 60 * 10**9).all()
    save_run(st, r, synthetic=True)
    save_run(st, r, synthetic=True)  # idempotent
    back = load_run(st, "bt-15m")
    assert back["run"]["mode"].iloc[0] == "backtest" and len(back["run"]) == 1
    assert len(back["fills"]) == len(r.fills) and len(back["transitions"]) == len(r.transitions)
    assert back["fills"]["fee"].sum() == pytest.approx(r.fills["fee"].sum())
    with pytest.raises(InvalidInput, match="hedge_id"):
        load_run(st, "nope")
    with pytest.raises(InvalidInput, match="perp bars"):
        load_market(st, venue="demo", perp_symbol="ETH/USDT:USDT", timeframe="15m")


def _spike_market() -> Market:
    idx = pd.date_range("2024-01-01", periods=24 * 8, freq="1h", tz="UTC")
    close = np.full(len(idx), 20_000.0)
    close[24 * 5:] = 26_000.0  # +30 % jump
    high = close * 1.001
    bars = pd.DataFrame({"open": close, "high": high, "low": close * 0.999, "close": close,
                         "volume": 1000.0}, index=idx)
    fund = pd.DataFrame({"funding_rate": 0.0003, "interval_hours": 8.0},
                        index=pd.date_range("2024-01-01 08:00", periods=23, freq="8h", tz="UTC"))
    return Market("binance", "BTC/USDT", "BTC/USDT:USDT", "1h", bars, bars.copy(), bars[["open", "high", "low",
                                                                                        "close"]].copy(), fund)


def test_paper_liquidation_is_booked_by_the_engine():
    p = CarryParams(min_net_carry=-0.01, leverage=LeverageParams(liq_buffer=0.05, max_leverage=5),
                    guards=GuardParams(liq_distance_close=0.001, liq_distance_reduce=0.002),
                    exit=ExitParams(max_holding_hours=None, stop_loss_pct=None, profit_target_pct=None,
                                    funding_unfavourable_intervals=None))
    r = run_backtest(p, _spike_market(), start="2024-01-02T00:00Z")
    assert len(r.liquidations) == 1 and r.kpis["n_liquidations"] == 1
    assert (r.fills["client_order_id"].str.startswith("liq-")).sum() == 1
    # the engine's perp leg follows the venue: flat right after the liquidation, then re-hedged
    t_liq = r.fills.loc[r.fills["client_order_id"].str.startswith("liq-"), "ts"].iloc[0]
    assert r.equity["perp_price"].loc[t_liq] == 26_000.0
    assert r.equity["perp_price_pnl"].iloc[-1] < -0.15 * p.notional  # the short lost ~ its margin
    # the engine's perp ledger equals the venue's fills (each liquidation booked exactly once)
    f = r.fills[r.fills["leg"] == "perp"]
    sg = np.where(f["side"] == "buy", 1.0, -1.0)
    pos = float((sg * f["qty"]).sum())
    assert r.equity["perp_qty"].iloc[-1] == pytest.approx(pos, abs=1e-12)
    cash = float((-sg * f["qty"] * f["price"]).sum())
    assert r.equity["perp_price_pnl"].iloc[-1] == pytest.approx(cash + pos * r.equity["mark_price"].iloc[-1],
                                                                abs=1e-6)


def test_voltier_ltv_and_tearsheet(tmp_path, demo):
    p = VolTierLoanParams(collateral_qty=1.0, loan=0.6 * float(demo.spot["close"].iloc[72]), reserve=5000,
                          perp_leverage=5, guards=GuardParams(liq_distance_close=0.05, liq_distance_reduce=0.1))
    r = run_backtest(p, demo, config=BacktestConfig(hedge_id="vt-1"))
    lt = r.equity["ltv"]
    assert lt.notna().all()
    first = lt.iloc[0]
    assert first == pytest.approx(p.loan / r.equity["spot_price"].iloc[0], rel=1e-3)
    assert "ltv_below_65" in r.kpis and "time_in_SAFE" in r.kpis and "loan_coverage" in r.kpis
    assert sum(r.kpis[f"time_in_{b}"] for b in ("SAFE", "MONITOR", "WARNING", "CRITICAL", "EMERGENCY")) == \
        pytest.approx(1.0)
    fig = ltv_figure(r)
    assert len(fig.layout.shapes) == 5
    full = tearsheet(r)
    assert len(full.data) >= 8
    out = to_html(r, tmp_path / "vt.html")
    text = out.read_text()
    assert "net_apr" in text and "plotly" in text.lower() and len(text) > 100_000
    assert set(kpi_table(r)["kpi"]) == set(r.kpis)


def test_bad_window_is_refused(demo):
    with pytest.raises(InvalidInput, match="start/end"):
        build_timeline(demo, start="2030-01-01", end="2030-02-01")


def test_hold_benchmark_and_sweep_figures(run):
    from hedge_core.backtest.kpis import hold_pnl
    from hedge_core.ui.figures.sweep import (
        equity_vs_hold,
        heatmap,
        mc_histograms,
        parallel_coordinates,
    )

    s = run.equity["spot_price"]
    h = hold_pnl(s, 10_000.0, fee_rate=0.001)
    assert h.iloc[0] == pytest.approx(-10.0)
    assert h.iloc[-1] == pytest.approx(10_000.0 / s.iloc[0] * (s.iloc[-1] - s.iloc[0]) - 10.0)
    assert len(equity_vs_hold(run, h).data) == 2
    t = pd.DataFrame({"a": [1, 1, 2, 2], "b": [5, 6, 5, 6], "sharpe": [0.1, 0.2, np.nan, 0.4], "net_apr": [1, 2, 3, 4]})
    hm = heatmap(t, "a", "b", "sharpe")
    assert hm.data[0].z.shape == (2, 2) and np.isnan(hm.data[0].z[0][1])
    assert len(parallel_coordinates(t, ["a", "b"], "sharpe", ["net_apr"]).data[0].dimensions) == 3
    assert len(mc_histograms(t, ("sharpe", "net_apr")).data) == 2
    with pytest.raises(InvalidInput, match="columns"):
        heatmap(t, "a", "zz")


def test_runs_inside_a_running_event_loop(demo):
    import asyncio

    async def inside():
        return run_backtest(P, demo, end=demo.first + pd.Timedelta(days=8))
    r = asyncio.run(inside())  # as in Jupyter, where a loop is already running
    assert len(r.equity) > 100


def test_save_run_writes_snapshots_ltv_and_reserve(demo):
    p = VolTierLoanParams(collateral_qty=1.0, loan=0.74 * float(demo.spot["close"].iloc[72]), reserve=5000,
                          perp_leverage=5, guards=GuardParams(liq_distance_close=0.05, liq_distance_reduce=0.1))
    r = run_backtest(p, demo, config=BacktestConfig(hedge_id="vt-save"))
    st = Store(":memory:")
    save_run(st, r, synthetic=True)
    back = load_run(st, "vt-save")
    assert len(back["ltv_history"]) == len(r.equity)
    snaps = st.read_table("position_snapshots", hedge_id="vt-save")
    assert len(snaps) >= 2 and set(snaps["symbol"]) == {"BTC/USDT", "BTC/USDT:USDT"}
    dep = st.read_table("reserve_deployments", hedge_id="vt-save")
    g = r.guard_firings[r.guard_firings["action"] == "deploy_reserve"]
    assert len(g) > 0 and len(dep) == g["ts"].nunique()  # starts at 74 % LTV: the reserve is deployed
    assert dep["cumulative"].iloc[-1] == pytest.approx(dep["amount"].sum())


def test_cross_and_grid_strategies_run_event_driven():
    from hedge_core.params.models import CrossHedgeParams, GridParams

    frames = generate_demo_market(days=25, timeframe="1h", seed=13, assets=("BTC", "ETH"))
    eth = market_from_frames(frames, asset="ETH")
    btc = market_from_frames(frames, asset="BTC")
    cross = Market(btc.venue, "ETH/USDT", "BTC/USDT:USDT", "1h", eth.spot, btc.perp, btc.mark, btc.funding)
    for p, m in ((CrossHedgeParams(min_correlation=0.0), cross), (GridParams(), btc)):
        r = run_backtest(p, m)
        e = r.equity
        assert r.kpis["entries"] >= 1 and len(r.fills) >= 1
        np.testing.assert_allclose(e["net"], e["price_pnl"] + e["funding"] - e["fees"] - e["interest"], atol=1e-8)
        assert set(r.fills["symbol"]) <= {m.spot_symbol, m.perp_symbol}


def test_loan_book_reports_loan_money(demo):
    p = VolTierLoanParams(collateral_qty=1.0, loan=0.6 * float(demo.spot["close"].iloc[72]), reserve=5000,
                          perp_leverage=5, guards=GuardParams(liq_distance_close=0.05, liq_distance_reduce=0.1))
    r = run_backtest(p, demo)
    days = (r.end - r.start).total_seconds() / 86400
    assert r.kpis["loan_interest"] == pytest.approx(p.loan * p.loan_apr * days / 365, rel=0.05)
    assert r.kpis["loan_outstanding"] <= p.loan + r.kpis["loan_interest"] + 1e-6


def test_kpis_read_as_percentages_with_units_and_a_carry_has_no_empty_ltv_panel(run, tmp_path):
    from hedge_core.ui.figures.tearsheet import format_kpi, has_loan, kpi_unit, to_html_text

    t = kpi_table(run).set_index("kpi")
    assert t.loc["net_apr", "unit"] == "% per year"
    assert t.loc["net_apr", "value"] == f"{run.kpis['net_apr'] * 100:,.2f} %"
    assert t.loc["net_pnl", "unit"] == "USDT" and t.loc["entries", "unit"] == "count"
    assert format_kpi("max_drawdown", 0.1234) == "12.34 %" and format_kpi("sharpe", float("nan")) == "n/a"
    assert kpi_unit("time_in_SAFE") == "% of time"
    # a carry has no loan: no LTV panel (the old tearsheet drew an empty one with a note)
    assert not has_loan(run)
    fig = tearsheet(run)
    titles = [a.text for a in fig.layout.annotations]
    assert not any(t.startswith("LTV") for t in titles) and "drawdown (%)" in titles
    axes = [getattr(fig.layout, k) for k in fig.layout if k.startswith("xaxis")]
    assert axes and all(a.type == "date" and a.showticklabels for a in axes)  # dates under every panel
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0  # legend below, not over a title
    html_text = to_html_text(run)
    assert "% per year" in html_text and html_text.startswith("<!DOCTYPE html>")
