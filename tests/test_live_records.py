"""The venue's records are the source of the ledger (docs/live-records.md).

In process, real ccxt against the Binance simulator (which answers as Binance documents: USD-M
order answers without commission, spot order lookups without fills): the driver books fills from
the venue's trade records, and keeps an order pending rather than inventing a fee of 0 while the
records are not readable. Pure parts: the reconciliation comparison, funding dedupe, HedgeSpec
validation, the journal's ``rejected`` status.
"""

from __future__ import annotations

import asyncio
import math

import pandas as pd
import pytest

from hedge_core.engine import MarketUpdate, State, new_hedge
from hedge_core.engine.driver import HedgeDriver, record_trade_id
from hedge_core.engine.events import Timer
from hedge_core.errors import InvalidOrder
from hedge_core.params.models import CarryParams
from hedge_core.runner.records import Figures, compare, journal_figures, new_funding, quote_fee
from hedge_core.types import Fill, FundingPayment, Side
from tests.support.binance_sim import BinanceSim
from tests.support.live_env import TEST_KEY, TEST_SECRET, live_env

PRICE = 40_000.0
P = CarryParams(notional=4_000.0, min_net_carry=-1.0)


def _sim(**kw) -> BinanceSim:
    sim = BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET, spot_balances={"USDT": 100_000.0},
                     futures_wallet=100_000.0, **kw)
    sim.set_price("BTCUSDT", PRICE)
    return sim


async def _driver(adapter) -> HedgeDriver:
    m = await adapter.load_markets()
    now = pd.Timestamp.now(tz="UTC")
    return HedgeDriver(new_hedge("rec", "carry", m["BTC/USDT"], m["BTC/USDT:USDT"], now), P,
                       {"binance": adapter})


def test_live_fills_carry_the_venues_commission_not_the_order_answers():
    """USD-M order answers carry no commission (Binance "New Order" response): the perp fill's fee is
    the userTrades commission; the spot buy's fee is myTrades' commission in BTC (no BNB)."""

    async def run():
        async with live_env(sim=_sim(spot_fee_in_received=True)) as env:
            drv = await _driver(env.adapter)
            await drv.feed(MarketUpdate(pd.Timestamp.now(tz="UTC"), PRICE, PRICE, funding_rate=0.001))
            assert drv.ctx.state is State.MONITORING_POSITIONS
            venue = {(t["market"], t["id"]): t for t in env.sim.trades}
            perp_fee = sum(float(t["commission"]) for t in venue.values() if t["market"] == "fapi")
            spot = [t for t in venue.values() if t["market"] == "spot"]
            assert perp_fee > 0 and spot and all(t["commissionAsset"] == "BTC" for t in spot)
            assert drv.ctx.perp.fees == pytest.approx(perp_fee, abs=1e-8)
            spot_fee_usdt = sum(float(t["commission"]) * float(t["price"]) for t in spot)
            assert drv.ctx.spot.fees == pytest.approx(spot_fee_usdt, abs=1e-8)
            held = sum(env.sim.spot["BTC"])
            assert drv.ctx.spot.qty == pytest.approx(held, abs=1e-12)  # net of the commission kept in BTC
            assert set(drv.ctx.seen_trades) == {f"{'BTC/USDT' if m == 'spot' else 'BTC/USDT:USDT'}#{i}"
                                                for (m, i) in venue}

    asyncio.run(run())


