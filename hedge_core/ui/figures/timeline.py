"""Pure figure and table builders for a hedge run (notebooks, panel). No I/O, no math beyond reshaping."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hedge_core.engine.context import HedgeContext
from hedge_core.engine.states import State

__all__ = ["STATE_ORDER", "timeline_figure", "transitions_frame"]

STATE_ORDER = [s.value for s in (State.ANALYZING_MARKET, State.OPENING_SPOT_POSITION, State.OPENING_FUTURES_HEDGE,
                                 State.MONITORING_POSITIONS, State.REBALANCING, State.CLOSING_POSITIONS,
                                 State.PAUSED, State.ERROR, State.COMPLETED)]


def transitions_frame(ctx: HedgeContext) -> pd.DataFrame:
    """The transition history: ts, from, to, trigger, reason (one row per transition)."""
    rows = [{"ts": r.ts, "from": str(r.from_state), "to": str(r.to_state), "trigger": r.trigger, "reason": r.reason}
            for r in ctx.history]
    return pd.DataFrame(rows, columns=["ts", "from", "to", "trigger", "reason"])


def timeline_figure(snapshots: pd.DataFrame, title: str = "") -> go.Figure:
    """Four stacked panels over time: prices, state, legs (base qty) with delta, net PnL (quote).

    ``snapshots`` is the frame of :func:`hedge_core.engine.replay.run_paper` (index ts; columns
    state, spot_qty, perp_qty, delta, pnl, spot_price, perp_price).
    """
    need = {"state", "spot_qty", "perp_qty", "delta", "pnl", "spot_price", "perp_price"}
    missing = need - set(snapshots.columns)
    if missing:
        raise ValueError(f"snapshots lacks columns {sorted(missing)}; pass the frame returned by run_paper")
    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.03,
                        row_heights=[0.3, 0.15, 0.3, 0.25],
                        subplot_titles=("prices (quote)", "state", "legs (base) and delta", "net PnL (quote)"))
    x = snapshots.index
    fig.add_trace(go.Scatter(x=x, y=snapshots["spot_price"], name="spot price"), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=snapshots["perp_price"], name="perp price"), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=snapshots["state"], name="state", mode="lines", line_shape="hv"), row=2, col=1)
    fig.update_yaxes(categoryorder="array", categoryarray=STATE_ORDER, row=2, col=1)
    fig.add_trace(go.Scatter(x=x, y=snapshots["spot_qty"], name="spot qty", line_shape="hv"), row=3, col=1)
    fig.add_trace(go.Scatter(x=x, y=snapshots["perp_qty"], name="perp qty", line_shape="hv"), row=3, col=1)
    fig.add_trace(go.Scatter(x=x, y=snapshots["delta"], name="delta", line_shape="hv"), row=3, col=1)
    fig.add_trace(go.Scatter(x=x, y=snapshots["pnl"], name="net PnL"), row=4, col=1)
    fig.update_layout(title=title, height=850, hovermode="x unified", legend={"orientation": "h"})
    return fig
