"""Two perp legs on two venues (``xcarry``, ``legs = "perp_perp"``) on the fast path (``fast.pair``).

Reference: the cross-venue backtest with a pair (``backtest.xvenue.run_cross_venue_backtest``: one engine, two
paper perp venues, each settling its own funding) - the same fills, per-instant snapshots, transitions and KPIs
(``tests/support/parity.assert_fast_equals_xvenue``) and the same funding PER LEG - on the demo market with
hand-set funding on each venue (several parameter sets: exits, re-entries in both directions, guards) and on the
shared Bybit/OKX funding. Independent reference: a ledger written out by hand in plain arithmetic (not through
``hedge_core.money``) that BOTH paths must meet, with the first leg SHORT (the mirror of the event path's own
hand ledger in ``tests/test_xvenue_perp_perp.py``, long first leg). Refusals name why.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from hedge_core.backtest.fast import FastPathUnsupported
from hedge_core.backtest.fast.pair import pair_timelines
from hedge_core.backtest.fast.xvenue import fast_xvenue_kpis, run_fast_xvenue
from hedge_core.backtest.timeline import Market, build_timeline, market_from_frames
from hedge_core.backtest.xvenue import CrossVenueConfig, cross_venue_market, run_cross_venue_backtest
from hedge_core.backtest.xvenue_pair import pair_market
from hedge_core.data.demo import generate_demo_market
from hedge_core.errors import InvalidInput
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.params.models import ExecutionParams, ExitParams, GuardParams, LeverageParams, RebalanceParams
from hedge_core.params.xcarry import CrossCarryParams
from tests.support.parity import assert_fast_equals_xvenue

pytestmark = pytest.mark.filterwarnings("ignore::hedge_core.exchange.costs.CostModelWarning")

T0 = pd.Timestamp("2024-01-01T00:00Z")
H = pd.Timedelta(hours=1)
FEE_A, FEE_B = 0.00055, 0.0005  # bybit / okx perpetual taker, VIP0
WALLET = 20_000.0
NO_EXIT = ExitParams(max_holding_hours=None, profit_target_pct=None, stop_loss_pct=None, trailing_giveback=None,
                     funding_unfavourable_intervals=None, rearm=True)


def _legs_funding(run, fa) -> None:
    """Funding per leg: the fast path's first-leg funding equals the event ledger's first leg and venue A's
    wallet records; the rest (second leg) equals B's."""
    r = run.result
    first = float(fa.first_leg_funding[-1])
    total = float(fa.snap[-1, 2])
    assert first == pytest.approx(r.ledger.loc["spot", "funding"], abs=1e-9)
    assert total - first == pytest.approx(r.ledger.loc["perp", "funding"], abs=1e-9)
    assert first == pytest.approx(run.per_venue.iloc[0]["funding"], abs=1e-9)
    assert total - first == pytest.approx(run.per_venue.iloc[1]["funding"], abs=1e-9)


# ---- the hand ledger both paths meet ------------------------------------------------------------------------

_SEGMENTS = [(0, 40_000.0, 40_000.0), (15, 40_400.0, 40_420.0), (16, 40_800.0, 40_790.0), (23, 41_000.0, 41_020.0),
             (24, 41_200.0, 41_190.0)]  # (first label, perp close, mark close) held until the next row's label
RATES_A = (0.0, 0.0005, 0.0003, 0.0006)  # bybit (the FIRST venue, the higher funding: its leg goes short)
RATES_B = (0.0, 0.0001, 0.00005, 0.0002)  # okx


def _funding(rates: tuple[float, ...]) -> pd.DataFrame:
    return pd.DataFrame({"funding_rate": list(rates), "interval_hours": 8.0},
                        index=pd.DatetimeIndex([T0 + k * 8 * H for k in range(len(rates))]))


def _hand_market(rates_b: tuple[float, ...] = RATES_B) -> Market:
    n = 27
    idx = pd.date_range(T0, periods=n, freq="1h", tz="UTC")
    cols = np.zeros((n, 2))
    for k, (first, p, m) in enumerate(_SEGMENTS):
        cols[first:_SEGMENTS[k + 1][0] if k + 1 < len(_SEGMENTS) else n] = (p, m)
    perp = pd.DataFrame({"open": cols[:, 0], "high": cols[:, 0], "low": cols[:, 0], "close": cols[:, 0],
                         "volume": 25.0}, index=idx)
    mark = pd.DataFrame({"open": cols[:, 1], "high": cols[:, 1], "low": cols[:, 1], "close": cols[:, 1]}, index=idx)
    prices = Market("binance", "BTC/USDT", "BTC/USDT:USDT", "1h", perp.copy(), perp, mark, None)
    return pair_market(prices, _funding(RATES_A), _funding(rates_b), first_venue="bybit", perp_venue="okx")


def _hand_params(**kw: object) -> CrossCarryParams:
    base = dict(legs="perp_perp", spot_venue="bybit", perp_venue="okx", first_perp_taker_fee=FEE_A,
                perp_taker_fee=FEE_B, notional=10_000.0, min_funding_rate=0.0001, min_net_carry=-0.01,
                exit=ExitParams(profit_target_pct=None, stop_loss_pct=None, trailing_giveback=None,
                                max_holding_hours=16, funding_unfavourable_intervals=None, rearm=False))
    return CrossCarryParams(**{**base, **kw})


def _hand_config() -> CrossVenueConfig:
    paper = PaperConfig(slippage_bps=2.0, impact_k_bps=0.0, slippage_noise_bps=0.0)
    return CrossVenueConfig(spot_paper=PaperConfig(**{**paper.__dict__, "perp_taker_fee": FEE_A}),
                            perp_paper=PaperConfig(**{**paper.__dict__, "perp_taker_fee": FEE_B}),
                            spot_usdt=WALLET, perp_usdt=WALLET, capital=10_000.0)


