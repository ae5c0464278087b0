"""What the Research page runs and shows: a backtest or a small sweep of one parameter set.

Backtests go through :func:`hedge_core.backtest.event.run_backtest` (the one engine); a small sweep
(at most ``MAX_SWEEP_RUNS`` points) goes through :func:`hedge_core.backtest.sweep.run_sweep` over one shared
timeline, in this process (fast path when it accepts the run, else the event-driven backtester). A cross-venue
carry set (``xcarry``) runs on the store's prices with its perp venue's own funding from the store, like
``hedge backtest`` / ``hedge sweep`` (a sweep over ``perp_venue`` gets one timeline per venue).
Field changes are validated by :func:`hedge_core.backtest.sweep.set_path` (InvalidInput names the field).
Pure helpers build the grid and the heatmap table; the run functions only read market data from
the store they are given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from hedge_core.errors import InvalidInput

if TYPE_CHECKING:
    from hedge_core.params.models import StrategyParamsBase

__all__ = ["DEFAULT_SWEEPS", "MAX_SWEEP_RUNS", "default_sweep", "numeric_fields", "set_field", "sweep_grid", "parse_values", "run_set",
           "SweepResult", "run_sweep", "sweep_pivot", "kpi_columns"]

MAX_SWEEP_RUNS = 36


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def numeric_fields(params: StrategyParamsBase) -> list[str]:
    """Dotted names of the numeric (non-bool) fields of a parameter model, e.g. 'rebalance.drift_threshold'."""
    flat = _flat(params.model_dump(mode="json"))
    return sorted(k for k, v in flat.items() if isinstance(v, (int, float)) and not isinstance(v, bool))


#: The sweep the Research page proposes per strategy: the field that decides whether and how much the
#: strategy trades (a drift threshold barely matters to a carry that rarely rebalances: three equal cells).
DEFAULT_SWEEPS: dict[str, tuple[str, str]] = {
    "carry": ("exit.max_holding_hours", "8, 24, 72, 168"),  # one entry, then held: how long is the choice
    "cross": ("min_correlation", "0.3, 0.5, 0.7, 0.9"),
    "grid": ("spacing_sigma", "0.5, 1, 2, 3"),
    "voltier": ("pt_k", "0.5, 1, 1.5, 3"),
}


def default_sweep(params: StrategyParamsBase) -> tuple[str, str]:
    """(dotted field, comma-separated values) the Research page proposes for ``params``' strategy."""
    field, values = DEFAULT_SWEEPS.get(str(getattr(params, "strategy", "")), ("rebalance.drift_threshold", "0.02, 0.05, 0.1"))
    return (field, values) if field in numeric_fields(params) else ("rebalance.drift_threshold", "0.02, 0.05, 0.1")


def set_field(params: StrategyParamsBase, dotted: str, value: Any) -> StrategyParamsBase:
    """A copy of ``params`` with one (dotted) field changed, validated (InvalidInput names the field)."""
    from hedge_core.backtest.sweep import set_path

    return set_path(params, dotted, value)


def parse_values(text: str, field: str = "values") -> list[float]:
    """'0.01, 0.02, 0.05' -> [0.01, 0.02, 0.05]; InvalidInput naming ``field`` otherwise."""
    out = []
    for tok in (text or "").replace(";", ",").split(","):
        tok = tok.strip()
        if not tok:
            continue
        try:
            out.append(float(tok))
        except ValueError:
            raise InvalidInput(field, tok, "comma-separated numbers, e.g. 0.01, 0.02") from None
    if not out:
        raise InvalidInput(field, text, "at least one number")
    return out


def sweep_grid(params: StrategyParamsBase, x_field: str, x_values: Sequence[float], y_field: str | None = None,
               y_values: Sequence[float] | None = None) -> list[tuple[dict[str, float], Any]]:
    """Every combination as (coordinates, validated params); at most ``MAX_SWEEP_RUNS``."""
    ys: Sequence[float | None] = list(y_values) if y_field else [None]
    n = len(x_values) * len(ys)
    if n > MAX_SWEEP_RUNS:
        raise InvalidInput("grid", n, f"at most {MAX_SWEEP_RUNS} runs (a small sweep; use hedge_core.backtest.sweep for more)")
    out = []
    for y in ys:
        for x in x_values:
            p = set_field(params, x_field, x)
            coords = {x_field: float(x)}
            if y_field and y is not None:
                p = set_field(p, y_field, y)
                coords[y_field] = float(y)
            out.append((coords, p))
    return out


