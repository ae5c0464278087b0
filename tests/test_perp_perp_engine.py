"""The engine with TWO perp legs on two venues (issue #15: "or two perp legs"): the first leg a perp on
venue A (paper "bybit"), the second a perp on venue B (paper "okx"), both BTC/USDT:USDT.

Checked against hand figures: funding ``-qty x mark x rate`` per leg from its own venue's settlement
(docs ARCHITECTURE "Units and conventions"), the isolated liquidation price ``entry x (1 - (1/L - 0.004))``
of a symbol without a bracket table, and each venue's own records (positions, funding payments).
"""

from __future__ import annotations

import asyncio
import math

import pandas as pd
import pytest

from hedge_core.engine import State, new_hedge
from hedge_core.engine.actions import PlaceOrder, SetLeverage, SetMarginMode
from hedge_core.engine.context import evolve
from hedge_core.engine.driver import DriverHooks
from hedge_core.engine.events import Command, FundingSettled, MarketUpdate, OperatorCommand
from hedge_core.engine.guards import market_guards
from hedge_core.engine.ledger import apply_fill
from hedge_core.engine.perp_legs import pair_defers_exit
from hedge_core.engine.step import step
from hedge_core.errors import InvalidInput
from hedge_core.params.models import CarryParams, ExitParams, GuardParams, RebalanceParams
from hedge_core.types import Instrument, MarketKind, Side
from tests.support.perp_pair import PERP, T0, pair_driver, pair_steps, perp_venue, run_pair


def params(**kw: object) -> CarryParams:
    base = {"notional": 8_000.0, "min_funding_rate": 0.0001, "min_net_carry": -1.0, "borrow_apr": 0.5,
            "exit": ExitParams(max_holding_hours=None, profit_target_pct=None, stop_loss_pct=None),
            "rebalance": RebalanceParams(drift_threshold=0.05, cooldown_s=0)}
    return CarryParams(**{**base, **kw})


def foo_perp(venue: str) -> Instrument:
    # a symbol without a committed bracket table: the flat isolated rule applies (hand-computable)
    return Instrument("FOO/USDT:USDT", venue, MarketKind.PERP, "FOO", "USDT", 0.01, 0.001, 0.001, 5.0)


def held(first_qty: float, second_qty: float, price: float = 100.0, leverage: float = 5.0):
    """A hedge of two FOO perps holding ``first_qty`` on bybit and ``second_qty`` on okx, entered at ``price``."""
    ctx = new_hedge("h", "carry", foo_perp("bybit"), foo_perp("okx"), T0)
    s = apply_fill(ctx.spot, Side.BUY if first_qty > 0 else Side.SELL, abs(first_qty), price)
    p = apply_fill(ctx.perp, Side.BUY if second_qty > 0 else Side.SELL, abs(second_qty), price) if second_qty \
        else ctx.perp
    return evolve(ctx, spot=s, perp=p, leverage=leverage, state=State.MONITORING_POSITIONS)


def test_each_perp_leg_books_its_own_venues_funding_by_hand():
    ctx = held(2.0, -2.0)
    ctx, out = step(ctx, FundingSettled(T0 + pd.Timedelta(hours=8), 0.0001, 101.0, leg="spot"), params())
    assert ctx.spot.funding == pytest.approx(-2.0 * 101.0 * 0.0001) and ctx.perp.funding == 0.0  # -0.0202 paid
    ctx, out = step(ctx, FundingSettled(T0 + pd.Timedelta(hours=8), 0.0005, 101.0), params())  # leg "perp"
    assert ctx.perp.funding == pytest.approx(2.0 * 101.0 * 0.0005)  # +0.101 received by the short
    assert ctx.spot.funding == pytest.approx(-0.0202)
    # the venue's booked amount wins over the book's figure, on the leg it names
    ctx, _ = step(ctx, FundingSettled(T0 + pd.Timedelta(hours=16), 0.0001, 101.0, amount=-0.03, leg="spot"), params())
    assert ctx.spot.funding == pytest.approx(-0.0502)
    # both legs' funding is in the hedge's PnL: 0.101 - 0.0502 (prices unchanged: no price PnL, no fees)
    assert ctx.pnl == pytest.approx(0.101 - 0.0502)


