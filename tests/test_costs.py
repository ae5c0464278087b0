"""One cost model (exchange.costs): the venue's fees are what the carry entry filter prices.

References are hand-computed round trips from the venue's documented fees (Binance VIP0, binance.com/
en/fee/schedule: spot taker 0.1 %, USD-M perpetual taker 0.05 %): opening and closing each leg once,
``2 x (spot fee + slippage) + 2 x (perp fee + slippage)``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from hedge_core.backtest.event import BacktestConfig, run_backtest
from hedge_core.backtest.fast import entry_signal, run_fast
from hedge_core.backtest.timeline import Market, timeline_of
from hedge_core.engine import MarketUpdate, new_hedge
from hedge_core.engine.strategies.carry import decide
from hedge_core.errors import InvalidInput
from hedge_core.exchange.costs import (
    BINANCE_VIP0,
    CostModel,
    CostModelWarning,
    cost_mismatch,
    entry_round_trip,
    from_ccxt_markets,
    from_paper,
    of_adapter,
    resolve_costs,
)
from hedge_core.exchange.paper.core import PaperConfig, default_instruments
from hedge_core.params.models import CarryParams, ExitParams

T0 = pd.Timestamp("2024-03-01", tz="UTC")


def test_paper_venue_round_trip_is_each_legs_own_fee_plus_slippage():
    m = from_paper(PaperConfig(slippage_bps=2.0))
    assert (m.spot_taker_fee, m.perp_taker_fee, m.slippage_rate) == (0.001, 0.0005, 0.0002)
    # spot in + out 2 x 0.12 % = 0.24 %, perp in + out 2 x 0.07 % = 0.14 %
    assert m.round_trip == pytest.approx(0.0038, abs=1e-15)
    assert from_paper(PaperConfig()).round_trip == pytest.approx(2 * 0.0011 + 2 * 0.0006, abs=1e-15)
    assert BINANCE_VIP0 == CostModel(0.001, 0.0005, 0.0001, source=BINANCE_VIP0.source)
    assert BINANCE_VIP0.round_trip == from_paper(PaperConfig()).round_trip  # the defaults are the paper venue's
    assert m.describe() == "0.38 % (spot 0.1 %, perp 0.05 %, slippage 2 bps)"


def test_two_paper_venues_take_each_legs_fee_from_its_venue():
    a = PaperConfig(venue="binance", spot_taker_fee=0.002)
    b = PaperConfig(venue="bybit", perp_taker_fee=0.00055, slippage_bps=3.0)
    m = from_paper(a, b)
    assert (m.spot_taker_fee, m.perp_taker_fee, m.slippage_rate) == (0.002, 0.00055, 0.0003)
    assert m.round_trip == pytest.approx(2 * 0.0023 + 2 * 0.00085, abs=1e-15)


def test_ccxt_markets_taker_fees_and_bad_input_named():
    # ccxt unified market structure: 'taker' is the taker fee rate (docs.ccxt.com, "Market structure")
    m = from_ccxt_markets({"symbol": "BTC/USDT", "taker": 0.001}, {"symbol": "BTC/USDT:USDT", "taker": 0.0005},
                          slippage_rate=0.0, venue="binance")
    assert m.round_trip == pytest.approx(0.003, abs=1e-15) and "binance" in m.source
    with pytest.raises(InvalidInput, match="perp_market.taker"):
        from_ccxt_markets({"taker": 0.001}, {"maker": 0.0002})
    with pytest.raises(InvalidInput, match=r"spot_taker_fee.*\[0, 0.01\]"):
        CostModel(0.5, 0.0005, 0.0001)
    with pytest.raises(InvalidInput, match="slippage_rate"):
        CostModel(0.001, 0.0005, float("nan"))


def test_of_adapter_reads_the_paper_config_else_the_ccxt_markets_else_the_defaults():
    class Core:
        config = PaperConfig(spot_taker_fee=0.0009, perp_taker_fee=0.0004, slippage_bps=0.0)

    class Paper:
        core = Core()

    assert of_adapter(Paper()).round_trip == pytest.approx(2 * 0.0009 + 2 * 0.0004, abs=1e-15)

    class Ex:
        markets = {"BTC/USDT": {"taker": 0.00075}, "BTC/USDT:USDT": {"taker": 0.00045}}

    class Live:
        exchange = Ex()
        venue = "binance"

    live = of_adapter(Live(), "BTC/USDT", "BTC/USDT:USDT")
    assert (live.spot_taker_fee, live.perp_taker_fee) == (0.00075, 0.00045)
    assert of_adapter(Live(), "ETH/USDT", "ETH/USDT:USDT") is BINANCE_VIP0  # markets not loaded for it
    assert of_adapter(object()) is BINANCE_VIP0


def test_warning_names_both_figures_when_params_differ_and_not_when_equal():
    venue = from_paper(PaperConfig(slippage_bps=2.0))  # 0.38 %
    old = CarryParams(taker_fee=0.0004, slippage_rate=0.0002)  # the former defaults: 4 x 0.06 % = 0.24 %
    with pytest.warns(CostModelWarning) as rec:
        got = resolve_costs(old, venue)
    msg = str(rec[0].message)
    assert "0.24 %" in msg and "0.38 % (spot 0.1 %, perp 0.05 %, slippage 2 bps)" in msg
    assert got.venue_costs == venue and entry_round_trip(got) == pytest.approx(0.0024, abs=1e-15)  # override kept
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        default = resolve_costs(CarryParams(), venue)  # None = the venue's figures: no warning
        assert entry_round_trip(default) == pytest.approx(0.0038, abs=1e-15)
        same = CostModel(0.0004, 0.0004, 0.0002)
        resolve_costs(old, same)  # explicit figures equal to the venue's: no warning
    assert cost_mismatch(CarryParams(slippage_rate=0.0002), venue) is None
    assert cost_mismatch(CarryParams(slippage_rate=0.0), venue) is not None


def test_venue_costs_are_not_exported_and_the_override_range_is_checked():
    p = resolve_costs(CarryParams(), BINANCE_VIP0)
    assert "venue_costs" not in p.model_dump()
    assert CarryParams.model_validate(p.model_dump()).venue_costs is None
    with pytest.raises(ValueError, match="taker_fee"):
        CarryParams(taker_fee=0.02)


# ---- the entry filter on both paths: 0.24 % would enter, the venue's 0.34 % does not ------------------
# Held 10 funding intervals of 8h at 0.0003 per interval, the carry collects 10 x 0.0003 = 0.3 % of the
# notional (basis 0): more than the old 0.24 % round trip, less than the paper venue's
# 2 x (0.1 % + 1 bp) + 2 x (0.05 % + 1 bp) = 0.34 %.

RATE = 0.0003
ENTRY = {"expected_hold_intervals": 10, "min_funding_rate": 0.0001, "min_net_carry": 0.0,
         "exit": ExitParams(profit_target_pct=None, stop_loss_pct=None, max_holding_hours=None,
                            funding_unfavourable_intervals=None)}
OLD = {"taker_fee": 0.0004, "slippage_rate": 0.0002}


def _market(hours: int = 24 * 6) -> Market:
    idx = pd.date_range(T0, periods=hours, freq="1h", tz="UTC")
    close = np.full(hours, 40_000.0)
    bars = pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": 5_000.0}, index=idx)
    ft = pd.date_range(T0, periods=hours // 8, freq="8h", tz="UTC")
    return Market("binance", "BTC/USDT", "BTC/USDT:USDT", "1h", bars, bars.copy(), bars.copy(),
                  pd.DataFrame({"funding_rate": np.full(len(ft), RATE)}, index=ft))


def test_event_path_decide_prices_the_venue_round_trip():
    inst = {i.symbol: i for i in default_instruments()}
    ctx = new_hedge("c", "carry", inst["BTC/USDT"], inst["BTC/USDT:USDT"], T0)
    mu = MarketUpdate(ts=T0, spot=40_000.0, perp=40_000.0, mark=40_000.0, funding_rate=RATE,
                      funding_interval_hours=8.0)
    venue = from_paper(PaperConfig())
    assert not decide(ctx, mu, {}, resolve_costs(CarryParams(**ENTRY), venue)).enter
    with pytest.warns(CostModelWarning):
        assert decide(ctx, mu, {}, resolve_costs(CarryParams(**ENTRY, **OLD), venue)).enter


@pytest.mark.parametrize("override", [False, True])
def test_backtest_and_fast_path_enter_only_when_the_venue_round_trip_is_paid(override):
    params = CarryParams(**ENTRY, **(OLD if override else {}))
    m = _market()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CostModelWarning)
        ev = run_backtest(params, m, config=BacktestConfig())
        fa = run_fast(params, m, config=BacktestConfig())
    tl = timeline_of(m, start=None, end=None, warmup=BacktestConfig().warmup, spec=BacktestConfig().spec)
    sig = entry_signal(resolve_costs(params, from_paper(PaperConfig()), warn=False), tl)
    assert bool(sig.any()) is override
    assert (len(ev.fills) > 0) is override and (len(fa.fills) > 0) is override
    assert len(ev.fills) == len(fa.fills)
