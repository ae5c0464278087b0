"""Unknown order outcomes at the exchange boundary: which errors leave an order's fate open, and
how long the venue may still execute it.

Binance ("General API Information"): "HTTP 5XX return codes are used for internal errors; the
issue is on Binance's side. It is important to NOT treat this as a failure operation; the
execution status is UNKNOWN and could have been a success"; -1007 "Timeout waiting for response
from backend server. Send status unknown; execution status unknown". A signed request is
accepted while ``timestamp + recvWindow`` has not passed ("Timing security"), so an order whose
answer was lost may still execute up to ``recvWindow`` after it was sent.
"""

from __future__ import annotations

import math

import pandas as pd

from hedge_core import errors as he

__all__ = ["DEFAULT_RECV_WINDOW_MS", "outcome_window_s", "unknown_outcome"]

#: ccxt's Binance default (and the venue's documented default is 5 000; ours is set in VENUES)
DEFAULT_RECV_WINDOW_MS = 10_000


def outcome_window_s(recv_window_ms: object, margin_s: float) -> float:
    """Seconds after the send during which a lost order may still execute: recvWindow + margin.

    ``recv_window_ms`` is the adapter's configured recvWindow (milliseconds, > 0; None or
    invalid -> :data:`DEFAULT_RECV_WINDOW_MS`).
    """
    try:
        rw = float(recv_window_ms)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        rw = float(DEFAULT_RECV_WINDOW_MS)
    if not (math.isfinite(rw) and rw > 0):
        rw = float(DEFAULT_RECV_WINDOW_MS)
    return rw / 1000.0 + float(margin_s)


def unknown_outcome(exc: BaseException, client_order_id: str, sent_at_s: float, window_s: float, *,
                    venue: str) -> he.OrderOutcomeUnknown:
    """The typed error for an order whose answer was lost (``sent_at_s``: epoch seconds)."""
    sent = pd.Timestamp(int(sent_at_s * 1000), unit="ms", tz="UTC")
    end = sent + pd.Timedelta(seconds=window_s)
    return he.OrderOutcomeUnknown(
        f"order {client_order_id} outcome unknown ({type(exc).__name__}: {exc}); it may still execute "
        f"until {end.isoformat()} (recvWindow + margin); resolve it at the venue, never re-send it",
        venue=venue, method="create_order", client_order_id=client_order_id, sent_at=sent, window_end=end)
