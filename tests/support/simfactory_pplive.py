"""Runner-side hook for two LIVE perp legs on two venues (no tests here): the first leg a perp on the local Binance
simulator's USD-M side, the second a perp on the local Bybit simulator's linear side, each with its own live ccxt
adapter, joined by :class:`hedge_core.exchange.routed_pair_live.PerpPairLive` (routed by leg).

The runner subprocess imports :func:`make_pair_adapter` through ``HEDGE_RUNNER_ADAPTER_FACTORY``; the ports and
the CA come from the same variables as :mod:`tests.support.simfactory_xlive` (Binance on ``HEDGE_TEST_SIM_PORT``,
Bybit on ``HEDGE_TEST_BYBIT_PORT``).
"""

from __future__ import annotations

import os
import ssl
from typing import Any

FACTORY = "tests.support.simfactory_pplive:make_pair_adapter"
LEG_VENUES = ("binance", "bybit")  # (first perp leg's venue, second's) this hook serves


def make_pair_adapter(spec: Any) -> Any:
    from hedge_core.errors import InvalidInput
    from hedge_core.exchange.credentials import Credentials
    from hedge_core.exchange.routed_pair_live import PerpPairLive
    from tests.support.binance_sim import HOSTS, WS_HOSTS
    from tests.support.bybit_sim import HOSTS as BYBIT_HOSTS
    from tests.support.redirect import sim_adapter

    if tuple(spec.leg_venues) != LEG_VENUES or not spec.perp_pair:
        raise InvalidInput("venues", spec.leg_venues, "a perp pair, first on binance, second on bybit (the simulators)")
    ctx = ssl.create_default_context(cafile=os.environ["HEDGE_TEST_SIM_CA"])
    key, secret = os.environ["HEDGE_TEST_SIM_KEY"], os.environ["HEDGE_TEST_SIM_SECRET"]
    kw: dict[str, Any] = {"timeout_ms": 3000, "enable_rate_limit": False, "fill_poll_interval": 0.01}
    bport, yport = int(os.environ["HEDGE_TEST_SIM_PORT"]), int(os.environ["HEDGE_TEST_BYBIT_PORT"])
    # each leg's adapter over its own redirect session, closed with the adapter (tests.support.redirect.sim_adapter)
    first = sim_adapter("binance", Credentials("binance", key, secret, source="test"),
                        {h: bport for h in HOSTS + WS_HOSTS}, ctx, **kw)
    second = sim_adapter("bybit", Credentials("bybit", key, secret, source="test"), {h: yport for h in BYBIT_HOSTS},
                         ctx, **kw)
    return PerpPairLive(first, second)
