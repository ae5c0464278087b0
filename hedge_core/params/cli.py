"""``hedge params``: parameter sets as versioned TOML files with provenance and promotion (typer).

``hedge_core.cli`` mounts :data:`params_app` as ``hedge params list|show|export|import|migrate|promote|diff``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from hedge_core.errors import HedgeError, InvalidInput

if TYPE_CHECKING:  # pandas (through promotion) loads inside the commands: `hedge --help` starts fast
    from hedge_core.params.promotion import RunsReader

__all__ = ["params_app", "runs_reader"]

params_app = typer.Typer(help="Parameter sets: versioned TOML files with provenance and promotion.",
                         no_args_is_help=True, add_completion=False)


def _fail(exc: Exception, code: int = 2) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def runs_reader(db: str | Path | None = None) -> RunsReader:
    """``hedge_runs`` through the runner's API when it is up (it holds the database), else the store."""
    import pandas as pd

    from hedge_core.params.promotion import store_runs_reader

    from_store = store_runs_reader(db)

    def read(name: str, version: int) -> pd.DataFrame:
        from hedge_core.runner.client import RunnerClient, RunnerNotRunning

        try:
            return pd.DataFrame(RunnerClient.discover().runs())
        except RunnerNotRunning:
            return from_store(name, version)

    return read


ParamsDirOpt = typer.Option(None, "--params-dir", help="Parameter sets folder (default $HEDGE_PARAMS_DIR or data/params).")


@params_app.command("list")
def params_list(root: Path | None = ParamsDirOpt) -> None:
    """Every version of every parameter set, with status and provenance."""
    from hedge_core.params import store as param_store

    df = param_store.list_sets(root)
    typer.echo(df.to_string(index=False) if len(df) else "(no parameter sets; hedge params export ...)")


@params_app.command("show")
def params_show(ref: str = typer.Argument(..., help="NAME or NAME@VERSION."), root: Path | None = ParamsDirOpt) -> None:
    """Print a version's TOML (params, provenance, status)."""
    from hedge_core.params import store as param_store

    try:
        ps = param_store.load(ref, root=root)
    except InvalidInput as exc:
        _fail(exc)
    typer.echo(f"# status: {ps.status}")
    typer.echo(ps.path.read_text(encoding="utf-8") if ps.path else param_store.dump_toml(ps))


