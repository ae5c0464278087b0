"""The runner refuses, at start and before writing anything, a strategy it cannot hold (the loan book):
the hedge would otherwise fail inside its task with nothing managing it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hedge_core.errors import InvalidInput
from hedge_core.runner.supervisor import Supervisor
from hedge_core.store import Store


def test_loan_book_is_refused_at_start_naming_the_field_and_writing_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb", hold=True)
    sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)

    async def go() -> None:
        with pytest.raises(InvalidInput) as ei:
            await sup.start_hedge({"params_inline": {"strategy": "voltier"}, "mode": "paper", "feed": "replay"})
        msg = str(ei.value)
        assert "strategy" in msg and "voltier" in msg and "research only" in msg
        assert sup.hedges == {}
        sup.journal.flush()
        assert len(store.read_table("hedge_runs")) == 0

    try:
        asyncio.run(go())
    finally:
        store.close()


def test_every_other_strategy_is_accepted_by_the_runner() -> None:
    from hedge_core.engine.strategies import STRATEGIES, strategy_for
    from hedge_core.params.models import CarryParams

    strategy_for(CarryParams())  # fills the registry with the built-ins
    refused = sorted(name for name, s in STRATEGIES.items() if s.runner_refusal)
    assert refused == ["voltier"]
