"""A paper loan book (voltier) started by the runner in-process on demo data: the collateral is
sized at the first price (the close of the last bar closed by the start) and sits in the paper
spot wallet, the loan's start and reserve deployments are journaled, the summary carries the loan
with its LTV band, and the LTV band watch alerts on it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest

from hedge_core.data.demo import seed_demo
from hedge_core.runner.hedge_watch import HedgeWatch
from hedge_core.runner.supervisor import Supervisor
from hedge_core.store import Store

START = pd.Timestamp("2024-01-03T00:00Z")
LOAN, APR = 16_200.0, 0.06


def test_paper_loan_book_starts_with_its_collateral_and_journals_its_loan(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb", hold=True)
    seed_demo(store, days=5)
    bars = store.read_bars("demo", "BTC/USDT", "spot", "1h", end=START)
    first_price = float(bars["close"].iloc[-1])  # the bar 23:00-00:00 closed at the start
    collateral = LOAN / (0.70 * first_price)  # LTV 0.70 at the start: above ltv_warn 0.60

    async def go() -> None:
        sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        await sup.start_hedge({"hedge_id": "vt", "mode": "paper", "feed": "replay", "data_venue": "demo",
                               "start": str(START), "end": str(START + pd.Timedelta(hours=3)), "speed": 1e9,
                               "params_inline": {"strategy": "voltier", "loan": LOAN, "loan_apr": APR,
                                                 "start_ltv": 0.5, "ltv_warn": 0.60, "ltv_flatten": 0.90,
                                                 "reserve": 10_000.0}})
        h = sup.hedges["vt"]
        ctx = h.driver.ctx
        # without a collateral override the collateral is sized for start_ltv at the first price
        assert ctx.spot.qty == pytest.approx(LOAN / (0.5 * first_price), rel=1e-12)
        assert ctx.spot.avg_entry == first_price and ctx.collateral_spot
        assert h.raw_adapter.core.balance("spot")["BTC"].total == pytest.approx(ctx.spot.qty, rel=1e-12)
        h.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await h.task

        await sup.start_hedge({"hedge_id": "vt2", "mode": "paper", "feed": "replay", "data_venue": "demo",
                               "start": str(START), "end": str(START + pd.Timedelta(hours=3)), "speed": 1e9,
                               "params_inline": {"strategy": "voltier", "loan": LOAN, "loan_apr": APR,
                                                 "collateral_qty": collateral, "ltv_warn": 0.60,
                                                 "ltv_flatten": 0.90, "reserve": 10_000.0}})
        h = sup.hedges["vt2"]
        await h.task
        sup.journal.flush()
        rows = store.read_table("loan_events", hedge_id="vt2").sort_values("seq")
        start = rows.iloc[0]
        assert (start["event"], start["principal"], start["apr"], start["reserve_left"]) == ("start", LOAN, APR, 1e4)
        assert start["as_of"] == START and start["first_price"] == first_price
        dep = rows[rows["event"] == "reserve"]
        assert len(dep) >= 1
        booked = store.read_table("reserve_deployments", hedge_id="vt2")
        assert booked["amount"].sum() == pytest.approx(dep["reserve_deployed"].iloc[-1], rel=1e-12)
        # the reserve repays accrued interest first, then principal: principal + interest repaid = deployed
        last = rows.iloc[-1]
        assert last["principal_paid"] + last["interest_paid"] == pytest.approx(
            last["reserve_deployed"] + last["repaid"], rel=1e-12)
        s = h.summary()["loan"]
        assert s["collateral_qty"] == pytest.approx(collateral, rel=1e-12)
        # the LTV the summary shows, by hand: outstanding / (collateral x last spot price)
        assert s["ltv"] == pytest.approx(s["outstanding"] / (collateral * h.driver.ctx.spot_price), rel=1e-12)
        assert 0.60 <= s["ltv"] < 0.75 and s["band"] == "WARNING"  # between ltv_warn and the critical edge
        alerts = HedgeWatch().check([h])
        assert [(hid, lvl) for hid, lvl, _ in alerts] == [("vt2", "warning")]
        assert "LTV band WARNING" in alerts[0][2]

    try:
        asyncio.run(go())
    finally:
        store.close()
