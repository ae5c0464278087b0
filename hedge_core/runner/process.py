"""The runner process: ``python -m hedge_core.runner [--db ...] [--home ...] [--port 0]``.

Start-up: check the alert channels (``HEDGE_ALERT_*``: exit code 2 when the configuration is bad,
see ``docs/alerts.md``) -> open (hold) the live database -> write the token file (0600) -> index
parameter files -> serve the control API on 127.0.0.1 -> write ``runner.json`` (pid, port) -> reconcile
and recover every unfinished hedge -> run until SIGTERM/SIGINT or ``POST /shutdown``.

Signals: SIGTERM and SIGINT stop opening new positions and then keep or flatten each hedge by
its ``on_shutdown`` policy (``keep`` leaves the positions for the next start to resume).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

from hedge_core.runner.logs import log_event, register_secret, setup_logging

__all__ = ["main", "run_runner", "write_token"]

log = logging.getLogger("hedge_core.runner.process")


def write_token(home: Path) -> str:
    """A fresh random token in ``home/token`` readable by the owner only (0600)."""
    home.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    p = home / "token"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    os.chmod(p, 0o600)
    register_secret(token)
    return token


def _write_info(home: Path, info: dict[str, Any]) -> None:
    tmp = home / ".runner.json.tmp"
    tmp.write_text(json.dumps(info), encoding="utf-8")
    os.replace(tmp, home / "runner.json")


async def run_runner(db: str | None, home: Path, *, port: int = 0, params_root: str | None = None,
                     snapshot_dir: str | None = None, heartbeat_s: float = 1.0, dms_timeout_s: float = 10.0,
                     snapshot_s: float = 2.0, fsync: bool = False) -> int:
    from aiohttp import web  # here, not at module level: `--help` and argument errors answer fast

    from hedge_core.params import store as param_store
    from hedge_core.runner.control_api import LOOPBACK, make_app
    from hedge_core.runner.supervisor import Supervisor
    from hedge_core.store import Store, StoreBusy, default_db_path

    from hedge_core.advice.config import advisor_from_env, interval_from_env
    from hedge_core.errors import InvalidInput
    from hedge_core.runner import notify

    try:  # risk second opinion (HEDGE_ADVISOR*, docs/risk-advisor.md): a bad configuration stops the start here
        advisor, advisor_s = advisor_from_env(), interval_from_env()
    except InvalidInput as exc:
        log_event(log, "advisor configuration refused: runner not started", level=logging.ERROR, error=str(exc))
        return 2
    try:  # alert channels (HEDGE_ALERT_*, docs/alerts.md): a bad configuration stops the start here
        notifier = notify.notifier_from_env()
    except InvalidInput as exc:
        log_event(log, "alert configuration refused: runner not started", level=logging.ERROR, error=str(exc))
        return 2
    db_path = str(db or default_db_path())
    try:
        store = Store(db_path, hold=True, lock_timeout=3.0)
    except StoreBusy as exc:
        log_event(log, "database held by another process: is a runner already running?", level=logging.ERROR,
                  db=db_path, error=str(exc))
        return 3
    snap = Path(snapshot_dir) if snapshot_dir else Path(db_path).parent / "snapshots"
    token = write_token(home)
    sup = Supervisor(store, home, params_root=params_root, snapshot_dir=snap, heartbeat_s=heartbeat_s,
                     dms_timeout_s=dms_timeout_s, snapshot_s=snapshot_s, fsync=fsync)
    notify.attach(notifier, sup.alert_bus)
    try:
        param_store.sync_to_store(store, params_root)
    except Exception as exc:  # noqa: BLE001 - a broken param file must not stop the runner
        log_event(log, "parameter files not indexed", level=logging.WARNING, error=str(exc))
    done = asyncio.Event()

    async def stop(flatten: bool | None = None) -> None:
        await sup.shutdown(flatten=flatten)
        done.set()

    app = make_app(sup, token, on_shutdown=stop)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda s=sig: asyncio.ensure_future(_on_signal(s, stop)))
    sup.start_background()
    from hedge_core.runner.hedge_watch import HedgeWatch  # failed tasks and LTV bands as alerts

    watch = asyncio.create_task(HedgeWatch().run(lambda: list(sup.hedges.values())), name="hedge-watch")
    # risk second opinion per running hedge (docs/risk-advisor.md)
    from hedge_core.runner.advisor_watch import AdvisorWatch

    advise = asyncio.create_task(AdvisorWatch(advisor, advisor_s).run(lambda: list(sup.hedges.values())),
                                 name="advisor-watch")
    recovered = await sup.recover_all()
    _write_info(home, {"pid": os.getpid(), "port": bound, "host": LOOPBACK, "db": db_path,
                       "started_at": str(sup.started), "snapshot_dir": str(snap)})
    log_event(log, "runner started", pid=os.getpid(), port=bound, db=db_path, recovered=recovered)
    await done.wait()
    watch.cancel()
    advise.cancel()
    await runner.cleanup()
    if notifier is not None:
        notifier.close(timeout=5.0)  # deliver what the shutdown raised (a worker thread: the loop is done)
    store.close()
    try:
        info = json.loads((home / "runner.json").read_text(encoding="utf-8"))
        if info.get("pid") == os.getpid():
            (home / "runner.json").unlink()
    except (OSError, json.JSONDecodeError):
        pass
    return 0


async def _on_signal(sig: int, stop: Any) -> None:
    log_event(log, "signal received", signal=signal.Signals(sig).name)
    await stop(None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hedge_core.runner", description="The hedge runner process.")
    ap.add_argument("--db", default=None, help="live DuckDB file (default $HEDGE_DB or data/hedge.duckdb)")
    ap.add_argument("--home", default=None, help="runner folder: token, runner.json, logs, paper states "
                    "(default $HEDGE_RUNNER_HOME or data/runner)")
    ap.add_argument("--port", type=int, default=0, help="control API port on 127.0.0.1 (0 = any free port)")
    ap.add_argument("--params-dir", default=None, help="parameter sets folder (default data/params)")
    ap.add_argument("--snapshot-dir", default=None, help="read-only snapshots folder (default <db dir>/snapshots)")
    ap.add_argument("--heartbeat", type=float, default=1.0, help="heartbeat period, seconds")
    ap.add_argument("--dms-timeout", type=float, default=10.0, help="dead man's switch: flatten after this many "
                    "seconds without a supervisor heartbeat")
    ap.add_argument("--snapshot-every", type=float, default=2.0, help="seconds between database snapshots")
    ap.add_argument("--fsync", action="store_true", help="fsync the journal after every row (live intents are "
                    "always fsynced; this adds every other row)")
    a = ap.parse_args(argv)
    from hedge_core.runner.client import runner_home

    home = runner_home(a.home)
    setup_logging(home / "logs" / "runner.jsonl", stderr=True)
    from hedge_core.errors import HedgeError

    try:
        return asyncio.run(run_runner(a.db, home, port=a.port, params_root=a.params_dir, snapshot_dir=a.snapshot_dir,
                                      heartbeat_s=a.heartbeat, dms_timeout_s=a.dms_timeout,
                                      snapshot_s=a.snapshot_every, fsync=a.fsync))
    except HedgeError as exc:  # a bad --db, a busy store, bad settings: one line, no traceback
        log_event(log, "runner did not start", level=logging.ERROR, error=str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
