"""The paper venue's simulated quarterly (hedge_core.exchange.paper.quarterly): priced from spot at a fixed
annualised basis (hand figures), listed by ``dated_futures`` like the live adapter, traded like the perp, no
funding, refused after expiry, kept across a save/load."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.analytics.funding import annualised_basis, future_price_at_basis
from hedge_core.errors import InvalidInput, InvalidOrder
from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.paper.core import PaperConfig, PaperCore
from hedge_core.exchange.paper.quarterly import PaperQuarterly
from hedge_core.types import Bar, FundingEvent, MarketKind, OrderRequest, Side

T = pd.Timestamp("2026-09-25T07:00Z")  # the bar's open; known at 08:00
EXP = pd.Timestamp("2026-12-25T08:00Z")  # 91 days after the bar is known
Q = "BTC/USDT:USDT-261225"


def test_future_price_at_basis_inverts_the_annualised_basis():
    """By hand: 30,000 x (1 + 0.08 x 91 / 365) = 30,598.36; its basis, annualised, is 8 % again."""
    at = EXP - pd.Timedelta(days=91)
    f = future_price_at_basis(30_000.0, 0.08, EXP, at)
    assert f == pytest.approx(30_000.0 * (1 + 0.08 * 91 / 365))
    assert annualised_basis(f / 30_000.0 - 1, EXP, at=at) == pytest.approx(0.08)
    assert future_price_at_basis(30_000.0, 0.08, EXP, EXP) == 30_000.0  # converged at expiry


@pytest.mark.parametrize("kw, field", [({"symbol": "BTC/USDT:USDT"}, "paper_quarterly.symbol"),
                                       ({"expiry": "2026-12-25"}, "paper_quarterly.expiry"),
                                       ({"basis_apr": 1.5}, "paper_quarterly.basis_apr")])
def test_bad_quarterly_names_the_field(kw, field):
    d = {"symbol": Q, "expiry": "2026-12-25T08:00Z", "basis_apr": 0.08, **kw}
    with pytest.raises(InvalidInput) as e:
        PaperQuarterly.from_dict(d)
    assert e.value.field == field


def _venue(tmp_path=None):
    cfg = PaperConfig(slippage_bps=0.0, impact_k_bps=0.0, quarterlies=(PaperQuarterly(Q, EXP, 0.08),))
    core = PaperCore(cfg, balances={"spot": {"USDT": 100_000.0}, "perp": {"USDT": 100_000.0}})
    ex = PaperExchange(core, state_path=None if tmp_path is None else tmp_path / "p.json")
    core.apply(Bar(T, "binance", "BTC/USDT", MarketKind.SPOT, 30_000, 30_000, 30_000, 30_000.0, 10.0))
    core.apply(Bar(T, "binance", "BTC/USDT:USDT", MarketKind.PERP, 30_000, 30_000, 30_000, 30_000.0, 10.0))
    return ex


def test_the_quarterly_is_listed_priced_traded_and_pays_no_funding(tmp_path):
    async def go():
        ex = _venue(tmp_path)
        assert await ex.dated_futures("BTC") == [(Q, EXP)] and await ex.dated_futures("ETH") == []
        markets = await ex.load_markets()
        assert markets[Q].lot_size == markets["BTC/USDT:USDT"].lot_size
        px = 30_000.0 * (1 + 0.08 * 91 / 365)
        assert (await ex.fetch_ticker(Q)).last == pytest.approx(px)
        o = await ex.create_order(OrderRequest(Q, Side.SELL, 0.02, "q1"))
        assert o.filled == pytest.approx(0.02) and o.avg_price == pytest.approx(px)
        assert o.fee == pytest.approx(0.02 * px * 0.0005)  # the perp's taker fee
        [pos] = await ex.fetch_positions()
        assert (pos.symbol, pos.qty) == (Q, pytest.approx(-0.02))
        ex.core.apply(FundingEvent(pd.Timestamp("2026-09-25T08:00Z"), "binance", "BTC/USDT:USDT", 0.001))
        assert ex.core.funding_payments == []  # the short is on the quarterly: no funding
        ex.save()
        back = PaperExchange.load(tmp_path / "p.json")
        assert back.core.config.quarterlies == ex.core.config.quarterlies
        [pos2] = await back.fetch_positions()
        assert (pos2.symbol, pos2.qty) == (Q, pytest.approx(-0.02))
    asyncio.run(go())


def test_no_order_on_the_quarterly_at_or_after_expiry():
    ex = _venue()
    ex.core.apply(Bar(EXP, "binance", "BTC/USDT", MarketKind.SPOT, 30_000, 30_000, 30_000, 30_000.0, 10.0))
    with pytest.raises(InvalidOrder, match="expired"):
        ex.core.create_order(OrderRequest(Q, Side.SELL, 0.02, "q2"))
