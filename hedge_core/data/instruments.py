"""Instruments (limits and maintenance brackets) for every layer: the store first, the committed snapshot second.

Where an instrument comes from, in order:

1. the store's ``instruments`` table, filled from the venue by ``hedge data instruments`` / ``hedge data
   download`` (:mod:`hedge_core.data.instruments_venue`), with the date the venue was read;
2. the committed snapshot ``hedge_core/data/instruments_snapshot.json`` of the venues' top symbols (each row
   names the documentation its figures came from; rows written offline say NOT VERIFIED).

A symbol found in neither is refused with :class:`~hedge_core.errors.InvalidInput` naming the venue, the
symbol and the command that fills it. Nothing here is mutable: the snapshot is read once into a
read-only mapping, and a live hedge that reads the venue's brackets puts them on ITS instrument
(``dataclasses.replace(inst, brackets=...)``) instead of changing a table other hedges read.

Brackets are serialised as rows ``[notional_floor, notional_cap, max_leverage, mmr, cum]`` (quote units,
fractions); :func:`brackets_from_rows` validates them (contiguous from 0, increasing MMR, ``cum`` equal to
Binance's recurrence ``floor x (MMR - previous MMR) + previous cum`` to 0.01).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from hedge_core.errors import InvalidInput
from hedge_core.types import Bracket, Instrument, MarketKind

if TYPE_CHECKING:  # pragma: no cover
    from hedge_core.store import Store

__all__ = [
    "SNAPSHOT_PATH",
    "brackets_from_rows",
    "brackets_to_rows",
    "instrument_from_row",
    "instruments_on_venue",
    "instrument_to_row",
    "pair_instruments",
    "resolve_instruments",
    "snapshot",
    "snapshot_instruments",
    "snapshot_markdown",
    "snapshot_read_at",
    "venue_instruments",
]

SNAPSHOT_PATH = Path(__file__).with_name("instruments_snapshot.json")
_FIELDS = ("tick_size", "lot_size", "min_qty", "min_notional", "contract_size", "max_leverage")


def brackets_from_rows(rows: Sequence[Sequence[float]], *, where: str = "brackets") -> tuple[Bracket, ...]:
    """A validated bracket table from ``[floor, cap, max_leverage, mmr, cum]`` rows (quote units, fractions).

    Raises InvalidInput naming ``where[k]`` and the field when a row is malformed, the table is not
    contiguous from 0, the MMR does not increase, or ``cum`` contradicts the recurrence by > 0.01. A table whose
    every ``cum`` is 0 is OKX's model (the whole position at its tier's rate) and is accepted as such.
    """
    out: list[Bracket] = []
    # every cum 0 on a table of several rows: OKX's model (the whole position at its tier's rate), not a
    # continuous table whose deductions were lost -- a continuous table's second row always has cum > 0
    whole = len(rows) > 1 and all(_is_zero_cum(r) for r in rows)
    for k, r in enumerate(rows):
        try:
            floor, cap, lev, mmr, cum = (float(x) for x in r)
        except (TypeError, ValueError):
            raise InvalidInput(f"{where}[{k}]", r, "[notional_floor, notional_cap, max_leverage, mmr, cum]") from None
        prev = out[-1] if out else None
        want_floor = 0.0 if prev is None else prev.notional_cap
        if floor != want_floor:
            raise InvalidInput(f"{where}[{k}].notional_floor", floor, f"{want_floor:g} (contiguous from 0)")
        if not (math.isfinite(cap) and cap > floor):
            raise InvalidInput(f"{where}[{k}].notional_cap", cap, f"> notional_floor {floor:g}")
        if not (0.0 < mmr < 1.0) or (prev is not None and mmr <= prev.mmr):
            raise InvalidInput(f"{where}[{k}].mmr", mmr, f"in (0, 1), above the previous {prev.mmr if prev else 0:g}")
        if not (math.isfinite(lev) and lev >= 1.0):
            raise InvalidInput(f"{where}[{k}].max_leverage", lev, ">= 1")
        expect = 0.0 if prev is None or whole else floor * (mmr - prev.mmr) + prev.cum
        if not (math.isfinite(cum) and abs(cum - expect) <= 0.01):
            raise InvalidInput(f"{where}[{k}].cum", cum, f"{expect:.2f} (floor x (MMR - previous MMR) + previous cum; "
                                                        "or 0 on every row: the whole position at its tier's rate, OKX)")
        out.append(Bracket(k + 1, floor, cap, lev, mmr, cum))
    return tuple(out)


def _is_zero_cum(row: Sequence[float]) -> bool:
    try:
        return len(row) == 5 and float(row[4]) == 0.0
    except (TypeError, ValueError):
        return False


def brackets_to_rows(brackets: Iterable[Bracket]) -> list[list[float]]:
    """The inverse of :func:`brackets_from_rows` (JSON-ready)."""
    return [[b.notional_floor, b.notional_cap, b.max_leverage, b.mmr, b.cum] for b in brackets]


def instrument_from_row(row: Mapping[str, Any], *, where: str = "instrument") -> Instrument:
    """An :class:`Instrument` from a snapshot / store row (``brackets`` as rows or a JSON string).

    Raises InvalidInput naming the field when a limit is missing, not finite or not positive.
    """
    try:
        kind = MarketKind(str(row["kind"]))
        if kind not in (MarketKind.SPOT, MarketKind.PERP):
            raise ValueError(kind)
    except (KeyError, ValueError):
        raise InvalidInput(f"{where}.kind", row.get("kind"), "'spot' or 'perp'") from None
    vals: dict[str, float] = {}
    for f in _FIELDS:
        v = row.get(f)
        try:
            x = float(v) if v is not None else (1.0 if f == "contract_size" else math.nan)
        except (TypeError, ValueError):
            x = math.nan
        ok = x >= 0 if f in ("min_qty", "min_notional") else x > 0
        if not (math.isfinite(x) and ok):
            raise InvalidInput(f"{where}.{f}", v, "a finite number > 0" if not f.startswith("min") else "a finite number >= 0")
        vals[f] = x
    raw = row.get("brackets") or []
    if isinstance(raw, str):
        raw = json.loads(raw) if raw.strip() else []
    brackets = brackets_from_rows(raw, where=f"{where}.brackets") if kind is MarketKind.PERP else ()
    for f in ("symbol", "venue", "base", "quote"):
        if not isinstance(row.get(f), str) or not row.get(f):
            raise InvalidInput(f"{where}.{f}", row.get(f), "a non-empty string")
    return Instrument(symbol=row["symbol"], venue=row["venue"], kind=kind, base=row["base"], quote=row["quote"],
                      brackets=brackets, **vals)


def instrument_to_row(inst: Instrument) -> dict[str, Any]:
    """A JSON-ready row of ``inst`` (the snapshot's and the store's shape)."""
    return {"venue": inst.venue, "symbol": inst.symbol, "kind": inst.kind.value, "base": inst.base,
            "quote": inst.quote, **{f: float(getattr(inst, f)) for f in _FIELDS},
            "brackets": brackets_to_rows(inst.brackets)}


@lru_cache(maxsize=1)
def _load_snapshot() -> tuple[str, Mapping[tuple[str, str], Instrument]]:
    doc = json.loads(SNAPSHOT_PATH.read_text(encoding="utf-8"))
    out: dict[tuple[str, str], Instrument] = {}
    for k, row in enumerate(doc["instruments"]):
        inst = instrument_from_row(row, where=f"{SNAPSHOT_PATH.name}[{k}]")
        out[(inst.venue, inst.symbol)] = inst
    return str(doc.get("read_at", "")), MappingProxyType(out)


def snapshot() -> Mapping[tuple[str, str], Instrument]:
    """The committed snapshot, ``(venue, symbol) -> Instrument`` (read-only)."""
    return _load_snapshot()[1]


def snapshot_read_at() -> str:
    """When the snapshot's figures were taken (ISO date, UTC)."""
    return _load_snapshot()[0]


