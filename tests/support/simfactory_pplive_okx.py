"""Runner-side hook for two LIVE perp legs on two venues with OKX as one of them (no tests here): each leg's venue
(``okx``, ``bybit`` or ``binance``) gets its own live ccxt adapter against its local simulator, joined by
:class:`hedge_core.exchange.routed_pair_live.PerpPairLive` (routed by leg).

The runner subprocess imports :func:`make_pair_adapter` through ``HEDGE_RUNNER_ADAPTER_FACTORY``. Each venue's
simulator port comes from ``HEDGE_TEST_PORT_<VENUE>`` (e.g. ``HEDGE_TEST_PORT_OKX``); the CA, key, secret and OKX
passphrase from the variables of :func:`tests.support.fault_matrix.runner_env`.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

FACTORY = "tests.support.simfactory_pplive_okx:make_pair_adapter"


def port_var(venue: str) -> str:
    """The environment variable holding ``venue``'s simulator port."""
    return f"HEDGE_TEST_PORT_{venue.upper()}"


def _hosts(venue: str) -> tuple[str, ...]:
    from tests.support.binance_sim import HOSTS, WS_HOSTS
    from tests.support.bybit_sim import HOSTS as BYBIT_HOSTS
    from tests.support.okx_sim import HOSTS as OKX_HOSTS

    return {"binance": HOSTS + WS_HOSTS, "bybit": BYBIT_HOSTS, "okx": OKX_HOSTS}[venue]


def make_pair_adapter(spec: Any) -> Any:
    from hedge_core.errors import InvalidInput
    from hedge_core.exchange.credentials import Credentials
    from hedge_core.exchange.routed_pair_live import PerpPairLive
    from tests.support.redirect import sim_adapter

    venues = tuple(spec.leg_venues)
    if not spec.perp_pair or "okx" not in venues or any(port_var(v) not in os.environ for v in venues):
        raise InvalidInput("venues", venues, "a perp pair with okx as one leg, each venue's simulator port set")
    ctx = ssl.create_default_context(cafile=os.environ["HEDGE_TEST_SIM_CA"])
    key, secret = os.environ["HEDGE_TEST_SIM_KEY"], os.environ["HEDGE_TEST_SIM_SECRET"]
    kw: dict[str, Any] = {"timeout_ms": 3000, "enable_rate_limit": False, "fill_poll_interval": 0.01}
    legs = []
    for v in venues:
        port = int(os.environ[port_var(v)])
        creds = Credentials(v, key, secret, os.environ["HEDGE_TEST_SIM_PASSPHRASE"] if v == "okx" else None,
                            source="test")
        legs.append(sim_adapter(v, creds, {h: port for h in _hosts(v)}, ctx, **kw))  # closes its own session
    return PerpPairLive(legs[0], legs[1])
