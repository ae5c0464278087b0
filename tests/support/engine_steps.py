"""Builders of engine inputs for step() tests: a carry hedge, market updates, fills (shared by the engine test modules)."""

from __future__ import annotations

import pandas as pd

from hedge_core.engine import (
    FillEvent,
    MarketUpdate,
    OrderUpdate,
    OrderUpdateKind,
    PlaceOrder,
    State,
    new_hedge,
    step,
)
from hedge_core.exchange.paper.core import default_instruments
from hedge_core.params.models import (
    CarryParams,
)
from hedge_core.types import Fill

INST = {i.symbol: i for i in default_instruments()}


T0 = pd.Timestamp("2024-01-01T00:00Z")


H = pd.Timedelta(hours=1)


def params(**kw) -> CarryParams:
    base = {"notional": 10_000.0, "min_funding_rate": 0.0001, "min_net_carry": -1.0}
    base.update(kw)
    return CarryParams(**base)


def mkt(ts, px=40_000.0, rate=0.0005, perp=None, **kw) -> MarketUpdate:
    return MarketUpdate(ts=ts, spot=px, perp=px if perp is None else perp, funding_rate=rate, **kw)


def fresh(ts=T0):
    return new_hedge("h1", "carry", INST["BTC/USDT"], INST["BTC/USDT:USDT"], ts)


def places(actions):
    return [a for a in actions if isinstance(a, PlaceOrder)]


def fill_of(a: PlaceOrder, ts, qty=None, price=40_000.0, n=0, fee=0.0) -> FillEvent:
    q = a.request.qty if qty is None else qty
    return FillEvent(Fill(f"t-{a.request.client_order_id}-{n}", "o", a.request.client_order_id, a.request.symbol,
                          a.request.side, q, price, fee, ts), a.leg)


def run(ctx, p, events):
    acts = []
    for ev in events:
        ctx, a = step(ctx, ev, p)
        acts += a
    return ctx, acts


def filled(ctx, p, a: PlaceOrder, ts, price=40_000.0):
    """Fill an order completely and report it CLOSED."""
    return run(ctx, p, [fill_of(a, ts, price=price),
                        OrderUpdate(ts, a.request.client_order_id, OrderUpdateKind.CLOSED, filled=a.request.qty)])


def hedged(p=None, px=40_000.0):
    """A hedge in MONITORING_POSITIONS after a clean entry at ``px``."""
    p = p or params()
    ctx, acts = step(fresh(), mkt(T0, px), p)
    ctx, a2 = filled(ctx, p, places(acts)[0], T0, px)
    ctx, _a3 = filled(ctx, p, places(a2)[0], T0, px)
    assert ctx.state is State.MONITORING_POSITIONS
    return ctx, p

