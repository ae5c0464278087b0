"""Instruments read from the venue through the REAL ccxt client against the local simulators, mapped to
the one Bracket model and stored (``hedge data instruments``)."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.data.instruments_venue import (
    read_venue_instruments,
    store_venue_instruments,
)
from hedge_core.errors import InvalidInput
from hedge_core.store import Store
from hedge_core.types import MarketKind
from tests.support import live_env as sim_env
from tests.support.binance_sim import HOSTS, BinanceSim, MarketSpec, SimServer
from tests.support.bybit_sim import BybitSim
from tests.support.live_env import TEST_KEY, TEST_SECRET, bybit_env, live_env
from tests.support.redirect import redirect_session

T0 = pd.Timestamp("2026-12-01T12:00Z")

# Binance "Notional and Leverage Brackets (USER_DATA)" rows in the documented shape
# (https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Notional-and-Leverage-Brackets);
# figures chosen for the test, cum continuous (floor x (MMR - previous MMR) + previous cum)
SOL_BRACKETS = [
    {"bracket": 1, "initialLeverage": 50, "notionalCap": 25_000, "notionalFloor": 0, "maintMarginRatio": 0.01, "cum": 0.0},
    {"bracket": 2, "initialLeverage": 20, "notionalCap": 250_000, "notionalFloor": 25_000, "maintMarginRatio": 0.025,
     "cum": 375.0},
    {"bracket": 3, "initialLeverage": 10, "notionalCap": 1_000_000, "notionalFloor": 250_000, "maintMarginRatio": 0.05,
     "cum": 6_625.0},
]


def _binance_sim() -> BinanceSim:
    sim = BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET,
                     markets=[MarketSpec("BTC", tick="0.10"),
                              MarketSpec("SOL", tick="0.01", step="0.001", min_qty="0.001", perp_tick="0.0100",
                                         perp_step="1", perp_min_qty="1", perp_min_notional="5")])
    sim.symbol_brackets["SOLUSDT"] = SOL_BRACKETS
    return sim


def test_binance_markets_and_signed_brackets_map_to_instruments():
    async def go():
        async with live_env(sim=_binance_sim()) as env:
            return await read_venue_instruments(env.adapter, ["SOL", "BTC/USDT:USDT"], now=T0)

    got = asyncio.run(go())
    assert got.notes == () and got.read_at == T0
    by = {i.symbol: i for i in got.instruments}
    assert list(by) == ["SOL/USDT", "SOL/USDT:USDT", "BTC/USDT:USDT"]
    spot, perp = by["SOL/USDT"], by["SOL/USDT:USDT"]
    assert (spot.kind, spot.tick_size, spot.lot_size, spot.min_qty, spot.min_notional, spot.brackets) == \
        (MarketKind.SPOT, 0.01, 0.001, 0.001, 5.0, ())
    assert (perp.kind, perp.tick_size, perp.lot_size, perp.min_qty, perp.min_notional) == \
        (MarketKind.PERP, 0.01, 1.0, 1.0, 5.0)
    assert [(b.notional_floor, b.notional_cap, b.max_leverage, b.mmr, b.cum) for b in perp.brackets] == [
        (0.0, 25_000.0, 50.0, 0.01, 0.0), (25_000.0, 250_000.0, 20.0, 0.025, 375.0),
        (250_000.0, 1_000_000.0, 10.0, 0.05, 6_625.0)]
    assert perp.max_leverage == 50.0  # the venue's first tier caps it
    # BTC got the simulator's default table (two brackets): each symbol its own
    assert len(by["BTC/USDT:USDT"].brackets) == 2


def test_binance_without_keys_stores_limits_and_says_brackets_were_not_read():
    async def go():
        from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter
        from hedge_core.exchange.governor import RateGovernor

        sim = _binance_sim()
        async with SimServer(sim, sim_env.test_ca()) as server:
            session = redirect_session({h: server.port for h in HOSTS}, server.client_ssl)
            ad = CcxtLiveAdapter("binance", None, session=session, enable_rate_limit=False,
                                 governor=RateGovernor("binance", "public-test"))
            try:
                return await read_venue_instruments(ad, ["SOL/USDT:USDT"], now=T0), sim
            finally:
                await ad.close()
                await session.close()

    got, sim = asyncio.run(go())
    [perp] = got.instruments
    assert perp.lot_size == 1.0 and perp.brackets == ()
    assert len(got.notes) == 1 and "signed call" in got.notes[0]
    assert not [p for _m, p, *_ in sim.requests if "leverageBracket" in p]


def test_unknown_symbol_is_refused_naming_it():
    async def go():
        async with live_env(sim=_binance_sim()) as env:
            await read_venue_instruments(env.adapter, ["PEPE"])

    with pytest.raises(InvalidInput) as e:
        asyncio.run(go())
    assert e.value.field == "symbols" and e.value.value == ["PEPE/USDT", "PEPE/USDT:USDT"]


def _bybit_sim() -> BybitSim:
    sim = BybitSim(api_key=TEST_KEY, secret=TEST_SECRET)
    # a second linear symbol in the documented instruments-info shape, and risk-limit tiers in the
    # documented "Get Risk Limit" shape (https://bybit-exchange.github.io/docs/v5/market/risk-limit):
    # riskLimitValue is the tier's cap; mmDeduction published for the second tier
    sol = {**sim.instrument_rows["linear"][0], "symbol": "SOLUSDT", "baseCoin": "SOL",
           "leverageFilter": {"minLeverage": "1", "maxLeverage": "50.00", "leverageStep": "0.01"},
           "priceFilter": {"minPrice": "0.010", "maxPrice": "19999.980", "tickSize": "0.010"},
           "lotSizeFilter": {"maxOrderQty": "79770.0", "minOrderQty": "0.1", "qtyStep": "0.1",
                             "postOnlyMaxOrderQty": "79770.0", "maxMktOrderQty": "31910.0", "minNotionalValue": "5"}}
    sim.instrument_rows["linear"].append(sol)
    sim.risk_limits += [
        {"id": 1, "symbol": "SOLUSDT", "riskLimitValue": "200000", "maintenanceMargin": "0.01", "initialMargin": "0.02",
         "isLowestRisk": 1, "maxLeverage": "50.00", "mmDeduction": ""},
        {"id": 2, "symbol": "SOLUSDT", "riskLimitValue": "400000", "maintenanceMargin": "0.015",
         "initialMargin": "0.025", "isLowestRisk": 0, "maxLeverage": "40.00", "mmDeduction": "1000"},
    ]
    return sim


def test_bybit_risk_limit_tiers_map_to_the_bracket_model():
    async def go():
        async with bybit_env(sim=_bybit_sim()) as env:
            return await read_venue_instruments(env.adapter, ["SOL/USDT:USDT", "BTC/USDT:USDT"], now=T0)

    got = asyncio.run(go())
    assert got.notes == ()
    sol, btc = got.instruments
    assert (sol.tick_size, sol.lot_size, sol.min_qty, sol.min_notional, sol.max_leverage) == (0.01, 0.1, 0.1, 5.0, 50.0)
    # tier 2 starts where tier 1's riskLimitValue ends; mmDeduction 1000 = 200,000 x (1.5 % - 1 %): continuous
    assert [(b.notional_floor, b.notional_cap, b.max_leverage, b.mmr, b.cum) for b in sol.brackets] == [
        (0.0, 200_000.0, 50.0, 0.01, 0.0), (200_000.0, 400_000.0, 40.0, 0.015, 1_000.0)]
    assert [(b.notional_cap, b.mmr, b.max_leverage) for b in btc.brackets] == [(2_000_000.0, 0.005, 100.0)]


def test_bybit_tiers_that_contradict_continuity_are_refused_naming_the_symbol():
    async def go():
        sim = _bybit_sim()
        sim.risk_limits[-1]["mmDeduction"] = "5000"  # not 200,000 x 0.5 %
        async with bybit_env(sim=sim) as env:
            await read_venue_instruments(env.adapter, ["SOL/USDT:USDT"])

    with pytest.raises(InvalidInput) as e:
        asyncio.run(go())
    assert e.value.field == "SOL/USDT:USDT tiers[1].info.cum"


def test_store_venue_instruments_writes_the_rows_with_the_read_date(tmp_path):
    """The synchronous entry point of ``hedge data instruments``: its own event loop, the simulator on
    another thread's loop, real ccxt in between."""
    from hedge_core.exchange.credentials import Credentials
    from hedge_core.exchange.governor import RateGovernor
    from tests.support.redirect import sim_adapter
    from tests.support.sim_thread import SimThread

    th = SimThread()
    th.sim.markets = _binance_sim().markets
    th.sim.symbol_brackets["SOLUSDT"] = SOL_BRACKETS
    try:
        def make():  # its own redirect session, closed with it (the store closes the adapter it made)
            return sim_adapter("binance", Credentials("binance", TEST_KEY, TEST_SECRET, source="test"),
                               {h: th.server.port for h in HOSTS}, th.server.client_ssl, enable_rate_limit=False,
                               governor=RateGovernor("binance", "store-test"))

        with Store(tmp_path / "i.duckdb") as st:
            got = store_venue_instruments(st, "binance", ["SOL"], make_adapter=make, now=T0)
            assert [i.symbol for i in st.read_instruments("binance")] == ["SOL/USDT", "SOL/USDT:USDT"]
            assert st.read_instruments("binance") == list(got.instruments)
            table = st.instruments_table()
            assert (table["updated_at"] == T0).all()
            assert set(table["source"]) == {"binance load_markets + fetch_leverage_tiers"}
            # and a backtest's resolution now takes the venue's rows (lot 1 SOL), not the snapshot's
            from hedge_core.data.instruments import pair_instruments

            _spot, perp = pair_instruments("SOL/USDT", "SOL/USDT:USDT", "binance", st)
            assert perp.brackets[1].cum == 375.0 and perp.max_leverage == 50.0
    finally:
        th.close()


