"""kill -9 the runner (real process, SIGKILL at a named point) at each step of a hedge's life,
restart it, and check against the paper venue's persisted state: no naked leg, no duplicate
order, every venue fill in the journal, and the hedge resumed or flattened as its policy says."""

from __future__ import annotations

import math

import pytest

from tests.support.runner_env import (
    DEMO_START,
    Env,
    journal,
    make_env,
    paper_exchange,
    wait_for,
)

pytestmark = pytest.mark.timeout(180)

EXIT_OFF = {"exit": {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                     "funding_unfavourable_intervals": None}}
SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"
HID = "h1"


def start(env: Env, c, recovery: str, **kw) -> None:
    c.start("carry-test", mode="paper", start=DEMO_START, speed=36_000, recovery=recovery, hedge_id=HID, **kw)


def killed(p) -> None:
    assert p.wait(60) == -9, "the runner should have SIGKILLed itself at the kill point"


def check_invariants(env: Env, *, flat: bool) -> None:
    ex = paper_exchange(env, HID)
    core = ex.core
    spot_qty = core.balance("spot").get("BTC")
    spot_qty = spot_qty.total if spot_qty is not None else 0.0
    perp_qty = sum(p.qty for p in core.positions.values() if p.symbol == PERP)
    orders = journal(env, "orders", HID)
    fills = journal(env, "fills", HID)
    coids = set(orders["client_order_id"])
    venue = [o for o in core.orders.values() if not o.cid.startswith("liq-")]
    # every venue order is one of ours, journaled before it was sent
    assert {o.cid for o in venue} <= coids
    # every venue fill is in the journal (per order, cumulative quantity)
    for o in venue:
        booked = fills.loc[fills["client_order_id"] == o.cid, "qty"].sum()
        assert booked == pytest.approx(o.filled, abs=1e-12), (o.cid, booked, o.filled)
    # journal order rows agree with the venue
    for o in venue:
        row = orders.loc[orders["client_order_id"] == o.cid].iloc[0]
        assert row["filled"] == pytest.approx(o.filled, abs=1e-12)
    # every fill's slippage is against the price its order was decided at (journaled with the
    # intent), also for fills found by the reconciliation after the restart
    from hedge_core.engine.ledger import slippage_cost
    from hedge_core.types import Side

    refs = dict(zip(orders["client_order_id"], orders["ref_price"]))
    assert all(math.isfinite(refs[c]) and refs[c] > 0 for c in fills["client_order_id"])
    for f in fills.itertuples(index=False):
        want = slippage_cost(Side(f.side), f.qty, f.price, refs[f.client_order_id])
        assert f.slippage == pytest.approx(want, rel=1e-9, abs=1e-9), (f.client_order_id, f.trade_id)
    assert fills.empty or (fills["slippage"].abs() > 0).any()  # the paper venue's slippage model is on
    # no duplicate: the spot leg was bought once (one filled spot buy on the venue)
    spot_buys = [o for o in venue if o.symbol == SPOT and str(o.side) == "buy" and o.filled > 0]
    assert len(spot_buys) == (0 if flat and not spot_buys else 1), [(o.cid, o.filled) for o in spot_buys]
    # no naked leg: spot and perp offset to within the smallest perp order the venue accepts
    # (a residual below the perp minimum notional cannot be hedged by any order)
    inst = core.instruments[PERP]
    tol = max(inst.min_notional / core.ref_price(PERP), inst.min_qty) + inst.lot_size
    assert abs(spot_qty + perp_qty) < tol, (spot_qty, perp_qty, tol)
    if flat:
        assert abs(perp_qty) < 1e-12 and spot_qty < 0.001
    else:
        assert perp_qty < 0 and spot_qty > 0


def settle(env: Env, p, *, want: str) -> dict:
    c = env.client(p)
    return wait_for(lambda: (lambda h: h if h.get("state") == want and not h.get("pending_orders") else None)(
        c.hedge(HID)), timeout=60, what=f"hedge {want}")


