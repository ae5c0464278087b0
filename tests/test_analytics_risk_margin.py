"""Maintenance margin brackets and Binance liquidation price.

Independent references:
- Binance support FAQ "Futures margin ratio / liquidation" (binance.com/en/support/faq/25edcd7fe0e544839d0847b8cbb2e400):
  "wallet balance of 500 USDT ... long BTCUSDT position worth 1,000 USDT with 20x leverage at
  $50,000 ... your liquidation price will be $25,100.40" -- reproduced to the cent below.
  The same page's follow-up (add 1,000 USDT at $45,000 -> $35,857.67) could NOT be reproduced to
  the cent from the published formula with any consistent rounding of the added quantity, so it
  is not used.
- Binance FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts": BTCUSDT position of
  264,000 USDT -> MMR 1 %; 500,000 USDT -> maintenance amount 1,300 USDT
  (= 250,000 x (1 % - 0.5 %) + 50).
- Binance FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts"
  (binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93), worked example in cross margin,
  one-way mode: wallet balance 1,535,443.01 USDT holding
    BTCUSDT long 109.488 @ 32,481.98, mark 31,967.27, MMR 2.5 %, maintenance amount 16,300;
    ETHUSDT long 3,683.979 @ 1,456.84, mark 1,335.18, MMR 10 %, maintenance amount 135,365.
  Published: for ETHUSDT TMM1 = 71,200.81144, UPNL1 = -56,354.57 -> LP 1,153.26; for BTCUSDT
  TMM1 = 356,512.508, UPNL1 = -448,192.89 -> LP 26,316.89. The page renders its formula and example
  as images; the figures above are as transcribed from it by freqtrade's test suite
  (tests/exchange/test_binance.py, "From calc example") and by a Jesse strategy that cites the URL
  with the same inputs. Both prices, and the intermediate TMM1/UPNL1, are reproduced to the cent.
- The remaining cases were CONSTRUCTED BY HAND from the published formula and are cross-checked
  by the physical definition: at the liquidation price, margin balance (wallet + unrealised PnL)
  equals the maintenance margin.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedge_core.analytics.risk import (
    BTCUSDT_BRACKETS,
    ETHUSDT_BRACKETS,
    bracket_for,
    brackets_for,
    liquidation_distance,
    liquidation_price,
    maintenance_margin,
    margin_ratio,
)
from hedge_core.errors import InvalidInput


@pytest.mark.parametrize("table", [BTCUSDT_BRACKETS, ETHUSDT_BRACKETS])
def test_bracket_tables_are_contiguous_and_cum_matches_binance_recurrence(table):
    assert table[0].notional_floor == 0 and table[0].cum == 0
    for prev, b in zip(table, table[1:]):
        assert b.notional_floor == prev.notional_cap
        assert b.mmr > prev.mmr and b.max_leverage <= prev.max_leverage
        # Binance: cum_n = floor_n * (MMR_n - MMR_{n-1}) + cum_{n-1}
        assert b.cum == pytest.approx(b.notional_floor * (b.mmr - prev.mmr) + prev.cum, abs=1e-6)


def test_binance_faq_bracket_examples():
    assert bracket_for(264_000, BTCUSDT_BRACKETS).mmr == 0.01
    assert bracket_for(500_000, BTCUSDT_BRACKETS).cum == 1_300
    # the FAQ examples keep the 2021 tables; the committed snapshot's defaults are the venue's newer tables
    # (freqtrade's recording, tests/test_instruments_verified.py), so a lookup no longer returns these
    assert brackets_for("BTC/USDT:USDT") != BTCUSDT_BRACKETS and brackets_for("ETHUSDT") != ETHUSDT_BRACKETS
    btc = brackets_for("BTCUSDT")  # bracket 1 unchanged (0-50,000 at 0.4 %, 125x); bracket 2 now capped at 600,000
    assert btc[0] == BTCUSDT_BRACKETS[0] and btc[1].notional_cap == 600_000.0 != BTCUSDT_BRACKETS[1].notional_cap
    with pytest.raises(InvalidInput, match="symbol"):
        brackets_for("PEPE/USDT:USDT")


def _snapshot_tables(*, whole_position: bool) -> list:
    """The snapshot's tables, ``venue symbol`` as the id: the continuous ones (Binance, Bybit: cum from the
    recurrence) or OKX's whole-position ones (every cum 0)."""
    from hedge_core.data.instruments import snapshot

    return [pytest.param(i.brackets, id=f"{v} {s}") for (v, s), i in snapshot().items()
            if i.brackets and len(i.brackets) > 1 and all(b.cum == 0 for b in i.brackets) == whole_position]


