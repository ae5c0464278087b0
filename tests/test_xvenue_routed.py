"""Legs on two venues through one RoutedAdapter: spot on paper "binance", perp on paper "bybit".

The engine's two-leg rules hold unchanged across venues: entry fills each leg on its own venue;
the perp venue refusing the hedge after the spot leg filled unwinds the spot leg ON ITS VENUE; an
unanswered order is resolved by querying ITS venue only (never re-sent blind, the other venue never
asked); reconciliation is reported per venue; no money moves between venues; a leg short of funds
is refused by the preflight naming its venue.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from hedge_core.engine import State, new_hedge
from hedge_core.engine.actions import PlaceOrder, QueryOrder
from hedge_core.engine.driver import DriverHooks, HedgeDriver
from hedge_core.engine.events import Timer
from hedge_core.engine.replay import build_steps, funding_settled
from hedge_core.errors import InvalidInput, RequestTimeout
from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.paper.core import PaperConfig, PaperCore, default_instruments
from hedge_core.exchange.routed import RoutedAdapter, is_perp_symbol
from hedge_core.params.models import CarryParams, ExitParams, RebalanceParams
from hedge_core.runner.journal import Journal
from hedge_core.runner.preflight import preflight
from hedge_core.runner.reconcile_venues import reconcile_per_venue
from hedge_core.store import Store
from hedge_core.types import TradingMode

T0 = pd.Timestamp("2024-01-01T00:00Z")
SPOT0, PERP0 = 20_000.0, 10_000.0
SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"


def steps(seed: int = 1, hours: int = 24, rate: float = 0.0005):
    rng = np.random.default_rng(seed)
    idx = pd.date_range(T0, periods=hours, freq="1h", tz="UTC")
    close = 40_000 * np.exp(np.cumsum(rng.normal(0, 0.005, hours)))
    bars = pd.DataFrame({"open": close, "high": close * 1.001, "low": close * 0.999, "close": close,
                         "volume": 1_000.0}, index=idx)
    perp = bars.assign(close=bars["close"] * 1.0002, open=bars["open"] * 1.0002)
    ft = pd.date_range(T0 + pd.Timedelta(hours=8), periods=hours // 8, freq="8h", tz="UTC")
    funding = pd.DataFrame({"funding_rate": np.full(len(ft), rate)}, index=ft)
    return build_steps(bars, perp, venue="binance", spot_symbol=SPOT, perp_symbol=PERP, mark=perp, funding=funding)


def paper(name: str, spot_usdt: float, perp_usdt: float, **cfg) -> PaperExchange:
    core = PaperCore(PaperConfig(venue=name, instruments=default_instruments(name), **cfg),
                     balances={k: {"USDT": v} for k, v in (("spot", spot_usdt), ("perp", perp_usdt)) if v > 0})
    return PaperExchange(core, save_on_apply=False)


def params(**kw) -> CarryParams:
    base = {"notional": 8_000.0, "min_funding_rate": 0.0001, "min_net_carry": -1.0,
            "exit": ExitParams(max_holding_hours=None, profit_target_pct=None, stop_loss_pct=None),
            "rebalance": RebalanceParams(drift_threshold=0.05, cooldown_s=0)}
    base.update(kw)
    return CarryParams(**base)


def hedge(routed: RoutedAdapter, p: CarryParams | None = None, hooks: DriverHooks | None = None) -> HedgeDriver:
    markets = asyncio.run(routed.load_markets())
    ctx = new_hedge("x1", "carry", markets[SPOT], markets[PERP], T0)
    # the routed adapter serves both venues: it routes each order by its symbol
    return HedgeDriver(ctx, p or params(), {routed.spot_venue: routed, routed.perp_venue: routed}, hooks=hooks)


async def run(drv: HedgeDriver, routed: RoutedAdapter, ss) -> None:
    for s in ss:
        for b in s.bars:
            await routed.apply(b)
        await drv.feed(Timer(s.ts, heartbeat=False))
        await drv.feed(s.market)
        if s.funding is not None:
            await routed.apply(s.funding)
            await drv.feed(await funding_settled(routed, s.funding, s.market.mark_or_perp))


class Recording:
    """Pass-through wrapper of one venue adapter that records every call, and can make the venue
    execute an order but lose its answer (``lose_answer_of``: a symbol; the first order on it)."""

    def __init__(self, inner: PaperExchange, lose_answer_of: str | None = None) -> None:
        self.inner = inner
        self.venue, self.mode = inner.venue, inner.mode
        self.answers_carry_fills = True
        self.calls: list[tuple[str, tuple, dict]] = []
        self.lose = lose_answer_of

    def __getattr__(self, name):
        target = getattr(self.inner, name)
        if not callable(target):
            return target

        async def call(*a, **kw):
            self.calls.append((name, a, kw))
            out = await target(*a, **kw)
            if name == "create_order" and self.lose is not None and a[0].symbol == self.lose:
                self.lose = None
                raise RequestTimeout("answer lost after the venue executed the order", venue=self.venue,
                                     method="create_order")
            return out
        return call


# ---- the adapter itself --------------------------------------------------------------------------

def test_markets_wallets_and_orders_route_to_each_legs_venue():
    a, b = paper("binance", SPOT0, 0.0), paper("bybit", 0.0, PERP0)
    r = RoutedAdapter(a, b)
    markets = asyncio.run(r.load_markets())
    assert markets[SPOT].venue == "binance" and markets[PERP].venue == "bybit"
    assert set(markets) == {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "ETH/USDT:USDT"}
    assert asyncio.run(r.fetch_balance("spot"))["USDT"].free == SPOT0  # binance's spot wallet
    assert asyncio.run(r.fetch_balance("perp"))["USDT"].free == PERP0  # bybit's futures wallet
    assert r.venue_of(SPOT) == "binance" and r.venue_of(PERP) == "bybit" and is_perp_symbol(PERP)
    assert r.venue == "binance+bybit" and r.answers_carry_fills and r.mode is TradingMode.PAPER
    with pytest.raises(InvalidInput, match="account"):
        asyncio.run(r.fetch_balance("margin"))


def test_one_venue_or_mixed_modes_are_refused():
    with pytest.raises(InvalidInput, match="two different venues"):
        RoutedAdapter(paper("binance", 1, 1), paper("binance", 1, 1))
    live = paper("bybit", 1, 1)
    live.mode = TradingMode.LIVE
    with pytest.raises(InvalidInput, match="same trading mode"):
        RoutedAdapter(paper("binance", 1, 1), live)


def test_no_money_moves_between_venues():
    a, b = paper("binance", SPOT0, 0.0), paper("bybit", 0.0, PERP0)
    r = RoutedAdapter(a, b)
    with pytest.raises(InvalidInput, match="no automatic transfer between venues"):
        asyncio.run(r.transfer("USDT", 100.0, "spot", "perp"))
    assert a.core.spot["USDT"] == SPOT0 and b.core.wallet == PERP0  # nothing moved


# ---- the engine's two-leg rules across venues -------------------------------------------------------

def test_entry_fills_each_leg_on_its_own_venue_and_books_equal_each_venue():
    a, b = paper("binance", SPOT0, 0.0, spot_taker_fee=0.001), paper("bybit", 0.0, PERP0, perp_taker_fee=0.00055)
    r = RoutedAdapter(a, b)
    drv = hedge(r)
    asyncio.run(run(drv, r, steps()))
    c = drv.ctx
    assert c.state is State.MONITORING_POSITIONS and c.spot.qty > 0 and abs(c.delta) <= 0.001
    assert a.core.spot["BTC"] == pytest.approx(c.spot.qty) and not a.core.positions_view()
    assert {p.symbol: p.qty for p in b.core.positions_view()}[PERP] == pytest.approx(c.perp.qty)
    assert b.core.spot.get("BTC", 0.0) == 0.0
    assert {o.symbol for o in a.core.orders.values()} == {SPOT} and {o.symbol for o in b.core.orders.values()} == {PERP}
    # each venue charges its own fee and only the perp venue pays funding
    assert a.core.spot["USDT"] == pytest.approx(SPOT0 + c.spot.cash - c.spot.fees, abs=1e-6)
    assert b.core.wallet == pytest.approx(PERP0 + c.perp.realized - c.perp.fees + c.perp.funding, abs=1e-6)
    assert c.perp.funding > 0 and c.spot.funding == 0.0
    perp_fill = next(f for f in b.core.fills if f.symbol == PERP)
    assert perp_fill.fee == pytest.approx(perp_fill.qty * perp_fill.price * 0.00055, rel=1e-9)


def test_perp_venue_refusing_the_hedge_unwinds_the_spot_leg_on_its_venue():
    # bybit's futures wallet is empty: every perp order is refused (insufficient margin) after the
    # spot leg filled on binance -> after the retries the engine sells the spot back on binance
    a, b = paper("binance", SPOT0, 0.0), paper("bybit", 0.0, 0.0)
    r = RoutedAdapter(a, b)
    alerts: list = []
    drv = hedge(r, hooks=DriverHooks(on_alert=lambda h, al: alerts.append(al)))
    asyncio.run(run(drv, r, steps(hours=12)))
    c = drv.ctx
    spot_orders = [o for o in a.core.orders.values() if o.symbol == SPOT]
    assert [str(o.side) for o in spot_orders][:2] == ["buy", "sell"]  # bought, then unwound on binance
    assert a.core.spot.get("BTC", 0.0) == pytest.approx(0.0, abs=1e-9) and abs(c.spot.qty) <= 1e-12
    assert not b.core.positions_view() and not b.core.orders  # the refusals created no order on bybit
    perp_tries = [x for x in drv.actions if isinstance(x, PlaceOrder) and x.leg == "perp"]
    assert len(perp_tries) == params().execution.hedge_retries + 1 and {x.venue for x in perp_tries} == {"bybit"}
    assert any("unwinding the spot leg" in al.message for al in alerts)
    assert c.state is not State.ERROR


@pytest.mark.parametrize("lost", ["perp", "spot"])
def test_an_unanswered_order_is_resolved_at_its_own_venue_only(lost):
    sym = PERP if lost == "perp" else SPOT
    ra, rb = Recording(paper("binance", SPOT0, 0.0), SPOT if lost == "spot" else None), \
        Recording(paper("bybit", 0.0, PERP0), PERP if lost == "perp" else None)
    r = RoutedAdapter(ra, rb)
    drv = hedge(r, params(execution={"order_timeout_s": 1.0}))
    asyncio.run(run(drv, r, steps(hours=12)))
    c = drv.ctx
    # the order executed at the venue but its answer was lost: it was looked up by client id, not re-sent
    first = next(x for x in drv.actions if isinstance(x, PlaceOrder) and x.request.symbol == sym)
    coid = first.request.client_order_id
    queries = [x for x in drv.actions if isinstance(x, QueryOrder) and x.client_order_id == coid]
    assert queries and {q.venue for q in queries} == {"bybit" if lost == "perp" else "binance"}
    mine, other = (rb, ra) if lost == "perp" else (ra, rb)
    assert any(n == "fetch_order" and kw.get("client_order_id") == coid for n, _, kw in mine.calls)
    assert not any(kw.get("client_order_id") == coid for n, _, kw in other.calls)  # the other venue never asked
    sends = [a for n, a, _ in mine.calls if n == "create_order" and a[0].symbol == sym]
    assert len(sends) == 1  # sent once
    assert c.state is State.MONITORING_POSITIONS and abs(c.delta) <= 0.001
    assert ra.inner.core.spot["BTC"] == pytest.approx(c.spot.qty)
    assert {p.symbol: p.qty for p in rb.inner.core.positions_view()}[PERP] == pytest.approx(c.perp.qty)


# ---- preflight and reconciliation per venue ---------------------------------------------------------

@pytest.mark.parametrize("short, venue", [("spot", "binance"), ("perp", "bybit")])
def test_preflight_refuses_a_leg_short_of_funds_naming_its_venue(short, venue):
    a = paper("binance", 50.0 if short == "spot" else SPOT0, 1e6)  # binance's own perp wallet is rich
    b = paper("bybit", 1e6, 5.0 if short == "perp" else PERP0)  # and bybit's spot wallet: neither counts
    r = RoutedAdapter(a, b)
    with pytest.raises(InvalidInput) as err:
        asyncio.run(preflight(r, spot_symbol=SPOT, perp_symbol=PERP, params=params(), amount=8_000.0,
                              prices=(40_000.0, 40_010.0, "test")))
    msg = str(err.value)
    assert f"venue {venue}" in msg and ("spot balance" if short == "spot" else "perp margin") in msg
    assert "no transfer between venues" in msg
    ok = asyncio.run(preflight(RoutedAdapter(paper("binance", SPOT0, 0.0), paper("bybit", 0.0, PERP0)),
                               spot_symbol=SPOT, perp_symbol=PERP, params=params(), amount=8_000.0,
                               prices=(40_000.0, 40_010.0, "test")))
    assert ok.spot.venue == "binance" and ok.perp.venue == "bybit" and ok.spot_free == SPOT0 and ok.perp_free == PERP0


def test_preflight_sizes_with_each_venues_own_fee():
    a = paper("binance", SPOT0, 0.0, spot_taker_fee=0.002)
    b = paper("bybit", 0.0, PERP0, perp_taker_fee=0.0007)
    rep = asyncio.run(preflight(RoutedAdapter(a, b), spot_symbol=SPOT, perp_symbol=PERP, params=params(),
                                amount=8_000.0, prices=(40_000.0, 40_010.0, "test")))
    p = params()
    assert p.slippage_rate is None and a.core.config.slippage_bps == 1.0  # slippage: the venue's fixed 1 bp
    lev, slip, ratio = float(p.leverage.min_leverage), 0.0001, float(p.rebalance.target_ratio)
    spot_cap = SPOT0 / (1 + 0.002 + slip)  # binance's spot fee
    perp_cap = PERP0 / (ratio * 1.01 * (1 / lev + 2 * 0.0007))  # bybit's perp fee, 1 % price move
    assert rep.bounds.max_amount == pytest.approx(min(spot_cap, perp_cap), rel=1e-9)
    assert ("fee 0.002" if spot_cap < perp_cap else "fee 0.0007") in rep.bounds.max_binding


def test_reconciliation_after_a_crash_reports_each_venue(tmp_path):
    # the intents are journaled, the answers never are (a crash right after each send): on restart
    # each order is found at ITS venue, finalised there, and its fills journaled under that venue
    a, b = paper("binance", SPOT0, 0.0), paper("bybit", 0.0, PERP0)
    r = RoutedAdapter(a, b)
    with Store(tmp_path / "x.duckdb") as st:
        j = Journal(st)
        drv = hedge(r, hooks=DriverHooks(on_intent=lambda h, act: j.intent(h, act, T0, "paper")))
        asyncio.run(run(drv, r, steps(hours=10)))
        assert drv.ctx.state is State.MONITORING_POSITIONS
        rep, per = asyncio.run(reconcile_per_venue("x1", j, r, spot_symbol=SPOT, perp_symbol=PERP))
        spot_coids = {x.request.client_order_id for x in drv.actions if isinstance(x, PlaceOrder) and x.leg == "spot"}
        perp_coids = {x.request.client_order_id for x in drv.actions if isinstance(x, PlaceOrder) and x.leg == "perp"}
        assert set(per["binance"].finalised) == spot_coids and set(per["bybit"].finalised) == perp_coids
        assert per["binance"].leg == "spot" and per["bybit"].leg == "perp"
        assert per["binance"].fills_added and per["bybit"].fills_added
        assert {t.rsplit(":", 1)[0] for t in per["binance"].fills_added} <= spot_coids
        fills = j.fills("x1")
        assert set(fills.loc[fills["leg"] == "spot", "venue"]) == {"binance"}
        assert set(fills.loc[fills["leg"] == "perp", "venue"]) == {"bybit"}
        # each venue's own figure equals what the journal now holds for that leg
        signed = fills.assign(q=np.where(fills["side"] == "buy", fills["qty"], -fills["qty"]))
        assert per["binance"].holding == pytest.approx(signed.loc[signed["leg"] == "spot", "q"].sum(), abs=1e-9)
        assert per["bybit"].holding == pytest.approx(signed.loc[signed["leg"] == "perp", "q"].sum(), abs=1e-9)
        assert rep.venue_positions == {PERP: per["bybit"].holding}
        # a second pass finds nothing more at either venue
        _, again = asyncio.run(reconcile_per_venue("x1", j, r, spot_symbol=SPOT, perp_symbol=PERP))
        assert all(not v.finalised and not v.fills_added for v in again.values())
