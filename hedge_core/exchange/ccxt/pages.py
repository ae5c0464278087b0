"""Walking a venue's pages of account records (funding, own trades) so that a read since ``since`` returns ALL of
them: each venue answers one page at a time, within a time window, in its own order.

Three shapes, each from the venues' documentation (docs/live.md "Funding and trade records"):

- :func:`forward` - oldest first from a start, ``limit`` rows at most, optionally within a window of ``span_ms``
  (Binance income: no window; Binance spot ``myTrades``: 24 h; USD-M ``userTrades``: 7 days);
- :func:`backward` - newest first within a window of at most ``span_ms`` (Bybit ``/v5/execution/list``: 7 days),
  a full page continues below its oldest row;
- :func:`back_by_id` - newest first, a full page continues with the records before its oldest id (OKX ``after``
  = ``billId``).

``fetch`` answers one request as ccxt structures (each with ``timestamp``); pages overlap at their edges and
rows are de-duplicated by ``key``. Pure paging: no I/O of its own; the caller's ``fetch`` does the request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from hedge_core import errors as he

__all__ = ["MAX_PAGES", "back_by_id", "backward", "forward"]

MAX_PAGES = 500  # a venue that keeps answering full pages of the same rows stops here with an error

Row = dict[str, Any]


def _ts(r: Row) -> int:
    return int(r.get("timestamp") or 0)


class _Rows:
    def __init__(self, key: Callable[[Row], Hashable], what: str) -> None:
        self.key, self.what = key, what
        self.rows: list[Row] = []
        self.seen: set[Hashable] = set()
        self.pages = 0

    def add(self, page: list[Row]) -> int:
        self.pages += 1
        if self.pages > MAX_PAGES:
            raise he.ExchangeError(f"more than {MAX_PAGES} pages of {self.what}: the venue keeps answering full pages")
        fresh = [r for r in page if self.key(r) not in self.seen]
        self.seen.update(self.key(r) for r in fresh)
        self.rows.extend(fresh)
        return len(fresh)

    def sorted(self) -> list[Row]:
        return sorted(self.rows, key=_ts)


async def forward(fetch: Callable[[int, int | None], Awaitable[list[Row]]], since_ms: int, now_ms: int, *,
                  page_rows: int, span_ms: int | None, key: Callable[[Row], Hashable], what: str) -> list[Row]:
    """Oldest-first pages from ``since_ms`` to ``now_ms`` (ms): ``fetch(start_ms, end_ms | None)`` answers the first
    ``page_rows`` rows at or after ``start_ms`` (within ``[start_ms, end_ms]`` when ``span_ms`` bounds a request).
    A full page continues from its newest row's time (inclusive, de-duplicated); then the next window."""
    acc = _Rows(key, what)
    lo = since_ms
    while True:
        hi = None if span_ms is None else lo + span_ms  # the last window may reach past now: nothing is there yet
        start = lo
        while True:
            page = await fetch(start, hi)
            if not acc.add(page) or len(page) < page_rows:
                break
            start = max(_ts(r) for r in page)
        if hi is None or hi >= now_ms:
            return acc.sorted()
        lo = hi + 1


async def backward(fetch: Callable[[int, int], Awaitable[list[Row]]], since_ms: int, now_ms: int, *, page_rows: int,
                   span_ms: int, key: Callable[[Row], Hashable], what: str) -> list[Row]:
    """Windows of ``span_ms`` from ``since_ms`` until one reaches ``now_ms`` (at least one); in each, ``fetch(start_ms, end_ms)`` answers the
    newest ``page_rows`` rows of ``[start_ms, end_ms]``; a full page continues with ``end_ms`` just below its
    oldest row."""
    acc = _Rows(key, what)
    lo = since_ms
    while True:
        hi = lo + span_ms
        end = hi
        while True:
            page = await fetch(lo, end)
            acc.add(page)
            if len(page) < page_rows:
                break
            end = min(_ts(r) for r in page) - 1
            if end < lo:
                break
        if hi >= now_ms:
            return acc.sorted()
        lo = hi + 1


async def back_by_id(fetch: Callable[[str | None], Awaitable[list[Row]]], *, page_rows: int,
                     id_of: Callable[[Row], str], key: Callable[[Row], Hashable], what: str) -> list[Row]:
    """Newest-first pages: ``fetch(after)`` answers the newest ``page_rows`` rows (before the record id ``after``
    when given); a full page continues before its oldest row's id (``id_of``)."""
    acc = _Rows(key, what)
    after: str | None = None
    while True:
        page = await fetch(after)
        acc.add(page)
        if len(page) < page_rows:
            return acc.sorted()
        after = id_of(min(page, key=lambda r: (_ts(r), int(id_of(r) or 0))))
