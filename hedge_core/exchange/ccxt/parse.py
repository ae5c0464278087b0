"""Conversions of ccxt answers into the project's units (pure, no I/O): timestamps, numbers, funding
intervals, a ticker's venue time, and the logger adapter that scrubs secrets from ccxt's log lines.

Used by :mod:`hedge_core.exchange.ccxt.adapter` and its per-concern mixins.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pandas as pd

from hedge_core import errors as he

__all__ = ["ticker_time"]


class _RedactingLogger(logging.LoggerAdapter):
    """ccxt logs request headers (API key) at DEBUG; this scrubs secrets before any handler sees them."""

    def __init__(self, logger: logging.Logger, secrets: tuple[str, ...]) -> None:
        super().__init__(logger, {})
        self._secrets = tuple(s for s in secrets if s)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        text = str(msg) % args if args else str(msg)
        for s in self._secrets:
            text = text.replace(s, "***")
        self.logger.log(level, "%s", text, **kwargs)


def _ts(ms: float | None) -> pd.Timestamp:
    if ms is None:
        return pd.Timestamp.now(tz="UTC")
    return pd.Timestamp(int(ms), unit="ms", tz="UTC")


def ticker_time(ticker: dict[str, Any], envelope: Any) -> pd.Timestamp:
    """The venue's time of a ticker: its own ``timestamp`` (Binance ``closeTime``, OKX ``ts``), else the
    answer's server time (Bybit v5 ticker rows carry none; the envelope's ``time`` is when the venue
    answered, "Get Tickers"), else NaT: never the local clock, so a price without venue time is never
    taken as fresh (runner.freshness)."""
    ms = ticker.get("timestamp")
    if ms is None and isinstance(envelope, dict):
        ms = envelope.get("time")
    try:
        return pd.Timestamp(int(ms), unit="ms", tz="UTC") if ms is not None else pd.NaT
    except (TypeError, ValueError):
        return pd.NaT


def _ms(ts: pd.Timestamp | None) -> int | None:
    if ts is None:
        return None
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        raise he.InvalidInput("since", ts, "a timezone-aware UTC timestamp")
    return int(t.value // 1_000_000)


def _f(x: Any, default: float = 0.0) -> float:
    if x is None:
        return default
    try:
        v = float(x)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(v) else v


def _interval_hours(interval: Any) -> float:
    if isinstance(interval, str) and interval.endswith("h"):
        try:
            return float(interval[:-1])
        except ValueError:
            return 8.0
    return 8.0
