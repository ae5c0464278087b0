"""What the Scanner page shows: the ranked funding-carry table, a row's spread history, and what
"start a hedge from this row" may prefill. Pure over frames, except :func:`read_inputs` (the store's
read functions, through :mod:`hedge_core.data.scan_inputs`).

Starting from a row: the engine's hedge has both legs on ONE venue (the runner's), so only
``spot_perp`` rows prefill the Start-a-hedge form (paper mode, the spot symbol, a size at least the
row's smallest hedgeable size). A ``perp_perp`` row's legs sit on two venues, which the engine does not
support yet: :func:`start_prefill` returns the reason instead, and the page shows it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from hedge_core.analytics.scanner import ScanConfig, scan, split_symbol, spread_history
from hedge_core.data.scan_inputs import ScanInputs, load_scan_inputs
from hedge_core.store import Store

__all__ = ["PREFILL_KEY", "ScanView", "StartPrefill", "display_table", "read_inputs", "row_spread", "scan_view",
           "start_prefill"]

#: session key the Start-a-hedge page reads its prefill from
PREFILL_KEY = "start_prefill"

DISPLAY_COLUMNS = ["#", "symbol", "direction", "funding", "APR %", "costs %", "net %", "net APR %",
                   "break-even d", "favourable %", "std APR %", "n", "history d", "min size (base)",
                   "min size (quote)", "size from"]


@dataclass(frozen=True)
class ScanView:
    """The page's data: the ranked rows (:data:`~hedge_core.analytics.scanner.RESULT_COLUMNS`), the inputs
    they came from and the time they are evaluated at (the last funding time unless ``as_of``)."""

    ranked: pd.DataFrame
    inputs: ScanInputs
    as_of: pd.Timestamp


def scan_view(inputs: ScanInputs, config: ScanConfig) -> ScanView:
    """Rank the inputs (read once with :func:`~hedge_core.data.scan_inputs.load_scan_inputs`); InvalidInput
    names a bad field."""
    ranked = scan(inputs.funding, config, instruments=inputs.instruments, prices=inputs.prices)
    as_of = config.as_of if config.as_of is not None else pd.Timestamp(inputs.funding["ts"].max())
    return ScanView(ranked, inputs, as_of)


def read_inputs(store: Store) -> ScanInputs:
    """Everything the scanner reads from the store (funding, instruments, prices)."""
    return load_scan_inputs(store)


def display_table(ranked: pd.DataFrame) -> pd.DataFrame:
    """The ranked rows as the page's table: fractions as percent numbers (sortable), days, sizes."""
    def iv(a: float, b: float) -> str:
        return "/".join(f"{v:g}h" for v in (a, b) if isinstance(v, float) and math.isfinite(v))

    r = ranked
    return pd.DataFrame({
        "#": r["rank"].to_numpy(), "symbol": r["symbol"].to_numpy(), "direction": r["direction"].to_numpy(),
        "funding": [iv(a, b) for a, b in zip(r["long_interval_h"], r["short_interval_h"], strict=True)],
        "APR %": 100 * r["apr_received"].to_numpy(), "costs %": 100 * r["round_trip"].to_numpy(),
        "net %": 100 * r["net_carry"].to_numpy(), "net APR %": 100 * r["net_apr"].to_numpy(),
        "break-even d": r["break_even_days"].to_numpy(), "favourable %": 100 * r["share_favourable"].to_numpy(),
        "std APR %": 100 * r["spread_std"].to_numpy(), "n": r["n"].to_numpy(),
        "history d": r["history_days"].to_numpy(), "min size (base)": r["min_size_base"].to_numpy(),
        "min size (quote)": r["min_size_quote"].to_numpy(), "size from": r["size_source"].to_numpy(),
    }, columns=DISPLAY_COLUMNS)


def row_spread(view: ScanView, row: Mapping[str, object]) -> pd.DataFrame:
    """The selected row's spread history up to ``as_of`` (see :func:`~hedge_core.analytics.scanner.spread_history`)."""
    return spread_history(view.inputs.funding, row, as_of=view.as_of)


@dataclass(frozen=True)
class StartPrefill:
    """What the Start-a-hedge form is prefilled with (paper by default; the operator still confirms)."""

    spot_symbol: str
    venue: str
    mode: str
    min_size: float  # quote; 0 when unknown
    note: str

    def as_dict(self) -> dict[str, object]:
        return {"spot_symbol": self.spot_symbol, "venue": self.venue, "mode": self.mode,
                "min_size": self.min_size, "note": self.note}


def start_prefill(row: Mapping[str, object]) -> StartPrefill | str:
    """The prefill of a ``spot_perp`` row, or the reason a row cannot start a hedge (a sentence)."""
    kind = str(row.get("kind"))
    if kind == "perp_perp":
        return (f"{row.get('direction')} has its legs on two venues ({row.get('long_venue')} and "
                f"{row.get('short_venue')}); the engine runs a hedge's legs on one venue only, so a cross-venue "
                "hedge cannot be started yet. Same-venue (spot/perp) rows can be started from here.")
    if kind != "spot_perp":
        return f"unknown row kind {kind!r}"
    base, quote, _ = split_symbol(str(row["symbol"]))
    venue = str(row["short_venue"])
    q = row.get("min_size_quote")
    min_size = float(q) if isinstance(q, (int, float)) and math.isfinite(q) else 0.0
    reverse = row.get("short_leg") == "spot"
    note = (f"From the scanner: {row.get('direction')} ({base}/{quote}), expected net carry "
            f"{100 * float(row['net_carry']):.3f}% over the hold. Paper mode by default. The hedge runs on the "
            f"runner's venue; the row is on {venue}.")
    if reverse:
        note += (" Negative funding: the carry strategy shorts spot only with a parameter set that has "
                 "allow_spot_short = true (else it stays out).")
    if min_size > 0:
        note += f" Smallest hedgeable size about {min_size:,.2f} {quote}."
    return StartPrefill(f"{base}/{quote}", venue, "paper", min_size, note)
