"""Property tests over random event sequences (hypothesis, deterministic seeds)."""

from __future__ import annotations

import asyncio
import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hedge_core.engine import (
    Command,
    FillEvent,
    MarketUpdate,
    OperatorCommand,
    OrderTimeout,
    OrderUpdate,
    OrderUpdateKind,
    PlaceOrder,
    RecordTransition,
    State,
    Timer,
    new_hedge,
    step,
)
from hedge_core.engine.driver import HedgeDriver
from hedge_core.engine.replay import funding_settled
from hedge_core.exchange.faults import FaultInjector
from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.paper.core import PaperConfig, PaperCore, default_instruments
from hedge_core.params.models import CarryParams, ExitParams, RebalanceParams
from hedge_core.types import Bar, Fill, FundingEvent, MarketKind

INST = {i.symbol: i for i in default_instruments()}
T0 = pd.Timestamp("2024-01-01T00:00Z")
LOT = 0.001

P = CarryParams(notional=6_000.0, min_funding_rate=0.0001, min_net_carry=-1.0,
                exit=ExitParams(max_holding_hours=20, rearm=True, stop_loss_pct=0.05),
                rebalance=RebalanceParams(drift_threshold=0.02, cooldown_s=0))

ops = st.lists(st.one_of(
    st.tuples(st.just("bar"), st.floats(-0.04, 0.04)),
    st.tuples(st.just("funding"), st.floats(-0.001, 0.002)),
    st.tuples(st.just("cmd"), st.sampled_from([Command.PAUSE, Command.RESUME, Command.REBALANCE_NOW])),
), min_size=5, max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops, st.integers(0, 10_000), st.sampled_from([0.0, 0.15, 0.3]), st.sampled_from([None, 0.0002]))
def test_paper_random_sequences_keep_invariants(seq, seed, fault_p, participation):
    asyncio.run(_paper_sequence(seq, seed, fault_p, participation))


async def _paper_sequence(seq, seed, fault_p, participation):
    core = PaperCore(PaperConfig(participation=participation),
                     balances={"spot": {"USDT": 20_000.0}, "perp": {"USDT": 10_000.0}})
    ex = PaperExchange(core, save_on_apply=False)
    adapter = FaultInjector(ex, seed=seed, timeout=fault_p / 2, drop=fault_p / 2,
                            methods=["create_order", "fetch_order", "cancel_order"]) if fault_p else ex
    drv = HedgeDriver(new_hedge("p", "carry", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0), P, {"binance": adapter})
    px, rate, t = 40_000.0, 0.0005, T0
    n_actions = 0
    last_funding = None
    for kind, x in seq:
        if kind == "bar":
            px *= math.exp(x)
            label, t = t, t + pd.Timedelta(hours=1)
            for sym, k in (("BTC/USDT", MarketKind.SPOT), ("BTC/USDT:USDT", MarketKind.PERP),
                           ("BTC/USDT:USDT", MarketKind.MARK)):
                await ex.apply(Bar(label, "binance", sym, k, px, px, px, px, 1_000.0))
            await drv.feed(Timer(t, heartbeat=False))
            await drv.feed(MarketUpdate(t, spot=px, perp=px, mark=px, funding_rate=rate))
        elif kind == "funding":
            if t == T0 or t == last_funding:
                continue  # one settlement per instant, as on every venue
            last_funding = t
            rate = x
            fe = FundingEvent(t, "binance", "BTC/USDT:USDT", rate)
            await ex.apply(fe)
            await drv.feed(await funding_settled(ex, fe, px))
        else:
            await drv.feed(OperatorCommand(t, x))
        c = drv.ctx
        new = drv.actions[n_actions:]
        n_actions = len(drv.actions)
        # quantities that must never be negative
        assert c.spot.qty >= -1e-12, "carry with allow_spot_short=False never shorts spot"
        assert c.perp.qty <= 1e-12, "positive-funding carry never goes long perp"
        assert c.spot.fees >= 0 and c.perp.fees >= 0
        assert all(p.qty > 0 and p.filled >= 0 for p in c.pending.values())
        assert sum(1 for p in c.pending.values() if p.leg == "spot") <= 1
        assert sum(1 for p in c.pending.values() if p.leg == "perp") <= 1
        # |delta| within tolerance after each completed rebalance / entry
        done = [a for a in new if isinstance(a, RecordTransition) and a.trigger in ("REBALANCED", "HEDGE_FILLED")]
        if done and c.state is State.MONITORING_POSITIONS and not c.pending:
            assert abs(c.delta) <= LOT + 1e-9, (c.spot.qty, c.perp.qty)
        # the venue never holds an order the engine did not ask for, nor an id twice
        ids = [o.cid for o in core.orders.values()]
        assert len(ids) == len(set(ids))
    # let unanswered orders resolve (queries after order_timeout_s), then the ledger sums equal
    # the paper venue's balances
    for _ in range(30):
        if not drv.ctx.pending:
            break
        t = t + pd.Timedelta(seconds=P.execution.order_timeout_s)
        await drv.feed(Timer(t, heartbeat=False))
    assert not drv.ctx.pending
    c = drv.ctx
    assert core.spot.get("BTC", 0.0) == pytest.approx(c.spot.qty, abs=1e-9)
    pos = {p.symbol: p.qty for p in core.positions_view()}
    assert pos.get("BTC/USDT:USDT", 0.0) == pytest.approx(c.perp.qty, abs=1e-9)
    assert abs(core.spot["USDT"] - (20_000 + c.spot.cash - c.spot.fees)) < 1e-6
    assert abs(core.wallet - (10_000 + c.perp.realized - c.perp.fees + c.perp.funding)) < 1e-6


