"""A small synchronous client of the runner's control API (CLI, notebooks, the panel).

``RunnerClient.discover()`` reads ``<home>/runner.json`` (port, pid) and ``<home>/token`` (0600)
from ``$HEDGE_RUNNER_HOME`` or ``<repo>/data/runner``; every call sends the token. Read helpers
return DataFrames with UTC timestamps.

For bulk research reads without the runner, open the read-only snapshot:
:func:`open_snapshot` (``<db dir>/snapshots/latest.duckdb``, refreshed every few seconds).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from hedge_core.errors import HedgeError, InvalidInput

if TYPE_CHECKING:  # pandas loads in the reads that build frames: runner_home() stays light for the CLI
    import pandas as pd

__all__ = [
    "RunnerClient",
    "RunnerError",
    "RunnerNotRunning",
    "open_snapshot",
    "runner_home",
    "snapshot_path",
    "spawn_runner",
    "wait_for_state",
]


class RunnerNotRunning(HedgeError):
    """No runner answers (no runner.json, or nothing listening on its port)."""


class RunnerError(HedgeError):
    """The runner answered with an error."""

    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        self.status, self.payload = status, payload
        super().__init__(f"runner answered {status}: {payload.get('error', payload)}")


def runner_home(home: str | os.PathLike[str] | None = None) -> Path:
    if home is not None:
        return Path(home)
    env = os.environ.get("HEDGE_RUNNER_HOME")
    if env:
        return Path(env).expanduser()
    from hedge_core.store_paths import REPO_ROOT

    return REPO_ROOT / "data" / "runner"


def snapshot_path(db: str | os.PathLike[str] | None = None) -> Path:
    from hedge_core.store import default_db_path

    return Path(db or default_db_path()).parent / "snapshots" / "latest.duckdb"


def open_snapshot(db: str | os.PathLike[str] | None = None) -> Any:
    """A read-only :class:`hedge_core.store.Store` on the latest snapshot (opened per call)."""
    from hedge_core.store import Store

    p = snapshot_path(db)
    if not p.exists():
        raise RunnerNotRunning(f"no snapshot at {p}: is the runner running with snapshots on?")
    return Store(p, read_only=True, hold=False)


class RunnerClient:
    def __init__(self, port: int, token: str, *, host: str = "127.0.0.1", timeout: float = 30.0,
                 pid: int | None = None) -> None:
        self.base = f"http://{host}:{int(port)}"
        self.token = token
        self.timeout = timeout
        self.pid = pid
        self.session = requests.Session()
        self.session.trust_env = False  # never through a proxy: loopback only

    def __repr__(self) -> str:  # the token is never shown
        return f"RunnerClient({self.base}, pid={self.pid})"

    @classmethod
    def discover(cls, home: str | os.PathLike[str] | None = None, *, timeout: float = 30.0) -> RunnerClient:
        h = runner_home(home)
        try:
            info = json.loads((h / "runner.json").read_text(encoding="utf-8"))
            token = (h / "token").read_text(encoding="utf-8").strip()
        except (OSError, json.JSONDecodeError):
            raise RunnerNotRunning(f"no runner in {h} (start one: hedge runner start)") from None
        c = cls(info["port"], token, timeout=timeout, pid=info.get("pid"))
        try:
            c.health()
        except requests.ConnectionError:
            raise RunnerNotRunning(f"runner of {h} (pid {info.get('pid')}) does not answer on port {info['port']}") from None
        return c

    # ---- transport ------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        r = self.session.request(method, self.base + path, json=body,
                                 params={k: v for k, v in params.items() if v is not None},
                                 headers={"Authorization": f"Bearer {self.token}"}, timeout=self.timeout)
        try:
            payload = r.json()
        except ValueError:
            payload = {"error": r.text}
        if r.status_code >= 400:
            if r.status_code == 400 and isinstance(payload, dict) and "field" in payload:
                where = payload.get("where")
                raise InvalidInput(payload["field"], payload.get("value"), payload.get("allowed", ""),
                                   where=f"runner: {where}" if where else "runner")
            raise RunnerError(r.status_code, payload if isinstance(payload, dict) else {"error": payload})
        return payload

    # ---- commands -------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def hedges(self) -> list[dict[str, Any]]:
        return self._call("GET", "/hedges")

    def hedge(self, hedge_id: str) -> dict[str, Any]:
        return self._call("GET", f"/hedges/{hedge_id}")

    def start(self, params: str | None = None, mode: str = "paper", **spec: Any) -> dict[str, Any]:
        body = {k: v for k, v in spec.items() if v is not None}
        if params is not None:
            body["params"] = params
        body["mode"] = mode
        return self._call("POST", "/hedges", body)

    def command(self, hedge_id: str, command: str, reason: str = "") -> dict[str, Any]:
        return self._call("POST", f"/hedges/{hedge_id}/{command}", {"reason": reason})

    def pause(self, hedge_id: str) -> dict[str, Any]:
        return self.command(hedge_id, "pause")

    def resume(self, hedge_id: str) -> dict[str, Any]:
        return self.command(hedge_id, "resume")

    def stop(self, hedge_id: str) -> dict[str, Any]:
        return self.command(hedge_id, "stop")

    def rebalance_now(self, hedge_id: str) -> dict[str, Any]:
        return self.command(hedge_id, "rebalance_now")

    def flatten_all(self, reason: str = "operator flatten-all") -> list[dict[str, Any]]:
        return self._call("POST", "/flatten-all", {"reason": reason})

    def shutdown(self, flatten: bool | None = None) -> dict[str, Any]:
        return self._call("POST", "/shutdown", {"flatten": flatten})

    def snapshot(self) -> dict[str, Any]:
        return self._call("POST", "/snapshot", {})

    def sync_params(self) -> dict[str, Any]:
        return self._call("POST", "/params/sync", {})

    # ---- reads ----------------------------------------------------------------------------
    @staticmethod
    def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
        import pandas as pd

        df = pd.DataFrame(rows)
        for c in ("ts", "intent_ts", "updated_ts", "started_at", "ended_at", "created_at"):
            if c in df.columns:
                df[c] = pd.to_datetime(df[c], utc=True, format="ISO8601")
        return df

    def history(self, table: str, hedge_id: str | None = None, start: Any = None, end: Any = None,
                limit: int | None = None) -> pd.DataFrame:
        """``transitions``, ``fills``, ``funding``, ``positions``, ``orders``, ``guards``, ``hedge_runs``..."""
        return self._frame(self._call("GET", f"/history/{table}", hedge_id=hedge_id,
                                      start=None if start is None else str(start),
                                      end=None if end is None else str(end), limit=limit))

    def runs(self) -> list[dict[str, Any]]:
        return self._call("GET", "/runs")

    def book(self, confidence: float | None = None, horizon: int | None = None) -> dict[str, Any]:
        """The book of every hedge (docs/book.md); VaR at ``confidence`` over ``horizon`` bars."""
        return self._call("GET", "/book", confidence=confidence, horizon=horizon)

    def bars(self, venue: str, symbol: str, kind: str, timeframe: str, start: Any = None, end: Any = None) -> pd.DataFrame:
        df = self._frame(self._call("GET", "/bars", venue=venue, symbol=symbol, kind=kind, timeframe=timeframe,
                                    start=None if start is None else str(start), end=None if end is None else str(end)))
        return df.set_index("ts") if "ts" in df.columns else df


def spawn_runner(*, db: str | os.PathLike[str] | None = None, home: str | os.PathLike[str] | None = None,
                 params_dir: str | os.PathLike[str] | None = None, timeout: float = 60.0,
                 extra_args: list[str] | None = None, log_file: str | os.PathLike[str] | None = None,
                 ) -> tuple[Any, RunnerClient]:
    """Start ``python -m hedge_core.runner`` as a child process and return (Popen, client) once it answers.

    For notebooks and scripts; ``hedge runner start`` is the operator's way. The caller stops it
    with ``client.shutdown()`` then ``proc.wait()``.
    """
    import subprocess
    import sys
    import time

    h = runner_home(home)
    args = [sys.executable, "-m", "hedge_core.runner", "--home", str(h)]
    if db is not None:
        args += ["--db", str(db)]
    if params_dir is not None:
        args += ["--params-dir", str(params_dir)]
    args += list(extra_args or [])
    env = dict(os.environ)
    if params_dir is not None:
        env["HEDGE_PARAMS_DIR"] = str(params_dir)
    h.mkdir(parents=True, exist_ok=True)
    log = Path(log_file or (h / "runner.out"))
    with open(log, "ab") as out:  # the child has its own copy of the descriptor; ours is closed at once
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RunnerNotRunning(f"runner exited with code {proc.returncode} (see {log})")
        try:
            c = RunnerClient.discover(h)
            if c.pid == proc.pid:
                return proc, c
        except RunnerNotRunning:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RunnerNotRunning(f"runner did not answer within {timeout:g} s (see {log})")


def wait_for_state(client: RunnerClient, hedge_id: str, states: str | tuple[str, ...], *, timeout: float = 60.0,
                   interval: float = 0.2) -> dict[str, Any]:
    """Poll ``hedge_id`` until its state is one of ``states``; returns its summary (RunnerError on timeout)."""
    import time

    want = (states,) if isinstance(states, str) else tuple(states)
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = client.hedge(hedge_id)
        if last.get("state") in want:
            return last
        if last.get("status") == "failed":
            break
        time.sleep(interval)
    raise RunnerError(408, {"error": f"{hedge_id} not in {want} after {timeout:g} s (last {last.get('state')}, "
                                     f"status {last.get('status')} {last.get('error', '')})"})