def test_both_paths_meet_the_hand_ledger_with_the_first_leg_short():
    # conventions: tests/test_xvenue_perp_perp.py (bars labelled by open time; at t the engine knows the bar
    # labelled t - 1h; orders fill at once at ref x (1 +/- 2 bps); then each venue's funding of t settles,
    # -position x mark x ITS rate)
    # entry at 09:00 (08:00 settled: bybit 0.0005 > okx 0.0001 -> SHORT bybit, long okx); ref 40,000; qty 0.25
    q = 0.25
    sell_a, buy_b = 40_000.0 * 0.9998, 40_000.0 * 1.0002  # 39,992 and 40,008
    # max_holding_hours 16: exit at 25:00, ref = close of the bar labelled 24:00 = 41,200
    buy_a, sell_b = 41_200.0 * 1.0002, 41_200.0 * 0.9998  # 41,208.24 and 41,191.76
    fees_a = q * sell_a * FEE_A + q * buy_a * FEE_A
    fees_b = q * buy_b * FEE_B + q * sell_b * FEE_B
    real_a = q * (sell_a - buy_a)  # the short lost the rise: -304.06
    real_b = q * (sell_b - buy_b)  # the long gained it: +295.94
    fund_a = q * 40_420.0 * 0.0003 + q * 41_020.0 * 0.0006  # the short RECEIVES bybit's rates: 3.0315 + 6.153
    fund_b = -q * 40_420.0 * 0.00005 - q * 41_020.0 * 0.0002  # the long PAYS okx's: -0.50525 - 2.051
    net = real_a + real_b + fund_a + fund_b - fees_a - fees_b

    run, fa = assert_fast_equals_xvenue(_hand_params(), _hand_market(), _hand_config(), start=T0 + H)
    for fills in (run.result.fills.reset_index(drop=True), fa.fills):
        assert list(zip(fills["leg"], fills["side"])) == [("spot", "sell"), ("perp", "buy"), ("perp", "sell"),
                                                          ("spot", "buy")]
        assert fills["price"].tolist() == pytest.approx([sell_a, buy_b, sell_b, buy_a], abs=1e-9)
        assert fills["fee"].tolist() == pytest.approx([q * sell_a * FEE_A, q * buy_b * FEE_B, q * sell_b * FEE_B,
                                                       q * buy_a * FEE_A], abs=1e-9)
        assert fills["qty"].tolist() == pytest.approx([q] * 4, abs=1e-12)
        assert list(fills["ts"]) == [T0 + 9 * H] * 2 + [T0 + 25 * H] * 2
    led = run.result.ledger
    assert led.loc["spot", "realized"] == pytest.approx(real_a, abs=1e-9)
    assert led.loc["perp", "realized"] == pytest.approx(real_b, abs=1e-9)
    assert fa.snap[-1, 0] == pytest.approx(real_a, abs=1e-9) and fa.snap[-1, 1] == pytest.approx(real_b, abs=1e-9)
    assert led.loc["spot", "funding"] == pytest.approx(fund_a, abs=1e-9)
    assert fa.first_leg_funding[-1] == pytest.approx(fund_a, abs=1e-9)
    assert fa.snap[-1, 2] == pytest.approx(fund_a + fund_b, abs=1e-9)
    assert fa.snap[-1, 3] == pytest.approx(fees_a + fees_b, abs=1e-9)
    assert run.result.kpis["net_pnl"] == pytest.approx(net, abs=1e-9)
    assert fa.snap[-1, 6] == pytest.approx(net, abs=1e-9)
    assert fast_xvenue_kpis(_hand_params(), _hand_market(), config=_hand_config(),
                            start=T0 + H)["net_pnl"] == pytest.approx(net, abs=1e-9)
    # the first leg's funding by instant: 0 until 16:00, then bybit's 16:00 payment, then both
    ts = pd.DatetimeIndex(np.asarray(fa.timeline.ts).view("datetime64[ns]")).tz_localize("UTC")
    ff = pd.Series(fa.first_leg_funding, index=ts)
    assert ff[T0 + 15 * H] == 0.0
    assert ff[T0 + 16 * H] == pytest.approx(q * 40_420.0 * 0.0003, abs=1e-12)
    _legs_funding(run, fa)


# ---- parity on the demo market with hand-set funding on each venue ------------------------------------------

def _demo_market(days: int = 40, interval_b: float = 4.0) -> Market:
    """The demo market's BTC prices; funding set by hand: bybit (first venue) every 8h, okx every
    ``interval_b`` hours, in regimes where the cheaper venue changes (entries in both directions), with a
    small seeded wobble."""
    prices = market_from_frames(generate_demo_market(days=days, timeframe="1h", seed=5, assets=("BTC",)))
    t0 = prices.perp.index[0]
    rng = np.random.default_rng(3)

    def series(hours: float, regimes: list[tuple[float, float]]) -> pd.DataFrame:
        ts = pd.date_range(t0 + pd.Timedelta(hours=hours), t0 + pd.Timedelta(days=days - 1), freq=f"{int(hours)}h")
        d = np.asarray((ts - t0) / pd.Timedelta(days=1))
        r = np.zeros(len(ts))
        for d0, rate in regimes:
            r[d >= d0] = rate
        r = r * hours / 8.0 + rng.normal(0.0, 0.00002, len(ts)) * hours / 8.0
        return pd.DataFrame({"funding_rate": r, "interval_hours": hours}, index=ts)

    fa = series(8.0, [(0, 0.0001), (9, 0.0003), (16, -0.0002), (24, 0.0001), (31, 0.0004)])
    fb = series(interval_b, [(0, 0.0005), (9, 0.00005), (16, 0.0003), (24, -0.0003), (31, 0.0004)])
    return pair_market(prices, fa, fb, first_venue="bybit", perp_venue="okx")


def _demo_params(**kw: object) -> CrossCarryParams:
    base = dict(legs="perp_perp", spot_venue="bybit", perp_venue="okx", first_perp_taker_fee=FEE_A,
                perp_taker_fee=FEE_B, notional=10_000.0, min_funding_rate=0.00005, min_net_carry=0.0,
                exit_below_apr=0.0, exit=NO_EXIT, guards=GuardParams(funding_cost_apr_limit=None))
    return CrossCarryParams(**{**base, **kw})


_CASES = {
    "spread exit, re-entries both ways": {},
    "stop loss and profit target": dict(exit=ExitParams(stop_loss_pct=0.004, profit_target_pct=0.006,
                                                        max_holding_hours=None, funding_unfavourable_intervals=None,
                                                        trailing_giveback=None, rearm=True), exit_below_apr=None),
    "trailing stop": dict(exit=ExitParams(stop_loss_pct=None, profit_target_pct=None, trailing_giveback=0.5,
                                          trailing_min_peak_pct=0.001, max_holding_hours=None,
                                          funding_unfavourable_intervals=None, rearm=True), exit_below_apr=None),
    "unfavourable pair funding": dict(exit=ExitParams(stop_loss_pct=None, profit_target_pct=None,
                                                      trailing_giveback=None, max_holding_hours=None,
                                                      funding_unfavourable_intervals=2, rearm=True),
                                      exit_below_apr=None),
    "max holding, no re-arm": dict(exit=ExitParams(stop_loss_pct=None, profit_target_pct=None, trailing_giveback=None,
                                                   max_holding_hours=72, funding_unfavourable_intervals=None,
                                                   rearm=False)),
    "funding cost guard": dict(guards=GuardParams(funding_cost_apr_limit=0.05), exit_below_apr=None),
    # at 3x the first (bybit) leg is the nearer to its liquidation: guards._nearer_first_leg flattens on it
    "liquidation guard, first leg nearer": dict(guards=GuardParams(liq_distance_close=0.5, liq_distance_reduce=0.55,
                                                                   funding_cost_apr_limit=None),
                                                leverage=LeverageParams(min_leverage=3.0, max_leverage=3.0)),
    "liquidation guard, second leg": dict(guards=GuardParams(liq_distance_close=0.3, liq_distance_reduce=0.3001,
                                                             funding_cost_apr_limit=None),
                                          leverage=LeverageParams(min_leverage=3.0, max_leverage=3.0)),
}


