"""The calendar roll inside the engine (hedge_core.engine.roll_step): a hedge's perp leg moves to a dated future
and back through step(); fills are booked to the leg of their symbol, the money of the closed contract moves
with the leg, a half-done roll rebuilt from the journal completes, failures revert. Figures by hand."""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import pytest

from hedge_core.engine import Command, FundingSettled, OperatorCommand, OrderUpdate, OrderUpdateKind, State, Timer, step
from hedge_core.engine.roll_step import ROLL_CLOSE, ROLL_OPEN, ROLL_REVERT, RollRequest, is_dated, restore
from hedge_core.errors import InvalidInput
from hedge_core.runner.reconcile import rebuild_context
from hedge_core.types import Side
from tests.support.engine_steps import INST, T0, H, filled, fill_of, hedged, mkt, places, run

PERP = INST["BTC/USDT:USDT"]
FUT = replace(PERP, symbol="BTC/USDT:USDT-260327")


def test_dated_symbols_are_told_from_perpetuals():
    assert is_dated("BTC/USDT:USDT-260327") and is_dated("ETH/USDT:USDT-251226")
    assert not is_dated("BTC/USDT:USDT") and not is_dated("BTC/USDT")


def _rolled_open(fee=5.05, price=40_400.0):
    """A hedge long 0.25 BTC spot / short 0.25 BTC perp at 40,000 (notional 10,000) asked to roll to FUT at
    40,400; the roll's first order (open on the future) filled."""
    ctx, p = hedged()
    t = T0 + H
    ctx, acts = step(ctx, RollRequest(t, FUT, price, "basis pays more"), p)
    [o] = places(acts)
    assert (o.leg, o.purpose, o.request.symbol, o.request.side, o.request.qty, o.request.reduce_only) == (
        "roll", ROLL_OPEN, FUT.symbol, Side.SELL, 0.25, False)
    assert o.request.client_order_id.startswith("hr")
    ctx, acts = run(ctx, p, [fill_of(o, t, price=price, fee=fee),
                             OrderUpdate(t, o.request.client_order_id, OrderUpdateKind.CLOSED, filled=0.25)])
    return ctx, p, acts


def test_a_roll_opens_the_future_then_closes_the_perp_and_the_leg_ends_on_the_future():
    """By hand: entry fees none (fills at fee 0); the roll: open 0.25 at 40,400, fee 0.25 x 40,400 x 0.05 % =
    5.05 USDT; close 0.25 on the perp at 40,000 (entry 40,000: realised 0), fee 0.25 x 40,000 x 0.05 % = 5.00.
    Between the two the hedge holds both: delta 0.25 - 0.25 - 0.25 = -0.25 BTC. After: spot 0.25, the leg
    -0.25 on the future, delta 0, the hedge's PnL lower by exactly the 10.05 USDT of fees."""
    ctx0, _ = hedged()
    ctx, p, acts = _rolled_open()
    assert ctx.roll_leg is not None and ctx.roll_leg.qty == pytest.approx(-0.25)
    assert ctx.perp.symbol == PERP.symbol and ctx.perp.qty == pytest.approx(-0.25)
    assert ctx.delta == pytest.approx(-0.25)
    [c] = places(acts)
    assert (c.leg, c.purpose, c.request.symbol, c.request.side, c.request.qty, c.request.reduce_only) == (
        "perp", ROLL_CLOSE, PERP.symbol, Side.BUY, 0.25, True)
    t = T0 + H
    ctx, acts = run(ctx, p, [fill_of(c, t, price=40_000.0, fee=5.0),
                             OrderUpdate(t, c.request.client_order_id, OrderUpdateKind.CLOSED, filled=0.25)])
    assert places(acts) == [] and ctx.roll_leg is None and ctx.roll_qty == 0.0
    assert (ctx.perp.symbol, ctx.perp.name) == (FUT.symbol, "perp")
    assert ctx.perp.qty == pytest.approx(-0.25) and ctx.perp.avg_entry == 40_400.0
    assert ctx.delta == pytest.approx(0.0) and ctx.state is State.MONITORING_POSITIONS
    assert ctx.perp.fees == pytest.approx(10.05)
    assert ctx.pnl == pytest.approx(ctx0.pnl - 10.05)
    # later market updates price the leg with the future's price: no drift, no order
    ctx, acts = step(ctx, mkt(T0 + 2 * H, 40_000.0, perp=40_400.0), p)
    assert places(acts) == [] and ctx.state is State.MONITORING_POSITIONS


