"""Ledger math: hand cases, an independent cash-flow identity, and funding sign conventions."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedge_core.analytics.funding import funding_payments
from hedge_core.engine.ledger import (
    Leg,
    accrue_interest,
    apply_fill,
    apply_funding,
    funding_amount,
    mark_leg,
)
from hedge_core.errors import InvalidInput
from hedge_core.types import MarketKind, Side


def leg(name: str = "perp") -> Leg:
    return Leg(name, "BTC/USDT:USDT", "binance", MarketKind.PERP, "BTC", "USDT", 0.001, 0.001, 5.0)


def test_hand_case_average_realise_and_flip():
    lg = apply_fill(leg(), Side.BUY, 1.0, 100.0, fee=0.1)
    lg = apply_fill(lg, Side.BUY, 1.0, 110.0, fee=0.11)
    assert lg.qty == 2.0 and lg.avg_entry == pytest.approx(105.0)
    lg = apply_fill(lg, Side.SELL, 1.5, 120.0)
    assert lg.qty == pytest.approx(0.5) and lg.avg_entry == pytest.approx(105.0)
    assert lg.realized == pytest.approx(1.5 * 15.0)
    lg = apply_fill(lg, Side.SELL, 1.0, 100.0)  # closes 0.5 at -5, opens a 0.5 short at 100
    assert lg.realized == pytest.approx(22.5 - 2.5)
    assert lg.qty == pytest.approx(-0.5) and lg.avg_entry == 100.0
    lg = mark_leg(lg, 90.0)
    assert lg.unrealized == pytest.approx(5.0)
    assert lg.fees == pytest.approx(0.21)
    assert lg.net_pnl == pytest.approx(20.0 + 5.0 - 0.21)


def test_short_side_and_flat_resets_entry():
    lg = apply_fill(leg(), Side.SELL, 2.0, 50.0)
    lg = apply_fill(lg, Side.BUY, 2.0, 40.0)
    assert lg.qty == 0.0 and lg.avg_entry == 0.0 and lg.realized == pytest.approx(20.0)


@pytest.mark.parametrize("qty,price", [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.0), (math.nan, 1.0), (1.0, math.inf)])
def test_bad_fill_rejected_and_leg_unchanged(qty, price):
    lg = leg()
    with pytest.raises(InvalidInput) as ei:
        apply_fill(lg, Side.BUY, qty, price)
    assert "fill." in str(ei.value)
    assert lg.qty == 0.0


def test_funding_sign_convention():
    # positive rate: longs pay shorts
    assert funding_amount(1.0, 100.0, 0.001) == pytest.approx(-0.1)
    assert funding_amount(-1.0, 100.0, 0.001) == pytest.approx(0.1)
    assert funding_amount(-1.0, 100.0, -0.001) == pytest.approx(-0.1)
    assert apply_funding(leg(), 0.5).funding == 0.5
    with pytest.raises(InvalidInput):
        accrue_interest(leg(), -1.0)


def test_funding_matches_analytics_funding_payments():
    import pandas as pd
    t = pd.date_range("2024-01-01", periods=3, freq="8h", tz="UTC")
    pos = pd.Series([-0.5, -0.5, -0.25], index=t)
    rates = pd.Series([0.0001, -0.0002, 0.0003], index=t)
    mark = pd.Series([40_000.0, 41_000.0, 39_000.0], index=t)
    ref = funding_payments(pos, rates, mark)
    ours = [funding_amount(q, m, r) for q, m, r in zip(pos, mark, rates)]
    ref_amounts = ref["amount"] if hasattr(ref, "columns") else ref
    assert list(ref_amounts) == pytest.approx(ours)


fills = st.lists(st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.floats(0.001, 5.0), st.floats(10.0, 1000.0),
                           st.floats(0.0, 1.0)), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(fills, st.floats(10.0, 1000.0))
def test_pnl_equals_cash_flow_identity(seq, last):
    """realized + unrealized - fees == cash + qty x last - fees (an independent mark-to-market)."""
    lg = leg()
    qty = 0.0
    cash = 0.0
    fees = 0.0
    for side, q, px, fee in seq:
        lg = apply_fill(lg, side, q, px, fee)
        qty += side.sign * q
        cash -= side.sign * q * px
        fees += fee
    lg = mark_leg(lg, last)
    assert lg.qty == pytest.approx(qty, abs=1e-9)
    assert lg.net_pnl == pytest.approx(cash + qty * last - fees, rel=1e-9, abs=1e-6)
    assert lg.cash == pytest.approx(cash, rel=1e-9, abs=1e-6)


def test_base_asset_fee_shrinks_the_holding_and_pnl_is_the_cash_flow():
    """Binance spot without BNB: 0.1 BTC bought at 30,000 with 0.1 % commission in BTC -> 0.0999
    BTC held, 3,000 USDT paid; the fee is worth 3 USDT. Hand-computed."""
    from hedge_core.engine.ledger import book_fill

    spot = Leg("spot", "BTC/USDT", "binance", MarketKind.SPOT, "BTC", "USDT", 1e-5, 1e-5, 5.0)
    lg = book_fill(spot, Side.BUY, 0.1, 30_000.0, 0.0001, "BTC")
    assert lg.qty == pytest.approx(0.0999) and lg.avg_entry == 30_000.0 and lg.fees == pytest.approx(3.0)
    lg = mark_leg(lg, 31_000.0)
    # cash flow: -3,000 paid, 0.0999 BTC worth 3,096.9 -> +96.9
    assert lg.net_pnl == pytest.approx(0.0999 * 31_000 - 3_000)
    # selling what is held: the commission is in USDT (the asset received)
    lg = book_fill(lg, Side.SELL, 0.0999, 31_000.0, 0.0999 * 31_000 * 0.001, "USDT")
    assert lg.qty == 0.0 and lg.net_pnl == pytest.approx(0.0999 * 31_000 * 0.999 - 3_000)
    # quote and other-asset fees are unchanged rules
    assert book_fill(spot, Side.BUY, 0.1, 30_000.0, 3.0, "USDT").qty == 0.1
    assert book_fill(spot, Side.BUY, 0.1, 30_000.0, 0.01, "BNB").fees == pytest.approx(300.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.floats(0.001, 5.0), st.floats(10.0, 1000.0),
                          st.floats(0.0, 0.002), st.booleans()), min_size=1, max_size=30), st.floats(10.0, 1000.0))
def test_base_fee_identity_holds_for_any_sequence(seq, last):
    """With fees in base on some buys: qty == coins actually held, net PnL == cash + holding x last."""
    from hedge_core.engine.ledger import book_fill

    lg = Leg("spot", "BTC/USDT", "binance", MarketKind.SPOT, "BTC", "USDT", 1e-5, 1e-5, 5.0)
    qty = cash = 0.0
    for side, q, px, rate, in_base in seq:
        if side is Side.BUY and in_base:
            fee = q * rate
            lg = book_fill(lg, side, q, px, fee, "BTC")
            qty += q - fee
            cash -= q * px
        else:
            fee = q * px * rate
            lg = book_fill(lg, side, q, px, fee, "USDT")
            qty += side.sign * q
            cash -= side.sign * q * px + fee
    lg = mark_leg(lg, last)
    assert lg.qty == pytest.approx(qty, abs=1e-9)
    assert lg.net_pnl == pytest.approx(cash + qty * last, rel=1e-9, abs=1e-6)
