"""CLI of the runner (typer). ``hedge_core.cli`` mounts it (the params CLI is :mod:`hedge_core.params.cli`)::

    app.add_typer(runner_app, name="runner")     # hedge runner start|stop|status
    register(app)                                # hedge start|stop|pause|resume|rebalance|flatten-all|hedges|carry

``python -m hedge_core.runner.cli ...`` runs the same commands standalone.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer

from hedge_core.errors import HedgeError, InvalidInput

__all__ = ["DEFAULT_MAX_AMOUNT", "DEFAULT_MIN_AMOUNT", "build_app", "params_app", "register", "runner_app"]

from hedge_core.params.cli import params_app  # noqa: E402 - the standalone app mounts it too

DEFAULT_MIN_AMOUNT = 10.0
DEFAULT_MAX_AMOUNT = 10_000.0

runner_app = typer.Typer(help="The long-lived runner process: start, stop, status.", no_args_is_help=True,
                         add_completion=False)


def _fail(exc: Exception, code: int = 2) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _client(home: Path | None = None) -> Any:
    from hedge_core.runner.client import RunnerClient, RunnerNotRunning

    try:
        return RunnerClient.discover(home)
    except RunnerNotRunning as exc:
        _fail(exc, 1)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> None:
    if not rows:
        typer.echo("(none)")
        return
    import pandas as pd

    from hedge_core.runner.clock import clock_text

    df = pd.DataFrame([{**r, "clock": clock_text(r)} if "clock" in r else r for r in rows])
    typer.echo(df[[c for c in cols if c in df.columns]].to_string(index=False))


HomeOpt = typer.Option(None, "--home", help="Runner folder (default $HEDGE_RUNNER_HOME or data/runner).")


# ---- hedge runner start|stop|status -------------------------------------------------------------


@runner_app.command("start")
def runner_start(
    db: Path | None = typer.Option(None, "--db", help="Live DuckDB file (default $HEDGE_DB or data/hedge.duckdb)."),
    home: Path | None = HomeOpt,
    port: int = typer.Option(0, help="Control API port on 127.0.0.1 (0 = any free port)."),
    dms_timeout: float = typer.Option(10.0, help="Dead man's switch: flatten after this many seconds without heartbeat."),
    foreground: bool = typer.Option(False, "--foreground", help="Run in this terminal instead of in the background."),
    wait: float = typer.Option(30.0, help="Seconds to wait for the runner to answer."),
) -> None:
    """Start the runner process (background by default) and wait until its API answers."""
    from hedge_core.runner.client import RunnerClient, RunnerNotRunning, runner_home

    h = runner_home(home)
    try:
        c = RunnerClient.discover(h)
        typer.echo(f"runner already running: pid {c.pid}, {c.base}")
        return
    except RunnerNotRunning:
        pass
    _check_db(db)
    args = [sys.executable, "-m", "hedge_core.runner", "--home", str(h), "--port", str(port),
            "--dms-timeout", str(dms_timeout)]
    if db is not None:
        args += ["--db", str(db)]
    if foreground:
        raise typer.Exit(subprocess.call(args))
    h.mkdir(parents=True, exist_ok=True)
    with open(h / "runner.out", "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _fail(RuntimeError(f"runner exited with code {proc.returncode}{_last_line(h / 'runner.out')}; "
                               f"see {h / 'runner.out'}"), 1)
        try:
            c = RunnerClient.discover(h)
            if c.pid == proc.pid:
                typer.echo(f"runner started: pid {proc.pid}, {c.base}, logs {h / 'logs' / 'runner.jsonl'}")
                return
        except RunnerNotRunning:
            pass
        time.sleep(0.1)
    _fail(RuntimeError(f"runner did not answer within {wait:g} s; see {h / 'runner.out'}"), 1)


def _check_db(db: Path | None) -> None:
    """Refuse a database the runner could not own (not DuckDB, held by another process) before spawning it."""
    from hedge_core.store_open import open_store

    try:
        open_store(db, write=True, lock_timeout=1.0).close()
    except HedgeError as exc:
        _fail(exc, 1)


def _last_line(path: Path) -> str:
    """': <last line of the runner's output>' (its last log message), or ''."""
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return f": {lines[-1].strip()[:400]}" if lines else ""


