"""Mutable internal records of the paper venue (positions, orders) and timestamp (de)serialisers."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from hedge_core.exchange.paper.config import SETTLE
from hedge_core.types import Order, OrderStatus, OrderType, PositionSide, Side


@dataclass(slots=True)
class _Pos:
    symbol: str
    pside: PositionSide
    qty: float = 0.0  # signed base
    entry: float = 0.0
    margin: float = 0.0  # isolated margin (quote); 0 in cross


@dataclass(slots=True)
class _Ord:
    id: str
    cid: str
    symbol: str
    side: Side
    type: OrderType
    qty: float
    price: float | None
    reduce_only: bool
    pside: PositionSide
    ts: pd.Timestamp
    perp: bool
    filled: float = 0.0
    cost: float = 0.0  # sum qty*price of fills, quote
    fee: float = 0.0
    status: OrderStatus = OrderStatus.OPEN
    locked: float = 0.0  # spot: locked quote (buy limit) or base (sell limit)

    def view(self) -> Order:
        return Order(self.id, self.cid, self.symbol, self.side, self.type, self.qty, self.price,
                     self.filled, (self.cost / self.filled) if self.filled > 0 else None, self.status,
                     self.ts, self.reduce_only, self.fee, SETTLE)


def _ts(x: pd.Timestamp | None) -> str | None:
    return None if x is None else x.isoformat()


def _pts(s: str | None) -> pd.Timestamp | None:
    return None if s is None else pd.Timestamp(s)

