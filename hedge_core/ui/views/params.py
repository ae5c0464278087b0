"""What the Start and Parameter sets pages show of parameter sets: pure over param_store answers."""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["choices", "provenance_table"]


def choices(listing: pd.DataFrame) -> pd.DataFrame:
    """``param_store.list_sets()`` rows as selectable versions, newest first, invalid ones left out.

    Columns: ref ('name@v'), label (ref, strategy, status, KPIs), status, strategy.
    """
    if listing is None or listing.empty:
        return pd.DataFrame(columns=["ref", "label", "status", "strategy"])
    ok = listing[listing["status"] != "invalid"].sort_values(["name", "version"], ascending=[True, False])
    refs = [f"{n}@{int(v)}" for n, v in zip(ok["name"], ok["version"], strict=True)]
    labels = [f"{r} · {s} · {st}" + (f" · {k}" if k else "")
              for r, s, st, k in zip(refs, ok["strategy"], ok["status"], ok["kpis"], strict=True)]
    return pd.DataFrame({"ref": refs, "label": labels, "status": ok["status"].to_numpy(),
                         "strategy": ok["strategy"].to_numpy()})


def provenance_table(ps: Any) -> pd.DataFrame:
    """Provenance of a version as (field, value) rows, KPIs excluded (shown on their own)."""
    rows = [{"field": "status", "value": str(ps.status)}, {"field": "strategy", "value": str(ps.strategy)}]
    for k, v in dict(ps.provenance).items():
        if k == "kpis":
            continue
        rows.append({"field": k, "value": ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)})
    return pd.DataFrame(rows)
