"""Legs on two venues: one :class:`~hedge_core.exchange.base.ExchangeAdapter` that routes each leg
to its own venue's adapter (spot leg on venue A, perp leg on venue B).

:class:`RoutedAdapter` implements the adapter protocol by routing on the ccxt unified symbol: a spot
symbol (``BTC/USDT``) goes to the spot venue, a perp symbol (``BTC/USDT:USDT``, with a settle
currency after ``:``) to the perp venue. Wallets route by account: ``fetch_balance("spot")`` is the
spot venue's spot wallet, ``fetch_balance("perp")`` the perp venue's futures wallet. Positions,
leverage, margin and position mode, funding (rates and own payments) and maintenance brackets are
the perp venue's, and so are its dated futures (:meth:`RoutedAdapter.dated_futures`: a calendar roll moves the
hedge leg between the perp venue's perpetual and its quarterly). Each venue keeps its own balances, fees, funding schedule and margin: nothing is
pooled, netted or shared between them.

Why one composite adapter (and not a second code path): the engine, the driver, the preflight and
the runner's reconciliation all address orders by ``(symbol, client order id)``, so routing on the
symbol keeps their two-leg rules (open, hedge, unwind on failure, reconcile, the unknown-outcome
protocol) unchanged across venues. A timeout on one venue is that venue's: the engine's query for
that order goes to the same venue, and the other venue is never asked about it.

Money never moves between venues here. :meth:`RoutedAdapter.transfer` refuses every call: a
transfer between two venues is a withdrawal on one and a deposit on the other, an explicit operator
step done at the venues. A leg short of funds on its venue is refused by the preflight, which names
that venue (:func:`leg_venue_of_binding`).

:meth:`RoutedAdapter.venue_of` says which venue holds a symbol, so reports (reconciliation,
positions) can be split per venue (:mod:`hedge_core.runner.reconcile_venues`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from hedge_core.errors import InvalidInput
from hedge_core.exchange.base import ExchangeAdapter
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
)

__all__ = ["RoutedAdapter", "is_perp_symbol", "leg_venue_of_binding"]

_ACCOUNTS = ("spot", "perp")


def is_perp_symbol(symbol: str) -> bool:
    """True for a ccxt unified derivative symbol (``BTC/USDT:USDT``: a settle currency after ``:``)."""
    return ":" in symbol


class RoutedAdapter:
    """The spot leg on one venue's adapter, the perp leg on another's.

    Parameters
    ----------
    spot : ExchangeAdapter
        Venue of the spot leg (its spot markets and spot wallet are used).
    perp : ExchangeAdapter
        Venue of the perp leg (its perp markets, futures wallet, positions, funding and margin).

    Raises
    ------
    InvalidInput
        When both adapters name the same venue (one venue needs no routing: use its adapter) or
        they run in different trading modes (a paper leg hedged by a live leg is not a hedge).

    Attributes
    ----------
    venue : str
        ``"<spot venue>+<perp venue>"`` (a label for logs and alerts; each leg's instrument keeps
        its own venue).
    spot_venue, perp_venue : str
    """

    def __init__(self, spot: ExchangeAdapter, perp: ExchangeAdapter) -> None:
        if spot.venue == perp.venue:
            raise InvalidInput("venues", (spot.venue, perp.venue),
                               "two different venues (legs on one venue use that venue's adapter directly)")
        if spot.mode != perp.mode:
            raise InvalidInput("mode", (str(spot.mode), str(perp.mode)),
                               "the same trading mode on both venues (paper+paper or live+live)")
        self.spot = spot
        self.perp = perp
        self.spot_venue: str = spot.venue
        self.perp_venue: str = perp.venue
        self.venue = f"{spot.venue}+{perp.venue}"
        self.mode: TradingMode = spot.mode
        read_mode = getattr(perp, "fetch_position_mode", None)
        if callable(read_mode):  # optional in the protocol: offered only where the perp venue offers it
            self.fetch_position_mode = read_mode

    # ---- routing -------------------------------------------------------------------------------
    def adapter_for(self, symbol: str) -> ExchangeAdapter:
        """The venue adapter that holds ``symbol`` (perp symbols: the perp venue; else the spot venue)."""
        return self.perp if is_perp_symbol(symbol) else self.spot

    def venue_of(self, symbol: str) -> str:
        """Venue name of ``symbol``'s leg."""
        return self.adapter_for(symbol).venue

    def _account(self, account: str) -> ExchangeAdapter:
        if account not in _ACCOUNTS:
            raise InvalidInput("account", account, f"one of {list(_ACCOUNTS)}")
        return self.spot if account == "spot" else self.perp

    def leg_adapters(self) -> tuple[ExchangeAdapter, ExchangeAdapter]:
        """``(spot venue adapter, perp venue adapter)`` (the preflight reads each venue's fees from it)."""
        return self.spot, self.perp

    def by_venue(self) -> dict[str, ExchangeAdapter]:
        """``{spot venue: spot adapter, perp venue: perp adapter}`` (a driver may take them apart)."""
        return {self.spot_venue: self.spot, self.perp_venue: self.perp}

    @property
    def answers_carry_fills(self) -> bool:  # read by hedge_core.engine.driver.answers_carry_fills
        """True only when BOTH venues' order answers carry every fill (else trade records are read)."""
        return bool(getattr(self.spot, "answers_carry_fills", False)) and bool(
            getattr(self.perp, "answers_carry_fills", False))

    @property
    def outcome_window_s(self) -> float:
        """The LONGER of the two venues' late-execution windows (seconds): an unanswered order is
        waited out for the longest time either venue may still execute it."""
        return max(float(getattr(self.spot, "outcome_window_s", 0.0) or 0.0),
                   float(getattr(self.perp, "outcome_window_s", 0.0) or 0.0))

    @property
    def offers_position_mode(self) -> bool:
        return bool(getattr(self.perp, "offers_position_mode", True))

    @property
    def offers_brackets(self) -> bool:
        return bool(getattr(self.perp, "offers_brackets", False))

    # ---- ExchangeAdapter -------------------------------------------------------------------------
    async def load_markets(self) -> dict[str, Instrument]:
        """The spot venue's spot markets and the perp venue's perp markets (each keeps its venue)."""
        spot = await self.spot.load_markets()
        perp = await self.perp.load_markets()
        out = {s: i for s, i in spot.items() if i.kind is MarketKind.SPOT}
        out.update({s: i for s, i in perp.items() if i.kind is MarketKind.PERP})
        return out

    async def dated_futures(self, base: str, quote: str = "USDT") -> list[tuple[str, pd.Timestamp]]:
        """The PERP venue's dated futures of ``base``/``quote`` as ``(symbol, expiry)`` pairs sorted by expiry
        (the calendar roll's destinations, :mod:`hedge_core.runner.roll_watch`); ``[]`` where that venue lists
        none or its adapter cannot list them. A dated future's symbol (``BTC/USDT:USDT-261225``) is a derivative
        symbol, so its orders, positions, trades and book route to the perp venue like the perpetual's."""
        fn = getattr(self.perp, "dated_futures", None)
        return list(await fn(base, quote)) if callable(fn) else []

    async def fetch_ticker(self, symbol: str) -> Ticker:
        return await self.adapter_for(symbol).fetch_ticker(symbol)

    async def fetch_order_book(self, symbol: str, limit: int | None = None, *,
                               amount: float | None = None) -> dict[str, list[list[float]]]:
        """The book of ``symbol`` at its leg's venue (a perp symbol: the perp venue)."""
        return await self.adapter_for(symbol).fetch_order_book(symbol, limit, amount=amount)

    async def fetch_balance(self, account: str = "spot") -> dict[str, Balance]:
        """``spot``: the spot venue's spot wallet; ``perp``: the perp venue's futures wallet."""
        return await self._account(account).fetch_balance(account)

    async def fetch_positions(self, symbols: list[str] | None = None) -> list[Position]:
        """The perp venue's open positions (the spot venue's own derivatives are not this hedge's)."""
        return await self.perp.fetch_positions(symbols)

    async def create_order(self, request: OrderRequest) -> Order:
        return await self.adapter_for(request.symbol).create_order(request)

    async def cancel_order(self, symbol: str, *, order_id: str | None = None,
                           client_order_id: str | None = None) -> Order:
        return await self.adapter_for(symbol).cancel_order(symbol, order_id=order_id, client_order_id=client_order_id)

    async def fetch_order(self, symbol: str, *, order_id: str | None = None,
                          client_order_id: str | None = None) -> Order:
        return await self.adapter_for(symbol).fetch_order(symbol, order_id=order_id, client_order_id=client_order_id)

    async def find_order(self, symbol: str, client_order_id: str, since: pd.Timestamp | None) -> Order | None:
        """The symbol's venue's ``find_order`` (order AND trade records); None where it has none."""
        find = getattr(self.adapter_for(symbol), "find_order", None)
        if not callable(find):
            return None
        return await find(symbol, client_order_id, since)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        if symbol is not None:
            return await self.adapter_for(symbol).fetch_open_orders(symbol)
        return list(await self.spot.fetch_open_orders(None)) + list(await self.perp.fetch_open_orders(None))

    async def fetch_my_trades(self, symbol: str, since: pd.Timestamp | None = None) -> list[Fill]:
        return await self.adapter_for(symbol).fetch_my_trades(symbol, since)

    async def fetch_deliveries(self, symbol: str, since: pd.Timestamp | None = None) -> list[Fill]:
        """The deliveries of the dated future ``symbol`` at the venue that trades it (``[]`` where that venue's
        adapter reads none)."""
        fn = getattr(self.adapter_for(symbol), "fetch_deliveries", None)
        return [] if fn is None else await fn(symbol, since)

    async def set_leverage(self, symbol: str, leverage: float) -> None:
        await self.adapter_for(symbol).set_leverage(symbol, leverage)

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> None:
        await self.adapter_for(symbol).set_margin_mode(symbol, mode)

    async def set_position_mode(self, mode: PositionMode) -> None:
        """The perp venue's position mode (the spot venue holds no position of this hedge)."""
        await self.perp.set_position_mode(mode)

    async def fetch_funding_rate(self, symbol: str) -> FundingRate:
        return await self.perp.fetch_funding_rate(symbol)

    async def fetch_funding_rate_history(self, symbol: str, since: pd.Timestamp | None = None,
                                         limit: int | None = None) -> list[FundingRate]:
        return await self.perp.fetch_funding_rate_history(symbol, since, limit)

    async def fetch_funding_payments(self, symbol: str | None = None,
                                     since: pd.Timestamp | None = None) -> list[FundingPayment]:
        return await self.perp.fetch_funding_payments(symbol, since)

    async def fetch_brackets(self, symbol: str) -> Any:
        return await self.perp.fetch_brackets(symbol)  # type: ignore[attr-defined]

    async def arm_cancel_all_after(self, symbol: str, seconds: float) -> bool:
        arm = getattr(self.adapter_for(symbol), "arm_cancel_all_after", None)
        return bool(await arm(symbol, seconds)) if callable(arm) else False

    def cancel_all_scope(self, symbol: str) -> str:
        scope = getattr(self.adapter_for(symbol), "cancel_all_scope", None)
        return str(scope(symbol)) if callable(scope) else ""

    async def transfer(self, currency: str, amount: float, from_account: str, to_account: str) -> dict[str, Any]:
        """Refused, always: the spot wallet is on one venue and the perp wallet on another, so a
        transfer between them moves money between venues, which only an operator does (withdraw at
        one venue, deposit at the other). Nothing is sent."""
        raise InvalidInput("transfer", f"{amount} {currency} {from_account}->{to_account}",
                           f"no automatic transfer between venues ({self.spot_venue} spot wallet, "
                           f"{self.perp_venue} futures wallet): move funds yourself at the venues, "
                           "then start or resume the hedge")

    async def close(self) -> None:
        try:
            await self.spot.close()
        finally:
            await self.perp.close()

    # ---- paper market input (both venues simulated) ----------------------------------------------
    async def apply(self, event: Bar | FundingEvent) -> None:
        """Feed a market event to the venue it belongs to: spot bars to the spot venue; perp and mark
        bars and funding settlements to the perp venue (paper venues only: they have ``apply``)."""
        target = self.spot if isinstance(event, Bar) and event.kind is MarketKind.SPOT else self.perp
        await target.apply(event)  # type: ignore[attr-defined]


def leg_venue_of_binding(binding: str, adapter: object) -> str | None:
    """The venue to name when the size bound ``binding`` (a :class:`~hedge_core.engine.sizing_bounds.
    SizeBounds` ``max_binding``) is a leg's balance: the spot venue for ``spot balance ...``, the perp
    venue for ``perp margin ...``. None for one-venue adapters and other bindings."""
    if not isinstance(adapter, RoutedAdapter):
        inner = getattr(adapter, "inner", None)  # the runner's journaling wrapper
        if not isinstance(inner, RoutedAdapter):
            return None
        adapter = inner
    if binding.startswith("spot balance"):
        return adapter.spot_venue
    if binding.startswith("perp margin"):
        return adapter.perp_venue
    return None

