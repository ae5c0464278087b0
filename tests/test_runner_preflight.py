"""The preflight (runner.preflight) against the Binance simulator through REAL ccxt: position mode
(hedge-mode account: -4061 on a one-way order; switched, or refused with -4068), margin mode and
leverage set, insufficient margin, too small, too large, a stale ticker; and a paper-venue check."""

from __future__ import annotations

import asyncio
import re

import pytest

from hedge_core.errors import ExchangeError
from hedge_core.params.models import CarryParams, GuardParams
from hedge_core.runner.preflight import preflight
from hedge_core.types import OrderRequest, PositionMode, Side
from tests.support.binance_sim import BinanceSim
from tests.support.live_env import TEST_KEY, TEST_SECRET, live_env

pytestmark = pytest.mark.timeout(120)
SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"


def sim(**kw) -> BinanceSim:
    s = BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET, **kw)
    s.set_price("BTCUSDT", 40_000.0)
    return s


def run(coro):
    return asyncio.run(coro)


def check(s: BinanceSim, amount: float | None, *, apply: bool = False, params: CarryParams | None = None):
    async def go():
        async with live_env(sim=s) as env:
            return await preflight(env.adapter, spot_symbol=SPOT, perp_symbol=PERP, params=params or CarryParams(),
                                   amount=amount, apply=apply)
    return run(go())


def test_ok_sets_margin_mode_and_leverage_at_start_and_reads_only_in_a_dry_run():
    s = sim()
    rep = check(s, 500.0)
    assert s.margin_type["BTCUSDT"] == "CROSSED" and s.leverage["BTCUSDT"] == 20  # dry run: nothing changed
    assert not [r for r in s.requests if r[0] == "POST"]
    assert rep.position_mode == "one-way" and rep.bounds is not None
    assert rep.bounds.min_amount == pytest.approx(121.2)  # 0.003 BTC x 40,400 (see test_engine_sizing_bounds)
    rep = check(s, 500.0, apply=True)
    assert s.margin_type["BTCUSDT"] == "ISOLATED" and s.leverage["BTCUSDT"] == int(rep.leverage) == 1
    assert not any(r[1].endswith("/order") for r in s.requests)  # no order was sent
    assert any("size: 500.00 USDT within 121.20" in ln for ln in rep.lines())


def test_hedge_mode_account_is_switched_to_one_way_at_start():
    s = sim()
    s.dual_side = True

    async def one_way_order_refused():
        async with live_env(sim=s) as env:
            with pytest.raises(ExchangeError, match="-4061"):
                await env.adapter.create_order(OrderRequest(PERP, Side.SELL, 0.003, "pf-4061"))
    run(one_way_order_refused())  # what the hedge's perp order would meet without the preflight
    rep = check(s, 500.0)
    assert rep.position_mode.startswith("hedge") and s.dual_side  # dry run: read, not changed
    rep = check(s, 500.0, apply=True)
    assert s.dual_side is False and rep.position_mode.startswith("one-way (set; was hedge")

    async def read_back():
        async with live_env(sim=s) as env:
            return await env.adapter.fetch_position_mode()
    assert run(read_back()) is PositionMode.ONE_WAY


def test_hedge_mode_with_open_positions_is_refused_with_the_reason():
    s = sim()
    s.dual_side = True
    s.positions[("BTCUSDT", "LONG")] = [0.01, 40_000.0]
    for apply in (False, True):
        with pytest.raises(Exception) as e:
            check(s, 500.0, apply=apply)
        assert getattr(e.value, "field", None) == "position_mode", e.value
        assert "-4061" in str(e.value)
    assert s.dual_side  # unchanged


