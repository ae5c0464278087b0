"""A Bybit USDT-settled linear dated future through real ccxt against the Bybit v5 simulator
(tests/support/bybit_sim.py ``list_future``: "Get Instruments Info" category linear, ``contractType`` LinearFutures,
symbol ``BTCUSDT-DDMMMYY``, ``deliveryTime``): the live adapter lists it as a dated future
(``VenueConfig.dated_futures``), trades it under category linear, reads its position and its own executions with the
venue's ``execFee``, and never reads funding for it.

Hand figures (taker 0.055 %, the simulator's linear taker fee): perpetual 40,000, future 42,000 (5 % basis); a
0.02 BTC short at 42,000 pays 0.02 x 42,000 x 0.00055 = 0.462 USDT; bought back at 41,000 it realises
0.02 x (42,000 - 41,000) = 20.0 USDT and pays 0.02 x 41,000 x 0.00055 = 0.451 USDT.
"""

from __future__ import annotations

import asyncio
import time

import pandas as pd
import pytest

from hedge_core import errors as he
from hedge_core.exchange.routed import is_perp_symbol
from hedge_core.types import MarketKind, OrderRequest, OrderStatus, OrderType, Side, client_order_id
from tests.support.bybit_sim import BybitSim
from tests.support.live_env import TEST_KEY, TEST_SECRET, bybit_env

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # a local venue simulator
PERP = "BTC/USDT:USDT"


