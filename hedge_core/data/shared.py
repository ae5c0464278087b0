"""Locate and read the tidy CSV layout of ``../shared/data`` (real Binance/Bybit/OKX data).

File names are ``<venue>_<SYMBOL>_<kind>_<timeframe>.csv``; ``ts`` is the bar's open time (UTC).
The folder is found through ``HEDGE_SHARED_DATA`` or as ``../shared/data`` next to the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = "sample_2023-01_2024-06"
STRESS = "stress_2020-01_2022-12"


def shared_data_dir() -> Path | None:
    """The shared data folder, or None when it is absent (a user's fresh clone)."""
    env = os.environ.get("HEDGE_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates += [REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None


def require_shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        raise FileNotFoundError(
            "../shared/data is not next to this repository (set HEDGE_SHARED_DATA to its path); "
            "use the demo market instead: hedge_core.data.demo")
    return d


def load_tidy(window: str, venue: str, pair: str, kind: str, timeframe: str) -> pd.DataFrame:
    """Read one tidy series, e.g. ``load_tidy(SAMPLE, 'binance', 'BTCUSDT', 'spot', '1h')``.

    Returns a frame indexed by UTC ``ts`` (bar open time) with the file's columns as float64.
    Gaps are kept as they are (no reindexing).
    """
    path = require_shared_data() / window / f"{venue}_{pair}_{kind}_{timeframe}.csv"
    df = pd.read_csv(path)
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df.set_index("ts").astype("float64")
