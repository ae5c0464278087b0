"""Best execution: the venue of a leg chosen by price, fee and depth at order time (pure).

Given each allowed venue's order book (the ccxt ``fetch_order_book`` shape: ``{"bids": [[price,
amount], ...] best first, "asks": [[price, amount], ...] best first}``), its taker fee and the order
size, :func:`choose_venue` walks each book for the size (a buy takes the asks, a sell the bids, best
level first) and returns the venue with the best ALL-IN quote flow: the fill's quote value
(:func:`hedge_core.money.trade_cash_flow` at the walked average price) minus its taker fee
(:func:`hedge_core.money.fee`). A buy pays the least, a sell receives the most. A book too thin
for the size is left out (with its depth in the ranking). Ties: the lower fee rate, then the order
of ``allowed``.

Units: prices in quote per base, amounts in base, fees as fractions, flows in quote (+ = received).

At order time, :func:`best_venue_now` reads the allowed venues' books through their adapters
(``fetch_order_book`` of the adapter protocol, amounts in base: a live venue's book through ccxt, a
paper venue's drawn from its own execution model, :mod:`hedge_core.exchange.paper.book`) and chooses;
a venue whose book cannot be read is ranked last ("no order book").
"""

from __future__ import annotations

import math
import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from hedge_core import money
from hedge_core.errors import InvalidInput

__all__ = ["VenueBook", "VenueChoice", "VenueScore", "best_venue_now", "choose_venue", "fetch_venue_books",
           "route_to_best_perp", "walk_book"]

Side = Literal["buy", "sell"]
Levels = Sequence[Sequence[float]]


@dataclass(frozen=True)
class VenueBook:
    """One venue's order book and taker fee.

    Attributes
    ----------
    venue : str
    book : mapping
        ccxt order book: ``bids`` (descending prices) and ``asks`` (ascending prices) as
        ``[price, amount]`` levels (extra fields of a level are ignored).
    taker_fee : float
        Fraction of the fill's notional, 0 .. 0.01.
    """

    venue: str
    book: Mapping[str, Levels]
    taker_fee: float


@dataclass(frozen=True)
class VenueScore:
    """One venue's quote for the order: the walked average price, the fee and the all-in quote flow
    (NaN with ``reason`` when the venue cannot fill the size)."""

    venue: str
    amount: float
    avg_price: float
    fee: float
    net_quote: float
    taker_fee: float
    depth: float
    reason: str = ""

    @property
    def all_in_price(self) -> float:
        """Quote per base after the fee: ``|net_quote| / amount`` (a buy pays it, a sell receives it)."""
        return math.nan if math.isnan(self.net_quote) else abs(self.net_quote) / self.amount


@dataclass(frozen=True)
class VenueChoice:
    """The chosen venue and every allowed venue's score, best first (unfillable ones last)."""

    venue: str
    side: Side
    amount: float
    best: VenueScore
    ranking: tuple[VenueScore, ...]


def _levels(book: Mapping[str, Levels], key: str, venue: str) -> list[tuple[float, float]]:
    raw = book.get(key) if isinstance(book, Mapping) else None
    if raw is None:
        raise InvalidInput(f"{venue}.book.{key}", None, "a list of [price, amount] levels (ccxt order book)")
    out: list[tuple[float, float]] = []
    for i, lv in enumerate(raw):
        try:
            px, qty = float(lv[0]), float(lv[1])
        except (TypeError, ValueError, IndexError):
            raise InvalidInput(f"{venue}.book.{key}[{i}]", lv, "[price, amount] numbers") from None
        if not (math.isfinite(px) and px > 0 and math.isfinite(qty) and qty >= 0):
            raise InvalidInput(f"{venue}.book.{key}[{i}]", lv, "price > 0 and amount >= 0, finite")
        # a flat model book (paper venue without impact) has equal levels up to round-off: 1e-12 relative is equal
        if out and (px < out[-1][0] * (1 - 1e-12) if key == "asks" else px > out[-1][0] * (1 + 1e-12)):
            order = "ascending (best ask first)" if key == "asks" else "descending (best bid first)"
            raise InvalidInput(f"{venue}.book.{key}[{i}]", px, f"prices {order}")
        out.append((px, qty))
    return out


