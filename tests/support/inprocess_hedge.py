"""A live hedge run IN PROCESS by the runner's own classes (Supervisor, HedgeTask) over a given adapter, for the
tests that drive it against local venue simulators (tests/test_runner_freshness.py, tests/test_xvenue_live.py);
no tests here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from hedge_core.runner.hedge import HedgeSpec, HedgeTask
from hedge_core.runner.supervisor import Supervisor
from hedge_core.store import Store

__all__ = ["running_hedge", "stop", "until"]


async def until(pred: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``pred`` every 20 ms until it is truthy (its value), or fail naming ``what`` after ``timeout`` s."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = pred()
        if v:
            return v
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def running_hedge(tmp_path: Path, adapter: Any, params: dict[str, Any], *, hedge_id: str,
                        **spec_kw: Any) -> tuple[Supervisor, HedgeTask, Store]:
    """A started live hedge (``params`` inline, feed ``ticker`` polled every 50 ms unless ``spec_kw`` says
    otherwise) running as a task of a Supervisor over ``tmp_path``: (supervisor, task, store)."""
    store = Store(tmp_path / "db.duckdb", hold=True)
    sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
    spec = HedgeSpec(**{"hedge_id": hedge_id, "params_inline": params, "mode": "live", "feed": "ticker",
                        "poll_s": 0.05, **spec_kw})
    task = HedgeTask(spec, sup._params_for(spec), sup.journal, adapter, sup._feed_factory, sup)
    await task.start_new(pd.Timestamp.now(tz="UTC"))
    sup.hedges[spec.hedge_id] = task
    task.task = asyncio.create_task(task.run())
    return sup, task, store


async def stop(task: HedgeTask, store: Store, *, close_adapter: bool = False) -> None:
    """Cancel the hedge's task, close the supervisor's journal and the store; ``close_adapter``: and close the
    hedge's adapter, as the runner's shutdown does (for an adapter built for this hedge alone, e.g. by an adapter
    factory; an adapter the test's venue environment owns is closed by that environment)."""
    task.task.cancel()
    try:
        await task.task
    except asyncio.CancelledError:
        pass
    if close_adapter:
        await task.raw_adapter.close()
    if task.sup is not None:
        task.sup.journal.close()  # its WAL segment: open until closed, even after the store is (tests/conftest.py)
    store.close()
