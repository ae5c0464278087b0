"""environment.yml (conda) and pyproject.toml (pip) list the same dependencies with the same ranges."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)$", req)
    assert m, req
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_reqs = dict(_split(r) for r in project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_reqs = dict(_split(r) for r in env["dependencies"] if isinstance(r, str) and not r.startswith(("python", "pip")))
    missing_in_conda = sorted(set(pip_reqs) - set(conda_reqs))
    missing_in_pip = sorted(set(conda_reqs) - set(pip_reqs))
    assert not missing_in_conda, f"in pyproject.toml but not environment.yml: {missing_in_conda}"
    assert not missing_in_pip, f"in environment.yml but not pyproject.toml: {missing_in_pip}"
    differ = {k: (pip_reqs[k], conda_reqs[k]) for k in pip_reqs if pip_reqs[k] != conda_reqs[k]}
    assert not differ, f"version ranges differ (pyproject, environment.yml): {differ}"
    assert env["dependencies"][0].startswith("python>=") and project["requires-python"] == ">=3.11"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    commands = [line for line in ci if line and not line.startswith(("#", "set ", "cd "))]
    assert commands == ["make test"], commands
    assert "make test" in readme and "make app" in readme


def test_console_command_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["hedge"] == "hedge_core.cli:app"
