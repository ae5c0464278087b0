"""HedgeDriver: how adapter answers and errors become events (scripted stub adapter, no simulator)."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.engine import MarketUpdate, State, new_hedge
from hedge_core.engine.actions import PlaceOrder
from hedge_core.engine.driver import DriverHooks, HedgeDriver
from hedge_core.errors import (
    DuplicateOrder,
    InvalidInput,
    InvalidOrder,
    NetworkError,
    OperationalError,
    OrderNotFound,
    RequestTimeout,
)
from hedge_core.exchange.paper.core import default_instruments
from hedge_core.params.models import CarryParams
from hedge_core.types import Order, OrderStatus, OrderType, TradingMode

INST = {i.symbol: i for i in default_instruments()}
T0 = pd.Timestamp("2024-01-01T00:00Z")
P = CarryParams(notional=10_000.0, min_net_carry=-1.0)


def order(req, status=OrderStatus.CLOSED, filled=None, price=40_000.0, oid="1"):
    f = req.qty if filled is None else filled
    return Order(oid, req.client_order_id, req.symbol, req.side, OrderType.MARKET, req.qty, None, f,
                 price if f else None, status, T0, fee=f * price * 0.001)


class Stub:
    """Scripted adapter: ``script[method]`` is a list of callables (args -> result or raise)."""

    venue = "binance"
    mode = TradingMode.PAPER
    answers_carry_fills = True  # scripted answers carry filled, average price and fee

    def __init__(self, **script):
        self.script = {k: list(v) for k, v in script.items()}
        self.calls: list[tuple[str, tuple, dict]] = []
        self.orders: dict[str, object] = {}

    async def _do(self, name, *a, **kw):
        self.calls.append((name, a, kw))
        queue = self.script.get(name)
        if queue:
            return queue.pop(0)(self, *a, **kw)
        return getattr(self, "_default_" + name)(*a, **kw)

    def _default_create_order(self, req):
        o = order(req)
        self.orders[req.client_order_id] = o
        return o

    def _default_fetch_order(self, symbol, *, client_order_id=None, order_id=None):
        if client_order_id in self.orders:
            return self.orders[client_order_id]
        raise OrderNotFound("no such order")

    def _default_cancel_order(self, symbol, *, client_order_id=None, order_id=None):
        raise OrderNotFound("-2011 Unknown order sent")

    def _default_set_leverage(self, *a):
        return None

    def _default_set_margin_mode(self, *a):
        return None

    def _default_fetch_my_trades(self, symbol, since=None):
        return []

    async def create_order(self, req):
        return await self._do("create_order", req)

    async def fetch_order(self, symbol, **kw):
        return await self._do("fetch_order", symbol, **kw)

    async def cancel_order(self, symbol, **kw):
        return await self._do("cancel_order", symbol, **kw)

    async def set_leverage(self, symbol, lev):
        return await self._do("set_leverage", symbol, lev)

    async def set_margin_mode(self, symbol, mode):
        return await self._do("set_margin_mode", symbol, mode)

    async def fetch_my_trades(self, symbol, since=None):
        return await self._do("fetch_my_trades", symbol, since)


async def _noop(_):
    return None


def driver(stub, **kw):
    return HedgeDriver(new_hedge("d", "carry", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0), P, {"binance": stub},
                       sleep=_noop, **kw)


def creates(stub):
    return [c[1][0] for c in stub.calls if c[0] == "create_order"]


def test_missing_adapter_for_a_leg_venue_is_refused():
    with pytest.raises(InvalidInput, match="binance"):
        HedgeDriver(new_hedge("d", "carry", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0), P, {"bybit": Stub()})


def test_clean_entry_through_the_driver():
    stub = Stub()
    drv = driver(stub)
    asyncio.run(drv.feed(MarketUpdate(T0, 40_000.0, 40_000.0, funding_rate=0.001)))
    assert drv.ctx.state is State.MONITORING_POSITIONS
    assert [r.symbol for r in creates(stub)] == ["BTC/USDT", "BTC/USDT:USDT"]
    assert drv.ctx.spot.fees == pytest.approx(0.25 * 40_000 * 0.001)  # fee from the order snapshot


def test_timeout_then_not_found_resends_under_a_new_id_linked_to_the_first():
    # a venue without a late-execution window (this stub, paper): NOT_FOUND is conclusive at once;
    # the re-send gets a NEW client id (same seq, next attempt) journaled as a retry of the first
    def timeout(self, req):
        raise RequestTimeout("no answer")
    stub = Stub(create_order=[timeout])
    drv = driver(stub)
    asyncio.run(drv.feed(MarketUpdate(T0, 40_000.0, 40_000.0, funding_rate=0.001)))
    sent = creates(stub)
    first, second = sent[0].client_order_id, sent[1].client_order_id
    assert first != second and first[:7] == second[:7] and (first[7], second[7]) == ("0", "1")
    assert (sent[0].symbol, sent[0].side, sent[0].qty) == (sent[1].symbol, sent[1].side, sent[1].qty)
    retries = [a for a in drv.actions if isinstance(a, PlaceOrder) and a.retry_of]
    assert [(a.request.client_order_id, a.retry_of) for a in retries] == [(second, first)]
    assert [c[0] for c in stub.calls].index("fetch_order") < [i for i, c in enumerate(stub.calls)
                                                               if c[0] == "create_order"][1]
    assert drv.ctx.state is State.MONITORING_POSITIONS


def test_timeout_after_the_venue_executed_is_found_by_query_not_resent():
    def executed_then_timeout(self, req):
        self.orders[req.client_order_id] = order(req)
        raise RequestTimeout("answer lost")
    stub = Stub(create_order=[executed_then_timeout])
    drv = driver(stub)
    asyncio.run(drv.feed(MarketUpdate(T0, 40_000.0, 40_000.0, funding_rate=0.001)))
    spot_creates = [r for r in creates(stub) if r.symbol == "BTC/USDT"]
    assert len(spot_creates) == 1 and drv.ctx.spot.qty == pytest.approx(0.25)
    assert drv.ctx.state is State.MONITORING_POSITIONS


def test_network_error_on_create_is_treated_as_unknown_and_queried():
    def neterr(self, req):
        raise NetworkError("connection reset")
    stub = Stub(create_order=[neterr])
    drv = driver(stub)
    asyncio.run(drv.feed(MarketUpdate(T0, 40_000.0, 40_000.0, funding_rate=0.001)))
    assert any(c[0] == "fetch_order" for c in stub.calls)
    assert drv.ctx.state is State.MONITORING_POSITIONS


def test_duplicate_order_answer_fetches_instead_of_resending():
    def dup(self, req):
        self.orders[req.client_order_id] = order(req)
        raise DuplicateOrder("-4116 Duplicate clientOrderId")
    stub = Stub(create_order=[dup])
    drv = driver(stub)
    asyncio.run(drv.feed(MarketUpdate(T0, 40_000.0, 40_000.0, funding_rate=0.001)))
    assert len([r for r in creates(stub) if r.symbol == "BTC/USDT"]) == 1
    assert drv.ctx.spot.qty == pytest.approx(0.25)


def test_invalid_order_becomes_a_rejection_with_its_reason():
    def bad(self, req):
        raise InvalidOrder("Filter failure: MIN_NOTIONAL")
    stub = Stub(create_order=[bad, bad, bad])
    alerts = []
    drv = driver(stub, hooks=DriverHooks(on_alert=lambda h, a: alerts.append(a)))
    asyncio.run(drv.feed(MarketUpdate(T0, 40_000.0, 40_000.0, funding_rate=0.001)))
    assert drv.ctx.state is State.ANALYZING_MARKET and drv.ctx.cooldown_until is not None
    assert any("MIN_NOTIONAL" in a.message for a in alerts)
    assert len(creates(stub)) == 3  # 1 + hedge_retries (2)


def test_settings_retry_temporary_errors_and_alert_on_failure():
    calls = {"n": 0}

    def flaky(self, *a):
        calls["n"] += 1
        raise NetworkError("blip")

    def refuse(self, *a):
        raise OperationalError("leverage not allowed")
    stub = Stub(set_leverage=[flaky, refuse], set_margin_mode=[])
    alerts = []
    drv = driver(stub, hooks=DriverHooks(on_alert=lambda h, a: alerts.append(a)))
    asyncio.run(drv.feed(MarketUpdate(T0, 40_000.0, 40_000.0, funding_rate=0.001)))
    assert calls["n"] == 1  # retried once, then the operational error is final
    assert any("SetLeverage" in a.message for a in alerts)


def test_partial_then_cancelled_order_snapshot_books_the_partial_fill_once():
    def partial(self, req):
        o = order(req, status=OrderStatus.OPEN, filled=0.1)
        self.orders[req.client_order_id] = o
        return o

    def cancel(self, symbol, *, client_order_id=None, order_id=None):
        o = self.orders[client_order_id]
        o2 = Order(o.id, o.client_order_id, o.symbol, o.side, o.type, o.qty, None, 0.1, 40_000.0,
                   OrderStatus.CANCELED, T0, fee=o.fee)
        self.orders[client_order_id] = o2
        return o2
    stub = Stub(create_order=[partial], cancel_order=[cancel])
    drv = driver(stub)
    asyncio.run(drv.feed(MarketUpdate(T0, 40_000.0, 40_000.0, funding_rate=0.001)))
    assert drv.ctx.state is State.OPENING_SPOT_POSITION and drv.ctx.spot.qty == pytest.approx(0.1)
    later = T0 + pd.Timedelta(seconds=P.execution.order_timeout_s)
    asyncio.run(drv.feed(MarketUpdate(later, 40_000.0, 40_000.0, funding_rate=0.001)))
    assert drv.ctx.spot.qty == pytest.approx(0.1)  # the re-delivered 0.1 is not booked twice
    assert drv.ctx.perp.qty == pytest.approx(-0.1)
    assert drv.ctx.state is State.MONITORING_POSITIONS


def test_hooks_see_fills_transitions_and_intents_in_order():
    seen: list[str] = []
    hooks = DriverHooks(on_intent=lambda h, a: seen.append(f"intent:{a.leg}"),
                        on_fill=lambda h, f: seen.append(f"fill:{f.leg}"),
                        on_transition=lambda h, t: seen.append(f"to:{t.to_state}"))
    drv = driver(Stub(), hooks=hooks)
    asyncio.run(drv.feed(MarketUpdate(T0, 40_000.0, 40_000.0, funding_rate=0.001)))
    assert seen == ["to:OPENING_SPOT_POSITION", "intent:spot", "fill:spot", "to:OPENING_FUTURES_HEDGE",
                    "intent:perp", "fill:perp", "to:MONITORING_POSITIONS"]


def test_a_venue_answering_in_a_loop_cannot_hang_the_driver():
    def always_not_found(self, symbol, **kw):
        raise OrderNotFound("gone")

    def lost(self, req):
        raise RequestTimeout("lost")
    stub = Stub(create_order=[lost] * 10_000, fetch_order=[always_not_found] * 10_000)
    alerts = []
    drv = driver(stub, hooks=DriverHooks(on_alert=lambda h, a: alerts.append(a)))
    drv.max_events_per_feed = 50
    asyncio.run(drv.feed(MarketUpdate(T0, 40_000.0, 40_000.0, funding_rate=0.001)))
    # bounded by the engine's own limits (re-sends, retries) well before the driver's cap
    assert len(creates(stub)) <= (P.execution.max_resends + 1) * (P.execution.hedge_retries + 1)
    assert drv.ctx.state in (State.ANALYZING_MARKET, State.ERROR)
