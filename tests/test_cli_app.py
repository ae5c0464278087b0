"""`hedge app` seeding: an empty database is seeded; one held by another process is left alone."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from hedge_core.cli import seed_unless_held
from hedge_core.store import Store


def test_empty_database_is_seeded_with_demo_when_offline(tmp_path) -> None:
    db = tmp_path / "fresh.duckdb"
    message = seed_unless_held(db, demo=True)
    assert "SYNTHETIC" in message
    with Store(db, read_only=True) as s:
        assert set(s.series()["venue"]) == {"demo"}


def test_database_held_by_another_process_is_not_waited_on(tmp_path) -> None:
    db = tmp_path / "held.duckdb"
    Store(db).close()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from hedge_core.store import Store
        s = Store({str(db)!r})
        print("held", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        message = seed_unless_held(db, demo=True, lock_timeout=0.5)
        assert "held by the runner" in message and time.monotonic() - t0 < 10
    finally:
        holder.kill()
        holder.wait()
    with Store(db, read_only=True) as s:
        assert s.series().empty


def test_one_entry_point_with_help_on_every_command() -> None:
    from typer.testing import CliRunner

    from hedge_core.cli import app

    runner = CliRunner()
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0
    commands = ["app", "start", "stop", "pause", "resume", "rebalance", "flatten-all", "hedges", "carry",
                "data", "runner", "params", "backtest", "sweep", "scan"]
    for cmd in commands:
        assert cmd in top.output, cmd
        res = runner.invoke(app, [cmd, "--help"])
        assert res.exit_code == 0, (cmd, res.output)
    for group, subs in {"data": ["download", "import", "status", "quality"],
                        "runner": ["start", "stop", "status"],
                        "params": ["list", "show", "export", "import", "promote", "diff"]}.items():
        for sub in subs:
            res = runner.invoke(app, [group, sub, "--help"])
            assert res.exit_code == 0, (group, sub, res.output)


def test_params_export_is_one_call_from_the_params_module(tmp_path) -> None:
    from hedge_core.params.models import CarryParams, export

    ps = export(CarryParams(), name="nb-carry", root=tmp_path / "params", db=tmp_path / "p.duckdb",
                created_from="test")
    assert ps.version == 1 and (tmp_path / "params" / "nb-carry" / "v1.toml").exists()
