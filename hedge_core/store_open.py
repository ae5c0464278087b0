"""Opening the store for a command: the one place where store-open errors get their fix.

Every ``hedge`` command that touches a database opens it through :func:`open_store`:

- a command that only reads (``write=False``) never creates a database or its folder: a mistyped
  ``--db`` is refused naming the path (:class:`~hedge_core.store.StoreMissing`);
- a file that is not a DuckDB database (empty, truncated, garbage) is refused naming the file
  (:class:`~hedge_core.store.StoreUnreadable`);
- a file the runner holds is refused at once, naming the runner's pid and what to do (stop it, or
  read its snapshot); a file another process holds is waited for (``$HEDGE_LOCK_WAIT`` seconds,
  default 15) and then refused naming the holder's pid (:class:`~hedge_core.store.StoreBusy`).

The runner is recognised by its ``runner.json`` (``$HEDGE_RUNNER_HOME`` or ``data/runner``): a
live pid whose ``db`` is this file. Only ``os.kill(pid, 0)`` and path comparisons are used here:
nothing opens the database file except DuckDB.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from hedge_core.store_paths import StoreBusy, StoreMissing, default_db_path

if TYPE_CHECKING:  # DuckDB and pandas load only when a database is really opened
    from hedge_core.store import Store

__all__ = ["LOCK_WAIT_ENV", "RunnerHold", "open_store", "runner_holding"]

LOCK_WAIT_ENV = "HEDGE_LOCK_WAIT"
DEFAULT_LOCK_WAIT_S = 15.0


@dataclass(frozen=True)
class RunnerHold:
    """A live runner process that owns a database file."""

    pid: int
    home: Path
    snapshot: Path | None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def runner_holding(path: Path, home: str | os.PathLike[str] | None = None) -> RunnerHold | None:
    """The runner (from its ``runner.json``) that holds ``path``, or None."""
    from hedge_core.runner.client import runner_home

    h = runner_home(home)
    try:
        info = json.loads((h / "runner.json").read_text(encoding="utf-8"))
        pid = int(info["pid"])
        db = Path(info["db"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _same_file(db, path) or not _alive(pid):
        return None
    snap = info.get("snapshot_dir")
    return RunnerHold(pid, h, Path(snap) / "latest.duckdb" if snap else None)


def _runner_busy(path: Path, hold: RunnerHold, *, write: bool) -> StoreBusy:
    snap = (f"read its snapshot instead: --db {hold.snapshot}" if hold.snapshot is not None
            else "read through its API (hedge runner status, hedge hedges)")
    if write:
        todo = ("stop the runner first (`hedge runner stop --keep` keeps open positions for its next start), "
                f"run this again, then `hedge runner start`; or {snap}")
    else:
        todo = f"{snap} (refreshed every few seconds), or stop the runner (`hedge runner stop --keep`)"
    return StoreBusy(f"database {path} is held by the hedge runner (pid {hold.pid}, home {hold.home}); "
                     f"DuckDB allows one writer per file, so this command is refused: {todo}",
                     path=str(path), holder_pid=hold.pid)


def _lock_wait() -> float:
    raw = os.environ.get(LOCK_WAIT_ENV)
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_LOCK_WAIT_S
    except ValueError:
        return DEFAULT_LOCK_WAIT_S


def open_store(db: str | os.PathLike[str] | None, *, write: bool, hold: bool = False,
               lock_timeout: float | None = None) -> Store:
    """The store of a command, or a typed error whose message names the file and the fix.

    Parameters
    ----------
    db : the ``--db`` value; None means ``$HEDGE_DB`` or ``data/hedge.duckdb``.
    write : the command writes (may create the file); False refuses a missing file.
    hold : keep the connection for the store's life (see :class:`Store`).
    lock_timeout : seconds to wait for another process's hold; default ``$HEDGE_LOCK_WAIT`` or 15.

    Raises
    ------
    StoreBusy, StoreUnreadable, StoreMissing
    """
    path = Path(db) if db is not None else default_db_path()
    runner = runner_holding(path)
    if runner is not None and runner.pid != os.getpid():
        raise _runner_busy(path, runner, write=write)
    if not write and str(path) != ":memory:" and not path.exists():
        raise StoreMissing(str(path))  # what Store(must_exist=True) says, without importing DuckDB for it
    from hedge_core.store import Store

    try:
        return Store(path, hold=hold, must_exist=not write,
                     lock_timeout=_lock_wait() if lock_timeout is None else lock_timeout)
    except StoreBusy as exc:
        runner = runner_holding(path)
        if runner is not None and runner.pid == exc.holder_pid:
            raise _runner_busy(path, runner, write=write) from None
        raise
