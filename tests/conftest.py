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
# One BLAS thread per process (set before numpy loads; subprocesses inherit it): the suite runs several
# xdist workers, runners and kernels on 2 cores, and OpenBLAS's threads in each of them only fight over
# those cores (tests/test_analytics_hedge_ratio.py: 6.8 s -> 3.1 s alone, more under -n 2). Results do
# not depend on it; a developer may still set these for a run.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hypothesis import settings as _hyp_settings

from hedge_core.data.shared import shared_data_dir

# Hypothesis: CI runs a derandomized profile (the same examples every run, so a red CI is reproducible);
# a developer's run explores new examples each time.
_hyp_settings.register_profile("ci", derandomize=True, print_blob=True)
_hyp_settings.register_profile("dev", print_blob=True)
_hyp_settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev")

SKIP_REASON = ("../shared/data is absent (a fresh clone without the shared data folder); "
               "set HEDGE_SHARED_DATA or place it beside the repository to run this test")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip(SKIP_REASON)
    return d


# Test tiers. A test's tier is its own marker when it has one; otherwise its file's: files that start
# real processes, servers or browsers are e2e, files that talk to a local venue simulator or a runner
# are integration, the rest (pure logic, in-process) are unit. `make test-fast` runs `-m unit`.
# every test file that starts real runner processes (checked by tests/test_layout.py), and the browser tests
E2E_FILES = {"test_browser_e2e", "test_browser_panel", "test_notebooks", "test_notebooks_fresh_clone", "test_runner_crash_sim",
             "test_runner_crash_paper", "test_cli_runner", "test_cli_app",
             "test_runner_readers", "test_panel_pages", "test_cli_errors",
             "test_advisor_watch", "test_browser_journey",
             "test_live_fault_matrix", "test_xvenue_runner", "test_best_entry_live_runner", "test_xvenue_live_runner", "test_runner_api",
             "test_runner_clock", "test_runner_notify", "test_runner_crash_loanbook", "test_book_runner",
             "test_instruments_backtest", "test_live_countdown", "test_live_records_runner",
             "test_store_single_writer", "test_advice_view", "test_panel_preflight",
             "test_live_best_perp_runner", "test_runner_best_perp", "test_best_entry_runner",
             "test_runner_roll", "test_xvenue_perp_perp_runner",
             "test_live_okx_countdown_runner", "test_xvenue_perp_perp_live_runner",
             "test_live_okx_roll_runner", "test_xvenue_perp_perp_live_okx_runner",
             "test_xvenue_roll_runner", "test_live_bybit_roll_runner", "test_pair_bars_live_runner",
             "test_pair_live_schedule_runner", "test_pair_roll_runner",
             "test_xvenue_perp_perp_fault_matrix", "test_xvenue_perp_perp_fault_matrix_okx",
             "test_runner_delivery", "test_live_delivery_runner"}
INTEGRATION_PREFIXES = ("test_live_", "test_runner_", "test_sweep_dask", "test_data_download", "test_data_cli",
                        "test_data_seed", "test_backtest_cli", "test_views_runner_link", "test_params_store",
                        "test_store", "test_backtest_goals", "test_alerts", "test_panel_", "test_advice_llm",
                        "test_advice_view", "test_xvenue_live", "test_xvenue_perp_perp_live")
# whole-year parities and module fixtures that build a year of replay: in-process but tens of seconds
SLOW_UNITS = ("test_backtest_event.py", "test_fast_path_equals_event_driven_btc[",
              "test_cross_fast_path_equals_event_driven_eth_on_btc[", "test_priced_prices_are_the_kernels_snapshot")
TIERS = ("unit", "integration", "e2e")


def _tier(item: pytest.Item) -> str:
    own = [t for t in TIERS if t in item.keywords]
    if own:
        return own[0]
    name = Path(str(item.fspath)).stem
    if name in E2E_FILES or "browser" in item.keywords:
        return "e2e"
    if name.startswith(INTEGRATION_PREFIXES) or "slow" in item.keywords or any(s in item.nodeid for s in SLOW_UNITS):
        return "integration"
    return "unit"


def pytest_configure(config):
    """``make test`` runs ``--dist loadfile``: xdist then hands out whole files, by default the files
    with the MOST tests first (``--loadscope-reorder``). The longest files here are the e2e ones with a
    few tests each (one browser journey, ~1 min), so they were handed out last and ran alone at the
    end while the other workers idled. Keep the order set below instead (longest tier first)."""
    if getattr(config.option, "dist", "no") in ("loadfile", "loadscope"):
        config.option.loadscopereorder = False


_TIER_ORDER = {"e2e": 0, "integration": 1, "unit": 2}


def _file_rank(items: list[pytest.Item]) -> dict[str, int]:
    """A file's rank: its slowest tier (e2e files first, then integration, then unit), so that under
    ``--dist loadfile`` the long files start first and the many short unit files fill the tail."""
    rank: dict[str, int] = {}
    for item in items:
        f = str(item.fspath)
        r = min(_TIER_ORDER[t] for t in TIERS if t in item.keywords)
        rank[f] = min(rank.get(f, r), r)
    return rank


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = _tier(item)
        if tier not in item.keywords:
            item.add_marker(getattr(pytest.mark, tier))
    rank = _file_rank(items)
    items.sort(key=lambda it: rank[str(it.fspath)])  # stable: the files' and tests' own order is kept within a rank
    if shared_data_dir() is not None:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if "shared_data" in item.keywords:
            item.add_marker(skip)


def pytest_sessionfinish(session):
    """Under xdist (``make test`` runs ``-n 3``) a worker hands its fault-matrix cells to the controller."""
    import sys

    fm = sys.modules.get("tests.support.fault_matrix")
    out = getattr(session.config, "workeroutput", None)
    if out is not None and fm is not None and fm.RESULTS:
        out["fault_matrix"] = [[v, f, s, o] for (v, f), cells in fm.RESULTS.items() for s, o in cells.items()]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """The controller gathers each worker's fault-matrix cells (printed by the terminal summary below)."""
    rows = getattr(node, "workeroutput", {}).get("fault_matrix")
    if rows:
        from tests.support import fault_matrix as fm

        for v, f, s, o in rows:
            fm.record(v, f, s, o)


def pytest_terminal_summary(terminalreporter):
    """The live fault matrix (tests/test_live_fault_matrix.py), when that module ran in this session."""
    import sys

    fm = sys.modules.get("tests.support.fault_matrix")
    if fm is None or not fm.RESULTS:
        return
    terminalreporter.section("live fault matrix (cell: holding | FAILED | n/a)")
    for line in fm.render():
        terminalreporter.write_line(line)


# Clean-up guard (docs/testing.md, tests/support/cleanup.py): a test that built an in-process runner Supervisor
# fails at teardown if it left the Supervisor's journal WAL open or its background loops running.
@pytest.fixture(autouse=True)
def _supervisors_cleaned_up():
    from tests.support import cleanup

    cleanup.track_supervisors()
    cleanup.SUPERVISORS.clear()
    yield
    left = cleanup.release_supervisors()
    if left:
        pytest.fail("a test left its runner open:\n" + "\n".join(left), pytrace=False)
