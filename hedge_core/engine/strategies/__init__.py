"""Strategy registry: ``params.strategy`` -> its :class:`~hedge_core.engine.strategies.protocol.Strategy`.

The registry holds strategy objects (the contract in :mod:`.protocol`); nothing outside a
strategy's own module tests ``params.strategy == "..."``: it asks :func:`strategy_for`.
:func:`register` adds one (``docs/strategies.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hedge_core.engine.strategies.protocol import Strategy, StrategyBase
from hedge_core.errors import InvalidInput

if TYPE_CHECKING:
    from hedge_core.params.models import StrategyParamsBase

__all__ = ["STRATEGIES", "Strategy", "StrategyBase", "register", "strategy_for", "unregister"]


def _builtin() -> dict[str, Strategy[Any]]:
    from hedge_core.engine.strategies import carry, cross, grid, voltier, xcarry

    return {s.name: s for s in (carry.STRATEGY, cross.STRATEGY, voltier.STRATEGY, grid.STRATEGY, xcarry.STRATEGY)}


STRATEGIES: dict[str, Strategy[Any]] = {}


def _ensure() -> dict[str, Strategy[Any]]:
    if not STRATEGIES:
        STRATEGIES.update(_builtin())
    return STRATEGIES


def register(strategy: Strategy[Any], *, replace: bool = False) -> Strategy[Any]:
    """Make ``strategy`` selectable by ``params.strategy == strategy.name``.

    Raises
    ------
    InvalidInput
        ``strategy`` does not satisfy the :class:`Strategy` protocol, has no name, or its name is
        taken (unless ``replace``).
    """
    if not isinstance(strategy, Strategy):
        raise InvalidInput("strategy", type(strategy).__name__, "an object implementing engine.strategies.Strategy")
    reg = _ensure()
    name = strategy.name
    if not name or not isinstance(name, str):
        raise InvalidInput("strategy.name", name, "a non-empty string (the params.strategy value)")
    if name in reg and not replace:
        raise InvalidInput("strategy.name", name, f"a name not registered yet (registered: {sorted(reg)})")
    reg[name] = strategy
    return strategy


def unregister(name: str) -> None:
    """Remove a registered strategy (built-ins come back on the next lookup only if the registry empties)."""
    _ensure().pop(name, None)


def strategy_for(params: StrategyParamsBase) -> Strategy[Any]:
    """The strategy selected by ``params.strategy``.

    Raises
    ------
    InvalidInput
        No strategy of that name is registered.
    """
    reg = STRATEGIES or _ensure()
    name = getattr(params, "strategy", None)
    try:
        return reg[name]
    except KeyError:
        raise InvalidInput("params.strategy", name, f"one of {sorted(reg)}") from None
