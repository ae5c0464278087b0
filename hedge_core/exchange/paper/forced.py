"""A position the paper VENUE closes on its own (a liquidation, a delivery at expiry), recorded the one way both
use: a closed reduce-only market order under the venue's own client order id (``liq-<n>``, ``dlv-<n>``) and one
taker fill of the whole position at the closing price, the position then flat. The money (realised PnL, fee,
insurance cover) is the caller's: each books it by its own rule before calling :func:`record_forced_close`."""

from __future__ import annotations

from typing import Any

import pandas as pd

from hedge_core.exchange.paper.config import SETTLE
from hedge_core.exchange.paper.records import _Ord, _Pos
from hedge_core.types import Fill, Liquidity, OrderStatus, OrderType, Side

__all__ = ["record_forced_close"]


def record_forced_close(core: Any, p: _Pos, cid: str, price: float, fee: float, ts: pd.Timestamp) -> None:
    """Record on ``core`` (a :class:`~hedge_core.exchange.paper.core.PaperCore`) the venue's close of the whole
    position ``p`` at ``price`` (quote per base) with ``fee`` (quote, >= 0 paid) at ``ts``: a CLOSED market order
    ``cid`` (reduce-only, the closing side, filled ``|qty|``), its fill in the trade list (taker), and ``p`` flat
    (quantity, entry and isolated margin 0). Books no money: the caller has moved the wallet."""
    side = Side.SELL if p.qty > 0 else Side.BUY
    qty = abs(p.qty)
    o = _Ord(core._new_id(), cid, p.symbol, side, OrderType.MARKET, qty, None, True, p.pside, ts, True, qty,
             qty * price, fee, OrderStatus.CLOSED)
    core.orders[o.id] = o
    core._by_cid[cid] = o.id
    core.fills.append(Fill(core._new_tid(), o.id, cid, p.symbol, side, qty, price, fee, ts, SETTLE, Liquidity.TAKER,
                           0.0))
    p.qty, p.entry, p.margin = 0.0, 0.0, 0.0
