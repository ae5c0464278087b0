"""Runner-side hook (no tests here): build the live ccxt adapter against the local Binance simulator.

The runner subprocess imports :func:`make_adapter` through ``HEDGE_RUNNER_ADAPTER_FACTORY`` and
reaches the simulator (running in the test process) through the redirect session: real ccxt,
production URLs, name resolution mapped to 127.0.0.1, TLS verified against the test CA.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

FACTORY = "tests.support.simfactory:make_adapter"


def make_adapter(spec: Any) -> Any:
    from hedge_core.exchange.credentials import Credentials
    from tests.support.binance_sim import HOSTS, WS_HOSTS
    from tests.support.redirect import sim_adapter

    port = int(os.environ["HEDGE_TEST_SIM_PORT"])
    ctx = ssl.create_default_context(cafile=os.environ["HEDGE_TEST_SIM_CA"])
    # REST and the public websocket streams (ccxt.pro shares the adapter's session, closed with the adapter)
    creds = Credentials("binance", os.environ["HEDGE_TEST_SIM_KEY"], os.environ["HEDGE_TEST_SIM_SECRET"], source="test")
    return sim_adapter("binance", creds, {h: port for h in HOSTS + WS_HOSTS}, ctx, timeout_ms=3000,
                       enable_rate_limit=False, fill_poll_interval=0.01)
