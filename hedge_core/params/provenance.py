"""Provenance of a parameter set: the code version, fingerprints of the data behind a backtest, and what a
backtest or sweep result says about its run (venue, symbols, window, KPIs)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["code_version", "data_fingerprint", "provenance_from_backtest", "timeline_fingerprint"]


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


def provenance_from_backtest(run: Any) -> dict[str, Any]:
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

