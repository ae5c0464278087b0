"""The hedge kernel when the venue rejects the perp hedge of an entry (the fast path's most frequent refusal).

The measured census (``bench/fast_scope_census.py``, docs/fast-path.md) found one refusal dominating what users
run: after months of losses on the short perp (a rally), the perp wallet cannot margin the next entry's hedge. The
engine then re-places the hedge ``execution.hedge_retries`` times, the venue rejects each at the same instant
(``PaperCore._check_perp_funds``: the same wallet and price), and ``step._opening_futures`` fires HEDGE_FAILED: the
spot leg is sold back from CLOSING_POSITIONS and the hedge, not re-arming, is COMPLETED.

Reference: the event-driven backtester (``tests/support/parity.assert_fast_equals_event``) and the cross-venue
backtest (``assert_fast_equals_xvenue``): the same fills, per-instant snapshots, transitions and KPIs. Each parity
case asserts that the rejection happened and changed the fills against the run with a wallet that margins every
entry. By hand: the rejected orders count in the order-rate window (the limit that just holds them, and one
below it, refused); a margin within 1e-7 of the venue's limit is refused, never guessed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hedge_core.backtest.event import BacktestConfig
from hedge_core.backtest.fast import FastPathUnsupported, run_fast
from hedge_core.backtest.fast.helpers import MARGIN_OK, MARGIN_REJECTED, MARGIN_UNSURE, _entry_margin
from hedge_core.backtest.fast.pack import brackets
from hedge_core.backtest.fast.xvenue import run_fast_xvenue
from hedge_core.backtest.timeline import Market, build_timeline
from hedge_core.backtest.xvenue import CrossVenueConfig, cross_venue_market
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.params.models import CarryParams, CrossHedgeParams, ExecutionParams, ExitParams, GuardParams
from hedge_core.params.xcarry import CrossCarryParams
from tests.support.fast_demo import demo_cross_tl, demo_frames, demo_tl  # noqa: F401 - fixtures
from tests.support.parity import assert_fast_equals_event, assert_fast_equals_xvenue

pytestmark = pytest.mark.filterwarnings("ignore::hedge_core.exchange.costs.CostModelWarning")

EXIT = ExitParams(rearm=True, max_holding_hours=30, profit_target_pct=None, stop_loss_pct=None,
                  funding_unfavourable_intervals=None)
#: a perp wallet that margins the first entries (10,000 USDT of perp at 1x) and not the one after their losses
TIGHT = 10_000.0


def _failed_at(tr: pd.DataFrame) -> list[pd.Timestamp]:
    return tr.loc[tr["trigger_name"] == "HEDGE_FAILED", "ts"].tolist()


def _assert_unwound_and_moved(fa, ev_tr: pd.DataFrame, unhindered) -> None:
    """The hedge failed once, after at least one entry; its instant holds the spot buy and the same quantity sold
    back, nothing on the perp; then nothing (COMPLETED); the run with an ample wallet trades on."""
    failed = _failed_at(ev_tr)
    assert len(failed) == 1 and (ev_tr["trigger_name"] == "HEDGE_FILLED").sum() >= 1
    at = failed[0]
    f = fa.fills[fa.fills["ts"] == at]
    assert list(f["leg"]) == ["spot", "spot"] and list(f["side"]) == ["buy", "sell"]
    assert f["qty"].iloc[0] == f["qty"].iloc[1]
    assert fa.fills["ts"].max() == at and ev_tr["to_state"].iloc[-1] == "COMPLETED"
    assert fa.snap[-1, 9] == 0.0 and fa.snap[-1, 10] == 0.0  # both legs flat
    assert not _failed_at(unhindered.transitions)
    same = len(unhindered.fills) == len(fa.fills) and (unhindered.fills["leg"].to_numpy() == fa.fills["leg"].to_numpy()
                                                        ).all()
    assert not same  # the rejection changed the fills


@pytest.mark.parametrize("which", ["carry", "cross"])
def test_a_rejected_entry_hedge_unwinds_the_spot_leg_as_the_event_path(which, demo_tl, demo_cross_tl):
    if which == "carry":
        params, tl = CarryParams(min_net_carry=-0.01, exit=EXIT), demo_tl
    else:
        params = CrossHedgeParams(min_correlation=0.0, guards=GuardParams(funding_cost_apr_limit=None), exit=EXIT)
        tl = demo_cross_tl
    ev, fa = assert_fast_equals_event(params, tl, BacktestConfig(perp_usdt=TIGHT), kpis=True)
    _assert_unwound_and_moved(fa, ev.transitions, run_fast(params, tl))
    # the engine's own account of it: the hedge rejected 1 + hedge_retries times, then the unwind
    why = ev.transitions.loc[ev.transitions["trigger_name"] == "HEDGE_FAILED", "reason"].iloc[0]
    assert why == f"perp hedge rejected {params.execution.hedge_retries + 1} times"


def test_the_first_entry_rejected_leaves_one_round_trip_on_spot(demo_tl):
    params = CarryParams(min_net_carry=-0.01, exit=EXIT)
    ev, fa = assert_fast_equals_event(params, demo_tl, BacktestConfig(perp_usdt=50.0), kpis=True)
    assert list(fa.fills["leg"]) == ["spot", "spot"] and len(_failed_at(fa.transitions)) == 1
    # the round trip's cost by hand: what the two spot fills paid in fees and price
    buy, sell = fa.fills.iloc[0], fa.fills.iloc[1]
    by_hand = (sell["price"] - buy["price"]) * buy["qty"] - buy["fee"] - sell["fee"]
    assert fa.snap[-1, 6] == pytest.approx(by_hand, rel=1e-12, abs=1e-9)
    assert ev.kpis["entries"] == 1.0 and ev.kpis["n_fills"] == 2.0


@pytest.mark.parametrize("retries", [0, 3])
def test_the_rejected_orders_count_in_the_order_rate_window(retries, demo_tl):
    """Per entry that fails: the spot buy, 1 + retries rejected hedges and the spot sale, all at one instant. At a
    limit of exactly that many orders a minute the run equals the event path; one less, the guard would hold the
    sale and the fast path refuses the run."""
    orders = retries + 3

    def params(limit: int) -> CarryParams:
        return CarryParams(min_net_carry=-0.01, exit=EXIT, execution=ExecutionParams(hedge_retries=retries),
                           guards=GuardParams(max_orders_per_minute=limit))

    cfg = BacktestConfig(perp_usdt=50.0)
    ev, fa = assert_fast_equals_event(params(orders), demo_tl, cfg)
    assert len(_failed_at(fa.transitions)) == 1
    with pytest.raises(FastPathUnsupported, match="order-rate"):
        run_fast(params(orders - 1), demo_tl, config=cfg)


def test_no_unwind_on_hedge_failure_is_refused(demo_tl):
    params = CarryParams(min_net_carry=-0.01, exit=EXIT, execution=ExecutionParams(unwind_on_hedge_failure=False))
    with pytest.raises(FastPathUnsupported, match="unwind_on_hedge_failure"):
        run_fast(params, demo_tl, config=BacktestConfig(perp_usdt=50.0))


def test_the_venue_answer_by_hand():
    """``PaperCore._check_perp_funds`` on a flat isolated position: margin = notional / leverage plus the taker
    fee against the wallet; the notional against the bracket's cap at that leverage."""
    floors, caps, mmrs, cums, maxlevs = brackets(PaperConfig(), "BTC/USDT:USDT")
    q, px, lev, fee = 0.25, 40_000.0, 2.0, 0.0005
    need = q * px / lev + q * px * fee  # 5,000 margin + 5 fee
    assert _entry_margin(q, px, lev, fee, need * (1 + 1e-6), 0.0, caps, maxlevs) == MARGIN_OK
    assert _entry_margin(q, px, lev, fee, 7_000.0, 1_900.0, caps, maxlevs) == MARGIN_OK  # 5,100 free
    # the venue accepts up to 1e-9 USDT above what is free; within 1e-7 of that the kernel refuses the run
    assert _entry_margin(q, px, lev, fee, need, 0.0, caps, maxlevs) == MARGIN_UNSURE
    assert _entry_margin(q, px, lev, fee, need * (1 - 5e-8), 0.0, caps, maxlevs) == MARGIN_UNSURE
    assert _entry_margin(q, px, lev, fee, need * (1 - 1e-6), 0.0, caps, maxlevs) == MARGIN_REJECTED
    # the shared sample's 2024-03-09 entry: 10,009.62 needed, 10,000.81 free (formerly within the old 0.1 % band)
    assert _entry_margin(0.146, 68_524.8, 1.0, 0.0005, 10_000.812144618378, 0.0, caps, maxlevs) == MARGIN_REJECTED
    assert _entry_margin(q, px, lev, fee, 100.0, -50.0, caps, maxlevs) == MARGIN_REJECTED  # margin above wallet
    big = caps[-1] * 2 / px  # above the table's largest cap at any leverage
    assert _entry_margin(big, px, 1.0, fee, 1e12, 0.0, caps, maxlevs) == MARGIN_REJECTED


