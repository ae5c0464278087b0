"""Legs on two venues in LIVE mode, real ccxt against two simulators at once: the spot leg on the Binance
simulator, the perp leg on the Bybit simulator (tests/support/xlive_env.py).

What each simulator does is the venue's documented behaviour (see their module docstrings: Binance
"New Order (TRADE)", "Account Trade List"; Bybit v5 "Place Order", "Get Trade History"
https://bybit-exchange.github.io/docs/v5/order/execution with ``execType`` Trade / Funding). The
hedge is the runner's own HedgeTask and driver (in process), checked against each venue's records:
fills and fees from each venue's executions, funding from the perp venue's Funding executions, the
two-leg rule (the perp venue refusing the hedge unwinds the spot leg on the spot venue) and the
per-venue reconciliation after an answer lost on one venue.
"""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.engine.events import Command
from hedge_core.engine.states import State
from hedge_core.runner.hedge import HedgeSpec, HedgeTask
from hedge_core.runner.supervisor import Supervisor
from hedge_core.store import Store
from tests.support.inprocess_hedge import running_hedge, stop, until
from tests.support.xlive_env import PRICE, binance_spot_sim, bybit_perp_sim, two_venues

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # local venue simulators
CARRY = {"strategy": "carry", "notional": 1_000.0, "min_funding_rate": 0.00001, "min_net_carry": -1.0,
         "exit": {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                  "funding_unfavourable_intervals": None}}
XLIVE = {"venue": "binance", "perp_venue": "bybit"}  # the spot leg on Binance, the perp leg on Bybit





def ctx_funding(task) -> float:
    return task.driver.ctx.perp.funding


def bybit_trades(sim) -> list[dict]:
    return [e for e in sim.executions if e["execType"] == "Trade"]


def test_open_on_both_venues_funding_from_the_perp_venue_fees_from_each_close_both(tmp_path):
    async def go():
        async with two_venues() as tv:
            sup, task, store = await running_hedge(tmp_path, tv.adapter, CARRY, hedge_id="xl", **XLIVE,
                                                   records_poll_s=0.2, reconcile_s=0.5)
            try:
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, what="entry")
                # each leg on its own venue only: BTC bought on Binance spot, BTCUSDT shorted on Bybit linear
                btc = sum(tv.spot_sim.spot["BTC"])
                short = tv.perp_sim.positions["BTCUSDT"][0]
                assert btc > 0 and short == pytest.approx(-btc, abs=0.001)
                assert not [p for p in tv.spot_sim.positions.values() if p[0]]  # no perp on Binance
                assert "BTC" not in tv.perp_sim.coins  # no spot on Bybit
                # funding from the perp venue's records: a short receives qty x mark x rate (Bybit execFee < 0)
                tv.perp_sim.settle_funding("BTCUSDT", rate=0.0005)
                await until(lambda: task.driver.ctx.perp.funding != 0, what="funding booked")
                task.journal.flush()
                funding = store.read_table("funding_payments", hedge_id="xl")
                assert ctx_funding(task) == pytest.approx(abs(short) * PRICE * 0.0005, rel=1e-9)
                assert len(funding) == 1 and funding["venue"].iloc[0] == "bybit"
                assert funding["amount"].iloc[0] == pytest.approx(abs(short) * PRICE * 0.0005, rel=1e-9)
                # the continuous reconciliation reads each leg at its venue: journal == venues
                await until(lambda: (task.summary().get("reconcile") or {}).get("differences") == [],
                            what="a reconciliation pass")
                assert "reconcile" not in task.summary()["degraded"]
                await task.command(Command.STOP, "test: close both legs")
                await until(lambda: task.driver.ctx.state is State.COMPLETED, what="both legs closed")
                assert tv.perp_sim.positions["BTCUSDT"][0] == 0
                assert sum(tv.spot_sim.spot.get("BTC", [0.0, 0.0])) < 1e-5  # sold to the lot step
                fills = task.journal.fills("xl")
                spot, perp = fills[fills["leg"] == "spot"], fills[fills["leg"] == "perp"]
                assert set(spot["venue"]) == {"binance"} and set(perp["venue"]) == {"bybit"}
                # fees from each venue's records, checked by hand: spot 0.1 % of notional on Binance,
                # perp 0.055 % taker on Bybit
                assert len(spot) == len(tv.spot_sim.trades) == 2 and len(perp) == len(bybit_trades(tv.perp_sim)) == 2
                assert spot["fee"].sum() == pytest.approx(0.001 * (spot["qty"] * spot["price"]).sum(), rel=1e-9)
                assert spot["fee"].sum() == pytest.approx(sum(float(t["commission"]) for t in tv.spot_sim.trades), abs=1e-9)
                assert perp["fee"].sum() == pytest.approx(0.00055 * (perp["qty"] * perp["price"]).sum(), rel=1e-9)
                assert perp["fee"].sum() == pytest.approx(sum(float(e["execFee"]) for e in bybit_trades(tv.perp_sim)),
                                                          abs=1e-9)
                ctx = task.driver.ctx
                assert ctx.spot.fees + ctx.perp.fees == pytest.approx(spot["fee"].sum() + perp["fee"].sum(), abs=1e-8)
            finally:
                await stop(task, store)
    asyncio.run(go())


