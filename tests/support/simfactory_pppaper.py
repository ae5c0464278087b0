"""Runner-side hook for a PAPER perp pair on live bars (no tests here): each venue's public market data through real
ccxt to a local simulator, Binance (USD-M) on ``HEDGE_TEST_SIM_PORT`` and Bybit (linear) on
``HEDGE_TEST_BYBIT_PORT``, with the CA of ``HEDGE_TEST_SIM_CA``.

The runner subprocess imports :func:`make_market_data` through ``HEDGE_RUNNER_ADAPTER_FACTORY``: a paper hedge's
orders never reach it (the runner builds its two paper venues itself); its feed reads each venue's bars, funding and
funding schedule through the adapter this returns for that venue (``Supervisor._market_data``, called once per venue
by ``exchange.pair_feed.pair_bars_feed``).
"""

from __future__ import annotations

import os
import ssl
from typing import Any

FACTORY = "tests.support.simfactory_pppaper:make_market_data"


def make_market_data(spec: Any) -> Any:
    from hedge_core.errors import InvalidInput
    from tests.support.binance_sim import HOSTS, WS_HOSTS
    from tests.support.bybit_sim import HOSTS as BYBIT_HOSTS
    from tests.support.redirect import sim_adapter

    ctx = ssl.create_default_context(cafile=os.environ["HEDGE_TEST_SIM_CA"])
    kw: dict[str, Any] = {"timeout_ms": 3000, "enable_rate_limit": False}
    if spec.venue == "binance":
        port, hosts = int(os.environ["HEDGE_TEST_SIM_PORT"]), HOSTS + WS_HOSTS
    elif spec.venue == "bybit":
        port, hosts = int(os.environ["HEDGE_TEST_BYBIT_PORT"]), BYBIT_HOSTS
    else:
        raise InvalidInput("venue", spec.venue, "binance or bybit (the simulators this hook reaches)")
    return sim_adapter(spec.venue, None, {h: port for h in hosts}, ctx, **kw)  # closes its own session
