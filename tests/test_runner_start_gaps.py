"""A failed start changes nothing, a hedge id is used once, and a finished hedge frees its venue clients
(runner.hedge_start, HedgeTask.finish). Paper, in process, on the demo market.

- a start that fails AFTER the preflight (here: the task's start raises once it has built its context and written
  its first rows): before, the adapter was closed but the paper state file stayed and the ``hedge_runs`` row and the
  START transition reached the journal, so a restarted runner "recovered" a hedge that never ran and a retry with
  the same id resumed the failed start's file;
- a hedge id the journal already has (a COMPLETED hedge of an earlier runner): before, the new start loaded the old
  hedge's paper state file and its rows overwrote the old hedge's history (the journal upserts on the hedge id);
- a COMPLETED hedge: before, its adapter and market data stayed open until the runner stopped.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pandas as pd
import pytest

from hedge_core.errors import InvalidInput, StartFailed
from hedge_core.engine.states import State
from hedge_core.runner.hedge import HedgeTask
from hedge_core.runner.supervisor import Supervisor
from hedge_core.store import Store
from tests.support.best_perp import START
from tests.support.demo_store import store  # noqa: F401 - the seeded store fixture

pytestmark = pytest.mark.integration  # an in-process runner (Supervisor) on a DuckDB store

CARRY = {"strategy": "carry", "notional": 1000.0, "min_funding_rate": 0.00001, "min_net_carry": -1.0}
RICH = {"spot": {"USDT": 100_000.0}, "perp": {"USDT": 100_000.0}}


def request(hedge_id: str = "g1", **kw) -> dict:
    return {"hedge_id": hedge_id, "mode": "paper", "feed": "replay", "data_venue": "demo", "start": str(START),
            "end": str(START + pd.Timedelta(hours=30)), "speed": 1.0, "venue": "binance", "params_inline": CARRY,
            "balances": RICH, **kw}


def paper_files(home: Path) -> list[str]:
    folder = home / "paper"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def wal_rows(home: Path, hedge_id: str) -> list[dict]:
    """Rows of ``hedge_id`` in the journal's WAL segments (what a killed runner's successor would replay)."""
    out = []
    for seg in sorted((home / "journal").glob("journal-*.jsonl")):
        out += [r for r in map(json.loads, seg.read_text().splitlines()) if r["r"].get("hedge_id") == hedge_id]
    return out


class Counted:
    """A venue client stand-in: counts ``close``."""

    def __init__(self) -> None:
        self.closed = 0

    async def close(self) -> None:
        self.closed += 1


def test_a_start_failing_after_the_preflight_keeps_nothing_and_the_retry_starts_clean(
        store: Store, tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    real_start = HedgeTask.start_new
    built: list[HedgeTask] = []
    seen: list[list[str]] = []

    async def failing(self, ts):
        await real_start(self, ts)  # the context built, the run row and the START transition written ...
        built.append(self)
        seen.append(paper_files(home))  # the paper venue's file was written by now
        raise RuntimeError("the venue hung up")  # ... then the start fails

    async def go() -> None:
        sup = Supervisor(store, home, dms_timeout_s=600.0)
        monkeypatch.setattr(HedgeTask, "start_new", failing)
        with pytest.raises(StartFailed) as err:
            await sup.start_hedge(request())
        assert "hedge g1 not started: RuntimeError: the venue hung up" in str(err.value)
        assert err.value.hedge_id == "g1" and isinstance(err.value.cause, RuntimeError)
        assert len(built) == 1 and built[0].driver is not None  # it did get past the preflight and into the start
        assert seen == [["g1.json"]]
        assert paper_files(home) == [] and not sup.hedges  # the paper venue's file removed, nothing kept
        assert wal_rows(home, "g1") == []  # nothing in the WAL ...
        assert "g1" not in set(sup.journal.runs()["hedge_id"])  # ... nor in the store
        assert await Supervisor(store, home, dms_timeout_s=600.0).recover_all() == []  # nothing to "recover"

        monkeypatch.setattr(HedgeTask, "start_new", real_start)
        out = await sup.start_hedge(request(speed=1e9))  # the retry, same id: from its own balances
        h = sup.hedges["g1"]
        assert out["hedge_id"] == "g1" and paper_files(home) == ["g1.json"]
        assert (await h.raw_adapter.fetch_balance("spot"))["USDT"].total == pytest.approx(100_000.0)
        runs = sup.journal.runs()
        assert list(runs[runs["hedge_id"] == "g1"]["state"]) == [State.ANALYZING_MARKET]
        starts = sup.journal.store.read_table("transitions", hedge_id="g1")
        assert list(starts["trigger_name"][:1]) == ["START"] and starts["seq"].is_unique
        await asyncio.wait_for(h.task, 60)
        await sup.shutdown(flatten=False)

    asyncio.run(go())


def test_an_invalid_input_raised_by_the_start_keeps_its_field_and_keeps_nothing(store: Store, tmp_path: Path,
                                                                               monkeypatch) -> None:
    home = tmp_path / "home"

    async def refusing(self, ts):
        raise InvalidInput("symbol", "BTC/USDT", "a market of binance")

    async def go() -> None:
        sup = Supervisor(store, home, dms_timeout_s=600.0)
        monkeypatch.setattr(HedgeTask, "start_new", refusing)
        with pytest.raises(InvalidInput) as err:
            await sup.start_hedge(request())
        assert err.value.field == "symbol" and paper_files(home) == [] and wal_rows(home, "g1") == []
        sup.journal.close()

    asyncio.run(go())


def test_a_used_hedge_id_is_refused_naming_the_hedge_and_its_state_and_its_file_is_left_alone(
        store: Store, tmp_path: Path) -> None:
    home = tmp_path / "home"

    async def go() -> None:
        first = Supervisor(store, home, dms_timeout_s=600.0)
        await first.start_hedge(request("u1"))
        with pytest.raises(InvalidInput, match=r"hedge u1 is ANALYZING_MARKET \(task (starting|running)"):
            await first.start_hedge(request("u1"))  # the same runner: still running
        await first.command("u1", "stop")  # flat: straight to COMPLETED
        assert first.hedges["u1"].driver.ctx.state is State.COMPLETED
        await first.shutdown(flatten=False)
        kept = (home / "paper" / "u1.json").read_bytes()

        again = Supervisor(store, home, dms_timeout_s=600.0)  # a restarted runner: a COMPLETED hedge is not loaded
        assert await again.recover_all() == [] and not again.hedges
        with pytest.raises(InvalidInput) as err:
            await again.start_hedge(request("u1", balances={"spot": {"USDT": 5_000.0}, "perp": {"USDT": 5_000.0}}))
        assert err.value.field == "hedge_id" and "hedge u1 is COMPLETED (paper, started" in str(err.value)
        assert "ended 20" in str(err.value) and "choose another id" in str(err.value)
        assert (home / "paper" / "u1.json").read_bytes() == kept and not again.hedges
        runs = again.journal.runs()
        assert list(runs[runs["hedge_id"] == "u1"]["state"]) == [State.COMPLETED]  # its history untouched

        (home / "paper" / "o1.json").write_text("{}")  # a file with no journal row behind it
        with pytest.raises(InvalidInput, match=r"o1\.json exists but the journal has no hedge o1"):
            await again.start_hedge(request("o1"))
        assert (home / "paper" / "o1.json").read_text() == "{}"
        again.journal.close()

    asyncio.run(go())


def test_a_completed_hedge_closes_its_adapter_and_market_data_at_the_next_beat(store: Store, tmp_path: Path) -> None:
    async def go() -> None:
        sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0, heartbeat_s=0.05)
        sup.start_background()
        await sup.start_hedge(request("c1"))  # a replay at 1x: its feed waits an hour of wall time for a bar
        other = await sup.start_hedge(request("c2"))
        h, o = sup.hedges["c1"], sup.hedges["c2"]
        md = h.market_data = Counted()  # what a paper hedge on live bars holds: the venue's public data
        await asyncio.sleep(0.2)
        assert not h.clients_closed and md.closed == 0  # running: open
        await sup.command("c1", "stop")
        for _ in range(200):
            if h.clients_closed:
                break
            await asyncio.sleep(0.05)
        assert h.clients_closed and md.closed == 1 and h.raw_adapter.closed
        assert h.task.done() and h.status == "stopped"  # its feed loop stopped too
        assert not o.clients_closed and not o.raw_adapter.closed and other["state"] == State.ANALYZING_MARKET
        await sup.shutdown(flatten=False)
        assert md.closed == 1 and o.raw_adapter.closed  # closed once; the other hedge at shutdown

    asyncio.run(go())


def test_a_journal_dropped_without_close_closes_its_wal_segment_and_keeps_its_rows(store: Store, tmp_path: Path) -> None:
    import gc
    import warnings

    from hedge_core.runner.journal import Journal

    wal = tmp_path / "wal"
    j = Journal(store, wal)
    j.transition("w1", {"ts": START, "from_state": None, "to_state": "ANALYZING_MARKET", "trigger_name": "START",
                        "reason": "test"})
    seg = j._wal
    gc.collect()  # what earlier tests in this worker left is collected (and warned about) outside the check
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        del j
        gc.collect()
    ours = [w for w in got if issubclass(w.category, ResourceWarning) and str(wal) in str(w.message)]
    assert seg.closed and not ours
    assert Journal(store, wal).replay_wal() == 1  # the row is in the segment for the next runner
    assert list(store.read_table("transitions", hedge_id="w1")["trigger_name"]) == ["START"]
