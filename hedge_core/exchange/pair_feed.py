"""A runner replay of TWO PERP legs on two venues settles at the UNION of both venues' settlement instants.

The replayed data venue's feed (:class:`hedge_core.exchange.feeds.ReplayFeed`) carries ITS funding times only.
Venues settle at different intervals (8h, 4h, 1h) and at different clock times (one at 00:00, 08:00, ...;
another at 02:00, 06:00, ...). :class:`SettlementInstantsFeed` passes the data venue's events through and adds,
in event order, a SETTLEMENT INSTANT at each time of either perp venue's stored series that the data venue's
feed has no funding event at: a :class:`~hedge_core.types.FundingEvent` whose ``rate`` is NaN
(:func:`is_instant_only`), meaning "the replayed data venue settles nothing here". The runner treats it as
any settlement instant (the engine acts on the completed bars first, then the venues settle), the paper
pair (:class:`hedge_core.exchange.routed_pair.PerpPairPaper`) settles each venue's OWN rate at it where that
venue's series has one, and the market builder keeps the data venue's last rate.

Order and window, as :func:`hedge_core.exchange.feeds.iter_events`: at an instant, bars before funding; a
time is added when it lies in ``(start, last known instant]`` of the replay (no settlement before the
replay's start, as a resumed replay's, nor after its last price bar, as in the backtest's timeline rule).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pandas as pd

from hedge_core.exchange.feeds import known_at
from hedge_core.types import FundingEvent

__all__ = ["SettlementInstantsFeed", "is_instant_only", "settlement_times"]


def is_instant_only(ev: FundingEvent) -> bool:
    """True for an added settlement instant (NaN ``rate``): the replayed data venue settles nothing at it."""
    return math.isnan(float(ev.rate))


class SettlementInstantsFeed:
    """``inner``'s events plus a settlement instant (:func:`is_instant_only`) at each of ``times`` the inner
    feed has no funding event at, in event order (see the module docstring).

    Parameters
    ----------
    inner : ReplayFeed
        The replayed data venue's feed (``venue``, ``perp_symbol``, ``start`` and ``now`` are read).
    times : iterable of timestamps
        Settlement times of both perp venues' stored series (UTC); duplicates and times outside the
        replay window are dropped.
    """

    def __init__(self, inner: Any, times: Iterable[object]) -> None:
        self.inner = inner
        start = pd.Timestamp(inner.start)
        ts = pd.DatetimeIndex(pd.to_datetime(list(times), utc=True)).unique().sort_values()
        self.times: list[pd.Timestamp] = [t for t in ts if t > start]
        self.added: list[pd.Timestamp] = []  # the instants added so far (tests, logs)

    @property
    def now(self) -> pd.Timestamp | None:
        return self.inner.now

    def __getattr__(self, name: str) -> Any:  # venue, start, end, speed, ... of the data venue's feed
        return getattr(self.inner, name)

    def _instant(self, t: pd.Timestamp) -> FundingEvent:
        self.added.append(t)
        return FundingEvent(t, self.inner.venue, self.inner.perp_symbol, math.nan, math.nan)

    async def __aiter__(self) -> AsyncIterator[Any]:
        pending = list(self.times)
        i = 0
        last: pd.Timestamp | None = None
        async for ev in self.inner:
            t = known_at(ev)
            own_funding = isinstance(ev, FundingEvent)
            # every pending time before this event's instant (or AT it, when this is the data venue's own
            # settlement there: then the event itself is the instant and nothing is added)
            while i < len(pending) and (pending[i] < t or (pending[i] == t and own_funding)):
                if not (pending[i] == t and own_funding):
                    yield self._instant(pending[i])
                i += 1
            last = t
            yield ev
        while i < len(pending) and last is not None and pending[i] <= last:  # times at the last bars' instant
            yield self._instant(pending[i])
            i += 1

    async def aclose(self) -> None:
        await self.inner.aclose()


def settlement_times(*frames: pd.DataFrame | None) -> pd.DatetimeIndex:
    """The union of the settlement times (index) of funding frames (UTC)."""
    idx = pd.DatetimeIndex([], tz="UTC")
    for f in frames:
        if f is not None and len(f):
            idx = idx.union(pd.DatetimeIndex(pd.to_datetime(f.index, utc=True)))
    return idx
