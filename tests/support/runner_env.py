"""Shared helpers of the runner tests (no tests here): a temp environment with demo data, a runner
subprocess, waiting utilities, and the paper venue's persisted state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
DEMO_START = "2024-01-01T05:00Z"  # funding settles at 08:00: a carry enters at the 09:00 update


def carry_params(**kw: Any) -> Any:
    from hedge_core.params.models import CarryParams

    base = dict(notional=1000.0, min_funding_rate=0.00001, min_net_carry=-1.0)
    base.update(kw)
    return CarryParams(**base)


@dataclass
class Env:
    root: Path
    db: Path
    home: Path
    params: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        e = {k: v for k, v in os.environ.items() if not k.startswith("HEDGE_")}
        e.update({"HEDGE_DB": str(self.db), "HEDGE_RUNNER_HOME": str(self.home), "HEDGE_PARAMS_DIR": str(self.params),
                  "PYTHONPATH": str(REPO), "HEDGE_OFFLINE": "1"})
        return e

    def start_runner(self, extra_env: dict[str, str] | None = None, args: list[str] | None = None,
                     wait: bool = True) -> subprocess.Popen:
        env = {**self.env, **(extra_env or {})}  # per start: a kill point must not leak into the restart
        with open(self.root / f"runner-{len(self.procs)}.err", "w") as log:  # the child keeps its own descriptor
            p = subprocess.Popen([sys.executable, "-m", "hedge_core.runner", "--heartbeat", "0.2", *(args or [])],
                                 cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        if wait:
            self.client(p)
        return p

    def client(self, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> Any:
        from hedge_core.runner.client import RunnerClient, RunnerNotRunning

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"runner exited early with {proc.returncode}: {self.last_log()}")
            try:
                c = RunnerClient.discover(self.home)
                if proc is None or c.pid == proc.pid:
                    return c
            except RunnerNotRunning:
                pass
            time.sleep(0.05)
        raise AssertionError(f"runner did not answer: {self.last_log()}")

    def last_log(self, n: int = 3000) -> str:
        files = sorted(self.root.glob("runner-*.err"))
        return files[-1].read_text()[-n:] if files else ""

    def cleanup(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(10)

    def store(self) -> Any:
        """The database for reads. While a runner of this env runs it is the single writer and holds
        the file for its whole life: reads then open a snapshot it takes now (read-only, current)."""
        if any(p.poll() is None for p in self.procs):
            from hedge_core.runner.client import open_snapshot

            self.client().snapshot()
            return open_snapshot(self.db)
        from hedge_core.store import Store

        return Store(self.db, hold=False)


def make_env(tmp: Path, *, days: float = 10.0, export: dict[str, Any] | None = None) -> Env:
    from hedge_core.data.demo import seed_demo
    from hedge_core.params import store as param_store
    from hedge_core.store import Store

    e = Env(tmp, tmp / "db" / "hedge.duckdb", tmp / "home", tmp / "params")
    with Store(e.db) as st:
        seed_demo(st, days=days)
    param_store.export(carry_params(**(export or {})), "carry-test", created_from="test", root=e.params, db=e.db,
                       kpis={"sharpe": 1.0})
    return e


def wait_for(pred: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def wait_exit(p: subprocess.Popen, timeout: float = 60.0) -> int:
    return p.wait(timeout)


def paper_state(env: Env, hedge_id: str) -> dict[str, Any]:
    return json.loads((env.home / "paper" / f"{hedge_id}.json").read_text())


def paper_exchange(env: Env, hedge_id: str) -> Any:
    from hedge_core.exchange.paper import PaperExchange

    return PaperExchange.load(env.home / "paper" / f"{hedge_id}.json")


def journal(env: Env, table: str, hedge_id: str) -> pd.DataFrame:
    """A journal table as a restarted runner sees it: WAL segments left by a killed runner are
    upserted first (what the runner does on start). Only while no runner holds the database."""
    from hedge_core.runner.journal import Journal
    from hedge_core.store import Store, StoreBusy

    running = any(p.poll() is None for p in env.procs)  # a live runner flushes its own WAL
    if not running and (env.home / "journal").is_dir() and any((env.home / "journal").glob("journal-*.jsonl")):
        try:
            with Store(env.db, lock_timeout=0.5) as st:
                Journal(st, env.home / "journal").replay_wal()
        except StoreBusy:
            pass
    return env.store().read_table(table, hedge_id=hedge_id)
