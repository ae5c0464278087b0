"""The same sweep on a Dask LocalCluster (2 worker processes) equals the local-process result."""

from __future__ import annotations

import pandas as pd
import pytest

from hedge_core.backtest.sweep import Payload, close_pool, grid_search
from hedge_core.backtest.timeline import build_timeline, market_from_frames
from hedge_core.data.demo import generate_demo_market
from hedge_core.params.models import CarryParams, ExitParams

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


@pytest.mark.slow
def test_a_second_sweep_through_the_same_client_reuses_the_scattered_payload():
    m = market_from_frames(generate_demo_market(days=20, timeframe="1h", seed=5, assets=("BTC",)))
    tl = build_timeline(m, start=m.first + pd.Timedelta(days=3))
    base = CarryParams(min_net_carry=-0.01, exit=ExitParams(rearm=True, max_holding_hours=48))
    grid = {"min_funding_rate": [0.00005, 0.0002]}
    pay, other = Payload(tl), Payload(tl)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        sent = []
        scatter = client.scatter
        client.scatter = lambda data, **kw: (sent.append(data), scatter(data, **kw))[1]
        first = grid_search(base, grid, payload=pay, scheduler=client, show_progress=False)
        again = grid_search(base, grid, payload=pay, scheduler=client, show_progress=False)
        assert sent == [pay]  # kept on the workers: not sent twice
        third = grid_search(base, grid, payload=other, scheduler=client, show_progress=False)
        assert len(sent) == 2 and sent[1] is other  # another payload is sent
        close_pool()
        grid_search(base, grid, payload=other, scheduler=client, show_progress=False)
        assert len(sent) == 3  # close_pool() let go of the kept one
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(first, third)
    assert (first["error"] == "").all()
