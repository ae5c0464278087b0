"""Helpers shared by the panel pages (UI plumbing only; no math, no SQL).

Reads go through :func:`store`: the runner's read-only snapshot while a runner runs (it holds the
live database), else the database file opened per call. Commands go to the runner's API
(:func:`link`). The runner is started (detached) when it is not running, unless
``HEDGE_PANEL_AUTOSTART=0``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import streamlit as st

from hedge_core.errors import HedgeError, InvalidInput
from hedge_core.store import Store, default_db_path
from hedge_core.ui.views import runner_link

REFRESH_S = 3.0  # live views refresh on their own this often


def db_path() -> str:
    return os.environ.get("HEDGE_DB") or str(default_db_path())


def link() -> runner_link.RunnerLink:
    """The runner (attached, or started now when allowed), once per script run."""
    key = "_runner_link"
    cached = st.session_state.get(key)
    if cached is not None and cached.up and cached.db == Path(db_path()).resolve():
        try:
            cached.client.health()
            return cached
        except Exception:  # noqa: BLE001 - it went away: discover again
            pass
    with st.spinner("connecting to the runner (starting it when it is not running) ..."):
        lk = runner_link.connect(db_path())
    st.session_state[key] = lk
    return lk


def store() -> Store:
    """A store to READ from; never the live file while the runner holds it."""
    return runner_link.reader(link())


def runner_hedges(lk: runner_link.RunnerLink | None = None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(hedge summaries, health) from the runner, or ([], None) without one."""
    lk = lk or link()
    if not lk.up:
        return [], None
    try:
        return lk.client.hedges(), lk.client.health()
    except Exception as exc:  # noqa: BLE001 - shown, not raised: the page still renders what it can
        st.warning(f"The runner did not answer ({type(exc).__name__}: {exc}). It may be restarting; "
                   "this view refreshes on its own.")
        return [], None


def require_runner(lk: runner_link.RunnerLink | None = None) -> runner_link.RunnerLink | None:
    lk = lk or link()
    if not lk.up:
        st.warning(lk.message or "No runner is running.", icon=":material/power_off:")
        return None
    return lk


def show_error(exc: Exception, what: str) -> None:
    """Say what happened and what to do."""
    if isinstance(exc, InvalidInput):
        st.error(f"{what}: {exc}", icon=":material/error:")
    elif isinstance(exc, HedgeError):
        st.error(f"{what}: {exc}", icon=":material/error:")
    else:
        st.error(f"{what} failed ({type(exc).__name__}: {exc}). Check the runner log (Settings page shows "
                 "its folder) and try again.", icon=":material/error:")


def synthetic_badge(flag: bool) -> None:
    if flag:
        st.warning("SYNTHETIC data from the demo market generator — not real prices.", icon=":material/science:")


def fmt_money(x: Any) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if v != v else f"{v:,.2f}"


def write_access(action: str) -> Store | None:
    """A writable store for ``action`` (import, download), or None after saying why not and what to do.

    The runner is the single writer of the live database. With no active hedge the panel stops it
    for the write (positions none; it is started again on the next page load); with active hedges
    the write is refused: stop them (or run the action when no hedge is running).
    """
    from hedge_core.ui.views.hedges import is_active

    lk = link()
    if lk.up:
        try:
            active = [h["hedge_id"] for h in lk.client.hedges() if is_active(h.get("state"))]
        except Exception as exc:  # noqa: BLE001
            show_error(exc, f"{action}: asking the runner")
            return None
        if active:
            st.error(f"{action} refused: the runner holds the database and {len(active)} hedge(s) are active "
                     f"({', '.join(active[:5])}). Stop them on their detail pages (or `hedge runner stop --keep`, "
                     f"which keeps positions for its next start), then run the {action.lower()} again.")
            return None
        with st.spinner("stopping the idle runner for the write (it is started again afterwards) ..."):
            try:
                runner_link.stop_runner(lk)
            except Exception as exc:  # noqa: BLE001
                show_error(exc, f"{action}: stopping the idle runner")
                return None
        st.session_state.pop("_runner_link", None)
    return Store(db_path(), hold=False)


def after_write() -> None:
    """Re-attach (restarting the runner when autostart is on) after a write."""
    st.session_state.pop("_runner_link", None)
    _cached_call.clear()
    link()


def _stamp(path: str) -> tuple[Any, ...] | None:
    """Identity of a database file's content: its and its write-ahead log's mtime and size."""
    try:
        s = os.stat(path)
    except OSError:
        return None
    stamp: tuple[Any, ...] = (s.st_mtime_ns, s.st_size)
    try:  # writes may still sit in the write-ahead log
        w = os.stat(path + ".wal")
        stamp += (w.st_mtime_ns, w.st_size)
    except OSError:
        pass
    return stamp


@st.cache_data(ttl=60, show_spinner=False, max_entries=32)
def _cached_call(path: str, read_only: bool, stamp: tuple[Any, ...], fn_name: str, args: tuple[Any, ...],
                 kwargs: tuple[tuple[str, Any], ...], _fn: Any) -> Any:
    return _fn(Store(path, read_only=read_only, hold=False), *args, **dict(kwargs))


def cached_read(rd: Store, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(rd, *args, **kwargs)`` (a read-only view function) cached until the file changes: a new
    snapshot, an import or a download gives a new answer; an unchanged file is not read again."""
    stamp = _stamp(rd.path)
    if stamp is None:
        return fn(rd, *args, **kwargs)
    return _cached_call(rd.path, rd.read_only, stamp, f"{fn.__module__}.{fn.__qualname__}", args,
                        tuple(sorted(kwargs.items())), fn)


def cached_series(rd: Store) -> Any:
    """``rd.series()`` cached until the file changes (imports, downloads, new snapshots)."""
    return cached_read(rd, Store.series)
