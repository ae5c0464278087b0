"""Two PERP legs of one symbol on two venues in LIVE and RECOMMEND mode: one keyed ccxt adapter per venue
behind a :class:`PerpPairLive` (a :class:`~hedge_core.exchange.routed_pair.PerpPairAdapter`, routed by leg).

Each venue is its own account, exactly as for a spot leg and a perp leg on two venues
(:mod:`hedge_core.exchange.routed_live`): its own keys (both looked up before anything is built; a venue
without keys is refused naming the leg, the venue and the variables to set), its own rate-limit governor,
its own fees, funding and margin. Nothing moves between them (``transfer`` refuses).

What the live pair adds to the paper one (:class:`~hedge_core.exchange.routed_pair.PerpPairPaper`):

- **The first leg's price.** The ticker feed polls ``(spot symbol, perp symbol)``; a spot symbol
  (``BTC/USDT``, no settle currency) is answered with the FIRST venue's ticker of the pair's perp
  (``BTC/USDT:USDT``), so the engine marks each leg at its own venue's price.
- **The first leg's funding rate and schedule.** ``fetch_funding_rate`` reads both venues; the first venue's
  rate and interval are kept as :attr:`first_last_rate` / :attr:`first_interval_hours` and its published next
  settlement as :attr:`first_schedule` (the runner gives them to the engine as the first leg's rate, interval
  and next settlement, :meth:`first_next_funding_ts`). The second venue's is returned (its rate, interval and
  next settlement: the second leg's).
- **The first venue's last SETTLED rate** (:meth:`read_first_settled`, :attr:`first_settled_rate`): read through
  the first venue's own adapter once per settlement (:class:`~hedge_core.exchange.settled_rate.SettledRate`; the
  ticker feed asks at each tick), the rate a first-leg funding record without its own rate is journaled at
  (:mod:`hedge_core.runner.pair_records`), as the second venue's is for the second leg. The engine's first-leg
  rate stays the first venue's current rate (:attr:`first_last_rate`), as the second leg's expected rate is.
- **The first venue's own records**: :meth:`first_funding_payments` (its income, booked on the first leg
  by :mod:`hedge_core.runner.pair_records`) and :meth:`first_trades`.
- **The dead man's switch** is armed on BOTH venues where the adapter has one (Binance USD-M
  ``countdownCancelAll``, OKX's account-wide "Cancel All After"), each on its own (one venue's failure does not
  skip the other); True when at least one venue armed it. :meth:`PerpPairLive.cancel_all_scope` is
  ``"account"`` when either venue's timer is account-wide, so the supervisor keeps to OKX's one request per
  second.

Recommend: each venue's adapter is wrapped in :class:`~hedge_core.exchange.recommend.RecommendAdapter`
BEFORE the pair is built, so the driver, which is given each venue's adapter (``by_venue``), can never send.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from hedge_core.errors import ExchangeError, InvalidInput
from hedge_core.exchange.pair_feed import VenueSchedule
from hedge_core.exchange.routed import is_perp_symbol
from hedge_core.exchange.routed_pair import PerpPairAdapter
from hedge_core.exchange.settled_rate import SettledRate
from hedge_core.types import Fill, FundingPayment, FundingRate, Ticker

__all__ = ["PerpPairLive", "recommend_pair", "routed_pair_live"]


def _perp_of(symbol: str) -> str:
    """``BTC/USDT`` -> ``BTC/USDT:USDT`` (the USDT-margined perpetual of a spot pair, ccxt unified)."""
    return symbol if is_perp_symbol(symbol) else f"{symbol}:{symbol.split('/', 1)[-1]}"


class PerpPairLive(PerpPairAdapter):
    """A perp on venue A (first leg) and a perp on venue B (second leg), both live (or both recommend).

    Attributes
    ----------
    first_last_rate : float
        The first venue's last read funding rate (fraction per interval; NaN before the first read).
    first_interval_hours : float
        The first venue's funding interval (hours).
    first_schedule : VenueSchedule or None
        The first venue's published schedule from its last funding-rate answer (next settlement, interval); None
        before a read that carried one.
    first_settled : SettledRate or None
        The first venue's last settled rate (:meth:`read_first_settled`); None before the first read.
    """

    def __init__(self, first: Any, second: Any) -> None:
        super().__init__(first, second)
        self.first_last_rate: float = math.nan
        self.first_interval_hours: float = 8.0
        self.first_schedule: VenueSchedule | None = None
        self.first_settled: SettledRate | None = None

    async def fetch_ticker(self, symbol: str) -> Ticker:
        """A perp symbol: the SECOND venue's ticker. A spot symbol: the FIRST venue's ticker of its perp
        (the first leg's own price; the feed asks for the spot symbol as the first leg's)."""
        if is_perp_symbol(symbol):
            return await self.second.fetch_ticker(symbol)
        return await self.first.fetch_ticker(_perp_of(symbol))

    async def fetch_funding_rate(self, symbol: str) -> FundingRate:
        """The SECOND venue's rate; the first venue's is read too and kept (:attr:`first_last_rate`, its interval
        :attr:`first_interval_hours` and its next settlement :attr:`first_schedule`: ccxt ``fundingTimestamp``,
        Binance USD-M ``premiumIndex.nextFundingTime``, Bybit v5 tickers ``nextFundingTime``, OKX ``funding-rate``
        ``fundingTime``). A failed read of the first venue's keeps its last rate and schedule (the engine's guard
        sees a stale one)."""
        try:
            fa = await self.first.fetch_funding_rate(_perp_of(symbol))
            self.first_last_rate = float(fa.rate)
            if fa.interval_hours and fa.interval_hours > 0:
                self.first_interval_hours = float(fa.interval_hours)
                if fa.ts is not None and not pd.isna(fa.ts):
                    self.first_schedule = VenueSchedule(pd.Timestamp(fa.ts), float(fa.interval_hours))
        except ExchangeError:
            pass
        return await self.second.fetch_funding_rate(symbol)

    async def read_first_settled(self, symbol: str, now: pd.Timestamp) -> float:
        """The FIRST venue's last settled rate of ``symbol``'s perpetual at ``now`` (venue time, UTC; fraction per
        interval, + longs pay; NaN until read), asked of that venue only when its next settlement is due (its
        interval :attr:`first_interval_hours` and announced schedule :attr:`first_schedule`)."""
        if self.first_settled is None:
            self.first_settled = SettledRate(self.first, _perp_of(symbol))
        nxt = None if self.first_schedule is None else self.first_schedule.next_after(pd.Timestamp(now))
        return await self.first_settled.read(now, interval_hours=self.first_interval_hours, next_ts=nxt)

    @property
    def first_settled_rate(self) -> float:
        """The first venue's last settled rate read so far (NaN before a read)."""
        return math.nan if self.first_settled is None else float(self.first_settled.rate)

    def first_next_funding_ts(self, now: pd.Timestamp) -> pd.Timestamp | None:
        """The first venue's settlement strictly after ``now`` (UTC) on its own published grid
        (:meth:`VenueSchedule.next_after` of :attr:`first_schedule`: its announced next settlement plus or minus
        whole intervals, so a grid at 02:00, 06:00, ... stays there); None before the first venue's schedule was
        read. The runner sets it as the update's ``spot_next_funding_ts`` (the soft-exit deferral weighs it)."""
        return None if self.first_schedule is None else self.first_schedule.next_after(pd.Timestamp(now))

    async def first_funding_payments(self, symbol: str | None = None,
                                     since: pd.Timestamp | None = None) -> list[FundingPayment]:
        """The FIRST venue's own funding income (Binance ``FUNDING_FEE``, Bybit ``execType`` Funding)."""
        return await self.first.fetch_funding_payments(symbol, since)

    async def first_trades(self, symbol: str, since: pd.Timestamp | None = None) -> list[Fill]:
        """The FIRST venue's trade records of ``symbol``."""
        return await self.first.fetch_my_trades(symbol, since)

    def cancel_all_scope(self, symbol: str) -> str:
        """What the pair's cancel-all timers cover (read by the supervisor's heartbeat): ``"account"`` when
        either venue's timer is account-wide (OKX "Cancel All After": one timer per account, "Rate Limit: 1
        request per second"), so the supervisor re-arms the pair at most every ``ACCOUNT_TIMER_REARM_S``;
        else ``"symbol"`` (Binance USD-M ``countdownCancelAll``) or ``""`` (no timer at either venue)."""
        scopes = set()
        for ad in (self.first, self.second):
            scope = getattr(ad, "cancel_all_scope", None)
            if callable(scope):
                scopes.add(str(scope(symbol)))
        return "account" if "account" in scopes else ("symbol" if "symbol" in scopes else "")

    async def arm_cancel_all_after(self, symbol: str, seconds: float) -> bool:
        """Arm (``seconds`` > 0) or disarm (0) the exchange-side cancel-all countdown on every venue whose
        adapter has one, each venue on its own: one venue's failure (a rate limit, a network error) never keeps
        the other's timer from being re-armed. True when at least one venue did; the first failure is raised
        after both were tried (the supervisor logs it and tries again on its next beat)."""
        done = False
        failed: ExchangeError | None = None
        for ad in (self.first, self.second):
            arm = getattr(ad, "arm_cancel_all_after", None)
            if not callable(arm):
                continue
            try:
                done = bool(await arm(symbol, seconds)) or done
            except ExchangeError as exc:
                failed = failed or exc
        if failed is not None:
            raise failed
        return done