def test_funding_on_a_spot_first_leg_or_an_unknown_leg_is_refused():
    with pytest.raises(InvalidInput, match="FundingSettled.leg"):
        FundingSettled(T0, 0.0001, 100.0, leg="first")
    spot_first = new_hedge("h", "carry", Instrument("FOO/USDT", "bybit", MarketKind.SPOT, "FOO", "USDT", 0.01, 0.001,
                                                    0.001, 5.0), foo_perp("okx"), T0)
    with pytest.raises(InvalidInput, match="settles no funding"):
        step(spot_first, FundingSettled(T0, 0.0001, 100.0, leg="spot"), params())


def test_first_perp_leg_is_marked_at_its_own_mark_and_pays_no_borrow_interest():
    ctx = held(-2.0, 2.0)  # first leg SHORT: a perp short borrows nothing
    ctx = evolve(ctx, last_market_ts=T0)
    m = MarketUpdate(T0 + pd.Timedelta(hours=24), spot=110.0, perp=110.0, mark=109.0, spot_mark=108.0)
    ctx, _ = step(ctx, m, params())
    assert ctx.spot.interest == 0.0  # borrow_apr 0.5 would have charged a spot short
    assert ctx.spot.unrealized == pytest.approx(-2.0 * (108.0 - 100.0))  # at ITS mark 108, not the price 110
    assert ctx.perp.unrealized == pytest.approx(2.0 * (109.0 - 100.0))
    assert ctx.spot_mark_price == 108.0


def test_liquidation_guard_watches_the_first_perp_leg_at_its_own_mark():
    # long 1 FOO at 100 on bybit at 5x: liquidation at 100 x (1 - (1/5 - 0.004)) = 80.4 (flat rule);
    # the okx short of the same size at 100 liquidates at 119.6
    ctx = evolve(held(1.0, -1.0), spot_price=84.0, spot_mark_price=84.0, perp_price=100.0, mark_price=100.0)
    g = GuardParams(liq_distance_close=0.05, liq_distance_reduce=0.10)
    (v,) = [v for v in market_guards(ctx, T0, g) if v.name.startswith("liq_")]
    # first leg: (84 - 80.4) / 84 = 0.042857 <= 0.05 -> flatten; the second's (119.6 - 100) / 100 = 0.196 is safe
    assert v.name == "liq_distance_close" and v.action == "flatten"
    assert v.numbers["distance"] == pytest.approx((84.0 - 80.4) / 84.0)
    assert v.numbers["liq_price"] == pytest.approx(80.4) and v.numbers["first_leg"] == 1.0
    assert "first leg (bybit)" in v.reason
    # the first leg alone (second not hedged yet) is watched too
    alone = evolve(held(1.0, 0.0), spot_price=88.0, spot_mark_price=88.0, perp_price=100.0)
    (v,) = [v for v in market_guards(alone, T0, g) if v.name.startswith("liq_")]
    assert v.name == "liq_distance_reduce" and v.numbers["distance"] == pytest.approx((88.0 - 80.4) / 88.0)
    # the second leg nearer: its figures, as for any hedge
    near2 = evolve(held(1.0, -1.0), spot_price=110.0, spot_mark_price=110.0, perp_price=115.0, mark_price=115.0)
    (v,) = [v for v in market_guards(near2, T0, g) if v.name.startswith("liq_")]
    assert "first_leg" not in v.numbers and v.numbers["liq_price"] == pytest.approx(119.6)