def _xmarket() -> Market:
    """Hourly prices rising 0.4 % a day (the short perp loses), okx funding 0.0003 every 8 h (the carry enters)."""
    hours = 24 * 8
    t0 = pd.Timestamp("2024-01-01T00:00Z")
    idx = pd.date_range(t0, periods=hours, freq="1h", tz="UTC")
    close = 40_000.0 * np.exp(np.arange(hours) * np.log(1.004) / 24)
    spot = pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": 5_000.0}, index=idx)
    perp = spot * 1.0001
    perp["volume"] = 5_000.0
    ft = pd.date_range(t0 + pd.Timedelta(hours=8), t0 + pd.Timedelta(hours=hours - 1), freq="8h", tz="UTC")
    cv = pd.DataFrame({"ts": ft, "venue": "okx", "symbol": "BTCUSDT", "funding_rate": 0.0003, "interval_hours": 8.0})
    prices = Market("binance", "BTC/USDT", "BTC/USDT:USDT", "1h", spot, perp, perp, None)
    return cross_venue_market(prices, cv, perp_venue="okx")


def test_xcarry_rejected_entry_hedge_on_the_perp_venue_equals_the_cross_venue_backtest():
    m = _xmarket()
    params = CrossCarryParams(spot_venue="binance", perp_venue="okx", notional=10_000.0, min_funding_rate=0.0001,
                              min_net_carry=-0.01, perp_taker_fee=0.0005,
                              exit=ExitParams(rearm=True, max_holding_hours=24, profit_target_pct=None,
                                              stop_loss_pct=None, funding_unfavourable_intervals=None))
    window = dict(start="2024-01-02", end="2024-01-08")
    ample = run_fast_xvenue(params, m, **window)
    wallet = None
    for w in (10_200.0, 10_150.0, 10_100.0, 10_050.0, 10_000.0):  # the first wallet where a later entry fails
        fr = run_fast_xvenue(params, m, config=CrossVenueConfig(perp_usdt=w), **window)
        if _failed_at(fr.transitions) and (fr.transitions["trigger_name"] == "HEDGE_FILLED").any():
            wallet = w
            break
    assert wallet is not None
    run, fa = assert_fast_equals_xvenue(params, m, CrossVenueConfig(perp_usdt=wallet), **window)
    _assert_unwound_and_moved(fa, run.result.transitions, ample)


