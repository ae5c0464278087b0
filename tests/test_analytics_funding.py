"""Funding ledger (hand-computed), APR, basis, Binance premium formula, carry and scanner."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hedge_core.analytics.funding import (
    CarryCosts,
    annualised_basis,
    basis,
    break_even_days,
    expected_net_carry,
    funding_apr,
    funding_ledger,
    funding_payments,
    infer_interval_hours,
    mark_known_at,
    predicted_funding,
    predicted_funding_rate,
    scan_opportunities,
    should_migrate_to_quarterly,
)
from hedge_core.errors import InvalidInput


def T(s):
    return pd.Timestamp(s, tz="UTC")


FT = pd.DatetimeIndex([T("2024-01-01 00:00"), T("2024-01-01 08:00"), T("2024-01-01 16:00"),
                       T("2024-01-02 00:00")])
RATES = pd.Series([0.0001, 0.0002, -0.0001, 0.0003], FT)
MARK = pd.Series([40_000.0, 41_000.0, 42_000.0, 43_000.0], FT)


def test_apr_for_8h_and_1h_intervals():
    assert funding_apr(0.0001) == pytest.approx(0.1095)
    assert funding_apr(0.0001, 1.0) == pytest.approx(0.876)
    s = funding_apr(pd.Series([0.0001, 0.0001], FT[:2]), pd.Series([8.0, 1.0], FT[:2]))
    assert s.tolist() == pytest.approx([0.1095, 0.876])
    with pytest.raises(InvalidInput, match="interval_hours"):
        funding_apr(0.0001, 0)
    assert infer_interval_hours(RATES) == 8.0


def test_ledger_hand_computed_open_and_close_exactly_on_funding_times():
    # short 2 BTC opened EXACTLY at 08:00 (charged at 08:00), closed EXACTLY at 16:00 (not charged)
    pos = pd.Series([-2.0, 0.0], pd.DatetimeIndex([T("2024-01-01 08:00"), T("2024-01-01 16:00")]))
    pay = funding_payments(pos, RATES, MARK)
    # 00:00: flat -> 0;  08:00: -(-2) * 41,000 * 0.0002 = +16.4 (short receives);  16:00: flat
    assert pay.tolist() == pytest.approx([0.0, 16.4, 0.0, 0.0])
    assert pay.name == "funding_payment" and pay.index.equals(FT)


def test_ledger_hand_computed_changes_between_funding_times():
    pos = pd.Series([1.5, -0.5, 0.0], pd.DatetimeIndex(
        [T("2023-12-31 23:59"), T("2024-01-01 10:30"), T("2024-01-01 23:00")]))
    led = funding_ledger(pos, RATES, MARK)
    # 00:00: long 1.5 pays 1.5*40,000*0.0001 = 6 -> -6
    # 08:00: still long 1.5: -1.5*41,000*0.0002 = -12.3
    # 16:00: short 0.5, rate negative: -(-0.5)*42,000*(-0.0001) = -2.1 (short pays)
    # 00:00 next day: flat -> 0
    assert led["payment"].tolist() == pytest.approx([-6.0, -12.3, -2.1, 0.0])
    assert led["position"].tolist() == [1.5, 1.5, -0.5, 0.0]


def test_position_changing_several_times_before_a_funding_time_uses_the_last_change():
    pos = pd.Series([1.0, 3.0, -1.0], pd.DatetimeIndex(
        [T("2024-01-01 07:00"), T("2024-01-01 07:30"), T("2024-01-01 08:00")]))
    pay = funding_payments(pos, RATES, MARK)
    assert pay.iloc[1] == pytest.approx(-(-1.0) * 41_000 * 0.0002)


def test_missing_mark_policies():
    mark = MARK.drop(FT[2])
    pos = pd.Series([1.0], pd.DatetimeIndex([T("2024-01-01 00:00")]))
    with pytest.raises(InvalidInput, match="2024-01-01 16:00"):
        funding_payments(pos, RATES, mark)
    last = funding_payments(pos, RATES, mark, missing_mark="last")
    assert last.iloc[2] == pytest.approx(-1.0 * 41_000 * -0.0001)  # last mark at or before 16:00
    # a flat position needs no mark
    flat = pd.Series([0.0], pd.DatetimeIndex([T("2023-01-01")]))
    assert (funding_payments(flat, RATES, mark) == 0).all()
    with pytest.raises(InvalidInput, match="no mark at or before"):
        funding_payments(pos, RATES, MARK.iloc[3:], missing_mark="last")
    with pytest.raises(InvalidInput, match="missing_mark"):
        funding_payments(pos, RATES, MARK, missing_mark="interp")  # type: ignore[arg-type]


def test_bad_inputs_name_the_field():
    pos = pd.Series([1.0], pd.DatetimeIndex([T("2024-01-01")]))
    r = RATES.copy()
    r.iloc[1] = np.nan
    with pytest.raises(InvalidInput, match="rates"):
        funding_payments(pos, r, MARK)
    with pytest.raises(InvalidInput, match="tz"):
        funding_payments(pos, pd.Series(RATES.to_numpy(), FT.tz_localize(None)), MARK)
    with pytest.raises(InvalidInput, match="mark"):
        funding_payments(pos, RATES, MARK * -1)


def test_mark_known_at_relabels_bar_closes():
    idx = pd.date_range("2024-01-01 07:00", periods=2, freq="h", tz="UTC")
    closes = pd.Series([100.0, 101.0], idx)
    m = mark_known_at(closes)
    assert m.loc[T("2024-01-01 08:00")] == 100.0  # the 07:00 bar closes at 08:00


def test_basis_and_annualised_basis():
    idx = FT[:2]
    b = basis(pd.Series([40_400.0, 41_000.0], idx), pd.Series([40_000.0, 41_000.0], idx))
    assert b.tolist() == pytest.approx([0.01, 0.0])
    expiry = T("2024-03-31 00:00")
    ab = annualised_basis(b, expiry)
    days = (expiry - idx[0]) / pd.Timedelta(days=1)
    assert ab.iloc[0] == pytest.approx(0.01 * 365 / days)
    assert annualised_basis(0.01, expiry, at=expiry) != annualised_basis(0.01, expiry, at=idx[0])
    assert math.isnan(annualised_basis(0.01, expiry, at=expiry))


@pytest.mark.parametrize("p,expected", [
    (0.0, 0.0001),            # I - P = 0.01 % inside the dampener -> F = I
    (0.0003, 0.0001),         # I - P = -0.02 % inside -> F = I
    (0.0006, 0.0006 - 0.0005),  # I - P = -0.05 % exactly at the clamp -> F = I
    (0.0010, 0.0010 - 0.0005),  # I - P = -0.09 % clamped to -0.05 % -> F = P - 0.05 %
    (-0.0010, -0.0010 + 0.0005),  # I - P = +0.11 % clamped to +0.05 %
])
def test_binance_funding_formula(p, expected):
    assert predicted_funding_rate(p) == pytest.approx(expected, abs=1e-15)


def test_predicted_funding_uses_increasing_weights_over_the_interval():
    idx = pd.date_range("2024-01-01 01:00", periods=8, freq="h", tz="UTC")  # samples in (00:00, 08:00]
    prem = pd.Series([0.0010] * 7 + [0.0030], idx)
    pf = predicted_funding(prem, pd.DatetimeIndex([T("2024-01-01 08:00"), T("2024-01-01 16:00")]))
    w = np.arange(1, 9)
    p = (w @ prem.to_numpy()) / w.sum()
    assert pf.iloc[0] == pytest.approx(p - 0.0005)
    assert math.isnan(pf.iloc[1])


def test_carry_costs_and_break_even():
    c = CarryCosts(fee_rate=0.0004, slippage_rate=0.0001, legs=2, borrow_apr=0.05)
    assert c.round_trip == pytest.approx(0.002)
    # 10.95 % APR for 30 days: 0.1095 * 30 / 365 - 0.002
    assert expected_net_carry(0.1095, 30, c) == pytest.approx(0.1095 * 30 / 365 - 0.002)
    assert expected_net_carry(0.1095, 30, c, borrow=True) == pytest.approx(0.0595 * 30 / 365 - 0.002)
    be = break_even_days(0.1095, c)
    assert expected_net_carry(0.1095, be, c) == pytest.approx(0.0, abs=1e-15)
    assert break_even_days(0.04, c, borrow=True) == math.inf
    with pytest.raises(InvalidInput, match="fee_rate"):
        CarryCosts(fee_rate=-0.1)


def _frame():
    ts = pd.date_range("2024-01-01", periods=12, freq="8h", tz="UTC")
    rows = []
    for t in ts:
        rows.append((t.strftime("%Y-%m-%dT%H:%M:%SZ"), "binance", "BTCUSDT", 0.0001, 8.0))
        rows.append((t.strftime("%Y-%m-%dT%H:%M:%SZ"), "bybit", "BTCUSDT", 0.0003, 8.0))
        rows.append((t.strftime("%Y-%m-%dT%H:%M:%SZ"), "okx", "ETHUSDT", -0.0002, 8.0))
        rows.append((t.strftime("%Y-%m-%dT%H:%M:%SZ"), "hl", "BTC", 0.00002, 1.0))
    return pd.DataFrame(rows, columns=["ts", "venue", "symbol", "funding_rate", "interval_hours"])


def test_scanner_ranks_by_net_carry_with_direction_and_intervals():
    costs = CarryCosts(borrow_apr=0.10)
    out = scan_opportunities(_frame(), lookback_days=30, hold_days=30, costs=costs)
    assert out["venue"].tolist()[0] == "bybit"
    row = out.set_index("venue").loc["okx"]
    assert row["direction"] == "long_perp"
    assert row["apr"] == pytest.approx(-0.0002 * 1095)
    assert row["net_carry"] == pytest.approx((0.219 - 0.10) * 30 / 365 - costs.round_trip)
    hl = out.set_index("venue").loc["hl"]
    assert hl["apr"] == pytest.approx(0.00002 * 8760)  # hourly rate annualised with 1h interval
    assert out["net_carry"].is_monotonic_decreasing
    # interval column optional (8h default); naive timestamps rejected
    f = _frame().drop(columns="interval_hours")
    assert scan_opportunities(f).set_index("venue").loc["hl", "apr"] == pytest.approx(0.00002 * 1095)
    f["ts"] = pd.to_datetime(f["ts"]).dt.tz_localize(None)
    with pytest.raises(InvalidInput, match="ts"):
        scan_opportunities(f)
    with pytest.raises(InvalidInput, match="columns"):
        scan_opportunities(_frame().drop(columns="venue"))


def test_calendar_migration_rule():
    assert should_migrate_to_quarterly(0.20, 0.10) is True
    assert should_migrate_to_quarterly(0.10, 0.10) is False
    assert should_migrate_to_quarterly(0.12, 0.10, buffer_apr=0.03) is False
    s = should_migrate_to_quarterly(pd.Series([0.2, 0.05], FT[:2]), pd.Series([0.1, 0.1], FT[:2]))
    assert s.tolist() == [True, False]


@pytest.mark.shared_data
def test_real_btc_funding_apr_and_cross_venue_scan(shared_data):
    from hedge_core.data.shared import SAMPLE, load_tidy

    f = load_tidy(SAMPLE, "binance", "BTCUSDT", "funding", "8h")["funding_rate"]
    assert funding_apr(f).mean() == pytest.approx(0.105, abs=0.01)  # README: about 10.5 %
    cv = pd.read_csv(shared_data / SAMPLE / "crossvenue_funding_8h_binance_bybit_okx.csv")
    out = scan_opportunities(cv, lookback_days=90)
    assert len(out) == cv.groupby(["venue", "symbol"]).ngroups
    # short 1 BTC from the 2nd funding time (the 1st has no mark known yet: the first 1h mark bar
    # closes at 01:00); ledger total equals a plain loop of -q * mark(t) * rate(t)
    mark = mark_known_at(load_tidy(SAMPLE, "binance", "BTCUSDT", "mark", "1h")["close"])
    with pytest.raises(InvalidInput, match="2023-01-01 00:00"):
        funding_payments(pd.Series([-1.0], pd.DatetimeIndex([f.index[0]])), f, mark)
    pos = pd.Series([-1.0], pd.DatetimeIndex([f.index[1]]))
    pay = funding_payments(pos, f, mark)
    ref = sum(1.0 * mark.loc[t] * f.loc[t] for t in f.index[1:] if t in mark.index)
    assert pay.iloc[0] == 0.0 and pay.sum() == pytest.approx(ref, rel=1e-12) and ref > 0
