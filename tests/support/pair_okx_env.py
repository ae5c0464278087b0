"""Two LIVE perp legs on two venues with OKX as one of them, real ccxt against two local simulators (no tests
here): :func:`okx_first_pair` (OKX ``BTC-USDT-SWAP`` first leg, Binance USD-M ``BTCUSDT`` second) and
:func:`okx_second_pair` (Bybit linear ``BTCUSDT`` first leg, OKX second), each joined by
:class:`hedge_core.exchange.routed_pair_live.PerpPairLive`.

Each simulator is its own venue account (own redirect session, own test keys, own rate-limit governor). OKX's
perpetual holds CONTRACTS of ``ctVal`` 0.01 BTC ("Get instruments", tests/support/okx_sim.py), reports fees
NEGATIVE for a charge ("Get transaction details") and funding as bills of ``type`` 8 ("Get bills details").
Funding: the first leg's venue 0.0001, the second's 0.0005 per 8 h, so the xcarry pair goes LONG the first venue
and SHORT the second, as in tests/support/pair_live_env.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from hedge_core.exchange.routed_pair_live import PerpPairLive
from tests.support.live_env import TEST_KEY, TEST_PASSPHRASE, TEST_SECRET, bybit_env, live_env, okx_env
from tests.support.okx_sim import OkxSim
from tests.support.pair_live_env import PRICE, RATE_A, RATE_B, binance_perp_sim, bybit_perp_sim

__all__ = ["OKX_SWAP", "PRICE", "RATE_A", "RATE_B", "OkxPair", "okx_first_pair", "okx_long", "okx_perp_sim",
           "okx_second_pair", "pair_params", "pair_spec", "perp_pair", "position", "venue_sim"]

OKX_SWAP = "BTC-USDT-SWAP"  # ctVal 0.01 BTC per contract, lotSz 0.01 contracts


def okx_perp_sim(usdt: float = 10_000.0, rate: float = RATE_A) -> OkxSim:
    """OKX with ``usdt`` in the unified account (single-currency margin, net mode); the swap and its spot at
    PRICE, the swap's funding ``rate`` per 8 h."""
    s = OkxSim(api_key=TEST_KEY, secret=TEST_SECRET, passphrase=TEST_PASSPHRASE, usdt=usdt)
    for inst in ("BTC-USDT", OKX_SWAP):
        s.set_price(inst, PRICE)
    s.funding_rate[OKX_SWAP] = rate
    return s


def okx_long(sim: OkxSim) -> float:
    """OKX's signed net position of the swap in BASE units (contracts x ctVal)."""
    return sim.positions.get(OKX_SWAP, [0.0, 0.0])[0] * sim.ct_val(OKX_SWAP)


def pair_params(first: str, second: str, notional: float = 1_000.0) -> dict[str, Any]:
    """An inline ``xcarry`` set with two perp legs (first on ``first``, second on ``second``) entering at once."""
    return {"strategy": "xcarry", "legs": "perp_perp", "spot_venue": first, "perp_venue": second,
            "notional": notional, "min_funding_rate": 0.0, "min_net_carry": -1.0,
            "exit": {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                     "funding_unfavourable_intervals": None},
            "guards": {"funding_cost_apr_limit": None}}


def pair_spec(first: str, second: str) -> dict[str, str]:
    """The HedgeSpec fields of the pair."""
    return {"venue": first, "perp_venue": second, "legs": "perp_perp"}


@dataclass
class OkxPair:
    first_sim: Any
    second_sim: Any
    adapter: PerpPairLive
    first_venue: str
    second_venue: str


def venue_sim(venue: str, rate: float, usdt: float = 10_000.0) -> Any:
    """A perp simulator of ``venue`` (``okx`` | ``binance`` | ``bybit``) with ``usdt`` of margin and a funding
    ``rate`` per 8 h on its BTC perpetual, priced at PRICE."""
    if venue == "okx":
        return okx_perp_sim(usdt, rate)
    if venue == "binance":
        return binance_perp_sim(usdt, rate)
    if venue == "bybit":
        return bybit_perp_sim(usdt, rate)
    raise ValueError(f"venue={venue!r}: one of okx, binance, bybit")


def _env(venue: str) -> Any:
    return {"okx": okx_env, "binance": live_env, "bybit": bybit_env}[venue]


@contextlib.asynccontextmanager
async def perp_pair(first: str, second: str, first_sim: Any = None, second_sim: Any = None,
                    **adapter_kw: Any) -> AsyncIterator[OkxPair]:
    """A perp on ``first`` (first leg, rate RATE_A) and one on ``second`` (RATE_B), 10,000 USDT each unless a
    simulator is given; ``adapter_kw`` go to both venues' ccxt adapters."""
    if first == second:
        raise ValueError("two different venues")
    first_sim = first_sim or venue_sim(first, RATE_A)
    second_sim = second_sim or venue_sim(second, RATE_B)
    async with _env(first)(sim=first_sim, **adapter_kw) as a, _env(second)(sim=second_sim, **adapter_kw) as b:
        yield OkxPair(first_sim, second_sim, PerpPairLive(a.adapter, b.adapter), first, second)


def position(venue: str, sim: Any) -> float:
    """The venue's signed net position of its BTC perpetual, BASE units (OKX: contracts x ctVal)."""
    if venue == "okx":
        return okx_long(sim)
    if venue == "binance":
        return float(sim.position("BTCUSDT"))
    return float(sim.positions.get("BTCUSDT", [0.0, 0.0])[0])


def okx_first_pair(first_sim: OkxSim | None = None, second_sim: Any = None,
                   **adapter_kw: Any) -> contextlib.AbstractAsyncContextManager[OkxPair]:
    """OKX first leg (rate RATE_A), Binance USD-M second (RATE_B, 10,000 USDT futures wallet)."""
    return perp_pair("okx", "binance", first_sim, second_sim, **adapter_kw)


def okx_second_pair(first_sim: Any = None, second_sim: OkxSim | None = None,
                    **adapter_kw: Any) -> contextlib.AbstractAsyncContextManager[OkxPair]:
    """Bybit linear first leg (rate RATE_A, 10,000 USDT unified wallet), OKX second (RATE_B)."""
    return perp_pair("bybit", "okx", first_sim, second_sim, **adapter_kw)
