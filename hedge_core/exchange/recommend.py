"""Recommend mode: compute and record what would be sent; send nothing.

:class:`RecommendAdapter` wraps a market-data adapter (live ccxt with read-only keys, or paper).
Market data and read calls pass through to it. Write calls (``create_order``, ``cancel_order``,
``set_leverage``, ``set_margin_mode``, ``set_position_mode``, ``transfer``) are validated against
the loaded markets' limits, recorded in :attr:`RecommendAdapter.recommendations` and NOT forwarded.

What ``create_order`` returns (the choice, and why): an :class:`~hedge_core.types.Order` with
status ``REJECTED``, ``filled=0``, id ``rec-<n>``. REJECTED is final and carries no fill, so an
engine never believes exposure changed and never waits for a fill that cannot come; the account
as read through the pass-through calls stays the truth. (OPEN would leave the engine waiting for
fills and cancelling phantom orders.) ``fetch_order``/``cancel_order`` of a ``rec-`` order answer
from the record (cancel is recorded, returns the same REJECTED order) instead of asking the venue.
A repeated client order id returns the recorded order (nothing is sent either way).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import ccxt
import pandas as pd

from hedge_core.errors import InvalidOrder, NetworkError
from hedge_core.types import (
    Balance,
    Fill,
    FundingPayment,
    FundingRate,
    Instrument,
    MarginMode,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    PositionMode,
    Ticker,
    TradingMode,
)

__all__ = ["RecommendAdapter", "Recommendation", "UNREACHABLE"]

_T = TypeVar("_T")
UNREACHABLE = "venue unreachable"


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One write call that recommend mode did not send: ``request`` holds its arguments."""

    seq: int
    ts: pd.Timestamp
    method: str
    request: dict[str, Any]
    note: str = ""


def _utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