def run_set(store: Any, params: StrategyParamsBase, *, venue: str, spot_symbol: str, timeframe: str, start: Any, end: Any,
            hedge_id: str = "panel-bt") -> Any:
    """One backtest of ``params`` on the store's ``venue``/``spot_symbol`` bars over [start, end)."""
    from hedge_core.backtest.event import BacktestConfig, run_backtest
    from hedge_core.backtest.timeline import load_market
    from hedge_core.types import perp_of

    from hedge_core.backtest.xvenue_cli import is_xcarry

    if is_xcarry(params):  # legs on two venues: the store's prices, the perp venue's own funding
        from hedge_core.backtest.xvenue import run_cross_venue_backtest
        from hedge_core.backtest.xvenue_sweep import cross_venue_config

        m = _xmarkets(store, params, [params.perp_venue], venue=venue, spot_symbol=spot_symbol, timeframe=timeframe,
                      start=start, end=end).by_venue[params.perp_venue]
        return run_cross_venue_backtest(params, m, start=pd.Timestamp(start), end=pd.Timestamp(end),
                                        config=cross_venue_config(BacktestConfig(hedge_id=hedge_id), params)).result
    market = load_market(store, venue=venue, spot_symbol=spot_symbol, perp_symbol=perp_of(spot_symbol),
                         timeframe=timeframe, start=start, end=end)
    return run_backtest(params, market, start=pd.Timestamp(start), end=pd.Timestamp(end),
                        config=BacktestConfig(hedge_id=hedge_id))


def _xmarkets(store: Any, params: Any, perp_venues: Sequence[str], *, venue: str, spot_symbol: str, timeframe: str,
              start: Any, end: Any, first_funding: bool | None = None) -> Any:
    """The store's prices with each perp venue's funding, for an ``xcarry`` set (``hedge backtest``'s loader;
    ``first_funding``: see :func:`hedge_core.backtest.xvenue_cli.store_cross_venue_markets`)."""
    from hedge_core.backtest.xvenue_cli import store_cross_venue_markets

    asset, _, quote = spot_symbol.partition("/")
    return store_cross_venue_markets(store, params, perp_venues, price_venue=venue, asset=asset, quote=quote,
                                     timeframe=timeframe, start=start, end=end, first_funding=first_funding)


@dataclass(frozen=True)
class SweepResult:
    table: pd.DataFrame  # one row per run: coordinates + KPIs + error
    x_field: str
    y_field: str | None


def run_sweep(store: Any, grid: list[tuple[dict[str, float], Any]], *, venue: str, spot_symbol: str, timeframe: str,
              start: Any, end: Any, progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Backtest every grid point over one shared timeline (:func:`hedge_core.backtest.sweep.run_sweep`, in
    this process); a failing point keeps its error in the table."""
    from hedge_core.backtest import sweep as sw
    from hedge_core.backtest.event import BacktestConfig
    from hedge_core.backtest.timeline import build_timeline, load_market
    from hedge_core.types import perp_of

    if not grid:
        raise InvalidInput("grid", 0, "at least one point")
    points = [coords for coords, _ in grid]
    base = grid[0][1]
    cfg = BacktestConfig(hedge_id="panel-sweep")
    from hedge_core.backtest.xvenue_cli import is_xcarry

    if is_xcarry(base):  # one timeline per venue the grid names, each with that venue's funding (a perp pair:
        from hedge_core.backtest.xvenue_cli import sweep_venues_of  # its first venue's too)

        vm = _xmarkets(store, base, sweep_venues_of(base, points), venue=venue, spot_symbol=spot_symbol,
                       timeframe=timeframe, start=start, end=end, first_funding=False)
        tl: Any = vm.timelines(start=pd.Timestamp(start), end=pd.Timestamp(end), config=cfg)
    else:
        market = load_market(store, venue=venue, spot_symbol=spot_symbol, perp_symbol=perp_of(spot_symbol),
                             timeframe=timeframe, start=start, end=end)
        tl = build_timeline(market, start=pd.Timestamp(start), end=pd.Timestamp(end))
    table = sw.run_sweep(base, points, payload=sw.Payload(timeline=tl, config=cfg),
                         workers=0, progress=progress, show_progress=False)
    keys = list(points[0])
    return SweepResult(table, keys[0], keys[1] if len(keys) > 1 else None)


def sweep_pivot(result: SweepResult, kpi: str) -> pd.DataFrame:
    """KPI as a table: rows = y values (or one row 'all'), columns = x values."""
    t = result.table
    if kpi not in t.columns:
        raise InvalidInput("kpi", kpi, f"one of {kpi_columns(result)}")
    if result.y_field:
        return t.pivot_table(index=result.y_field, columns=result.x_field, values=kpi, aggfunc="first")
    return pd.DataFrame([t[kpi].to_numpy()], columns=t[result.x_field].to_numpy(), index=[kpi])


def kpi_columns(result: SweepResult) -> list[str]:
    """The KPI columns of a sweep table (numeric, not a swept field, not path/error)."""
    skip = {result.x_field, result.y_field, "error", "path"}
    return [c for c in result.table.columns if c not in skip and pd.api.types.is_numeric_dtype(result.table[c])]
