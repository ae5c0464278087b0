"""CLI: ``hedge backtest`` and ``hedge sweep`` (a typer app the top-level ``hedge`` mounts).

Parameter files (``--params``): a parameter-set TOML written by :mod:`hedge_core.params.store`
(``[meta]`` / ``[provenance]`` / ``[params]``), a reference ``name@version`` of such a set, or a
plain TOML/JSON table with ``strategy = "carry"`` and the model's fields (nested tables for
``exit``, ``rebalance``, ...). Everything is validated by the params models; errors name the field.

The cross-venue carry (``strategy = "xcarry"``) takes ``--spot-venue`` / ``--perp-venue`` (over the
params' own): prices from the venue that has them, the perp venue's funding from the store
(:mod:`hedge_core.backtest.xvenue_cli`); ``hedge sweep`` reads the funding of every perp venue its grid names.

Grid files (``--grid``), TOML or JSON: dotted parameter paths mapped to lists of values, at the
top level or under ``[grid]``; or a ``[random]`` table with ``n``, ``seed`` and a ``[random.space]``
of lists / ``{low, high, log, int}`` ranges.
"""

from __future__ import annotations

import json
import math
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from hedge_core.errors import HedgeError, InvalidInput

app = typer.Typer(help="Backtests and parameter sweeps through the one engine.", no_args_is_help=True,
                  add_completion=False)

if TYPE_CHECKING:
    from hedge_core.params.models import StrategyParamsBase

__all__ = ["app", "read_grid", "read_params"]