def snapshot_instruments(venue: str = "binance") -> tuple[Instrument, ...]:
    """Every snapshot instrument of ``venue`` (spot first, then perps, as in the file)."""
    return tuple(i for (v, _), i in snapshot().items() if v == venue)


def _venue_of(inst: Instrument, venue: str) -> Instrument:
    from dataclasses import replace

    return inst if inst.venue == venue else replace(inst, venue=venue)


def resolve_instruments(symbols: Sequence[str], venue: str, store: Store | None = None, *,
                        fallback_venue: str | None = None) -> tuple[Instrument, ...]:
    """The instruments of ``symbols`` on ``venue``: the store's rows first, then the committed snapshot.

    Parameters
    ----------
    symbols : ccxt unified symbols, e.g. ``('SOL/USDT', 'SOL/USDT:USDT')``.
    venue : the venue the instruments are for (a backtest's data venue).
    store : a :class:`hedge_core.store.Store`, or None for the snapshot alone.
    fallback_venue : a snapshot venue whose figures stand in when ``venue`` has none (e.g. ``'binance'``
        for a data venue such as ``'demo'``); the instrument is relabelled with ``venue``.

    Raises
    ------
    InvalidInput
        ``instrument`` naming ``venue symbol`` for each symbol found nowhere, and how to fill it.
    """
    stored: dict[str, Instrument] = {}
    if store is not None:
        stored = {i.symbol: i for i in store.read_instruments(venue, symbols=list(symbols))}
    snap = snapshot()
    out: list[Instrument] = []
    missing: list[str] = []
    for s in symbols:
        inst = stored.get(s) or snap.get((venue, s))
        if inst is None and fallback_venue is not None and (fallback_venue, s) in snap:
            inst = _venue_of(snap[(fallback_venue, s)], venue)
        if inst is None:
            missing.append(s)
        else:
            out.append(inst)
    if missing:
        known = sorted(s for (v, s) in snap if v in (venue, fallback_venue))
        raise InvalidInput("instrument", f"{venue} {', '.join(missing)}",
                           f"a row in the store's instruments table (`hedge data instruments --venue {venue} "
                           f"--symbols {','.join(missing)}`) or in the committed snapshot ({', '.join(known) or 'none'})")
    return tuple(out)


