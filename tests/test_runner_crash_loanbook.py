"""kill -9 a real runner holding a paper loan book (voltier) once it has deployed reserve and
opened its perp hedge (killed as it decides to close the cycle), restart it, and check that the loan comes back from the journal exactly:
principal, reserve, repayments as journaled, interest accrued to the recovery instant by hand
(ACT/365 simple interest on the principal), and the legs as they were at the kill (the perp from the
journaled fills and the paper venue's position, closed after the restart by exactly that quantity;
the spot leg = the collateral in the paper wallet, never traded)."""

from __future__ import annotations

import pytest

from tests.support.runner_env import Env, journal, make_env, paper_exchange, wait_for

pytestmark = [pytest.mark.timeout(240), pytest.mark.e2e]

HID = "vt1"
PERP = "BTC/USDT:USDT"
START = "2024-01-03T00:00Z"  # two days of demo history before it: sigma_24h is known at the first update
LOAN, APR, START_LTV = 16_200.0, 0.06, 0.70  # the book opens above ltv_warn: the bands deploy reserve at once
YEAR_S = 365 * 86_400


def _first_price(env: Env) -> float:
    """Close of the last demo bar closed by START (what the runner sizes the collateral at)."""
    import pandas as pd

    from hedge_core.store import Store

    with Store(env.db, hold=False) as st:
        bars = st.read_bars("demo", "BTC/USDT", "spot", "1h", end=START)
    assert bars.index[-1] == pd.Timestamp(START) - pd.Timedelta("1h")
    return float(bars["close"].iloc[-1])


def test_loan_book_recovers_its_loan_and_legs_after_sigkill(tmp_path) -> None:
    env = make_env(tmp_path, days=10)
    collateral = LOAN / (START_LTV * _first_price(env))
    params = {"strategy": "voltier", "loan": LOAN, "loan_apr": APR, "collateral_qty": collateral,
              "reserve": 10_000.0, "ltv_warn": 0.60, "ltv_flatten": 0.90}
    try:
        # killed when the first cycle's exit is decided (journaled, the close not sent yet): hours of
        # interest have accrued since the last loan event (the reserve deployed at entry)
        p = env.start_runner({"HEDGE_RUNNER_KILL_AT": "transition:CLOSING_POSITIONS"})
        c = env.client(p)
        c.start(None, mode="paper", params_inline=params, feed="replay", data_venue="demo", start=START,
                speed=36_000, hedge_id=HID)
        assert p.wait(60) == -9, f"the runner should have SIGKILLed itself once hedged: {env.last_log()}"

        # ---- the book at the kill, from the journal (WAL replayed) and the paper venue ----------
        loans = journal(env, "loan_events", HID).sort_values("seq")
        fills = journal(env, "fills", HID)
        core = paper_exchange(env, HID).core
        start_row, pre = loans.iloc[0], loans.iloc[-1]
        assert start_row["event"] == "start" and start_row["principal"] == LOAN and start_row["apr"] == APR
        assert start_row["collateral_qty"] == pytest.approx(collateral, rel=1e-12)
        assert start_row["reserve_left"] == 10_000.0 and start_row["accrued_interest"] == 0.0
        assert "reserve" in set(loans["event"]), "the bands should have deployed reserve before the kill"
        assert pre["reserve_deployed"] > 0 and pre["reserve_left"] == pytest.approx(10_000.0 - pre["reserve_deployed"])
        assert pre["principal"] < LOAN  # the reserve repaid principal
        assert set(fills["leg"]) == {"perp"}  # the collateral is never traded
        signed = fills["qty"].where(fills["side"] == "buy", -fills["qty"])
        perp_qty = float(signed.sum())
        assert perp_qty < 0  # hedged: a short perp
        venue_perp = sum(pos.qty for pos in core.positions.values() if pos.symbol == PERP)
        assert venue_perp == pytest.approx(perp_qty, abs=1e-12)
        assert core.balance("spot")["BTC"].total == pytest.approx(collateral, rel=1e-12)  # the wallet holds it
        pre_coids = set(journal(env, "orders", HID)["client_order_id"])

        # ---- restart: the loan rebuilt from the journal --------------------------------------------
        p2 = env.start_runner()
        c2 = env.client(p2)

        def recovered():
            rows = journal(env, "loan_events", HID)
            rec = rows[rows["event"] == "recovered"]
            return [rec.iloc[0]] if len(rec) else None

        rec = wait_for(recovered, timeout=60, interval=0.3, what="the recovered loan row")[0]
        assert rec["seq"] == pre["seq"] + 1  # nothing changed the loan between the kill and its rebuild
        for col in ("principal", "apr", "interest_paid", "principal_paid", "initial_principal", "reserve_left",
                    "reserve_deployed", "booked", "repaid", "collateral_qty", "first_price", "target_ratio",
                    "profit_target"):
            assert rec[col] == pre[col], col
        # interest accrued from the last journaled as_of to the recovery instant, by hand (ACT/365 simple)
        dt = (rec["as_of"] - pre["as_of"]).total_seconds()
        assert dt > 0, "the replay went on past the last loan event: interest accrued since"
        want = pre["accrued_interest"] + pre["principal"] * APR * dt / YEAR_S
        assert rec["accrued_interest"] == pytest.approx(want, rel=1e-12, abs=1e-12)
        trans = journal(env, "transitions", HID)
        rt = trans[trans["trigger_name"] == "RECOVERY"].iloc[0]
        assert rt["to_state"] == "CLOSING_POSITIONS" and rec["as_of"] == rt["ts"] == rec["ts"]
        # the legs as rebuilt: the recovered hedge finishes the close it had decided, sized by its
        # rebuilt perp leg (one reduce-only buy of exactly the journaled short), and never touches
        # the collateral
        def closed():
            o = journal(env, "orders", HID)
            new = o[~o["client_order_id"].isin(pre_coids)]
            return [new] if len(new) and (new["status"] == "closed").all() else None

        new = wait_for(closed, timeout=60, interval=0.3, what="the close after the recovery")[0]
        first = new.sort_values("intent_ts").iloc[0]
        assert first["leg"] == "perp" and first["side"] == "buy" and bool(first["reduce_only"])
        assert first["qty"] == pytest.approx(-perp_qty, abs=1e-12)
        assert set(new["leg"]) == {"perp"}
        # and the runner serves the loan book with its loan (the Risk page's loan panel)
        s = wait_for(lambda: c2.hedge(HID), what="the hedge's summary")
        assert s["strategy"] == "voltier" and s["loan"]["collateral_qty"] == pytest.approx(collateral, rel=1e-12)
        assert s["loan"]["reserve_deployed"] >= pre["reserve_deployed"]
    finally:
        env.cleanup()
