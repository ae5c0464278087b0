"""Delivery of a USD-M quarterly at expiry in the Binance simulator, as a mixin of
:class:`tests.support.binance_sim.BinanceSim`.

What Binance documents, and what the simulator does:

- "USDT-Margined Quarterly Contract Specification and Trading Rules"
  (https://www.binance.com/en/support/faq/3ae441db4ae740e19af3fe9228eb6619) and "Delivery & Settlement of Quarterly
  Futures" (https://www.binance.com/en/support/faq/a3401595e1734084959c61491bc0dbe3): a quarterly is delivered at
  08:00 UTC on its delivery date, settled in USDT, then delisted. The delivery (settlement) price is the average
  of the price index over the last 30 minutes before delivery (1,800 one-second samples, 07:30-08:00 UTC; Binance
  announcement of 4 Nov 2024, in force from 11 Nov 2024). :meth:`deliver` takes the index samples from the test
  and averages them; every position on the contract is closed at that price; open orders on it are cancelled;
  ``exchangeInfo`` then shows its ``status`` ``DELIVERED`` (one of the contract statuses "Exchange Information"
  lists) and an order on it is refused (-1121 "Invalid symbol.").
- "Get Income History (USER_DATA)" (GET /fapi/v1/income,
  https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Get-Income-History): the
  delivery is one row per position of ``incomeType`` ``DELIVERED_SETTELMENT`` (Binance's spelling), ``income`` the
  realised PnL of the position closed at the delivery price (+ received / - paid), ``time`` the delivery time. No
  delivery fee is charged: Binance's USD-M delivery rules name none (nothing beside the realised PnL). There is no
  ``userTrades`` row: the delivery is not a trade.
- "Delivery Price" (GET /futures/data/delivery-price?pair=BTCUSDT,
  https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Delivery-Price): the
  pair's past deliveries, ``[{"deliveryTime": ms, "deliveryPrice": float}]``, newest first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tests.support.binance_sim_types import SimError

__all__ = ["DeliveryMixin"]


class DeliveryMixin:
    """:meth:`deliver` (a test-control hook) and the ``/futures/data/delivery-price`` route."""

    def deliver(self, symbol_id: str, index: Sequence[float], *, at_ms: int | None = None) -> float:
        """Deliver the quarterly ``symbol_id`` at its delivery time at the average of ``index`` (the price index
        samples of the last 30 minutes, quote per base); returns the delivery price. Each position on it is closed
        (a ``DELIVERED_SETTELMENT`` income row with its realised PnL), its open orders are cancelled, the
        contract is delisted. ``at_ms``: the time the records carry instead of the contract's delivery time (the
        simulator's clock is the wall clock: a test that listed the contract months out so that the roll rule
        moves onto it brings its delivery forward to now)."""
        m = self.markets[symbol_id]
        if not m.delivery:
            raise ValueError(f"{symbol_id} is a perpetual: it is never delivered")
        if symbol_id in self.delivered:
            raise ValueError(f"{symbol_id} was delivered already")
        xs = [float(x) for x in index]
        if not xs or not all(math.isfinite(x) and x > 0 for x in xs):
            raise ValueError("index: the positive index samples of the last 30 minutes")
        price = round(math.fsum(xs) / len(xs), 8)
        ts = int(m.delivery_ms if at_ms is None else at_ms)
        for key, (amt, entry) in list(self.positions.items()):
            if key[0] != symbol_id or amt == 0:
                continue
            realized = amt * (price - entry)
            self.wallet += realized
            self._income_row(symbol_id, "DELIVERED_SETTELMENT", realized, ts)
            self.positions[key] = [0.0, 0.0]
        for k, o in list(self._open.items()):
            if o.symbol == symbol_id:
                o.status = "CANCELED"
                self._open.pop(k, None)
        self.delivered.add(symbol_id)
        self.delivery_prices.setdefault(m.pair, []).insert(0, {"deliveryTime": ts, "deliveryPrice": price})
        return price

    def _check_not_delivered(self, symbol_id: str) -> None:
        """An order on a delivered (delisted) contract: -1121 Invalid symbol."""
        if symbol_id in self.delivered:
            raise SimError(400, -1121, "Invalid symbol.")

    def _delivery_price(self, p: dict[str, str]) -> list[dict[str, Any]]:
        pair = p.get("pair", "")
        if not pair:
            raise SimError(400, -1102, "Mandatory parameter 'pair' was not sent, was empty/null, or malformed.")
        return list(self.delivery_prices.get(pair, []))
