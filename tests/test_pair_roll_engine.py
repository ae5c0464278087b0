"""The calendar roll of a hedge with TWO perp legs (``legs = "perp_perp"``): the SECOND leg moves between its
venue's perpetual and that venue's dated future (docs/calendar-roll.md, "Two perp legs"); the first leg stays
on its perpetual. Engine and rule only (pure); every figure by hand.

The pair here: long 0.25 BTC perp on bybit (first leg), short 0.25 BTC perp on okx (second leg), both entered at
40,000 with no fee; okx lists a quarterly 90 days out.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from hedge_core.engine import FundingSettled, OrderUpdate, OrderUpdateKind, State, Timer, new_hedge, step
from hedge_core.engine.calendar_roll import RollAction
from hedge_core.engine.context import evolve
from hedge_core.engine.guards import market_guards, pair_pay_apr
from hedge_core.engine.ledger import apply_fill
from hedge_core.engine.roll_step import ROLL_CLOSE, ROLL_OPEN, RollRequest, restore
from hedge_core.params.models import CarryParams, ExitParams, GuardParams, RollParams
from hedge_core.runner.reconcile import rebuild_context
from hedge_core.runner.roll_watch import decide
from tests.support.engine_steps import INST, T0, H, filled, fill_of, mkt, places, run
from hedge_core.types import Side

A = replace(INST["BTC/USDT:USDT"], venue="bybit")  # the first leg's perpetual
B = replace(INST["BTC/USDT:USDT"], venue="okx")  # the second leg's perpetual
FUT = replace(B, symbol="BTC/USDT:USDT-240330")  # okx's quarterly (dated future of the second venue)
FUT_A = replace(A, symbol="BTC/USDT:USDT-240330")  # bybit's: the first leg never rolls
EXPIRY = T0 + pd.Timedelta(days=90)


def params(**kw) -> CarryParams:
    base = {"notional": 10_000.0, "min_funding_rate": 0.0001, "min_net_carry": -1.0,
            "exit": ExitParams(max_holding_hours=None, profit_target_pct=None, stop_loss_pct=None,
                               funding_unfavourable_intervals=None),
            "roll": RollParams(enabled=True)}
    return CarryParams(**{**base, **kw})


def pair(first_qty: float = 0.25, second_qty: float = -0.25, px: float = 40_000.0):
    ctx = new_hedge("h", "carry", A, B, T0)
    s = apply_fill(ctx.spot, Side.BUY if first_qty > 0 else Side.SELL, abs(first_qty), px)
    p = apply_fill(ctx.perp, Side.BUY if second_qty > 0 else Side.SELL, abs(second_qty), px)
    return evolve(ctx, spot=s, perp=p, state=State.MONITORING_POSITIONS, spot_price=px, perp_price=px,
                  mark_price=px, spot_mark_price=px, leverage=3.0, last_ts=T0,
                  target_spot_qty=first_qty, target_ratio=1.0)


def _rolled(p, price=40_400.0, fee_open=5.05, fee_close=5.0):
    """The second leg rolled onto okx's quarterly: open SELL 0.25 at ``price`` then close the perp BUY 0.25 at
    40,000 (reduce-only). Returns the context after each of the two fills and the two orders."""
    ctx = pair()
    t = T0 + H
    ctx, acts = step(ctx, RollRequest(t, FUT, price, "basis pays more"), p)
    [o] = places(acts)
    half, acts = run(ctx, p, [fill_of(o, t, price=price, fee=fee_open),
                              OrderUpdate(t, o.request.client_order_id, OrderUpdateKind.CLOSED, filled=0.25)])
    [c] = places(acts)
    done, _ = run(half, p, [fill_of(c, t, price=40_000.0, fee=fee_close),
                            OrderUpdate(t, c.request.client_order_id, OrderUpdateKind.CLOSED, filled=0.25)])
    return half, done, o, c


def test_the_second_leg_rolls_onto_its_venues_quarterly_and_the_first_leg_is_untouched():
    """By hand: open 0.25 at 40,400 on okx's quarterly, fee 0.25 x 40,400 x 0.05 % = 5.05; close 0.25 on okx's
    perp at 40,000 (entry 40,000: realised 0), fee 5.00. Between the two: delta 0.25 - 0.25 - 0.25 = -0.25 BTC.
    After: first leg +0.25 on bybit's perp unchanged, second -0.25 on okx's quarterly, delta 0, PnL -10.05."""
    p = params()
    before = pair()
    half, done, o, c = _rolled(p)
    assert (o.leg, o.venue, o.purpose, o.request.symbol, o.request.side, o.request.qty, o.request.reduce_only) == (
        "roll", "okx", ROLL_OPEN, FUT.symbol, Side.SELL, 0.25, False)
    assert o.request.client_order_id.startswith("hr")  # leg letter r: routed to the SECOND venue by the pair
    assert (c.leg, c.venue, c.purpose, c.request.symbol, c.request.side, c.request.reduce_only) == (
        "perp", "okx", ROLL_CLOSE, B.symbol, Side.BUY, True)
    assert half.delta == pytest.approx(-0.25) and half.roll_leg.qty == pytest.approx(-0.25)
    assert done.roll_leg is None and (done.perp.symbol, done.perp.venue) == (FUT.symbol, "okx")
    assert done.perp.qty == pytest.approx(-0.25) and done.perp.fees == pytest.approx(10.05)
    assert done.spot == before.spot  # the first leg: not an order, not a figure changed
    assert done.delta == pytest.approx(0.0) and done.state is State.MONITORING_POSITIONS
    assert done.pnl == pytest.approx(before.pnl - 10.05)


def test_the_first_leg_never_rolls():
    """A roll request onto the FIRST venue's future is refused (not a contract of the second leg's venue)."""
    ctx, acts = step(pair(), RollRequest(T0 + H, FUT_A, 40_400.0, "first leg"), params())
    assert places(acts) == [] and ctx.roll_leg is None
    assert any("calendar roll refused" in a.message and "bybit" in a.message for a in acts if hasattr(a, "message"))


def test_funding_with_the_second_leg_on_the_future_each_venue_on_its_own_leg():
    """Rate 0.01 %/8 h on both venues, mark 40,000. First leg (long 0.25 on bybit): -0.25 x 40,000 x 0.0001 =
    -1.00 (paid). Second leg half-rolled (-0.25 on okx's perp, -0.25 on the quarterly): +1.00 on the perp's 0.25
    only. Wholly on the quarterly: an engine-computed okx settlement books nothing; okx's own record of a
    payment the perp made before the roll finished (+1.00) is booked on the leg, not counted as a settlement.
    The pair's net per settlement instant: -1.00 + 1.00 = 0 (not unfavourable), then -1.00 alone (one)."""
    p = params()
    half, done, _o, _c = _rolled(p)
    t1, t2 = T0 + 8 * H, T0 + 16 * H
    ctx, _ = step(half, FundingSettled(t1, 0.0001, 40_000.0, leg="spot"), p)
    assert ctx.spot.funding == pytest.approx(-1.0) and ctx.perp.funding == 0.0 and ctx.roll_leg.funding == 0.0
    assert ctx.unfavourable_funding == 1  # so far at t1: the first leg's -1.00
    ctx, _ = step(ctx, FundingSettled(t1, 0.0001, 40_000.0), p)  # okx: the perp part of the leg
    assert ctx.perp.funding == pytest.approx(1.0) and ctx.roll_leg.funding == 0.0
    assert ctx.spot.funding == pytest.approx(-1.0) and ctx.unfavourable_funding == 0  # net 0 at t1
    ctx, _ = step(done, FundingSettled(t1, 0.0001, 40_000.0), p)  # on the future: nothing
    assert ctx.perp.funding == 0.0 and ctx.spot.funding == 0.0
    ctx, _ = step(ctx, FundingSettled(t1, 0.0001, 40_000.0, leg="spot"), p)
    assert ctx.spot.funding == pytest.approx(-1.0) and ctx.perp.funding == 0.0 and ctx.unfavourable_funding == 1
    ctx, _ = step(ctx, FundingSettled(t2, 0.0001, 40_000.0, amount=1.0), p)  # a late okx record: booked only
    assert ctx.perp.funding == pytest.approx(1.0) and ctx.unfavourable_funding == 1
    assert ctx.pnl == pytest.approx(done.pnl - 1.0 + 1.0)


def test_the_pairs_funding_cost_counts_the_second_leg_only_on_its_perpetual():
    """First leg long 0.25 paying 0.03 %/8 h = 32.85 %/yr; second short 0.25 receiving 0.05 %/8 h = 54.75 %/yr.
    Both on their perps: the pair pays 0 net. The second on its quarterly: the pair pays the first leg's
    32.85 %/yr (>= a 30 % limit: flatten)."""
    _half, done, _o, _c = _rolled(params())
    on_perps = evolve(pair(), spot_funding_rate=0.0003, next_funding_rate=0.0005)
    rolled = evolve(done, spot_funding_rate=0.0003, next_funding_rate=0.0005)
    assert pair_pay_apr(on_perps, 0.0005) == 0.0
    assert pair_pay_apr(rolled, 0.0005) == pytest.approx(0.0003 * 3 * 365)
    g = GuardParams(funding_cost_apr_limit=0.30)
    assert not any(v.name == "funding_cost" for v in market_guards(on_perps, T0 + 2 * H, g))
    assert any(v.name == "funding_cost" for v in market_guards(rolled, T0 + 2 * H, g))


@pytest.mark.parametrize("second_qty, action", [(-0.25, RollAction.HOLD), (0.25, RollAction.TO_FUTURE)])
def test_the_rule_for_the_second_leg_long_or_short(second_qty, action):
    """okx perp 40,000 (the basis reference of a pair: the rolling leg's own venue's perpetual), quarterly
    42,000 90 days out: basis 5 % = 0.05 x 365 / 90 = 20.278 %/yr; okx funding 0.05 %/8 h = 54.75 %/yr; taker
    0.05 %: cost (0.25 x 40,000 + 0.25 x 42,000) x 0.0005 / 10,000 x 365 / 90 = 0.4157 %/yr; margin 2 %.
    SHORT second leg: perp carry +54.75 % (it receives), future carry +20.28 %: HOLD on the perp.
    LONG second leg: perp carry -54.75 % (it pays), future carry -20.28 %: 34.47 % > 2.42 %: TO_FUTURE."""
    ctx = pair(-second_qty, second_qty)
    mu = mkt(T0, 40_000.0, rate=0.0005)
    got = decide(ctx, mu, [(FUT.symbol, EXPIRY)], 42_000.0, 0.0005, 0.02, 2.0)
    assert got is not None
    d, to = got
    assert d.action is action and to == FUT.symbol
    sign = -1.0 if second_qty > 0 else 1.0
    assert d.perp_carry_apr == pytest.approx(sign * 0.0005 * 3 * 365)
    assert d.future_carry_apr == pytest.approx(sign * 0.05 * 365 / 90)
    assert d.cost_apr == pytest.approx((0.25 * 40_000 + 0.25 * 42_000) * 0.0005 / 10_000 * 365 / 90)


def _fills(rows):
    cols = ["ts", "trade_id", "leg", "symbol", "side", "qty", "price", "fee", "fee_currency", "slippage"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows], columns=cols)


