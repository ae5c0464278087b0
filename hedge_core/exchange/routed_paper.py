"""Two paper venues behind one :class:`~hedge_core.exchange.routed.RoutedAdapter`, for the runner.

:class:`RoutedPaper` adds what the runner asks of a paper adapter (``core`` for the replay clock,
``state_path``/``save`` for the state files, ``save_on_apply``) to the routed pair. Each venue keeps
its OWN state file (``<hedge id>@<venue>.json``), saved after each of its orders; a SIGKILL leaves
each venue as it was, and a restart resumes both from their files. Nothing moves between them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.paper.core import PaperCore
from hedge_core.exchange.routed import RoutedAdapter

__all__ = ["RoutedPaper", "venue_state_path"]


def venue_state_path(folder: str | Path, hedge_id: str, venue: str) -> Path:
    """The state file of one venue of a two-venue paper hedge: ``<folder>/<hedge id>@<venue>.json``."""
    return Path(folder) / f"{hedge_id}@{venue}.json"


class RoutedPaper(RoutedAdapter):
    """Spot leg on paper venue A, perp leg on paper venue B (see the module docstring)."""

    spot: PaperExchange
    perp: PaperExchange

    def __init__(self, spot: PaperExchange, perp: PaperExchange) -> None:
        super().__init__(spot, perp)

    @property
    def core(self) -> PaperCore:
        """The perp venue's simulator: its clock (``now``) is where a replay resumes (it receives
        every perp bar and every funding settlement; the spot venue's bars are the same instants)."""
        return self.perp.core

    @property
    def state_path(self) -> Path | None:
        return self.perp.state_path

    @property
    def save_on_apply(self) -> bool:
        return self.spot.save_on_apply and self.perp.save_on_apply

    @save_on_apply.setter
    def save_on_apply(self, value: bool) -> None:
        self.spot.save_on_apply = self.perp.save_on_apply = bool(value)

    def save(self, path: Any = None) -> None:
        """Save both venues' states, each to its own file (``path`` is not used: two files)."""
        self.spot.save()
        self.perp.save()
