"""A PAPER perp pair whose second leg rolls (docs/calendar-roll.md "Two perp legs", "Delivery at expiry"): a runner
replay IN PROCESS (the runner's own Supervisor and HedgeTask) of an ``xcarry`` pair long the perpetual on paper
"bybit" and short it on paper "okx", the second venue listing a simulated quarterly (``paper_quarterly``,
exchange/paper/quarterly.py: priced from the replayed spot at a 90 %/yr basis, expiring 2024-01-03 08:00 UTC,
delivery fee 0.02 %).

Funding per 8 h: bybit 0.001 %, okx 0.04 % (43.8 %/yr received by the short). At the entry (2024-01-01 06:00, 2.08
days to expiry) the quarterly's carry (about 98.7 %/yr) beats the perpetual's by more than the move's cost and the
2 %/yr margin: the okx leg moves onto the quarterly. Then:

- ``exit_days`` 1: the leg returns to okx's perpetual once the expiry is a day away (2024-01-02 08:00);
- ``exit_days`` 0: it is still on the quarterly at expiry; paper okx delivers it (the spot close known at 08:00, the
  hourly bars' one sample), the runner books the delivery ONCE from the venue's record on the second leg, moves the
  leg to okx's perpetual and sells the hedge there again.

Either way the per-venue ledgers equal each paper venue's own records to 1e-8: the first leg's money (realised
PnL, fees, funding) is bybit's wallet change, fees and funding payments; the second leg's (perpetual and quarterly
folded into one leg) okx's. The first leg never moves.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pandas as pd
import pytest

from hedge_core.runner import roll_watch
from hedge_core.runner.supervisor import Supervisor
from hedge_core.store import Store
from tests.support.demo_store import store  # noqa: F401 - the seeded store fixture
from tests.support.inprocess_hedge import until

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]  # an in-process runner (Supervisor) on a DuckDB store

PERP, QTR = "BTC/USDT:USDT", "BTC/USDT:USDT-240103"
EXPIRY = pd.Timestamp("2024-01-03T08:00Z")
QUARTERLY = {"symbol": QTR, "expiry": str(EXPIRY), "basis_apr": 0.9, "delivery_fee_rate": 0.0002}
WALLET = 100_000.0
EXIT_OFF = {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
            "funding_unfavourable_intervals": None}


def pair_request(hid: str, exit_days: float) -> dict:
    params = {"strategy": "xcarry", "legs": "perp_perp", "spot_venue": "bybit", "perp_venue": "okx",
              "notional": 1000.0, "min_funding_rate": 0.0, "min_net_carry": -1.0, "exit": EXIT_OFF,
              "guards": {"funding_cost_apr_limit": None}, "rebalance": {"cooldown_s": 0.0},
              "roll": {"enabled": True, "exit_days": exit_days}}
    return {"hedge_id": hid, "mode": "paper", "feed": "replay", "data_venue": "demo", "start": "2024-01-01T05:00Z",
            "end": "2024-01-03T12:00Z", "speed": 1e9, "venue": "bybit", "perp_venue": "okx", "legs": "perp_perp",
            "params_inline": params, "paper_quarterly": QUARTERLY,
            "balances": {"spot": {"USDT": WALLET}, "perp": {"USDT": WALLET}}}


def assert_ledger_is_the_venues(leg, core) -> None:
    """One leg's money (quote) against its paper venue's own records, to 1e-8: the wallet moved by realised PnL -
    fees + funding; the fees of every fill the venue lists (orders, deliveries); its funding payments."""
    fees = math.fsum(f.fee for f in core.fills)
    funding = math.fsum(p.amount for p in core.funding_payments)
    assert leg.fees == pytest.approx(fees, abs=1e-8)
    assert leg.funding == pytest.approx(funding, abs=1e-8)
    assert leg.realized - leg.fees + leg.funding == pytest.approx(core.wallet - WALLET, abs=1e-8)


def held(core, symbol: str) -> float:
    return sum(p.qty for p in core.positions.values() if p.symbol == symbol)


def test_a_paper_pairs_second_leg_rolls_back_before_expiry_or_is_delivered_at_it(store: Store, tmp_path: Path,
                                                                                  monkeypatch) -> None:
    monkeypatch.setattr(roll_watch, "CHECK_EVERY_S", 0.0)
    ts = pd.date_range(pd.Timestamp("2024-01-01T00:00Z"), periods=12, freq="8h")
    store.write_funding(pd.DataFrame({"ts": ts, "funding_rate": 0.00001}), venue="bybit", symbol=PERP)
    store.write_funding(pd.DataFrame({"ts": ts, "funding_rate": 0.0004}), venue="okx", symbol=PERP)

    async def go() -> None:
        sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        try:
            await sup.start_hedge(pair_request("back", exit_days=1.0))
            await sup.start_hedge(pair_request("dlv", exit_days=0.0))
            for hid in ("back", "dlv"):
                await until(lambda hid=hid: sup.hedges[hid].task.done(), timeout=90, what=f"replay {hid} ended")
                assert sup.hedges[hid].status == "feed_ended", sup.hedges[hid].error
            sup.journal.flush()
            gf = store.read_table("guard_firings")
            for hid, actions in (("back", ["to_future", "to_perp"]), ("dlv", ["to_future"])):
                h = sup.hedges[hid]
                ctx, pair = h.driver.ctx, h.raw_adapter
                a, b = pair.first.core, pair.second.core
                # the driver holds each paper venue's own adapter (journaled), as a live pair's: its reads of the
                # second leg (deliveries, trades) and its settings on the quarterly go to okx alone
                assert {v: ad.inner for v, ad in h.driver.adapters.items()} == {"bybit": pair.first, "okx": pair.second}
                assert not [x for x in h.alerts if "failed" in x["message"]]  # no margin setting sent to bybit
                rolls = gf[(gf["hedge_id"] == hid) & (gf["guard"] == "calendar_roll")]
                assert list(rolls["action"]) == actions
                assert pd.Timestamp(rolls["ts"].iloc[0]) == pd.Timestamp("2024-01-01T06:00Z")  # at the entry
                # the second leg ends on okx's perpetual, short, hedging the first leg (long on bybit, never moved)
                assert (ctx.perp.venue, ctx.perp.symbol, ctx.spot.venue) == ("okx", PERP, "bybit")
                assert ctx.roll_leg is None and ctx.perp.qty == pytest.approx(-ctx.spot.qty) and ctx.spot.qty > 0
                assert held(b, QTR) == 0.0 and held(b, PERP) == pytest.approx(ctx.perp.qty)
                assert held(a, PERP) == pytest.approx(ctx.spot.qty) and not [f for f in a.fills if f.symbol != PERP]
                fills = sup.journal.fills(hid)
                q = fills[fills["symbol"] == QTR]
                assert set(q["venue"]) == {"okx"} and set(fills.loc[fills["venue"] == "bybit", "symbol"]) == {PERP}
                assert len(fills[fills["venue"] == "bybit"]) == 1  # the first leg's entry only
                # each venue's ledger is that venue's own records
                assert_ledger_is_the_venues(ctx.spot, a)
                assert_ledger_is_the_venues(ctx.perp, b)
                if hid == "back":
                    assert pd.Timestamp(rolls["ts"].iloc[1]) == EXPIRY - pd.Timedelta(days=1)
                    assert list(q["side"]) == ["sell", "buy"] and list(q["leg"]) == ["roll", "perp"]
                    assert b.deliveries == []  # nothing held on the quarterly at its expiry
                    continue
                # delivered at 08:00 at the spot close known then (the hourly bar opened 07:00), booked once
                [rec] = b.deliveries
                t7 = pd.Timestamp("2024-01-03T07:00Z")
                close = float(store.read_bars("demo", "BTC/USDT", "spot", "1h", start=t7,
                                              end=t7 + pd.Timedelta(hours=1)).loc[t7, "close"])
                assert pd.Timestamp(rec["ts"]) == EXPIRY and rec["samples"] == 1
                assert rec["price"] == pytest.approx(close, rel=1e-12) and rec["qty"] < 0
                assert rec["fee"] == pytest.approx(-rec["qty"] * close * 0.0002, rel=1e-12)  # |qty| x price x 0.02 %
                [opened] = q[q["leg"] == "roll"].itertuples()
                assert rec["entry_price"] == pytest.approx(opened.price, rel=1e-12)
                assert rec["realized_pnl"] == pytest.approx(rec["qty"] * (close - opened.price), rel=1e-9)
                dl = fills[fills["client_order_id"] == rec["id"]]
                assert len(dl) == 1
                assert (dl["leg"].iloc[0], dl["venue"].iloc[0], dl["side"].iloc[0]) == ("perp", "okx", "buy")
                assert dl["fee"].iloc[0] == pytest.approx(rec["fee"], rel=1e-12)
                assert dl["qty"].iloc[0] == pytest.approx(-rec["qty"], rel=1e-12)
                # hedged again on okx's perpetual: one sell there at or after the delivery
                after = fills[(fills["symbol"] == PERP) & (fills["venue"] == "okx")
                              & (pd.to_datetime(fills["ts"], utc=True) >= EXPIRY)]
                assert list(after["side"]) == ["sell"] and after["qty"].sum() == pytest.approx(-rec["qty"])
                alerts = [x for x in h.alerts if "delivered at expiry" in x["message"]]
                assert alerts and alerts[0]["level"] == "critical"
        finally:
            await sup.shutdown(flatten=False)

    asyncio.run(go())
