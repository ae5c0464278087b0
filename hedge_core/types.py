"""Immutable domain values shared by every layer.

Conventions (see README "Units and conventions"):
- timestamps are timezone-aware UTC ``pandas.Timestamp``; bars are labelled by their open time;
- symbols are ccxt unified: spot ``BTC/USDT``, USDT-margined perpetual ``BTC/USDT:USDT``;
- quantities in base units, notional in quote units, prices in quote per base;
- a signed position quantity is + long / - short (base units);
- money is float64 inside hedge_core; Decimal is not used (ccxt answers in floats too).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum

import pandas as pd

from hedge_core import money
from hedge_core.errors import InvalidInput


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buy, -1 for sell."""
        return 1 if self is Side.BUY else -1

    def opposite(self) -> "Side":
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    OPEN = "open"  # accepted, nothing or part filled, still working
    CLOSED = "closed"  # fully filled
    CANCELED = "canceled"  # cancelled (may carry a partial fill)
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self is not OrderStatus.OPEN


class MarketKind(StrEnum):
    """Kind of a price series or instrument."""

    SPOT = "spot"
    PERP = "perp"
    MARK = "mark"  # mark-price series of a perp (not tradable)


class MarginMode(StrEnum):
    ISOLATED = "isolated"
    CROSS = "cross"


class PositionMode(StrEnum):
    ONE_WAY = "one_way"
    HEDGE = "hedge"


class PositionSide(StrEnum):
    BOTH = "both"  # one-way mode
    LONG = "long"
    SHORT = "short"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class TradingMode(StrEnum):
    """How a hedge talks to its venue."""

    PAPER = "paper"  # built-in simulator
    LIVE = "live"  # real orders through ccxt
    RECOMMEND = "recommend"  # compute and record orders, send nothing


def is_perp_symbol(symbol: str) -> bool:
    """True for ccxt unified derivative symbols such as ``BTC/USDT:USDT``."""
    return ":" in symbol


def split_symbol(symbol: str) -> tuple[str, str, str | None]:
    """``'BTC/USDT:USDT' -> ('BTC', 'USDT', 'USDT')``; settle is None for spot."""
    pair, _, settle = symbol.partition(":")
    base, sep, quote = pair.partition("/")
    if not sep or not base or not quote:
        raise ValueError(f"symbol {symbol!r} is not a ccxt unified symbol like 'BTC/USDT' or 'BTC/USDT:USDT'")
    return base, quote, (settle or None)


def perp_of(spot_symbol: str) -> str:
    """USDT-margined perp symbol of a spot pair: ``'BTC/USDT' -> 'BTC/USDT:USDT'``."""
    base, quote, settle = split_symbol(spot_symbol)
    return spot_symbol if settle else f"{base}/{quote}:{quote}"


def spot_of(symbol: str) -> str:
    """Spot pair of any unified symbol: ``'BTC/USDT:USDT' -> 'BTC/USDT'``."""
    base, quote, _ = split_symbol(symbol)
    return f"{base}/{quote}"


_TIMEFRAME = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def timeframe_seconds(timeframe: str) -> int:
    """ccxt timeframe -> seconds: ``'1m' -> 60`` (m is MINUTE), ``'8h' -> 28800``, ``'1w' -> 604800``.

    Months are not fixed-length and are refused, like anything else that is not ``<count><s|m|h|d|w>``.
    """
    m = _TIMEFRAME.match(str(timeframe))
    if not m or int(m.group(1)) <= 0:
        raise InvalidInput("timeframe", timeframe, "a positive count and a unit s/m/h/d/w, e.g. '1m', '1h', '8h'")
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def timeframe_delta(timeframe: str) -> pd.Timedelta:
    """ccxt timeframe -> Timedelta (see :func:`timeframe_seconds`)."""
    return pd.Timedelta(seconds=timeframe_seconds(timeframe))


def utc(ts: object) -> pd.Timestamp:
    """Coerce to a tz-aware UTC Timestamp; naive input is rejected (no silent local time)."""
    t = pd.Timestamp(ts)  # type: ignore[arg-type]
    if t.tzinfo is None:
        raise ValueError(f"timestamp {ts!r} has no timezone; pass UTC (e.g. '2024-01-01T00:00Z')")
    return t.tz_convert("UTC")


def client_order_id(hedge_id: str, leg: str, seq: int, attempt: int = 0) -> str:
    """Deterministic client order id: the same (hedge, leg, seq, attempt) always gives the same id.

    A re-send of an order proven lost keeps ``seq`` and takes the next ``attempt`` (a new id,
    linked to the first); a reused id is no protection against a double order (Binance spot
    accepts it again once the first order is final). Fits Binance's ``^[.A-Z:/a-z0-9_-]{1,36}$``.
    """
    digest = hashlib.sha1(f"{hedge_id}|{leg}|{seq}|{attempt}".encode()).hexdigest()[:20]
    return f"h{leg[:1]}{seq % 100000:05d}{attempt % 10}-{digest}"


def leg_of_client_order_id(client_order_id: str) -> str | None:
    """The inverse of :func:`client_order_id` for the leg: ``"spot"`` (the first leg) or ``"perp"`` (the second)
    from ``h<leg letter><seq><attempt>-<digest>``; None for any other id (e.g. a venue liquidation)."""
    if len(client_order_id) > 2 and client_order_id[0] == "h" and "-" in client_order_id:
        return {"s": "spot", "p": "perp"}.get(client_order_id[1])
    return None


