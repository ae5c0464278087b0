"""Best execution at start, step 2: a chosen perp venue the preflight refuses (short of margin there) is
recorded and the next venue of the ranking is tried (runner.best_fallback). Paper, in process.

bybit ranks first for the entry (tests.test_runner_best_perp: higher fee, less slippage); its perp wallet
is funded with 1 USDT (``balances["perp.bybit"]``), far below the margin of a 1,000 USDT carry, while okx's
perp wallet gets ``balances["perp"]``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hedge_core.errors import InvalidInput
from hedge_core.runner.best_fallback import REFUSED, leg_balances, ranked_venues
from hedge_core.runner.best_perp import TRIGGER, choice_reason
from hedge_core.runner.hedge_spec import HedgeSpec
from hedge_core.runner.supervisor import Supervisor
from hedge_core.store import Store
from tests.support.best_perp import request
from tests.support.demo_store import store  # noqa: F401 - the seeded store fixture

pytestmark = pytest.mark.integration  # an in-process runner (Supervisor) on a DuckDB store

SHORT = {"spot": {"USDT": 100_000.0}, "perp": {"USDT": 100_000.0}, "perp.bybit": {"USDT": 1.0}}


def test_leg_balances_are_keyed_per_venue_with_the_leg_default() -> None:
    spec = HedgeSpec(hedge_id="s", balances=SHORT)
    assert leg_balances(spec, "perp", "bybit") == {"USDT": 1.0}
    assert leg_balances(spec, "perp", "okx") == {"USDT": 100_000.0}
    assert leg_balances(spec, "spot", "binance") == {"USDT": 100_000.0}
    assert leg_balances(HedgeSpec(hedge_id="s", balances={}), "perp", "okx") == {}


def test_ranked_venues_skip_the_ones_that_cannot_fill() -> None:
    rec = {"venue": "okx", "ranking": [{"venue": "okx", "reason": ""}, {"venue": "gate", "reason": ""},
                                       {"venue": "bybit", "reason": "book depth 1 < amount 2"}]}
    assert ranked_venues(rec) == ["okx", "gate"]


def test_a_chosen_venue_short_of_margin_is_refused_and_the_next_one_trades(store: Store, tmp_path: Path) -> None:
    async def go() -> None:
        sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        dry = await sup.start_hedge(request(balances=SHORT, dry_run=True))
        assert dry["perp_venue"] == "okx" and [r["venue"] for r in dry["perp_venue_choice"]["refused"]] == ["bybit"]
        out = await sup.start_hedge(request(balances=SHORT))
        h = sup.hedges["b1"]
        rec = out["perp_venue_choice"]
        assert out["perp_venue"] == "okx" and h.spec.perp_venue == "okx" and rec["venue"] == "okx"
        assert rec["first_choice"] == "bybit" and rec["taker_fee"] == 0.0002
        [refusal] = rec["refused"]
        assert refusal["venue"] == "bybit" and "venue bybit" in refusal["reason"] and "perp margin" in refusal["reason"]
        # the ranking is still the books' (bybit's proceeds were better); the fee used is okx's
        assert [s["venue"] for s in rec["ranking"]] == ["bybit", "okx"]
        assert h.params.perp_taker_fee == 0.0002 and h.params.perp_venue == "okx"
        assert "after the preflight refused bybit" in choice_reason(rec)
        await asyncio.wait_for(h.task, 60)
        sup.journal.flush()
        tr = store.read_table("transitions", hedge_id="b1").sort_values("seq")
        rows = tr[tr["trigger_name"].isin([REFUSED, TRIGGER])]
        assert list(rows["trigger_name"]) == [REFUSED, TRIGGER]
        assert "perp venue bybit refused by the preflight" in rows["reason"].iloc[0]
        assert "perp venue okx chosen by best execution" in rows["reason"].iloc[1]
        fills = store.read_table("fills", hedge_id="b1")
        assert len(fills) and set(fills.loc[fills["leg"] == "perp", "venue"]) == {"okx"}
        assert h.raw_adapter.perp_venue == "okx"
        # okx's perp wallet was funded from balances["perp"]
        bal = await h.raw_adapter.perp.fetch_balance("perp")
        assert bal["USDT"].total == pytest.approx(100_000.0, rel=0.01)

    asyncio.run(go())


def test_every_venue_refused_lists_each_reason_and_writes_nothing(store: Store, tmp_path: Path) -> None:
    async def go() -> None:
        sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        broke = {**SHORT, "perp.okx": {"USDT": 2.0}}
        with pytest.raises(InvalidInput) as err:
            await sup.start_hedge(request(balances=broke))
        msg = str(err.value)
        assert "perp_venue='best'" in msg and "bybit: " in msg and "okx: " in msg and msg.count("perp margin") == 2
        # a spot leg short of funds is not the perp venue's: raised as the preflight says, no venue tried after
        with pytest.raises(InvalidInput) as err2:
            await sup.start_hedge(request(hedge_id="b2", balances={"spot": {"USDT": 1.0}, "perp": {"USDT": 100_000.0}}))
        assert "venue binance" in str(err2.value) and "refused:" not in str(err2.value)
        assert not sup.hedges

    asyncio.run(go())
    assert all(len(store.read_table(t)) == 0 for t in ("hedge_runs", "transitions", "orders"))
