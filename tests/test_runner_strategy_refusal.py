"""The runner's start refusals: the protocol's ``runner_refusal`` (a strategy the runner cannot hold
at all) refuses before anything is written; no built-in strategy uses it any more. The loan book
is refused in live mode only (``live_refusal``: its loan is off-venue), naming the field."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hedge_core.errors import InvalidInput
from hedge_core.runner.supervisor import Supervisor
from hedge_core.store import Store


def test_no_built_in_strategy_is_refused_by_the_runner() -> None:
    from hedge_core.engine.strategies import STRATEGIES, strategy_for
    from hedge_core.params.models import CarryParams

    strategy_for(CarryParams())  # fills the registry with the built-ins
    assert "voltier" in STRATEGIES and len(STRATEGIES) >= 5
    refused = sorted(name for name, s in STRATEGIES.items() if s.runner_refusal)
    assert refused == []
    live_refused = sorted(name for name, s in STRATEGIES.items() if s.live_refusal)
    assert live_refused == ["voltier"]


def _refused(tmp_path: Path, request: dict) -> str:
    store = Store(tmp_path / "db.duckdb", hold=True)
    sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)

    async def go() -> str:
        with pytest.raises(InvalidInput) as ei:
            await sup.start_hedge(request)
        assert sup.hedges == {}
        sup.journal.flush()
        assert len(store.read_table("hedge_runs")) == 0
        assert len(store.read_table("loan_events")) == 0
        return str(ei.value)

    try:
        return asyncio.run(go())
    finally:
        store.close()


def test_runner_refusal_mechanism_refuses_at_start_writing_nothing(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from hedge_core.engine.strategies import strategy_for
    from hedge_core.params.models import CarryParams

    cls = type(strategy_for(CarryParams()))
    reason = "a strategy the runner can hold: test refusal"
    monkeypatch.setattr(cls, "runner_refusal", reason)
    msg = _refused(tmp_path, {"params_inline": {"strategy": "carry"}, "mode": "paper", "feed": "replay"})
    assert "strategy" in msg and "carry" in msg and "test refusal" in msg


def test_loan_book_is_refused_in_live_mode_naming_the_mode(tmp_path: Path) -> None:
    msg = _refused(tmp_path, {"params_inline": {"strategy": "voltier"}, "mode": "live", "confirm_live": True})
    assert "mode" in msg and "live" in msg and "voltier" in msg and "off-venue" in msg
