"""Fast path: numba kernels of every strategy's core loop (carry, cross-venue carry, cross-asset, vol-tier loan
book, grid), for sweeps.

GUARANTEE: for every run it accepts, the fast path produces the SAME fills (instant, leg, side,
quantity, price, fee) and the same PnL components per instant as the event-driven backtester
(:func:`hedge_core.backtest.event.run_backtest`, i.e. engine ``step`` + ``HedgeDriver`` + paper
venue) to float round-off (tests on real data: ``tests/test_backtest_fastpath.py``,
``tests/test_fastpath_cross.py``, ``tests/test_fastpath_voltier.py``, ``tests/test_fastpath_grid.py``).
A fast path that disagrees is a bug, not an approximation. Everything it cannot reproduce exactly
it REFUSES with :class:`FastPathUnsupported` naming the reason, either up front
(:func:`check_supported`) or at the instant the run reaches a situation it does not model (the
caller then uses the event-driven path; :func:`run_fast_or_event` does that automatically).

Every money formula a kernel evaluates is a call into :mod:`hedge_core.money` (numba inlines
them); the order rounds, order-rate window and re-arm cooldown are ``engine.constants``. What is
left in the kernels is the control flow of the engine's states. ``docs/fast-path.md`` describes
what the kernels model, what is refused and why, and how the path is tested.

Modules:

- :mod:`.codes`: error, transition, state and kernel-kind codes (``IntEnum``) and the messages;
- :mod:`.records`: the kernels' parameters as named records (numpy structured dtypes);
- :mod:`.pack`: records, bracket arrays and tiers from params, venue model and timeline;
- :mod:`.scope`: :class:`FastPathUnsupported` and :func:`check_supported` (what is refused up front);
- :mod:`.signals`: entry signals and ratios, priced prices, liquidation checks per instant;
- :mod:`.helpers`: the ``@njit`` helpers both kernels share;
- :mod:`.hedge_kernel`: carry / xcarry / cross / grid; :mod:`.voltier_kernel`: the loan book;
- :mod:`.xvenue`: the cross-venue carry (two paper venues as the hedge kernel's venue model),
  against ``backtest.xvenue.run_cross_venue_backtest`` (``tests/test_fastpath_xcarry.py``);
- :mod:`.transitions`: each transition code as engine transitions, derived from ``engine.states``;
- :mod:`.run`: :func:`run_fast`, :func:`fast_kpis`, :func:`run_fast_or_event`;
- :mod:`.cache`: numba's on-disk cache dropped when a source the kernels compile in changes.
"""

from __future__ import annotations

from hedge_core.backtest.fast.cache import drop_if_sources_changed
from hedge_core.backtest.fast.codes import ERROR_MESSAGES, ERRORS, STATE_NAMES, Err, Kind, St, Tr
from hedge_core.backtest.fast.hedge_kernel import hedge_kernel
from hedge_core.backtest.fast.run import FastResult, fast_kpis, run_fast, run_fast_or_event
from hedge_core.backtest.fast.scope import FastPathUnsupported, check_supported
from hedge_core.backtest.fast.signals import entry_ratio, entry_signal, priced_prices
from hedge_core.backtest.fast.transitions import TRANSITIONS
from hedge_core.backtest.fast.voltier_kernel import voltier_kernel

__all__ = [
    "ERRORS",
    "ERROR_MESSAGES",
    "STATE_NAMES",
    "TRANSITIONS",
    "Err",
    "FastPathUnsupported",
    "FastResult",
    "Kind",
    "St",
    "Tr",
    "check_supported",
    "entry_ratio",
    "entry_signal",
    "fast_kpis",
    "hedge_kernel",
    "priced_prices",
    "run_fast",
    "run_fast_or_event",
    "voltier_kernel",
]

drop_if_sources_changed(hedge_kernel)
