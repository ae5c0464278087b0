"""The hedge state machine: states, triggers and the one explicit transition table.

Every state change of a hedge goes through :func:`next_state`; a pair that is not in
:data:`TRANSITIONS` raises :class:`hedge_core.errors.IllegalTransition` naming ``FROM -> TRIGGER``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from hedge_core.errors import IllegalTransition

__all__ = ["ACTIVE_STATES", "TERMINAL_STATES", "TRANSITIONS", "State", "Trigger", "next_state"]


class State(StrEnum):
    ANALYZING_MARKET = "ANALYZING_MARKET"  # flat, waiting for the strategy to say "enter"
    OPENING_SPOT_POSITION = "OPENING_SPOT_POSITION"  # spot order(s) working
    OPENING_FUTURES_HEDGE = "OPENING_FUTURES_HEDGE"  # spot (partly) filled, perp hedge working
    MONITORING_POSITIONS = "MONITORING_POSITIONS"  # hedged; exits, drift and guards checked
    REBALANCING = "REBALANCING"  # orders restoring the target ratio are working
    CLOSING_POSITIONS = "CLOSING_POSITIONS"  # close / unwind orders working until flat
    COMPLETED = "COMPLETED"  # flat and done (terminal)
    ERROR = "ERROR"  # needs an operator: nothing is sent until resume or flatten
    PAUSED = "PAUSED"  # operator pause: no new risk; fills still booked, kill switch still works


class Trigger(StrEnum):
    ENTRY_SIGNAL = "ENTRY_SIGNAL"  # strategy: enter
    SPOT_FILLED = "SPOT_FILLED"  # spot orders final with something filled
    ENTRY_FAILED = "ENTRY_FAILED"  # spot orders final with nothing filled (rejected)
    HEDGE_FILLED = "HEDGE_FILLED"  # perp hedge reached its target
    HEDGE_FAILED = "HEDGE_FAILED"  # perp hedge rejected after retries: unwind the spot leg
    DRIFT_EXCEEDED = "DRIFT_EXCEEDED"  # |h - target| above threshold, or target changed
    REBALANCE_NOW = "REBALANCE_NOW"  # operator command
    RISK_REDUCE = "RISK_REDUCE"  # guard: liquidation distance / LTV band says reduce
    REBALANCED = "REBALANCED"  # rebalance orders final
    EXIT_SIGNAL = "EXIT_SIGNAL"  # profit target, stop, trailing, time, funding, basis, strategy
    FLATTEN = "FLATTEN"  # guard or operator: close everything now
    FLAT = "FLAT"  # both legs flat, nothing working
    REARM = "REARM"  # flat after a strategy exit and params say analyse again
    PAUSE = "PAUSE"
    RESUME_FLAT = "RESUME_FLAT"  # resume with a flat book
    RESUME_HEDGED = "RESUME_HEDGED"  # resume with positions on
    FAULT = "FAULT"  # unrecoverable order trouble: stop and ask an operator


S, T = State, Trigger

_TABLE: dict[tuple[State, Trigger], State] = {
    (S.ANALYZING_MARKET, T.ENTRY_SIGNAL): S.OPENING_SPOT_POSITION,
    (S.ANALYZING_MARKET, T.PAUSE): S.PAUSED,
    (S.ANALYZING_MARKET, T.FLATTEN): S.CLOSING_POSITIONS,
    (S.ANALYZING_MARKET, T.FAULT): S.ERROR,

    (S.OPENING_SPOT_POSITION, T.SPOT_FILLED): S.OPENING_FUTURES_HEDGE,
    (S.OPENING_SPOT_POSITION, T.ENTRY_FAILED): S.ANALYZING_MARKET,
    (S.OPENING_SPOT_POSITION, T.FLATTEN): S.CLOSING_POSITIONS,
    (S.OPENING_SPOT_POSITION, T.FAULT): S.ERROR,

    (S.OPENING_FUTURES_HEDGE, T.HEDGE_FILLED): S.MONITORING_POSITIONS,
    (S.OPENING_FUTURES_HEDGE, T.HEDGE_FAILED): S.CLOSING_POSITIONS,
    (S.OPENING_FUTURES_HEDGE, T.FLATTEN): S.CLOSING_POSITIONS,
    (S.OPENING_FUTURES_HEDGE, T.FAULT): S.ERROR,

    (S.MONITORING_POSITIONS, T.DRIFT_EXCEEDED): S.REBALANCING,
    (S.MONITORING_POSITIONS, T.REBALANCE_NOW): S.REBALANCING,
    (S.MONITORING_POSITIONS, T.RISK_REDUCE): S.REBALANCING,
    (S.MONITORING_POSITIONS, T.EXIT_SIGNAL): S.CLOSING_POSITIONS,
    (S.MONITORING_POSITIONS, T.FLATTEN): S.CLOSING_POSITIONS,
    (S.MONITORING_POSITIONS, T.PAUSE): S.PAUSED,
    (S.MONITORING_POSITIONS, T.FAULT): S.ERROR,

    (S.REBALANCING, T.REBALANCED): S.MONITORING_POSITIONS,
    (S.REBALANCING, T.EXIT_SIGNAL): S.CLOSING_POSITIONS,
    (S.REBALANCING, T.FLATTEN): S.CLOSING_POSITIONS,
    (S.REBALANCING, T.PAUSE): S.PAUSED,
    (S.REBALANCING, T.FAULT): S.ERROR,

    (S.CLOSING_POSITIONS, T.FLAT): S.COMPLETED,
    (S.CLOSING_POSITIONS, T.REARM): S.ANALYZING_MARKET,
    (S.CLOSING_POSITIONS, T.FAULT): S.ERROR,

    (S.PAUSED, T.RESUME_FLAT): S.ANALYZING_MARKET,
    (S.PAUSED, T.RESUME_HEDGED): S.MONITORING_POSITIONS,
    (S.PAUSED, T.FLATTEN): S.CLOSING_POSITIONS,
    (S.PAUSED, T.FAULT): S.ERROR,

    (S.ERROR, T.RESUME_FLAT): S.ANALYZING_MARKET,
    (S.ERROR, T.RESUME_HEDGED): S.MONITORING_POSITIONS,
    (S.ERROR, T.FLATTEN): S.CLOSING_POSITIONS,
}
del S, T

#: The complete transition table. Anything not listed is illegal (COMPLETED has no exits).
TRANSITIONS: Mapping[tuple[State, Trigger], State] = MappingProxyType(_TABLE)

#: States in which the hedge may hold positions or working orders.
ACTIVE_STATES = frozenset({State.OPENING_SPOT_POSITION, State.OPENING_FUTURES_HEDGE,
                           State.MONITORING_POSITIONS, State.REBALANCING, State.CLOSING_POSITIONS})
TERMINAL_STATES = frozenset({State.COMPLETED})


def next_state(state: State, trigger: Trigger) -> State:
    """The state reached from ``state`` on ``trigger``.

    Raises
    ------
    IllegalTransition
        When ``(state, trigger)`` is not in :data:`TRANSITIONS`; the message reads
        ``illegal transition FROM -> TRIGGER``.
    """
    try:
        return _TABLE[(state, trigger)]
    except KeyError:
        raise IllegalTransition(str(state), str(trigger)) from None
