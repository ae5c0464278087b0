"""Slippage in the engine ledger: cost versus the price step() decided at, the same on every path.

Definition (``ledger.slippage_cost``): buy ``qty x (fill - ref)``, sell ``qty x (ref - fill)``,
>= 0 a cost. ``ref`` = the leg's last price when step() placed the order (``PendingOrder.ref_price``).
Hand-computed cases, partial fills, a late fill after the order was final, a fill without a known
reference, and through the paper venue (equal to the simulator's own slippage when it fills at the
price the engine decided at; the decision price when a remainder fills later).
"""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from hedge_core.engine import (
    FillEvent,
    MarketUpdate,
    OrderUpdate,
    OrderUpdateKind,
    PlaceOrder,
    State,
    Timer,
    new_hedge,
    step,
)
from hedge_core.engine.context import ORDER_REFS_KEPT, evolve
from hedge_core.engine.driver import DriverHooks, HedgeDriver
from hedge_core.engine.ledger import slippage_cost
from hedge_core.engine.replay import build_steps
from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.paper.core import PaperConfig, PaperCore, default_instruments
from hedge_core.params.models import CarryParams, ExitParams
from hedge_core.types import Fill, Side

INST = {i.symbol: i for i in default_instruments()}
T0 = pd.Timestamp("2024-01-01T00:00Z")
P = CarryParams(notional=10_000.0, min_funding_rate=0.0001, min_net_carry=-1.0)


def fill(coid: str, symbol: str, side: Side, qty: float, price: float, n: int = 0, slippage: float = 0.0) -> Fill:
    return Fill(f"{coid}:{n}", "o-" + coid, coid, symbol, side, qty, price, 0.0, T0, slippage=slippage)


def entered(spot: float = 40_000.0, perp: float = 40_010.0):
    """A fresh hedge after the entry signal: the spot entry order is pending."""
    ctx = new_hedge("s1", "carry", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0)
    ctx, acts = step(ctx, MarketUpdate(T0, spot, perp, funding_rate=0.0005), P)
    (order,) = [a for a in acts if isinstance(a, PlaceOrder)]
    return ctx, order


# ---- the definition ------------------------------------------------------------------------------


@pytest.mark.parametrize(("side", "qty", "price", "ref", "expected"), [
    (Side.BUY, 2.0, 101.0, 100.0, 2.0),     # paid 1 above the reference on 2 units
    (Side.SELL, 2.0, 99.0, 100.0, 2.0),     # received 1 below the reference on 2 units
    (Side.BUY, 0.5, 99.0, 100.0, -0.5),     # price improvement is negative slippage
    (Side.SELL, 0.5, 101.0, 100.0, -0.5),
    (Side.BUY, 3.0, 100.0, 100.0, 0.0),
])
def test_slippage_cost_by_hand(side, qty, price, ref, expected):
    assert slippage_cost(side, qty, price, ref) == pytest.approx(expected, abs=1e-12)


# ---- step(): reference recorded at placement, booked per leg -----------------------------------------


def test_buy_and_sell_against_the_decision_price():
    ctx, order = entered(spot=40_000.0, perp=40_010.0)
    r = order.request
    assert ctx.pending[r.client_order_id].ref_price == 40_000.0  # the spot price step() decided at
    assert r.side is Side.BUY and r.qty == pytest.approx(0.25)
    ctx, acts = step(ctx, FillEvent(fill(r.client_order_id, "BTC/USDT", Side.BUY, 0.25, 40_004.0), "spot"), P)
    ctx, more = step(ctx, OrderUpdate(T0, r.client_order_id, OrderUpdateKind.CLOSED, filled=0.25), P)
    acts += more
    assert ctx.spot.slippage == pytest.approx(0.25 * 4.0, abs=1e-9)  # 1.0 quote paid above 40,000
    (hedge,) = [a for a in acts if isinstance(a, PlaceOrder)]
    h = hedge.request
    assert h.side is Side.SELL and ctx.pending[h.client_order_id].ref_price == 40_010.0
    ctx, _ = step(ctx, FillEvent(fill(h.client_order_id, "BTC/USDT:USDT", Side.SELL, 0.25, 40_002.0), "perp"), P)
    ctx, _ = step(ctx, OrderUpdate(T0, h.client_order_id, OrderUpdateKind.CLOSED, filled=0.25), P)
    assert ctx.state is State.MONITORING_POSITIONS
    assert ctx.perp.slippage == pytest.approx(0.25 * 8.0, abs=1e-9)  # sold 8 below 40,010
    assert ctx.spot.slippage == pytest.approx(1.0, abs=1e-9)  # untouched by the perp fill
    # informational: not part of the net PnL (it is already inside the fill prices)
    assert ctx.perp.net_pnl == pytest.approx(ctx.perp.realized + ctx.perp.unrealized + ctx.perp.funding
                                             - ctx.perp.fees - ctx.perp.interest, abs=1e-12)


