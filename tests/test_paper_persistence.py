"""Persistence round trip (save mid-run, reload, continue == uninterrupted), determinism, and the
async PaperExchange shell."""

from __future__ import annotations

import asyncio
import json
from itertools import groupby

import pandas as pd
import pytest

from hedge_core.data.shared import SAMPLE, load_tidy
from hedge_core.errors import DataError, InsufficientFunds, InvalidOrder
from hedge_core.exchange.base import ExchangeAdapter
from hedge_core.exchange.feeds import iter_events, known_at
from hedge_core.exchange.paper import PaperExchange, load_state, save_state
from hedge_core.exchange.paper.core import PaperConfig, PaperCore
from hedge_core.store import Store
from hedge_core.types import (
    Bar,
    FundingEvent,
    MarginMode,
    MarketKind,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TradingMode,
)

SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"
CFG = dict(participation=2e-6, slippage_noise_bps=2.0, impact_k_bps=20.0)  # ~0.02-0.5 BTC per bar: partial fills


@pytest.fixture(scope="module")
def real_events(shared_data):
    st = Store(":memory:")
    win = slice("2023-03-01", "2023-03-31")
    for kind, sym in (("spot", SPOT), ("perp", PERP), ("mark", PERP)):
        st.write_bars(load_tidy(SAMPLE, "binance", "BTCUSDT", kind, "1h").loc[win], venue="binance", symbol=sym,
                      kind=kind, timeframe="1h")
    st.write_funding(load_tidy(SAMPLE, "binance", "BTCUSDT", "funding", "8h").loc[win], venue="binance",
                     symbol=PERP)
    evs = list(iter_events(st, "binance", SPOT, PERP, "1h", "2023-03-01T00:00Z", "2023-03-15T00:00Z"))
    st.close()
    return evs


def new_core(seed: int = 7) -> PaperCore:
    core = PaperCore(PaperConfig(seed=seed, **CFG),
                     balances={"spot": {"USDT": 50_000.0, "BTC": 0.5}, "perp": {"USDT": 20_000.0}})
    core.set_leverage(PERP, 5)
    return core


def act(core: PaperCore, i: int) -> None:
    """A deterministic toy strategy touching every code path: market/limit, spot/perp, cancel,
    transfer, reduce-only, isolated switch."""
    if core.ref_price(PERP) is None or core.ref_price(SPOT) is None:
        return
    mark = core.mark_price(PERP)
    inst = core.instruments[PERP]
    try:
        if i % 7 == 0:
            core.create_order(OrderRequest(SPOT, Side.BUY, 0.02, f"sb{i}"))
        if i % 7 == 3:
            core.create_order(OrderRequest(PERP, Side.SELL, 0.02, f"ps{i}"))
        if i % 11 == 0:
            core.create_order(OrderRequest(PERP, Side.BUY, 0.01, f"pl{i}", OrderType.LIMIT,
                                           inst.round_price(mark * 0.995)))
        if i % 13 == 5 and core.open_orders():
            o = core.open_orders()[0]
            core.cancel_order(o.symbol, order_id=o.id)
        if i % 17 == 0:
            core.create_order(OrderRequest(SPOT, Side.SELL, 0.01, f"ss{i}", OrderType.LIMIT,
                                           core.instruments[SPOT].round_price(core.ref_price(SPOT) * 1.003)))
        if i % 29 == 0:
            core.transfer("USDT", 100.0, "spot", "perp")
        if i % 31 == 0 and core.positions_view():
            core.create_order(OrderRequest(PERP, Side.BUY, 0.01, f"ro{i}", reduce_only=True))
    except (InsufficientFunds, InvalidOrder):
        pass


def run(core: PaperCore, events, start_instant: int = 0, stop_instant: int | None = None) -> int:
    """Replay with the common.md order at each instant: bars -> act -> funding. Returns instants done."""
    n = 0
    for n, (_, group) in enumerate(groupby(events, key=known_at)):
        if n < start_instant:
            continue
        if stop_instant is not None and n >= stop_instant:
            return n
        group = list(group)
        for ev in group:
            if isinstance(ev, Bar):
                core.apply(ev)
        act(core, n)
        for ev in group:
            if isinstance(ev, FundingEvent):
                core.apply(ev)
    return n + 1


