"""Parameter sets on disk: versioned TOML files with provenance, import, listing and diff.

Promotion lives in :mod:`hedge_core.params.promotion`, provenance in :mod:`hedge_core.params.provenance`,
validation in :mod:`hedge_core.params.validate` (their public names are re-exported here).

Layout (``root`` defaults to ``$HEDGE_PARAMS_DIR`` or ``<repo>/data/params``)::

    data/params/<name>/v1.toml        # immutable: written once with O_EXCL, never rewritten
    data/params/<name>/v2.toml
    data/params/<name>/status.json    # promotion status per version + its history (append-only)

A version file is human-readable TOML::

    [meta]        name, version, strategy, format
    [provenance]  created_at, created_from, code_version, code_dirty, data_window, data_hash,
                  [provenance.kpis] backtest / sweep KPIs
    [params]      the pydantic model (CarryParams, ...) as nested tables

TOML has no null: an optional field that is off (``None`` in Python) is written as the string
``"off"`` and read back as ``None``.

The files are the source of truth; the store's ``param_sets`` table is an index of them. An
export writes the row itself when the database is free; while the runner holds the live database
(its single writer), the runner indexes the files instead (on start and on every ``start``
request, see :func:`sync_to_store`). Promotion (draft -> paper -> live) is recorded in
``status.json`` and mirrored into the row the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import tomli_w
from pydantic import BaseModel

from hedge_core.errors import InvalidInput
from hedge_core.params.provenance import (
    code_version,
    data_fingerprint,
    provenance_from_backtest,
    timeline_fingerprint,
)
from hedge_core.params.validate import (
    _from_toml_value,
    _to_toml_value,
    _unknown_field,
    parse,
    validation_error,
)

if TYPE_CHECKING:
    from hedge_core.params.models import StrategyParamsBase

__all__ = [
    "STATUSES",
    "ParamSet",
    "code_version",
    "data_fingerprint",
    "diff",
    "dump_toml",
    "export",
    "import_file",
    "latest_version",
    "list_sets",
    "load",
    "load_file",
    "migrate",
    "names",
    "params_root",
    "parse",
    "resolve",
    "status_of",
    "sync_to_store",
    "timeline_fingerprint",
    "validation_error",
    "versions",
]

FORMAT = 1
STATUSES = ("draft", "paper", "live")
CREATED_FROM = ("notebook", "cli", "panel", "test", "sweep", "api")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VFILE_RE = re.compile(r"^v(\d+)\.toml$")


# ---- small helpers ----------------------------------------------------------------------------


def params_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Folder of parameter sets: ``root``, else ``$HEDGE_PARAMS_DIR``, else ``<repo>/data/params``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("HEDGE_PARAMS_DIR")
    if env:
        return Path(env).expanduser()
    from hedge_core.store import REPO_ROOT

    return REPO_ROOT / "data" / "params"


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidInput("name", name, "1-64 characters: letters, digits, '_', '-', '.', starting with a letter or digit")
    return name



# ---- status (written by promotion) ------------------------------------------------------------


def _status_path(name: str, root: str | os.PathLike[str] | None) -> Path:
    return params_root(root) / _check_name(name) / "status.json"


def _read_status(name: str, root: str | os.PathLike[str] | None) -> dict[str, Any]:
    p = _status_path(name, root)
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInput("status.json", exc.msg, "valid JSON written by hedge params promote", where=str(p)) from None


def status_of(name: str, version: int, *, root: str | os.PathLike[str] | None = None) -> str:
    return str(_read_status(name, root).get(str(int(version)), {}).get("status", "draft"))


# ---- the parameter set -----------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSet:
    """One immutable version of a named parameter set."""

    name: str
    version: int
    params: StrategyParamsBase  # CarryParams | CrossHedgeParams | VolTierLoanParams | GridParams
    provenance: Mapping[str, Any]
    path: Path | None = None
    status: str = "draft"
    indexed: bool = False  # the store row was written by this call

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def strategy(self) -> str:
        return str(self.params.strategy)

    def to_row(self) -> dict[str, Any]:
        created = pd.Timestamp(self.provenance.get("created_at") or pd.Timestamp(0, tz="UTC"))
        if created.tzinfo is None:
            created = created.tz_localize("UTC")
        return {"name": self.name, "version": int(self.version), "strategy": self.strategy, "status": self.status,
                "params": json.dumps(self.params.model_dump(mode="json")),
                "provenance": json.dumps(dict(self.provenance), default=str), "created_at": created}


def dump_toml(ps: ParamSet) -> str:
    """The TOML text of a parameter set version (see the module docstring for the layout)."""
    doc = {
        "meta": {"name": ps.name, "version": int(ps.version), "strategy": ps.strategy, "format": FORMAT},
        "provenance": _to_toml_value(dict(ps.provenance)),
        "params": _to_toml_value(ps.params.model_dump(mode="json")),
    }
    head = (f"# Parameter set {ps.name} v{ps.version} ({ps.strategy}). Immutable: export a new version "
            f"instead of editing.\n# 'off' means the feature is disabled (None).\n")
    return head + tomli_w.dumps(doc)


def _version_files(folder: Path) -> dict[int, Path]:
    out: dict[int, Path] = {}
    if folder.is_dir():
        for p in folder.iterdir():
            m = _VFILE_RE.match(p.name)
            if m:
                out[int(m.group(1))] = p
    return out


def names(root: str | os.PathLike[str] | None = None) -> list[str]:
    r = params_root(root)
    return sorted(p.name for p in r.iterdir() if p.is_dir() and _version_files(p)) if r.is_dir() else []


def versions(name: str, root: str | os.PathLike[str] | None = None) -> list[int]:
    return sorted(_version_files(params_root(root) / _check_name(name)))


def latest_version(name: str, root: str | os.PathLike[str] | None = None) -> int:
    vs = versions(name, root)
    if not vs:
        raise InvalidInput("name", name, f"an exported parameter set; known: {names(root) or 'none yet'}")
    return vs[-1]



def export(params: StrategyParamsBase, name: str, backtest: Any = None, *, created_from: str = "notebook",
           kpis: Mapping[str, float] | None = None, data_window: tuple[Any, Any] | None = None,
           data_hash: str | None = None, data: Mapping[str, pd.DataFrame] | pd.DataFrame | None = None,
           note: str = "", root: str | os.PathLike[str] | None = None, db: str | os.PathLike[str] | None = None,
           now: pd.Timestamp | None = None, index: bool = True,
           lineage: Mapping[str, Any] | None = None) -> ParamSet:
    """Export ``params`` as the next immutable version of ``name``, with provenance.

    Parameters
    ----------
    params : CarryParams | CrossHedgeParams | VolTierLoanParams | GridParams (or a mapping)
        Validated again before anything is written.
    name : str
        Parameter-set name (folder under ``data/params``).
    backtest : backtest/sweep result, optional
        KPIs, data window and data hash are taken from it when it has them (``kpis``/``metrics``,
        ``data_window`` or ``start``/``end`` or a time-indexed ``frame``/``equity``, ``data_hash``).
    created_from : str
        One of ``notebook``, ``cli``, ``panel``, ``test``, ``sweep``, ``api``.
    kpis, data_window, data_hash, data
        Explicit provenance (override what ``backtest`` gives); ``data`` frames are hashed with
        :func:`data_fingerprint`.
    db : path, optional
        Store whose ``param_sets`` table indexes the version (default ``$HEDGE_DB``). Skipped without
        error when another process (the runner) holds it: the runner indexes the file itself.
    index : bool
        False: write the file only.
    lineage : mapping, optional
        Extra provenance keys (e.g. ``migrated_from``) written with the version.

    Returns
    -------
    ParamSet
        With ``version``, ``path`` and ``indexed`` (whether the store row was written now).
    """
    _check_name(name)
    if created_from not in CREATED_FROM:
        raise InvalidInput("created_from", created_from, f"one of {CREATED_FROM}")
    model = params if isinstance(params, BaseModel) else parse(params)
    model = parse(model.model_dump(mode="json"))  # the exact thing a re-import yields
    prov: dict[str, Any] = provenance_from_backtest(backtest)
    if kpis is not None:
        prov["kpis"] = {str(k): float(v) for k, v in kpis.items()}
    if data_window is not None:
        prov["data_window"] = [str(pd.Timestamp(data_window[0])), str(pd.Timestamp(data_window[1]))]
    if data is not None:
        prov["data_hash"] = data_fingerprint(data)
    if data_hash is not None:
        prov["data_hash"] = data_hash
    cv, dirty = code_version()
    t = pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC")
    prov.update({"created_at": t.isoformat(), "created_from": created_from, "code_version": cv, "code_dirty": dirty})
    if note:
        prov["note"] = note
    if lineage:
        prov.update({str(k): v for k, v in lineage.items()})
    prov.setdefault("kpis", {})
    folder = params_root(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    for _ in range(1000):
        v = max(_version_files(folder), default=0) + 1
        ps = ParamSet(name, v, model, prov)
        text = dump_toml(ps)
        path = folder / f"v{v}.toml"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)  # never overwrite a version
        except FileExistsError:
            continue  # a concurrent export took this number: take the next
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        ps = ParamSet(name, v, model, prov, path=path, status="draft")
        if index:
            ps = ParamSet(name, v, model, prov, path=path, status="draft", indexed=_try_index([ps], db))
        return ps
    raise RuntimeError(f"could not allocate a version under {folder}")  # pragma: no cover


def migrate(ref: str, *, root: str | os.PathLike[str] | None = None, db: str | os.PathLike[str] | None = None,
            created_from: str = "cli") -> tuple[ParamSet, list[str]]:
    """Bring an old version up to the current params model as a NEW version (files stay immutable).

    A field the model no longer has is the one change made automatically: it is dropped and named
    in the new version's provenance (``migrated_from``, ``dropped_fields``); fields the model
    gained take their defaults. Anything else that does not validate (a value now out of bounds, a
    wrong type) is not guessed at: InvalidInput names it and nothing is written. The new version is
    a draft: promotion gates apply to it again.

    Returns
    -------
    (ParamSet, dropped)
        The new version and the dotted fields dropped; when the old version still loads, that
        version and ``[]`` (nothing written).
    """
    name, v = resolve(ref, root)
    path = params_root(root) / name / f"v{v}.toml"
    try:
        return load_file(path), []
    except InvalidInput as exc:
        errors = getattr(exc, "errors", None) or [(exc.field, exc.value, exc.allowed)]
    with open(path, "rb") as fh:
        doc = tomllib.load(fh)
    data = dict(doc.get("params") or {})
    meta = doc.get("meta") or {}
    if "strategy" not in data and "strategy" in meta:
        data["strategy"] = meta["strategy"]
    dropped: list[str] = []
    for fld, _value, allowed in errors:
        if not _unknown_field(allowed):
            raise InvalidInput(fld, _value, f"{allowed} (not migrated automatically: edit a copy and "
                                            f"`hedge params import` it)", where=str(path))
        parts = fld.split(".")
        cur: Any = data
        for part in parts[:-1]:
            cur = cur.get(part) if isinstance(cur, dict) else None
        if isinstance(cur, dict) and parts[-1] in cur:
            cur.pop(parts[-1])
            dropped.append(fld)
    model = parse(data, where=str(path))  # still invalid: raises, nothing written
    prov = dict(_from_toml_value(doc.get("provenance") or {}))
    ps = export(model, name, kpis=prov.get("kpis") or {}, created_from=created_from, root=root, db=db,
                data_window=tuple(prov["data_window"]) if prov.get("data_window") else None,
                data_hash=prov.get("data_hash"), note=f"migrated from {name}@{v}: dropped {', '.join(dropped)}",
                lineage={"migrated_from": f"{name}@{v}", "dropped_fields": dropped})
    return ps, dropped


def _try_index(sets: Sequence[ParamSet], db: str | os.PathLike[str] | None) -> bool:
    """Upsert rows into ``param_sets`` if the database can be opened now (short wait)."""
    from hedge_core.store import Store, StoreBusy

    try:
        st = Store(db, hold=False, lock_timeout=1.0)
        st.write_table("param_sets", pd.DataFrame([s.to_row() for s in sets]))
        return True
    except StoreBusy:
        return False


def load_file(path: str | os.PathLike[str]) -> ParamSet:
    """Read and validate one parameter-set TOML file.

    Raises
    ------
    InvalidInput
        ``where`` is the file; the field, the value and what is allowed are named.
    """
    p = Path(path)
    where = str(p)
    try:
        with open(p, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise InvalidInput("path", str(p), "an existing parameter-set TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput("toml", str(exc), "valid TOML (see data/params/*/v*.toml for the layout)", where=where) from None
    unknown = sorted(set(doc) - {"meta", "provenance", "params"})
    if unknown:
        raise InvalidInput(unknown[0], doc[unknown[0]], "top-level tables [meta], [provenance], [params] only", where=where)
    if not isinstance(doc.get("params"), dict):
        raise InvalidInput("params", doc.get("params"), "a [params] table", where=where)
    meta = doc.get("meta") or {}
    if not isinstance(meta, dict):
        raise InvalidInput("meta", meta, "a [meta] table", where=where)
    params_doc = dict(doc["params"])
    if "strategy" not in params_doc and "strategy" in meta:
        params_doc["strategy"] = meta["strategy"]
    m = _VFILE_RE.match(p.name)
    try:
        model = parse(params_doc, where=where)
    except InvalidInput as exc:
        errs = getattr(exc, "errors", None) or []
        if m and errs and all(_unknown_field(a) for _f, _v, a in errs):
            ref = f"{meta.get('name') or p.parent.name}@{m.group(1)}"
            hinted = InvalidInput(exc.field, exc.value, exc.allowed + (
                f" -- written by an older release? `hedge params migrate {ref}` writes a new version "
                f"without the field(s) the model no longer has"), where=exc.where)
            hinted.errors = errs  # type: ignore[attr-defined]
            raise hinted from None
        raise
    if "strategy" in meta and meta["strategy"] != model.strategy:
        raise InvalidInput("meta.strategy", meta["strategy"], f"{model.strategy!r} (the [params] strategy)", where=where)
    name = str(meta.get("name") or p.parent.name)
    version = int(meta.get("version") or (m.group(1) if m else 0))
    prov = _from_toml_value(doc.get("provenance") or {})
    status = "draft"
    with contextlib.suppress(InvalidInput, OSError, ValueError):
        status = status_of(name, version, root=p.parent.parent) if m else "draft"
    return ParamSet(name, version, model, prov, path=p, status=status)


def resolve(ref: str, root: str | os.PathLike[str] | None = None) -> tuple[str, int]:
    """``'name'`` -> (name, latest version); ``'name@3'`` / ``'name@v3'`` -> (name, 3)."""
    if not isinstance(ref, str) or not ref:
        raise InvalidInput("params", ref, "NAME or NAME@VERSION")
    name, _, ver = ref.partition("@")
    _check_name(name)
    if not ver:
        return name, latest_version(name, root)
    try:
        v = int(ver.lstrip("vV"))
    except ValueError:
        raise InvalidInput("version", ver, "a positive integer, e.g. NAME@3") from None
    have = versions(name, root)
    if v not in have:
        raise InvalidInput("version", v, f"one of {have}" if have else f"an exported version of {name!r} (none yet)")
    return name, v


def load(ref: str, version: int | None = None, *, root: str | os.PathLike[str] | None = None) -> ParamSet:
    """Load ``name@version`` (or ``name`` + ``version``; latest when omitted)."""
    if version is not None:
        ref = f"{ref.partition('@')[0]}@{int(version)}"
    name, v = resolve(ref, root)
    return load_file(params_root(root) / name / f"v{v}.toml")


def import_file(path: str | os.PathLike[str], name: str | None = None, *, created_from: str = "cli",
                root: str | os.PathLike[str] | None = None, db: str | os.PathLike[str] | None = None) -> ParamSet:
    """Validate a TOML file (from elsewhere) and store it as the next version of ``name``.

    Provenance of the file is kept and marked ``imported_from``. Nothing is written when the file
    is invalid.
    """
    src = load_file(path)
    target = _check_name(name or src.name)
    prov = dict(src.provenance)
    kpis = prov.get("kpis") if isinstance(prov.get("kpis"), Mapping) else None
    window = prov.get("data_window")
    ps = export(src.params, target, created_from=created_from, kpis=kpis,
                data_window=tuple(window) if isinstance(window, list) and len(window) == 2 else None,
                data_hash=prov.get("data_hash"), note=f"imported from {Path(path).name}"
                + (f" (was {src.ref}, {prov.get('code_version')})" if src.version else ""), root=root, db=db)
    return ps


import_ = import_file


# ---- listing, diff, sync ---------------------------------------------------------------------


def list_sets(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """One row per version: name, version, strategy, status, created_at, created_from, code_version, kpis."""
    rows = []
    for n in names(root):
        for v in versions(n, root):
            try:
                ps = load_file(params_root(root) / n / f"v{v}.toml")
            except InvalidInput as exc:
                rows.append({"name": n, "version": v, "strategy": "?", "status": "invalid", "created_at": "",
                             "created_from": "", "code_version": "", "kpis": str(exc)})
                continue
            pv = ps.provenance
            rows.append({"name": n, "version": v, "strategy": ps.strategy, "status": ps.status,
                         "created_at": pv.get("created_at", ""), "created_from": pv.get("created_from", ""),
                         "code_version": pv.get("code_version", ""),
                         "kpis": ", ".join(f"{k}={float(x):.4g}" for k, x in (pv.get("kpis") or {}).items())})
    return pd.DataFrame(rows, columns=["name", "version", "strategy", "status", "created_at", "created_from",
                                       "code_version", "kpis"])


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def diff(a: str | ParamSet, b: str | ParamSet, *, root: str | os.PathLike[str] | None = None,
         provenance: bool = False) -> pd.DataFrame:
    """Fields that differ between two versions: columns ``field``, ``a``, ``b`` (params first;
    provenance fields too when ``provenance=True``)."""
    pa_ = a if isinstance(a, ParamSet) else load(a, root=root)
    pb_ = b if isinstance(b, ParamSet) else load(b, root=root)
    da = _flatten(pa_.params.model_dump(mode="json"), "params.")
    db_ = _flatten(pb_.params.model_dump(mode="json"), "params.")
    if provenance:
        da.update(_flatten(dict(pa_.provenance), "provenance."))
        db_.update(_flatten(dict(pb_.provenance), "provenance."))
    rows = [{"field": k, pa_.ref: da.get(k, "<absent>"), pb_.ref: db_.get(k, "<absent>")}
            for k in sorted(set(da) | set(db_)) if da.get(k, "<absent>") != db_.get(k, "<absent>")]
    cols = ["field", pa_.ref, pb_.ref] if pa_.ref != pb_.ref else ["field", "a", "b"]
    return pd.DataFrame(rows, columns=cols)


def all_sets(root: str | os.PathLike[str] | None = None) -> list[ParamSet]:
    out = []
    for n in names(root):
        for v in versions(n, root):
            with contextlib.suppress(InvalidInput):
                out.append(load_file(params_root(root) / n / f"v{v}.toml"))
    return out


def sync_to_store(store: Any, root: str | os.PathLike[str] | None = None) -> int:
    """Upsert every valid version file (and its status) into ``store``'s ``param_sets``; returns rows.

    Used by the runner, the single writer of the live database, on start and before each hedge start.
    """
    sets = all_sets(root)
    if not sets:
        return 0
    return store.write_table("param_sets", pd.DataFrame([s.to_row() for s in sets]))
