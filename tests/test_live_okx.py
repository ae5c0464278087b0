"""Third venue: the same adapter configured for OKX (v5, unified account, net mode), through real ccxt,
against the local OKX simulator (tests/support/okx_sim.py). Covers markets (contract sizes), ticker,
funding rate, orders on both legs (perp ``sz`` in contracts; the client id in OKX's alphabet), cancel by
client id, positions, the unified balance, own fills with OKX's NEGATIVE fee sign turned into a charge,
funding payments from the bills (type 8) in the adapter's sign convention and their way into the engine
(FundingSettled) and the driver's ledger, position tiers as brackets, leverage and the position-mode switch,
retries, typed errors (OKX's documented codes) and the timeout-without-duplicate path.
Not covered for OKX: hedge-mode ORDERS (refused), isolated margin. The cancel-all-after timer:
tests/test_live_okx_countdown.py."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core import errors as he
from hedge_core.exchange.base import RetryPolicy
from hedge_core.types import (
    MarketKind,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionMode,
    PositionSide,
    Side,
    client_order_id,
)
from tests.support.live_env import TEST_KEY, TEST_PASSPHRASE, TEST_SECRET, okx_env
from tests.support.okx_sim import OkxSim

SPOT, PERP, QUARTERLY = "BTC/USDT", "BTC/USDT:USDT", "BTC/USDT:USDT-261225"


def cid(n: int) -> str:
    return client_order_id("okx", "x", n)


def _posts(sim: OkxSim) -> list[dict]:
    return [p for m, path, p in sim.requests if (m, path) == ("POST", "/api/v5/trade/order")]


def test_okx_markets_contract_sizes_ticker_and_funding():
    async def go():
        async with okx_env() as env:
            m = await env.adapter.load_markets()
            assert (m[SPOT].tick_size, m[SPOT].lot_size, m[SPOT].min_qty) == (0.1, 1e-08, 1e-05)
            # SWAP: ctVal 0.01 BTC per contract, lotSz = minSz = 0.01 contracts -> 0.0001 BTC
            assert m[PERP].contract_size == 0.01 and m[PERP].kind is MarketKind.PERP
            assert m[PERP].lot_size == pytest.approx(0.0001) and m[PERP].min_qty == pytest.approx(0.0001)
            assert m[PERP].max_leverage == 100.0
            assert m[QUARTERLY].contract_size == 0.01  # the dated future is loaded too (calendar roll)
            env.sim.set_price("BTC-USDT-SWAP", 25_000.0, mark=25_010.0)
            before = env.sim.now_ms()
            t = await env.adapter.fetch_ticker(PERP)
            assert t.last == 25_000.0 and before <= int(t.ts.value // 1_000_000) <= env.sim.now_ms()
            fr = await env.adapter.fetch_funding_rate(PERP)
            assert fr.rate == pytest.approx(0.0001) and fr.interval_hours == 8.0
    asyncio.run(go())


def test_okx_order_lifecycle_both_legs_contracts_and_client_ids():
    async def go():
        async with okx_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTC-USDT", 30_000.0)
            sim.set_price("BTC-USDT-SWAP", 30_000.0)
            spot = await a.create_order(OrderRequest(SPOT, Side.BUY, 0.01, cid(1)))
            assert spot.status is OrderStatus.CLOSED and spot.filled == pytest.approx(0.01)
            assert spot.client_order_id == cid(1)  # the '-' OKX refuses is put back
            short = await a.create_order(OrderRequest(PERP, Side.SELL, 0.02, cid(2)))
            assert short.status is OrderStatus.CLOSED and short.filled == pytest.approx(0.02)
            assert short.avg_price == pytest.approx(30_000.0)
            # what went out: 0.01 BTC spot in base, 0.02 BTC perp = 2 contracts of 0.01; clOrdId alphanumeric
            sent = _posts(sim)
            assert (sent[0]["sz"], sent[0]["tdMode"], sent[1]["sz"], sent[1]["tdMode"]) == ("0.01", "cash", "2", "cross")
            assert sent[1]["clOrdId"] == cid(2).replace("-", "") and sent[1]["clOrdId"].isalnum()
            lim = await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, cid(3), type=OrderType.LIMIT,
                                                    price=31_000.0))
            assert lim.status is OrderStatus.OPEN and lim.price == 31_000.0 and lim.qty == pytest.approx(0.01)
            assert (await a.fetch_order(PERP, client_order_id=cid(3))).id == lim.id
            assert [o.client_order_id for o in await a.fetch_open_orders(PERP)] == [cid(3)]
            c = await a.cancel_order(PERP, client_order_id=cid(3))
            assert c.status is OrderStatus.CANCELED and c.id == lim.id
            [p] = await a.fetch_positions()
            assert (p.symbol, p.qty, p.entry_price, p.leverage) == (PERP, pytest.approx(-0.02), 30_000.0, 10.0)
            assert sim.positions["BTC-USDT-SWAP"][0] == -2  # the venue holds contracts
            close = await a.create_order(OrderRequest(PERP, Side.BUY, 0.02, cid(4), reduce_only=True))
            assert close.status is OrderStatus.CLOSED
            assert await a.fetch_positions() == []
            bal = await a.fetch_balance("spot")  # unified account: one wallet
            # OKX takes a spot buy's fee in the coin received (BTC); the perp fees in USDT
            assert bal["BTC"].free == pytest.approx(0.01 * (1 - sim.spot_fee))
            perp_fees = 2 * 0.02 * 30_000 * sim.taker
            assert bal["USDT"].total == pytest.approx(10_000 - 300 - perp_fees)
            with pytest.raises(he.OrderNotFound):
                await a.cancel_order(PERP, client_order_id="never-sent")
            with pytest.raises(he.OrderNotFound):
                await a.fetch_order(SPOT, client_order_id="neversent")
    asyncio.run(go())


def test_okx_fills_turn_the_negative_fee_into_a_charge():
    """"Get transaction details": ``fee`` < 0 is a charge (> 0 a rebate); the adapter's Fill.fee is what was
    paid (> 0), in the currency OKX took it in."""
    async def go():
        async with okx_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTC-USDT", 30_000.0)
            sim.set_price("BTC-USDT-SWAP", 30_000.0)
            s = await a.create_order(OrderRequest(SPOT, Side.BUY, 0.01, cid(10)))
            o = await a.create_order(OrderRequest(PERP, Side.SELL, 0.02, cid(11)))
            lim = await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, cid(12), type=OrderType.LIMIT, price=30_500.0))
            sim.set_price("BTC-USDT-SWAP", 30_600.0)  # the resting order fills as maker
            venue_fees = {f["tradeId"]: float(f["fee"]) for f in sim.fills}
            assert all(v < 0 for v in venue_fees.values())  # OKX's sign
            perp = await a.fetch_my_trades(PERP)
            by_order = {f.order_id: f for f in perp}
            assert by_order[o.id].fee == pytest.approx(0.02 * 30_000 * sim.taker)  # 0.30 USDT
            assert by_order[o.id].qty == pytest.approx(0.02) and by_order[o.id].client_order_id == cid(11)
            assert by_order[lim.id].fee == pytest.approx(0.01 * 30_500 * sim.maker)  # 0.061 USDT
            assert by_order[lim.id].liquidity.value == "maker"
            [sf] = await a.fetch_my_trades(SPOT)
            assert (sf.order_id, sf.fee, sf.fee_currency) == (s.id, pytest.approx(0.01 * sim.spot_fee), "BTC")
            assert sum(f.fee for f in perp) == pytest.approx(-sum(v for k, v in venue_fees.items()
                                                                  if k != sim.fills[0]["tradeId"]))
    asyncio.run(go())


@pytest.mark.parametrize("side, rate", [(Side.SELL, 0.0001), (Side.BUY, 0.0001), (Side.SELL, -0.0002)])
def test_okx_funding_payments_from_the_bills_are_signed_received_positive(side, rate):
    """OKX books funding in its bills (type 8; ``balChg`` + received, subType 174 income / 173 expense); the
    adapter returns + received / - paid, the rate matched from the public funding history."""
    async def go():
        async with okx_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTC-USDT-SWAP", 30_000.0, mark=30_010.0)
            await a.create_order(OrderRequest(PERP, side, 0.02, cid(40)))
            before = sim.cash["USDT"]
            t0 = sim.now_ms()
            sim.settle_funding("BTC-USDT-SWAP", rate, ts_ms=t0)
            [pay] = await a.fetch_funding_payments(PERP)
            signed_qty = 0.02 if side is Side.BUY else -0.02
            want = -signed_qty * 30_010.0 * rate  # hand: 0.02 x 30,010 x 0.0001 = 0.06002 USDT
            assert pay.amount == pytest.approx(want)
            assert sim.cash["USDT"] - before == pytest.approx(want)  # the venue's own wallet agrees
            assert sim.bills[-1]["type"] == "8" and sim.bills[-1]["subType"] == ("174" if want > 0 else "173")
            assert pay.rate == pytest.approx(rate) and pay.ts == pd.Timestamp(t0, unit="ms", tz="UTC")
            [h] = await a.fetch_funding_rate_history(PERP, since=pd.Timestamp(t0 - 1000, unit="ms", tz="UTC"))
            assert h.rate == pytest.approx(rate)
    asyncio.run(go())


def test_okx_funding_and_fills_reach_the_engine_ledger():
    """The driver books the perp fills with OKX's fee (turned positive) and the funding settlement with the
    venue's own amount (engine.replay.funding_settled reads the bills)."""
    from hedge_core.engine import MarketUpdate, State, new_hedge
    from hedge_core.engine.driver import HedgeDriver
    from hedge_core.engine.replay import funding_settled
    from hedge_core.params.models import CarryParams
    from hedge_core.types import FundingEvent

    async def go():
        async with okx_env() as env:
            sim = env.sim
            sim.set_price("BTC-USDT", 30_000.0)
            sim.set_price("BTC-USDT-SWAP", 30_000.0)
            m = await env.adapter.load_markets()
            now = pd.Timestamp.now(tz="UTC")
            drv = HedgeDriver(new_hedge("ok", "carry", m[SPOT], m[PERP], now),
                              CarryParams(notional=3_000.0, min_net_carry=-1.0), {"okx": env.adapter})
            await drv.feed(MarketUpdate(now, 30_000.0, 30_000.0, funding_rate=0.001))
            assert drv.ctx.state is State.MONITORING_POSITIONS
            swap = [f for f in sim.fills if f["instType"] == "SWAP"]
            assert drv.ctx.perp.fees > 0
            assert drv.ctx.perp.fees == pytest.approx(-sum(float(f["fee"]) for f in swap), abs=1e-8)
            pos = sim.positions["BTC-USDT-SWAP"][0]
            assert pos < 0 and drv.ctx.perp.qty == pytest.approx(pos * 0.01, abs=1e-12)  # contracts x ctVal
            spot = [f for f in sim.fills if f["instType"] == "SPOT"]
            assert spot and all(f["feeCcy"] == "BTC" for f in spot)
            assert drv.ctx.spot.qty == pytest.approx(sim.cash["BTC"], abs=1e-12)
            t0 = sim.now_ms()
            flow = sim.settle_funding("BTC-USDT-SWAP", 0.0003, ts_ms=t0)
            ev = FundingEvent(pd.Timestamp(t0, unit="ms", tz="UTC"), "okx", PERP, 0.0003)
            settled = await funding_settled(env.adapter, ev, 30_000.0)
            assert flow > 0 and settled.amount == pytest.approx(flow)  # a short receives a positive rate
            assert settled.amount == pytest.approx(-pos * 0.01 * 30_000.0 * 0.0003)
    asyncio.run(go())