def test_a_half_done_pair_roll_rebuilt_from_the_journal_completes_and_keeps_each_venues_funding():
    """The journal of a pair killed between the roll's two orders: bybit perp +0.25 (first leg), okx perp -0.25,
    okx quarterly -0.25 (the roll's open). Funding rows: bybit -1.00 (first leg), okx +1.00 (second). Rebuilt:
    the first leg +0.25 with its -1.00; the second -0.25 on the perp with +1.00 and -0.25 on the quarterly
    (target -0.25); the first timer closes okx's perp, the leg ends on the quarterly, delta 0."""
    p = params()
    fresh = new_hedge("h", "carry", A, B, T0)
    fills = _fills([(T0, "a", "spot", A.symbol, "buy", 0.25, 40_000.0, 5.0, "USDT", 0.0),
                    (T0, "b", "perp", B.symbol, "sell", 0.25, 40_000.0, 5.0, "USDT", 0.0),
                    (T0 + H, "c", "roll", FUT.symbol, "sell", 0.25, 40_400.0, 5.05, "USDT", 0.0)])
    funding = pd.DataFrame({"amount": [-1.0, 1.0], "venue": ["bybit", "okx"]})
    rows = [{"symbol": FUT.symbol, "side": "sell", "qty": 0.25, "reduce_only": False, "leg": "roll"}]
    ctx = rebuild_context(fresh, fills, funding, ["hr000050-x"], State.MONITORING_POSITIONS,
                          {"spot": 40_000.0, "perp": 40_000.0}, T0 + 2 * H)
    second = funding[funding["venue"] != A.venue]  # runner.hedge_recovery: the second venue's rows only
    ctx = restore(ctx, fills, second, {FUT.symbol: FUT}, rows, {B.symbol: 40_000.0, FUT.symbol: 40_400.0})
    assert (ctx.spot.symbol, ctx.spot.venue, ctx.spot.qty, ctx.spot.funding) == (A.symbol, "bybit", 0.25, -1.0)
    assert (ctx.perp.symbol, ctx.perp.qty, ctx.perp.funding) == (B.symbol, pytest.approx(-0.25), 1.0)
    assert (ctx.roll_leg.symbol, ctx.roll_leg.qty, ctx.roll_qty) == (FUT.symbol, pytest.approx(-0.25),
                                                                     pytest.approx(-0.25))
    ctx, acts = step(ctx, Timer(T0 + 2 * H), p)
    [c] = places(acts)
    assert (c.venue, c.purpose, c.request.symbol, c.request.side, c.request.reduce_only) == (
        "okx", ROLL_CLOSE, B.symbol, Side.BUY, True)
    ctx, _ = filled(ctx, p, c, T0 + 2 * H)
    assert ctx.perp.symbol == FUT.symbol and ctx.delta == pytest.approx(0.0) and ctx.spot.qty == 0.25
    # fees 5 + 5 + 5.05 (this close at fee 0), funding -1 + 1
    assert ctx.pnl == pytest.approx(-15.05)
