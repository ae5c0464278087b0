"""``hedge data ...``: download, instruments, import, status, quality, seed. Mounted by ``hedge_core.cli``.

Every command takes ``--db FILE`` (default ``$HEDGE_DB``, else ``data/hedge.duckdb``). Errors are
printed as one line saying what is wrong (exit code 1), never as a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hedge_core.errors import HedgeError

if TYPE_CHECKING:  # pandas loads inside the commands that use it: `hedge --help` starts fast
    import pandas as pd

data_app = typer.Typer(help="Market data: download, import, status, quality, seed.", no_args_is_help=True,
                       add_completion=False)

DB_HELP = "DuckDB file (default: $HEDGE_DB, else data/hedge.duckdb)."


@contextmanager
def _store(db: Path | None, *, write: bool) -> Iterator[object]:
    """The command's store (``write=False``: a missing file is refused, never created)."""
    from hedge_core.store_open import open_store

    try:
        st = open_store(db, write=write)
    except HedgeError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    try:
        yield st
    except HedgeError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    finally:
        st.close()


def _print_table(df: pd.DataFrame) -> None:
    import pandas as pd

    if df.empty:
        typer.echo("(none)")
        return
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_rows", 500):
        typer.echo(df.to_string(index=False))


def _jsonable(v: object) -> object:
    import pandas as pd

    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if v is None or (isinstance(v, float) and v != v):
        return None
    if hasattr(v, "item"):
        return v.item()  # numpy scalar
    return v


@data_app.command("download")
def download_cmd(
    db: Path = typer.Option(None, "--db", help=DB_HELP),
    venue: str = typer.Option("binance", help="ccxt exchange id."),
    symbol: list[str] = typer.Option(["BTC/USDT", "ETH/USDT"], "--symbol", "-s",
                                     help="Spot pair or perp (repeat for several)."),
    kind: list[str] = typer.Option(["spot", "perp", "mark", "funding"], "--kind", "-k",
                                   help="spot, perp, mark, funding (repeat)."),
    timeframe: str = typer.Option("1h", help="Bar size, e.g. 1m, 1h, 1d."),
    days: float = typer.Option(365.0, help="History to fetch when a series is empty (ignored with --since)."),
    since: str = typer.Option(None, help="First bar wanted when a series is empty, UTC, e.g. 2024-01-01T00:00Z."),
    progress: bool = typer.Option(True, help="Show progress bars."),
    instruments: bool = typer.Option(True, help="Also store the symbols' instruments (limits, brackets)."),
) -> None:
    """Download (incrementally: only what is missing) bars and funding from a ccxt exchange, and the
    symbols' instruments (see ``hedge data instruments``)."""
    import pandas as pd

    from hedge_core.data.download import download, make_exchange

    since_t = pd.Timestamp(since) if since else None
    if since_t is not None and since_t.tzinfo is None:
        typer.echo(f"error: --since {since!r} has no timezone; give UTC, e.g. 2024-01-01T00:00Z", err=True)
        raise typer.Exit(1)
    with _store(db, write=True) as st:
        ex = make_exchange(venue)
        summary = download(st, ex, symbol, kind, timeframe, since=since_t, days=days, show_bar=progress)
        _print_table(summary)
        if instruments:
            from hedge_core.data.instruments_venue import store_venue_instruments
            from hedge_core.types import perp_of, spot_of

            try:
                got = store_venue_instruments(st, venue, sorted({f(s) for s in symbol for f in (spot_of, perp_of)}))
            except HedgeError as e:  # the bars are stored; say what is not, and how to get it
                typer.echo(f"note: instruments not stored ({e}); until they are, the committed snapshot serves: "
                           f"run `hedge data instruments --venue {venue}` when the venue answers", err=True)
            else:
                _report_instruments(got)


def _report_instruments(got: object) -> None:
    import pandas as pd

    from hedge_core.data.instruments import instrument_to_row

    rows = [{k: v for k, v in instrument_to_row(i).items() if k != "brackets"} | {"brackets": len(i.brackets)}
            for i in got.instruments]  # type: ignore[attr-defined]
    typer.echo(f"instruments read from {got.venue} at {got.read_at.isoformat()}:")  # type: ignore[attr-defined]
    _print_table(pd.DataFrame(rows))
    for n in got.notes:  # type: ignore[attr-defined]
        typer.echo(f"note: {n}")