@runner_app.command("stop")
def runner_stop(
    home: Path | None = HomeOpt,
    flatten: bool | None = typer.Option(None, "--flatten/--keep", help="Flatten every hedge, or keep every "
                                           "position for the next start (default: each hedge's on_shutdown policy)."),
    wait: float = typer.Option(60.0, help="Seconds to wait for the process to exit."),
) -> None:
    """Stop the runner: no new positions; hedges kept or flattened by policy (or --flatten/--keep)."""
    c = _client(home)
    c.shutdown(flatten)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(int(c.pid), 0)
        except (OSError, TypeError):
            typer.echo("runner stopped")
            return
        time.sleep(0.1)
    _fail(RuntimeError(f"runner pid {c.pid} still running after {wait:g} s"), 1)


@runner_app.command("status")
def runner_status(home: Path | None = HomeOpt,
                  as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Health (heartbeat age, loop lag) and every hedge's state."""
    c = _client(home)
    h, hs = c.health(), c.hedges()
    if as_json:
        typer.echo(json.dumps({"health": h, "hedges": hs}, indent=2, default=str))
        return
    typer.echo(f"pid {h['pid']}  {str(h.get('status', 'ok')).upper()}  heartbeat {h['heartbeat_age_s']:.2f} s ago  "
               f"loop lag {h['loop_lag_s']:.3f} s  hedges {h['hedges']}  db {h['db']}")
    for who, conds in (h.get("degraded") or {}).items():
        for key, msg in conds.items():
            typer.echo(f"DEGRADED {who}: {key}: {msg}")
    _table(hs, ["hedge_id", "mode", "params", "state", "status", "clock", "spot_qty", "perp_qty", "pnl", "updates",
                "error"])
    for x in hs:  # a routed hedge's last reconciliation, one line per venue (runner.records.by_venue)
        for line in reconcile_lines(x):
            typer.echo(line)
    for x in hs:  # perp venues chosen at start by best execution (runner.best_perp): every venue's score
        if x.get("perp_venue_choice"):
            from hedge_core.runner.best_perp import choice_reason

            typer.echo(f"{x['hedge_id']}: {choice_reason(x['perp_venue_choice'])}")


def reconcile_lines(h: dict[str, Any]) -> list[str]:
    """Status lines of a hedge whose legs sit on two venues: its last continuous reconciliation per venue
    (``reconcile.venues``): clean or its differences, and the venue's holdings, journal beside venue (base).
    Empty for a one-venue hedge (its differences are in ``reconcile.differences``) or before the first pass."""
    venues = (h.get("reconcile") or {}).get("venues") or {}
    if len(venues) < 2:
        return []
    out = []
    for name, v in venues.items():
        held = []
        if "spot_base" in v:
            held.append(f"spot base journal {v['spot_base']['journal']:.8g} venue {v['spot_base']['venue']:.8g}")
        for sym, q in (v.get("positions") or {}).items():
            held.append(f"{sym} journal {q['journal']:.8g} venue {q['venue']:.8g}")
        diffs = v.get("differences") or []
        verdict = "clean" if not diffs else f"{len(diffs)} difference(s): " + "; ".join(diffs)
        out.append(f"{h.get('hedge_id')}: reconcile {name} ({'+'.join(v.get('legs') or [])}): {verdict}"
                   + (f"  [{', '.join(held)}]" if held else ""))
    return out


# ---- top-level hedge commands -------------------------------------------------------------------


def _start(params: str, mode: str, spot: str, perp: str | None, feed: str | None, start: str | None,
           end: str | None, speed: float | None, recovery: str, on_shutdown: str, hedge_id: str | None,
           yes_live: bool, home: Path | None, size: float | None = None, dry_run: bool = False,
           perp_venue: str | None = None) -> None:
    """Start a hedge on the running runner from a parameter set version (``dry_run``: its preflight only)."""
    from hedge_core.types import perp_of

    c = _client(home)
    try:
        out = c.start(params, mode=mode, spot_symbol=spot, perp_symbol=perp or perp_of(spot), feed=feed, start=start,
                      end=end, speed=speed, recovery=recovery, on_shutdown=on_shutdown, hedge_id=hedge_id,
                      confirm_live=yes_live or None, notional=size, dry_run=dry_run or None, perp_venue=perp_venue)
    except (InvalidInput, HedgeError) as exc:
        _fail(exc)
    if out.get("dry_run"):
        if out.get("perp_venue_choice"):
            from hedge_core.runner.best_perp import choice_reason

            typer.echo(choice_reason(out["perp_venue_choice"]))
        for line in out["preflight"]["lines"]:
            typer.echo(line)
        typer.echo("dry run: checks passed, nothing started, nothing sent")
        return
    typer.echo(f"started {out['hedge_id']} ({out['mode']}, {out['params']}): {out.get('state')}")
    if out.get("perp_venue_choice"):  # best execution at start (runner.best_perp): every venue's score
        from hedge_core.runner.best_perp import choice_reason

        typer.echo(choice_reason(out["perp_venue_choice"]))
    if out.get("clock"):  # which clock the hedge runs on, and why (runner.clock)
        why = f" ({out['feed_reason']})" if out.get("feed_reason") else ""
        typer.echo(f"clock: {out['clock']}{why}")


def _cmd(hedge_id: str, command: str, home: Path | None) -> None:
    c = _client(home)
    try:
        out = c.command(hedge_id, command)
    except (InvalidInput, HedgeError) as exc:
        _fail(exc)
    typer.echo(f"{hedge_id}: {command} -> {out.get('state')}")


def register(app: typer.Typer) -> None:
    """Add ``start``, ``stop``, ``pause``, ``resume``, ``rebalance``, ``flatten-all``, ``hedges`` and ``carry``."""

    @app.command("start")
    def start_cmd(
        params: str = typer.Option(..., "--params", help="Parameter set NAME or NAME@VERSION (see hedge params list)."),
        mode: str = typer.Option("paper", help="paper | live | recommend."),
        symbol: str = typer.Option("BTC/USDT", "--symbol", help="Spot symbol (ccxt unified)."),
        perp: str | None = typer.Option(None, help="Perp symbol (default: the spot symbol's USDT perpetual)."),
        feed: str | None = typer.Option(None, help="replay (store data, accelerated: paper default when offline or "
                                           "--speed/--end given) | bars (closed bars from the venue: paper "
                                           "default when the venue answers) | ticker (live default: polled tickers)."),
        start: str | None = typer.Option(None, help="Replay: first bar (UTC), default the first stored bar."),
        end: str | None = typer.Option(None, help="Replay: end (UTC), default the last stored bar; giving it asks "
                                       "for a replay."),
        speed: float | None = typer.Option(None, help="Replay: data seconds per wall second (default 3600); "
                                           "giving it asks for a replay."),
        recovery: str = typer.Option("resume", help="After a crash: resume | flatten."),
        on_shutdown: str = typer.Option("keep", help="On runner stop: keep | flatten."),
        hedge_id: str | None = typer.Option(None, "--id", help="Hedge id (default generated)."),
        yes_live: bool = typer.Option(False, "--yes-live", help="Confirm live mode (real money)."),
        size: float | None = typer.Option(None, "--size", help="Spot notional (USDT) instead of the set's notional."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Run the preflight (both legs' minimums, balances, "
                                     "margin, position mode) at the venue; start nothing, send nothing."),
        perp_venue: str | None = typer.Option(None, "--perp-venue", help="Venue of the perp leg (legs on two "
                                               "venues), or 'best': chosen at start among the xcarry set's allowed "
                                               "perp venues by walked book price and fee (docs/cross-venue.md)."),
        home: Path | None = HomeOpt,
    ) -> None:
        """Start a hedge on the runner from a parameter set version (checked at the venue first)."""
        _start(params, mode, symbol, perp, feed, start, end, speed, recovery, on_shutdown, hedge_id, yes_live, home,
               size, dry_run, perp_venue)

    @app.command("stop")
    def stop_cmd(hedge_id: str = typer.Argument(..., help="Hedge id (hedge hedges)."), home: Path | None = HomeOpt) -> None:
        """Stop a hedge: close both legs, then COMPLETED."""
        _cmd(hedge_id, "stop", home)

    @app.command("pause")
    def pause_cmd(hedge_id: str = typer.Argument(..., help="Hedge id."), home: Path | None = HomeOpt) -> None:
        """Pause a hedge: no new risk; fills still booked; the kill switch still works."""
        _cmd(hedge_id, "pause", home)

    @app.command("resume")
    def resume_cmd(hedge_id: str = typer.Argument(..., help="Hedge id."), home: Path | None = HomeOpt) -> None:
        """Resume a paused (or ERROR) hedge."""
        _cmd(hedge_id, "resume", home)

    @app.command("rebalance")
    def rebalance_cmd(hedge_id: str = typer.Argument(..., help="Hedge id."), home: Path | None = HomeOpt) -> None:
        """Rebalance a monitored hedge now."""
        _cmd(hedge_id, "rebalance_now", home)

    @app.command("flatten-all")
    def flatten_all_cmd(home: Path | None = HomeOpt,
                        yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation.")) -> None:
        """Kill switch: flatten every hedge of the runner now (latched until resume)."""
        if not yes:
            typer.confirm("Flatten EVERY hedge now?", abort=True)
        c = _client(home)
        _table(c.flatten_all(), ["hedge_id", "state", "spot_qty", "perp_qty"])

    @app.command("hedges")
    def hedges_cmd(home: Path | None = HomeOpt) -> None:
        """List the runner's hedges and their state."""
        _table(_client(home).hedges(),
               ["hedge_id", "mode", "params", "state", "status", "clock", "spot_qty", "perp_qty", "pnl"])

    @app.command("carry")
    def carry_cmd(
        symbol: str = typer.Option("BTC/USDT", "--symbol", help="Spot symbol; the perp is its USDT perpetual."),
        amount: float = typer.Option(..., "--amount", help="Spot notional to put on, USDT."),
        min_funding_rate: float = typer.Option(0.0001, help="Funding rate per interval needed to enter."),
        max_position_imbalance: float = typer.Option(0.05, help="Rebalance when the hedge ratio drifts by more "
                                                     "than this fraction."),
        max_execution_time: float = typer.Option(60.0, help="Seconds allowed to get both legs on; else close "
                                                 "everything and exit."),
        no_rebalancing: bool = typer.Option(False, "--no-rebalancing", help="Never rebalance."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Check connectivity and balances, print the plan, "
                                     "send nothing."),
        mode: str = typer.Option("paper", help="paper | live."),
        yes_live: bool = typer.Option(False, "--yes-live", help="Confirm live mode (real money)."),
        min_amount: float = typer.Option(DEFAULT_MIN_AMOUNT, help="Lowest allowed --amount, USDT."),
        max_amount: float = typer.Option(DEFAULT_MAX_AMOUNT, help="Highest allowed --amount, USDT."),
        db: Path | None = typer.Option(None, "--db", help="DuckDB file (market data for paper; the journal)."),
        start: str | None = typer.Option(None, help="Paper replay start (UTC); default the first stored bar."),
        speed: float = typer.Option(3600.0, help="Paper replay speed (data seconds per wall second)."),
        max_runtime: float | None = typer.Option(None, help="Close both legs and exit after this many seconds."),
        home: Path | None = typer.Option(None, "--home", help="Folder for the one-shot's paper state and logs."),
    ) -> None:
        """One-shot funding carry: long spot / short perp, monitored until Ctrl+C, which closes both legs."""
        code = asyncio.run(_carry(symbol, amount, min_funding_rate, max_position_imbalance, max_execution_time,
                                  no_rebalancing, dry_run, mode, yes_live, min_amount, max_amount, db, start, speed,
                                  max_runtime, home))
        raise typer.Exit(code)


async def _carry(symbol: str, amount: float, min_funding_rate: float, imbalance: float, max_exec: float,
                 no_rebalancing: bool, dry_run: bool, mode: str, yes_live: bool, min_amount: float, max_amount: float,
                 db: Path | None, start: str | None, speed: float, max_runtime: float | None,
                 home: Path | None) -> int:
    from hedge_core.engine.states import State
    from hedge_core.errors import ExchangeError
    from hedge_core.params.models import CarryParams, ExecutionParams, RebalanceParams
    from hedge_core.runner.hedge import HedgeSpec
    from hedge_core.runner.logs import setup_logging
    from hedge_core.runner.supervisor import Supervisor
    from hedge_core.store import REPO_ROOT, Store, StoreBusy
    from hedge_core.types import perp_of

    def err(exc: Exception) -> int:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        return 2

    # ---- validation: nothing is opened or sent before this passes
    try:
        if not (min_amount <= amount <= max_amount):
            raise InvalidInput("amount", amount, f"{min_amount:g} to {max_amount:g} USDT (--min-amount/--max-amount)")
        if mode not in ("paper", "live"):
            raise InvalidInput("mode", mode, "'paper' or 'live'")
        if mode == "live" and not yes_live:
            raise InvalidInput("yes_live", False, "--yes-live: live mode trades real money")
        if max_exec <= 0:
            raise InvalidInput("max_execution_time", max_exec, "> 0 seconds")
        perp = perp_of(symbol)
        rb = {"drift_threshold": 1.0, "cooldown_s": 7 * 86400.0} if no_rebalancing else {"drift_threshold": imbalance}
        from pydantic import ValidationError

        from hedge_core.params import store as param_store

        # entry rule of the one-shot: funding >= --min-funding-rate (the net-carry test is left open)
        raw = {"strategy": "carry", "notional": amount, "min_funding_rate": min_funding_rate, "min_net_carry": -1.0,
               "rebalance": rb, "execution": {"order_timeout_s": min(max_exec, 3600.0)}}
        params = param_store.parse(raw, where="hedge carry")
        assert isinstance(params, CarryParams)
        _ = (ExecutionParams, RebalanceParams, ValidationError)
    except InvalidInput as exc:
        return err(exc)
    h = Path(home) if home else REPO_ROOT / "data" / "runner" / "oneshot"
    setup_logging(h / "logs" / "carry.jsonl", stderr=False)
    try:
        store = Store(db, hold=True, lock_timeout=2.0)
    except StoreBusy as exc:
        return err(RuntimeError(f"{exc}. The runner holds the database: use `hedge start --params ...` "
                                "or pass --db with another file"))
    except HedgeError as exc:  # not a DuckDB file: the message names it and the fix
        return err(exc)
    hedge_id = f"carry-oneshot-{int(time.time())}"
    sup = Supervisor(store, h, dms_timeout_s=max(30.0, max_exec))
    spec = HedgeSpec(hedge_id=hedge_id, params_inline=raw, mode=mode, spot_symbol=symbol, perp_symbol=perp,
                     feed="replay" if mode == "paper" else "ticker", start=start, speed=speed,
                     recovery="flatten", on_shutdown="flatten", created_from="cli")
    try:
        # ---- connectivity and balances, before any order
        if spec.feed == "replay":
            sup._data_venue(spec)
        from hedge_core.runner.paper_files import start_guard
        from hedge_core.runner.preflight import discard_adapter, preflight_for_spec

        guard = start_guard(h / "paper", spec)  # the check leaves no paper state file (start_hedge builds its own)
        adapter = sup._adapter_for(spec, confirm_live=yes_live)
        try:  # the same checks as hedge start / POST /hedges, reading the venue only (runner.preflight)
            report = await preflight_for_spec(sup, spec, params, adapter, apply=False, cap_min=min_amount,
                                              cap_max=max_amount)
        except BaseException:
            await discard_adapter(adapter)
            if guard is not None:
                guard.restore()
            raise
    except (InvalidInput, ExchangeError) as exc:
        store.close()
        return err(exc)
    typer.echo(f"plan: {mode} carry on {symbol} / {perp}: buy {amount:g} USDT spot, short the same on the perp "
               f"when funding >= {min_funding_rate:g}/interval; rebalance "
               f"{'off' if no_rebalancing else f'at {imbalance:.2%} drift'}; balances ok "
               f"(spot {report.spot_free:.2f}, perp {report.perp_free:.2f} USDT)")
    for line in report.lines():
        typer.echo(f"  {line}")
    await discard_adapter(adapter)
    if guard is not None:
        guard.restore()
    if dry_run:
        store.close()
        typer.echo("dry run: nothing sent")
        return 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    sup.start_background()
    code = 0
    try:
        info = await sup.start_hedge({**spec.model_dump(), "params_inline": raw})
        task = sup.get(info["hedge_id"])
        typer.echo(f"hedge {hedge_id} started; Ctrl+C closes both legs")
        t0 = time.monotonic()
        seen = 0
        while not stop.is_set():
            ctx = task.driver.ctx
            for rec in ctx.history[seen:]:
                typer.echo(f"  {rec.ts}  {rec.from_state} -> {rec.to_state}  ({rec.reason})")
            seen = len(ctx.history)
            hedged = any(r.to_state is State.MONITORING_POSITIONS for r in ctx.history)
            if not hedged and ctx.state is not State.ANALYZING_MARKET and time.monotonic() - t0 > max_exec:
                typer.secho(f"both legs not on within {max_exec:g} s: closing", fg=typer.colors.YELLOW, err=True)
                code = 1
                break
            if ctx.state is State.COMPLETED or task.status in ("failed", "stopped", "feed_ended"):
                break
            if max_runtime is not None and time.monotonic() - t0 > max_runtime:
                break
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except TimeoutError:
                pass
        if task.status == "failed":
            code = 1
            typer.secho(f"hedge failed: {task.error}", fg=typer.colors.RED, err=True)
    except (InvalidInput, ExchangeError) as exc:
        code = err(exc)
    finally:
        await sup.shutdown(flatten=True)
        for hid, t in sup.hedges.items():
            c = t.driver.ctx if t.driver else None
            if c is not None:
                typer.echo(f"closed {hid}: state {c.state}, spot {c.spot.qty:g}, perp {c.perp.qty:g}, pnl {c.pnl:.2f} USDT")
                if not c.is_flat:
                    code = code or 1
        store.close()
    return code


def build_app() -> typer.Typer:
    """A standalone ``hedge``-like app with these commands (tests; ``python -m hedge_core.runner.cli``)."""
    app = typer.Typer(help="Runner and parameter-set commands.", no_args_is_help=True, add_completion=False)
    app.add_typer(runner_app, name="runner")
    app.add_typer(params_app, name="params")
    register(app)
    return app


if __name__ == "__main__":  # pragma: no cover
    build_app()()
