"""Lazy numba: short CLI runs never import it, and each lazy kernel's Python form equals its compiled form."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hedge_core.analytics import _kernels
from hedge_core.backtest import kpis
from hedge_core.lazyjit import LazyKernel, lazy_njit

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numba", "statsmodels", "scipy", "plotly", "streamlit", "dask", "distributed", "ccxt")


def _imported_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# runs a Python subprocess (a fresh interpreter): integration, not the in-process fast tier
@pytest.mark.integration
def test_cli_entry_points_import_no_heavy_library():
    """`hedge` and `hedge backtest`'s module load without numba, statsmodels, scipy, plotly, streamlit, dask, ccxt."""
    assert _imported_after("import hedge_core.cli, hedge_core.backtest.cli, hedge_core.backtest.event") == []


# runs a Python subprocess (a fresh interpreter): integration, not the in-process fast tier
@pytest.mark.integration
def test_a_short_backtest_runs_without_numba_or_statsmodels():
    """A 10-day hourly event-driven backtest (timeline, analytics inputs, replay, KPIs) stays plain Python."""
    code = (
        "import pandas as pd\n"
        "from hedge_core.backtest.event import run_backtest\n"
        "from hedge_core.backtest.timeline import market_from_frames\n"
        "from hedge_core.data.demo import generate_demo_market\n"
        "from hedge_core.params.models import CarryParams\n"
        "m = market_from_frames(generate_demo_market(days=14, timeframe='1h', seed=3), asset='BTC')\n"
        "r = run_backtest(CarryParams(min_net_carry=-0.01), m, start=m.first + pd.Timedelta(days=3))\n"
        "assert len(r.equity) > 200 and 'sharpe' in r.kpis\n"
    )
    assert _imported_after(code) == ["scipy"]  # scipy: the demo market generator's filter, not the backtest


# runs a Python subprocess (a fresh interpreter): integration, not the in-process fast tier
@pytest.mark.integration
def test_money_functions_are_registered_with_numba_when_it_loads():
    """A kernel calling a money formula compiles after numba is imported (the post-import hook)."""
    code = (
        "from hedge_core import money\n"
        "import sys\n"
        "assert 'numba' not in sys.modules\n"
        "from numba import njit\n"
        "k = njit(lambda q, p, r: money.fee(q, p, r))\n"
        "assert k(2.0, 100.0, 0.001) == money.fee(2.0, 100.0, 0.001)\n"
    )
    assert "numba" in _imported_after(code)


def _series(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = 60_000.0 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    y = 1.1 * x + rng.normal(0, 30.0, n)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


@pytest.mark.parametrize("n", [3, 97, 1500])
def test_python_and_compiled_forms_agree_bit_for_bit(n):
    rng = np.random.default_rng(n)
    x, y = _series(rng, n)
    for mode in (0, 1):
        w = min(24, n)
        np.testing.assert_array_equal(_kernels.rolling_stat.py_func(x, y, w, mode),
                                      _kernels.rolling_stat.compiled(x, y, w, mode))
    np.testing.assert_array_equal(_kernels.ewm_beta.py_func(x, y, 0.05), _kernels.ewm_beta.compiled(x, y, 0.05))
    ts = np.sort(rng.integers(1_700_000_000, 1_700_000_000 + 40 * 86_400, n)).astype(np.int64) * 1_000_000_000
    np.testing.assert_array_equal(kpis._last_of_day.py_func(ts), kpis._last_of_day.compiled(ts))
    net = np.cumsum(rng.normal(0, 5.0, n))
    net[n // 2] = np.nan
    h = rng.uniform(0.9, 1.1, n)
    h[:: 7] = np.nan
    q = np.where(rng.uniform(size=n) > 0.3, -0.1, 0.0)
    a = kpis._snapshot_pass.py_func(10_000.0, net, h, q, x, y)
    b = kpis._snapshot_pass.compiled(10_000.0, net, h, q, x, y)
    assert len(a) == len(b)
    for u, v in zip(a, b):
        if isinstance(u, np.ndarray):
            np.testing.assert_array_equal(u, v)
        else:
            assert u == v or (math.isnan(u) and math.isnan(v))


def test_small_calls_run_python_large_calls_build_the_kernel():
    def body(a):
        return a.sum()

    k = lazy_njit(min_size=10, cache=False)(body)
    assert isinstance(k, LazyKernel) and k.__name__ == "body" and k.py_func is body
    assert k(np.ones(3)) == 3.0 and k._compiled is None  # below min_size: the Python form, numba untouched
    assert k(np.ones(10)) == 10.0 and k._compiled is not None  # at min_size: compiled
    assert k(np.ones(2)) == 2.0 and k._compiled.signatures  # once built, small calls use the kernel too
