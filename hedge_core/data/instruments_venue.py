"""Read instruments from a venue and store them: ``hedge data instruments`` (and ``hedge data download``).

Through the ccxt adapter (:class:`hedge_core.exchange.ccxt.adapter.CcxtLiveAdapter`, the one place vendor
errors are translated): ``load_markets`` gives tick, lot, minimum quantity and notional, contract size and
maximum leverage; the adapter's ``fetch_tiers`` gives the maintenance tiers (Binance's signed leverage brackets,
Bybit's public risk-limit tiers, OKX's public position tiers in contracts converted at the mark price; all
mapped to :class:`hedge_core.types.Bracket`). The rows are stored
with the time they were read and where they came from (:meth:`hedge_core.store.Store.write_instruments`).

A venue or account that does not give tiers (Binance without API keys) still stores the market limits; the report says the brackets were not read, and the engine then uses the
committed default for the symbol (:func:`hedge_core.analytics.risk.brackets_for`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from hedge_core.errors import ExchangeError, InvalidInput
from hedge_core.types import Instrument, MarketKind

__all__ = ["VenueRead", "default_symbols", "read_venue_instruments", "store_venue_instruments"]


@dataclass(frozen=True)
class VenueRead:
    """What one read of a venue produced: the instruments (brackets attached where read) and notes on what
    was not read (e.g. ``'brackets not read: ...'``)."""

    venue: str
    instruments: tuple[Instrument, ...]
    notes: tuple[str, ...]
    read_at: pd.Timestamp


def default_symbols(venue: str) -> tuple[str, ...]:
    """The symbols read when none are given: the committed snapshot's for ``venue`` (else Binance's)."""
    from hedge_core.data.instruments import snapshot_instruments

    own = snapshot_instruments(venue) or snapshot_instruments("binance")
    return tuple(i.symbol for i in own)


def _expand(symbols: Sequence[str]) -> list[str]:
    """``SOL`` -> both ``SOL/USDT`` and ``SOL/USDT:USDT``; a pair or perp symbol stays as it is."""
    out: list[str] = []
    for s in symbols:
        s = s.strip()
        if not s:
            continue
        extra = [s] if "/" in s else [f"{s.upper()}/USDT", f"{s.upper()}/USDT:USDT"]
        out.extend(x for x in extra if x not in out)
    return out


async def read_venue_instruments(adapter: Any, symbols: Sequence[str] | None = None, *,
                                 now: pd.Timestamp | None = None) -> VenueRead:
    """Read ``symbols`` (unified symbols or bare assets such as ``SOL``; default :func:`default_symbols`)
    from the venue behind ``adapter``.

    Raises
    ------
    InvalidInput
        ``symbols`` naming those the venue does not list.
    ExchangeError
        The venue's own errors, translated by the adapter (temporary ones retried there).
    """
    venue = adapter.venue
    wanted = _expand(symbols) if symbols else list(default_symbols(venue))
    if not wanted:
        raise InvalidInput("symbols", symbols, "at least one symbol, e.g. SOL or SOL/USDT:USDT")
    markets: dict[str, Instrument] = await adapter.load_markets()
    read_at = (now or pd.Timestamp.now(tz="UTC")).tz_convert("UTC")
    missing = [s for s in wanted if s not in markets]
    if missing:
        raise InvalidInput("symbols", missing, f"markets {venue} lists (spot pairs and USDT-margined perps)")
    perps = [s for s in wanted if markets[s].kind is MarketKind.PERP]
    notes: list[str] = []
    tiers: dict[str, tuple[Any, ...]] = {}
    if perps and getattr(adapter, "offers_tiers", False):
        try:
            tiers = await adapter.fetch_tiers(perps)
        except ExchangeError as exc:
            notes.append(f"brackets not read ({type(exc).__name__}: {exc}); the committed defaults apply")
    elif perps:
        why = ("Binance's leverage brackets are a signed call: give API keys" if venue == "binance"
               else f"{venue}'s tiers are not mapped to the bracket model")
        notes.append(f"brackets not read: {why}; the committed defaults apply")
    no_tiers = [s for s in perps if s not in tiers]
    if tiers and no_tiers:
        notes.append(f"the venue gave no tiers for {', '.join(no_tiers)}")
    # the venue's tier table also says the leverage cap (ccxt's markets often leave it unset)
    out = tuple(replace(markets[s], brackets=tiers[s], max_leverage=tiers[s][0].max_leverage) if s in tiers
                else markets[s] for s in wanted)
    return VenueRead(venue, out, tuple(notes), read_at)


def _default_adapter(venue: str) -> Any:
    """A ccxt adapter with the venue's keys when the environment has them (needed for Binance's
    brackets), else a public one."""
    from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter
    from hedge_core.exchange.credentials import load_credentials

    return CcxtLiveAdapter(venue, load_credentials(venue, required=False))


def store_venue_instruments(store: Any, venue: str, symbols: Sequence[str] | None = None, *,
                            make_adapter: Callable[[], Any] | None = None,
                            now: pd.Timestamp | None = None) -> VenueRead:
    """Read instruments from ``venue`` and upsert them into ``store`` (synchronous; runs its own loop).

    ``make_adapter`` builds the adapter inside that loop (tests: one reaching a local simulator);
    default: :class:`~hedge_core.exchange.ccxt.adapter.CcxtLiveAdapter` with the environment's keys if any.
    """

    async def go() -> VenueRead:
        adapter = make_adapter() if make_adapter is not None else _default_adapter(venue)
        try:
            return await read_venue_instruments(adapter, symbols, now=now)
        finally:
            close: Callable[[], Awaitable[None]] | None = getattr(adapter, "close", None)
            if close is not None:
                await close()

    got = asyncio.run(go())
    store.write_instruments(got.instruments, read_at=got.read_at,
                            source=f"{venue} load_markets" + ("" if any("brackets not read" in n for n in got.notes)
                                                              else " + fetch_leverage_tiers"))
    return got
