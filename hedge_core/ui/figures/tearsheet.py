"""Tearsheet of a backtest run: pure plotly figure builders + a standalone HTML export.

Every builder takes a :class:`hedge_core.backtest.event.BacktestResult` and returns a
``plotly.graph_objects.Figure`` (no I/O). :func:`tearsheet` stacks them; :func:`to_html` writes
one self-contained HTML file (plotly.js inlined) with the KPI and ledger tables. Long runs are
thinned for drawing (at most ``max_points`` points per line, keeping each bucket's last value and
the extremes of the equity) — the numbers in the tables are always from the full run.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hedge_core.analytics import metrics

__all__ = [
    "delta_figure",
    "drawdown_figure",
    "equity_figure",
    "funding_basis_figure",
    "KPI_UNITS",
    "format_kpi",
    "has_loan",
    "kpi_table",
    "kpi_unit",
    "ltv_figure",
    "tearsheet",
    "to_html",
    "to_html_text",
    "trades_figure",
]

MAX_POINTS = 4000
_LTV_BANDS = ((0.0, 0.50, "SAFE", "rgba(46,204,113,0.10)"), (0.50, 0.65, "MONITOR", "rgba(241,196,15,0.10)"),
              (0.65, 0.75, "WARNING", "rgba(230,126,34,0.12)"), (0.75, 0.85, "CRITICAL", "rgba(231,76,60,0.12)"),
              (0.85, 1.5, "EMERGENCY", "rgba(142,68,173,0.14)"))


def _thin(df: pd.DataFrame, max_points: int = MAX_POINTS) -> pd.DataFrame:
    n = len(df)
    if n <= max_points:
        return df
    step = math.ceil(n / max_points)
    keep = np.zeros(n, dtype=bool)
    keep[step - 1::step] = True
    keep[[0, -1]] = True
    if "net" in df.columns:  # keep the extremes so drawdowns are drawn
        keep[int(np.nanargmin(df["net"].to_numpy()))] = True
        keep[int(np.nanargmax(df["net"].to_numpy()))] = True
    return df[keep]


def _title(result: Any, what: str) -> str:
    p = result.params
    return f"{what} — {p.strategy} run {result.hedge_id}"


def equity_figure(result: Any, max_points: int = MAX_POINTS) -> go.Figure:
    """Cumulative PnL split by component (quote): price, funding, -fees, -interest and net."""
    e = _thin(result.equity, max_points)
    fig = go.Figure()
    for col, sign, name, dash in (("price_pnl", 1, "price PnL", None), ("funding", 1, "funding", None),
                                  ("fees", -1, "fees (paid)", None), ("interest", -1, "interest (paid)", None),
                                  ("slippage", -1, "of which slippage (in price PnL)", "dot"),
                                  ("net", 1, "net", None)):
        fig.add_trace(go.Scattergl(x=e.index, y=sign * e[col], name=name, mode="lines",
                                   line={"dash": dash, "width": 3 if col == "net" else 1.5}))
    fig.update_layout(title=_title(result, "PnL by component (quote)"), hovermode="x unified",
                      yaxis_title=f"cumulative {result.params.strategy} PnL (quote)")
    return fig


def delta_figure(result: Any, max_points: int = MAX_POINTS) -> go.Figure:
    """Net delta (base units) and the realised hedge ratio h = perp notional / spot notional."""
    e = _thin(result.equity, max_points)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scattergl(x=e.index, y=e["delta"], name="delta (base)", mode="lines"), secondary_y=False)
    fig.add_trace(go.Scattergl(x=e.index, y=e["hedge_ratio"], name="hedge ratio h", mode="lines"), secondary_y=True)
    fig.update_yaxes(title_text="delta (base)", secondary_y=False)
    fig.update_yaxes(title_text="h", secondary_y=True)
    fig.update_layout(title=_title(result, "delta and hedge ratio"), hovermode="x unified")
    return fig


def funding_basis_figure(result: Any, max_points: int = MAX_POINTS) -> go.Figure:
    """Funding rate in force (bps per interval, + longs pay) and the perp-spot basis (bps)."""
    e = _thin(result.equity, max_points)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scattergl(x=e.index, y=e["funding_rate"] * 1e4, name="funding (bps/interval)", mode="lines",
                               line={"shape": "hv"}), secondary_y=False)
    fig.add_trace(go.Scattergl(x=e.index, y=e["basis"] * 1e4, name="basis (bps)", mode="lines",
                               line={"width": 1}), secondary_y=True)
    fp = result.funding_payments
    if len(fp):
        fig.add_trace(go.Bar(x=fp["ts"], y=fp["amount"], name="funding paid/received (quote)", opacity=0.4),
                      secondary_y=False)
    fig.update_layout(title=_title(result, "funding and basis"), hovermode="x unified")
    return fig


def drawdown_figure(result: Any, max_points: int = MAX_POINTS) -> go.Figure:
    """Drawdown of ``capital + net PnL`` (fraction, <= 0) via ``analytics.metrics.drawdown``."""
    eq = result.equity["equity"]
    dd = metrics.drawdown(eq) if (eq > 0).all() else eq / eq.cummax() - 1.0
    d = _thin(dd.to_frame("dd"), max_points)
    fig = go.Figure(go.Scattergl(x=d.index, y=d["dd"], fill="tozeroy", name="drawdown", mode="lines"))
    fig.update_layout(title=_title(result, f"drawdown (max {result.kpis.get('max_drawdown', math.nan):.2%})"),
                      yaxis_tickformat=".1%")
    return fig


def ltv_figure(result: Any, max_points: int = MAX_POINTS) -> go.Figure:
    """LTV over time with the band edges (SAFE < 50 % <= MONITOR < 65 % <= WARNING < 75 % <=
    CRITICAL < 85 % <= EMERGENCY); an empty chart with a note for books without a loan."""
    e = _thin(result.equity, max_points)
    fig = go.Figure()
    lt = e["ltv"]
    if lt.notna().any():
        top = max(1.0, float(lt.max()) * 1.05)
        for lo, hi, name, color in _LTV_BANDS:
            fig.add_hrect(y0=lo, y1=min(hi, top), fillcolor=color, line_width=0, annotation_text=name,
                          annotation_position="top left")
        fig.add_trace(go.Scattergl(x=e.index, y=lt, name="LTV", mode="lines"))
        g = result.guard_firings
        if len(g):
            gl = g[g["guard"].str.startswith("ltv")]
            if len(gl):
                y = result.equity["ltv"].reindex(pd.DatetimeIndex(gl["ts"]), method="nearest")
                fig.add_trace(go.Scatter(x=gl["ts"], y=y.to_numpy(), mode="markers", name="LTV action",
                                         text=gl["guard"] + " -> " + gl["action"], marker={"symbol": "x", "size": 9}))
        fig.update_yaxes(tickformat=".0%", range=[0, top])
    else:
        fig.add_annotation(text="no loan in this strategy", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(title=_title(result, "LTV and its bands"))
    return fig


def trades_figure(result: Any, max_points: int = MAX_POINTS) -> go.Figure:
    """Spot price with the fills (triangles: buy up / sell down; spot and perp legs) and exits."""
    e = _thin(result.equity, max_points)
    fig = go.Figure(go.Scattergl(x=e.index, y=e["spot_price"], name="spot", mode="lines", line={"width": 1}))
    f = result.fills
    if len(f):
        for leg in ("spot", "perp"):
            for side, sym in (("buy", "triangle-up"), ("sell", "triangle-down")):
                s = f[(f["leg"] == leg) & (f["side"] == side)]
                if len(s):
                    fig.add_trace(go.Scatter(x=s["ts"], y=s["price"], mode="markers", name=f"{leg} {side}",
                                             marker={"symbol": sym, "size": 9 if leg == "spot" else 7,
                                                     "line": {"width": 1}},
                                             text=[f"{q:g} @ {p:.2f}" for q, p in zip(s["qty"], s["price"])]))
    liq = result.liquidations
    if len(liq) and "ts" in liq.columns:
        fig.add_trace(go.Scatter(x=pd.to_datetime(liq["ts"], utc=True), y=liq.get("price", None), mode="markers",
                                 name="liquidation", marker={"symbol": "x", "size": 12, "color": "black"}))
    fig.update_layout(title=_title(result, "trades on the price"), hovermode="closest")
    return fig


def has_loan(result: Any) -> bool:
    """Whether the run carries a loan (an LTV series): the LTV panel is drawn only then."""
    lt = result.equity.get("ltv") if hasattr(result.equity, "get") else None
    return lt is not None and bool(lt.notna().any())


def tearsheet(result: Any, max_points: int = MAX_POINTS) -> go.Figure:
    """All panels stacked on one shared UTC date axis (dates under every panel); the LTV panel only for
    a book with a loan (a carry has none: no empty panel)."""
    parts = [("PnL by component (USDT)", equity_figure), ("trades on spot price (USDT)", trades_figure),
             ("delta (base) / hedge ratio", delta_figure), ("funding (bps) / basis (bps)", funding_basis_figure),
             ("drawdown (%)", drawdown_figure)]
    if has_loan(result):
        parts.append(("LTV (%)", ltv_figure))
    fig = make_subplots(rows=len(parts), cols=1, shared_xaxes=True, vertical_spacing=0.055,
                        subplot_titles=[t for t, _ in parts])
    for r, (_, fn) in enumerate(parts, start=1):
        sub = fn(result, max_points)
        for tr in sub.data:
            tr.legendgroup = str(r)
            fig.add_trace(tr, row=r, col=1)
        for shape in sub.layout.shapes or ():
            fig.add_hrect(y0=shape.y0, y1=shape.y1, fillcolor=shape.fillcolor, line_width=0, row=r, col=1)
    k = result.kpis
    fig.update_xaxes(type="date", showticklabels=True, tickformat="%Y-%m-%d")
    fig.update_yaxes(tickformat=".1%", row=parts.index(("drawdown (%)", drawdown_figure)) + 1, col=1)
    if has_loan(result):
        fig.update_yaxes(tickformat=".0%", row=len(parts), col=1)
    fig.update_layout(height=260 * len(parts), hovermode="x unified",
                      legend={"orientation": "h", "yanchor": "top", "y": -0.03, "x": 0},  # below, never over titles
                      margin={"t": 90},
                      title=(f"{result.params.strategy} backtest {result.hedge_id}: {result.start:%Y-%m-%d} .. "
                             f"{result.end:%Y-%m-%d} — net APR {k.get('net_apr', math.nan):.2%}, "
                             f"Sharpe {k.get('sharpe', math.nan):.2f}, max DD {k.get('max_drawdown', math.nan):.2%}"))
    return fig


def to_html_text(result: Any, *, extra: list[go.Figure] | None = None) -> str:
    """The standalone HTML report as text (for a download button); see :func:`to_html`."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return to_html(result, Path(d) / "report.html", extra=extra).read_text(encoding="utf-8")


