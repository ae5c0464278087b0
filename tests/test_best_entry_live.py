"""Best execution at each entry of a LIVE hedge (runner.best_entry_live): the perp venue re-chosen from FLAT.

Real ccxt against three local simulators (tests/support/live_env.py): the spot leg on Binance ("New Order
(TRADE)", "Account Trade List"), the perp leg on Bybit v5 or OKX v5, whichever book is better at the entry
(Bybit "Get Orderbook" GET /v5/market/orderbook, OKX "Get order book" GET /api/v5/market/books, sizes in
contracts x ctVal 0.01). Each venue is its own account with its own keys (tests/support/simfactory_bestlive.py,
built by the runner's adapter-factory hook as a deployment builds them from HEDGE_<VENUE>_API_*).

The hedge (the runner's own Supervisor/HedgeTask, in process) enters on bybit (its bid is better), receives
bybit's funding, exits after its holding time and re-arms (``exit.rearm``); meanwhile the books change so okx's
bid is better: the flat hedge moves its perp leg to okx (journaled first), enters there and receives okx's
funding. Each venue's fills, fees and funding are journaled under that venue and equal the venue's own records
(hand-checked); the continuous reconciliation after the move is clean per venue. Expected figures: a sell of
0.025 BTC (1,000 USDT / 40,000) walks the best bid; taker fees are the ccxt markets' (bybit 0.06 %, okx 0.05 %).
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from hedge_core.engine.events import Command
from hedge_core.engine.states import State
from hedge_core.runner.best_perp import TRIGGER
from hedge_core.runner.supervisor import ADAPTER_FACTORY_ENV
from tests.support.inprocess_hedge import running_hedge, stop, until
from tests.support.live_env import TEST_KEY, TEST_PASSPHRASE, TEST_SECRET, bybit_env, live_env, okx_env
from tests.support.live_env import test_ca as sim_ca
from tests.support.simfactory_bestlive import FACTORY, make_routed_adapter
from tests.support.xlive_env import PRICE, binance_spot_sim, bybit_perp_sim

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # local venue simulators

XC = {"strategy": "xcarry", "spot_venue": "binance", "perp_venue": "bybit", "perp_venues": ["okx"],
      "notional": 1_000.0, "min_funding_rate": 0.00001, "min_net_carry": -1.0,
      # out after 7.2 s in the market, then analysing again (re-armed): the next entry re-chooses the venue
      "exit": {"max_holding_hours": 0.002, "rearm": True, "profit_target_pct": None, "stop_loss_pct": None,
               "funding_unfavourable_intervals": None}}
START_CHOICE = {"rule": "best", "venue": "bybit", "symbol": "BTC/USDT:USDT", "side": "sell", "amount": 0.025,
                "taker_fee": 0.0006, "ranking": []}  # what runner.best_perp wrote at start (tests.test_live_best_perp_runner)
SWAP = "BTC-USDT-SWAP"


def books(bybit_sim, okx_sim, *, bybit_bid: float, okx_bid: float) -> None:
    """Deep books (5 BTC a side); OKX sizes in contracts of 0.01 BTC."""
    bybit_sim.order_books = {("linear", "BTCUSDT"): {"bids": [(bybit_bid, 5.0)], "asks": [(40_010.0, 5.0)]}}
    okx_sim.order_books = {SWAP: {"bids": [(okx_bid, 500.0)], "asks": [(40_010.0, 500.0)]}}


def bybit_trades(sim) -> list[dict]:
    return [e for e in sim.executions if e["execType"] == "Trade"]


@contextlib.asynccontextmanager
async def three_venues(tmp_path, monkeypatch, *, okx_usdt: float = 10_000.0):
    """Binance (spot), Bybit and OKX (perp) simulators in this loop; the runner's adapter-factory hook pointed at
    them (tests/support/simfactory_bestlive.py), as a runner process is."""
    from tests.support.okx_sim import OkxSim

    okx = OkxSim(api_key=TEST_KEY, secret=TEST_SECRET, passphrase=TEST_PASSPHRASE, usdt=okx_usdt)
    async with live_env(sim=binance_spot_sim()) as b, bybit_env(sim=bybit_perp_sim(rate=0.0005)) as y, \
            okx_env(sim=okx) as o:
        o.sim.set_price(SWAP, PRICE)
        o.sim.funding_rate[SWAP] = 0.0004
        ca = tmp_path / "ca.pem"
        sim_ca().cert_pem.write_to_path(str(ca))
        for k, v in {ADAPTER_FACTORY_ENV: FACTORY, "HEDGE_TEST_SIM_CA": str(ca), "HEDGE_TEST_SIM_KEY": TEST_KEY,
                     "HEDGE_TEST_SIM_SECRET": TEST_SECRET, "HEDGE_TEST_SIM_PORT": str(b.server.port),
                     "HEDGE_TEST_BYBIT_PORT": str(y.server.port), "HEDGE_TEST_OKX_PORT": str(o.server.port)}.items():
            monkeypatch.setenv(k, v)
        yield b, y, o


# re-rank at most every second (default 60 s): the 7.2 s holding's re-entry re-ranks
SPEC_KW = {"venue": "binance", "perp_venue": "bybit", "perp_venue_choice": START_CHOICE, "records_poll_s": 0.2,
           "reconcile_s": 0.5, "best_recheck_s": 1.0}


def _on_bybit() -> object:
    return make_routed_adapter(type("S", (), {"leg_venues": ("binance", "bybit")}))


def test_a_live_hedge_enters_on_one_venue_then_moves_flat_to_the_better_one_and_trades_there(tmp_path, monkeypatch):
    async def go():
        async with three_venues(tmp_path, monkeypatch) as (b, y, o):
            books(y.sim, o.sim, bybit_bid=39_990.0, okx_bid=39_900.0)  # bybit better: the hedge stays there
            sup, task, store = await running_hedge(tmp_path, _on_bybit(), XC, hedge_id="bl", **SPEC_KW)
            try:
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, what="entry on bybit")
                assert task.driver.ctx.perp.venue == "bybit" and y.sim.positions["BTCUSDT"][0] < 0
                y.sim.settle_funding("BTCUSDT", rate=0.0005)  # a short receives qty x mark x rate
                await until(lambda: task.driver.ctx.perp.funding > 0, what="bybit funding booked")
                books(y.sim, o.sim, bybit_bid=39_800.0, okx_bid=39_990.0)  # now okx's bid is better
                await until(lambda: task.driver.ctx.perp.venue == "okx"
                            and task.driver.ctx.state is State.MONITORING_POSITIONS, timeout=40,
                            what="exit, re-arm, move to okx, entry on okx")
                assert y.sim.positions["BTCUSDT"][0] == 0 and o.sim.positions[SWAP][0] < 0
                before = task.driver.ctx.perp.funding
                o.sim.settle_funding(SWAP, rate=0.0004)
                await until(lambda: task.driver.ctx.perp.funding > before, what="okx funding booked")
                task.last_reconcile = {}
                await until(lambda: (task.last_reconcile or {}).get("differences") == [], what="a clean pass on okx")
                per_venue = task.last_reconcile["venues"]
                await task.command(Command.STOP, "test: close both legs")
                await until(lambda: task.driver.ctx.state is State.COMPLETED, what="both legs closed")
                task.journal.flush()
                return (per_venue, task.journal.fills("bl"), store.read_table("funding_payments", hedge_id="bl"),
                        store.read_table("transitions", hedge_id="bl"), store.read_table("hedge_runs", hedge_id="bl"),
                        bybit_trades(y.sim), list(o.sim.fills), list(o.sim.bills), task.spec)
            finally:
                await stop(task, store, close_adapter=True)

    per_venue, fills, funding, tr, runs, by_trades, okx_fills, okx_bills, spec = asyncio.run(go())
    # the move: journaled once, from flat, with both venues' scores; the run row says okx (a restart builds it there)
    moves = tr[tr["trigger_name"] == TRIGGER]
    assert len(moves) == 1 and "at entry, from flat (was bybit): perp venue okx chosen" in moves["reason"].iloc[0]
    assert moves["from_state"].iloc[0] == moves["to_state"].iloc[0] == "ANALYZING_MARKET"
    assert spec.perp_venue == "okx" and runs["perp_venue"].iloc[-1] == "okx"
    rank = {s["venue"]: s for s in spec.perp_venue_choice["ranking"]}
    # sell 0.025 at the one bid: okx 39,990 x (1 - 0.05 %) beats bybit 39,800 x (1 - 0.06 %)
    assert rank["okx"]["net_quote"] == pytest.approx(0.025 * 39_990.0 * (1 - 0.0005), rel=1e-9)
    assert rank["bybit"]["net_quote"] == pytest.approx(0.025 * 39_800.0 * (1 - 0.0006), rel=1e-9)
    # each venue's fills and fees journaled under it, equal to that venue's own records
    perp = fills[fills["leg"] == "perp"]
    on_bybit, on_okx = perp[perp["venue"] == "bybit"], perp[perp["venue"] == "okx"]
    assert set(perp["venue"]) == {"bybit", "okx"} and set(fills.loc[fills["leg"] == "spot", "venue"]) == {"binance"}
    assert len(on_bybit) == len(by_trades) >= 2  # open and close on bybit (a holding may cycle: every fill)
    assert on_bybit["fee"].sum() == pytest.approx(sum(float(e["execFee"]) for e in by_trades), rel=1e-9)
    assert len(on_okx) == len(okx_fills) >= 2  # open on okx, close at the STOP
    assert on_okx["fee"].sum() == pytest.approx(sum(-float(f["fee"]) for f in okx_fills), rel=1e-9)
    # funding from each venue's income, on that venue
    assert sorted(funding["venue"]) == ["bybit", "okx"]
    fb = funding[funding["venue"] == "bybit"]["amount"].iloc[0]
    fo = funding[funding["venue"] == "okx"]["amount"].iloc[0]
    assert fb == pytest.approx(abs(on_bybit["qty"].iloc[0]) * PRICE * 0.0005, rel=1e-9)
    okx_income = [float(x["balChg"]) for x in okx_bills if x.get("type") == "8"]
    assert okx_income and fo == pytest.approx(okx_income[0], rel=1e-9)
    # the pass after the move: each venue clean (spot on binance, perp on okx)
    assert {v: r["differences"] for v, r in per_venue.items()} == {"binance": [], "okx": []}


def test_a_venue_short_of_margin_is_not_moved_to_and_the_entry_stays(tmp_path, monkeypatch):
    """okx's bid is better but its wallet holds 10 USDT, short of a 1,000 USDT entry at the set's minimum
    leverage: okx is ranked last with why, nothing is journaled as a move, and the hedge enters on bybit."""
    async def go():
        async with three_venues(tmp_path, monkeypatch, okx_usdt=10.0) as (b, y, o):
            books(y.sim, o.sim, bybit_bid=39_800.0, okx_bid=39_990.0)
            sup, task, store = await running_hedge(tmp_path, _on_bybit(), XC, hedge_id="bm", **SPEC_KW)
            try:
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, what="entry")
                task.journal.flush()
                return (task.spec.perp_venue, task.driver.ctx.perp.venue, y.sim.positions["BTCUSDT"][0],
                        list(o.sim.orders), store.read_table("transitions", hedge_id="bm"))
            finally:
                await stop(task, store, close_adapter=True)

    venue, leg, short, okx_orders, tr = asyncio.run(go())
    assert venue == leg == "bybit" and short < 0 and okx_orders == []
    assert not (tr["trigger_name"] == TRIGGER).any()


def test_a_recommend_hedge_moves_its_flat_perp_leg_and_sends_nothing(tmp_path, monkeypatch):
    """Recommend reads both venues and sends nothing: okx's book is better at the first update, so the flat hedge
    moves its perp leg to okx (journaled, the RecommendAdapter now reads okx) without an order on any venue."""
    from hedge_core.exchange.recommend import RecommendAdapter

    async def go():
        async with three_venues(tmp_path, monkeypatch) as (b, y, o):
            books(y.sim, o.sim, bybit_bid=39_800.0, okx_bid=39_990.0)
            rec = RecommendAdapter(_on_bybit())
            sup, task, store = await running_hedge(tmp_path, rec, XC, hedge_id="br", mode="recommend", **SPEC_KW)
            try:
                await until(lambda: task.spec.perp_venue == "okx", what="the move to okx")
                await until(lambda: task.driver.ctx.perp.venue == "okx", what="the engine's perp leg on okx")
                task.journal.flush()
                return (rec, store.read_table("transitions", hedge_id="br"), list(b.sim.orders), list(y.sim.orders),
                        list(o.sim.orders))
            finally:
                await stop(task, store, close_adapter=True)

    rec, tr, b_orders, y_orders, o_orders = asyncio.run(go())
    assert rec.venue == "binance+okx" and rec.market_data.perp.venue == "okx"
    assert (tr["trigger_name"] == TRIGGER).sum() == 1
    assert b_orders == y_orders == o_orders == []  # recommend never sends


def test_the_venue_left_holding_a_position_the_journal_does_not_stops_the_move(tmp_path, monkeypatch, caplog):
    """bybit holds a short of 0.01 BTC the hedge's journal does not (an order placed by hand): moving the flat
    hedge away would leave it unwatched, so the move stops (logged, nothing journaled) and the hedge stays on bybit."""
    async def go():
        async with three_venues(tmp_path, monkeypatch) as (b, y, o):
            books(y.sim, o.sim, bybit_bid=39_800.0, okx_bid=39_990.0)
            y.sim.positions["BTCUSDT"] = [-0.01, PRICE]
            sup, task, store = await running_hedge(tmp_path, _on_bybit(), XC, hedge_id="bp", **SPEC_KW)
            try:
                await until(lambda: task.updates >= 3, what="three updates")
                task.journal.flush()
                return task.spec.perp_venue, task.driver.ctx.perp.venue, list(o.sim.orders), \
                    store.read_table("transitions", hedge_id="bp")
            finally:
                await stop(task, store, close_adapter=True)

    caplog.set_level("WARNING", logger="hedge_core.runner.best_entry")
    venue, leg, okx_orders, tr = asyncio.run(go())
    assert venue == leg == "bybit" and okx_orders == []
    assert not (tr["trigger_name"] == TRIGGER).any()
    assert any("perp venue not moved at entry" in r.getMessage()
               and str(getattr(r, "why", "")).startswith("bybit still holds -0.01") for r in caplog.records), caplog.text


def test_spot_on_bybit_perp_moves_from_binance_usdm_to_okx_at_a_flat_entry(tmp_path, monkeypatch):
    """The same move with the perp leg starting on Binance USD-M ("Order Book" GET /fapi/v1/depth; taker 0.05 %)
    and the spot leg on Bybit: entered on binance, exited and re-armed, okx's bid becomes better, the flat hedge moves
    to okx and enters there; binance's round trip stays under binance (its trade list and commissions). The
    exchange-side cancel-all timer follows the perp leg: armed on binance (per symbol), disarmed there at the first
    beat after the move and armed on okx (account-wide), disarmed there once the hedge completed."""
    xc = {**XC, "spot_venue": "bybit", "perp_venue": "binance", "perp_venues": ["okx"]}
    choice = {**START_CHOICE, "venue": "binance", "taker_fee": 0.0005}

    async def go():
        from tests.support.okx_sim import OkxSim

        okx = OkxSim(api_key=TEST_KEY, secret=TEST_SECRET, passphrase=TEST_PASSPHRASE)
        perp_b = binance_spot_sim(usdt=0.0)  # its USD-M wallet only
        async with bybit_env(sim=bybit_perp_sim()) as y, live_env(sim=perp_b) as b, okx_env(sim=okx) as o:
            o.sim.set_price(SWAP, PRICE)
            ca = tmp_path / "ca.pem"
            sim_ca().cert_pem.write_to_path(str(ca))
            for k, v in {ADAPTER_FACTORY_ENV: FACTORY, "HEDGE_TEST_SIM_CA": str(ca), "HEDGE_TEST_SIM_KEY": TEST_KEY,
                         "HEDGE_TEST_SIM_SECRET": TEST_SECRET, "HEDGE_TEST_SIM_PORT": str(b.server.port),
                         "HEDGE_TEST_BYBIT_PORT": str(y.server.port), "HEDGE_TEST_OKX_PORT": str(o.server.port)}.items():
                monkeypatch.setenv(k, v)
            b.sim.order_books = {("fapi", "BTCUSDT"): {"bids": [(39_990.0, 5.0)], "asks": [(40_010.0, 5.0)]}}
            o.sim.order_books = {SWAP: {"bids": [(39_900.0, 500.0)], "asks": [(40_010.0, 500.0)]}}
            ad = make_routed_adapter(type("S", (), {"leg_venues": ("bybit", "binance")}))
            sup, task, store = await running_hedge(tmp_path, ad, xc, hedge_id="bu", venue="bybit", perp_venue="binance",
                                                   perp_venue_choice=choice, records_poll_s=0.2, reconcile_s=0.5,
                                                   best_recheck_s=1.0)
            try:
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, what="entry on binance")
                assert task.driver.ctx.perp.venue == "binance" and b.sim.position("BTCUSDT") < 0
                # the supervisor's beat arms the perp venue's timer: Binance USD-M countdownCancelAll, per symbol
                await sup._arm_countdown(task)
                assert "BTCUSDT" in b.sim.countdowns and o.sim.cancel_all_deadline is None
                b.sim.order_books = {("fapi", "BTCUSDT"): {"bids": [(39_800.0, 5.0)], "asks": [(40_010.0, 5.0)]}}
                o.sim.order_books = {SWAP: {"bids": [(39_990.0, 500.0)], "asks": [(40_010.0, 500.0)]}}
                await until(lambda: task.driver.ctx.perp.venue == "okx"
                            and task.driver.ctx.state is State.MONITORING_POSITIONS, timeout=40,
                            what="exit, re-arm, move to okx, entry on okx")
                # the next beat: the timer on the venue left (binance) disarmed there (countdownTime 0), OKX's
                # account-wide "Cancel All After" armed (2 x 600 s, held at OKX's 120 s)
                await sup._arm_countdown(task)
                cd = [p for _m, path, p in b.sim.requests if path == "/fapi/v1/countdownCancelAll"]
                assert "BTCUSDT" not in b.sim.countdowns and cd[-1]["countdownTime"] == "0"
                okx_cd = [p for _m, path, p in o.sim.requests if path == "/api/v5/trade/cancel-all-after"]
                assert [p["timeOut"] for p in okx_cd] == ["120"] and o.sim.cancel_all_deadline is not None
                assert set(task.armed_venues) == {"okx"} and task.armed_symbol == "BTC/USDT:USDT"
                task.last_reconcile = {}
                await until(lambda: (task.last_reconcile or {}).get("differences") == [], what="a clean pass on okx")
                per_venue = task.last_reconcile["venues"]
                await task.command(Command.STOP, "test: close both legs")
                await until(lambda: task.driver.ctx.state is State.COMPLETED, what="both legs closed")
                for _ in range(40):  # completed: OKX's timer disarmed (after its one request per second)
                    await sup._disarm_countdown(task)
                    if task.armed_symbol is None:
                        break
                    await asyncio.sleep(0.25)
                assert task.armed_symbol is None and o.sim.cancel_all_deadline is None
                task.journal.flush()
                return (per_venue, task.journal.fills("bu"), [t for t in b.sim.trades if t["market"] == "fapi"],
                        list(o.sim.fills), b.sim.position("BTCUSDT"), o.sim.positions[SWAP][0])
            finally:
                await stop(task, store, close_adapter=True)

    per_venue, fills, usdm, okx_fills, b_pos, o_pos = asyncio.run(go())
    assert b_pos == 0 and o_pos == 0
    perp = fills[fills["leg"] == "perp"]
    on_b, on_o = perp[perp["venue"] == "binance"], perp[perp["venue"] == "okx"]
    # open and close on each (the 7.2 s holding may cycle again before the STOP): every fill journaled, on its venue
    assert len(on_b) == len(usdm) >= 2 and len(on_o) == len(okx_fills) >= 2
    assert on_b["fee"].sum() == pytest.approx(sum(float(t["commission"]) for t in usdm), rel=1e-9)
    assert on_o["fee"].sum() == pytest.approx(sum(-float(f["fee"]) for f in okx_fills), rel=1e-9)
    assert set(fills.loc[fills["leg"] == "spot", "venue"]) == {"bybit"}
    assert {v: r["differences"] for v, r in per_venue.items()} == {"bybit": [], "okx": []}


def _count(sim, path: str) -> int:
    return sum(1 for r in list(sim.requests) if r[1] == path)


def test_no_venue_is_read_while_no_entry_is_near(tmp_path, monkeypatch):
    """A flat hedge whose strategy would not enter (min_funding_rate 1 % per interval: bybit pays 0.05 %, and not
    even a zero perp fee lets it through) ranks nothing: no book (Bybit "Get Orderbook", OKX "Get order book") and
    no OKX wallet ("Get balance") read, however many polls. Before: both books and wallets at every poll."""
    xc = {**XC, "min_funding_rate": 0.01}

    async def go():
        async with three_venues(tmp_path, monkeypatch) as (b, y, o):
            books(y.sim, o.sim, bybit_bid=39_800.0, okx_bid=39_990.0)  # okx better: a ranking would move
            sup, task, store = await running_hedge(tmp_path, _on_bybit(), xc, hedge_id="bn",
                                                   **{**SPEC_KW, "best_recheck_s": 0.0})
            try:
                await until(lambda: task.updates >= 30, what="30 polls")
                return (task.driver.ctx.state, task.driver.ctx.perp.venue, _count(y.sim, "/v5/market/orderbook"),
                        _count(o.sim, "/api/v5/market/books"), _count(o.sim, "/api/v5/account/balance"))
            finally:
                await stop(task, store, close_adapter=True)

    state, venue, bybit_books, okx_books, okx_wallet = asyncio.run(go())
    assert state is State.ANALYZING_MARKET and venue == "bybit"
    assert (bybit_books, okx_books, okx_wallet) == (0, 0, 0)


def test_the_venues_are_re_ranked_at_most_every_best_recheck_s(tmp_path, monkeypatch):
    """Default ``best_recheck_s`` (60 s): the first entry ranks once (one book and one wallet read per venue), the
    re-entry 7.2 s later is not re-ranked although okx's bid became better: the hedge re-enters on bybit, and okx's
    book and wallet were read once in all."""
    kw = {k: v for k, v in SPEC_KW.items() if k != "best_recheck_s"}

    async def go():
        async with three_venues(tmp_path, monkeypatch) as (b, y, o):
            books(y.sim, o.sim, bybit_bid=39_990.0, okx_bid=39_900.0)  # bybit better: enters there
            sup, task, store = await running_hedge(tmp_path, _on_bybit(), XC, hedge_id="bt", **kw)
            try:
                assert task.spec.best_recheck_s == 60.0
                await until(lambda: task.driver.ctx.state is State.MONITORING_POSITIONS, what="entry on bybit")
                books(y.sim, o.sim, bybit_bid=39_800.0, okx_bid=39_990.0)  # okx better from now on
                await until(lambda: len(bybit_trades(y.sim)) >= 3 and not task.driver.ctx.pending, timeout=40,
                            what="exit and re-entry on bybit")
                return (task.driver.ctx.perp.venue, _count(o.sim, "/api/v5/market/books"),
                        _count(o.sim, "/api/v5/account/balance"), _count(y.sim, "/v5/market/orderbook"),
                        store.read_table("transitions", hedge_id="bt"))
            finally:
                await stop(task, store, close_adapter=True)

    venue, okx_books, okx_wallet, bybit_books, tr = asyncio.run(go())
    assert venue == "bybit" and not (tr["trigger_name"] == TRIGGER).any()
    assert (okx_books, okx_wallet, bybit_books) == (1, 1, 1)


def test_best_recheck_s_out_of_range_is_refused_naming_the_field():
    from pydantic import ValidationError

    from hedge_core.runner.hedge_spec import HedgeSpec

    for bad in (-1.0, float("nan"), 86_401.0):
        with pytest.raises(ValidationError, match=r"best_recheck_s=.*expected seconds in \[0, 86400\]"):
            HedgeSpec(hedge_id="x", best_recheck_s=bad)
    assert HedgeSpec(hedge_id="x").best_recheck_s == 60.0 and HedgeSpec(hedge_id="x", best_recheck_s=0).best_recheck_s == 0.0