@pytest.mark.parametrize("case", list(_CASES))
def test_fast_pair_equals_the_event_pair_on_the_demo_market(case):
    m = _demo_market()
    run, fa = assert_fast_equals_xvenue(_demo_params(**_CASES[case]), m, _hand_config(),
                                        start=m.perp.index[0] + pd.Timedelta(days=2))
    _legs_funding(run, fa)
    reasons = " ".join(run.result.transitions["reason"])
    if case.startswith("liquidation guard"):
        assert ("first leg (bybit) liquidation" in reasons) == case.endswith("first leg nearer")
        assert "guard liq_distance_close" in reasons
    if case == "spread exit, re-entries both ways":
        first = fa.fills[fa.fills["leg"] == "spot"]
        entries = first.iloc[::2]  # entry, exit, entry, exit, ...
        assert set(entries["side"]) == {"buy", "sell"}  # the first leg went long AND short
        assert run.result.kpis["entries"] >= 3


def test_fast_pair_equals_the_event_pair_with_the_default_venues_and_an_hourly_second_venue():
    # the default paper models renamed to bybit and okx (each its own bracket table), wallets from the params
    m = _demo_market(days=30, interval_b=1.0)
    run, fa = assert_fast_equals_xvenue(_demo_params(), m, start=m.perp.index[0] + pd.Timedelta(days=2))
    _legs_funding(run, fa)


def test_a_sweep_payloads_two_timelines_give_the_same_run():
    # a sweep holds one timeline per venue (VenueTimelines): the second venue's and the first venue's, passed apart
    from dataclasses import replace

    m = _demo_market(days=20)
    start = m.perp.index[0] + pd.Timedelta(days=2)
    tl_b = build_timeline(m, start=start)
    tl_a = build_timeline(replace(m, funding=m.meta["first_funding"]), start=start)
    p = _demo_params()
    fa = run_fast_xvenue(p, m, config=_hand_config(), start=start)
    fb = run_fast_xvenue(p, tl_b, config=_hand_config(), first_timeline=tl_a)
    assert fa.fills.equals(fb.fills) and np.array_equal(fa.snap, fb.snap, equal_nan=True) and len(fa.fills) > 0
    assert fast_xvenue_kpis(p, tl_b, config=_hand_config(), first_timeline=tl_a) == \
        fast_xvenue_kpis(p, m, config=_hand_config(), start=start)
    with pytest.raises(InvalidInput, match="first_funding"):  # xvenue_pair.check_first_leg_timeline's rule
        run_fast_xvenue(p, tl_b, config=_hand_config(), first_timeline=build_timeline(m, start=start + 5 * H))


# ---- each leg at its own venue's slippage and impact ------------------------------------------------------

def _two_slippages(slip_a: float, k_a: float, slip_b: float, k_b: float) -> CrossVenueConfig:
    """The hand config with venue A's paper model at ``slip_a`` bps fixed + ``k_a`` bps impact, B's at its own."""
    cfg = _hand_config()
    return CrossVenueConfig(spot_paper=replace(cfg.spot_paper, slippage_bps=slip_a, impact_k_bps=k_a),
                            perp_paper=replace(cfg.perp_paper, slippage_bps=slip_b, impact_k_bps=k_b),
                            spot_usdt=WALLET, perp_usdt=WALLET, capital=10_000.0)


def test_each_leg_fills_at_its_own_venue_slippage_and_impact_hand_prices():
    # exchange/paper/core.py: bps = slippage_bps + impact_k_bps x sqrt(qty / bar volume), price = ref x (1 +/- bps/1e4);
    # the hand market's bars trade 25 BTC and each leg is 0.25 BTC: sqrt(0.01) = 0.1.
    # venue A (bybit): 3 + 40 x 0.1 = 7 bps; venue B (okx): 1 + 10 x 0.1 = 2 bps
    cfg = _two_slippages(3.0, 40.0, 1.0, 10.0)
    run, fa = assert_fast_equals_xvenue(_hand_params(), _hand_market(), cfg, start=T0 + H)
    expect = [40_000.0 * (1 - 7e-4), 40_000.0 * (1 + 2e-4), 41_200.0 * (1 - 2e-4), 41_200.0 * (1 + 7e-4)]
    for fills in (run.result.fills.reset_index(drop=True), fa.fills):
        assert list(zip(fills["leg"], fills["side"])) == [("spot", "sell"), ("perp", "buy"), ("perp", "sell"),
                                                          ("spot", "buy")]
        assert fills["price"].tolist() == pytest.approx(expect, rel=1e-13)
        assert fills["slippage"].tolist() == pytest.approx([0.25 * 40_000.0 * 7e-4, 0.25 * 40_000.0 * 2e-4,
                                                            0.25 * 41_200.0 * 2e-4, 0.25 * 41_200.0 * 7e-4], rel=1e-9)
    _legs_funding(run, fa)


_SLIP_CASES = {
    "first venue dearer, impact on both": (4.0, 60.0, 1.0, 5.0),
    "second venue dearer, no impact on the first": (0.5, 0.0, 6.0, 80.0),
}