def test_funding_books_only_while_the_leg_is_on_the_perpetual():
    """On the perp: -(-0.25) x 40,000 x 0.0001 = +1.00 USDT; half-rolled (both held): on the perp's 0.25 only
    (+1.00); on the future: nothing."""
    ctx, p = hedged()
    ctx, _ = step(ctx, FundingSettled(T0 + H, 0.0001, 40_000.0), p)
    assert ctx.perp.funding == pytest.approx(1.0)
    ctx, p, acts = _rolled_open()
    ctx, _ = step(ctx, FundingSettled(T0 + 2 * H, 0.0001, 40_000.0), p)
    assert ctx.perp.funding == pytest.approx(1.0) and ctx.roll_leg.funding == 0.0
    [c] = places(acts)
    ctx, _ = filled(ctx, p, c, T0 + 2 * H)
    assert ctx.perp.symbol == FUT.symbol and ctx.perp.funding == pytest.approx(1.0)  # moved with the leg
    ctx, _ = step(ctx, FundingSettled(T0 + 3 * H, 0.0001, 40_000.0), p)
    assert ctx.perp.funding == pytest.approx(1.0)


def test_a_venue_funding_amount_read_after_the_roll_finished_is_booked_on_the_leg():
    """Live: the perpetual settled +1.00 USDT (-(-0.25) x 40,000 x 0.0001) while the leg was on it; the roll
    finished before the income record was read. The venue's amount is booked to the leg's whole-life funding
    (not its margin, not the unfavourable-settlement count); an engine-computed one (amount unknown) books
    nothing on the future."""
    ctx, p, acts = _rolled_open()
    ctx, _ = filled(ctx, p, places(acts)[0], T0 + H)
    assert ctx.perp.symbol == FUT.symbol and ctx.roll_leg is None
    before = ctx
    ctx, _ = step(ctx, FundingSettled(T0 + 2 * H, 0.0001, 40_000.0), p)
    assert ctx.perp.funding == before.perp.funding == 0.0
    ctx, _ = step(ctx, FundingSettled(T0 + 2 * H, 0.0001, 40_000.0, amount=1.0), p)
    assert ctx.perp.funding == pytest.approx(1.0) and ctx.perp.margin_funding == before.perp.margin_funding
    assert ctx.pnl == pytest.approx(before.pnl + 1.0)
    ctx, _ = step(ctx, FundingSettled(T0 + 3 * H, 0.0001, 40_000.0, amount=-0.5), p)
    assert ctx.perp.funding == pytest.approx(0.5) and ctx.unfavourable_funding == before.unfavourable_funding


def test_roll_back_to_the_perpetual():
    ctx, p, acts = _rolled_open()
    ctx, _ = filled(ctx, p, places(acts)[0], T0 + H)
    assert ctx.perp.symbol == FUT.symbol
    ctx, acts = step(ctx, RollRequest(T0 + 2 * H, PERP, 40_000.0, "near expiry"), p)
    [o] = places(acts)
    assert (o.leg, o.request.symbol, o.request.side, o.request.qty) == ("roll", PERP.symbol, Side.SELL, 0.25)
    ctx, acts = filled(ctx, p, o, T0 + 2 * H)
    [c] = places(acts)
    assert (c.request.symbol, c.request.side, c.request.reduce_only) == (FUT.symbol, Side.BUY, True)
    ctx, _ = filled(ctx, p, c, T0 + 2 * H, price=40_400.0)
    assert ctx.perp.symbol == PERP.symbol and ctx.roll_leg is None and ctx.delta == pytest.approx(0.0)


def test_a_rejected_open_is_retried_then_the_roll_reverts_with_nothing_changed():
    ctx, p = hedged()
    ctx0 = ctx
    ctx, acts = step(ctx, RollRequest(T0 + H, FUT, 40_400.0), p)
    ids = []
    for _ in range(p.execution.hedge_retries + 1):
        [o] = places(acts)
        assert o.purpose == ROLL_OPEN
        ids.append(o.request.client_order_id)
        ctx, acts = step(ctx, OrderUpdate(T0 + H, o.request.client_order_id, OrderUpdateKind.REJECTED, "no margin"), p)
    assert len(set(ids)) == p.execution.hedge_retries + 1  # a new client id each attempt
    assert places(acts) == [] and ctx.roll_leg is None
    assert (ctx.perp.symbol, ctx.perp.qty, ctx.pnl) == (PERP.symbol, ctx0.perp.qty, ctx0.pnl)