class RecommendAdapter:
    """Pass reads through to ``market_data``; record writes; send nothing.

    Parameters
    ----------
    market_data : ExchangeAdapter
        Source of market data and account reads.
    clock : callable returning a UTC Timestamp, optional
        Time stamped on each recommendation (default wall clock; pass ``lambda: core.now`` over paper).
    """

    mode = TradingMode.RECOMMEND

    def __init__(self, market_data: Any, *, clock: Callable[[], pd.Timestamp] | None = None) -> None:
        self.market_data = market_data
        self.venue = market_data.venue
        self._clock = clock or _utc_now
        self.recommendations: list[Recommendation] = []
        self._orders: dict[str, Order] = {}  # by client order id
        self._markets: dict[str, Instrument] | None = None

    def _record(self, method: str, request: dict[str, Any], note: str = "") -> Recommendation:
        rec = Recommendation(len(self.recommendations), self._clock(), method, request, note)
        self.recommendations.append(rec)
        return rec

    # ---- pass-through reads -----------------------------------------------------------------
    async def _read(self, method: str, call: Awaitable[_T]) -> _T:
        """Await a pass-through read; an unreachable venue becomes a sentence saying what recommend needs.

        The error stays a :class:`~hedge_core.errors.NetworkError` (temporary: the caller's retry
        and backoff are unchanged); a raw ccxt network error from a hook adapter is translated too.
        """
        try:
            return await call
        except (NetworkError, ccxt.NetworkError) as exc:
            if isinstance(exc, NetworkError) and UNREACHABLE in str(exc):
                raise
            raise NetworkError(
                f"{UNREACHABLE}: recommend mode reads {self.venue}'s public API (markets, tickers, funding; "
                f"account reads when keys are set) to compute what it would send, and {self.venue} does not "
                f"answer from this machine ({type(exc).__name__}: {str(exc)[:200]}). Check the network, a proxy "
                "or a regional block of the venue; without the venue use paper mode (--mode paper) on stored data",
                venue=self.venue, method=method) from None

    async def load_markets(self) -> dict[str, Instrument]:
        self._markets = await self._read("load_markets", self.market_data.load_markets())
        return self._markets

    async def fetch_ticker(self, symbol: str) -> Ticker:
        return await self._read("fetch_ticker", self.market_data.fetch_ticker(symbol))

    async def fetch_order_book(self, symbol: str, limit: int | None = None, *,
                               amount: float | None = None) -> dict[str, list[list[float]]]:
        """The venue's book (a public read: nothing is sent)."""
        return await self._read("fetch_order_book", self.market_data.fetch_order_book(symbol, limit, amount=amount))

    async def fetch_balance(self, account: str = "spot") -> dict[str, Balance]:
        return await self._read("fetch_balance", self.market_data.fetch_balance(account))

    async def fetch_positions(self, symbols: list[str] | None = None) -> list[Position]:
        return await self._read("fetch_positions", self.market_data.fetch_positions(symbols))

    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        return await self._read("fetch_open_orders", self.market_data.fetch_open_orders(symbol))

    async def fetch_my_trades(self, symbol: str, since: pd.Timestamp | None = None) -> list[Fill]:
        return await self._read("fetch_my_trades", self.market_data.fetch_my_trades(symbol, since))

    async def fetch_funding_rate(self, symbol: str) -> FundingRate:
        return await self._read("fetch_funding_rate", self.market_data.fetch_funding_rate(symbol))

    async def fetch_funding_rate_history(self, symbol: str, since: pd.Timestamp | None = None,
                                         limit: int | None = None) -> list[FundingRate]:
        return await self._read("fetch_funding_rate_history",
                                self.market_data.fetch_funding_rate_history(symbol, since, limit))

    async def fetch_funding_payments(self, symbol: str | None = None,
                                     since: pd.Timestamp | None = None) -> list[FundingPayment]:
        return await self._read("fetch_funding_payments",
                                self.market_data.fetch_funding_payments(symbol, since))

    async def fetch_order(self, symbol: str, *, order_id: str | None = None,
                          client_order_id: str | None = None) -> Order:
        rec = self._lookup(order_id, client_order_id)
        if rec is not None:
            return rec
        return await self._read("fetch_order", self.market_data.fetch_order(symbol, order_id=order_id,
                                                                            client_order_id=client_order_id))

    def _lookup(self, order_id: str | None, client_order_id: str | None) -> Order | None:
        if client_order_id is not None and client_order_id in self._orders:
            return self._orders[client_order_id]
        if order_id is not None and order_id.startswith("rec-"):
            for o in self._orders.values():
                if o.id == order_id:
                    return o
        return None

    # ---- recorded writes ----------------------------------------------------------------------
    async def create_order(self, request: OrderRequest) -> Order:
        """Record the order that would be sent; return it REJECTED with nothing filled."""
        prior = self._orders.get(request.client_order_id)
        if prior is not None:
            return prior
        if self._markets is None:
            await self.load_markets()
        inst = (self._markets or {}).get(request.symbol)
        if inst is None:
            raise InvalidOrder(f"Invalid symbol {request.symbol!r}", venue=self.venue, method="create_order")
        qty = inst.round_qty(request.qty)
        price = inst.round_price(request.price) if request.price is not None else None
        note = "" if qty == request.qty else f"qty rounded down to lot {inst.lot_size}"
        rec = self._record("create_order", {
            "symbol": request.symbol, "side": request.side.value, "type": request.type.value, "qty": qty,
            "price": price, "client_order_id": request.client_order_id, "reduce_only": request.reduce_only,
            "position_side": request.position_side.value}, note)
        order = Order(f"rec-{rec.seq}", request.client_order_id, request.symbol, request.side,
                      OrderType(request.type), qty, price, 0.0, None, OrderStatus.REJECTED, rec.ts,
                      request.reduce_only)
        self._orders[request.client_order_id] = order
        return order

    async def cancel_order(self, symbol: str, *, order_id: str | None = None,
                           client_order_id: str | None = None) -> Order:
        self._record("cancel_order", {"symbol": symbol, "order_id": order_id, "client_order_id": client_order_id})
        rec = self._lookup(order_id, client_order_id)
        if rec is not None:
            return rec
        # a real open order: report it as it is now (still open; nothing was cancelled)
        return await self._read("fetch_order", self.market_data.fetch_order(symbol, order_id=order_id,
                                                                            client_order_id=client_order_id))

    async def set_leverage(self, symbol: str, leverage: float) -> None:
        self._record("set_leverage", {"symbol": symbol, "leverage": leverage})

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> None:
        self._record("set_margin_mode", {"symbol": symbol, "mode": MarginMode(mode).value})

    async def set_position_mode(self, mode: PositionMode) -> None:
        self._record("set_position_mode", {"mode": PositionMode(mode).value})

    async def transfer(self, currency: str, amount: float, from_account: str, to_account: str) -> dict[str, Any]:
        rec = self._record("transfer", {"currency": currency, "amount": amount, "from": from_account,
                                        "to": to_account})
        return dict(rec.request, recommended=True)

    async def close(self) -> None:
        await self.market_data.close()