@pytest.mark.parametrize("case", list(_SLIP_CASES))
def test_fast_pair_equals_the_event_pair_with_per_venue_slippage_on_the_demo_market(case):
    m = _demo_market()
    start = m.perp.index[0] + pd.Timedelta(days=2)
    p = _demo_params(exit=ExitParams(stop_loss_pct=0.004, profit_target_pct=0.006, max_holding_hours=None,
                                     funding_unfavourable_intervals=None, trailing_giveback=None, rearm=True),
                     exit_below_apr=0.0, rebalance=RebalanceParams(target_ratio=0.9, drift_threshold=0.01))
    run, fa = assert_fast_equals_xvenue(p, m, _two_slippages(*_SLIP_CASES[case]), start=start)
    _legs_funding(run, fa)
    # the feature changes the fills: the same run with both venues at the second venue's model differs
    same = run_fast_xvenue(p, m, config=_two_slippages(*_SLIP_CASES[case][2:], *_SLIP_CASES[case][2:]), start=start)
    a_slip, same_slip = fa.fills[fa.fills["leg"] == "spot"], same.fills[same.fills["leg"] == "spot"]
    n = min(len(a_slip), len(same_slip))
    assert n >= 4 and not np.allclose(a_slip["price"].to_numpy()[:n], same_slip["price"].to_numpy()[:n], rtol=1e-9)
    assert fa.snap[-1, 4] != pytest.approx(same.snap[-1, 4], rel=1e-6)  # total slippage


def test_the_kernels_fill_price_is_the_paper_venues_on_random_inputs():
    # the kernels' @njit fill (helpers._fill_px: money.slippage_bps -> fill_price -> slippage_cost, inlined) against
    # the same formulas called from Python, as PaperCore._fill_market calls them
    from hedge_core import money
    from hedge_core.backtest.fast.helpers import _fill_px

    rng = np.random.default_rng(11)
    for _ in range(2_000):
        ref = float(rng.uniform(0.01, 120_000.0))
        sign = float(rng.choice([-1.0, 1.0]))
        q = float(rng.uniform(1e-6, 500.0))
        vol = float(rng.choice([0.0, rng.uniform(1e-3, 1e6)]))
        slip = float(rng.uniform(0.0, 50.0))
        k = float(rng.choice([0.0, rng.uniform(0.0, 200.0)]))
        px, px2, cost = _fill_px(ref, sign, q, vol, slip, k)
        assert (px, px2, cost) == _fill_px.py_func(ref, sign, q, vol, slip, k)  # bit for bit (no fast-math)
        want = money.fill_price(ref, sign, money.slippage_bps(slip, k, q, vol))
        assert px == want
        assert px2 == pytest.approx(want, rel=1e-14)
        assert cost == money.slippage_cost(sign, q, want, ref)
        assert cost >= 0.0 and (px - ref) * sign >= 0.0


# ---- deferred exits: a soft exit waits for the funding the PAIR receives net --------------------------------

def _defer_exit(window_s: float | None, **kw: object) -> ExitParams:
    base = dict(stop_loss_pct=None, profit_target_pct=None, trailing_giveback=None, max_holding_hours=None,
                funding_unfavourable_intervals=None, rearm=True, defer_within_s_of_funding=window_s)
    return ExitParams(**{**base, **kw})


_DEFER_CASES = {
    "max holding, 3 h window": (3 * 3600.0, dict(max_holding_hours=30), 4.0),
    "profit target with a stop, 6 h window": (6 * 3600.0, dict(profit_target_pct=0.003, stop_loss_pct=0.004), 4.0),
    "max holding and trailing, 7 h window, hourly second venue": (
        7 * 3600.0, dict(max_holding_hours=20, trailing_giveback=0.5, trailing_min_peak_pct=0.001), 1.0),
}


@pytest.mark.parametrize("case", list(_DEFER_CASES))
def test_fast_pair_equals_the_event_pair_with_deferred_exits_on_the_demo_market(case):
    window, rules, interval_b = _DEFER_CASES[case]
    m = _demo_market(interval_b=interval_b)
    start = m.perp.index[0] + pd.Timedelta(days=2)
    p = _demo_params(exit=_defer_exit(window, **rules), exit_below_apr=None)
    run, fa = assert_fast_equals_xvenue(p, m, _hand_config(), start=start)
    _legs_funding(run, fa)
    # the feature changes the fills: without the window the soft exits fire earlier
    now = run_fast_xvenue(_demo_params(exit=_defer_exit(None, **rules), exit_below_apr=None), m, config=_hand_config(),
                          start=start)
    exits_now = now.transitions.loc[now.transitions["trigger_name"] == "EXIT_SIGNAL", "ts"].tolist()
    exits = fa.transitions.loc[fa.transitions["trigger_name"] == "EXIT_SIGNAL", "ts"].tolist()
    assert len(exits_now) >= 2 and exits != exits_now
    assert not (len(fa.fills) == len(now.fills) and np.allclose(fa.fills["price"], now.fills["price"]))
    # a deferred exit comes later, never sooner: the first exit that moved did
    moved = next(k for k in range(min(len(exits), len(exits_now))) if exits[k] != exits_now[k])
    assert exits[moved] > exits_now[moved]


def test_the_deferral_weighs_both_legs_next_settlements():
    # the hand market (both venues 8 h): short bybit at 09:00, long okx; max holding 16 h fires at 25:00, 7 h before
    # the 32:00 settlements. Window 8 h: both legs counted at the last rates (bybit 0.0006 received by the short,
    # okx 0.0002 paid by the long): +0.25 x 41,190 x (0.0006 - 0.0002) > 0 -> the exit waits past the market's end.
    # The same window with okx's rate raised above bybit's: the pair would pay net -> the exit fires at 25:00.
    cfg = _hand_config()
    p = _hand_params(exit=ExitParams(profit_target_pct=None, stop_loss_pct=None, trailing_giveback=None,
                                     max_holding_hours=16, funding_unfavourable_intervals=None, rearm=False,
                                     defer_within_s_of_funding=8 * 3600.0))
    run, fa = assert_fast_equals_xvenue(p, _hand_market(), cfg, start=T0 + H)
    assert list(fa.fills["ts"]) == [T0 + 9 * H] * 2  # entered, never exited
    assert "EXIT_SIGNAL" not in list(fa.transitions["trigger_name"])
    m2 = _hand_market(rates_b=(0.0, 0.0001, 0.00005, 0.0009))  # okx's 24:00 rate 0.0009 > bybit's 0.0006
    run2, fa2 = assert_fast_equals_xvenue(p, m2, cfg, start=T0 + H)
    assert list(fa2.fills["ts"]) == [T0 + 9 * H] * 2 + [T0 + 25 * H] * 2


# ---- REDUCE guards: both legs cut by liq_reduce_fraction, latched while the guard keeps firing ----------------

