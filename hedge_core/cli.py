"""The ``hedge`` command: one entry point, ``--help`` on every sub-command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

app = typer.Typer(help="Crypto spot/perp hedging: data, research, paper and live hedges.",
                  no_args_is_help=True, add_completion=False)


def _mount() -> None:
    from hedge_core.backtest import cli as backtest_cli
    from hedge_core.book.cli import register as register_book
    from hedge_core.data.cli import data_app
    from hedge_core.data.scan_cli import app as scan_app
    from hedge_core.params.cli import params_app
    from hedge_core.runner import cli as runner_cli
    from hedge_core.runner.notify_cli import alerts_app

    app.add_typer(data_app, name="data", help="Market data: download, import, status, quality.")
    app.add_typer(runner_cli.runner_app, name="runner")
    app.add_typer(params_app, name="params")
    runner_cli.register(app)  # start, stop, pause, resume, rebalance, flatten-all, hedges, carry
    app.add_typer(backtest_cli.app)  # backtest, sweep
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(scan_app)  # scan
    register_book(app)  # hedge book


def seed_unless_held(db_path: Path, *, demo: bool, lock_timeout: float = 2.0) -> str:
    """Seed an empty database before the panel opens; leave a database another process holds alone.

    A held file means the runner owns the live database (so it is in use and was seeded); the panel
    then reads through the runner, and restarting the panel must not wait on the lock.
    """
    from hedge_core.data.seed import ensure_seeded
    from hedge_core.store import StoreBusy
    from hedge_core.store_open import open_store

    try:
        store = open_store(db_path, write=True, hold=True, lock_timeout=lock_timeout)
    except StoreBusy:
        return f"database {db_path} is held by the runner: not seeding; the panel reads through the runner"
    with store:
        said = str(ensure_seeded(store, progress=True, demo=demo))
    from hedge_core.starter_sets import ensure_starter_sets

    refs = ensure_starter_sets(db=db_path)
    if refs:
        said += f"\nstarter parameter sets ready for 'Start a hedge': {', '.join(refs)}"
    return said


def _prepare_db(db_path: Path, *, seed: bool, demo: bool) -> str | None:
    """Seed (or, with --no-seed, check) the panel's database; a typed error becomes one line and exit 1."""
    from hedge_core.errors import HedgeError
    from hedge_core.store import StoreBusy, StoreMissing
    from hedge_core.store_open import open_store

    try:
        if seed:
            return seed_unless_held(db_path, demo=demo)
        open_store(db_path, write=False, lock_timeout=0.0).close()
    except (StoreBusy, StoreMissing):
        return None  # held: the panel reads through the runner; missing: the panel says how to seed
    except HedgeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    return None


@app.command("app")
def run_panel(
    db: Path = typer.Option(None, "--db", help="DuckDB file (default: $HEDGE_DB or data/hedge.duckdb)."),
    port: int = typer.Option(8501, help="Port of the panel."),
    address: str = typer.Option("localhost", help="Bind address (localhost only by default). Any other address "
                                "needs HEDGE_PANEL_PASSWORD (the panel's sign-in)."),
    seed: bool = typer.Option(True, help="Seed an empty database first (real data if reachable, else demo)."),
    demo: bool = typer.Option(False, help="Seed with the synthetic demo market without probing the network "
                              "(also when HEDGE_OFFLINE=1)."),
) -> None:
    """Open the Streamlit control panel (seeding an empty database first).

    Refused (exit code 2, nothing started) when the address is not loopback and ``HEDGE_PANEL_PASSWORD``
    is unset, or when the password is too short: see docs/panel-sign-in.md.
    """
    from hedge_core.errors import InvalidInput
    from hedge_core.store import REPO_ROOT, default_db_path
    from hedge_core.ui.views import auth

    try:
        check = auth.password_check()
    except InvalidInput as exc:
        typer.echo(f"hedge app: {exc}", err=True)
        raise typer.Exit(2) from None
    refusal = auth.bind_refusal(address, password_set=check is not None)
    if refusal:
        typer.echo(f"hedge app: {refusal}", err=True)
        raise typer.Exit(2)
    db_path = Path(db) if db else default_db_path()
    os.environ["HEDGE_DB"] = str(db_path)
    msg = _prepare_db(db_path, seed=seed, demo=demo or bool(os.environ.get("HEDGE_OFFLINE")))
    if msg:
        typer.echo(msg)
    typer.echo(f"database {db_path}\npanel on http://{address}:{port}  (Ctrl+C to stop)")
    typer.echo("sign-in: password required (HEDGE_PANEL_PASSWORD)" if check is not None else
               "sign-in: none (no HEDGE_PANEL_PASSWORD); the panel is reachable from this machine only")
    if check is not None and not auth.is_loopback(address):
        typer.echo("note: plain HTTP; put it behind TLS (a reverse proxy, or Streamlit's server.sslCertFile) "
                   "before using it over a network you do not trust", err=True)
    args = [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "app.py"),
            "--server.address", address, "--server.port", str(port), "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
            "--server.fileWatcherType", "none"]
    os.execv(sys.executable, args)


_mount()

if __name__ == "__main__":  # pragma: no cover
    app()
