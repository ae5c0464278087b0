"""Leverage / margin mode / position mode (incl. no-change), funding, balances, positions."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core import errors as he
from hedge_core.types import MarginMode, OrderRequest, PositionMode, Side, client_order_id
from tests.support.live_env import live_env

PERP, SPOT = "BTC/USDT:USDT", "BTC/USDT"


def run(coro):
    return asyncio.run(coro)


def test_leverage_margin_and_position_mode_including_no_change():
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            await a.set_leverage(PERP, 7)
            assert sim.leverage["BTCUSDT"] == 7
            await a.set_leverage(PERP, 7)  # same value: success
            await a.set_margin_mode(PERP, MarginMode.ISOLATED)
            assert sim.margin_type["BTCUSDT"] == "ISOLATED"
            n = len(sim.answers)
            await a.set_margin_mode(PERP, MarginMode.ISOLATED)  # -4046 -> success
            assert (  "POST /fapi/v1/marginType", 400, -4046) in sim.answers[n:]
            await a.set_position_mode(PositionMode.HEDGE)
            assert sim.dual_side is True
            n = len(sim.answers)
            await a.set_position_mode(PositionMode.HEDGE)  # -4059 -> success
            assert ("POST /fapi/v1/positionSide/dual", 400, -4059) in sim.answers[n:]
            await a.set_position_mode(PositionMode.ONE_WAY)
            assert sim.dual_side is False
            with pytest.raises(he.InvalidInput):
                await a.set_leverage(PERP, 0)
            with pytest.raises(he.InvalidInput):
                await a.set_leverage(SPOT, 3)
    run(go())


def test_changing_margin_mode_with_a_position_is_an_operational_error():
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            await a.create_order(OrderRequest(PERP, Side.BUY, 0.01, client_order_id("acc", "p", 1)))
            with pytest.raises(he.OperationalError):  # -4048: not "no change", a real refusal
                await a.set_margin_mode(PERP, MarginMode.ISOLATED)
    run(go())


def test_isolated_position_reports_mode_leverage_and_margin():
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            await a.set_margin_mode(PERP, MarginMode.ISOLATED)
            await a.set_leverage(PERP, 4)
            await a.create_order(OrderRequest(PERP, Side.BUY, 0.02, client_order_id("acc", "p", 2)))
            [p] = await a.fetch_positions()
            assert p.margin_mode is MarginMode.ISOLATED and p.leverage == 4.0
            assert p.margin == pytest.approx(0.02 * 20_000 / 4)
            assert p.mark_price == 20_000.0
    run(go())


def test_flat_positions_are_omitted():
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            sim.set_price("ETHUSDT", 1_000.0)
            await a.create_order(OrderRequest(PERP, Side.BUY, 0.01, client_order_id("flat", "p", 1)))
            # a flat row that still carries an entry price (Binance does this after a close)
            sim.positions[("ETHUSDT", "BOTH")] = [0.0, 1_000.0]
            ps = await a.fetch_positions()
            assert [p.symbol for p in ps] == [PERP]
            raw = [r for r in sim.requests if r[1] == "/fapi/v3/positionRisk"]
            assert raw  # the venue was asked; the flat row was dropped by the adapter
    run(go())


def test_funding_rate_history_and_own_payments():
    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            sim.set_funding_rate("BTCUSDT", 0.00025)
            fr = await a.fetch_funding_rate(PERP)
            assert fr.rate == pytest.approx(0.00025) and fr.mark_price == 20_000.0
            assert fr.ts > pd.Timestamp.now(tz="UTC") and fr.ts.hour % 8 == 0  # next settlement
            t0 = sim.now_ms() - 3 * 8 * 3_600_000
            sim.settle_funding("BTCUSDT", 0.0001, ts_ms=t0)  # no position yet: nothing paid
            await a.create_order(OrderRequest(PERP, Side.SELL, 0.5, client_order_id("fund", "p", 1)))
            sim.settle_funding("BTCUSDT", 0.0003, ts_ms=t0 + 8 * 3_600_000, mark=21_000.0)
            sim.settle_funding("BTCUSDT", -0.0002, ts_ms=t0 + 16 * 3_600_000, mark=19_000.0)
            hist = await a.fetch_funding_rate_history(PERP, since=pd.Timestamp(t0, unit="ms", tz="UTC"))
            assert [h.rate for h in hist] == pytest.approx([0.0001, 0.0003, -0.0002])
            assert [h.mark_price for h in hist] == pytest.approx([20_000.0, 21_000.0, 19_000.0])
            pays = await a.fetch_funding_payments(PERP)
            # payment = -position x mark x rate (short 0.5): received when rate > 0
            want = [-(-0.5) * 21_000.0 * 0.0003, -(-0.5) * 19_000.0 * -0.0002]
            assert [p.amount for p in pays] == pytest.approx(want)
            assert [p.position_qty for p in pays] == pytest.approx([-0.5, -0.5])
            assert [p.rate for p in pays] == pytest.approx([0.0003, -0.0002])
            wallet = (await a.fetch_balance("perp"))["USDT"].total
            fee = 0.5 * 20_000 * sim.fut_taker
            assert wallet == pytest.approx(10_000 - fee + sum(want))
            with pytest.raises(he.InvalidInput):
                await a.fetch_funding_rate(SPOT)
    run(go())


def test_balance_account_names_are_checked():
    async def go():
        async with live_env() as env:
            with pytest.raises(he.InvalidInput) as e:
                await env.adapter.fetch_balance("margin")
            assert e.value.field == "account"
    run(go())


def test_venue_brackets_through_ccxt_leverage_tiers():
    """fetch_brackets reads the account's table (GET /fapi/v1/leverageBracket, signed) as Bracket
    rows; a table that is not a bracket table is refused naming the tier and field."""
    from hedge_core.analytics.risk import Bracket

    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.bracket_rows = [
                {"bracket": 1, "initialLeverage": 3, "notionalCap": 20_000, "notionalFloor": 0,
                 "maintMarginRatio": 0.01, "cum": 0.0},
                {"bracket": 2, "initialLeverage": 2, "notionalCap": 1_000_000, "notionalFloor": 20_000,
                 "maintMarginRatio": 0.02, "cum": 200.0}]
            got = await a.fetch_brackets(PERP)
            assert got == (Bracket(1, 0.0, 20_000.0, 3.0, 0.01, 0.0), Bracket(2, 20_000.0, 1_000_000.0, 2.0, 0.02, 200.0))
            assert any(path == "/fapi/v1/leverageBracket" and "signature" in p for _m, path, p in sim.requests)
            sim.bracket_rows[1]["cum"] = 999.0  # contradicts floor x (MMR - previous MMR) + previous cum
            with pytest.raises(he.InvalidInput) as e:
                await a.fetch_brackets(PERP)
            assert e.value.field == "tiers[1].info.cum"
            with pytest.raises(he.InvalidInput, match="symbol"):
                await a.fetch_brackets(SPOT)
    run(go())
