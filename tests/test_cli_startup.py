"""``hedge --help``, help of every sub-command, an argument error, a mistyped ``--db`` and
``python -m hedge_core.runner --help`` answer without importing the heavy libraries (pandas, numpy, duckdb,
numba, ccxt, pyarrow, aiohttp) or the engine, store and backtest modules: those load inside the commands
that use them.

Each case runs in a fresh interpreter (a subprocess) and reports ``sys.modules`` after the command
returned, so an import added back at module level of any CLI module fails here by name.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli_env import REPO, _env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

# pydantic is not listed: typer itself (typer/_adapters.py) imports it to parse a sub-command's options
HEAVY = ("pandas", "numpy", "duckdb", "numba", "ccxt", "pyarrow", "aiohttp", "statsmodels", "plotly",
         "hedge_core.store", "hedge_core.engine", "hedge_core.backtest.event", "hedge_core.params.models",
         "hedge_core.runner.control_api", "hedge_core.runner.supervisor")

# Run the entry point in-process, then write the loaded module names (and the exit code) to a file.
PROBE = """
import json, runpy, sys
out, entry, args = sys.argv[1], sys.argv[2], sys.argv[3:]
sys.argv = [entry, *args]
code = 0
try:
    runpy.run_module(entry, run_name="__main__")
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""


def loaded(tmp_path: Path, entry: str, *args: str) -> tuple[int, str, set[str]]:
    """(exit code, output, modules loaded) of ``python -m entry args`` run in a fresh interpreter."""
    report = tmp_path / "modules.json"
    p = subprocess.run([sys.executable, "-c", PROBE, str(report), entry, *args], cwd=REPO, env=_env(tmp_path),
                       capture_output=True, text=True, timeout=100)
    assert report.exists(), p.stdout + p.stderr
    got = json.loads(report.read_text())
    return got["code"], p.stdout + p.stderr, set(got["modules"])


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize("args", [
    ("--help",), ("data", "--help"), ("data", "status", "--help"), ("params", "--help"), ("params", "list", "--help"),
    ("backtest", "--help"), ("sweep", "--help"), ("scan", "--help"), ("start", "--help"), ("runner", "--help"),
    ("alerts", "--help"), ("app", "--help"), ("hedges", "--help"),
])
def test_help_loads_no_heavy_module(tmp_path, args):
    code, out, modules = loaded(tmp_path, "hedge_core.cli", *args)
    assert code == 0 and "Usage" in out, out
    assert heavy_in(modules) == [], f"hedge {' '.join(args)} imported {heavy_in(modules)}"


def test_an_argument_error_loads_no_heavy_module(tmp_path):
    code, out, modules = loaded(tmp_path, "hedge_core.cli", "data", "status", "--no-such-option")
    assert code == 2 and "No such option" in out, out
    assert heavy_in(modules) == [], heavy_in(modules)


def test_a_mistyped_db_is_refused_without_loading_duckdb(tmp_path):
    missing = tmp_path / "nowhere" / "hedge.duckdb"
    code, out, modules = loaded(tmp_path, "hedge_core.cli", "data", "status", "--db", str(missing))
    assert code == 1 and f"no database at {missing} (nothing created)" in out, out
    assert not missing.parent.exists()
    assert heavy_in(modules) == [], heavy_in(modules)


def test_runner_help_loads_no_heavy_module(tmp_path):
    code, out, modules = loaded(tmp_path, "hedge_core.runner", "--help")
    assert code == 0 and "--db" in out, out
    assert heavy_in(modules) == [], heavy_in(modules)


def test_the_probe_sees_a_heavy_import(tmp_path):
    """The check is not vacuous: a command that needs pandas and the store is seen loading them."""
    code, out, modules = loaded(tmp_path, "hedge_core.cli", "params", "list")
    assert code == 0, out
    assert {"pandas", "hedge_core.params.models"} <= set(heavy_in(modules)), heavy_in(modules)
