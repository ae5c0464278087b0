"""Structured JSON-lines logging (one object per line, never a secret): the runner's log, and any part
of hedge_core that logs an event with fields (e.g. :mod:`hedge_core.advice.llm`).

Every record carries ``ts``, ``level``, ``logger``, ``msg`` and, when given through ``extra=``,
``hedge_id``, ``state`` and other fields. :class:`RedactFilter` replaces every registered secret
(API keys, secrets, the control-API token) by ``***`` in the message and in every field before
anything is formatted, so a secret cannot reach a log file even by accident.

A bottom-layer module (standard library only): it lived in ``hedge_core/runner/logs.py`` (which
re-exports it), and moved here so that ``advice`` can log without importing ``runner`` (``runner``
imports ``advice``: that was an import circle between the two packages).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["JsonFormatter", "RedactFilter", "log_event", "register_secret", "setup_logging"]

_SECRETS: set[str] = set()
_STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def register_secret(value: str | None) -> None:
    """Never print ``value`` (ignored when shorter than 6 characters: too likely to be a word)."""
    if value and len(value) >= 6:
        _SECRETS.add(value)


def _scrub(v: Any) -> Any:
    if isinstance(v, str):
        for s in _SECRETS:
            if s in v:
                v = v.replace(s, "***")
        return v
    if isinstance(v, dict):
        return {k: _scrub(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_scrub(x) for x in v]
    return v


class RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            record.msg = _scrub(record.getMessage())
            record.args = ()
            for k, v in list(vars(record).items()):
                if k not in _STD:
                    setattr(record, k, _scrub(v))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _STD and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(_scrub(out), default=str)


def setup_logging(log_file: str | Path | None = None, *, level: int = logging.INFO, stderr: bool = True) -> logging.Logger:
    """Configure the ``hedge_core`` logger tree to write JSON lines (file and/or stderr)."""
    root = logging.getLogger("hedge_core")
    root.setLevel(level)
    for h in list(root.handlers):
        root.removeHandler(h)
    handlers: list[logging.Handler] = []
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    if stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    for h in handlers:
        h.setFormatter(JsonFormatter())
        h.addFilter(RedactFilter())
        root.addHandler(h)
    root.propagate = False
    return root


def log_event(logger: logging.Logger, msg: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """``logger.log(level, msg, extra=fields)`` with field names that cannot clash with LogRecord's."""
    safe = {(k if k not in _STD else f"f_{k}"): v for k, v in fields.items()}
    logger.log(level, msg, extra=safe)