@pytest.mark.parametrize("table", _snapshot_tables(whole_position=False))
def test_maintenance_margin_continuous_at_every_bracket_edge(table):
    for b in table[1:]:
        edge = b.notional_floor
        below = maintenance_margin(edge * (1 - 1e-12), table)
        assert maintenance_margin(edge, table) == pytest.approx(below, rel=1e-9)
    # hand: 40,000 USDT of BTC in bracket 1 -> 0.4 %
    assert maintenance_margin(40_000, BTCUSDT_BRACKETS) == pytest.approx(160.0)
    assert maintenance_margin(-40_000, BTCUSDT_BRACKETS) == pytest.approx(160.0)
    # hand: 600,000 USDT of ETH in bracket 4 -> 2 % x 600,000 - 5,365
    assert maintenance_margin(600_000, ETHUSDT_BRACKETS) == pytest.approx(12_000 - 5_365)


@pytest.mark.parametrize("table", _snapshot_tables(whole_position=True))
def test_okx_whole_position_tables_step_at_every_edge(table):
    """OKX charges the whole position its tier's rate (https://www.okx.com/help/tier): just below an edge the
    maintenance is edge x the lower tier's MMR, just above it edge x the upper tier's -- a step of
    edge x (MMR difference), where a continuous table (Binance, Bybit) has none."""
    assert table  # the snapshot carries OKX tables (okx BTC..DOGE perps)
    for prev, b in zip(table, table[1:]):
        edge = b.notional_floor
        assert maintenance_margin(edge * (1 - 1e-12), table) == pytest.approx(edge * prev.mmr, rel=1e-9)
        assert maintenance_margin(edge * (1 + 1e-12), table) == pytest.approx(edge * b.mmr, rel=1e-9)


def test_binance_documented_example_cross_long_to_the_cent():
    lp = liquidation_price(1_000 / 50_000, 50_000, 500, BTCUSDT_BRACKETS, margin_mode="cross")
    assert round(lp, 2) == 25_100.40


# Binance FAQ b3c689c1... cross-margin example (module docstring): one account, two contracts.
BINANCE_CROSS_WALLET = 1_535_443.01
BINANCE_CROSS_BOOK = {
    # symbol: (qty, entry, mark, brackets)
    "BTCUSDT": (109.488, 32_481.98, 31_967.27, BTCUSDT_BRACKETS),
    "ETHUSDT": (3_683.979, 1_456.84, 1_335.18, ETHUSDT_BRACKETS),
}


@pytest.mark.parametrize(
    "symbol, other, tmm1, tmm1_digits, upnl1, mmr, cum, published",
    [
        ("ETHUSDT", "BTCUSDT", 71_200.81144, 5, -56_354.57, 0.10, 135_365.0, 1_153.26),
        ("BTCUSDT", "ETHUSDT", 356_512.508, 3, -448_192.89, 0.025, 16_300.0, 26_316.89),
    ],
)
def test_binance_documented_cross_example_two_contracts_to_the_cent(symbol, other, tmm1, tmm1_digits, upnl1,
                                                                     mmr, cum, published):
    qty, entry, _, table = BINANCE_CROSS_BOOK[symbol]
    o_qty, o_entry, o_mark, o_table = BINANCE_CROSS_BOOK[other]
    # the other contract's maintenance margin and unrealised PnL, at its mark, as the FAQ prints them
    other_mm = maintenance_margin(o_qty * o_mark, o_table)
    other_upnl = o_qty * (o_mark - o_entry)
    assert round(other_mm, tmm1_digits) == tmm1  # to the digits the FAQ prints
    assert round(other_upnl, 2) == upnl1
    lp = liquidation_price(qty, entry, BINANCE_CROSS_WALLET, table, margin_mode="cross",
                           other_maintenance_margin=other_mm, other_unrealized_pnl=other_upnl)
    assert round(lp, 2) == published
    # the bracket the FAQ uses is the one holding the notional at the liquidation price
    b = bracket_for(qty * lp, table)
    assert (b.mmr, b.cum) == (mmr, cum)
    # and the published figures themselves, fed straight into the formula, give the same cent
    assert round(liquidation_price(qty, entry, BINANCE_CROSS_WALLET, table, margin_mode="cross",
                                   other_maintenance_margin=tmm1, other_unrealized_pnl=upnl1), 2) == published


