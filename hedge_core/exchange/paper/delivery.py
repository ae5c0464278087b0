"""Delivery at expiry of the paper venue's simulated dated futures (docs/calendar-roll.md).

A :class:`~hedge_core.exchange.paper.quarterly.PaperQuarterly` still held when its expiry passes is delivered
the way Binance documents it for its quarterlies ("Delivery & Settlement of Quarterly Futures",
https://www.binance.com/en/support/faq/a3401595e1734084959c61491bc0dbe3, and "USDT-Margined Quarterly Contract
Specification and Trading Rules", https://www.binance.com/en/support/faq/3ae441db4ae740e19af3fe9228eb6619):

- delivery at the expiry (08:00 UTC on the delivery date); the contract is then delisted: no order is taken at
  or after it (``PaperCore.create_order``);
- cash settlement in USDT at the **delivery price**: the average of the price index over the last 30 minutes
  before delivery (Binance's rule since 11 Nov 2024: 1,800 one-second index samples from 07:30 to 08:00 UTC).
  The paper venue's index of ``BASE/QUOTE`` is its spot: the delivery price is the average of the closes of
  the spot bars whose known time (open + timeframe) lies in ``(expiry - 30 min, expiry]`` (one sample per bar:
  1-minute bars give 30 samples, 1-hour bars the one close at 08:00); with no bar in that window, the last spot
  close known at delivery; with none at all, the contract's own last price;
- every position is closed at that price: realised PnL ``qty x (price - entry)`` and a delivery fee
  ``|qty| x price x delivery_fee_rate`` (:mod:`hedge_core.money`), both on the perp wallet; open orders on the
  contract are cancelled.

Each delivery leaves a fill (client order id ``dlv-<n>``, the position closed at the delivery price, its fee the
delivery fee) in the venue's trade list, a closed order, and a record in :attr:`PaperCore.deliveries`
(``id, ts, symbol, position_side, qty, entry_price, price, fee, realized_pnl, samples``) that the ledger books.
All of it is saved with the paper state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from hedge_core import money
from hedge_core.exchange.delivery_ids import DELIVERY_CID_PREFIX, is_delivery_fill
from hedge_core.exchange.paper.forced import record_forced_close
from hedge_core.exchange.paper.records import _ts
from hedge_core.types import OrderStatus

__all__ = ["DELIVERY_CID_PREFIX", "DELIVERY_WINDOW", "delivery_price", "is_delivery_fill"]

#: Binance averages the index over the last 30 minutes before delivery.
DELIVERY_WINDOW = pd.Timedelta(minutes=30)


def delivery_price(samples: Iterable[float], fallback: float | None) -> float | None:
    """Average of the index samples (quote per base); ``fallback`` when there is none. Pure."""
    xs = [float(x) for x in samples]
    if xs:
        return math.fsum(xs) / len(xs)
    return fallback


class _DeliveryMixin:
    """Delivery methods of PaperCore (uses its positions, orders, fills and wallet)."""

    def _delivery_sample(self, spot_symbol: str, known: pd.Timestamp, close: float) -> None:
        """Remember a spot close known at ``known`` if it falls in a quarterly's delivery window."""
        for q in self.config.quarterlies:
            if q.spot_symbol == spot_symbol and q.symbol not in self.delivered \
                    and q.expiry - DELIVERY_WINDOW < known <= q.expiry:
                self.delivery_samples.setdefault(q.symbol, []).append(float(close))

    def _deliver_due(self, *, strictly_after: bool) -> None:
        """Deliver every quarterly whose expiry :attr:`now` has passed (``strictly_after``) or reached."""
        if self.now is None:
            return
        for q in self.config.quarterlies:
            if q.symbol in self.delivered:
                continue
            if self.now > q.expiry or (not strictly_after and self.now >= q.expiry):
                self._deliver(q)

    def _deliver(self, q: Any) -> None:
        spot = self.ref_price(q.spot_symbol)
        px = delivery_price(self.delivery_samples.get(q.symbol, ()), spot if spot is not None else self.ref_price(q.symbol))
        samples = len(self.delivery_samples.pop(q.symbol, []))
        self.delivered.append(q.symbol)
        for oid in list(self._open):  # the contract is delisted: what still works on it is cancelled
            o = self.orders[oid]
            if o.symbol == q.symbol:
                self._close_order(o, OrderStatus.CANCELED)
        if px is None:
            return
        for p in self.positions.values():
            if p.symbol != q.symbol or p.qty == 0.0:
                continue
            cid = f"{DELIVERY_CID_PREFIX}{len(self.deliveries) + 1}"
            realized = money.unrealized_pnl(p.qty, px, p.entry)  # closed whole at the delivery price
            fee = money.fee(abs(p.qty), px, q.delivery_fee_rate)
            self.wallet += realized - fee
            self.deliveries.append({"id": cid, "ts": _ts(q.expiry), "symbol": q.symbol, "position_side": p.pside.value,
                                    "qty": p.qty, "entry_price": p.entry, "price": px, "fee": fee,
                                    "realized_pnl": realized, "samples": samples})
            record_forced_close(self, p, cid, px, fee, q.expiry)
        self._refresh(q.symbol)
