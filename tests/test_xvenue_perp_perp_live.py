"""Two PERP legs on two venues in LIVE mode, real ccxt against two simulators at once: the first leg a perp on
the Binance simulator's USD-M side, the second a perp on the Bybit simulator's linear side
(tests/support/pair_live_env.py; both legs trade BTC/USDT:USDT, orders routed by LEG).

What each simulator does is its venue's documented behaviour (their module docstrings): Binance USD-M
"New Order (TRADE)" https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api,
"Account Trade List (USER_DATA)", "Get Income History (USER_DATA)" with ``incomeType`` FUNDING_FEE; Bybit v5
"Place Order", "Get Trade History" https://bybit-exchange.github.io/docs/v5/order/execution (``execType``
Trade / Funding), error 110007 https://bybit-exchange.github.io/docs/v5/error. The hedge is the runner's own
HedgeTask and driver (in process), checked against EACH venue's records.
"""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.engine.events import Command
from hedge_core.engine.states import State
from hedge_core.runner.hedge import HedgeSpec, HedgeTask
from tests.support.inprocess_hedge import running_hedge, stop, until
from tests.support.pair_live_env import PAIR, PRICE, RATE_A, RATE_B, binance_perp_sim, bybit_perp_sim, pair_params, \
    pair_venues

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # local venue simulators


def bybit_trades(sim) -> list[dict]:
    return [e for e in sim.executions if e["execType"] == "Trade"]


def binance_long(sim) -> float:
    return sim.position("BTCUSDT")


def test_open_both_perp_legs_funding_from_each_venue_reconcile_per_venue_close_both(tmp_path):
    async def go():
        async with pair_venues() as pv:
            sup, task, store = await running_hedge(tmp_path, pv.adapter, pair_params(), hedge_id="pl", **PAIR,
                                                   records_poll_s=0.2, reconcile_s=0.5)
            try:
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, what="entry")
                # long the lower funding (Binance USD-M), short the higher (Bybit linear); no spot anywhere
                long_a, short_b = binance_long(pv.first_sim), pv.second_sim.positions["BTCUSDT"][0]
                assert long_a > 0 > short_b and abs(long_a + short_b) <= 0.001
                assert not pv.first_sim.trades or {t["market"] for t in pv.first_sim.trades} == {"fapi"}
                assert "BTC" not in pv.second_sim.coins and not any(pv.first_sim.spot.get("BTC", [0.0]))
                ctx = task.driver.ctx
                assert ctx.spot.venue == "binance" and ctx.perp.venue == "bybit"
                assert ctx.spot.qty == pytest.approx(long_a, abs=1e-12)
                assert ctx.perp.qty == pytest.approx(short_b, abs=1e-12)
                # funding from EACH venue's own records, on its own leg: Binance FUNDING_FEE income (a long pays
                # qty x mark x rate), Bybit execType Funding (a short receives)
                pv.first_sim.settle_funding("BTCUSDT", RATE_A)
                pv.second_sim.settle_funding("BTCUSDT", rate=RATE_B)
                await until(lambda: task.driver.ctx.spot.funding != 0 and task.driver.ctx.perp.funding != 0,
                            what="funding booked on both legs")
                paid_a, got_b = -long_a * PRICE * RATE_A, -short_b * PRICE * RATE_B  # by hand
                assert task.driver.ctx.spot.funding == pytest.approx(paid_a, rel=1e-9) and paid_a < 0
                assert task.driver.ctx.perp.funding == pytest.approx(got_b, rel=1e-9) and got_b > 0
                task.journal.flush()
                fj = store.read_table("funding_payments", hedge_id="pl")
                assert sorted(fj["venue"]) == ["binance", "bybit"]
                row_a, row_b = fj[fj["venue"] == "binance"].iloc[0], fj[fj["venue"] == "bybit"].iloc[0]
                assert row_a["amount"] == pytest.approx(paid_a, rel=1e-9) and row_a["position_qty"] > 0
                assert row_b["amount"] == pytest.approx(got_b, rel=1e-9) and row_b["position_qty"] < 0
                # the continuous reconciliation reads each venue's position, trades and funding: no difference
                await until(lambda: (task.summary().get("reconcile") or {}).get("differences") == [],
                            what="a clean reconciliation pass")
                # a second settlement at the first venue only: booked under binance alone, at the same rule
                pv.first_sim.settle_funding("BTCUSDT", RATE_A, ts_ms=pv.first_sim.now_ms() + 1000)
                await until(lambda: len(task._first_funding_booked) == 2, what="the second Binance settlement")
                assert len(task._funding_booked) == 1
                assert task.driver.ctx.spot.funding == pytest.approx(2 * paid_a, rel=1e-9)
                await task.command(Command.STOP, "test: close both legs")
                await until(lambda: task.driver.ctx.state is State.COMPLETED, what="both legs closed")
                assert binance_long(pv.first_sim) == 0 and pv.second_sim.positions["BTCUSDT"][0] == 0
                fills = task.journal.fills("pl")
                a, b = fills[fills["leg"] == "spot"], fills[fills["leg"] == "perp"]
                assert set(a["venue"]) == {"binance"} and set(b["venue"]) == {"bybit"}
                assert set(a["symbol"]) == set(b["symbol"]) == {"BTC/USDT:USDT"}
                fapi = [t for t in pv.first_sim.trades if t["market"] == "fapi"]
                assert len(a) == len(fapi) == 2 and len(b) == len(bybit_trades(pv.second_sim)) == 2
                # fees from each venue's records, by hand: Binance USD-M taker 0.05 %, Bybit linear taker 0.055 %
                assert a["fee"].sum() == pytest.approx(0.0005 * (a["qty"] * a["price"]).sum(), rel=1e-9)
                assert b["fee"].sum() == pytest.approx(0.00055 * (b["qty"] * b["price"]).sum(), rel=1e-9)
                assert a["fee"].sum() == pytest.approx(sum(float(t["commission"]) for t in fapi), abs=1e-9)
            finally:
                await stop(task, store)
    asyncio.run(go())


