"""The same sweep on a Dask LocalCluster (2 worker processes) equals the local-process result."""

from __future__ import annotations

import pandas as pd
import pytest

from hedge_core.backtest.timeline import build_timeline, market_from_frames
from hedge_core.data.demo import generate_demo_market
from hedge_core.params.models import CarryParams, ExitParams
from hedge_core.backtest.sweep import Payload, grid_search

distributed = pytest.importorskip("distributed")


@pytest.mark.slow
def test_dask_local_cluster_results_identical_to_processes():
    m = market_from_frames(generate_demo_market(days=30, timeframe="1h", seed=4, assets=("BTC",)))
    tl = build_timeline(m, start=m.first + pd.Timedelta(days=3))
    base = CarryParams(min_net_carry=-0.01, exit=ExitParams(rearm=True, max_holding_hours=48))
    grid = {"min_funding_rate": [0.00005, 0.0001, 0.0002], "exit.stop_loss_pct": [0.005, 0.02]}
    local = grid_search(base, grid, payload=Payload(tl), workers=2, show_progress=False)
    done = []
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        remote = grid_search(base, grid, payload=Payload(tl), scheduler=cluster.scheduler_address,
                             show_progress=False, progress=lambda d, n: done.append(d))
    pd.testing.assert_frame_equal(local, remote)
    assert (remote["error"] == "").all() and sorted(done) == list(range(1, 7))