def test_unreadable_trade_records_keep_the_order_pending_never_fee_zero():
    """userTrades fails once after the perp order filled: nothing is booked with an invented fee;
    the order stays pending, the engine queries it after its timeout, and the fill is then booked
    from the records with the venue's commission."""

    async def run():
        sim = _sim()
        async with live_env(sim=sim) as env:
            drv = await _driver(env.adapter)
            # two reads fail: the external-trade poll at the market update, then the hedge fill's records
            sim.inject(r"GET /fapi/v1/userTrades", count=2, status=500, code=-1000)
            t0 = pd.Timestamp.now(tz="UTC")
            await drv.feed(MarketUpdate(t0, PRICE, PRICE, funding_rate=0.001))
            assert not sim.faults and sim.position("BTCUSDT") < 0
            assert drv.ctx.perp.qty == 0.0 and drv.ctx.perp.fees == 0.0  # filled at the venue, not booked
            assert any(p.leg == "perp" for p in drv.ctx.pending.values())
            assert drv.records_missing  # the driver knows how much is still unbooked
            later = t0 + pd.Timedelta(seconds=P.execution.order_timeout_s + 1)
            for k in range(3):
                await drv.feed(Timer(later + pd.Timedelta(seconds=k * (P.execution.order_timeout_s + 1))))
                if not drv.ctx.pending:
                    break
            fut = [t for t in sim.trades if t["market"] == "fapi"]
            assert drv.ctx.perp.qty == pytest.approx(-sum(float(t["qty"]) for t in fut))
            assert drv.ctx.perp.fees == pytest.approx(sum(float(t["commission"]) for t in fut), abs=1e-8)
            assert not drv.records_missing

    asyncio.run(run())


def test_adl_trade_is_booked_from_the_records_as_external():
    """An auto-deleverage reduces the position with an order that is not ours (simulator's adl()):
    the driver books that trade (as external) from the records and the engine re-hedges."""

    async def run():
        sim = _sim()
        async with live_env(sim=sim) as env:
            drv = await _driver(env.adapter)
            t0 = pd.Timestamp.now(tz="UTC")
            await drv.feed(MarketUpdate(t0, PRICE, PRICE, funding_rate=0.001))
            before = sim.position("BTCUSDT")
            assert before < 0
            sim.adl("BTCUSDT", 0.03, PRICE * 1.01)
            assert sim.income[-1]["incomeType"] == "REALIZED_PNL"
            adl = sim.trades[-1]
            await drv.book_external(pd.Timestamp.now(tz="UTC"))
            assert f"BTC/USDT:USDT#{adl['id']}" in drv.ctx.seen_trades  # booked from the venue's record
            # ... and the engine re-hedged the difference: a rebalance sell of what ADL bought back
            rebal = [a for a in drv.actions if getattr(a, "purpose", "") == "rebalance"]
            assert rebal and rebal[-1].request.qty == pytest.approx(0.03)
            assert drv.ctx.perp.qty == pytest.approx(sim.position("BTCUSDT"), abs=1e-12) == pytest.approx(before)

    asyncio.run(run())


# ---- pure parts ------------------------------------------------------------------------------------
def test_compare_reports_each_difference_with_both_figures():
    j = Figures(-0.1, 0.1, frozenset(), {"1": (0.1, 4.0), "2": (0.1, 2.0)}, funding=1.0)
    v = Figures(-0.1005, 0.1, frozenset({"hx"}), {"1": (0.1, 4.0), "2": (0.1, 2.5)}, funding=1.2)
    diffs = [str(d) for d in compare(j, v, spot_lot=0.001, perp_lot=0.001)]
    assert any("open orders" in d and "hx" in d for d in diffs)
    assert any("commission of order 2" in d and "journal 2" in d and "venue 2.5" in d for d in diffs)
    assert any(d.startswith("funding") for d in diffs)
    assert not any("perp position" in d for d in diffs)  # 0.0005 is below one lot
    assert compare(j, j, spot_lot=0.001, perp_lot=0.001) == []
    moved = Figures(-0.098, 0.1, frozenset(), j.fills, 1.0)
    assert [d.what for d in compare(j, moved, spot_lot=0.001, perp_lot=0.001)] == ["perp position (base)"]