@pytest.mark.shared_data
def test_save_mid_run_reload_continue_equals_uninterrupted(real_events, tmp_path):
    full = new_core()
    run(full, real_events)
    filled_orders = sum(1 for o in full.orders.values() if o.filled > 0)
    assert len(full.fills) > filled_orders > 50  # some orders filled in several slices
    assert full.funding_payments and full.transfers and any(o.status is OrderStatus.CANCELED
                                                            for o in full.orders.values())

    part = new_core()
    k = run(part, real_events, stop_instant=150)
    ex = PaperExchange(part, state_path=tmp_path / "paper.json")
    ex.save()
    resumed = PaperExchange.load(tmp_path / "paper.json").core
    run(resumed, real_events, start_instant=k)
    assert json.dumps(resumed.state_dict(), sort_keys=True) == json.dumps(full.state_dict(), sort_keys=True)
    assert resumed.fills == full.fills and resumed.funding_payments == full.funding_payments


@pytest.mark.shared_data
def test_determinism_same_feed_and_seed(real_events):
    a, b, c = new_core(7), new_core(7), new_core(8)
    for core in (a, b, c):
        run(core, real_events)
    assert a.fills == b.fills and a.equity() == b.equity()
    assert [f.price for f in a.fills] != [f.price for f in c.fills]  # the seed matters (noise on)


def test_state_round_trip_is_exact_and_json_safe(tmp_path):
    core = PaperCore(PaperConfig(participation=0.5, slippage_noise_bps=1.0),
                     balances={"spot": {"USDT": 10_000.0}, "perp": {"USDT": 10_000.0}})
    core.set_margin_mode(PERP, MarginMode.ISOLATED)
    t = pd.Timestamp("2024-01-01T00:00Z")
    for sym, kind in ((SPOT, MarketKind.SPOT), (PERP, MarketKind.PERP), (PERP, MarketKind.MARK)):
        core.apply(Bar(t, "binance", sym, kind, 100.0, 101.0, 99.0, 100.0, 10.0))
    core.create_order(OrderRequest(PERP, Side.BUY, 8.0, "a"))  # partial: 5 of 8
    core.create_order(OrderRequest(SPOT, Side.BUY, 1.0, "b", OrderType.LIMIT, 95.0))
    state = core.state_dict()
    text = json.dumps(state, allow_nan=False)
    again = PaperCore.from_state(json.loads(text))
    assert json.dumps(again.state_dict(), allow_nan=False) == text
    assert again.open_orders() == core.open_orders()
    assert again.positions_view() == core.positions_view()
    assert again.balance("spot") == core.balance("spot")
    # the restored rng continues the same stream
    assert again._rng.random() == core._rng.random()


def test_atomic_save_and_broken_file(tmp_path):
    p = tmp_path / "s.json"
    save_state({"a": 1}, p)
    save_state({"a": 2}, p)
    assert load_state(p) == {"a": 2}
    assert [x.name for x in tmp_path.iterdir()] == ["s.json"]  # no temp files left behind
    p.write_text("{not json")
    with pytest.raises(DataError, match="s.json"):
        load_state(p)
    with pytest.raises(ValueError):
        save_state({"x": float("nan")}, tmp_path / "nan.json")  # NaN is not valid JSON
    assert not (tmp_path / "nan.json").exists()


def test_paper_exchange_adapter_end_to_end(tmp_path):
    async def main():
        core = PaperCore(PaperConfig(), balances={"spot": {"USDT": 10_000.0}, "perp": {"USDT": 5_000.0}})
        ex = PaperExchange(core, state_path=tmp_path / "p.json")
        assert isinstance(ex, ExchangeAdapter) and ex.mode is TradingMode.PAPER
        t = pd.Timestamp("2024-01-01T00:00Z")
        for sym, kind in ((SPOT, MarketKind.SPOT), (PERP, MarketKind.PERP), (PERP, MarketKind.MARK)):
            await ex.apply(Bar(t, "binance", sym, kind, 100.0, 101.0, 99.0, 100.0, 1e6))
        markets = await ex.load_markets()
        assert markets[PERP].min_notional == 100.0
        await ex.set_leverage(PERP, 10)
        await ex.set_margin_mode(PERP, MarginMode.CROSS)
        o = await ex.create_order(OrderRequest(PERP, Side.SELL, 2.0, "short"))
        assert o.status is OrderStatus.CLOSED
        assert (await ex.fetch_order(PERP, client_order_id="short")).filled == 2.0
        (pos,) = await ex.fetch_positions()
        assert pos.qty == -2.0
        await ex.apply(FundingEvent(t + pd.Timedelta("1h"), "binance", PERP, 1e-4))
        pays = await ex.fetch_funding_payments(PERP)
        assert pays[0].amount == pytest.approx(2 * 100.0 * 1e-4)
        fr = await ex.fetch_funding_rate(PERP)
        assert fr.rate == 1e-4 and fr.ts == t + pd.Timedelta("9h")
        assert len(await ex.fetch_funding_rate_history(PERP)) == 1
        assert len(await ex.fetch_my_trades(PERP)) == 1
        tk = await ex.fetch_ticker(PERP)
        assert tk.bid < tk.last < tk.ask and tk.mark == 100.0
        await ex.transfer("USDT", 1_000.0, "spot", "perp")
        assert (await ex.fetch_balance("perp"))["USDT"].total > 5_000.0
        await ex.close()
        resumed = PaperExchange.load(tmp_path / "p.json")
        assert (await resumed.fetch_positions())[0].qty == -2.0
        assert (await resumed.fetch_balance("spot")) == (await ex.fetch_balance("spot"))
        with pytest.raises(Exception, match="Duplicate"):
            await resumed.create_order(OrderRequest(PERP, Side.SELL, 2.0, "short"))

    asyncio.run(main())