def test_okx_position_mode_switch_and_leverage():
    async def go():
        async with okx_env() as env:
            a, sim = env.adapter, env.sim
            await a.set_leverage(PERP, 5)
            assert sim.leverage["BTC-USDT-SWAP"] == 5
            await a.set_leverage(PERP, 5)  # the same value again: OKX answers success
            with pytest.raises(he.InvalidInput, match="position_side"):  # refused before any request
                await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, cid(20), position_side=PositionSide.SHORT))
            await a.set_position_mode(PositionMode.ONE_WAY)  # already net_mode: success
            await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, cid(21)))
            with pytest.raises(he.ExchangeError, match="59000"):  # with a position: refused by the venue
                await a.set_position_mode(PositionMode.HEDGE)
            assert sim.pos_mode == "net_mode"
    asyncio.run(go())


@pytest.mark.parametrize("code, msg, cls", [
    ("51008", "Order failed. Insufficient USDT margin in account", he.InsufficientFunds),
    ("50113", "Invalid Sign", he.AuthenticationError),
    ("50111", "Invalid OK-ACCESS-KEY", he.AuthenticationError),
    ("50011", "Too Many Requests", he.RateLimited),
    ("51603", "Order does not exist", he.OrderNotFound),
    ("51000", "Parameter sz error", he.OperationalError),
])
def test_okx_errors_are_typed(code, msg, cls):
    async def go():
        async with okx_env(retry=RetryPolicy(max_attempts=1)) as env:
            await env.adapter.load_markets()
            env.sim.inject("/api/v5/trade/order", count=50, code=code, msg=msg)
            with pytest.raises(cls):
                await env.adapter.create_order(OrderRequest(PERP, Side.BUY, 0.01, cid(9)))
    asyncio.run(go())


