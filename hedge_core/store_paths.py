"""Where the database is and the typed errors of opening it: light (no DuckDB, pandas or numpy).

:mod:`hedge_core.store` re-exports every name here (``from hedge_core.store import StoreMissing`` keeps
working). They live apart so that :func:`hedge_core.store_open.open_store` can refuse a missing file, and
the CLI can name the default database, without importing DuckDB and pandas (``hedge data status --db
/mistyped.duckdb`` answers at once).
"""

from __future__ import annotations

import os
from pathlib import Path

from hedge_core.errors import HedgeError

__all__ = ["REPO_ROOT", "StoreBusy", "StoreMissing", "StoreUnreadable", "default_db_path"]

REPO_ROOT = Path(__file__).resolve().parents[1]


class StoreBusy(HedgeError):
    """Another process holds the database file read-write for longer than we may wait.

    ``path`` is the file, ``holder_pid`` the holding process as DuckDB reports it (None if unknown).
    """

    def __init__(self, message: str, *, path: str = "", holder_pid: int | None = None) -> None:
        self.path, self.holder_pid = path, holder_pid
        super().__init__(message)


class StoreUnreadable(HedgeError):
    """The file exists but DuckDB cannot open it as a database (empty, truncated, not DuckDB, a folder)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"database {path} cannot be opened: {reason}. Give --db an existing DuckDB file, "
                         "or move this file away and let `hedge data seed` create a new database there")


class StoreMissing(HedgeError, FileNotFoundError):
    """A read asked for a database file that does not exist (nothing was created)."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"no database at {path} (nothing created): check --db / $HEDGE_DB, "
                         "or create one with `hedge data seed --db FILE` or `hedge data import ... --db FILE`")


def default_db_path() -> Path:
    """``$HEDGE_DB`` if set, else ``data/hedge.duckdb`` in the repository (or the working directory)."""
    env = os.environ.get("HEDGE_DB")
    if env:
        return Path(env).expanduser()
    root = REPO_ROOT if (REPO_ROOT / "pyproject.toml").exists() else Path.cwd()
    return root / "data" / "hedge.duckdb"
