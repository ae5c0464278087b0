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


def test_a_journal_whose_flush_fails_at_close_still_closes_its_segment_and_keeps_its_rows(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Journal.close when the store refuses the flush: the error is raised, the WAL segment's file is closed
    anyway (before, it stayed open until the journal was collected) and its row is replayed by the next journal."""
    from hedge_core.runner.journal import Journal

    j = Journal(store, tmp_path / "wal")
    j.transition("w1", {"ts": START, "from_state": None, "to_state": "ANALYZING_MARKET", "trigger_name": "START",
                        "reason": "test"})
    seg = j._wal

    def refused(*_a: object, **_kw: object) -> None:
        raise OSError("disk full (test)")

    monkeypatch.setattr(store, "write_table", refused)
    with pytest.raises(OSError, match="disk full"):
        j.close()
    assert seg.closed and j._wal is None
    monkeypatch.undo()
    assert Journal(store, tmp_path / "wal").replay_wal() == 1
    assert list(store.read_table("transitions", hedge_id="w1")["trigger_name"]) == ["START"]


def test_a_failed_final_snapshot_is_logged_and_the_journal_is_closed_all_the_same(
        store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The snapshot at shutdown fails (before: the error left shutdown before the journal was closed, its WAL
    segment open): shutdown logs it, closes the journal and returns; the journaled rows are in the store."""
    async def go() -> None:
        sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0, snapshot_dir=tmp_path / "snap")
        await sup.start_hedge(request("f1"))
        assert sup.journal._wal is not None

        def broken(force: bool = False) -> None:
            raise OSError("snapshot directory gone (test)")

        sup.snapshot = broken  # type: ignore[method-assign]
        with caplog.at_level("ERROR"):
            await sup.shutdown(flatten=False)
        assert sup.journal._wal is None
        assert any("final journal flush or snapshot failed" in r.getMessage() for r in caplog.records)
        assert "f1" in set(store.read_table("hedge_runs")["hedge_id"])

    asyncio.run(go())