def test_okx_order_errors_answer_in_scode_and_are_typed():
    """A refused order answers ``code`` "1" with the reason in ``data[0].sCode`` ("Place order"): real
    refusals of the simulator, not injected ones."""
    async def go():
        async with okx_env(retry=RetryPolicy(max_attempts=1)) as env:
            a = env.adapter
            env.sim.set_price("BTC-USDT-SWAP", 30_000.0)
            with pytest.raises(he.InsufficientFunds):  # 51008: 10 BTC at 10x needs 30,000 USDT of margin
                await a.create_order(OrderRequest(PERP, Side.SELL, 10.0, cid(60)))
            await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, cid(61)))
            with pytest.raises(he.DuplicateOrder):  # 51016: the same clOrdId again (never a second order)
                await a._once("create_order", lambda: a.exchange.create_order(
                    PERP, "market", "sell", 1, None, {"clientOrderId": cid(61).replace("-", "")}))
            assert env.sim.order_count(cid(61).replace("-", "")) == 1
            assert ("POST /api/v5/trade/order", 200, "51008") in env.sim.answers
            assert ("POST /api/v5/trade/order", 200, "51016") in env.sim.answers
    asyncio.run(go())


def test_okx_wrong_passphrase_is_an_authentication_error():
    async def go():
        sim = OkxSim(api_key=TEST_KEY, secret=TEST_SECRET, passphrase=TEST_PASSPHRASE + "x")
        async with okx_env(sim=sim, retry=RetryPolicy(max_attempts=1)) as env:
            with pytest.raises(he.AuthenticationError):
                await env.adapter.fetch_balance("spot")
            assert env.sim.answers[-1][2] == "50105"
    asyncio.run(go())


