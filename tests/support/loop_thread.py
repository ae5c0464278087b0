"""Stop a simulator's event-loop thread cleanly (tests/support/sim_thread.py, bybit_thread.py, fault_matrix.py):
the server closed on its loop, every task still pending there cancelled and awaited, async generators closed,
the loop stopped, its thread joined and the loop closed. Before, the loop was only stopped: its leftover tasks
were reported as "Task was destroyed but it is pending" and the loop as "unclosed event loop" when collected, in
whichever later test the collector ran. No tests here."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

__all__ = ["stop_loop_thread"]


def stop_loop_thread(loop: asyncio.AbstractEventLoop, thread: threading.Thread,
                     close_server: Callable[[], Awaitable[object]], timeout_s: float = 30.0) -> None:
    """Run ``close_server()`` on ``loop`` (served by ``thread``), then cancel and await what is left there, stop the
    loop, join ``thread`` (at most ``timeout_s`` seconds) and close the loop. A loop already closed is left alone."""
    if loop.is_closed():
        return

    async def down() -> None:
        await close_server()
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in rest:
            t.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
        await loop.shutdown_asyncgens()

    try:
        asyncio.run_coroutine_threadsafe(down(), loop).result(timeout_s)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout_s)
        if not thread.is_alive():
            loop.close()
