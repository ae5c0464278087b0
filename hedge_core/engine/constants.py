"""Engine constants the event-driven engine and the fast kernels (``hedge_core.backtest.fast``) share.

Plain ints/floats: numba freezes them into the kernels as compile-time constants, and the engine
(``engine.step``, ``engine.guards``) reads the same names, so the two paths cannot drift apart.
"""

from __future__ import annotations

from typing import Final

#: Order rounds per rebalance / close phase before the engine gives up on dust.
MAX_ORDER_ROUNDS: Final = 6
#: Window of the order-rate guard (orders per minute), seconds.
ORDER_RATE_WINDOW_S: Final = 60.0
#: Cooldown after a re-armed exit before the strategy may enter again, seconds.
REARM_COOLDOWN_S: Final = 1
