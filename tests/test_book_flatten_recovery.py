"""A book guard's ``flatten`` action never acts on a part of the book (docs/book.md): the book monitor's loop runs
while ``Supervisor.recover_all`` brings the hedges back one at a time, and a book built then holds only the hedges
recovered so far. A limit set to flatten that fires then is recorded (entries blocked) but flattens nothing; once
every hedge is back, the next refresh judges the whole book and flattens what it concerns."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest

from hedge_core.runner.hedge import HedgeTask
from hedge_core.runner.supervisor import Supervisor
from hedge_core.store import Store
from tests.support.demo_store import store  # noqa: F401 - the seeded store fixture
from tests.support.best_perp import START
from tests.test_book_actions import CARRY, _flat, _limits, _two_hedges_in_positions

pytestmark = pytest.mark.integration  # an in-process runner (Supervisor) on a DuckDB store


def test_a_book_flatten_waits_until_every_hedge_is_recovered(store: Store, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"

    async def first() -> None:
        sup = Supervisor(store, home, dms_timeout_s=600.0)
        await sup.recover_all()
        await _two_hedges_in_positions(sup)
        sup.journal.flush()
        for h in sup.hedges.values():  # a crash: tasks gone, both hedges in positions in the journal
            if h.task is not None and not h.task.done():
                h.task.cancel()

    async def second() -> None:
        sup = Supervisor(store, home, dms_timeout_s=600.0)
        _limits(sup.home, "max_gross_exposure = 1\ngross_exposure_action = 'flatten'\n")  # the whole book breaches
        during: list[tuple[list[str], list[str]]] = []
        recover = HedgeTask.recover

        async def recover_one(task: HedgeTask, state: str, started_at: object) -> dict:
            if sup.hedges:  # one hedge back, the other not yet: the book loop's tick comes now
                book = sup.book.refresh()
                during.append(([p.hedge_id for p in sup.book.positions()], await sup.book.enforce()))
                assert book.gross >= 1
            return await recover(task, state, started_at)

        monkeypatch.setattr(HedgeTask, "recover", recover_one)
        rec = await sup.recover_all()
        assert sorted(r["hedge_id"] for r in rec) == ["b1", "e1"]
        [(held, flattened)] = during
        assert len(held) == 1 and flattened == []  # a part of the book: nothing flattened
        assert not _flat(sup, held[0]) and not sup.hedges[held[0]].driver.ctx.kill_latched
        assert "book_gross_exposure" in sup.book.firing  # recorded, entries blocked meanwhile
        sup.book.refresh()  # every hedge back: the whole book breaches, both are flattened, once
        assert sorted(await sup.book.enforce()) == ["b1", "e1"]
        assert _flat(sup, "b1") and _flat(sup, "e1")
        sup.journal.flush()
        g = store.read_table("guard_firings", hedge_id="book").sort_values("ts")
        assert list(g["action"]) == ["block_entries", "flatten"]
        await sup.shutdown(flatten=False)

    asyncio.run(first())
    asyncio.run(second())


def test_a_recovered_hedges_day_pnl_counts_from_the_journaled_day_start_not_its_whole_pnl(
        store: Store, tmp_path: Path) -> None:
    """The day's starting PnL (``HedgeContext.day_start_pnl``) is journaled when the day rolls (``exit_marks``,
    runner.exit_marks) and put back by a recovery on the same UTC day: the recovered hedge's ``day_pnl`` is its PnL
    now minus that day start, before any market update. Without it the summary said ``day_pnl`` = its WHOLE PnL
    (a book ``daily_loss`` limit (flatten) and the risk advisor judged yesterday's losses as today's), later None.
    Window over midnight: the hedge's day PnL and its whole PnL differ."""
    home = tmp_path / "home"
    end = START + pd.Timedelta(hours=23)  # 05:00 -> 04:00 the next day: in positions at midnight
    assert end.date() != START.date()

    async def first() -> tuple[float, float, str]:
        sup = Supervisor(store, home, dms_timeout_s=600.0)
        await sup.recover_all()
        await sup.start_hedge({"hedge_id": "b1", "mode": "paper", "feed": "replay", "data_venue": "demo",
                               "start": str(START), "end": str(end), "speed": 1e9, "venue": "binance",
                               "spot_symbol": "BTC/USDT", "perp_symbol": "BTC/USDT:USDT", "params_inline": CARRY,
                               "balances": {"spot": {"USDT": 100_000.0}, "perp": {"USDT": 100_000.0}}})
        h = sup.hedges["b1"]
        await h.task
        s = h.summary()
        assert s["state"] == "MONITORING_POSITIONS" and abs(s["pnl"] - s["day_pnl"]) > 0.5  # yesterday's PnL
        assert h.driver.ctx.day == str(end.date())
        sup.journal.flush()
        return s["pnl"], s["day_pnl"], h.driver.ctx.day

    async def second(pnl: float, day: float, day_name: str) -> None:
        sup = Supervisor(store, home, dms_timeout_s=600.0)
        # the whole PnL is a loss beyond this limit, the day's is not
        limit = (min(pnl, day) + max(pnl, day)) / 2
        assert pnl < 0 and limit < 0 and day > limit, (pnl, day)
        _limits(sup.home, f"daily_loss_limit = {-limit}\ndaily_loss_action = 'flatten'\n")
        rec = await sup.recover_all()
        assert [r["hedge_id"] for r in rec] == ["b1"]
        h = sup.hedges["b1"]
        h.task.cancel()  # no market update after the recovery (a live feed's next bar is up to an interval away)
        try:
            await h.task
        except asyncio.CancelledError:
            pass
        c, s = h.driver.ctx, h.summary()
        # the journaled day start (the PnL at the first update of the day), not the recovered PnL, not zero
        assert c.day == day_name and c.day_start_pnl == pytest.approx(pnl - day, abs=1e-9)
        # its PnL now (marked at the venue's tickers at recovery) minus that day start: not the whole PnL
        assert s["day_pnl"] == pytest.approx(s["pnl"] - (pnl - day), abs=1e-9)
        assert abs(s["day_pnl"] - s["pnl"]) > 0.5 and s["day_pnl"] > limit
        book = sup.book.refresh()
        assert book.day_pnl == pytest.approx(s["day_pnl"]) and "book_daily_loss" not in sup.book.firing
        assert await sup.book.enforce() == [] and not _flat(sup, "b1")
        sup.journal.flush()
        rec_row = store.read_table("exit_marks", hedge_id="b1").sort_values("seq").iloc[-1]
        assert rec_row["event"] == "recovered" and rec_row["day"] == day_name  # what the restart put back
        await sup.shutdown(flatten=False)

    asyncio.run(second(*asyncio.run(first())))