# ---- pure step() fuzz: random venue answers to whatever the engine asked ----------------------

answers = st.lists(st.tuples(st.sampled_from(["fill", "partial", "reject", "cancel", "timeout", "not_found", "ack",
                                              "dup_fill", "market", "timer"]),
                             st.floats(0.1, 0.9), st.floats(-0.03, 0.03)), min_size=1, max_size=80)


@settings(max_examples=150, deadline=None)
@given(answers)
def test_step_fuzz_never_duplicates_and_never_overlaps_orders(seq):
    ctx = new_hedge("z", "carry", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0)
    t, px = T0, 40_000.0
    ctx, acts = step(ctx, MarketUpdate(t, spot=px, perp=px, funding_rate=0.0005), P)
    requests: dict[str, object] = {}
    trade_n = 0
    last_fill: FillEvent | None = None
    for kind, frac, ret in seq:
        for a in acts:
            if isinstance(a, PlaceOrder):
                coid = a.request.client_order_id
                # a client order id is only ever re-used for the very same request (a re-send)
                assert requests.get(coid, a.request) == a.request
                requests[coid] = a.request
        pend = sorted(ctx.pending.values(), key=lambda p: p.seq)
        t = t + pd.Timedelta(seconds=30)
        if kind in ("market", "timer") or not pend:
            px *= math.exp(ret)
            ev = MarketUpdate(t, spot=px, perp=px, funding_rate=0.0005) if kind != "timer" else Timer(t)
            ctx, acts = step(ctx, ev, P)
            continue
        p = pend[0]
        coid = p.client_order_id
        if kind in ("fill", "partial"):
            q = p.remaining if kind == "fill" else max(round(p.remaining * frac, 5), 1e-5)
            q = min(q, p.remaining)
            trade_n += 1
            sym = ctx.leg(p.leg).symbol
            last_fill = FillEvent(Fill(f"t{trade_n}", "o", coid, sym, p.side, q, px, q * px * 0.0005, t), p.leg)
            ctx, acts = step(ctx, last_fill, P)
        elif kind == "dup_fill" and last_fill is not None:
            before = (ctx.spot.qty, ctx.perp.qty)
            ctx, acts = step(ctx, last_fill, P)
            assert (ctx.spot.qty, ctx.perp.qty) == before
        elif kind == "reject":
            ctx, acts = step(ctx, OrderUpdate(t, coid, OrderUpdateKind.REJECTED, reason="fuzz"), P)
        elif kind == "cancel":
            ctx, acts = step(ctx, OrderUpdate(t, coid, OrderUpdateKind.CANCELED, filled=p.filled), P)
        elif kind == "timeout":
            ctx, acts = step(ctx, OrderTimeout(t, coid), P)
        elif kind == "not_found":
            if p.filled == 0:
                ctx, acts = step(ctx, OrderUpdate(t, coid, OrderUpdateKind.NOT_FOUND), P)
        else:
            ctx, acts = step(ctx, OrderUpdate(t, coid, OrderUpdateKind.ACK, order_id="o"), P)
        assert sum(1 for q in ctx.pending.values() if q.leg == "spot") <= 1
        assert sum(1 for q in ctx.pending.values() if q.leg == "perp") <= 1
        assert ctx.spot.qty >= -1e-9 and ctx.perp.qty <= 1e-9