#: How each KPI is shown: its unit. Fractions are shown as percentages ("%"), money in the quote
#: currency ("USDT"), counts and dimensionless ratios as numbers. See docs/backtest-edges.md.
KPI_UNITS: dict[str, str] = {
    "net_pnl": "USDT", "price_pnl": "USDT", "funding": "USDT", "fees": "USDT", "slippage": "USDT",
    "interest": "USDT", "loan_interest": "USDT", "loan_repaid_from_profit": "USDT", "reserve_deployed": "USDT",
    "loan_outstanding": "USDT", "capital": "USDT",
    "net_apr": "% per year", "max_drawdown": "%", "funding_efficiency": "%", "funding_capture": "%",
    "hedge_effectiveness": "%", "time_in_market": "%", "ltv_max": "%", "ltv_below_65": "% of time",
    "loan_coverage": "%",
    "sharpe": "annualised", "sortino": "annualised",
    "rebalance_count": "count", "entries": "count", "n_fills": "count", "n_liquidations": "count",
}
_PERCENT = {k for k, u in KPI_UNITS.items() if u.startswith("%")}


def kpi_unit(name: str) -> str:
    """The unit a KPI is shown in (``time_in_<BAND>`` is a share of time)."""
    if name.startswith("time_in_"):
        return "% of time"
    return KPI_UNITS.get(name, "")


