"""First run: fill an empty store with real data when the network allows, else with the demo market.

``ensure_seeded`` does nothing when the store already holds market data. Otherwise it probes the
network (a short TCP connect, injectable so tests never touch the internet) and downloads Binance
BTC and ETH spot/perp/mark 1h bars and funding for the last 365 days; when the venue is unreachable
(or refuses before sending anything, e.g. a geo-block) it writes the deterministic demo market
(venue ``demo``, visibly synthetic). A download that fails half-way keeps what it wrote and raises
:class:`SeedFailed` saying what to do (re-running resumes).
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from hedge_core.data.demo import seed_demo
from hedge_core.data.download import DownloadProgress, download, make_exchange
from hedge_core.errors import HedgeError

SEED_SYMBOLS = ("BTC/USDT", "ETH/USDT")


class SeedFailed(HedgeError):
    """Seeding could not finish; the message says what to do."""


@dataclass(frozen=True)
class SeedResult:
    """What ``ensure_seeded`` did: ``source`` is 'existing', a venue id (e.g. 'binance') or 'demo'."""

    source: str
    message: str
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __str__(self) -> str:
        return self.message


def probe_network(host: str = "api.binance.com", port: int = 443, timeout: float = 3.0) -> bool:
    """True when a TCP connection to ``host:port`` opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def has_market_data(store: Any) -> bool:
    s = store.series()
    return bool(len(s)) and int(s["rows"].sum()) > 0


def ensure_seeded(store: Any, *, network_probe: Callable[[], bool] = probe_network,
                  progress: bool | Callable[[DownloadProgress], None] = True,
                  exchange_factory: Callable[[str], Any] = make_exchange, venue: str = "binance",
                  days: float = 365.0, now: pd.Timestamp | None = None, timeframe: str = "1h",
                  demo: bool = False, demo_seed: int = 7, echo: Callable[[str], None] | None = None,
                  max_retries: int = 2, sleep: Callable[[float], None] = time.sleep) -> SeedResult:
    """Seed an empty store (see module docstring). Returns a :class:`SeedResult`.

    Parameters
    ----------
    network_probe : returns True when the venue is reachable (default: TCP connect to Binance, 3 s).
    progress : True for tqdm bars and messages on stderr, False for silence, or a callback receiving
        :class:`~hedge_core.data.download.DownloadProgress` after every page (for the panel).
    exchange_factory : builds the ccxt exchange from its id (tests inject a fake).
    demo : skip the network and write the demo market.
    max_retries, sleep : retries of temporary errors per request (few: a first run should not hang)
        and the sleep used between them (tests inject a no-op).
    """
    say = echo or ((lambda m: print(m, file=sys.stderr)) if progress else (lambda m: None))
    if has_market_data(store):
        return SeedResult("existing", "the store already holds market data; nothing to do")
    reason = "demo requested"
    if not demo:
        say(f"empty store: checking whether {venue} is reachable ...")
        if network_probe():
            say(f"downloading {venue} BTC and ETH spot/perp/mark {timeframe} and funding, last {days:g} days "
                "(resumable; Ctrl+C is safe) ...")
            try:
                ex = exchange_factory(venue)
                summary = download(store, ex, SEED_SYMBOLS, timeframe=timeframe, days=days, now=now,
                                   show_bar=progress is True,
                                   progress=progress if callable(progress) else None,
                                   max_retries=max_retries, sleep=sleep)
                msg = f"seeded from {venue}: {int(summary['rows'].sum())} rows in {len(summary)} series"
                say(msg)
                return SeedResult(venue, msg, summary)
            except HedgeError as e:
                if has_market_data(store):
                    raise SeedFailed(
                        f"downloading from {venue} stopped part-way: {e}. What to do: run `hedge data download` "
                        "again (it resumes where it stopped), or import files with `hedge data import PATH`, "
                        "or use a fresh --db and `hedge data seed --demo` for the synthetic demo market.") from e
                reason = f"{venue} refused the download before any data arrived ({e})"
        else:
            reason = f"{venue} is not reachable (no network?)"
    say(f"{reason}: writing the synthetic demo market (venue 'demo', seed {demo_seed}) ...")
    try:
        summary = seed_demo(store, days=days, timeframe=timeframe, seed=demo_seed)
    except HedgeError as e:
        raise SeedFailed(f"writing the demo market failed: {e}. What to do: check that the database file is "
                         "writable and not held by another process, or pass another --db.") from e
    msg = (f"seeded with the SYNTHETIC demo market ({reason}): {int(summary['rows'].sum())} rows in "
           f"{len(summary)} series; run `hedge data download` when online for real data")
    say(msg)
    return SeedResult("demo", msg, summary)