def test_funding_is_compared_per_venue():
    # journal rows under each venue against what that venue paid; a difference names its venue (quote units)
    from hedge_core.runner.pair_records import booked_funding, funding_differences

    t = pd.Timestamp("2026-01-01T08:00Z")
    j = pd.DataFrame({"venue": ["binance", "bybit"], "ts": [t, t], "amount": [-0.4, 2.0]})
    assert funding_differences(j, {"binance": -0.4, "bybit": 2.0}) == []
    [d] = funding_differences(j, {"binance": -0.8, "bybit": 2.0})
    assert d.what == "funding at binance (USDT)" and (d.journal, d.venue) == (-0.4, -0.8)
    # both venues settle at 08:00: each leg keeps its own booked times (one set would skip the second venue's)
    second, first = booked_funding(j.iloc[:1], "binance")
    assert first == {t} and second == set()
    assert booked_funding(j, None) == ({t}, set())


def test_bybit_refusing_the_second_leg_unwinds_the_first_on_binance(tmp_path):
    # Bybit's unified wallet holds 1 USDT: every order of the second leg is refused with 110007 ("ab not enough
    # for new order") after the first leg filled on Binance USD-M -> after the retries the engine closes the first
    # leg on Binance (the two-leg rule), reduce-only, and nothing is left at either venue
    async def go():
        async with pair_venues(second_sim=bybit_perp_sim(usdt=1.0, rate=RATE_B)) as pv:
            sup, task, store = await running_hedge(tmp_path, pv.adapter, pair_params(), hedge_id="pl", **PAIR)
            try:
                fapi = lambda: [t for t in pv.first_sim.trades if t["market"] == "fapi"]  # noqa: E731
                await until(lambda: len(fapi()) >= 2, what="the first leg unwound on binance")
                await until(lambda: not task.driver.ctx.pending, what="nothing pending")
                assert [t["side"] for t in fapi()[:2]] == ["BUY", "SELL"]  # opened long, then closed on binance
                assert binance_long(pv.first_sim) == 0 and abs(task.driver.ctx.spot.qty) < 1e-12
                refused = [a for a in pv.second_sim.answers if a[0] == "POST /v5/order/create"]
                assert len(refused) == task.params.execution.hedge_retries + 1 and {a[2] for a in refused} == {110007}
                assert not pv.second_sim.positions.get("BTCUSDT", [0.0])[0]
                assert any("unwinding" in a["message"] for a in task.summary()["alerts"])
                assert task.driver.ctx.state is not State.ERROR
                orders = task.journal.orders("pl")
                assert {r["venue"] for r in orders if r["client_order_id"].startswith("hs")} == {"binance"}
                assert {r["venue"] for r in orders if r["client_order_id"].startswith("hp")} == {"bybit"}
            finally:
                await stop(task, store)
    asyncio.run(go())