def test_hand_constructed_isolated_short():
    # short 1 BTC @ 40,000, isolated margin 4,000 (10x): (4000 + 0 + 40000) / (0.004 + 1)
    lp = liquidation_price(-1.0, 40_000, 4_000, BTCUSDT_BRACKETS)
    assert round(lp, 2) == 43_824.70
    assert liquidation_distance(-1.0, 40_000, lp) == pytest.approx(lp / 40_000 - 1)


def test_hand_constructed_bracket_change_uses_bracket_at_liquidation_price():
    # long 6 BTC @ 45,000 = 270,000 USDT (bracket 3 at entry), isolated margin 27,000.
    # bracket 3: LP = (27000+1300-270000)/(6*0.01-6) = 40,690.24 -> notional 244,141 (bracket 2)
    # bracket 2: LP = (27000+50-270000)/(6*0.005-6) = 40,695.14 -> notional 244,171 (bracket 2) OK
    lp = liquidation_price(6.0, 45_000, 27_000, BTCUSDT_BRACKETS)
    assert round(lp, 2) == 40_695.14


def test_cross_margin_uses_other_positions():
    # long 1 BTC @ 30,000, cross wallet 10,000, others: MM 500, UPNL -1,000
    # LP = (10000 - 500 - 1000 + 0 - 30000) / (0.004 - 1) = 21,586.35
    lp = liquidation_price(1.0, 30_000, 10_000, BTCUSDT_BRACKETS, margin_mode="cross",
                           other_maintenance_margin=500, other_unrealized_pnl=-1_000)
    assert round(lp, 2) == 21_586.35
    # isolated ignores the others
    lp_iso = liquidation_price(1.0, 30_000, 10_000, BTCUSDT_BRACKETS, margin_mode="isolated",
                               other_maintenance_margin=500, other_unrealized_pnl=-1_000)
    assert lp_iso == pytest.approx((10_000 - 30_000) / (0.004 - 1))


def test_over_collateralised_long_cannot_be_liquidated_and_zero_qty_is_nan():
    assert liquidation_price(1.0, 30_000, 40_000, BTCUSDT_BRACKETS) == 0.0
    assert math.isnan(liquidation_price(0.0, 30_000, 1_000, BTCUSDT_BRACKETS))
    assert liquidation_distance(1.0, 30_000, 0.0) == 1.0


@pytest.mark.parametrize("kw,field", [
    (dict(qty=1.0, entry_price=0.0, wallet_balance=1.0), "entry_price"),
    (dict(qty=1.0, entry_price=-5.0, wallet_balance=1.0), "entry_price"),
    (dict(qty=float("nan"), entry_price=1.0, wallet_balance=1.0), "qty"),
    (dict(qty=1.0, entry_price=1.0, wallet_balance=float("inf")), "wallet_balance"),
])
def test_liquidation_price_bad_input(kw, field):
    with pytest.raises(InvalidInput, match=field):
        liquidation_price(brackets=BTCUSDT_BRACKETS, **kw)
    with pytest.raises(InvalidInput, match="brackets"):
        liquidation_price(1.0, 1.0, 1.0, ())


@settings(max_examples=200, deadline=None)
@given(qty=st.floats(0.001, 2_000).flatmap(lambda a: st.sampled_from([a, -a])),
       ep=st.floats(100, 100_000), lev=st.floats(1.0, 50.0),
       eth=st.booleans())
def test_equity_at_liquidation_price_equals_maintenance_margin(qty, ep, lev, eth):
    table = ETHUSDT_BRACKETS if eth else BTCUSDT_BRACKETS
    lev = min(lev, bracket_for(abs(qty) * ep, table).max_leverage)  # an openable position
    wb = abs(qty) * ep / lev
    lp = liquidation_price(qty, ep, wb, table)
    if lp == 0.0:
        return  # long that cannot be liquidated
    equity = wb + qty * (lp - ep)
    assert equity == pytest.approx(maintenance_margin(abs(qty) * lp, table), rel=1e-9, abs=1e-6)
    # and the adverse side is the right one
    assert (lp < ep) if qty > 0 else (lp > ep)


def test_margin_ratio():
    assert margin_ratio(100.0, 400.0) == 0.25
    assert margin_ratio(100.0, 0.0) == math.inf
    with pytest.raises(InvalidInput, match="maintenance"):
        margin_ratio(-1.0, 10.0)


