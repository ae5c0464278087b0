"""Ledger reads for the panel, bounded for speed: aggregates in SQL when the store offers them.

The store (``hedge_core.store``) is the only module that speaks SQL; its aggregates
(``fill_flows``, ``funding_flows``, ``read_table(latest=)``) keep every page bounded at a million
fills. A store object without them (a duck-typed test double) gets the same figures from
``read_table`` rows.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from hedge_core.views.hedges import fill_flows

__all__ = ["recent_rows", "hedge_flows", "funding_rows", "runs", "row_count", "run_info"]

TS_TABLES = frozenset({"fills", "funding_payments", "position_snapshots", "transitions", "guard_firings",
                       "ltv_history", "reserve_deployments"})


def recent_rows(store: Any, table: str, hedge_id: str, n: int = 200) -> pd.DataFrame:
    """The last ``n`` rows of a ledger table for one hedge, newest first."""
    if table in TS_TABLES:
        df = store.read_table(table, hedge_id=hedge_id, latest=n)
    else:  # no ts column (orders): read and cut
        df = store.read_table(table, hedge_id=hedge_id)
    tcol = next((c for c in ("ts", "updated_ts", "intent_ts") if c in df.columns), None)
    if tcol is not None and len(df):
        df = df.sort_values(tcol, ascending=False)
    return df.head(n).reset_index(drop=True)


def hedge_flows(store: Any, hedge_id: str, every: str | None = None) -> pd.DataFrame:
    """Fill money flows of one hedge (see :func:`hedge_core.views.hedges.fill_flows`)."""
    agg = getattr(store, "fill_flows", None)
    if agg is not None:
        return agg(hedge_id=hedge_id, every=every)
    return fill_flows(store.read_table("fills", hedge_id=hedge_id))


def funding_rows(store: Any, hedge_id: str, every: str | None = None) -> pd.DataFrame:
    """Funding payments of one hedge: ts, amount (quote, + received) (bucketed when the store can)."""
    agg = getattr(store, "funding_flows", None)
    if agg is not None:
        return agg(hedge_id=hedge_id, every=every)
    df = store.read_table("funding_payments", hedge_id=hedge_id)
    return df


def runs(store: Any) -> pd.DataFrame:
    """``hedge_runs`` (every journaled hedge and backtest run)."""
    return store.read_table("hedge_runs")


def row_count(store: Any, table: str, hedge_id: str) -> int:
    """Rows of ``table`` for one hedge (a GROUP BY in SQL when the store has ``table_counts``)."""
    agg = getattr(store, "table_counts", None)
    if agg is None:
        return len(store.read_table(table, hedge_id=hedge_id))
    c = agg(table, "hedge_id")
    hit = c.loc[c["hedge_id"] == hedge_id, "rows"]
    return int(hit.iloc[0]) if len(hit) else 0


def run_info(run_rows: pd.DataFrame) -> dict[str, Any]:
    """The ``info`` JSON (the hedge's spec) of a ``hedge_runs`` row, {} when absent or unreadable."""
    import json

    if run_rows is None or not len(run_rows) or "info" not in run_rows.columns:
        return {}
    v = run_rows["info"].iloc[0]
    if isinstance(v, dict):
        return v
    try:
        out = json.loads(v) if isinstance(v, str) and v else {}
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}
