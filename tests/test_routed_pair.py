"""Two perp legs of ONE symbol behind one adapter (``exchange.routed_pair``): routed by LEG (the client order
id names it), not by symbol; settings on both venues; wallets by account; no transfer between venues; the
first venue settles its own funding series at the replay's settlement instants."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.errors import InvalidInput
from hedge_core.exchange.routed_pair import PerpPairAdapter, PerpPairPaper, leg_of_client_order_id
from hedge_core.types import Bar, FundingEvent, MarketKind, OrderRequest, OrderType, Side, client_order_id
from tests.support.perp_pair import PERP, T0, perp_venue


def test_the_leg_comes_from_the_engines_client_order_id():
    assert leg_of_client_order_id(client_order_id("h1", "spot", 7, 2)) == "spot"
    assert leg_of_client_order_id(client_order_id("h1", "perp", 7, 0)) == "perp"
    assert leg_of_client_order_id("liq-123") is None and leg_of_client_order_id("x") is None


def test_orders_route_by_leg_settings_go_to_both_and_wallets_by_account():
    a, b = perp_venue("bybit", 5_000.0), perp_venue("okx", 7_000.0)
    pair = PerpPairPaper(a, b)
    for ad in (a, b):
        asyncio.run(ad.apply(Bar(T0, ad.venue, PERP, MarketKind.PERP, 100.0, 100.0, 100.0, 100.0, 1e6)))
        asyncio.run(ad.apply(Bar(T0, ad.venue, PERP, MarketKind.MARK, 100.0, 100.0, 100.0, 100.0, 0.0)))
    asyncio.run(pair.set_leverage(PERP, 2.0))
    assert a.core.leverage.get(PERP) == 2.0 and b.core.leverage.get(PERP) == 2.0
    first = OrderRequest(PERP, Side.BUY, 1.0, client_order_id("h1", "spot", 0), OrderType.MARKET)
    second = OrderRequest(PERP, Side.SELL, 1.0, client_order_id("h1", "perp", 1), OrderType.MARKET)
    asyncio.run(pair.create_order(first))
    asyncio.run(pair.create_order(second))
    assert [p.qty for p in a.core.positions_view()] == [1.0] and [p.qty for p in b.core.positions_view()] == [-1.0]
    got = asyncio.run(pair.fetch_order(PERP, client_order_id=first.client_order_id))
    assert got.client_order_id == first.client_order_id and got.side is Side.BUY  # asked at bybit, where it is
    assert asyncio.run(pair.fetch_balance("spot"))["USDT"].total == pytest.approx(a.core.wallet)  # A's futures wallet
    assert asyncio.run(pair.fetch_balance("perp"))["USDT"].total == pytest.approx(b.core.wallet)
    with pytest.raises(InvalidInput, match="transfer"):
        asyncio.run(pair.transfer("USDT", 1.0, "spot", "perp"))
    with pytest.raises(InvalidInput, match="venues"):
        PerpPairAdapter(a, perp_venue("bybit", 1.0))


def test_the_first_venue_settles_its_own_series_at_the_replays_instants():
    a, b = perp_venue("bybit", 5_000.0), perp_venue("okx", 5_000.0)
    t8 = T0 + pd.Timedelta(hours=8)
    own = pd.DataFrame({"funding_rate": [0.0002]}, index=pd.DatetimeIndex([t8]))
    pair = PerpPairPaper(a, b, first_funding=own)
    # the first leg's next settlement (MarketUpdate.spot_next_funding_ts: deferred soft exits look at both legs)
    assert pair.first_next_funding_ts(T0) == t8 and pair.first_next_funding_ts(t8) is None
    asyncio.run(pair.apply(FundingEvent(t8, "demo", PERP, 0.0009)))
    assert b.core.funding_history[-1].rate == 0.0009  # B: the replay's settlement
    (ev,) = pair.take_first_settled()
    assert ev.venue == "bybit" and ev.rate == 0.0002 and pair.first_last_rate == 0.0002  # A: its own rate
    assert pair.take_first_settled() == []
    asyncio.run(pair.apply(FundingEvent(t8 + pd.Timedelta(hours=8), "demo", PERP, 0.0009)))
    assert pair.take_first_settled() == []  # no rate of A's at that instant: A settles nothing


def test_the_second_venue_settles_its_own_series_or_falls_back_to_the_replays():
    # B with its own stored series settles ITS rate at the replay's instants where it has one (nothing where it
    # has none); B without a series settles the replayed data venue's event (the runner warns, see below)
    a, b = perp_venue("bybit", 5_000.0), perp_venue("okx", 5_000.0)
    t8, t16 = T0 + pd.Timedelta(hours=8), T0 + pd.Timedelta(hours=16)
    own_b = pd.DataFrame({"funding_rate": [0.0003], "interval_hours": [8.0]}, index=pd.DatetimeIndex([t8]))
    pair = PerpPairPaper(a, b, second_funding=own_b)
    asyncio.run(pair.apply(FundingEvent(t8, "demo", PERP, 0.0009)))
    (ev,) = pair.take_second_settled()
    assert ev.venue == "okx" and ev.rate == 0.0003 and b.core.funding_history[-1].rate == 0.0003
    assert pair.second_last_rate == 0.0003 and pair.take_second_settled() == []
    n = len(b.core.funding_history)
    asyncio.run(pair.apply(FundingEvent(t16, "demo", PERP, 0.0009)))
    assert pair.take_second_settled() == [] and len(b.core.funding_history) == n  # no rate of B's at 16:00
    fallback = PerpPairPaper(perp_venue("bybit", 1.0), perp_venue("okx", 1.0))
    asyncio.run(fallback.apply(FundingEvent(t8, "demo", PERP, 0.0009)))
    (ev,) = fallback.take_second_settled()
    assert ev.venue == "okx" and ev.rate == 0.0009 and fallback.second_funding is None
    assert pd.isna(fallback.second_last_rate)  # the market's rate stays the data venue's


def test_the_runner_gives_each_paper_venue_its_stored_series_and_warns_without_one(tmp_path, caplog):
    from hedge_core.runner.hedge_spec import HedgeSpec
    from hedge_core.runner.supervisor import Supervisor
    from hedge_core.store import Store

    store = Store(tmp_path / "db.duckdb", hold=True)
    try:
        ts = pd.date_range(T0, periods=3, freq="8h")
        store.write_funding(pd.DataFrame({"ts": ts, "funding_rate": 0.00001}), venue="bybit", symbol=PERP)
        sup = Supervisor(store, tmp_path / "home")
        spec = HedgeSpec(hedge_id="pp", venue="bybit", perp_venue="okx", legs="perp_perp", mode="paper", feed="replay")
        with caplog.at_level("WARNING", logger="hedge_core.runner.supervisor"):
            pair = sup._paper_pair(spec)
        assert pair.second_funding is None and len(pair.first_funding) == 3
        assert any("no stored funding of the second venue" in r.getMessage() for r in caplog.records)
        store.write_funding(pd.DataFrame({"ts": ts, "funding_rate": 0.0004}), venue="okx", symbol=PERP)
        caplog.clear()
        with caplog.at_level("WARNING", logger="hedge_core.runner.supervisor"):
            pair = sup._paper_pair(spec.model_copy(update={"hedge_id": "pp2"}))
        assert list(pair.second_funding["funding_rate"]) == [0.0004] * 3
        assert not any("no stored funding" in r.getMessage() for r in caplog.records)
    finally:
        store.close()