def _no_book(venue: str, unread: Mapping[str, str] | None) -> str:
    why = (unread or {}).get(venue)
    return f"no order book ({why})" if why else "no order book"


def walk_book(levels: Levels, amount: float) -> tuple[float, float]:
    """Average price of ``amount`` taken from ``levels`` (best first) and the filled amount.

    Returns ``(avg_price, filled)``; ``filled < amount`` when the book is thinner than the size
    (``avg_price`` is then the average of what there is, NaN for an empty book).
    """
    left, value = float(amount), 0.0
    for px, qty in ((float(lv[0]), float(lv[1])) for lv in levels):
        take = min(left, qty)
        value += take * px
        left -= take
        if left <= 0.0:
            break
    filled = float(amount) - max(left, 0.0)
    return (value / filled if filled > 0 else math.nan), filled


def choose_venue(side: Side, amount: float, books: Sequence[VenueBook],
                 allowed: Sequence[str] | None = None, *, unread: Mapping[str, str] | None = None) -> VenueChoice:
    """The allowed venue with the best all-in quote flow for ``side`` ``amount`` (base).

    Parameters
    ----------
    side : "buy" | "sell"
    amount : float
        Base quantity, > 0.
    books : sequence of VenueBook
        The venues' books and taker fees (one per venue).
    allowed : sequence of str, optional
        The venues the parameter set allows (lower-case names); None = every venue in ``books``.
        An allowed venue without a book is ranked last with reason "no order book" (and why, from
        ``unread``: venue -> the error of reading it).

    Raises
    ------
    InvalidInput
        Bad side, amount, fee or book (naming the venue and field); no allowed venue can fill the
        amount (naming each one's depth).
    """
    if side not in ("buy", "sell"):
        raise InvalidInput("side", side, "'buy' or 'sell'")
    if not (isinstance(amount, (int, float)) and math.isfinite(amount) and amount > 0):
        raise InvalidInput("amount", amount, "a finite base quantity > 0")
    by: dict[str, VenueBook] = {}
    for b in books:
        v = b.venue.strip().lower()
        if v in by:
            raise InvalidInput("books", v, "one book per venue")
        if not (math.isfinite(b.taker_fee) and 0.0 <= b.taker_fee <= 0.01):
            raise InvalidInput(f"{v}.taker_fee", b.taker_fee, "0 .. 0.01 (fraction of notional)")
        by[v] = b
    names = [a.strip().lower() for a in allowed] if allowed is not None else list(by)
    if not names:
        raise InvalidInput("allowed", list(allowed or ()), "at least one venue")
    sign = 1.0 if side == "buy" else -1.0
    key = "asks" if side == "buy" else "bids"
    scores: list[tuple[tuple[float, float, int], VenueScore]] = []
    for rank, v in enumerate(names):
        b = by.get(v)
        if b is None:
            scores.append(((math.inf, math.inf, rank), VenueScore(v, float(amount), math.nan, math.nan, math.nan,
                                                                  math.nan, 0.0, _no_book(v, unread))))
            continue
        levels = _levels(b.book, key, v)
        avg, filled = walk_book(levels, amount)
        depth = float(sum(q for _, q in levels))
        if filled < amount * (1.0 - 1e-12):
            scores.append(((math.inf, b.taker_fee, rank),
                           VenueScore(v, float(amount), math.nan, math.nan, math.nan, b.taker_fee, depth,
                                      f"book depth {depth:g} < amount {amount:g}")))
            continue
        fee = float(money.fee(float(amount), avg, b.taker_fee))
        net = float(money.trade_cash_flow(sign, float(amount), avg)) - fee
        scores.append(((-net, b.taker_fee, rank), VenueScore(v, float(amount), avg, fee, net, b.taker_fee, depth)))
    scores.sort(key=lambda s: s[0])
    ranking = tuple(s for _, s in scores)
    best = ranking[0]
    if best.reason:
        raise InvalidInput("amount", amount, "at most one allowed venue's book depth: "
                           + "; ".join(f"{s.venue}: {s.reason}" for s in ranking))
    return VenueChoice(best.venue, side, float(amount), best, ranking)