@dataclass(frozen=True, slots=True)
class Bracket:
    """One notional bracket of a perp's maintenance-margin table (Binance's "leverage bracket" model;
    Bybit's risk-limit tiers and OKX's position tiers map to it, :mod:`hedge_core.data.instruments_venue`).

    Attributes
    ----------
    bracket : int
        Level, 1-based.
    notional_floor, notional_cap : float
        Position notional range in quote (USDT), ``floor <= notional < cap`` (the last bracket's cap
        includes its upper edge).
    max_leverage : float
        Highest initial leverage allowed in this bracket.
    mmr : float
        Maintenance margin rate, a fraction (0.004 = 0.4 %).
    cum : float
        Maintenance amount in quote (Binance's ``cum``, Bybit's ``mmDeduction``), subtracted from
        ``notional * mmr``; 0 on every bracket of an OKX table (OKX charges the whole position its tier's rate).
    """

    bracket: int
    notional_floor: float
    notional_cap: float
    max_leverage: float
    mmr: float
    cum: float


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable market, its venue limits and (perps) its maintenance-margin brackets.

    ``brackets`` is the perp's own table (from the store's ``instruments`` table, the venue, or the
    committed snapshot, :mod:`hedge_core.data.instruments`); empty for spot and for a perp whose table
    is unknown (the engine then falls back to the committed defaults of
    :func:`hedge_core.analytics.risk.brackets_for`, then to a flat maintenance rate).
    """

    symbol: str
    venue: str
    kind: MarketKind  # SPOT or PERP
    base: str
    quote: str
    tick_size: float  # price increment, quote
    lot_size: float  # quantity increment, base
    min_qty: float  # base
    min_notional: float  # quote
    contract_size: float = 1.0  # base per contract (1 for Binance USDT-M)
    max_leverage: float = 125.0
    brackets: tuple[Bracket, ...] = ()

    def round_qty(self, qty: float) -> float:
        """Round a quantity DOWN to the lot size (never trades more than asked); keeps the sign
        (:func:`hedge_core.money.lot_floor`)."""
        q = money.lot_floor(qty, self.lot_size)
        return -q if qty < 0 else q

    def round_price(self, price: float) -> float:
        """Round a price to the nearest tick (:func:`hedge_core.money.tick_round`)."""
        return money.tick_round(price, self.tick_size)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a strategy asks a venue to do. ``client_order_id`` is always supplied by the caller."""

    symbol: str
    side: Side
    qty: float  # base units, > 0
    client_order_id: str
    type: OrderType = OrderType.MARKET
    price: float | None = None  # limit price, quote per base
    reduce_only: bool = False
    position_side: PositionSide = PositionSide.BOTH


@dataclass(frozen=True, slots=True)
class Order:
    """A venue's view of an order."""

    id: str
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    qty: float  # base
    price: float | None  # limit price or None for market
    filled: float  # base
    avg_price: float | None  # average fill price, quote per base
    status: OrderStatus
    ts: pd.Timestamp
    reduce_only: bool = False
    fee: float = 0.0  # quote, >= 0 means paid
    fee_currency: str = "USDT"

    @property
    def remaining(self) -> float:
        return max(self.qty - self.filled, 0.0)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. ``fee`` is paid (>= 0) in ``fee_currency``; ``slippage`` is quote paid vs reference."""

    trade_id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: float  # base
    price: float  # quote per base
    fee: float
    ts: pd.Timestamp
    fee_currency: str = "USDT"
    liquidity: Liquidity = Liquidity.TAKER
    slippage: float = 0.0  # quote, >= 0 is a cost versus the reference (bar) price


@dataclass(frozen=True, slots=True)
class Position:
    """A perp position. ``qty`` is signed base (+ long / - short)."""

    symbol: str
    qty: float
    entry_price: float
    leverage: float
    margin_mode: MarginMode = MarginMode.CROSS
    position_side: PositionSide = PositionSide.BOTH
    unrealized_pnl: float = 0.0  # quote
    liquidation_price: float | None = None
    margin: float = 0.0  # isolated margin, quote
    mark_price: float | None = None


@dataclass(frozen=True, slots=True)
class Balance:
    currency: str
    free: float
    used: float

    @property
    def total(self) -> float:
        return self.free + self.used


@dataclass(frozen=True, slots=True)
class Ticker:
    symbol: str
    ts: pd.Timestamp
    bid: float
    ask: float
    last: float
    mark: float | None = None

    @property
    def mid(self) -> float:
        return 0.5 * (self.bid + self.ask)


@dataclass(frozen=True, slots=True)
class FundingRate:
    """A funding rate: fraction per interval, positive means longs pay shorts."""

    symbol: str
    ts: pd.Timestamp  # funding time
    rate: float
    interval_hours: float = 8.0
    mark_price: float | None = None


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """Own funding settled at ``ts``: ``amount`` quote, + received / - paid = -qty x mark x rate."""

    symbol: str
    ts: pd.Timestamp
    amount: float
    rate: float
    position_qty: float
    mark_price: float


# ---- market events (what feeds emit and simulators consume) -------------------------------


@dataclass(frozen=True, slots=True)
class Bar:
    """An OHLCV bar labelled by its open time; it is *known* at ``ts + timeframe``."""

    ts: pd.Timestamp
    venue: str
    symbol: str
    kind: MarketKind
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0  # base units; 0 when unknown (mark series)
    timeframe: str = "1h"


@dataclass(frozen=True, slots=True)
class FundingEvent:
    """A funding settlement at ``ts`` on ``symbol`` (a perp) at ``rate`` per interval."""

    ts: pd.Timestamp
    venue: str
    symbol: str
    rate: float
    interval_hours: float = 8.0


MarketEvent = Bar | FundingEvent


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a computed artefact came from."""

    created_at: pd.Timestamp
    created_from: str  # "notebook", "cli", "panel", "test"
    code_version: str
    data_window: tuple[str, str] | None = None
    data_hash: str | None = None
    kpis: dict[str, float] = field(default_factory=dict)
