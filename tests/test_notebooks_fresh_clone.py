"""Every notebook runs end to end on a fresh clone (its ``shared`` run and the static checks are in
tests/test_notebooks.py; the two files are apart so that ``--dist loadfile`` runs them on two workers).

``fresh-clone``: ``HEDGE_SHARED_DATA`` points at an empty folder, so ``hedge_core.data.shared.market_data``
falls back to the synthetic demo market; its label must be in the output and in every chart title
(apart from the formula-only charts listed in ``NOT_DATA``). No cell errors, and no output loads
anything from the internet (tests/support/notebooks.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hedge_core.data.shared import DEMO_LABEL
from tests.support.notebooks import (NOT_DATA, NOTEBOOKS, assert_offline, outputs, run_notebook, text,
                                     titles)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_on_a_fresh_clone(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "no-shared-data"
    empty.mkdir()
    nb = run_notebook(path, tmp_path, monkeypatch, empty)
    assert_offline(path, nb)
    printed = "\n".join(text(o) for o in outputs(nb))
    assert DEMO_LABEL.upper() in printed, f"{path.name}: the demo label is not printed"
    unlabelled = [t for t in titles(nb) if DEMO_LABEL not in t.lower() and t not in NOT_DATA]
    assert not unlabelled, f"{path.name}: charts of synthetic data without the label: {unlabelled}"
