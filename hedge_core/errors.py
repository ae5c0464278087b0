"""Typed errors. Vendor errors are translated into these once, at the exchange boundary.

Three families decide what the caller does:
- :class:`TemporaryError` (network, timeout, rate limit): retried with bounded backoff;
- :class:`OperationalError` and its kin: stop this hedge safely, do not retry blindly;
- :class:`InvalidInput`: rejected before anything is written; the message names the field,
  the value and what is allowed.
"""

from __future__ import annotations

from typing import Any


class HedgeError(Exception):
    """Base of every error hedge_core raises on purpose."""


class InvalidInput(HedgeError, ValueError):
    """Bad parameters, files or arguments. Nothing was written."""

    def __init__(self, field: str, value: Any, allowed: str, *, where: str | None = None) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        self.where = where
        loc = f"{where}: " if where else ""
        super().__init__(f"{loc}{field}={value!r} is not allowed; expected {allowed}")


class DataError(HedgeError, ValueError):
    """A data file or frame is malformed. Names file, row and column where known. Nothing was written."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None) -> None:
        self.file, self.row, self.column = file, row, column
        parts = [p for p in (
            f"file {file}" if file else None,
            f"row {row}" if row is not None else None,
            f"column {column!r}" if column else None,
        ) if p]
        super().__init__(f"{', '.join(parts)}: {message}" if parts else message)


class StartFailed(HedgeError):
    """A hedge's start failed after its checks passed (the venue or the task's start raised). Nothing was kept:
    nothing journaled, the paper venues' state files as they were, its venue clients closed; a retry with the
    same hedge id starts clean. ``hedge_id`` names the hedge, ``cause`` is the error that stopped it."""

    def __init__(self, hedge_id: str, cause: BaseException) -> None:
        self.hedge_id, self.cause = hedge_id, cause
        super().__init__(f"hedge {hedge_id} not started: {type(cause).__name__}: {cause} (nothing was kept: "
                         "no journal row, paper state files as they were; a retry with the same id starts clean)")


# ---- exchange errors -------------------------------------------------------------------


class ExchangeError(HedgeError):
    """Anything a venue said no to. ``venue`` and ``method`` name where it happened."""

    def __init__(self, message: str, *, venue: str = "", method: str = "") -> None:
        self.venue, self.method = venue, method
        prefix = f"[{venue}.{method}] " if venue or method else ""
        super().__init__(prefix + message)


class TemporaryError(ExchangeError):
    """Transient: retry with backoff (bounded)."""


class NetworkError(TemporaryError):
    pass


class RequestTimeout(TemporaryError):
    """No answer in time. The order may or may not exist: query by client order id before re-sending."""


class RateLimited(TemporaryError):
    """The venue (or our governor on its behalf) says: not now. ``retry_after`` is the number of
    seconds before the next request on this account may go out (None: unknown; back off)."""

    def __init__(self, message: str, *, venue: str = "", method: str = "",
                 retry_after: float | None = None) -> None:
        super().__init__(message, venue=venue, method=method)
        self.retry_after = retry_after


class VenueBanned(RateLimited):
    """The venue banned this account/IP (Binance HTTP 418, Bybit 10018 / HTTP 403) until ``until``
    (UTC): no request of any kind may go out before then. Raised by the governor without
    contacting the venue while the ban lasts."""

    def __init__(self, message: str, *, venue: str = "", method: str = "",
                 retry_after: float | None = None, until: Any = None) -> None:
        super().__init__(message, venue=venue, method=method, retry_after=retry_after)
        self.until = until


class OrderOutcomeUnknown(RequestTimeout):
    """A create-order request got no trustworthy answer (timeout, dropped connection, HTTP 5xx,
    Binance -1007): the order may exist or may still execute until ``window_end`` (UTC, its send
    time + the venue's recvWindow + a margin). It is resolved at the venue by client order id and
    trade records; nothing is re-sent before ``window_end``."""

    def __init__(self, message: str, *, venue: str = "", method: str = "",
                 client_order_id: str = "", sent_at: Any = None, window_end: Any = None) -> None:
        super().__init__(message, venue=venue, method=method)
        self.client_order_id, self.sent_at, self.window_end = client_order_id, sent_at, window_end


class InvalidOrder(ExchangeError):
    """The venue rejected the order as malformed (tick, lot, min notional, reduce-only...)."""


class DuplicateOrder(InvalidOrder):
    """The client order id was already used (Binance -4116 / -2010 duplicate): the earlier order
    exists; fetch it by client order id instead of re-sending."""


class InsufficientFunds(ExchangeError):
    """Not enough balance or margin."""


class OrderNotFound(ExchangeError):
    pass


class AuthenticationError(ExchangeError):
    """Bad or missing keys, bad signature. Fix the keys; never retried."""


class OperationalError(ExchangeError):
    """The venue is in a state where this hedge must stop safely (maintenance, unsupported call...)."""


class IllegalTransition(HedgeError):
    """A trigger the state table does not allow from the current state."""

    def __init__(self, state: str, trigger: str) -> None:
        self.state, self.trigger = state, trigger
        super().__init__(f"illegal transition {state} -> {trigger}")


class IllegalOrderTransition(IllegalTransition):
    """An order event an order-state table does not allow from the order's current state
    (``engine.order_states`` for the engine's view, ``exchange.order_status`` for the venue's)."""

    def __init__(self, state: str, event: str, *, table: str = "order") -> None:
        HedgeError.__init__(self, f"illegal {table} transition {state} -> {event}")
        self.state, self.trigger, self.table = state, event, table
