"""Tearsheet of a cross-venue run: the backtest tearsheet with the run's assumptions written on it.

A cross-venue carry backtest trades one leg on each venue but, in the shared data, prices both legs
from the one venue that has price bars (:mod:`hedge_core.backtest.xvenue`). That must be visible
wherever the result is shown: :func:`cross_venue_tearsheet` puts every note of the run, and one line
per venue (wallet, fees, funding), under the title.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from hedge_core.ui.figures.tearsheet import tearsheet

__all__ = ["cross_venue_lines", "cross_venue_tearsheet"]


def cross_venue_lines(run: Any) -> list[str]:
    """The notes of a :class:`~hedge_core.backtest.xvenue.CrossVenueRun` and one line per venue (quote units)."""
    lines = [f"assumption: {n}" for n in run.notes]
    for venue, r in run.per_venue.iterrows():
        lines.append(f"{venue} ({r['leg']} leg): wallet {r['wallet_start']:,.2f} -> {r['wallet_end']:,.2f} USDT, "
                     f"fees {r['fees']:,.2f}, funding {r['funding']:+,.2f}, orders {int(r['orders'])}")
    return lines


def cross_venue_tearsheet(run: Any) -> go.Figure:
    """:func:`~hedge_core.ui.figures.tearsheet.tearsheet` of ``run.result`` with :func:`cross_venue_lines`
    written above the first panel."""
    fig = tearsheet(run.result)
    lines = cross_venue_lines(run)
    fig.add_annotation(text="<br>".join(lines), xref="paper", yref="paper", x=0, y=1.0, yshift=30,
                       xanchor="left", yanchor="bottom", align="left", showarrow=False, font={"size": 11})
    top = 90 + 16 * len(lines)
    pair = "first perp" in set(run.per_venue["leg"])  # two perp legs (backtest.xvenue_pair)
    legs = (f"first perp on {run.spot_venue}, second perp on {run.perp_venue}" if pair
            else f"spot on {run.spot_venue}, perp on {run.perp_venue}")
    fig.update_layout(title_text=f"{fig.layout.title.text} — {legs}", margin={"t": top})
    return fig