def test_journal_figures_value_a_base_commission_at_the_fill_price():
    ctx = new_hedge("x", "carry", *[i for i in _instruments()], pd.Timestamp("2024-01-01T00:00Z"))
    fills = pd.DataFrame([{"order_id": "7", "leg": "spot", "qty": 0.1, "price": 40_000.0, "fee": 0.0001,
                           "fee_currency": "BTC"}])
    fig = journal_figures(ctx, fills, pd.DataFrame({"amount": [0.5, -0.25]}), [])
    assert fig.fills["7"] == (0.1, pytest.approx(4.0)) and fig.funding == 0.25
    assert quote_fee(0.5, "USDT", 40_000.0, "BTC") == 0.5


def _instruments():
    from hedge_core.exchange.paper.core import default_instruments

    m = {i.symbol: i for i in default_instruments()}
    return m["BTC/USDT"], m["BTC/USDT:USDT"]


def test_new_funding_dedupes_and_keeps_the_engines_expected_figure():
    from dataclasses import replace as _r

    ctx = new_hedge("x", "carry", *_instruments(), pd.Timestamp("2024-01-01T00:00Z"))
    ctx = _r(ctx, perp=_r(ctx.perp, qty=-0.1), mark_price=40_000.0, last_funding_rate=0.0001)
    t1, t2 = pd.Timestamp("2024-01-01T08:00Z"), pd.Timestamp("2024-01-01T16:00Z")
    pays = [FundingPayment("BTC/USDT:USDT", t2, 0.41, 0.0001, 0.1, 41_000.0),
            FundingPayment("BTC/USDT:USDT", t1, 0.4, math.nan, math.nan, math.nan),
            FundingPayment("BTC/USDT:USDT", pd.Timestamp("2023-12-31T16:00Z"), 9.0, 0.0001, 0.1, 40_000.0)]
    out = new_funding(pays, {t2}, pd.Timestamp("2024-01-01T00:00Z"), ctx)
    assert [(p.ts, p.amount) for p, *_ in out] == [(t1, 0.4)]  # booked and pre-start ones skipped
    _, rate, mark, expected = out[0]
    assert (rate, mark) == (0.0001, 40_000.0) and expected == pytest.approx(0.4)


@pytest.mark.parametrize("field,value", [("reconcile_s", 0), ("reconcile_s", 3601), ("records_poll_s", -1),
                                         ("on_mismatch", "panic")])
def test_hedge_spec_refuses_bad_reconcile_settings_naming_the_field(field, value):
    from pydantic import ValidationError

    from hedge_core.runner.hedge import HedgeSpec

    with pytest.raises(ValidationError) as exc:
        HedgeSpec(hedge_id="h", **{field: value})
    assert exc.value.errors()[0]["loc"] == (field,)
    assert HedgeSpec(hedge_id="h").on_mismatch == "hold" and HedgeSpec(hedge_id="h").reconcile_s == 60.0


def test_a_refused_order_is_journaled_rejected_with_its_reason(tmp_path):
    from hedge_core.engine.actions import PlaceOrder
    from hedge_core.runner.hedge import JournalingAdapter
    from hedge_core.runner.journal import Journal
    from hedge_core.store import Store
    from hedge_core.types import OrderRequest, TradingMode

    class Refuses:
        venue, mode = "binance", TradingMode.LIVE

        async def create_order(self, request):
            raise InvalidOrder("Account has insufficient balance for requested action. (-2010)")

    class Task:
        hedge_id = "h1"
        purposes: dict = {}
        reconcile_due = asyncio.Event()

    with Store(tmp_path / "j.duckdb") as st:
        task = Task()
        task.journal = Journal(st)
        rq = OrderRequest("BTC/USDT", Side.SELL, 0.1, "hs00001a-x")
        task.journal.intent("h1", PlaceOrder("spot", "binance", rq, "close"), pd.Timestamp("2024-01-01T00:00Z"), "live")
        with pytest.raises(InvalidOrder):
            asyncio.run(JournalingAdapter(Refuses(), task).create_order(rq))  # type: ignore[arg-type]
        row = st.read_table("orders", hedge_id="h1").iloc[0]
        assert row["status"] == "rejected" and "-2010" in row["reason"]


