"""Figures of one hedge: market, position and PnL panels sharing time; the Risk page's distance bars."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hedge_core.ui.views.market import PairView

__all__ = ["equity_figure", "hedge_figure", "liquidation_figure", "overlay_figure"]


def hedge_figure(view: PairView, series: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Six stacked panels: spot/perp price, basis (bps), funding (bps/interval), delta (base),
    hedge ratio, PnL split (price, funding, fees as a cost, total; quote).

    ``series`` is :func:`hedge_core.ui.views.hedges.pnl_series` on ``view.frame``'s grid.
    """
    fig = make_subplots(rows=6, cols=1, shared_xaxes=True, vertical_spacing=0.03,
                        row_heights=[0.24, 0.12, 0.12, 0.14, 0.14, 0.24],
                        subplot_titles=("price (quote/base)", "basis (bps)", "funding (bps/interval, + longs pay)",
                                        "delta (base)", "hedge ratio", "PnL (quote)"))
    f = view.frame
    fig.add_trace(go.Scattergl(x=f.index, y=f["spot"], name=view.spot_symbol, mode="lines"), row=1, col=1)
    fig.add_trace(go.Scattergl(x=f.index, y=f["perp"], name=view.perp_symbol, mode="lines"), row=1, col=1)
    fig.add_trace(go.Scattergl(x=f.index, y=f["basis_bps"], name="basis", mode="lines"), row=2, col=1)
    fund = view.funding
    fig.add_trace(go.Bar(x=fund.index, y=fund["funding_rate"] * 1e4, name="funding rate"), row=3, col=1)
    s = series
    fig.add_trace(go.Scattergl(x=s.index, y=s["delta"], name="delta", mode="lines"), row=4, col=1)
    fig.add_trace(go.Scattergl(x=s.index, y=s["hedge_ratio"], name="hedge ratio", mode="lines"), row=5, col=1)
    for col, name in (("price_pnl", "price PnL"), ("funding", "funding"), ("pnl", "net PnL")):
        fig.add_trace(go.Scattergl(x=s.index, y=s[col], name=name, mode="lines"), row=6, col=1)
    fig.add_trace(go.Scattergl(x=s.index, y=-s["fees"], name="fees (cost)", mode="lines"), row=6, col=1)
    label = " — SYNTHETIC demo data" if view.synthetic else ""
    fig.update_layout(title=(title or f"{view.spot_symbol} hedge") + f" ({view.timeframe} bars){label}", height=980,
                      hovermode="x unified", margin={"t": 120, "l": 40, "r": 20, "b": 30},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"})
    return fig


def liquidation_figure(risk: pd.DataFrame) -> go.Figure:
    """Distance to liquidation per hedge (fraction of mark) against its reduce and close guards."""
    r = risk.dropna(subset=["liq_distance"]) if len(risk) else risk
    fig = go.Figure()
    if len(r):
        fig.add_trace(go.Bar(x=r["hedge_id"], y=r["liq_distance"] * 100, name="distance to liquidation (%)"))
        fig.add_trace(go.Scatter(x=r["hedge_id"], y=r["reduce_at"] * 100, name="reduce guard", mode="markers",
                                 marker={"symbol": "line-ew-open", "size": 30}))
        fig.add_trace(go.Scatter(x=r["hedge_id"], y=r["close_at"] * 100, name="close guard", mode="markers",
                                 marker={"symbol": "line-ew-open", "size": 30}))
    fig.update_layout(title="perp liquidation distance (% of mark; higher is safer)", height=360,
                      yaxis_title="%", margin={"t": 60, "l": 40, "r": 20, "b": 30})
    return fig


def equity_figure(curves: dict[str, pd.Series]) -> go.Figure:
    """Net PnL (quote) of each hedge over time, one line per hedge, each on its own clock (a replayed
    paper hedge runs on its data's time, a live one on the venue's)."""
    fig = go.Figure()
    for hid, pnl in curves.items():
        fig.add_trace(go.Scatter(x=pnl.index, y=pnl.to_numpy(), name=hid, mode="lines"))
    fig.update_layout(title="net PnL per hedge (USDT)", height=340, hovermode="x unified",
                      yaxis_title="net PnL (USDT)", xaxis_title="time (UTC, the hedge's clock)",
                      margin={"t": 50, "l": 60, "r": 20, "b": 80}, legend={"orientation": "h", "y": -0.45})
    fig.add_hline(y=0.0, line={"width": 1, "dash": "dot", "color": "grey"})
    return fig


def overlay_figure(paper: pd.Series, backtest: pd.Series, *, title: str) -> go.Figure:
    """The hedge's net PnL (USDT) beside a backtest of its parameter set over the same period."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=paper.index, y=paper.to_numpy(), name="this hedge (journal)", mode="lines",
                             line={"width": 3}))
    fig.add_trace(go.Scatter(x=backtest.index, y=backtest.to_numpy(), name="backtest of its set", mode="lines",
                             line={"dash": "dash"}))
    fig.update_layout(title=title, height=340, hovermode="x unified", yaxis_title="net PnL (USDT)",
                      xaxis_title="time (UTC, the hedge's clock)", margin={"t": 50, "l": 60, "r": 20, "b": 40},
                      legend={"orientation": "h", "y": -0.3})
    return fig
