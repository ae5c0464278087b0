"""State table: every (state, trigger) pair, legal and illegal, against a spec written out here."""

from __future__ import annotations

import itertools

import pytest

from hedge_core.engine.states import TRANSITIONS, State, Trigger, next_state
from hedge_core.errors import IllegalTransition

# The specification, written independently of the module as "FROM TRIGGER TO" lines.
SPEC = """
ANALYZING_MARKET ENTRY_SIGNAL OPENING_SPOT_POSITION
ANALYZING_MARKET PAUSE PAUSED
ANALYZING_MARKET FLATTEN CLOSING_POSITIONS
ANALYZING_MARKET FAULT ERROR
OPENING_SPOT_POSITION SPOT_FILLED OPENING_FUTURES_HEDGE
OPENING_SPOT_POSITION ENTRY_FAILED ANALYZING_MARKET
OPENING_SPOT_POSITION FLATTEN CLOSING_POSITIONS
OPENING_SPOT_POSITION FAULT ERROR
OPENING_FUTURES_HEDGE HEDGE_FILLED MONITORING_POSITIONS
OPENING_FUTURES_HEDGE HEDGE_FAILED CLOSING_POSITIONS
OPENING_FUTURES_HEDGE FLATTEN CLOSING_POSITIONS
OPENING_FUTURES_HEDGE FAULT ERROR
MONITORING_POSITIONS DRIFT_EXCEEDED REBALANCING
MONITORING_POSITIONS REBALANCE_NOW REBALANCING
MONITORING_POSITIONS RISK_REDUCE REBALANCING
MONITORING_POSITIONS EXIT_SIGNAL CLOSING_POSITIONS
MONITORING_POSITIONS FLATTEN CLOSING_POSITIONS
MONITORING_POSITIONS PAUSE PAUSED
MONITORING_POSITIONS FAULT ERROR
REBALANCING REBALANCED MONITORING_POSITIONS
REBALANCING EXIT_SIGNAL CLOSING_POSITIONS
REBALANCING FLATTEN CLOSING_POSITIONS
REBALANCING PAUSE PAUSED
REBALANCING FAULT ERROR
CLOSING_POSITIONS FLAT COMPLETED
CLOSING_POSITIONS REARM ANALYZING_MARKET
CLOSING_POSITIONS FAULT ERROR
PAUSED RESUME_FLAT ANALYZING_MARKET
PAUSED RESUME_HEDGED MONITORING_POSITIONS
PAUSED FLATTEN CLOSING_POSITIONS
PAUSED FAULT ERROR
ERROR RESUME_FLAT ANALYZING_MARKET
ERROR RESUME_HEDGED MONITORING_POSITIONS
ERROR FLATTEN CLOSING_POSITIONS
"""
LEGAL = {(State(a), Trigger(b)): State(c) for a, b, c in (line.split() for line in SPEC.strip().splitlines())}
ALL_PAIRS = list(itertools.product(State, Trigger))


def test_table_equals_spec():
    assert dict(TRANSITIONS) == LEGAL


@pytest.mark.parametrize("state,trigger", ALL_PAIRS, ids=[f"{s}-{t}" for s, t in ALL_PAIRS])
def test_every_pair(state, trigger):
    if (state, trigger) in LEGAL:
        assert next_state(state, trigger) is LEGAL[(state, trigger)]
    else:
        with pytest.raises(IllegalTransition) as ei:
            next_state(state, trigger)
        assert f"{state} -> {trigger}" in str(ei.value)
        assert ei.value.state == str(state) and ei.value.trigger == str(trigger)


def test_completed_is_terminal_and_reachable_from_everywhere():
    assert not [k for k in TRANSITIONS if k[0] is State.COMPLETED]
    graph: dict[State, set[State]] = {}
    for (a, _), b in TRANSITIONS.items():
        graph.setdefault(a, set()).add(b)
    for s in State:
        if s is State.COMPLETED:
            continue
        seen, todo = {s}, [s]
        while todo:
            for n in graph.get(todo.pop(), ()):
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        assert State.COMPLETED in seen, s


def test_table_is_read_only():
    with pytest.raises(TypeError):
        TRANSITIONS[(State.COMPLETED, Trigger.REARM)] = State.ANALYZING_MARKET  # type: ignore[index]
