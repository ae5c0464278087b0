"""Strategy registry: ``params.strategy`` -> its pure ``decide`` (and optional extra guards)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hedge_core.errors import InvalidInput

__all__ = ["STRATEGIES", "Strategy", "strategy_for"]


@dataclass(frozen=True, slots=True)
class Strategy:
    name: str
    decide: Callable[..., Any]  # (ctx, market, analytics, params) -> Intent
    guards: Callable[..., list] | None = None  # (ctx, ts, params) -> list[guards.Verdict]


def _registry() -> dict[str, Strategy]:
    from hedge_core.engine.strategies import carry
    reg = {"carry": Strategy("carry", carry.decide)}
    try:
        from hedge_core.engine.strategies import cross, grid, voltier
    except ImportError:  # pragma: no cover - during incremental development only
        return reg
    reg["cross"] = Strategy("cross", cross.decide)
    reg["voltier"] = Strategy("voltier", voltier.decide, voltier.ltv_guards)
    reg["grid"] = Strategy("grid", grid.decide, grid.grid_guards)
    from hedge_core.engine.strategies import xcarry  # cross-venue carry (docs/cross-venue.md)
    reg["xcarry"] = Strategy("xcarry", xcarry.decide)
    return reg


STRATEGIES: dict[str, Strategy] = {}


def strategy_for(params: Any) -> Strategy:
    """The strategy selected by ``params.strategy``."""
    if not STRATEGIES:
        STRATEGIES.update(_registry())
    name = getattr(params, "strategy", None)
    try:
        return STRATEGIES[name]
    except KeyError:
        raise InvalidInput("params.strategy", name, f"one of {sorted(STRATEGIES)}") from None
