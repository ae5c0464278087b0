"""Running the hedge CLI as a user would: a subprocess with a clean HEDGE_* environment, offline, in a temp home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("HEDGE_")}
    e.update({"PYTHONPATH": str(REPO), "HEDGE_OFFLINE": "1", "HEDGE_RUNNER_HOME": str(tmp / "home"),
              "HEDGE_PARAMS_DIR": str(tmp / "params"), "HEDGE_DB": str(tmp / "default" / "hedge.duckdb"),
              "HEDGE_LOCK_WAIT": "0.5"})
    e.update(extra)
    return e


def hedge(tmp: Path, *args: str, **extra_env: str) -> tuple[int, str]:
    p = subprocess.run([sys.executable, "-m", "hedge_core.cli", *args], cwd=REPO, env=_env(tmp, **extra_env),
                       capture_output=True, text=True, timeout=180)
    return p.returncode, p.stdout + p.stderr

