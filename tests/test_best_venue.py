"""Best execution (issue #15 item 5, first half): the venue of a leg chosen by price, fee and depth.

Every expected figure is computed by hand in the comments (walk the book level by level, fee =
notional x taker fee, a buy pays notional + fee, a sell receives notional - fee).
"""

from __future__ import annotations

import math

import pytest

from hedge_core.errors import InvalidInput
from hedge_core.exchange.best_venue import VenueBook, choose_venue, walk_book


def vb(venue: str, fee: float, asks=(), bids=()) -> VenueBook:
    return VenueBook(venue, {"asks": [list(a) for a in asks], "bids": [list(b) for b in bids]}, fee)


BUY_BOOKS = [
    vb("binance", 0.001, asks=[(100.0, 1.0), (101.0, 2.0)]),  # best top of book among the fillable ones
    vb("bybit", 0.00055, asks=[(100.2, 5.0)]),
    vb("okx", 0.0, asks=[(99.0, 0.5)]),  # cheapest, but only 0.5 deep
]


def test_walk_book_averages_the_levels_it_takes():
    # 1.0 @ 100 + 0.5 @ 101 = 150.5 for 1.5 -> 100.3333...
    avg, filled = walk_book([(100.0, 1.0), (101.0, 2.0)], 1.5)
    assert filled == 1.5 and avg == pytest.approx(150.5 / 1.5, rel=1e-15)
    avg, filled = walk_book([(99.0, 0.5)], 1.5)
    assert filled == 0.5 and avg == 99.0
    assert math.isnan(walk_book([], 1.0)[0])


def test_a_buy_goes_where_the_walked_price_plus_fee_is_lowest_not_the_best_top_of_book():
    # binance: 150.5 + 0.1505 fee = 150.6505; bybit: 1.5 x 100.2 = 150.3 + 0.082665 = 150.382665; okx cannot fill 1.5
    c = choose_venue("buy", 1.5, BUY_BOOKS)
    assert c.venue == "bybit"
    assert [s.venue for s in c.ranking] == ["bybit", "binance", "okx"]
    by = {s.venue: s for s in c.ranking}
    assert by["bybit"].net_quote == pytest.approx(-150.382665, rel=1e-12)
    assert by["bybit"].fee == pytest.approx(0.082665, rel=1e-12)
    assert by["binance"].net_quote == pytest.approx(-150.6505, rel=1e-12)
    assert by["binance"].avg_price == pytest.approx(100.33333333333333, rel=1e-12)
    assert by["bybit"].all_in_price == pytest.approx(150.382665 / 1.5, rel=1e-12)
    assert by["okx"].reason == "book depth 0.5 < amount 1.5" and math.isnan(by["okx"].net_quote)
    # for 0.5 okx's book is deep enough: 0.5 x 99 = 49.5 with no fee beats binance 50 + 0.05 and bybit 50.1 + 0.027555
    assert choose_venue("buy", 0.5, BUY_BOOKS).venue == "okx"
    # and when only binance and okx are allowed, 1.5 goes to binance (okx too thin)
    assert choose_venue("buy", 1.5, BUY_BOOKS, allowed=["binance", "okx"]).venue == "binance"


def test_a_sell_goes_where_the_proceeds_after_fee_are_highest():
    books = [vb("binance", 0.001, bids=[(100.0, 1.0)]),  # 100 - 0.1 = 99.9
             vb("bybit", 0.0015, bids=[(100.05, 1.0)])]  # 100.05 - 0.150075 = 99.899925: better bid, worse after fee
    c = choose_venue("sell", 1.0, books)
    assert c.venue == "binance" and c.best.net_quote == pytest.approx(99.9, rel=1e-12)
    assert c.ranking[1].net_quote == pytest.approx(99.899925, rel=1e-12)


def test_ties_go_to_the_lower_fee_then_to_the_order_allowed():
    # a: 100 x (1 - 0.01) = 99.0 received; b: 99 x 1 with no fee = 99.0: equal, b's fee is lower
    books = [vb("a", 0.01, bids=[(100.0, 1.0)]), vb("b", 0.0, bids=[(99.0, 1.0)])]
    assert choose_venue("sell", 1.0, books).venue == "b"
    same = [vb("a", 0.001, bids=[(100.0, 1.0)]), vb("b", 0.001, bids=[(100.0, 1.0)])]
    assert choose_venue("sell", 1.0, same, allowed=["b", "a"]).venue == "b"
    assert choose_venue("sell", 1.0, same, allowed=["a", "b"]).venue == "a"


