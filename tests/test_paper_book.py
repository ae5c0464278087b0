"""The paper venue's order book (``fetch_order_book``) drawn from its own execution model.

Choosing a venue by its book must agree with the fill the paper venue then gives: walk the paper book
for ``q`` (``best_venue.walk_book``), then fill ``q`` on the paper venue: the same average price to
round-off. The level prices themselves are checked against a hand-computed book.
"""

from __future__ import annotations

import asyncio
import math

import pandas as pd
import pytest

from hedge_core.errors import InvalidInput, OperationalError
from hedge_core.exchange.best_venue import walk_book
from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.paper.book import model_book
from hedge_core.exchange.paper.core import PaperConfig, PaperCore, default_instruments
from hedge_core.exchange.recommend import RecommendAdapter
from hedge_core.exchange.routed import RoutedAdapter
from hedge_core.types import Bar, MarketKind, OrderRequest, Side

SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"
T0 = pd.Timestamp("2024-01-01T00:00Z")


def test_hand_computed_book_of_two_levels():
    # ref 100, bar volume 100, 1 bp fixed + 10 bp x sqrt(q / V), depth 100 in 2 levels: boundaries
    # 100 x (1/2)^2 = 25 and 100. A buy of 25: 1 + 10 x 0.5 = 6 bp -> 100.06, cost 2501.5; of 100: 11 bp
    # -> 100.11, cost 10011; the second level's price is (10011 - 2501.5) / 75 = 100.12666...
    book = model_book(100.0, 100.0, 1.0, 10.0, depth=100.0, limit=2)
    assert book["asks"][0] == pytest.approx([100.06, 25.0], rel=1e-14)
    assert book["asks"][1] == pytest.approx([7509.5 / 75, 75.0], rel=1e-14)
    # sells: 99.94 x 25 = 2498.5; 99.89 x 100 = 9989 -> (9989 - 2498.5) / 75
    assert book["bids"][0] == pytest.approx([99.94, 25.0], rel=1e-14)
    assert book["bids"][1] == pytest.approx([7490.5 / 75, 75.0], rel=1e-14)
    # an asked size becomes a boundary
    assert [lv[1] for lv in model_book(100.0, 100.0, 1.0, 10.0, depth=100.0, limit=2, amount=50.0)["asks"]] == \
        pytest.approx([25.0, 25.0, 50.0])


def test_bad_book_inputs_name_the_field():
    for kw, field in (({"ref": 0.0}, "ref"), ({"volume": -1.0}, "volume"), ({"depth": math.nan}, "depth"),
                      ({"limit": 0}, "limit"), ({"amount": -2.0}, "amount")):
        args = {"ref": 100.0, "volume": 10.0, "slippage_bps": 1.0, "impact_k_bps": 10.0, "depth": 10.0, **kw}
        with pytest.raises(InvalidInput, match=field):
            model_book(args.pop("ref"), args.pop("volume"), args.pop("slippage_bps"), args.pop("impact_k_bps"), **args)


def _venue(name: str = "binance", volume: float = 50.0, **cfg) -> PaperExchange:
    core = PaperCore(PaperConfig(venue=name, instruments=default_instruments(name), **cfg),
                     balances={"spot": {"USDT": 10_000_000.0, "BTC": 100.0}, "perp": {"USDT": 10_000_000.0}})
    for kind, sym, px in ((MarketKind.SPOT, SPOT, 40_000.0), (MarketKind.PERP, PERP, 40_010.0)):
        core.apply(Bar(T0, name, sym, kind, px, px * 1.001, px * 0.999, px, volume))
    return PaperExchange(core, save_on_apply=False)


@pytest.mark.parametrize("symbol", [SPOT, PERP])
@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("qty", [0.003, 0.37, 4.2, 31.0])
def test_walking_the_paper_book_gives_the_paper_fill(symbol, side, qty):
    async def go():
        ex = _venue(slippage_bps=2.0, impact_k_bps=15.0)
        book = await ex.fetch_order_book(symbol, amount=qty)
        walked, filled = walk_book(book["asks" if side == "buy" else "bids"], qty)
        o = await ex.create_order(OrderRequest(symbol, Side(side), qty, f"c-{side}-{qty}"))
        return walked, filled, o

    walked, filled, o = asyncio.run(go())
    assert filled == pytest.approx(qty, rel=1e-12)
    assert o.filled == pytest.approx(qty, rel=1e-12)
    assert walked == pytest.approx(o.avg_price, rel=1e-12)


def test_between_level_boundaries_the_walk_is_a_hair_worse_than_the_fill_within_the_stated_bound():
    # module docstring: worse by less than 1.2 x k / 1e4 x sqrt(depth / V) / levels (relative)
    async def go():
        ex = _venue(slippage_bps=1.0, impact_k_bps=10.0, volume=50.0)
        book = await ex.fetch_order_book(PERP)  # no size given: 50 levels over depth V = 50
        out = []
        for i, q in enumerate((0.013, 0.5, 3.3, 17.0, 44.4)):
            walked, _ = walk_book(book["asks"], q)
            o = await ex.create_order(OrderRequest(PERP, Side.BUY, q, f"b{i}"))
            await ex.create_order(OrderRequest(PERP, Side.SELL, q, f"s{i}", reduce_only=True))
            out.append((walked, o.avg_price))
        return out

    bound = 1.2 * 10.0 / 1e4 * math.sqrt(50.0 / 50.0) / 50
    for walked, fill in asyncio.run(go()):
        assert fill * (1 - 1e-12) <= walked <= fill * (1 + bound)


def test_with_a_participation_cap_the_book_is_as_deep_as_what_fills_this_bar():
    async def go():
        ex = _venue(volume=50.0, participation=0.1)  # 5 BTC fill per bar
        book = await ex.fetch_order_book(PERP, amount=2.0)
        o = await ex.create_order(OrderRequest(PERP, Side.SELL, 2.0, "a"))
        after = await ex.fetch_order_book(PERP)
        return book, o, after

    book, o, after = asyncio.run(go())
    assert sum(q for _, q in book["bids"]) == pytest.approx(5.0, rel=1e-12)
    assert walk_book(book["bids"], 2.0)[0] == pytest.approx(o.avg_price, rel=1e-12)
    assert sum(q for _, q in after["asks"]) == pytest.approx(3.0, rel=1e-12)  # 2 of this bar's 5 are used
    assert walk_book(after["asks"], 4.0)[1] == pytest.approx(3.0, rel=1e-12)  # 4 does not fit now


def test_no_bar_yet_is_an_operational_error():
    ex = PaperExchange(PaperCore(PaperConfig(venue="binance", instruments=default_instruments("binance"))))
    with pytest.raises(OperationalError, match="no market data"):
        asyncio.run(ex.fetch_order_book(PERP))


def test_routed_and_recommend_adapters_read_the_legs_venue_book():
    async def go():
        a, b = _venue("binance", slippage_bps=1.0), _venue("bybit", slippage_bps=5.0)
        routed = RoutedAdapter(a, b)
        return (await routed.fetch_order_book(PERP, 5, amount=1.0), await b.fetch_order_book(PERP, 5, amount=1.0),
                await routed.fetch_order_book(SPOT, 5), await a.fetch_order_book(SPOT, 5),
                await RecommendAdapter(b).fetch_order_book(PERP, 5, amount=1.0))

    perp_routed, perp_b, spot_routed, spot_a, rec = asyncio.run(go())
    assert perp_routed == perp_b and spot_routed == spot_a and rec == perp_b
    assert perp_b["asks"][0][0] > spot_a["asks"][0][0]  # bybit's perp book, not binance's