def test_record_trade_id_is_unique_across_spot_and_perp():
    a = Fill("5", "1", "c", "BTC/USDT", Side.BUY, 1.0, 1.0, 0.0, pd.Timestamp("2024-01-01T00:00Z"))
    b = Fill("5", "2", "d", "BTC/USDT:USDT", Side.SELL, 1.0, 1.0, 0.0, pd.Timestamp("2024-01-01T00:00Z"))
    assert record_trade_id(a) != record_trade_id(b)


def test_bybit_fills_come_from_the_execution_list():
    """Bybit (v5 execution list, ``execFee``/``feeCurrency``): the same driver books each execution
    once with the venue's fee; trade ids are the venue's ``execId``."""
    from tests.support.live_env import bybit_env

    async def run():
        async with bybit_env() as env:
            env.sim.set_price("BTCUSDT", 30_000.0)
            m = await env.adapter.load_markets()
            now = pd.Timestamp.now(tz="UTC")
            drv = HedgeDriver(new_hedge("by", "carry", m["BTC/USDT"], m["BTC/USDT:USDT"], now),
                              CarryParams(notional=3_000.0, min_net_carry=-1.0), {"bybit": env.adapter})
            await drv.feed(MarketUpdate(now, 30_000.0, 30_000.0, funding_rate=0.001))
            assert drv.ctx.state is State.MONITORING_POSITIONS
            rows = [e for e in env.sim.executions if e["execType"] == "Trade"]
            lin = [e for e in rows if e["category"] == "linear"]
            assert drv.ctx.perp.fees > 0
            assert drv.ctx.perp.fees == pytest.approx(sum(float(e["execFee"]) for e in lin), abs=1e-8)
            spot = [e for e in rows if e["category"] == "spot"]
            assert spot and all(e["feeCurrency"] == "BTC" for e in spot)  # a buy pays in the coin received
            assert drv.ctx.spot.qty == pytest.approx(env.sim.coins["BTC"], abs=1e-12)
            assert {t.split("#")[1] for t in drv.ctx.seen_trades} == {e["execId"] for e in rows}

    asyncio.run(run())


def test_rehedge_policy_books_the_venues_missing_fill_and_a_clean_pass_clears(tmp_path):
    """A perp fill lost from the journal (the hedge rebuilt without it looks naked): reconciliation
    finds the venue's record, marks the hedge DEGRADED, and the ``rehedge`` policy books it; the next
    pass is clean and clears the condition. Real ccxt against the simulator, a HedgeTask in process."""
    from types import SimpleNamespace

    from hedge_core.runner.hedge import HedgeSpec, HedgeTask
    from hedge_core.runner.journal import Journal
    from hedge_core.runner.reconcile import rebuild_context
    from hedge_core.store import Store

    async def run():
        sim = _sim()
        async with live_env(sim=sim) as env:
            with Store(tmp_path / "r.duckdb") as st:
                sup = SimpleNamespace(position_snapshot_s=0.0, alert_bus=None, heartbeat_stale=lambda: False)
                spec = HedgeSpec(hedge_id="rh", mode="live", feed="ticker", on_mismatch="rehedge")
                task = HedgeTask(spec, P, Journal(st), env.adapter, lambda t: None, sup)
                t0 = pd.Timestamp.now(tz="UTC")
                task.started_at = t0 - pd.Timedelta(seconds=1)
                await task.start_new(t0)
                await task.step(MarketUpdate(t0, PRICE, PRICE, funding_rate=0.001))
                assert task.driver.ctx.state is State.MONITORING_POSITIONS
                assert await task.reconcile_now() == []  # journal == venue
                # lose the perp fill from the journal, and rebuild the hedge from what is left
                fills = task.journal.fills("rh")
                kept = fills[fills["leg"] == "spot"]
                with st._connection() as con:  # the lost write (test only: the store has no delete)
                    con.execute("DELETE FROM fills WHERE hedge_id = 'rh' AND leg = 'perp'")
                ctx = task.driver.ctx
                m = await env.adapter.load_markets()
                task.driver.ctx = rebuild_context(new_hedge("rh", "carry", m["BTC/USDT"], m["BTC/USDT:USDT"], t0),
                                                  kept, pd.DataFrame(), list(ctx.known_orders),
                                                  State.MONITORING_POSITIONS, {"spot": PRICE, "perp": PRICE}, t0)
                assert task.driver.ctx.perp.qty == 0.0
                diffs = await task.reconcile_now()
                assert any("perp position" in d for d in diffs) and any("filled qty of order" in d for d in diffs)
                assert "reconcile" in task.summary()["degraded"]
                assert task.driver.ctx.perp.qty == pytest.approx(sim.position("BTCUSDT"))  # booked from the record
                assert len(sim.orders) == 2  # nothing new sent: the hedge was whole at the venue
                assert await task.reconcile_now() == []
                assert "reconcile" not in task.summary()["degraded"]

    asyncio.run(run())



