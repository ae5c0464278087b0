"""Best execution at each entry of a paper replay (runner.best_entry): the perp venue re-chosen from FLAT.

The hedge starts with ``perp_venue="best"`` among bybit and okx (tests.test_runner_best_perp: bybit's
proceeds are better at the start). Before the replay runs, okx's paper settings change (its perp taker fee
0.01 %, no slippage: "okx cut its fee"), so at the next update on which the flat hedge may enter, okx's
walked proceeds are better: the runner moves the (flat) perp leg to okx, journals it, and the entry trades
there. Once the hedge holds positions nothing moves. A kill at the journaled kill point ``perp_venue_chosen``
recovers the hedge on okx. In process (the kill is an exception at the kill point).
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pandas as pd
import pytest

from hedge_core.engine.events import MarketUpdate
from hedge_core.engine.states import State
from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.routed_paper import venue_state_path
from hedge_core.runner import best_entry
from hedge_core.runner.best_perp import TRIGGER
from hedge_core.runner.supervisor import Supervisor
from hedge_core.store import Store
from tests.support.best_perp import START, VENUES, request
from tests.support.demo_store import store  # noqa: F401 - the seeded store fixture

pytestmark = pytest.mark.integration  # an in-process runner (Supervisor) on a DuckDB store

CHEAPER = {**VENUES, "okx": {"perp_taker_fee": 0.0001, "slippage_bps": 0.0}}


def okx_cuts_its_fee(h) -> None:
    """After the start: okx's paper settings change (the candidates are built from the hedge's settings)."""
    h.spec = h.spec.model_copy(update={"paper_venues": CHEAPER})


def test_a_flat_hedge_moves_its_perp_to_the_venue_best_at_entry_and_trades_there(store: Store, tmp_path: Path) -> None:
    async def go() -> None:
        sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        out = await sup.start_hedge(request())
        assert out["perp_venue"] == "bybit"
        h = sup.hedges["b1"]
        okx_cuts_its_fee(h)
        await asyncio.wait_for(h.task, 60)
        assert h.driver.ctx.state is State.MONITORING_POSITIONS
        assert h.spec.perp_venue == "okx" and h.raw_adapter.perp_venue == "okx" and h.driver.ctx.perp.venue == "okx"
        assert h.params.perp_taker_fee == 0.0001 and h.params.perp_venue == "okx"
        rec = h.spec.perp_venue_choice
        assert rec["at"] == "entry" and rec["previous"] == "bybit" and rec["venue"] == "okx"
        assert [s["venue"] for s in rec["ranking"]] == ["okx", "bybit"]
        # holding positions: nothing moves, even when bybit becomes the better venue again
        h.spec = h.spec.model_copy(update={"paper_venues": {**VENUES, "bybit": {"perp_taker_fee": 0.0,
                                                                                  "slippage_bps": 0.0}}})
        c = h.driver.ctx
        assert await best_entry.before_entry(h, MarketUpdate(c.last_ts, c.spot.last_price, c.perp.last_price)) is None
        assert h.spec.perp_venue == "okx"
        sup.journal.flush()
        tr = store.read_table("transitions", hedge_id="b1").sort_values("seq")
        chosen = tr[tr["trigger_name"] == TRIGGER]
        assert len(chosen) == 2 and "perp venue bybit chosen" in chosen["reason"].iloc[0]
        moved = chosen.iloc[1]
        assert moved["reason"].startswith("at entry, from flat (was bybit): perp venue okx chosen by best execution")
        assert moved["from_state"] == moved["to_state"] == "ANALYZING_MARKET"
        first_order = store.read_table("orders", hedge_id="b1")["intent_ts"].min()
        assert pd.Timestamp(moved["ts"]) <= pd.Timestamp(first_order)  # chosen before the entry's first order
        orders = store.read_table("orders", hedge_id="b1")
        assert set(orders.loc[orders["leg"] == "perp", "venue"]) == {"okx"}
        fills = store.read_table("fills", hedge_id="b1")
        perp = fills[fills["leg"] == "perp"]
        assert len(perp) >= 1 and set(perp["venue"]) == {"okx"}
        assert set(fills.loc[fills["leg"] == "spot", "venue"]) == {"binance"}
        # okx's fee, 0.01 % of the fill's notional, is what was charged
        assert perp["fee"].sum() == pytest.approx(0.0001 * (perp["qty"] * perp["price"]).sum(), rel=1e-12)
        assert store.read_table("hedge_runs", hedge_id="b1")["perp_venue"].iloc[0] == "okx"
        okx = PaperExchange.load(venue_state_path(tmp_path / "home" / "paper", "b1", "okx")).core
        assert okx.positions_view()[0].qty < 0 and okx.config.perp_taker_fee == 0.0001
        byb = PaperExchange.load(venue_state_path(tmp_path / "home" / "paper", "b1", "bybit")).core
        assert not byb.orders  # bybit never got an order

    asyncio.run(go())


def test_a_kill_at_perp_venue_chosen_recovers_the_hedge_on_the_new_venue(store: Store, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    class Killed(Exception):
        pass

    def kill_point(point: str, leg: str = "", purpose: str = "") -> None:
        if point == best_entry.KILL_POINT:
            raise Killed(f"killed at {point} ({leg})")

    monkeypatch.setattr(best_entry, "kill_point", kill_point)

    async def go() -> None:
        sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        await sup.start_hedge(request())
        h = sup.hedges["b1"]
        okx_cuts_its_fee(h)
        await asyncio.wait_for(h.task, 60)
        assert h.status == "failed" and "killed at perp_venue_chosen (okx)" in h.error
        assert h.raw_adapter.perp_venue == "bybit" and not len(store.read_table("orders", hedge_id="b1"))
        sup.journal.flush()
        monkeypatch.setattr(best_entry, "kill_point", lambda *a, **k: None)
        sup2 = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        rec = await sup2.recover_all()
        assert [r.get("error") for r in rec] == [None]
        h2 = sup2.hedges["b1"]
        assert h2.spec.perp_venue == "okx" and h2.raw_adapter.perp_venue == "okx" and h2.driver.ctx.perp.venue == "okx"
        assert h2.params.perp_taker_fee == 0.0001
        await asyncio.wait_for(h2.task, 60)
        assert h2.driver.ctx.state is State.MONITORING_POSITIONS
        sup2.journal.flush()
        fills = store.read_table("fills", hedge_id="b1")
        assert set(fills.loc[fills["leg"] == "perp", "venue"]) == {"okx"}
        tr = store.read_table("transitions", hedge_id="b1")
        assert (tr["trigger_name"] == TRIGGER).sum() == 2  # the start's and the journaled move, not a third

    asyncio.run(go())


def test_a_hedge_without_a_best_choice_or_not_flat_never_rechooses(store: Store, tmp_path: Path) -> None:
    async def go() -> None:
        sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        req = request(perp_venue="bybit", end=str(START + pd.Timedelta(hours=2)))
        await sup.start_hedge(req)
        h = sup.hedges["b1"]
        assert not best_entry.rechoosing(h)
        await asyncio.wait_for(h.task, 60)
        assert await best_entry.before_entry(h, MarketUpdate(START, 40_000.0, 40_000.0)) is None
        mu = MarketUpdate(START, 40_000.0, math.nan)
        assert mu.perp != mu.perp  # NaN price: nothing to size, nothing chosen
        await sup.shutdown(flatten=False)  # its journal closed (tests/conftest.py checks)

    asyncio.run(go())


def test_a_venue_short_of_margin_is_not_moved_to_at_entry(store: Store, tmp_path: Path) -> None:
    """bybit ranks first by its book but its perp wallet holds 1 USDT (``balances["perp.bybit"]``): the start's
    preflight falls back to okx, and the re-choice at the entry does not move back to bybit."""
    from hedge_core.runner.best_fallback import REFUSED

    short = {"spot": {"USDT": 100_000.0}, "perp": {"USDT": 100_000.0}, "perp.bybit": {"USDT": 1.0}}

    async def go() -> None:
        sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        out = await sup.start_hedge(request(balances=short))
        assert out["perp_venue"] == "okx"
        h = sup.hedges["b1"]
        await asyncio.wait_for(h.task, 60)
        assert h.driver.ctx.state is State.MONITORING_POSITIONS and h.spec.perp_venue == "okx"
        sup.journal.flush()
        tr = store.read_table("transitions", hedge_id="b1").sort_values("seq")
        assert list(tr.loc[tr["trigger_name"].isin([REFUSED, TRIGGER]), "trigger_name"]) == [REFUSED, TRIGGER]
        fills = store.read_table("fills", hedge_id="b1")
        assert set(fills.loc[fills["leg"] == "perp", "venue"]) == {"okx"}

    asyncio.run(go())
