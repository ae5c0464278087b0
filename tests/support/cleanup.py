"""The clean-up guard of tests/conftest.py: the in-process runner Supervisors a test built, and what each one
left open. In a full run one xdist worker runs many files in one process, so what a test leaves open (a journal's
WAL file, a background loop, the watchdog thread) leaks into the next ones. Cheap: a list filled by a wrapped
``Supervisor.__init__``; strong references for the test's duration, so the check never depends on when the
garbage collector runs. No tests here (tests/test_runner_shutdown_clean.py tests it)."""

from __future__ import annotations

from typing import Any

__all__ = ["SUPERVISORS", "left_open", "release_supervisors", "track_supervisors"]

SUPERVISORS: list[Any] = []  # the Supervisors built since the last release_supervisors()


def track_supervisors() -> None:
    """Wrap ``Supervisor.__init__`` once so that every Supervisor built in this process is kept in SUPERVISORS."""
    from hedge_core.runner import supervisor as sup_mod

    init = sup_mod.Supervisor.__init__
    if getattr(init, "_tracked", False):
        return

    def tracked(self: Any, *a: Any, **kw: Any) -> None:
        init(self, *a, **kw)
        SUPERVISORS.append(self)

    tracked._tracked = True  # type: ignore[attr-defined]
    tracked.__doc__ = init.__doc__
    sup_mod.Supervisor.__init__ = tracked  # type: ignore[method-assign]


def left_open(sup: Any) -> list[str]:
    """What ``sup`` leaves open, one sentence each with the fix ([] after ``await sup.shutdown()``): its journal's
    WAL segment, background loops not ended, a watchdog thread of a supervisor not stopping."""
    out = []
    if sup.journal._wal is not None:
        out.append(f"its journal's WAL segment is open ({sup.journal._wal.name}): await Supervisor.shutdown() "
                   "or close the journal")
    running = [t.get_name() for t in sup._bg if not t.done()]
    if running or (sup._watchdog is not None and sup._watchdog.is_alive() and not sup.stopping):
        out.append(f"its background loops {running} or watchdog still run: await Supervisor.shutdown()")
    return out


def release_supervisors() -> list[str]:
    """What each tracked Supervisor left open (``Supervisor(<home>): ...`` lines); then forget them, closing a WAL
    segment left open and marking each stopping so that the leak does not reach the next tests."""
    sups = list(SUPERVISORS)
    SUPERVISORS.clear()
    out = []
    for s in sups:
        out += [f"Supervisor({s.home}): {w}" for w in left_open(s)]
        if s.journal._wal is not None:
            s.journal._close_segment()
        s.stopping = True  # its watchdog thread ends within 0.5 s
    return out