class BookSource(Protocol):
    """An adapter that reads a venue's order book (amounts in base), e.g. ``CcxtLiveAdapter``."""

    async def fetch_order_book(self, symbol: str, limit: int | None = None, *,
                               amount: float | None = None) -> Mapping[str, Any]: ...


async def fetch_venue_books(adapters: Mapping[str, BookSource], symbol: str, fees: Mapping[str, float], *,
                            limit: int | None = 50, amount: float | None = None) -> tuple[list[VenueBook], dict[str, str]]:
    """Each venue's book of ``symbol`` read concurrently, with its taker fee from ``fees``.

    ``amount`` (base, optional) is the size that will be walked: passed to each adapter's
    ``fetch_order_book`` (a paper venue makes it a level boundary; a live venue ignores it).

    Returns the books read and ``{venue: error}`` for the venues whose book could not be read.
    InvalidInput when a venue has no fee in ``fees``.
    """
    for v in adapters:
        if v not in fees:
            raise InvalidInput(f"fees.{v}", None, "the venue's taker fee (fraction)")
    names = list(adapters)
    calls = (adapters[v].fetch_order_book(symbol, limit) if amount is None else
             adapters[v].fetch_order_book(symbol, limit, amount=amount) for v in names)
    got = await asyncio.gather(*calls, return_exceptions=True)
    books, errors = [], {}
    for v, g in zip(names, got):
        if isinstance(g, BaseException):
            errors[v] = f"{type(g).__name__}: {g}"
        else:
            books.append(VenueBook(v, g, float(fees[v])))
    return books, errors


async def best_venue_now(adapters: Mapping[str, BookSource], symbol: str, side: Side, amount: float,
                         fees: Mapping[str, float], allowed: Sequence[str] | None = None) -> VenueChoice:
    """:func:`choose_venue` on the books the allowed venues' adapters read now."""
    names = [a.strip().lower() for a in allowed] if allowed is not None else list(adapters)
    unknown = [v for v in names if v not in adapters]
    if unknown:
        raise InvalidInput("allowed", unknown, f"venues with an adapter: {sorted(adapters)}")
    books, errors = await fetch_venue_books({v: adapters[v] for v in names}, symbol, fees, amount=amount)
    return choose_venue(side, amount, books, allowed=names, unread=errors)


async def route_to_best_perp(spot: Any, perps: Mapping[str, Any], symbol: str, side: Side, amount: float,
                             fees: Mapping[str, float], allowed: Sequence[str] | None = None) -> tuple[Any, VenueChoice]:
    """A :class:`~hedge_core.exchange.routed.RoutedAdapter` whose perp leg is on the best allowed venue NOW.

    The choice is made once, when the hedge starts (its first perp order: ``side`` ``amount`` of
    ``symbol``); the perp leg then stays on that venue (its position, margin and funding live there).
    ``allowed`` is typically ``CrossCarryParams.allowed_perp_venues``. InvalidInput when the spot
    venue is among the allowed perp venues (the cross-venue carry needs two venues).
    """
    from hedge_core.exchange.routed import RoutedAdapter

    names = [a.strip().lower() for a in allowed] if allowed is not None else list(perps)
    if spot.venue in names:
        raise InvalidInput("allowed", names, f"perp venues other than the spot venue {spot.venue!r}")
    choice = await best_venue_now(perps, symbol, side, amount, fees, allowed=names)
    return RoutedAdapter(spot, perps[choice.venue]), choice
