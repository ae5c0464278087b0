"""Best execution at order time: the perp leg's venue chosen from the books the venues answer now.

The Binance USD-M and Bybit v5 simulators answer "Order Book" (GET /fapi/v1/depth) and "Get Orderbook"
(GET /v5/market/orderbook) in their documented shapes (cited in tests/support); the real ccxt client
reads them through :meth:`CcxtLiveAdapter.fetch_order_book`. Expected figures are hand-computed.
"""

from __future__ import annotations

import asyncio

import pytest

from hedge_core.errors import InvalidInput
from hedge_core.exchange.best_venue import best_venue_now, fetch_venue_books
from tests.support.live_env import bybit_env, live_env

SYM = "BTC/USDT:USDT"
FEES = {"binance": 0.0005, "bybit": 0.00055, "okx": 0.0005}  # USD-M and Bybit linear VIP0 taker fees


class _Down:
    """A venue whose book cannot be read (its endpoint is down)."""

    async def fetch_order_book(self, symbol: str, limit: int | None = None, *, amount: float | None = None):
        raise ConnectionError("okx: connection refused")


def _books(env_b, env_y) -> None:
    env_b.sim.order_books = {("fapi", "BTCUSDT"): {"asks": [(100.0, 1.0), (101.0, 2.0)], "bids": [(99.9, 3.0)]}}
    env_y.sim.order_books = {("linear", "BTCUSDT"): {"asks": [(100.2, 5.0)], "bids": [(99.8, 1.0)]}}


def test_the_perp_venue_is_chosen_from_the_books_the_venues_answer():
    async def go():
        async with live_env() as b, bybit_env() as y:
            _books(b, y)
            adapters = {"binance": b.adapter, "bybit": y.adapter, "okx": _Down()}
            books, errors = await fetch_venue_books(adapters, SYM, FEES)
            buy = await best_venue_now(adapters, SYM, "buy", 1.5, FEES)
            sell = await best_venue_now(adapters, SYM, "sell", 1.0, FEES, allowed=["bybit", "binance"])
            only_b = await best_venue_now(adapters, SYM, "buy", 1.5, FEES, allowed=["binance"])
            return books, errors, buy, sell, only_b

    books, errors, buy, sell, only_b = asyncio.run(go())
    by = {vb.venue: vb.book for vb in books}
    assert by["binance"]["asks"] == [[100.0, 1.0], [101.0, 2.0]] and by["bybit"]["asks"] == [[100.2, 5.0]]
    assert list(errors) == ["okx"] and "connection refused" in errors["okx"]
    # buy 1.5: binance 1 @ 100 + 0.5 @ 101 = 150.5 + 0.0005 fee = 150.57525; bybit 1.5 @ 100.2 = 150.3 + 0.00055
    # fee = 150.382665: bybit, although binance's best ask is lower
    assert buy.venue == "bybit" and buy.best.net_quote == pytest.approx(-150.382665, rel=1e-12)
    scores = {s.venue: s for s in buy.ranking}
    assert scores["binance"].net_quote == pytest.approx(-150.57525, rel=1e-12)
    assert scores["okx"].reason.startswith("no order book (ConnectionError")
    # sell 1: binance 99.9 - 0.04995 = 99.85005; bybit 99.8 - 0.05489 = 99.74511
    assert sell.venue == "binance" and sell.best.net_quote == pytest.approx(99.85005, rel=1e-12)
    assert only_b.venue == "binance" and len(only_b.ranking) == 1


def test_an_allowed_venue_without_an_adapter_or_a_fee_is_named():
    async def go(allowed, fees):
        async with live_env() as b:
            return await best_venue_now({"binance": b.adapter}, SYM, "buy", 0.1, fees, allowed=allowed)

    with pytest.raises(InvalidInput, match="allowed"):
        asyncio.run(go(["binance", "kraken"], FEES))
    with pytest.raises(InvalidInput, match="fees.binance"):
        asyncio.run(go(["binance"], {"bybit": 0.001}))


