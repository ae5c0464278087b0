"""Two venue simulators at once behind real ccxt: the spot leg on the Binance simulator, the perp leg on
the Bybit simulator, joined by :class:`hedge_core.exchange.routed.RoutedAdapter` (no tests here).

Each simulator runs on its own 127.0.0.1 port with its own redirect session (``api.binance.com`` /
``fapi.binance.com`` to one, ``api.bybit.com`` to the other), its own test keys and its own
rate-limit governor, as two venue accounts are in production.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from hedge_core.exchange.routed import RoutedAdapter
from tests.support.binance_sim import BinanceSim
from tests.support.bybit_sim import BybitSim
from tests.support.live_env import TEST_KEY, TEST_SECRET, bybit_env, live_env

PRICE = 40_000.0


def binance_spot_sim(usdt: float = 10_000.0) -> BinanceSim:
    """Binance with ``usdt`` in the spot wallet; spot commission in USDT (``spot_fee_in_received=False``)."""
    s = BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET, spot_balances={"USDT": usdt}, spot_fee_in_received=False)
    s.set_price("BTCUSDT", PRICE)
    return s


def bybit_perp_sim(usdt: float = 10_000.0, rate: float = 0.0005) -> BybitSim:
    """Bybit with ``usdt`` in the unified wallet and a ``rate`` funding rate on BTCUSDT."""
    s = BybitSim(api_key=TEST_KEY, secret=TEST_SECRET, coins={"USDT": usdt})
    s.set_price("BTCUSDT", PRICE)
    s.funding_rate["BTCUSDT"] = rate
    return s


@dataclass
class TwoVenues:
    spot_sim: BinanceSim
    perp_sim: BybitSim
    adapter: RoutedAdapter  # spot -> binance, perp -> bybit


@contextlib.asynccontextmanager
async def two_venues(spot_sim: BinanceSim | None = None, perp_sim: BybitSim | None = None,
                     **adapter_kw: Any) -> AsyncIterator[TwoVenues]:
    spot_sim = spot_sim or binance_spot_sim()
    perp_sim = perp_sim or bybit_perp_sim()
    async with live_env(sim=spot_sim, **adapter_kw) as a, bybit_env(sim=perp_sim, **adapter_kw) as b:
        yield TwoVenues(spot_sim, perp_sim, RoutedAdapter(a.adapter, b.adapter))


@dataclass
class ReversedVenues:
    spot_sim: BybitSim
    perp_sim: BinanceSim
    adapter: RoutedAdapter  # spot -> bybit, perp -> binance (USD-M: the venue with a cancel-all countdown)


@contextlib.asynccontextmanager
async def reversed_venues(spot_sim: BybitSim | None = None, perp_sim: BinanceSim | None = None,
                          **adapter_kw: Any) -> AsyncIterator[ReversedVenues]:
    """Spot on the Bybit simulator (default: 10,000 USDT unified wallet), perp on the Binance simulator
    (default: 10,000 USDT USD-M wallet, no spot money, funding 0.05 %/8 h)."""
    spot_sim = spot_sim or bybit_perp_sim()
    if perp_sim is None:
        perp_sim = binance_spot_sim(usdt=0.0)
        perp_sim.set_funding_rate("BTCUSDT", 0.0005)
    async with bybit_env(sim=spot_sim, **adapter_kw) as a, live_env(sim=perp_sim, **adapter_kw) as b:
        yield ReversedVenues(spot_sim, perp_sim, RoutedAdapter(a.adapter, b.adapter))
