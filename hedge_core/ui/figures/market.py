"""Figures of market data."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hedge_core.ui.views.market import PairView


def pair_figure(view: PairView) -> go.Figure:
    """Three stacked panels sharing time: spot vs perp (and mark) price, basis in bps, funding rate (bps/interval)."""
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=[0.5, 0.25, 0.25],
                        subplot_titles=("price (quote/base)", "basis (bps, + perp above spot)",
                                        "funding (bps per interval, + longs pay)"))
    f = view.frame
    fig.add_trace(go.Scattergl(x=f.index, y=f["spot"], name=view.spot_symbol, mode="lines"), row=1, col=1)
    fig.add_trace(go.Scattergl(x=f.index, y=f["perp"], name=view.perp_symbol, mode="lines"), row=1, col=1)
    if "mark" in f:
        fig.add_trace(go.Scattergl(x=f.index, y=f["mark"], name="mark", mode="lines",
                                   line={"dash": "dot", "width": 1}, visible="legendonly"), row=1, col=1)
    fig.add_trace(go.Scattergl(x=f.index, y=f["basis_bps"], name="basis", mode="lines"), row=2, col=1)
    fund = view.funding
    fig.add_trace(go.Bar(x=fund.index, y=fund["funding_rate"] * 1e4, name="funding"), row=3, col=1)
    label = " — SYNTHETIC demo data" if view.synthetic else ""
    fig.update_layout(title=f"{view.venue} {view.spot_symbol} spot vs perp ({view.timeframe} bars){label}",
                      height=720, hovermode="x unified", margin={"t": 80, "l": 40, "r": 20, "b": 30},
                      legend={"orientation": "h", "y": 1.06})
    return fig


def candle_figure(ohlc: pd.DataFrame, *, title: str, synthetic: bool = False) -> go.Figure:
    """Candlesticks of OHLC bars (index: UTC open time; prices quote/base), date axis, no range slider."""
    fig = go.Figure(go.Candlestick(x=ohlc.index, open=ohlc["open"], high=ohlc["high"], low=ohlc["low"],
                                   close=ohlc["close"], name="price"))
    label = " — SYNTHETIC demo data" if synthetic else ""
    fig.update_layout(title=f"{title}{label}", height=480, xaxis_rangeslider_visible=False,
                      yaxis_title="price (quote/base)", xaxis_title="time (UTC, bar open)",
                      margin={"t": 60, "l": 60, "r": 20, "b": 40})
    return fig
