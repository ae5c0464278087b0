"""Starter parameter sets: a first run can start a hedge at once; an operator's sets are never touched."""

import pytest

from hedge_core.params import store as param_store
from hedge_core.errors import InvalidInput
from hedge_core.params.models import CarryParams
from hedge_core.starter_sets import STARTERS, ensure_starter_sets


def test_empty_folder_gets_one_paper_sized_draft_per_starter(tmp_path):
    root, db = tmp_path / "params", tmp_path / "x.duckdb"
    refs = ensure_starter_sets(root, db=db)
    assert refs == [f"{n}@1" for n in STARTERS]
    for ref in refs:
        ps = param_store.load(ref, root=root)
        assert ps.params.notional == 1_000.0
        assert param_store.status_of(ps.name, ps.version, root=root) == "draft"  # live needs a promotion
    assert ensure_starter_sets(root, db=db) == []  # second run: nothing new


def test_a_folder_with_any_set_is_left_alone(tmp_path):
    root, db = tmp_path / "params", tmp_path / "x.duckdb"
    param_store.export(CarryParams(notional=5_000.0), "mine", created_from="test", root=root, db=db)
    assert ensure_starter_sets(root, db=db) == []
    assert param_store.names(root) == ["mine"]


def test_bad_notional_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(InvalidInput, match="notional"):
        ensure_starter_sets(tmp_path / "p", notional=0.0, db=tmp_path / "x.duckdb")
    assert not (tmp_path / "p").exists() or param_store.names(tmp_path / "p") == []