def test_okx_rate_limit_then_success_and_timestamp_expired_resyncs():
    async def go():
        async with okx_env(retry=RetryPolicy(max_attempts=4, seed=2)) as env:
            await env.adapter.load_markets()
            env.sim.inject("account/balance", count=2, code="50011")
            assert (await env.adapter.fetch_balance("perp"))["USDT"].total == pytest.approx(10_000)
            assert env.adapter.retries == 2
            assert env.sim.answers.count(("GET /api/v5/account/balance", 429, "50011")) == 2
            # 50102 "Timestamp request expired" (ccxt InvalidNonce): the adapter resyncs the clock once
            env.sim.inject("account/balance", count=1, code="50102", msg="Timestamp request expired", status=401)
            assert (await env.adapter.fetch_balance("perp"))["USDT"].total == pytest.approx(10_000)
            assert ("GET /api/v5/account/balance", 401, "50102") in env.sim.answers
    asyncio.run(go())


def test_okx_timeout_answer_lost_no_duplicate():
    async def go():
        async with okx_env(timeout_ms=300, retry=RetryPolicy(max_attempts=3, seed=2)) as env:
            a, sim = env.adapter, env.sim
            await a.load_markets()
            sim.inject("POST /api/v5/trade/order", count=1, hang_after=1.0)
            o = await a.create_order(OrderRequest(PERP, Side.BUY, 0.01, cid(7)))
            assert o.status is OrderStatus.CLOSED and o.client_order_id == cid(7)
            assert sim.order_count(cid(7).replace("-", "")) == 1 and len(_posts(sim)) == 1
    asyncio.run(go())


