"""The book's aggregation: it equals the sum of its hedges (property test over random hedges),
netting per (asset, venue), nearest liquidation, funding per day, LTV and drawdown by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedge_core.book.aggregate import aggregate, drawdown, funding_per_day, liq_distance
from hedge_core.book.model import HedgePosition, asset_of, from_summary
from hedge_core.errors import InvalidInput

qty = st.floats(-50, 50, allow_nan=False).map(lambda x: round(x, 6))
price = st.floats(1, 100_000, allow_nan=False)


@st.composite
def hedges(draw):
    n = draw(st.integers(1, 25))
    out = []
    for i in range(n):
        sp = draw(price)
        out.append(HedgePosition(
            f"h{i}", draw(st.sampled_from(["binance", "bybit", "okx"])), draw(st.sampled_from(["BTC", "ETH", "SOL"])),
            spot_qty=draw(qty), perp_qty=draw(qty), spot_price=sp, mark_price=sp * draw(st.floats(0.9, 1.1)),
            leverage=draw(st.floats(1, 20)), pnl=draw(st.floats(-1e4, 1e4)), day_pnl=draw(st.floats(-1e3, 1e3)),
            funding=draw(st.floats(-100, 100))))
    return out


@settings(max_examples=150, deadline=None)
@given(hedges())
def test_book_is_the_sum_of_its_hedges(hs):
    b = aggregate(hs)
    rel = dict(rel=1e-9, abs=1e-6)
    assert b.hedges == len(hs)
    for a in b.assets:
        mine = [h for h in hs if h.asset == a.asset]
        assert a.delta == pytest.approx(sum(h.spot_qty + h.perp_qty for h in mine), **rel)
        assert a.hedges == len(mine)
    assert {a.asset for a in b.assets} == {h.asset for h in hs}
    for v in b.venues:
        mine = [h for h in hs if h.venue == v.venue]
        gross = sum(abs(h.spot_qty) * h.spot_price + abs(h.perp_qty) * h.mark_price for h in mine)
        net = sum(h.spot_qty * h.spot_price + h.perp_qty * h.mark_price for h in mine)
        margin = sum(abs(h.perp_qty) * h.mark_price / h.leverage for h in mine)
        assert v.gross == pytest.approx(gross, **rel) and v.net == pytest.approx(net, **rel)
        assert v.margin_used == pytest.approx(margin, **rel)
        # netting never needs more margin than the hedges alone
        assert v.margin_netted <= v.margin_used * (1 + 1e-9) + 1e-9
    assert b.gross == pytest.approx(sum(v.gross for v in b.venues), **rel)
    assert b.pnl == pytest.approx(sum(h.pnl for h in hs), **rel)
    assert b.day_pnl == pytest.approx(sum(h.day_pnl for h in hs), **rel)
    assert b.funding == pytest.approx(sum(h.funding for h in hs), **rel)
    # the netted rows partition the hedges; their deltas add up to the assets'
    assert sum(r.hedges for r in b.netted) == len(hs)
    for a in b.assets:
        assert sum(r.delta for r in b.netted if r.asset == a.asset) == pytest.approx(a.delta, **rel)


def test_netting_same_asset_and_venue_by_hand():
    # two BTC hedges on binance, one short 2 at 5x, one long 1 at 10x (mark 100): gross margin
    # 2*100/5 + 1*100/10 = 50; net perp -1, imr = (2/5 + 1/10) / 3 = 1/6 -> netted 100/6
    hs = [HedgePosition("a", "binance", "BTC", spot_qty=2, perp_qty=-2, spot_price=100, mark_price=100, leverage=5),
          HedgePosition("b", "binance", "BTC", spot_qty=0, perp_qty=1, spot_price=100, mark_price=100, leverage=10),
          HedgePosition("c", "bybit", "BTC", spot_qty=1, perp_qty=-1, spot_price=100, mark_price=100, leverage=2)]
    b = aggregate(hs)
    (btc,) = b.assets
    assert btc.delta == pytest.approx(2 - 2 + 1 + 1 - 1) and btc.delta_quote == pytest.approx(100.0)
    nb = next(r for r in b.netted if r.venue == "binance")
    assert nb.perp_qty == -1 and nb.hedges == 2
    assert nb.margin_gross == pytest.approx(50.0) and nb.margin_netted == pytest.approx(100 / 6)
    vb = next(v for v in b.venues if v.venue == "binance")
    assert vb.margin_used == pytest.approx(50.0) and vb.margin_netted == pytest.approx(100 / 6)
    assert vb.gross == pytest.approx(200 + 200 + 100) and vb.net == pytest.approx(200 - 200 + 100)


def test_nearest_liquidation_per_venue():
    hs = [HedgePosition("far", "binance", "BTC", perp_qty=-1, spot_price=100, mark_price=100, liq_price=150),
          HedgePosition("near", "binance", "ETH", perp_qty=-1, spot_price=10, mark_price=10, liq_price=11),
          HedgePosition("long", "okx", "BTC", perp_qty=1, spot_price=100, mark_price=100, liq_price=80),
          HedgePosition("flat", "okx", "SOL", spot_qty=3, spot_price=20)]
    b = aggregate(hs)
    v = {r.venue: r for r in b.venues}
    assert v["binance"].liq_distance == pytest.approx(0.10) and v["binance"].liq_hedge == "near"
    assert v["okx"].liq_distance == pytest.approx(0.20) and v["okx"].liq_hedge == "long"
    assert math.isnan(liq_distance(0, 100, 90))


def test_funding_per_day_loans_and_drawdown():
    rows = [{"ts": "2024-01-01T08:00Z", "amount": 1.5}, {"ts": "2024-01-01T16:00Z", "amount": -0.5},
            {"ts": "2024-01-02T00:00Z", "amount": 2.0}, {"ts": "2024-01-02T08:00Z", "amount": None}]
    assert funding_per_day(rows) == (("2024-01-01", 1.0), ("2024-01-02", 2.0))
    hs = [HedgePosition("l", "binance", "BTC", spot_qty=2, spot_price=100, loan_outstanding=50, collateral_qty=2),
          HedgePosition("m", "binance", "ETH", spot_qty=10, spot_price=10, loan_outstanding=25, collateral_qty=10,
                        pnl=-30)]
    b = aggregate(hs, funding_rows=rows, pnl_history=[0, 40, 10, 55, 20])
    assert [x.ltv for x in b.loans] == [pytest.approx(0.25), pytest.approx(0.25)]
    assert b.book_ltv == pytest.approx(75 / 300)
    # history 0, 40, 10, 55, 20, then the current -30: peak 55 -> drawdown 85, the worst too
    assert (b.drawdown, b.max_drawdown) == (pytest.approx(85.0), pytest.approx(85.0))
    assert drawdown([10, 5, 20, 18]) == (pytest.approx(2.0), pytest.approx(5.0))
    assert drawdown([-3.0]) == (pytest.approx(3.0), pytest.approx(3.0))
    # from a journaled peak and max drawdown (the runner's book_marks): the same as the whole history
    assert drawdown([18], peak=20, worst=5) == drawdown([10, 5, 20, 18])
    assert drawdown([30, 29], peak=20, worst=5) == (pytest.approx(1.0), pytest.approx(5.0))
    b2 = aggregate(hs, funding_rows=rows, drawdown_from=(55.0, 50.0))
    assert (b2.drawdown, b2.max_drawdown) == (pytest.approx(85.0), pytest.approx(85.0))


def test_bad_inputs_are_named():
    with pytest.raises(InvalidInput, match="leverage"):
        HedgePosition("x", "binance", "BTC", leverage=0)
    with pytest.raises(InvalidInput, match="spot_qty"):
        HedgePosition("x", "binance", "BTC", spot_qty=math.inf)
    with pytest.raises(InvalidInput, match="hedge_id"):
        aggregate([HedgePosition("x", "binance", "BTC"), HedgePosition("x", "okx", "BTC")])
    with pytest.raises(InvalidInput, match="pnl_history"):
        drawdown([1.0, math.nan])
    with pytest.raises(InvalidInput, match="worst"):
        drawdown([1.0], worst=-1.0)
    with pytest.raises(InvalidInput, match="peak"):
        drawdown([1.0], peak=math.nan)
    assert asset_of("sol/usdt:USDT") == "SOL"


def test_from_runner_summary():
    s = {"hedge_id": "h1", "venue": "binance", "spot_symbol": "ETH/USDT", "spot_qty": 1.0, "perp_qty": -1.0,
         "spot_price": 2000.0, "mark_price": None, "leverage": 3.0, "liq_price": 2600.0, "funding": 1.2,
         "pnl": 5.0, "day_pnl": 1.0, "loan": None}
    p = from_summary(s)
    assert (p.asset, p.perp_price, p.margin_used) == ("ETH", 2000.0, pytest.approx(2000 / 3))


def test_each_leg_counts_under_its_own_asset_and_venue() -> None:
    # a cross hedge: 10 ETH spot at 2,000 on binance against 0.5 BTC short perp at 40,000 on bybit, 2x
    from hedge_core.book.aggregate import aggregate
    from hedge_core.book.model import HedgePosition

    p = HedgePosition("x1", "binance", "ETH", spot_qty=10.0, perp_qty=-0.5, spot_price=2000.0, mark_price=40000.0,
                      leverage=2.0, liq_price=60000.0, perp_asset="BTC", perp_venue="bybit")
    b = aggregate([p])
    assets = {a.asset: a for a in b.assets}
    assert (assets["ETH"].spot_qty, assets["ETH"].perp_qty, assets["ETH"].delta) == (10.0, 0.0, 10.0)
    assert (assets["BTC"].spot_qty, assets["BTC"].perp_qty, assets["BTC"].delta) == (0.0, -0.5, -0.5)
    assert assets["ETH"].price == 2000.0 and assets["BTC"].price == 40000.0
    assert assets["ETH"].delta_quote == 20000.0 and assets["BTC"].delta_quote == -20000.0
    venues = {v.venue: v for v in b.venues}
    assert (venues["binance"].gross, venues["binance"].net, venues["binance"].margin_used) == (20000.0, 20000.0, 0.0)
    assert (venues["bybit"].gross, venues["bybit"].net, venues["bybit"].margin_used) == (20000.0, -20000.0, 10000.0)
    assert venues["bybit"].liq_distance == 0.5 and venues["bybit"].liq_hedge == "x1"
    assert venues["binance"].liq_hedge == "" and venues["binance"].hedges == venues["bybit"].hedges == 1
    netted = {(r.asset, r.venue): r for r in b.netted}
    assert set(netted) == {("ETH", "binance"), ("BTC", "bybit")}
    assert netted[("BTC", "bybit")].perp_qty == -0.5 and netted[("BTC", "bybit")].margin_gross == 10000.0
    assert b.gross == 40000.0 and b.net == 0.0 and b.margin_used == 10000.0


def test_a_summary_with_a_perp_on_another_asset_and_venue() -> None:
    from hedge_core.book.model import from_summary

    p = from_summary({"hedge_id": "x", "venue": "binance", "perp_venue": "okx", "spot_symbol": "ETH/USDT",
                      "perp_symbol": "BTC/USDT:USDT", "spot_qty": 1, "perp_qty": -0.1})
    assert (p.asset, p.perp_asset_, p.venue, p.perp_venue_) == ("ETH", "BTC", "binance", "okx")
    same = from_summary({"hedge_id": "y", "venue": "binance", "spot_symbol": "BTC/USDT", "perp_symbol": "BTC/USDT:USDT"})
    assert (same.perp_asset, same.perp_venue, same.perp_asset_, same.perp_venue_) == ("", "", "BTC", "binance")
