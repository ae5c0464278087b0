"""Every notebook runs end to end (nbclient, the venv's python3 kernel) and is committed without outputs.

Notebooks with metadata ``hedge.requires_shared_data`` skip with a reason when ../shared/data is absent.
Notebooks with ``hedge.sources`` (e.g. ["demo", "shared"]) run once per source through ``HEDGE_NB_SOURCE``.
Each run gets its own database in a temporary folder (``HEDGE_DB``), never the user's.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from hedge_core.data.shared import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _cases() -> list:
    cases = []
    for nb in NOTEBOOKS:
        meta = json.loads(nb.read_text()).get("metadata", {}).get("hedge", {})
        for source in meta.get("sources", ["default"]):
            needs = meta.get("requires_shared_data", False) or source == "shared"
            marks = [pytest.mark.shared_data] if needs else []
            cases.append(pytest.param(nb, source, id=f"{nb.stem}[{source}]", marks=marks))
    return cases


@pytest.mark.slow
@pytest.mark.parametrize(("path", "source"), _cases())
def test_notebook_executes(path: Path, source: str, tmp_path, monkeypatch) -> None:
    nb = nbformat.read(path, as_version=4)
    monkeypatch.setenv("HEDGE_DB", str(tmp_path / "nb.duckdb"))
    monkeypatch.setenv("HEDGE_NB_SOURCE", source)
    monkeypatch.setenv("HEDGE_NB_OUTPUT", str(tmp_path))
    if shared_data_dir() is not None:
        monkeypatch.setenv("HEDGE_SHARED_DATA", str(shared_data_dir()))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_committed_without_outputs(path: Path) -> None:
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "notebooks/ is empty"