def test_the_routed_adapter_takes_the_perp_venue_chosen_among_the_sets_allowed_venues():
    from hedge_core.exchange.best_venue import route_to_best_perp
    from hedge_core.params.xcarry import CrossCarryParams

    p = CrossCarryParams(spot_venue="bybit", perp_venue="okx", perp_venues=("binance",))
    assert p.allowed_perp_venues == ("okx", "binance")

    async def go():
        async with live_env() as b, bybit_env() as y:
            _books(b, y)
            routed, choice = await route_to_best_perp(y.adapter, {"binance": b.adapter, "okx": _Down()}, SYM, "sell",
                                                      1.0, FEES, allowed=p.allowed_perp_venues)
            with pytest.raises(InvalidInput, match="other than the spot venue 'bybit'"):
                await route_to_best_perp(y.adapter, {"binance": b.adapter, "bybit": y.adapter}, SYM, "sell", 1.0,
                                         FEES, allowed=["binance", "bybit"])
            return routed, choice

    routed, choice = asyncio.run(go())
    # okx cannot be read; binance's book (bids 99.9 x 3) fills the short: 99.9 - 0.04995 = 99.85005
    assert choice.venue == "binance" and choice.best.net_quote == pytest.approx(99.85005, rel=1e-12)
    assert [s.venue for s in choice.ranking] == ["binance", "okx"]
    assert routed.spot_venue == "bybit" and routed.perp_venue == "binance"
    assert routed.venue_of(SYM) == "binance" and routed.venue_of("BTC/USDT") == "bybit"


def test_the_runner_chooses_between_two_live_perp_books_through_ccxt():
    """runner.best_perp.choose_perp_venue on the Bybit and OKX simulators ("Get Orderbook", GET /v5/market/orderbook;
    "Get order book", GET /api/v5/market/books, sizes in contracts of ctVal 0.01 BTC): bybit's top bid is better
    but thin; walked for the hedge's 0.025 BTC sell, okx pays more. Fees are each venue's ccxt market taker."""
    from hedge_core.params.xcarry import CrossCarryParams
    from hedge_core.runner.best_perp import choose_perp_venue
    from hedge_core.runner.hedge_spec import HedgeSpec
    from tests.support.live_env import okx_env

    params = CrossCarryParams(notional=1000.0, spot_venue="binance", perp_venue="bybit", perp_venues=("okx",))
    spec = HedgeSpec(hedge_id="bx", mode="live", venue="binance", perp_venue="best")

    async def go():
        async with bybit_env() as y, okx_env() as o:
            y.sim.set_price("BTCUSDT", 40_000.0)
            o.sim.set_price("BTC-USDT-SWAP", 40_000.0)
            y.sim.order_books = {("linear", "BTCUSDT"): {"bids": [(40_000.0, 0.01), (39_900.0, 5.0)],
                                                         "asks": [(40_010.0, 5.0)]}}
            o.sim.order_books = {"BTC-USDT-SWAP": {"bids": [(39_980.0, 500.0)], "asks": [(40_020.0, 500.0)]}}
            return await choose_perp_venue(spec, params, {"bybit": y.adapter, "okx": o.adapter})

    chosen, choice = asyncio.run(go())
    rec = chosen.perp_venue_choice
    assert chosen.perp_venue == "okx" and choice.venue == "okx" and rec["venue"] == "okx"
    by = {s["venue"]: s for s in rec["ranking"]}
    # 0.025 BTC = 1000 / 40,000 (bybit, the set's perp_venue, priced it). bybit: 0.01 @ 40,000 + 0.015 @ 39,900 =
    # 998.5; okx: 2.5 contracts x 0.01 @ 39,980 = 999.5; less each one's taker fee (ccxt: bybit linear 0.06 %,
    # okx swap 0.05 %)
    assert rec["amount"] == pytest.approx(0.025, rel=1e-12)
    assert by["bybit"]["avg_price"] == pytest.approx(998.5 / 0.025, rel=1e-12)
    assert by["bybit"]["net_quote"] == pytest.approx(998.5 * (1 - 0.0006), rel=1e-12)
    assert by["okx"]["net_quote"] == pytest.approx(999.5 * (1 - 0.0005), rel=1e-12)
    assert rec["taker_fee"] == 0.0005
