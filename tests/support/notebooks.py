"""Shared helpers of the notebook tests (no tests here): run a notebook with nbclient in a temp
home, read its outputs, check that no output loads anything from the network."""

from __future__ import annotations

import re
from pathlib import Path

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # nbformat loads jsonschema's format checkers (~2.4 s): only when a notebook runs
    import nbformat

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PLOTLY_JSON = "application/vnd.plotly.v1+json"
# charts of formulas, not of market data: they carry no data label
NOT_DATA = {"Reserve deployed (USDT) vs LTV", "Repayment split per month (USDT)"}
# anything the browser would fetch from the network when the output is shown
REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|require\.config|cdn\.plot\.ly|cdnjs\.|cdn\.jsdelivr""",
                    re.IGNORECASE)
PLOTLY_LIB = re.compile(r"<script[^>]*>\s*/\*\*\s*\* plotly\.js v.*?window\.Plotly = Plotly;.*?</script>", re.DOTALL)


def outputs(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def text(o: nbformat.NotebookNode) -> str:
    if o.output_type == "stream":
        return o.get("text", "")
    return str(o.get("data", {}).get("text/plain", ""))


def titles(nb: nbformat.NotebookNode) -> list[str]:
    out = []
    for o in outputs(nb):
        fig = o.get("data", {}).get(PLOTLY_JSON)
        if fig is not None:
            title = fig.get("layout", {}).get("title", {})
            out.append(title.get("text", "") if isinstance(title, dict) else str(title))
    return out


def run_notebook(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared: Path) -> nbformat.NotebookNode:
    """Execute ``path`` with nbclient in ``tmp_path`` (its own database and runner home) on the market data
    folder ``shared`` (an empty folder: the demo market); fails on the first cell error."""
    import nbformat
    from nbclient import NotebookClient

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
    errors = [o for o in outputs(nb) if o.output_type == "error"]
    assert not errors, f"{path.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    return nb


def assert_offline(path: Path, nb: nbformat.NotebookNode) -> None:
    html = [str(o.get("data", {}).get("text/html", "")) for o in outputs(nb)]
    for h in html:
        # the embedded plotly.js library holds default URLs of features no chart here uses (geo topojson)
        h = PLOTLY_LIB.sub("<script>plotly.js</script>", h)
        m = REMOTE.search(h)
        where = h[max(0, m.start() - 80):m.end() + 80] if m else ""
        assert m is None, f"{path.name}: an output loads from the network: ...{where}..."
    if titles(nb):  # figures are drawn with plotly.js embedded in the notebook itself
        assert any("window.Plotly = Plotly" in h for h in html), f"{path.name}: figures without embedded plotly.js"
