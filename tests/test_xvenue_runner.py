"""A paper hedge with its legs on two venues (spot on paper "binance", perp on paper "bybit") run by a
real runner process, SIGKILLed at a named point, restarted, and checked against EACH venue's own
persisted state: every venue order is ours and journaled, every venue fill is in the journal under
that venue, each leg sits on its own venue only, the book is hedged, and the recovery reported each
venue separately."""

from __future__ import annotations

import pytest

from tests.support.runner_env import DEMO_START, Env, journal, make_env, wait_for

pytestmark = pytest.mark.timeout(180)

EXIT_OFF = {"exit": {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                     "funding_unfavourable_intervals": None}}
SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"
HID = "x1"


def venue_state(env: Env, venue: str):
    from hedge_core.exchange.paper import PaperExchange
    from hedge_core.exchange.routed_paper import venue_state_path

    return PaperExchange.load(venue_state_path(env.home / "paper", HID, venue)).core


def start(env: Env, p, **kw) -> None:
    env.client(p).start("carry-test", mode="paper", start=DEMO_START, speed=36_000, recovery="resume", hedge_id=HID,
                        venue="binance", perp_venue="bybit", **kw)


def settle(env: Env, p, want: str) -> dict:
    c = env.client(p)

    def done() -> dict | None:
        h = c.hedge(HID)
        return h if h.get("state") == want and not h.get("pending_orders") else None
    return wait_for(done, timeout=60, what=f"hedge {want}")


def check_two_venues(env: Env) -> None:
    a, b = venue_state(env, "binance"), venue_state(env, "bybit")
    orders, fills = journal(env, "orders", HID), journal(env, "fills", HID)
    # each leg only on its own venue
    assert {o.symbol for o in a.orders.values()} == {SPOT} and not a.positions_view()
    assert {o.symbol for o in b.orders.values() if not o.cid.startswith("liq-")} == {PERP}
    assert a.spot.get("BTC", 0.0) > 0 and b.spot.get("BTC", 0.0) == 0.0
    # every venue order is ours, journaled under that venue, and all its fills are booked under it
    for core, venue in ((a, "binance"), (b, "bybit")):
        for o in core.orders.values():
            row = orders.loc[orders["client_order_id"] == o.cid]
            assert len(row) == 1 and row["venue"].iloc[0] == venue, (venue, o.cid)
            assert row["filled"].iloc[0] == pytest.approx(o.filled, abs=1e-12)
            booked = fills.loc[fills["client_order_id"] == o.cid]
            assert booked["qty"].sum() == pytest.approx(o.filled, abs=1e-12)
            assert set(booked["venue"]) <= {venue}
    # spot bought once on binance; hedged on bybit within one perp lot
    assert len([o for o in a.orders.values() if str(o.side) == "buy" and o.filled > 0]) == 1
    perp_qty = sum(p.qty for p in b.positions.values() if p.symbol == PERP)
    inst = b.instruments[PERP]
    tol = max(inst.min_notional / b.ref_price(PERP), inst.min_qty) + inst.lot_size
    assert perp_qty < 0 and abs(a.spot["BTC"] + perp_qty) < tol
    # no money moved: each venue holds only the wallet it was given
    assert a.wallet == 0.0 and b.spot.get("USDT", 0.0) == 0.0  # binance's futures and bybit's spot wallets: never funded


@pytest.mark.parametrize("kill_at", ["fill_journaled:spot:entry", "order_sent:perp:hedge"])
def test_two_venue_paper_hedge_killed_and_recovered(tmp_path, kill_at):
    env = make_env(tmp_path, export=EXIT_OFF)
    try:
        p = env.start_runner({"HEDGE_RUNNER_KILL_AT": kill_at})
        start(env, p)
        assert p.wait(60) == -9, "the runner should have SIGKILLed itself at the kill point"
        p2 = env.start_runner()
        h = settle(env, p2, "MONITORING_POSITIONS")
        assert h["spot_qty"] == pytest.approx(-h["perp_qty"], abs=0.001)
        check_two_venues(env)
        tr = journal(env, "transitions", HID)
        rec = tr.loc[tr["trigger_name"] == "RECOVERY", "reason"].iloc[0]
        assert "'venues'" in rec and "'binance'" in rec and "'bybit'" in rec  # reconciled per venue
        runs = env.store().read_table("hedge_runs", hedge_id=HID)
        assert runs["spot_venue"].iloc[0] == "binance" and runs["perp_venue"].iloc[0] == "bybit"
    finally:
        env.cleanup()


def test_two_venue_live_meets_the_live_gates_and_one_venue_short_of_funds_is_refused(tmp_path):
    from hedge_core.errors import InvalidInput

    env = make_env(tmp_path, export=EXIT_OFF)
    try:
        p = env.start_runner()
        c = env.client(p)
        # a live spec with legs on two venues is valid; it meets the live gates (here: a set not promoted)
        with pytest.raises(InvalidInput, match="promoted to live"):
            c.start("carry-test", mode="live", hedge_id="x2", venue="binance", perp_venue="bybit", feed="ticker")
        with pytest.raises(InvalidInput, match="venue bybit: .*perp margin"):  # the perp leg's venue has no margin for the hedge
            start(env, p, balances={"spot": {"USDT": 100_000.0}, "perp": {"USDT": 1.0}})
    finally:
        env.cleanup()
