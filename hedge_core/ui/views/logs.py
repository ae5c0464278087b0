"""What the Logs page shows: the newest records of the runner's JSON-lines log, filtered.

The runner writes one JSON object per line to ``<runner home>/logs/runner.jsonl`` (secrets are
scrubbed before anything is written: :mod:`hedge_core.runner.logs`). Only the file's tail is read
(``max_bytes`` from its end), so a large log does not slow the page.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from hedge_core.errors import InvalidInput

__all__ = ["LEVELS", "LOG_COLUMNS", "log_path", "tail_log"]

LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_COLUMNS = ["ts", "level", "hedge_id", "state", "msg", "logger", "details"]
_CORE = {"ts", "level", "hedge_id", "state", "msg", "logger"}


def log_path(home: str | os.PathLike[str]) -> Path:
    """The runner's log file under its home folder."""
    return Path(home) / "logs" / "runner.jsonl"


def tail_log(path: str | os.PathLike[str], *, max_rows: int = 500, min_level: str = "info",
             hedge_id: str | None = None, text: str | None = None, max_bytes: int = 4_000_000) -> pd.DataFrame:
    """The newest log records (newest first) at ``min_level`` or above, optionally of one hedge and
    containing ``text`` (case-insensitive, in the message or any field).

    Columns: see ``LOG_COLUMNS``; ``details`` holds the record's other fields as compact JSON. A missing
    file gives an empty frame; a line that is not JSON (a crash's stderr) is shown as an ``error`` record.
    """
    if min_level not in LEVELS:
        raise InvalidInput("min_level", min_level, f"one of {LEVELS}")
    if not (1 <= int(max_rows) <= 100_000):
        raise InvalidInput("max_rows", max_rows, "an integer in [1, 100000]")
    p = Path(path)
    if not p.exists():
        return pd.DataFrame(columns=LOG_COLUMNS)
    with open(p, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(size - max_bytes, 0))
        raw = fh.read().decode("utf-8", errors="replace")
    lines = raw.splitlines()
    if size > max_bytes and lines:
        lines = lines[1:]  # the first line is cut in the middle
    floor = LEVELS.index(min_level)
    needle = text.lower() if text else None
    rows: list[dict[str, object]] = []
    for line in reversed(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError
        except ValueError:
            rec = {"level": "error", "msg": line, "logger": "stderr"}
        level = str(rec.get("level", "info")).lower()
        if LEVELS.index(level) < floor if level in LEVELS else False:
            continue
        if hedge_id and rec.get("hedge_id") != hedge_id:
            continue
        if needle and needle not in line.lower():
            continue
        extra = {k: v for k, v in rec.items() if k not in _CORE}
        rows.append({"ts": rec.get("ts"), "level": level, "hedge_id": rec.get("hedge_id") or "",
                     "state": rec.get("state") or "", "msg": rec.get("msg", ""), "logger": rec.get("logger", ""),
                     "details": json.dumps(extra, default=str, separators=(",", ":")) if extra else ""})
        if len(rows) >= max_rows:
            break
    out = pd.DataFrame(rows, columns=LOG_COLUMNS)
    out["ts"] = pd.to_datetime(out["ts"], utc=True, errors="coerce")
    return out
