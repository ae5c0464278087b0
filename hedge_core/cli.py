"""The ``hedge`` command: one entry point, ``--help`` on every sub-command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from hedge_core.store import REPO_ROOT, default_db_path

app = typer.Typer(help="Crypto spot/perp hedging: data, research, paper and live hedges.",
                  no_args_is_help=True, add_completion=False)


def _mount() -> None:
    from hedge_core.data.cli import data_app

    app.add_typer(data_app, name="data", help="Market data: download, import, status, quality.")


@app.command("app")
def run_panel(
    db: Path = typer.Option(None, "--db", help="DuckDB file (default: $HEDGE_DB or data/hedge.duckdb)."),
    port: int = typer.Option(8501, help="Port of the panel."),
    address: str = typer.Option("localhost", help="Bind address (localhost only by default)."),
    seed: bool = typer.Option(True, help="Seed an empty database first (real data if reachable, else demo)."),
    demo: bool = typer.Option(False, help="Seed with the synthetic demo market without probing the network "
                              "(also when HEDGE_OFFLINE=1)."),
) -> None:
    """Open the Streamlit control panel (seeding an empty database first)."""
    db_path = Path(db) if db else default_db_path()
    os.environ["HEDGE_DB"] = str(db_path)
    if seed:
        from hedge_core.data.seed import ensure_seeded
        from hedge_core.store import Store

        with Store(db_path) as store:
            ensure_seeded(store, progress=True, demo=demo or bool(os.environ.get("HEDGE_OFFLINE")))
    typer.echo(f"database {db_path}\npanel on http://{address}:{port}  (Ctrl+C to stop)")
    args = [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "app.py"),
            "--server.address", address, "--server.port", str(port), "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
            "--server.fileWatcherType", "none"]
    os.execv(sys.executable, args)


_mount()

if __name__ == "__main__":  # pragma: no cover
    app()
