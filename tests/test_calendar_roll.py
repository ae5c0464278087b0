"""The calendar-migration rule (hedge_core.engine.calendar_roll): hand-computed decisions, bad input, and a
roll of a live hedge leg perp -> quarterly -> perp through the real ccxt okx client against the OKX simulator
(a FUTURES instrument with an expiry), both legs reconciled against the venue's positions and balances."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core.engine.calendar_roll import RollAction, RollInputs, decide_roll, roll_actions
from hedge_core.errors import InvalidInput
from hedge_core.types import OrderRequest, OrderStatus, Side, client_order_id
from tests.support.live_env import okx_env, okx_quarterly

NOW = pd.Timestamp("2026-09-26T08:00Z")
EXPIRY = pd.Timestamp("2026-12-25T08:00Z")  # 90 days later


def _x(**kw) -> RollInputs:
    base = dict(now=NOW, expiry=EXPIRY, spot=30_000.0, future=30_300.0, funding_rate=0.00001, interval_hours=8.0,
                leg_qty=-0.02, on_future=False, taker_fee=0.0005)
    base.update(kw)
    return RollInputs(**base)


def test_short_leg_moves_to_the_quarterly_when_the_basis_pays_more_than_funding():
    """By hand: basis 30,300 / 30,000 - 1 = 1 % over 90 days -> 1 % x 365 / 90 = 4.0556 % a year; funding
    0.001 % per 8 h -> 0.00001 x 1,095 = 1.095 % a year. Roll cost: fees 0.02 x 30,000 x 0.05 % = 0.30 and
    0.02 x 30,300 x 0.05 % = 0.303 USDT on 600 USDT = 0.1005 %, x 365 / 90 = 0.4076 % a year.
    Advantage 4.0556 - 1.095 = 2.9606 % > 0.4076 % + margin 2 % -> roll; with a 3 % margin -> hold."""
    d = decide_roll(_x(), margin_apr=0.02)
    assert d.action is RollAction.TO_FUTURE
    assert d.future_carry_apr == pytest.approx(0.01 * 365 / 90)
    assert d.perp_carry_apr == pytest.approx(0.00001 * 1095)
    assert d.cost_apr == pytest.approx(0.603 / 600 * 365 / 90)
    assert d.days_to_expiry == pytest.approx(90.0)
    assert decide_roll(_x(), margin_apr=0.03).action is RollAction.HOLD


def test_long_leg_paying_funding_moves_when_funding_apr_exceeds_the_basis():
    """Issue #15's wording: a leg that PAYS funding (long perp) rolls when the funding APR (0.01 % per 8 h =
    10.95 %) is above the quarterly's annualised basis (4.0556 %): it then pays 4.06 % instead of 10.95 %."""
    d = decide_roll(_x(leg_qty=0.02, funding_rate=0.0001))
    assert d.action is RollAction.TO_FUTURE
    assert (d.perp_carry_apr, d.future_carry_apr) == (pytest.approx(-0.1095), pytest.approx(-0.01 * 365 / 90))
    # the same numbers for a SHORT leg (it receives the 10.95 %): stay on the perp
    assert decide_roll(_x(funding_rate=0.0001)).action is RollAction.HOLD


def test_back_to_the_perp_when_funding_overtakes_and_always_before_expiry():
    # short on the future; funding rises to 0.01 % per 8 h: 10.95 - 4.0556 = 6.89 % > 0.41 % + 2 %
    assert decide_roll(_x(on_future=True, funding_rate=0.0001)).action is RollAction.TO_PERP
    assert decide_roll(_x(on_future=True)).action is RollAction.HOLD  # the basis still pays more
    late = EXPIRY - pd.Timedelta(days=1)
    d = decide_roll(_x(on_future=True, now=late), exit_days=2.0)
    assert d.action is RollAction.TO_PERP and "expiry" in d.reason
    # and never onto a future about to deliver, however large its basis
    assert decide_roll(_x(now=late, future=33_000.0)).action is RollAction.HOLD


@pytest.mark.parametrize("kw, field", [
    ({"now": pd.Timestamp("2026-09-26T08:00")}, "now"), ({"spot": 0.0}, "spot"), ({"future": float("nan")}, "future"),
    ({"leg_qty": 0.0}, "leg_qty"), ({"interval_hours": 0.0}, "interval_hours"), ({"taker_fee": -0.001}, "taker_fee"),
])
def test_bad_input_names_the_field(kw, field):
    with pytest.raises(InvalidInput) as e:
        decide_roll(_x(**kw))
    assert e.value.field == field


