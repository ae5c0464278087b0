"""Ledger reads for the panel, bounded for speed: aggregated or cut in SQL by the store.

The store (``hedge_core.store``) is the only module that speaks SQL; its aggregates (``fill_flows``,
``funding_flows``, ``table_counts``) and ``read_table(latest=n)`` keep every page bounded at a
million fills.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from hedge_core.store import Store

__all__ = ["recent_rows", "hedge_flows", "funding_rows", "runs", "row_count", "run_info"]


def recent_rows(store: Store, table: str, hedge_id: str, n: int = 200) -> pd.DataFrame:
    """The last ``n`` rows of a ledger table for one hedge, newest first."""
    df = store.read_table(table, hedge_id=hedge_id, latest=n)  # type: ignore[arg-type]
    return df.iloc[::-1].reset_index(drop=True)


def hedge_flows(store: Store, hedge_id: str, every: str | None = None) -> pd.DataFrame:
    """Fill money flows of one hedge per leg (and ``every`` bucket): see :meth:`Store.fill_flows`."""
    return store.fill_flows(hedge_id=hedge_id, every=every)


def funding_rows(store: Store, hedge_id: str, every: str | None = None) -> pd.DataFrame:
    """Funding of one hedge: ts, n, amount (quote, + received), bucketed by ``every`` when given."""
    return store.funding_flows(hedge_id=hedge_id, every=every)


def runs(store: Any) -> pd.DataFrame:
    """``hedge_runs`` (every journaled hedge and backtest run)."""
    return store.read_table("hedge_runs")


def row_count(store: Store, table: str, hedge_id: str) -> int:
    """Rows of ``table`` for one hedge (a GROUP BY in SQL)."""
    c = store.table_counts(table, "hedge_id")  # type: ignore[arg-type]
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
