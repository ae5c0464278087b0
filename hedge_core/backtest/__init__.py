"""The backtest wing: one replay timeline, the event-driven path, the fast kernels, KPIs, sweeps, Monte Carlo, its CLI.

- :mod:`.timeline`: market history and the one replay timeline (cut at the last price bar);
- :mod:`.event`: the event-driven backtest through the same engine and paper venue as paper/live;
- :mod:`.fast`: numba kernels for the strategies that have one (tested for parity and against references);
- :mod:`.kpis`: KPIs from a run's equity, fills and funding;
- :mod:`.sweep` (local pool and Dask), :mod:`.montecarlo`, :mod:`.cli` (``hedge backtest``).

The names of :mod:`.event` are re-exported here (``from hedge_core.backtest.event import run_backtest``).
They load on first use (PEP 562), so importing :mod:`.cli` to build ``hedge --help`` does not import the
engine, pandas or the store.
"""

from hedge_core.lazy_exports import reexport

__getattr__ = reexport(__name__, __file__, "hedge_core.backtest.event")
