"""Values shared by the Binance simulator's parts: its error, a market's filters, a forced fault, an order, number
formatting (Binance answers numbers as strings)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


class SimError(Exception):
    """Raised inside a handler: answered as Binance answers errors."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


@dataclass
class MarketSpec:
    """One symbol, listed on spot and on USD-M perps with the same filters."""

    base: str
    quote: str = "USDT"
    tick: str = "0.01"
    step: str = "0.001"
    min_qty: str = "0.001"
    min_notional: str = "5"  # spot NOTIONAL filter, quote
    perp_min_notional: str = "100"  # futures MIN_NOTIONAL filter, quote
    # USD-M filters when they differ from spot's (e.g. SOLUSDT: spot stepSize 0.001, USD-M stepSize 1);
    # None = the spot value. "Exchange Information", filters PRICE_FILTER / LOT_SIZE:
    # https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Exchange-Information
    perp_tick: str | None = None
    perp_step: str | None = None
    perp_min_qty: str | None = None
    # a USD-M DELIVERY contract (a quarterly; listed on USD-M only, never on spot): its ``deliveryDate`` (ms, 08:00
    # UTC) and ``contractType`` CURRENT_QUARTER | NEXT_QUARTER ("Exchange Information": contractType, deliveryDate;
    # symbol ``<pair>_<YYMMDD>``, e.g. BTCUSDT_210625). None = the perpetual of the pair
    delivery_ms: int | None = None
    contract_type: str = "PERPETUAL"

    @property
    def pair(self) -> str:
        """The underlying pair (``BTCUSDT``), the same for the perpetual and the quarterlies of the asset."""
        return f"{self.base}{self.quote}"

    @property
    def delivery(self) -> bool:
        """True for a delivery (dated) contract: USD-M only, no funding."""
        return self.delivery_ms is not None

    @property
    def id(self) -> str:
        if self.delivery_ms is None:
            return self.pair
        return f"{self.pair}_{time.strftime('%y%m%d', time.gmtime(self.delivery_ms / 1000))}"


@dataclass
class Fault:
    """A forced answer for the next ``count`` requests whose ``METHOD path`` matches ``pattern``."""

    pattern: str
    count: int
    status: int = 400
    code: int | None = None
    msg: str = ""
    hang: float = 0.0  # seconds to stall before answering
    after: bool = False  # hang AFTER applying the request (the answer is lost, the effect is not)
    raw: str | None = None  # raw body instead of {"code","msg"}


@dataclass
class _Order:
    market: str  # "spot" | "fapi"
    symbol: str
    order_id: int
    client_id: str
    side: str  # BUY | SELL
    type: str  # MARKET | LIMIT
    qty: float
    price: float
    time_in_force: str
    reduce_only: bool
    position_side: str
    time: int
    update_time: int
    status: str = "NEW"
    executed: float = 0.0
    cum_quote: float = 0.0
    fills: list[dict[str, Any]] = field(default_factory=list)

    @property
    def avg(self) -> float:
        return self.cum_quote / self.executed if self.executed else 0.0


def _s(x: float) -> str:
    """Binance answers numbers as strings."""
    return f"{x:.8f}".rstrip("0").rstrip(".") if x != int(x) or abs(x) < 1e15 else str(x)


def _fmt(x: float) -> str:
    out = f"{x:.10f}".rstrip("0").rstrip(".")
    return out if out not in ("", "-0") else "0"
