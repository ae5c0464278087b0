"""Runner-side hook for legs on two venues (no tests here): the spot leg on the local Binance simulator, the
perp leg on the local Bybit simulator -- or the other way round (spot on Bybit, perp on Binance USD-M, whose
simulator may list a quarterly for the calendar roll) -- each with its own live ccxt adapter, joined by a
RoutedAdapter.

The runner subprocess imports :func:`make_routed_adapter` through ``HEDGE_RUNNER_ADAPTER_FACTORY``.
Binance is reached on ``HEDGE_TEST_SIM_PORT``, Bybit on ``HEDGE_TEST_BYBIT_PORT`` (both through a
redirect session, TLS verified against ``HEDGE_TEST_SIM_CA``). The one-venue hook is
:mod:`tests.support.simfactory`.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

FACTORY = "tests.support.simfactory_xlive:make_routed_adapter"
LEG_VENUES = ("binance", "bybit")  # (spot venue, perp venue) this hook serves
REVERSED = ("bybit", "binance")  # ... and the other way round


def make_routed_adapter(spec: Any) -> Any:
    from hedge_core.errors import InvalidInput
    from hedge_core.exchange.credentials import Credentials
    from hedge_core.exchange.routed import RoutedAdapter
    from tests.support.binance_sim import HOSTS, WS_HOSTS
    from tests.support.bybit_sim import HOSTS as BYBIT_HOSTS
    from tests.support.redirect import sim_adapter

    if tuple(spec.leg_venues) not in (LEG_VENUES, REVERSED):
        raise InvalidInput("venues", spec.leg_venues,
                           "spot on binance and perp on bybit, or the reverse (the two local simulators)")
    ctx = ssl.create_default_context(cafile=os.environ["HEDGE_TEST_SIM_CA"])
    key, secret = os.environ["HEDGE_TEST_SIM_KEY"], os.environ["HEDGE_TEST_SIM_SECRET"]
    kw: dict[str, Any] = {"timeout_ms": 3000, "enable_rate_limit": False, "fill_poll_interval": 0.01}
    bport, yport = int(os.environ["HEDGE_TEST_SIM_PORT"]), int(os.environ["HEDGE_TEST_BYBIT_PORT"])
    # each adapter closes its own redirect session when it is closed (tests.support.redirect.sim_adapter)
    binance = sim_adapter("binance", Credentials("binance", key, secret, source="test"),
                          {h: bport for h in HOSTS + WS_HOSTS}, ctx, **kw)
    bybit = sim_adapter("bybit", Credentials("bybit", key, secret, source="test"), {h: yport for h in BYBIT_HOSTS}, ctx,
                        **kw)
    return RoutedAdapter(binance, bybit) if tuple(spec.leg_venues) == LEG_VENUES else RoutedAdapter(bybit, binance)
