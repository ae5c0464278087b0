"""What the Research page runs and shows: a backtest or a small sweep of one parameter set.

Backtests go through :func:`hedge_core.backtest.run_backtest` (the one engine); a sweep is a
grid of at most ``MAX_SWEEP_RUNS`` variants of one set, each validated by the parameter models,
replayed over one shared timeline. Pure helpers build the grid and the heatmap table; the runner
functions only read market data from the store they are given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hedge_core import param_store
from hedge_core.errors import InvalidInput

__all__ = ["MAX_SWEEP_RUNS", "numeric_fields", "set_field", "sweep_grid", "parse_values", "run_set",
           "SweepResult", "run_sweep", "sweep_pivot", "kpi_table"]

MAX_SWEEP_RUNS = 36


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def numeric_fields(params: Any) -> list[str]:
    """Dotted names of the numeric (non-bool) fields of a parameter model, e.g. 'rebalance.drift_threshold'."""
    flat = _flat(params.model_dump(mode="json"))
    return sorted(k for k, v in flat.items() if isinstance(v, (int, float)) and not isinstance(v, bool))


def set_field(params: Any, dotted: str, value: Any) -> Any:
    """A copy of ``params`` with one (dotted) field changed, validated (InvalidInput names the field)."""
    data = params.model_dump(mode="json")
    d = data
    parts = dotted.split(".")
    for p in parts[:-1]:
        if not isinstance(d.get(p), dict):
            raise InvalidInput("field", dotted, f"one of {numeric_fields(params)}")
        d = d[p]
    if parts[-1] not in d:
        raise InvalidInput("field", dotted, f"one of {numeric_fields(params)}")
    d[parts[-1]] = value
    return param_store.parse(data, where="sweep")


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


def sweep_grid(params: Any, x_field: str, x_values: Sequence[float], y_field: str | None = None,
               y_values: Sequence[float] | None = None) -> list[tuple[dict[str, float], Any]]:
    """Every combination as (coordinates, validated params); at most ``MAX_SWEEP_RUNS``."""
    ys: Sequence[float | None] = list(y_values) if y_field else [None]
    n = len(x_values) * len(ys)
    if n > MAX_SWEEP_RUNS:
        raise InvalidInput("grid", n, f"at most {MAX_SWEEP_RUNS} runs (a small sweep; use hedge_core.sweep for more)")
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


def run_set(store: Any, params: Any, *, venue: str, spot_symbol: str, timeframe: str, start: Any, end: Any,
            hedge_id: str = "panel-bt") -> Any:
    """One backtest of ``params`` on the store's ``venue``/``spot_symbol`` bars over [start, end)."""
    from hedge_core.backtest import BacktestConfig, run_backtest
    from hedge_core.backtest_data import load_market
    from hedge_core.types import perp_of

    market = load_market(store, venue=venue, spot_symbol=spot_symbol, perp_symbol=perp_of(spot_symbol),
                         timeframe=timeframe, start=start, end=end)
    return run_backtest(params, market, start=pd.Timestamp(start), end=pd.Timestamp(end),
                        config=BacktestConfig(hedge_id=hedge_id))


@dataclass(frozen=True)
class SweepResult:
    table: pd.DataFrame  # one row per run: coordinates + KPIs + error
    x_field: str
    y_field: str | None


def run_sweep(store: Any, grid: list[tuple[dict[str, float], Any]], *, venue: str, spot_symbol: str, timeframe: str,
              start: Any, end: Any, progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Backtest every grid point over one shared timeline; a failing point records its error."""
    from hedge_core.backtest import BacktestConfig, run_backtest
    from hedge_core.backtest_data import build_timeline, load_market
    from hedge_core.types import perp_of

    market = load_market(store, venue=venue, spot_symbol=spot_symbol, perp_symbol=perp_of(spot_symbol),
                         timeframe=timeframe, start=start, end=end)
    tl = build_timeline(market, start=pd.Timestamp(start), end=pd.Timestamp(end))
    rows = []
    for i, (coords, p) in enumerate(grid):
        try:
            r = run_backtest(p, tl, config=BacktestConfig(hedge_id=f"panel-sweep-{i}"))
            rows.append({**coords, **{k: float(v) for k, v in r.kpis.items()}, "error": ""})
        except Exception as exc:  # noqa: BLE001 - one bad point must not lose the others; it is shown
            rows.append({**coords, "error": f"{type(exc).__name__}: {exc}"})
        if progress is not None:
            progress(i + 1, len(grid))
    keys = list(grid[0][0]) if grid else []
    return SweepResult(pd.DataFrame(rows), keys[0] if keys else "", keys[1] if len(keys) > 1 else None)


def sweep_pivot(result: SweepResult, kpi: str) -> pd.DataFrame:
    """KPI as a table: rows = y values (or one row 'all'), columns = x values."""
    t = result.table
    if kpi not in t.columns:
        raise InvalidInput("kpi", kpi, f"one of {[c for c in t.columns if c not in (result.x_field, result.y_field, 'error')]}")
    if result.y_field:
        return t.pivot_table(index=result.y_field, columns=result.x_field, values=kpi, aggfunc="first")
    return pd.DataFrame([t[kpi].to_numpy()], columns=t[result.x_field].to_numpy(), index=[kpi])


def kpi_table(kpis: dict[str, float]) -> pd.DataFrame:
    """KPIs as a two-column table (name, value), NaN kept."""
    return pd.DataFrame({"kpi": list(kpis), "value": [float(v) if v is not None else np.nan for v in kpis.values()]})
