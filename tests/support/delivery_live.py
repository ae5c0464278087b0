"""Shared set-up of the delivery tests against the Binance USD-M simulator (tests/test_live_delivery.py): a perp
venue listing a quarterly 90 days out, the carry parameters with the roll on, and the wait for a settled hedge
with a clean reconciliation (also tests/test_xvenue_roll_live.py, tests/test_live_bybit_future.py,
tests/test_bybit_delivery.py). No tests here."""

from __future__ import annotations

import pandas as pd

from tests.support.binance_sim import BinanceSim
from tests.support.bybit_sim import BybitSim
from tests.support.inprocess_hedge import until
from tests.support.roll_runner import ROLL_PARAMS, dated_symbol, delivery_ms
from tests.support.xlive_env import binance_spot_sim

__all__ = ["CARRY", "PERP", "QTR_PX", "XR", "bybit_future_sim", "perp_venue_with_quarterly", "settled"]

PERP = "BTC/USDT:USDT"
QTR_PX = 42_000.0  # 5 % over the 40,000 spot
CARRY = {"strategy": "carry", "notional": 1_000.0, "min_funding_rate": 0.00001, "min_net_carry": -1.0, **ROLL_PARAMS}
XR = {"venue": "bybit", "perp_venue": "binance"}  # the spot leg on Bybit, the perp leg on Binance USD-M


def perp_venue_with_quarterly(rate: float = 0.0001) -> tuple[BinanceSim, str, str, pd.Timestamp]:
    """The Binance simulator as the perp venue (10,000 USDT USD-M wallet, no spot money, funding ``rate`` per 8 h)
    with a CURRENT_QUARTER contract 90 days out (08:00 UTC) at 42,000: (sim, venue id, ccxt symbol, expiry)."""
    sim = binance_spot_sim(usdt=0.0)
    sim.set_funding_rate("BTCUSDT", rate)
    delivery = delivery_ms(sim.now_ms())
    sid = sim.list_quarterly("BTC", delivery, QTR_PX)
    sym = dated_symbol(PERP, delivery)
    return sim, sid, sym, pd.Timestamp(delivery, unit="ms", tz="UTC")


def bybit_future_sim(days: int = 90, price: float = 42_000.0, usdt: float = 10_000.0
                     ) -> tuple[BybitSim, str, str, pd.Timestamp]:
    """A Bybit simulator (``usdt`` USDT in the unified wallet, BTCUSDT at 40,000) listing a USDT future ``days`` out
    (08:00 UTC) at ``price``. Returns (sim, venue symbol id, ccxt unified symbol, expiry)."""
    from tests.support.live_env import TEST_KEY, TEST_SECRET

    sim = BybitSim(api_key=TEST_KEY, secret=TEST_SECRET, coins={"USDT": usdt})
    sim.set_price("BTCUSDT", 40_000.0)
    delivery = delivery_ms(sim.now_ms(), days)
    sid = sim.list_future("BTC", delivery, price)
    return sim, sid, dated_symbol(PERP, delivery), pd.Timestamp(delivery, unit="ms", tz="UTC")


async def settled(task, contract: str, what: str, *, timeout: float = 60) -> dict:
    """The hedge monitoring with its leg on ``contract``, nothing working (within ``timeout`` s: generous, a loaded
    2-core box took 31 s), and then a NEW
    reconciliation pass with no difference (within 30 s; its report returned)."""
    def ready() -> bool:
        s = task.summary()
        return (s.get("state") == "MONITORING_POSITIONS" and s.get("leg_contract") == contract
                and not s.get("pending_orders") and "roll" not in s)

    await until(ready, timeout=timeout, what=what)
    ts0 = (task.summary().get("reconcile") or {}).get("ts")
    await until(lambda: ready() and (task.summary().get("reconcile") or {}).get("ts") not in (None, ts0)
                and task.summary()["reconcile"]["differences"] == [], timeout=30, what=f"{what}: clean reconciliation")
    return task.summary()["reconcile"]