def test_perp_venue_refusing_the_hedge_unwinds_the_spot_leg_on_the_spot_venue(tmp_path):
    # Bybit's unified wallet holds 1 USDT: every perp order is refused with 110007 ("ab not enough for new
    # order", Bybit v5 error codes https://bybit-exchange.github.io/docs/v5/error) after the spot leg
    # filled on Binance -> after the retries the engine sells the spot back on Binance (two-leg rule)
    async def go():
        async with two_venues(perp_sim=bybit_perp_sim(usdt=1.0)) as tv:
            sup, task, store = await running_hedge(tmp_path, tv.adapter, CARRY, hedge_id="xl", **XLIVE)
            try:
                await until(lambda: len(tv.spot_sim.trades) >= 2, what="the spot leg unwound on binance")
                await until(lambda: not task.driver.ctx.pending, what="nothing pending")
                sides = [(t["market"], t["side"]) for t in tv.spot_sim.trades]
                assert sides[:2] == [("spot", "BUY"), ("spot", "SELL")]  # bought, then sold back on binance
                assert sum(tv.spot_sim.spot.get("BTC", [0.0, 0.0])) < 1e-5 and abs(task.driver.ctx.spot.qty) < 1e-5
                refused = [a for a in tv.perp_sim.answers if a[0] == "POST /v5/order/create"]
                hedge_retries = task.params.execution.hedge_retries
                assert len(refused) == hedge_retries + 1 and {a[2] for a in refused} == {110007}
                assert not tv.perp_sim.orders and not tv.perp_sim.positions.get("BTCUSDT", [0.0])[0]
                assert any("unwinding the spot leg" in a["message"] for a in task.summary()["alerts"])
                assert task.driver.ctx.state is not State.ERROR
            finally:
                await stop(task, store)
    asyncio.run(go())


def test_a_perp_answer_lost_in_a_crash_is_reconciled_at_each_venue_on_restart(tmp_path):
    # Bybit applies the perp order but its answer never comes (held 30 s; the runner "crashes" meanwhile):
    # the journal has the order's intent only. A new HedgeTask recovers: each order is looked up at ITS
    # venue, the Bybit order is finalised with its fills under bybit, nothing is re-sent, and the
    # recovery reports each venue's own holding (Binance BTC balance, Bybit signed position).
    async def go():
        async with two_venues() as tv:
            tv.perp_sim.inject("POST /v5/order/create", count=1, hang_after=30.0)
            sup, task, store = await running_hedge(tmp_path, tv.adapter, CARRY, hedge_id="xl", **XLIVE)
            try:
                await until(lambda: tv.perp_sim.orders, what="the perp order applied at bybit")
                await until(lambda: not tv.perp_sim.faults[0][1], what="fault consumed")
                task.task.cancel()  # the crash: the answer is never read
                try:
                    await task.task
                except asyncio.CancelledError:
                    pass
                link = next(iter(tv.perp_sim.orders.values())).link_id
                assert link not in set(task.journal.fills("xl")["client_order_id"])  # answer not journaled
                spec, params = task.spec, task.params
                runs = sup.journal.runs()
                row = runs[runs["hedge_id"] == "xl"].iloc[0]
                task2 = HedgeTask(spec, params, sup.journal, tv.adapter, sup._feed_factory, sup)
                rep = await task2.recover(str(row["state"]), row["started_at"])
                v = rep["venues"]
                assert v["bybit"]["leg"] == "perp" and link in v["bybit"]["finalised"]
                assert link not in v["binance"]["finalised"] and not v["binance"]["never_sent"]
                execs = [e["execId"] for e in bybit_trades(tv.perp_sim) if e["orderLinkId"] == link]
                assert execs and v["bybit"]["fills_added"] == [f"BTC/USDT:USDT#{e}" for e in execs]
                assert v["bybit"]["holding"] == pytest.approx(tv.perp_sim.positions["BTCUSDT"][0], abs=1e-12)
                assert v["binance"]["holding"] == pytest.approx(sum(tv.spot_sim.spot["BTC"]), abs=1e-12)
                assert tv.perp_sim.order_count(link) == 1  # found, never re-sent
                # the other venue was never asked about the Bybit order
                assert not [r for r in tv.spot_sim.requests if link in str(r[2])]
                fills = task2.journal.fills("xl")
                perp = fills[fills["leg"] == "perp"]
                assert set(perp["venue"]) == {"bybit"} and perp["qty"].sum() == pytest.approx(
                    abs(tv.perp_sim.positions["BTCUSDT"][0]), abs=1e-12)
                assert task2.driver.ctx.perp.qty == pytest.approx(tv.perp_sim.positions["BTCUSDT"][0], abs=1e-12)
                assert abs(task2.driver.ctx.delta) <= 0.001
            finally:
                sup.journal.close()
                store.close()
    asyncio.run(go())