@pytest.mark.parametrize("kill_at,policy", [
    ("intent_journaled:spot:entry", "resume"),   # intent written, order not sent
    ("intent_journaled:spot:entry", "flatten"),
    ("order_sent:spot:entry", "resume"),         # order sent, answer not processed
    ("fill_journaled:spot:entry", "resume"),     # spot filled, perp not sent
    ("fill_journaled:spot:entry", "flatten"),
    ("intent_journaled:perp:hedge", "resume"),   # perp intent written, not sent
    ("order_sent:perp:hedge", "resume"),         # perp sent, not acknowledged
    ("order_sent:perp:hedge", "flatten"),
])
def test_kill_during_entry_then_restart(tmp_path, kill_at, policy):
    env = make_env(tmp_path, export=EXIT_OFF)
    try:
        p = env.start_runner({"HEDGE_RUNNER_KILL_AT": kill_at})
        start(env, env.client(p), policy)
        killed(p)
        p2 = env.start_runner()
        want = "MONITORING_POSITIONS" if policy == "resume" else "COMPLETED"
        h = settle(env, p2, want=want)
        check_invariants(env, flat=policy == "flatten")
        tr = journal(env, "transitions", HID)
        assert "RECOVERY" in set(tr["trigger_name"])
        if kill_at.startswith("intent_journaled"):
            o = journal(env, "orders", HID)
            assert "never_sent" in set(o["status"])  # found absent on the venue, not re-sent blindly
        assert h["spot_qty"] == pytest.approx(-h["perp_qty"], abs=0.001)
    finally:
        env.cleanup()


def test_kill_with_perp_partially_filled(tmp_path):
    """A venue that fills a fraction of each bar's volume: the first perp fill is partial."""
    env = make_env(tmp_path, export=EXIT_OFF)
    try:
        p = env.start_runner({"HEDGE_RUNNER_KILL_AT": "fill_journaled:perp:hedge"})
        start(env, env.client(p), "resume", paper_participation=0.000004)
        killed(p)
        fills = journal(env, "fills", HID)
        orders = journal(env, "orders", HID)
        perp = orders[orders["leg"] == "perp"].iloc[0]
        assert perp["qty"] > fills.loc[fills["leg"] == "perp", "qty"].sum() > 0  # partial at the kill
        p2 = env.start_runner()
        settle(env, p2, want="MONITORING_POSITIONS")
        ex = paper_exchange(env, HID)
        # the partially filled order was cancelled at recovery (its fills kept); the hedge is rebuilt
        # from what actually filled
        first = next(o for o in ex.core.orders.values() if o.cid == perp["client_order_id"])
        assert str(first.status) == "canceled" and 0 < first.filled < first.qty
        check_invariants(env, flat=False)
    finally:
        env.cleanup()


def test_kill_mid_rebalance(tmp_path):
    """Crash 1 leaves the spot leg naked; recovery hedges it with a rebalance; crash 2 hits that rebalance."""
    env = make_env(tmp_path, export=EXIT_OFF)
    try:
        p = env.start_runner({"HEDGE_RUNNER_KILL_AT": "fill_journaled:spot:entry"})
        start(env, env.client(p), "resume")
        killed(p)
        p2 = env.start_runner({"HEDGE_RUNNER_KILL_AT": "order_sent:perp:rebalance"}, wait=False)
        killed(p2)
        p3 = env.start_runner()
        settle(env, p3, want="MONITORING_POSITIONS")
        check_invariants(env, flat=False)
        tr = journal(env, "transitions", HID)
        assert (tr["trigger_name"] == "RECOVERY").sum() == 2
    finally:
        env.cleanup()


@pytest.mark.parametrize("kill_at", ["intent_journaled:perp:close", "order_sent:perp:close", "fill_journaled:spot:close"])
def test_kill_mid_close(tmp_path, kill_at):
    env = make_env(tmp_path, export=EXIT_OFF)
    try:
        p = env.start_runner({"HEDGE_RUNNER_KILL_AT": kill_at})
        c = env.client(p)
        start(env, c, "resume")
        wait_for(lambda: c.hedge(HID).get("state") == "MONITORING_POSITIONS", what="monitoring")
        try:
            c.stop(HID)
        except Exception:  # noqa: BLE001 - the process dies while answering
            pass
        killed(p)
        p2 = env.start_runner()
        settle(env, p2, want="COMPLETED")  # a close in progress is finished whatever the policy
        check_invariants(env, flat=True)
        runs = env.store().read_table("hedge_runs", hedge_id=HID)
        assert runs["state"].iloc[0] == "COMPLETED" and not math.isnan(runs["ended_at"].iloc[0].value)
    finally:
        env.cleanup()