def test_a_perp_pair_opens_on_both_venues_settles_each_venues_funding_and_closes_reduce_only():
    a, b = perp_venue("bybit", 10_000.0), perp_venue("okx", 10_000.0)
    drv = pair_driver(a, b, params())
    asyncio.run(run_pair(drv, a, b, pair_steps(hours=30, rate_b=0.0005), rate_a=0.0001))
    c = drv.ctx
    assert c.state is State.MONITORING_POSITIONS
    # carry on B's positive funding: long the first leg (bybit), short the second (okx), same size
    pa, = a.core.positions_view()
    pb, = b.core.positions_view()
    assert pa.qty == pytest.approx(c.spot.qty) and pb.qty == pytest.approx(c.perp.qty)
    assert c.spot.qty > 0 and c.perp.qty == pytest.approx(-c.spot.qty)
    # leverage and margin mode set on BOTH venues at entry
    settings = {(type(x).__name__, x.venue) for x in drv.actions if isinstance(x, (SetLeverage, SetMarginMode))}
    assert settings == {("SetLeverage", "bybit"), ("SetLeverage", "okx"), ("SetMarginMode", "bybit"),
                        ("SetMarginMode", "okx")}
    # two settlements (16:00, 00:00) on each venue; each leg holds ITS venue's records, by hand too
    fa, fb = a.core.funding_payments, b.core.funding_payments
    assert len(fa) == len(fb) == 2
    assert c.spot.funding == pytest.approx(sum(f.amount for f in fa), rel=1e-12)
    assert c.perp.funding == pytest.approx(sum(f.amount for f in fb), rel=1e-12)
    for f in fa:
        assert f.rate == 0.0001 and f.amount == pytest.approx(-c.spot.qty * f.mark_price * 0.0001)
    for f in fb:
        assert f.rate == 0.0005 and f.amount == pytest.approx(-c.perp.qty * f.mark_price * 0.0005)
    # stop: both legs close reduce-only, each on its venue
    t = c.last_ts + pd.Timedelta(minutes=1)
    asyncio.run(drv.feed(OperatorCommand(t, Command.STOP)))
    closes = [x for x in drv.actions if isinstance(x, PlaceOrder) and x.purpose == "close"]
    assert {(x.leg, x.venue, x.request.reduce_only) for x in closes} == {("spot", "bybit", True), ("perp", "okx", True)}
    assert drv.ctx.state is State.ANALYZING_MARKET or drv.ctx.is_flat
    assert not a.core.positions_view() and not b.core.positions_view()


def test_second_venue_refusing_the_hedge_unwinds_the_first_perp_leg_on_its_venue():
    a, b = perp_venue("bybit", 10_000.0), perp_venue("okx", 0.0)  # okx's futures wallet is empty
    alerts: list = []
    drv = pair_driver(a, b, params(), hooks=DriverHooks(on_alert=lambda h, al: alerts.append(al)))
    asyncio.run(run_pair(drv, a, b, pair_steps(hours=12)))
    c = drv.ctx
    first = [o for o in a.core.orders.values() if o.symbol == PERP]
    assert [str(o.side) for o in first][:2] == ["buy", "sell"]  # opened, then unwound on bybit
    assert first[1].reduce_only
    assert not a.core.positions_view() and abs(c.spot.qty) <= 1e-12
    assert not b.core.positions_view() and not b.core.orders  # the refusals created nothing on okx
    tries = [x for x in drv.actions if isinstance(x, PlaceOrder) and x.leg == "perp"]
    assert len(tries) == params().execution.hedge_retries + 1 and {x.venue for x in tries} == {"okx"}
    assert any("unwinding the spot leg" in al.message for al in alerts)
    assert c.state is not State.ERROR and not math.isnan(c.pnl)