def recommend_pair(pair: Any) -> PerpPairLive:
    """A pair whose two venue adapters are each wrapped in RecommendAdapter (reads pass, writes recorded)."""
    from hedge_core.exchange.recommend import RecommendAdapter

    first, second = pair.leg_adapters()
    return PerpPairLive(RecommendAdapter(first), RecommendAdapter(second))


def routed_pair_live(mode: str, first_venue: str, second_venue: str, *, confirm_live: bool = False,
                     env: Mapping[str, str] | None = None, **live_kwargs: Any) -> PerpPairLive:
    """The adapter of a live or recommend hedge with a perp on ``first_venue`` (first leg) and a perp on
    ``second_venue`` (second leg).

    Parameters
    ----------
    mode : str
        ``'live'`` (real orders on both venues) or ``'recommend'`` (reads both, sends nothing).
    first_venue, second_venue : str
        Lowercase ccxt ids; they must differ.
    confirm_live : bool
        Must be True for ``'live'``.
    env : mapping, optional
        Environment the keys are read from (default ``os.environ``).
    **live_kwargs
        Passed to both ``CcxtLiveAdapter``.

    Raises
    ------
    InvalidInput
        As :func:`hedge_core.exchange.routed_live.routed_live` (mode, venues, ``confirm_live``, a venue
        without keys named with its leg: ``first perp leg on ...`` / ``second perp leg on ...``).
    """
    from hedge_core.exchange.routed_live import live_leg_adapters

    first, second = live_leg_adapters(mode, first_venue, second_venue, confirm_live=confirm_live, env=env,
                                      legs=("first perp", "second perp"), **live_kwargs)
    if mode == "recommend":
        from hedge_core.exchange.recommend import RecommendAdapter

        return PerpPairLive(RecommendAdapter(first), RecommendAdapter(second))
    return PerpPairLive(first, second)
