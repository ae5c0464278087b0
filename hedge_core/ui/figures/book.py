"""Figures of the book: net delta per asset, exposure and margin per venue (plotly)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["book_figure"]


def book_figure(assets: pd.DataFrame, venues: pd.DataFrame) -> go.Figure:
    """Two panels: net delta per asset (quote, + long), and per venue gross/net exposure and margin
    used vs netted (quote). Inputs: :func:`hedge_core.ui.views.book.book_tables`' ``assets``/``venues``."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("net delta per asset (quote, + long)",
                                                        "exposure and margin per venue (quote)"))
    fig.add_trace(go.Bar(x=assets["asset"], y=assets["delta_quote"], name="net delta",
                         customdata=assets["delta"], hovertemplate="%{x}: %{y:,.2f} quote (%{customdata:+.6g} base)"),
                  row=1, col=1)
    for col, name in (("gross", "gross"), ("net", "net"), ("margin_used", "margin used"),
                      ("margin_netted", "margin netted")):
        fig.add_trace(go.Bar(x=venues["venue"], y=venues[col], name=name), row=1, col=2)
    fig.update_layout(barmode="group", height=380, margin={"t": 60, "l": 40, "r": 20, "b": 30},
                      legend={"orientation": "h", "y": -0.15})
    return fig
