"""Scenarios through the paper venue (and the fault injector): the book always ends hedged or
flat, never naked, never with a duplicate order, and the ledger equals the venue's balances."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from hedge_core.engine import State, new_hedge
from hedge_core.engine.actions import PlaceOrder, QueryOrder
from hedge_core.engine.driver import DriverHooks, HedgeDriver
from hedge_core.engine.events import Timer
from hedge_core.engine.replay import (
    build_steps,
    funding_settled,
    run_paper,
    snapshot_row,
)
from hedge_core.errors import NetworkError
from hedge_core.exchange.faults import FaultInjector
from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.paper.core import PaperConfig, PaperCore, default_instruments
from hedge_core.exchange.recommend import RecommendAdapter
from hedge_core.params.models import CarryParams, ExitParams, RebalanceParams

T0 = pd.Timestamp("2024-01-01T00:00Z")
SPOT0, PERP0 = 20_000.0, 10_000.0


def market(seed: int, hours: int = 120, vol: float = 0.01, rate: float = 0.0005):
    rng = np.random.default_rng(seed)
    idx = pd.date_range(T0, periods=hours, freq="1h", tz="UTC")
    close = 40_000 * np.exp(np.cumsum(rng.normal(0, vol, hours)))
    bars = pd.DataFrame({"open": close, "high": close * 1.001, "low": close * 0.999, "close": close,
                         "volume": 1_000.0}, index=idx)
    perp = bars.assign(close=bars["close"] * 1.0002, open=bars["open"] * 1.0002)
    ftimes = pd.date_range(T0 + pd.Timedelta(hours=8), periods=hours // 8, freq="8h", tz="UTC")
    rates = rate + rng.normal(0, rate / 2, len(ftimes))
    funding = pd.DataFrame({"funding_rate": rates}, index=ftimes)
    return build_steps(bars, perp, venue="binance", spot_symbol="BTC/USDT", perp_symbol="BTC/USDT:USDT",
                       mark=perp, funding=funding)


def venue(name: str = "binance") -> PaperExchange:
    core = PaperCore(PaperConfig(venue=name, instruments=default_instruments(name)),
                     balances={"spot": {"USDT": SPOT0}, "perp": {"USDT": PERP0}})
    return PaperExchange(core, save_on_apply=False)


def carry(**kw) -> CarryParams:
    base = {"notional": 8_000.0, "min_funding_rate": 0.0001, "min_net_carry": -1.0,
                "exit": ExitParams(max_holding_hours=30, rearm=True),
                "rebalance": RebalanceParams(drift_threshold=0.05, cooldown_s=0)}
    base.update(kw)
    return CarryParams(**base)


def assert_ledger_matches(drv: HedgeDriver, spot_ex: PaperExchange, perp_ex: PaperExchange):
    c = drv.ctx
    sc, pc = spot_ex.core, perp_ex.core
    assert sc.spot.get("BTC", 0.0) == pytest.approx(c.spot.qty, abs=1e-9)
    pos = {p.symbol: p.qty for p in pc.positions_view()}
    assert pos.get("BTC/USDT:USDT", 0.0) == pytest.approx(c.perp.qty, abs=1e-9)
    assert sc.spot["USDT"] == pytest.approx(SPOT0 + c.spot.cash - c.spot.fees, rel=1e-10, abs=1e-6)
    assert pc.wallet == pytest.approx(PERP0 + c.perp.realized - c.perp.fees + c.perp.funding, rel=1e-10, abs=1e-6)


def assert_hedged_or_flat(c, tol: float = 0.001 + 1e-9):
    """Never naked: with nothing working, the book is flat or hedged within one perp lot."""
    if c.pending:
        return
    if c.state in (State.ANALYZING_MARKET, State.COMPLETED):
        assert abs(c.spot.qty) <= 1e-12 and abs(c.perp.qty) <= 1e-12, c
    if c.state is State.MONITORING_POSITIONS:
        assert abs(c.delta) <= tol, (c.spot.qty, c.perp.qty)


async def _run(drv, venues, steps, check_each=True):
    for s in steps:
        for b in s.bars:
            for ex in venues:
                await ex.apply(b)
        await drv.feed(Timer(s.ts, heartbeat=False))
        await drv.feed(s.market)
        if s.funding is not None:
            for ex in venues:
                await ex.apply(s.funding)
            perp_venue = next(ex for ex in venues if ex.venue == drv.ctx.perp.venue)
            await drv.feed(await funding_settled(perp_venue, s.funding, s.market.mark_or_perp))
        if check_each:
            assert_hedged_or_flat(drv.ctx)


def test_clean_carry_cycles_ledger_equals_balances():
    ex = venue()
    inst = {i.symbol: i for i in default_instruments()}
    intents, transitions = [], []
    hooks = DriverHooks(on_intent=lambda h, a: intents.append(a), on_transition=lambda h, t: transitions.append(t))
    drv = HedgeDriver(new_hedge("c1", "carry", inst["BTC/USDT"], inst["BTC/USDT:USDT"], T0), carry(), {"binance": ex},
                      hooks=hooks)
    asyncio.run(_run(drv, [ex], market(1)))
    assert_ledger_matches(drv, ex, ex)
    assert len(intents) == len([a for a in drv.actions if isinstance(a, PlaceOrder)]) >= 4
    assert sum(1 for t in transitions if t.to_state == "MONITORING_POSITIONS") >= 2  # re-armed at least once
    assert drv.ctx.perp.funding != 0.0


def test_persist_before_acting_on_intent_runs_before_the_venue_sees_the_order():
    ex = venue()
    inst = {i.symbol: i for i in default_instruments()}
    seen_at_intent: list[int] = []
    hooks = DriverHooks(on_intent=lambda h, a: seen_at_intent.append(len(ex.core.orders)))
    drv = HedgeDriver(new_hedge("c1", "carry", inst["BTC/USDT"], inst["BTC/USDT:USDT"], T0), carry(), {"binance": ex},
                      hooks=hooks)
    asyncio.run(_run(drv, [ex], market(2)[:12]))
    assert seen_at_intent[:2] == [0, 1]  # order n is journaled while the venue holds n orders


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fault", ["timeout", "drop", "error"])
def test_faults_never_naked_never_duplicated(seed, fault):
    ex = venue()
    kw = {fault: 0.3}
    if fault == "error":
        kw["error_cls"] = NetworkError
    faulty = FaultInjector(ex, seed=seed, methods=["create_order", "fetch_order", "cancel_order"], **kw)
    inst = {i.symbol: i for i in default_instruments()}
    drv = HedgeDriver(new_hedge(f"f{seed}", "carry", inst["BTC/USDT"], inst["BTC/USDT:USDT"], T0), carry(),
                      {"binance": faulty})
    asyncio.run(_run(drv, [ex], market(seed, hours=96)))
    c = drv.ctx
    assert c.state is not State.ERROR
    # no duplicate: every order the venue accepted is one the engine asked for, each id once
    asked = {a.request.client_order_id for a in drv.actions if isinstance(a, PlaceOrder)}
    venue_ids = [o.cid for o in ex.core.orders.values()]
    assert len(venue_ids) == len(set(venue_ids)) and set(venue_ids) <= asked
    assert_ledger_matches(drv, ex, ex)
    assert faulty.counts()[fault] > 0
    # unanswered calls were resolved by queries (by client order id), not by blind re-sends
    assert any(isinstance(a, QueryOrder) for a in drv.actions)


def test_partial_fills_with_participation_cap_end_hedged():
    core = PaperCore(PaperConfig(participation=0.0001), balances={"spot": {"USDT": SPOT0}, "perp": {"USDT": PERP0}})
    ex = PaperExchange(core, save_on_apply=False)  # 0.1 BTC of a 1,000 BTC bar per bar: entries fill in pieces
    inst = {i.symbol: i for i in default_instruments()}
    p = carry(exit=ExitParams(max_holding_hours=None, profit_target_pct=None, stop_loss_pct=None,
                              funding_unfavourable_intervals=None))
    drv = HedgeDriver(new_hedge("p1", "carry", inst["BTC/USDT"], inst["BTC/USDT:USDT"], T0), p, {"binance": ex})
    asyncio.run(_run(drv, [ex], market(3, hours=48)))
    c = drv.ctx
    assert c.state is State.MONITORING_POSITIONS
    assert 0 < c.spot.qty < 0.2 + 1e-9 and abs(c.delta) <= 0.001
    assert any(r.reason.startswith("spot holds") for r in c.history)
    assert_ledger_matches(drv, ex, ex)


def test_legs_on_two_venues():
    a, b = venue("binance"), venue("bybit")
    ia = {i.symbol: i for i in default_instruments("binance")}
    ib = {i.symbol: i for i in default_instruments("bybit")}
    drv = HedgeDriver(new_hedge("x1", "carry", ia["BTC/USDT"], ib["BTC/USDT:USDT"], T0), carry(),
                      {"binance": a, "bybit": b})
    asyncio.run(_run(drv, [a, b], market(4, hours=24)))
    assert drv.ctx.spot.qty > 0 and a.core.spot["BTC"] == pytest.approx(drv.ctx.spot.qty)
    assert {p.symbol: p.qty for p in b.core.positions_view()}["BTC/USDT:USDT"] == pytest.approx(drv.ctx.perp.qty)
    assert not a.core.positions_view() and b.core.spot.get("BTC", 0.0) == 0.0
    assert_ledger_matches(drv, a, b)


def test_recommend_mode_records_orders_and_sends_none():
    ex = venue()
    rec = RecommendAdapter(ex, clock=lambda: ex.core.now)
    inst = {i.symbol: i for i in default_instruments()}
    drv = HedgeDriver(new_hedge("r1", "carry", inst["BTC/USDT"], inst["BTC/USDT:USDT"], T0), carry(), {"binance": rec})
    asyncio.run(_run(drv, [ex], market(5, hours=12)))
    assert not ex.core.orders and ex.core.spot.get("BTC", 0.0) == 0.0
    creates = [r for r in rec.recommendations if r.method == "create_order"]
    assert creates and creates[0].request["symbol"] == "BTC/USDT" and creates[0].request["side"] == "buy"
    assert drv.ctx.is_flat and drv.ctx.state is State.ANALYZING_MARKET


def test_replay_runner_snapshots():
    ex = venue()
    inst = {i.symbol: i for i in default_instruments()}
    drv = HedgeDriver(new_hedge("s1", "carry", inst["BTC/USDT"], inst["BTC/USDT:USDT"], T0), carry(), {"binance": ex})
    df = asyncio.run(run_paper(drv, {"binance": ex}, market(6, hours=24)))
    assert len(df) == 24 and set(snapshot_row(drv)) == set(df.columns) | {"ts"}
    assert (df["spot_qty"] >= 0).all()


def test_venue_liquidation_is_polled_booked_and_rehedged():
    from hedge_core.params.models import GuardParams, LeverageParams
    ex = venue()
    inst = {i.symbol: i for i in default_instruments()}
    p = carry(leverage=LeverageParams(min_leverage=50, max_leverage=50),
              guards=GuardParams(liq_distance_reduce=0.002, liq_distance_close=0.001, funding_cost_apr_limit=None),
              exit=ExitParams(max_holding_hours=None, stop_loss_pct=None, profit_target_pct=None,
                              funding_unfavourable_intervals=None))
    steps = market(7, hours=40, vol=0.0)
    # a +5 % bar after entry: a 50x short is liquidated by the venue
    bumped = []
    for s in steps:
        if s.ts >= T0 + pd.Timedelta(hours=20):
            from dataclasses import replace as rp
            bars = tuple(rp(b, open=b.open * 1.05, high=b.high * 1.05, low=b.low * 1.05, close=b.close * 1.05)
                         for b in s.bars)
            s = rp(s, bars=bars, market=rp(s.market, spot=s.market.spot * 1.05, perp=s.market.perp * 1.05,
                                           mark=s.market.mark * 1.05))
        bumped.append(s)
    drv = HedgeDriver(new_hedge("L", "carry", inst["BTC/USDT"], inst["BTC/USDT:USDT"], T0), p, {"binance": ex})
    asyncio.run(_run(drv, [ex], bumped))
    assert ex.core.liquidations, "the scenario must make the venue liquidate"
    crit = [a for a in drv.actions if getattr(a, "message", "").startswith("external perp fill")]
    assert crit
    # the venue caps an isolated loss at the position's margin (the rest is insurance cover);
    # the engine books the liquidation fill as executed, so the ledger differs by exactly that cover
    cover = sum(liq["insurance_cover"] for liq in ex.core.liquidations)
    c = drv.ctx
    assert ex.core.wallet == pytest.approx(PERP0 + c.perp.realized - c.perp.fees + c.perp.funding + cover, abs=1e-6)
    assert {q.symbol: q.qty for q in ex.core.positions_view()}["BTC/USDT:USDT"] == pytest.approx(c.perp.qty)
    assert drv.ctx.perp.qty < 0 and abs(drv.ctx.delta) <= 0.001  # hedged again


def test_replay_paper_and_figure_builders():
    import asyncio as aio

    from hedge_core.engine.replay import replay_paper
    from hedge_core.ui.figures.timeline import timeline_figure, transitions_frame
    inst = {i.symbol: i for i in default_instruments()}
    ctx = new_hedge("r", "carry", inst["BTC/USDT"], inst["BTC/USDT:USDT"], T0)
    df, drv = aio.run(replay_paper(ctx, carry(), market(8, hours=48),
                                   balances={"spot": {"USDT": SPOT0}, "perp": {"USDT": PERP0}}))
    assert len(df) == 48 and drv.ctx.history
    tf = transitions_frame(drv.ctx)
    assert list(tf.columns) == ["ts", "from", "to", "trigger", "reason"] and len(tf) == len(drv.ctx.history)
    fig = timeline_figure(df, "t")
    assert [t.name for t in fig.data] == ["spot price", "perp price", "state", "spot qty", "perp qty", "delta",
                                          "net PnL"]
    assert list(fig.data[6].y) == list(df["pnl"])
    with pytest.raises(ValueError, match="lacks columns"):
        timeline_figure(df.drop(columns=["delta"]))


def test_replay_steps_read_the_one_timeline_inputs():
    # the replay's analytics are market_inputs' (as backtests and the runner): at every instant the
    # step's inputs equal the backtest timeline's columns, and a value labelled L is known at L + 1h only
    from hedge_core.analytics.inputs import InputSpec
    from hedge_core.analytics.volatility import trailing_24h_vol
    from hedge_core.backtest.timeline import Market, timeline_of

    rng = np.random.default_rng(0)
    idx = pd.date_range(T0, periods=200, freq="1h", tz="UTC")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    bars = pd.DataFrame({"open": close, "high": close * 1.001, "low": close * 0.999, "close": close,
                         "volume": 1.0}, index=idx)
    ft = pd.date_range(T0 + pd.Timedelta(hours=8), periods=24, freq="8h", tz="UTC")
    funding = pd.DataFrame({"funding_rate": 0.0001}, index=ft)
    spec = InputSpec()
    steps = build_steps(bars, bars, venue="binance", spot_symbol="BTC/USDT", perp_symbol="BTC/USDT:USDT",
                        mark=bars, funding=funding, spec=spec)
    tl = timeline_of(Market("binance", "BTC/USDT", "BTC/USDT:USDT", "1h", bars, bars, bars, funding),
                     start=None, end=None, warmup=pd.Timedelta(0), spec=spec)
    at = {pd.Timestamp(int(t), tz="UTC"): i for i, t in enumerate(tl.ts)}
    checked = 0
    for s in steps:
        i = at.get(s.ts)
        if i is None:
            continue
        for name in ("sigma_24h", "baseline", "baseline_std", "volume_avg"):
            v = tl.column(name)[i]
            if np.isnan(v):
                assert name not in s.market.analytics
            else:
                assert s.market.analytics[name] == v
                checked += 1
    assert checked > 400
    vol = trailing_24h_vol(pd.Series(close, index=idx))
    k = next(j for j, s in enumerate(steps) if s.ts == idx[100] + pd.Timedelta(hours=1))
    assert steps[k].market.analytics["sigma_24h"] == pytest.approx(vol.loc[idx[100]])
    assert build_steps(bars, bars, venue="binance", spot_symbol="BTC/USDT",
                       perp_symbol="BTC/USDT:USDT")[50].market.analytics == {}  # no spec: no inputs


def test_replay_paper_through_a_fault_injector_stays_hedged():
    import asyncio as aio

    from hedge_core.engine.replay import replay_paper
    inst = {i.symbol: i for i in default_instruments()}
    ctx = new_hedge("rf", "carry", inst["BTC/USDT"], inst["BTC/USDT:USDT"], T0)
    wrappers = []

    def wrap(ex):
        wrappers.append(FaultInjector(ex, seed=3, timeout=0.2, drop=0.2,
                                      methods=["create_order", "fetch_order", "cancel_order"]))
        return wrappers[-1]
    df, drv = aio.run(replay_paper(ctx, carry(), market(9, hours=72), wrap=wrap,
                                   balances={"spot": {"USDT": SPOT0}, "perp": {"USDT": PERP0}}))
    assert wrappers[0].counts()["timeout"] + wrappers[0].counts()["drop"] > 0
    ex = wrappers[0].adapter
    assert_ledger_matches(drv, ex, ex)
    settled = df[(df["state"] == "MONITORING_POSITIONS") & (df["pending"] == 0)]
    assert len(settled) > 10 and (settled["delta"].abs() <= 0.001 + 1e-9).all()  # hedged whenever nothing is pending