@pytest.mark.shared_data
def test_the_notebook_sweep_point_the_census_found_refused_equals_the_event_path(shared_data):
    """Notebook 04's carry at its grid's first point on the shared sample: the entry of 2023-11-20 18:00 is
    rejected (the perp wallet lost to the 2023 rally), formerly a refusal."""
    from hedge_core.data.shared import market_data

    tl = build_timeline(market_data().market("BTC"), start="2023-01-04T00:00Z", end="2024-06-30T00:00Z")
    params = CarryParams(min_funding_rate=0.00005, min_net_carry=-0.01, rebalance={"drift_threshold": 0.005},
                         exit=ExitParams(rearm=True, max_holding_hours=720, profit_target_pct=None,
                                         stop_loss_pct=None, funding_unfavourable_intervals=3))
    ev, fa = assert_fast_equals_event(params, tl, kpis=True)
    assert _failed_at(fa.transitions) == [pd.Timestamp("2023-11-20T18:00Z")]
    _assert_unwound_and_moved(fa, ev.transitions, run_fast(params, tl, config=BacktestConfig(perp_usdt=1e6)))


@pytest.mark.shared_data
def test_the_bench_point_refused_by_the_former_margin_band_equals_the_event_path(shared_data):
    """``bench_backtest.py``'s carry (24 h holding, drift 0.01, funding 0.0001) on the shared sample: the hedge of
    2024-03-09 13:00 needs 10,009.62 USDT of a free 10,000.81 (0.09 % short: the venue rejects it, which the
    former 0.1 % band refused to decide)."""
    from hedge_core.data.shared import market_data

    tl = build_timeline(market_data().market("BTC"), start="2023-01-04T00:00Z", end="2024-06-30T00:00Z")
    params = CarryParams(min_funding_rate=0.0001, min_net_carry=-0.01, rebalance={"drift_threshold": 0.01},
                         exit=ExitParams(rearm=True, max_holding_hours=24))
    ev, fa = assert_fast_equals_event(params, tl, kpis=True)
    assert pd.Timestamp("2024-03-09T13:00Z") in _failed_at(fa.transitions)


