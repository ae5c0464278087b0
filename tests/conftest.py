"""Shared fixtures. Tests needing ../shared/data skip with a reason when it is absent."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Isolation before any process is created (subprocesses and multiprocessing's fork server inherit
# os.environ as it is when they start): no test may reach the repository's data/ (the user's
# database, runner home and parameter sets) or leave a panel-started runner behind. Tests that want
# a runner, or autostart, set these for themselves.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="hedge-tests-"))
os.environ.setdefault("HEDGE_DB", str(_SESSION_DIR / "default.duckdb"))
os.environ.setdefault("HEDGE_RUNNER_HOME", str(_SESSION_DIR / "runner"))
os.environ.setdefault("HEDGE_PARAMS_DIR", str(_SESSION_DIR / "params"))
os.environ.setdefault("HEDGE_PANEL_AUTOSTART", "0")

from hedge_core.data.shared import shared_data_dir

SKIP_REASON = ("../shared/data is absent (a fresh clone without the shared data folder); "
               "set HEDGE_SHARED_DATA or place it beside the repository to run this test")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip(SKIP_REASON)
    return d


def pytest_collection_modifyitems(config, items):
    if shared_data_dir() is not None:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if "shared_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _bracket_tables_restored():
    """A test that loads a venue's bracket table (analytics.risk.set_brackets, e.g. a runner task in
    this process) must not change the tables later tests see."""
    from hedge_core.analytics import risk

    saved = dict(risk.BRACKETS)
    yield
    if risk.BRACKETS != saved:
        risk.BRACKETS.clear()
        risk.BRACKETS.update(saved)
        risk._VERSION[0] += 1  # memoised liquidation prices keyed on the tables are stale
