"""Two LIVE perp legs on two local simulators through real ccxt (no tests here): the first leg a perp on the
Binance simulator's USD-M side (tests/support/binance_sim.py), the second a perp on the Bybit simulator's
linear side (tests/support/bybit_sim.py), joined by :class:`hedge_core.exchange.routed_pair_live.PerpPairLive`.

Each simulator is its own venue account (own host redirect, own test keys, own rate-limit governor), as two
venue accounts are in production. Funding: Binance's predicted rate (``premiumIndex.lastFundingRate``)
0.0001, Bybit's 0.0005 per 8 h: the xcarry pair goes LONG Binance (the lower funding), SHORT Bybit.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from hedge_core.exchange.routed_pair_live import PerpPairLive
from tests.support.binance_sim import BinanceSim
from tests.support.bybit_sim import BybitSim
from tests.support.live_env import TEST_KEY, TEST_SECRET, bybit_env, live_env
from tests.support.xlive_env import PRICE, bybit_perp_sim

__all__ = ["PAIR", "PRICE", "PairVenues", "binance_perp_sim", "bybit_perp_sim", "pair_params", "pair_venues"]

RATE_A, RATE_B = 0.0001, 0.0005  # per 8 h: Binance (first leg) lower, Bybit (second) higher


def binance_perp_sim(wallet: float = 10_000.0, rate: float = RATE_A) -> BinanceSim:
    """Binance with ``wallet`` USDT in the USD-M wallet and nothing in the spot wallet; BTCUSDT at PRICE."""
    s = BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET, spot_balances={"USDT": 0.0}, futures_wallet=wallet)
    s.set_price("BTCUSDT", PRICE)
    s.set_funding_rate("BTCUSDT", rate)
    return s


def pair_params(notional: float = 1_000.0) -> dict[str, Any]:
    """An inline ``xcarry`` set with two perp legs, first on binance, second on bybit, entering at once."""
    return {"strategy": "xcarry", "legs": "perp_perp", "spot_venue": "binance", "perp_venue": "bybit",
            "notional": notional, "min_funding_rate": 0.0, "min_net_carry": -1.0,
            "exit": {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                     "funding_unfavourable_intervals": None},
            "guards": {"funding_cost_apr_limit": None}}


PAIR = {"venue": "binance", "perp_venue": "bybit", "legs": "perp_perp"}  # HedgeSpec fields of the pair


@dataclass
class PairVenues:
    first_sim: BinanceSim
    second_sim: BybitSim
    adapter: PerpPairLive  # first leg -> binance USD-M, second -> bybit linear


@contextlib.asynccontextmanager
async def pair_venues(first_sim: BinanceSim | None = None, second_sim: BybitSim | None = None,
                      **adapter_kw: Any) -> AsyncIterator[PairVenues]:
    first_sim = first_sim or binance_perp_sim()
    second_sim = second_sim or bybit_perp_sim(rate=RATE_B)
    async with live_env(sim=first_sim, **adapter_kw) as a, bybit_env(sim=second_sim, **adapter_kw) as b:
        yield PairVenues(first_sim, second_sim, PerpPairLive(a.adapter, b.adapter))
