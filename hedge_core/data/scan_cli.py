"""CLI: ``hedge scan``, the funding-carry scanner over the store (a typer app the top-level ``hedge`` mounts).

Ranks (symbol, venue pair, direction) by expected net carry after both legs' taker fees and slippage
over the hold (:func:`hedge_core.analytics.scanner.scan`; docs/scanner.md). Bad input is one line on
stderr naming the option and its allowed range, exit code 2; nothing is written (the store is opened
read-only).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hedge_core.errors import HedgeError, InvalidInput

if TYPE_CHECKING:  # the CLI imports the analytics only when a command runs (fast `hedge --help`)
    import pandas as pd

    from hedge_core.analytics.scanner import ScanConfig

app = typer.Typer(help="Funding-carry scanner.", no_args_is_help=False, add_completion=False)

__all__ = ["app", "build_config", "format_table"]

#: ScanConfig field -> the option that sets it (errors name the option the user typed)
FLAGS = {"lookback_days": "--lookback", "hold_days": "--hold", "min_history_days": "--min-history",
         "venues": "--venue", "kinds": "--kind", "top": "--top", "slippage_rate": "--slippage-bps",
         "borrow_apr": "--borrow-apr", "as_of": "--as-of"}


def build_config(*, lookback: str, hold: str, min_history: str, top: str, venues: list[str] | None,
                 kinds: list[str] | None, slippage_bps: str, borrow_apr: str, as_of: str | None) -> ScanConfig:
    """A validated :class:`ScanConfig` from the options' raw text; InvalidInput names the option.

    The numeric text goes to ScanConfig as is: it parses and range-checks it, so text that is not a number
    is refused with the same allowed range as a number out of range."""
    import pandas as pd

    from hedge_core.analytics.scanner import KINDS, ScanConfig

    try:
        n_top = int(str(top))
    except ValueError:
        raise InvalidInput("--top", top, "an integer in [1, 10000]") from None
    try:
        slip = float(slippage_bps)
    except ValueError:
        raise InvalidInput("--slippage-bps", slippage_bps, "a number in [0, 100] basis points") from None
    if not (math.isfinite(slip) and 0 <= slip <= 100):
        raise InvalidInput("--slippage-bps", slippage_bps, "a number in [0, 100] basis points")
    t = None
    if as_of:
        try:
            t = pd.Timestamp(as_of)
        except (ValueError, TypeError):
            raise InvalidInput("--as-of", as_of, "a UTC date or time, e.g. 2024-06-01 or 2024-06-01T08:00Z") from None
        t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    vs = tuple(v.strip().lower() for item in (venues or []) for v in item.split(",") if v.strip()) or None
    ks = tuple(k.strip() for item in (kinds or []) for k in item.split(",") if k.strip()) or KINDS
    try:
        return ScanConfig(lookback_days=lookback, hold_days=hold, min_history_days=min_history,  # type: ignore[arg-type]
                          venues=vs, kinds=ks, top=n_top, slippage_rate=slip / 1e4, borrow_apr=borrow_apr,  # type: ignore[arg-type]
                          as_of=t)
    except InvalidInput as e:
        if e.field in FLAGS:
            raise InvalidInput(FLAGS[e.field], e.value, e.allowed) from None
        raise


def _pct(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{100 * x:.{digits}f}%"


def format_table(ranked: pd.DataFrame) -> pd.DataFrame:
    """The ranked frame as text columns for a terminal (percentages, days, sizes)."""
    import pandas as pd

    def iv(a: float, b: float) -> str:
        return "/".join(f"{v:g}h" for v in (a, b) if isinstance(v, float) and math.isfinite(v))

    def days(x: float) -> str:
        return "never" if not math.isfinite(x) else f"{x:.1f}"

    def size(q: float, qq: float) -> str:
        return "unknown" if not math.isfinite(q) else f"{q:g} ({qq:,.2f})" if math.isfinite(qq) else f"{q:g}"

    r = ranked
    return pd.DataFrame({
        "#": r["rank"], "symbol": r["symbol"], "direction": r["direction"],
        "funding": [iv(a, b) for a, b in zip(r["long_interval_h"], r["short_interval_h"])],
        "apr": [_pct(x) for x in r["apr_received"]], "costs": [_pct(x, 3) for x in r["round_trip"]],
        "net": [_pct(x, 3) for x in r["net_carry"]], "net_apr": [_pct(x) for x in r["net_apr"]],
        "break_even_d": [days(x) for x in r["break_even_days"]],
        "favourable": [_pct(x, 0) for x in r["share_favourable"]], "std_apr": [_pct(x) for x in r["spread_std"]],
        "n": r["n"], "history_d": [f"{x:.0f}" for x in r["history_days"]],
        "min_size base (quote)": [size(q, qq) for q, qq in zip(r["min_size_base"], r["min_size_quote"])],
    })


def _jsonable(v: object) -> object:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):
        return _jsonable(v.item())  # type: ignore[union-attr]
    return v


@app.command("scan")
def scan_cmd(
    lookback: str = typer.Option("30", "--lookback", help="days of funding whose mean is the expected APR, in (0, 3650]"),
    hold: str = typer.Option("30", "--hold", help="planned holding time in days, in (0, 3650]"),
    venue: list[str] = typer.Option(None, "--venue", help="venue(s) a leg may sit on (repeat or comma list; default all)"),
    kind: list[str] = typer.Option(None, "--kind", help="spot_perp and/or perp_perp (default both)"),
    min_history: str = typer.Option("7", "--min-history", help="days of shared funding history a row needs, in [0, 3650]"),
    top: str = typer.Option("20", "--top", help="rows shown, in [1, 10000]"),
    slippage_bps: str = typer.Option("1", "--slippage-bps", help="slippage per fill, basis points in [0, 100]"),
    borrow_apr: str = typer.Option("0", "--borrow-apr", help="APR of borrowing the coin to short spot, in [0, 1)"),
    as_of: str = typer.Option(None, "--as-of", help="evaluate at this UTC time (default: the last funding time)"),
    db: Path = typer.Option(None, "--db", help="DuckDB file (default: $HEDGE_DB, else data/hedge.duckdb)"),
    as_json: bool = typer.Option(False, "--json", help="print the config and the ranked rows as JSON"),
) -> None:
    """Rank funding-carry trades (spot/perp on one venue, perp/perp across venues) by expected net carry
    after both legs' taker fees and slippage over --hold (see docs/scanner.md)."""
    import pandas as pd

    from hedge_core.analytics.scanner import scan
    from hedge_core.data.scan_inputs import load_scan_inputs
    from hedge_core.store_open import open_store

    try:
        cfg = build_config(lookback=lookback, hold=hold, min_history=min_history, top=top, venues=venue,
                           kinds=kind, slippage_bps=slippage_bps, borrow_apr=borrow_apr, as_of=as_of)
        st = open_store(db, write=False)
        try:
            inputs = load_scan_inputs(st, as_of=cfg.as_of)
        finally:
            st.close()
        ranked = scan(inputs.funding, cfg, instruments=inputs.instruments, prices=inputs.prices)
    except InvalidInput as exc:
        field = FLAGS.get(exc.field, exc.field)
        typer.echo(f"error: {field}={exc.value!r} is not allowed; expected {exc.allowed}", err=True)
        raise typer.Exit(2) from None
    except HedgeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    as_of_used = cfg.as_of if cfg.as_of is not None else inputs.funding["ts"].max()
    if as_json:
        doc = {"as_of": pd.Timestamp(as_of_used).isoformat(), "lookback_days": cfg.lookback_days,
               "hold_days": cfg.hold_days, "min_history_days": cfg.min_history_days,
               "venues": list(cfg.venues) if cfg.venues else inputs.venues, "kinds": list(cfg.kinds),
               "slippage_rate": cfg.slippage_rate, "borrow_apr": cfg.borrow_apr,
               "rows": [{k: _jsonable(v) for k, v in rec.items()} for rec in ranked.to_dict("records")]}
        typer.echo(json.dumps(doc, indent=2))
        return
    typer.echo(f"funding carry as of {pd.Timestamp(as_of_used):%Y-%m-%d %H:%M} UTC · lookback {cfg.lookback_days:g} d · "
               f"hold {cfg.hold_days:g} d · venues {', '.join(cfg.venues or inputs.venues)} · "
               "net = APR x hold/365 - round trip (taker fees + slippage, both legs, open and close)")
    if ranked.empty:
        typer.echo(f"(no pair with >= {cfg.min_history_days:g} days of funding history in the window)")
        return
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 60):
        typer.echo(format_table(ranked).to_string(index=False))
