"""The runner's shutdown leaves nothing running (in process, paper on the demo market): its background loops
have ended when ``Supervisor.shutdown`` returns (before, they were only cancelled: a caller whose event loop
closed next saw "Task was destroyed but it is pending"), its watchdog thread has stopped (before, it lived on
for up to one 0.5 s sleep), the hedges' tasks have ended and the journal's WAL segment is closed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest

from hedge_core.runner.supervisor import Supervisor
from hedge_core.store import Store
from tests.support.best_perp import START
from tests.support.demo_store import store  # noqa: F401 - the seeded store fixture

pytestmark = pytest.mark.integration  # an in-process runner (Supervisor) on a DuckDB store

CARRY = {"strategy": "carry", "notional": 1000.0, "min_funding_rate": 0.00001, "min_net_carry": -1.0}


def request(hedge_id: str) -> dict:
    """A paper carry on the demo market's replay (30 h from START at speed 1: still running when stopped)."""
    return {"hedge_id": hedge_id, "mode": "paper", "feed": "replay", "data_venue": "demo", "start": str(START),
            "end": str(START + pd.Timedelta(hours=30)), "speed": 1.0, "venue": "binance", "params_inline": CARRY,
            "balances": {"spot": {"USDT": 100_000.0}, "perp": {"USDT": 100_000.0}}}


def test_shutdown_returns_with_its_loops_ended_its_watchdog_stopped_and_its_journal_closed(
        store: Store, tmp_path: Path) -> None:
    async def go() -> None:
        sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0, snapshot_dir=tmp_path / "snap",
                         heartbeat_s=0.05, flush_s=0.05, snapshot_s=0.05)
        sup.start_background()
        await sup.start_hedge(request("s1"))
        await asyncio.sleep(0.2)  # every loop has run at least once
        assert sup._watchdog is not None and sup._watchdog.is_alive()
        bg = list(sup._bg)
        assert {t.get_name() for t in bg} == {"heartbeat", "loop-tick", "journal-flush", "book", "snapshots"}
        assert not any(t.done() for t in bg)
        await sup.shutdown(flatten=False)
        # no await between: what shutdown left is what a caller closing its loop right now would find
        assert [t.get_name() for t in bg if not t.done()] == []
        assert all(t.cancelled() for t in bg)
        assert not sup._watchdog.is_alive()
        assert all(h.task is None or h.task.done() for h in sup.hedges.values())
        assert sup.journal._wal is None

    asyncio.run(go())


def test_the_clean_up_guard_names_what_a_supervisor_left_open_and_nothing_after_shutdown(
        store: Store, tmp_path: Path) -> None:
    """tests/conftest.py's autouse guard (tests/support/cleanup.py) can fail: a Supervisor with its loops running
    and a journal row in its WAL is reported with both, and the same Supervisor after shutdown with nothing."""
    from tests.support import cleanup

    cleanup.track_supervisors()

    async def go() -> None:
        sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        assert sup in cleanup.SUPERVISORS  # tracked by the wrapped __init__
        assert cleanup.left_open(sup) == []  # built only: nothing open yet
        sup.start_background()
        await sup.start_hedge(request("g1"))  # its start journaled: the WAL segment opened
        left = cleanup.left_open(sup)
        assert len(left) == 2 and "WAL segment is open" in left[0] and "journal-" in left[0]
        assert "background loops" in left[1] and "heartbeat" in left[1]
        await sup.shutdown(flatten=False)
        assert cleanup.left_open(sup) == []

    asyncio.run(go())
