"""One vendor error per translated error type: the answer a venue gives and the error the adapter must raise."""

from __future__ import annotations

from hedge_core import errors as he

# name -> (inject kwargs, expected hedge error class); a list of (path pattern, kwargs) where
# Binance answers differently on spot (/api/) and futures (/fapi/) endpoints
FAULTS: dict[str, tuple[dict, type[he.ExchangeError]]] = {
    "http429": ({"status": 429}, he.RateLimited),
    "http418": ({"status": 418}, he.RateLimited),
    "timeout": ({"hang": 2.0}, he.RequestTimeout),
    "http503": ({"status": 503, "raw": "Service Unavailable"}, he.NetworkError),
    # Binance "Error codes" 10xx: -1007 "Timeout waiting for response from backend server. Send status
    # unknown; execution status unknown." (answered with a 5xx: the outcome is unknown)
    "unknown-1007": ({"status": 503, "code": -1007, "msg": "Timeout waiting for response from backend server. "
                      "Send status unknown; execution status unknown."}, he.RequestTimeout),
    "clock-1021": ({"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."},
                   he.NetworkError),
    "auth-1022": ({"code": -1022, "msg": "Signature for this request is not valid."}, he.AuthenticationError),
    "key-2015": ({"status": 401, "code": -2014, "msg": "API-key format invalid."}, he.AuthenticationError),
    "margin-2019/2010": ([("/fapi/", {"code": -2019, "msg": "Margin is insufficient."}),
                          ("/api/", {"code": -2010,
                                     "msg": "Account has insufficient balance for requested action."})],
                         he.InsufficientFunds),
    "unknown-2013": ({"code": -2013, "msg": "Order does not exist."}, he.OrderNotFound),
    "filter-1013": ({"code": -1013, "msg": "Filter failure: LOT_SIZE"}, he.InvalidOrder),
    "dup-4116/2010": ([("/fapi/", {"code": -4116, "msg": "ClientOrderId is duplicated."}),
                       ("/api/", {"code": -2010, "msg": "Duplicate order sent."})], he.DuplicateOrder),
    "other-1000": ({"code": -1000, "msg": "An unknown error occurred while processing the request."},
                   he.OperationalError),
    "other-4048": ({"code": -4048, "msg": "Margin type cannot be changed if there exists position."},
                   he.OperationalError),
}

