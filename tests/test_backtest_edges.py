"""Research numbers at their edges (issue #13): the replay timeline's end, the entries KPI, day 1 in
Sharpe/Sortino, the LTV sampled before the engine acts, the drift threshold's units, and the
isolated margin the liquidation guard reads. Each checked against an independent reference (hand
computation, pandas, the paper venue's own book), and the fast path against the event path."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hedge_core.analytics.risk import brackets_for, table_key
from hedge_core.backtest.event import BacktestConfig, run_backtest
from hedge_core.backtest.timeline import Market, build_timeline, market_from_frames
from hedge_core.backtest.kpis import kpis_from_arrays
from hedge_core.data.demo import generate_demo_market
from hedge_core.engine.guards import _isolated_liquidation_price
from hedge_core.engine.ledger import apply_funding, book_fill, leg_from_instrument
from hedge_core.exchange.paper.core import PaperConfig, PaperCore, default_instruments
from hedge_core.backtest.fast import fast_kpis, run_fast
from hedge_core.params.models import CarryParams, ExitParams, RebalanceParams
from hedge_core.types import Bar, FundingEvent, MarginMode, MarketKind, OrderRequest, Side

P = CarryParams(min_net_carry=-0.01, exit=ExitParams(rearm=True, max_holding_hours=36))
DAY = 86_400_000_000_000


@pytest.fixture(scope="module")
def demo() -> Market:
    return market_from_frames(generate_demo_market(days=20, timeframe="1h", seed=5, assets=("BTC",)))


# ---- 1. the timeline ends at the last price bar -----------------------------------------------------


def _with_funding_outside(m: Market) -> Market:
    """The same market with 8-hourly funding 2 days before the first bar and 10 days past the last."""
    f = m.funding
    step = pd.Timedelta(hours=8)
    before = pd.date_range(f.index[0] - 6 * step, f.index[0] - step, freq=step)
    after = pd.date_range(m.last + step, m.last + 30 * step, freq=step)
    extra = pd.DataFrame({c: f[c].iloc[0] for c in f.columns}, index=before.append(after))
    extra["funding_rate"] = 0.003  # large: booked at a frozen mark it would dominate the PnL
    return Market(m.venue, m.spot_symbol, m.perp_symbol, m.timeframe, m.spot, m.perp, m.mark,
                  pd.concat([f, extra]).sort_index())


def test_timeline_is_cut_at_the_last_price_bar(demo):
    ext = _with_funding_outside(demo)
    last_end = max(demo.spot.index[-1], demo.perp.index[-1]) + demo.bar
    first_end = min(demo.spot.index[0], demo.perp.index[0]) + demo.bar
    tl = build_timeline(ext)
    assert tl.index[-1] == last_end and tl.index[0] == first_end
    assert not (tl.index[~np.isnan(tl.fund_rate)] > last_end).any()
    # reference: the same market with the out-of-range funding removed by hand
    trimmed = Market(demo.venue, demo.spot_symbol, demo.perp_symbol, demo.timeframe, demo.spot, demo.perp, demo.mark,
                     demo.funding[(demo.funding.index >= first_end) & (demo.funding.index <= last_end)])
    cfg = BacktestConfig(paper=PaperConfig(impact_k_bps=0.0, slippage_bps=2.0))
    a = run_backtest(P, ext, config=cfg)
    b = run_backtest(P, trimmed, config=cfg)
    assert a.end == last_end and len(a.fills) > 0
    assert a.funding_payments["ts"].max() <= last_end
    pd.testing.assert_frame_equal(a.equity, b.equity)
    # the APR's denominator is the data's span (by hand: net / capital x 365 d / days)
    days = (last_end - a.start).total_seconds() / 86_400
    assert a.kpis["net_apr"] == pytest.approx(a.kpis["net_pnl"] / a.capital * 365 / days, rel=1e-12)
    # the fast path (and so the sweeps) reads the same timeline
    fk = fast_kpis(P, ext, config=cfg)
    assert fk["net_pnl"] == pytest.approx(a.kpis["net_pnl"], rel=1e-12)
    assert fk["net_apr"] == pytest.approx(a.kpis["net_apr"], rel=1e-12)


# ---- 2. entries are filled entries --------------------------------------------------------------------


def _kpis(triggers, n=96, net=None, capital=1_000.0, **kw):
    ts = np.arange(n, dtype=np.int64) * 3_600_000_000_000 + 1_700_006_400_000_000_000  # 2023-11-15 00:00 UTC
    net = np.zeros(n) if net is None else net
    return kpis_from_arrays(ts, net, np.zeros(n), np.full(n, np.nan), np.full(n, 100.0), np.full(n, 100.0),
                            kw.pop("ltv", None), {"funding": 0.0}, np.array(triggers, dtype=object), None,
                            capital=capital, **kw)


def test_entries_count_filled_entries_not_attempts():
    trig = ["ENTRY_SIGNAL", "ENTRY_FAILED"] * 5 + ["ENTRY_SIGNAL", "SPOT_FILLED", "HEDGE_FILLED"]
    assert _kpis(trig)["entries"] == 1.0


def test_entries_of_a_run_whose_entries_are_refused(demo):
    # a spot wallet of 50 USDT: every entry of a 10,000 notional is refused by the venue
    r = run_backtest(P, demo, config=BacktestConfig(spot_usdt=50.0))
    trig = r.transitions["trigger_name"]
    assert (trig == "ENTRY_SIGNAL").sum() >= 2 and (trig == "ENTRY_FAILED").sum() >= 2
    assert r.kpis["entries"] == 0.0 and len(r.fills) == 0


def test_entries_match_the_times_the_book_left_flat(demo):
    r = run_backtest(P, demo, config=BacktestConfig())
    held = (r.equity["spot_qty"].abs() > 0).to_numpy()
    opened = int(held[0]) + int((held[1:] & ~held[:-1]).sum())  # independent: from the positions alone
    assert r.kpis["entries"] == opened >= 2


# ---- 3. Sharpe and Sortino include day 1 ---------------------------------------------------------------


def test_sharpe_and_sortino_include_the_first_day_by_hand():
    n = 96  # 4 UTC days of hourly instants
    net = np.zeros(n)
    ends = [30.0, 10.0, 45.0, 40.0]  # net PnL at the end of each day
    for d, v in enumerate(ends):
        net[d * 24:(d + 1) * 24] = np.linspace(v / 2, v, 24)
    k = _kpis([], n=n, net=net, capital=1_000.0)
    eq = [1_000.0] + [1_000.0 + v for v in ends]
    r = np.array([eq[i + 1] / eq[i] - 1 for i in range(4)])  # day 1 from the starting capital
    assert k["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(365), rel=1e-12)
    dd = math.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
    assert k["sortino"] == pytest.approx(r.mean() / dd * math.sqrt(365), rel=1e-12)
    # without day 1 it would be a different number: the test would fail on the old definition
    r3 = r[1:]
    assert abs(k["sharpe"] - r3.mean() / r3.std(ddof=1) * math.sqrt(365)) > 0.1


# ---- 4. LTV before the engine acts -----------------------------------------------------------------------


def test_ltv_kpis_read_the_higher_of_before_and_after():
    n = 96
    after = np.full(n, 0.40)
    before = np.full(n, np.nan)
    before[50] = 0.9965  # the breach the engine handled within the instant
    before[51:] = 0.40
    k = _kpis([], n=n, ltv=after, ltv_before=before)
    assert k["ltv_max"] == 0.9965
    assert k["ltv_below_65"] == pytest.approx(95 / 96)
    assert k["time_in_EMERGENCY"] == pytest.approx(1 / 96)
    assert _kpis([], n=n, ltv=after)["ltv_max"] == 0.40


# ---- 5. the drift threshold is absolute ------------------------------------------------------------------


def test_drift_threshold_is_absolute_hedge_ratio_units():
    from hedge_core.engine.context import HedgeContext

    desc = RebalanceParams.model_fields["drift_threshold"].description
    assert desc.startswith("rebalance when the drift |h - target| exceeds") and "absolute" in desc
    assert "|h - target|" in HedgeContext.drift.__doc__


# ---- 6. the guard's isolated margin is the venue's -------------------------------------------------------

PERP = "BTC/USDT:USDT"
T0 = pd.Timestamp("2024-01-01T00:00Z")
H = pd.Timedelta("1h")


def test_liquidation_price_matches_the_paper_venue_over_rearms_funding_and_partial_closes():
    lev = 5.0
    cfg = PaperConfig(slippage_bps=0.0, impact_k_bps=0.0, perp_taker_fee=0.0, perp_maker_fee=0.0)
    core = PaperCore(cfg, balances={"perp": {"USDT": 100_000.0}})
    core.set_margin_mode(PERP, MarginMode.ISOLATED)
    core.set_leverage(PERP, lev)
    inst = {i.symbol: i for i in default_instruments("binance")}[PERP]
    leg = leg_from_instrument("perp", inst)
    i = 0

    def price(px: float) -> None:
        nonlocal i
        for kind in (MarketKind.PERP, MarketKind.MARK):
            core.apply(Bar(T0 + i * H, "binance", PERP, kind, px, px, px, px, 1_000.0 if kind is MarketKind.PERP else 0.0))
        i += 1

    def trade(side: Side, qty: float, reduce: bool = False) -> None:
        nonlocal leg
        n0 = len(core.fills)
        core.create_order(OrderRequest(PERP, side, qty, f"o{n0}", reduce_only=reduce))
        for f in core.fills[n0:]:
            leg = book_fill(leg, f.side, f.qty, f.price, f.fee, f.fee_currency)

    def fund(rate: float) -> None:
        nonlocal leg
        n0 = len(core.funding_payments)
        core.apply(FundingEvent(T0 + i * H, "binance", PERP, rate))
        leg = apply_funding(leg, sum(p.amount for p in core.funding_payments[n0:]))

    def check() -> None:
        (pos,) = core.positions_view()
        mine = _isolated_liquidation_price(leg.qty, leg.avg_entry, lev, leg.margin_funding, table_key(brackets_for(PERP)))
        assert leg.qty == pytest.approx(pos.qty, abs=1e-12)
        assert mine == pytest.approx(pos.liquidation_price, rel=1e-10)

    # cycle 1: short, funding received (shorts receive positive rates), partial close, flat
    price(40_000.0)
    trade(Side.SELL, 0.5)
    for r in (0.002, 0.003, 0.001):
        fund(r)
        price(40_500.0)
    check()
    trade(Side.BUY, 0.2, reduce=True)
    check()
    fund(0.002)
    price(41_000.0)
    check()
    trade(Side.BUY, 0.3, reduce=True)
    assert leg.qty == 0.0 and leg.margin_funding == 0.0 and leg.funding > 0
    # cycle 2 (a re-arm): the venue starts the new position's margin without the old funding
    price(39_000.0)
    trade(Side.SELL, 0.4)
    check()
    fund(-0.001)
    price(39_200.0)
    check()
    trade(Side.SELL, 0.1)  # adding keeps the funding already in the margin
    check()
    trade(Side.BUY, 0.25, reduce=True)
    check()
    # the old rule (whole-life funding) disagrees with the venue once a cycle has ended
    (pos,) = core.positions_view()
    old = _isolated_liquidation_price(leg.qty, leg.avg_entry, lev, leg.funding, table_key(brackets_for(PERP)))
    assert abs(old - pos.liquidation_price) > 1.0


def test_crossing_zero_leaves_no_funding_in_the_margin():
    inst = {i.symbol: i for i in default_instruments("binance")}[PERP]
    leg = apply_funding(book_fill(leg_from_instrument("perp", inst), Side.SELL, 1.0, 100.0, 0.0, "USDT"), 5.0)
    assert leg.margin_funding == 5.0
    leg = book_fill(leg, Side.BUY, 1.5, 100.0, 0.0, "USDT")  # closes 1 and opens 0.5 long
    assert leg.qty == pytest.approx(0.5) and leg.margin_funding == 0.0 and leg.funding == 5.0


def test_fast_path_guard_margin_agrees_with_the_event_path_across_rearms(demo):
    # re-arming carry with a tight liquidation-close guard: the guard reads the margin at each
    # instant, so the first divergence in the margin would show up as different fills
    from hedge_core.params.models import GuardParams, LeverageParams
    from tests.support.parity import assert_fast_equals_event

    p = CarryParams(min_net_carry=-0.01, exit=ExitParams(rearm=True, max_holding_hours=24),
                    leverage=LeverageParams(min_leverage=10, max_leverage=10),
                    guards=GuardParams(liq_distance_close=0.06, liq_distance_reduce=0.05))
    tl = build_timeline(demo, start=demo.first + pd.Timedelta(days=3))
    ev, fa = assert_fast_equals_event(p, tl, kpis=True)
    assert (ev.transitions["trigger_name"] == "REARM").sum() >= 2
    assert run_fast(p, tl).fills.shape[0] == len(ev.fills)


@pytest.mark.shared_data
def test_ltv_breach_handled_within_the_instant_shows_in_the_kpis(shared_data):
    # the spec's default loan book (0.27 BTC against 16,200 USDT): LTV far above EMERGENCY at the
    # first update; the engine deploys the reserve and flattens in that same instant
    from hedge_core.backtest.timeline import load_market
    from hedge_core.data.importers import import_path
    from hedge_core.params.models import VolTierLoanParams
    from hedge_core.store import Store
    from tests.support.parity import assert_fast_equals_event

    st = Store(":memory:")
    for kind in ("spot_1h", "perp_1h", "mark_1h", "funding_8h"):
        import_path(st, shared_data / "sample_2023-01_2024-06" / f"binance_BTCUSDT_{kind}.csv")
    m = load_market(st, venue="binance", start="2024-03-01T00:00Z", end="2024-04-01T00:00Z")
    tl = build_timeline(m, start="2024-03-04T00:00Z", end="2024-04-01T00:00Z")
    p = VolTierLoanParams(collateral_qty=0.27)  # the specification's fixed collateral (the default sizes it for LTV 0.5)
    ev, fa = assert_fast_equals_event(p, tl, fills_required=False, ltv=True, kpis=True)
    e = ev.equity
    first = np.flatnonzero(tl.priced)[0]
    # by hand: the loan (no interest yet) over the collateral at the first known spot close
    assert e["ltv_before"].iloc[first] == pytest.approx(p.loan / (p.collateral_qty * tl.spot[first]), rel=1e-12)
    g = ev.guard_firings[ev.guard_firings["guard"].str.startswith("ltv_emergency")]
    assert len(g) == 1
    fired = float(g["numbers"].iloc[0]["ltv"])  # the LTV the engine's guard measured when it fired
    assert fired >= 0.85 and e["ltv"].max() < fired  # after the reserve, the post-action series never shows it
    assert ev.kpis["ltv_max"] == pytest.approx(max(fired, e["ltv_before"].max()), rel=1e-12)
    assert ev.kpis["ltv_below_65"] < 1.0 and ev.kpis["time_in_EMERGENCY"] > 0


@pytest.mark.shared_data
def test_guard_margin_is_the_venues_after_22_rearms_on_real_data(shared_data):
    """A re-arming carry on Binance BTC (Jan-Mar 2023) ends with a position open after 22
    re-arms: the guard's margin and liquidation price are the paper venue's own, to the cent."""
    from pathlib import Path

    from hedge_core.backtest.event import _balances, _replay
    from hedge_core.backtest.timeline import load_market
    from hedge_core.data.importers import import_path
    from hedge_core.engine.guards import perp_liquidation_price
    from hedge_core.store import Store

    st = Store(":memory:")
    for kind in ("spot_1h", "perp_1h", "mark_1h", "funding_8h"):
        import_path(st, Path(shared_data) / "sample_2023-01_2024-06" / f"binance_BTCUSDT_{kind}.csv")
    p = CarryParams(min_net_carry=-0.01, exit=ExitParams(rearm=True, max_holding_hours=72))
    m = load_market(st, venue="binance", start="2023-01-04T00:00Z", end="2023-04-01T05:00Z")
    tl = build_timeline(m, start="2023-01-04T00:00Z", end="2023-04-01T05:00Z")
    cfg = BacktestConfig()
    driver, core, rec, *_ = _replay(p, tl, cfg, _balances(p, cfg, tl.first_spot_price))
    assert sum(t["trigger_name"] == "REARM" for t in rec.transitions) >= 20
    (pos,) = core.positions_view()
    c = driver.ctx
    assert c.perp.qty == pos.qty and c.leverage == pos.leverage and str(pos.margin_mode) == "isolated"
    margin = abs(c.perp.qty) * c.perp.avg_entry / c.leverage + c.perp.margin_funding
    assert margin == pytest.approx(pos.margin, rel=1e-12)
    assert perp_liquidation_price(c) == pytest.approx(pos.liquidation_price, rel=1e-12)
    old = abs(c.perp.qty) * c.perp.avg_entry / c.leverage + c.perp.funding  # whole-life funding
    assert abs(old - pos.margin) > 100.0
