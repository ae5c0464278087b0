"""Delivery at expiry of the paper venue's simulated quarterly (hedge_core.exchange.paper.delivery): the position
closed at the average index (spot) price of the last 30 minutes, realised PnL and delivery fee on the wallet,
a delivery fill and record, open orders cancelled, the contract untradable, all kept across a save/load.
Figures by hand."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.errors import InvalidInput, InvalidOrder
from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.paper.core import PaperConfig, PaperCore
from hedge_core.exchange.paper.delivery import delivery_price, is_delivery_fill
from hedge_core.exchange.paper.quarterly import PaperQuarterly
from hedge_core.types import Bar, MarketKind, OrderRequest, OrderStatus, OrderType, Side

T = pd.Timestamp("2026-09-25T07:00Z")  # the first bar's open; known at 08:00, 91 days before expiry
EXP = pd.Timestamp("2026-12-25T08:00Z")
Q = "BTC/USDT:USDT-261225"
PX0 = 30_000.0 * (1 + 0.08 * 91 / 365)  # the quarterly's price when the short is sold: 30,598.3562
WALLET = 100_000.0


def _venue(tmp_path=None, fee_rate: float = 0.0002) -> PaperExchange:
    cfg = PaperConfig(slippage_bps=0.0, impact_k_bps=0.0, quarterlies=(PaperQuarterly(Q, EXP, 0.08, fee_rate),))
    core = PaperCore(cfg, balances={"spot": {"USDT": WALLET}, "perp": {"USDT": WALLET}})
    ex = PaperExchange(core, state_path=None if tmp_path is None else tmp_path / "p.json")
    core.apply(Bar(T, "binance", "BTC/USDT", MarketKind.SPOT, 30_000, 30_000, 30_000, 30_000.0, 10.0))
    core.apply(Bar(T, "binance", "BTC/USDT:USDT", MarketKind.PERP, 30_000, 30_000, 30_000, 30_000.0, 10.0))
    core.create_order(OrderRequest(Q, Side.SELL, 0.02, "q1"))  # short 0.02 on the quarterly at PX0
    return ex


def _minute(core: PaperCore, open_ts: pd.Timestamp, close: float) -> None:
    core.apply(Bar(open_ts, "binance", "BTC/USDT", MarketKind.SPOT, close, close, close, close, 5.0, "1m"))


def test_delivery_price_is_the_average_or_the_fallback():
    assert delivery_price([31_000.0, 31_200.0], 1.0) == pytest.approx(31_100.0)
    assert delivery_price([], 30_500.0) == 30_500.0
    assert delivery_price([], None) is None


def test_bad_delivery_fee_rate_names_the_field():
    with pytest.raises(InvalidInput) as e:
        PaperQuarterly.from_dict({"symbol": Q, "expiry": "2026-12-25T08:00Z", "basis_apr": 0.08,
                                  "delivery_fee_rate": 0.5})
    assert e.value.field == "paper_quarterly.delivery_fee_rate"


def test_a_short_held_at_expiry_is_delivered_at_the_30_minute_average(tmp_path):
    """1-minute spot bars: opens 07:29 (known 07:30, outside the window, close 50,000) then 07:30..07:59 (known
    07:31..08:00) with closes 31,000 + 10 i, i = 0..29: delivery price = 31,000 + 10 x 14.5 = 31,145.
    Realised: -0.02 x (31,145 - 30,598.3562) = -10.93288; fee 0.02 x 31,145 x 0.0002 = 0.12458."""
    ex = _venue(tmp_path)
    core = ex.core
    open_fee = 0.02 * PX0 * 0.0005
    assert core.wallet == pytest.approx(WALLET - open_fee)
    resting = core.create_order(OrderRequest(Q, Side.BUY, 0.01, "rest", OrderType.LIMIT, price=20_000.0))
    assert resting.status is OrderStatus.OPEN
    _minute(core, EXP - pd.Timedelta(minutes=31), 50_000.0)
    for i in range(15):
        _minute(core, EXP - pd.Timedelta(minutes=30 - i), 31_000.0 + 10 * i)
    assert core.deliveries == [] and core.delivery_samples[Q] == [31_000.0 + 10 * i for i in range(15)]
    ex.save()  # a restart inside the window keeps the samples taken so far
    ex = PaperExchange.load(tmp_path / "p.json")
    core = ex.core
    for i in range(15, 30):
        _minute(core, EXP - pd.Timedelta(minutes=30 - i), 31_000.0 + 10 * i)
    # the bar known at 08:00 was the last sample: delivered at once
    [rec] = core.deliveries
    realized = -0.02 * (31_145.0 - PX0)
    assert rec["price"] == pytest.approx(31_145.0) and rec["samples"] == 30
    assert rec["realized_pnl"] == pytest.approx(realized) and realized == pytest.approx(-10.93288, abs=1e-5)
    assert rec["fee"] == pytest.approx(0.12458) and rec["qty"] == pytest.approx(-0.02)
    assert pd.Timestamp(rec["ts"]) == EXP and rec["entry_price"] == pytest.approx(PX0)
    assert core.wallet == pytest.approx(WALLET - open_fee + realized - 0.12458)
    # the fill in the venue's trade list: the venue's own close at the delivery price, its fee the delivery fee
    f = core.fills[-1]
    assert is_delivery_fill(f.client_order_id) and (f.symbol, f.side, f.ts) == (Q, Side.BUY, EXP)
    assert (f.qty, f.price, f.fee) == (pytest.approx(0.02), pytest.approx(31_145.0), pytest.approx(0.12458))
    assert core.fetch_order(Q, order_id=resting.id).status is OrderStatus.CANCELED
    assert all(p.qty == 0.0 for p in core.positions.values() if p.symbol == Q)
    with pytest.raises(InvalidOrder, match="expired"):
        core.create_order(OrderRequest(Q, Side.SELL, 0.02, "q2"))
    ex.save()
    back = PaperExchange.load(tmp_path / "p.json").core
    assert back.deliveries == core.deliveries and back.delivered == [Q]
    assert back.fills[-1] == f and back.wallet == pytest.approx(core.wallet)
    _minute(back, EXP + pd.Timedelta(minutes=5), 32_000.0)
    assert len(back.deliveries) == 1  # delivered once


def test_an_event_past_expiry_delivers_first_at_the_last_known_spot_close():
    """Hourly bars with a gap: the last spot close before expiry is 30,400 (known 05:00 < 07:30): no sample in
    the window, so the delivery price is that close. Delivered when the next event (known 09:00) passes the
    expiry, at the expiry, before that event's prices are seen."""
    ex = _venue(fee_rate=0.0)
    core = ex.core
    core.apply(Bar(EXP - pd.Timedelta(hours=4), "binance", "BTC/USDT", MarketKind.SPOT, 1, 1, 1, 30_400.0, 5.0))
    assert core.deliveries == []
    core.apply(Bar(EXP, "binance", "BTC/USDT", MarketKind.SPOT, 1, 1, 1, 45_000.0, 5.0))
    [rec] = core.deliveries
    assert rec["price"] == pytest.approx(30_400.0) and rec["samples"] == 0 and rec["fee"] == 0.0
    assert rec["realized_pnl"] == pytest.approx(-0.02 * (30_400.0 - PX0))


def test_nothing_held_nothing_booked_but_the_contract_is_gone():
    ex = _venue()
    core = ex.core
    assert asyncio.run(ex.dated_futures("BTC")) == [(Q, EXP)]
    core.create_order(OrderRequest(Q, Side.BUY, 0.02, "q-close"))  # the leg left the quarterly before expiry
    n = len(core.fills)
    core.apply(Bar(EXP - pd.Timedelta(hours=1), "binance", "BTC/USDT", MarketKind.SPOT, 1, 1, 1, 30_100.0, 5.0))
    assert core.deliveries == [] and core.delivered == [Q] and len(core.fills) == n
    assert asyncio.run(ex.dated_futures("BTC")) == []  # delisted after delivery