# OKX's published perpetual tiers for ADAUSDT (announcement "OKX Perpetual Swap Maintenance Margin to be
# adjusted", 2022-06-09, http://www.okxwebsite.com/en/latest-announcements/item/511.html): contracts
# 0-500 1.00 % 75x, 501-1,000 1.50 % 50x, 1,001-6,000 2.00 % 20x, 6,001-12,000 2.50 % 18.18x; ADA-USDT-SWAP
# ctVal 100 ADA per contract
_ADA_TIERS = [
    {"tier": "1", "minSz": "0", "maxSz": "500", "mmr": "0.01", "imr": "0.013", "maxLever": "75"},
    {"tier": "2", "minSz": "501", "maxSz": "1000", "mmr": "0.015", "imr": "0.02", "maxLever": "50"},
    {"tier": "3", "minSz": "1001", "maxSz": "6000", "mmr": "0.02", "imr": "0.05", "maxLever": "20"},
    {"tier": "4", "minSz": "6001", "maxSz": "12000", "mmr": "0.025", "imr": "0.055", "maxLever": "18.18"},
]


def _ada_sim() -> OkxSim:
    sim = OkxSim(api_key=TEST_KEY, secret=TEST_SECRET, passphrase=TEST_PASSPHRASE)
    swap = sim.instrument_rows["SWAP"][0]
    ada = {**swap, "instId": "ADA-USDT-SWAP", "uly": "ADA-USDT", "instFamily": "ADA-USDT", "ctVal": "100",
           "ctValCcy": "ADA", "lotSz": "1", "minSz": "1", "tickSz": "0.0001", "lever": "75"}
    sim.instrument_rows["SWAP"].append(ada)
    sim.register(ada, price=0.5)
    sim.tiers["ADA-USDT"] = [dict(t) for t in _ADA_TIERS]
    return sim


def test_okx_position_tiers_in_contracts_map_to_notional_brackets():
    """Hand-checked: at mark 0.5 USDT a contract is 100 ADA = 50 USDT, so the caps are 500 x 50 = 25,000,
    1,000 x 50 = 50,000, 6,000 x 50 = 300,000 and 12,000 x 50 = 600,000 USDT; each tier starts where the
    previous ends (OKX's next tier starts one contract above). OKX charges the WHOLE position its tier's rate
    ("Tiered maintenance margin ratio", https://www.okx.com/help/tier): every cum is 0. 800 contracts (40,000
    USDT) -> tier 2: 40,000 x 1.5 % = 600 USDT (a continuous Binance-style table would say 475); 400 contracts
    (20,000 USDT) -> tier 1: 200 USDT; 7,000 contracts (350,000 USDT) -> tier 4: 350,000 x 2.5 % = 8,750."""
    from hedge_core.analytics.risk import maintenance_margin
    from hedge_core.data.instruments_venue import read_venue_instruments

    async def go():
        async with okx_env(sim=_ada_sim()) as env:
            env.sim.set_price("ADA-USDT-SWAP", 0.5)
            got = await read_venue_instruments(env.adapter, ["ADA/USDT:USDT"])
            req = [p for m, path, p in env.sim.requests if path == "/api/v5/public/position-tiers"]
            return got, req

    got, req = asyncio.run(go())
    assert got.notes == ()
    assert req == [{"instType": "SWAP", "tdMode": "cross", "instFamily": "ADA-USDT"}]
    [ada] = got.instruments
    assert ada.contract_size == 100.0 and ada.lot_size == 100.0 and ada.max_leverage == 75.0
    assert [(b.notional_floor, b.notional_cap, b.max_leverage, b.mmr) for b in ada.brackets] == [
        (0.0, 25_000.0, 75.0, 0.01), (25_000.0, 50_000.0, 50.0, 0.015),
        (50_000.0, 300_000.0, 20.0, 0.02), (300_000.0, 600_000.0, 18.18, 0.025)]
    assert [b.cum for b in ada.brackets] == [0.0, 0.0, 0.0, 0.0]
    assert maintenance_margin(20_000.0, ada.brackets) == pytest.approx(200.0)
    assert maintenance_margin(40_000.0, ada.brackets) == pytest.approx(600.0)
    assert maintenance_margin(350_000.0, ada.brackets) == pytest.approx(8_750.0)


