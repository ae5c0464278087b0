"""Parameter sets on disk: versioned TOML files with provenance, import, promotion and diff.

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
import hashlib
import json
import math
import os
import re
import subprocess
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import tomli_w
from pydantic import BaseModel, TypeAdapter, ValidationError

from hedge_core.errors import InvalidInput
from hedge_core.params import StrategyParams

__all__ = [
    "STATUSES",
    "ParamSet",
    "PromotionGate",
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
    "promote",
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
OFF = "off"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VFILE_RE = re.compile(r"^v(\d+)\.toml$")
_ADAPTER: TypeAdapter[Any] = TypeAdapter(StrategyParams)


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


def code_version(repo: str | os.PathLike[str] | None = None) -> tuple[str, bool]:
    """(``git describe --always --tags --dirty`` of the repository, dirty flag).

    Falls back to the installed package version (``hedge-core==X``, dirty unknown -> False) when
    git or the repository is not there.
    """
    from hedge_core.store import REPO_ROOT

    where = Path(repo) if repo is not None else REPO_ROOT
    try:
        out = subprocess.run(["git", "describe", "--always", "--tags", "--dirty"], cwd=where,
                             capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        if out:
            return out, out.endswith("-dirty")
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        from importlib.metadata import version

        return f"hedge-core=={version('hedge-core')}", False
    except Exception:  # noqa: BLE001 - no metadata at all: say so rather than fail an export
        return "unknown", False


def data_fingerprint(frames: Mapping[str, pd.DataFrame] | Sequence[pd.DataFrame] | pd.DataFrame) -> str:
    """``sha256:<hex>`` of the data behind a backtest (index and values of each frame, in order of
    their names). The same frames always give the same hash; one changed value changes it."""
    if isinstance(frames, pd.DataFrame):
        items: list[tuple[str, pd.DataFrame]] = [("", frames)]
    elif isinstance(frames, Mapping):
        items = sorted(((str(k), v) for k, v in frames.items()), key=lambda kv: kv[0])
    else:
        items = [(str(i), f) for i, f in enumerate(frames)]
    h = hashlib.sha256()
    for key, df in items:
        h.update(key.encode())
        h.update(",".join(map(str, df.columns)).encode())
        h.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
    return "sha256:" + h.hexdigest()


def timeline_fingerprint(tl: Any) -> str:
    """``sha256:<hex>`` of a backtest timeline's market arrays (times, OHLCV of spot/perp/mark, funding)."""
    import numpy as np

    h = hashlib.sha256()
    for name in ("ts", "spot_bar", "perp_bar", "mark_bar", "fund_rate"):
        arr = getattr(tl, name, None)
        if arr is not None:
            a = np.ascontiguousarray(np.asarray(arr))
            h.update(name.encode())
            h.update(a.tobytes())
    return "sha256:" + h.hexdigest()


