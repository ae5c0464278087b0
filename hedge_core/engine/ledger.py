"""Per-leg ledger: the one place where fills, funding and interest turn into money.

Conventions (float64, quote units unless stated):

- ``qty`` is signed base (+ long / - short); ``avg_entry`` is the average entry price of the
  open quantity (0 when flat). Adding in the same direction re-averages; reducing realises
  ``closed_qty x (price - avg_entry) x sign(old qty)`` into ``realized`` and leaves
  ``avg_entry`` unchanged; crossing zero realises the old side and opens the rest at ``price``.
- ``fees`` (>= 0 paid), ``slippage`` (>= 0 cost, informational: already inside fill prices;
  see :func:`slippage_cost`),
  ``funding`` (+ received / - paid), ``interest`` (>= 0 paid) accumulate over the leg's life.
- ``cash`` is the quote cash flow of trades excluding fees: ``-sign x qty x price`` per fill
  (a spot wallet's quote balance = initial + cash - fees).
- net PnL = realized + unrealized + funding - fees - interest, with
  unrealized = qty x (last_price - avg_entry).
- ``margin_funding`` (quote, + received / - paid) is the funding held in the OPEN position's
  isolated margin, the venue's way (``exchange.paper_core``; Binance isolated margin): each
  settlement adds to it, a partial close takes the closed share out of it
  (``x (1 - closed / |qty|)``), and it is 0 once the position is flat (a re-opened or reversed
  position starts without it). ``funding`` keeps the leg's whole-life total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hedge_core import money
from hedge_core.errors import InvalidInput
from hedge_core.types import Bracket, Instrument, MarketKind, Side

__all__ = [
    "QTY_EPS",
    "Leg",
    "accrue_interest",
    "apply_fill",
    "apply_funding",
    "funding_amount",
    "leg_from_instrument",
    "mark_leg",
    "slippage_cost",
]

#: Quantities at or below this (base units) are treated as zero (float noise of lot arithmetic).
QTY_EPS = money.QTY_EPS


@dataclass(frozen=True)
class Leg:
    """One leg of a hedge: its instrument, venue, position and accumulated money.

    Not ``slots=True`` on purpose: :func:`_with` copies ``__dict__`` in one step (a leg is
    re-priced on every market update).
    """

    name: str  # "spot" | "perp"
    symbol: str
    venue: str
    kind: MarketKind
    base: str
    quote: str
    lot_size: float
    min_qty: float
    min_notional: float
    qty: float = 0.0
    avg_entry: float = 0.0
    fees: float = 0.0
    slippage: float = 0.0
    funding: float = 0.0
    margin_funding: float = 0.0  # funding inside the open position's isolated margin (see module doc)
    interest: float = 0.0
    realized: float = 0.0
    cash: float = 0.0
    traded_notional: float = 0.0
    last_price: float = math.nan
    brackets: tuple[Bracket, ...] = ()  # the perp's maintenance table (its instrument's; empty: defaults)

    @property
    def unrealized(self) -> float:
        """qty x (last_price - avg_entry), quote; 0 when flat or unpriced."""
        if self.qty == 0.0 or math.isnan(self.last_price):
            return 0.0
        return money.unrealized_pnl(self.qty, self.last_price, self.avg_entry)

    @property
    def net_pnl(self) -> float:
        """realized + unrealized + funding - fees - interest (quote)."""
        return self.realized + self.unrealized + self.funding - self.fees - self.interest

    @property
    def notional(self) -> float:
        """|qty| x last price (quote); 0 when unpriced."""
        return 0.0 if math.isnan(self.last_price) else abs(self.qty) * self.last_price

    def round_qty(self, qty: float) -> float:
        """Round |qty| DOWN to the lot size (:func:`hedge_core.money.lot_floor`)."""
        return money.lot_floor(qty, self.lot_size)

    def tradeable(self, qty: float, price: float) -> bool:
        """True when ``|qty|`` (already rounded) meets the venue's lot, min qty and min notional."""
        return money.meets_minimums(abs(qty), price, self.lot_size, self.min_qty, self.min_notional)


_LEG_FIELDS: frozenset[str] = frozenset(Leg.__dataclass_fields__)
_new = object.__new__
_set = object.__setattr__


def _with(leg: Leg, **changes: float) -> Leg:
    """``dataclasses.replace(leg, **changes)`` without re-running ``__init__`` (hot path)."""
    if not _LEG_FIELDS.issuperset(changes):
        raise TypeError(f"Leg has no field(s) {sorted(set(changes) - _LEG_FIELDS)}")
    new = _new(Leg)
    _set(new, "__dict__", {**leg.__dict__, **changes})
    return new


def leg_from_instrument(name: str, inst: Instrument, qty: float = 0.0, avg_entry: float = 0.0) -> Leg:
    """A leg on ``inst``; ``qty``/``avg_entry`` seed an existing holding (e.g. loan collateral)."""
    return Leg(name=name, symbol=inst.symbol, venue=inst.venue, kind=inst.kind, base=inst.base, quote=inst.quote,
               lot_size=inst.lot_size, min_qty=inst.min_qty, min_notional=inst.min_notional,
               qty=float(qty), avg_entry=float(avg_entry) if qty else 0.0, brackets=inst.brackets)


