"""The one size rule (engine.sizing_bounds) against hand-computed cases.

Binance BTCUSDT filters (exchangeInfo; the simulator's MarketSpec): spot LOT_SIZE 0.001, NOTIONAL
minNotional 5; USD-M LOT_SIZE 0.001, MIN_NOTIONAL 100 ("Order's notional must be no smaller than
100", -4164)."""

from __future__ import annotations

import math

import pytest

from hedge_core.engine.sizing_bounds import SizeInputs, check_amount, size_bounds
from hedge_core.errors import InvalidInput
from hedge_core.exchange.paper.core import default_instruments
from hedge_core.types import Instrument, MarketKind

SPOT = Instrument("BTC/USDT", "binance", MarketKind.SPOT, "BTC", "USDT", 0.01, 0.001, 0.001, 5.0)
PERP = Instrument("BTC/USDT:USDT", "binance", MarketKind.PERP, "BTC", "USDT", 0.1, 0.001, 0.001, 100.0)


def test_smallest_hedgeable_amount_at_40000_without_price_allowance():
    # perp: 100 / 40,000 = 0.0025 BTC -> up to the lot 0.001: 0.003 BTC (0.002 BTC = 80 USDT is refused)
    # spot: 5 / 40,000 = 0.000125 -> 0.001; the perp binds: spot 0.003 BTC = 0.003 x 40,000 = 120 USDT
    b = size_bounds(SizeInputs(SPOT, PERP, 40_000.0, 40_000.0, price_move=0.0))
    assert b.min_amount == pytest.approx(120.0)
    assert b.min_spot_qty == pytest.approx(0.003) and b.min_perp_qty == pytest.approx(0.003)
    assert "perp min notional 100" in b.min_binding
    assert math.isinf(b.max_amount)


def test_smallest_hedgeable_amount_with_the_one_percent_price_allowance():
    # perp notional at 1 % lower: 100 / 39,600 = 0.002525 -> 0.003 BTC; spot decided at 1 % higher:
    # 0.003 x 40,400 = 121.20 USDT. 120 USDT would buy 0.00297 -> 0.002 BTC at 40,400: unhedgeable.
    b = size_bounds(SizeInputs(SPOT, PERP, 40_000.0, 40_000.0, price_move=0.01))
    assert b.min_amount == pytest.approx(121.2)
    with pytest.raises(InvalidInput) as e:
        check_amount(100.0, b)
    assert e.value.field == "amount" and "between 121.20 and" in str(e.value)
    assert "smallest hedgeable at price 40,000.00: 121.20" in str(e.value)
    assert check_amount(121.2, b) == 121.2


def test_issue_12_amount_100_leaves_an_unhedgeable_spot_leg():
    # what the engine would do with 100 USDT: spot 0.0025 -> 0.002 BTC, perp 0.002 BTC = 80 USDT < 100
    qty = SPOT.round_qty(100.0 / 40_000.0)
    assert qty == pytest.approx(0.002) and qty * 40_000.0 < PERP.min_notional
    assert 100.0 < size_bounds(SizeInputs(SPOT, PERP, 40_000.0, 40_000.0)).min_amount


def test_largest_amount_binding_bounds():
    # spot: 10,000 / (1 + 0.001 fee + 0.0002 slippage) = 9,988.01
    # perp: margin 3,000 at 2x, fee 0.0005 open + close, price +1 %: 3,000 / (1.01 x (0.5 + 0.001)) = 5,929.03
    # position limit 5,000 (either leg): spot 5,000; perp 5,000 / 1.01 = 4,950.50 -> binds
    x = dict(spot_fee=0.001, perp_fee=0.0005, slippage=0.0002, spot_free=10_000.0, perp_free=3_000.0, leverage=2.0)
    b = size_bounds(SizeInputs(SPOT, PERP, 40_000.0, 40_000.0, **x))
    assert b.max_amount == pytest.approx(3_000.0 / (1.01 * 0.501))
    assert b.max_binding.startswith("perp margin 3,000.00 USDT free at 2x")
    b2 = size_bounds(SizeInputs(SPOT, PERP, 40_000.0, 40_000.0, max_position_notional=5_000.0, **x))
    assert b2.max_amount == pytest.approx(5_000.0 / 1.01) and "max_position_notional" in b2.max_binding
    b3 = size_bounds(SizeInputs(SPOT, PERP, 40_000.0, 40_000.0, **{**x, "perp_free": None}))
    assert b3.max_amount == pytest.approx(10_000.0 / 1.0012) and b3.max_binding.startswith("spot balance")
    with pytest.raises(InvalidInput, match="largest bound by position limit"):
        check_amount(50_000_000.0, b2)  # issue #12 (c): a 50M hedge is refused up front


def test_nothing_fits_says_both_ends():
    b = size_bounds(SizeInputs(SPOT, PERP, 40_000.0, 40_000.0, perp_free=50.0))  # 50 USDT margin at 1x
    assert not b.ok
    with pytest.raises(InvalidInput, match="none can: the smallest hedgeable 121.20 USDT"):
        check_amount(200.0, b)


def test_paper_venue_instruments_and_a_spot_only_entry():
    spot, _eth, perp, _ = default_instruments()
    # paper spot lot 0.00001: the perp still binds at 0.003 BTC -> 0.003 x 40,400 = 121.20
    assert size_bounds(SizeInputs(spot, perp, 40_000.0, 40_000.0)).min_amount == pytest.approx(121.2)
    # ratio 0 (a grid before its first level): spot alone, 5 / 39,600 = 0.000127 -> 0.00013 BTC x 40,400 = 5.252
    b = size_bounds(SizeInputs(spot, perp, 40_000.0, 40_000.0, ratio=0.0))
    assert b.min_amount == pytest.approx(0.00013 * 40_400.0) and "spot min notional 5" in b.min_binding


def test_hedge_ratio_below_one_needs_more_spot():
    # ratio 0.8: perp 0.003 BTC needs spot 0.003 / 0.8 = 0.00375 -> 0.004 BTC x 40,400 = 161.60
    b = size_bounds(SizeInputs(SPOT, PERP, 40_000.0, 40_000.0, ratio=0.8))
    assert b.min_amount == pytest.approx(161.6) and b.min_perp_qty == pytest.approx(0.003)


def test_operator_caps_and_bad_inputs():
    b = size_bounds(SizeInputs(SPOT, PERP, 40_000.0, 40_000.0, cap_min=500.0, cap_max=1_000.0))
    assert (b.min_amount, b.max_amount) == (500.0, 1_000.0)
    assert "operator minimum" in b.min_binding and "operator maximum" in b.max_binding
    for kw, fieldname in (({"spot_price": 0.0}, "spot_price"), ({"leverage": 0.5}, "leverage"),
                          ({"ratio": -1.0}, "ratio"), ({"price_move": 0.7}, "price_move")):
        base = dict(spot=SPOT, perp=PERP, spot_price=40_000.0, perp_price=40_000.0)
        with pytest.raises(InvalidInput) as e:
            SizeInputs(**{**base, **kw})
        assert e.value.field == fieldname
    with pytest.raises(InvalidInput, match="finite"):
        check_amount(math.nan, b)