def test_a_first_leg_answer_lost_in_a_crash_is_reconciled_at_binance_only(tmp_path):
    # Binance applies the first leg's order but its answer never comes (held 30 s; the runner "crashes"
    # meanwhile). A new HedgeTask recovers: the order is looked up at BINANCE by its client id (the symbol is the
    # same on both venues: the leg routes it), its fills come from Binance's USD-M trade records and are journaled
    # under binance, nothing is re-sent, Bybit is never asked about it, and the RECOVERY report names each venue's
    # own signed position. The hedge then sells the naked first leg's hedge on Bybit.
    async def go():
        async with pair_venues() as pv:
            pv.first_sim.inject("POST /fapi/v1/order", hang=30.0, after=True)
            sup, task, store = await running_hedge(tmp_path, pv.adapter, pair_params(), hedge_id="pl", **PAIR)
            try:
                await until(lambda: pv.first_sim.orders, what="the first leg's order applied at binance")
                task.task.cancel()  # the crash: the answer is never read
                try:
                    await task.task
                except asyncio.CancelledError:
                    pass
                [order] = list(pv.first_sim.orders.values())
                link = order.client_id
                assert link.startswith("hs") and link not in set(task.journal.fills("pl")["client_order_id"])
                runs = sup.journal.runs()
                row = runs[runs["hedge_id"] == "pl"].iloc[0]
                task2 = HedgeTask(task.spec, task.params, sup.journal, pv.adapter, sup._feed_factory, sup)
                rep = await task2.recover(str(row["state"]), row["started_at"])
                v = rep["venues"]
                assert v["binance"]["leg"] == "first perp" and link in v["binance"]["finalised"]
                fapi = [t for t in pv.first_sim.trades if t["market"] == "fapi"]
                # the first leg's records carry its venue (engine.driver.record_trade_id)
                assert fapi and v["binance"]["fills_added"] == [f"binance:BTC/USDT:USDT#{t['id']}" for t in fapi]
                assert not v["bybit"]["fills_added"] and not v["bybit"]["finalised"]
                assert binance_long(pv.first_sim) > 0
                assert v["binance"]["holding"] == pytest.approx(binance_long(pv.first_sim), abs=1e-12)
                assert v["bybit"]["holding"] == 0.0
                assert pv.first_sim.order_count(link) == 1  # found, never re-sent
                assert not [r for r in pv.second_sim.requests if link in str(r[2])]  # bybit never asked
                fills = task2.journal.fills("pl")  # the recovery's first step hedges at bybit at once
                a = fills[fills["leg"] == "spot"]
                assert set(a["venue"]) == {"binance"} and set(a["client_order_id"]) == {link}
                assert set(fills.loc[fills["leg"] == "perp", "venue"]) <= {"bybit"}
                assert task2.driver.ctx.spot.qty == pytest.approx(binance_long(pv.first_sim), abs=1e-12)
                # the recovered hedge hedges the naked first leg at bybit (its own venue)
                task2.task = asyncio.create_task(task2.run())
                await until(lambda: pv.second_sim.positions.get("BTCUSDT", [0.0])[0] < 0, what="the hedge at bybit")
                await until(lambda: not task2.driver.ctx.pending, what="nothing pending")
                assert abs(binance_long(pv.first_sim) + pv.second_sim.positions["BTCUSDT"][0]) <= 0.001
                task = task2
            finally:
                await stop(task, store)
    asyncio.run(go())