def test_a_live_hedge_start_reads_the_okx_tiers_as_its_brackets():
    """A hedge's start asks ``fetch_brackets`` when ``offers_brackets`` (runner.hedge_recovery): on OKX that
    is the position tiers mapped like ``hedge data instruments`` does, not the built-in Binance table."""

    async def go():
        async with okx_env(sim=_ada_sim()) as env:
            assert env.adapter.offers_brackets
            return await env.adapter.fetch_brackets("ADA/USDT:USDT")

    table = asyncio.run(go())
    assert [(b.notional_cap, b.mmr) for b in table][:2] == [(25_000.0, 0.01), (50_000.0, 0.015)]


def test_okx_tiers_with_a_gap_are_refused_naming_the_symbol():
    from hedge_core.errors import InvalidInput

    async def go():
        sim = _ada_sim()
        sim.tiers["ADA-USDT"][2]["minSz"] = "1500"  # 499 contracts missing between tiers 2 and 3
        async with okx_env(sim=sim) as env:
            return await env.adapter.fetch_tiers(["ADA/USDT:USDT"])

    with pytest.raises(InvalidInput) as e:
        asyncio.run(go())
    assert e.value.field == "ADA/USDT:USDT tiers[2].minSz"


def test_okx_open_orders_of_every_market_bars_and_margin_mode():
    """Open orders without a symbol: one "Get order List" per instType (a ``type`` param would be ignored by
    OKX and every call would answer every order); candles newest first on the venue, oldest first here;
    the margin mode is each order's ``tdMode``: set_margin_mode sends nothing, the orders and the leverage
    change then carry it ("Place order" tdMode, "Set leverage" mgnMode)."""
    from hedge_core.types import MarginMode

    async def go():
        async with okx_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTC-USDT", 30_000.0)
            sim.set_price("BTC-USDT-SWAP", 30_000.0)
            s1 = await a.create_order(OrderRequest(SPOT, Side.BUY, 0.01, cid(50), type=OrderType.LIMIT, price=29_000.0))
            p1 = await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, cid(51), type=OrderType.LIMIT, price=31_000.0))
            got = await a.fetch_open_orders()
            assert sorted(o.id for o in got) == sorted([s1.id, p1.id])
            assert [o.id for o in await a.fetch_open_orders(PERP)] == [p1.id]
            n = len(sim.requests)
            await a.set_margin_mode(PERP, MarginMode.ISOLATED)
            assert len(sim.requests) == n  # nothing sent: the mode travels with the orders
            await a.set_leverage(PERP, 4)
            await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, cid(52)))
            sent = [p for m, path, p in sim.requests[n:] if path in ("/api/v5/trade/order", "/api/v5/account/set-leverage")]
            assert (sent[0]["mgnMode"], sent[0]["posSide"], sent[1]["tdMode"]) == ("isolated", "net", "isolated")
            [pos] = await a.fetch_positions()
            # isolated margin of 0.01 BTC at 30,000 and 4x: 75 USDT
            assert (pos.margin_mode, pos.leverage, pos.margin) == (MarginMode.ISOLATED, 4.0, pytest.approx(75.0))
            t0 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
            for k in range(4):
                sim.candles["SWAP"].append([t0 + k * 3_600_000, 100 + k, 102 + k, 99 + k, 101 + k, 10 + k])
                sim.candles["mark"].append([t0 + k * 3_600_000, 100.4 + k, 102.4 + k, 99.4 + k, 101.4 + k, 0])
            since = pd.Timestamp(t0 + 3_600_000, unit="ms", tz="UTC")
            perp = await a.fetch_bars(PERP, MarketKind.PERP, "1h", since=since)
            mark = await a.fetch_bars(PERP, MarketKind.MARK, "1h", since=since)
            assert [b.ts for b in perp] == [since + pd.Timedelta(hours=k) for k in range(3)]
            assert (perp[0].open, perp[-1].close, perp[-1].volume) == (101.0, 104.0, 13.0)
            assert (mark[0].close, mark[0].volume) == (102.4, 0.0)
    asyncio.run(go())