def apply_fill(leg: Leg, side: Side, qty: float, price: float, fee: float = 0.0, slippage: float = 0.0) -> Leg:
    """Book one execution of ``qty`` base at ``price`` on ``leg``.

    Parameters
    ----------
    side : Side
        BUY adds +qty, SELL adds -qty to the signed position.
    qty : float
        Executed base quantity, > 0.
    price : float
        Execution price, quote per base, > 0.
    fee : float
        Fee paid in quote (>= 0; a rebate is negative).
    slippage : float
        Quote cost versus the reference price (informational).

    Returns
    -------
    Leg
        The updated leg (a new object; the input is unchanged).
    """
    if not (qty > 0 and math.isfinite(qty)):
        raise InvalidInput("fill.qty", qty, "a finite base quantity > 0")
    if not (price > 0 and math.isfinite(price)):
        raise InvalidInput("fill.price", price, "a finite price > 0 (quote per base)")
    sign = side.sign
    q0 = leg.qty
    q1, avg, realized, closed = money.fill_position(q0, leg.avg_entry, sign, qty, price)
    mf = money.isolated_margin_after_fill(leg.margin_funding, q0, q1, qty, closed, price, math.inf)
    return _with(leg, qty=q1, avg_entry=avg, realized=leg.realized + realized, fees=leg.fees + fee,
                 slippage=leg.slippage + slippage, cash=leg.cash + money.trade_cash_flow(sign, qty, price),
                 traded_notional=leg.traded_notional + qty * price, margin_funding=mf)


def apply_base_fee(leg: Leg, fee_base: float, price: float) -> Leg:
    """A fee the venue took in the leg's BASE asset (Binance spot without BNB: a buy's commission
    comes out of the coins received): ``fee_base`` coins (> 0 paid) leave the holding.

    Booked as a sale of those coins at ``price`` (realised against the average entry, like any
    sale) whose proceeds pay the fee; the caller books the fee's quote value ``fee_base x price``
    (:func:`book_fill` does both). Then ``qty`` is the coins actually held and ``net_pnl`` equals
    the cash flows. Not counted as traded volume.
    """
    if not (math.isfinite(fee_base) and math.isfinite(price) and price > 0):
        raise InvalidInput("fill.fee", fee_base, "a finite fee in base units (and a price > 0)")
    if fee_base == 0:
        return leg
    out = apply_fill(leg, Side.SELL if fee_base > 0 else Side.BUY, abs(fee_base), price)
    return _with(out, traded_notional=leg.traded_notional)


def book_fill(leg: Leg, side: Side, qty: float, price: float, fee: float, fee_currency: str,
              slippage: float = 0.0) -> Leg:
    """One execution on its leg, whatever the venue charged the fee in (the one rule for live,
    paper, replays and journal rebuilds): in the quote currency as is; in the leg's BASE asset
    (Binance spot without BNB) valued at the fill price and taken out of the holding
    (:func:`apply_base_fee`); in another asset valued at the fill price."""
    cur = fee_currency or leg.quote
    if cur == leg.base and fee:
        return apply_base_fee(apply_fill(leg, side, qty, price, fee * price, slippage), fee, price)
    return apply_fill(leg, side, qty, price, fee if cur == leg.quote else fee * price, slippage)


def slippage_cost(side: Side, qty: float, price: float, ref: float) -> float:
    """Execution cost of a fill versus the reference price the engine decided at (quote).

    ``buy: qty x (price - ref)``, ``sell: qty x (ref - price)``: >= 0 is a cost, < 0 a price
    improvement. ``ref`` is the leg's last price when ``step()`` placed the order
    (``PendingOrder.ref_price``); the one definition for paper, live and backtests.

    Parameters
    ----------
    side : Side
    qty : float
        Executed base quantity, > 0.
    price, ref : float
        Execution price and reference price, quote per base.
    """
    return money.slippage_cost(side.sign, qty, price, ref)


def funding_amount(qty: float, mark: float, rate: float) -> float:
    """Funding of a perp position: ``-qty x mark x rate`` (+ received / - paid), quote
    (:func:`hedge_core.money.funding_payment`)."""
    return money.funding_payment(qty, mark, rate)


def apply_funding(leg: Leg, amount: float) -> Leg:
    """Add a settled funding ``amount`` (+ received / - paid, quote) to the leg: to its
    whole-life ``funding`` and, while a position is open, to its ``margin_funding``."""
    if leg.qty == 0.0:
        return _with(leg, funding=leg.funding + amount)
    return _with(leg, funding=leg.funding + amount, margin_funding=leg.margin_funding + amount)


def accrue_interest(leg: Leg, amount: float) -> Leg:
    """Add borrow interest ``amount`` (>= 0 paid, quote) to the leg."""
    if amount < 0:
        raise InvalidInput("interest", amount, ">= 0 (quote paid)")
    return _with(leg, interest=leg.interest + amount)


def mark_leg(leg: Leg, price: float) -> Leg:
    """The leg re-priced at ``price`` (quote per base) for unrealised PnL."""
    if not (price > 0 and math.isfinite(price)):
        return leg
    return _with(leg, last_price=price)
