"""LTV bands, reserve deployment, interest accrual and repayment waterfall: table-driven at every
edge, hand-computed amounts, hypothesis properties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedge_core.errors import InvalidInput
from hedge_core.ltv import (
    ACTIONS,
    DEFAULT_PARAMS,
    Loan,
    LtvParams,
    accrue,
    band_action,
    is_panic,
    ltv,
    ltv_band,
    repay_from_profit,
    reserve_deployment,
)

EPS = 1e-9


@pytest.mark.parametrize("x,band", [
    (0.0, "SAFE"), (0.30, "SAFE"), (0.50 - EPS, "SAFE"),
    (0.50, "MONITOR"), (0.65 - EPS, "MONITOR"),
    (0.65, "WARNING"), (0.75 - EPS, "WARNING"),
    (0.75, "CRITICAL"), (0.85 - EPS, "CRITICAL"),
    (0.85, "EMERGENCY"), (1.20, "EMERGENCY"),
])
def test_band_edges(x, band):
    assert ltv_band(x) == band


def test_band_actions():
    assert [band_action(b) for b in ("SAFE", "MONITOR", "WARNING", "CRITICAL", "EMERGENCY")] == [
        "none", "watch", "reduce_hedge_50pct", "close_losing_positions", "close_all"]
    assert set(ACTIONS) == {"SAFE", "MONITOR", "WARNING", "CRITICAL", "EMERGENCY"}
    with pytest.raises(InvalidInput, match="band"):
        band_action("PANIC")


@pytest.mark.parametrize("x,amount", [
    (0.0, 0.0), (0.65 - EPS, 0.0),
    (0.65, 0.0), (0.70, 1_500.0), (0.75 - EPS, 3_000.0),
    (0.75, 3_000.0), (0.80, 5_500.0), (0.85 - EPS, 8_000.0),
    (0.85, 10_000.0), (0.99, 10_000.0), (2.0, 10_000.0),
])
def test_reserve_deployment_table(x, amount):
    assert reserve_deployment(x) == pytest.approx(amount, abs=1e-4)


def test_custom_params_and_validation():
    p = LtvParams(monitor=0.4, warning=0.6, critical=0.7, emergency=0.8,
                  reserve_start=0.6, reserve_mid=0.7, reserve_end=0.8,
                  reserve_mid_amount=1_000, reserve_end_amount=2_000, reserve_total=5_000)
    assert ltv_band(0.45, p) == "MONITOR" and ltv_band(0.8, p) == "EMERGENCY"
    assert reserve_deployment(0.65, p) == pytest.approx(500.0)
    assert reserve_deployment(0.8, p) == 5_000
    with pytest.raises(InvalidInput, match="band edges"):
        LtvParams(monitor=0.7)
    with pytest.raises(InvalidInput, match="reserve amounts"):
        LtvParams(reserve_mid_amount=9_000, reserve_end_amount=8_000)
    for bad in (float("nan"), -0.1):
        with pytest.raises(InvalidInput, match="ltv"):
            ltv_band(bad)
        with pytest.raises(InvalidInput, match="ltv"):
            reserve_deployment(bad)


def test_ltv_value_and_series():
    assert ltv(6_500.0, 0.2, 50_000.0) == pytest.approx(0.65)
    prices = pd.Series([50_000.0, 40_000.0], pd.date_range("2024-01-01", periods=2, freq="D", tz="UTC"))
    s = ltv(6_500.0, 0.2, prices)
    assert s.tolist() == pytest.approx([0.65, 0.8125]) and s.index.equals(prices.index)
    with pytest.raises(InvalidInput, match="price"):
        ltv(1.0, 1.0, 0.0)
    with pytest.raises(InvalidInput, match="collateral_qty"):
        ltv(1.0, 0.0, 1.0)


T0 = pd.Timestamp("2024-01-01", tz="UTC")


def test_interest_accrual_simple_act365_seconds():
    loan = Loan(principal=10_000.0, apr=0.0365, as_of=T0)
    one_day = accrue(loan, T0 + pd.Timedelta(days=1))
    assert one_day.accrued_interest == pytest.approx(10_000 * 0.0365 / 365)  # = 1.00
    assert one_day.accrued_interest == pytest.approx(1.0)
    # 90 minutes
    assert accrue(loan, T0 + pd.Timedelta(minutes=90)).accrued_interest == pytest.approx(
        10_000 * 0.0365 * 5_400 / 31_536_000)
    # path independent (no compounding)
    step = loan
    for h in range(1, 49):
        step = accrue(step, T0 + pd.Timedelta(hours=h))
    assert step.accrued_interest == pytest.approx(2.0, rel=1e-12)
    # a leap year has 366 days of interest at ACT/365
    assert accrue(loan, T0 + pd.Timedelta(days=366)).accrued_interest == pytest.approx(366.0)
    assert one_day.outstanding == pytest.approx(10_001.0)
    with pytest.raises(InvalidInput, match="to"):
        accrue(one_day, T0)
    with pytest.raises(InvalidInput, match="as_of"):
        Loan(principal=1.0, apr=0.1, as_of=pd.Timestamp("2024-01-01"))


@pytest.mark.parametrize("profit,interest,principal,leftover", [
    (0.0, 0.0, 0.0, 0.0),
    (30.0, 30.0, 0.0, 0.0),          # below the accrued interest
    (50.0, 50.0, 0.0, 0.0),          # exactly the accrued interest
    (50.01, 50.0, 0.01, 0.0),        # one cent into principal
    (1_050.0, 50.0, 1_000.0, 0.0),   # exactly everything
    (1_100.0, 50.0, 1_000.0, 50.0),  # more than everything
])
def test_repayment_waterfall_edges(profit, interest, principal, leftover):
    loan = Loan(principal=1_000.0, apr=0.1, as_of=T0, accrued_interest=50.0)
    new, r = repay_from_profit(loan, profit)
    assert (r.interest, r.principal, r.leftover) == pytest.approx((interest, principal, leftover))
    assert new.accrued_interest == pytest.approx(50.0 - interest)
    assert new.principal == pytest.approx(1_000.0 - principal)
    assert new.repaid == pytest.approx(interest + principal)
    assert new.initial_principal == 1_000.0
    with pytest.raises(InvalidInput, match="profit"):
        repay_from_profit(loan, -1.0)


@pytest.mark.parametrize("dist,drop,panic", [
    (0.049, 0.11, True), (0.05, 0.11, False), (0.049, 0.10, False), (0.2, 0.5, False), (-0.01, 0.2, True)])
def test_panic_condition_edges(dist, drop, panic):
    assert is_panic(dist, drop) is panic


@settings(max_examples=200, deadline=None)
@given(st.floats(1, 1e6), st.floats(0.01, 100), st.floats(1, 1e6), st.floats(1, 1e6))
def test_property_ltv_monotone_decreasing_in_price(loan_amt, qty, p1, p2):
    lo, hi = sorted((p1, p2))
    assert ltv(loan_amt, qty, hi) <= ltv(loan_amt, qty, lo)


@settings(max_examples=300, deadline=None)
@given(st.floats(0, 2), st.floats(0, 2))
def test_property_reserve_non_decreasing(a, b):
    lo, hi = sorted((a, b))
    assert reserve_deployment(lo) <= reserve_deployment(hi) + 1e-9


@settings(max_examples=300, deadline=None)
@given(st.floats(0, 2))
def test_property_reserve_continuous_except_at_emergency_edge(x):
    h = 1e-9
    jump = abs(reserve_deployment(x + h) - reserve_deployment(x))
    straddles_edge = x < DEFAULT_PARAMS.reserve_end <= x + h
    if straddles_edge:
        assert jump == pytest.approx(10_000 - 8_000, abs=1e-3)
    else:
        # max slope 50,000 per unit LTV -> at most 5e-5 over h
        assert jump <= 1e-4


def test_reserve_jump_at_emergency_edge_is_documented_size():
    below = reserve_deployment(np.nextafter(0.85, 0))
    assert below == pytest.approx(8_000.0, abs=1e-6) and reserve_deployment(0.85) == 10_000.0
    assert not math.isnan(below)