def test_a_resend_after_a_lost_order_is_journaled_as_its_retry(tmp_path):
    from dataclasses import replace as dc_replace

    from hedge_core.engine.actions import PlaceOrder
    from hedge_core.runner.journal import Journal
    from hedge_core.store import Store
    from hedge_core.types import OrderRequest

    with Store(tmp_path / "j.duckdb") as st:
        j = Journal(st)
        first = PlaceOrder("spot", "binance", OrderRequest("BTC/USDT", Side.BUY, 0.1, "hs000010-aaaa"), "entry")
        second = dc_replace(first, request=OrderRequest("BTC/USDT", Side.BUY, 0.1, "hs000011-bbbb"),
                            retry_of="hs000010-aaaa")
        t = pd.Timestamp("2024-01-01T00:00Z")
        j.intent("h1", first, t, "live")
        j.intent("h1", second, t, "live")
        j.flush()
        rows = st.read_table("orders", hedge_id="h1").set_index("client_order_id")
        assert rows.loc["hs000011-bbbb", "retry_of"] == "hs000010-aaaa"
        assert rows.loc["hs000010-aaaa", "retry_of"] is None or pd.isna(rows.loc["hs000010-aaaa", "retry_of"])


def test_by_venue_puts_each_difference_under_the_venue_of_its_order_market_or_leg():
    from hedge_core.runner.records import by_venue

    j = Figures(-0.1, 0.1, frozenset(), {"7": (0.1, 0.04)}, 1.0)
    v = Figures(-0.1, 0.11, frozenset({"x1"}), {"7": (0.1, 0.05), "9": (0.02, 0.0)}, 1.5,
                open_symbols={"x1": "BTC/USDT:USDT"})
    diffs = compare(j, v, spot_lot=0.001, perp_lot=0.001)
    got = by_venue(diffs, j, v, spot_venue="binance", perp_venue="bybit", spot_symbol="BTC/USDT",
                   order_venues={"7": "binance", "9": "bybit"})
    assert got["binance"]["legs"] == ["spot"] and got["bybit"]["legs"] == ["perp"]
    assert [d.split(" ")[0:2] for d in got["binance"]["differences"]] == [["spot", "base"], ["commission", "of"]]
    assert [d.split(" (")[0] for d in got["bybit"]["differences"]] == [
        "open orders at the venue the hedge does not track", "filled qty of order 9", "funding"]
    assert got["binance"]["spot_base"] == {"journal": 0.1, "venue": 0.11}
    assert got["bybit"]["positions"] == {"perp": {"journal": -0.1, "venue": -0.1}}
    one = by_venue([], j, j, spot_venue="okx", perp_venue="okx", spot_symbol="BTC/USDT", order_venues={})
    assert list(one) == ["okx"] and one["okx"]["legs"] == ["spot", "perp"] and one["okx"]["differences"] == []
