"""Two paper carries (BTC and ETH) in positions on an in-process runner, and the book's limits file: shared by the
book-action tests (tests/test_book_actions.py, tests/test_book_flatten_recovery.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from hedge_core.runner.supervisor import Supervisor
from tests.support.best_perp import START

CARRY = {"strategy": "carry", "notional": 1000.0, "min_funding_rate": 0.00001, "min_net_carry": -1.0,
         "exit": {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                  "funding_unfavourable_intervals": None}}
LEGS = (("b1", "BTC/USDT"), ("e1", "ETH/USDT"))


async def two_hedges_in_positions(sup: Supervisor) -> None:
    """A BTC and an ETH carry, replayed to their end (8 h, entered at 09:00): both hedged, nothing moves any more."""
    for hid, sym in LEGS:
        await sup.start_hedge({"hedge_id": hid, "mode": "paper", "feed": "replay", "data_venue": "demo",
                               "start": str(START), "end": str(START + pd.Timedelta(hours=8)), "speed": 1e9,
                               "venue": "binance", "spot_symbol": sym, "perp_symbol": sym + ":USDT",
                               "params_inline": CARRY,
                               "balances": {"spot": {"USDT": 100_000.0}, "perp": {"USDT": 100_000.0}}})
    for h in sup.hedges.values():
        await h.task
    for h in sup.hedges.values():
        assert str(h.driver.ctx.state) == "MONITORING_POSITIONS" and h.driver.ctx.spot.qty > 0


def write_limits(home: Path, text: str) -> None:
    f = home / "book_limits.toml"
    f.write_text(text)
    t = time.time() + len(text)  # a new mtime each write: the monitor reads the file again
    os.utime(f, (t, t))


def is_flat(sup: Supervisor, hid: str) -> bool:
    c = sup.hedges[hid].driver.ctx
    return c.spot.qty == 0.0 and c.perp.qty == 0.0 and str(c.state) == "COMPLETED"
