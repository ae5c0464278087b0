"""Ledger identities of the paper core against an independent average-cost reference, over
hypothesis-generated order/price/funding sequences (no liquidations: ample margin)."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedge_core.errors import InsufficientFunds, InvalidOrder
from hedge_core.exchange.paper.core import PaperConfig, PaperCore
from hedge_core.types import Bar, FundingEvent, MarketKind, OrderRequest, OrderType, PositionMode, PositionSide, Side

T0 = pd.Timestamp("2024-01-01T00:00Z")
H = pd.Timedelta("1h")
SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"

step_st = st.tuples(
    st.floats(-0.03, 0.03),  # price return of the bar
    st.sampled_from(["none", "spot_buy", "spot_sell", "perp_buy", "perp_sell", "perp_limit", "funding"]),
    st.integers(1, 40),  # size in lots of 0.005
    st.floats(-1e-3, 1e-3),  # funding rate
)


def reference_perp(fills):
    """Average-cost position accounting, written independently of the simulator."""
    qty = entry = realized = 0.0
    for f in fills:
        d = f.qty if f.side is Side.BUY else -f.qty
        if qty == 0 or (qty > 0) == (d > 0):
            entry = (abs(qty) * entry + abs(d) * f.price) / (abs(qty) + abs(d))
            qty += d
        else:
            close = min(abs(d), abs(qty))
            realized += close * (f.price - entry) * (1 if qty > 0 else -1)
            left = abs(d) - close
            qty += close if qty < 0 else -close
            if abs(qty) < 1e-12:
                qty, entry = 0.0, 0.0
            if left > 1e-12:
                qty, entry = (left if d > 0 else -left), f.price
    return qty, entry, realized


@settings(max_examples=60, deadline=None)
@given(st.lists(step_st, min_size=5, max_size=60), st.integers(0, 3), st.sampled_from([None, 0.05]))
def test_wallets_equal_the_reference_ledger(steps, seed, participation):
    cfg = PaperConfig(seed=seed, slippage_noise_bps=1.0, participation=participation)
    core = PaperCore(cfg, balances={"spot": {"USDT": 1e6, "BTC": 1.0}, "perp": {"USDT": 1e6}})
    px = 30_000.0
    for i, (ret, action, lots, rate) in enumerate(steps):
        px = round(px * (1 + ret), 1)
        for sym, kind in ((SPOT, MarketKind.SPOT), (PERP, MarketKind.PERP), (PERP, MarketKind.MARK)):
            core.apply(Bar(T0 + i * H, "binance", sym, kind, px, px * 1.01, px * 0.99, px, 20.0))
        qty = round(lots * 0.005, 3)
        try:
            if action == "spot_buy":
                core.create_order(OrderRequest(SPOT, Side.BUY, qty, f"a{i}"))
            elif action == "spot_sell":
                core.create_order(OrderRequest(SPOT, Side.SELL, qty, f"a{i}"))
            elif action == "perp_buy":
                core.create_order(OrderRequest(PERP, Side.BUY, qty, f"a{i}"))
            elif action == "perp_sell":
                core.create_order(OrderRequest(PERP, Side.SELL, qty, f"a{i}"))
            elif action == "perp_limit":
                core.create_order(OrderRequest(PERP, Side.BUY, qty, f"a{i}", OrderType.LIMIT, round(px * 0.995, 1)))
        except (InsufficientFunds, InvalidOrder):
            pass
        if action == "funding":
            core.apply(FundingEvent(T0 + (i + 1) * H, "binance", PERP, rate))
    assert not core.liquidations
    spot_fills = [f for f in core.fills if f.symbol == SPOT]
    perp_fills = [f for f in core.fills if f.symbol == PERP]
    usdt = 1e6 + sum((-(f.qty * f.price) - f.fee) if f.side is Side.BUY else (f.qty * f.price - f.fee)
                     for f in spot_fills)
    btc = 1.0 + sum(f.qty if f.side is Side.BUY else -f.qty for f in spot_fills)
    assert core.spot.get("USDT", 0.0) == pytest.approx(usdt, rel=1e-12, abs=1e-6)
    assert core.spot.get("BTC", 0.0) == pytest.approx(btc, abs=1e-9)
    qty, entry, realized = reference_perp(perp_fills)
    wallet = 1e6 + realized - sum(f.fee for f in perp_fills) + sum(p.amount for p in core.funding_payments)
    assert core.wallet == pytest.approx(wallet, rel=1e-12, abs=1e-6)
    pos = core.positions_view()
    assert (pos[0].qty if pos else 0.0) == pytest.approx(qty, abs=1e-9)
    if pos:
        assert pos[0].entry_price == pytest.approx(entry, rel=1e-12)
    # each order's fills add up to its filled quantity, fee and average price
    for o in core.orders.values():
        fs = [f for f in core.fills if f.order_id == o.id]
        assert sum(f.qty for f in fs) == pytest.approx(o.filled, abs=1e-12)
        assert sum(f.fee for f in fs) == pytest.approx(o.fee, abs=1e-9)
        assert all(f.slippage >= 0 for f in fs)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([PositionSide.LONG, PositionSide.SHORT]), st.booleans(),
                          st.integers(1, 20), st.floats(-0.02, 0.02)), min_size=3, max_size=30))
def test_hedge_mode_sides_never_cross_zero(ops):
    core = PaperCore(PaperConfig(position_mode=PositionMode.HEDGE), balances={"perp": {"USDT": 1e6}})
    px = 20_000.0
    for i, (ps, opening, lots, ret) in enumerate(ops):
        px = round(px * (1 + ret), 1)
        core.apply(Bar(T0 + i * H, "binance", PERP, MarketKind.PERP, px, px, px, px, 100.0))
        side = (Side.BUY if ps is PositionSide.LONG else Side.SELL) if opening else \
            (Side.SELL if ps is PositionSide.LONG else Side.BUY)
        try:
            core.create_order(OrderRequest(PERP, side, round(lots * 0.01, 3), f"h{i}", position_side=ps))
        except InvalidOrder:
            pass  # closing a side that is flat
        for p in core.positions_view():
            assert (p.qty > 0) == (p.position_side is PositionSide.LONG)
