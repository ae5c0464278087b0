"""Paper core money math: fees, slippage, funding and liquidation, against hand computation and
the independent Binance formula in hedge_core.analytics.risk."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from hedge_core.analytics.risk import BTCUSDT_BRACKETS, ETHUSDT_BRACKETS, brackets_for, liquidation_price
from hedge_core.exchange.paper.core import PaperConfig, PaperCore
from hedge_core.types import (
    Bar,
    FundingEvent,
    Liquidity,
    MarginMode,
    MarketKind,
    OrderRequest,
    OrderType,
    PositionMode,
    PositionSide,
    Side,
)

T0 = pd.Timestamp("2024-01-01T00:00Z")
H = pd.Timedelta("1h")
SPOT, PERP, EPERP = "BTC/USDT", "BTC/USDT:USDT", "ETH/USDT:USDT"


def bar(core, sym, kind, i, close, *, op=None, high=None, low=None, volume=1_000.0):
    op = close if op is None else op
    core.apply(Bar(T0 + i * H, "binance", sym, kind, op, max(op, close) if high is None else high,
                   min(op, close) if low is None else low, close, volume))


def step(core, i, close, *, mark=None, volume=1_000.0, mark_low=None, mark_high=None, mark_open=None):
    bar(core, SPOT, MarketKind.SPOT, i, close, volume=volume)
    bar(core, PERP, MarketKind.PERP, i, close, volume=volume)
    m = close if mark is None else mark
    bar(core, PERP, MarketKind.MARK, i, m, op=mark_open, low=mark_low, high=mark_high, volume=0.0)


def no_cost(**kw) -> PaperConfig:
    base = dict(slippage_bps=0.0, impact_k_bps=0.0, spot_maker_fee=0.0, spot_taker_fee=0.0,
                perp_maker_fee=0.0, perp_taker_fee=0.0)
    base.update(kw)
    return PaperConfig(**base)


# ---- fees and slippage -----------------------------------------------------------------------


def test_fee_and_slippage_formula_by_hand():
    """impact_bps = k*sqrt(qty/volume): k=10, qty=1, vol=100 -> 1 bp; plus fixed 2 bp = 3 bp."""
    core = PaperCore(PaperConfig(slippage_bps=2.0, impact_k_bps=10.0),
                     balances={"spot": {"USDT": 30_000.0}, "perp": {"USDT": 30_000.0}})
    step(core, 0, 20_000.0, volume=100.0)
    o = core.create_order(OrderRequest(SPOT, Side.BUY, 1.0, "b"))
    f = core.fills[-1]
    assert f.price == pytest.approx(20_006.0)  # 20000 * (1 + 3e-4)
    assert f.slippage == pytest.approx(6.0)  # quote paid versus the bar close
    assert f.fee == pytest.approx(20.006)  # 0.1 % spot taker on 20006
    assert o.fee == pytest.approx(f.fee)
    assert core.balance("spot")["USDT"].total == pytest.approx(30_000 - 20_006 - 20.006)
    # perp sell 4 of 100: impact 10*sqrt(0.04) = 2 bp, +2 fixed = 4 bp, below the close
    core.create_order(OrderRequest(PERP, Side.SELL, 4.0, "s"))
    f = core.fills[-1]
    assert f.price == pytest.approx(19_992.0)
    assert f.slippage == pytest.approx(32.0)
    assert f.fee == pytest.approx(4 * 19_992 * 0.0005)  # 0.05 % perp taker
    assert core.wallet == pytest.approx(30_000 - 4 * 19_992 * 0.0005)


def test_unknown_volume_means_no_impact():
    core = PaperCore(PaperConfig(slippage_bps=1.0, impact_k_bps=50.0), balances={"spot": {"USDT": 1e6}})
    step(core, 0, 10_000.0, volume=0.0)
    core.create_order(OrderRequest(SPOT, Side.BUY, 1.0, "b"))
    assert core.fills[-1].price == pytest.approx(10_001.0)


def test_maker_fee_for_resting_perp_limit():
    core = PaperCore(PaperConfig(), balances={"perp": {"USDT": 10_000.0}})
    step(core, 0, 20_000.0)
    core.create_order(OrderRequest(PERP, Side.BUY, 0.1, "l", OrderType.LIMIT, 19_500.0))
    step(core, 1, 19_600.0)
    bar(core, PERP, MarketKind.PERP, 2, 19_600.0, low=19_400.0)
    f = core.fills[-1]
    assert f.liquidity is Liquidity.MAKER and f.price == 19_500.0
    assert f.fee == pytest.approx(0.1 * 19_500 * 0.0002)


def test_slippage_noise_is_seeded():
    def run(seed):
        core = PaperCore(PaperConfig(slippage_noise_bps=5.0, seed=seed), balances={"spot": {"USDT": 1e6}})
        step(core, 0, 20_000.0)
        for i in range(5):
            core.create_order(OrderRequest(SPOT, Side.BUY, 0.01, f"o{i}"))
        return [f.price for f in core.fills]

    assert run(1) == run(1)
    assert run(1) != run(2)
    assert all(p >= 20_000.0 for p in run(3))  # total slippage floored at 0: never a gift


# ---- funding ---------------------------------------------------------------------------------------


def test_funding_uses_mark_and_sign_convention():
    core = PaperCore(no_cost(), balances={"perp": {"USDT": 10_000.0}})
    step(core, 0, 20_010.0, mark=20_000.0)  # perp close differs from mark: funding uses the mark
    core.create_order(OrderRequest(PERP, Side.SELL, 0.5, "s"))
    w = core.wallet
    core.apply(FundingEvent(T0 + H, "binance", PERP, 0.0001))
    (p,) = core.funding_payments
    assert p.amount == pytest.approx(0.5 * 20_000 * 0.0001)  # short receives when rate > 0
    assert p.position_qty == -0.5 and p.mark_price == 20_000.0 and p.ts == T0 + H
    assert core.wallet - w == pytest.approx(1.0)
    core.apply(FundingEvent(T0 + H, "binance", PERP, -0.0002))  # negative: shorts pay
    assert core.funding_payments[-1].amount == pytest.approx(-0.5 * 20_000 * 0.0002)


def test_funding_hedge_mode_each_side_settles():
    core = PaperCore(no_cost(position_mode=PositionMode.HEDGE), balances={"perp": {"USDT": 10_000.0}})
    step(core, 0, 30_000.0)
    core.create_order(OrderRequest(PERP, Side.BUY, 0.2, "L", position_side=PositionSide.LONG))
    core.create_order(OrderRequest(PERP, Side.SELL, 0.05, "S", position_side=PositionSide.SHORT))
    step(core, 1, 31_000.0)
    w = core.wallet
    core.apply(FundingEvent(T0 + 2 * H, "binance", PERP, 0.0003))
    amounts = sorted(p.amount for p in core.funding_payments)
    assert amounts == pytest.approx(sorted([-0.2 * 31_000 * 0.0003, 0.05 * 31_000 * 0.0003]))
    assert core.wallet - w == pytest.approx(-0.15 * 31_000 * 0.0003)


def test_position_opened_at_funding_time_is_charged_and_closed_is_not():
    """Order at instant t (after the bars ending at t, before funding at t) -> charged at t."""
    core = PaperCore(no_cost(), balances={"perp": {"USDT": 10_000.0}})
    step(core, 0, 20_000.0)
    step(core, 7, 20_000.0)  # now = T0+8h, a funding instant
    core.create_order(OrderRequest(PERP, Side.BUY, 0.1, "open-at-t"))
    core.apply(FundingEvent(T0 + 8 * H, "binance", PERP, 0.0001))
    assert [p.amount for p in core.funding_payments] == pytest.approx([-0.1 * 20_000 * 0.0001])
    step(core, 15, 20_000.0)  # now = T0+16h
    core.create_order(OrderRequest(PERP, Side.SELL, 0.1, "close-at-t", reduce_only=True))
    core.apply(FundingEvent(T0 + 16 * H, "binance", PERP, 0.0001))
    assert len(core.funding_payments) == 1


def test_funding_changes_isolated_margin():
    core = PaperCore(no_cost(), balances={"perp": {"USDT": 10_000.0}})
    core.set_margin_mode(PERP, MarginMode.ISOLATED)
    core.set_leverage(PERP, 10)
    step(core, 0, 20_000.0)
    core.create_order(OrderRequest(PERP, Side.BUY, 1.0, "L"))
    assert core.positions_view()[0].margin == pytest.approx(2_000.0)
    core.apply(FundingEvent(T0 + H, "binance", PERP, 0.001))
    assert core.positions_view()[0].margin == pytest.approx(2_000.0 - 20.0)


# ---- liquidation ----------------------------------------------------------------------------------


def test_isolated_long_liquidation_at_binance_price():
    core = PaperCore(no_cost(), balances={"perp": {"USDT": 2_000.0}})
    core.set_margin_mode(PERP, MarginMode.ISOLATED)
    step(core, 0, 20_000.0)
    core.create_order(OrderRequest(PERP, Side.BUY, 1.0, "L"))  # 20x default -> margin 1000
    lp = liquidation_price(1.0, 20_000.0, 1_000.0, BTCUSDT_BRACKETS, margin_mode="isolated")
    # by hand: (1000 - 20000) / (0.004 - 1) = 19076.305...
    assert lp == pytest.approx(19_000 / 0.996)
    assert core.positions_view()[0].liquidation_price == pytest.approx(lp)
    step(core, 1, 19_500.0, mark_low=lp + 1.0)  # adverse extreme stays above: no liquidation
    assert core.positions_view() and not core.liquidations
    step(core, 2, 19_500.0, mark_low=lp - 1.0, mark_open=19_600.0)  # wick through
    assert core.positions_view() == []
    (f,) = [f for f in core.fills if f.client_order_id.startswith("liq-")]
    assert f.price == pytest.approx(lp) and f.side is Side.SELL and f.qty == 1.0
    assert f.fee == pytest.approx(lp * 0.005)
    rec = core.liquidations[0]
    # isolated: the loss is capped at the margin; the excess is insurance cover
    loss = (lp - 20_000.0) - lp * 0.005
    assert core.wallet == pytest.approx(2_000.0 - 1_000.0)
    assert rec["insurance_cover"] == pytest.approx(-loss - 1_000.0)
    assert rec["margin_mode"] == "isolated"


def test_isolated_short_uses_bar_high_and_gap_fills_at_open():
    core = PaperCore(no_cost(), balances={"perp": {"USDT": 5_000.0}})
    core.set_margin_mode(PERP, MarginMode.ISOLATED)
    core.set_leverage(PERP, 10)
    step(core, 0, 20_000.0)
    core.create_order(OrderRequest(PERP, Side.SELL, 1.0, "S"))
    lp = liquidation_price(-1.0, 20_000.0, 2_000.0, BTCUSDT_BRACKETS, margin_mode="isolated")
    assert lp == pytest.approx(22_000 / 1.004)
    step(core, 1, 21_000.0, mark_high=lp - 1.0, mark_low=19_000.0)  # low irrelevant for a short
    assert not core.liquidations
    step(core, 2, 23_000.0, mark_open=22_500.0, mark_high=23_100.0)  # gapped above LP
    (f,) = [f for f in core.fills if f.client_order_id.startswith("liq-")]
    assert f.price == pytest.approx(22_500.0) and f.side is Side.BUY


def test_cross_single_position_liquidation_price_matches_risk_module():
    core = PaperCore(no_cost(), balances={"perp": {"USDT": 1_500.0}})
    step(core, 0, 20_000.0)
    core.create_order(OrderRequest(PERP, Side.BUY, 1.0, "L"))
    lp = liquidation_price(1.0, 20_000.0, 1_500.0, BTCUSDT_BRACKETS, margin_mode="cross")
    assert lp == pytest.approx(18_500 / 0.996)
    assert core.positions_view()[0].liquidation_price == pytest.approx(lp)
    step(core, 1, 19_000.0, mark_low=lp + 0.5)
    assert not core.liquidations
    step(core, 2, 18_000.0, mark_open=19_000.0, mark_low=17_900.0)
    (f,) = [f for f in core.fills if f.client_order_id.startswith("liq-")]
    assert f.price == pytest.approx(lp)
    # cross wallet is floored at 0; what it could not pay is insurance cover
    expected = 1_500.0 + (lp - 20_000.0) - 0.005 * lp
    assert expected < 0 and core.wallet == pytest.approx(0.0)
    assert core.liquidations[0]["insurance_cover"] == pytest.approx(-expected)


def test_cross_liquidates_all_positions_and_uses_other_contracts():
    core = PaperCore(no_cost(), balances={"perp": {"USDT": 4_000.0}})
    step(core, 0, 20_000.0)
    bar(core, EPERP, MarketKind.PERP, 0, 2_000.0)
    bar(core, EPERP, MarketKind.MARK, 0, 2_000.0)
    core.create_order(OrderRequest(PERP, Side.BUY, 1.0, "B"))
    core.create_order(OrderRequest(EPERP, Side.BUY, 5.0, "E"))
    bar(core, EPERP, MarketKind.PERP, 1, 1_950.0)
    bar(core, EPERP, MarketKind.MARK, 1, 1_950.0)
    # the venue's default tables (the committed snapshot: bracket 1 of BTC and ETH at MMR 0.4 %)
    btc_table, eth_table = brackets_for(PERP), brackets_for(EPERP)
    eth_mm = 5 * 1_950.0 * eth_table[0].mmr
    eth_upnl = 5 * (1_950.0 - 2_000.0)
    lp = liquidation_price(1.0, 20_000.0, 4_000.0, btc_table, margin_mode="cross",
                           other_maintenance_margin=eth_mm, other_unrealized_pnl=eth_upnl)
    # by hand: ETH MM 5 x 1,950 x 0.4 % = 39, UPNL -250; LP = (4,000 - 39 - 250 - 20,000) / (0.004 - 1) = 16,354.42
    assert (eth_mm, round(lp, 2)) == (pytest.approx(39.0), 16_354.42)
    assert core.positions_view([PERP])[0].liquidation_price == pytest.approx(lp)
    step(core, 1, 17_000.0, mark_open=19_000.0, mark_low=lp - 10.0)
    liq = {f.symbol: f for f in core.fills if f.client_order_id.startswith("liq-")}
    assert set(liq) == {PERP, EPERP}
    assert liq[PERP].price == pytest.approx(lp)
    assert liq[EPERP].price == pytest.approx(1_950.0)  # other contracts at their last mark
    assert core.positions_view() == []


def test_cross_liquidation_prices_match_binance_documented_example():
    """Binance FAQ b3c689c1... (see tests/test_analytics_risk_margin.py): one cross account of
    1,535,443.01 USDT, BTCUSDT long 109.488 @ 32,481.98 (mark 31,967.27) and ETHUSDT long 3,683.979
    @ 1,456.84 (mark 1,335.18); published liquidation prices 26,316.89 and 1,153.26. The simulator
    derives TMM1/UPNL1 from its own book. The FAQ's figures come from the 2021 tables, given to the venue here
    (the committed defaults are the venue's newer tables)."""
    core = PaperCore(no_cost(brackets={PERP: BTCUSDT_BRACKETS, EPERP: ETHUSDT_BRACKETS}),
                     balances={"perp": {"USDT": 1_535_443.01}})
    for sym, px in ((PERP, 32_481.98), (EPERP, 1_456.84)):
        bar(core, sym, MarketKind.PERP, 0, px)
        bar(core, sym, MarketKind.MARK, 0, px)
    core.set_leverage(PERP, 20)  # 3.56M notional: bracket 4 allows 20x
    core.set_leverage(EPERP, 4)  # 5.37M notional: bracket 7 allows 4x
    core.create_order(OrderRequest(PERP, Side.BUY, 109.488, "B"))
    core.create_order(OrderRequest(EPERP, Side.BUY, 3_683.979, "E"))
    bar(core, PERP, MarketKind.MARK, 1, 31_967.27)
    bar(core, EPERP, MarketKind.MARK, 1, 1_335.18)
    lp = {p.symbol: round(p.liquidation_price, 2) for p in core.positions_view()}
    assert lp == {PERP: 26_316.89, EPERP: 1_153.26}


def test_isolated_position_is_not_liquidated_by_cross_losses():
    core = PaperCore(no_cost(), balances={"perp": {"USDT": 3_000.0}})
    core.set_margin_mode(EPERP, MarginMode.ISOLATED)
    core.set_leverage(EPERP, 2)
    step(core, 0, 20_000.0)
    bar(core, EPERP, MarketKind.PERP, 0, 2_000.0)
    bar(core, EPERP, MarketKind.MARK, 0, 2_000.0)
    core.create_order(OrderRequest(EPERP, Side.BUY, 1.0, "E-iso"))  # margin 1000
    core.create_order(OrderRequest(PERP, Side.BUY, 1.0, "B-cross"))  # cross wallet 2000
    step(core, 1, 17_000.0, mark_low=17_000.0)
    assert {f.symbol for f in core.fills if f.client_order_id.startswith("liq-")} == {PERP}
    (p,) = core.positions_view()
    assert p.symbol == EPERP and p.margin == pytest.approx(1_000.0)


def test_no_liquidation_without_breach_over_real_scale_moves():
    """2x isolated long survives a 30 % drop; its liquidation price is about half the entry."""
    core = PaperCore(no_cost(), balances={"perp": {"USDT": 20_000.0}})
    core.set_margin_mode(PERP, MarginMode.ISOLATED)
    core.set_leverage(PERP, 2)
    step(core, 0, 20_000.0)
    core.create_order(OrderRequest(PERP, Side.BUY, 1.0, "L"))
    step(core, 1, 14_000.0, mark_low=14_000.0)
    (p,) = core.positions_view()
    assert math.isclose(p.liquidation_price, 10_000 / 0.996, rel_tol=1e-12)
    assert p.unrealized_pnl == pytest.approx(-6_000.0)


def test_cached_margin_sums_match_a_slow_recomputation():
    """perp_available() and the cross check use per-symbol cached sums; check them against a
    from-scratch recomputation over a seeded random sequence of orders, marks and funding."""
    import random

    from hedge_core.analytics.risk import maintenance_margin
    from hedge_core.errors import InsufficientFunds, InvalidOrder

    rng = random.Random(5)
    core = PaperCore(PaperConfig(position_mode=PositionMode.ONE_WAY), balances={"perp": {"USDT": 200_000.0}})
    core.set_margin_mode(EPERP, MarginMode.ISOLATED)
    core.set_leverage(EPERP, 5)
    px = {PERP: 20_000.0, EPERP: 2_000.0}

    def slow_available() -> float:
        avail = core.wallet
        for p in core.positions.values():
            if p.qty == 0.0:
                continue
            if core._mode(p.symbol) is MarginMode.ISOLATED:
                avail -= p.margin
            else:
                m = core.mark_price(p.symbol)
                avail += p.qty * (m - p.entry) - abs(p.qty) * m / core._lev(p.symbol)
        return avail - core._order_margin()

    for i in range(300):
        for sym in (PERP, EPERP):
            px[sym] *= 1 + rng.gauss(0, 0.004)
            p = round(px[sym], 1)
            bar(core, sym, MarketKind.PERP, i, p)
            bar(core, sym, MarketKind.MARK, i, p)
        sym = rng.choice([PERP, EPERP])
        try:
            core.create_order(OrderRequest(sym, rng.choice([Side.BUY, Side.SELL]),
                                           rng.choice([0.01, 0.05, 0.2]) * (10 if sym == EPERP else 1), f"o{i}"))
        except (InsufficientFunds, InvalidOrder):
            pass
        if i % 8 == 7:
            core.apply(FundingEvent(T0 + (i + 1) * H, "binance", sym, rng.uniform(-1e-3, 1e-3)))
        if i == 150:
            core.set_leverage(PERP, 7)
        assert core.perp_available() == pytest.approx(slow_available(), rel=1e-12, abs=1e-9)
        cross_mm = sum(maintenance_margin(abs(p.qty) * core.mark_price(p.symbol), BTCUSDT_BRACKETS)
                       for p in core.positions.values() if p.qty != 0.0 and p.symbol == PERP)
        assert core._cross_cache().get(PERP, (0.0, 0.0, 0.0))[1] == pytest.approx(cross_mm, rel=1e-12)
    assert len(core.fills) > 200 and len(core.funding_payments) > 20


def test_cross_hedge_mode_evaluates_net_exposure_at_each_extreme():
    """Hedge mode, cross: the check moves the mark to the bar low, then to the bar high, for ALL
    positions of the symbol together (a long and a short cannot both see their adverse extreme)."""
    core = PaperCore(no_cost(position_mode=PositionMode.HEDGE), balances={"perp": {"USDT": 2_000.0}})
    step(core, 0, 20_000.0)
    core.create_order(OrderRequest(PERP, Side.BUY, 1.0, "L", position_side=PositionSide.LONG))
    core.create_order(OrderRequest(PERP, Side.SELL, 1.0, "S", position_side=PositionSide.SHORT))
    step(core, 1, 20_000.0, mark_low=16_000.0, mark_high=24_000.0)  # fully offset: survives a 20 % wick
    assert not core.liquidations and len(core.positions_view()) == 2

    # long 1 + short 0.5, wallet 400: equity 400 + 0.5 (P - 20000) < MM 1.5 * P * 0.4 %  <=>  P < 19433.2
    def net_long():
        c = PaperCore(no_cost(position_mode=PositionMode.HEDGE), balances={"perp": {"USDT": 400.0}})
        c.set_leverage(PERP, 125)
        step(c, 0, 20_000.0)
        c.create_order(OrderRequest(PERP, Side.BUY, 1.0, "L", position_side=PositionSide.LONG))
        c.create_order(OrderRequest(PERP, Side.SELL, 0.5, "S", position_side=PositionSide.SHORT))
        return c

    ok = net_long()
    # "low for longs, high for shorts" at once would give 400 - 500 - 250 < 0 and liquidate
    step(ok, 1, 20_000.0, mark_low=19_500.0, mark_high=20_500.0)
    assert not ok.liquidations
    bad = net_long()
    step(bad, 1, 20_000.0, mark_low=19_400.0, mark_high=20_000.0)
    assert len(bad.liquidations) == 2 and bad.positions_view() == []
    assert all(r["margin_mode"] == "cross" for r in bad.liquidations)
