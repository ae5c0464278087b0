"""hedge_core.money against INDEPENDENT references: hand-computed cases (the arithmetic in the
comments), Binance's documented examples, slow exact (Fraction) formulas and accounting identities;
plus the check that the two compiled forms of each function (plain Python for the engine, inlined
into numba kernels for the fast path) give the same doubles."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from hedge_core import money
from hedge_core.analytics.risk import BTCUSDT_BRACKETS, ETHUSDT_BRACKETS, bracket_columns

BTC = bracket_columns(BTCUSDT_BRACKETS)  # floors, caps, max leverages, mmrs, cums
ETH = bracket_columns(ETHUSDT_BRACKETS)


def _lp(qty, ep, wb, cols, tmm=0.0, upnl=0.0):
    floors, caps, _, mmrs, cums = cols
    return money.liquidation_price(qty, ep, wb, tmm, upnl, floors, caps, mmrs, cums)


# ---- execution --------------------------------------------------------------------------------


def test_slippage_and_fill_price_hand_case():
    # 1 bps fixed + k=10 x sqrt(4 / 100) = 10 x 0.2 = 2 bps -> 3 bps
    bps = money.slippage_bps(1.0, 10.0, 4.0, 100.0)
    assert bps == pytest.approx(3.0)
    assert money.fill_price(20_000.0, 1, bps) == pytest.approx(20_006.0)  # 20,000 x 1.0003
    assert money.fill_price(20_000.0, -1, bps) == pytest.approx(19_994.0)  # 20,000 x 0.9997
    assert money.slippage_bps(1.0, 10.0, 4.0, 0.0) == 1.0  # unknown volume: no impact
    assert money.slippage_bps(1.0, 0.0, 4.0, 100.0) == 1.0


def test_slippage_cost_sign_convention():
    assert money.slippage_cost(1, 2.0, 101.0, 100.0) == pytest.approx(2.0)  # buy 2 at 1 above ref
    assert money.slippage_cost(-1, 2.0, 99.0, 100.0) == pytest.approx(2.0)  # sell 2 at 1 below ref
    assert money.slippage_cost(1, 2.0, 99.0, 100.0) == pytest.approx(-2.0)  # a price improvement


def test_fee_and_order_cost_hand_cases():
    assert money.fee(0.5, 40_000.0, 0.0005) == pytest.approx(10.0)  # 20,000 notional x 0.05 %
    assert money.buy_cost_with_fee(0.1, 30_000.0, 0.001) == pytest.approx(3_003.0)  # 3,000 + 0.1 %
    assert money.spot_quote_delta(1, 0.1, 30_000.0, 3.0) == pytest.approx(-3_003.0)  # buy pays price + fee
    assert money.spot_quote_delta(-1, 0.1, 30_000.0, 3.0) == pytest.approx(2_997.0)  # sell gets price - fee
    assert money.trade_cash_flow(1, 2.0, 100.0) == -200.0
    assert money.trade_cash_flow(-1, 2.0, 100.0) == 200.0


# ---- positions --------------------------------------------------------------------------------


def test_fill_position_hand_sequence_incl_reversal():
    q, avg, r, c = money.fill_position(0.0, 0.0, 1, 1.0, 100.0)
    assert (q, avg, r, c) == (1.0, 100.0, 0.0, 0.0)
    q, avg, r, c = money.fill_position(q, avg, 1, 1.0, 110.0)  # (1 x 100 + 1 x 110) / 2 = 105
    assert (q, avg, r, c) == (2.0, 105.0, 0.0, 0.0)
    q, avg, r, c = money.fill_position(q, avg, -1, 1.5, 120.0)  # 1.5 x (120 - 105) = 22.5
    assert (q, avg, r, c) == (0.5, 105.0, 22.5, 1.5)
    q, avg, r, c = money.fill_position(q, avg, -1, 1.0, 100.0)  # closes 0.5 x (100 - 105) = -2.5, opens -0.5 @ 100
    assert (q, avg, r, c) == (-0.5, 100.0, -2.5, 0.5)
    q, avg, r, c = money.fill_position(q, avg, 1, 0.5, 90.0)  # short closed: 0.5 x (90 - 100) x -1 = +5
    assert (q, avg, r, c) == (0.0, 0.0, 5.0, 0.5)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, -1]), st.integers(1, 50), st.integers(50, 150)), min_size=1,
                max_size=25), st.integers(50, 150))
def test_fill_position_meets_the_cash_flow_identity(fills, last):
    """Independent reference: whatever the averaging does, realised + unrealised PnL equals the
    exact cash flows plus the marked value of the final position (Fraction arithmetic)."""
    q = avg = realized = 0.0
    cash = Fraction(0)
    pos = Fraction(0)
    for sign, lots, px in fills:
        qty = lots / 10
        q, avg, r, _ = money.fill_position(q, avg, sign, qty, float(px))
        realized += r
        cash -= sign * Fraction(lots, 10) * px
        pos += sign * Fraction(lots, 10)
    assert q == pytest.approx(float(pos), abs=1e-9)
    total = realized + money.unrealized_pnl(q, float(last), avg)
    assert total == pytest.approx(float(cash + pos * last), rel=1e-9, abs=1e-6)


def test_isolated_margin_after_fill_hand_sequence():
    lev = 10.0
    # open 2 @ 100 at 10x: 2 x 100 / 10 = 20
    m = money.isolated_margin_after_fill(0.0, 0.0, 2.0, 2.0, 0.0, 100.0, lev)
    assert m == pytest.approx(20.0)
    # add 2 @ 110: + 22 = 42
    m = money.isolated_margin_after_fill(m, 2.0, 4.0, 2.0, 0.0, 110.0, lev)
    assert m == pytest.approx(42.0)
    # close 1 of 4: 42 x (1 - 1/4) = 31.5
    m = money.isolated_margin_after_fill(m, 4.0, 3.0, 1.0, 1.0, 120.0, lev)
    assert m == pytest.approx(31.5)
    # sell 5 from +3: the old margin goes, the 2 opened short bring 2 x 120 / 10 = 24
    m = money.isolated_margin_after_fill(m, 3.0, -2.0, 5.0, 3.0, 120.0, lev)
    assert m == pytest.approx(24.0)
    assert money.isolated_margin_after_fill(m, -2.0, 0.0, 2.0, 2.0, 120.0, lev) == 0.0  # flat
    # leverage inf: a margin share no fill adds to (the ledger's funding in the margin)
    assert money.isolated_margin_after_fill(10.0, 2.0, 4.0, 2.0, 0.0, 100.0, math.inf) == 10.0
    assert money.isolated_margin_after_fill(10.0, 2.0, 1.0, 1.0, 1.0, 100.0, math.inf) == pytest.approx(5.0)
    assert money.isolated_margin_after_fill(10.0, 0.0, 1.0, 1.0, 0.0, 100.0, math.inf) == 0.0
    assert money.isolated_margin(-2.0, 30_000.0, 20.0) == pytest.approx(3_000.0)  # 60,000 / 20


def test_unrealized_pnl_sign():
    assert money.unrealized_pnl(-2.0, 90.0, 100.0) == pytest.approx(20.0)  # short gains when price falls
    assert money.unrealized_pnl(2.0, 90.0, 100.0) == pytest.approx(-20.0)


# ---- funding ----------------------------------------------------------------------------------


def test_funding_payment_sign_convention_and_arrays():
    # long 2 BTC, mark 30,000, rate +0.01 %: pays 2 x 30,000 x 0.0001 = 6
    assert money.funding_payment(2.0, 30_000.0, 0.0001) == pytest.approx(-6.0)
    assert money.funding_payment(-2.0, 30_000.0, 0.0001) == pytest.approx(6.0)  # the short receives
    assert money.funding_payment(-2.0, 30_000.0, -0.0001) == pytest.approx(-6.0)  # negative: shorts pay
    got = money.funding_payment(np.array([1.0, -1.0]), np.array([100.0, 200.0]), np.array([0.001, 0.001]))
    np.testing.assert_allclose(got, [-0.1, 0.2])


def test_funding_apr_hand_cases():
    assert money.funding_apr(0.0001, 8.0) == pytest.approx(0.1095)  # 0.01 % x 3 a day x 365
    assert money.funding_apr(0.0001, 1.0) == pytest.approx(0.876)  # hourly venue: x 8,760
    assert money.funding_pay_apr(1.0, 0.0001, 8.0) == pytest.approx(0.1095)  # a long pays a positive rate
    assert money.funding_pay_apr(-1.0, 0.0001, 8.0) == 0.0  # a short receives it
    assert money.funding_pay_apr(-1.0, -0.0002, 8.0) == pytest.approx(0.219)
    assert money.funding_pay_apr(1.0, math.nan, 8.0) == 0.0
    assert money.funding_pay_apr(0.0, 0.01, 8.0) == 0.0


def test_carry_cost_formulas_hand_cases():
    assert money.basis(40_040.0, 40_000.0) == pytest.approx(0.001)  # 40 above 40,000 = 10 bps
    assert money.round_trip_cost(2, 0.0004, 0.0002) == pytest.approx(0.0024)  # 2 legs x in+out x 0.06 %
    # Binance VIP0 spot 0.1 % and USD-M perp 0.05 % taker, 2 bps slippage: in+out spot 0.24 %, perp 0.14 %
    assert money.pair_round_trip_cost(0.001, 0.0005, 0.0002) == pytest.approx(0.0038)
    assert money.pair_round_trip_cost(0.0004, 0.0004, 0.0002) == pytest.approx(money.round_trip_cost(2, 0.0004, 0.0002))
    # 10.95 % APR for 10 days = 0.3 %, minus 0.24 % round trip = 0.06 %
    assert money.expected_net_carry(0.1095, 0.0, 10.0, 0.0024) == pytest.approx(0.0006)
    # with a 3.65 % borrow: (0.1095 - 0.0365) x 10 / 365 - 0.0024 = -0.0004
    assert money.expected_net_carry(0.1095, 0.0365, 10.0, 0.0024) == pytest.approx(-0.0004)


# ---- maintenance margin, liquidation, leverage -----------------------------------------------


def test_bracket_index_and_maintenance_margin_binance_faq():
    caps = BTC[1]
    assert money.bracket_index(49_999.0, caps) == 0
    assert money.bracket_index(50_000.0, caps) == 1  # floor <= n < cap
    assert money.bracket_index(-264_000.0, caps) == 2  # sign ignored; FAQ: 264,000 -> MMR 1 %
    assert money.bracket_index(1e12, caps) == len(caps) - 1
    # FAQ: 500,000 USDT in bracket 3 (MMR 1 %, cum 1,300): 5,000 - 1,300 = 3,700
    assert money.maintenance_margin(500_000.0, 0.01, 1_300.0) == pytest.approx(3_700.0)
    assert money.maintenance_margin(-40_000.0, 0.004, 0.0) == pytest.approx(160.0)


def test_liquidation_price_binance_documented_examples():
    # FAQ: 1,000 USDT long at 50,000 with a 500 USDT wallet: (500 - 0.02 x 50,000) / (0.02 x 0.004 - 0.02)
    assert round(_lp(1_000 / 50_000, 50_000.0, 500.0, BTC), 2) == 25_100.40
    # FAQ cross example with the published TMM1/UPNL1 of the other contract (to the cent)
    assert round(_lp(109.488, 32_481.98, 1_535_443.01, BTC, 356_512.508, -448_192.89), 2) == 26_316.89
    assert round(_lp(3_683.979, 1_456.84, 1_535_443.01, ETH, 71_200.81144, -56_354.57), 2) == 1_153.26


def test_liquidation_price_hand_cases():
    # short 1 @ 40,000, margin 4,000: (4,000 + 40,000) / (0.004 + 1) = 43,824.70
    assert round(_lp(-1.0, 40_000.0, 4_000.0, BTC), 2) == 43_824.70
    # long 6 @ 45,000 (bracket 3 at entry), margin 27,000; bracket 3 gives 40,690.24 (notional 244,141:
    # bracket 2), bracket 2 gives (27,000 + 50 - 270,000) / (6 x 0.005 - 6) = 40,695.14 (consistent)
    assert round(_lp(6.0, 45_000.0, 27_000.0, BTC), 2) == 40_695.14
    assert _lp(1.0, 100.0, 1_000.0, BTC) == 0.0  # over-collateralised long: never
    one = money.liquidation_price_in_bracket(4_000.0, 0.0, 0.0, 0.0, -1, 1.0, 40_000.0, 0.004)
    assert one == pytest.approx(44_000.0 / 1.004)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.001, 5.0), st.floats(1_000.0, 60_000.0), st.floats(1.5, 50.0), st.sampled_from([1, -1]))
def test_equity_at_the_liquidation_price_is_the_maintenance_margin(qty, ep, lev, side):
    """Definition check (independent of the closed form): at LP, margin + uPnL == MM(LP)."""
    q = side * qty
    wb = money.isolated_margin(q, ep, lev)
    lp = _lp(q, ep, wb, BTC)
    if lp <= 0:
        return
    k = money.bracket_index(qty * lp, BTC[1])
    mm = money.maintenance_margin(qty * lp, BTC[3][k], BTC[4][k])
    assert wb + q * (lp - ep) == pytest.approx(mm, rel=1e-9, abs=1e-6 * qty * ep)


def test_liquidation_distance_max_notional_flat_move():
    assert money.liquidation_distance(1.0, 100.0, 90.0) == pytest.approx(0.1)  # long: (100 - 90) / 100
    assert money.liquidation_distance(-1.0, 100.0, 110.0) == pytest.approx(0.1)  # short: (110 - 100) / 100
    # BTC brackets allowing >= 20x reach 10,000,000; >= 21x only 1,000,000 (50x bracket); 126x none
    assert money.max_notional(20.0, BTC[1], BTC[2]) == 10_000_000
    assert money.max_notional(21.0, BTC[1], BTC[2]) == 1_000_000
    assert money.max_notional(126.0, BTC[1], BTC[2]) == 0.0
    assert money.flat_liquidation_move(10.0) == pytest.approx(0.096)  # 1/10 - 0.4 %


def test_leverage_for_buffer_hand_case_and_definition():
    # short 10,000 USDT, buffer 30 %: LP notional 13,000 -> bracket 1 (0.4 %, cum 0)
    # 1/L = 1.3 x 1.004 - 1 = 0.3052 -> L = 3.2765...
    lev = money.leverage_for_buffer(0.3, 10_000.0, -1, 0.004, 0.0)
    assert lev == pytest.approx(1 / 0.3052)
    # definition: margin n/L, price up 30 %: n/L - 0.3 n == MM at 1.3 n
    n = 10_000.0
    assert n / lev - 0.3 * n == pytest.approx(1.3 * n * 0.004)
    # long, 50 %: 1/L = 1 - 0 - 0.5 x 0.996 = 0.502
    assert money.leverage_for_buffer(0.5, n, 1, 0.004, 0.0) == pytest.approx(1 / 0.502)
    # 1/L = 1 - 100/10,000 - 0.999 x 0.996 = -0.005 <= 0: no leverage brings LP that close
    assert money.leverage_for_buffer(0.001, n, 1, 0.004, 100.0) == math.inf


def test_required_buffer_whole_leverage_choose_leverage():
    assert money.required_buffer(0.05, 0.3, 3.0) == 0.3  # 3 x 5 % = 15 % < 30 %
    assert money.required_buffer(0.2, 0.3, 3.0) == pytest.approx(0.6)
    assert money.required_buffer(0.5, 0.3, 3.0) == 0.95  # capped
    assert money.required_buffer(math.nan, 0.3, 3.0) == 0.3
    assert money.whole_leverage(3.9999999999, 1.0) == 4.0  # float noise below a whole leverage
    assert money.whole_leverage(3.7, 1.0) == 3.0
    assert money.whole_leverage(3.7, 5.0) == 5.0
    _, caps, maxlevs, mmrs, cums = BTC
    args = (caps, mmrs, cums, maxlevs)
    # short 10,000, buffer 30 % -> 3.2765 -> 3x
    assert money.choose_leverage(math.nan, 10_000.0, -1, 0.3, 3.0, 1.0, 10.0, *args, math.inf) == 3.0
    assert money.choose_leverage(math.nan, 10_000.0, -1, 0.3, 3.0, 1.0, 2.0, *args, math.inf) == 2.0
    assert money.choose_leverage(math.nan, 10_000.0, -1, 0.3, 3.0, 1.0, 10.0, *args, 2.5) == 2.0
    # tiny buffer: 1/L ~ 0.01 x 1.004 + 0.004 -> ~71x, but 2,000,000 USDT sits in the 20x bracket
    assert money.choose_leverage(math.nan, 2_000_000.0, -1, 0.01, 3.0, 1.0, 125.0, *args, math.inf) == 20.0


# ---- lots, ticks, minimums --------------------------------------------------------------------


def test_lot_floor_and_tick_round_hand_cases():
    assert money.lot_floor(0.0035, 0.001) == 0.003
    assert money.lot_floor(-0.0035, 0.001) == 0.003  # a magnitude
    assert money.lot_floor(0.3, 0.1) == 0.3  # 0.3 / 0.1 = 2.9999999999999996 is 3 lots, not 2
    assert money.lot_floor(0.00099, 0.001) == 0.0
    assert money.tick_round(50_000.06, 0.1) == pytest.approx(50_000.1)
    assert money.tick_round(0.75, 0.5) == 1.0  # 1.5 ticks -> 2 (half to even)
    assert money.tick_round(0.25, 0.5) == 0.0  # 0.5 ticks -> 0 (half to even)
    assert money.meets_minimums(0.001, 100_000.0, 0.001, 0.001, 100.0)  # 100 USDT notional
    assert not money.meets_minimums(0.001, 99_000.0, 0.001, 0.001, 100.0)
    assert not money.meets_minimums(0.0, 99_000.0, 0.001, 0.001, 0.0)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10_000_000), st.sampled_from([0.1, 0.01, 0.001, 0.00001, 0.0001, 1.0]))
def test_lot_floor_never_trades_more_than_asked(micro, lot):
    qty = micro * 1e-6
    r = money.lot_floor(qty, lot)
    exact = Fraction(qty) // Fraction(lot) * Fraction(lot)  # slow exact floor
    assert r <= qty + 1e-9 * lot  # never more than asked (beyond the 1e-9-lot noise tolerance)
    assert r == pytest.approx(float(exact), abs=lot * (1 + 1e-9)) and r > qty - lot
    assert abs(r / lot - round(r / lot)) < 1e-6  # whole lots


# ---- loans ------------------------------------------------------------------------------------


def test_loan_formulas_hand_cases():
    assert money.simple_interest(100_000.0, 0.08, 365 * 86_400) == pytest.approx(8_000.0)
    assert money.simple_interest(100_000.0, 0.08, 86_400) == pytest.approx(8_000.0 / 365)
    assert money.loan_to_value(50_000.0, 1.0, 100_000.0) == 0.5
    assert money.collateral_for_ltv(16_200.0, 0.5, 64_800.0) == 0.5  # 16,200 / (0.5 x 64,800) = 0.5 BTC
    np.testing.assert_allclose(money.loan_to_value(50_000.0, 2.0, np.array([50_000.0, 25_000.0])), [0.5, 1.0])
    assert money.repayment_split(150.0, 100.0, 1_000.0) == (100.0, 50.0, 0.0)  # interest first
    assert money.repayment_split(1_200.0, 100.0, 1_000.0) == (100.0, 1_000.0, 100.0)  # leftover back
    sched = (0.65, 0.75, 0.85, 3_000.0, 8_000.0, 10_000.0)
    assert money.reserve_deployment(0.64, *sched) == 0.0
    assert money.reserve_deployment(0.70, *sched) == pytest.approx(1_500.0)  # half of 0 -> 3,000
    assert money.reserve_deployment(0.75, *sched) == pytest.approx(3_000.0)
    assert money.reserve_deployment(0.80, *sched) == pytest.approx(5_500.0)  # half of 3,000 -> 8,000
    assert money.reserve_deployment(0.85, *sched) == 10_000.0  # the documented jump


# ---- hedge sizing and rebalancing -------------------------------------------------------------


def test_perp_target_hedge_ratio_drift_hand_cases():
    assert money.perp_target(True, 0.9, 2.0, 0.0, 100.0, 100.0) == pytest.approx(-1.8)
    # cross-asset: 0.5 x 10 ETH x 2,000 / 40,000 = 0.25 BTC short
    assert money.perp_target(False, 0.5, 10.0, 0.0, 2_000.0, 40_000.0) == pytest.approx(-0.25)
    assert money.perp_target(False, 0.5, 10.0, -0.3, math.nan, 40_000.0) == -0.3  # unpriced: unchanged
    # |-0.25| x 40,000 / (10 x 2,000) = 0.5
    assert money.hedge_ratio(10.0, -0.25, 2_000.0, 40_000.0) == pytest.approx(0.5)
    assert math.isnan(money.hedge_ratio(0.0, -0.25, 2_000.0, 40_000.0))
    assert money.hedge_drift(0.93, 1.0) == pytest.approx(0.07)
    assert math.isnan(money.hedge_drift(math.nan, 1.0))


# ---- one source, two compiled forms ------------------------------------------------------------

_COLS = tuple(np.array(c) for c in BTC)
SAMPLES = {
    "slippage_bps": [(1.0, 10.0, 0.3, 7.0), (2.0, 0.0, 1.0, 0.0)],
    "fill_price": [(43_210.7, 1.0, 3.3), (43_210.7, -1.0, 0.7)],
    "slippage_cost": [(1.0, 0.013, 43_214.1, 43_210.7), (-1.0, 0.013, 43_200.1, 43_210.7)],
    "fee": [(0.013, 43_214.1, 0.0005)],
    "buy_cost_with_fee": [(0.013, 43_214.1, 0.001)],
    "spot_quote_delta": [(1.0, 0.013, 43_214.1, 0.56), (-1.0, 0.013, 43_214.1, 0.56)],
    "trade_cash_flow": [(-1.0, 0.013, 43_214.1)],
    "fill_position": [(0.3, 41_000.3, 1.0, 0.07, 43_214.1), (0.3, 41_000.3, -1.0, 0.5, 43_214.1),
                      (-0.3, 41_000.3, 1.0, 0.1, 43_214.1), (0.0, 0.0, -1.0, 0.1, 43_214.1)],
    "isolated_margin": [(-0.3, 41_000.3, 7.0)],
    "isolated_margin_after_fill": [(1_700.1, 0.3, 0.2, 0.1, 0.1, 43_214.1, 7.0),
                                   (1_700.1, 0.3, -0.2, 0.5, 0.3, 43_214.1, 7.0),
                                   (17.3, 0.3, 0.4, 0.1, 0.0, 43_214.1, math.inf)],
    "unrealized_pnl": [(-0.3, 43_214.1, 41_000.3)],
    "funding_payment": [(-0.3, 43_214.1, 0.000137)],
    "funding_position": [(1.776, 43_214.1, 0.000137), (-2.5, 39_870.5, -0.0003)],
    "funding_apr": [(0.000137, 8.0)],
    "funding_pay_apr": [(0.3, 0.000137, 8.0), (-0.3, 0.000137, 4.0)],
    "basis": [(43_260.3, 43_214.1)],
    "round_trip_cost": [(2, 0.0005, 0.0002)],
    "pair_round_trip_cost": [(0.001, 0.0005, 0.0001)],
    "expected_net_carry": [(0.1095, 0.0, 3.0, 0.0028)],
    "bracket_index": [(264_000.0, _COLS[1])],
    "maintenance_margin": [(264_000.3, 0.01, 1_300.0)],
    "liquidation_price_in_bracket": [(1_700.1, 0.0, 0.0, 0.0, -1.0, 0.3, 41_000.3, 0.004)],
    "liquidation_price": [(-0.3, 41_000.3, 1_700.1, 0.0, 0.0, _COLS[0], _COLS[1], _COLS[3], _COLS[4]),
                          (6.0, 45_000.0, 27_000.0, 0.0, 0.0, _COLS[0], _COLS[1], _COLS[3], _COLS[4])],
    "liquidation_distance": [(-0.3, 43_214.1, 47_000.9)],
    "max_notional": [(17.0, _COLS[1], _COLS[2])],
    "clip": [(7.3, 1.0, 5.0)],
    "required_buffer": [(0.071, 0.3, 3.0)],
    "leverage_for_buffer": [(0.37, 12_345.6, -1.0, 0.004, 0.0)],
    "whole_leverage": [(3.9999999999, 1.0)],
    "choose_leverage": [(0.071, 12_345.6, -1.0, 0.3, 3.0, 1.0, 10.0, _COLS[1], _COLS[3], _COLS[4], _COLS[2],
                         math.inf)],
    "flat_liquidation_move": [(7.0,)],
    "perp_target": [(False, 0.93, 1.3, -0.2, 2_100.3, 43_214.1), (True, 0.93, 1.3, -0.2, 2_100.3, 43_214.1)],
    "hedge_ratio": [(1.3, -0.2, 2_100.3, 43_214.1)],
    "hedge_drift": [(0.93, 1.0)],
    "lot_floor": [(0.3, 0.1), (-0.0123456, 0.001)],
    "tick_round": [(43_214.137, 0.1)],
    "meets_minimums": [(0.002, 43_214.1, 0.001, 0.001, 100.0)],
    "simple_interest": [(31_234.5, 0.083, 123_456.7)],
    "collateral_for_ltv": [(16_200.0, 0.5, 43_214.1)],
    "loan_to_value": [(31_234.5, 1.3, 43_214.1)],
    "repayment_split": [(150.3, 100.7, 1_000.1)],
    "reserve_deployment": [(0.8123, 0.65, 0.75, 0.85, 3_000.0, 8_000.0, 10_000.0)],
}


def _compiled(name: str, nargs: int):
    names = ", ".join(f"a{i}" for i in range(nargs))
    ns: dict = {"fn": getattr(money, name)}
    exec(f"def wrapper({names}):\n    return fn({names})\n", ns)  # noqa: S102 - a fixed template
    return njit(ns["wrapper"])


def test_every_money_function_has_a_compiled_sample():
    funcs = {n for n in money.__all__ if callable(getattr(money, n))}
    assert funcs == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_compiled_form_gives_the_same_doubles_as_the_python_form(name):
    """What the fast kernels inline equals what the engine calls, to the bit."""
    for args in SAMPLES[name]:
        want = getattr(money, name)(*args)
        got = _compiled(name, len(args))(*args)
        assert np.array_equal(np.asarray(got, dtype=float), np.asarray(want, dtype=float)), (name, args, got, want)


def test_fast_path_drops_its_compiled_kernels_when_money_changes(tmp_path):
    """numba's cache of a kernel only watches the kernel's own file: the fast path drops the
    compiled files of every module of its package when a source the kernels compile in (the money
    package, the package's own helpers and codes, the engine's constants) changed since the
    kernels were compiled."""
    from hedge_core.backtest.fast.cache import KERNEL_STEMS, drop_stale_kernel_cache, inlined_sources

    assert {"hedge_kernel", "voltier_kernel", "helpers", "signals"} <= set(KERNEL_STEMS)
    watched = {(p.parent.name, p.name) for p in inlined_sources()}
    assert {("fast", "helpers.py"), ("fast", "codes.py"), ("money", "execution.py"),
            ("engine", "constants.py")} <= watched
    assert ("fast", "run.py") not in watched and ("fast", "hedge_kernel.py") not in watched  # numba watches its own
    src = tmp_path / "money.py"
    src.write_text("A = 1\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    kernels = [cache / "hedge_kernel.hedge_kernel-600.py311.nbi",
               cache / "voltier_kernel.voltier_kernel-50.py311.1.nbc", cache / "helpers._tradeable-40.py311.nbi"]
    other = cache / "kpis._snapshot_pass-223.py311.nbi"
    for f in (*kernels, other):
        f.write_text("x")
    assert drop_stale_kernel_cache(cache, [src])  # first sight of this money: drop
    assert not any(k.exists() for k in kernels) and other.exists()
    for k in kernels:
        k.write_text("x")  # recompiled against it
    assert not drop_stale_kernel_cache(cache, [src]) and all(k.exists() for k in kernels)  # same money: keep
    src.write_text("A = 2\n")
    assert drop_stale_kernel_cache(cache, [src]) and not any(k.exists() for k in kernels)  # edited: drop again
    assert len(list(cache.glob("fast.sources-*.stamp"))) == 1


def test_funding_position_inverts_the_payment():
    # a 0.5 BTC short at mark 40,000 with rate +0.0001 receives 0.5 x 40,000 x 0.0001 = 2.0 USDT
    from hedge_core.money import funding_payment, funding_position

    assert funding_payment(-0.5, 40_000.0, 0.0001) == pytest.approx(2.0)
    assert funding_position(2.0, 40_000.0, 0.0001) == pytest.approx(-0.5)
    assert math.isnan(funding_position(2.0, 40_000.0, 0.0)) and math.isnan(funding_position(2.0, float("nan"), 1e-4))


def test_every_money_function_has_a_row_in_docs_money_md():
    """docs/money.md is the list of where each formula lives: a public money function without a row
    (``money.<module>:<name>``) fails here, so the table cannot drift from the package."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    table = (root / "docs" / "money.md").read_text()
    missing = []
    for f in sorted((root / "hedge_core" / "money").glob("*.py")):
        if f.name == "__init__.py":
            continue
        for node in ast.parse(f.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                if f"`money.{f.stem}:{node.name}`" not in table:
                    missing.append(f"money.{f.stem}:{node.name}")
    assert not missing, f"money functions without a row in docs/money.md: {missing}"