_REDUCE_CASES = {
    # 1x: either leg's liquidation is the nearer in turn; reductions each once the guard had cleared
    "either leg nearer, 1x": (dict(liq_distance_close=0.6, liq_distance_reduce=0.9, liq_reduce_fraction=0.3), None),
    "high limits, 1x": (dict(liq_distance_close=0.9, liq_distance_reduce=0.95), None),
    # 3x: the first (bybit) leg is the nearer, reduced by 10 % at a time
    "first leg nearer, 3x": (dict(liq_distance_close=0.2, liq_distance_reduce=0.36, liq_reduce_fraction=0.1), 3.0),
    "reduce then flatten, 3x": (dict(liq_distance_close=0.28, liq_distance_reduce=0.34), 3.0),
}


@pytest.mark.parametrize("case", list(_REDUCE_CASES))
def test_fast_pair_equals_the_event_pair_through_reduce_guards_on_the_demo_market(case):
    guards, lev = _REDUCE_CASES[case]
    kw: dict = dict(guards=GuardParams(funding_cost_apr_limit=None, **guards))
    if lev is not None:
        kw["leverage"] = LeverageParams(min_leverage=lev, max_leverage=lev)
    m = _demo_market()
    p = _demo_params(**kw)
    run, fa = assert_fast_equals_xvenue(p, m, _hand_config(), start=m.perp.index[0] + pd.Timedelta(days=2))
    _legs_funding(run, fa)
    tr = run.result.transitions
    reduced = tr.loc[tr["trigger_name"] == "RISK_REDUCE", "ts"].tolist()
    assert len(reduced) >= 1  # the guard fired and the run was kept (it was refused before)
    first_nearer = ["first leg (bybit)" in r for r in tr.loc[tr["trigger_name"] == "RISK_REDUCE", "reason"]]
    if case.startswith("first leg"):
        assert all(first_nearer)
    if case.startswith("either leg"):
        assert any(first_nearer) and not all(first_nearer)
    if case.startswith("reduce then flatten"):
        assert tr["trigger_name"].tolist().index("FLATTEN") > tr["trigger_name"].tolist().index("RISK_REDUCE")
    frac = p.guards.liq_reduce_fraction
    f = fa.fills
    for ts in reduced:  # at each reduction the first leg sells (or buys back) its fraction, rounded down to lots
        at = f[f["ts"] == ts]
        first = at[at["leg"] == "spot"]
        assert len(first) == 1 and len(at[at["leg"] == "perp"]) >= 1
        before = f[(f["ts"] < ts) & (f["leg"] == "spot")]
        held = float((np.where(before["side"] == "buy", 1.0, -1.0) * before["qty"]).sum())
        assert first["qty"].iloc[0] == pytest.approx(np.floor(abs(held) * frac / 0.001 + 1e-9) * 0.001, abs=1e-9)
        assert first["side"].iloc[0] == ("sell" if held > 0 else "buy")


def test_fast_pair_equals_the_event_pair_with_a_reduce_and_an_exit_at_the_same_instant():
    # a REDUCE verdict moves the pair to REBALANCING, where the generic exits run first (step._rebalancing): the
    # max-holding exit at that instant closes both legs as they stand (no reduction order is sent); this was refused
    dm = _demo_market()
    red = _demo_params(guards=GuardParams(liq_distance_close=0.9, liq_distance_reduce=0.95,
                                          funding_cost_apr_limit=None),
                       exit_below_apr=None, exit=_defer_exit(None, max_holding_hours=5))
    run, fa = assert_fast_equals_xvenue(red, dm, _hand_config(), start=dm.perp.index[0] + pd.Timedelta(days=2))
    _legs_funding(run, fa)
    tr = run.result.transitions
    both = [ts for ts in tr.loc[tr["trigger_name"] == "RISK_REDUCE", "ts"]
            if list(tr.loc[tr["ts"] == ts, "trigger_name"]) == ["RISK_REDUCE", "EXIT_SIGNAL", "REARM"]]
    assert both
    for ts in both:  # closed as held: each leg's close is its whole position, no partial order first
        at = fa.fills[fa.fills["ts"] == ts]
        assert list(at["leg"]) == ["perp", "spot"]
        assert float(fa.snap[np.searchsorted(fa.timeline.ts, ts.value), 9]) == 0.0


def test_fast_pair_equals_the_event_pair_with_a_reduce_and_a_flatten_at_the_same_instant():
    # the hand market with okx's 24:00 rate (0.0009) above bybit's (0.0006): from 25:00 the pair PAYS net, above a
    # 1 % APR funding-cost limit; at 3x the nearer leg's liquidation distance first falls to 29 % or less at 25:00
    # too (the price steps up at the bar labelled 24:00). The REDUCE verdict moves the pair to REBALANCING, the
    # funding-cost verdict listed after it flattens from there: both legs closed as held
    p = _hand_params(guards=GuardParams(liq_distance_close=0.01, liq_distance_reduce=0.29, funding_cost_apr_limit=0.01),
                     leverage=LeverageParams(min_leverage=3.0, max_leverage=3.0),
                     exit=ExitParams(profit_target_pct=None, stop_loss_pct=None, trailing_giveback=None,
                                     max_holding_hours=None, funding_unfavourable_intervals=None, rearm=False))
    run, fa = assert_fast_equals_xvenue(p, _hand_market(rates_b=(0.0, 0.0001, 0.00005, 0.0009)), _hand_config(),
                                        start=T0 + H)
    tr = fa.transitions
    assert list(tr["trigger_name"]) == ["ENTRY_SIGNAL", "SPOT_FILLED", "HEDGE_FILLED", "RISK_REDUCE", "FLATTEN", "FLAT"]
    assert list(tr["from_state"])[3:] == ["MONITORING_POSITIONS", "REBALANCING", "CLOSING_POSITIONS"]
    assert list(fa.fills["ts"]) == [T0 + 9 * H] * 2 + [T0 + 25 * H] * 2
    assert fa.fills["qty"].tolist() == pytest.approx([0.25] * 4, abs=1e-12)  # no partial order before the close
    _legs_funding(run, fa)


# ---- the shared Bybit / OKX funding ------------------------------------------------------------------------

