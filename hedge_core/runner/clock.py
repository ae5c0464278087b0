"""One clock per hedge (ARCHITECTURE.md principle 10): which time a hedge's rows carry.

Every row a hedge writes (transitions, orders' ``intent_ts``/``updated_ts``, fills, funding,
position snapshots, guard firings, alerts) carries the hedge's clock:

- ``live`` (live hedges and paper hedges on live market data): the VENUE's time. ccxt measures
  the venue's clock offset when markets load (``adjustForTimeDifference``: ``options
  ["timeDifference"]`` = local ms - server ms); :func:`venue_now` is the wall clock corrected by
  it (the wall clock itself when the adapter has measured nothing, e.g. the paper venue);
- ``replay``: the replay time, i.e. the known instant of the last replayed event (never the wall
  clock, whatever the replay speed).

Wall-clock time appears only where it means "when the operator did this" (``hedge_runs.
started_at``/``ended_at``: when the operator started/the run ended, on the runner's machine).

:func:`replay_progress` is the pure arithmetic of a replay's progress bar (fraction, ETA).
:func:`resolve_paper_feed` decides a paper hedge's feed when the operator did not name one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["ReplayProgress", "clock_text", "offline", "replay_progress", "resolve_paper_feed", "venue_now",
           "venue_offset_ms"]


def _wall() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def venue_offset_ms(adapter: Any) -> float:
    """Venue clock minus local clock in milliseconds (+: the venue is ahead), as ccxt measured it
    (``timeDifference``); 0.0 when unknown. A wrapper's ``market_data``/``inner`` is looked through."""
    seen = 0
    while adapter is not None and seen < 4:
        ex = getattr(adapter, "_ex", None) or getattr(adapter, "exchange", None)
        opts = getattr(ex, "options", None)
        if isinstance(opts, Mapping) and opts.get("timeDifference") is not None:
            try:
                diff = float(opts["timeDifference"])
            except (TypeError, ValueError):
                return 0.0
            return -diff if math.isfinite(diff) else 0.0
        adapter = getattr(adapter, "market_data", None) or getattr(adapter, "inner", None)
        seen += 1
    return 0.0


def venue_now(adapter: Any = None) -> pd.Timestamp:
    """The venue's time now (UTC): the wall clock + the venue offset ccxt measured (see module doc)."""
    off = venue_offset_ms(adapter) if adapter is not None else 0.0
    now = _wall()
    return now + pd.Timedelta(milliseconds=off) if off else now


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    """Where a replay is: ``now`` (replay time), ``fraction`` of ``[start, end)`` done (0..1) and
    ``eta_s`` (wall seconds left at the pace so far; None before the first replayed event)."""

    start: pd.Timestamp
    end: pd.Timestamp
    now: pd.Timestamp
    fraction: float
    eta_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"start": str(self.start), "end": str(self.end), "now": str(self.now),
                "fraction": self.fraction, "eta_s": self.eta_s}


def replay_progress(start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp | None, wall_elapsed_s: float,
                    *, began: pd.Timestamp | None = None) -> ReplayProgress:
    """Progress of a replay over ``[start, end)``.

    Parameters
    ----------
    start, end : pd.Timestamp
        The replay window (UTC).
    now : pd.Timestamp or None
        Replay time reached (None: nothing replayed yet -> ``start``).
    wall_elapsed_s : float
        Wall seconds since the replay's first event was read (its pace).
    began : pd.Timestamp, optional
        Replay time the pace is measured from (a resumed replay starts mid-window); default ``start``.

    Returns
    -------
    ReplayProgress
        ``fraction`` in [0, 1]; ``eta_s`` = elapsed x (left / done) in wall seconds, None when
        nothing is done yet, 0 at the end.
    """
    span = (end - start).total_seconds()
    t = start if now is None else min(max(now, start), end)
    frac = 1.0 if span <= 0 else (t - start).total_seconds() / span
    b = start if began is None else min(max(began, start), end)
    done = (t - b).total_seconds()
    left = (end - t).total_seconds()
    if left <= 0:
        eta: float | None = 0.0
    elif done <= 0 or now is None:
        eta = None
    else:
        eta = max(wall_elapsed_s, 0.0) * left / done
    return ReplayProgress(start, end, t, min(max(frac, 0.0), 1.0), eta)


def offline(env: Mapping[str, str] | None = None) -> bool:
    """``HEDGE_OFFLINE`` set to anything but ``""``/``0``/``false``: no venue is asked for anything."""
    v = (env if env is not None else os.environ).get("HEDGE_OFFLINE", "")
    return v.strip().lower() not in ("", "0", "false", "no")


def resolve_paper_feed(request: Mapping[str, Any], *, is_offline: bool, reachable: bool | None) -> tuple[str, str]:
    """The feed of a paper hedge whose request names none, and why (for the start answer).

    ``replay`` when the request asks for one (a ``speed``, an ``end`` or a ``data_venue``: settings
    only a replay of stored data has), when offline, or when the venue did not answer; else ``bars`` (live market data:
    websockets where the venue offers them, REST polling otherwise). ``reachable`` None: not asked.
    """
    if any(request.get(k) is not None for k in ("speed", "end", "data_venue")):
        return "replay", "replay asked for (speed/end/data_venue given)"
    if is_offline:
        return "replay", "offline (HEDGE_OFFLINE): replay of stored history"
    if not reachable:
        return "replay", "venue not reachable: replay of stored history"
    return "bars", "venue reachable: paper on live market data"


def _eta_text(eta_s: float | None) -> str:
    if eta_s is None:
        return "ETA ?"
    s = int(round(eta_s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"ETA {h}h{m:02d}m" if h else (f"ETA {m}m{sec:02d}s" if m else f"ETA {sec}s")


def clock_text(summary: Mapping[str, Any]) -> str:
    """One line for tables: ``live`` or ``replay 2024-01-03 05:00 (12.5 %, ETA 2m41s)`` from a
    hedge summary (``HedgeTask.summary()``); ``replay preparing`` while its history is read,
    ``replay stopped at ...`` once it stopped (window done, hedge completed or failed)."""
    kind = str(summary.get("clock") or "")
    rp = summary.get("replay")
    if kind != "replay" or not isinstance(rp, Mapping):
        return kind or "-"
    if rp.get("phase") in ("starting", "preparing"):
        return "replay preparing (reading history)"
    now = pd.Timestamp(rp["now"]).strftime("%Y-%m-%d %H:%M")
    frac = float(rp.get("fraction") or 0.0)
    if rp.get("phase") == "done":
        return f"replay stopped at {now} ({100 * frac:.1f} %)"
    return f"replay {now} ({100 * frac:.1f} %, {_eta_text(rp.get('eta_s'))})"