@pytest.mark.parametrize("first_reports_first", [True, False])
def test_unfavourable_funding_counts_the_pairs_net_not_one_leg(first_reports_first):
    # long 2 on bybit, short 2 on okx, mark 100: per settlement the first leg books -2 x 100 x rate_a and
    # the second +2 x 100 x rate_b (hand figures below); the counter follows the NET at each settlement time
    def settle(ctx, h, rate_a, rate_b):
        t = T0 + pd.Timedelta(hours=h)
        evs = [FundingSettled(t, rate_a, 100.0, leg="spot"), FundingSettled(t, rate_b, 100.0)]
        for ev in (evs if first_reports_first else evs[::-1]):
            ctx, _ = step(ctx, ev, params())
        return ctx

    ctx = settle(held(2.0, -2.0), 8, 0.0002, 0.0001)  # -0.04 + 0.02 = -0.02 < 0: unfavourable
    assert ctx.unfavourable_funding == 1
    ctx = settle(ctx, 16, 0.0002, 0.0001)
    assert ctx.unfavourable_funding == 2
    ctx = settle(ctx, 24, 0.0001, 0.0003)  # the second leg pays nothing, the first pays -0.02, net +0.04
    assert ctx.unfavourable_funding == 0
    ctx = settle(ctx, 32, -0.0001, -0.00005)  # first receives +0.02, second pays -0.01: net +0.01, still fine
    assert ctx.unfavourable_funding == 0
    assert ctx.spot.funding == pytest.approx(-0.04 - 0.04 - 0.02 + 0.02)
    assert ctx.perp.funding == pytest.approx(0.02 + 0.02 + 0.06 - 0.01)


@pytest.mark.parametrize(("first_in", "rate_a", "second_in", "rate_b", "defers"), [
    # long 2 on bybit, short 2 on okx, mark 100; payment -qty x mark x rate per leg whose settlement is within 1 h
    (True, 0.0005, True, 0.0001, False),  # first pays -0.10, second receives +0.02: net -0.08 -> exit now
    (True, -0.0003, False, 0.0001, True),  # only the first settles within the hour, the long receives +0.06
    (True, -0.0001, True, 0.0002, True),  # both receive: +0.02 + 0.04
    (False, 0.0005, True, 0.0001, True),  # the first's payment is outside the window: second's +0.02 only
    (False, -0.0003, False, 0.0001, False),  # nothing settles within the hour
])
def test_a_soft_exit_waits_for_what_both_legs_receive_within_the_window(first_in, rate_a, second_in, rate_b,
                                                                       defers):
    ts = T0 + pd.Timedelta(hours=2)
    ex = ExitParams(max_holding_hours=1, profit_target_pct=None, stop_loss_pct=None, trailing_giveback=None,
                    funding_unfavourable_intervals=None, defer_within_s_of_funding=3600)
    p = params(exit=ex, guards=GuardParams(funding_cost_apr_limit=None))
    ctx = evolve(held(2.0, -2.0), entered_at=T0, target_spot_qty=2.0)  # on target: no rebalance in the way
    soon, later = ts + pd.Timedelta(minutes=30), ts + pd.Timedelta(hours=4)
    m = MarketUpdate(ts, spot=100.0, perp=100.0, mark=100.0, spot_mark=100.0, funding_rate=rate_b,
                     next_funding_ts=soon if second_in else later, spot_funding_rate=rate_a,
                     spot_next_funding_ts=soon if first_in else later)
    out_ctx, _ = step(ctx, m, p)
    assert (out_ctx.state is State.MONITORING_POSITIONS) is defers, out_ctx.state
    if not defers:
        assert "max holding" in out_ctx.exit_reason
    # a stop is never deferred, whatever settles
    assert not pair_defers_exit(ctx, ts, "stop loss: pnl -1", m, ex)


def test_funding_cost_guard_prices_what_the_pair_pays_net():
    # 8h rates annualise x 1095; the guard's limit is 10 % APR
    g = GuardParams(funding_cost_apr_limit=0.10)
    ctx = evolve(held(-1.0, 1.0), spot_price=100.0, perp_price=100.0, mark_price=100.0, spot_mark_price=100.0,
                 spot_funding_rate=0.0005, last_funding_rate=0.0001)
    # first leg SHORT at 0.0005 receives 0.0005 x 1095 = 54.75 %, second LONG at 0.0001 pays 10.95 %: quiet
    assert not [v for v in market_guards(ctx, T0, g) if v.name == "funding_cost"]
    # reversed rates: the short receives 10.95 %, the long pays 54.75 %: net pays 43.8 % APR >= 10 %
    ctx = evolve(ctx, spot_funding_rate=0.0001, last_funding_rate=0.0005)
    (v,) = [v for v in market_guards(ctx, T0, g) if v.name == "funding_cost"]
    assert v.numbers["pay_apr"] == pytest.approx((0.0005 - 0.0001) * 3 * 365)