def test_preflight_checks_each_perp_wallet_against_its_own_leg():
    # the first leg's margin on Binance's USD-M wallet, the second's on Bybit's unified wallet; one-way mode,
    # margin mode and leverage set on BOTH venues at a real start; a venue short of margin is named
    from hedge_core.errors import InvalidInput
    from hedge_core.params import store as param_store
    from hedge_core.runner.preflight_pair import preflight_pair

    params = param_store.parse(pair_params(), where="test")

    async def go():
        async with pair_venues(first_sim=binance_perp_sim(wallet=7_000.0),
                               second_sim=bybit_perp_sim(usdt=3_000.0, rate=RATE_B)) as pv:
            rep = await preflight_pair(pv.adapter, perp_symbol="BTC/USDT:USDT", params=params, amount=1_000.0,
                                       apply=True)
            assert rep.spot.venue == "binance" and rep.perp.venue == "bybit"
            assert rep.spot.symbol == rep.perp.symbol == "BTC/USDT:USDT"
            assert rep.spot_free == pytest.approx(7_000.0) and rep.perp_free == pytest.approx(3_000.0)
            assert rep.spot_price == pytest.approx(PRICE) and rep.perp_price == pytest.approx(PRICE)
            assert "/fapi/v1/leverage" in {r[1] for r in pv.first_sim.requests if r[0] == "POST"}
            assert {"/v5/position/set-leverage", "/v5/position/switch-mode"} <= {r[1] for r in pv.second_sim.requests}
            assert not [r for r in pv.first_sim.requests if r[1].startswith("/api/v3/order")]  # nothing sent
            # a dry run reads only: nothing set on either venue
            n_a, n_b = len(pv.first_sim.requests), len(pv.second_sim.requests)
            await preflight_pair(pv.adapter, perp_symbol="BTC/USDT:USDT", params=params, amount=1_000.0)
            assert not [r for r in pv.first_sim.requests[n_a:] if r[0] == "POST"]
            assert not [r for r in pv.second_sim.requests[n_b:] if r[1].startswith("/v5/position/set")]
        # 1,000 USDT at 1x needs ~1,001 USDT of margin per leg (notional / leverage + taker fee to open and close,
        # 1 % price move): 600 USDT on Binance is short, Bybit's 10,000 is not -> binance named, not bybit
        async with pair_venues(first_sim=binance_perp_sim(wallet=600.0)) as pv:
            with pytest.raises(InvalidInput) as err:
                await preflight_pair(pv.adapter, perp_symbol="BTC/USDT:USDT", params=params, amount=1_000.0)
            msg = str(err.value)
            assert "venue binance" in msg and "binance perp margin 600.00 USDT free" in msg and "bybit" not in msg
            assert "no transfer between venues" in msg
        async with pair_venues(second_sim=bybit_perp_sim(usdt=600.0, rate=RATE_B)) as pv:
            with pytest.raises(InvalidInput) as err:
                await preflight_pair(pv.adapter, perp_symbol="BTC/USDT:USDT", params=params, amount=1_000.0)
            assert "venue bybit" in str(err.value) and "bybit perp margin 600.00 USDT free" in str(err.value)
    asyncio.run(go())


