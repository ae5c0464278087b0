"""Runner-side hook for a live hedge whose perp venue is chosen by best execution (no tests here): the spot leg on
one local simulator (Binance or Bybit), the perp leg on another (Binance USD-M, Bybit or OKX: ``spec.perp_venue``),
each with its own live ccxt adapter and its own keys, joined by a RoutedAdapter.

The runner imports :func:`make_routed_adapter` through ``HEDGE_RUNNER_ADAPTER_FACTORY`` (in a test process too:
runner.best_entry_live builds the other allowed venues' adapters through it). Binance is reached on
``HEDGE_TEST_SIM_PORT``, Bybit on ``HEDGE_TEST_BYBIT_PORT``, OKX on ``HEDGE_TEST_OKX_PORT`` (redirect sessions,
TLS verified against ``HEDGE_TEST_SIM_CA``). OKX signs with a passphrase too (OK-ACCESS-PASSPHRASE).
"""

from __future__ import annotations

import os
import ssl
from typing import Any

FACTORY = "tests.support.simfactory_bestlive:make_routed_adapter"
VENUES = ("binance", "bybit", "okx")  # any two of them: spot leg on the first, perp leg on the second
PORT_ENV = {"binance": "HEDGE_TEST_SIM_PORT", "bybit": "HEDGE_TEST_BYBIT_PORT", "okx": "HEDGE_TEST_OKX_PORT"}


def venue_adapter(venue: str) -> Any:
    """The live ccxt adapter of ``venue``'s simulator, with the test keys (OKX: and its passphrase)."""
    from hedge_core.exchange.credentials import Credentials
    from tests.support.binance_sim import HOSTS, WS_HOSTS
    from tests.support.bybit_sim import HOSTS as BYBIT_HOSTS
    from tests.support.live_env import TEST_PASSPHRASE
    from tests.support.okx_sim import HOSTS as OKX_HOSTS
    from tests.support.redirect import sim_adapter

    ctx = ssl.create_default_context(cafile=os.environ["HEDGE_TEST_SIM_CA"])
    key, secret = os.environ["HEDGE_TEST_SIM_KEY"], os.environ["HEDGE_TEST_SIM_SECRET"]
    kw: dict[str, Any] = {"timeout_ms": 3000, "enable_rate_limit": False, "fill_poll_interval": 0.01}
    hosts = {"binance": HOSTS + WS_HOSTS, "bybit": BYBIT_HOSTS, "okx": OKX_HOSTS}[venue]
    port = int(os.environ[PORT_ENV[venue]])
    creds = Credentials(venue, key, secret, TEST_PASSPHRASE if venue == "okx" else None, source="test")
    return sim_adapter(venue, creds, {h: port for h in hosts}, ctx, **kw)  # closes its session when closed


def make_routed_adapter(spec: Any) -> Any:
    from hedge_core.errors import InvalidInput
    from hedge_core.exchange.routed import RoutedAdapter

    spot_venue, perp_venue = spec.leg_venues
    if spot_venue not in VENUES or perp_venue not in VENUES or spot_venue == perp_venue:
        raise InvalidInput("venues", spec.leg_venues, f"two different venues of {list(VENUES)} (the local simulators)")
    return RoutedAdapter(venue_adapter(spot_venue), venue_adapter(perp_venue))