def test_heartbeat_arms_the_cancel_all_countdown_on_the_perp_venue_and_disarms_it_when_done(tmp_path):
    # spot on Bybit, perp on Binance USD-M: the dead man's switch's exchange-side timer is Binance's
    # countdownCancelAll on the perp symbol ("Auto-Cancel All Open Orders (TRADE)",
    # https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/Auto-Cancel-All-Open-Orders);
    # the spot venue is never asked for one. After the hedge completes the next beat disarms it.
    from tests.support.xlive_env import reversed_venues

    async def go():
        async with reversed_venues() as rv:
            store = Store(tmp_path / "db.duckdb", hold=True)
            sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0, heartbeat_s=0.05)
            spec = HedgeSpec(hedge_id="xr", params_inline=CARRY, mode="live", venue="bybit", perp_venue="binance",
                             feed="ticker", poll_s=0.05)
            task = HedgeTask(spec, sup._params_for(spec), sup.journal, rv.adapter, sup._feed_factory, sup)
            await task.start_new(pd.Timestamp.now(tz="UTC"))
            sup.hedges["xr"] = task
            task.task = asyncio.create_task(task.run())
            sup.start_background()
            try:
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, what="entry")
                await until(lambda: "BTCUSDT" in rv.perp_sim.countdowns, what="countdown armed on binance")
                # 2 x dms_timeout_s = 1,200 s, sent in ms
                calls = [r[2] for r in rv.perp_sim.requests if r[1] == "/fapi/v1/countdownCancelAll"]
                assert calls and {(c["symbol"], c["countdownTime"]) for c in calls} == {("BTCUSDT", "1200000")}
                assert not [r for r in rv.spot_sim.requests if "order" in r[1] and "cancel-all" in r[1]]
                assert rv.spot_sim.positions == {} and sum(rv.perp_sim.spot.get("BTC", [0.0, 0.0])) == 0.0
                await task.command(Command.STOP, "test: close both legs")
                await until(lambda: task.driver.ctx.state is State.COMPLETED, what="both legs closed")
                await until(lambda: "BTCUSDT" not in rv.perp_sim.countdowns, what="countdown disarmed")
                last = [r[2] for r in rv.perp_sim.requests if r[1] == "/fapi/v1/countdownCancelAll"][-1]
                assert last["countdownTime"] == "0" and rv.perp_sim.countdown_cancels == []
            finally:
                sup.stopping = True
                for t in sup._bg:
                    t.cancel()
                await stop(task, store)
    asyncio.run(go())