def format_kpi(name: str, value: Any) -> str:
    """A KPI as a person reads it: fractions as percentages, money with two decimals, counts whole."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    v = float(value)
    if math.isnan(v):
        return "n/a"
    unit = kpi_unit(name)
    if unit.startswith("%"):
        return f"{v * 100:,.2f} %"
    if unit == "USDT":
        return f"{v:,.2f}"
    if unit == "count":
        return f"{v:,.0f}"
    return f"{v:,.4g}"


def kpi_table(result: Any) -> pd.DataFrame:
    """KPIs and ledger totals: name, value as shown (percentages for fractions), unit, and the raw value."""
    rows = [(k, format_kpi(k, v), kpi_unit(k), v) for k, v in result.kpis.items()]
    return pd.DataFrame(rows, columns=["kpi", "value", "unit", "raw"])


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:,.6g}"
    return html.escape(str(v))


def to_html(result: Any, path: str | Path, *, extra: list[go.Figure] | None = None) -> Path:
    """Write a standalone HTML report (plotly.js inlined; opens offline) and return its path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig = tearsheet(result)
    parts = [f"<h1>{html.escape(result.params.strategy)} backtest {html.escape(result.hedge_id)}</h1>",
             (f"<p>{result.start} .. {result.end}; capital {result.capital:,.2f} quote; final state "
              f"{html.escape(result.final_state)}</p>"), "<h2>KPIs</h2><table>"]
    parts += [f"<tr><td>{html.escape(k)}</td><td>{html.escape(format_kpi(k, v))}</td><td>{html.escape(kpi_unit(k))}"
              "</td></tr>" for k, v in result.kpis.items()]
    parts.append("</table><h2>Ledger per leg (quote)</h2>")
    parts.append(result.ledger.to_html(float_format=lambda x: f"{x:,.4f}"))
    parts.append(fig.to_html(full_html=False, include_plotlyjs="inline"))
    for f in extra or []:
        parts.append(f.to_html(full_html=False, include_plotlyjs=False))
    params = html.escape(result.params.model_dump_json(indent=2))
    parts.append(f"<h2>Parameters</h2><pre>{params}</pre>")
    doc = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>backtest "
           f"{html.escape(result.hedge_id)}</title></head><body>" + "\n".join(parts) + "</body></html>")
    p.write_text(doc, encoding="utf-8")
    return p
