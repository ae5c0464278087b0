"""Every notebook runs end to end (nbclient, the venv's python3 kernel), both ways, and is committed without outputs.

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
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from hedge_core.data.shared import DEMO_LABEL, shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PLOTLY_JSON = "application/vnd.plotly.v1+json"
# charts of formulas, not of market data: they carry no data label
NOT_DATA = {"Reserve deployed (USDT) vs LTV", "Repayment split per month (USDT)"}
# anything the browser would fetch from the network when the output is shown
REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|require\.config|cdn\.plot\.ly|cdnjs\.|cdn\.jsdelivr""",
                    re.IGNORECASE)
PLOTLY_LIB = re.compile(r"<script[^>]*>\s*/\*\*\s*\* plotly\.js v.*?window\.Plotly = Plotly;.*?</script>", re.DOTALL)


def _outputs(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _text(o: nbformat.NotebookNode) -> str:
    if o.output_type == "stream":
        return o.get("text", "")
    return str(o.get("data", {}).get("text/plain", ""))


def _titles(nb: nbformat.NotebookNode) -> list[str]:
    out = []
    for o in _outputs(nb):
        fig = o.get("data", {}).get(PLOTLY_JSON)
        if fig is not None:
            title = fig.get("layout", {}).get("title", {})
            out.append(title.get("text", "") if isinstance(title, dict) else str(title))
    return out


def _run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    monkeypatch.setenv("HEDGE_SHARED_DATA", str(shared))  # the kernel inherits os.environ
    monkeypatch.setenv("HEDGE_DB", str(tmp_path / "nb.duckdb"))
    monkeypatch.setenv("HEDGE_NB_OUTPUT", str(tmp_path))
    monkeypatch.setenv("HEDGE_RUNNER_HOME", str(tmp_path / "runner"))
    # one BLAS thread: statsmodels' small regressions (02's cointegration/ADF lag searches) ran 10x
    # slower with threads fighting over 2 shared cores; results do not depend on it
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for o in _outputs(nb) if o.output_type == "error"]
    assert not errors, f"{path.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    return nb


def _assert_offline(path: Path, nb: nbformat.NotebookNode) -> None:
    html = [str(o.get("data", {}).get("text/html", "")) for o in _outputs(nb)]
    for h in html:
        # the embedded plotly.js library holds default URLs of features no chart here uses (geo topojson)
        h = PLOTLY_LIB.sub("<script>plotly.js</script>", h)
        m = REMOTE.search(h)
        where = h[max(0, m.start() - 80):m.end() + 80] if m else ""
        assert m is None, f"{path.name}: an output loads from the network: ...{where}..."
    if _titles(nb):  # figures are drawn with plotly.js embedded in the notebook itself
        assert any("window.Plotly = Plotly" in h for h in html), f"{path.name}: figures without embedded plotly.js"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_on_a_fresh_clone(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "no-shared-data"
    empty.mkdir()
    nb = _run(path, tmp_path, monkeypatch, empty)
    _assert_offline(path, nb)
    printed = "\n".join(_text(o) for o in _outputs(nb))
    assert DEMO_LABEL.upper() in printed, f"{path.name}: the demo label is not printed"
    unlabelled = [t for t in _titles(nb) if DEMO_LABEL not in t.lower() and t not in NOT_DATA]
    assert not unlabelled, f"{path.name}: charts of synthetic data without the label: {unlabelled}"


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
    nb = _run(path, tmp_path, monkeypatch, shared)
    _assert_offline(path, nb)
    printed = "\n".join(_text(o) for o in _outputs(nb))
    assert "real Binance data" in printed and DEMO_LABEL.upper() not in printed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_says_what_data_it_uses(path: Path) -> None:
    nb = json.loads(path.read_text())
    first_md = next("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "**Data.**" in first_md and DEMO_LABEL in first_md, f"{path.name}: the first cell must say what data it uses"
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "notebook_connected" not in code and "load_tidy" not in code and "require_shared_data" not in code


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_committed_without_outputs(path: Path) -> None:
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "notebooks/ is empty"
