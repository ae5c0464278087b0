"""Test hook: make the runner SIGKILL itself at a named point of a hedge's life.

``HEDGE_RUNNER_KILL_AT="point[:leg[:purpose]][#n]"`` kills the process (``SIGKILL``, no cleanup,
exactly like a power cut) the ``n``-th time (default 1st) the named point is reached with a
matching leg and purpose (``*`` or empty matches anything). Points:

- ``intent_journaled``: the intent is in the journal, the order is NOT sent yet;
- ``order_sent``: the venue accepted the order, its answer is not processed/journaled yet;
- ``fill_journaled``: a fill was written to the journal (``:perp:hedge`` after the first perp
  fill; use with a partially filling venue for "perp partially filled");
- ``transition``: a state transition was journaled (leg = the new state);
- ``exit_marks_journaled``: a step changed the exit rules' cycle memory (a new peak PnL, a new entry) or the
  daily-loss guard's day rolled, and it was journaled (``runner.exit_marks``); ``#n`` counts those rows;
- ``perp_venue_chosen``: a flat hedge (paper replay, live, recommend) moved its perp leg to the venue best at
  entry and journaled it, the running hedge has not moved yet (leg = the new venue; ``runner.best_entry``,
  ``runner.best_entry_live``).

Unset in production: :func:`kill_point` is then a dictionary lookup and a return.
"""

from __future__ import annotations

import os
import signal

__all__ = ["ENV", "kill_point"]

ENV = "HEDGE_RUNNER_KILL_AT"
_counts: dict[str, int] = {}


def _spec() -> tuple[str, str, str, int] | None:
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return None
    body, _, n = raw.partition("#")
    parts = (body.split(":") + ["", "", ""])[:3]
    return parts[0], parts[1], parts[2], int(n or 1)


def kill_point(point: str, leg: str = "", purpose: str = "") -> None:
    spec = _spec()
    if spec is None:
        return
    p, lg, pu, n = spec
    if p != point or (lg not in ("", "*") and lg != leg) or (pu not in ("", "*") and pu != purpose):
        return
    _counts[point] = _counts.get(point, 0) + 1
    if _counts[point] >= n:
        os.kill(os.getpid(), signal.SIGKILL)