def _fallback_venue(venue: str) -> str | None:
    """``'binance'`` for a venue without snapshot rows of its own (a data venue such as ``demo``), else None:
    a venue the snapshot covers (Binance, Bybit, OKX) never borrows another venue's lot or contract size."""
    return None if snapshot_instruments(venue) else "binance"


def pair_instruments(spot_symbol: str, perp_symbol: str, venue: str, store: Store | None = None) -> tuple[Instrument, ...]:
    """Spot and perp instruments of one hedge: the store, else the snapshot of ``venue``; a venue without
    snapshot rows of its own (e.g. ``demo``) borrows Binance's figures relabelled with ``venue``. A symbol of
    a snapshot venue (Binance, Bybit, OKX) found in neither is refused naming it: see :func:`resolve_instruments`."""
    return resolve_instruments((spot_symbol, perp_symbol), venue, store, fallback_venue=_fallback_venue(venue))


def venue_instruments(venue: str = "binance") -> tuple[Instrument, ...]:
    """The default instrument set of a paper venue: the snapshot's instruments of ``venue``; for a venue
    without snapshot rows of its own (e.g. ``demo``), Binance's relabelled with ``venue``."""
    own = snapshot_instruments(venue)
    if own:
        return own
    return tuple(_venue_of(i, venue) for i in snapshot_instruments("binance"))


def instruments_on_venue(instruments: Sequence[Instrument], from_venue: str, venue: str) -> tuple[Instrument, ...]:
    """A paper config's ``instruments`` for ``from_venue`` carried to ``venue`` (a backtest of ``venue``'s market
    given a config of another venue, e.g. the default ``PaperConfig()`` on an OKX market).

    A row that is ``from_venue``'s committed default (:func:`venue_instruments`) becomes ``venue``'s default of the
    same symbol, with that venue's own tick, lot, contract size and table (an OKX XRP perp trades whole lots of
    1 XRP = 0.01 contract of 100 XRP, not Binance's 0.1); any other row (the store's, or one given explicitly) is kept, relabelled with
    ``venue``, as is a symbol ``venue`` has no default for. Nothing changes when the venues are the same.
    """
    if from_venue == venue:
        return tuple(instruments)
    src = {i.symbol: i for i in venue_instruments(from_venue)}
    dst = {i.symbol: i for i in venue_instruments(venue)}
    return tuple(dst[i.symbol] if src.get(i.symbol) == i and i.symbol in dst else _venue_of(i, venue)
                 for i in instruments)


def _verified(text: str) -> str:
    return "—" if not text else ("NOT VERIFIED" if "NOT VERIFIED" in text else "documented")


def snapshot_markdown() -> str:
    """The committed snapshot as markdown (``docs/reference/instruments.md``, by ``python -m hedge_core.reference``):
    per venue, each symbol's limits, contract size, maximum leverage and table size, whether limits and table come
    from a document or are NOT VERIFIED, then every row's sources verbatim."""
    doc = json.loads(SNAPSHOT_PATH.read_text(encoding="utf-8"))
    rows = doc["instruments"]
    out = ["# Committed instruments snapshot", "",
           f"`hedge_core/data/instruments_snapshot.json` (read_at {doc.get('read_at', '')}). Quantities in base units "
           "(an OKX perp's lot and minimum are its contracts x ctVal), notional in USDT; tiers: rows of the maintenance "
           "table (Binance, Bybit: continuous, cum from the recurrence; OKX: the whole position at its tier's rate, "
           "every cum 0). \"NOT VERIFIED\": written offline, no public document found for that figure; refresh with "
           "`hedge data instruments --venue <venue>`.", ""]
    venues = list(dict.fromkeys(r["venue"] for r in rows))
    for v in venues:
        out += [f"## {v}", "", "| symbol | kind | tick | lot | min qty | min notional | contract size | max lev | tiers "
                "| limits | table |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in (r for r in rows if r["venue"] == v):
            out.append(f"| `{r['symbol']}` | {r['kind']} | {r['tick_size']:g} | {r['lot_size']:g} | {r['min_qty']:g} | "
                       f"{r['min_notional']:g} | {r['contract_size']:g} | {r['max_leverage']:g} | {len(r['brackets'])} | "
                       f"{_verified(r['source'])} | {_verified(r['brackets_source'])} |")
        out.append("")
    out += ["## Sources", ""]
    for r in rows:
        out.append(f"- **{r['venue']} `{r['symbol']}`**: {r['source']}")
        if r["brackets_source"]:
            out.append(f"  - table: {r['brackets_source']}")
    return "\n".join(out) + "\n"