@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.parametrize("first,second,kw", [
    ("bybit", "okx", dict(min_funding_rate=0.00005, min_net_carry=0.0, exit_below_apr=0.0)),
    ("okx", "bybit", dict(min_funding_rate=0.00003, min_net_carry=-0.001, exit_below_apr=0.02,
                          exit=ExitParams(stop_loss_pct=0.01, profit_target_pct=0.01, max_holding_hours=240,
                                          funding_unfavourable_intervals=3, rearm=True))),
    ("bybit", "okx", dict(min_funding_rate=0.00002, min_net_carry=0.0,
                          rebalance=RebalanceParams(target_ratio=0.8, drift_threshold=0.01),
                          exit=ExitParams(trailing_giveback=0.3, max_holding_hours=200, rearm=True))),
])
def test_fast_pair_equals_the_event_pair_on_the_shared_bybit_okx_funding(first, second, kw):
    from hedge_core.data.shared import market_data

    md = market_data()
    m = cross_venue_market(md.market("BTC"), md.crossvenue_funding(), perp_venue=second, first_venue=first)
    p = CrossCarryParams(legs="perp_perp", spot_venue=first, perp_venue=second, **kw)
    run, fa = assert_fast_equals_xvenue(p, m, start="2023-03-01", end="2023-06-01")
    _legs_funding(run, fa)
    assert run.result.kpis["entries"] >= 1
    # a sweep builds the two timelines once: the same KPIs from them
    pt = pair_timelines(m, start="2023-03-01", end="2023-06-01")
    assert fast_xvenue_kpis(p, pt) == fast_xvenue_kpis(p, m, start="2023-03-01", end="2023-06-01")


# ---- refusals ----------------------------------------------------------------------------------------------

def test_fast_pair_refusals_name_why():
    m = _hand_market()
    cfg = _hand_config()
    noisy = CrossVenueConfig(spot_paper=PaperConfig(slippage_noise_bps=1.0, perp_taker_fee=FEE_A),
                             perp_paper=cfg.perp_paper, spot_usdt=WALLET, perp_usdt=WALLET)
    with pytest.raises(FastPathUnsupported, match="paper slippage noise"):  # either venue's noise: not replayable
        run_fast_xvenue(_hand_params(), m, config=noisy, start=T0 + H)
    with pytest.raises(FastPathUnsupported, match="prebuilt Timeline"):
        fast_xvenue_kpis(_hand_params(), build_timeline(m, start=T0 + H), config=cfg)
    with pytest.raises(InvalidInput, match="start/end"):
        fast_xvenue_kpis(_hand_params(), pair_timelines(m, start=T0 + H), config=cfg, start=T0 + H)


@pytest.mark.shared_data
@pytest.mark.slow
def test_fast_pair_equals_the_event_pair_with_per_venue_slippage_on_the_shared_bybit_okx_funding():
    from hedge_core.data.shared import market_data

    md = market_data()
    m = cross_venue_market(md.market("BTC"), md.crossvenue_funding(), perp_venue="okx", first_venue="bybit")
    p = CrossCarryParams(legs="perp_perp", spot_venue="bybit", perp_venue="okx", min_funding_rate=0.00002,
                         min_net_carry=-0.001, exit_below_apr=0.0,
                         exit=ExitParams(profit_target_pct=0.004, stop_loss_pct=0.01, max_holding_hours=120,
                                         rearm=True))
    window = dict(start="2023-03-01", end="2023-06-01")
    cfg = CrossVenueConfig(spot_paper=PaperConfig(slippage_bps=2.5, impact_k_bps=40.0, perp_taker_fee=0.00055),
                           perp_paper=PaperConfig(slippage_bps=0.5, impact_k_bps=8.0, perp_taker_fee=0.0005))
    run, fa = assert_fast_equals_xvenue(p, m, cfg, **window)
    _legs_funding(run, fa)
    assert run.result.kpis["entries"] >= 2
    # each leg's slippage is its own venue's: the first leg's fills cost more per unit notional than the second's
    f = fa.fills
    per = {leg: (f.loc[f["leg"] == leg, "slippage"] / (f.loc[f["leg"] == leg, "qty"] * f.loc[f["leg"] == leg, "price"]))
           for leg in ("spot", "perp")}
    assert per["spot"].min() > 2.5e-4 - 1e-9 and per["perp"].max() < 2.5e-4


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.parametrize("first,second", [("bybit", "okx"), ("okx", "bybit")])
def test_fast_pair_equals_the_event_pair_with_deferred_exits_on_the_shared_bybit_okx_funding(first, second):
    from hedge_core.data.shared import market_data

    md = market_data()
    m = cross_venue_market(md.market("BTC"), md.crossvenue_funding(), perp_venue=second, first_venue=first)
    window = dict(start="2023-03-01", end="2023-06-01")

    def params(defer: float | None) -> CrossCarryParams:
        return CrossCarryParams(legs="perp_perp", spot_venue=first, perp_venue=second, min_funding_rate=0.00002,
                                min_net_carry=-0.001, exit=_defer_exit(defer, max_holding_hours=36,
                                                                       profit_target_pct=0.003, stop_loss_pct=0.01))

    run, fa = assert_fast_equals_xvenue(params(5 * 3600.0), m, **window)
    _legs_funding(run, fa)
    now = run_fast_xvenue(params(None), m, **window)
    exits_now = now.transitions.loc[now.transitions["trigger_name"] == "EXIT_SIGNAL", "ts"].tolist()
    exits = fa.transitions.loc[fa.transitions["trigger_name"] == "EXIT_SIGNAL", "ts"].tolist()
    assert len(exits_now) >= 2 and exits != exits_now  # the window held some exit back


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.parametrize("close,reduce,lev", [(0.25, 0.33, 3.0), (0.5, 0.75, None)])
def test_fast_pair_equals_the_event_pair_through_reduce_guards_on_the_shared_bybit_okx_funding(close, reduce, lev):
    from hedge_core.data.shared import market_data

    md = market_data()
    m = cross_venue_market(md.market("BTC"), md.crossvenue_funding(), perp_venue="okx", first_venue="bybit")
    kw: dict = dict(guards=GuardParams(liq_distance_close=close, liq_distance_reduce=reduce))
    if lev is not None:
        kw["leverage"] = LeverageParams(min_leverage=lev, max_leverage=lev)
    p = CrossCarryParams(legs="perp_perp", spot_venue="bybit", perp_venue="okx", min_funding_rate=0.00005,
                         min_net_carry=0.0, exit_below_apr=0.0, **kw)
    run, fa = assert_fast_equals_xvenue(p, m, start="2023-03-01", end="2023-06-01")
    _legs_funding(run, fa)
    reduced = run.result.transitions.loc[run.result.transitions["trigger_name"] == "RISK_REDUCE", "ts"]
    assert len(reduced) >= 1 and set(reduced) <= set(fa.fills.loc[fa.fills["leg"] == "spot", "ts"])


