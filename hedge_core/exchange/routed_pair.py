"""Two PERP legs of ONE symbol on two venues behind one adapter: routed by LEG, not by symbol.

:class:`~hedge_core.exchange.routed.RoutedAdapter` routes on the symbol (spot symbol -> venue A, perp
symbol -> venue B). With a perp on each venue both legs trade ``BTC/USDT:USDT``, so the symbol says
nothing. :class:`PerpPairAdapter` routes each ORDER call by the leg its client order id names
(:func:`hedge_core.types.client_order_id`: ``h`` + the leg's first letter, ``s`` for the first leg and
``p`` for the second): the first leg's orders go to venue A, the second's to venue B, and an order whose
outcome is unknown is looked up at its own venue only. Everything that is not an order:

- wallets by account: ``fetch_balance("spot")`` is the FIRST venue's futures wallet (the first leg's
  margin), ``fetch_balance("perp")`` the second's;
- leverage, margin mode and position mode are set on BOTH venues (the engine gives both legs one leverage);
- positions, tickers, order books, funding rates and payments, trade records and brackets are the SECOND venue's (the
  leg the engine polls for liquidations); the first venue's are :attr:`first`'s (``first_positions``);
- ``load_markets`` is the second venue's; :meth:`leg_instruments` gives each leg its own venue's instrument;
- dated futures (:meth:`PerpPairAdapter.dated_futures`) are the second venue's: a calendar roll moves the second leg.

Money never moves between the venues (:meth:`transfer` refuses, like ``RoutedAdapter``).
:class:`PerpPairPaper` is the runner's two paper venues (a state file each), each settling its own stored
funding series (see there).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from hedge_core.errors import InvalidInput, OrderNotFound
from hedge_core.exchange.base import ExchangeAdapter
from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.paper.core import PaperCore
from hedge_core.types import (
    Balance,
    Bar,
    Fill,
    FundingEvent,
    FundingPayment,
    FundingRate,
    Instrument,
    MarginMode,
    MarketKind,
    Order,
    OrderRequest,
    Position,
    PositionMode,
    Ticker,
    TradingMode,
    leg_of_client_order_id,
)

__all__ = ["PerpPairAdapter", "PerpPairPaper", "leg_of_client_order_id"]




class PerpPairAdapter:
    """A perp on venue A (the first leg) and a perp on venue B (the second), routed by leg.

    Raises
    ------
    InvalidInput
        Both adapters name the same venue, or their trading modes differ.
    """

    perp_pair = True  # read by exchange.costs.of_adapter: the first leg's fee is A's PERP fee

    def __init__(self, first: ExchangeAdapter, second: ExchangeAdapter) -> None:
        if first.venue == second.venue:
            raise InvalidInput("venues", (first.venue, second.venue), "two different venues for two perp legs")
        if first.mode != second.mode:
            raise InvalidInput("mode", (str(first.mode), str(second.mode)), "the same trading mode on both venues")
        self.first = first
        self.second = second
        self.spot_venue: str = first.venue  # the first leg's venue (the spec's ``venue``)
        self.perp_venue: str = second.venue
        self.venue = f"{first.venue}+{second.venue}"
        self.mode: TradingMode = first.mode

    # ---- routing ----------------------------------------------------------------------------------
    def adapter_for_order(self, client_order_id: str | None) -> ExchangeAdapter:
        """Venue A for the first leg's ids, venue B for the second's (and any id the engine did not make)."""
        return self.first if client_order_id and leg_of_client_order_id(client_order_id) == "spot" else self.second

    def venue_of(self, symbol: str) -> str:
        """The second venue: a symbol alone cannot tell the legs apart (orders route by client order id)."""
        return self.perp_venue

    def leg_adapters(self) -> tuple[ExchangeAdapter, ExchangeAdapter]:
        return self.first, self.second

    def by_venue(self) -> dict[str, ExchangeAdapter]:
        return {self.spot_venue: self.first, self.perp_venue: self.second}

    @property
    def answers_carry_fills(self) -> bool:
        return bool(getattr(self.first, "answers_carry_fills", False)) and bool(
            getattr(self.second, "answers_carry_fills", False))

    @property
    def outcome_window_s(self) -> float:
        return max(float(getattr(self.first, "outcome_window_s", 0.0) or 0.0),
                   float(getattr(self.second, "outcome_window_s", 0.0) or 0.0))

    @property
    def offers_position_mode(self) -> bool:
        return bool(getattr(self.first, "offers_position_mode", True)) and bool(
            getattr(self.second, "offers_position_mode", True))

    @property
    def offers_brackets(self) -> bool:
        return bool(getattr(self.second, "offers_brackets", False))

    async def leg_instruments(self, symbol: str) -> tuple[Instrument, Instrument]:
        """(the first venue's ``symbol`` perp, the second venue's): each leg's instrument on its own venue."""
        a, b = (await self.first.load_markets()).get(symbol), (await self.second.load_markets()).get(symbol)
        if a is None or b is None or a.kind is not MarketKind.PERP or b.kind is not MarketKind.PERP:
            raise InvalidInput("symbol", symbol, f"a perp market on both {self.spot_venue} and {self.perp_venue}")
        return a, b

    # ---- ExchangeAdapter ----------------------------------------------------------------------------
    async def load_markets(self) -> dict[str, Instrument]:
        return await self.second.load_markets()

    async def dated_futures(self, base: str, quote: str = "USDT") -> list[tuple[str, pd.Timestamp]]:
        """The SECOND venue's dated futures of ``base``/``quote`` as ``(symbol, expiry)`` pairs sorted by expiry:
        the calendar roll moves the SECOND leg only (docs/calendar-roll.md, "Two perp legs"); ``[]`` where that
        venue lists none or its adapter cannot list them. A dated future's orders route to the second venue like
        the second leg's (client order ids of leg ``roll``: not the first leg's ``s``), and its ticker, positions
        and trade records are the second venue's like everything that is not the first leg's."""
        fn = getattr(self.second, "dated_futures", None)
        return list(await fn(base, quote)) if callable(fn) else []

    async def fetch_ticker(self, symbol: str) -> Ticker:
        return await self.second.fetch_ticker(symbol)

    async def fetch_order_book(self, symbol: str, limit: int | None = None, *,
                               amount: float | None = None) -> dict[str, list[list[float]]]:
        """The SECOND venue's book of ``symbol`` (the first's: ``first.fetch_order_book``)."""
        return await self.second.fetch_order_book(symbol, limit, amount=amount)  # type: ignore[attr-defined]

    async def fetch_balance(self, account: str = "spot") -> dict[str, Balance]:
        """``spot``: the FIRST venue's futures wallet (the first leg's margin); ``perp``: the second's."""
        if account not in ("spot", "perp"):
            raise InvalidInput("account", account, "'spot' (the first perp leg's venue) or 'perp'")
        return await (self.first if account == "spot" else self.second).fetch_balance("perp")

    async def fetch_positions(self, symbols: list[str] | None = None) -> list[Position]:
        """The SECOND venue's positions (the first's: :meth:`first_positions`)."""
        return await self.second.fetch_positions(symbols)

    async def first_positions(self, symbols: list[str] | None = None) -> list[Position]:
        return await self.first.fetch_positions(symbols)

    async def create_order(self, request: OrderRequest) -> Order:
        return await self.adapter_for_order(request.client_order_id).create_order(request)

    async def cancel_order(self, symbol: str, *, order_id: str | None = None,
                           client_order_id: str | None = None) -> Order:
        return await self.adapter_for_order(client_order_id).cancel_order(symbol, order_id=order_id,
                                                                          client_order_id=client_order_id)

    async def fetch_order(self, symbol: str, *, order_id: str | None = None,
                          client_order_id: str | None = None) -> Order:
        if client_order_id is None and order_id is not None:  # a venue id alone: ask B, then A
            try:
                return await self.second.fetch_order(symbol, order_id=order_id)
            except OrderNotFound:
                return await self.first.fetch_order(symbol, order_id=order_id)
        return await self.adapter_for_order(client_order_id).fetch_order(symbol, order_id=order_id,
                                                                         client_order_id=client_order_id)

    async def find_order(self, symbol: str, client_order_id: str, since: pd.Timestamp | None) -> Order | None:
        find = getattr(self.adapter_for_order(client_order_id), "find_order", None)
        return await find(symbol, client_order_id, since) if callable(find) else None

    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        return list(await self.first.fetch_open_orders(symbol)) + list(await self.second.fetch_open_orders(symbol))

    async def fetch_my_trades(self, symbol: str, since: pd.Timestamp | None = None) -> list[Fill]:
        """The SECOND venue's trade records (the leg whose liquidations the driver polls)."""
        return await self.second.fetch_my_trades(symbol, since)

    async def set_leverage(self, symbol: str, leverage: float) -> None:
        """Both venues (each leg's position is margined at the hedge's one leverage)."""
        await self.first.set_leverage(symbol, leverage)
        await self.second.set_leverage(symbol, leverage)

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> None:
        await self.first.set_margin_mode(symbol, mode)
        await self.second.set_margin_mode(symbol, mode)

    async def set_position_mode(self, mode: PositionMode) -> None:
        await self.first.set_position_mode(mode)
        await self.second.set_position_mode(mode)

    async def fetch_funding_rate(self, symbol: str) -> FundingRate:
        return await self.second.fetch_funding_rate(symbol)

    async def fetch_funding_rate_history(self, symbol: str, since: pd.Timestamp | None = None,
                                         limit: int | None = None) -> list[FundingRate]:
        return await self.second.fetch_funding_rate_history(symbol, since, limit)

    async def fetch_funding_payments(self, symbol: str | None = None,
                                     since: pd.Timestamp | None = None) -> list[FundingPayment]:
        return await self.second.fetch_funding_payments(symbol, since)

    async def fetch_brackets(self, symbol: str) -> Any:
        return await self.second.fetch_brackets(symbol)  # type: ignore[attr-defined]

    async def transfer(self, currency: str, amount: float, from_account: str, to_account: str) -> dict[str, Any]:
        """Refused, always: the legs' wallets are on two venues (only an operator moves money between them)."""
        raise InvalidInput("transfer", f"{amount} {currency} {from_account}->{to_account}",
                           f"no automatic transfer between venues ({self.spot_venue} and {self.perp_venue} futures "
                           "wallets): move funds yourself at the venues")

    async def close(self) -> None:
        try:
            await self.first.close()
        finally:
            await self.second.close()


