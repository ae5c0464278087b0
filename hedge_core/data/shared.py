"""Locate and read the tidy CSV layout of ``../shared/data`` (real Binance/Bybit/OKX data), or the demo.

File names are ``<venue>_<SYMBOL>_<kind>_<timeframe>.csv``; ``ts`` is the bar's open time (UTC).
The folder is ``$HEDGE_SHARED_DATA`` when that is set (and only then: pointing it at an empty folder
forces the demo fallback), otherwise ``../shared/data`` next to the repository.

:func:`market_data` is the one place that decides which data a notebook uses: the shared window when
it is present, else the seeded synthetic demo market (:mod:`hedge_core.data.demo`) over the same
calendar span, labelled "synthetic demo data" so nothing built from it passes for market data.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from hedge_core.errors import InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    from plotly.graph_objects import Figure

    from hedge_core.backtest.timeline import Market
    from hedge_core.data.importers import SeriesKey

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = "sample_2023-01_2024-06"
STRESS = "stress_2020-01_2022-12"
# calendar span [start, end) of each shared window; the demo fallback covers the same span
WINDOWS: Mapping[str, tuple[str, str]] = {
    SAMPLE: ("2023-01-01T00:00Z", "2024-07-01T00:00Z"),
    STRESS: ("2020-01-01T00:00Z", "2023-01-01T00:00Z"),
}
DEMO_LABEL = "synthetic demo data"
ENV = "HEDGE_SHARED_DATA"


def shared_data_dir() -> Path | None:
    """The shared data folder, or None when it is absent (a user's fresh clone).

    ``$HEDGE_SHARED_DATA``, when set, is the only candidate; a folder counts when it holds at least
    one of the known windows (:data:`WINDOWS`).
    """
    env = os.environ.get(ENV)
    if env:
        candidates = [Path(env)]
    else:
        candidates = [REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir() and any((c / w).is_dir() for w in WINDOWS):
            return c.resolve()
    return None


def require_shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        raise FileNotFoundError(
            "../shared/data is not next to this repository (set HEDGE_SHARED_DATA to its path); "
            "use the demo market instead: hedge_core.data.shared.market_data or hedge_core.data.demo")
    return d


def load_tidy(window: str, venue: str, pair: str, kind: str, timeframe: str) -> pd.DataFrame:
    """Read one tidy series, e.g. ``load_tidy(SAMPLE, 'binance', 'BTCUSDT', 'spot', '1h')``.

    Returns a frame indexed by UTC ``ts`` (bar open time) with the file's columns as float64.
    Gaps are kept as they are (no reindexing).
    """
    return _read_tidy(require_shared_data() / window / f"{venue}_{pair}_{kind}_{timeframe}.csv")


def _read_tidy(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path)
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df.set_index("ts").astype("float64")


@dataclass(frozen=True)
class MarketData:
    """The market data a notebook works on: one shared window, or the demo market standing in for it.

    Attributes
    ----------
    source : {"shared", "demo"}
        ``shared``: real Binance data read in place from ``root``; ``demo``: the seeded synthetic market.
    window : str
        The shared window name (:data:`SAMPLE` or :data:`STRESS`); the demo covers its calendar span.
    root : Path or None
        The window folder (shared only).
    demo : mapping SeriesKey -> frame
        The generated demo frames (demo only; empty for shared).
    seed : int
        Seed of the demo generator (ignored for shared).
    """

    source: Literal["shared", "demo"]
    window: str
    root: Path | None = None
    demo: Mapping[SeriesKey, pd.DataFrame] = field(default_factory=dict, repr=False)
    seed: int = 7

    @property
    def synthetic(self) -> bool:
        return self.source == "demo"

    @property
    def venue(self) -> str:
        """Venue name the series carry: ``binance`` (shared) or ``demo``."""
        return "demo" if self.synthetic else "binance"

    @property
    def span(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """Calendar span ``[start, end)`` of the window (UTC)."""
        a, b = WINDOWS[self.window]
        return pd.Timestamp(a), pd.Timestamp(b)

    @property
    def label(self) -> str:
        """One line saying what the data is, for the first output of a notebook."""
        a, b = self.span
        days = f"{a:%Y-%m-%d} -> {b - pd.Timedelta(days=1):%Y-%m-%d}"
        if self.synthetic:
            return (f"{DEMO_LABEL.upper()}: seeded demo market (hedge_core.data.demo, seed {self.seed}), "
                    f"BTC and ETH, {days}; ../shared/data is absent, so these are NOT market prices")
        return f"shared sample: real Binance data, {self.root} ({days})"

    def title(self, text: str) -> str:
        """A chart title that says "synthetic demo data" when the data is."""
        return f"{text} ({DEMO_LABEL})" if self.synthetic else text

    def tag(self, fig: Figure) -> Figure:
        """Append "(synthetic demo data)" to a plotly figure's title when the data is synthetic; returns it."""
        if self.synthetic:
            fig.update_layout(title_text=self.title(fig.layout.title.text or ""))
        return fig

    def tidy(self, pair: str, kind: str, timeframe: str) -> pd.DataFrame:
        """One series in the shape of :func:`load_tidy`, e.g. ``tidy('BTCUSDT', 'spot', '1h')``.

        Parameters
        ----------
        pair : str
            ``BTCUSDT`` or ``ETHUSDT``.
        kind : str
            ``spot``, ``perp``, ``mark`` (1h bars: open/high/low/close[/volume], index = UTC open time)
            or ``funding`` (``8h``: ``funding_rate``, a fraction per interval, positive = longs pay).
        timeframe : str
            ``1h`` for bars, ``8h`` for funding.
        """
        allowed = {"spot": "1h", "perp": "1h", "mark": "1h", "funding": "8h"}
        if kind not in allowed:
            raise InvalidInput("kind", kind, f"one of {sorted(allowed)}")
        if timeframe != allowed[kind]:
            raise InvalidInput("timeframe", timeframe, f"{allowed[kind]!r} for {kind}")
        if pair not in ("BTCUSDT", "ETHUSDT"):
            raise InvalidInput("pair", pair, "'BTCUSDT' or 'ETHUSDT'")
        if not self.synthetic:
            assert self.root is not None
            return _read_tidy(self.root / f"binance_{pair}_{kind}_{timeframe}.csv")
        asset = pair.removesuffix("USDT")
        sym = f"{asset}/USDT" if kind == "spot" else f"{asset}/USDT:USDT"
        df = next(f for k, f in self.demo.items() if k.symbol == sym and k.kind == kind)
        # the columns of the shared files: no volume on mark bars, funding_rate only (8h interval)
        drop = {"mark": ["volume"], "funding": ["interval_hours"]}.get(kind, [])
        return df.drop(columns=drop).astype("float64")

    def market(self, asset: str = "BTC") -> Market:
        """The spot/perp/mark/funding of ``asset`` as a backtest :class:`~hedge_core.backtest.timeline.Market`."""
        from hedge_core.backtest.timeline import Market

        pair = f"{asset}USDT"
        fr = {k: self.tidy(pair, k, "8h" if k == "funding" else "1h") for k in ("spot", "perp", "mark", "funding")}
        return Market(self.venue, f"{asset}/USDT", f"{asset}/USDT:USDT", "1h", fr["spot"], fr["perp"], fr["mark"],
                      fr["funding"], meta={"source": self.source, "window": self.window})

    def crossvenue_funding(self) -> pd.DataFrame:
        """Funding of several venues in one frame: ``ts, venue, symbol, funding_rate, interval_hours``.

        Shared: Binance, Bybit and OKX (the window's ``crossvenue_funding_*`` file). Demo: one venue,
        ``demo``, with its BTCUSDT and ETHUSDT funding (there is no synthetic second venue).
        """
        if not self.synthetic:
            path = next(iter(sorted(self.root.glob("crossvenue_funding_*.csv"))), None) if self.root else None
            if path is None:
                raise FileNotFoundError(f"no crossvenue_funding_*.csv in {self.root}")
            cv = pd.read_csv(path)
            cv["ts"] = pd.to_datetime(cv["ts"], utc=True)
            if "interval_hours" not in cv:
                cv["interval_hours"] = 8.0
            cv["interval_hours"] = cv["interval_hours"].fillna(8.0)
            return cv
        cols = ["ts", "venue", "symbol", "funding_rate", "interval_hours"]
        parts = [self.tidy(pair, "funding", "8h").reset_index().assign(venue="demo", symbol=pair,
                                                                        interval_hours=8.0)[cols]
                 for pair in ("BTCUSDT", "ETHUSDT")]
        return pd.concat(parts, ignore_index=True)


def market_data(window: str = SAMPLE, *, seed: int = 7) -> MarketData:
    """The data a notebook should use: the shared ``window`` when present, else the demo market.

    Parameters
    ----------
    window : str
        :data:`SAMPLE` (2023-01 -> 2024-06) or :data:`STRESS` (2020-01 -> 2022-12).
    seed : int
        Seed of the demo generator when the fallback is taken (same seed, same frames).

    Returns
    -------
    MarketData
        ``source == "shared"`` when ``$HEDGE_SHARED_DATA`` (or ``../shared/data``) holds ``window``;
        otherwise ``source == "demo"``: BTC and ETH hourly bars and 8h funding generated over the
        window's calendar span, labelled "synthetic demo data".
    """
    if window not in WINDOWS:
        raise InvalidInput("window", window, f"one of {sorted(WINDOWS)}")
    d = shared_data_dir()
    if d is not None and (d / window).is_dir():
        return MarketData("shared", window, root=d / window)
    from hedge_core.data.demo import generate_demo_market

    a, b = (pd.Timestamp(x) for x in WINDOWS[window])
    frames = generate_demo_market(days=(b - a) / pd.Timedelta(days=1), timeframe="1h", seed=seed, start=a)
    # funding events fall at interval ends: drop the one at the span's end (it belongs to the next day)
    return MarketData("demo", window, demo={k: f.loc[f.index < b] for k, f in frames.items()}, seed=seed)
