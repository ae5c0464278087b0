"""The fast path's integer codes, as enums: refusal (error) codes, transition codes, states, kernel kinds.

The kernels are compiled by numba and write plain integers; these ``IntEnum`` members ARE those
integers (numba reads an ``IntEnum`` member as its value, a compile-time constant). Python code
turns them back into words: :data:`ERROR_MESSAGES` (every :class:`Err` has one, checked by
``tests/test_fastpath_codes.py``), :data:`STATE_NAMES` and ``transitions.TRANSITIONS``.
"""

from __future__ import annotations

from enum import IntEnum
from types import MappingProxyType

__all__ = ["DEFERS_EXITS", "ERRORS", "ERROR_MESSAGES", "HEDGE_KINDS", "KERNELS", "NO_TS", "ORDER_RING", "STATE_NAMES",
           "Z99", "Err", "Kind", "St", "Tr"]


class Err(IntEnum):
    """Why a kernel stopped (0: it did not). The run is then refused with the instant."""

    NONE = 0
    LIQ_REDUCE = 1
    SPOT_REBALANCE = 2
    PAPER_LIQUIDATION = 3
    SPOT_BELOW_MINIMUMS = 4
    HEDGE_BELOW_MINIMUMS = 5
    SPOT_FUNDS = 6
    PERP_MARGIN = 7
    POSITION_LIMIT = 8
    DUST_AT_CLOSE = 9
    BUFFER_FULL = 10  # internal: the caller runs again with room for every fill
    ORDER_RATE = 11
    REBALANCE_AT_FUNDING = 12
    REDUCE_ONLY_CAPPED = 13
    FIRST_LEG_LEVERAGE = 14  # two perp legs: the first venue would refuse the leverage chosen from the second's table
    FIRST_LEG_MARGIN = 15  # two perp legs: the first venue's futures wallet cannot margin the first leg


#: what each refusal means (the text of :class:`~hedge_core.backtest.fast.FastPathUnsupported`)
ERROR_MESSAGES: MappingProxyType[Err, str] = MappingProxyType({
    Err.LIQ_REDUCE: ("a liquidation-distance REDUCE guard fired where the kernel does not model it (the hedge and "
                     "pair kernels: needing more order rounds than the engine's phase)"),
    Err.SPOT_REBALANCE: "a rebalance became due (rebalancing is not modelled)",
    Err.PAPER_LIQUIDATION: "the paper venue would liquidate the perp (or came within 1 % of it)",
    Err.SPOT_BELOW_MINIMUMS: "the spot entry order is below the venue minimums",
    Err.HEDGE_BELOW_MINIMUMS: "the perp hedge is below the venue minimums (the engine would unwind)",
    Err.SPOT_FUNDS: "the spot wallet cannot pay the entry (the venue would reject it)",
    Err.PERP_MARGIN: ("the perp wallet cannot margin the hedge (the venue would reject it): a REDUCE's order, the "
                      "pair kernel's rebalance orders, a margin within 1e-7 of the venue's limit, or an entry hedge with "
                      "execution.unwind_on_hedge_failure off"),
    Err.POSITION_LIMIT: "a position limit guard would hold an order",
    Err.DUST_AT_CLOSE: "a leg is below the venue minimums at close (dust would stay)",
    Err.BUFFER_FULL: "fill buffer overflow",
    Err.ORDER_RATE: "the order-rate guard would hold an order",
    Err.REBALANCE_AT_FUNDING: "a rebalance became due at a funding instant without a market update",
    Err.REDUCE_ONLY_CAPPED: "a reduce-only rebalance order larger than the position (the venue would cap it)",
    Err.FIRST_LEG_LEVERAGE: ("the first perp venue would refuse the leverage chosen from the second venue's table "
                             "(above its instrument's maximum, or its open position above the cap at that leverage)"),
    Err.FIRST_LEG_MARGIN: ("the first perp venue's futures wallet cannot margin the first leg (the venue would reject "
                           "it): a margin within 1e-7 of the venue's limit"),
})

#: the messages by plain int (the form older callers and tests index)
ERRORS: MappingProxyType[int, str] = MappingProxyType({int(k): v for k, v in ERROR_MESSAGES.items()})


class Tr(IntEnum):
    """A group of engine transitions a kernel took at one instant (``transitions.TRANSITIONS``)."""

    ENTRY = 1  # enter: spot, then the hedge
    EXIT_REARM = 2  # strategy exit, then analyse again
    EXIT_DONE = 3  # strategy exit, done
    FLATTEN = 4  # guard flatten from MONITORING
    REBAL = 5  # drift rebalance
    FLATTEN_IDLE = 6  # guard flatten from ANALYZING (loan book at EMERGENCY)
    REDUCE = 7  # liquidation-distance REDUCE guard: both legs cut by liq_reduce_fraction (hedge and pair kernels)
    REDUCE_EXIT_REARM = 8  # a REDUCE, then a generic exit from REBALANCING at the same instant, analyse again
    REDUCE_EXIT_DONE = 9  # a REDUCE, then a generic exit from REBALANCING at the same instant, done
    REDUCE_FLATTEN = 10  # a REDUCE, then a guard flatten from REBALANCING at the same instant
    HEDGE_FAILED = 11  # entry: spot filled, the perp hedge rejected after its retries, the spot unwound, done
    ENTRY_FAILED = 12  # entry: the first order rejected after its retries, nothing filled; analyse after a cooldown


class St(IntEnum):
    """The kernels' states per instant (the engine's resting states; the others pass within an instant)."""

    ANALYZING = 0
    MONITORING = 1
    COMPLETED = 2


#: engine state name of each :class:`St` (index = code)
STATE_NAMES: tuple[str, ...] = ("ANALYZING_MARKET", "MONITORING_POSITIONS", "COMPLETED")


class Kind(IntEnum):
    """Which strategy the hedge kernel runs (``HedgeParams.kind``)."""

    CARRY = 0
    CROSS = 1
    GRID = 2


#: strategy name -> the hedge kernel's branch: the strategies the ``"hedge"`` kernel models (the
#: cross-venue carry is the carry's branch with its ``exit_below_apr`` exit, the record's field)
HEDGE_KINDS: MappingProxyType[str, Kind] = MappingProxyType({"carry": Kind.CARRY, "xcarry": Kind.CARRY,
                                                             "cross": Kind.CROSS, "grid": Kind.GRID})
#: kernel name (a strategy's ``fast_kernel``) -> the strategies whose decisions that kernel reproduces
KERNELS: MappingProxyType[str, frozenset[str]] = MappingProxyType({"hedge": frozenset(HEDGE_KINDS),
                                                                   "voltier": frozenset({"voltier"})})

#: the kernels that model ``exit.defer_within_s_of_funding`` (``engine.exits.defer_exit``): the hedge kernel, and
#: the pair kernel, which runs a ``"hedge"`` strategy (xcarry with two perp legs); the loan book's refuses it
DEFERS_EXITS: frozenset[str] = frozenset({"hedge"})

Z99 = 2.3263478740408408  # engine.strategies.grid.Z99 (one-sided 99 % normal quantile)
NO_TS = -(2 ** 62)  # "never" as an int64 ns instant
# the kernels keep the times of the last ORDER_RING orders (``order_t``) for the order-rate guard; a limit above it
# would never be reached in a kernel while the engine holds the order (scope.check_supported refuses it)
ORDER_RING = 64
