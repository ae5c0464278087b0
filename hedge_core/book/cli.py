"""``hedge book``: the runner's book as tables (or ``--json``). Mounted by ``hedge_core.cli``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

__all__ = ["register"]


def _fmt(x: float, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.2%}" if pct else f"{x:,.2f}"


def register(app: typer.Typer) -> None:
    @app.command("book")
    def book_cmd(
        as_json: bool = typer.Option(False, "--json", help="Print the book as JSON."),
        confidence: float | None = typer.Option(None, help="VaR confidence in [0.5, 1) (default: book_limits.toml, "
                                                "else 0.99)."),
        horizon: int | None = typer.Option(None, help="VaR horizon in bars of the returns (default 24 one-hour bars)."),
        home: Path | None = typer.Option(None, "--home", help="Runner folder (default $HEDGE_RUNNER_HOME or "
                                         "data/runner)."),
    ) -> None:
        """The book of every hedge the runner manages: net delta per asset, exposure, margin and nearest
        liquidation per venue, netting, funding per day, LTV, VaR, drawdown and the book guards (docs/book.md)."""
        from hedge_core.book.var import check_confidence, check_horizon
        from hedge_core.errors import HedgeError, InvalidInput
        from hedge_core.runner.client import RunnerClient, RunnerNotRunning
        from hedge_core.ui.views.book import book_headline, book_tables

        try:
            if confidence is not None:
                check_confidence(confidence)
            if horizon is not None:
                check_horizon(horizon)
            book = RunnerClient.discover(home).book(confidence=confidence, horizon=horizon)
        except InvalidInput as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        except (RunnerNotRunning, HedgeError) as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None
        if as_json:
            typer.echo(json.dumps(book, indent=2, default=str))
            return
        h = book_headline(book)
        t = book_tables(book)
        typer.echo(f"{h['hedges']} hedges  gross {_fmt(h['gross'])}  net {_fmt(h['net'])}  margin used "
                   f"{_fmt(h['margin_used'])}  PnL {_fmt(h['pnl'])} (today {_fmt(h['day_pnl'])})  funding "
                   f"{_fmt(h['funding'])}  drawdown {_fmt(h['drawdown'])}  book LTV {_fmt(h['book_ltv'], True)}")
        if h["var_error"]:
            typer.echo(f"VaR: not computed: {h['var_error']}")
        else:
            typer.echo(f"VaR {h['var_confidence']}, {h['var_horizon']} bars: historical {_fmt(h['var_historical'])}  "
                       f"parametric {_fmt(h['var_parametric'])}  (diversification {_fmt(h['var_diversification'])})")
        for line in h["guards"]:  # each with its action (block_entries or flatten)
            typer.secho(f"BOOK GUARD: {line}", fg=typer.colors.RED)
        for name in ("assets", "venues", "netted", "loans", "funding"):
            df = t[name]
            if len(df):
                typer.echo(f"\n{name}\n{df.to_string(index=False)}")
