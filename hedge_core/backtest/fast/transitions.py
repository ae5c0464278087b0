"""What a kernel's transition code means in the engine's own terms, DERIVED from ``engine.states``.

A kernel writes one :class:`~hedge_core.backtest.fast.codes.Tr` code per group of engine
transitions it takes within an instant (an entry passes OPENING_SPOT_POSITION and
OPENING_FUTURES_HEDGE in the same instant, since the orders fill at once). Only the starting
state and the triggers are written here; every state reached is computed with
:func:`hedge_core.engine.states.next_state`, i.e. looked up in the engine's transition table, at
import. A path the table does not allow raises ``IllegalTransition`` on import, and a path must
end in the resting state the kernel then records (checked here too, against ``STATE_NAMES``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from hedge_core.backtest.fast.codes import STATE_NAMES, St, Tr
from hedge_core.engine.states import State, Trigger, next_state

__all__ = ["PATHS", "TRANSITIONS", "derive"]

_S, _T = State, Trigger

#: code -> (state before, triggers in order, the kernel's state after)
PATHS: Mapping[Tr, tuple[State, tuple[Trigger, ...], St]] = MappingProxyType({
    Tr.ENTRY: (_S.ANALYZING_MARKET, (_T.ENTRY_SIGNAL, _T.SPOT_FILLED, _T.HEDGE_FILLED), St.MONITORING),
    Tr.EXIT_REARM: (_S.MONITORING_POSITIONS, (_T.EXIT_SIGNAL, _T.REARM), St.ANALYZING),
    Tr.EXIT_DONE: (_S.MONITORING_POSITIONS, (_T.EXIT_SIGNAL, _T.FLAT), St.COMPLETED),
    Tr.FLATTEN: (_S.MONITORING_POSITIONS, (_T.FLATTEN, _T.FLAT), St.COMPLETED),
    Tr.FLATTEN_IDLE: (_S.ANALYZING_MARKET, (_T.FLATTEN, _T.FLAT), St.COMPLETED),
    Tr.REBAL: (_S.MONITORING_POSITIONS, (_T.DRIFT_EXCEEDED, _T.REBALANCED), St.MONITORING),
    Tr.REDUCE: (_S.MONITORING_POSITIONS, (_T.RISK_REDUCE, _T.REBALANCED), St.MONITORING),
    Tr.REDUCE_EXIT_REARM: (_S.MONITORING_POSITIONS, (_T.RISK_REDUCE, _T.EXIT_SIGNAL, _T.REARM), St.ANALYZING),
    Tr.REDUCE_EXIT_DONE: (_S.MONITORING_POSITIONS, (_T.RISK_REDUCE, _T.EXIT_SIGNAL, _T.FLAT), St.COMPLETED),
    Tr.REDUCE_FLATTEN: (_S.MONITORING_POSITIONS, (_T.RISK_REDUCE, _T.FLATTEN, _T.FLAT), St.COMPLETED),
    Tr.HEDGE_FAILED: (_S.ANALYZING_MARKET, (_T.ENTRY_SIGNAL, _T.SPOT_FILLED, _T.HEDGE_FAILED, _T.FLAT), St.COMPLETED),
    Tr.ENTRY_FAILED: (_S.ANALYZING_MARKET, (_T.ENTRY_SIGNAL, _T.ENTRY_FAILED), St.ANALYZING),
})


def derive(paths: Mapping[Tr, tuple[State, tuple[Trigger, ...], St]]) -> dict[Tr, tuple[tuple[str, str, str], ...]]:
    """Walk each code's triggers through the engine's table: code -> ((from, to, trigger), ...).

    Raises
    ------
    IllegalTransition
        A (state, trigger) pair the engine's table does not have.
    ValueError
        A path that does not end in the state the kernel records after it.
    """
    out: dict[Tr, tuple[tuple[str, str, str], ...]] = {}
    for code, (state, triggers, rests_in) in paths.items():
        rows = []
        for trig in triggers:
            to = next_state(state, trig)
            rows.append((str(state), str(to), str(trig)))
            state = to
        if str(state) != STATE_NAMES[rests_in]:
            raise ValueError(f"transition code {code.name} ends in {state}, but the kernel records "
                             f"{STATE_NAMES[rests_in]} after it")
        out[code] = tuple(rows)
    return out


#: code -> the engine transitions (from_state, to_state, trigger_name) it stands for, in order
TRANSITIONS: Mapping[Tr, tuple[tuple[str, str, str], ...]] = MappingProxyType(derive(PATHS))
