"""Sweeps and walk-forward over the cross-venue carry (``xcarry``).

The reference for every sweep row is the single run (:func:`run_cross_venue_backtest`) of the same
parameters on the same perp venue's timeline; local workers give the rows a serial sweep gives; the
sweep runs xcarry on the fast path (the hedge kernel fed both venues' models) and falls back to the
cross-venue backtest when the fast path refuses; a perp venue the payload has no funding for is named
in the row's error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hedge_core.backtest.event import BacktestConfig
from hedge_core.backtest.sweep import Payload, close_pool, grid_points, run_sweep, walk_forward
from hedge_core.backtest.timeline import Market, build_timeline
from hedge_core.backtest.xvenue import CrossVenueConfig, cross_venue_market, run_cross_venue_backtest
from hedge_core.backtest.xvenue_sweep import VenueMarkets, VenueTimelines, cross_venue_config, venue_markets
from hedge_core.engine.strategies import strategy_for
from hedge_core.errors import InvalidInput
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.params.models import ExitParams
from hedge_core.params.xcarry import CrossCarryParams

T0 = pd.Timestamp("2024-01-01T00:00Z")
NO_EXIT = ExitParams(max_holding_hours=None, profit_target_pct=None, stop_loss_pct=None,
                     funding_unfavourable_intervals=None)
KPIS = ("net_pnl", "funding", "fees", "entries", "sharpe", "max_drawdown", "n_fills")


def prices(days: int = 20) -> Market:
    hours = 24 * days
    idx = pd.date_range(T0, periods=hours, freq="1h", tz="UTC")
    close = 40_000.0 + 300.0 * np.sin(np.arange(hours) / 15.0)
    spot = pd.DataFrame({"open": close, "high": close * 1.0005, "low": close * 0.9995, "close": close,
                         "volume": 5_000.0}, index=idx)
    perp = spot.assign(open=close * 1.0001, close=close * 1.0001)
    return Market("binance", "BTC/USDT", "BTC/USDT:USDT", "1h", spot, perp, perp, None)


def crossvenue(days: int = 20) -> pd.DataFrame:
    """okx pays 0.0003 per 8h for the first half then 0.00002, bybit the reverse."""
    ft = pd.date_range(T0 + pd.Timedelta(hours=8), T0 + pd.Timedelta(days=days) - pd.Timedelta(hours=1), freq="8h",
                       tz="UTC")
    first = ft < T0 + pd.Timedelta(days=days / 2)
    okx = np.where(first, 0.0003, 0.00002)
    bybit = np.where(first, 0.00002, 0.0003)
    return pd.concat([pd.DataFrame({"ts": ft, "venue": v, "symbol": "BTCUSDT", "funding_rate": r,
                                    "interval_hours": 8.0}) for v, r in (("okx", okx), ("bybit", bybit))],
                     ignore_index=True)


def xparams(**kw) -> CrossCarryParams:
    base = {"notional": 8_000.0, "min_funding_rate": 0.0001, "min_net_carry": 0.0, "spot_venue": "binance",
            "perp_venue": "okx", "spot_taker_fee": 0.001, "perp_taker_fee": 0.0005, "exit": NO_EXIT,
            "slippage_rate": 0.0, "exit_below_apr": 0.05}
    base.update(kw)
    return CrossCarryParams(**base)


GRID = {"min_funding_rate": [0.0001, 0.0005], "expected_hold_intervals": [3, 30], "perp_venue": ["okx", "bybit"]}


@pytest.fixture(scope="module")
def timelines() -> VenueTimelines:
    return venue_markets(prices(), crossvenue(), ["okx", "bybit"]).timelines(start=T0 + pd.Timedelta(days=2))


def test_the_sweep_runs_xcarry_on_the_fast_path_and_falls_back_to_the_cross_venue_backtest(timelines):
    from hedge_core.backtest.fast import FastPathUnsupported
    from hedge_core.backtest.fast.xvenue import fast_xvenue_kpis

    p = xparams()
    assert strategy_for(p).fast_kernel == "hedge"
    table = run_sweep(p, [{"expected_hold_intervals": 30}], payload=Payload(timelines), workers=0, show_progress=False)
    assert table.loc[0, "path"] == "fast" and table.loc[0, "error"] == ""
    # a spot venue slippage different from the perp venue's: each leg at its own venue's, on the fast path,
    # the row equal to the single cross-venue backtest
    cfg = CrossVenueConfig(spot_paper=PaperConfig(venue="binance", slippage_bps=3.0, impact_k_bps=20.0))
    table = run_sweep(p, [{"expected_hold_intervals": 30}], payload=Payload(timelines, config=cfg), workers=0,
                      show_progress=False)
    single = run_cross_venue_backtest(p.model_copy(update={"expected_hold_intervals": 30}),
                                      timelines.for_venue("okx"), config=cfg)
    assert table.loc[0, "path"] == "fast" and table.loc[0, "error"] == "" and table.loc[0, "entries"] >= 1
    assert table.loc[0, "net_pnl"] == pytest.approx(single.result.kpis["net_pnl"], rel=1e-9, abs=1e-9)
    # slippage noise on the spot venue cannot be replayed: refused, and the sweep row is then the cross-venue
    # backtest's (path "event"), equal to the single run
    cfg = CrossVenueConfig(spot_paper=PaperConfig(venue="binance", slippage_noise_bps=1.0))
    with pytest.raises(FastPathUnsupported, match="slippage noise on the spot venue"):
        fast_xvenue_kpis(p, timelines.for_venue("okx"), config=cfg)
    table = run_sweep(p, [{"expected_hold_intervals": 30}], payload=Payload(timelines, config=cfg), workers=0,
                      show_progress=False)
    single = run_cross_venue_backtest(p.model_copy(update={"expected_hold_intervals": 30}),
                                      timelines.for_venue("okx"), config=cfg)
    assert table.loc[0, "path"] == "event" and table.loc[0, "error"] == ""
    assert table.loc[0, "net_pnl"] == single.result.kpis["net_pnl"] and table.loc[0, "entries"] >= 1
    # prefer_fast off: the event path, same KPIs as the fast row
    fast = run_sweep(p, [{"expected_hold_intervals": 30}], payload=Payload(timelines), workers=0, show_progress=False)
    event = run_sweep(p, [{"expected_hold_intervals": 30}], payload=Payload(timelines, prefer_fast=False), workers=0,
                      show_progress=False)
    assert event.loc[0, "path"] == "event"
    for k in KPIS:
        assert fast.loc[0, k] == pytest.approx(event.loc[0, k], rel=1e-9, abs=1e-9, nan_ok=True), k


def test_sweep_rows_equal_single_runs_on_each_perp_venue(timelines):
    table = run_sweep(xparams(), grid_points(GRID), payload=Payload(timelines), workers=0, show_progress=False)
    assert len(table) == 8 and (table["error"] == "").all() and (table["path"] == "fast").all()
    for _, row in table.iterrows():
        p = xparams(**{k: row[k] for k in GRID})
        single = run_cross_venue_backtest(p, timelines.for_venue(row["perp_venue"]), config=CrossVenueConfig())
        for k in KPIS:  # the fast path's row is the event path's single run to float round-off
            assert row[k] == pytest.approx(single.result.kpis[k], rel=1e-9, abs=1e-9, nan_ok=True), k
    # the grid does move the result: a 3-interval hold never pays 0.003 of fees at 0.0003 a settlement
    # (3 x 0.0003 < 0.003) so it does not enter; 30 intervals do (30 x 0.0003 = 0.009 > 0.003)
    low = table[table["min_funding_rate"] == 0.0001]
    assert (low[low["expected_hold_intervals"] == 3]["entries"] == 0).all()
    assert (low[low["expected_hold_intervals"] == 30]["entries"] >= 1).all()
    # and each venue's funding is its own: okx pays in the first half, bybit in the second
    held = low[low["expected_hold_intervals"] == 30].set_index("perp_venue")
    assert held.loc["okx", "funding"] != held.loc["bybit", "funding"]
    # a rate threshold above every rate: no entry anywhere
    assert (table[table["min_funding_rate"] == 0.0005]["entries"] == 0).all()


@pytest.mark.slow  # starts worker processes
def test_local_workers_give_the_serial_rows(timelines):
    points = grid_points(GRID)
    serial = run_sweep(xparams(), points, payload=Payload(timelines), workers=0, show_progress=False)
    try:
        parallel = run_sweep(xparams(), points, payload=Payload(timelines), workers=2, show_progress=False)
    finally:
        close_pool()
    pd.testing.assert_frame_equal(serial, parallel)


def test_a_perp_venue_without_funding_in_the_payload_is_named_in_the_row(timelines):
    p = xparams(spot_venue="kraken", perp_venue="okx")
    table = run_sweep(p, [{"perp_venue": "binanceusdm"}], payload=Payload(timelines), workers=0, show_progress=False)
    err = table.loc[0, "error"]
    assert "perp_venue" in err and "binanceusdm" in err and "['bybit', 'okx']" in err
    bare = run_sweep(p, [{"perp_venue": "okx"}], payload=Payload(timelines.for_venue("okx")), workers=0,
                     show_progress=False)
    assert "VenueTimelines" in bare.loc[0, "error"]


def test_a_backtest_config_becomes_both_venues_models_with_their_own_fees():
    p = xparams(spot_taker_fee=0.002, perp_taker_fee=0.0004)
    c = cross_venue_config(BacktestConfig(hedge_id="s", capital=5_000.0), p)
    assert c.spot_paper.spot_taker_fee == 0.002 and c.perp_paper.perp_taker_fee == 0.0004
    assert c.capital == 5_000.0 and c.hedge_id == "s"
    assert cross_venue_config(CrossVenueConfig(), p, capital=7.0).capital == 7.0


def test_walk_forward_picks_on_train_and_each_fold_is_the_single_run_on_its_test_window():
    vm = venue_markets(prices(), crossvenue(), ["okx", "bybit"])
    base = xparams()
    folds = walk_forward(base, {"perp_venue": ["okx", "bybit"], "expected_hold_intervals": [30]}, vm,
                         train="4D", test="3D", start=T0 + pd.Timedelta(days=2), metric="funding", workers=0,
                         show_progress=False)
    assert len(folds) == 4  # trains start on days 2, 5, 8, 11 (day 14 + 7 days passes the last bar at day 20)
    # okx pays 0.0003 before day 10 and bybit after: training on days 2-6 picks okx, on days 11-15 bybit
    by_start = folds.set_index("train_start")["perp_venue"]
    assert by_start[T0 + pd.Timedelta(days=2)] == "okx"
    assert by_start[T0 + pd.Timedelta(days=11)] == "bybit"
    for _, f in folds.iterrows():
        m = vm.by_venue[f["perp_venue"]]
        tl = build_timeline(m, start=f["test_start"], end=f["test_end"])
        single = run_cross_venue_backtest(xparams(perp_venue=f["perp_venue"], expected_hold_intervals=30), tl)
        assert f["test_net_pnl"] == pytest.approx(single.result.kpis["net_pnl"], rel=1e-9, abs=1e-9)
        assert f["test_funding"] == pytest.approx(single.result.kpis["funding"], rel=1e-9, abs=1e-9)


def test_walk_forward_takes_one_cross_venue_market_and_refuses_a_plain_one():
    m = cross_venue_market(prices(), crossvenue(), perp_venue="okx")
    assert list(VenueMarkets.of(m).by_venue) == ["okx"]
    folds = walk_forward(xparams(), {"expected_hold_intervals": [3, 30]}, m, train="5D", test="5D",
                         start=T0 + pd.Timedelta(days=2), workers=0, show_progress=False, metric="funding")
    # folds train from day 2 and day 7; on days 2-7 okx pays 0.0003: only the 30-interval hold enters
    assert len(folds) == 2 and folds.loc[0, "expected_hold_intervals"] == 30 and folds.loc[0, "train_funding"] > 0
    with pytest.raises(InvalidInput, match="cross-venue market"):
        walk_forward(xparams(), {"expected_hold_intervals": [3]}, prices(), train="5D", test="5D", workers=0)


@pytest.mark.shared_data
@pytest.mark.slow
def test_a_sweep_on_the_shared_cross_venue_funding(shared_data):
    from hedge_core.data.shared import market_data

    md = market_data()
    vm = venue_markets(md.market("BTC").window("2023-03-01", "2023-05-01"), md.crossvenue_funding(), ["bybit", "okx"])
    tls = vm.timelines(start="2023-03-04")
    base = xparams(perp_taker_fee=0.00055, exit_below_apr=None)
    grid = {"min_funding_rate": [0.00005, 0.0001], "expected_hold_intervals": [9, 21], "perp_venue": ["bybit", "okx"]}
    table = run_sweep(base, grid_points(grid), payload=Payload(tls), workers=0, show_progress=False)
    assert (table["error"] == "").all() and table["entries"].sum() >= 1
    for i in (0, 3, 7):
        row = table.iloc[i]
        p = xparams(perp_taker_fee=0.00055, exit_below_apr=None, **{k: row[k] for k in grid})
        single = run_cross_venue_backtest(p, tls.for_venue(row["perp_venue"]))
        assert row["path"] == "fast"
        assert row["net_pnl"] == pytest.approx(single.result.kpis["net_pnl"], rel=1e-9, abs=1e-9)
        assert row["funding"] == pytest.approx(single.result.kpis["funding"], rel=1e-9, abs=1e-9)


def test_the_payload_pickles_for_fork_server_workers():
    """A process with threads (a panel, a Jupyter kernel, the full test run) starts sweep workers through a
    fork server, which pickles the payload: the venue-keyed timelines must survive it."""
    import pickle
    from types import MappingProxyType

    from hedge_core.backtest.xvenue_sweep import VenueTimelines

    v = VenueTimelines(MappingProxyType({"bybit": 1, "okx": 2}))
    w = pickle.loads(pickle.dumps(v))
    assert dict(w.by_venue) == {"bybit": 1, "okx": 2} and w.for_venue("OKX") == 2
