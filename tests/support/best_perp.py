"""The best-execution runner tests' shared hedge (xcarry set allowing bybit and okx, paper venue settings)."""

from __future__ import annotations

import pandas as pd

START = pd.Timestamp("2024-01-01T05:00Z")  # funding settles at 08:00: a carry enters at the 09:00 update
XCARRY = {"strategy": "xcarry", "notional": 1000.0, "min_funding_rate": 0.00001, "min_net_carry": -1.0,
          "spot_venue": "binance", "perp_venue": "bybit", "perp_venues": ["okx"],
          "exit": {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                   "funding_unfavourable_intervals": None}}
# okx charges the lower fee but slips 5 bp; bybit a higher fee and 1 bp: bybit's proceeds are better
VENUES = {"bybit": {"perp_taker_fee": 0.0004, "slippage_bps": 1.0}, "okx": {"perp_taker_fee": 0.0002, "slippage_bps": 5.0}}


def request(**kw) -> dict:
    return {"hedge_id": "b1", "mode": "paper", "feed": "replay", "data_venue": "demo", "start": str(START),
            "end": str(START + pd.Timedelta(hours=30)), "speed": 1e9, "venue": "binance", "perp_venue": "best",
            "params_inline": XCARRY, "paper_venues": VENUES,
            "balances": {"spot": {"USDT": 100_000.0}, "perp": {"USDT": 100_000.0}}, **kw}
