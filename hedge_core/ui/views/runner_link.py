"""How the panel finds the runner, starts it when it is not running, and reads while it holds the DB.

This is the panel's only shell module (processes and files); the other view models are pure.

- :func:`connect` discovers the runner of ``$HEDGE_RUNNER_HOME`` (``runner.json`` + token); when
  none answers and ``autostart`` is on, it starts ``python -m hedge_core.runner`` DETACHED (its own
  session, output to ``<home>/runner.out``), so closing the browser or restarting the panel never
  stops a hedge; the next page load simply re-attaches. A lock file keeps two page loads from
  starting two runners.
- :func:`reader` is the store every page reads from: the runner's read-only snapshot of the live
  database while a runner runs (it holds the live file read-write), else the file itself opened
  per call. The panel never opens the live file while the runner holds it.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from hedge_core.runner.client import (
    RunnerClient,
    RunnerNotRunning,
    open_snapshot,
    runner_home,
    snapshot_path,
)
from hedge_core.store import Store, default_db_path

__all__ = ["RunnerLink", "connect", "start_runner", "reader", "autostart_enabled", "stop_runner"]

AUTOSTART_ENV = "HEDGE_PANEL_AUTOSTART"  # "0" = never start a runner from the panel (tests, read-only use)


@dataclass(frozen=True)
class RunnerLink:
    """The panel's view of the runner: a client when one answers, else why not and what to do."""

    client: RunnerClient | None
    home: Path
    db: Path
    started: bool = False  # this call started it
    message: str = ""  # shown when client is None (or a warning when the runner serves another DB)

    @property
    def up(self) -> bool:
        return self.client is not None


def autostart_enabled(env: dict[str, str] | None = None) -> bool:
    env = dict(os.environ) if env is None else env
    return env.get(AUTOSTART_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _discover(home: Path, timeout: float = 5.0) -> RunnerClient | None:
    try:
        return RunnerClient.discover(home, timeout=timeout)
    except RunnerNotRunning:
        return None
    except Exception:  # noqa: BLE001 - a half-written runner.json or a dying runner: treat as absent
        return None


@contextmanager
def _spawn_lock(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".panel-start.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def start_runner(db: Path, home: Path, *, wait: float = 45.0) -> RunnerClient:
    """Start a detached runner on ``db`` with ``home`` and wait until its API answers.

    Raises
    ------
    RunnerNotRunning
        It exited (e.g. the database is held by another process) or did not answer in time; the
        message names the log file to read.
    """
    home.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "hedge_core.runner", "--home", str(home), "--db", str(db)]
    with open(home / "runner.out", "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True,
                                close_fds=True)
    threading.Thread(target=proc.wait, name="runner-reaper", daemon=True).start()  # no zombie when it exits
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            hint = " (the database is held by another process: close it, e.g. a notebook's Store, " \
                   "or stop the other runner)" if code == 3 else ""
            raise RunnerNotRunning(f"the runner exited with code {code}{hint}; see {home / 'runner.out'}")
        c = _discover(home)
        if c is not None and c.pid == proc.pid:
            return c
        time.sleep(0.1)
    raise RunnerNotRunning(f"the runner did not answer within {wait:g} s; see {home / 'runner.out'}")


def connect(db: str | os.PathLike[str] | None = None, home: str | os.PathLike[str] | None = None, *,
            autostart: bool | None = None) -> RunnerLink:
    """Attach to the running runner, or start one (when ``autostart``), and say what happened."""
    dbp = Path(db or default_db_path()).resolve()
    h = runner_home(home)
    auto = autostart_enabled() if autostart is None else autostart
    c = _discover(h)
    started = False
    if c is None and auto:
        with _spawn_lock(h):
            c = _discover(h)  # another page load may have started it while we waited for the lock
            if c is None:
                try:
                    c = start_runner(dbp, h)
                    started = True
                except RunnerNotRunning as exc:
                    return RunnerLink(None, h, dbp, message=f"Could not start the runner: {exc}")
    if c is None:
        return RunnerLink(None, h, dbp, message=f"No runner is running (home {h}). Start it with "
                          "`hedge runner start`, or let the panel start it (unset HEDGE_PANEL_AUTOSTART=0).")
    msg = ""
    try:
        served = Path(str(c.health().get("db", ""))).resolve()
        if served != dbp:
            msg = f"The runner serves {served}, not this panel's database {dbp}: hedges and data may differ."
    except Exception:  # noqa: BLE001
        pass
    return RunnerLink(c, h, dbp, started=started, message=msg)


def reader(link: RunnerLink) -> Store:
    """The store to read from: the runner's snapshot while it runs, else the database file (per call)."""
    if link.up:
        try:
            return open_snapshot(link.db)
        except RunnerNotRunning:
            try:
                link.client.snapshot()  # type: ignore[union-attr]
                return open_snapshot(link.db)
            except Exception:  # noqa: BLE001 - fall through to the file: better a short wait than nothing
                pass
    return Store(link.db, hold=False)


def snapshot_age_s(link: RunnerLink, now: float | None = None) -> float | None:
    """Seconds since the snapshot file was last replaced (None without one)."""
    p = snapshot_path(link.db)
    try:
        return (time.time() if now is None else now) - p.stat().st_mtime
    except OSError:
        return None


def stop_runner(link: RunnerLink, *, flatten: bool | None = None, wait: float = 60.0) -> None:
    """Ask the runner to stop (positions kept by each hedge's policy unless ``flatten``) and wait for it."""
    if link.client is None:
        return
    pid = link.client.pid
    link.client.shutdown(flatten)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    raise RunnerNotRunning(f"runner pid {pid} still running after {wait:g} s")


def _alive(pid: Any) -> bool:
    """Whether ``pid`` runs (a runner this process started is reaped, so it is no zombie)."""
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child: ask the kernel
    except OSError:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def runner_info(link: RunnerLink) -> dict[str, Any]:
    """Address, pid and home of the runner (never the token)."""
    if link.client is None:
        return {"address": None, "pid": None, "home": str(link.home)}
    return {"address": link.client.base, "pid": link.client.pid, "home": str(link.home)}
