"""Runner-side hook for a live hedge whose perp venue is chosen by best execution (no tests here): the spot leg on
the local Binance simulator, the perp leg on the local Bybit OR OKX simulator (``spec.perp_venue``), each with its
own live ccxt adapter and its own keys, joined by a RoutedAdapter.

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
PERP_VENUES = ("bybit", "okx")  # the perp venues this hook serves; the spot leg is on binance


def make_routed_adapter(spec: Any) -> Any:
    from hedge_core.errors import InvalidInput
    from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter
    from hedge_core.exchange.credentials import Credentials
    from hedge_core.exchange.routed import RoutedAdapter
    from tests.support.binance_sim import HOSTS, WS_HOSTS
    from tests.support.bybit_sim import HOSTS as BYBIT_HOSTS
    from tests.support.live_env import TEST_PASSPHRASE
    from tests.support.okx_sim import HOSTS as OKX_HOSTS
    from tests.support.redirect import redirect_session

    spot_venue, perp_venue = spec.leg_venues
    if spot_venue != "binance" or perp_venue not in PERP_VENUES:
        raise InvalidInput("venues", spec.leg_venues, f"spot on binance, perp on one of {list(PERP_VENUES)}")
    ctx = ssl.create_default_context(cafile=os.environ["HEDGE_TEST_SIM_CA"])
    key, secret = os.environ["HEDGE_TEST_SIM_KEY"], os.environ["HEDGE_TEST_SIM_SECRET"]
    kw: dict[str, Any] = {"timeout_ms": 3000, "enable_rate_limit": False, "fill_poll_interval": 0.01}
    bport = int(os.environ["HEDGE_TEST_SIM_PORT"])
    spot = CcxtLiveAdapter("binance", Credentials("binance", key, secret, source="test"),
                           session=redirect_session({h: bport for h in HOSTS + WS_HOSTS}, ctx), **kw)
    if perp_venue == "bybit":
        port = int(os.environ["HEDGE_TEST_BYBIT_PORT"])
        perp = CcxtLiveAdapter("bybit", Credentials("bybit", key, secret, source="test"),
                               session=redirect_session({h: port for h in BYBIT_HOSTS}, ctx), **kw)
    else:
        port = int(os.environ["HEDGE_TEST_OKX_PORT"])
        perp = CcxtLiveAdapter("okx", Credentials("okx", key, secret, TEST_PASSPHRASE, source="test"),
                               session=redirect_session({h: port for h in OKX_HOSTS}, ctx), **kw)
    return RoutedAdapter(spot, perp)
