"""The cross-venue carry (``xcarry``) on the fast path: the hedge kernel fed both venues' models.

Reference: the cross-venue backtest (``backtest.xvenue.run_cross_venue_backtest``: one engine, two
paper venues) — same fills, snapshots, transitions and KPIs to float round-off, on synthetic markets
(exits on the received APR, re-entries, 1h and 8h perp venues) and on the shared cross-venue funding
(Binance spot / Bybit and OKX perps). Hand-computed: the entry threshold from the funding spread and
BOTH venues' fees, each leg's fee at its own venue's rate, the exit instant of ``exit_below_apr``.
Each leg fills at its own venue's slippage and impact. Refusals: a spot venue's participation cap or noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hedge_core.backtest.fast import FastPathUnsupported, entry_signal
from hedge_core.backtest.fast.xvenue import fast_xvenue_kpis, run_fast_xvenue, two_venue_paper
from hedge_core.backtest.timeline import Market
from hedge_core.backtest.xvenue import CrossVenueConfig, cross_venue_market
from hedge_core.errors import InvalidInput
from hedge_core.exchange.costs import from_paper, resolve_costs
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.params.models import ExitParams
from hedge_core.params.xcarry import CrossCarryParams
from tests.support.parity import assert_fast_equals_xvenue
from tests.support.xcarry_market import okx_funding_market

pytestmark = pytest.mark.filterwarnings("ignore::hedge_core.exchange.costs.CostModelWarning")

T0 = pd.Timestamp("2024-01-01T00:00Z")
NO_EXIT = ExitParams(max_holding_hours=None, profit_target_pct=None, stop_loss_pct=None,
                     funding_unfavourable_intervals=None, rearm=True)


def market(rates: list[tuple[float, float]], *, days: int = 10, interval_h: float = 1.0, premium: float = 1.0001,
           wave: float = 300.0) -> Market:
    """Hourly Binance prices (perp = spot x ``premium``) and okx funding every ``interval_h``:
    ``rates`` = [(from day, rate), ...] (the last one that started applies)."""
    hours = 24 * days
    idx = pd.date_range(T0, periods=hours, freq="1h", tz="UTC")
    close = 40_000.0 + wave * np.sin(np.arange(hours) / 15.0)
    spot = pd.DataFrame({"open": close, "high": close * 1.0005, "low": close * 0.9995, "close": close,
                         "volume": 5_000.0}, index=idx)
    perp = spot.assign(open=close * premium, close=close * premium)
    return okx_funding_market(spot, perp, rates, interval_h)


def xparams(**kw) -> CrossCarryParams:
    base = {"notional": 8_000.0, "min_funding_rate": 0.00001, "min_net_carry": 0.0, "spot_venue": "binance",
            "perp_venue": "okx", "spot_taker_fee": 0.001, "perp_taker_fee": 0.0005, "exit": NO_EXIT,
            "slippage_rate": 0.0, "expected_hold_intervals": 48}
    base.update(kw)
    return CrossCarryParams(**base)


# ---- parity with the cross-venue backtest ----------------------------------------------------------------

@pytest.mark.parametrize("interval_h", [1.0, 8.0])
def test_fast_equals_the_cross_venue_backtest_through_exits_and_reentries(interval_h):
    # funding pays, collapses (received APR below exit_below_apr), then pays again: enter, exit, re-enter
    m = market([(0, 0.0001 * interval_h), (4, 0.000005 * interval_h), (6, 0.0002 * interval_h)],
               interval_h=interval_h)
    run, fa = assert_fast_equals_xvenue(xparams(exit_below_apr=0.1), m, start=T0 + pd.Timedelta(days=1))
    triggers = list(fa.transitions["trigger_name"])
    assert triggers.count("EXIT_SIGNAL") >= 1 and run.result.kpis["entries"] >= 2
    # the perp venue's own fee and funding: per venue rows of the event run equal the fast ledger
    perp = fa.fills[fa.fills["leg"] == "perp"]
    assert run.per_venue.loc["okx", "fees"] == pytest.approx(perp["fee"].sum(), rel=1e-12)
    assert run.per_venue.loc["okx", "funding"] == pytest.approx(fa.snap[-1, 2], rel=1e-12)


def test_fast_equals_the_cross_venue_backtest_without_the_apr_exit_and_with_own_venue_models():
    m = market([(0, 0.0001)], wave=800.0)
    cfg = CrossVenueConfig(spot_paper=PaperConfig(venue="binance", spot_taker_fee=0.00075),
                           perp_paper=PaperConfig(venue="okx", perp_taker_fee=0.0004), spot_usdt=20_000.0,
                           perp_usdt=9_000.0, capital=10_000.0)
    run, fa = assert_fast_equals_xvenue(xparams(), m, cfg, start=T0 + pd.Timedelta(days=1))
    fills = fa.fills
    assert (fills["leg"] == "spot").any() and (fills["leg"] == "perp").any()
    assert run.per_venue.loc["binance", "wallet_start"] == 20_000.0


def test_no_entry_is_no_fill_on_both_paths():
    # a rate that never pays both venues' fees over the hold: no entry on either path
    assert_fast_equals_xvenue(xparams(), market([(0, 0.00002)]), fills_required=False,
                              start=T0 + pd.Timedelta(days=1))


# ---- hand-computed: the entry decision and each leg's fee ----------------------------------------------------

def test_entry_threshold_is_the_funding_spread_net_of_both_venues_fees():
    # flat prices (perp = spot: no basis term), okx settles hourly, hold 10 intervals, no slippage in the filter.
    # round trip = 2 x 0.001 (binance spot) + 2 x 0.0005 (okx perp) = 0.003 of the notional;
    # carry over the hold = rate x 8760 / 1h x (10 h / 24) / 365 = 10 x rate: enters from rate 0.0003.
    m = market([(0, 0.00029), (3, 0.00031)], premium=1.0, wave=0.0)
    p = xparams(expected_hold_intervals=10)
    fa = run_fast_xvenue(p, m, start=T0 + pd.Timedelta(days=1))
    tl = fa.timeline
    a, b = PaperConfig(venue="binance", spot_taker_fee=0.001), PaperConfig(venue="okx", perp_taker_fee=0.0005)
    ok = entry_signal(resolve_costs(p, from_paper(a, b)), tl)
    rate = tl.last_rate
    assert ok[tl.priced & (rate == 0.00029)].sum() == 0 and ok[tl.priced & (rate == 0.00031)].all()
    # the perp leg costed at the spot venue's 0.001 would need 10 x rate >= 0.004: 0.00031 does not enter
    assert not entry_signal(resolve_costs(p, from_paper(a, PaperConfig(venue="okx", perp_taker_fee=0.001))), tl).any()
    first = fa.fills["ts"].iloc[0]
    switch = T0 + pd.Timedelta(days=3)
    assert switch < first <= switch + pd.Timedelta(hours=1)  # the first market update after the 0.00031 settlement
    # each leg pays its own venue's fee rate on its fill notional
    f = fa.fills.set_index("leg")
    assert f.loc["spot", "fee"] == pytest.approx(f.loc["spot", "qty"] * f.loc["spot", "price"] * 0.001, rel=1e-12)
    assert f.loc["perp", "fee"] == pytest.approx(f.loc["perp", "qty"] * f.loc["perp", "price"] * 0.0005, rel=1e-12)


@pytest.mark.parametrize(("threshold", "exits"), [(0.05, True), (0.04, False)])
def test_exit_below_apr_fires_at_the_first_update_after_the_rate_drops(threshold, exits):
    # 0.000005 per 1h settlement received by the short perp = 0.000005 x 8760 = 0.0438 a year
    m = market([(0, 0.0001), (4, 0.000005)], interval_h=1.0)
    p = xparams(exit_below_apr=threshold, exit=NO_EXIT.model_copy(update={"rearm": False}))
    run, fa = assert_fast_equals_xvenue(p, m, start=T0 + pd.Timedelta(days=1))
    tr = fa.transitions[fa.transitions["trigger_name"] == "EXIT_SIGNAL"]
    if exits:
        drop = T0 + pd.Timedelta(days=4)
        assert len(tr) == 1 and drop < tr["ts"].iloc[0] <= drop + pd.Timedelta(hours=1)
        assert "funding APR received" in run.result.transitions.query("trigger_name == 'EXIT_SIGNAL'")["reason"].iloc[0]
    else:
        assert tr.empty


# ---- refusals -------------------------------------------------------------------------------------------

def test_each_leg_fills_at_its_own_venues_slippage_and_impact():
    # exchange/paper/core.py: bps = slippage_bps + impact_k_bps x sqrt(qty / bar volume); the bars trade 5,000 BTC.
    # Spot venue binance 3 bps + 400 bps impact, perp venue okx 0.5 bps and no impact
    m = market([(0, 0.0001), (4, 0.000005), (6, 0.0002)], wave=800.0)
    start = T0 + pd.Timedelta(days=1)
    p = xparams(exit_below_apr=0.1)

    def cfg(spot_bps: float, spot_k: float) -> CrossVenueConfig:
        return CrossVenueConfig(spot_paper=PaperConfig(venue="binance", slippage_bps=spot_bps, impact_k_bps=spot_k),
                                perp_paper=PaperConfig(venue="okx", slippage_bps=0.5, impact_k_bps=0.0))

    run, fa = assert_fast_equals_xvenue(p, m, cfg(3.0, 400.0), start=start)
    assert run.result.kpis["entries"] >= 2
    ts = pd.DatetimeIndex(np.asarray(fa.timeline.ts).view("datetime64[ns]")).tz_localize("UTC")
    ref = pd.Series(fa.timeline.spot, index=ts)
    perp_ref = pd.Series(fa.timeline.perp, index=ts)
    for _, f in fa.fills.iterrows():
        sign = 1.0 if f["side"] == "buy" else -1.0
        if f["leg"] == "spot":
            bps = 3.0 + 400.0 * np.sqrt(f["qty"] / 5_000.0)
            assert f["price"] == pytest.approx(ref[f["ts"]] * (1 + sign * bps / 1e4), rel=1e-12)
        else:
            assert f["price"] == pytest.approx(perp_ref[f["ts"]] * (1 + sign * 0.5 / 1e4), rel=1e-12)
    # the feature changes the fills: the spot venue at the perp venue's model fills the spot leg elsewhere
    same = run_fast_xvenue(p, m, config=cfg(0.5, 0.0), start=start)
    a, b = fa.fills[fa.fills["leg"] == "spot"], same.fills[same.fills["leg"] == "spot"]
    assert len(a) >= 3 and not np.allclose(a["price"].to_numpy()[:3], b["price"].to_numpy()[:3], rtol=1e-7)


def test_what_the_kernel_holds_once_must_agree_across_the_venues():
    m = market([(0, 0.0001)])
    for spot, why in ((PaperConfig(venue="binance", participation=0.1), "participation cap on the spot venue"),
                      (PaperConfig(venue="binance", slippage_noise_bps=1.0), "slippage noise on the spot venue")):
        with pytest.raises(FastPathUnsupported, match=why):
            fast_xvenue_kpis(xparams(), m, config=CrossVenueConfig(spot_paper=spot))
    with pytest.raises(InvalidInput, match="CrossCarryParams"):
        run_fast_xvenue(xparams().as_carry(), m)  # type: ignore[arg-type]


def test_two_venue_paper_takes_the_spot_leg_from_a_and_the_rest_from_b():
    a = PaperConfig(venue="binance", spot_taker_fee=0.0008, perp_taker_fee=0.0009)
    b = PaperConfig(venue="okx", spot_taker_fee=0.002, perp_taker_fee=0.0003)
    one = two_venue_paper(a, b, "BTC/USDT")
    assert (one.spot_taker_fee, one.perp_taker_fee) == (0.0008, 0.0003)
    inst = {i.symbol: i for i in one.instruments}
    sa = next(i for i in a.instruments if i.symbol == "BTC/USDT")
    assert inst["BTC/USDT"].lot_size == sa.lot_size and inst["BTC/USDT"].min_notional == sa.min_notional
    assert inst["BTC/USDT:USDT"] == next(i for i in b.instruments if i.symbol == "BTC/USDT:USDT")
    with pytest.raises(InvalidInput, match="spot symbol"):
        two_venue_paper(a, b, "NOPE/USDT")


# ---- the shared cross-venue funding --------------------------------------------------------------------------

@pytest.mark.shared_data
@pytest.mark.parametrize(("perp_venue", "exit_below_apr"), [("bybit", None), ("okx", None), ("bybit", 0.03)])
def test_fast_equals_the_cross_venue_backtest_on_the_shared_funding(shared_data, perp_venue, exit_below_apr):
    from hedge_core.data.shared import market_data

    md = market_data()
    m = cross_venue_market(md.market("BTC"), md.crossvenue_funding(), perp_venue=perp_venue).window(
        "2023-03-01", "2023-05-01")
    p = xparams(perp_venue=perp_venue, perp_taker_fee=0.00055, min_funding_rate=0.00005, expected_hold_intervals=21,
                exit_below_apr=exit_below_apr, exit=ExitParams(max_holding_hours=24 * 7, rearm=True))
    run, fa = assert_fast_equals_xvenue(p, m, start="2023-03-04", end="2023-05-01")
    assert run.result.kpis["entries"] >= 1 and len(run.result.funding_payments) > 5


@pytest.mark.shared_data
def test_fast_equals_the_cross_venue_backtest_with_each_venues_slippage_on_the_shared_funding(shared_data):
    from hedge_core.data.shared import market_data

    md = market_data()
    m = cross_venue_market(md.market("BTC"), md.crossvenue_funding(), perp_venue="bybit").window(
        "2023-03-01", "2023-05-01")
    p = xparams(perp_venue="bybit", perp_taker_fee=0.00055, min_funding_rate=0.00005, expected_hold_intervals=21,
                exit=ExitParams(max_holding_hours=24 * 7, rearm=True))
    cfg = CrossVenueConfig(spot_paper=PaperConfig(venue="binance", slippage_bps=2.0, impact_k_bps=30.0),
                           perp_paper=PaperConfig(venue="bybit", slippage_bps=0.5, impact_k_bps=5.0))
    run, fa = assert_fast_equals_xvenue(p, m, cfg, start="2023-03-04", end="2023-05-01")
    assert run.result.kpis["entries"] >= 1
    f = fa.fills
    unit = f["slippage"] / (f["qty"] * f["price"])  # each fill's slippage per unit notional
    assert unit[f["leg"] == "spot"].min() > 2.0e-4 - 1e-9 and unit[f["leg"] == "perp"].max() < 2.0e-4
