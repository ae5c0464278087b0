"""Venue configuration: Binance is driven end to end elsewhere; Bybit and OKX are checked here
for construction, ccxt options and the protocol, without any network."""

from __future__ import annotations

import asyncio

import pytest

from hedge_core import errors as he
from hedge_core.exchange.base import ExchangeAdapter
from hedge_core.exchange.ccxt.adapter import VENUES, CcxtLiveAdapter
from hedge_core.exchange.credentials import Credentials
from hedge_core.types import TradingMode


@pytest.mark.parametrize("venue", sorted(VENUES))
def test_adapter_implements_the_protocol_and_keeps_the_limiter_on(venue):
    async def go():
        creds = Credentials(venue, "key-0123456789", "secret-0123456789",
                            "pw-123" if venue == "okx" else None)
        a = CcxtLiveAdapter(venue, creds)
        try:
            assert isinstance(a, ExchangeAdapter)
            assert a.mode is TradingMode.LIVE and a.venue == venue
            ex = a.exchange
            assert ex.id == VENUES[venue].ccxt_id
            assert ex.enableRateLimit is True  # production default
            assert ex.options["defaultType"] == "spot"  # 'BTC/USDT' must never mean the perp
            assert ex.options["fetchCurrencies"] is False
            assert ex.apiKey == "key-0123456789" and "secret-0123456789" not in repr(a)
            if venue == "okx":
                assert ex.password == "pw-123"
        finally:
            await a.close()
    asyncio.run(go())


def test_binance_options_avoid_coin_m_and_sapi():
    async def go():
        a = CcxtLiveAdapter("binance")
        try:
            o = a.exchange.options
            assert o["fetchMarkets"]["types"] == ["spot", "linear"]
            assert o["fetchMargins"] is False and o["adjustForTimeDifference"] is True
        finally:
            await a.close()
    asyncio.run(go())


def test_benchmark_flag_turns_the_limiter_off_only_when_asked():
    async def go():
        a = CcxtLiveAdapter("binance", enable_rate_limit=False)
        try:
            assert a.exchange.enableRateLimit is False
        finally:
            await a.close()
    asyncio.run(go())


@pytest.mark.parametrize("kw, field", [({"venue": "kraken"}, "venue"), ({"timeout_ms": 0}, "timeout_ms")])
def test_bad_construction_arguments(kw, field):
    with pytest.raises(he.InvalidInput) as e:
        CcxtLiveAdapter(**kw)
    assert e.value.field == field
