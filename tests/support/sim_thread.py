"""The Binance simulator's HTTPS server on its own event-loop thread, so it outlives the runner processes
a test starts and kills (tests/support/binance_sim.py; real ccxt reaches it through the redirect)."""

from __future__ import annotations

import asyncio
import threading

from tests.support import live_env as sim_env
from tests.support.binance_sim import HOSTS, WS_HOSTS, BinanceSim, SimServer
from tests.support.live_env import TEST_KEY, TEST_SECRET
from tests.support.loop_thread import stop_loop_thread

__all__ = ["PRICE", "SimThread"]

PRICE = 40_000.0


class SimThread:
    """The simulator's HTTPS server on its own event loop thread."""

    def __init__(self, *, spot_fee_in_received: bool = True) -> None:
        self.sim = BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET, spot_balances={"USDT": 10_000.0},
                              spot_fee_in_received=spot_fee_in_received)
        self.sim.set_price("BTCUSDT", PRICE)
        self.sim.set_funding_rate("BTCUSDT", 0.0005)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = SimServer(self.sim, sim_env.test_ca(), hosts=HOSTS + WS_HOSTS)
        asyncio.run_coroutine_threadsafe(self.server.__aenter__(), self.loop).result(30)

    def close(self) -> None:
        stop_loop_thread(self.loop, self.thread, lambda: self.server.__aexit__(None, None, None))
