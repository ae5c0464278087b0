"""A refused start changes nothing: no paper venue state file is left behind (runner.paper_files), and a
retry with the same hedge id starts from the balances it asks for. Paper, in process.

Before, the paper venue wrote ``<home>/paper/<hedge id>.json`` when it was built (and again when the
preflight set leverage and margin mode), and a refused start left it there: the retry, funded properly
this time, loaded the old file and was refused again with the old balances.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest

from hedge_core.errors import InvalidInput
from hedge_core.runner.paper_files import PaperFilesGuard, state_files
from hedge_core.runner.supervisor import Supervisor
from hedge_core.store import Store
from tests.support.best_perp import START
from tests.support.best_perp import request as best_request
from tests.support.demo_store import store  # noqa: F401 - the seeded store fixture

pytestmark = pytest.mark.integration  # an in-process runner (Supervisor) on a DuckDB store

CARRY = {"strategy": "carry", "notional": 1000.0, "min_funding_rate": 0.00001, "min_net_carry": -1.0}
RICH = {"spot": {"USDT": 100_000.0}, "perp": {"USDT": 100_000.0}}
POOR_SPOT = {"spot": {"USDT": 1.0}, "perp": {"USDT": 100_000.0}}


def carry_request(**kw) -> dict:
    return {"hedge_id": "r1", "mode": "paper", "feed": "replay", "data_venue": "demo", "start": str(START),
            "end": str(START + pd.Timedelta(hours=30)), "speed": 1e9, "venue": "binance", "params_inline": CARRY,
            "balances": RICH, **kw}


def paper_files(home: Path) -> list[str]:
    folder = home / "paper"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_refused_paper_start_leaves_no_state_file_and_a_retry_starts_from_its_balances(store: Store,
                                                                                          tmp_path: Path) -> None:
    home = tmp_path / "home"

    async def go() -> None:
        sup = Supervisor(store, home, dms_timeout_s=600.0)
        with pytest.raises(InvalidInput) as err:  # 1 USDT on the spot wallet: the preflight refuses
            await sup.start_hedge(carry_request(balances=POOR_SPOT))
        assert "spot balance 1.00 USDT" in str(err.value)
        assert paper_files(home) == [] and not sup.hedges
        dry = await sup.start_hedge(carry_request(dry_run=True))  # a dry run writes nothing either
        assert dry["dry_run"] is True and paper_files(home) == []
        await sup.start_hedge(carry_request())  # the retry, funded: from ITS balances, not the refused ones
        h = sup.hedges["r1"]
        spot = await h.raw_adapter.fetch_balance("spot")
        assert spot["USDT"].total == pytest.approx(100_000.0)
        assert paper_files(home) == ["r1.json"]  # a started hedge has its file at once
        await asyncio.wait_for(h.task, 60)
        await sup.shutdown(flatten=False)

    asyncio.run(go())


def test_a_two_venue_start_every_venue_refused_leaves_no_file_and_the_retry_trades(store: Store,
                                                                                   tmp_path: Path) -> None:
    home = tmp_path / "home"
    broke = {"spot": {"USDT": 100_000.0}, "perp": {"USDT": 2.0}}

    async def go() -> None:
        sup = Supervisor(store, home, dms_timeout_s=600.0)
        with pytest.raises(InvalidInput, match="perp_venue='best'"):
            await sup.start_hedge(best_request(balances=broke))
        assert paper_files(home) == []
        out = await sup.start_hedge(best_request())
        assert out["perp_venue"] == "bybit"
        h = sup.hedges["b1"]
        perp = await h.raw_adapter.perp.fetch_balance("perp")
        assert perp["USDT"].total == pytest.approx(100_000.0)
        assert paper_files(home) == ["b1@binance.json", "b1@bybit.json"]
        await asyncio.wait_for(h.task, 60)
        await sup.shutdown(flatten=False)

    asyncio.run(go())


def test_the_guard_restores_a_file_that_was_there_and_removes_new_ones(tmp_path: Path) -> None:
    folder = tmp_path / "paper"
    folder.mkdir()
    (folder / "h.json").write_text('{"old": 1}')
    (folder / "other.json").write_text("x")  # another hedge's file: never touched
    guard = PaperFilesGuard(folder, "h", ("binance", "okx"))
    (folder / "h.json").write_text('{"new": 2}')
    (folder / "h@okx.json").write_text("{}")
    assert [p.name for p in state_files(folder, "h", ("binance", "okx"))] == ["h.json", "h@okx.json"]
    guard.restore()
    assert sorted(p.name for p in folder.iterdir()) == ["h.json", "other.json"]
    assert (folder / "h.json").read_text() == '{"old": 1}'
    guard.restore()  # twice: still nothing else changes
    assert sorted(p.name for p in folder.iterdir()) == ["h.json", "other.json"]