def test_a_close_that_keeps_failing_reverts_the_open():
    ctx, p, acts = _rolled_open(fee=0.0)
    for _ in range(p.execution.hedge_retries + 3):
        [c] = places(acts)
        assert c.purpose == ROLL_CLOSE
        ctx, acts = step(ctx, OrderUpdate(T0 + H, c.request.client_order_id, OrderUpdateKind.REJECTED, "x"), p)
    [r] = places(acts)
    assert (r.leg, r.purpose, r.request.symbol, r.request.side, r.request.reduce_only) == (
        "roll", ROLL_REVERT, FUT.symbol, Side.BUY, True)
    ctx, _ = filled(ctx, p, r, T0 + H, price=40_400.0)
    assert ctx.roll_leg is None and ctx.perp.symbol == PERP.symbol and ctx.delta == pytest.approx(0.0)


def test_a_flatten_in_the_middle_of_a_roll_reverts_it_then_closes_both_legs():
    ctx, p, acts = _rolled_open(fee=0.0)
    [c] = places(acts)
    ctx, acts = step(ctx, OperatorCommand(T0 + H, Command.FLATTEN), p)  # while the roll's close is working
    assert ctx.state is State.CLOSING_POSITIONS and places(acts) == []
    ctx, acts = step(ctx, OrderUpdate(T0 + H, c.request.client_order_id, OrderUpdateKind.REJECTED, "x"), p)
    [r] = places(acts)
    assert (r.purpose, r.request.symbol) == (ROLL_REVERT, FUT.symbol)
    ctx, acts = filled(ctx, p, r, T0 + H, price=40_400.0)
    assert ctx.roll_leg is None
    assert sorted((a.leg, a.purpose) for a in places(acts)) == [("perp", "close"), ("spot", "close")]


def test_refused_outside_monitoring_or_for_another_asset():
    ctx, p = hedged()
    eth = replace(INST["ETH/USDT:USDT"], symbol="ETH/USDT:USDT-260327")
    for c, req in ((ctx, RollRequest(T0 + H, eth, 2_000.0)), (ctx, RollRequest(T0 + H, PERP, 40_000.0)),
                   (replace(ctx, state=State.PAUSED), RollRequest(T0 + H, FUT, 40_400.0))):
        c2, acts = step(c, req, p)
        assert places(acts) == [] and c2.roll_leg is None
        assert any("refused" in getattr(a, "message", "") for a in acts)
    with pytest.raises(InvalidInput) as e:
        step(ctx, RollRequest(T0 + H, FUT, math.nan), p)
    assert e.value.field == "price"


def _fills(rows):
    cols = ["ts", "trade_id", "leg", "symbol", "side", "qty", "price", "fee", "fee_currency", "slippage"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows], columns=cols)


def test_a_half_done_roll_rebuilt_from_the_journal_completes_on_restart():
    """The journal of a hedge killed between the roll's two orders: spot +0.25, perp -0.25 (entry), future
    -0.25 (the roll's open, filled). Rebuilt by symbol: perp -0.25, destination -0.25, target -0.25; the first
    timer closes the perp (reduce-only BUY 0.25), after which the leg is on the future and delta is 0."""
    ctx0, p = hedged()
    fresh = replace(ctx0, spot=replace(ctx0.spot, qty=0.0), perp=replace(ctx0.perp, qty=0.0))
    fills = _fills([(T0, "a", "spot", "BTC/USDT", "buy", 0.25, 40_000.0, 10.0, "USDT", 0.0),
                    (T0, "b", "perp", PERP.symbol, "sell", 0.25, 40_000.0, 5.0, "USDT", 0.0),
                    (T0 + H, "c", "roll", FUT.symbol, "sell", 0.25, 40_400.0, 5.05, "USDT", 0.0)])
    funding = pd.DataFrame({"amount": [1.0]})
    roll_rows = [{"symbol": FUT.symbol, "side": "sell", "qty": 0.25, "reduce_only": False, "leg": "roll"}]
    ctx = rebuild_context(fresh, fills, funding, ["hr000050-x"], State.MONITORING_POSITIONS,
                          {"spot": 40_000.0, "perp": 40_000.0}, T0 + 2 * H)
    assert ctx.perp.qty == pytest.approx(-0.5)  # the generic rebuild mixes the contracts: restore splits them
    ctx = restore(ctx, fills, funding, {FUT.symbol: FUT}, roll_rows, {PERP.symbol: 40_000.0, FUT.symbol: 40_400.0})
    assert (ctx.perp.symbol, ctx.perp.qty, ctx.perp.fees, ctx.perp.funding) == (PERP.symbol, pytest.approx(-0.25), 5.0, 1.0)
    assert (ctx.roll_leg.symbol, ctx.roll_leg.qty, ctx.roll_qty) == (FUT.symbol, pytest.approx(-0.25), pytest.approx(-0.25))
    ctx, acts = step(ctx, Timer(T0 + 2 * H), p)
    [c] = places(acts)
    assert (c.purpose, c.request.symbol, c.request.side, c.request.qty, c.request.reduce_only) == (
        ROLL_CLOSE, PERP.symbol, Side.BUY, 0.25, True)
    ctx, _ = filled(ctx, p, c, T0 + 2 * H)
    assert ctx.perp.symbol == FUT.symbol and ctx.delta == pytest.approx(0.0)
    # spot fee 10 + perp fees 5 + 5.05 (open) + 0 (this close, fee 0) - funding 1
    assert ctx.pnl == pytest.approx(-(10.0 + 5.0 + 5.05) + 1.0)


