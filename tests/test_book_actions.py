"""Book guards that act, and a drawdown that survives a restart, in an in-process runner (a Supervisor with
paper carry hedges on the demo market; docs/book.md):

- the default action (``block_entries``) leaves the hedges in positions; ``<name>_action = "flatten"`` flattens
  the hedges the limit concerns through the operator's per-hedge flatten (kill switch), once per episode, the
  ``guard_firings`` row carrying the action and a critical alert saying which hedges;
- the book's peak and max drawdown are journaled in ``book_marks`` and restored by the next supervisor's
  ``recover_all``: the peak rebased by the PnL of the finished hedges the new runner no longer holds.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from hedge_core.runner.supervisor import Supervisor
from hedge_core.store import Store
from tests.support.book_hedges import is_flat as _flat
from tests.support.book_hedges import two_hedges_in_positions as _two_hedges_in_positions
from tests.support.book_hedges import write_limits as _limits
from tests.support.demo_store import store  # noqa: F401 - the seeded store fixture

pytestmark = pytest.mark.integration  # an in-process runner (Supervisor) on a DuckDB store

def test_the_default_action_trades_nothing_and_flatten_flattens_the_hedges_concerned(store: Store,
                                                                                    tmp_path: Path) -> None:
    async def go() -> None:
        sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        await _two_hedges_in_positions(sup)
        book = sup.book.refresh()
        dq = {a.asset: abs(a.delta_quote) for a in book.assets}
        assert abs(dq["BTC"] - dq["ETH"]) > 1e-3, dq  # the two residual deltas differ: a limit between them
        big, small = sorted(dq, key=dq.get, reverse=True)
        hid = {"BTC": "b1", "ETH": "e1"}
        sup.journal.flush()
        orders = len(store.read_table("orders"))

        # the default action: blocks entries, trades nothing
        _limits(sup.home, f"max_asset_net_delta = {(dq[big] + dq[small]) / 2}\n")
        sup.book.refresh()
        assert await sup.book.enforce() == []
        sup.journal.flush()
        assert len(store.read_table("orders")) == orders
        assert not any(_flat(sup, h) for h in ("b1", "e1"))
        g = store.read_table("guard_firings", hedge_id="book")
        assert list(g["guard"]) == [f"book_asset_net_delta[asset:{big}]"] and list(g["action"]) == ["block_entries"]

        # the same limit set to flatten (while it fires): only the asset's hedge is flattened, once
        _limits(sup.home, f"max_asset_net_delta = {(dq[big] + dq[small]) / 2}\nasset_net_delta_action = 'flatten'\n")
        sup.book.refresh()
        assert await sup.book.enforce() == [hid[big]]
        assert _flat(sup, hid[big]) and not _flat(sup, hid[small])
        assert sup.hedges[hid[big]].driver.ctx.kill_latched  # the operator's kill switch: latched
        sup.journal.flush()
        g = store.read_table("guard_firings", hedge_id="book").sort_values("ts")
        assert list(g["action"]) == ["block_entries", "flatten"]
        assert json.loads(g["numbers"].iloc[-1])["hedges"] == 1.0
        kill = store.read_table("guard_firings", hedge_id=hid[big])
        assert "kill_switch" in set(kill["guard"])  # the per-hedge operator flatten, not an order path of its own
        crit = [a for a in sup.alert_bus.recent if a.kind == "book_guard" and a.level == "critical"]
        assert len(crit) == 1 and hid[big] in crit[0].message
        sup.book.refresh()
        assert await sup.book.enforce() == []  # once per episode

        # a book-wide flatten, by the monitor's own loop (refresh, then enforce): every hedge not finished (the one
        # already flat is not sent FLATTEN again)
        n_kill = len(store.read_table("guard_firings", hedge_id=hid[big]))
        _limits(sup.home, "max_gross_exposure = 1\ngross_exposure_action = 'flatten'\n")
        sup.book.refresh_s = 0.05
        loop = asyncio.create_task(sup.book.loop())
        for _ in range(200):
            if _flat(sup, hid[small]):
                break
            await asyncio.sleep(0.05)
        loop.cancel()
        assert _flat(sup, "b1") and _flat(sup, "e1")
        sup.journal.flush()
        assert len(store.read_table("guard_firings", hedge_id=hid[big])) == n_kill
        await sup.shutdown(flatten=False)

    asyncio.run(go())


def test_the_book_drawdown_is_journaled_and_restored_over_a_restart(store: Store, tmp_path: Path) -> None:
    home = tmp_path / "home"

    crashed: list[Supervisor] = []

    async def first() -> dict[str, float]:
        sup = Supervisor(store, home, dms_timeout_s=600.0)
        crashed.append(sup)
        assert await sup.recover_all() == []  # nothing to recover: the (empty) marks restored, journaling on
        await _two_hedges_in_positions(sup)
        sup.book.refresh()
        await sup.command("b1", "flatten", "test: a hedge finishes with its loss")
        book = sup.book.refresh()
        assert _flat(sup, "b1") and book.max_drawdown > 0 and sup.book.closed_pnl < 0
        for h in sup.hedges.values():  # a crash: tasks gone, the journal never closed (its WAL left behind)
            if h.task is not None and not h.task.done():
                h.task.cancel()
        return {"peak": sup.book.peak, "max": book.max_drawdown, "closed": sup.book.closed_pnl,
                "drawdown": book.drawdown}

    async def second(before: dict[str, float]) -> None:
        sup = Supervisor(store, home, dms_timeout_s=600.0)
        rec = await sup.recover_all()
        assert [r["hedge_id"] for r in rec] == ["e1"]  # the finished b1 is not held again
        book = sup.book.snapshot(funding=False, var=False)
        marks = store.read_table("book_marks", hedge_id="book")
        assert len(marks) == 1 and marks["closed_pnl"].iloc[0] == pytest.approx(before["closed"])
        # the peak rebased by the finished hedge's PnL: the drawdown of the whole book, not of e1 alone
        assert sup.book.peak == pytest.approx(before["peak"] - before["closed"])
        assert book.drawdown == pytest.approx(before["peak"] - before["closed"] - book.pnl)
        assert book.drawdown > -book.pnl + 1.0  # more than e1's own loss: b1's realised loss still counts
        assert book.max_drawdown == pytest.approx(max(before["max"], book.drawdown))
        assert book.max_drawdown >= before["max"]
        await sup.shutdown(flatten=False)

    before = asyncio.run(first())
    crashed[0].journal._close_segment()  # as the killed process's exit would: its WAL file closed, not flushed
    asyncio.run(second(before))
