"""The daily-loss guard's day through a restart (hedge_core/runner/exit_marks.py ``restore_day``): the engine starts a
UTC day at the hedge's PnL at the day's first market update (``HedgeContext.day_start_pnl``); the runner journals it
in ``exit_marks`` (store migration 8) when it rolls and a recovery on the same UTC day puts it back. Before, a restart
started the day again at the hedge's PnL then: a hedge that had lost most of its daily limit could lose all of it
again. Pure cases with hand-computed numbers, then an in-process runner (Supervisor) restarted on the same day and on
the next one; the event backtest (no restart, no hook) is covered unchanged by tests/test_engine_guards.py and
tests/test_backtest_event.py."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from hedge_core.engine import MarketUpdate, State, step
from hedge_core.engine.driver import DAY_FIELDS, MARK_HOOK_FIELDS
from hedge_core.runner.exit_marks import marks_row, restore_day
from hedge_core.runner.hedge import HedgeTask
from hedge_core.runner.supervisor import Supervisor
from hedge_core.store import Store
from tests.support.best_perp import START
from tests.support.demo_store import store  # noqa: F401 - the seeded store fixture
from tests.support.engine_steps import T0, H, hedged, mkt

# ---- pure: which day start a restart gets -------------------------------------------------------------------------


def _rows(*ctxs) -> pd.DataFrame:
    return pd.DataFrame([{"seq": i, **marks_row(c, "step", c.last_ts)} for i, c in enumerate(ctxs)])


def _lost() -> object:
    """hedged() (0.25 BTC long spot, 0.25 short perp at 40,000, no fee), then on 2024-01-01 10:00 the spot at 39,800:
    the day started at 0 (the 00:00 update), PnL 0.25 x -200 = -50 USDT."""
    ctx, p = hedged()
    ctx, _ = step(ctx, mkt(T0 + 10 * H, px=39_800.0, perp=40_000.0), p)
    assert ctx.day == "2024-01-01" and ctx.day_start_pnl == 0.0 and ctx.pnl == pytest.approx(-50.0)
    return ctx


def test_the_day_roll_is_a_change_the_driver_journals():
    ctx, p = hedged()
    nxt, _ = step(ctx, mkt(T0 + 25 * H, px=39_800.0, perp=40_000.0), p)  # 2024-01-02 01:00
    changed = [f for f in MARK_HOOK_FIELDS if getattr(ctx, f) != getattr(nxt, f)]
    assert set(DAY_FIELDS) <= set(changed)
    assert nxt.day == "2024-01-02" and nxt.day_start_pnl == pytest.approx(-50.0)  # at the PnL after the update
    row = marks_row(nxt, "step", nxt.last_ts)
    assert row["day"] == "2024-01-02" and row["day_start_pnl"] == pytest.approx(-50.0)


def test_same_day_restores_the_journaled_start_a_later_day_starts_at_the_recovered_pnl():
    before = _lost()
    rebuilt = replace(before, day="", day_start_pnl=0.0)  # what rebuild_context gives: no day
    rebuilt = replace(rebuilt, spot=replace(rebuilt.spot, last_price=39_760.0))  # the tickers: 0.25 x -240 = -60
    assert rebuilt.pnl == pytest.approx(-60.0)
    started = replace(before, day_start_pnl=-20.0)  # a day that started at -20
    rows = _rows(hedged()[0], started)  # the LAST row counts
    same = restore_day(rebuilt, rows, T0 + 15 * H)
    assert same.day == "2024-01-01" and same.day_start_pnl == -20.0  # day PnL -40, not 0
    later = restore_day(rebuilt, rows, T0 + 30 * H)
    assert later.day == "2024-01-02" and later.day_start_pnl == pytest.approx(-60.0)


def test_no_journaled_day_leaves_the_day_unknown():
    rebuilt = replace(_lost(), day="", day_start_pnl=0.0)
    assert restore_day(rebuilt, pd.DataFrame(), T0 + 15 * H) is rebuilt
    old = _rows(_lost()).drop(columns=["day", "day_start_pnl"])  # rows written before store migration 8
    assert restore_day(rebuilt, old, T0 + 15 * H) is rebuilt
    none = _rows(replace(_lost(), day=""))  # a row written before the hedge's first market update
    assert none["day"].isna().all() and restore_day(rebuilt, none, T0 + 15 * H) is rebuilt


# ---- an in-process runner restarted -------------------------------------------------------------------------------

LIMIT = 30.0  # USDT
# a carry of 1,000 USDT that enters at the 09:00 update of the demo market and holds (no exit rule), daily loss guarded
GUARDED = {"strategy": "carry", "notional": 1000.0, "min_funding_rate": 0.00001, "min_net_carry": -1.0,
           "exit": {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                    "funding_unfavourable_intervals": None}, "guards": {"daily_loss_limit": LIMIT}}
END = START + pd.Timedelta(hours=8)  # 05:00 -> 13:00 the same UTC day, entered at 09:00


def _drop(prices: MarketUpdate, ts: pd.Timestamp, loss: float, qty: float) -> MarketUpdate:
    """A market update at ``ts`` with the spot ``loss / qty`` below ``prices``' and the perp, its mark and the funding
    as there: the hedge's PnL is exactly ``loss`` USDT below its PnL at ``prices`` (``qty`` BTC long spot; the short
    perp does not move)."""
    return replace(prices, ts=ts, spot=prices.spot - loss / qty)


async def _hedge_lost_part_of_its_limit(store: Store, home: Path) -> tuple[float, float, MarketUpdate, float]:
    """A guarded carry replayed to 13:00, then the spot drops: the day's PnL loses 0.6 x the limit more. Returns the
    journaled day start, the PnL at the crash, the crash's market update and the spot quantity."""
    sup = Supervisor(store, home, dms_timeout_s=600.0)
    await sup.recover_all()
    await sup.start_hedge({"hedge_id": "b1", "mode": "paper", "feed": "replay", "data_venue": "demo",
                           "start": str(START), "end": str(END), "speed": 1e9, "venue": "binance",
                           "spot_symbol": "BTC/USDT", "perp_symbol": "BTC/USDT:USDT", "params_inline": GUARDED,
                           "balances": {"spot": {"USDT": 100_000.0}, "perp": {"USDT": 100_000.0}}})
    h = sup.hedges["b1"]
    await h.task
    c0 = h.driver.ctx
    assert c0.state is State.MONITORING_POSITIONS and c0.day == str(START.date())
    day0 = c0.pnl - c0.day_start_pnl
    assert abs(day0) < 0.3 * LIMIT, day0  # entry fees and a hedged book's small moves
    last = MarketUpdate(ts=c0.last_ts, spot=c0.spot_price, perp=c0.perp_price, mark=c0.mark_price,
                        funding_rate=c0.last_funding_rate)
    crash = _drop(last, c0.last_ts + pd.Timedelta(minutes=10), 0.6 * LIMIT, c0.spot.qty)
    c1 = await h.step(crash)
    assert c1.pnl - c1.day_start_pnl == pytest.approx(day0 - 0.6 * LIMIT)
    assert c1.state is State.MONITORING_POSITIONS and "daily_loss" not in c1.active_guards  # not yet
    sup.journal.flush()  # a crash: the journal is all the next runner has
    return c1.day_start_pnl, c1.pnl, crash, c1.spot.qty


