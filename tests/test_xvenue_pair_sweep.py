"""Sweeps and walk-forward over the cross-venue carry with TWO PERP legs (``legs = "perp_perp"``, issue #15
item 3: "sweeps and walk-forward over it like the others").

A pair sweep's payload is the same :class:`VenueTimelines` a spot/perp sweep uses, listing the FIRST venues
too: a point reads its second leg's funding from ``perp_venue``'s timeline and its first leg's from
``spot_venue``'s. References:
- every row is the single pair backtest (:func:`run_cross_venue_backtest` on a market built with
  ``cross_venue_market(..., first_venue=...)``) of the same parameters;
- one point is the hand ledger of ``tests/test_xvenue_perp_perp.py`` (fills at both venues' fees, each venue's
  funding at its own rates), re-derived here in plain arithmetic;
- a point naming one venue for both legs is that point's error row (the sweep goes on), naming the field.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hedge_core.backtest.sweep import Payload, grid_points, run_sweep, walk_forward
from hedge_core.backtest.timeline import Market
from hedge_core.backtest.xvenue import CrossVenueConfig, cross_venue_market, run_cross_venue_backtest
from hedge_core.backtest.xvenue_sweep import VenueMarkets, venue_markets
from hedge_core.params.models import ExitParams
from hedge_core.params.xcarry import CrossCarryParams
from tests.support.pair_hand import FEE_A, FEE_B, H
from tests.support.pair_hand import T0 as HAND_T0
from tests.support.pair_hand import hand_config as _config
from tests.support.pair_hand import hand_market as _market
from tests.support.pair_hand import hand_params as _params

T0 = pd.Timestamp("2024-01-01T00:00Z")
KPIS = ("net_pnl", "funding", "fees", "entries", "sharpe", "max_drawdown", "n_fills")
NO_EXIT = ExitParams(max_holding_hours=None, profit_target_pct=None, stop_loss_pct=None,
                     funding_unfavourable_intervals=None)


def prices(days: int = 20) -> Market:
    hours = 24 * days
    idx = pd.date_range(T0, periods=hours, freq="1h", tz="UTC")
    close = 40_000.0 + 300.0 * np.sin(np.arange(hours) / 15.0)
    spot = pd.DataFrame({"open": close, "high": close * 1.0005, "low": close * 0.9995, "close": close,
                         "volume": 5_000.0}, index=idx)
    perp = spot.assign(open=close * 1.0001, close=close * 1.0001)
    return Market("binance", "BTC/USDT", "BTC/USDT:USDT", "1h", spot, perp, perp, None)


def crossvenue(days: int = 20) -> pd.DataFrame:
    """okx pays 0.0003 per 8h for the first half then 0.00002, bybit the reverse; gate a flat 0.0001."""
    ft = pd.date_range(T0 + pd.Timedelta(hours=8), T0 + pd.Timedelta(days=days) - pd.Timedelta(hours=1), freq="8h",
                       tz="UTC")
    first = ft < T0 + pd.Timedelta(days=days / 2)
    series = (("okx", np.where(first, 0.0003, 0.00002)), ("bybit", np.where(first, 0.00002, 0.0003)),
              ("gate", np.full(len(ft), 0.0001)))
    return pd.concat([pd.DataFrame({"ts": ft, "venue": v, "symbol": "BTCUSDT", "funding_rate": r,
                                    "interval_hours": 8.0}) for v, r in series], ignore_index=True)


def pparams(**kw) -> CrossCarryParams:
    base = {"legs": "perp_perp", "notional": 8_000.0, "min_funding_rate": 0.0001, "min_net_carry": 0.0,
            "spot_venue": "bybit", "perp_venue": "okx", "first_perp_taker_fee": 0.00055, "perp_taker_fee": 0.0005,
            "exit": NO_EXIT, "slippage_rate": 0.0, "exit_below_apr": 0.05}
    base.update(kw)
    return CrossCarryParams(**base)


START = T0 + pd.Timedelta(days=2)


@pytest.fixture(scope="module")
def vm() -> VenueMarkets:
    return venue_markets(prices(), crossvenue(), ["okx", "bybit", "gate"])


def _single(p: CrossCarryParams, *, start=START, end=None, config: CrossVenueConfig = CrossVenueConfig()):
    m = cross_venue_market(prices(), crossvenue(), perp_venue=p.perp_venue, first_venue=p.spot_venue)
    return run_cross_venue_backtest(p, m, start=start, end=end, config=config)


def test_pair_sweep_rows_equal_single_pair_backtests(vm):
    grid = {"expected_hold_intervals": [3, 30], "spot_venue": ["bybit", "okx"], "perp_venue": ["okx", "gate"]}
    table = run_sweep(pparams(), grid_points(grid), payload=Payload(vm.timelines(start=START)), workers=0,
                      show_progress=False)
    assert len(table) == 8
    ok = table[table["spot_venue"] != table["perp_venue"]]
    assert len(ok) == 6 and (ok["error"] == "").all() and (ok["path"] == "fast").all()  # the pair kernel (fast.pair)
    for _, row in ok.iterrows():
        single = _single(pparams(**{k: row[k] for k in grid}))
        for k in KPIS:
            assert row[k] == pytest.approx(single.result.kpis[k], rel=1e-12, abs=1e-12, nan_ok=True), (k, dict(row))
    # the grid moves the result: 30 intervals enter (bybit/okx: spread 0.00028 per 8h x 30 = 0.0084 > the
    # 0.0025 round trip of the paper venues); 3 intervals do not (0.00084 < 0.0025); each pair its own spread
    held = ok[ok["expected_hold_intervals"] == 30].set_index(["spot_venue", "perp_venue"])
    assert (held["entries"] >= 1).all()
    assert (ok[ok["expected_hold_intervals"] == 3]["entries"] == 0).all()
    assert held.loc[("bybit", "okx"), "funding"] > 0 and held.loc[("bybit", "okx"), "funding"] != \
        held.loc[("bybit", "gate"), "funding"]
    # one venue for both legs (okx / okx): that point's row names the field, the others ran
    bad = table[table["spot_venue"] == table["perp_venue"]]
    assert len(bad) == 2 and (bad["path"] == "").all()
    assert all("perp_venue" in e and "two different venues" in e for e in bad["error"])


def test_a_pair_sweep_point_is_the_hand_ledger():
    # the payload built from the hand market of test_xvenue_perp_perp: both venues' timelines
    tls = VenueMarkets.of(_market()).timelines(start=HAND_T0 + H)
    assert sorted(tls.by_venue) == ["bybit", "okx"]
    table = run_sweep(_params(), [{"exit.max_holding_hours": 16}], payload=Payload(tls, config=_config()), workers=0,
                      show_progress=False)
    row = table.iloc[0]
    assert row["error"] == "" and row["path"] == "fast"
    # by hand (test_xvenue_perp_perp's ledger): long bybit / short okx 0.25 at 09:00 off 40,000, closed at 25:00
    # off 41,200; fills 2 bps off the reference; each venue's funding at 16:00 and 24:00 at its own rate
    q = 0.25
    buy_a, sell_b, sell_a, buy_b = 40_000.0 * 1.0002, 40_000.0 * 0.9998, 41_200.0 * 0.9998, 41_200.0 * 1.0002
    fees = q * (buy_a + sell_a) * FEE_A + q * (sell_b + buy_b) * FEE_B
    funding = -q * 40_420.0 * 0.00005 - q * 41_020.0 * 0.0002 + q * 40_420.0 * 0.0003 + q * 41_020.0 * 0.0006
    net = q * (sell_a - buy_a) + q * (sell_b - buy_b) + funding - fees
    assert row["net_pnl"] == pytest.approx(net, abs=1e-9)
    assert row["fees"] == pytest.approx(fees, abs=1e-9)
    assert row["funding"] == pytest.approx(funding, abs=1e-9)
    assert row["entries"] == 1


def test_a_pair_whose_first_venue_the_payload_lacks_is_named_in_its_row(vm):
    tls = venue_markets(prices(), crossvenue(), ["okx"]).timelines(start=START)
    table = run_sweep(pparams(), [{"expected_hold_intervals": 30}], payload=Payload(tls), workers=0,
                      show_progress=False)
    err = table.loc[0, "error"]
    assert "spot_venue" in err and "bybit" in err and "['okx']" in err
    # a bare Timeline is still refused for xcarry (which venue's funding it carries is unknown)
    bare = run_sweep(pparams(), [{"expected_hold_intervals": 30}], payload=Payload(tls.for_venue("okx")), workers=0,
                     show_progress=False)
    assert "VenueTimelines" in bare.loc[0, "error"]


def test_walk_forward_of_pairs_each_fold_is_the_single_pair_run_on_its_test_window(vm):
    base = pparams(expected_hold_intervals=30)
    folds = walk_forward(base, {"spot_venue": ["bybit", "okx"], "perp_venue": ["gate"]}, vm, train="4D", test="3D",
                         start=START, metric="funding", workers=0, show_progress=False)
    assert len(folds) == 4
    # before day 10 okx pays 0.0003 and bybit 0.00002 against gate's 0.0001: the okx/gate pair earns
    # 0.0002 a settlement short okx, bybit/gate only 0.00008 short gate; after day 10 it is the reverse
    by_start = folds.set_index("train_start")["spot_venue"]
    assert by_start[START] == "okx"
    assert by_start[T0 + pd.Timedelta(days=11)] == "bybit"
    for _, f in folds.iterrows():
        single = _single(pparams(expected_hold_intervals=30, spot_venue=f["spot_venue"], perp_venue="gate"),
                         start=f["test_start"], end=f["test_end"])
        assert f["test_net_pnl"] == pytest.approx(single.result.kpis["net_pnl"], rel=1e-12, abs=1e-12)
        assert f["test_funding"] == pytest.approx(single.result.kpis["funding"], rel=1e-12, abs=1e-12)
    # one pair market (cross_venue_market(..., first_venue=...)) is enough for a walk-forward of that pair
    m = cross_venue_market(prices(), crossvenue(), perp_venue="okx", first_venue="bybit")
    assert sorted(VenueMarkets.of(m).by_venue) == ["bybit", "okx"]
    one = walk_forward(pparams(), {"expected_hold_intervals": [3, 30]}, m, train="5D", test="5D", start=START,
                       metric="funding", workers=0, show_progress=False)
    assert len(one) == 2 and (one["test_error"] == "").all()
    assert one.loc[0, "expected_hold_intervals"] == 30 and one.loc[0, "train_funding"] > 0
