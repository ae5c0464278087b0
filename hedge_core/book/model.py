"""Typed inputs and outputs of the book.

A :class:`HedgePosition` is what the book needs of one hedge (plain numbers: a runner summary,
a notebook or a test builds it); a :class:`BookSnapshot` is the aggregate. Signs: quantities
are signed base units (long > 0, short < 0); money is quote currency (USDT); funding received
is positive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from hedge_core.errors import InvalidInput

__all__ = ["AssetRow", "BookSnapshot", "HedgePosition", "LoanRow", "NettedRow", "VenueRow", "asset_of",
           "from_summary"]


def asset_of(symbol: str) -> str:
    """The base asset of a ccxt unified symbol: ``"BTC/USDT:USDT"`` -> ``"BTC"``."""
    base = str(symbol).split("/", 1)[0].strip().upper()
    if not base:
        raise InvalidInput("symbol", symbol, "a ccxt unified symbol such as 'BTC/USDT' or 'BTC/USDT:USDT'")
    return base


def _finite(name: str, v: float, *, positive: bool = False, nan_ok: bool = False) -> float:
    x = float(v)
    if math.isnan(x) and nan_ok:
        return x
    if not math.isfinite(x) or (positive and x < 0):
        raise InvalidInput(name, v, "a finite number" + (" >= 0" if positive else "")
                           + (" (NaN when unknown)" if nan_ok else ""))
    return x


@dataclass(frozen=True, slots=True)
class HedgePosition:
    """One hedge as the book sees it.

    Parameters
    ----------
    hedge_id, venue, asset
        Identity; ``asset`` is the spot leg's base currency (``BTC``), ``venue`` the account the spot
        leg (and, unless ``perp_venue`` says otherwise, the perp leg) sits on.
    perp_asset, perp_venue
        The perp leg's base currency and venue when they differ from the spot leg's (a cross hedge:
        ETH spot against a BTC perp; legs on two venues); "" = the same as ``asset`` / ``venue``.
        The perp's quantity, value, margin and liquidation count under them.
    spot_qty, perp_qty
        Signed base units (a carry is long spot, short perp: ``spot_qty > 0 > perp_qty``).
    spot_price, mark_price
        Quote per base; ``mark_price`` is the perp's mark (NaN when unknown: the spot price is used).
    leverage
        Perp leverage (> 0); the perp's initial margin is ``|perp_qty| x mark / leverage``.
    liq_price
        Liquidation price of the perp leg (quote per base; NaN when flat or unknown).
    funding
        Funding earned over the hedge's life (quote, + received).
    pnl, day_pnl
        Net PnL of the hedge since it started, and since the start of its current UTC day (quote).
    loan_outstanding, collateral_qty
        A loan against the spot leg (quote owed, base pledged); 0 when the hedge has no loan.
    """

    hedge_id: str
    venue: str
    asset: str
    spot_qty: float = 0.0
    perp_qty: float = 0.0
    spot_price: float = math.nan
    mark_price: float = math.nan
    leverage: float = 1.0
    liq_price: float = math.nan
    funding: float = 0.0
    pnl: float = 0.0
    day_pnl: float = 0.0
    loan_outstanding: float = 0.0
    collateral_qty: float = 0.0
    perp_asset: str = ""
    perp_venue: str = ""

    @property
    def perp_asset_(self) -> str:
        """The perp leg's base currency (``perp_asset``, else ``asset``)."""
        return self.perp_asset or self.asset

    @property
    def perp_venue_(self) -> str:
        """The venue the perp leg sits on (``perp_venue``, else ``venue``)."""
        return self.perp_venue or self.venue

    def __post_init__(self) -> None:
        for f in ("spot_qty", "perp_qty", "funding", "pnl", "day_pnl"):
            _finite(f, getattr(self, f))
        for f in ("spot_price", "mark_price", "liq_price"):
            _finite(f, getattr(self, f), positive=True, nan_ok=True)
        for f in ("loan_outstanding", "collateral_qty"):
            _finite(f, getattr(self, f), positive=True)
        if not (math.isfinite(self.leverage) and self.leverage > 0):
            raise InvalidInput("leverage", self.leverage, "a finite number > 0")
        if not self.venue or not self.asset:
            raise InvalidInput("venue" if not self.venue else "asset", "", "a non-empty name")

    @property
    def perp_price(self) -> float:
        """Price of the perp leg (quote per base): the mark, else the spot price, else NaN."""
        return self.mark_price if self.mark_price > 0 else self.spot_price

    @property
    def margin_used(self) -> float:
        """Initial margin of the perp leg (quote): ``|perp_qty| x perp_price / leverage``; 0 when flat."""
        px = self.perp_price
        return abs(self.perp_qty) * px / self.leverage if self.perp_qty and px > 0 else 0.0


@dataclass(frozen=True, slots=True)
class AssetRow:
    """Net delta of one asset across every hedge and venue.

    ``delta`` = sum(spot_qty) + sum(perp_qty) in base units (a long perp adds, a short perp
    subtracts); ``delta_quote`` = ``delta x price`` (quote), ``price`` the notional-weighted
    spot price of the asset's hedges.
    """

    asset: str
    spot_qty: float
    perp_qty: float
    delta: float
    price: float
    delta_quote: float
    hedges: int