# ---- a rebalance order the venue rejects (step._rebalancing: re-placed hedge_retries times, then REBALANCED) ----

def _rejected_rebalances(fa) -> list[pd.Timestamp]:
    """The instants of a drift rebalance that filled nothing on the perp (every order of it rejected)."""
    tr, f = fa.transitions, fa.fills
    due = tr.loc[tr["trigger_name"] == "DRIFT_EXCEEDED", "ts"]
    return [t for t in due if not ((f["ts"] == t) & (f["leg"] == "perp")).any()]


def test_a_grid_whose_rebalance_the_venue_rejects_equals_the_event_path(demo_tl):
    """The grid adds to its short as levels are crossed; a perp wallet of 3,500 USDT margins the first hedge and not
    every addition: those rebalances are rejected (1 + hedge_retries orders) and the book stays as it was."""
    from hedge_core.params.models import GridParams

    params = GridParams(exit=EXIT)
    ev, fa = assert_fast_equals_event(params, demo_tl, BacktestConfig(perp_usdt=3_500.0), kpis=True)
    rejected = _rejected_rebalances(fa)
    assert len(rejected) >= 3
    ample = run_fast(params, demo_tl)
    assert not _rejected_rebalances(ample) and len(ample.fills) != len(fa.fills)
    with pytest.raises(FastPathUnsupported, match="order-rate"):  # the rejected orders count in the window
        run_fast(params.model_copy(update={"guards": GuardParams(max_orders_per_minute=2)}), demo_tl,
                 config=BacktestConfig(perp_usdt=3_500.0))


@pytest.mark.shared_data
def test_the_loan_book_whose_rebalances_the_venue_rejects_equals_the_event_path(shared_data):
    """Notebook 06's loan book (3x) over the shared sample: from 2024-02-28 17:00 its perp wallet cannot margin the
    short its tier asks for, and every hourly rebalance after it is rejected (the census's last hedge-kernel
    refusals)."""
    from hedge_core.data.shared import market_data
    from hedge_core.params.models import VolTierLoanParams

    tl = build_timeline(market_data().market("BTC"), start="2023-01-04T00:00Z", end="2024-06-30T00:00Z")
    params = VolTierLoanParams(perp_leverage=3.0)
    ev, fa = assert_fast_equals_event(params, tl, ltv=True, kpis=True)
    rejected = _rejected_rebalances(fa)
    assert rejected[0] == pd.Timestamp("2024-02-28T17:00Z") and len(rejected) > 100