def test_preflight_checks_each_leg_on_its_own_venue():
    # spot balance read on Binance (spot wallet), perp margin on Bybit (unified wallet); position mode,
    # margin mode and leverage set on Bybit only; a perp venue short of margin is named
    from hedge_core.errors import InvalidInput
    from hedge_core.params import store as param_store
    from hedge_core.runner.preflight import preflight

    params = param_store.parse(CARRY, where="test")

    async def go():
        async with two_venues(spot_sim=binance_spot_sim(usdt=7_000.0), perp_sim=bybit_perp_sim(usdt=3_000.0)) as tv:
            rep = await preflight(tv.adapter, spot_symbol="BTC/USDT", perp_symbol="BTC/USDT:USDT", params=params,
                                  amount=1_000.0, apply=True)
            assert rep.spot.venue == "binance" and rep.perp.venue == "bybit"
            assert rep.spot_free == pytest.approx(7_000.0) and rep.perp_free == pytest.approx(3_000.0)
            bybit_paths = {r[1] for r in tv.perp_sim.requests}
            assert {"/v5/position/set-leverage", "/v5/position/switch-mode"} <= bybit_paths
            # Binance futures untouched: its market list is loaded with the venue's markets, nothing else
            assert {r[1] for r in tv.spot_sim.requests if r[1].startswith("/fapi/")} <= {"/fapi/v1/exchangeInfo"}
            assert not [r for r in tv.spot_sim.requests if r[0] == "POST"]  # nothing set or sent on Binance
        async with two_venues(perp_sim=bybit_perp_sim(usdt=5.0)) as tv:
            with pytest.raises(InvalidInput) as err:
                await preflight(tv.adapter, spot_symbol="BTC/USDT", perp_symbol="BTC/USDT:USDT", params=params,
                                amount=1_000.0, apply=False)
            assert "venue bybit" in str(err.value) and "perp margin" in str(err.value)
            assert "no transfer between venues" in str(err.value)
    asyncio.run(go())


def test_live_two_venue_adapter_needs_keys_on_each_venue(tmp_path, monkeypatch):
    # the supervisor builds one keyed ccxt adapter per venue (each its own governor and registered secrets);
    # a venue without keys is refused naming the venue and the variables, before anything is built
    from hedge_core.errors import InvalidInput
    from hedge_core.exchange.routed import RoutedAdapter
    from hedge_core.logs import _scrub

    for k in [k for k in __import__("os").environ if k.startswith("HEDGE_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("HEDGE_BINANCE_API_KEY", "binKEY-0123456789abcdef")
    monkeypatch.setenv("HEDGE_BINANCE_API_SECRET", "binSECRET-0123456789abcdef")
    store = Store(tmp_path / "db.duckdb", hold=True)
    try:
        sup = Supervisor(store, tmp_path / "home")
        spec = HedgeSpec(hedge_id="k1", params_inline=CARRY, mode="live", venue="binance", perp_venue="bybit")
        with pytest.raises(InvalidInput) as err:
            sup._adapter_for(spec, confirm_live=True)
        msg = str(err.value)
        assert "perp leg on bybit" in msg and "HEDGE_BYBIT_API_KEY" in msg and "HEDGE_BYBIT_API_SECRET" in msg
        assert "binance" not in msg.split("missing for the", 1)[1]  # binance has its keys
        with pytest.raises(InvalidInput, match="confirm_live"):
            sup._adapter_for(spec, confirm_live=False)
        monkeypatch.setenv("HEDGE_BYBIT_API_KEY", "bybKEY-fedcba9876543210")
        monkeypatch.setenv("HEDGE_BYBIT_API_SECRET", "bybSECRET-fedcba9876543210")
        ad = sup._adapter_for(spec, confirm_live=True)
        try:
            assert isinstance(ad, RoutedAdapter) and (ad.spot.venue, ad.perp.venue) == ("binance", "bybit")
            assert ad.spot.credentials.api_key.startswith("binKEY") and ad.perp.credentials.api_key.startswith("bybKEY")
            assert ad.spot.governor is not ad.perp.governor
            assert (ad.spot.governor.venue, ad.perp.governor.venue) == ("binance", "bybit")
            for g in (ad.spot.governor, ad.perp.governor):
                assert id(g) in sup.ban_watch._watched  # each venue account's bans show in /health
            line = _scrub("keys binSECRET-0123456789abcdef bybSECRET-fedcba9876543210")
            assert "binSECRET" not in line and "bybSECRET" not in line
        finally:
            asyncio.run(ad.close())
        rec = sup._adapter_for(spec.model_copy(update={"mode": "recommend"}))
        try:
            assert rec.mode == "recommend" and isinstance(rec.market_data, RoutedAdapter)
        finally:
            asyncio.run(rec.close())
    finally:
        store.close()