def test_partial_fills_each_against_the_same_reference():
    ctx, order = entered(spot=40_000.0)
    coid = order.request.client_order_id
    pieces = [(0.1, 40_002.0), (0.05, 39_999.0), (0.1, 40_010.0)]  # the middle piece improved on the price
    for n, (q, px) in enumerate(pieces):
        ctx, _ = step(ctx, FillEvent(fill(coid, "BTC/USDT", Side.BUY, q, px, n), "spot"), P)
    expected = 0.1 * 2.0 + 0.05 * -1.0 + 0.1 * 10.0
    assert ctx.spot.slippage == pytest.approx(expected, abs=1e-9)
    assert ctx.spot.qty == pytest.approx(0.25)


def test_late_fill_after_the_order_was_final_keeps_its_reference():
    ctx, order = entered(spot=40_000.0)
    coid = order.request.client_order_id
    ctx, _ = step(ctx, FillEvent(fill(coid, "BTC/USDT", Side.BUY, 0.2, 40_001.0, 0), "spot"), P)
    ctx, _ = step(ctx, OrderUpdate(T0, coid, OrderUpdateKind.CANCELED, filled=0.2), P)
    assert coid not in ctx.pending and ctx.order_ref(coid) == 40_000.0
    ctx, _ = step(ctx, FillEvent(fill(coid, "BTC/USDT", Side.BUY, 0.05, 40_020.0, 1), "spot"), P)
    assert ctx.spot.slippage == pytest.approx(0.2 * 1.0 + 0.05 * 20.0, abs=1e-9)


def test_fill_without_a_known_reference_keeps_the_venues_figure():
    ctx, _ = entered()
    # e.g. a venue liquidation id the caller registered (the backtester does this)
    ctx = evolve(ctx, known_orders=ctx.known_orders | {"liq-1"})
    ctx, _ = step(ctx, FillEvent(fill("liq-1", "BTC/USDT:USDT", Side.BUY, 0.01, 40_000.0, slippage=3.5), "perp"), P)
    assert ctx.perp.slippage == 3.5


def test_order_refs_are_bounded():
    ctx = new_hedge("s2", "carry", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0)
    ctx = evolve(ctx, order_refs={f"x{i}": float(i + 1) for i in range(ORDER_REFS_KEPT)})
    ctx, acts = step(ctx, MarketUpdate(T0, 40_000.0, 40_010.0, funding_rate=0.0005), P)
    (order,) = [a for a in acts if isinstance(a, PlaceOrder)]
    assert len(ctx.order_refs) == ORDER_REFS_KEPT
    assert "x0" not in ctx.order_refs and ctx.order_refs[order.request.client_order_id] == 40_000.0


# ---- through the paper venue ---------------------------------------------------------------------