def test_insufficient_margin_too_small_and_too_large():
    s = sim(futures_wallet=300.0)
    with pytest.raises(Exception) as e:
        check(s, 500.0)
    # 300 / (1.01 x (1 + 2 x 0.0005)) = 300 / 1.01101 = 296.73 at 1x: the free margin binds
    assert e.value.field == "amount" and "296.73" in str(e.value) and "perp margin 300.00 USDT free" in str(e.value)
    s2 = sim()
    with pytest.raises(Exception) as e:
        check(s2, 100.0)
    assert "smallest hedgeable at price 40,000.00: 121.20" in str(e.value)
    s3 = sim(spot_balances={"USDT": 1e9}, futures_wallet=1e9)
    with pytest.raises(Exception) as e:  # issue #12 (c): 50,000,000 USDT against the position limit
        check(s3, 50_000_000.0, params=CarryParams(guards=GuardParams(max_position_notional=1e7)))
    assert "largest bound by position limit max_position_notional" in str(e.value)


def test_stale_ticker_is_refused_before_sizing():
    s = sim()
    s.stale_ticker("BTCUSDT", 2 * 3_600_000, price=30_000.0)  # issue #12 (a): 2 h old, 30,000
    with pytest.raises(Exception) as e:
        check(s, 1_000.0)
    assert e.value.field == "max_ticker_age_s"
    # the age is measured when the preflight runs: 7,200 s plus the time the (loaded) machine took since
    age = float(re.search(r"ticker is ([\d,.]+) s old", str(e.value)).group(1).replace(",", ""))
    assert 7_200.0 <= age < 7_260.0, str(e.value)
    s.stale_ticker("BTCUSDT", None)
    assert check(s, 1_000.0).spot_price == 40_000.0


def test_paper_venue_instruments_and_balances():
    from hedge_core.exchange.paper import PaperExchange
    from hedge_core.exchange.paper.core import PaperCore

    ex = PaperExchange(PaperCore(balances={"spot": {"USDT": 2_000.0}, "perp": {"USDT": 1_000.0}}))

    async def go(amount):
        return await preflight(ex, spot_symbol=SPOT, perp_symbol=PERP, params=CarryParams(), amount=amount,
                               prices=(40_000.0, 40_000.0, "test"), apply=True)
    rep = run(go(900.0))
    assert rep.spot_free == 2_000.0 and rep.perp_free == 1_000.0 and ex.core.position_mode is PositionMode.ONE_WAY
    with pytest.raises(Exception, match="perp margin 1,000.00 USDT free"):
        run(go(1_500.0))


def test_a_hedge_held_by_the_position_limit_says_so_in_one_sentence():
    """Issue #12 (c): a hedge held in OPENING_SPOT_POSITION by position_limit had only a guard row.
    The engine holds the entry (order_guard) and held_sentence names the guard, the numbers, the way out."""
    import pandas as pd

    from hedge_core.engine.context import new_hedge
    from hedge_core.engine.events import MarketUpdate
    from hedge_core.engine.states import State
    from hedge_core.engine.step import step
    from hedge_core.exchange.paper.core import default_instruments
    from hedge_core.runner.held import held_sentence

    spot, _e, perp, _ = default_instruments()
    params = CarryParams(notional=50_000_000.0, min_funding_rate=0.00001, min_net_carry=-1.0,
                         guards=GuardParams(max_position_notional=1e7))
    t = pd.Timestamp("2024-01-01T09:00Z")
    ctx = new_hedge("h50m", "carry", spot, perp, t)
    assert held_sentence(ctx, params) is None
    ctx, actions = step(ctx, MarketUpdate(t, 40_000.0, 40_000.0, funding_rate=0.0005, next_funding_rate=0.0005), params)
    assert ctx.state is State.OPENING_SPOT_POSITION and "position_limit" in ctx.active_guards
    assert not [a for a in actions if type(a).__name__ == "PlaceOrder"]
    s = held_sentence(ctx, params)
    # 50,000,000 / 40,000 = 1,250 BTC = 50,000,000.00 USDT > 10,000,000
    assert s.startswith("Held in OPENING_SPOT_POSITION by the position_limit guard")
    assert "1250 (50,000,000.00 USDT)" in s and "max_position_notional 10,000,000 USDT" in s and "stop the hedge" in s
