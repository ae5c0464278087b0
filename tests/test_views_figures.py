"""Figure builders of the panel: the traces they promise, from view models."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hedge_core.ui.figures.hedge import hedge_figure, liquidation_figure
from hedge_core.ui.figures.research import equity_figure, heatmap_figure
from hedge_core.ui.views.hedges import risk_table
from hedge_core.ui.views.market import PairView


def test_hedge_figure_panels() -> None:
    idx = pd.date_range("2024-01-01", periods=5, freq="1h", tz="UTC")
    frame = pd.DataFrame({"spot": np.arange(5.0) + 100, "perp": np.arange(5.0) + 101}, index=idx)
    frame["basis_bps"] = (frame["perp"] / frame["spot"] - 1) * 1e4
    fund = pd.DataFrame({"funding_rate": [1e-4], "interval_hours": [8.0]}, index=idx[:1])
    view = PairView("demo", "BTC/USDT", "BTC/USDT:USDT", "1h", frame, fund, True)
    series = pd.DataFrame({"delta": 0.0, "hedge_ratio": 1.0, "price_pnl": 1.0, "funding": 0.5, "fees": 0.2,
                           "pnl": 1.3}, index=idx)
    fig = hedge_figure(view, series, title="h")
    names = [t.name for t in fig.data]
    assert names == ["BTC/USDT", "BTC/USDT:USDT", "basis", "funding rate", "delta", "hedge ratio", "price PnL",
                     "funding", "net PnL", "fees (cost)"]
    assert list(fig.data[-1].y) == [-0.2] * 5  # fees drawn as a cost
    assert "SYNTHETIC" in fig.layout.title.text


def test_liquidation_and_research_figures() -> None:
    r = risk_table([{"hedge_id": "a", "liq_distance": 0.5, "liq_distance_reduce": 0.15, "liq_distance_close": 0.08},
                    {"hedge_id": "flat", "liq_distance": None}])
    fig = liquidation_figure(r)
    assert list(fig.data[0].x) == ["a"] and list(fig.data[0].y) == [50.0]
    eq = pd.DataFrame({"net": [0.0, 1.0], "price_pnl": [0.0, 0.5], "funding": [0.0, 0.7], "fees": [0.0, 0.2],
                       "hedge_ratio": [1.0, 1.0]}, index=pd.date_range("2024-01-01", periods=2, freq="1h", tz="UTC"))
    assert [t.name for t in equity_figure(eq).data] == ["net", "price_pnl", "funding", "fees (cost)", "hedge ratio"]
    pv = pd.DataFrame([[1.0, 2.0]], columns=[0.1, 0.2], index=["k"])
    hm = heatmap_figure(pv, kpi="k", x_field="x", y_field=None)
    assert hm.data[0].z.tolist() == [[1.0, 2.0]]
