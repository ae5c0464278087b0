"""A paper hedge of TWO PERP legs of one symbol on two venues (first leg: perp on paper "bybit", second:
perp on paper "okx", both BTC/USDT:USDT) run by a real runner process, SIGKILLed after the first leg's fill
was journaled (or after the second leg's order was sent), restarted, and checked against EACH venue's own
persisted state: orders route by LEG (the symbol cannot tell the legs apart), every venue order is ours and
journaled under that venue, its fills are booked under it, each leg sits on its own venue only, the pair is
delta-neutral, and the recovery reported each venue separately.

Data: the demo market's prices; bybit settles its OWN series written into the store here (0.00001 per 8h, lower
than the demo's): the set goes long bybit, short okx. okx (the second venue) has no stored series in the kill
tests, so it settles the replayed data venue's funding (with a warning); with its own series stored it settles
that (test_perp_pair_paper_each_venue_settles_its_own_series), bybit every 4h at 02:00, ... beside okx every 8h
(test_perp_pair_replay_settles_each_venue_at_its_own_times: the replay carries both venues' instants); okx every
4h at 02:00 announces its own next settlement to the engine and the run equals the pair backtest
(test_perp_pair_replay_second_venue_on_its_own_4h_grid_equals_the_backtest).
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.support.runner_env import DEMO_START, Env, journal, make_env, wait_for

pytestmark = [pytest.mark.timeout(180), pytest.mark.e2e]  # a real runner process

PERP = "BTC/USDT:USDT"
HID = "pp1"
EXIT_OFF = {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
            "funding_unfavourable_intervals": None}


def make_pair_env(tmp_path, okx_rate: float | None = None, bybit_4h_at_2: bool = False, okx_4h_at_2: bool = False,
                  **set_kw) -> Env:
    from hedge_core.params import store as param_store
    from hedge_core.params.xcarry import CrossCarryParams
    from hedge_core.store import Store

    env = make_env(tmp_path)
    with Store(env.db) as st:
        ts = pd.date_range(pd.Timestamp("2024-01-01T00:00Z"), periods=30, freq="8h")
        if bybit_4h_at_2:  # bybit every 4h at 02:00, 06:00, ...: times the data venue (8h at 00:00) lacks
            ts4 = pd.date_range(pd.Timestamp("2024-01-01T02:00Z"), periods=60, freq="4h")
            st.write_funding(pd.DataFrame({"ts": ts4, "funding_rate": 0.00001}), venue="bybit", symbol=PERP,
                             interval_hours=4.0)
        else:
            st.write_funding(pd.DataFrame({"ts": ts, "funding_rate": 0.00001}), venue="bybit", symbol=PERP)
        if okx_rate is not None and okx_4h_at_2:  # okx (the SECOND venue) every 4h at 02:00, 06:00, ...
            ts4 = pd.date_range(pd.Timestamp("2024-01-01T02:00Z"), periods=60, freq="4h")
            st.write_funding(pd.DataFrame({"ts": ts4, "funding_rate": okx_rate}), venue="okx", symbol=PERP,
                             interval_hours=4.0)
        elif okx_rate is not None:  # the second venue's own series (else it settles the data venue's, warned)
            st.write_funding(pd.DataFrame({"ts": ts, "funding_rate": okx_rate}), venue="okx", symbol=PERP)
    p = CrossCarryParams(**{"legs": "perp_perp", "spot_venue": "bybit", "perp_venue": "okx", "notional": 1000.0,
                            "min_funding_rate": 0.0, "min_net_carry": -1.0, "exit": EXIT_OFF,
                            "guards": {"funding_cost_apr_limit": None},  # the demo's funding swings negative: stay in
                            **set_kw})
    param_store.export(p, "pp-test", created_from="test", root=env.params, db=env.db, kpis={"sharpe": 1.0})
    return env


def start(env: Env, p, **kw) -> None:
    env.client(p).start("pp-test", mode="paper", start=DEMO_START, speed=36_000, recovery="resume", hedge_id=HID,
                        venue="bybit", perp_venue="okx", legs="perp_perp", **kw)


def venue_state(env: Env, venue: str):
    from hedge_core.exchange.paper import PaperExchange
    from hedge_core.exchange.routed_paper import venue_state_path

    return PaperExchange.load(venue_state_path(env.home / "paper", HID, venue)).core


def check_pair(env: Env) -> None:
    a, b = venue_state(env, "bybit"), venue_state(env, "okx")
    orders, fills = journal(env, "orders", HID), journal(env, "fills", HID)
    # routed by leg: the first leg's orders (client ids "hs...") on bybit only, the second's ("hp...") on okx
    assert a.orders and all(o.cid.startswith("hs") for o in a.orders.values())
    assert b.orders and all(o.cid.startswith("hp") for o in b.orders.values() if not o.cid.startswith("liq-"))
    for core, venue in ((a, "bybit"), (b, "okx")):
        for o in core.orders.values():
            row = orders.loc[orders["client_order_id"] == o.cid]
            assert len(row) == 1 and row["venue"].iloc[0] == venue, (venue, o.cid)
            assert row["symbol"].iloc[0] == PERP
            assert row["filled"].iloc[0] == pytest.approx(o.filled, abs=1e-12)
            booked = fills.loc[fills["client_order_id"] == o.cid]
            assert booked["qty"].sum() == pytest.approx(o.filled, abs=1e-12)
            assert set(booked["venue"]) <= {venue}
    # the first leg opened once on bybit (long: its funding is the lower), hedged short on okx
    assert len([o for o in a.orders.values() if str(o.side) == "buy" and o.filled > 0]) == 1
    qa = sum(p.qty for p in a.positions.values() if p.symbol == PERP)
    qb = sum(p.qty for p in b.positions.values() if p.symbol == PERP)
    inst = b.instruments[PERP]
    assert qa > 0 > qb and abs(qa + qb) < inst.lot_size + 1e-12
    # no spot wallet anywhere, no money moved between venues
    assert not a.spot.get("BTC") and not b.spot.get("BTC") and not a.spot.get("USDT") and not b.spot.get("USDT")


@pytest.mark.parametrize("kill_at", ["fill_journaled:spot:entry", "order_sent:perp:hedge"])
def test_perp_pair_paper_hedge_killed_and_recovered(tmp_path, kill_at):
    env = make_pair_env(tmp_path)
    try:
        p = env.start_runner({"HEDGE_RUNNER_KILL_AT": kill_at})
        start(env, p)
        assert p.wait(60) == -9, "the runner should have SIGKILLed itself at the kill point"
        p2 = env.start_runner()
        c = env.client(p2)

        def done() -> dict | None:
            h = c.hedge(HID)
            return h if h.get("state") == "MONITORING_POSITIONS" and not h.get("pending_orders") else None
        h = wait_for(done, timeout=60, what="hedge MONITORING_POSITIONS")
        assert h["spot_qty"] == pytest.approx(-h["perp_qty"], abs=0.001) and h["spot_qty"] > 0
        # two more settlements on each venue (16:00, 00:00) while held
        wait_for(lambda: pd.Timestamp(c.hedge(HID)["clock_now"]) >= pd.Timestamp("2024-01-02T01:00Z"), timeout=60,
                 what="the replay past the 00:00 settlement")
        c.shutdown()
        p2.wait(30)
        check_pair(env)
        # funding journaled per venue: each venue's own payments, the first leg's at bybit's own rate
        fj = journal(env, "funding_payments", HID)
        for venue in ("bybit", "okx"):
            paid = {pd.Timestamp(f.ts): f.amount for f in venue_state(env, venue).funding_payments if f.position_qty}
            rows = fj.loc[fj["venue"] == venue]
            assert len(rows) >= 2 and set(pd.to_datetime(rows["ts"], utc=True)) == set(paid)
            for r in rows.itertuples():
                assert r.amount == pytest.approx(paid[pd.Timestamp(r.ts)], rel=1e-9)
        a_rows = fj.loc[fj["venue"] == "bybit"]
        assert (a_rows["rate"] == 0.00001).all() and (a_rows["position_qty"] > 0).all()
        for r in a_rows.itertuples():  # a long pays: -qty x mark x rate, by hand
            assert r.amount == pytest.approx(-r.position_qty * r.mark_price * 0.00001, rel=1e-9)
        tr = journal(env, "transitions", HID)
        rec = tr.loc[tr["trigger_name"] == "RECOVERY", "reason"].iloc[0]
        assert "'venues'" in rec and "'bybit'" in rec and "'okx'" in rec and "first perp" in rec
        entry = tr.loc[tr["trigger_name"] == "ENTRY_SIGNAL", "reason"].iloc[0]
        assert entry.startswith("long bybit perp, short okx perp")
        runs = env.store().read_table("hedge_runs", hedge_id=HID)
        assert runs["spot_venue"].iloc[0] == "bybit" and runs["perp_venue"].iloc[0] == "okx"
        assert runs["spot_symbol"].iloc[0] == PERP
    finally:
        env.cleanup()


def test_perp_pair_spec_refusals_name_the_field(tmp_path):
    from hedge_core.runner.hedge_spec import HedgeSpec

    with pytest.raises(ValueError, match="legs='perp_perp'.*second venue"):
        HedgeSpec(hedge_id="x", venue="bybit", legs="perp_perp")
    # live and recommend pairs (feed ticker): tests/test_xvenue_perp_perp_live.py
    with pytest.raises(ValueError, match="expected feed 'replay' or 'bars' for mode 'paper'"):
        HedgeSpec(hedge_id="x", venue="bybit", perp_venue="okx", legs="perp_perp", mode="paper", feed="ticker")
    env = make_pair_env(tmp_path)
    try:
        p = env.start_runner()
        c = env.client(p)
        from hedge_core.errors import InvalidInput

        with pytest.raises(InvalidInput, match="legs"):  # a perp pair's set runs as a perp pair only
            c.start("pp-test", mode="paper", start=DEMO_START, hedge_id="x3", venue="bybit", perp_venue="okx")
        with pytest.raises(InvalidInput, match="kraken BTC/USDT:USDT"):  # no funding of the first venue stored
            c.start("carry-test", mode="paper", start=DEMO_START, hedge_id="x4", venue="kraken", perp_venue="okx",
                    legs="perp_perp")
    finally:
        env.cleanup()


def test_perp_pair_paper_each_venue_settles_its_own_series(tmp_path):
    # okx's own stored series (0.0004 per 8h) settles okx's leg, not the demo data venue's rates
    env = make_pair_env(tmp_path, okx_rate=0.0004)
    try:
        p = env.start_runner()
        start(env, p)
        c = env.client(p)
        wait_for(lambda: pd.Timestamp(c.hedge(HID)["clock_now"]) >= pd.Timestamp("2024-01-02T01:00Z"), timeout=90,
                 what="the replay past the 00:00 settlement")
        c.shutdown()
        p.wait(30)
        fj = journal(env, "funding_payments", HID)
        for venue, rate in (("bybit", 0.00001), ("okx", 0.0004)):
            rows = fj.loc[fj["venue"] == venue]
            assert len(rows) >= 2 and (rows["rate"] == rate).all(), (venue, rows)
            for r in rows.itertuples():  # -qty x mark x rate, by hand (okx short receives)
                assert r.amount == pytest.approx(-r.position_qty * r.mark_price * rate, rel=1e-9)
        assert (fj.loc[fj["venue"] == "okx", "position_qty"] < 0).all()
        paid = {pd.Timestamp(f.ts): f.amount for f in venue_state(env, "okx").funding_payments if f.position_qty}
        okx = fj.loc[fj["venue"] == "okx"]
        assert set(pd.to_datetime(okx["ts"], utc=True)) == set(paid)  # the venue's own state agrees
    finally:
        env.cleanup()


def test_perp_pair_replay_settles_each_venue_at_its_own_times(tmp_path):
    # bybit (first leg) every 4h at 02:00, 06:00, ...; okx (second) every 8h at 00:00, 08:00, ...: the replay
    # carries the union of both venues' instants and each venue settles exactly at its own (hand formula per row)
    env = make_pair_env(tmp_path, okx_rate=0.0004, bybit_4h_at_2=True)
    try:
        p = env.start_runner()
        start(env, p)
        c = env.client(p)
        wait_for(lambda: pd.Timestamp(c.hedge(HID)["clock_now"]) >= pd.Timestamp("2024-01-02T03:00Z"), timeout=90,
                 what="the replay past bybit's 02:00 settlement")
        c.shutdown()
        p.wait(30)
        fj = journal(env, "funding_payments", HID)
        a, b = fj.loc[fj["venue"] == "bybit"], fj.loc[fj["venue"] == "okx"]
        ta, tb = pd.to_datetime(a["ts"], utc=True), pd.to_datetime(b["ts"], utc=True)
        assert len(a) >= 5 and len(b) >= 2
        assert (ta.dt.hour % 4 == 2).all() and (ta.dt.minute == 0).all()  # bybit at 02:00, 06:00, ... only
        assert (tb.dt.hour % 8 == 0).all()  # okx at 00:00, 08:00, 16:00 only
        # between two of okx's settlements the long bybit leg paid at BOTH of bybit's 4h times
        assert ta.diff().dropna().eq(pd.Timedelta(hours=4)).all()
        for rows, rate in ((a, 0.00001), (b, 0.0004)):
            assert (rows["rate"] == rate).all()
            for r in rows.itertuples():  # -qty x mark x rate, by hand (okx short receives, bybit long pays)
                assert r.amount == pytest.approx(-r.position_qty * r.mark_price * rate, rel=1e-9)
        # one pair held through: the legs opposite, each venue's rows at that leg's quantity (the side depends on the
        # rates known at entry: before okx's own first settlement the market's is the data venue's)
        assert a["position_qty"].nunique() == 1 and (a["position_qty"].iloc[0] * b["position_qty"] < 0).all()
        paid = {pd.Timestamp(f.ts) for f in venue_state(env, "bybit").funding_payments if f.position_qty}
        assert set(ta) == paid  # bybit's own simulator booked the same instants
    finally:
        env.cleanup()


def test_perp_pair_replay_second_venue_on_its_own_4h_grid_equals_the_backtest(tmp_path):
    # okx (the SECOND leg) settles every 4h at 02:00, 06:00, ...; bybit (first) and the demo data venue every 8h at
    # 00:00. Entered at 06:00, the pair reaches its 7h holding time at 13:00; exit.defer_within_s_of_funding (1h)
    # holds that soft exit for a funding the pair receives within the hour: okx's 14:00 settlement (the short okx
    # leg receives 0.0004). The data venue's 8h grid would announce 16:00 (no deferral, an exit at 13:00): the
    # second leg's next settlement is its own venue's. The runner's fills and each venue's funding, booked at its
    # own instants, equal the pair backtest of the same stored data (to 1e-9).
    from hedge_core.backtest.timeline import load_market
    from hedge_core.backtest.xvenue import run_cross_venue_backtest
    from hedge_core.backtest.xvenue_pair import pair_market
    from hedge_core.params import store as param_store

    end = "2024-01-02T12:00Z"
    env = make_pair_env(tmp_path, okx_rate=0.0004, okx_4h_at_2=True, perp_taker_fee=0.0005,  # the paper venues' fees
                        exit={**EXIT_OFF, "max_holding_hours": 7.0, "defer_within_s_of_funding": 3600.0})
    try:
        p = env.start_runner()
        start(env, p, end=end)
        c = env.client(p)
        wait_for(lambda: c.hedge(HID).get("state") == "COMPLETED", timeout=90, what="the pair to exit")
        c.shutdown()
        p.wait(30)
        fj = journal(env, "funding_payments", HID).sort_values("ts")
        fills = journal(env, "fills", HID)
        fills = fills.assign(ts=pd.to_datetime(fills["ts"], utc=True)).sort_values(["ts", "leg"]).reset_index(drop=True)
        t_in, t_out = pd.Timestamp("2024-01-01T06:00Z"), pd.Timestamp("2024-01-01T14:00Z")
        assert list(fills["ts"]) == [t_in, t_in, t_out, t_out]  # the exit waited from 13:00 to okx's 14:00
        a, b = fj.loc[fj["venue"] == "bybit"], fj.loc[fj["venue"] == "okx"]
        ta, tb = pd.to_datetime(a["ts"], utc=True), pd.to_datetime(b["ts"], utc=True)
        assert list(ta.dt.hour) == [8] and list(tb.dt.hour) == [6, 10]  # each venue at its own times, while held
        for rows, rate in ((a, 0.00001), (b, 0.0004)):
            assert (rows["rate"] == rate).all()
            for r in rows.itertuples():  # -qty x mark x rate, by hand
                assert r.amount == pytest.approx(-r.position_qty * r.mark_price * rate, rel=1e-12)
        # the pair backtest of the same stored data (demo prices, each venue's own stored series); its first instant
        # is the runner's first update (the bars known after the replay's start)
        with env.store() as st:
            params = param_store.load("pp-test", root=env.params).params
            prices = load_market(st, venue="demo", perp_symbol=PERP)
            market = pair_market(prices, st.read_funding("bybit", PERP), st.read_funding("okx", PERP),
                                 first_venue="bybit", perp_venue="okx")
        run = run_cross_venue_backtest(params, market, start=t_in, end=end)
        bt = run.result.fills.assign(ts=lambda f: pd.to_datetime(f["ts"], utc=True))
        bt = bt.sort_values(["ts", "leg"]).reset_index(drop=True)
        assert list(bt["ts"]) == list(fills["ts"]) and list(bt["leg"]) == list(fills["leg"])
        assert list(bt["side"]) == list(fills["side"])
        for col in ("qty", "price", "fee"):
            assert fills[col].to_numpy(float) == pytest.approx(bt[col].to_numpy(float), abs=1e-9), col
        bf = run.result.funding_payments
        bf = bf.loc[bf["position_qty"] != 0]
        got = fj.set_index(pd.to_datetime(fj["ts"], utc=True))["amount"].sort_index()
        want = bf.set_index(pd.to_datetime(bf["ts"], utc=True))["amount"].sort_index()
        assert list(got.index) == list(want.index)
        assert got.to_numpy() == pytest.approx(want.to_numpy(), abs=1e-9)
    finally:
        env.cleanup()