class PerpPairPaper(PerpPairAdapter):
    """Two paper perp venues for the runner: a state file each (``<hedge id>@<venue>.json``), both fed the
    replay's perp and mark bars (spot bars are not theirs). EACH venue settles ITS OWN stored series
    (``first_funding`` / ``second_funding``: rate per settlement time, fraction per ``interval_hours``), applied
    at the replay's settlement instants where that venue has a rate there (the runner's replay carries the UNION
    of both venues' times, :meth:`settlement_times`, so each settles exactly at its own); B without a stored series
    (``second_funding`` None or empty) settles the replayed data venue's events instead (the runner warns).
    Settlements are kept in :attr:`first_settled` / :attr:`second_settled` until the runner books them on their
    legs (:meth:`take_first_settled`, :meth:`take_second_settled`). What the engine knows of each leg's funding at
    an update (rate, interval, next settlement on that venue's own grid) is :meth:`replay_funding`."""

    first: PaperExchange
    second: PaperExchange

    def __init__(self, first: PaperExchange, second: PaperExchange, first_funding: pd.DataFrame | None = None,
                 second_funding: pd.DataFrame | None = None, *, by_venue: bool = False,
                 data_funding: pd.DataFrame | None = None) -> None:
        super().__init__(first, second)
        # paper on LIVE bars (feed "bars", exchange.pair_feed.PairBarsFeed): each event names its venue; each
        # paper venue gets its own venue's bars and settles its own venue's published funding. Not named
        # ``by_venue``: that is the method giving the driver each venue's own adapter (PerpPairAdapter.by_venue)
        self.own_bars = bool(by_venue)
        self.first_funding = _funding_frame(first_funding)
        # B's own stored series; None: B settles the replayed data venue's events (the runner warns)
        self.second_funding = _funding_frame(second_funding) if second_funding is not None and len(second_funding) \
            else None
        # the replayed data venue's stored series: what B settles (through the replay's events) without its own
        # series, so what the market knows of B's rate then (replay_funding)
        self.data_funding = _funding_frame(data_funding) if data_funding is not None and len(data_funding) else None
        self.first_settled: list[FundingEvent] = []
        self.second_settled: list[FundingEvent] = []
        self.first_last_rate = math.nan
        self.first_interval_hours = 8.0
        self.second_last_rate = math.nan  # B's own last settled rate (NaN: the data venue's is the market's)
        for ad, frame, leg in ((first, self.first_funding, "first"), (second, self.second_funding, "second")):
            now = getattr(ad.core, "now", None)
            if now is None or frame is None:
                continue
            past = frame[frame.index <= pd.Timestamp(now)]  # a restart: the last rate the venue settled
            if len(past):
                setattr(self, f"{leg}_last_rate", float(past["funding_rate"].iloc[-1]))
                if leg == "first":
                    self.first_interval_hours = float(past["interval_hours"].iloc[-1])

    @property
    def core(self) -> PaperCore:
        return self.second.core

    @property
    def state_path(self) -> Path | None:
        return self.second.state_path

    @property
    def save_on_apply(self) -> bool:
        return self.first.save_on_apply and self.second.save_on_apply

    @save_on_apply.setter
    def save_on_apply(self, value: bool) -> None:
        self.first.save_on_apply = self.second.save_on_apply = bool(value)

    def save(self, path: Any = None) -> None:
        self.first.save()
        self.second.save()

    async def apply(self, event: Bar | FundingEvent) -> None:
        """Perp and mark bars to both venues (each under its own name); a funding settlement to B, and A's
        own rate at that instant (if its series has one) to A."""
        if self.own_bars:
            await self._apply_own(event)
            return
        if isinstance(event, Bar):
            if event.kind is MarketKind.SPOT:
                if self.second.core.config.quarterlies:
                    # the second venue's simulated dated future is priced, and delivered, from the spot (its index:
                    # exchange.paper.quarterly, exchange.paper.delivery); no leg trades the spot
                    await self.second.apply(Bar(event.ts, self.second.venue, event.symbol, event.kind, event.open,
                                                event.high, event.low, event.close, event.volume, event.timeframe))
                return
            for ad in (self.first, self.second):
                await ad.apply(Bar(event.ts, ad.venue, event.symbol, event.kind, event.open, event.high, event.low,
                                   event.close, event.volume, event.timeframe))
            return
        ts = pd.Timestamp(event.ts)
        # an added settlement instant (NaN rate, exchange.pair_feed): the data venue settles nothing here
        ev_b: FundingEvent | None = None if math.isnan(float(event.rate)) else FundingEvent(
            ts, self.second.venue, event.symbol, event.rate, event.interval_hours)
        if self.second_funding is not None:  # B's own series: its rate at this instant, or no settlement of B's
            ev_b = None if ts not in self.second_funding.index else FundingEvent(
                ts, self.second.venue, event.symbol, float(self.second_funding.at[ts, "funding_rate"]),
                float(self.second_funding.at[ts, "interval_hours"]))
        if ev_b is not None and _unsettled(self.second, ts):
            await self.second.apply(ev_b)
            self.second_settled.append(ev_b)
            if self.second_funding is not None:
                self.second_last_rate = ev_b.rate
        if ts in self.first_funding.index and _unsettled(self.first, ts):
            ev = FundingEvent(ts, self.first.venue, event.symbol, float(self.first_funding.at[ts, "funding_rate"]),
                              float(self.first_funding.at[ts, "interval_hours"]))
            await self.first.apply(ev)
            self.first_settled.append(ev)
            self.first_last_rate, self.first_interval_hours = ev.rate, ev.interval_hours

    async def _apply_own(self, event: Bar | FundingEvent) -> None:
        """Live bars: the event goes to the paper venue it names (``event.venue``), nothing else. An event that
        venue applied already is skipped (:func:`_applied`): after a restart the bars feed starts over from the
        hedge's start, and each paper venue resumes after the last event its state file holds."""
        if isinstance(event, Bar):
            if event.kind is MarketKind.SPOT:
                return
            for ad in (self.first, self.second):
                if ad.venue == event.venue and not _applied(ad, event):
                    await ad.apply(event)
            return
        if math.isnan(float(event.rate)):
            return
        if not any(ad.venue == event.venue and _unsettled(ad, pd.Timestamp(event.ts)) and not _applied(ad, event)
                   for ad in (self.first, self.second)):
            return
        if event.venue == self.first.venue:
            await self.first.apply(event)
            self.first_settled.append(event)
            self.first_last_rate, self.first_interval_hours = event.rate, event.interval_hours
        elif event.venue == self.second.venue:
            await self.second.apply(event)
            self.second_settled.append(event)
            self.second_last_rate = event.rate

    def take_second_settled(self) -> list[FundingEvent]:
        """B's settlements applied since the last call (its own series', or the data venue's as a fallback)."""
        out, self.second_settled = self.second_settled, []
        return out

    def settlement_times(self) -> pd.DatetimeIndex:
        """Both venues' own settlement times (A's series and B's, when B has one): the instants the runner's
        replay adds to the data venue's (:class:`hedge_core.exchange.pair_feed.SettlementInstantsFeed`)."""
        from hedge_core.exchange.pair_feed import settlement_times

        return settlement_times(self.first_funding, self.second_funding)

    def first_next_funding_ts(self, now: pd.Timestamp) -> pd.Timestamp | None:
        """A's next settlement time after ``now`` in its stored series (None: none left); the runner's
        replay has an instant there (:meth:`settlement_times`), so A settles exactly then."""
        idx = self.first_funding.index
        i = int(idx.searchsorted(pd.Timestamp(now), side="right"))
        return idx[i] if i < len(idx) else None

    def replay_funding(self, now: pd.Timestamp) -> dict[str, Any]:
        """Each leg's funding as known at ``now`` in a runner REPLAY, from each venue's OWN stored series: the
        :class:`~hedge_core.engine.events.MarketUpdate` fields to set on the update at ``now``.

        - first leg: ``spot_funding_rate`` / ``spot_funding_interval_hours`` (fraction per that many hours; +
          longs pay shorts) of A's last settlement strictly before ``now`` (NaN and the first row's hours when
          A's series has none before it), ``spot_next_funding_ts`` A's next settlement strictly after ``now``;
        - second leg: ``funding_rate`` (NaN before B's first settlement in its series: unknown, so a pair does not
          enter on it), ``funding_interval_hours`` and ``next_funding_ts`` the same way from B's own series, or,
          without one, from the replayed data venue's (``data_funding``: the series B then settles); without
          either, nothing is returned for them (the market builder's stand).

        "Strictly before": the engine acts on the update at ``now`` before the venues settle at ``now`` (the
        replay order). Past a series' last time the next settlement is that time plus whole intervals. This is
        what the pair backtest gives its update at each instant (``backtest.timeline.build_timeline``'s
        ``last_rate``, ``backtest.xvenue_pair.own_next_settlement``), so each venue announces its own grid (a 4h
        venue at 02:00, 06:00, ... announces 06:00 at 03:00), also before its first settlement in the replay
        and after a restart.
        """
        t = pd.Timestamp(now)
        ra, ha, na = _known_at(self.first_funding, t)
        out: dict[str, Any] = {"spot_funding_rate": ra, "spot_funding_interval_hours": ha, "spot_next_funding_ts": na}
        fb = self.second_funding if self.second_funding is not None else self.data_funding
        if fb is not None:
            out["funding_rate"], out["funding_interval_hours"], out["next_funding_ts"] = _known_at(fb, t)
        return out

    def take_first_settled(self) -> list[FundingEvent]:
        """A's settlements applied since the last call (the runner books each on the first leg)."""
        out, self.first_settled = self.first_settled, []
        return out