def future_sim(days: int = 90, price: float = 42_000.0) -> tuple[BybitSim, str, str, pd.Timestamp]:
    """A Bybit simulator (10,000 USDT unified wallet, BTCUSDT at 40,000) listing a USDT future ``days`` out
    (08:00 UTC) at ``price``. Returns (sim, venue symbol id, ccxt unified symbol, expiry)."""
    sim = BybitSim(api_key=TEST_KEY, secret=TEST_SECRET, coins={"USDT": 10_000.0})
    sim.set_price("BTCUSDT", 40_000.0)
    delivery = (sim.now_ms() // 86_400_000 + days) * 86_400_000 + 8 * 3_600_000
    sid = sim.list_future("BTC", delivery, price)
    yymmdd = time.strftime("%y%m%d", time.gmtime(delivery / 1000))
    return sim, sid, f"{PERP}-{yymmdd}", pd.Timestamp(delivery, unit="ms", tz="UTC")


def _req(symbol: str, side: Side, qty: float, *, reduce_only: bool = False, seq: int = 1) -> OrderRequest:
    return OrderRequest(symbol=symbol, side=side, qty=qty, client_order_id=client_order_id("bf", "roll", seq),
                        reduce_only=reduce_only)


def test_the_future_is_listed_as_bybit_lists_it():
    sim, sid, _sym, expiry = future_sim()
    assert sid == "BTCUSDT-" + time.strftime("%d%b%y", time.gmtime(expiry.timestamp())).upper()  # BTCUSDT-27MAR26
    rows = {r["symbol"]: r for r in sim._instruments({"category": "linear"})["list"]}
    assert rows[sid]["contractType"] == "LinearFutures" and rows["BTCUSDT"]["contractType"] == "LinearPerpetual"
    assert rows[sid]["deliveryTime"] == str(int(expiry.timestamp() * 1000)) and rows["BTCUSDT"]["deliveryTime"] == "0"
    assert rows[sid]["settleCoin"] == "USDT" and rows[sid]["lotSizeFilter"] == rows["BTCUSDT"]["lotSizeFilter"]
    assert rows[sid]["priceFilter"] == rows["BTCUSDT"]["priceFilter"]
    assert sid not in {r["symbol"] for r in sim._instruments({"category": "spot"})["list"]}  # not a spot market
    assert sim._instruments({"category": "linear", "status": "PreLaunch"})["list"] == []
    [t] = sim._tickers({"category": "linear", "symbol": sid})["list"]
    assert t["fundingRate"] == "" and t["nextFundingTime"] == "0" and t["deliveryTime"] == rows[sid]["deliveryTime"]
    assert float(t["basis"]) == pytest.approx(2_000.0)
    with pytest.raises(ValueError, match="dated future"):
        sim.settle_funding(sid, 0.0001)


def test_the_adapter_lists_trades_and_reads_a_bybit_future():
    sim, sid, sym, expiry = future_sim()

    async def run() -> None:
        async with bybit_env(sim=sim) as env:
            a = env.adapter
            markets = await a.load_markets()
            inst = markets[sym]
            assert inst.kind is MarketKind.PERP and inst.venue == "bybit" and is_perp_symbol(sym)
            assert (inst.lot_size, inst.min_qty, inst.contract_size, inst.tick_size) == (0.001, 0.001, 1.0, 0.1)
            assert PERP in markets and "BTC/USDT" in markets
            assert await a.dated_futures("BTC") == [(sym, expiry)]
            assert await a.dated_futures("ETH") == []
            assert (await a.fetch_ticker(sym)).last == pytest.approx(42_000.0)
            # open the short on the future: a category-linear order on BTCUSDT-DDMMMYY
            o = await a.create_order(_req(sym, Side.SELL, 0.02))
            assert o.status is OrderStatus.CLOSED and o.filled == pytest.approx(0.02)
            sent = [p for m, path, p in sim.requests if m == "POST" and path == "/v5/order/create"]
            assert (sent[-1]["category"], sent[-1]["symbol"]) == ("linear", sid)
            assert sim.positions[sid][0] == pytest.approx(-0.02) and "BTCUSDT" not in sim.positions
            pos = {p.symbol: p for p in await a.fetch_positions()}
            assert set(pos) == {sym} and pos[sym].qty == pytest.approx(-0.02)
            assert pos[sym].entry_price == pytest.approx(42_000.0)
            # the perpetual settles funding; the future's position pays none, and nothing asks the venue for it
            sim.settle_funding("BTCUSDT", 0.0005)
            n = len(sim.requests)
            assert await a.fetch_funding_payments(sym) == []
            for read in (a.fetch_funding_rate(sym), a.fetch_funding_rate_history(sym)):
                with pytest.raises(he.InvalidInput, match="dated future pays no funding"):
                    await read
            assert len(sim.requests) == n  # refused before any request
            assert not [r for r in sim.executions if r["execType"] == "Funding"]
            assert (await a.fetch_funding_rate(PERP)).rate == pytest.approx(0.0001)  # the perpetual's is read
            # bought back at 41,000, reduce-only
            sim.set_price(sid, 41_000.0)
            c = await a.create_order(_req(sym, Side.BUY, 0.02, reduce_only=True, seq=2))
            assert c.status is OrderStatus.CLOSED and sim.positions[sid][0] == 0.0
            fills = await a.fetch_my_trades(sym)
            assert [(f.side, f.qty, f.price) for f in fills] == [(Side.SELL, 0.02, 42_000.0), (Side.BUY, 0.02, 41_000.0)]
            assert [f.fee for f in fills] == [pytest.approx(0.462), pytest.approx(0.451)]
            assert {f.symbol for f in fills} == {sym} and await a.fetch_my_trades(PERP) == []
            assert sim.coins["USDT"] == pytest.approx(10_000.0 + 20.0 - 0.462 - 0.451)
            # a resting limit on the future is among the open orders, found by client id, and canceled there
            r = await a.create_order(OrderRequest(symbol=sym, side=Side.SELL, qty=0.01, price=43_000.0,
                                                  type=OrderType.LIMIT, client_order_id=client_order_id("bf", "roll", 3)))
            assert r.status is OrderStatus.OPEN
            assert [x.client_order_id for x in await a.fetch_open_orders(sym)] == [r.client_order_id]
            assert (await a.fetch_order(sym, client_order_id=r.client_order_id)).qty == pytest.approx(0.01)
            assert (await a.cancel_order(sym, client_order_id=r.client_order_id)).status is OrderStatus.CANCELED

    asyncio.run(run())
