"""A hedge's chart data and PnL curve from the store: the one pipeline behind the Hedge detail chart and
the Overview's equity curves.

Reads: the hedge's transitions (its clock and period), the pair's bars on the data venue the runner
used (the hedge's venue, else Binance, else the demo market), the hedge's fill flows and funding.
Money in quote units (USDT); PnL + is a gain (see :func:`hedge_core.ui.views.hedges.pnl_series`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hedge_core.store import MissingSeries, Store
from hedge_core.ui.views.hedges import hedge_window, pnl_series
from hedge_core.ui.views.ledger import funding_rows, hedge_flows
from hedge_core.ui.views.market import PairView, pair_view

__all__ = ["ChartData", "backtest_overlay", "equity_curves", "hedge_chart_data"]


@dataclass(frozen=True)
class ChartData:
    view: PairView  # prices, basis and funding over the hedge's period
    series: pd.DataFrame  # pnl_series on view.frame's grid: qty, delta, hedge_ratio, price_pnl, funding, fees, pnl


def hedge_chart_data(store: Store, hedge_id: str, *, venue: str, spot_symbol: str, timeframe: str,
                     transitions: pd.DataFrame, last_ts: Any = None, max_points: int = 1500) -> ChartData | str:
    """The hedge's prices and PnL over its own period, or a sentence saying why there are none."""
    data_venue, data_last = None, None
    for v in dict.fromkeys([venue, "binance", "demo"]):  # the runner's own choice of data venue, in order
        data_last = store.last_ts(v, spot_symbol, "spot", timeframe)
        if data_last is not None:
            data_venue = v
            break
    if data_venue is None or transitions is None or transitions.empty:
        return "No stored market data for this hedge's pair (or no transitions yet): charts need both."
    start, end = hedge_window(transitions, last_ts, pd.Timestamp("2000-01-01", tz="UTC"), data_last)
    try:
        view = pair_view(store, data_venue, spot_symbol, start, end, timeframe=timeframe, max_points=max_points)
    except MissingSeries as exc:
        return f"No chart: {exc}"
    prices = pd.DataFrame({"spot": view.frame["spot"],
                           "perp": view.frame["mark"] if "mark" in view.frame else view.frame["perp"]}).ffill()
    series = pnl_series(hedge_flows(store, hedge_id, view.timeframe), funding_rows(store, hedge_id, view.timeframe),
                        prices)
    return ChartData(view, series)


def equity_curves(data: Mapping[str, ChartData | str]) -> dict[str, pd.Series]:
    """Net PnL (quote) over time of every hedge that has chart data; each on its own clock."""
    return {hid: d.series["pnl"] for hid, d in data.items() if isinstance(d, ChartData) and len(d.series)}


def backtest_overlay(store: Store, params_ref: str, *, venue: str, spot_symbol: str, timeframe: str,
                     transitions: pd.DataFrame, last_ts: Any = None, notional: float | None = None,
                     params_root: str | None = None) -> pd.Series | str:
    """Net PnL (USDT) of a backtest of the hedge's own parameter set over the hedge's own period, on the
    same stored bars, for the paper-vs-backtest overlay; or a sentence saying why there is none.

    ``notional`` is the hedge's size override (quote) when it was started with one. A replayed paper hedge
    and this backtest run the same engine on the same bars: their curves should lie on each other (fills
    at the same prices; differences come from the replay's start instant and live-only events).
    """
    from hedge_core.params import store as param_store
    from hedge_core.ui.views.research import run_set, set_field

    if transitions is None or transitions.empty:
        return "no transitions yet"
    ts = pd.to_datetime(transitions["ts"], utc=True)
    start = ts.min()
    end = max(ts.max(), pd.Timestamp(last_ts)) if last_ts not in (None, "", "None", "NaT") else ts.max()
    if not end > start:
        return "the hedge has not run long enough to compare"
    try:
        params = param_store.load(params_ref, root=params_root).params
        if notional is not None and "notional" in type(params).model_fields:
            params = set_field(params, "notional", float(notional))
        res = run_set(store, params, venue=venue, spot_symbol=spot_symbol, timeframe=timeframe,
                      start=start.floor(timeframe), end=end.ceil(timeframe), hedge_id="overlay")
    except Exception as exc:  # noqa: BLE001 - shown as a sentence on the page, never a traceback
        return f"no backtest to compare: {type(exc).__name__}: {exc}"
    return res.equity["net"]