def _market(hours: int = 30, seed: int = 4):
    rng = np.random.default_rng(seed)
    idx = pd.date_range(T0, periods=hours, freq="1h", tz="UTC")
    close = 40_000 * np.exp(np.cumsum(rng.normal(0, 0.004, hours)))
    bars = pd.DataFrame({"open": close, "high": close * 1.001, "low": close * 0.999, "close": close,
                         "volume": 1_000.0}, index=idx)
    perp = bars.assign(close=bars["close"] * 1.0003, open=bars["open"] * 1.0003)
    ftimes = pd.date_range(T0 + pd.Timedelta(hours=8), periods=hours // 8, freq="8h", tz="UTC")
    funding = pd.DataFrame({"funding_rate": 0.0005}, index=ftimes)  # positive: long spot / short perp
    return build_steps(bars, perp, venue="binance", spot_symbol="BTC/USDT", perp_symbol="BTC/USDT:USDT", mark=perp,
                       funding=funding)


async def _run(drv: HedgeDriver, ex: PaperExchange, steps) -> None:
    for s in steps:
        for b in s.bars:
            await ex.apply(b)
        await drv.feed(Timer(s.ts, heartbeat=False))
        await drv.feed(s.market)
        if s.funding is not None:
            await ex.apply(s.funding)


def _paper(**cfg) -> PaperExchange:
    core = PaperCore(PaperConfig(**cfg), balances={"spot": {"USDT": 30_000.0}, "perp": {"USDT": 20_000.0}})
    return PaperExchange(core, save_on_apply=False)


def test_paper_venue_slippage_equals_the_simulators_when_it_fills_at_the_decision_price():
    # market orders fill at once at the bar close the engine just saw: same reference
    ex = _paper(slippage_bps=2.0, impact_k_bps=30.0)
    fills: list[Fill] = []
    p = CarryParams(notional=10_000.0, min_funding_rate=0.0001, min_net_carry=-1.0,
                    exit=ExitParams(max_holding_hours=8, rearm=True))
    drv = HedgeDriver(new_hedge("pv", "carry", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0), p, {"binance": ex},
                      hooks=DriverHooks(on_fill=lambda h, ev: fills.append(ev.fill)))
    asyncio.run(_run(drv, ex, _market()))
    venue_fills = list(ex.core.fills)
    assert len(venue_fills) >= 8  # entries and exits on both legs, re-armed
    by_symbol = {"BTC/USDT": 0.0, "BTC/USDT:USDT": 0.0}
    for f in venue_fills:
        by_symbol[f.symbol] += f.slippage
    c = drv.ctx
    assert c.spot.slippage > 0 and c.perp.slippage > 0
    assert c.spot.slippage == pytest.approx(by_symbol["BTC/USDT"], rel=1e-12)
    assert c.perp.slippage == pytest.approx(by_symbol["BTC/USDT:USDT"], rel=1e-12)
    # the driver's fills (what journals and hooks see) carry the same per-fill figure
    assert len(fills) == len(venue_fills)
    for mine, theirs in zip(fills, venue_fills):
        assert mine.slippage == pytest.approx(theirs.slippage, rel=1e-9)


def test_paper_remainder_filled_later_is_measured_against_the_decision_price():
    # participation cap: a market order fills in pieces over later bars, at later closes; the
    # venue measures each piece against ITS bar close, the engine against the price it decided at
    ex = _paper(participation=0.0001, slippage_bps=1.0, impact_k_bps=0.0)
    p = CarryParams(notional=10_000.0, min_funding_rate=0.0001, min_net_carry=-1.0,
                    exit=ExitParams(max_holding_hours=None, profit_target_pct=None, stop_loss_pct=None,
                                    funding_unfavourable_intervals=None))
    places: list[PlaceOrder] = []
    drv = HedgeDriver(new_hedge("pr", "carry", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0), p, {"binance": ex},
                      hooks=DriverHooks(on_intent=lambda h, a: places.append(a)))
    steps = _market(hours=12)
    asyncio.run(_run(drv, ex, steps))
    # reference of each order = the close of its leg when the engine placed it (hand-rebuilt)
    ref_by_coid = {}
    closes = {s.ts: (s.market.spot, s.market.perp) for s in steps}
    for po in places:
        coid = po.request.client_order_id
        ref_by_coid[coid] = drv.ctx.order_ref(coid)
    spot_fills = [f for f in ex.core.fills if f.symbol == "BTC/USDT"]
    assert len({f.client_order_id for f in spot_fills}) < len(spot_fills)  # some order filled in pieces
    expected = sum(f.qty * (f.price - ref_by_coid[f.client_order_id]) if f.side is Side.BUY
                   else f.qty * (ref_by_coid[f.client_order_id] - f.price) for f in spot_fills)
    assert drv.ctx.spot.slippage == pytest.approx(expected, rel=1e-9)
    # and the references are the engine's decision prices, i.e. closes it saw when placing
    assert all(any(ref == px for px, _ in closes.values()) for coid, ref in ref_by_coid.items()
               if coid in {f.client_order_id for f in spot_fills})
    venue_total = sum(f.slippage for f in spot_fills)
    assert drv.ctx.spot.slippage != pytest.approx(venue_total, rel=1e-6)  # the price moved between pieces