@data_app.command("instruments")
def instruments_cmd(
    db: Path = typer.Option(None, "--db", help=DB_HELP),
    venue: str = typer.Option("binance", help="ccxt exchange id (binance, bybit, okx)."),
    symbol: list[str] = typer.Option(None, "--symbol", "-s",
                                     help="SOL (spot and perp), SOL/USDT or SOL/USDT:USDT; repeat. "
                                          "Default: the committed snapshot's symbols of the venue."),
    show: bool = typer.Option(False, "--list", help="List the stored instruments; read nothing from the venue."),
) -> None:
    """Read tick, lot, minimum quantity and notional, contract size, max leverage and maintenance brackets
    from the venue (ccxt load_markets + fetch_leverage_tiers) and store them with the time they were read.
    Binance's brackets need API keys in the environment (HEDGE_BINANCE_API_KEY / HEDGE_BINANCE_API_SECRET); without them the
    limits are stored and the committed default brackets apply."""
    if show:
        with _store(db, write=False) as st:
            df = st.instruments_table()  # type: ignore[attr-defined]
            if not df.empty:
                df["brackets"] = [len(json.loads(b)) if isinstance(b, str) and b else 0 for b in df["brackets"]]
            _print_table(df)
        return
    from hedge_core.data.instruments_venue import store_venue_instruments

    with _store(db, write=True) as st:
        _report_instruments(store_venue_instruments(st, venue, symbol or None))


@data_app.command("import")
def import_cmd(
    path: Path = typer.Argument(..., help="A file or a folder (recursing) of a known layout."),
    db: Path = typer.Option(None, "--db", help=DB_HELP),
    venue: str = typer.Option(None, help="Venue for files that do not name it (freqtrade, generic tables)."),
    kind: str = typer.Option(None, help="spot/perp/mark/funding for generic tables and bare Binance klines."),
    symbol: str = typer.Option(None, help="Generic table: its symbol (BTC/USDT, BTC/USDT:USDT or BTCUSDT)."),
    timeframe: str = typer.Option(None, help="Generic table: bar size, e.g. 1h."),
    map_: str = typer.Option(None, "--map", help="Generic table: our=their column pairs, "
                                                 "e.g. 'ts=time,open=o,high=h,low=l,close=c,volume=v'."),
    ts_unit: str = typer.Option(None, help="Generic table: epoch unit s/ms/us/ns (detected when omitted)."),
    interval_hours: float = typer.Option(8.0, help="Generic funding table: hours per funding interval."),
) -> None:
    """Import files: validated first, written all-or-nothing. With --symbol: a generic CSV/Parquet table."""
    from hedge_core.data.importers import merge_parts, parse_path, parse_table, write_series

    skipped: list[str] = []
    try:  # parse and validate everything before the store is opened: a bad file creates nothing
        if symbol:
            if not venue or not kind:
                typer.echo("error: a generic table needs --venue, --kind and --symbol (and --timeframe for bars)",
                           err=True)
                raise typer.Exit(1)
            mapping = {}
            for pair in (map_ or "").split(","):
                if pair.strip():
                    if "=" not in pair:
                        typer.echo(f"error: --map item {pair!r} is not our=their", err=True)
                        raise typer.Exit(1)
                    ours, theirs = pair.split("=", 1)
                    mapping[ours.strip()] = theirs.strip()
            frames = merge_parts(parse_table(path, venue=venue, symbol=symbol, kind=kind, timeframe=timeframe,
                                             columns=mapping, ts_unit=ts_unit, interval_hours=interval_hours))
        else:
            frames, skipped = parse_path(path, venue=venue, kind=kind)
    except HedgeError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    with _store(db, write=True) as st:
        summary = write_series(st, frames)
        _print_table(summary)
        for f in skipped:
            typer.echo(f"skipped (unknown layout): {f}")


@data_app.command("status")
def status_cmd(
    db: Path = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line per series."),
) -> None:
    """Series in the store: venue, symbol, kind, timeframe, first, last, rows, gaps."""
    with _store(db, write=False) as st:
        s = st.series()
        if as_json:
            for rec in s.to_dict(orient="records"):
                typer.echo(json.dumps({k: _jsonable(rec[k]) for k in
                                       ("venue", "symbol", "kind", "timeframe", "first", "last", "rows", "gaps")}))
        else:
            _print_table(s)


@data_app.command("quality")
def quality_cmd(
    db: Path = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Full report (gap and outlier lists), one JSON line per series."),
    z: float = typer.Option(15.0, help="Robust z-score of log returns above which a bar is an outlier."),
) -> None:
    """Data-quality report: coverage, gaps, duplicates, outliers, off-schedule funding."""
    from hedge_core.data.quality import store_report

    with _store(db, write=False) as st:
        table, details = store_report(st, z_threshold=z)
        if as_json:
            for d in details:
                typer.echo(json.dumps(d))
        else:
            _print_table(table)


@data_app.command("seed")
def seed_cmd(
    db: Path = typer.Option(None, "--db", help=DB_HELP),
    demo: bool = typer.Option(False, "--demo", help="Write the synthetic demo market (no network)."),
    days: float = typer.Option(365.0, help="Days of history."),
    timeframe: str = typer.Option("1h", help="Bar size."),
    seed: int = typer.Option(7, help="Seed of the demo market."),
) -> None:
    """Fill an EMPTY store: Binance when reachable, else (or with --demo) the demo market."""
    from hedge_core.data.seed import ensure_seeded

    with _store(db, write=True) as st:
        res = ensure_seeded(st, demo=demo, days=days, timeframe=timeframe, demo_seed=seed, echo=typer.echo)
        if res.source == "existing":
            typer.echo(res.message)
