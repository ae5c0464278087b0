"""Best execution at start in the runner (paper, in process): a hedge with ``perp_venue="best"`` of an
xcarry set allowing bybit and okx. The runner reads both paper venues' books (their own execution
models, fed the bars at the replay's start), walks them for the planned entry (a perp sell of
notional / price), keeps the better all-in proceeds, journals every venue's score as a
``PERP_VENUE_CHOSEN`` transitions row, and the perp leg trades, holds its margin and its funding there.
The expected proceeds are hand formulas of the paper model (module docstring of exchange.paper.core),
not a second walk of the book.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pandas as pd
import pytest

from hedge_core.data.demo import seed_demo
from hedge_core.engine.states import State
from hedge_core.errors import InvalidInput
from hedge_core.runner.best_perp import TRIGGER
from hedge_core.runner.supervisor import Supervisor
from hedge_core.store import Store
from tests.support.best_perp import START, VENUES, XCARRY, request  # noqa: F401 - shared with test_best_*


def expected_proceeds(close: float, volume: float, amount: float, slip_bps: float, fee: float) -> float:
    """A paper perp sell of ``amount``: price ``close x (1 - (slip + 10 x sqrt(amount / volume)) / 1e4)``
    (PaperConfig's impact_k_bps = 10), proceeds ``amount x price x (1 - fee)``."""
    px = close * (1 - (slip_bps + 10.0 * math.sqrt(amount / volume)) / 1e4)
    return amount * px * (1 - fee)


def test_paper_hedge_starts_on_the_best_perp_venue_and_journals_every_score(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb", hold=True)
    seed_demo(store, days=3)
    perp = store.read_bars("demo", "BTC/USDT:USDT", "perp", "1h", end=START)
    close, volume = float(perp["close"].iloc[-1]), float(perp["volume"].iloc[-1])  # the bar closed at the start
    amount = 1000.0 / close

    async def go() -> None:
        sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        out = await sup.start_hedge(request())
        h = sup.hedges["b1"]
        choice = out["perp_venue_choice"]
        assert out["perp_venue"] == "bybit" and h.spec.perp_venue == "bybit" and choice["venue"] == "bybit"
        assert choice["amount"] == pytest.approx(amount, rel=1e-12) and choice["side"] == "sell"
        scores = {s["venue"]: s for s in choice["ranking"]}
        assert [s["venue"] for s in choice["ranking"]] == ["bybit", "okx"]
        for v in ("bybit", "okx"):
            want = expected_proceeds(close, volume, amount, VENUES[v]["slippage_bps"], VENUES[v]["perp_taker_fee"])
            assert scores[v]["net_quote"] == pytest.approx(want, rel=1e-9)
            assert scores[v]["taker_fee"] == VENUES[v]["perp_taker_fee"]
        # the entry is costed at the CHOSEN venue's fee (0.04 %), not the set's perp_taker_fee (0.055 %)
        assert h.params.perp_taker_fee == 0.0004 and h.params.perp_venue == "bybit"
        assert h.params.cost_model().perp_taker_fee == 0.0004
        await asyncio.wait_for(h.task, 60)
        assert h.driver.ctx.state is State.MONITORING_POSITIONS
        sup.journal.flush()
        tr = store.read_table("transitions", hedge_id="b1").sort_values("seq")
        row = tr[tr["trigger_name"] == TRIGGER].iloc[0]
        assert row["from_state"] == row["to_state"] == "ANALYZING_MARKET" and tr["trigger_name"].iloc[0] == "START"
        assert "perp venue bybit chosen by best execution" in row["reason"] and "okx all-in" in row["reason"]
        from hedge_core.ui.views.hedges import timeline_table  # the panel's hedge page shows the row

        shown = timeline_table(tr)
        assert shown.loc[shown["trigger"] == TRIGGER, "reason"].iloc[0] == row["reason"]
        fills = store.read_table("fills", hedge_id="b1")
        perp_fills = fills[fills["leg"] == "perp"]
        assert len(perp_fills) >= 1 and set(perp_fills["venue"]) == {"bybit"}
        assert set(fills.loc[fills["leg"] == "spot", "venue"]) == {"binance"}
        # the fee charged is bybit's paper fee on the fill's notional
        assert perp_fills["fee"].sum() == pytest.approx(0.0004 * (perp_fills["qty"] * perp_fills["price"]).sum(),
                                                        rel=1e-12)
        runs = store.read_table("hedge_runs", hedge_id="b1")
        assert runs["perp_venue"].iloc[0] == "bybit"
        b = h.raw_adapter.perp  # the position, margin and funding live on bybit's paper venue
        assert h.raw_adapter.perp_venue == "bybit" and b.core.positions_view()[0].qty < 0

    try:
        asyncio.run(go())
    finally:
        store.close()


def test_no_venue_deep_enough_is_refused_listing_depths_and_nothing_is_written(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb", hold=True)
    seed_demo(store, days=3)

    volume = float(store.read_bars("demo", "BTC/USDT:USDT", "perp", "1h", end=START)["volume"].iloc[-1])

    async def go() -> None:
        sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        # a 1 % participation cap: each venue fills 0.01 x the bar's volume now, far below 1e8 USDT of BTC
        with pytest.raises(InvalidInput) as err:
            await sup.start_hedge(request(paper_participation=0.01, notional=1e8))
        msg = str(err.value)
        for v in ("bybit", "okx"):
            assert f"{v}: book depth {0.01 * volume:g} < amount" in msg
        with pytest.raises(InvalidInput, match="perp_venue"):  # a one-venue set has no venues to choose among
            await sup.start_hedge(request(params_inline={"strategy": "carry", "notional": 1000.0}))
        assert not sup.hedges

    try:
        asyncio.run(go())
        sup_tables = [store.read_table(t) for t in ("hedge_runs", "transitions", "orders")]
        assert all(len(t) == 0 for t in sup_tables)
    finally:
        store.close()


def test_a_hedge_without_perp_venue_of_a_set_allowing_several_chooses_and_recovers_on_its_choice(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb", hold=True)
    seed_demo(store, days=3)

    async def go() -> None:
        sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        req = request(end=str(START + pd.Timedelta(hours=2)))
        req.pop("perp_venue")
        out = await sup.start_hedge(req)
        assert out["perp_venue"] == "bybit" and out["perp_venue_choice"]["venue"] == "bybit"
        await asyncio.wait_for(sup.hedges["b1"].task, 60)
        sup.journal.flush()
        # a restart rebuilds the hedge on its chosen venue from hedge_runs.info (no second choice)
        sup2 = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        rec = await sup2.recover_all()
        assert [r.get("error") for r in rec] == [None]
        h = sup2.hedges["b1"]
        assert h.spec.perp_venue == "bybit" and h.raw_adapter.perp_venue == "bybit"
        assert h.params.perp_taker_fee == 0.0004
        tr = store.read_table("transitions", hedge_id="b1")
        assert (tr["trigger_name"] == TRIGGER).sum() == 1
        for t in (h.task,):
            if t is not None:
                t.cancel()

    try:
        asyncio.run(go())
    finally:
        store.close()


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_a_runner_process_started_with_perp_venue_best_trades_the_perp_on_the_chosen_venue(tmp_path: Path) -> None:
    from hedge_core.exchange.paper import PaperExchange
    from hedge_core.exchange.routed_paper import venue_state_path
    from hedge_core.params import store as param_store
    from hedge_core.params.xcarry import CrossCarryParams
    from tests.support.runner_env import DEMO_START, journal, make_env, wait_for

    env = make_env(tmp_path)
    param_store.export(CrossCarryParams(**XCARRY), "xc-test", created_from="test", root=env.params, db=env.db,
                       kpis={"sharpe": 1.0})
    try:
        p = env.start_runner()
        c = env.client(p)
        out = c.start("xc-test", mode="paper", start=DEMO_START, speed=36_000, hedge_id="bp", venue="binance",
                      perp_venue="best", paper_venues=VENUES)
        assert out["perp_venue"] == "bybit" and out["perp_venue_choice"]["venue"] == "bybit"

        def entered() -> dict | None:
            h = c.hedge("bp")
            return h if h.get("state") == "MONITORING_POSITIONS" and not h.get("pending_orders") else None
        wait_for(entered, timeout=60, what="entry")
        from typer.testing import CliRunner

        from hedge_core.cli import app

        status = CliRunner().invoke(app, ["runner", "status", "--home", str(env.home)])  # the operator's view
        assert status.exit_code == 0, status.output
        assert "bp: perp venue bybit chosen by best execution" in status.output and "okx all-in" in status.output
        c.shutdown()
        p.wait(60)
        tr = journal(env, "transitions", "bp")
        chosen = tr[tr["trigger_name"] == TRIGGER]
        assert len(chosen) == 1 and "bybit all-in" in chosen["reason"].iloc[0] and "okx all-in" in chosen["reason"].iloc[0]
        fills = journal(env, "fills", "bp")
        assert set(fills.loc[fills["leg"] == "perp", "venue"]) == {"bybit"}
        # the perp orders and position are in bybit's paper state; okx never got a state file or an order
        b = PaperExchange.load(venue_state_path(env.home / "paper", "bp", "bybit")).core
        assert {o.symbol for o in b.orders.values()} == {"BTC/USDT:USDT"} and b.positions_view()[0].qty < 0
        assert b.config.perp_taker_fee == 0.0004
        assert not venue_state_path(env.home / "paper", "bp", "okx").exists()
    finally:
        env.cleanup()


def test_hedge_start_perp_venue_reaches_the_runner_and_prints_every_venues_score(monkeypatch) -> None:
    from typer.testing import CliRunner

    from hedge_core.cli import app
    from hedge_core.runner import cli as runner_cli

    record = {"rule": "best", "venue": "bybit", "taker_fee": 0.0004, "symbol": "BTC/USDT:USDT", "side": "sell",
              "amount": 0.025, "price": 40_000.0, "ts": None,
              "ranking": [{"venue": "bybit", "avg_price": 39_990.0, "fee": 0.4, "net_quote": 999.35,
                           "all_in_price": 39_974.0, "taker_fee": 0.0004, "depth": 5.0, "reason": ""},
                          {"venue": "okx", "avg_price": None, "fee": None, "net_quote": None, "all_in_price": None,
                           "taker_fee": None, "depth": 0.0, "reason": "no order book (ConnectionError: down)"}]}
    sent: dict = {}

    class Client:
        def start(self, params, mode="paper", **spec):
            sent.update(spec, params=params, mode=mode)
            return {"hedge_id": "h1", "mode": mode, "params": f"{params}@1", "state": "ANALYZING_MARKET",
                    "perp_venue": "bybit", "perp_venue_choice": record}

    monkeypatch.setattr(runner_cli, "_client", lambda home=None: Client())
    res = CliRunner().invoke(app, ["start", "--params", "xc", "--perp-venue", "best"])
    assert res.exit_code == 0, res.output
    assert sent["perp_venue"] == "best" and sent["params"] == "xc"
    assert "perp venue bybit chosen by best execution (sell 0.025 BTC/USDT:USDT)" in res.output
    assert "bybit all-in 39,974 (avg 39,990, taker 0.04 %)" in res.output
    assert "okx: no order book (ConnectionError: down)" in res.output


def test_paper_venue_settings_are_checked_naming_the_field() -> None:
    from hedge_core.runner.hedge_spec import HedgeSpec

    with pytest.raises(ValueError, match=r"paper_venues.bybit: \['maker'\] not settable"):
        HedgeSpec(hedge_id="s", paper_venues={"bybit": {"maker": 0.1}})
    with pytest.raises(ValueError, match=r"paper_venues.okx.perp_taker_fee=0.5: expected a number in \[0, 0.1\]"):
        HedgeSpec(hedge_id="s", paper_venues={"okx": {"perp_taker_fee": 0.5}})
    with pytest.raises(ValueError, match="perp_venue_choice"):  # written by the runner for the venue it chose
        HedgeSpec(hedge_id="s", perp_venue="okx", perp_venue_choice={"venue": "bybit"})
    assert HedgeSpec(hedge_id="s", perp_venue="best").leg_venues == ("binance", "best")