# ---- venue B rejects the second leg's entry (step._opening_futures: HEDGE_FAILED) -----------------------------
# The second leg's order and its execution.hedge_retries new attempts are rejected at one instant
# (PaperCore._check_perp_funds: the same wallet and price), each counted in the order-rate window; HEDGE_FAILED then
# closes the FIRST leg from CLOSING_POSITIONS (reduce-only at venue A: A's fee, slippage and realised PnL) and the
# pair, not re-arming, is COMPLETED. The census met it once: bench_xcarry_pair.py's bybit -> binance point
# (min_funding_rate 1e-4, 42 intervals) on the shared sample, on 2024-05-17.

def _b_wallet(usdt: float) -> CrossVenueConfig:
    """The hand venues with venue B's (the second leg's) futures wallet set to ``usdt``."""
    c = _hand_config()
    return CrossVenueConfig(spot_paper=c.spot_paper, perp_paper=c.perp_paper, spot_usdt=WALLET, perp_usdt=usdt,
                            capital=10_000.0)


def _failed(tr: pd.DataFrame) -> pd.DataFrame:
    return tr[tr["trigger_name"] == "HEDGE_FAILED"]


def _assert_first_leg_closed(fa, run) -> None:
    """One HEDGE_FAILED; its instant holds the first leg's order and the same quantity back (both on venue A, the
    engine's ``spot`` leg), nothing on the second; then nothing (COMPLETED, both legs flat)."""
    tr = run.result.transitions
    failed = _failed(tr)
    assert len(failed) == 1
    at = failed["ts"].iloc[0]
    f = fa.fills[fa.fills["ts"] == at]
    assert list(f["leg"]) == ["spot", "spot"] and set(f["side"]) == {"buy", "sell"}
    assert f["qty"].iloc[0] == f["qty"].iloc[1]
    assert fa.fills["ts"].max() == at and tr["to_state"].iloc[-1] == "COMPLETED"
    assert fa.snap[-1, 9] == 0.0 and fa.snap[-1, 10] == 0.0


@pytest.mark.parametrize("b_usdt", [50.0, 10_000.0])
def test_a_rejected_second_leg_closes_the_first_as_the_event_path(b_usdt):
    """50 USDT: the first entry fails; 10,000: one pair round trip, then the re-entry's second leg is rejected."""
    m = _demo_market()
    start = m.perp.index[0] + pd.Timedelta(days=2)
    p = _demo_params()
    run, fa = assert_fast_equals_xvenue(p, m, _b_wallet(b_usdt), start=start)
    _assert_first_leg_closed(fa, run)
    why = _failed(run.result.transitions)["reason"].iloc[0]
    assert why == f"perp hedge rejected {p.execution.hedge_retries + 1} times"
    assert (run.result.transitions["trigger_name"] == "HEDGE_FILLED").sum() == (0 if b_usdt == 50.0 else 1)
    ample = run_fast_xvenue(p, m, config=_b_wallet(WALLET), start=start)
    assert _failed(ample.transitions).empty and len(ample.fills) > len(fa.fills)  # the rejection changed the run


def test_the_first_entry_rejected_is_one_round_trip_on_venue_a_by_hand():
    # the hand market (tests/test_fastpath_pair.py): at 09:00 the pair enters SHORT bybit (A) at ref 40,000, fills at
    # ref x (1 -/+ 2 bps); okx (B) cannot margin the 0.25 BTC long from 50 USDT: rejected, A bought back
    q = 0.25
    sell_a, buy_a = 40_000.0 * 0.9998, 40_000.0 * 1.0002
    fees = q * sell_a * FEE_A + q * buy_a * FEE_A
    net = q * (sell_a - buy_a) - fees  # -4 on the price, -11 in fees; no funding (flat before 16:00)
    run, fa = assert_fast_equals_xvenue(_hand_params(), _hand_market(), _b_wallet(50.0), start=T0 + H)
    for fills in (run.result.fills.reset_index(drop=True), fa.fills):
        assert list(zip(fills["leg"], fills["side"])) == [("spot", "sell"), ("spot", "buy")]
        assert fills["price"].tolist() == pytest.approx([sell_a, buy_a], abs=1e-9)
        assert fills["fee"].tolist() == pytest.approx([q * sell_a * FEE_A, q * buy_a * FEE_A], abs=1e-9)
        assert list(fills["ts"]) == [T0 + 9 * H] * 2
    assert run.result.ledger.loc["spot", "realized"] == pytest.approx(q * (sell_a - buy_a), abs=1e-9)
    assert fa.snap[-1, 0] == pytest.approx(q * (sell_a - buy_a), abs=1e-9) and fa.snap[-1, 1] == 0.0
    assert fa.snap[-1, 3] == pytest.approx(fees, abs=1e-9)
    assert fa.snap[-1, 6] == pytest.approx(net, abs=1e-9)
    assert run.result.kpis["net_pnl"] == pytest.approx(net, abs=1e-9)
    assert fa.first_leg_funding[-1] == 0.0


@pytest.mark.parametrize("retries", [0, 2])
def test_the_rejected_orders_count_in_the_order_rate_window(retries):
    """At the failing instant: the first leg's order, 1 + retries rejected ones, the first leg's close. At a limit
    of exactly that many a minute the run equals the event path; one less, the guard would hold the close: refused."""
    orders = retries + 3

    def params(limit: int) -> CrossCarryParams:
        return _hand_params(execution=ExecutionParams(hedge_retries=retries),
                            guards=GuardParams(max_orders_per_minute=limit))

    run, fa = assert_fast_equals_xvenue(params(orders), _hand_market(), _b_wallet(50.0), start=T0 + H)
    assert len(_failed(fa.transitions)) == 1
    with pytest.raises(FastPathUnsupported, match="order-rate"):
        run_fast_xvenue(params(orders - 1), _hand_market(), config=_b_wallet(50.0), start=T0 + H)


def test_no_unwind_on_hedge_failure_is_refused():
    p = _hand_params(execution=ExecutionParams(unwind_on_hedge_failure=False))
    with pytest.raises(FastPathUnsupported, match="unwind_on_hedge_failure"):
        run_fast_xvenue(p, _hand_market(), config=_b_wallet(50.0), start=T0 + H)


# ---- the census's two runs (bench_xcarry_pair.py's grid on the shared sample) -----------------------------------

def _census_point(first: str, second: str) -> tuple[CrossCarryParams, object, pd.Timestamp]:
    from hedge_core.data.shared import SAMPLE, market_data

    md = market_data(SAMPLE)
    prices = md.market("BTC").window("2023-01-04T00:00Z", "2024-06-30T00:00Z")
    m = cross_venue_market(prices, md.crossvenue_funding(), perp_venue=second, first_venue=first)
    p = CrossCarryParams(legs="perp_perp", spot_venue=first, perp_venue=second, first_perp_taker_fee=0.00055,
                         perp_taker_fee=0.0005, notional=10_000.0, min_net_carry=0.0, min_funding_rate=0.0001,
                         expected_hold_intervals=42, exit=ExitParams(max_holding_hours=24 * 7, rearm=True))
    return p, m, m.first + pd.Timedelta(days=3)