def test_allowed_venues_only_and_a_missing_book_is_ranked_last():
    c = choose_venue("buy", 0.5, BUY_BOOKS, allowed=["bybit", "kraken"])
    assert c.venue == "bybit"  # okx would be cheaper but is not allowed
    assert [(s.venue, s.reason) for s in c.ranking] == [("bybit", ""), ("kraken", "no order book")]


def test_no_allowed_venue_deep_enough_is_named():
    with pytest.raises(InvalidInput, match=r"okx: book depth 0.5 < amount 9.*binance: book depth 3 < amount 9"):
        choose_venue("buy", 9.0, BUY_BOOKS, allowed=["okx", "binance"])


@pytest.mark.parametrize("side, amount, books, field", [
    ("long", 1.0, BUY_BOOKS, "side"),
    ("buy", -1.0, BUY_BOOKS, "amount"),
    ("buy", math.nan, BUY_BOOKS, "amount"),
    ("buy", 1.0, [vb("x", 0.02, asks=[(1.0, 1.0)])], "x.taker_fee"),
    ("buy", 1.0, [vb("x", 0.001, asks=[(2.0, 1.0), (1.0, 1.0)])], r"x.book.asks\[1\]"),
    ("sell", 1.0, [vb("x", 0.001, bids=[(1.0, 1.0), (2.0, 1.0)])], r"x.book.bids\[1\]"),
    ("buy", 1.0, [vb("x", 0.001, asks=[(0.0, 1.0)])], r"x.book.asks\[0\]"),
    ("buy", 1.0, [VenueBook("x", {"bids": []}, 0.001)], "x.book.asks"),
    ("buy", 1.0, [vb("x", 0.001), vb("X", 0.001)], "books"),
])
def test_bad_input_names_the_field(side, amount, books, field):
    with pytest.raises(InvalidInput, match=field):
        choose_venue(side, amount, books)


def test_a_parameter_set_names_the_perp_venues_it_allows():
    from hedge_core.params.validate import parse

    p = parse({"strategy": "xcarry", "spot_venue": "binance", "perp_venue": "okx", "perp_venues": ["bybit", "okx"]})
    assert p.allowed_perp_venues == ("okx", "bybit")
    c = p.as_carry()  # the one-venue view prices both venues' own fees (the cost model), no single fee
    assert c.taker_fee is None and c.venue_costs is not None
    assert (c.venue_costs.spot_taker_fee, c.venue_costs.perp_taker_fee) == (p.spot_taker_fee, p.perp_taker_fee)
    for bad, why in ((["binance"], "is the spot venue"), (["Bybit"], "lower-case"), (["bybit", "bybit"], "each venue once")):
        with pytest.raises(InvalidInput, match=f"perp_venues.*{why}"):
            parse({"strategy": "xcarry", "perp_venues": bad})


def test_a_hedge_of_an_xcarry_set_must_sit_on_the_sets_venues():
    import types

    from hedge_core.params.validate import parse
    from hedge_core.runner.hedge import HedgeSpec
    from hedge_core.runner.supervisor import Supervisor

    inline = {"strategy": "xcarry", "spot_venue": "binance", "perp_venue": "okx", "perp_venues": ["bybit"]}
    p = parse(inline)
    p.check_legs("binance", "bybit")
    p.check_legs("Binance", "okx")
    with pytest.raises(InvalidInput, match=r"perp_venue.*\['okx', 'bybit'\]"):
        p.check_legs("binance", "kraken")
    with pytest.raises(InvalidInput, match="the set's spot_venue 'binance'"):
        p.check_legs("bybit", "okx")
    # the runner builds a hedge's params with this check (one venue for both legs: refused)
    stub = types.SimpleNamespace(_base_params_for=lambda spec: parse(spec.params_inline))
    ok = HedgeSpec(hedge_id="x1", params_inline=inline, venue="binance", perp_venue="bybit")
    assert Supervisor._params_for(stub, ok).perp_venue == "okx"  # type: ignore[arg-type]
    one = {**inline, "perp_venues": []}  # a set allowing one perp venue: no perp_venue = both legs on binance: refused
    with pytest.raises(InvalidInput, match="perp_venue"):
        Supervisor._params_for(stub, HedgeSpec(hedge_id="x2", params_inline=one, venue="binance"))  # type: ignore[arg-type]
    # a set allowing several: no perp_venue (or "best") means chosen at start (runner.best_perp); the spot venue
    # is still the set's
    for pv in (None, "best"):
        Supervisor._params_for(stub, HedgeSpec(hedge_id="x3", params_inline=inline, venue="binance", perp_venue=pv))  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="the set's spot_venue"):
            Supervisor._params_for(stub, HedgeSpec(hedge_id="x4", params_inline=inline, venue="bybit", perp_venue=pv))  # type: ignore[arg-type]