@dataclass(frozen=True, slots=True)
class VenueRow:
    """Exposure and margin of one venue account (quote).

    ``gross`` = sum(|spot_qty| x spot_price + |perp_qty| x perp_price); ``net`` the same with
    signed quantities; ``margin_used`` the sum of the hedges' perp initial margins (what the venue
    holds: each hedge is its own isolated position); ``margin_netted`` the margin the venue's
    perps would need netted per asset (see :class:`NettedRow`); ``liq_distance`` the nearest
    liquidation on the venue as a fraction of its mark (0.2 = a 20 % adverse move; NaN: no perp),
    ``liq_hedge`` the hedge it belongs to.
    """

    venue: str
    gross: float
    net: float
    margin_used: float
    margin_netted: float
    liq_distance: float
    liq_hedge: str
    hedges: int


@dataclass(frozen=True, slots=True)
class NettedRow:
    """Hedges on the same asset AND venue, netted (issue 15 item 5).

    ``perp_qty`` is the net perp position (base); ``mark`` the |qty|-weighted mark;
    ``margin_netted`` = ``|perp_qty| x mark x imr`` (quote) with ``imr`` = ``margin_gross /
    sum(|qty| x mark)``, the notional-weighted initial-margin rate ``1/leverage`` of the hedges;
    ``margin_gross`` the sum of their own margins. Never above ``margin_gross``. ``margin_gross -
    margin_netted`` is what netting would free.
    """

    asset: str
    venue: str
    spot_qty: float
    perp_qty: float
    delta: float
    mark: float
    margin_gross: float
    margin_netted: float
    hedges: int


@dataclass(frozen=True, slots=True)
class LoanRow:
    """A loan against a hedge's spot leg: ``ltv = outstanding / (collateral_qty x spot_price)``."""

    hedge_id: str
    venue: str
    asset: str
    outstanding: float
    collateral_value: float
    ltv: float


@dataclass(frozen=True)
class BookSnapshot:
    """The whole book at one moment. Totals in quote; see docs/book.md for every number."""

    assets: tuple[AssetRow, ...]
    venues: tuple[VenueRow, ...]
    netted: tuple[NettedRow, ...]
    loans: tuple[LoanRow, ...]
    hedges: int
    gross: float
    net: float
    margin_used: float
    pnl: float
    day_pnl: float
    funding: float
    funding_per_day: tuple[tuple[str, float], ...] = ()  # (UTC date "YYYY-MM-DD", quote received)
    book_ltv: float = math.nan  # sum(outstanding) / sum(collateral value); NaN without loans
    drawdown: float = 0.0  # peak book PnL - current book PnL (quote, >= 0)
    max_drawdown: float = 0.0  # the largest drawdown seen in the PnL history given (quote, >= 0)
    var: Mapping[str, Any] = field(default_factory=dict)  # see hedge_core.book.var.book_var
    guards: tuple[Mapping[str, Any], ...] = ()  # book guards firing now (hedge_core.book.guards)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN -> None is left to the JSON layer)."""
        out = asdict(self)
        out["var"] = dict(self.var)
        out["guards"] = [dict(g) for g in self.guards]
        out["funding_per_day"] = [{"day": d, "amount": a} for d, a in self.funding_per_day]
        return out


def _num(x: Any, default: float = math.nan) -> float:
    if x is None:
        return default
    try:
        v = float(x)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) else default


def from_summary(s: Mapping[str, Any]) -> HedgePosition:
    """A :class:`HedgePosition` from a runner hedge summary (``GET /hedges`` row)."""
    loan = s.get("loan") or {}
    spot_sym, perp_sym = str(s.get("spot_symbol") or ""), str(s.get("perp_symbol") or "")
    asset = asset_of(spot_sym or perp_sym)
    perp_asset = asset_of(perp_sym) if perp_sym else asset
    venue = str(s.get("venue") or "unknown")
    perp_venue = str(s.get("perp_venue") or venue)
    return HedgePosition(
        hedge_id=str(s.get("hedge_id", "")), venue=venue, asset=asset,
        perp_asset=perp_asset if perp_asset != asset else "", perp_venue=perp_venue if perp_venue != venue else "",
        spot_qty=_num(s.get("spot_qty"), 0.0), perp_qty=_num(s.get("perp_qty"), 0.0),
        spot_price=_num(s.get("spot_price")), mark_price=_num(s.get("mark_price")),
        leverage=_num(s.get("leverage"), 1.0) or 1.0, liq_price=_num(s.get("liq_price")),
        funding=_num(s.get("funding"), 0.0), pnl=_num(s.get("pnl"), 0.0), day_pnl=_num(s.get("day_pnl"), 0.0),
        loan_outstanding=_num(loan.get("outstanding"), 0.0), collateral_qty=_num(loan.get("collateral_qty"), 0.0))
