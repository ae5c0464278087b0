"""Figures of sweep results: heatmap of a KPI over two parameters, parallel coordinates,
walk-forward folds and Monte Carlo KPI distributions. Pure builders over result tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hedge_core.errors import InvalidInput

__all__ = ["equity_vs_hold", "heatmap", "mc_histograms", "parallel_coordinates", "walk_forward_figure"]


def _need(table: pd.DataFrame, cols: list[str]) -> None:
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise InvalidInput("columns", missing, f"columns of the result table {sorted(table.columns)}")


def heatmap(table: pd.DataFrame, x: str, y: str, metric: str = "sharpe", *, agg: str = "mean",
            fmt: str = ".3g") -> go.Figure:
    """``metric`` over a (``x``, ``y``) parameter grid (other parameters aggregated by ``agg``)."""
    _need(table, [x, y, metric])
    piv = table.pivot_table(index=y, columns=x, values=metric, aggfunc=agg)
    z = piv.to_numpy(dtype="float64")
    text = [[("" if np.isnan(v) else format(v, fmt)) for v in row] for row in z]
    fig = go.Figure(go.Heatmap(z=z, x=[str(c) for c in piv.columns], y=[str(i) for i in piv.index], text=text,
                               texttemplate="%{text}", colorscale="RdYlGn", colorbar={"title": metric}))
    fig.update_layout(title=f"{metric} by {x} x {y}", xaxis_title=x, yaxis_title=y)
    return fig


def parallel_coordinates(table: pd.DataFrame, params: list[str], metric: str = "sharpe",
                         kpis: list[str] | None = None) -> go.Figure:
    """One line per sweep point across its parameters and KPIs, coloured by ``metric``."""
    cols = list(params) + [k for k in (kpis or [metric]) if k not in params]
    _need(table, cols + [metric])
    num = table[cols + [metric]].apply(pd.to_numeric, errors="coerce")
    dims = [{"label": c, "values": num[c].fillna(num[c].min() if num[c].notna().any() else 0.0)} for c in cols]
    fig = go.Figure(go.Parcoords(line={"color": num[metric].fillna(num[metric].min()), "colorscale": "RdYlGn",
                                       "showscale": True, "colorbar": {"title": metric}}, dimensions=dims))
    fig.update_layout(title=f"sweep: parameters and KPIs (colour: {metric})")
    return fig


def walk_forward_figure(folds: pd.DataFrame, metric: str = "net_pnl") -> go.Figure:
    """Per fold: the in-sample (train) best value of the selection metric and the out-of-sample
    (test) value of ``metric``."""
    _need(folds, ["test_start", f"test_{metric}"])
    fig = go.Figure()
    tr = [c for c in folds.columns if c.startswith("train_") and c not in ("train_start", "train_end")]
    if tr:
        fig.add_trace(go.Bar(x=folds["test_start"], y=folds[tr[0]], name=f"{tr[0]} (in-sample best)"))
    fig.add_trace(go.Bar(x=folds["test_start"], y=folds[f"test_{metric}"], name=f"test_{metric} (out of sample)"))
    fig.update_layout(title="walk-forward: in-sample choice vs out-of-sample result", barmode="group",
                      xaxis_title="test window start")
    return fig


def mc_histograms(table: pd.DataFrame, kpis: tuple[str, ...] = ("net_apr", "sharpe", "max_drawdown"),
                  actual: dict[str, float] | None = None) -> go.Figure:
    """Histogram of each KPI over the Monte Carlo paths (with the historical value as a line)."""
    cols = [k for k in kpis if k in table.columns]
    _need(table, cols or list(kpis))
    fig = make_subplots(rows=1, cols=len(cols), subplot_titles=cols)
    for i, k in enumerate(cols, start=1):
        fig.add_trace(go.Histogram(x=pd.to_numeric(table[k], errors="coerce"), name=k, nbinsx=30), row=1, col=i)
        if actual and k in actual and np.isfinite(actual[k]):
            fig.add_vline(x=actual[k], line_dash="dash", line_color="black", row=1, col=i)
    fig.update_layout(title=f"Monte Carlo ({len(table)} block-bootstrap paths)", showlegend=False)
    return fig


def equity_vs_hold(result: object, hold: pd.Series, label: str = "hold spot") -> go.Figure:
    """The strategy's net PnL against a benchmark PnL series (e.g. simply holding spot), quote."""
    e = result.equity  # type: ignore[attr-defined]
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=e.index, y=e["net"], name="strategy net PnL", mode="lines"))
    fig.add_trace(go.Scattergl(x=hold.index, y=hold.to_numpy(), name=label, mode="lines"))
    fig.update_layout(title="strategy vs benchmark (quote)", hovermode="x unified")
    return fig
