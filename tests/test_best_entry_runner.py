"""A real runner process SIGKILLed at ``perp_venue_chosen`` (runner.best_entry), then restarted.

Paper replay of the demo market, perp venue ``best`` among bybit and okx. The venues' paper models differ so the
better one depends on the bar's volume: bybit charges no fee but an impact of ``10 x sqrt(amount / volume)`` bp,
okx a flat 3 bp fee (no slippage, no impact). For a 10M USDT carry (about 240 BTC) bybit is better on a deep bar
(``amount / volume < 0.09``) and okx on a thin one. The bar closed at the start is deep (bybit chosen at start);
the next one is thin, so the flat hedge moves to okx: the runner journals it and is killed at the kill point.
After the restart the hedge is on okx (its journal says so), the next deep bar moves it back to bybit, and the
entry trades there. No order ever reaches okx.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.routed_paper import venue_state_path
from hedge_core.runner.best_entry import KILL_POINT
from hedge_core.runner.best_perp import TRIGGER
from tests.support.best_perp import XCARRY

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

VENUES = {"bybit": {"perp_taker_fee": 0.0, "slippage_bps": 0.0, "impact_k_bps": 10.0},
          "okx": {"perp_taker_fee": 0.0003, "slippage_bps": 0.0, "impact_k_bps": 0.0}}
NOTIONAL = 1e7
PARAMS = {**XCARRY, "notional": NOTIONAL, "guards": {"max_position_notional": 1e9, "max_position_qty": 1e6}}


def test_a_runner_killed_after_moving_its_flat_perp_leg_recovers_on_the_new_venue(tmp_path: Path) -> None:
    from hedge_core.params import store as param_store
    from hedge_core.params.xcarry import CrossCarryParams
    from tests.support.runner_env import DEMO_START, journal, make_env, wait_exit, wait_for

    env = make_env(tmp_path)
    param_store.export(CrossCarryParams(**PARAMS), "xc-best", created_from="test", root=env.params, db=env.db,
                       kpis={"sharpe": 1.0})
    with env.store() as st:  # the scenario's premise, from the demo bars: deep at the start, thin next
        bars = st.read_bars("demo", "BTC/USDT:USDT", "perp", "1h", end=pd.Timestamp(DEMO_START) + pd.Timedelta(hours=1))
    v0, v1 = float(bars["volume"].iloc[-2]), float(bars["volume"].iloc[-1])
    amount = NOTIONAL / float(bars["close"].iloc[-2])
    assert 10 * math.sqrt(amount / v0) < 3.0 < 10 * math.sqrt(amount / v1), (v0, v1, amount)
    try:
        p = env.start_runner({"HEDGE_RUNNER_KILL_AT": KILL_POINT})
        c = env.client(p)
        out = c.start("xc-best", mode="paper", start=DEMO_START, speed=36_000, hedge_id="be", venue="binance",
                      perp_venue="best", paper_venues=VENUES,
                      balances={"spot": {"USDT": 1e8}, "perp": {"USDT": 1e8}})
        assert out["perp_venue"] == "bybit"
        assert wait_exit(p) == -9, "the runner should have SIGKILLed itself at perp_venue_chosen"
        runs = journal(env, "hedge_runs", "be")
        assert runs["perp_venue"].iloc[0] == "okx"  # journaled before the kill: the restart builds it there
        tr = journal(env, "transitions", "be")
        assert list(tr.loc[tr["trigger_name"] == TRIGGER, "reason"].str.contains("was bybit")) == [False, True]
        okx_file = venue_state_path(env.home / "paper", "be", "okx")
        assert okx_file.exists() and not PaperExchange.load(okx_file).core.orders

        p2 = env.start_runner()
        c2 = env.client(p2)

        def entered() -> dict | None:
            h = c2.hedge("be")
            return h if h.get("state") == "MONITORING_POSITIONS" and not h.get("pending_orders") else None
        wait_for(entered, timeout=90, what="entry after the restart")
        c2.shutdown()
        p2.wait(60)
        tr = journal(env, "transitions", "be").sort_values("seq")
        assert "RECOVERY" in set(tr["trigger_name"])
        moves = tr[tr["trigger_name"] == TRIGGER]
        assert len(moves) >= 3 and "(was okx): perp venue bybit chosen" in moves["reason"].iloc[2]
        assert journal(env, "hedge_runs", "be")["perp_venue"].iloc[0] == "bybit"
        fills = journal(env, "fills", "be")
        assert set(fills.loc[fills["leg"] == "perp", "venue"]) == {"bybit"}
        assert not PaperExchange.load(okx_file).core.orders  # okx never got an order
        byb = PaperExchange.load(venue_state_path(env.home / "paper", "be", "bybit")).core
        assert byb.positions_view()[0].qty < 0
    finally:
        env.cleanup()