def _synthetic_store() -> Store:
    import numpy as np

    st = Store(":memory:")
    idx = pd.date_range("2024-01-01", periods=72, freq="1h", tz="UTC")
    close = 40_000 * np.exp(np.cumsum(np.sin(np.arange(72) * 0.7) * 0.004))
    df = pd.DataFrame({"open": close, "high": close * 1.003, "low": close * 0.997, "close": close,
                       "volume": 50.0}, index=idx)
    st.write_bars(df, venue="binance", symbol=SPOT, kind="spot", timeframe="1h")
    st.write_bars(df, venue="binance", symbol=PERP, kind="perp", timeframe="1h")
    st.write_bars(df.drop(columns="volume"), venue="binance", symbol=PERP, kind="mark", timeframe="1h")
    fidx = pd.date_range("2024-01-01", periods=10, freq="8h", tz="UTC")
    st.write_funding(pd.DataFrame({"funding_rate": np.linspace(-2e-4, 3e-4, 10)}, index=fidx),
                     venue="binance", symbol=PERP)
    return st


def test_paper_run_over_replay_feed_resumes_between_bars_and_funding(tmp_path):
    """Stop right after the bars known at a funding instant (before its funding event), restart
    from the saved file and resume the feed with ``after=core.last_event_key``: same end state."""
    from hedge_core.exchange.feeds import ReplayFeed

    st = _synthetic_store()
    span = ("2024-01-01T00:00Z", "2024-01-03T23:00Z")

    def fresh() -> PaperCore:
        return PaperCore(PaperConfig(participation=0.01, slippage_noise_bps=1.0, seed=3),
                         balances={"spot": {"USDT": 100_000.0}, "perp": {"USDT": 50_000.0}})

    async def drive(ex: PaperExchange, feed, stop_before=None) -> bool:
        n = 0
        async for ev in feed:
            if stop_before is not None and stop_before(ev):
                await feed.aclose()
                return False
            await ex.apply(ev)
            n += 1
            if isinstance(ev, Bar) and ev.kind is MarketKind.MARK and ev.ts.hour % 5 == 0:
                side = Side.SELL if ev.ts.hour % 2 else Side.BUY
                await ex.create_order(OrderRequest(PERP, side, 0.7, f"o{ev.ts.value}"))
        return True

    async def main():
        full = PaperExchange(fresh())
        await drive(full, ReplayFeed(st, "binance", SPOT, PERP, "1h", *span))
        path = tmp_path / "run.json"
        part = PaperExchange(fresh(), state_path=path, fsync=False)
        cut = pd.Timestamp("2024-01-02T08:00Z")  # a funding instant
        stopped = not await drive(part, ReplayFeed(st, "binance", SPOT, PERP, "1h", *span),
                                  stop_before=lambda ev: isinstance(ev, FundingEvent) and ev.ts == cut)
        assert stopped and part.core.now == cut
        resumed = PaperExchange.load(path, fsync=False)
        key = resumed.core.last_event_key
        assert key[0] == cut and key[1] == 0  # the last thing applied was a bar known at the cut
        await drive(resumed, ReplayFeed(st, "binance", SPOT, PERP, "1h", *span, after=key))
        assert any(p.ts == cut for p in resumed.core.funding_payments)  # the cut's funding was not lost
        a = json.dumps(resumed.core.state_dict(), sort_keys=True)
        b = json.dumps(full.core.state_dict(), sort_keys=True)
        assert a == b
        assert len(full.core.fills) > len(full.core.orders)  # partial fills happened

    asyncio.run(main())
    st.close()