def test_roll_actions_close_where_the_leg_is_then_open_the_other():
    d = decide_roll(_x())
    close, open_ = roll_actions(d, hedge_id="h1", venue="okx", perp_symbol="P", future_symbol="F", leg_qty=-0.02, seq=7)
    assert (close.request.symbol, close.request.side, close.request.qty, close.request.reduce_only) == ("P", Side.BUY, 0.02, True)
    assert (open_.request.symbol, open_.request.side, open_.request.qty, open_.request.reduce_only) == ("F", Side.SELL, 0.02, False)
    assert close.request.client_order_id != open_.request.client_order_id
    hold = decide_roll(_x(), margin_apr=0.5)
    assert roll_actions(hold, hedge_id="h1", venue="okx", perp_symbol="P", future_symbol="F", leg_qty=-0.02, seq=7) == ()


def test_roll_a_live_hedge_leg_to_the_simulated_quarterly_and_back():
    """OKX simulator with a quarterly 90 days out: a hedge long 0.02 BTC spot / short 0.02 BTC perp; the rule
    (venue prices, funding and expiry read through the adapter) moves the short to the quarterly; after the
    roll the venue shows the short on the future only (2 contracts of 0.01 BTC), the spot untouched: the
    hedge's delta is unchanged. Funding then rises and the leg comes back."""
    async def go():
        async with okx_env() as env:
            a, sim = env.adapter, env.sim
            expiry_ms = okx_quarterly(sim)
            sim.funding_rate["BTC-USDT-SWAP"] = 0.00001
            await a.load_markets()
            [(fut_sym, expiry)] = await a.dated_futures("BTC")
            assert expiry == pd.Timestamp(expiry_ms, unit="ms", tz="UTC")
            perp = "BTC/USDT:USDT"
            for req in (OrderRequest("BTC/USDT", Side.BUY, 0.02, client_order_id("q", "s", 1)),
                        OrderRequest(perp, Side.SELL, 0.02, client_order_id("q", "p", 1))):
                assert (await a.create_order(req)).status is OrderStatus.CLOSED
            spot_btc = (await a.fetch_balance("spot"))["BTC"].total

            async def decide(on_future: bool):
                fr = await a.fetch_funding_rate(perp)
                spot_t, fut_t = await a.fetch_ticker("BTC/USDT"), await a.fetch_ticker(fut_sym)
                [pos] = await a.fetch_positions()
                x = RollInputs(now=pd.Timestamp(sim.now_ms(), unit="ms", tz="UTC"), expiry=expiry, spot=spot_t.last,
                               future=fut_t.last, funding_rate=fr.rate, interval_hours=fr.interval_hours,
                               leg_qty=pos.qty, on_future=on_future, taker_fee=sim.taker)
                return decide_roll(x), pos

            d, pos = await decide(on_future=False)
            assert d.action is RollAction.TO_FUTURE and pos.symbol == perp
            for act in roll_actions(d, hedge_id="q", venue="okx", perp_symbol=perp, future_symbol=fut_sym,
                                    leg_qty=pos.qty, seq=1):
                assert (await a.create_order(act.request)).status is OrderStatus.CLOSED
            [moved] = await a.fetch_positions()
            assert (moved.symbol, moved.qty, moved.entry_price) == (fut_sym, pytest.approx(-0.02), 30_300.0)
            assert sim.positions["BTC-USDT-QTR"][0] == -2 and sim.positions["BTC-USDT-SWAP"][0] == 0
            assert (await a.fetch_balance("spot"))["BTC"].total == pytest.approx(spot_btc)  # spot leg untouched
            # fees of the roll: two taker fills, 0.02 x 30,000 x 0.05 % + 0.02 x 30,300 x 0.05 % = 0.603 USDT
            roll_fills = await a.fetch_my_trades(perp) + await a.fetch_my_trades(fut_sym)
            assert sum(f.fee for f in roll_fills) - 0.3 == pytest.approx(0.603)  # minus the entry's 0.30

            sim.funding_rate["BTC-USDT-SWAP"] = 0.0002  # 21.9 % a year: above the basis' ~4 %
            d, pos = await decide(on_future=True)
            assert d.action is RollAction.TO_PERP and pos.symbol == fut_sym
            for act in roll_actions(d, hedge_id="q", venue="okx", perp_symbol=perp, future_symbol=fut_sym,
                                    leg_qty=pos.qty, seq=3):
                await a.create_order(act.request)
            [back] = await a.fetch_positions()
            assert (back.symbol, back.qty) == (perp, pytest.approx(-0.02))
            assert sim.positions["BTC-USDT-QTR"][0] == 0

    asyncio.run(go())
