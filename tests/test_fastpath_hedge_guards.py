"""The hedge kernel (carry, xcarry with a spot first leg, cross, grid) with deferred exits and REDUCE guards.

Reference: the event-driven backtester (``tests/support/parity.assert_fast_equals_event``) and, for xcarry, the
cross-venue backtest (``assert_fast_equals_xvenue``): the same fills, per-instant snapshots, transitions and
KPIs. Each parity case also runs without the feature and asserts that the fills moved (so the test fails when
the kernel ignores it). Hand-computed: the instants a deferred exit waits to, per perp venue's settlement schedule.

- deferred exits (``exit.defer_within_s_of_funding``, ``engine.exits.defer_for_funding``): a profit-target or
  max-holding exit waits while the PERP venue's next settlement (the only one: a spot first leg settles none)
  lies within the window and the perp position receives the last settled rate.
- REDUCE guards (``guards.liq_distance_reduce``, ``step._run_guards`` / ``step._rebalancing``): the spot target
  cut by ``liq_reduce_fraction``, the hedge following; latched while the guard keeps firing. By hand: the fills of
  one reduction on flat prices.
- a REDUCE at the instant an exit or a flatten fires too: the exit (``step._rebalancing``'s generic exits) or the
  flatten (a verdict after the REDUCE's) leaves from REBALANCING and closes both legs as they stand. By hand: the
  instant, the transitions and the close on a price jump.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hedge_core.backtest.fast import run_fast
from hedge_core.backtest.fast.xvenue import run_fast_xvenue
from hedge_core.backtest.timeline import Market, build_timeline
from hedge_core.backtest.xvenue import cross_venue_market
from hedge_core.backtest.xvenue import CrossVenueConfig
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.params.models import (
    CarryParams,
    CrossHedgeParams,
    ExitParams,
    GridParams,
    GuardParams,
    LeverageParams,
)
from hedge_core.params.xcarry import CrossCarryParams
from tests.support.fast_demo import demo_cross_tl, demo_frames, demo_tl  # noqa: F401 - fixtures
from tests.support.parity import assert_fast_equals_event, assert_fast_equals_xvenue
from tests.support.xcarry_market import okx_funding_market

pytestmark = pytest.mark.filterwarnings("ignore::hedge_core.exchange.costs.CostModelWarning")

T0 = pd.Timestamp("2024-01-01T00:00Z")
H = pd.Timedelta(hours=1)


def _exit(window_s: float | None, **kw: object) -> ExitParams:
    base = dict(stop_loss_pct=None, profit_target_pct=None, trailing_giveback=None, max_holding_hours=None,
                funding_unfavourable_intervals=None, rearm=True, defer_within_s_of_funding=window_s)
    return ExitParams(**{**base, **kw})


def _exits(fr) -> list[pd.Timestamp]:
    return fr.transitions.loc[fr.transitions["trigger_name"] == "EXIT_SIGNAL", "ts"].tolist()


def _assert_exits_moved_later(fa, now) -> None:
    """The feature changed the fills: the run without the window exits elsewhere, and the first exit that moved
    moved LATER (a deferred exit never comes sooner)."""
    exits, exits_now = _exits(fa), _exits(now)
    assert len(exits_now) >= 2 and exits != exits_now
    assert not (len(fa.fills) == len(now.fills) and np.allclose(fa.fills["price"], now.fills["price"]))
    moved = next(k for k in range(min(len(exits), len(exits_now))) if exits[k] != exits_now[k])
    assert exits[moved] > exits_now[moved]


# ---- deferred exits ----------------------------------------------------------------------------------------

_DEFER_CASES = {
    "carry, max holding, 3 h window": (
        "carry", lambda w: CarryParams(min_net_carry=-0.01, exit=_exit(w, max_holding_hours=30)), 3 * 3600.0),
    "carry, profit target with a stop, 6 h window": (
        "carry", lambda w: CarryParams(min_net_carry=-0.01,
                                       exit=_exit(w, profit_target_pct=0.001, stop_loss_pct=0.002)), 6 * 3600.0),
    "cross, max holding and trailing, 5 h window": (
        "cross", lambda w: CrossHedgeParams(min_correlation=0.0, guards=GuardParams(funding_cost_apr_limit=None),
                                            exit=_exit(w, max_holding_hours=12, trailing_giveback=0.5,
                                                       trailing_min_peak_pct=0.001)), 5 * 3600.0),
    "grid, max holding, 7 h window": (
        "carry", lambda w: GridParams(exit=_exit(w, max_holding_hours=26)), 7 * 3600.0),
}


@pytest.mark.parametrize("case", list(_DEFER_CASES))
def test_hedge_kernel_equals_the_event_path_with_deferred_exits_on_the_demo_market(case, demo_tl, demo_cross_tl):
    which, params, window = _DEFER_CASES[case]
    tl = demo_cross_tl if which == "cross" else demo_tl
    ev, fa = assert_fast_equals_event(params(window), tl, kpis=True)
    _assert_exits_moved_later(fa, run_fast(params(None), tl))
    # a soft exit goes only where the perp would not receive a settlement within the window (by hand: the next
    # settlement's lead, the last settled rate, the perp held before the exit)
    reasons = ev.transitions.loc[ev.transitions["trigger_name"] == "EXIT_SIGNAL", ["ts", "reason"]]
    for ts, why in reasons.itertuples(index=False):
        if why.startswith(("max holding", "profit target")):
            k = int(np.searchsorted(tl.ts, ts.value))
            lead = (int(tl.next_fund_ns[k]) - ts.value) / 1e9
            receives = -fa.snap[k - 1, 10] * tl.last_rate[k] > 0
            assert not (0 < lead <= window and receives), ts


def _xmarket(rates: list[tuple[float, float]], interval_h: float, jump: tuple[int, float] | None = None) -> Market:
    """Flat hourly Binance prices (perp = spot x 1.0001) and okx funding every ``interval_h`` hours:
    ``rates`` = [(from day, rate), ...]; ``jump`` = (bar, factor): every price from that bar on x factor."""
    hours = 24 * 4
    idx = pd.date_range(T0, periods=hours, freq="1h", tz="UTC")
    close = np.full(hours, 40_000.0)
    if jump is not None:
        close[jump[0]:] *= jump[1]
    spot = pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": 5_000.0}, index=idx)
    perp = spot * 1.0001
    perp["volume"] = 5_000.0
    return okx_funding_market(spot, perp, rates, interval_h)


def _xparams(window: float | None) -> CrossCarryParams:
    return CrossCarryParams(notional=8_000.0, min_funding_rate=0.00001, min_net_carry=-0.01, spot_venue="binance",
                            perp_venue="okx", spot_taker_fee=0.001, perp_taker_fee=0.0005, slippage_rate=0.0,
                            expected_hold_intervals=48,
                            exit=_exit(window, max_holding_hours=5, rearm=False))


@pytest.mark.parametrize(("interval_h", "rates", "window_h", "exit_at"), [
    # okx settles every 8 h (00:00, 08:00, 16:00); entered at 00:00 on day 1, the 5 h holding time is up at 05:00
    (8.0, [(0, 0.0002)], 2.0, 5),  # 08:00 is 3 h away: outside a 2 h window, the exit goes at 05:00
    (8.0, [(0, 0.0002)], 3.0, 8),  # inside a 3 h window: it waits to 08:00, where the next one is 8 h away
    (8.0, [(0, 0.0002), (1, -0.0001)], 3.0, 5),  # 00:00 settled negative: the short perp would pay, no wait
    # okx settles hourly: the next settlement is always 1 h away
    (1.0, [(0, 0.000025)], 0.5, 5),  # outside a 30 min window: no wait
    (1.0, [(0, 0.000025)], 1.0, None),  # inside a 1 h window at every instant: it never exits
])
def test_xcarry_defers_on_the_perp_venues_own_settlement_schedule(interval_h, rates, window_h, exit_at):
    # engine.exits.defer_for_funding: a spot first leg settles no funding; only the perp venue's next settlement
    # (Timeline.next_fund_ns of the perp venue's timeline) and its last settled rate count
    m = _xmarket(rates, interval_h)
    run, fa = assert_fast_equals_xvenue(_xparams(window_h * 3600.0), m, start=T0 + 24 * H)
    day1 = T0 + 24 * H
    assert list(fa.fills["ts"][:2]) == [day1] * 2  # entered at the first instant of the window
    want = [day1] * 2 if exit_at is None else [day1] * 2 + [day1 + exit_at * H] * 2
    assert list(fa.fills["ts"]) == want
    assert _exits(fa) == ([] if exit_at is None else [day1 + exit_at * H])


@pytest.mark.shared_data
def test_carry_and_xcarry_equal_the_event_path_with_deferred_exits_on_the_shared_data(shared_data):
    from hedge_core.data.shared import market_data

    md = market_data()
    tl = build_timeline(md.market("BTC").window("2023-01-01", "2023-04-01"), start="2023-01-04", end="2023-04-01")

    def carry(window: float | None) -> CarryParams:
        return CarryParams(min_net_carry=-0.01, exit=_exit(window, max_holding_hours=72, profit_target_pct=0.002,
                                                           stop_loss_pct=0.003))

    ev, fa = assert_fast_equals_event(carry(4 * 3600.0), tl)
    _assert_exits_moved_later(fa, run_fast(carry(None), tl))
    m = cross_venue_market(md.market("BTC"), md.crossvenue_funding(), perp_venue="bybit").window(
        "2023-03-01", "2023-05-01")

    def xcarry(window: float | None) -> CrossCarryParams:
        return CrossCarryParams(perp_venue="bybit", spot_venue="binance", perp_taker_fee=0.00055,
                                min_funding_rate=0.00005, expected_hold_intervals=21,
                                exit=_exit(window, max_holding_hours=36, profit_target_pct=0.003, stop_loss_pct=0.01))

    window = dict(start="2023-03-04", end="2023-05-01")
    run, fa = assert_fast_equals_xvenue(xcarry(5 * 3600.0), m, **window)
    _assert_exits_moved_later(fa, run_fast_xvenue(xcarry(None), m, **window))


# ---- REDUCE guards -----------------------------------------------------------------------------------------

def _guards(close: float, reduce: float, lev: float, **kw: object) -> dict:
    return dict(guards=GuardParams(liq_distance_close=close, liq_distance_reduce=reduce, funding_cost_apr_limit=None,
                                   **kw),
                leverage=LeverageParams(min_leverage=lev, max_leverage=lev))


_REDUCE_CASES = {
    # 1x: each hedge reduced by 30 % once, its verdict latched while it keeps firing
    "carry, 1x, 30 %": ("carry", lambda: CarryParams(min_net_carry=-0.01, exit=_exit(None, max_holding_hours=48),
                                                     **_guards(0.6, 0.9, 1.0, liq_reduce_fraction=0.3))),
    # 2x: the verdict clears and fires again within a hedge (more reductions than entries)
    "carry, 2x, re-fired": ("carry", lambda: CarryParams(min_net_carry=-0.01, exit=_exit(None, max_holding_hours=48),
                                                         **_guards(0.3, 0.5, 2.0))),
    "carry, reduce then flatten": ("carry", lambda: CarryParams(min_net_carry=-0.01,
                                                                exit=_exit(None, max_holding_hours=48),
                                                                **_guards(0.9, 0.95, 1.0))),
    # cross-asset: the perp follows the ETH spot's notional at the BTC perp's price (ETH spot lot 0.0001)
    "cross, 2x": ("cross", lambda: CrossHedgeParams(min_correlation=0.0, exit=_exit(None, max_holding_hours=48),
                                                    **_guards(0.3, 0.5, 2.0))),
}


def _assert_reductions(tr: pd.DataFrame, fills: pd.DataFrame, frac: float, lot: float) -> list[pd.Timestamp]:
    """At each RISK_REDUCE the spot leg sells its fraction (rounded down to its lot) once (the perp's orders follow
    the hedge target, round 1's sized on the spot before that sale: a drifted cross hedge may sell there first)."""
    reduced = tr.loc[tr["trigger_name"] == "RISK_REDUCE", "ts"].tolist()
    assert reduced
    for ts in reduced:
        at = fills[fills["ts"] == ts]
        spot = at[at["leg"] == "spot"]
        assert len(spot) == 1 and spot["side"].iloc[0] == "sell" and spot.index[0] == at.index[0]
        before = fills[(fills["ts"] < ts) & (fills["leg"] == "spot")]
        held = float((np.where(before["side"] == "buy", 1.0, -1.0) * before["qty"]).sum())
        assert spot["qty"].iloc[0] == pytest.approx(np.floor(held * frac / lot + 1e-9) * lot, abs=1e-9)
    return reduced


@pytest.mark.parametrize("case", list(_REDUCE_CASES))
def test_hedge_kernel_equals_the_event_path_through_reduce_guards_on_the_demo_market(case, demo_tl, demo_cross_tl):
    which, params = _REDUCE_CASES[case]
    p = params()
    tl = demo_cross_tl if which == "cross" else demo_tl
    ev, fa = assert_fast_equals_event(p, tl, kpis=True)
    tr = ev.transitions
    reduced = _assert_reductions(tr, fa.fills, p.guards.liq_reduce_fraction, 1e-4 if which == "cross" else 1e-5)
    assert (tr.loc[tr["trigger_name"] == "RISK_REDUCE", "from_state"] == "MONITORING_POSITIONS").all()
    entries = int((tr["trigger_name"] == "ENTRY_SIGNAL").sum())
    if case.endswith("re-fired"):
        assert len(reduced) > entries  # a hedge reduced more than once: the latch cleared in between
    if case.endswith("flatten"):
        assert tr["trigger_name"].tolist().index("FLATTEN") > tr["trigger_name"].tolist().index("RISK_REDUCE")
    # the feature changes the fills: with the REDUCE limit at the close limit the guard never reduces
    off = run_fast(p.model_copy(update={"guards": p.guards.model_copy(
        update={"liq_distance_reduce": p.guards.liq_distance_close})}), tl)
    assert "RISK_REDUCE" not in set(off.transitions["trigger_name"]) and len(off.fills) != len(fa.fills)


def _reduce_xparams() -> CrossCarryParams:
    return CrossCarryParams(notional=8_000.0, min_funding_rate=0.00001, min_net_carry=-0.01, spot_venue="binance",
                            perp_venue="okx", spot_taker_fee=0.001, perp_taker_fee=0.0005, slippage_rate=0.0,
                            expected_hold_intervals=48, exit=_exit(None, rearm=False),
                            **_guards(0.5, 0.999, 1.0))


_TWO_BPS = CrossVenueConfig(spot_paper=PaperConfig(venue="binance", slippage_bps=2.0, impact_k_bps=0.0),
                            perp_paper=PaperConfig(venue="okx", slippage_bps=2.0, impact_k_bps=0.0))


def test_xcarry_reduce_fills_by_hand_on_flat_prices():
    # flat prices (spot 40,000, perp 40,004), 2 bps fixed slippage on both venues, no impact; 1x short perp: its
    # liquidation is ~99 % away, inside (0.5, 0.999]: the REDUCE fires at the first update after the entry and,
    # the distance never changing, stays latched (one reduction only).
    m = _xmarket([(0, 0.0002)], 8.0)
    run, fa = assert_fast_equals_xvenue(_reduce_xparams(), m, _TWO_BPS, start=T0 + 24 * H)
    day1 = T0 + 24 * H
    f = fa.fills
    assert list(zip(f["ts"], f["leg"], f["side"])) == [(day1, "spot", "buy"), (day1, "perp", "sell"),
                                                       (day1 + H, "spot", "sell"), (day1 + H, "perp", "buy")]
    # entry 8,000 / 40,000 = 0.2 BTC; the reduction sells 25 % of it (0.05) at 40,000 x (1 - 2 bps); round 1's hedge
    # order is sized on the spot before that fill (nothing to do), round 2 buys the perp back to -0.15 at
    # 40,004 x (1 + 2 bps), reduce-only
    assert f["qty"].tolist() == pytest.approx([0.2, 0.2, 0.05, 0.05], abs=1e-12)
    assert f["price"].tolist() == pytest.approx([40_008.0, 40_004.0 * 0.9998, 39_992.0, 40_004.0 * 1.0002], rel=1e-13)
    assert f["fee"].tolist() == pytest.approx([0.2 * 40_008.0 * 0.001, 0.2 * 40_004.0 * 0.9998 * 0.0005,
                                               0.05 * 39_992.0 * 0.001, 0.05 * 40_004.0 * 1.0002 * 0.0005], rel=1e-12)
    assert list(fa.transitions["trigger_name"]) == ["ENTRY_SIGNAL", "SPOT_FILLED", "HEDGE_FILLED", "RISK_REDUCE",
                                                    "REBALANCED"]
    assert fa.snap[-1, 9] == pytest.approx(0.15, abs=1e-12) and fa.snap[-1, 10] == pytest.approx(-0.15, abs=1e-12)


@pytest.mark.shared_data
def test_carry_and_xcarry_equal_the_event_path_through_reduce_guards_on_the_shared_data(shared_data):
    from hedge_core.data.shared import market_data

    md = market_data()
    tl = build_timeline(md.market("BTC").window("2023-01-01", "2023-04-01"), start="2023-01-04", end="2023-04-01")
    p = CarryParams(min_net_carry=-0.01, exit=_exit(None, max_holding_hours=72), **_guards(0.25, 0.33, 3.0))
    ev, fa = assert_fast_equals_event(p, tl)
    _assert_reductions(ev.transitions, fa.fills, p.guards.liq_reduce_fraction, 1e-5)
    m = cross_venue_market(md.market("BTC"), md.crossvenue_funding(), perp_venue="bybit").window(
        "2023-03-01", "2023-05-01")
    x = CrossCarryParams(perp_venue="bybit", spot_venue="binance", perp_taker_fee=0.00055, min_funding_rate=0.00005,
                         expected_hold_intervals=21, exit=_exit(None, max_holding_hours=24 * 7),
                         **_guards(0.25, 0.33, 3.0))
    run, fa = assert_fast_equals_xvenue(x, m, start="2023-03-04", end="2023-05-01")
    _assert_reductions(run.result.transitions, fa.fills, x.guards.liq_reduce_fraction, 1e-5)


# ---- a REDUCE at the instant an exit or a flatten fires too ---------------------------------------------------

def _same_instant(tr: pd.DataFrame, follow: str) -> list[pd.Timestamp]:
    """The instants of a RISK_REDUCE followed at once by ``follow`` (EXIT_SIGNAL or FLATTEN) from REBALANCING."""
    out = []
    for ts in tr.loc[tr["trigger_name"] == "RISK_REDUCE", "ts"]:
        at = tr[tr["ts"] == ts]
        if list(at["trigger_name"])[:2] == ["RISK_REDUCE", follow]:
            assert at["from_state"].iloc[1] == "REBALANCING"
            out.append(ts)
    return out


@pytest.mark.parametrize(("which", "params"), [
    ("carry", lambda: CarryParams(min_net_carry=-0.01, exit=_exit(None, max_holding_hours=6),
                                  **_guards(0.3, 0.5, 2.0))),
    ("grid", lambda: GridParams(exit=_exit(None, max_holding_hours=48), **_guards(0.3, 0.5, 2.0))),
])
def test_hedge_kernel_equals_the_event_path_with_a_reduce_and_an_exit_at_the_same_instant(which, params, demo_tl):
    p = params()
    ev, fa = assert_fast_equals_event(p, demo_tl, kpis=True)
    both = _same_instant(ev.transitions, "EXIT_SIGNAL")
    assert both  # these runs were refused before: the exit now leaves from REBALANCING
    for ts in both:  # both legs closed as held: no reduction order went out first
        at = fa.fills[fa.fills["ts"] == ts]
        assert list(at["leg"]) == ["perp", "spot"] and list(at["side"]) == ["buy", "sell"]
        k = int(np.searchsorted(demo_tl.ts, ts.value))
        assert at["qty"].iloc[1] == pytest.approx(fa.snap[k - 1, 9], abs=1e-12) and fa.snap[k, 9] == 0.0


@pytest.mark.parametrize("case", ["exit", "flatten", "neither"])
def test_xcarry_reduce_with_an_exit_or_a_flatten_at_the_same_instant_by_hand(case):
    # flat prices that jump 8 % at 09:00 on day 1: the 1x short perp's liquidation, ~99 % away before, is ~84 %
    # away after - inside (0.5, 0.9]: the REDUCE verdict fires first at 09:00. Entered at 00:00.
    # exit: the 9 h holding time is up at 09:00 too -> RISK_REDUCE, EXIT_SIGNAL (from REBALANCING), FLAT;
    # flatten: okx's 08:00 settlement is negative: at 09:00 the short pays it (funding cost above 1 % APR) ->
    # RISK_REDUCE, FLATTEN (from REBALANCING), FLAT; neither: the reduction trades.
    rates = [(0, 0.0002), (1.3, -0.0002)] if case == "flatten" else [(0, 0.0002)]
    m = _xmarket(rates, 8.0, jump=(32, 1.08))  # the bar labelled 08:00 (closing 09:00) on day 1
    p = _reduce_xparams().model_copy(update={
        "guards": GuardParams(liq_distance_close=0.5, liq_distance_reduce=0.9,
                              funding_cost_apr_limit=0.01 if case == "flatten" else None),
        "exit": _exit(None, rearm=False, max_holding_hours=9 if case == "exit" else None)})
    run, fa = assert_fast_equals_xvenue(p, m, _TWO_BPS, start=T0 + 24 * H)
    day1, at = T0 + 24 * H, T0 + 33 * H
    tr = fa.transitions
    assert list(tr["trigger_name"][:3]) == ["ENTRY_SIGNAL", "SPOT_FILLED", "HEDGE_FILLED"]
    assert (tr["ts"][:3] == day1).all() and (tr["ts"][3:] == at).all()
    f = fa.fills
    assert list(f["ts"]) == [day1, day1, at, at]
    if case == "neither":
        assert list(tr["trigger_name"][3:]) == ["RISK_REDUCE", "REBALANCED"]
        assert list(zip(f["leg"], f["side"]))[2:] == [("spot", "sell"), ("perp", "buy")]
        assert f["qty"].tolist()[2:] == pytest.approx([0.05, 0.05], abs=1e-12)
    else:
        follow = "EXIT_SIGNAL" if case == "exit" else "FLATTEN"
        assert list(tr["trigger_name"][3:]) == ["RISK_REDUCE", follow, "FLAT"]
        assert list(tr["from_state"][3:]) == ["MONITORING_POSITIONS", "REBALANCING", "CLOSING_POSITIONS"]
        # the close: the whole perp bought back, then the whole spot sold, at the jumped prices
        assert list(zip(f["leg"], f["side"]))[2:] == [("perp", "buy"), ("spot", "sell")]
        assert f["qty"].tolist()[2:] == pytest.approx([0.2, 0.2], abs=1e-12)
        assert f["price"].tolist()[2:] == pytest.approx([40_004.0 * 1.08 * 1.0002, 43_200.0 * 0.9998], rel=1e-12)
        assert fa.states[-1] == 2  # COMPLETED
    reasons = list(run.result.transitions["reason"])
    assert "guard liq_distance_reduce" in reasons[3]