def test_a_liquidation_on_the_first_venue_is_booked_on_the_first_leg():
    # 5x: the long on bybit liquidates near 40,000 x (1 - 0.196) (bybit's table); a one-bar crash to 29,000 hits
    # it on the venue before the engine can act; the driver polls bybit's own trades and books the venue's
    # liquidation on the FIRST leg (an external fill), so the ledger matches each venue's position
    from hedge_core.engine.replay import build_steps
    from hedge_core.params.models import LeverageParams

    idx = pd.date_range(T0, periods=16, freq="1h", tz="UTC")
    close = [40_000.0] * 12 + [29_000.0] * 4
    bars = pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": 1_000.0}, index=idx)
    funding = pd.DataFrame({"funding_rate": [0.0005]}, index=pd.DatetimeIndex([T0 + pd.Timedelta(hours=8)]))
    steps = build_steps(bars, bars, venue="b", spot_symbol="BTC/USDT", perp_symbol=PERP, mark=bars, funding=funding)
    a, b = perp_venue("bybit", 10_000.0), perp_venue("okx", 10_000.0)
    alerts: list = []
    p = params(leverage=LeverageParams(min_leverage=5.0, max_leverage=5.0))
    drv = pair_driver(a, b, p, hooks=DriverHooks(on_alert=lambda h, al: alerts.append(al)))
    asyncio.run(run_pair(drv, a, b, steps[:12]))
    assert drv.ctx.spot.qty > 0 and drv.ctx.state is State.MONITORING_POSITIONS and drv.ctx.leverage == 5.0
    asyncio.run(run_pair(drv, a, b, steps[12:13]))
    assert a.core.liquidations  # bybit liquidated the long on the crash bar
    assert any("external spot fill" in al.message for al in alerts)
    liq = [f for f in a.core.fills if f.client_order_id.startswith("liq-")]
    assert liq and drv.ctx.spot.fees >= sum(f.fee for f in liq) - 1e-9
    asyncio.run(run_pair(drv, a, b, steps[13:]))
    c = drv.ctx
    assert c.spot.qty == pytest.approx(sum(x.qty for x in a.core.positions_view()), abs=1e-12)
    assert c.perp.qty == pytest.approx(sum(x.qty for x in b.core.positions_view()), abs=1e-12)


def test_the_first_perp_legs_record_trade_ids_carry_its_venue():
    # both legs trade ONE unified symbol on two venues, each numbering its trades its own way: the same venue trade
    # id at both must make two journal keys (the first leg's with its venue), and a spot first leg keeps the bare id
    from hedge_core.engine.driver import pair_first_venue, record_trade_id
    from hedge_core.types import Fill

    f = Fill("7", "o1", "", "FOO/USDT:USDT", Side.BUY, 1.0, 100.0, 0.05, T0)
    pair = held(1.0, -1.0)  # first leg on bybit, second on okx
    first, second = (record_trade_id(f, pair_first_venue(pair, leg)) for leg in ("spot", "perp"))
    assert (first, second) == ("bybit:FOO/USDT:USDT#7", "FOO/USDT:USDT#7")
    spot_first = new_hedge("h", "carry", Instrument("FOO/USDT", "bybit", MarketKind.SPOT, "FOO", "USDT", 0.01, 0.001,
                                                    0.001, 5.0), foo_perp("okx"), T0)
    assert pair_first_venue(spot_first, "spot") is None and record_trade_id(f) == "FOO/USDT:USDT#7"
