"""Promotion of a parameter set version: draft -> paper -> live, recorded in ``<name>/status.json``.

Live needs a completed paper run of the same version; the runs come from an injected reader
(``runs_reader``), so this module reads no runner: the CLI passes one that asks the runner's API when
it is up, :func:`store_runs_reader` reads the store.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hedge_core.errors import InvalidInput
from hedge_core.params.store import (
    STATUSES,
    ParamSet,
    _read_status,
    _status_path,
    _try_index,
    load,
    status_of,
)

__all__ = ["PromotionGate", "RunsReader", "completed_paper_runs", "promote", "status_of", "store_runs_reader"]


@dataclass(frozen=True)
class PromotionGate:
    """Rules of :func:`promote`.

    ``require_paper_run``: live needs a COMPLETED paper run (``hedge_runs``: mode paper, state
    COMPLETED, ended) of the same name and version. ``min_paper_hours``: and that run lasted at
    least this long (data time). ``require_confirm``: live needs ``confirm=True``.
    """

    require_paper_run: bool = True
    min_paper_hours: float = 0.0
    require_confirm: bool = True


RunsReader = Callable[[str, int], pd.DataFrame]


def completed_paper_runs(runs: pd.DataFrame, name: str, version: int, min_hours: float = 0.0) -> pd.DataFrame:
    """Rows of ``hedge_runs`` that count as a completed paper run of ``name@version``."""
    if runs is None or len(runs) == 0:
        return pd.DataFrame()
    r = runs[(runs["mode"] == "paper") & (runs["params_name"] == name)
             & (runs["params_version"].astype("float64") == float(version)) & (runs["state"] == "COMPLETED")
             & runs["ended_at"].notna()]
    if min_hours > 0 and len(r):
        dur = (pd.to_datetime(r["ended_at"], utc=True) - pd.to_datetime(r["started_at"], utc=True)).dt.total_seconds()
        r = r[dur >= min_hours * 3600]
    return r


def store_runs_reader(db: str | os.PathLike[str] | None = None) -> RunsReader:
    """A reader of the store's ``hedge_runs`` (the database must be free: the runner holds it while it runs;
    the CLI passes a reader that asks the runner's API then)."""

    def read(name: str, version: int) -> pd.DataFrame:
        from hedge_core.store import Store

        return Store(db, hold=False).read_table("hedge_runs", params_name=name)

    return read


def promote(name: str, version: int, to: str, *, confirm: bool = False, gate: PromotionGate = PromotionGate(),
            runs_reader: RunsReader | None = None, by: str = "cli", root: str | os.PathLike[str] | None = None,
            db: str | os.PathLike[str] | None = None, now: pd.Timestamp | None = None) -> ParamSet:
    """Move ``name@version`` up one step: draft -> paper -> live.

    Raises
    ------
    InvalidInput
        Unknown target, a skipped step, live without a completed paper run of this version (when
        the gate asks for one) or without ``confirm=True``. Nothing is written then.
    """
    if to not in STATUSES[1:]:
        raise InvalidInput("to", to, "'paper' or 'live'")
    ps = load(name, version, root=root)
    cur = status_of(name, ps.version, root=root)
    order = {s: i for i, s in enumerate(STATUSES)}
    if order[to] <= order[cur]:
        raise InvalidInput("to", to, f"a status above the current {cur!r} of {ps.ref}")
    if order[to] - order[cur] > 1:
        raise InvalidInput("to", to, f"'paper' first: {ps.ref} is {cur!r} (draft -> paper -> live)")
    evidence: dict[str, Any] = {}
    if to == "live":
        if gate.require_paper_run:
            reader = runs_reader or store_runs_reader(db)
            runs = completed_paper_runs(reader(name, ps.version), name, ps.version, gate.min_paper_hours)
            if len(runs) == 0:
                hours = f" of at least {gate.min_paper_hours:g} h" if gate.min_paper_hours else ""
                raise InvalidInput("paper_run", None, f"a completed paper run{hours} of {ps.ref} before live "
                                   "(hedge start --params {0} --mode paper, then hedge stop ID)".format(ps.ref))
            evidence["paper_runs"] = [str(h) for h in runs["hedge_id"]]
        if gate.require_confirm and confirm is not True:
            raise InvalidInput("confirm", confirm, "True (--yes): live promotion lets this set trade real money")
    t = pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC")
    doc = _read_status(name, root)
    entry = doc.get(str(ps.version), {"status": "draft", "history": []})
    entry["status"] = to
    entry.setdefault("history", []).append({"from": cur, "to": to, "at": t.isoformat(), "by": by, **evidence})
    doc[str(ps.version)] = entry
    p = _status_path(name, root)
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, p)
    out = ParamSet(ps.name, ps.version, ps.params, ps.provenance, ps.path, status=to)
    return ParamSet(out.name, out.version, out.params, out.provenance, out.path, status=to,
                    indexed=_try_index([out], db))


