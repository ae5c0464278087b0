"""The book's view-model (pure): tables and headline figures from a ``GET /book`` answer.

Used by the panel's Book page and by ``hedge book``; the numbers' meaning is in docs/book.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["ASSET_COLUMNS", "NETTED_COLUMNS", "VENUE_COLUMNS", "book_headline", "book_tables", "guard_line"]

ASSET_COLUMNS = ["asset", "spot_qty", "perp_qty", "delta", "price", "delta_quote", "hedges"]
VENUE_COLUMNS = ["venue", "gross", "net", "margin_used", "margin_netted", "liq_distance", "liq_hedge", "hedges"]
NETTED_COLUMNS = ["asset", "venue", "spot_qty", "perp_qty", "delta", "mark", "margin_gross", "margin_netted",
                  "hedges"]
LOAN_COLUMNS = ["hedge_id", "venue", "asset", "outstanding", "collateral_value", "ltv"]
GUARD_COLUMNS = ["name", "scope", "action", "value", "limit", "reason"]
FUNDING_COLUMNS = ["day", "amount"]


def _frame(rows: Any, cols: list[str]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows or []), columns=cols)
    for c in cols:  # JSON null -> NaN for the numeric columns
        if c not in ("asset", "venue", "liq_hedge", "hedge_id", "name", "scope", "action", "reason", "day"):
            df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def book_tables(book: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """``assets``, ``venues``, ``netted``, ``loans``, ``guards``, ``funding`` (per UTC day) tables."""
    return {"assets": _frame(book.get("assets"), ASSET_COLUMNS),
            "venues": _frame(book.get("venues"), VENUE_COLUMNS),
            "netted": _frame(book.get("netted"), NETTED_COLUMNS),
            "loans": _frame(book.get("loans"), LOAN_COLUMNS),
            "guards": _frame(book.get("guards"), GUARD_COLUMNS),
            "funding": _frame(book.get("funding_per_day"), FUNDING_COLUMNS)}


def _f(x: Any) -> float:
    try:
        return float(x) if x is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def book_headline(book: Mapping[str, Any]) -> dict[str, Any]:
    """The headline numbers: hedges, gross/net exposure, margin used, PnL and today's, funding,
    drawdown, book LTV, both VaRs (with confidence, horizon and the VaR's error when it could not be
    computed), the guards firing: one sentence each, with what its action did (:func:`guard_line`)."""
    var = book.get("var") or {}
    fund = book.get("funding_per_day") or []
    return {"hedges": int(book.get("hedges") or 0), "gross": _f(book.get("gross")), "net": _f(book.get("net")),
            "margin_used": _f(book.get("margin_used")), "pnl": _f(book.get("pnl")), "day_pnl": _f(book.get("day_pnl")),
            "funding": _f(book.get("funding")),
            "funding_last_day": _f(fund[-1]["amount"]) if fund else float("nan"),
            "drawdown": _f(book.get("drawdown")), "max_drawdown": _f(book.get("max_drawdown")),
            "book_ltv": _f(book.get("book_ltv")), "var_historical": _f(var.get("historical")),
            "var_parametric": _f(var.get("parametric")), "var_confidence": var.get("confidence"),
            "var_horizon": var.get("horizon"), "var_error": var.get("error"),
            "var_diversification": _f(var.get("diversification")),
            "guards": [guard_line(g) for g in book.get("guards") or []]}


def guard_line(g: Mapping[str, Any]) -> str:
    """A firing book guard in one sentence: its reason and what its action does (docs/book.md)."""
    if g.get("action") == "flatten":
        return (f"{g.get('reason', '')}: action flatten: the hedges there were flattened once (operator kill switch), "
                "new entries blocked")
    return f"{g.get('reason', '')}: action block_entries: new entries blocked there, nothing traded"