def test_okx_keys_need_the_passphrase(tmp_path):
    """OKX signs every private request with a passphrase (OK-ACCESS-PASSPHRASE): keys without one are refused
    when loaded, naming the variable, instead of at the first signed request."""
    import json

    from hedge_core.exchange.credentials import load_credentials

    with pytest.raises(he.InvalidInput) as e:
        load_credentials("okx", env={"HEDGE_OKX_API_KEY": "ok-key-1", "HEDGE_OKX_API_SECRET": "ok-sec-1"})
    assert e.value.field == "HEDGE_OKX_API_PASSWORD"
    c = load_credentials("okx", env={"HEDGE_OKX_API_KEY": "ok-key-1", "HEDGE_OKX_API_SECRET": "ok-sec-1",
                                     "HEDGE_OKX_API_PASSWORD": "pp"})
    assert c.ccxt_config()["password"] == "pp"
    f = tmp_path / "keys.json"
    f.write_text(json.dumps({"okx": {"api_key": "ok-key-123456", "secret": "ok-sec-654321"}}))
    f.chmod(0o600)
    with pytest.raises(he.InvalidInput) as e:
        load_credentials("okx", env={"HEDGE_KEYS_FILE": str(f)})
    assert e.value.field == "HEDGE_KEYS_FILE['okx'].password"


def test_hedge_data_instruments_stores_okx_brackets(tmp_path):
    """The synchronous entry point of ``hedge data instruments --venue okx``: the simulator on its own loop
    thread, real ccxt in between; the store keeps the contract-converted brackets with the read time."""
    import threading

    from hedge_core.data.instruments_venue import store_venue_instruments
    from hedge_core.exchange.credentials import Credentials
    from hedge_core.exchange.governor import RateGovernor
    from hedge_core.store import Store
    from tests.support.binance_sim import SimServer
    from tests.support.live_env import test_ca
    from tests.support.loop_thread import stop_loop_thread
    from tests.support.okx_sim import HOSTS
    from tests.support.redirect import sim_adapter

    sim = _ada_sim()
    sim.set_price("ADA-USDT-SWAP", 0.5)
    loop = asyncio.new_event_loop()
    th = threading.Thread(target=loop.run_forever, daemon=True)
    th.start()
    server = SimServer(sim, test_ca(), hosts=HOSTS)  # type: ignore[arg-type]
    asyncio.run_coroutine_threadsafe(server.__aenter__(), loop).result(30)
    t0 = pd.Timestamp("2026-12-01T00:00Z")
    try:
        def make():  # closed by store_venue_instruments, with its own session (sim_adapter)
            return sim_adapter("okx", Credentials("okx", TEST_KEY, TEST_SECRET, TEST_PASSPHRASE, source="test"),
                               {h: server.port for h in HOSTS}, server.client_ssl, enable_rate_limit=False,
                               governor=RateGovernor("okx", "store"))

        with Store(tmp_path / "i.duckdb") as st:
            got = store_venue_instruments(st, "okx", ["ADA/USDT:USDT"], make_adapter=make, now=t0)
            [ada] = st.read_instruments("okx")
            assert ada == got.instruments[0] and [b.notional_cap for b in ada.brackets] == [
                25_000.0, 50_000.0, 300_000.0, 600_000.0]
            assert set(st.instruments_table()["source"]) == {"okx load_markets + fetch_leverage_tiers"}
    finally:  # the server closed, the loop's leftover tasks awaited, the loop closed
        stop_loop_thread(loop, th, lambda: server.__aexit__(None, None, None))
