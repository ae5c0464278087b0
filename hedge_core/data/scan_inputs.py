"""Read the funding scanner's inputs from the store (the shell around :mod:`hedge_core.analytics.scanner`).

Three frames, through the store's own read functions (no SQL here):

- ``funding``: every stored perp's funding events (:meth:`Store.read_funding_all`): ``ts, venue,
  symbol, funding_rate, interval_hours``;
- ``instruments``: ``venue, symbol, kind, min_qty, min_notional, lot_size, source``: the store's
  ``instruments`` table (``source='store'``), completed for venues with funding by the paper venue's
  default instruments (:func:`hedge_core.exchange.paper.core.default_instruments`, Binance-like limits
  of BTC and ETH; ``source='paper defaults'``). A leg with neither has an unknown minimum size;
- ``prices``: ``venue, symbol, price``: the last stored 1h close (perp, else spot) at or before
  ``as_of`` of every market that has bars (the smallest size in quote).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from hedge_core.errors import InvalidInput
from hedge_core.store import Store

if TYPE_CHECKING:
    from hedge_core.data.shared import MarketData

__all__ = ["ScanInputs", "instrument_frame", "load_scan_inputs", "market_scan_inputs"]

INSTRUMENT_COLUMNS = ["venue", "symbol", "kind", "min_qty", "min_notional", "lot_size", "source"]


@dataclass(frozen=True)
class ScanInputs:
    """The scanner's input frames (columns in the module docstring)."""

    funding: pd.DataFrame
    instruments: pd.DataFrame
    prices: pd.DataFrame

    @property
    def venues(self) -> list[str]:
        return sorted(self.funding["venue"].unique()) if len(self.funding) else []


def instrument_frame(stored: pd.DataFrame, venues: list[str]) -> pd.DataFrame:
    """The store's instrument rows, plus the paper venue's defaults for (venue, symbol) the store lacks."""
    from hedge_core.exchange.paper.core import default_instruments

    rows = []
    if stored is not None and len(stored):
        s = stored.reindex(columns=INSTRUMENT_COLUMNS[:-1]).assign(source="store")
        rows.append(s)
    have = set() if not rows else set(zip(rows[0]["venue"], rows[0]["symbol"]))
    paper = [{"venue": v, "symbol": i.symbol, "kind": i.kind.value, "min_qty": i.min_qty,
              "min_notional": i.min_notional, "lot_size": i.lot_size, "source": "paper defaults"}
             for v in venues for i in default_instruments(v) if (v, i.symbol) not in have]
    if paper:
        rows.append(pd.DataFrame(paper))
    return (pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=INSTRUMENT_COLUMNS))


def _prices(store: Store, as_of: pd.Timestamp | None) -> pd.DataFrame:
    series = store.series()
    bars = series[series["kind"].isin(["perp", "spot"]) & (series["timeframe"] == "1h") & (series["rows"] > 0)]
    out = []
    for r in bars.sort_values("kind").itertuples():  # perp before spot for the same symbol's base
        last = pd.Timestamp(r.last)
        end = last + pd.Timedelta(hours=1) if as_of is None else min(as_of, last + pd.Timedelta(hours=1))
        b = store.read_bars(r.venue, r.symbol, r.kind, "1h", start=end - pd.Timedelta(days=3), end=end)
        if len(b) and pd.notna(b["close"].iloc[-1]):
            out.append({"venue": r.venue, "symbol": r.symbol, "price": float(b["close"].iloc[-1])})
    return pd.DataFrame(out, columns=["venue", "symbol", "price"])


def load_scan_inputs(store: Store, *, as_of: pd.Timestamp | None = None) -> ScanInputs:
    """Funding, instruments and prices known at ``as_of`` (default: everything stored).

    Raises
    ------
    InvalidInput
        No funding in the store (field ``funding``: what to import or download).
    """
    if as_of is not None and pd.Timestamp(as_of).tzinfo is None:
        raise InvalidInput("as_of", as_of, "a tz-aware UTC timestamp")
    end = None if as_of is None else pd.Timestamp(as_of) + pd.Timedelta(microseconds=1)  # read_funding is [start, end)
    funding = store.read_funding_all(end=end)
    if funding.empty and end is not None:
        first = store.read_funding_all()["ts"].min()
        if pd.notna(first):
            raise InvalidInput("as_of", str(pd.Timestamp(as_of)), f"a time at or after the first stored funding event {first}")
    if funding.empty:
        raise InvalidInput("funding", "no funding rows in the store",
                           "funding of at least one perp: `hedge data import` a funding file (e.g. the shared "
                           "crossvenue_funding_*.csv), `hedge data download`, or `hedge data seed`")
    venues = sorted(funding["venue"].unique())
    instruments = instrument_frame(store.read_table("instruments"), venues)
    return ScanInputs(funding, instruments, _prices(store, None if as_of is None else pd.Timestamp(as_of)))


def market_scan_inputs(data: MarketData, *, as_of: pd.Timestamp | None = None) -> ScanInputs:
    """The scanner's inputs of a notebook's :class:`~hedge_core.data.shared.MarketData`, known at ``as_of``.

    The data goes through the store's own import path into an in-memory database (nothing is written
    to disk), then :func:`load_scan_inputs` reads it as it reads the user's database:

    - shared: the window's cross-venue funding file (Binance, Bybit, OKX; USDT- and coin-margined
      perps) and Binance's 1h perp bars of BTC and ETH (the prices of the smallest sizes);
    - demo: the seeded demo market (one venue, ``demo``: spot/perp rows only, no venue pair).

    Raises
    ------
    InvalidInput
        ``as_of`` naive or before the first funding event (see :func:`load_scan_inputs`).
    """
    from hedge_core.data.importers import import_path, write_series

    with Store(":memory:") as st:
        if data.synthetic:
            write_series(st, data.demo)
        else:
            assert data.root is not None
            cross = sorted(data.root.glob("crossvenue_funding_*.csv"))
            if not cross:
                raise InvalidInput("data", str(data.root), "a shared window with a crossvenue_funding_*.csv file")
            for path in (cross[0], *sorted(data.root.glob("binance_*_perp_1h.csv"))):
                import_path(st, path)
        return load_scan_inputs(st, as_of=as_of)
