"""Book guards: inclusive thresholds, the limits file, and what a firing does in the monitor
(recorded once per episode, alerted, DEGRADED, new entries blocked where it concerns, lifted
when it clears; never an order)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from hedge_core.book.aggregate import aggregate
from hedge_core.book.guards import BookLimits, check_book, load_limits
from hedge_core.book.model import HedgePosition
from hedge_core.book.monitor import BookMonitor
from hedge_core.errors import InvalidInput
from hedge_core.runner.condition import AlertBus
from hedge_core.store import Store

H = [HedgePosition("a", "binance", "BTC", spot_qty=1, perp_qty=-1, spot_price=100, mark_price=100, day_pnl=-30),
     HedgePosition("b", "bybit", "ETH", spot_qty=10, perp_qty=-5, spot_price=10, mark_price=10, day_pnl=-20)]


def test_thresholds_are_inclusive_and_scoped():
    b = aggregate(H)  # gross: binance 200, bybit 150; net delta BTC 0, ETH 5 x 10 = 50; day PnL -50
    assert check_book(b, BookLimits()) == []
    fired = check_book(b, BookLimits(max_gross_exposure=350, max_venue_gross=200, max_asset_net_delta=50,
                                     daily_loss_limit=50))
    assert [(v.name, v.scope) for v in fired] == [("gross_exposure", "book"), ("venue_gross", "venue:binance"),
                                                  ("asset_net_delta", "asset:ETH"), ("daily_loss", "book")]
    assert check_book(b, BookLimits(max_gross_exposure=350.01, max_venue_gross=200.01, max_asset_net_delta=50.01,
                                    daily_loss_limit=50.01)) == []
    bv = aggregate(H, var={"historical": 120.0, "parametric": 90.0, "confidence": 0.99, "horizon": 24})
    assert [v.value for v in check_book(bv, BookLimits(var_limit=120))] == [120.0]
    assert check_book(bv, BookLimits(var_limit=121)) == []


def test_limits_file(tmp_path: Path):
    p = tmp_path / "book_limits.toml"
    assert load_limits(p) == BookLimits()  # no file: every limit off
    p.write_text("max_gross_exposure = 1000\nvar_confidence = 0.95\n")
    assert load_limits(p).max_gross_exposure == 1000 and load_limits(p).var_confidence == 0.95
    p.write_text("max_gross_exposure = -1\n")
    with pytest.raises(InvalidInput, match="max_gross_exposure"):
        load_limits(p)
    p.write_text("max_gros_exposure = 1\n")
    with pytest.raises(InvalidInput, match="max_gros_exposure"):
        load_limits(p)
    p.write_text("max_gross_exposure = \n")
    with pytest.raises(InvalidInput, match="TOML"):
        load_limits(p)


class FakeJournal:
    def __init__(self) -> None:
        self.rows: list[tuple[str, object]] = []

    def guard(self, hedge_id, g) -> None:
        self.rows.append((hedge_id, g))


def _task(p: HedgePosition) -> SimpleNamespace:
    summary = {"hedge_id": p.hedge_id, "venue": p.venue, "spot_symbol": f"{p.asset}/USDT", "spot_qty": p.spot_qty,
               "perp_qty": p.perp_qty, "spot_price": p.spot_price, "mark_price": p.mark_price, "leverage": 1.0,
               "pnl": p.pnl, "day_pnl": p.day_pnl, "funding": 0.0}
    spec = SimpleNamespace(venue=p.venue, spot_symbol=f"{p.asset}/USDT", data_venue=None)
    return SimpleNamespace(hedge_id=p.hedge_id, driver=object(), spec=spec, summary=lambda: dict(summary))


def test_monitor_records_alerts_blocks_and_lifts(tmp_path: Path):
    sup = SimpleNamespace(home=tmp_path, hedges={p.hedge_id: _task(p) for p in H}, journal=FakeJournal(),
                          alert_bus=AlertBus(), store=Store(tmp_path / "empty.duckdb"))
    m = BookMonitor(sup)
    (tmp_path / "book_limits.toml").write_text("max_venue_gross = 200\n")
    m.refresh()
    m.refresh()  # still firing: recorded and alerted once per episode
    assert [(h, g.name, g.action, dict(g.numbers)) for h, g in sup.journal.rows] == [
        ("book", "book_venue_gross[venue:binance]", "block_entries", {"value": 200.0, "limit": 200.0})]
    alerts = [a for a in sup.alert_bus.recent if a.kind == "book_guard"]
    assert len(alerts) == 1 and alerts[0].level == "warning" and alerts[0].venue == "binance"
    assert m.conditions.as_dict() == {"book_venue_gross[venue:binance]": "binance gross exposure 200.00 >= 200.00"}
    a, b = sup.hedges["a"], sup.hedges["b"]
    assert m.blocks(a) and not m.blocks(b)  # only the venue's hedges
    with pytest.raises(InvalidInput, match="book"):
        m.check_start({"venue": "binance", "spot_symbol": "SOL/USDT"})
    m.check_start({"venue": "bybit", "spot_symbol": "BTC/USDT"})  # elsewhere: allowed
    assert m.last.guards[0]["name"] == "venue_gross"
    # the limit raised: the guard clears, entries allowed, an info alert
    import os
    import time

    (tmp_path / "book_limits.toml").write_text("max_venue_gross = 500\n")
    os.utime(tmp_path / "book_limits.toml", (time.time() + 5, time.time() + 5))
    m.refresh()
    assert not m.blocks(a) and not m.conditions.degraded and m.last.guards == ()
    assert sup.alert_bus.recent[-1].level == "info" and "cleared" in sup.alert_bus.recent[-1].message
    assert len(sup.journal.rows) == 1


def test_monitor_bad_limits_file_keeps_last_good(tmp_path: Path):
    sup = SimpleNamespace(home=tmp_path, hedges={p.hedge_id: _task(p) for p in H}, journal=FakeJournal(),
                          alert_bus=AlertBus(), store=Store(tmp_path / "empty.duckdb"))
    m = BookMonitor(sup)
    f = tmp_path / "book_limits.toml"
    f.write_text("daily_loss_limit = 10\n")
    m.refresh()
    assert [g.name for _, g in sup.journal.rows] == ["book_daily_loss"]
    import os
    import time

    f.write_text("daily_loss_limit = 'ten'\n")
    os.utime(f, (time.time() + 5, time.time() + 5))
    m.refresh()
    assert m.limits().daily_loss_limit == 10  # the last good limits are kept
    assert "book_limits" in m.conditions.as_dict()
    assert any(a.kind == "book_limits" and a.level == "error" for a in sup.alert_bus.recent)
    assert math.isclose(m.last.day_pnl, -50.0)
    assert m.last.var == {}  # no VaR limit: the refresh does not price it
    assert "ETH" in m.snapshot().var["error"]  # no bars stored: said in the book, not raised


def test_monitor_prices_the_var_from_the_store_and_fires_the_var_limit(tmp_path: Path):
    from hedge_core.data.demo import seed_demo

    st = Store(tmp_path / "demo.duckdb")
    seed_demo(st, days=10)
    tasks = {p.hedge_id: _task(p) for p in H}
    for t in tasks.values():
        t.spec.data_venue = "demo"
    sup = SimpleNamespace(home=tmp_path, hedges=tasks, journal=FakeJournal(), alert_bus=AlertBus(), store=st)
    m = BookMonitor(sup)
    snap = m.snapshot(confidence=0.95, horizon=6)
    assert "error" not in snap.var and snap.var["parametric"] > 0 and snap.var["observations"] >= 200
    (tmp_path / "book_limits.toml").write_text(f"var_limit = {snap.var['parametric'] / 2}\nvar_confidence = 0.95\n"
                                               "var_horizon = 6\n")
    m.refresh()
    assert [g.name for _, g in sup.journal.rows] == ["book_var"]
    assert m.blocks(tasks["a"]) and m.blocks(tasks["b"])  # a book-wide limit blocks every hedge's entry
    with pytest.raises(InvalidInput, match="horizon"):
        m.snapshot(horizon=0)


def test_actions_file_values_and_the_last_good_limits(tmp_path: Path):
    p = tmp_path / "book_limits.toml"
    p.write_text('daily_loss_limit = 10\ndaily_loss_action = "flatten"\n')
    lim = load_limits(p)
    assert lim.action("daily_loss") == "flatten" and lim.action("var") == "block_entries"  # the default
    for bad in ('var_action = "reduce"', 'venue_gross_action = "FLATTEN"', "daily_loss_action = 1"):
        p.write_text(bad + "\n")
        with pytest.raises(InvalidInput, match=r"_action=.*one of \['block_entries', 'flatten'\]") as e:
            load_limits(p)
        assert e.value.field == bad.split(" ")[0]
    # the monitor keeps the last good limits (and their action) when the file goes bad
    sup = SimpleNamespace(home=tmp_path, hedges={}, journal=FakeJournal(), alert_bus=AlertBus(),
                          store=Store(tmp_path / "empty.duckdb"))
    m = BookMonitor(sup)
    import os
    import time

    p.write_text('daily_loss_limit = 10\ndaily_loss_action = "flatten"\n')
    assert m.limits().daily_loss_action == "flatten"
    p.write_text('daily_loss_limit = 10\ndaily_loss_action = "reduce"\n')
    os.utime(p, (time.time() + 5, time.time() + 5))
    assert m.limits().daily_loss_action == "flatten" and "book_limits" in m.conditions.as_dict()
    assert "daily_loss_action" in m.conditions.as_dict()["book_limits"]


def test_a_flatten_action_never_flattens_a_hedge_finished_or_already_closing(tmp_path: Path):
    """The operator's per-hedge flatten (Supervisor.command) goes to the hedges the guard concerns that are neither
    COMPLETED nor CLOSING_POSITIONS, once per episode; a flatten that fails is alerted and the others still go."""
    import asyncio

    hs = [HedgePosition(hid, "binance", "BTC", spot_qty=1, perp_qty=-1, spot_price=100, mark_price=100, day_pnl=-30)
          for hid in ("on", "closing", "done", "broken")] + [H[1]]
    tasks = {p.hedge_id: _task(p) for p in hs}
    states = {"on": "MONITORING_POSITIONS", "closing": "CLOSING_POSITIONS", "done": "COMPLETED",
              "broken": "REBALANCING", "b": "MONITORING_POSITIONS"}
    for hid, t in tasks.items():
        t.driver = SimpleNamespace(ctx=SimpleNamespace(state=states[hid]))
    sent: list[tuple[str, str]] = []

    async def command(hid, cmd, reason=""):
        sent.append((hid, cmd))
        if hid == "broken":
            raise RuntimeError("venue down")
        tasks[hid].driver.ctx.state = "CLOSING_POSITIONS"

    sup = SimpleNamespace(home=tmp_path, hedges=tasks, journal=FakeJournal(), alert_bus=AlertBus(),
                          store=Store(tmp_path / "empty.duckdb"), command=command)
    m = BookMonitor(sup)
    (tmp_path / "book_limits.toml").write_text('max_asset_net_delta = 1\nasset_net_delta_action = "flatten"\n'
                                               'max_gross_exposure = 1\ngross_exposure_action = "flatten"\n')
    m.refresh()  # BTC: 4 x 0 delta -> only ETH's net delta 50 fires; gross fires book-wide
    assert sorted(g.name for _, g in sup.journal.rows) == ["book_asset_net_delta[asset:ETH]", "book_gross_exposure"]
    assert {g.action for _, g in sup.journal.rows} == {"flatten"}
    assert asyncio.run(m.enforce()) == ["on", "b"]  # b is in both episodes: flattened once
    assert sent == [("on", "flatten"), ("broken", "flatten"), ("b", "flatten")]
    assert any(a.level == "error" and "broken" in a.message for a in sup.alert_bus.recent)
    assert [a.level for a in sup.alert_bus.recent if a.kind == "book_guard"].count("critical") == 2
    m.refresh()
    assert asyncio.run(m.enforce()) == [] and len(sent) == 3 and len(sup.journal.rows) == 2  # once per episode


def test_restore_rebases_the_peak_by_the_finished_hedges_and_drops_what_it_saw_before(tmp_path: Path):
    """The last runner: peak 80 with 100 of it from finished hedges (open ones at -20), max drawdown 30. This one
    holds only the open hedges: its peak is 80 - 100 = -20, below 0, and a book at -30 is 10 under it."""
    import pandas as pd

    from hedge_core.runner.journal import Journal

    st = Store(tmp_path / "db.duckdb")
    st.write_table("book_marks", pd.DataFrame([{"hedge_id": "book", "ts": pd.Timestamp("2024-01-01T00:00Z"),
                                                "pnl": 80.0, "peak_pnl": 80.0, "max_drawdown": 30.0,
                                                "closed_pnl": 100.0}]))
    h = HedgePosition("a", "binance", "BTC", spot_qty=1, perp_qty=-1, spot_price=100, mark_price=100, pnl=-30)
    sup = SimpleNamespace(home=tmp_path, hedges={"a": _task(h)}, journal=Journal(st), alert_bus=AlertBus(), store=st)
    m = BookMonitor(sup)
    m.peak, m.max_drawdown = 0.0, 45.0  # seen while the hedges were being recovered: dropped
    m.refresh()
    assert len(st.read_table("book_marks")) == 1 and st.read_table("book_marks")["pnl"].iloc[0] == 80.0  # not yet
    m.restore()
    assert (m.peak, m.max_drawdown) == (-20.0, 30.0)
    b = m.refresh()
    assert (b.drawdown, b.max_drawdown) == (pytest.approx(10.0), pytest.approx(30.0))
    row = st.read_table("book_marks").iloc[0]  # journaled now that it restored: the new base, no finished hedge
    assert (row["pnl"], row["peak_pnl"], row["max_drawdown"], row["closed_pnl"]) == (-30.0, -20.0, 30.0, 0.0)
