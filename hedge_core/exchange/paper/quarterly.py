"""A simulated dated (quarterly) future on the paper venue, for the calendar roll (docs/calendar-roll.md).

The stored market data has no dated-future series, so the paper venue derives one: a :class:`PaperQuarterly`
names the contract (ccxt's unified symbol ``BASE/QUOTE:SETTLE-YYMMDD``), its expiry and an annualised basis;
each bar of the spot ``BASE/QUOTE`` yields a bar of the future at ``spot x (1 + basis_apr x days left / 365)``
(:func:`hedge_core.analytics.funding.future_price_at_basis`), so the basis converges to 0 at expiry the way
OKX's FUTURES do (delivery at 08:00 UTC on the expiry date: https://www.okx.com/help/iv-introduction-to-
expiry-futures). The contract trades like the venue's perp of the asset (same limits, margin and brackets)
but pays no funding (funding events name the perpetual). The engine leaves it ``roll.exit_days`` before
expiry; a position still held at expiry is DELIVERED (:mod:`hedge_core.exchange.paper.delivery`: closed at the
delivery price with the contract's ``delivery_fee_rate``), and an order on it at or after expiry is refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from hedge_core.analytics.funding import future_price_at_basis
from hedge_core.errors import InvalidInput
from hedge_core.types import Bar, Instrument, MarketKind

__all__ = ["PaperQuarterly", "quarterly_bars", "quarterly_instruments"]

_SYMBOL = re.compile(r"^([A-Z0-9]+)/([A-Z0-9]+):([A-Z0-9]+)-(\d{6})$")


@dataclass(frozen=True)
class PaperQuarterly:
    """One simulated dated future.

    Attributes
    ----------
    symbol : str
        ccxt unified symbol ``BASE/QUOTE:SETTLE-YYMMDD`` (e.g. ``BTC/USDT:USDT-261225``).
    expiry : pd.Timestamp
        Delivery time, tz-aware UTC.
    basis_apr : float
        Simple annualised basis of the future over spot, fraction per year in (-1, 1) (0.08 = 8 %).
    delivery_fee_rate : float
        Fee charged at delivery, fraction of the delivered notional (``qty x delivery price``) in [0, 0.01];
        default 0 (Binance's USD-M delivery rules name no delivery fee; Bybit lists one per contract as
        ``deliveryFeeRate``).
    """

    symbol: str
    expiry: pd.Timestamp
    basis_apr: float
    delivery_fee_rate: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not _SYMBOL.match(self.symbol):
            raise InvalidInput("paper_quarterly.symbol", self.symbol, "a ccxt dated-future symbol BASE/QUOTE:SETTLE-YYMMDD")
        try:
            exp = pd.Timestamp(self.expiry)
        except (TypeError, ValueError):
            raise InvalidInput("paper_quarterly.expiry", self.expiry, "an ISO UTC timestamp") from None
        if exp.tzinfo is None:
            raise InvalidInput("paper_quarterly.expiry", self.expiry, "a tz-aware UTC timestamp (e.g. 2026-12-25T08:00Z)")
        object.__setattr__(self, "expiry", exp.tz_convert("UTC"))
        b = self.basis_apr
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not (math.isfinite(b) and -1 < b < 1):
            raise InvalidInput("paper_quarterly.basis_apr", b, "an annualised fraction in (-1, 1)")
        object.__setattr__(self, "basis_apr", float(b))
        r = self.delivery_fee_rate
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not (math.isfinite(r) and 0 <= r <= 0.01):
            raise InvalidInput("paper_quarterly.delivery_fee_rate", r, "a fraction of the notional in [0, 0.01]")
        object.__setattr__(self, "delivery_fee_rate", float(r))

    @property
    def base(self) -> str:
        return _SYMBOL.match(self.symbol).group(1)  # type: ignore[union-attr]

    @property
    def quote(self) -> str:
        return _SYMBOL.match(self.symbol).group(2)  # type: ignore[union-attr]

    @property
    def spot_symbol(self) -> str:
        return f"{self.base}/{self.quote}"

    def to_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "expiry": self.expiry.isoformat(), "basis_apr": self.basis_apr,
                "delivery_fee_rate": self.delivery_fee_rate}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PaperQuarterly:
        extra = set(d) - {"symbol", "expiry", "basis_apr", "delivery_fee_rate"}
        if extra:
            raise InvalidInput("paper_quarterly", sorted(extra), "only the keys symbol, expiry, basis_apr, "
                               "delivery_fee_rate")
        missing = {"symbol", "expiry", "basis_apr"} - set(d)
        if missing:
            raise InvalidInput("paper_quarterly", sorted(missing), "the keys symbol, expiry and basis_apr")
        return cls(d["symbol"], d["expiry"], d["basis_apr"], d.get("delivery_fee_rate", 0.0))


def quarterly_instruments(quarterlies: Iterable[PaperQuarterly], instruments: Iterable[Instrument]) -> tuple[Instrument, ...]:
    """The instrument of each quarterly not listed yet: the venue's perp of the same base and quote
    (``BASE/QUOTE:QUOTE``) under the quarterly's symbol. InvalidInput when that perp is missing."""
    by_symbol = {i.symbol: i for i in instruments}
    out = []
    for q in quarterlies:
        if q.symbol in by_symbol:
            continue
        perp = by_symbol.get(f"{q.spot_symbol}:{q.quote}")
        if perp is None or perp.kind is not MarketKind.PERP:
            raise InvalidInput("paper_quarterly.symbol", q.symbol, f"a future of an asset whose perp "
                               f"{q.spot_symbol}:{q.quote} the paper venue trades")
        out.append(replace(perp, symbol=q.symbol))
    return tuple(out)


def quarterly_bars(quarterlies: Iterable[PaperQuarterly], bar: Bar, tf: pd.Timedelta) -> list[Bar]:
    """The quarterlies' bars derived from one SPOT bar of their asset (others: none). Each price of the bar is
    scaled by the same factor, taken at the bar's known time ``bar.ts + tf``."""
    if bar.kind is not MarketKind.SPOT:
        return []
    out = []
    for q in quarterlies:
        if q.spot_symbol != bar.symbol:
            continue
        k = future_price_at_basis(1.0, q.basis_apr, q.expiry, bar.ts + tf)
        out.append(Bar(ts=bar.ts, venue=bar.venue, symbol=q.symbol, kind=MarketKind.PERP, open=bar.open * k,
                       high=bar.high * k, low=bar.low * k, close=bar.close * k, volume=bar.volume,
                       timeframe=bar.timeframe))
    return out
