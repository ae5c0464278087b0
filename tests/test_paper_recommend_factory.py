"""Recommend mode sends nothing; the adapter factory picks paper/live/recommend safely."""

from __future__ import annotations

import asyncio
import json

import pandas as pd
import pytest

from hedge_core.errors import InvalidInput, InvalidOrder
from hedge_core.exchange.base import ExchangeAdapter
from hedge_core.exchange.factory import make_adapter
from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.paper.core import PaperConfig, PaperCore
from hedge_core.exchange.recommend import RecommendAdapter
from hedge_core.types import (
    Bar,
    MarginMode,
    MarketKind,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionMode,
    Side,
    TradingMode,
)

PERP = "BTC/USDT:USDT"
T0 = pd.Timestamp("2024-01-01T00:00Z")


def paper() -> PaperExchange:
    core = PaperCore(PaperConfig(), balances={"perp": {"USDT": 10_000.0}})
    for kind in (MarketKind.PERP, MarketKind.MARK):
        core.apply(Bar(T0, "binance", PERP, kind, 100.0, 100.0, 100.0, 100.0, 1e6))
    return PaperExchange(core)


def test_recommend_records_and_sends_nothing():
    async def main():
        under = paper()
        before = json.dumps(under.core.state_dict(), sort_keys=True)
        rec = RecommendAdapter(under, clock=lambda: under.core.now)
        assert isinstance(rec, ExchangeAdapter) and rec.mode is TradingMode.RECOMMEND
        assert (await rec.fetch_ticker(PERP)).last == 100.0  # reads pass through
        o = await rec.create_order(OrderRequest(PERP, Side.BUY, 2.0004, "c1", OrderType.LIMIT, 99.97))
        assert o.status is OrderStatus.REJECTED and o.filled == 0.0 and o.id.startswith("rec-")
        assert o.qty == 2.0 and o.price == pytest.approx(100.0)  # rounded to lot and tick
        assert await rec.create_order(OrderRequest(PERP, Side.BUY, 2.0, "c1")) == o  # same id: same record
        assert await rec.fetch_order(PERP, client_order_id="c1") == o
        assert (await rec.cancel_order(PERP, order_id=o.id)) == o
        await rec.set_leverage(PERP, 3)
        await rec.set_margin_mode(PERP, MarginMode.ISOLATED)
        await rec.set_position_mode(PositionMode.HEDGE)
        await rec.transfer("USDT", 10.0, "perp", "spot")
        assert [r.method for r in rec.recommendations] == [
            "create_order", "cancel_order", "set_leverage", "set_margin_mode", "set_position_mode", "transfer"]
        assert rec.recommendations[0].ts == T0 + pd.Timedelta("1h")
        assert rec.recommendations[0].request["client_order_id"] == "c1"
        assert json.dumps(under.core.state_dict(), sort_keys=True) == before  # nothing reached the venue
        with pytest.raises(InvalidOrder, match="Invalid symbol"):
            await rec.create_order(OrderRequest("PEPE/USDT", Side.BUY, 1.0, "c2"))

    asyncio.run(main())


def test_factory_paper_and_resume(tmp_path):
    async def main():
        ex = make_adapter("paper", "binance", balances={"perp": {"USDT": 1_000.0}}, state_path=tmp_path / "s.json")
        assert isinstance(ex, PaperExchange)
        await ex.transfer("USDT", 100.0, "perp", "spot")
        again = make_adapter(TradingMode.PAPER, "binance", state_path=tmp_path / "s.json")
        assert (await again.fetch_balance("spot"))["USDT"].total == 100.0

    asyncio.run(main())


def test_factory_live_requires_confirmation_and_keys():
    with pytest.raises(InvalidInput, match="confirm_live"):
        make_adapter("live", "binance", env={"HEDGE_BINANCE_API_KEY": "k" * 16, "HEDGE_BINANCE_API_SECRET": "s" * 16})
    with pytest.raises(InvalidInput, match="credentials"):
        make_adapter("live", "binance", confirm_live=True, env={})
    ex = make_adapter("live", "binance", confirm_live=True,
                      env={"HEDGE_BINANCE_API_KEY": "k" * 16, "HEDGE_BINANCE_API_SECRET": "s" * 16})
    assert type(ex).__name__ == "CcxtLiveAdapter" and ex.venue == "binance"
    asyncio.run(ex.close())


def test_factory_recommend_and_bad_mode():
    rec = make_adapter("recommend", "binance", market_data=paper())
    assert isinstance(rec, RecommendAdapter)
    with pytest.raises(InvalidInput, match="mode"):
        make_adapter("yolo", "binance")
    with pytest.raises(InvalidInput, match="venue"):
        make_adapter("paper", "Binance")
    with pytest.raises(InvalidInput, match="paper_config.venue"):
        make_adapter("paper", "okx", paper_config=PaperConfig(venue="binance"))