def test_live_hedge_on_sol_sizes_with_the_venues_table_on_its_own_instrument():
    """A live hedge on SOL (Binance simulator, real ccxt): the runner's ``_venue_brackets`` puts the account's
    table on THIS hedge's perp instrument; the engine's leverage rule reads it (6x under the venue's 5 % MMR
    against 9x under the committed default's 0.5 %), orders go out in whole SOL (the venue's lot), and the
    committed default is untouched for every other caller."""
    from types import SimpleNamespace

    from hedge_core.analytics.risk import brackets_for
    from hedge_core.engine.context import new_hedge
    from hedge_core.engine.driver import HedgeDriver
    from hedge_core.engine.events import MarketUpdate
    from hedge_core.engine.sizing import choose_leverage
    from hedge_core.engine.states import State
    from hedge_core.params.models import CarryParams, LeverageParams
    from hedge_core.runner.hedge import HedgeTask

    params = CarryParams(notional=2_000.0, min_net_carry=-1.0, min_funding_rate=0.00001,
                         leverage=LeverageParams(liq_buffer=0.1, max_leverage=20))
    default_lev = choose_leverage(float("nan"), params.leverage, symbol="SOL/USDT:USDT", notional=2_000.0)
    assert default_lev == 9  # committed table: 1 / (1.1 x 1.005 - 1) = 9.5

    async def go():
        sim = _binance_sim()
        sim.symbol_brackets["SOLUSDT"] = [
            {"bracket": 1, "initialLeverage": 20, "notionalCap": 50_000, "notionalFloor": 0, "maintMarginRatio": 0.05,
             "cum": 0.0},
            {"bracket": 2, "initialLeverage": 10, "notionalCap": 500_000, "notionalFloor": 50_000,
             "maintMarginRatio": 0.1, "cum": 2_500.0}]
        sim.set_price("SOLUSDT", 100.0)
        async with live_env(sim=sim) as env:
            markets = await env.adapter.load_markets()
            task = SimpleNamespace(raw_adapter=env.adapter, hedge_id="sol-live",
                                   spec=SimpleNamespace(perp_symbol="SOL/USDT:USDT"))
            perp = await HedgeTask._venue_brackets(task, markets["SOL/USDT:USDT"])
            assert [b.mmr for b in perp.brackets] == [0.05, 0.1]
            drv = HedgeDriver(new_hedge("sol-live", "carry", markets["SOL/USDT"], perp, T0), params,
                              {"binance": env.adapter}, sleep=_nosleep)
            await drv.feed(MarketUpdate(T0, 100.0, 100.0, funding_rate=0.001))
            return drv, sim

    drv, sim = asyncio.run(go())
    assert drv.ctx.state is State.MONITORING_POSITIONS
    assert drv.ctx.leverage == 6 and sim.leverage["SOLUSDT"] == 6  # 1 / (1.1 x 1.05 - 1) = 6.45
    amt = sum(v[0] for (s, _side), v in sim.positions.items() if s == "SOLUSDT")
    assert amt < 0 and amt == round(amt)  # whole SOL: the venue's stepSize 1
    assert brackets_for("SOL/USDT:USDT")[0].mmr == 0.005  # nothing global changed


async def _nosleep(_s: float) -> None:
    return None