# ---- the venue's own table ---------------------------------------------------------------------


def _tiers(table):
    """ccxt fetch_leverage_tiers rows (Binance shape: info carries cum) of a bracket table."""
    return [{"tier": b.bracket, "minNotional": b.notional_floor, "maxNotional": b.notional_cap,
             "maintenanceMarginRate": b.mmr, "maxLeverage": b.max_leverage, "info": {"cum": str(b.cum)}}
            for b in table]


def test_brackets_from_ccxt_tiers_round_trip_and_recurrence():
    from hedge_core.analytics.risk import brackets_from_tiers

    for table in (BTCUSDT_BRACKETS, ETHUSDT_BRACKETS):
        assert brackets_from_tiers(_tiers(table)) == table
        no_cum = [{k: v for k, v in t.items() if k != "info"} for t in _tiers(table)]
        got = brackets_from_tiers(list(reversed(no_cum)))  # any order; cum from the recurrence
        assert [b.cum for b in got] == pytest.approx([b.cum for b in table], abs=1e-6)


@pytest.mark.parametrize("edit, field", [
    (lambda t: t.pop(1), "tiers[1].minNotional"),  # a gap
    (lambda t: t[2].update(maintenanceMarginRate=0.001), "tiers[2].maintenanceMarginRate"),
    (lambda t: t[3]["info"].update(cum="999"), "tiers[3].info.cum"),
    (lambda t: t[0].update(maxLeverage=0), "tiers[0].maxLeverage"),
    (lambda t: t[0].pop("maxNotional"), "tiers[0]"),
    (lambda t: t.clear(), "tiers"),
])
def test_brackets_from_tiers_bad_input_names_the_field(edit, field):
    from hedge_core.analytics.risk import brackets_from_tiers

    tiers = _tiers(BTCUSDT_BRACKETS)
    edit(tiers)
    with pytest.raises(InvalidInput) as e:
        brackets_from_tiers(tiers)
    assert e.value.field == field


def test_an_instruments_own_brackets_reach_the_engine_leverage_rule_and_liquidation_guard():
    """A venue's table travels on the instrument (leg), not through a process-wide global: the same
    symbol with and without its own table gives each caller its own answer, side by side."""
    from hedge_core.analytics.risk import table_key
    from hedge_core.engine.guards import _isolated_liquidation_price
    from hedge_core.engine.sizing import choose_leverage
    from hedge_core.params.models import LeverageParams

    p = LeverageParams(liq_buffer=0.1, max_leverage=10)
    default = brackets_for("BTC/USDT:USDT")
    assert choose_leverage(0.0, p, notional=10_000) == 9  # committed table: 1/(1.1 x 1.004 - 1) = 9.06
    lp0 = _isolated_liquidation_price(-1.0, 30_000.0, 5.0, 0.0, table_key(BTCUSDT_BRACKETS))
    venue = tuple(replace_bracket(b, max_leverage=4.0, mmr=b.mmr * 2, cum=b.cum * 2) for b in BTCUSDT_BRACKETS)
    assert choose_leverage(0.0, p, notional=10_000, brackets=venue) == 4  # the venue's cap
    lp1 = _isolated_liquidation_price(-1.0, 30_000.0, 5.0, 0.0, table_key(venue))
    assert lp1 < lp0 and lp1 == pytest.approx(liquidation_price(-1.0, 30_000.0, 6_000.0, venue))
    # nothing global changed: the committed default is what a caller without a table still gets
    assert choose_leverage(0.0, p, notional=10_000) == 9 and brackets_for("BTC/USDT:USDT") == default
    assert _isolated_liquidation_price(-1.0, 30_000.0, 5.0, 0.0, table_key(BTCUSDT_BRACKETS)) == lp0


def replace_bracket(b, **kw):
    from dataclasses import replace

    return replace(b, **kw)


_COMPILED: list = []


def _compiled_choose_leverage():
    """``money.choose_leverage`` compiled as the fast kernels inline it: compiled ONCE per session (a
    fresh @njit per hypothesis example recompiled every time: 25 s)."""
    if not _COMPILED:
        import numpy as np
        from numba import njit

        from hedge_core import money

        @njit
        def compiled(sigma, n, side, lb, k, lo, hi, caps, mmrs, cums, maxlevs):
            return money.choose_leverage(sigma, n, side, lb, k, lo, hi, caps, mmrs, cums, maxlevs, np.inf)

        _COMPILED.append(compiled)
    return _COMPILED[0]