def test_a_roll_whose_open_never_filled_rebuilds_on_the_perp_and_a_finished_one_on_the_future():
    ctx0, p = hedged()
    fresh = replace(ctx0, spot=replace(ctx0.spot, qty=0.0), perp=replace(ctx0.perp, qty=0.0))
    entry = [(T0, "a", "spot", "BTC/USDT", "buy", 0.25, 40_000.0, 0.0, "USDT", 0.0),
             (T0, "b", "perp", PERP.symbol, "sell", 0.25, 40_000.0, 0.0, "USDT", 0.0)]
    rows = [{"symbol": FUT.symbol, "side": "sell", "qty": 0.25, "reduce_only": False, "leg": "roll"}]
    prices = {PERP.symbol: 40_000.0, FUT.symbol: 40_400.0}
    ctx = rebuild_context(fresh, _fills(entry), pd.DataFrame(), [], State.MONITORING_POSITIONS, {}, T0 + H)
    ctx = restore(ctx, _fills(entry), pd.DataFrame(), {FUT.symbol: FUT}, rows, prices)
    assert ctx.roll_leg is None and ctx.perp.symbol == PERP.symbol and ctx.perp.qty == pytest.approx(-0.25)
    done = _fills(entry + [(T0 + H, "c", "roll", FUT.symbol, "sell", 0.25, 40_400.0, 0.0, "USDT", 0.0),
                           (T0 + H, "d", "perp", PERP.symbol, "buy", 0.25, 40_100.0, 0.0, "USDT", 0.0)])
    ctx = rebuild_context(fresh, done, pd.DataFrame(), [], State.MONITORING_POSITIONS, {}, T0 + H)
    ctx = restore(ctx, done, pd.DataFrame(), {FUT.symbol: FUT}, rows, prices)
    assert ctx.roll_leg is None and ctx.perp.symbol == FUT.symbol and ctx.perp.qty == pytest.approx(-0.25)
    assert ctx.perp.realized == pytest.approx(-25.0)  # the perp's close: 0.25 x (40,000 - 40,100)


def test_the_funding_cost_guard_counts_only_the_quantity_on_the_perpetual():
    """A LONG leg paying 0.05 %/8 h (54.75 %/yr >= the 50 % limit) flattens on the perp; the same leg on a
    dated future pays no funding: no guard."""
    from hedge_core.engine.guards import market_guards

    ctx, p = hedged()
    long_perp = replace(ctx, perp=replace(ctx.perp, qty=0.25), next_funding_rate=0.0005)
    assert any(v.name == "funding_cost" for v in market_guards(long_perp, T0 + H, p.guards))
    on_future = replace(long_perp, perp=replace(long_perp.perp, symbol=FUT.symbol))
    assert not any(v.name == "funding_cost" for v in market_guards(on_future, T0 + H, p.guards))


def test_a_flat_hedge_leg_on_a_future_points_back_at_the_perpetual_without_an_order():
    """After an exit with the leg on the future (fees 10.05 booked on it), a RollRequest in ANALYZING_MARKET
    re-points the flat leg at the perpetual: no order, the money kept, the next entry hedges on the perp."""
    ctx, p, acts = _rolled_open()
    ctx, _ = filled(ctx, p, places(acts)[0], T0 + H)
    flat = replace(ctx, state=State.ANALYZING_MARKET, spot=replace(ctx.spot, qty=0.0),
                   perp=replace(ctx.perp, qty=0.0, avg_entry=0.0))
    c2, acts = step(flat, RollRequest(T0 + 2 * H, PERP, 40_000.0, "flat"), p)
    assert places(acts) == [] and c2.perp.symbol == PERP.symbol and c2.perp.qty == 0.0
    assert c2.perp.fees == pytest.approx(flat.perp.fees) and c2.pnl == pytest.approx(flat.pnl)