async def _recovered(store: Store, home: Path) -> tuple[Supervisor, HedgeTask]:
    sup = Supervisor(store, home, dms_timeout_s=600.0)
    rec = await sup.recover_all()
    assert [r["hedge_id"] for r in rec] == ["b1"]
    h = sup.hedges["b1"]
    h.task.cancel()  # the replay is over: the next prices are the ones this test feeds
    try:
        await h.task
    except asyncio.CancelledError:
        pass
    return sup, h


@pytest.mark.integration
def test_a_restart_on_the_same_day_counts_the_days_earlier_loss(store: Store, tmp_path: Path) -> None:
    """Lost 0.6 x the limit, restart (same UTC day), the next update at the crash's prices, then a further 0.6 x the
    limit: 1.2 x the limit on the day flattens the hedge. With the day restarted at the restart (the defect) the
    day's PnL is -0.6 x the limit and nothing fires."""
    home = tmp_path / "home"
    start_pnl, crash_pnl, crash, qty = asyncio.run(_hedge_lost_part_of_its_limit(store, home))

    async def second() -> None:
        sup, h = await _recovered(store, home)
        c = h.driver.ctx
        assert c.day == str(crash.ts.date()) and c.day_start_pnl == pytest.approx(start_pnl, abs=1e-9)
        assert h.summary()["day_pnl"] == pytest.approx(c.pnl - start_pnl)  # known at once, not None
        a = await h.step(_drop(crash, crash.ts + pd.Timedelta(minutes=10), 0.0, qty))  # the crash's prices again
        assert a.pnl == pytest.approx(crash_pnl) and a.state is State.MONITORING_POSITIONS
        b = await h.step(_drop(crash, crash.ts + pd.Timedelta(minutes=20), 0.6 * LIMIT, qty))
        assert b.state is State.COMPLETED  # flattened (the paper venue fills the closes at once)
        assert b.history[-2].trigger == "FLATTEN" and b.history[-2].reason.startswith("guard daily_loss")
        sup.journal.flush()
        [g] = store.read_table("guard_firings", hedge_id="b1").to_dict("records")
        daily = json.loads(g["numbers"])["daily_pnl"]
        assert g["guard"] == "daily_loss" and g["action"] == "flatten"
        # the PnL at b (the crash's less 0.6 x the limit) minus the JOURNALED day start: 1.2 x the limit and more
        assert daily == pytest.approx(crash_pnl - 0.6 * LIMIT - start_pnl) and daily <= -LIMIT
        # counted from the restart's first update (a: the day restarted there, the defect) it is -0.6 x: no fire
        assert daily - (a.pnl - start_pnl) == pytest.approx(-0.6 * LIMIT)
        await sup.shutdown(flatten=False)

    asyncio.run(second())


