"""A refused start changes nothing in the paper venues' state files.

A paper hedge's venues keep their state in ``<home>/paper/<hedge id>.json`` (one venue) or
``<home>/paper/<hedge id>@<venue>.json`` (each venue of a two-venue hedge,
:func:`hedge_core.exchange.routed_paper.venue_state_path`). A paper venue writes its file as soon as it is
built (``PaperExchange.open``) and after every mutating call, the preflight's margin mode and leverage
included; a venue that finds its file resumes from it. So a start refused by the preflight (or a dry run)
would leave files behind, and a retry with the same hedge id would load them: the old balances, not the
retry's.

:class:`PaperFilesGuard` takes a copy of this hedge's state files before the start builds its venues;
:meth:`PaperFilesGuard.restore` puts them back exactly (a file that did not exist is removed, one that
changed gets its old bytes back). The runner restores on a refusal and after a dry run; a started hedge
keeps its files. Only the hedge's own files are looked at (named by hedge id and the venues the start may
use); nothing else in the folder is touched.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hedge_core.runner.hedge_spec import HedgeSpec

__all__ = ["PaperFilesGuard", "start_guard", "state_files"]


def _candidates(folder: Path, hedge_id: str, venues: Iterable[str]) -> list[Path]:
    from hedge_core.exchange.routed_paper import venue_state_path

    return [folder / f"{hedge_id}.json"] + [venue_state_path(folder, hedge_id, v) for v in sorted(set(venues))]


def state_files(folder: str | Path, hedge_id: str, venues: Iterable[str]) -> list[Path]:
    """The state files of hedge ``hedge_id`` that exist in ``folder``: ``<id>.json`` and ``<id>@<v>.json``
    for each venue ``v`` of ``venues`` (lowercase ccxt ids)."""
    return [p for p in _candidates(Path(folder), hedge_id, venues) if p.exists()]


class PaperFilesGuard:
    """The bytes of one hedge's paper state files at construction, and :meth:`restore` to put them back.

    Parameters
    ----------
    folder : path
        The runner's paper folder (``<home>/paper``).
    hedge_id : str
        The hedge being started.
    venues : iterable of str
        Every venue the start may build a paper venue of (both legs, and each venue a best-execution
        choice may fall back to).
    """

    def __init__(self, folder: str | Path, hedge_id: str, venues: Iterable[str]) -> None:
        self.paths = _candidates(Path(folder), hedge_id, venues)
        self.before = {p: p.read_bytes() for p in self.paths if p.exists()}

    def restore(self) -> None:
        """Remove the files written since construction and give changed ones back their old bytes
        (atomically: temp file + rename)."""
        for p in self.paths:
            old = self.before.get(p)
            if old is None:
                p.unlink(missing_ok=True)
            elif not p.exists() or p.read_bytes() != old:
                tmp = p.with_name(f".{p.name}.restore.tmp")
                tmp.write_bytes(old)
                os.replace(tmp, p)


def start_guard(folder: str | Path, spec: HedgeSpec) -> PaperFilesGuard | None:
    """The guard of one start of ``spec`` (None unless paper: live and recommend write no state file): the
    files of both legs' venues and of every venue a best-execution choice ranked."""
    if spec.mode != "paper":
        return None
    ranking = (spec.perp_venue_choice or {}).get("ranking", []) or []
    return PaperFilesGuard(folder, spec.hedge_id, {*spec.leg_venues, *(str(s["venue"]) for s in ranking)})
