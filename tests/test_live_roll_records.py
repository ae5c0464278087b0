"""Live reconciliation of a hedge leg moved by the calendar roll (docs/calendar-roll.md, docs/live-records.md).

In process, the real ccxt okx client against the OKX simulator's quarterly (tests/support/okx_sim.py): a
carry hedge entered by the HedgeDriver, its leg rolled from the swap to the quarterly; the venue's records are
read per contract (``runner.records.venue_figures`` with the hedge's perpetual), so the leg on the future is
compared with the future's position and the swap (which the hedge left) with 0; funding income is read for the
perpetual only. A funding payment the swap settled before the roll, read after it, is booked on the leg.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest

from hedge_core.engine import MarketUpdate, State, new_hedge
from hedge_core.engine.driver import DriverHooks, HedgeDriver
from hedge_core.engine.events import FundingSettled
from hedge_core.engine.ledger import leg_from_instrument, mark_leg
from hedge_core.engine.roll_step import RollRequest, perpetual_qty
from hedge_core.params.models import CarryParams
from hedge_core.runner.records import compare, journal_figures, leg_contracts, new_funding, venue_figures
from hedge_core.types import OrderRequest, OrderType, Side
from tests.support.live_env import okx_env, okx_quarterly

SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"
pytestmark = pytest.mark.integration  # the OKX simulator on 127.0.0.1


def _fills_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["leg", "symbol", "order_id", "trade_id", "qty", "price", "fee", "fee_currency",
                                       "ts"])


async def _rolled(a: Any, sim: Any, fund_rate: float | None) -> tuple[HedgeDriver, list[dict[str, Any]], str,
                                                                      pd.Timestamp, float]:
    """Enter short 0.0199 BTC on the swap, settle one funding of ``fund_rate`` on it (if given), roll the leg to
    the quarterly; the driver, its journaled fills (as the runner writes them), the future's symbol, the
    start instant and the settled cash flow (+ received)."""
    fills: list[dict[str, Any]] = []

    def on_fill(_hid: str, ev: Any) -> None:
        f = ev.fill
        fills.append({"leg": ev.leg, "symbol": f.symbol, "order_id": f.order_id, "trade_id": f.trade_id,
                      "qty": f.qty, "price": f.price, "fee": f.fee, "fee_currency": f.fee_currency, "ts": f.ts})

    m = await a.load_markets()
    [(fut, _expiry)] = await a.dated_futures("BTC")
    start = pd.Timestamp(sim.now_ms(), unit="ms", tz="UTC") - pd.Timedelta(seconds=5)
    drv = HedgeDriver(new_hedge("rr", "carry", m[SPOT], m[PERP], start),
                      CarryParams(notional=600.0, min_net_carry=-1.0), {"okx": a}, hooks=DriverHooks(on_fill=on_fill))
    now = pd.Timestamp(sim.now_ms(), unit="ms", tz="UTC")
    await drv.feed(MarketUpdate(now, 30_000.0, 30_000.0, funding_rate=0.001))
    q0 = drv.ctx.perp.qty
    assert drv.ctx.state is State.MONITORING_POSITIONS and q0 == pytest.approx(-0.0199)  # 199 lots of 0.0001 BTC
    flow = sim.settle_funding("BTC-USDT-SWAP", rate=fund_rate) if fund_rate is not None else 0.0
    ctx = await drv.feed(RollRequest(now, m[fut], 30_300.0, "test"))
    assert ctx.perp.symbol == fut and ctx.roll_leg is None and ctx.perp.qty == pytest.approx(q0)
    return drv, fills, fut, start, flow


def test_a_rolled_leg_is_reconciled_on_its_future_and_the_perpetuals_funding_read_after_the_roll_is_booked():
    async def go():
        async with okx_env() as env:
            a, sim = env.adapter, env.sim
            okx_quarterly(sim)  # a quarterly 90 days out at 30,300
            drv, fills, fut, start, flow = await _rolled(a, sim, fund_rate=0.0001)
            # hand figure: a short of 0.0199 BTC at mark 30,000 receives 0.0199 x 30,000 x 0.01 % = 0.0597 USDT
            assert flow == pytest.approx(0.0597)
            ctx = drv.ctx
            assert perpetual_qty(ctx) == 0.0  # wholly on the future: it pays no funding
            pays = await a.fetch_funding_payments(PERP, start)
            [(fp, _rate, _mark, expected)] = new_funding(pays, set(), start, ctx)
            assert fp.amount == pytest.approx(0.0597) and expected == 0.0  # the engine's figure: nothing on the perp now
            funding_before = ctx.perp.funding
            ctx = await drv.feed(FundingSettled(fp.ts, 0.0001, 30_000.0, amount=fp.amount))
            assert ctx.perp.funding == pytest.approx(funding_before + 0.0597)  # booked on the leg, not dropped
            assert ctx.perp.symbol == fut and ctx.perp.qty == pytest.approx(-0.0199)
            # venue and journal per contract: the future holds the leg, the swap it left is flat
            jf = _fills_frame(fills)
            contracts = leg_contracts(ctx, PERP, jf.loc[jf["leg"] != "spot", "symbol"])
            assert contracts == (fut, PERP)
            ids = set(jf["order_id"].astype(str))
            venue = await venue_figures(a, ctx, ids, start, perpetual=PERP, contracts=contracts)
            assert dict(venue.contracts) == pytest.approx({fut: -0.0199, PERP: 0.0})
            assert venue.funding == pytest.approx(0.0597)  # the perpetual's income; the future has none
            assert {f.symbol for _leg, f in venue.trades} == {SPOT, PERP, fut}
            # without ``perpetual`` the leg's dated symbol gives it: BTC/USDT:USDT-YYMMDD -> BTC/USDT:USDT
            assert (await venue_figures(a, ctx, ids, start)).funding == pytest.approx(0.0597)
            funding = pd.DataFrame({"ts": [fp.ts], "amount": [fp.amount]})
            journal = journal_figures(ctx, jf, funding, venue.open_orders, contracts)
            assert compare(journal, venue, spot_lot=ctx.spot.lot_size, perp_lot=ctx.perp.lot_size) == []
            # a position on the swap the hedge does not hold (another client of the account) is a difference
            await a.create_order(OrderRequest(symbol=PERP, side=Side.SELL, qty=0.01, client_order_id="othr1",
                                             type=OrderType.MARKET))
            venue2 = await venue_figures(a, ctx, ids, start, perpetual=PERP, contracts=contracts)
            diffs = compare(journal, venue2, spot_lot=ctx.spot.lot_size, perp_lot=ctx.perp.lot_size)
            assert [(d.what, d.journal, round(d.venue, 9)) for d in diffs] == [(f"perp position on {PERP} (base)", 0.0, -0.01)]
    asyncio.run(go())


def test_during_a_roll_both_contracts_are_read_and_compared():
    """A roll under way (the context's ``roll_leg``): the venue's position on the source AND the destination
    are compared with the context's two legs; the same venue against the context without the roll is a
    difference on the contract the context does not hold."""
    async def go():
        async with okx_env() as env:
            a, sim = env.adapter, env.sim
            okx_quarterly(sim)  # a quarterly 90 days out at 30,300
            drv, fills, fut, start, _flow = await _rolled(a, sim, fund_rate=None)
            m = await a.load_markets()
            # the way back is under way: 0.0199 BTC short reopened on the swap, the future not closed yet
            await a.create_order(OrderRequest(symbol=PERP, side=Side.SELL, qty=0.0199, client_order_id="back1",
                                             type=OrderType.MARKET))
            done = drv.ctx
            back = replace(mark_leg(leg_from_instrument("roll", m[PERP]), 30_000.0), qty=-0.0199)
            mid = replace(done, roll_leg=back, roll_qty=-0.0199)
            assert perpetual_qty(mid) == pytest.approx(-0.0199)  # funding is due on the swap part only
            contracts = leg_contracts(mid, PERP)
            assert contracts == (fut, PERP)
            venue = await venue_figures(a, mid, set(), start, perpetual=PERP, contracts=contracts)
            assert dict(venue.contracts) == pytest.approx({fut: -0.0199, PERP: -0.0199})
            jf = _fills_frame([])
            j_mid = journal_figures(mid, jf, jf.iloc[0:0].assign(amount=[]), venue.open_orders, contracts)
            assert dict(j_mid.contracts) == pytest.approx({fut: -0.0199, PERP: -0.0199})
            assert compare(j_mid, venue, spot_lot=0.00001, perp_lot=0.01) == []
            j_done = journal_figures(done, jf, jf.iloc[0:0].assign(amount=[]), venue.open_orders, contracts)
            diffs = compare(j_done, venue, spot_lot=0.00001, perp_lot=0.01)
            assert [d.what for d in diffs] == [f"perp position on {PERP} (base)"]
    asyncio.run(go())