def _set_path(d: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


@params_app.command("export")
def params_export(
    name: str = typer.Argument(..., help="Parameter set name."),
    strategy: str = typer.Option("carry", help="carry | cross | voltier | grid | xcarry (defaults of that strategy)."),
    from_file: Path | None = typer.Option(None, "--from", help="Start from this version file (TOML) instead of defaults."),
    sets: list[str] = typer.Option([], "--set", help="field=value (dotted for nested, e.g. rebalance.drift_threshold=0.03); "
                                   "value parsed as TOML (off = None)."),
    kpi: list[str] = typer.Option([], "--kpi", help="name=value KPI to record in the provenance."),
    root: Path | None = ParamsDirOpt,
    db: Path | None = typer.Option(None, "--db", help="Store to index the version in (skipped while the runner holds it)."),
) -> None:
    """Export a new immutable version (created_from = cli)."""
    import tomllib

    from hedge_core.params import store as param_store

    try:
        base = param_store.load_file(from_file).params.model_dump(mode="json") if from_file else {"strategy": strategy}
        for s in sets:
            k, eq, v = s.partition("=")
            if not eq:
                raise InvalidInput("--set", s, "field=value")
            try:
                val = tomllib.loads(f"v = {v}")["v"]
            except tomllib.TOMLDecodeError:
                val = v
            _set_path(base, k.strip(), val)
        kp = {}
        for s in kpi:
            k, eq, v = s.partition("=")
            try:
                kp[k] = float(v)
            except ValueError:
                raise InvalidInput("--kpi", s, "name=number") from None
        ps = param_store.export(base, name, created_from="cli", kpis=kp or None, root=root, db=db)
    except HedgeError as exc:  # InvalidInput, or the store's open errors (--db)
        _fail(exc)
    typer.echo(f"exported {ps.ref} -> {ps.path}" + ("" if ps.indexed else " (store row: indexed by the runner)"))


@params_app.command("import")
def params_import(
    path: Path = typer.Argument(..., help="A parameter-set TOML file."),
    name: str | None = typer.Option(None, help="Store under this name (default the file's)."),
    root: Path | None = ParamsDirOpt,
    db: Path | None = typer.Option(None, "--db", help="Store to index the version in."),
) -> None:
    """Validate a TOML file and store it as the next version (nothing written when invalid)."""
    from hedge_core.params import store as param_store

    try:
        ps = param_store.import_file(path, name, root=root, db=db)
    except HedgeError as exc:  # InvalidInput, or the store's open errors (--db)
        _fail(exc)
    typer.echo(f"imported {path} as {ps.ref} -> {ps.path}")


@params_app.command("migrate")
def params_migrate(
    ref: str = typer.Argument(..., help="NAME@VERSION written by an older release."),
    root: Path | None = ParamsDirOpt,
    db: Path | None = typer.Option(None, "--db", help="Store to index the new version in."),
) -> None:
    """Write an old version that no longer loads as a NEW draft version: fields the params model
    no longer has are dropped (and named in its provenance); anything else invalid is reported."""
    from hedge_core.params import store as param_store

    try:
        ps, dropped = param_store.migrate(ref, root=root, db=db)
    except HedgeError as exc:  # InvalidInput, or the store's open errors (--db)
        _fail(exc)
    if not dropped:
        typer.echo(f"{ps.ref} loads as it is: nothing to migrate")
        return
    typer.echo(f"{ref} -> {ps.ref} (draft) -> {ps.path}; dropped: {', '.join(dropped)}")


@params_app.command("promote")
def params_promote(
    ref: str = typer.Argument(..., help="NAME@VERSION."),
    to: str = typer.Option(..., "--to", help="paper | live."),
    yes: bool = typer.Option(False, "--yes", help="Confirm (required for live)."),
    no_paper_gate: bool = typer.Option(False, "--no-paper-gate", help="Do not require a completed paper run for live."),
    min_paper_hours: float = typer.Option(0.0, help="Completed paper run must have lasted this many hours."),
    root: Path | None = ParamsDirOpt,
    db: Path | None = typer.Option(None, "--db", help="Store with hedge_runs (when the runner is not running)."),
) -> None:
    """Promote draft -> paper -> live (live: completed paper run of this version and --yes)."""
    from hedge_core.params import store as param_store
    from hedge_core.params.promotion import PromotionGate, promote

    try:
        if db is not None and not Path(db).exists():  # promote only reads hedge_runs: never create a database
            from hedge_core.store import StoreMissing

            raise StoreMissing(str(db))
        name, v = param_store.resolve(ref, root)
        gate = PromotionGate(require_paper_run=not no_paper_gate, min_paper_hours=min_paper_hours)
        ps = promote(name, v, to, confirm=yes, gate=gate, runs_reader=runs_reader(db), root=root, db=db)
    except HedgeError as exc:  # InvalidInput, or the store's open errors (--db)
        _fail(exc)
    typer.echo(f"{ps.ref} is now {ps.status}")


@params_app.command("diff")
def params_diff(a: str = typer.Argument(..., help="NAME@V"), b: str = typer.Argument(..., help="NAME@V"),
                provenance: bool = typer.Option(False, help="Also compare provenance."),
                root: Path | None = ParamsDirOpt) -> None:
    """Fields that differ between two versions."""
    from hedge_core.params import store as param_store

    try:
        df = param_store.diff(a, b, root=root, provenance=provenance)
    except InvalidInput as exc:
        _fail(exc)
    typer.echo(df.to_string(index=False) if len(df) else "identical parameters")
