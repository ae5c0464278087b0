"""The cross-venue carry with TWO PERP legs (``CrossCarryParams.legs = "perp_perp"``): long the perp where
funding is lower, short where it is higher (issue #15 items 2-3; Hummingbot's funding-rate arbitrage).

The backtest is checked against a ledger written out BY HAND below in plain arithmetic (not through
``hedge_core.money``): each fill's price and fee on its venue, each venue's funding payments at its own
rates, each leg's realised PnL, the net PnL and each venue's final futures wallet.

Conventions used by hand (README "Units and conventions", docs/paper-exchange.md "Fill model"):
- bars are labelled by their OPEN time; at instant t the engine knows the bars that ended at t, so the
  reference price of an order at t is the close of the bar labelled t - 1h;
- at each instant: bars known -> the engine acts (orders fill at once) -> each venue's funding of t settles;
- funding payment = -position x mark x rate on EACH venue at ITS rate; mark = close of the mark bar that
  ended at t;
- a taker fill: buy at ref x (1 + 2 bps), sell at ref x (1 - 2 bps) (slippage_bps 2, no impact);
  fee = qty x fill price x that venue's perp taker rate (bybit 0.055 %, okx 0.05 %: their VIP0 schedules).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hedge_core.backtest.fast.scope import FastPathUnsupported
from hedge_core.backtest.fast.xvenue import fast_xvenue_kpis
from hedge_core.backtest.timeline import build_timeline
from hedge_core.backtest.xvenue import cross_venue_market, run_cross_venue_backtest
from hedge_core.engine.strategies.xcarry import decide_perp_perp
from hedge_core.errors import InvalidInput
from hedge_core.params.xcarry import CrossCarryParams
from tests.support.pair_hand import FEE_A, FEE_B, H, T0, WALLET
from tests.support.pair_hand import hand_config as _config
from tests.support.pair_hand import hand_market as _market
from tests.support.pair_hand import hand_params as _params


def test_perp_pair_backtest_equals_the_hand_ledger():
    run = run_cross_venue_backtest(_params(), _market(), start=T0 + H, config=_config())
    r = run.result
    # entry at 09:00 (the 08:00 settlement known: bybit 0.0001 < okx 0.0005 -> long bybit, short okx);
    # ref = close of the bar labelled 08:00 = 40,000; qty = 10,000 / 40,000 = 0.25
    q = 0.25
    buy_a, sell_b = 40_000.0 * 1.0002, 40_000.0 * 0.9998  # 40,008 and 39,992
    # exit 16 h later at 25:00: ref = close of the bar labelled 24:00 = 41,200
    sell_a, buy_b = 41_200.0 * 0.9998, 41_200.0 * 1.0002  # 41,191.76 and 41,208.24
    fees_a = q * buy_a * FEE_A + q * sell_a * FEE_A  # 5.5011 + 5.663867
    fees_b = q * sell_b * FEE_B + q * buy_b * FEE_B  # 4.999 + 5.15103
    real_a = q * (sell_a - buy_a)  # +295.94
    real_b = q * (sell_b - buy_b)  # -304.06
    # held through 16:00 (mark 40,420) and 24:00 (mark 41,020): each venue at its own rate
    fund_a = [-q * 40_420.0 * 0.00005, -q * 41_020.0 * 0.0002]  # the long pays: -0.50525, -2.051
    fund_b = [q * 40_420.0 * 0.0003, q * 41_020.0 * 0.0006]  # the short receives: +3.0315, +6.153
    net = real_a + real_b + sum(fund_a) + sum(fund_b) - fees_a - fees_b

    fills = r.fills.sort_values(["ts", "leg"]).reset_index(drop=True)
    assert list(zip(fills["leg"], fills["side"])) == [("perp", "sell"), ("spot", "buy"), ("perp", "buy"),
                                                      ("spot", "sell")]
    assert fills["price"].tolist() == pytest.approx([sell_b, buy_a, buy_b, sell_a], abs=1e-9)
    assert fills["qty"].tolist() == pytest.approx([q] * 4, abs=1e-12)
    assert fills["fee"].tolist() == pytest.approx([q * sell_b * FEE_B, q * buy_a * FEE_A, q * buy_b * FEE_B,
                                                   q * sell_a * FEE_A], abs=1e-9)
    assert fills["ts"].tolist() == [T0 + 9 * H] * 2 + [T0 + 25 * H] * 2
    led = r.ledger
    assert led.loc["spot", "realized"] == pytest.approx(real_a, abs=1e-9)
    assert led.loc["perp", "realized"] == pytest.approx(real_b, abs=1e-9)
    assert led.loc["spot", "funding"] == pytest.approx(sum(fund_a), abs=1e-9)
    assert led.loc["perp", "funding"] == pytest.approx(sum(fund_b), abs=1e-9)
    assert r.kpis["net_pnl"] == pytest.approx(net, abs=1e-9)
    assert r.kpis["fees"] == pytest.approx(fees_a + fees_b, abs=1e-9)
    fp = r.funding_payments.sort_values(["ts", "amount"])
    assert fp["amount"].tolist() == pytest.approx(sorted(fund_a[:1] + fund_b[:1]) + sorted(fund_a[1:] + fund_b[1:]),
                                                  abs=1e-9)
    # each venue's own books: its futures wallet moved by its leg's realised PnL, funding and fees only
    pv = run.per_venue
    assert pv.loc["bybit", "leg"] == "first perp" and pv.loc["okx", "leg"] == "second perp"
    assert pv.loc["bybit", "wallet_end"] == pytest.approx(WALLET + real_a + sum(fund_a) - fees_a, abs=1e-9)
    assert pv.loc["okx", "wallet_end"] == pytest.approx(WALLET + real_b + sum(fund_b) - fees_b, abs=1e-9)
    assert pv.loc["bybit", "funding"] == pytest.approx(sum(fund_a), abs=1e-9)
    assert pv.loc["okx", "fees"] == pytest.approx(fees_b, abs=1e-9)
    assert r.final_state == "COMPLETED"
    assert any("long bybit perp, short okx perp" in s for s in r.transitions["reason"])
    assert any("binance's perp and mark bars" in n for n in run.notes)
    assert any("first leg: perp on bybit" in n for n in run.notes)
    from hedge_core.ui.figures.xvenue import cross_venue_tearsheet

    fig = cross_venue_tearsheet(run)  # the tearsheet says where each perp is and shows the price assumption
    assert "first perp on bybit, second perp on okx" in fig.layout.title.text
    text = fig.layout.annotations[-1].text
    assert "binance's perp and mark bars" in text and "bybit (first perp leg)" in text


def test_entry_prices_the_spread_at_both_venues_perp_fees_over_the_hold():
    # spread 0.0004 per 8h = 0.438 APR; held 21 x 8h = 7 days -> 0.438 x 7 / 365 = 0.0084;
    # round trip 2 x (0.00055 + 0.0001) + 2 x (0.0005 + 0.0001) = 0.0025 (parameters' slippage 1 bp)
    from hedge_core.engine import new_hedge
    from hedge_core.engine.events import MarketUpdate
    from hedge_core.types import Instrument, MarketKind

    inst = [Instrument("BTC/USDT:USDT", v, MarketKind.PERP, "BTC", "USDT", 0.1, 0.001, 0.001, 5.0) for v in
            ("bybit", "okx")]
    ctx = new_hedge("h", "xcarry", *inst, T0)
    m = MarketUpdate(T0, spot=40_000.0, perp=40_000.0, funding_rate=0.0005, spot_funding_rate=0.0001)
    edge = 0.0004 * 1095 * 7 / 365 - 0.0025  # 0.0059
    assert decide_perp_perp(ctx, m, {}, _params(min_net_carry=edge - 1e-9)).enter
    assert not decide_perp_perp(ctx, m, {}, _params(min_net_carry=edge + 1e-9)).enter
    # reversed rates: the first leg goes SHORT (its venue's funding is the higher)
    rev = MarketUpdate(T0, spot=40_000.0, perp=40_000.0, funding_rate=0.0001, spot_funding_rate=0.0005)
    it = decide_perp_perp(ctx, rev, {}, _params())
    assert it.enter and it.target_spot_qty == pytest.approx(-0.25) and "long okx perp, short bybit perp" in it.reason
    # each rate at its own venue's interval: okx settling every 4h at 0.0005 is 1.095 APR against bybit's
    # 0.0001 every 8h (0.1095); the hold is 21 x the LONGER interval (8h)
    h4 = MarketUpdate(T0, spot=40_000.0, perp=40_000.0, funding_rate=0.0005, funding_interval_hours=4.0,
                      spot_funding_rate=0.0001)
    edge4 = (0.0005 * 2190 - 0.0001 * 1095) * 7 / 365 - 0.0025
    assert decide_perp_perp(ctx, h4, {}, _params(min_net_carry=edge4 - 1e-9)).enter
    assert not decide_perp_perp(ctx, h4, {}, _params(min_net_carry=edge4 + 1e-9)).enter
    # the first venue's rate unknown: no entry
    assert not decide_perp_perp(ctx, MarketUpdate(T0, spot=4e4, perp=4e4, funding_rate=0.0005), {}, _params()).enter


def test_perp_pair_refusals_name_the_field():
    with pytest.raises(ValueError, match="perp_venues"):
        _params(perp_venues=("okx2",))
    with pytest.raises(ValueError, match="legs"):
        CrossCarryParams(legs="spot_spot")
    tl = build_timeline(_market(), start=T0 + H)
    with pytest.raises(InvalidInput, match="first_funding"):
        run_cross_venue_backtest(_params(), tl, config=_config())
    with pytest.raises(FastPathUnsupported, match="prebuilt Timeline"):  # the pair's fast path needs A's funding
        fast_xvenue_kpis(_params(), tl, config=_config())
    from hedge_core.backtest.xvenue_sweep import evaluate_event

    with pytest.raises(InvalidInput, match="VenueTimelines"):  # a pair sweep reads both venues' timelines
        evaluate_event(_params(), tl, None)
    cv = pd.DataFrame({"ts": [T0], "venue": ["okx"], "symbol": ["BTCUSDT"], "funding_rate": [0.0001]})
    with pytest.raises(InvalidInput, match="first_venue"):
        cross_venue_market(_market(), cv, perp_venue="okx", first_venue="okx")


@pytest.mark.shared_data
@pytest.mark.slow
def test_perp_pair_on_the_shared_bybit_okx_funding():
    from hedge_core.data.shared import market_data

    md = market_data()
    cv = md.crossvenue_funding()
    m = cross_venue_market(md.market("BTC"), cv, perp_venue="okx", first_venue="bybit")
    p = CrossCarryParams(legs="perp_perp", spot_venue="bybit", perp_venue="okx", min_funding_rate=0.00005,
                         min_net_carry=0.0, exit_below_apr=0.0)
    run = run_cross_venue_backtest(p, m, start="2023-03-01", end="2023-07-01")
    r = run.result
    assert r.kpis["entries"] >= 1 and len(r.fills) >= 4
    assert set(r.fills["leg"]) == {"spot", "perp"} and (r.fills["symbol"] == "BTC/USDT:USDT").all()
    # each venue settled ITS OWN series: every payment's rate is that venue's rate at that time
    from hedge_core.backtest.xvenue import funding_of_venue

    fa, fb = funding_of_venue(cv, "bybit", "BTCUSDT"), funding_of_venue(cv, "okx", "BTCUSDT")
    pv = run.per_venue
    assert pv.loc["bybit", "funding"] == pytest.approx(r.ledger.loc["spot", "funding"], abs=1e-6)
    assert pv.loc["okx", "funding"] == pytest.approx(r.ledger.loc["perp", "funding"], abs=1e-6)
    fp = r.funding_payments
    a_rates = fa["funding_rate"].reindex(fp["ts"]).to_numpy()
    b_rates = fb["funding_rate"].reindex(fp["ts"]).to_numpy()
    assert all(np.isclose(x, ra) or np.isclose(x, rb) for x, ra, rb in zip(fp["rate"], a_rates, b_rates))
    assert abs(r.equity["delta"]).max() <= 0.002  # the pair stays delta-neutral
    # every entry went long on the venue whose last rate was the lower one
    for reason in r.transitions.loc[r.transitions["trigger_name"] == "ENTRY_SIGNAL", "reason"]:
        a = float(reason.split("funding APR bybit ")[1].split(",")[0])
        b = float(reason.split(", okx ")[1].split(",")[0])
        assert reason.startswith("long bybit" if a <= b else "long okx")
    assert r.kpis["n_liquidations"] == 0


def _offset_market() -> object:
    """4h bars (labels 00:00, 04:00, ...; perp 40,000 flat, mark close 40,000 + 10 x bar number); bybit (first
    leg) settles every 4h at 02:00, 06:00, ... (rate 0.00002 x (k + 1) at its k-th time), okx every 8h at 00:00,
    08:00, ... (0.0005): bybit's times are not bar ends, so only the union of both venues' instants holds them."""
    from hedge_core.backtest.timeline import Market
    from hedge_core.backtest.xvenue_pair import pair_market

    n = 12
    idx = pd.date_range(T0, periods=n, freq="4h", tz="UTC")
    perp = pd.DataFrame({"open": 40_000.0, "high": 40_000.0, "low": 40_000.0, "close": 40_000.0, "volume": 25.0},
                        index=idx)
    mk = 40_000.0 + 10.0 * np.arange(n)
    mark = pd.DataFrame({"open": mk, "high": mk, "low": mk, "close": mk}, index=idx)
    fa = pd.DataFrame({"funding_rate": [0.00002 * (k + 1) for k in range(12)], "interval_hours": 4.0},
                      index=pd.DatetimeIndex([T0 + (2 + 4 * k) * H for k in range(12)]))
    fb = pd.DataFrame({"funding_rate": [0.0005] * 7, "interval_hours": 8.0},
                      index=pd.DatetimeIndex([T0 + 8 * k * H for k in range(7)]))
    prices = Market("binance", "BTC/USDT", "BTC/USDT:USDT", "4h", perp.copy(), perp, mark, None)
    return pair_market(prices, fa, fb, first_venue="bybit", perp_venue="okx")


def test_each_venue_settles_at_its_own_times_on_the_union_of_both_venues_instants():
    # replaces the refusal of a first venue whose settlement times added instants to the replay
    from hedge_core.backtest.timeline import DEFAULT_WARMUP
    from hedge_core.backtest.xvenue_pair import pair_timelines

    m = _offset_market()
    tl, ta = pair_timelines(m, start=T0 + 4 * H, end=None, warmup=DEFAULT_WARMUP, spec=None)
    assert tl.index.equals(ta.index)
    hours = [(t - T0) / H for t in tl.index]
    assert hours == [4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42, 44, 46, 48]
    settles_a = [(t - T0) / H for t, r in zip(ta.index, ta.fund_rate) if not np.isnan(r)]
    settles_b = [(t - T0) / H for t, r in zip(tl.index, tl.fund_rate) if not np.isnan(r)]
    assert settles_a == list(range(6, 47, 4)) and settles_b == [8, 16, 24, 32, 40, 48]
    # each venue announces its OWN next settlement: at 04:00 bybit's 06:00, okx's 08:00; past bybit's last
    # time (46:00) whole 4h intervals on from it (50:00)
    assert pd.Timestamp(int(ta.next_fund_ns[0]), tz="UTC") == T0 + 6 * H
    assert pd.Timestamp(int(tl.next_fund_ns[0]), tz="UTC") == T0 + 8 * H
    assert pd.Timestamp(int(ta.next_fund_ns[-1]), tz="UTC") == T0 + 50 * H

    r = run_cross_venue_backtest(_params(), m, start=T0 + 4 * H, config=_config()).result
    # entry at 04:00 (bybit 0.00002 settled at 02:00 < okx 0.0005: long bybit, short okx), qty 10,000 / 40,000;
    # exit at 20:00 (16 h); held through bybit's 06:00, 10:00, 14:00, 18:00 and okx's 08:00, 16:00
    q = 0.25
    assert r.fills.sort_values(["ts", "leg"])["ts"].tolist() == [T0 + 4 * H] * 2 + [T0 + 20 * H] * 2
    # mark at t = close of the last mark bar ENDED by t: 06:00 -> bar 00:00 (40,000), 08:00 and 10:00 -> bar 04:00
    # (40,010), 14:00 -> bar 08:00 (40,020), 16:00 and 18:00 -> bar 12:00 (40,030)
    fund_a = [-q * 40_000.0 * 0.00004, -q * 40_010.0 * 0.00006, -q * 40_020.0 * 0.00008, -q * 40_030.0 * 0.0001]
    fund_b = [q * 40_010.0 * 0.0005, q * 40_030.0 * 0.0005]  # the short receives okx's rate
    assert r.ledger.loc["spot", "funding"] == pytest.approx(sum(fund_a), abs=1e-9)  # -2.8013
    assert r.ledger.loc["perp", "funding"] == pytest.approx(sum(fund_b), abs=1e-9)  # +10.005
    fp = r.funding_payments.sort_values("ts")
    assert [(t - T0) / H for t in fp["ts"]] == [6, 8, 10, 14, 16, 18]
    assert fp["amount"].tolist() == pytest.approx([fund_a[0], fund_b[0], fund_a[1], fund_a[2], fund_b[1], fund_a[3]],
                                                  abs=1e-9)


def test_prebuilt_timelines_of_each_venue_align_on_the_union_as_a_sweep_runs_them():
    # a sweep's VenueTimelines hold one timeline per venue (each on its own settlement times): aligned on the union
    # they equal the single backtest's timelines, and the run books the same funding per leg
    from dataclasses import replace as dc_replace

    from hedge_core.backtest.timeline import DEFAULT_WARMUP
    from hedge_core.backtest.xvenue_pair import align_pair_timelines, pair_timelines

    m = _offset_market()
    tl, ta = pair_timelines(m, start=T0 + 4 * H, end=None, warmup=DEFAULT_WARMUP, spec=None)
    pb = build_timeline(m, start=T0 + 4 * H)
    pa = build_timeline(dc_replace(m, funding=m.meta["first_funding"]), start=T0 + 4 * H)
    assert pa.n != pb.n  # bybit's 02:00, 06:00, ... are not on okx's timeline
    xl, xa = align_pair_timelines(pb, pa)
    for want, got in ((tl, xl), (ta, xa)):
        for f in ("ts", "spot", "perp", "mark", "spot_vol", "perp_vol", "has_spot", "has_perp", "has_mark", "spot_bar",
                  "perp_bar", "mark_bar", "fund_rate", "fund_hours", "last_rate", "next_fund_ns", "inputs", "priced"):
            np.testing.assert_array_equal(getattr(got, f), getattr(want, f), err_msg=f)
    single = run_cross_venue_backtest(_params(), m, start=T0 + 4 * H, config=_config()).result
    swept = run_cross_venue_backtest(_params(), pb, config=_config(), first_timeline=pa).result
    for leg in ("spot", "perp"):
        assert swept.ledger.loc[leg, "funding"] == single.ledger.loc[leg, "funding"]
    assert swept.kpis["net_pnl"] == single.kpis["net_pnl"]
    with pytest.raises(InvalidInput, match="first_funding"):  # timelines of different windows
        align_pair_timelines(pb, build_timeline(dc_replace(m, funding=m.meta["first_funding"]), start=T0 + 12 * H))
