"""runner.countdown: the exchange-side cancel-all timers armed venue by venue (docs/runner.md, "Exchange-side
cancel-all timer").

Stand-in venue adapters that count their timer requests, with each venue's documented scope:
OKX "Cancel All After" (https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-cancel-all-after): ONE
timer for the account, "Rate Limit: 1 request per second" (the stand-in refuses a faster call, as the OKX
simulator answers 50011); Binance USD-M "Auto-Cancel All Open Orders" (POST /fapi/v1/countdownCancelAll): one
timer per symbol. The legs are joined by the runner's own RoutedAdapter / PerpPairAdapter.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from hedge_core.engine.states import State
from hedge_core.errors import RateLimited
from hedge_core.exchange.routed import RoutedAdapter
from hedge_core.exchange.routed_pair import PerpPairAdapter
from hedge_core.runner.countdown import Countdowns, timer_legs
from hedge_core.types import TradingMode

PERP = "BTC/USDT:USDT"


class Venue:
    """A venue's adapter with a cancel-all timer (``scope``: ``account`` as OKX, ``symbol`` as Binance USD-M)."""

    def __init__(self, venue: str, scope: str) -> None:
        self.venue, self.scope, self.mode = venue, scope, TradingMode.LIVE
        self.calls: list[tuple[str, float]] = []
        self.last: float | None = None

    def cancel_all_scope(self, symbol: str) -> str:
        return self.scope

    async def arm_cancel_all_after(self, symbol: str, seconds: float) -> bool:
        now = time.monotonic()
        if self.scope == "account" and self.last is not None and now - self.last < 1.0:
            raise RateLimited("okx: 50011 Rate limit reached (1 request per second)")
        self.last = now
        self.calls.append((symbol, seconds))
        return True


class Spot:
    """A spot venue without a timer (Bybit / Binance spot through this adapter)."""

    def __init__(self, venue: str) -> None:
        self.venue, self.mode = venue, TradingMode.LIVE


def hedge(hid: str, adapter, legs: tuple[str, str]):
    """A stand-in HedgeTask with what runner.countdown reads; in the market until its state is set."""
    ctx = SimpleNamespace(state=State.MONITORING_POSITIONS)
    return SimpleNamespace(hedge_id=hid, raw_adapter=adapter, armed_symbol=None, driver=SimpleNamespace(ctx=ctx),
                           spec=SimpleNamespace(perp_symbol=PERP, leg_venues=legs))


def test_a_pair_with_okx_first_and_another_okx_hedge_share_one_throttle_and_binance_is_armed_every_beat():
    okx_a, okx_b, binance = Venue("okx", "account"), Venue("okx", "account"), Venue("binance", "symbol")
    pair = hedge("pair", PerpPairAdapter(okx_a, binance), ("okx", "binance"))  # FIRST leg on OKX
    single = hedge("single", RoutedAdapter(Spot("bybit"), okx_b), ("bybit", "okx"))  # same OKX account
    assert set(timer_legs(pair)) == {"okx", "binance"} and set(timer_legs(single)) == {"okx"}
    sup = SimpleNamespace(dms_timeout_s=30.0, hedges={"pair": pair, "single": single})
    cd = Countdowns(sup)

    async def beats():
        for _ in range(3):  # three beats within a second, both hedges each beat
            await cd.arm(pair)
            await cd.arm(single)

    asyncio.run(beats())  # before: the pair throttled as "binance", the single hedge as "okx": two OKX requests
    assert len(okx_a.calls) + len(okx_b.calls) == 1  # ONE request per second on the OKX account
    assert binance.calls == [(PERP, 60.0)] * 3  # the per-symbol timer re-armed at every beat
    assert set(pair.armed_venues) == {"okx", "binance"} and set(single.armed_venues) == {"okx"}


def test_a_completed_pair_leaves_okx_armed_for_the_other_hedge_and_disarms_binance():
    okx_a, okx_b, binance = Venue("okx", "account"), Venue("okx", "account"), Venue("binance", "symbol")
    pair = hedge("pair", PerpPairAdapter(okx_a, binance), ("okx", "binance"))
    single = hedge("single", RoutedAdapter(Spot("bybit"), okx_b), ("bybit", "okx"))
    sup = SimpleNamespace(dms_timeout_s=30.0, hedges={"pair": pair, "single": single})
    cd = Countdowns(sup)

    async def go():
        await cd.arm(pair)
        pair.driver.ctx.state = State.COMPLETED
        await cd.disarm(pair)

    asyncio.run(go())
    assert binance.calls[-1] == (PERP, 0)  # nobody else on binance's BTCUSDT timer
    assert okx_a.calls == [(PERP, 60.0)]  # not disarmed: the single hedge on the same OKX account is covered
    assert pair.armed_symbol is None and pair.armed_venues == {}


def test_a_perp_leg_moved_away_keeps_the_timer_when_another_hedge_trades_the_symbol_there():
    binance, okx, other_binance = Venue("binance", "symbol"), Venue("okx", "account"), Venue("binance", "symbol")
    routed = RoutedAdapter(Spot("bybit"), binance)
    moved = hedge("moved", routed, ("bybit", "binance"))
    other = hedge("other", RoutedAdapter(Spot("bybit"), other_binance), ("bybit", "binance"))
    sup = SimpleNamespace(dms_timeout_s=30.0, hedges={"moved": moved, "other": other})
    cd = Countdowns(sup)

    async def go():
        await cd.arm(moved)
        routed.perp, routed.perp_venue = okx, "okx"  # what runner.best_entry_live does at a flat entry
        moved.spec.leg_venues = ("bybit", "okx")
        await cd.arm(moved)

    asyncio.run(go())
    assert binance.calls == [(PERP, 60.0)]  # covered by the other hedge's BTCUSDT: not disarmed
    assert okx.calls == [(PERP, 60.0)] and set(moved.armed_venues) == {"okx"}


def test_one_venue_failing_never_keeps_the_other_from_its_arm():
    okx, binance = Venue("okx", "account"), Venue("binance", "symbol")
    pair = hedge("pair", PerpPairAdapter(okx, binance), ("okx", "binance"))
    cd = Countdowns(SimpleNamespace(dms_timeout_s=30.0, hedges={"pair": pair}))
    okx.last = time.monotonic()  # OKX refuses (its one request per second)
    with pytest.raises(RateLimited):
        asyncio.run(cd.arm(pair))
    assert binance.calls == [(PERP, 60.0)] and set(pair.armed_venues) == {"binance"}