def _to_toml_value(v: Any) -> Any:
    if v is None:
        return OFF
    if isinstance(v, dict):
        return {k: _to_toml_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_to_toml_value(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _from_toml_value(v: Any) -> Any:
    if isinstance(v, str) and v == OFF:
        return None
    if isinstance(v, dict):
        return {k: _from_toml_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_from_toml_value(x) for x in v]
    return v


def _allowed_from_error(err: Mapping[str, Any], model: Any, loc: tuple[Any, ...]) -> str:
    typ = err.get("type", "")
    ctx = err.get("ctx") or {}
    if typ == "extra_forbidden":
        known = _known_fields(model, loc[:-1])
        return f"a known field ({', '.join(known)})" if known else "no such field (unknown fields are rejected)"
    bounds = [f"{sym} {ctx[k]}" for k, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")) if k in ctx]
    desc = _field_description(model, loc)
    if bounds:
        return " and ".join(bounds) + (f" ({desc})" if desc else "")
    msg = str(err.get("msg", "a valid value"))
    return msg[0].lower() + msg[1:] + (f" ({desc})" if desc else "")


def _unknown_field(allowed: str) -> bool:
    """Whether an ``allowed`` text of :func:`_allowed_from_error` is the unknown-field one (a field
    the model does not have; a file from an older release when the model lost it)."""
    return allowed.startswith(("a known field", "no such field"))


def _model_at(model: Any, loc: Sequence[Any]) -> Any:
    cur = model
    for part in loc:
        if not (isinstance(cur, type) and issubclass(cur, BaseModel)):
            return None
        f = cur.model_fields.get(str(part))
        if f is None:
            return None
        cur = f.annotation
    return cur


def _known_fields(model: Any, loc: Sequence[Any]) -> list[str]:
    m = _model_at(model, loc)
    if isinstance(m, type) and issubclass(m, BaseModel):
        return list(m.model_fields)
    return []


def _field_description(model: Any, loc: Sequence[Any]) -> str:
    if not loc:
        return ""
    parent = _model_at(model, loc[:-1])
    if isinstance(parent, type) and issubclass(parent, BaseModel):
        f = parent.model_fields.get(str(loc[-1]))
        if f is not None and f.description:
            return f.description
    return ""


def _model_for(data: Any) -> Any:
    from hedge_core.params import (
        CarryParams,
        CrossHedgeParams,
        GridParams,
        VolTierLoanParams,
    )

    by = {"carry": CarryParams, "cross": CrossHedgeParams, "voltier": VolTierLoanParams, "grid": GridParams}
    return by.get(data.get("strategy")) if isinstance(data, Mapping) else None


def validation_error(exc: ValidationError, data: Any, *, where: str | None = None) -> InvalidInput:
    """Translate a pydantic error into :class:`InvalidInput` naming field, value and what is allowed.

    The first error is the headline; every error is kept in ``.errors`` as
    ``(field, value, allowed)`` and listed in the message.
    """
    model = _model_for(data)
    errs: list[tuple[str, Any, str]] = []
    for e in exc.errors():
        loc = tuple(e.get("loc", ()))
        if model is not None and loc and loc[0] == model.model_fields["strategy"].default:
            loc = loc[1:]  # the discriminated union prefixes the tag
        fld = ".".join(str(p) for p in loc) or "params"
        errs.append((fld, e.get("input"), _allowed_from_error(e, model, loc)))
    if not errs:
        errs = [("params", data, str(exc))]
    f0, v0, a0 = errs[0]
    if len(errs) > 1:
        a0 += "; also: " + "; ".join(f"{f}={v!r}: expected {a}" for f, v, a in errs[1:])
    out = InvalidInput(f0, v0, a0, where=where)
    out.errors = errs  # type: ignore[attr-defined]
    return out


def parse(data: Mapping[str, Any], *, where: str | None = None) -> Any:
    """Validate a plain mapping (``strategy`` tag + fields) into its params model.

    Raises
    ------
    InvalidInput
        Naming the field, the value and what is allowed (unknown fields, wrong types, bounds,
        cross-field rules).
    """
    if not isinstance(data, Mapping):
        raise InvalidInput("params", type(data).__name__, "a table of parameters", where=where)
    if data.get("strategy") not in ("carry", "cross", "voltier", "grid"):
        raise InvalidInput("strategy", data.get("strategy"), "one of 'carry', 'cross', 'voltier', 'grid'", where=where)
    try:
        return _ADAPTER.validate_python(_from_toml_value(dict(data)))
    except ValidationError as exc:
        raise validation_error(exc, data, where=where) from None


# ---- the parameter set -----------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSet:
    """One immutable version of a named parameter set."""

    name: str
    version: int
    params: Any  # CarryParams | CrossHedgeParams | VolTierLoanParams | GridParams
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


def _provenance_from_backtest(run: Any) -> dict[str, Any]:
    """Best-effort provenance from a backtest / sweep result object or mapping."""
    if run is None:
        return {}

    def get(key: str) -> Any:
        if isinstance(run, Mapping):
            return run.get(key)
        return getattr(run, key, None)

    out: dict[str, Any] = {}
    for key in ("kpis", "metrics", "summary", "stats"):
        k = get(key)
        if callable(k):
            with contextlib.suppress(Exception):
                k = k()
        if isinstance(k, pd.DataFrame) and len(k) >= 1:
            k = k.iloc[0]
        if isinstance(k, pd.Series):
            k = k.to_dict()
        if isinstance(k, Mapping) and k:
            out["kpis"] = {str(a): float(b) for a, b in k.items() if isinstance(b, (int, float)) and not isinstance(b, bool)}
            break
    window = get("data_window")
    if window is None and get("start") is not None and get("end") is not None:
        window = (get("start"), get("end"))
    if window is None:
        for key in ("frame", "equity", "snapshots", "timeline"):
            f = get(key)
            if isinstance(f, (pd.DataFrame, pd.Series)) and isinstance(f.index, pd.DatetimeIndex) and len(f):
                window = (f.index[0], f.index[-1])
                break
    if window is not None:
        out["data_window"] = [str(pd.Timestamp(window[0])), str(pd.Timestamp(window[1]))]
    h = get("data_hash")
    if isinstance(h, str) and h:
        out["data_hash"] = h
    else:
        tl = get("market") or get("timeline")
        if tl is not None and hasattr(tl, "ts") and hasattr(tl, "spot_bar"):
            out["data_hash"] = timeline_fingerprint(tl)
            out.setdefault("data_source", f"{getattr(tl, 'venue', '')} {getattr(tl, 'spot_symbol', '')} "
                                          f"{getattr(tl, 'perp_symbol', '')} {getattr(tl, 'timeframe', '')}".strip())
    for key in ("venue", "symbol", "spot_symbol", "perp_symbol", "timeframe", "data_source"):
        v = get(key)
        if isinstance(v, str) and v:
            out[key] = v
    return out


def export(params: Any, name: str, backtest: Any = None, *, created_from: str = "notebook",
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
    prov: dict[str, Any] = _provenance_from_backtest(backtest)
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


# ---- promotion -------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class PromotionGate:
    """Rules of :func:`promote`.

    ``require_paper_run``: live needs a COMPLETED paper run (``hedge_runs``: mode paper, state
    COMPLETED, ended) of the same name and version. ``min_paper_hours``: and that run lasted at
    least this long (data time). ``require_confirm``: live needs ``confirm=True``.
    """

    require_paper_run: bool = True
    min_paper_hours: float = 0.0
    require_confirm: bool = True


RunsReader = Callable[[str, int], pd.DataFrame]


def completed_paper_runs(runs: pd.DataFrame, name: str, version: int, min_hours: float = 0.0) -> pd.DataFrame:
    """Rows of ``hedge_runs`` that count as a completed paper run of ``name@version``."""
    if runs is None or len(runs) == 0:
        return pd.DataFrame()
    r = runs[(runs["mode"] == "paper") & (runs["params_name"] == name)
             & (runs["params_version"].astype("float64") == float(version)) & (runs["state"] == "COMPLETED")
             & runs["ended_at"].notna()]
    if min_hours > 0 and len(r):
        dur = (pd.to_datetime(r["ended_at"], utc=True) - pd.to_datetime(r["started_at"], utc=True)).dt.total_seconds()
        r = r[dur >= min_hours * 3600]
    return r


def default_runs_reader(db: str | os.PathLike[str] | None = None) -> RunsReader:
    """hedge_runs through the runner's API when it is up (it holds the database), else the store."""

    def read(name: str, version: int) -> pd.DataFrame:
        from hedge_core.runner.client import RunnerClient, RunnerNotRunning

        try:
            client = RunnerClient.discover()
            return pd.DataFrame(client.runs())
        except RunnerNotRunning:
            from hedge_core.store import Store

            return Store(db, hold=False).read_table("hedge_runs", params_name=name)

    return read


def promote(name: str, version: int, to: str, *, confirm: bool = False, gate: PromotionGate = PromotionGate(),
            runs_reader: RunsReader | None = None, by: str = "cli", root: str | os.PathLike[str] | None = None,
            db: str | os.PathLike[str] | None = None, now: pd.Timestamp | None = None) -> ParamSet:
    """Move ``name@version`` up one step: draft -> paper -> live.

    Raises
    ------
    InvalidInput
        Unknown target, a skipped step, live without a completed paper run of this version (when
        the gate asks for one) or without ``confirm=True``. Nothing is written then.
    """
    if to not in STATUSES[1:]:
        raise InvalidInput("to", to, "'paper' or 'live'")
    ps = load(name, version, root=root)
    cur = status_of(name, ps.version, root=root)
    order = {s: i for i, s in enumerate(STATUSES)}
    if order[to] <= order[cur]:
        raise InvalidInput("to", to, f"a status above the current {cur!r} of {ps.ref}")
    if order[to] - order[cur] > 1:
        raise InvalidInput("to", to, f"'paper' first: {ps.ref} is {cur!r} (draft -> paper -> live)")
    evidence: dict[str, Any] = {}
    if to == "live":
        if gate.require_paper_run:
            reader = runs_reader or default_runs_reader(db)
            runs = completed_paper_runs(reader(name, ps.version), name, ps.version, gate.min_paper_hours)
            if len(runs) == 0:
                hours = f" of at least {gate.min_paper_hours:g} h" if gate.min_paper_hours else ""
                raise InvalidInput("paper_run", None, f"a completed paper run{hours} of {ps.ref} before live "
                                   "(hedge start --params {0} --mode paper, then hedge stop ID)".format(ps.ref))
            evidence["paper_runs"] = [str(h) for h in runs["hedge_id"]]
        if gate.require_confirm and confirm is not True:
            raise InvalidInput("confirm", confirm, "True (--yes): live promotion lets this set trade real money")
    t = pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC")
    doc = _read_status(name, root)
    entry = doc.get(str(ps.version), {"status": "draft", "history": []})
    entry["status"] = to
    entry.setdefault("history", []).append({"from": cur, "to": to, "at": t.isoformat(), "by": by, **evidence})
    doc[str(ps.version)] = entry
    p = _status_path(name, root)
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, p)
    out = ParamSet(ps.name, ps.version, ps.params, ps.provenance, ps.path, status=to)
    return ParamSet(out.name, out.version, out.params, out.provenance, out.path, status=to,
                    indexed=_try_index([out], db))


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
