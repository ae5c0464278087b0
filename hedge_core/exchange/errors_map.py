"""ccxt exceptions -> :mod:`hedge_core.errors`, translated once, at the exchange boundary.

Only :class:`~hedge_core.errors.TemporaryError` subclasses are retried (by
:func:`hedge_core.exchange.base.with_retry`). The order of the checks matters because of
ccxt's hierarchy: ``OrderNotFound`` is an ``InvalidOrder``; ``RequestTimeout``,
``DDoSProtection``/``RateLimitExceeded``, ``ExchangeNotAvailable`` and ``InvalidNonce`` are all
``NetworkError``.

=====================================================  =======================================
ccxt                                                   hedge_core.errors
=====================================================  =======================================
RequestTimeout, asyncio.TimeoutError                   RequestTimeout (temporary)
DDoSProtection (HTTP 418), RateLimitExceeded (Bybit    VenueBanned (a RateLimited; ban end set by
10018, HTTP 403 "access too frequent")                 the governor, from Retry-After / reset)
DDoSProtection, RateLimitExceeded (HTTP 429, -1003,    RateLimited (temporary; ``retry_after`` set
Bybit 10006)                                           by the governor from Retry-After / reset)
NetworkError, ExchangeNotAvailable, OnMaintenance,     NetworkError (temporary)
InvalidNonce (-1021, after one resync + retry)
AuthenticationError, PermissionDenied (-1022, -2015)   AuthenticationError
InsufficientFunds (-2019, spot -2010 balance)          InsufficientFunds
OrderNotFound (-2011, -2013)                           OrderNotFound
DuplicateOrderId; InvalidOrder whose text carries a    DuplicateOrder (an InvalidOrder: fetch by
duplicate marker (-4116, spot "Duplicate order sent")  client order id instead of re-sending)
InvalidOrder (filters -1013, -2022 reduce-only, ...)   InvalidOrder
a venue's code in :data:`RATE_LIMIT_CODES` whatever     RateLimited (temporary; ccxt's okx maps
the ccxt class (OKX 50061)                             50061 to a plain ExchangeError)
anything else (BadRequest, OperationRejected, ...)     OperationalError
=====================================================  =======================================

``create_order`` only: a RequestTimeout / NetworkError (timeout, dropped connection, HTTP 5xx,
Binance -1007) becomes ``OrderOutcomeUnknown`` in the adapter after one look-up by client id — the
order may exist or still execute within its recvWindow (:mod:`hedge_core.exchange.outcome`). The
governor's refusals (:mod:`hedge_core.exchange.governor`) are raised before any request.
"""

from __future__ import annotations

import asyncio
import re

import ccxt

from hedge_core import errors as he

# (ccxt class, hedge class), first match wins
_TABLE: tuple[tuple[type[BaseException], type[he.ExchangeError]], ...] = (
    (ccxt.RequestTimeout, he.RequestTimeout),
    (ccxt.DDoSProtection, he.RateLimited),
    (ccxt.RateLimitExceeded, he.RateLimited),
    (ccxt.NetworkError, he.NetworkError),
    (ccxt.AuthenticationError, he.AuthenticationError),
    (ccxt.InsufficientFunds, he.InsufficientFunds),
    (ccxt.OrderNotFound, he.OrderNotFound),
    (ccxt.DuplicateOrderId, he.DuplicateOrder),
    (ccxt.InvalidOrder, he.InvalidOrder),
    (asyncio.TimeoutError, he.RequestTimeout),
)


# venue answers that mean "this client order id was already used" (ccxt raises plain InvalidOrder)
DUPLICATE_MARKERS: tuple[str, ...] = ("-4116", "Duplicate order sent", "ClientOrderId is duplicated",
                                      "51016", "Duplicated clOrdId")


# venue -> error codes that are rate limits whatever class ccxt raises for them: OKX 50061 "Sub-account rate
# limit exceeded" ("Overview" -> "Rate Limits" -> "Sub-account rate limit": "Error code 50061 is returned when
# the sub-account rate limit is exceeded", https://www.okx.com/docs-v5/en/#overview-rate-limits); ccxt's okx
# raises ExchangeError for it, which would stop a hedge on a temporary limit
RATE_LIMIT_CODES: dict[str, tuple[str, ...]] = {"okx": ("50061",)}


def hedge_error_class(exc: BaseException, duplicate_markers: tuple[str, ...] = DUPLICATE_MARKERS, *,
                      venue: str = "") -> type[he.ExchangeError]:
    """The :mod:`hedge_core.errors` class a vendor exception of ``venue`` (ccxt id) translates to."""
    if isinstance(exc, ccxt.ExchangeError) and vendor_status(exc)[1] in RATE_LIMIT_CODES.get(venue, ()):
        return he.RateLimited
    for vendor, ours in _TABLE:
        if isinstance(exc, vendor):
            if ours is he.InvalidOrder and any(m in str(exc) for m in duplicate_markers):
                return he.DuplicateOrder
            return ours
    return he.OperationalError


def translate(exc: BaseException, *, venue: str, method: str,
              redact: tuple[str, ...] = ()) -> he.ExchangeError:
    """Translate ``exc`` into a hedge error naming ``venue.method``.

    Already-translated hedge errors pass through unchanged. ``redact`` lists strings (keys)
    that must never appear in the message.
    """
    if isinstance(exc, he.ExchangeError):
        return exc
    cls = hedge_error_class(exc, venue=venue)
    text = f"{type(exc).__name__}: {exc}"
    for secret in redact:
        if secret:
            text = text.replace(secret, "***")
    hint = {
        he.AuthenticationError: " (check the API key, secret and IP whitelist; see credentials.py)",
        he.RateLimited: " (rate limited: backing off)",
    }.get(cls, "")
    return cls(text + hint, venue=venue, method=method)


_STATUS_RE = re.compile(r"(?:^|\s)(4\d\d|5\d\d)(?:\s|$)")
_CODE_RE = re.compile(r'"(?:code|retCode)"\s*:\s*"?(-?\d+)')


def vendor_status(exc: BaseException) -> tuple[int | None, str | None]:
    """(HTTP status, venue error code) a ccxt exception's text carries, None where absent.

    ccxt puts both into the message: ``"binance 418 I'm a teapot {...}"`` (Binance's handler),
    ``"binance POST https://... 503 Service Unavailable ..."`` (status handler), and the venue's
    JSON body (``{"code":-1003,...}`` / ``{"retCode":10006,...}``).
    """
    text = str(exc)
    m = _STATUS_RE.search(text)
    c = _CODE_RE.search(text)
    status = int(m.group(1)) if m else None
    code = c.group(1) if c else None
    if code is None and "Too many visits" in text:
        code = "10006"
    return status, code
