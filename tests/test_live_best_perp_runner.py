"""Best execution at start in LIVE mode, a real runner process, real ccxt against the simulators: an xcarry
set (spot on binance, perp on bybit or okx) started with ``perp_venue="best"``. The runner builds one
adapter per allowed perp venue through its adapter factory (tests/support/simfactory_xlive.py: the Bybit
simulator answers "Get Orderbook", GET /v5/market/orderbook, https://bybit-exchange.github.io/docs/v5/market/orderbook;
there is no OKX simulator, so okx cannot be reached), reads bybit's book and market taker fee, ranks okx last
with its error, journals the choice, and the perp leg trades on bybit. A book too thin for the size is
refused listing its depth, and nothing is sent to either venue.
"""

from __future__ import annotations

import pytest

from hedge_core.errors import InvalidInput
from hedge_core.params import promotion
from hedge_core.params import store as param_store
from hedge_core.params.xcarry import CrossCarryParams
from hedge_core.runner.best_perp import TRIGGER
from tests.support.bybit_thread import BybitThread
from tests.support.live_runner import live_env, settle
from tests.support.runner_env import journal
from tests.support.sim_thread import SimThread
from tests.support.simfactory_xlive import FACTORY

pytestmark = [pytest.mark.timeout(240), pytest.mark.e2e]  # a real runner process

XC = CrossCarryParams(notional=1000.0, min_funding_rate=0.00001, min_net_carry=-1.0, spot_venue="binance",
                      perp_venue="bybit", perp_venues=("okx",),
                      exit={"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                            "funding_unfavourable_intervals": None})
HID = "live1"  # tests.support.live_runner.settle watches this id


def test_live_hedge_started_with_perp_venue_best_trades_on_the_chosen_venue(tmp_path):
    binance, bybit = SimThread(spot_fee_in_received=False), BybitThread()
    env, extra = live_env(tmp_path, binance)
    extra = {**extra, "HEDGE_RUNNER_ADAPTER_FACTORY": FACTORY, "HEDGE_TEST_BYBIT_PORT": str(bybit.server.port)}
    param_store.export(XC, "xc-test", created_from="test", root=env.params, db=env.db, kpis={"sharpe": 1.0})
    promotion.promote("xc-test", 1, "paper", root=env.params, db=env.db)
    promotion.promote("xc-test", 1, "live", confirm=True, gate=promotion.PromotionGate(require_paper_run=False),
                      root=env.params, db=env.db)
    try:
        p = env.start_runner(extra)
        c = env.client(p)
        # bybit's book: 0.01 BTC at the price, too thin for 1000 USDT (0.025 BTC): refused, depths listed
        bybit.call(setattr, bybit.sim, "order_books", {("linear", "BTCUSDT"): {"bids": [(40_000.0, 0.01)],
                                                                                "asks": [(40_000.0, 0.01)]}})
        with pytest.raises(InvalidInput, match=r"bybit: book depth 0\.01 < amount 0\.025.*okx: no order book"):
            c.start("xc-test", mode="live", feed="ticker", poll_s=0.2, hedge_id="thin", confirm_live=True,
                    venue="binance", perp_venue="best")
        assert not bybit.sim.orders and not binance.sim.orders  # nothing placed on either venue
        # a deep book: bybit is chosen (okx ranked last with why), at bybit's own taker fee
        bybit.call(setattr, bybit.sim, "order_books", {("linear", "BTCUSDT"): {"bids": [(39_990.0, 5.0)],
                                                                                "asks": [(40_010.0, 5.0)]}})
        out = c.start("xc-test", mode="live", feed="ticker", poll_s=0.2, hedge_id=HID, confirm_live=True,
                      venue="binance", perp_venue="best")
        choice = out["perp_venue_choice"]
        assert out["perp_venue"] == "bybit" and choice["venue"] == "bybit"
        by = {s["venue"]: s for s in choice["ranking"]}
        assert [s["venue"] for s in choice["ranking"]] == ["bybit", "okx"]
        assert by["okx"]["reason"].startswith("no order book (InvalidInput")
        # the fee is the venue's market data, not the set's perp_taker_fee (0.055 %): ccxt's bybit parses a linear
        # market's 'taker' from instruments-info's takerFee, default 0.0006 (ccxt/bybit.py parse_market)
        assert XC.perp_taker_fee == 0.00055 and by["bybit"]["taker_fee"] == pytest.approx(0.0006, abs=1e-12)
        # sell 0.025 at the one bid 39,990: proceeds 999.75 less 0.06 %
        assert by["bybit"]["net_quote"] == pytest.approx(0.025 * 39_990.0 * (1 - 0.0006), rel=1e-9)
        settle(env, p, "MONITORING_POSITIONS")
        tr = c.history("transitions", hedge_id=HID)
        assert (tr["trigger_name"] == TRIGGER).sum() == 1
        fills = c.history("fills", hedge_id=HID)
        assert set(fills.loc[fills["leg"] == "perp", "venue"]) == {"bybit"}
        assert bybit.sim.positions["BTCUSDT"][0] < 0 and not [v for v in binance.sim.positions.values() if v[0]]
        c.shutdown()
        p.wait(60)
        assert journal(env, "hedge_runs", HID)["perp_venue"].iloc[0] == "bybit"
    finally:
        env.cleanup()
        binance.close()
        bybit.close()
