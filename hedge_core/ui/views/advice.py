"""The Risk page's "Second opinion" table, built from the runner's hedge summaries (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

__all__ = ["ADVICE_COLUMNS", "advice_table"]

ADVICE_COLUMNS = ["hedge_id", "analyzer", "score", "level", "action", "findings"]


def advice_table(summaries: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per hedge with an opinion (``summary["advice"]``): analyzer, score (0..100), level,
    recommended action and the findings joined by " | "; most severe (highest score) first."""
    rows = []
    for s in summaries:
        a = s.get("advice")
        if not isinstance(a, Mapping):
            continue
        rows.append({"hedge_id": str(s.get("hedge_id", "")), "analyzer": str(a.get("analyzer", "")),
                     "score": int(a.get("score", 0)), "level": str(a.get("level", "")),
                     "action": str(a.get("action", "")), "findings": " | ".join(map(str, a.get("findings") or []))})
    if not rows:
        return pd.DataFrame(columns=ADVICE_COLUMNS)
    return pd.DataFrame(rows, columns=ADVICE_COLUMNS).sort_values(["score", "hedge_id"], ascending=[False, True],
                                                                  ignore_index=True)