@settings(max_examples=300, deadline=None)
@given(st.floats(0.0, 0.2), st.floats(1.0, 5e7), st.sampled_from([-1, 1]), st.floats(0.002, 0.9),
       st.floats(1.0, 10.0), st.floats(1.0, 125.0), st.booleans())
def test_fast_path_leverage_rule_is_the_engine_rule(sigma, notional, side, buf, min_lev, max_lev, eth):
    """The compiled form of ``money.choose_leverage`` (what the fast kernels inline, fed numpy
    columns) gives the engine's ``sizing.choose_leverage`` to the bit, incl. the bracket's
    leverage cap for the entry notional; and the answer meets the buffer by the independent
    Binance formula (``liquidation_price``) unless a bound binds."""
    import numpy as np

    from hedge_core.engine.sizing import choose_leverage, required_buffer
    from hedge_core.params.models import LeverageParams

    compiled = _compiled_choose_leverage()
    lo, hi = sorted((min_lev, max_lev))
    p = LeverageParams(liq_buffer=buf, min_leverage=lo, max_leverage=hi)
    sym = "ETH/USDT:USDT" if eth else "BTC/USDT:USDT"
    table = brackets_for(sym)
    arr = [np.array([getattr(b, f) for b in table], dtype="float64") for f in ("notional_cap", "mmr", "cum", "max_leverage")]
    want = choose_leverage(sigma, p, symbol=sym, notional=notional, side=side)
    got = compiled(sigma, notional, side, p.liq_buffer, p.target_vol_multiple, p.min_leverage, p.max_leverage,
                   arr[0], arr[1], arr[2], arr[3])
    assert got == want
    assert want <= max(bracket_for(max(notional, 1.0), table).max_leverage, 1.0)
    n = max(notional, 1.0)
    cap = min(hi, bracket_for(n, table).max_leverage)
    # not at a bound: the buffer holds at this leverage. A min_leverage a float step below a whole number
    # (1.9999999999999982) is that whole number to the rule (whole_leverage's 1e-9 slack): still the bound.
    if min(lo, cap) + 1e-9 < want < cap:
        lp = liquidation_price(side * n / 100.0, 100.0, n / want, table)
        move = (100.0 - lp) / 100.0 if side == 1 else (lp - 100.0) / 100.0
        assert move >= required_buffer(sigma, p) - 1e-9


def test_whole_position_tiers_okx_liquidation_price_by_hand():
    """OKX's model (whole position at its tier's MMR, every cum 0: https://www.okx.com/help/tier), isolated
    long: 100,000 ADA bought at 0.50 (50,000 USDT notional, tier 2 of the table
    below) with 5,000 USDT margin. Liquidation where margin + (P - 0.5) x 100,000 = 100,000 x P x MMR(tier of
    100,000 x P). Try tier 2 (1.5 %): 5,000 + 100,000 P - 50,000 = 1,500 P -> P = 45,000 / 98,500 = 0.456853
    -> notional 45,685 is in [25,000, 50,000): tier 2 holds, self-consistent."""
    from hedge_core.analytics.risk import brackets_from_tiers, liquidation_price, maintenance_margin

    tiers = [{"minNotional": 0, "maxNotional": 25_000, "maintenanceMarginRate": 0.01, "maxLeverage": 75},
             {"minNotional": 25_000, "maxNotional": 50_000, "maintenanceMarginRate": 0.015, "maxLeverage": 50},
             {"minNotional": 50_000, "maxNotional": 300_000, "maintenanceMarginRate": 0.02, "maxLeverage": 20}]
    table = brackets_from_tiers(tiers, whole_position=True)
    assert [b.cum for b in table] == [0.0, 0.0, 0.0]
    assert maintenance_margin(60_000.0, table) == pytest.approx(1_200.0)  # 60,000 x 2 %, no deduction
    lp = liquidation_price(100_000.0, 0.5, 5_000.0, table)
    assert lp == pytest.approx(45_000.0 / 98_500.0, rel=1e-12)
    with pytest.raises(InvalidInput) as e:  # a deduction contradicts the whole-position model
        brackets_from_tiers([{**tiers[0]}, {**tiers[1], "info": {"mmDeduction": "125"}}], whole_position=True)
    assert e.value.field == "tiers[1].info.cum"