def test_live_and_recommend_pair_adapters_keys_on_each_venue_and_recommend_never_sends(tmp_path, monkeypatch):
    # the supervisor builds a PerpPairLive of two keyed ccxt adapters; a venue without keys is refused naming its
    # leg and the variables; recommend wraps EACH venue (the driver is given each venue's adapter) so nothing sends
    from hedge_core.errors import InvalidInput
    from hedge_core.exchange.recommend import RecommendAdapter
    from hedge_core.exchange.routed_pair_live import PerpPairLive
    from hedge_core.runner.supervisor import Supervisor
    from hedge_core.store import Store

    for k in [k for k in __import__("os").environ if k.startswith("HEDGE_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("HEDGE_BINANCE_API_KEY", "binKEY-0123456789abcdef")
    monkeypatch.setenv("HEDGE_BINANCE_API_SECRET", "binSECRET-0123456789abcdef")
    store = Store(tmp_path / "db.duckdb", hold=True)
    try:
        sup = Supervisor(store, tmp_path / "home")
        spec = HedgeSpec(hedge_id="k1", params_inline=pair_params(), mode="live", feed="ticker", **PAIR)
        with pytest.raises(InvalidInput) as err:
            sup._adapter_for(spec, confirm_live=True)
        assert "second perp leg on bybit" in str(err.value) and "HEDGE_BYBIT_API_KEY" in str(err.value)
        with pytest.raises(InvalidInput, match="confirm_live"):
            sup._adapter_for(spec, confirm_live=False)
        monkeypatch.setenv("HEDGE_BYBIT_API_KEY", "bybKEY-fedcba9876543210")
        monkeypatch.setenv("HEDGE_BYBIT_API_SECRET", "bybSECRET-fedcba9876543210")
        ad = sup._adapter_for(spec, confirm_live=True)
        try:
            assert isinstance(ad, PerpPairLive) and (ad.first.venue, ad.second.venue) == ("binance", "bybit")
            assert ad.first.governor is not ad.second.governor
        finally:
            asyncio.run(ad.close())
        rec = sup._adapter_for(spec.model_copy(update={"mode": "recommend"}))
        try:
            assert isinstance(rec, PerpPairLive)
            assert all(isinstance(x, RecommendAdapter) for x in rec.by_venue().values())
        finally:
            asyncio.run(rec.close())
    finally:
        store.close()


def test_recommend_pair_reads_both_venues_and_sends_nothing(tmp_path):
    from hedge_core.exchange.routed_pair_live import recommend_pair

    async def go():
        async with pair_venues() as pv:
            rec = recommend_pair(pv.adapter)
            sup, task, store = await running_hedge(tmp_path, rec, pair_params(), hedge_id="pr", mode="recommend",
                                                   **PAIR)
            try:
                await until(lambda: sum(len(a.recommendations) for a in rec.by_venue().values()) >= 1,
                            what="a recommendation")
                made = {v: [r.method for r in a.recommendations] for v, a in rec.by_venue().items()}
                assert "create_order" in made["binance"]  # the first leg's order, recorded at its venue
                assert not pv.first_sim.orders and not pv.second_sim.orders  # nothing sent anywhere
            finally:
                await stop(task, store)
    asyncio.run(go())


def test_perp_pair_spec_modes_and_feeds():
    # paper: replay or live bars; live and recommend: ticker or bars (each venue's own ticker or bars for its leg)
    for mode, feed in (("live", "ticker"), ("recommend", "ticker"), ("live", "bars"), ("recommend", "bars"),
                       ("paper", "bars"), ("paper", "replay")):
        HedgeSpec(hedge_id="x", mode=mode, feed=feed, **PAIR)
    for mode, feed in (("paper", "ticker"), ("recommend", "replay"), ("live", "replay")):
        with pytest.raises(ValueError, match=f"legs='perp_perp' with mode='{mode}', feed='{feed}'"):
            HedgeSpec(hedge_id="x", mode=mode, feed=feed, **PAIR)
