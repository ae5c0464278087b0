"""Figures of the funding scanner: the ranked table and a row's spread history (pure plotly builders)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go

__all__ = ["ranked_figure", "spread_figure"]


def ranked_figure(table: pd.DataFrame, *, top: int = 20) -> go.Figure:
    """Horizontal bars of the best rows' net carry over the hold (%), best on top (a display table of
    :func:`hedge_core.ui.views.scanner.display_table`)."""
    t = table.head(top).iloc[::-1]
    labels = [f"#{n} {s} · {d}" for n, s, d in zip(t["#"], t["symbol"], t["direction"], strict=True)]
    colors = ["#2ca02c" if v >= 0 else "#d62728" for v in t["net %"]]
    fig = go.Figure(go.Bar(x=t["net %"], y=labels, orientation="h", marker_color=colors,
                           customdata=t[["APR %", "costs %", "favourable %"]].to_numpy(),
                           hovertemplate="net %{x:.3f}%<br>APR %{customdata[0]:.2f}%<br>costs %{customdata[1]:.3f}%"
                                         "<br>favourable %{customdata[2]:.0f}%<extra></extra>"))
    fig.update_layout(title="expected net carry over the hold (% of one leg's notional, after fees and slippage)",
                      height=max(260, 28 * len(t) + 100), margin={"t": 60, "l": 20, "r": 20, "b": 40},
                      xaxis_title="net carry (%)")
    return fig


def spread_figure(spread: pd.DataFrame, row: Mapping[str, object], *, lookback_start: pd.Timestamp | None = None
                  ) -> go.Figure:
    """A row's spread history: the APR its direction receives (%/yr, + = income) with each perp leg's
    funding APR, and the lookback window shaded."""
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=spread.index, y=100 * spread["spread"], name="spread received", mode="lines",
                               line={"width": 2}))
    for col, name in (("apr_long", f"long perp {row.get('long_venue')}"),
                      ("apr_short", f"short perp {row.get('short_venue')}")):
        if col in spread and spread[col].notna().any():
            fig.add_trace(go.Scattergl(x=spread.index, y=100 * spread[col], name=f"{name} funding APR",
                                       mode="lines", line={"width": 1, "dash": "dot"}, visible="legendonly"))
    fig.add_hline(y=0, line={"color": "grey", "width": 1})
    if lookback_start is not None and len(spread):
        fig.add_vrect(x0=lookback_start, x1=spread.index.max(), fillcolor="LightSkyBlue", opacity=0.2, line_width=0,
                      annotation_text="lookback", annotation_position="top left")
    fig.update_layout(title=f"{row.get('symbol')} · {row.get('direction')}: funding spread received (APR %)",
                      height=420, hovermode="x unified", yaxis_title="APR (%/yr, + received)",
                      xaxis_title="funding time (UTC)", margin={"t": 60, "l": 60, "r": 20, "b": 40},
                      legend={"orientation": "h", "y": -0.2})
    return fig