@pytest.mark.shared_data
@pytest.mark.slow
def test_the_census_second_leg_run_now_runs_on_the_kernel():
    p, m, start = _census_point("bybit", "binance")
    run, fa = assert_fast_equals_xvenue(p, m, CrossVenueConfig(), start=start)
    _assert_first_leg_closed(fa, run)
    assert _failed(run.result.transitions)["ts"].iloc[0] == pd.Timestamp("2024-05-17T18:00Z")
    pt = pair_timelines(m, start=start)
    assert fast_xvenue_kpis(p, pt) == fast_xvenue_kpis(p, m, start=start)


# ---- venue A rejects the FIRST leg's entry (step._opening_spot: ENTRY_FAILED) ----------------------------------
# The first leg's order and its execution.hedge_retries new attempts are rejected at one instant, each counted in the
# order-rate window; ENTRY_FAILED then leaves nothing held and the pair analyses again once
# execution.entry_retry_cooldown_s has passed (the engine's cooldown_until). The census met it once: the binance ->
# bybit mirror of the point above, at the same instant.

#: venue A's wallet that margins the demo market's first pair entries and not one after their losses
_A_TIGHT = 9_990.0


def _a_wallet(usdt: float) -> CrossVenueConfig:
    """The hand venues with venue A's (the first leg's) futures wallet set to ``usdt``."""
    c = _hand_config()
    return CrossVenueConfig(spot_paper=c.spot_paper, perp_paper=c.perp_paper, spot_usdt=usdt, perp_usdt=WALLET,
                            capital=10_000.0)


@pytest.mark.parametrize("cool_s", [0.0, 3600.0, 6 * 3600.0])
def test_a_rejected_first_leg_fails_the_entry_and_retries_after_the_cooldown_as_the_event_path(cool_s):
    m = _demo_market()
    start = m.perp.index[0] + pd.Timedelta(days=2)
    p = _demo_params(execution=ExecutionParams(entry_retry_cooldown_s=cool_s))
    run, fa = assert_fast_equals_xvenue(p, m, _a_wallet(50.0), start=start, fills_required=False)
    tr = run.result.transitions
    failed = tr[tr["trigger_name"] == "ENTRY_FAILED"]
    assert len(failed) >= 2 and fa.fills.empty and (tr["to_state"] == "MONITORING_POSITIONS").sum() == 0
    assert failed["reason"].iloc[0] == f"spot entry failed after {p.execution.hedge_retries + 1} rejections"
    signals = tr.loc[tr["trigger_name"] == "ENTRY_SIGNAL", "ts"].reset_index(drop=True)
    gaps = (signals.diff().dropna() / pd.Timedelta(seconds=1)).to_numpy()
    assert (gaps >= cool_s).all() and (gaps > 0).all()  # the next try waits out the cooldown
    assert fa.snap[-1, 6] == 0.0 and run.result.kpis["net_pnl"] == 0.0


def test_a_first_leg_rejected_after_round_trips_as_the_event_path():
    m = _demo_market()
    start = m.perp.index[0] + pd.Timedelta(days=2)
    run, fa = assert_fast_equals_xvenue(_demo_params(), m, _a_wallet(_A_TIGHT), start=start)
    tr = run.result.transitions
    assert (tr["trigger_name"] == "HEDGE_FILLED").sum() >= 1 and (tr["trigger_name"] == "ENTRY_FAILED").sum() >= 1
    _legs_funding(run, fa)


@pytest.mark.parametrize("retries", [1, 3])
def test_a_rejected_first_leg_counts_in_the_order_rate_window(retries):
    """1 + retries rejected orders at the instant: a limit of that many a minute equals the event path; one less,
    the guard would hold the last retry: refused. (Below 2 a minute the kernel refuses any entry: it checks room for
    both legs' orders first.)"""
    def params(limit: int) -> CrossCarryParams:
        return _hand_params(execution=ExecutionParams(hedge_retries=retries),
                            guards=GuardParams(max_orders_per_minute=limit))

    run, fa = assert_fast_equals_xvenue(params(retries + 1), _hand_market(), _a_wallet(50.0), start=T0 + H,
                                        fills_required=False)
    assert (fa.transitions["trigger_name"] == "ENTRY_FAILED").sum() >= 1
    with pytest.raises(FastPathUnsupported, match="order-rate"):
        run_fast_xvenue(params(retries), _hand_market(), config=_a_wallet(50.0), start=T0 + H)


@pytest.mark.shared_data
@pytest.mark.slow
def test_the_census_first_leg_run_now_runs_on_the_kernel():
    p, m, start = _census_point("binance", "bybit")
    run, fa = assert_fast_equals_xvenue(p, m, CrossVenueConfig(), start=start)
    tr = run.result.transitions
    assert pd.Timestamp("2024-05-17T18:00Z") in set(tr.loc[tr["trigger_name"] == "ENTRY_FAILED", "ts"])
    pt = pair_timelines(m, start=start)
    assert fast_xvenue_kpis(p, pt) == fast_xvenue_kpis(p, m, start=start)


@pytest.mark.parametrize("cool_h", [1, 2])
def test_the_failed_entries_instants_by_hand(cool_h):
    # the hand market: the pair would enter at 09:00 (short bybit); venue A's 50 USDT margins none of 0.25 BTC, so
    # each try is ENTRY_SIGNAL then ENTRY_FAILED at one instant, the next one cool_h hours later (hourly bars)
    p = _hand_params(execution=ExecutionParams(entry_retry_cooldown_s=cool_h * 3600.0))
    run, fa = assert_fast_equals_xvenue(p, _hand_market(), _a_wallet(50.0), start=T0 + H, fills_required=False)
    tr = run.result.transitions
    assert list(tr["trigger_name"][:4]) == ["ENTRY_SIGNAL", "ENTRY_FAILED"] * 2
    assert list(tr["ts"][:4]) == [T0 + 9 * H] * 2 + [T0 + (9 + cool_h) * H] * 2
    assert list(tr["to_state"][:2]) == ["OPENING_SPOT_POSITION", "ANALYZING_MARKET"]
    assert fa.fills.empty and float(fa.snap[-1, 6]) == 0.0