def _read_doc(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise InvalidInput("path", str(path), "an existing TOML or JSON file")
    text = path.read_bytes()
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return tomllib.loads(text.decode("utf-8"))
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput("file", str(path), f"valid {'JSON' if path.suffix == '.json' else 'TOML'} ({exc})") from None


def read_params(ref: str) -> StrategyParamsBase:
    """A validated params model from a param-set file, a ``name@version`` reference or a plain table."""
    from hedge_core.params import store as param_store

    p = Path(ref)
    if not p.exists() and "@" in ref:
        return param_store.load(ref).params
    doc = _read_doc(p)
    if "params" in doc and isinstance(doc["params"], dict):
        return param_store.load_file(p).params
    return param_store.parse(doc, where=str(p))


def read_grid(path: str) -> tuple[str, dict[str, Any], int, int]:
    """('grid' | 'random', space, n, seed) from a grid file."""
    doc = _read_doc(Path(path))
    if "random" in doc:
        r = doc["random"]
        space = r.get("space")
        if not isinstance(space, dict) or not space:
            raise InvalidInput("random.space", space, "a table of parameter -> list or {low, high}")
        return "random", space, int(r.get("n", 20)), int(r.get("seed", 0))
    grid = doc.get("grid", doc)
    if not isinstance(grid, dict) or not grid:
        raise InvalidInput("grid", grid, "a table of dotted parameter paths -> lists of values")
    return "grid", _flatten(grid), 0, 0


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def check_window(start: str | None, end: str | None) -> None:
    """``--start`` / ``--end`` parse as times and ``--start`` is before ``--end`` (else InvalidInput)."""
    import pandas as pd

    times = {}
    for flag, value in (("--start", start), ("--end", end)):
        if value is None:
            continue
        try:
            times[flag] = pd.Timestamp(value)
        except (ValueError, TypeError):
            raise InvalidInput(flag, value, "a UTC date or time, e.g. 2023-01-01 or 2023-01-01T08:00Z") from None
        if times[flag] is pd.NaT:
            raise InvalidInput(flag, value, "a UTC date or time, e.g. 2023-01-01 or 2023-01-01T08:00Z")
    if len(times) == 2:
        t0, t1 = (t if t.tzinfo else t.tz_localize("UTC") for t in (times["--start"], times["--end"]))
        if t0 >= t1:
            raise InvalidInput("--start", start, f"a time before --end {end} (the window is inverted or empty)")


def _open(db: str | None, start: str | None, end: str | None, *, write: bool = False) -> Any:
    from hedge_core.store_open import open_store

    check_window(start, end)
    return open_store(db, write=write, hold=True)


def _market(db: str | None, venue: str, asset: str, quote: str, timeframe: str, start: str | None, end: str | None,
            *, write: bool = False):
    from hedge_core.backtest.timeline import load_market

    st = _open(db, start, end, write=write)
    return load_market(st, venue=venue, spot_symbol=f"{asset}/{quote}", perp_symbol=f"{asset}/{quote}:{quote}",
                       timeframe=timeframe, start=start, end=end), st


def _paper(st: Any, m: Any) -> Any:
    """The paper venue of a run: the default model with the pair's instruments from the store (else the
    committed snapshot); InvalidInput naming the symbol when neither has it."""
    from hedge_core.data.instruments import pair_instruments
    from hedge_core.exchange.paper.core import PaperConfig

    return PaperConfig(venue=m.venue, instruments=pair_instruments(m.spot_symbol, m.perp_symbol, m.venue, st))


def best_perp_fees(p: Any, best_perp: bool, raw: list[str]) -> dict[str, float]:
    """``--perp-fee VENUE=FRACTION`` values (venue -> taker fee), checked against the set's perp venues.

    InvalidInput naming the flag: ``--best-perp`` for a set that is not xcarry or names one perp venue;
    ``--perp-fee`` without ``--best-perp``, for a venue the set does not allow, or a fee outside [0, 0.01]."""
    from hedge_core.backtest.xvenue_cli import is_xcarry

    if not best_perp:
        if raw:
            raise InvalidInput("--perp-fee", raw[0], "only with --best-perp (a fee per venue to choose among)")
        return {}
    allowed = list(p.allowed_perp_venues) if is_xcarry(p) else []
    if len(allowed) < 2:
        raise InvalidInput("--best-perp", True, f"an xcarry set naming several perp venues (perp_venue, perp_venues); "
                           f"this set: {p.strategy} {allowed or ''}".rstrip())
    out: dict[str, float] = {}
    for item in raw:
        v, sep, f = item.partition("=")
        v = v.strip().lower()
        try:
            fee = float(f)
        except ValueError:
            fee = math.nan
        if not sep or v not in allowed or not (0.0 <= fee <= 0.01):
            raise InvalidInput("--perp-fee", item, f"VENUE=FRACTION with VENUE one of the set's perp venues {allowed} "
                               "and FRACTION a taker fee in [0, 0.01] (e.g. bybit=0.00055)")
        out[v] = fee
    return out


def best_perp_inputs(p: Any, by: dict[str, Any], cfg: Any, fees: dict[str, float]) -> dict[str, Any]:
    """``run_cross_venue_backtest``'s ``perp_markets`` and ``perp_papers`` for ``--best-perp``: each allowed
    venue's market (the store's prices, its funding) and the run's paper model on that venue with its fee."""
    from dataclasses import replace

    from hedge_core.backtest.xvenue import _venue_config

    papers = {v: _venue_config(replace(cfg.perp_paper, perp_taker_fee=fees.get(v, p.perp_taker_fee)), v, {})
              for v in p.allowed_perp_venues}
    return {"perp_markets": by, "perp_papers": papers}


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


@app.command("backtest")
def backtest_cmd(
    params: str = typer.Option(..., "--params", help="parameter file (TOML/JSON) or name@version"),
    start: str = typer.Option(None, "--start", help="window start, UTC (e.g. 2023-01-01)"),
    end: str = typer.Option(None, "--end", help="window end, UTC (default and at most: the last price bar end)"),
    db: str = typer.Option(None, "--db", help="DuckDB store (default $HEDGE_DB or data/hedge.duckdb)"),
    venue: str = typer.Option("binance", "--venue"),
    asset: str = typer.Option("BTC", "--asset"),
    quote: str = typer.Option("USDT", "--quote"),
    timeframe: str = typer.Option("1h", "--timeframe", help="bar size the store holds"),
    spot_venue: str = typer.Option(None, "--spot-venue", help="xcarry: venue of the first leg: spot, or with legs = perp_perp the first perp, whose funding is then read from the store too (over the params')"),
    perp_venue: str = typer.Option(None, "--perp-venue", help="xcarry: venue of the perp leg; its funding is read from the store"),
    as_json: bool = typer.Option(False, "--json", help="print KPIs and ledger totals as JSON"),
    save: bool = typer.Option(False, "--save", help="save the run to the store (hedge_runs mode 'backtest')"),
    run_id: str = typer.Option("bt-cli", "--run-id", help="run id (hedge id) when saving"),
    html_out: str = typer.Option(None, "--html", help="write the tearsheet as standalone HTML here"),
    best_perp: bool = typer.Option(False, "--best-perp", help="xcarry: choose the perp venue at each entry among "
                                   "the set's perp venues (perp_venue, perp_venues) by walked book and taker fee; "
                                   "each venue's funding is read from the store"),
    perp_fee: list[str] = typer.Option(None, "--perp-fee", help="with --best-perp: VENUE=FRACTION, a perp venue's "
                                       "taker fee (repeat per venue; others: the set's perp_taker_fee)"),
) -> None:
    """Backtest one parameter set over --start .. --end through the engine and the paper venue."""
    from hedge_core.backtest.event import BacktestConfig, run_backtest, save_run
    from hedge_core.backtest.xvenue_cli import is_xcarry, with_venues

    st, xrun = None, None
    try:
        p = with_venues(read_params(params), spot_venue, perp_venue)
        fees = best_perp_fees(p, best_perp, perp_fee or [])  # checked before the store is opened
        if is_xcarry(p):  # legs on two venues: prices from the venue that has them, the perp venue's funding
            from hedge_core.backtest.xvenue import run_cross_venue_backtest
            from hedge_core.backtest.xvenue_cli import store_cross_venue_markets
            from hedge_core.backtest.xvenue_sweep import cross_venue_config

            st = _open(db, start, end, write=save)
            venues = list(p.allowed_perp_venues) if best_perp else [p.perp_venue]
            by = store_cross_venue_markets(st, p, venues, price_venue=venue, asset=asset, quote=quote,
                                           timeframe=timeframe, start=start, end=end).by_venue
            m = by[p.perp_venue]
            cfg = cross_venue_config(BacktestConfig(hedge_id=run_id, paper=_paper(st, m)), p)
            xrun = run_cross_venue_backtest(p, m, start=start, end=end, config=cfg,
                                            **(best_perp_inputs(p, by, cfg, fees) if best_perp else {}))
            r = xrun.result
        else:
            m, st = _market(db, venue, asset, quote, timeframe, start, end, write=save)
            r = run_backtest(p, m, start=start, end=end, config=BacktestConfig(hedge_id=run_id, paper=_paper(st, m)))
        if save:
            save_run(st, r)
        if html_out:
            from hedge_core.ui.figures.tearsheet import to_html
            extra = None
            if xrun is not None:
                from hedge_core.ui.figures.xvenue import cross_venue_tearsheet
                extra = [cross_venue_tearsheet(xrun)]  # the venues, their money and the price assumption
            to_html(r, html_out, extra=extra)
    except (HedgeError, ValueError) as exc:
        _fail(exc)
        return
    finally:
        if st is not None:
            st.close()  # in-process callers (tests, notebooks) may open the file again right after
    if as_json:
        typer.echo(json.dumps({"run_id": r.hedge_id, "strategy": p.strategy, "start": str(r.start), "end": str(r.end),
                               "capital": r.capital, "kpis": _clean(r.kpis), "totals": _clean(r.totals()),
                               "final_state": r.final_state,
                               **({"notes": list(xrun.notes), "per_venue": xrun.per_venue.reset_index().to_dict("records")}
                                  if xrun is not None else {}),
                               **({"choices": json.loads(xrun.choices.to_json(orient="records", date_format="iso"))}
                                  if xrun is not None and xrun.choices is not None else {})}, indent=2))
        return
    typer.echo(f"{p.strategy} {r.start} .. {r.end}  capital {r.capital:,.2f}  final state {r.final_state}")
    for note in (xrun.notes if xrun is not None else ()):
        typer.echo(f"  note: {note}")
    if xrun is not None and xrun.choices is not None:  # --best-perp: the venue of each entry
        for c in xrun.choices.to_dict("records"):
            typer.echo(f"  entry {c['ts']}: perp on {c['venue']} ({c['side']} {c['amount']:.6g}, taker fee "
                       f"{c['taker_fee'] * 100:.4g} %)")
    for k, v in r.totals().items():
        typer.echo(f"  {k:<22} {v:>14,.4f}")
    for k, v in r.kpis.items():
        if k not in r.totals():
            typer.echo(f"  {k:<22} {v:>14.6g}")


@app.command("sweep")
def sweep_cmd(
    params: str = typer.Option(..., "--params", help="base parameter file (TOML/JSON) or name@version"),
    grid: str = typer.Option(..., "--grid", help="grid/random file (TOML/JSON)"),
    scheduler: str = typer.Option(None, "--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786"),
    workers: int = typer.Option(2, "--workers", help="local processes when no scheduler (0 = in-process)"),
    start: str = typer.Option(None, "--start"),
    end: str = typer.Option(None, "--end", help="window end, UTC (default and at most: the last price bar end)"),
    db: str = typer.Option(None, "--db"),
    venue: str = typer.Option("binance", "--venue"),
    asset: str = typer.Option("BTC", "--asset"),
    quote: str = typer.Option("USDT", "--quote"),
    timeframe: str = typer.Option("1h", "--timeframe"),
    spot_venue: str = typer.Option(None, "--spot-venue", help="xcarry: venue of the first leg: spot, or with legs = perp_perp the first perp, whose funding is then read from the store too (over the params')"),
    perp_venue: str = typer.Option(None, "--perp-venue", help="xcarry: venue of the perp leg; its funding is read from the store"),
    metric: str = typer.Option("sharpe", "--metric", help="KPI to rank by"),
    out: str = typer.Option(None, "--out", help="write the full results table (CSV)"),
    as_json: bool = typer.Option(False, "--json", help="print the results table as JSON records"),
    top: int = typer.Option(10, "--top", help="rows printed (best first)"),
    best_perp: bool = typer.Option(False, "--best-perp", help="xcarry: each point chooses its perp venue at each "
                                   "entry among its perp venues (perp_venue, perp_venues), as hedge backtest "
                                   "--best-perp"),
    perp_fee: list[str] = typer.Option(None, "--perp-fee", help="with --best-perp: VENUE=FRACTION, a perp venue's "
                                       "taker fee (repeat per venue; others: the point's perp_taker_fee)"),
) -> None:
    """Grid or random search over a parameter set (local processes, or Dask with --scheduler)."""
    from hedge_core.backtest.event import BacktestConfig
    from hedge_core.backtest.timeline import build_timeline
    from hedge_core.backtest.sweep import Payload, grid_points, random_points, run_sweep
    from hedge_core.backtest.xvenue_cli import (
        best_perp_venues,
        is_xcarry,
        store_cross_venue_markets,
        sweep_venues_of,
        with_venues,
    )

    try:
        base = with_venues(read_params(params), spot_venue, perp_venue)
        kind, space, n, seed = read_grid(grid)
        points = grid_points(space) if kind == "grid" else random_points(space, n, seed)
        fees = best_perp_fees(base, best_perp, perp_fee or [])  # checked before the store is opened
        if is_xcarry(base):  # one timeline per venue the grid names (each with that venue's funding; a perp
            st = _open(db, start, end)  # pair's first venue too; --best-perp: every venue a point allows)
            try:
                venues = sweep_venues_of(base, points)
                venues += [v for v in best_perp_venues(base, points) if best_perp and v not in venues]
                vm = store_cross_venue_markets(st, base, venues, price_venue=venue,
                                               asset=asset, quote=quote, timeframe=timeframe, start=start, end=end,
                                               first_funding=False)
                cfg = BacktestConfig(paper=_paper(st, next(iter(vm.by_venue.values()))))
            finally:
                st.close()
            tl = vm.timelines(start=start, end=end, config=cfg)
            if best_perp:  # each point chooses its perp venue per entry (backtest.xvenue_best_sweep)
                from hedge_core.backtest.xvenue_best_sweep import BestPerpTimelines

                tl = BestPerpTimelines(tl.by_venue, fees)
        else:
            m, st = _market(db, venue, asset, quote, timeframe, start, end)
            try:
                cfg = BacktestConfig(paper=_paper(st, m))
            finally:
                st.close()
            tl = build_timeline(m, start=start if start else m.first + cfg.warmup, end=end, spec=cfg.spec)
        table = run_sweep(base, points, payload=Payload(tl, cfg), scheduler=scheduler, workers=workers,
                          show_progress=sys.stderr.isatty())
    except (HedgeError, ValueError) as exc:
        _fail(exc)
        return
    if metric in table.columns:
        table = table.sort_values(metric, ascending=False, na_position="last", kind="stable")
    if out:
        table.to_csv(out, index=False)
    if as_json:
        typer.echo(table.to_json(orient="records", double_precision=10))
        return
    cols = list(space) + [c for c in (metric, "net_apr", "max_drawdown", "net_pnl", "entries", "path", "error")
                          if c in table.columns and c not in space]
    typer.echo(table[cols].head(top).to_string(index=False))
