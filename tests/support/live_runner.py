"""A runner process trading live on the Binance simulator: its environment, start, settle and the venue check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hedge_core.params import promotion
from tests.support import live_env as sim_env
from tests.support.binance_sim import BinanceSim
from tests.support.live_env import TEST_KEY, TEST_SECRET
from tests.support.runner_env import Env, journal, make_env, wait_for
from tests.support.sim_thread import PRICE, SimThread
from tests.support.simfactory import FACTORY

HID = "live1"


NO_EXITS = {"exit": {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                     "funding_unfavourable_intervals": None}}


def live_env(tmp: Path, sim: SimThread, *, days: int = 3, export: dict[str, Any] | None = None
             ) -> tuple[Env, dict[str, str]]:
    """The parameter set ``carry-test`` (``export``: its overrides; default no exits) promoted to live, and the
    runner's extra environment reaching the Binance simulator ``sim``."""
    env = make_env(tmp, days=days, export=NO_EXITS if export is None else export)
    promotion.promote("carry-test", 1, "paper", root=env.params, db=env.db)
    promotion.promote("carry-test", 1, "live", confirm=True, gate=promotion.PromotionGate(require_paper_run=False),
                        root=env.params, db=env.db)
    ca = tmp / "ca.pem"
    sim_env.test_ca().cert_pem.write_to_path(str(ca))
    extra = {"HEDGE_RUNNER_ADAPTER_FACTORY": FACTORY, "HEDGE_TEST_SIM_PORT": str(sim.server.port),
             "HEDGE_TEST_SIM_CA": str(ca), "HEDGE_TEST_SIM_KEY": TEST_KEY, "HEDGE_TEST_SIM_SECRET": TEST_SECRET}
    return env, extra


def start_live(c: Any, recovery: str, **spec: Any) -> None:
    """Start the live hedge ``HID`` on the ticker feed; ``spec``: further hedge spec fields (e.g. ``records_poll_s``)."""
    c.start("carry-test", mode="live", feed="ticker", poll_s=0.2, recovery=recovery, hedge_id=HID, confirm_live=True,
            **spec)


def check_sim(env: Env, sim: BinanceSim, *, flat: bool) -> None:
    orders = journal(env, "orders", HID)
    fills = journal(env, "fills", HID)
    coids = set(orders["client_order_id"])
    venue = list(sim.orders.values())
    assert {o.client_id for o in venue} <= coids  # every venue order was journaled before it was sent
    for o in venue:  # every venue fill is in the journal
        booked = fills.loc[fills["client_order_id"] == o.client_id, "qty"].sum()
        assert booked == pytest.approx(o.executed, abs=1e-9), (o.client_id, booked, o.executed)
    for cid in coids:  # never two venue orders for one client order id
        assert sum(1 for o in venue if o.client_id == cid) <= 1
    spot_buys = [o for o in venue if o.market == "spot" and o.side == "BUY" and o.executed > 0]
    assert len(spot_buys) <= 1
    spot = sum(sim.spot.get("BTC", [0.0, 0.0]))
    perp = sim.position("BTCUSDT")
    tol = 100.0 / PRICE + 0.001  # below the perp minimum notional nothing can be hedged
    assert abs(spot + perp) < tol, (spot, perp)
    if flat:
        assert abs(perp) < 1e-12 and spot < tol
    else:
        assert perp < 0 < spot


def settle(env: Env, p, want: str) -> dict:
    c = env.client(p)
    return wait_for(lambda: (lambda h: h if h.get("state") == want and not h.get("pending_orders") else None)(
        c.hedge(HID)), timeout=60, what=f"hedge {want}")



def two_venue_env(tmp: Path, binance: SimThread, bybit: Any, *, days: int = 3, export: dict[str, Any] | None = None
                  ) -> tuple[Env, dict[str, str]]:
    """:func:`live_env` whose adapter factory reaches both simulators: Binance (spot and USD-M) and Bybit
    (``bybit``: a ``tests.support.bybit_thread.BybitThread``)."""
    from tests.support.simfactory_xlive import FACTORY as XFACTORY

    env, extra = live_env(tmp, binance, days=days, export=export)
    return env, {**extra, "HEDGE_RUNNER_ADAPTER_FACTORY": XFACTORY, "HEDGE_TEST_BYBIT_PORT": str(bybit.server.port)}
