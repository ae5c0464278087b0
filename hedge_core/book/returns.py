"""Close prices of the book's assets from the store, on one time grid, for the VaR.

Reads the spot bars of each asset (the venue and symbol a hedge of that asset trades, else any
venue in the store with that symbol) over the last ``lookback_days`` of the series itself (a
replayed hedge's history ends when its data ends, not today).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from hedge_core.errors import InvalidInput
from hedge_core.store import Store

__all__ = ["asset_closes"]


def asset_closes(store: Store, sources: Mapping[str, Sequence[tuple[str, str]]], timeframe: str = "1h",
                 lookback_days: float = 90.0) -> pd.DataFrame:
    """Close prices, one column per asset, outer-joined on time (the VaR drops rows with gaps).

    Parameters
    ----------
    sources
        Asset -> candidate ``(venue, spot symbol)`` pairs, most preferred first; the first with
        stored ``timeframe`` spot bars is read.
    Raises
    ------
    InvalidInput
        When an asset has no stored spot bars on any candidate (names the asset and what was tried).
    """
    cols: dict[str, pd.Series] = {}
    for asset, cands in sources.items():
        for venue, symbol in cands:
            last = store.last_ts(venue, symbol, "spot", timeframe)
            if last is None:
                continue
            df = store.read_bars(venue, symbol, "spot", timeframe, start=last - pd.Timedelta(days=lookback_days))
            if len(df):
                cols[asset] = df["close"].astype("float64")
                break
        else:
            raise InvalidInput("returns", asset, f"stored {timeframe} spot bars for {asset} on one of "
                               f"{[f'{v} {s}' for v, s in cands]} (hedge data download)")
    return pd.DataFrame(cols)