def _known_at(frame: pd.DataFrame, t: pd.Timestamp) -> tuple[float, float, pd.Timestamp | None]:
    """(rate, interval hours) of ``frame``'s last settlement strictly before ``t`` (NaN and the first row's hours
    without one) and its next settlement strictly after ``t`` (past the last row: the last time plus whole
    intervals; None for an empty frame)."""
    idx = frame.index
    if not len(idx):
        return math.nan, 8.0, None
    i = int(idx.searchsorted(t, side="left"))  # rows before i settled strictly before t
    k = i - 1 if i > 0 else 0
    rate = float(frame["funding_rate"].iloc[i - 1]) if i > 0 else math.nan
    hours = float(frame["interval_hours"].iloc[k])
    j = int(idx.searchsorted(t, side="right"))
    if j < len(idx):
        return rate, hours, idx[j]
    step = pd.Timedelta(hours=float(frame["interval_hours"].iloc[-1]))
    last = idx[-1]
    return rate, hours, last + ((t - last) // step + 1) * step


def _applied(ad: PaperExchange, event: Bar | FundingEvent) -> bool:
    """True when the paper venue applied ``event`` (or a later one) already: its feed order key
    (:func:`hedge_core.exchange.feeds.event_order_key`) is at or before the venue's last applied event's, which
    its state file keeps across a restart (``PaperCore.last_event_key``)."""
    from hedge_core.exchange.feeds import event_order_key

    last = ad.core.last_event_key
    return last is not None and event_order_key(event) <= last


def _unsettled(ad: PaperExchange, ts: pd.Timestamp) -> bool:
    """True when the paper venue has not settled at ``ts`` or later yet. Each venue settles at its OWN instants,
    so after a restart the replay resumes at the second venue's clock and may pass again an instant only the
    first venue settled: it is not settled twice."""
    hist = ad.core.funding_history
    return not hist or pd.Timestamp(ts) > pd.Timestamp(hist[-1].ts)


def _funding_frame(frame: pd.DataFrame | None) -> pd.DataFrame:
    """A stored funding series as ``funding_rate`` and ``interval_hours`` (default 8) on a UTC index, one row per
    settlement time (the last of duplicates)."""
    ff = frame if frame is not None else pd.DataFrame({"funding_rate": []}, index=pd.DatetimeIndex([], tz="UTC"))
    ff = ff[~ff.index.duplicated(keep="last")]
    hours = ff["interval_hours"] if "interval_hours" in ff else pd.Series(8.0, index=ff.index)
    return pd.DataFrame({"funding_rate": ff["funding_rate"].to_numpy(dtype="float64"),
                         "interval_hours": hours.astype("float64").fillna(8.0).to_numpy()},
                        index=pd.DatetimeIndex(pd.to_datetime(ff.index, utc=True)))
