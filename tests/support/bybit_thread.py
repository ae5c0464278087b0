"""The Bybit simulator's HTTPS server on its own event-loop thread, so it outlives the runner processes a
test starts and kills (tests/support/bybit_sim.py; the Binance one is tests/support/sim_thread.py)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from tests.support import live_env as sim_env
from tests.support.binance_sim import SimServer
from tests.support.bybit_sim import HOSTS, BybitSim
from tests.support.live_env import TEST_KEY, TEST_SECRET
from tests.support.loop_thread import stop_loop_thread

__all__ = ["BybitThread"]


class BybitThread:
    """A :class:`BybitSim` (``usdt`` in the unified wallet, BTCUSDT at ``price``, funding ``rate``) served
    on 127.0.0.1 from its own event loop thread."""

    def __init__(self, *, usdt: float = 10_000.0, price: float = 40_000.0, rate: float = 0.0005) -> None:
        self.sim = BybitSim(api_key=TEST_KEY, secret=TEST_SECRET, coins={"USDT": usdt})
        self.sim.set_price("BTCUSDT", price)
        self.sim.funding_rate["BTCUSDT"] = rate
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = SimServer(self.sim, sim_env.test_ca(), hosts=HOSTS)  # type: ignore[arg-type]
        asyncio.run_coroutine_threadsafe(self.server.__aenter__(), self.loop).result(30)

    def call(self, fn: Any, *a: Any, **kw: Any) -> Any:
        """Run a simulator control call on the simulator's own loop."""

        async def run() -> Any:
            return fn(*a, **kw)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def close(self) -> None:
        stop_loop_thread(self.loop, self.thread, lambda: self.server.__aexit__(None, None, None))