@pytest.mark.integration
def test_a_restart_on_the_next_day_starts_a_new_day_at_the_recovered_pnl(store: Store, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The same hedge restarted when its clock is on the next UTC day: yesterday's loss is not today's; the day
    starts at the PnL the recovery rebuilt (the venue's tickers), and a further 0.6 x the limit does not fire."""
    home = tmp_path / "home"
    start_pnl, crash_pnl, crash, qty = asyncio.run(_hedge_lost_part_of_its_limit(store, home))
    tomorrow = crash.ts.normalize() + pd.Timedelta(days=1, minutes=30)
    monkeypatch.setattr(HedgeTask, "_clock_now", lambda self: tomorrow)  # the hedge's clock at the restart

    async def second() -> None:
        sup, h = await _recovered(store, home)
        c = h.driver.ctx
        assert c.day == str(tomorrow.date()) and c.day_start_pnl == pytest.approx(c.pnl)
        assert c.day_start_pnl != pytest.approx(start_pnl) and h.summary()["day_pnl"] == pytest.approx(0.0)
        now = MarketUpdate(ts=tomorrow + pd.Timedelta(minutes=10), spot=c.spot_price, perp=c.perp_price,
                           mark=c.mark_price, funding_rate=crash.funding_rate)
        a = await h.step(now)
        b = await h.step(_drop(now, tomorrow + pd.Timedelta(minutes=20), 0.6 * LIMIT, qty))
        assert b.day == a.day == str(tomorrow.date()) and b.day_start_pnl == c.pnl  # from the restart's PnL
        assert b.pnl - a.pnl == pytest.approx(-0.6 * LIMIT) and b.pnl - b.day_start_pnl > -LIMIT
        assert b.state is State.MONITORING_POSITIONS and "daily_loss" not in b.active_guards
        sup.journal.flush()
        rows = store.read_table("exit_marks", hedge_id="b1").sort_values("seq")
        assert str(tomorrow.date()) in set(rows["day"].dropna())
        await sup.shutdown(flatten=False)

    asyncio.run(second())
