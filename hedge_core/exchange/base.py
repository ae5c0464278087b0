"""The one exchange adapter protocol (async) and the bounded retry policy.

Every adapter (paper, ccxt live, recommend, fault-injection wrapper) implements
:class:`ExchangeAdapter`. Errors leave an adapter only as :mod:`hedge_core.errors` types;
only :class:`~hedge_core.errors.TemporaryError` is retried, by :func:`with_retry`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

import pandas as pd

from hedge_core.errors import TemporaryError
from hedge_core.types import (
    Balance,
    Fill,
    FundingPayment,
    FundingRate,
    Instrument,
    MarginMode,
    Order,
    OrderRequest,
    Position,
    PositionMode,
    Ticker,
    TradingMode,
)

T = TypeVar("T")


@runtime_checkable
class ExchangeAdapter(Protocol):
    """What the engine and runner need from a venue. All methods are coroutines.

    Symbols are ccxt unified (``BTC/USDT`` spot, ``BTC/USDT:USDT`` perp). ``create_order``
    takes the caller's deterministic client order id and sends the order once. A reused id is
    NOT a safe retry (Binance spot accepts it again once the first order is final): an order whose
    answer was lost raises ``OrderOutcomeUnknown`` and is resolved at the venue first.

    OPTIONAL, not part of the protocol (callers look it up with ``getattr``; other adapters need
    not define it): ``async arm_cancel_all_after(symbol: str, seconds: float) -> bool`` (re-)arms
    the venue's exchange-side cancel-all countdown: when ``seconds`` pass without another call the
    venue cancels open orders (positions stay); ``seconds == 0`` disarms. Returns False, sending
    nothing, where the venue/market has no such timer. The runner calls it on every heartbeat.
    With it, ``cancel_all_scope(symbol) -> str`` says what the timer covers: ``"symbol"`` (that
    symbol's orders: Binance USD-M ``POST /fapi/v1/countdownCancelAll``), ``"account"`` (every
    pending order of the account: OKX ``POST /api/v5/trade/cancel-all-after``) or ``""`` (none).
    Implemented by ``CcxtLiveAdapter``.

    OPTIONAL too (unknown order outcomes, docs/live-outcome-governor.md):
    ``outcome_window_s: float`` — seconds after sending during which an unanswered order may still
    execute (recvWindow + margin; absent means 0: the venue never executes late, e.g. paper), and
    ``async find_order(symbol, client_order_id, since) -> Order | None`` — the order by client id
    from the venue's order AND trade records (absent: ``fetch_order`` by client id).
    """

    venue: str
    mode: TradingMode

    async def load_markets(self) -> dict[str, Instrument]: ...

    async def fetch_ticker(self, symbol: str) -> Ticker: ...

    async def fetch_order_book(self, symbol: str, limit: int | None = None, *,
                               amount: float | None = None) -> dict[str, list[list[float]]]:
        """The venue's order book of ``symbol`` in the ccxt shape: ``{"bids": [[price, amount], ...]
        best (highest) first, "asks": [...] best (lowest) first}``; prices in quote per base, amounts in
        BASE units. ``limit``: levels per side (None: the venue's default). ``amount`` (base): the size
        the caller will walk; a venue that draws its book from a model (paper) makes it a level boundary,
        so the walk of exactly that size equals its fill; a live venue's book is what it is (ignored).
        Read by best execution (:mod:`hedge_core.exchange.best_venue`)."""
        ...

    async def fetch_balance(self, account: str = "spot") -> dict[str, Balance]:
        """Balances by currency of one wallet: ``account`` is ``"spot"`` or ``"perp"``
        (the USDT-margined futures wallet; its USDT balance is the margin wallet balance)."""
        ...

    async def fetch_positions(self, symbols: list[str] | None = None) -> list[Position]:
        """Open perp positions; flat positions are omitted."""
        ...

    async def create_order(self, request: OrderRequest) -> Order: ...

    async def cancel_order(self, symbol: str, *, order_id: str | None = None,
                           client_order_id: str | None = None) -> Order: ...

    async def fetch_order(self, symbol: str, *, order_id: str | None = None,
                          client_order_id: str | None = None) -> Order: ...

    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]: ...

    async def fetch_my_trades(self, symbol: str, since: pd.Timestamp | None = None) -> list[Fill]: ...

    async def set_leverage(self, symbol: str, leverage: float) -> None:
        """Idempotent: a call that changes nothing succeeds."""
        ...

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> None:
        """Idempotent: a call that changes nothing succeeds."""
        ...

    async def set_position_mode(self, mode: PositionMode) -> None:
        """Idempotent: a call that changes nothing succeeds."""
        ...

    async def fetch_funding_rate(self, symbol: str) -> FundingRate:
        """Current (next) funding rate of a perp."""
        ...

    async def fetch_funding_rate_history(self, symbol: str, since: pd.Timestamp | None = None,
                                         limit: int | None = None) -> list[FundingRate]: ...

    async def fetch_funding_payments(self, symbol: str | None = None,
                                     since: pd.Timestamp | None = None) -> list[FundingPayment]:
        """Own funding settled: + received / - paid, quote units."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter, for temporary errors only.

    delay_k = uniform(0, min(max_delay, base_delay * 2**k)) seconds before attempt k+1.
    """

    max_attempts: int = 5
    base_delay: float = 0.2  # s
    max_delay: float = 5.0  # s
    seed: int | None = None  # deterministic jitter in tests

    def delays(self) -> list[float]:
        rng = random.Random(self.seed)
        return [rng.uniform(0.0, min(self.max_delay, self.base_delay * 2**k))
                for k in range(self.max_attempts - 1)]


async def with_retry(call: Callable[[], Awaitable[T]], policy: RetryPolicy = RetryPolicy(), *,
                     sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                     on_retry: Callable[[int, TemporaryError], None] | None = None) -> T:
    """Run ``call``; on :class:`TemporaryError` wait and retry up to ``policy.max_attempts`` times.

    Any other error propagates at once. The last temporary error is re-raised when attempts run out.
    A rate-limit error's ``retry_after`` (seconds) is waited at least; one above
    ``policy.max_delay`` (a ban, a long back-off) is re-raised at once.
    Never wrap an order creation in it: an order is sent once, and one whose answer was lost is
    resolved at the venue before anything new is sent (docs/live-outcome-governor.md).
    """
    delays = policy.delays()
    for attempt in range(policy.max_attempts):
        try:
            return await call()
        except TemporaryError as exc:
            if attempt >= policy.max_attempts - 1:
                raise
            # the venue's Retry-After (via the rate-limit governor) is a floor on the wait; one
            # longer than the policy's max delay (a ban) is not waited out here: the caller decides
            retry_after = getattr(exc, "retry_after", None) or 0.0
            if retry_after > policy.max_delay:
                raise
            if on_retry is not None:
                on_retry(attempt + 1, exc)
            await sleep(max(delays[attempt], retry_after))
    raise AssertionError("unreachable")  # pragma: no cover
