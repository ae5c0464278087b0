"""An OKX quarterly delivered and no longer listed (docs/calendar-roll.md "Delivery at expiry"): OKX's "Get
instruments" (https://www.okx.com/docs-v5/en/#public-data-rest-api-get-instruments) answers instruments whose
``state`` is live, suspend, preopen or test, so once delivered a future is gone from the markets ccxt reloads (a
restart, a reload). Its delivery bill stays in "Get bills details" under its instId ``BTC-USDT-YYMMDD`` (OKX's
FUTURES naming). Before, ``fetch_deliveries`` of an unlisted OKX future answered ``[]``: the delivery was never
booked, the leg stayed on the dead contract and the other leg was left unhedged. Through the real ccxt okx client
against the OKX simulator; hand figures as tests/test_okx_delivery.py (1.99 contracts of 0.01 BTC short at 30,300,
delivered at 30,100: realised 3.98 USDT, fee 0.119798 USDT)."""

from __future__ import annotations

import asyncio
import time

import pandas as pd
import pytest

from hedge_core.engine import MarketUpdate, State
from hedge_core.engine.roll_step import RollRequest
from hedge_core.types import Side
from tests.support.live_env import okx_carry_entered, okx_env
from tests.support.roll_runner import delivery_ms

PERP = "BTC/USDT:USDT"
pytestmark = pytest.mark.integration  # the OKX simulator on 127.0.0.1


def test_an_okx_quarterly_no_longer_listed_is_read_by_its_inst_id_and_booked():
    async def go():
        async with okx_env() as env:
            a, sim = env.adapter, env.sim
            expiry = delivery_ms(sim.now_ms(), 90)
            iid = f"BTC-USDT-{time.strftime('%y%m%d', time.gmtime(expiry / 1000))}"  # OKX's FUTURES instId
            row = {**sim.instrument_rows["FUTURES"][0], "instId": iid, "expTime": str(expiry)}
            sim.instrument_rows["FUTURES"] = [row]
            sim.register(row)
            for i, px in (("BTC-USDT", 30_000.0), ("BTC-USDT-SWAP", 30_000.0), (iid, 30_300.0)):
                sim.set_price(i, px)
            drv, m, fut, _expiry, now = await okx_carry_entered(a, sim, "du", 600.0)
            ctx = await drv.feed(RollRequest(now, m[fut], 30_300.0, "basis"))
            assert ctx.perp.symbol == fut and sim.positions[iid][0] == pytest.approx(-1.99)
            realized0, fees0 = ctx.perp.realized, ctx.perp.fees
            assert sim.deliver(iid, [30_050.0, 30_150.0], fee_rate=0.0002) == pytest.approx(30_100.0)
            # OKX lists it no more; the markets are reloaded (a restart)
            sim.instrument_rows["FUTURES"] = []
            assert fut not in await a.load_markets()
            [d] = await a.fetch_deliveries(fut)
            [bill] = [b for b in sim.bills if b["type"] == "3"]
            assert (d.trade_id, d.symbol, d.side, d.price, d.fee) == (f"delivery:{bill['billId']}", fut, Side.BUY,
                                                                      pytest.approx(30_100.0), pytest.approx(0.119798))
            assert d.qty == 0.0  # the contract size is not listed any more: the whole position (the driver sizes it)
            later = pd.Timestamp(sim.now_ms(), unit="ms", tz="UTC")
            ctx = await drv.book_external(later)  # booked once, the leg on the swap, hedged there
            assert ctx.perp.symbol == PERP and ctx.roll_leg is None and ctx.state is State.MONITORING_POSITIONS
            assert ctx.perp.realized - realized0 == pytest.approx(3.98)
            assert ctx.perp.fees - fees0 == pytest.approx(0.119798 + 0.0199 * 30_000.0 * sim.taker)
            assert sim.positions["BTC-USDT-SWAP"][0] == pytest.approx(-1.99) and ctx.perp.qty == pytest.approx(-0.0199)
            ctx = await drv.feed(MarketUpdate(later, 30_000.0, 30_000.0, funding_rate=0.001))
            assert ctx.perp.realized - realized0 == pytest.approx(3.98)  # not booked twice
    asyncio.run(go())
