"""Feeds of TWO PERP legs on two venues: the replay's settlement instants and the live bars.

:class:`PairBarsFeed` (feed ``bars``: paper on live bars, live on bars): each venue's perp and mark bars and its
settled funding read through ITS OWN adapter, merged into one event stream with the closing and ordering rules
of :class:`hedge_core.exchange.live_feed.LivePollingFeed` (each event keeps its venue: the first venue's bars
price and mark the first leg, the second's the second leg; each venue's funding settles its own leg).

A runner replay settles at the UNION of both venues' settlement instants:

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

import dataclasses
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import pandas as pd

from hedge_core.errors import ExchangeError
from hedge_core.exchange.feeds import known_at
from hedge_core.exchange.live_feed import LivePollingFeed
from hedge_core.types import FundingEvent, MarketEvent

__all__ = ["PairBarsFeed", "SettlementInstantsFeed", "VenueSchedule", "is_instant_only", "pair_bars_feed",
           "settlement_times"]

log = logging.getLogger(__name__)


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


@dataclasses.dataclass(frozen=True, slots=True)
class VenueSchedule:
    """A venue's published funding schedule of one perpetual: ``next_ts`` the next settlement it announced (UTC;
    ccxt ``fundingTimestamp``: Binance USD-M ``premiumIndex.nextFundingTime``, Bybit v5 tickers ``nextFundingTime``,
    OKX ``funding-rate.fundingTime``) and ``interval_hours`` its settlement interval (Binance ``fundingInfo``
    ``fundingIntervalHours``, else 8; Bybit instruments-info ``fundingInterval`` / 60; OKX ``nextFundingTime -
    fundingTime``), as :meth:`hedge_core.exchange.ccxt.adapter.CcxtLiveAdapter.fetch_funding_rate` reads them."""

    next_ts: pd.Timestamp
    interval_hours: float

    def next_after(self, t: pd.Timestamp) -> pd.Timestamp:
        """The venue's settlement STRICTLY after ``t`` on its own grid (``next_ts`` plus or minus whole intervals):
        a venue settling every 4 h announcing 04:00 gives 04:00 at 01:00 and 08:00 at 04:00. The grid is the
        venue's own, so the answer does not depend on when the schedule was read (bars released a little after
        their close, or re-fed after a restart, get the settlement that followed THEM)."""
        step = pd.Timedelta(hours=self.interval_hours)
        t = pd.Timestamp(t)
        return self.next_ts + ((t - self.next_ts) // step + 1) * step


class PairBarsFeed(LivePollingFeed):
    """Closed perp and mark bars and settled funding of ``perp_symbol`` on TWO venues (a :class:`Feed`).

    One polling round asks both venues (each through its own adapter, public calls: a recommend or keyed
    adapter's ``market_data`` is used as in :class:`LivePollingFeed`); their events are staged together and
    released in replay order (bars before funding at an instant) once ``settle_delay`` old. Each event names
    its venue (``Bar.venue``, ``FundingEvent.venue``): the runner's market builder takes the FIRST venue's
    perp close and mark as the first leg's price and mark (``MarketBuilder(first_venue=...)``), and each
    paper venue is fed its own bars and funding (``PerpPairPaper(by_venue=True)``).

    Parameters
    ----------
    first, second : CcxtLiveAdapter (or a wrapper with ``market_data``)
        The first leg's venue and the second's (different venues).
    perp_symbol : str
        The perp both legs trade, e.g. ``'BTC/USDT:USDT'``.
    timeframe, start, poll_interval, settle_delay, now, sleep
        As :class:`LivePollingFeed` (``now``: the clock both venues' bars are closed on).
    owns : tuple of adapters
        Closed by :meth:`aclose` (the caller's otherwise).
    schedule_every_s : float
        Seconds between two reads of a venue's funding schedule (:attr:`schedules`, one ``fetch_funding_rate``
        per venue; the first round always reads it, before any event of that venue is staged).

    Each venue's funding schedule (:class:`VenueSchedule`) is read through its own adapter: :meth:`leg_funding`
    gives each leg its own venue's interval and next settlement at an instant, and each venue's settlements are
    stamped with its own interval (the funding-history answers carry none: an unstamped 4 h venue's rate would be
    annualised as per 8 h).

    Raises
    ------
    InvalidInput
        Both adapters name the same venue (field ``venues``).
    """

    def __init__(self, first: Any, second: Any, perp_symbol: str, timeframe: str = "1h", *, start: object,
                 owns: tuple[Any, ...] = (), schedule_every_s: float = 60.0, **kw: Any) -> None:
        super().__init__(second, None, perp_symbol, timeframe, start=start, include_mark=False,
                         include_funding=False, **kw)
        self.series = []  # this feed fetches nothing itself: its two legs' feeds do
        self.legs = (LivePollingFeed(first, None, perp_symbol, timeframe, start=start, **kw),
                     LivePollingFeed(second, None, perp_symbol, timeframe, start=start, **kw))
        self.first_venue, self.second_venue = self.legs[0].venue, self.legs[1].venue
        self._owned = tuple(owns)  # adapters this feed closes (paper: the second venue's public market data)
        if self.first_venue == self.second_venue:
            from hedge_core.errors import InvalidInput

            raise InvalidInput("venues", (self.first_venue, self.second_venue), "two different perp venues")
        if not schedule_every_s >= 0:
            from hedge_core.errors import InvalidInput

            raise InvalidInput("schedule_every_s", schedule_every_s, ">= 0 seconds")
        self.schedule_every_s = float(schedule_every_s)
        self.schedules: dict[str, VenueSchedule] = {}  # venue -> its last read funding schedule
        self._schedule_read: dict[str, pd.Timestamp] = {}

    async def _read_schedule(self, leg: LivePollingFeed, now: pd.Timestamp) -> None:
        """Read ``leg``'s venue's funding schedule when due; a failed read keeps the last one (logged)."""
        last = self._schedule_read.get(leg.venue)
        if last is not None and (now - last).total_seconds() < self.schedule_every_s:
            return
        try:
            fr = await leg.adapter.fetch_funding_rate(self.perp_symbol)
        except ExchangeError as exc:
            log.warning("pair feed: %s funding schedule not read (%s); keeping %s", leg.venue, exc,
                        self.schedules.get(leg.venue))
            return
        self._schedule_read[leg.venue] = now
        hours = float(fr.interval_hours or math.nan)
        if fr.ts is None or pd.isna(fr.ts) or not hours > 0:
            return
        self.schedules[leg.venue] = VenueSchedule(pd.Timestamp(fr.ts), hours)

    async def fetch(self, now: pd.Timestamp) -> None:
        """Both venues' funding schedules (when due), new bars and settlements, staged here (one watermark, one
        order for both); each venue's settlements carry its own schedule's interval."""
        for leg in self.legs:
            await self._read_schedule(leg, now)
            await leg.fetch(now)
            staged: list[MarketEvent] = list(leg._pending.values())
            leg._pending.clear()
            sched = self.schedules.get(leg.venue)
            for e in staged:
                if isinstance(e, FundingEvent) and sched is not None:
                    e = dataclasses.replace(e, interval_hours=sched.interval_hours)
                self._stage(e)

    def leg_funding(self, t: pd.Timestamp) -> dict[str, Any]:
        """Each leg's funding schedule at instant ``t`` from its OWN venue's (:attr:`schedules`): the
        :class:`~hedge_core.engine.events.MarketUpdate` fields ``spot_funding_interval_hours`` /
        ``spot_next_funding_ts`` (the first venue's interval, hours, and its settlement strictly after ``t``) and
        ``funding_interval_hours`` / ``next_funding_ts`` (the second's). A venue whose schedule was never read
        gives nothing (the caller keeps its own stand)."""
        out: dict[str, Any] = {}
        for venue, (hk, nk) in ((self.first_venue, ("spot_funding_interval_hours", "spot_next_funding_ts")),
                                (self.second_venue, ("funding_interval_hours", "next_funding_ts"))):
            sched = self.schedules.get(venue)
            if sched is not None:
                out[hk], out[nk] = sched.interval_hours, sched.next_after(t)
        return out

    async def aclose(self) -> None:
        """Stop the feed; close the adapters it owns (``owns``)."""
        await super().aclose()
        owned, self._owned = self._owned, ()
        for ad in owned:
            await ad.close()


def pair_bars_feed(spec: Any, adapter: Any, market_data: Any | None, market_data_of: Callable[[Any], Any],
                   venue_now: Callable[[Any], pd.Timestamp]) -> tuple[PairBarsFeed, Any]:
    """The runner's ``bars`` feed of a perp pair and the adapter whose clock closes the bars.

    Live and recommend (``adapter.leg_adapters()``): each venue's data through the pair's own two adapters
    (the second's clock). Paper: each venue's public market data, ``market_data`` (the probed one) or
    ``market_data_of(spec)`` for the first venue (the hedge's clock, returned) and
    ``market_data_of(<spec on the second venue>)`` for the second, closed with the feed. ``start``: the
    spec's, else two days before the clock's now.
    """
    leg_fn = getattr(adapter, "leg_adapters", None)
    owned: tuple[Any, ...] = ()
    if spec.mode != "paper" and callable(leg_fn):
        first, second = leg_fn()
        clock = second
    else:
        first = market_data if market_data is not None else market_data_of(spec)
        second = market_data_of(spec.model_copy(update={"venue": spec.leg_venues[1], "perp_venue": None,
                                                         "legs": "spot_perp"}))
        owned, clock = (second,), first
    start = pd.Timestamp(spec.start) if spec.start else venue_now(clock) - pd.Timedelta(days=2)
    feed = PairBarsFeed(first, second, spec.perp_symbol, spec.timeframe, owns=owned, poll_interval=spec.poll_s,
                        start=start, now=lambda: venue_now(clock))
    return feed, clock
