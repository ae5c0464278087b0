"""Research figures: a backtest's equity and PnL split, and a sweep heatmap (used when the backtest
engineer's tearsheet/sweep figures are not available)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["equity_figure", "heatmap_figure", "tearsheet_or_equity"]


def equity_figure(equity: pd.DataFrame, *, title: str = "backtest") -> go.Figure:
    """Net PnL and its components (quote), and the hedge ratio, from a backtest's equity frame."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.05,
                        subplot_titles=("PnL (quote)", "hedge ratio"))
    for col in ("net", "price_pnl", "funding"):
        if col in equity:
            fig.add_trace(go.Scattergl(x=equity.index, y=equity[col], name=col, mode="lines"), row=1, col=1)
    if "fees" in equity:
        fig.add_trace(go.Scattergl(x=equity.index, y=-equity["fees"], name="fees (cost)", mode="lines"), row=1, col=1)
    if "hedge_ratio" in equity:
        fig.add_trace(go.Scattergl(x=equity.index, y=equity["hedge_ratio"], name="hedge ratio", mode="lines"),
                      row=2, col=1)
    fig.update_layout(title=title, height=560, hovermode="x unified", margin={"t": 70, "l": 40, "r": 20, "b": 30})
    return fig


def heatmap_figure(pivot: pd.DataFrame, *, kpi: str, x_field: str, y_field: str | None) -> go.Figure:
    """A KPI over a one- or two-field grid."""
    fig = go.Figure(go.Heatmap(z=pivot.to_numpy(dtype="float64"), x=[str(c) for c in pivot.columns],
                               y=[str(i) for i in pivot.index], colorscale="RdYlGn", colorbar={"title": kpi},
                               texttemplate="%{z:.3g}"))
    fig.update_layout(title=f"{kpi} by {x_field}" + (f" and {y_field}" if y_field else ""), height=420,
                      xaxis_title=x_field, yaxis_title=y_field or "", margin={"t": 60, "l": 60, "r": 20, "b": 40})
    return fig


def tearsheet_or_equity(result: object, title: str) -> go.Figure:
    """The backtest engineer's tearsheet (``hedge_core.ui.figures.tearsheet``) when it is there and takes
    a :class:`~hedge_core.backtest.event.BacktestResult`; else :func:`equity_figure` of its equity frame."""
    try:
        from hedge_core.ui.figures import tearsheet as ts
    except ImportError:
        ts = None
    for name in ("tearsheet_figure", "tearsheet"):
        fn = getattr(ts, name, None) if ts is not None else None
        if callable(fn):
            try:
                fig = fn(result)
            except Exception:  # noqa: BLE001 - a figure API mismatch must not hide the run's result
                continue
            if isinstance(fig, go.Figure):
                return fig
    return equity_figure(result.equity, title=title)  # type: ignore[attr-defined]
