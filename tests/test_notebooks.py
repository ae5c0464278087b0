"""Every notebook runs end to end (nbclient, the venv's python3 kernel), both ways, and is committed without outputs.
The ``fresh-clone`` runs are in tests/test_notebooks_fresh_clone.py (two files, so ``--dist loadfile`` runs them on two
workers); the helpers in tests/support/notebooks.py.

- ``fresh-clone``: ``HEDGE_SHARED_DATA`` points at an empty folder, so ``hedge_core.data.shared.market_data``
  falls back to the synthetic demo market; its label must be in the output and in every chart title
  (apart from the formula-only charts listed in ``NOT_DATA``).
- ``shared``: ``HEDGE_SHARED_DATA`` is the real ``../shared/data``; skipped with a reason when it is
  absent, except under ``CI=true`` (CI always has it), where its absence fails. A notebook that never
  calls ``market_data`` (07 always uses the demo market) has one way only and skips this variant.

Both ways: no cell errors, and no output loads anything from the internet (plotly.js is embedded by the
offline renderer every notebook sets, never fetched from a CDN). Each run gets its own database and
runner home in a temporary folder (``HEDGE_DB``), never the user's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hedge_core.data.shared import DEMO_LABEL, shared_data_dir
from tests.support.notebooks import NOTEBOOKS, assert_offline, outputs, run_notebook, text


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_on_the_shared_data(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if "market_data(" not in path.read_text():
        pytest.skip(f"{path.name} never reads market data through market_data(): the fresh-clone run is the same run")
    shared = shared_data_dir()
    if shared is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but ../shared/data is absent (set HEDGE_SHARED_DATA)")
        pytest.skip("../shared/data is absent (a fresh clone); set HEDGE_SHARED_DATA to run this variant")
    nb = run_notebook(path, tmp_path, monkeypatch, shared)
    assert_offline(path, nb)
    printed = "\n".join(text(o) for o in outputs(nb))
    assert "real Binance data" in printed and DEMO_LABEL.upper() not in printed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_says_what_data_it_uses(path: Path) -> None:
    nb = json.loads(path.read_text())
    first_md = next("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "**Data.**" in first_md and DEMO_LABEL in first_md, f"{path.name}: the first cell must say what data it uses"
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "notebook_connected" not in code and "load_tidy" not in code and "require_shared_data" not in code


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_committed_withoutoutputs(path: Path) -> None:
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "notebooks/ is empty"
