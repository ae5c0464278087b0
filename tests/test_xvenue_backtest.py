"""Cross-venue carry through the one engine: spot on paper venue A, perp on paper venue B.

Hand-checked: the entry rule costs both venues' fees; venue B settles funding at ITS interval with
``-qty x mark x rate``; each venue's wallet moves by exactly its leg's money; the run states where its
prices come from. The shared-data test runs Binance spot / Bybit perp on the real cross-venue file.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hedge_core.backtest.timeline import Market
from hedge_core.backtest.xvenue import (
    CrossVenueConfig,
    cross_venue_market,
    funding_of_venue,
    run_cross_venue_backtest,
)
from hedge_core.engine import MarketUpdate, State, new_hedge
from hedge_core.engine.strategies import strategy_for
from hedge_core.engine.strategies.xcarry import decide, received_apr
from hedge_core.errors import InvalidInput
from hedge_core.exchange.paper.core import default_instruments
from hedge_core.params.models import ExitParams
from hedge_core.exchange.costs import entry_round_trip
from hedge_core.params.xcarry import CrossCarryParams

T0 = pd.Timestamp("2024-01-01T00:00Z")
NO_EXIT = ExitParams(max_holding_hours=None, profit_target_pct=None, stop_loss_pct=None,
                     funding_unfavourable_intervals=None)


def market(hours: int = 24 * 5, interval_h: float = 1.0, rate: float = 0.0001, venue: str = "binance") -> Market:
    idx = pd.date_range(T0, periods=hours, freq="1h", tz="UTC")
    close = 40_000.0 + 100.0 * np.sin(np.arange(hours) / 10.0)
    spot = pd.DataFrame({"open": close, "high": close * 1.0005, "low": close * 0.9995, "close": close,
                         "volume": 5_000.0}, index=idx)
    perp = spot.assign(open=close * 1.0001, close=close * 1.0001)
    ft = pd.date_range(T0 + pd.Timedelta(hours=interval_h), T0 + pd.Timedelta(hours=hours - 1),
                       freq=f"{int(interval_h)}h", tz="UTC")
    cv = pd.DataFrame({"ts": ft, "venue": "okx", "symbol": "BTCUSDT", "funding_rate": rate,
                       "interval_hours": interval_h})
    prices = Market(venue, "BTC/USDT", "BTC/USDT:USDT", "1h", spot, perp, perp, None)
    return cross_venue_market(prices, cv, perp_venue="okx")


def xparams(**kw) -> CrossCarryParams:
    base = {"notional": 8_000.0, "min_funding_rate": 0.00001, "min_net_carry": -1.0, "spot_venue": "binance",
            "perp_venue": "okx", "spot_taker_fee": 0.001, "perp_taker_fee": 0.0005, "exit": NO_EXIT,
            "slippage_rate": 0.0}
    base.update(kw)
    return CrossCarryParams(**base)


# ---- the entry rule (pure) ---------------------------------------------------------------------------

def _mu(rate: float, interval_h: float = 8.0) -> MarketUpdate:
    return MarketUpdate(ts=T0, spot=40_000.0, perp=40_000.0, mark=40_000.0, funding_rate=rate,
                        funding_interval_hours=interval_h)


@pytest.mark.parametrize("interval_h", [8.0, 4.0, 1.0])
def test_entry_needs_the_funding_to_pay_both_venues_fees(interval_h):
    # round trip = 2 x 0.001 (binance spot) + 2 x 0.0005 (okx perp) = 0.003 of the notional; held 10 of
    # the perp venue's intervals, the carry is 10 x rate: it pays the fees above rate = 0.0003 per interval
    inst = {i.symbol: i for i in default_instruments()}
    ctx = new_hedge("e", "xcarry", inst["BTC/USDT"], inst["BTC/USDT:USDT"], T0)
    p = xparams(min_net_carry=0.0, expected_hold_intervals=10)
    assert entry_round_trip(p.as_carry()) == pytest.approx(2 * 0.001 + 2 * 0.0005)  # slippage set to 0
    assert decide(ctx, _mu(0.00031, interval_h), {}, p).enter
    assert not decide(ctx, _mu(0.00029, interval_h), {}, p).enter
    # with the spot venue's fee on both legs (one-venue costing) 0.00031 would not pay: 10 x 0.00031 < 0.004
    one_venue = xparams(min_net_carry=0.0, expected_hold_intervals=10, perp_taker_fee=0.001)
    assert not decide(ctx, _mu(0.00031, interval_h), {}, one_venue).enter
    assert strategy_for(p).name == "xcarry"


def test_exit_when_the_received_apr_falls_below_the_threshold():
    assert received_apr(-0.2, 0.0001, 8.0) == pytest.approx(0.0001 * 3 * 365)  # a short receives + funding
    assert received_apr(-0.2, 0.0001, 1.0) == pytest.approx(0.0001 * 24 * 365)
    assert received_apr(0.2, 0.0001, 8.0) == pytest.approx(-0.0001 * 3 * 365) and math.isnan(received_apr(0.0, 1e-4, 8))


def test_one_venue_params_are_refused():
    with pytest.raises(ValueError, match="two different venues"):
        xparams(spot_venue="okx", perp_venue="okx")
    with pytest.raises(InvalidInput, match="CrossCarryParams"):
        from hedge_core.params.models import CarryParams
        run_cross_venue_backtest(CarryParams(), market())  # type: ignore[arg-type]


# ---- the replay ----------------------------------------------------------------------------------

def test_hourly_perp_venue_settles_every_hour_and_each_wallet_moves_by_its_leg():
    run = run_cross_venue_backtest(xparams(), market(interval_h=1.0), start=T0 + pd.Timedelta(days=1),
                                   config=CrossVenueConfig(spot_usdt=20_000.0, perp_usdt=10_000.0))
    r = run.result
    c_spot, c_perp = r.ledger.loc["spot"], r.ledger.loc["perp"]
    assert r.final_state == str(State.MONITORING_POSITIONS) and c_spot["qty"] > 0 > c_perp["qty"]
    fp = r.funding_payments
    # okx settles hourly: one payment per hour in the market, each -qty x mark x rate (hand formula)
    assert len(fp) >= 20 and (fp["ts"].diff().dropna() == pd.Timedelta(hours=1)).all()
    assert np.allclose(fp["amount"], -fp["position_qty"] * fp["mark_price"] * 0.0001, rtol=1e-12)
    assert fp["amount"].sum() == pytest.approx(c_perp["funding"], rel=1e-9)
    pv = run.per_venue
    assert list(pv.index) == ["binance", "okx"] and pv.loc["binance", "funding"] == 0.0
    # each venue's fee at its own rate
    fills = r.fills
    spot_f, perp_f = fills[fills["leg"] == "spot"], fills[fills["leg"] == "perp"]
    assert pv.loc["binance", "fees"] == pytest.approx((spot_f["qty"] * spot_f["price"]).sum() * 0.001, rel=1e-9)
    assert pv.loc["okx", "fees"] == pytest.approx((perp_f["qty"] * perp_f["price"]).sum() * 0.0005, rel=1e-9)
    # binance's USDT moved by the spot leg's cash and fee only; okx's wallet by the perp's realised, fee, funding
    spent = (spot_f["qty"] * spot_f["price"] * np.where(spot_f["side"] == "buy", 1, -1)).sum()
    assert pv.loc["binance", "wallet_end"] == pytest.approx(20_000.0 - spent - pv.loc["binance", "fees"], rel=1e-12)
    assert pv.loc["okx", "wallet_end"] == pytest.approx(
        10_000.0 + c_perp["realized"] - c_perp["fees"] + c_perp["funding"], rel=1e-12)
    assert set(r.orders.loc[r.orders["leg"] == "spot", "venue"]) == {"binance"}
    assert set(r.orders.loc[r.orders["leg"] == "perp", "venue"]) == {"okx"}
    assert any("binance's" in n and "okx's own funding" in n for n in run.notes)


@pytest.mark.parametrize("interval_h", [8.0, 4.0])
def test_the_perp_venues_interval_drives_the_funding_calendar(interval_h):
    run = run_cross_venue_backtest(xparams(), market(interval_h=interval_h), start=T0 + pd.Timedelta(days=1))
    fp = run.result.funding_payments
    assert len(fp) > 3 and (fp["ts"].diff().dropna() == pd.Timedelta(hours=interval_h)).all()
    assert f"funding every {interval_h:g}h" in run.notes[-1]


def test_strategy_exit_when_the_perp_venue_funding_turns():
    m = market(interval_h=8.0)
    f = m.funding.copy()
    f.loc[f.index >= T0 + pd.Timedelta(days=3), "funding_rate"] = -0.0002  # turns against the short perp
    m2 = Market(m.venue, m.spot_symbol, m.perp_symbol, m.timeframe, m.spot, m.perp, m.mark, f, m.meta)
    run = run_cross_venue_backtest(xparams(exit_below_apr=0.0, exit=ExitParams(
        max_holding_hours=None, profit_target_pct=None, stop_loss_pct=None, funding_unfavourable_intervals=None,
        rearm=False)), m2, start=T0 + pd.Timedelta(days=1))
    tr = run.result.transitions
    exits = tr[tr["trigger_name"] == "EXIT_SIGNAL"]
    assert len(exits) == 1 and "okx funding APR received" in exits["reason"].iloc[0]
    assert exits["ts"].iloc[0] > T0 + pd.Timedelta(days=3)
    assert run.result.ledger.loc["perp", "qty"] == 0.0


# ---- the shared cross-venue data -------------------------------------------------------------------

def _shared():
    from hedge_core.data.shared import market_data

    md = market_data()
    if md.synthetic:
        pytest.skip("../shared/data is absent (set HEDGE_SHARED_DATA): no cross-venue funding file")
    return md


def test_binance_spot_bybit_perp_on_the_shared_cross_venue_funding():
    md = _shared()
    cv = md.crossvenue_funding()
    bybit = funding_of_venue(cv, "bybit", "BTCUSDT")
    binance = funding_of_venue(cv, "binance", "BTCUSDT")
    m = cross_venue_market(md.market("BTC"), cv, perp_venue="bybit").window("2023-03-01", "2023-04-01")
    p = xparams(perp_venue="bybit", perp_taker_fee=0.00055, min_funding_rate=0.0001, min_net_carry=0.0,
                expected_hold_intervals=21)
    run = run_cross_venue_backtest(p, m, start="2023-03-04", end="2023-04-01")
    r = run.result
    fp = r.funding_payments
    assert len(fp) > 5
    # the perp leg was paid bybit's rates, not binance's (they differ on most of these settlements)
    assert np.allclose(fp["rate"].to_numpy(), bybit.loc[pd.DatetimeIndex(fp["ts"]), "funding_rate"].to_numpy())
    differ = bybit.loc[pd.DatetimeIndex(fp["ts"]), "funding_rate"].to_numpy() != \
        binance.loc[pd.DatetimeIndex(fp["ts"]), "funding_rate"].to_numpy()
    assert differ.mean() > 0.5
    assert np.allclose(fp["amount"], -fp["position_qty"] * fp["mark_price"] * fp["rate"], rtol=1e-12)
    assert run.per_venue.loc["bybit", "funding"] == pytest.approx(r.ledger.loc["perp", "funding"], rel=1e-9)
    assert r.kpis["entries"] >= 1 and r.kpis["n_liquidations"] == 0
    assert "binance's" in run.notes[0] and "bybit's own funding" in run.notes[0]


def test_the_tearsheet_states_the_price_assumption():
    from hedge_core.ui.figures.xvenue import cross_venue_tearsheet

    run = run_cross_venue_backtest(xparams(), market(interval_h=8.0), start=T0 + pd.Timedelta(days=1))
    fig = cross_venue_tearsheet(run)
    text = " ".join(a.text for a in fig.layout.annotations if a.text)
    assert "prices of both legs (spot, perp, mark) are binance's" in text
    assert "okx (perp leg)" in text and "binance (spot leg)" in text
    assert "spot on binance, perp on okx" in fig.layout.title.text
