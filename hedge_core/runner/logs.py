"""The runner's structured JSON-lines logging: :mod:`hedge_core.logs`, re-exported under its old name."""

from __future__ import annotations

from hedge_core.logs import JsonFormatter, RedactFilter, log_event, register_secret, setup_logging

__all__ = ["JsonFormatter", "RedactFilter", "log_event", "register_secret", "setup_logging"]
