"""The engine's answer to the venue delivering the leg's dated future (roll_step.delivered): the delivery booked
(realised PnL and fee, by hand), the flat leg moved to the perpetual with its money kept, the spot re-hedged
there at once; a delivery of another contract or of a leg still holding is not acted on."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hedge_core.engine import FillEvent, OrderUpdate, OrderUpdateKind, State, step
from hedge_core.engine.actions import Alert, AlertLevel
from hedge_core.engine.roll_step import RollRequest, delivery_time, perpetual_of
from hedge_core.types import Fill, Side
from tests.support.engine_steps import INST, T0, H, filled, fill_of, hedged, mkt, places, run

PERP = INST["BTC/USDT:USDT"]
FUT = replace(PERP, symbol="BTC/USDT:USDT-260327")


def _rolled_open(fee=5.05, price=40_400.0):
    """Long 0.25 BTC spot / short 0.25 perp at 40,000, asked to roll to FUT at 40,400; the roll's open filled."""
    ctx, p = hedged()
    t = T0 + H
    ctx, acts = step(ctx, RollRequest(t, FUT, price, "basis pays more"), p)
    [o] = places(acts)
    ctx, acts = run(ctx, p, [fill_of(o, t, price=price, fee=fee),
                             OrderUpdate(t, o.request.client_order_id, OrderUpdateKind.CLOSED, filled=0.25)])
    return ctx, p, acts


def _on_future():
    """Long 0.25 BTC spot (40,000), short 0.25 on FUT entered at 40,400 (the roll open's fee 5.05 booked, its close at fee 0)."""
    ctx, p, acts = _rolled_open()
    ctx, _ = filled(ctx, p, places(acts)[0], T0 + H)
    assert ctx.perp.symbol == FUT.symbol and ctx.perp.qty == pytest.approx(-0.25)
    return ctx, p


def _delivery(ts, price=40_100.0, fee=2.005, qty=0.25, symbol=FUT.symbol):
    return FillEvent(Fill("dlv-t1", "dlv-o1", "dlv-1", symbol, Side.BUY, qty, price, fee, ts), "perp",
                     external=True, delivered_to=(PERP, 40_120.0))


def test_a_delivered_future_is_booked_and_the_spot_is_hedged_again_on_the_perpetual():
    """By hand: the short 0.25 entered at 40,400 is delivered at 40,100: realised +0.25 x 300 = +75 USDT, the
    delivery fee 0.25 x 40,100 x 0.02 % = 2.005. The hedge's PnL rises by 75 - 2.005 = 72.995 (the
    spot is not re-marked by the delivery). The leg then points at the perpetual (flat, its money kept:
    fees 5.05 + 2.005, realised 75) and the ordinary rebalance sells 0.25 on the perpetual."""
    ctx, p = _on_future()
    t = T0 + 2 * H
    before, pnl0 = ctx.perp, ctx.pnl
    assert before.last_price == 40_400.0  # the future marked at its entry: no unrealised PnL before
    ctx, acts = step(ctx, _delivery(t), p)
    assert ctx.pnl == pytest.approx(pnl0 + 75.0 - 2.005)
    assert ctx.perp.symbol == PERP.symbol and ctx.perp.qty == 0.0 and ctx.roll_leg is None
    assert ctx.perp.realized == pytest.approx(before.realized + 75.0)
    assert ctx.perp.fees == pytest.approx(before.fees + 2.005) and ctx.perp.fees == pytest.approx(7.055)
    alerts = [a for a in acts if isinstance(a, Alert) and a.level is AlertLevel.CRITICAL]
    assert any("delivered at expiry" in a.message for a in alerts)
    [o] = places(acts)
    assert (o.leg, o.request.symbol, o.request.side, o.request.qty) == ("perp", PERP.symbol, Side.SELL, 0.25)
    ctx, _ = filled(ctx, p, o, t, price=40_120.0)
    assert ctx.perp.qty == pytest.approx(-0.25) and ctx.delta == pytest.approx(0.0)
    assert ctx.state is State.MONITORING_POSITIONS
    ctx, acts = run(ctx, p, [mkt(t + H, 40_120.0), _delivery(t + H)])  # the same record again: booked once
    assert places(acts) == [] and ctx.perp.qty == pytest.approx(-0.25)


def test_a_delivery_of_another_contract_or_a_leg_still_holding_is_not_acted_on():
    ctx, p = _on_future()
    t = T0 + 2 * H
    c2, acts = step(ctx, _delivery(t, qty=0.1), p)  # a partial record: 0.15 still booked on the future
    assert c2.perp.symbol == FUT.symbol and c2.perp.qty == pytest.approx(-0.15)
    assert any("operator needed" in a.message for a in acts if isinstance(a, Alert))
    other = replace(FUT, symbol="BTC/USDT:USDT-260626")
    c3, acts = step(ctx, _delivery(t, symbol=other.symbol), p)
    assert c3.perp.symbol == FUT.symbol and c3.perp.qty == pytest.approx(-0.25)  # not the leg's fill: not booked


def test_delivery_time_and_perpetual_of_a_dated_symbol():
    """Binance, OKX and Bybit deliver their USDT futures at 08:00 UTC on the date in the symbol."""
    import pandas as pd

    assert delivery_time("BTC/USDT:USDT-260327") == pd.Timestamp("2026-03-27T08:00Z")
    assert delivery_time("BTC/USDT:USDT") is None and delivery_time("BTC/USDT:USDT-261399") is None
    assert perpetual_of("BTC/USDT:USDT-260327") == "BTC/USDT:USDT" and perpetual_of("BTC/USDT") == "BTC/USDT"


def test_a_delivery_while_the_roll_back_to_the_perp_is_under_way_ends_the_roll_on_the_perp():
    """The way back: the perp's open filled (-0.25 at 40,000), the close on the future is working when the venue
    delivers the future (at 40,100: +75 realised, 2.005 fee); the close is then refused (the contract is gone): the
    roll ends on the perpetual with both legs' money, no further order."""
    ctx, p = _on_future()
    t = T0 + 2 * H
    ctx, acts = step(ctx, RollRequest(t, PERP, 40_000.0, "funding pays more"), p)
    [o] = places(acts)
    assert (o.leg, o.request.symbol) == ("roll", PERP.symbol)
    ctx, acts = run(ctx, p, [fill_of(o, t, price=40_000.0),
                             OrderUpdate(t, o.request.client_order_id, OrderUpdateKind.CLOSED, filled=0.25)])
    [c] = places(acts)
    assert (c.leg, c.request.symbol, c.request.reduce_only) == ("perp", FUT.symbol, True)
    fees0, pnl0 = ctx.perp.fees + ctx.roll_leg.fees, ctx.pnl
    ctx, acts = step(ctx, _delivery(t), p)
    assert any("while the roll" in a.message for a in acts if isinstance(a, Alert))
    assert ctx.roll_leg is not None and ctx.perp.qty == 0.0 and places(acts) == []  # the close still working
    ctx, acts = step(ctx, OrderUpdate(t, c.request.client_order_id, OrderUpdateKind.REJECTED, reason="-1121"), p)
    assert places(acts) == [] and ctx.roll_leg is None and ctx.state is State.MONITORING_POSITIONS
    assert (ctx.perp.symbol, ctx.perp.qty) == (PERP.symbol, pytest.approx(-0.25)) and ctx.delta == pytest.approx(0.0)
    assert ctx.perp.fees == pytest.approx(fees0 + 2.005) and ctx.pnl == pytest.approx(pnl0 + 75.0 - 2.005)
