"""A Binance USD-M quarterly (delivery) contract through real ccxt against the Binance simulator
(tests/support/binance_sim.py ``list_quarterly``: exchangeInfo ``contractType`` CURRENT_QUARTER, symbol
``BTCUSDT_YYMMDD``, ``deliveryDate``): the live adapter lists it as a dated future (``VenueConfig.dated_futures``),
trades it, reads its position, its own executions with the venue's commission, and no funding on it.

Hand figures: spot 30,000, quarterly 30,300 (a 1 % basis); a 0.02 BTC short at 30,300 pays 0.02 x 30,300 x
0.05 % = 0.303 USDT; bought back at 30,000 it realises 0.02 x (30,300 - 30,000) = 6.0 USDT and pays 0.30 USDT.
"""

from __future__ import annotations

import asyncio
import time

import pandas as pd
import pytest

from hedge_core.exchange.routed import is_perp_symbol
from hedge_core.types import MarketKind, OrderRequest, OrderStatus, OrderType, Side, client_order_id
from tests.support.binance_sim import BinanceSim
from tests.support.live_env import TEST_KEY, TEST_SECRET, live_env

PERP = "BTC/USDT:USDT"


def quarterly_sim(days: int = 90) -> tuple[BinanceSim, str, str, pd.Timestamp]:
    """A Binance simulator with BTC at 30,000 and a CURRENT_QUARTER contract ``days`` out (08:00 UTC) at 30,300.
    Returns (sim, venue symbol id, ccxt unified symbol, expiry)."""
    sim = BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET, spot_balances={"USDT": 10_000.0})
    sim.set_price("BTCUSDT", 30_000.0)
    delivery = (sim.now_ms() // 86_400_000 + days) * 86_400_000 + 8 * 3_600_000
    sid = sim.list_quarterly("BTC", delivery, 30_300.0)
    yymmdd = time.strftime("%y%m%d", time.gmtime(delivery / 1000))
    return sim, sid, f"{PERP}-{yymmdd}", pd.Timestamp(delivery, unit="ms", tz="UTC")


def _req(symbol: str, side: Side, qty: float, *, reduce_only: bool = False, seq: int = 1) -> OrderRequest:
    return OrderRequest(symbol=symbol, side=side, qty=qty, client_order_id=client_order_id("q1", "roll", seq),
                        reduce_only=reduce_only)


def test_the_quarterly_is_listed_as_binance_lists_it():
    sim, sid, _sym, _exp = quarterly_sim()
    assert sid.startswith("BTCUSDT_") and len(sid) == len("BTCUSDT_261225")
    fapi = {r["symbol"]: r for r in sim._fapi_info({})["symbols"]}
    assert fapi[sid]["contractType"] == "CURRENT_QUARTER" and fapi[sid]["pair"] == "BTCUSDT"
    assert fapi["BTCUSDT"]["contractType"] == "PERPETUAL" and fapi["BTCUSDT"]["deliveryDate"] == 4133404800000
    assert sid not in {r["symbol"] for r in sim._spot_info({})["symbols"]}  # USD-M only
    prem = sim._premium({"symbol": sid})
    assert prem["lastFundingRate"] == "" and prem["nextFundingTime"] == 0  # no funding on a delivery contract
    with pytest.raises(ValueError, match="delivery contract"):
        sim.settle_funding(sid, 0.0001)
    with pytest.raises(ValueError, match="CURRENT_QUARTER or NEXT_QUARTER"):
        sim.list_quarterly("BTC", sim.now_ms(), 1.0, contract_type="PERPETUAL")


def test_the_adapter_lists_trades_and_reads_a_binance_quarterly():
    sim, sid, sym, expiry = quarterly_sim()

    async def run() -> None:
        async with live_env(sim=sim) as env:
            a = env.adapter
            markets = await a.load_markets()
            inst = markets[sym]
            assert inst.kind is MarketKind.PERP and inst.venue == "binance" and is_perp_symbol(sym)
            assert (inst.lot_size, inst.min_qty, inst.contract_size) == (0.001, 0.001, 1.0)
            assert PERP in markets and "BTC/USDT" in markets
            assert await a.dated_futures("BTC") == [(sym, expiry)]
            assert await a.dated_futures("ETH") == []
            assert (await a.fetch_ticker(sym)).last == pytest.approx(30_300.0)
            # open the short on the quarterly (a /fapi order on BTCUSDT_YYMMDD)
            o = await a.create_order(_req(sym, Side.SELL, 0.02))
            assert o.status is OrderStatus.CLOSED and o.filled == pytest.approx(0.02)
            sent = [p for m, path, p in sim.requests if m == "POST" and path == "/fapi/v1/order"]
            assert sent[-1]["symbol"] == sid
            assert sim.position(sid) == pytest.approx(-0.02) and sim.position("BTCUSDT") == 0.0
            pos = {p.symbol: p for p in await a.fetch_positions()}
            assert set(pos) == {sym} and pos[sym].qty == pytest.approx(-0.02)
            assert pos[sym].entry_price == pytest.approx(30_300.0)
            # the perpetual settles funding: nothing for the quarterly's position (it pays none)
            sim.settle_funding("BTCUSDT", 0.0005)
            assert await a.fetch_funding_payments(sym) == []
            assert not [r for r in sim.income if r["incomeType"] == "FUNDING_FEE"]
            # bought back at 30,000, reduce-only
            sim.set_price(sid, 30_000.0)
            c = await a.create_order(_req(sym, Side.BUY, 0.02, reduce_only=True, seq=2))
            assert c.status is OrderStatus.CLOSED and sim.position(sid) == 0.0
            fills = await a.fetch_my_trades(sym)
            assert [(f.side, f.qty, f.price) for f in fills] == [(Side.SELL, 0.02, 30_300.0), (Side.BUY, 0.02, 30_000.0)]
            assert [f.fee for f in fills] == [pytest.approx(0.303), pytest.approx(0.30)]
            assert {f.symbol for f in fills} == {sym} and await a.fetch_my_trades(PERP) == []
            rows = {r["incomeType"]: float(r["income"]) for r in sim.income if r["symbol"] == sid
                    and r["incomeType"] == "REALIZED_PNL"}
            assert rows["REALIZED_PNL"] == pytest.approx(6.0)
            assert sim.wallet == pytest.approx(10_000.0 + 6.0 - 0.303 - 0.30)
            # a resting limit on the quarterly is among the open orders, and is canceled there
            r = await a.create_order(OrderRequest(symbol=sym, side=Side.SELL, qty=0.01, price=31_000.0, type=OrderType.LIMIT,
                                                  client_order_id=client_order_id("q1", "roll", 3)))
            assert r.status is OrderStatus.OPEN
            assert [x.client_order_id for x in await a.fetch_open_orders(None)] == [r.client_order_id]
            assert (await a.cancel_order(sym, client_order_id=r.client_order_id)).status is OrderStatus.CANCELED

    asyncio.run(run())


def test_a_spot_request_for_the_quarterly_is_an_invalid_symbol():
    """The quarterly is not a spot market: the spot API answers -1121 "Invalid symbol." for it."""
    from tests.support.binance_sim_types import SimError

    sim, sid, _sym, _exp = quarterly_sim()
    with pytest.raises(SimError) as e:
        sim._ticker({"symbol": sid}, spot=True)
    assert e.value.code == -1121
    assert sid in {t["symbol"] for t in sim._ticker({}, spot=False)}
    assert sid not in {t["symbol"] for t in sim._ticker({}, spot=True)}
