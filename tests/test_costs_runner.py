"""The runner resolves the same cost model as the backtests (exchange.costs.of_adapter at hedge start):
a paper venue's PaperConfig fees, a live venue's ccxt market taker fees; it logs a warning naming both
figures when the parameters override them with a different round trip."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pandas as pd
import pytest

from hedge_core.exchange.costs import entry_round_trip, from_paper, of_adapter
from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.paper.core import PaperConfig, PaperCore
from hedge_core.params.models import CarryParams
from hedge_core.runner.hedge import HedgeSpec, HedgeTask
from hedge_core.runner.journal import Journal
from hedge_core.store import Store
from tests.support.binance_sim import BinanceSim
from tests.support.live_env import TEST_KEY, TEST_SECRET, live_env

T0 = pd.Timestamp("2024-03-01", tz="UTC")
SUP = SimpleNamespace(position_snapshot_s=0.0, alert_bus=None, heartbeat_stale=lambda: False)


def _start(tmp_path, params: CarryParams, cfg: PaperConfig) -> HedgeTask:
    core = PaperCore(cfg, balances={"spot": {"USDT": 10_000.0}, "perp": {"USDT": 10_000.0}})
    with Store(tmp_path / "c.duckdb") as st:
        task = HedgeTask(HedgeSpec(hedge_id="c1", mode="paper"), params, Journal(st), PaperExchange(core),
                         lambda t: None, SUP)
        task.started_at = T0
        asyncio.run(task.start_new(T0))
    return task


def test_paper_hedge_prices_its_venues_round_trip(tmp_path, caplog):
    cfg = PaperConfig(spot_taker_fee=0.00075, perp_taker_fee=0.00045, slippage_bps=2.0)
    with caplog.at_level(logging.WARNING, logger="hedge_core.runner.hedge"):
        task = _start(tmp_path, CarryParams(), cfg)
    assert task.params.venue_costs == from_paper(cfg)
    assert task.driver.params.venue_costs == from_paper(cfg)  # what the engine decides with
    assert entry_round_trip(task.params) == pytest.approx(2 * 0.00095 + 2 * 0.00065, abs=1e-15)
    assert not [r for r in caplog.records if "round trip" in r.getMessage()]


def test_paper_hedge_with_an_override_logs_both_figures(tmp_path, caplog):
    cfg = PaperConfig()  # 2 x (0.1 % + 1 bp) + 2 x (0.05 % + 1 bp) = 0.34 %
    with caplog.at_level(logging.WARNING, logger="hedge_core.runner.hedge"):
        task = _start(tmp_path, CarryParams(taker_fee=0.0004, slippage_rate=0.0002), cfg)
    msgs = [r.getMessage() for r in caplog.records if "round trip" in r.getMessage()]
    assert len(msgs) == 1 and "0.24 %" in msgs[0] and "0.34 % (spot 0.1 %, perp 0.05 %, slippage 1 bps)" in msgs[0]
    assert entry_round_trip(task.params) == pytest.approx(0.0024, abs=1e-15)  # the override is kept


def test_live_venue_cost_model_is_the_ccxt_markets_taker_fees():
    async def run():
        sim = BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET)
        async with live_env(sim=sim) as env:
            await env.adapter.load_markets()
            markets = env.adapter.exchange.markets
            m = of_adapter(env.adapter, "BTC/USDT", "BTC/USDT:USDT")
            return m, markets["BTC/USDT"]["taker"], markets["BTC/USDT:USDT"]["taker"]

    m, spot_taker, perp_taker = asyncio.run(run())
    assert isinstance(spot_taker, float) and isinstance(perp_taker, float)
    assert (m.spot_taker_fee, m.perp_taker_fee) == (spot_taker, perp_taker)
    assert m.round_trip == pytest.approx(2 * (spot_taker + 0.0001) + 2 * (perp_taker + 0.0001), abs=1e-15)
