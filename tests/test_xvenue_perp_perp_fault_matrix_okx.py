"""The two-perp-leg fault matrix (tests/test_xvenue_perp_perp_fault_matrix.py, docs/live-fault-matrix.md "Two perp
legs") with **Bybit as the first venue and OKX as the second**, and a **kill -9** row, each through REAL runner
processes and REAL ccxt against one simulator per venue. Its own file so that pytest-xdist (``--dist loadfile``)
runs it beside the main pair matrix.

- :func:`test_fault_on_bybit_first_okx_second`: the rows where the venue's own way of answering matters for the
  SECOND leg, on Bybit long (A) + OKX short (B), each armed on A at entry, on B at the hedge, on A's rebalance order
  while B's short is open and on A's close (the main file's :func:`run_fault_case`, same phases and invariants):
  the lost answer (-1007 / timeout: Bybit, no answer before the client's timeout; OKX, 50004 after the hang; never
  executed), the late execution (a 503 whose order executes 0.6 s later within the request's window, OKX's
  ``expTime``: found by client id, never re-sent), the rate limit that escalates (Bybit 10006 -> 10018; OKX
  50011 -> 50061, naming no wait; no order may be journaled as refused) and the margin refusal (Bybit 110007,
  OKX 51008). The ADL row is not repeated here: OKX's ADL bills (type 9) are the OKX + Binance row's, Bybit's ADL
  records (``execType`` AdlTrade) the Binance + Bybit row's.
- :func:`test_kill_9_between_the_legs_and_at_the_second_legs_intent_and_send`: one pair (Bybit A, OKX B), four
  runner processes: the first SIGKILLs itself when the first leg's fill is journaled (``fill_journaled:spot:entry``,
  before the second leg's order), the second recovers it (policy resume) and SIGKILLs itself when the second
  leg's intent is journaled (``intent_journaled:perp``, before the order is sent: the recovered pair is
  MONITORING_POSITIONS with the first leg naked, so the second leg's order is a rebalance), the third recovers it
  and SIGKILLs itself once OKX took the second leg's order (``order_sent:perp``: executed there, its answer not
  journaled), the fourth recovers it (found at OKX by client id, never re-sent) and the pair is hedged. Then a
  funding settlement at both venues and the close, with the same invariants on both simulators.

Cells print in the matrix table at the end of the session (tests/conftest.py) as ``bybit+okx``.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tests.support import fault_matrix as fm
from tests.support.pair_fault_case import (A_CLOSE, A_ENTRY, B_HEDGE, HID, MARGIN, PHASE_S, PairCase, hedged,
                                           run_fault_case, start, wait, when)

pytestmark = [pytest.mark.timeout(120), pytest.mark.e2e]  # real runner processes
FIRST, SECOND = "bybit", "okx"
ROWS = ("-1007 / timeout", "late execution", fm.ESCALATION, MARGIN)
KILL_ROW = "kill -9 (between the legs; B's intent, send)"
# the recovered pair is MONITORING_POSITIONS with the first leg naked: its second-leg order is a rebalance
# (purpose "rebalance"), so the intent point names the leg only
KILL_BETWEEN, KILL_INTENT = "fill_journaled:spot:entry", "intent_journaled:perp"
KILL_SENT = "order_sent:perp"  # OKX took the second leg's order (it executed), its answer is not journaled


@pytest.mark.parametrize("fault", ROWS)
def test_fault_on_bybit_first_okx_second(tmp_path, fault):
    run_fault_case(tmp_path, FIRST, SECOND, fault)


def killed(case: PairCase, kill_at: str, wait_answer: bool) -> Any:
    """A runner process of ``case`` that SIGKILLs itself at ``kill_at``; its client (None with ``wait_answer``
    False: a recovering runner may reach the point before it would answer)."""
    case.proc = case.env.start_runner({**case.extra, "HEDGE_RUNNER_KILL_AT": kill_at}, wait=wait_answer)
    return case.env.client(case.proc) if wait_answer else None


def died(case: PairCase) -> bool:
    """The runner SIGKILLed itself within PHASE_S; one that did not is ended here (the next one needs the db)."""
    try:
        return case.proc.wait(PHASE_S) == -9
    except subprocess.TimeoutExpired:
        case.proc.kill()
        case.proc.wait(10)
        return False


def test_kill_9_between_the_legs_and_at_the_second_legs_intent_and_send(tmp_path):
    case = PairCase(tmp_path, FIRST, SECOND, KILL_ROW)
    a, b = case.a, case.b
    entry, hedge = case.problems.setdefault(A_ENTRY, []), case.problems.setdefault(B_HEDGE, [])
    try:
        seen: list[list[tuple[str, float]]] = []  # A's orders when B's first order request arrived
        when(b, lambda: seen.append(a.orders()))
        c = killed(case, KILL_BETWEEN, True)
        try:
            start(c, a, b)
        except Exception:  # noqa: BLE001 - the runner may die while answering; the venues tell what happened
            pass
        if not died(case):
            entry.append(f"the runner did not die at {KILL_BETWEEN}: {case.env.last_log(600)}")
        first = a.orders()
        if len(first) != 1 or not first[0][1] > 0 or b.orders() or b.perp() != 0:
            entry.append(f"killed between the legs: want one executed order at A, nothing at B; A {first}, "
                         f"B {b.orders()} {b.perp()}")
        killed(case, KILL_INTENT, False)  # recovers the first leg, dies with the hedge's intent journaled
        if not died(case):
            hedge.append(f"the recovering runner did not die at {KILL_INTENT}: {case.env.last_log(600)}")
        if a.orders() != first or b.orders():  # an intent journaled, nothing sent yet
            hedge.append(f"at B's intent: A re-sent or B sent: A {a.orders()}, B {b.orders()}")
        killed(case, KILL_SENT, False)  # recovers again, dies once OKX took the second leg's order
        if not died(case):
            hedge.append(f"the recovering runner did not die at {KILL_SENT}: {case.env.last_log(600)}")
        sent = b.orders()
        if a.orders() != first or len(sent) != 1 or not sent[0][1] > 0:
            hedge.append(f"at B's send: want A's one order and one executed order at B: A {a.orders()}, B {sent}")
        case.proc = case.env.start_runner(case.extra)
        c = case.env.client(case.proc)
        ok = wait(lambda: hedged(c, case)) and case.funding(c)
        if case.check(c, (A_ENTRY, B_HEDGE), ok, "entry + hedge through three kills (+ funding)"):
            if a.orders() != first:
                entry.append(f"the first leg was sent again after the kills: {first} then {a.orders()}")
            if b.orders() != sent or sorted(seen[0] if seen else []) != sorted(first):
                hedge.append(f"want B's one order (found at OKX by its client id, never re-sent), asked once A's "
                             f"leg was known: B {sent} then {b.orders()}, A then {seen}")
            c.stop(HID)
            ok = wait(lambda: c.hedge(HID).get("state") == "COMPLETED") and a.perp() == 0 and b.perp() == 0
            case.check(c, (A_CLOSE,), ok, "close after the kills", "COMPLETED")
        for s in (A_ENTRY, B_HEDGE):  # the columns killed in; rebalance / close ran without a kill: not printed
            fm.record(f"{FIRST}+{SECOND}", KILL_ROW, s, "FAILED" if case.problems[s] else "holding")
    finally:
        case.close()
    assert not case.failures(), case.failures()
