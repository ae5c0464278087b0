"""Parameters of the cross-venue funding carry (spot leg on one venue, perp leg on another).

:class:`CrossCarryParams` is the spot/perp carry (:class:`~hedge_core.params.models.CarryParams`:
notional, entry thresholds, hold, exits, rebalance, guards) with the two legs' venues and each
venue's own taker fee. The entry decision costs the round trip at BOTH venues' fees: opening and
closing each leg once at its own venue's fee plus slippage,
``2 x (spot_taker_fee + slippage) + 2 x (perp_taker_fee + slippage)``
(:class:`~hedge_core.exchange.costs.CostModel`; the scanner, :mod:`hedge_core.analytics.scanner`,
costs its rows the same way at the mean of the two fees, which is the same figure). The funding interval is the perp venue's (8h, 4h or 1h: ``MarketUpdate.funding_interval_hours``).

Not yet in the parameter store's strategy union (``params.models``/``params.validate``): build it in
code (``CrossCarryParams(...)``) or from a dict with ``CrossCarryParams.model_validate``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from hedge_core.exchange.costs import DEFAULT_SLIPPAGE, CostModel
from hedge_core.params.models import CarryParams

__all__ = ["CrossCarryParams"]


class CrossCarryParams(CarryParams):
    """Funding carry with the spot leg on ``spot_venue`` and the perp leg on ``perp_venue``."""

    strategy: Literal["xcarry"] = "xcarry"  # type: ignore[assignment]
    spot_venue: str = Field("binance", min_length=1, max_length=40, description="venue of the spot leg (lower case)")
    perp_venue: str = Field("bybit", min_length=1, max_length=40, description="venue of the perp leg (lower case)")
    spot_taker_fee: float = Field(0.001, ge=0, le=0.01, description="the spot venue's taker fee per fill (fraction; Binance spot VIP0 0.1 %)")
    perp_taker_fee: float = Field(0.00055, ge=0, le=0.01, description="the perp venue's taker fee per fill (fraction; Bybit perpetual VIP0 0.055 %)")
    exit_below_apr: float | None = Field(None, ge=-5, le=5, description="close when the perp venue's expected funding APR that the position receives falls below this (fraction per year); None = off (the generic exits still apply)")

    @model_validator(mode="after")
    def _two_venues(self) -> CrossCarryParams:
        if self.spot_venue.strip().lower() == self.perp_venue.strip().lower():
            raise ValueError(f"spot_venue={self.spot_venue!r} and perp_venue={self.perp_venue!r}: expected two "
                             "different venues (one venue: use strategy 'carry')")
        return self

    @property
    def leg_fee(self) -> float:
        """Mean of the two venues' taker fees (fraction): the one fee that prices the same round trip."""
        return (self.spot_taker_fee + self.perp_taker_fee) / 2.0

    def cost_model(self) -> CostModel:
        """The two venues' cost model: ``venue_costs`` when resolved from the paper venues
        (``backtest.xvenue``), else this set's ``spot_taker_fee`` / ``perp_taker_fee`` with
        :data:`~hedge_core.exchange.costs.DEFAULT_SLIPPAGE`."""
        if self.venue_costs is not None:
            return self.venue_costs
        return CostModel(self.spot_taker_fee, self.perp_taker_fee, DEFAULT_SLIPPAGE,
                         source=f"{self.spot_venue} spot / {self.perp_venue} perp (parameters)")

    def as_carry(self) -> CarryParams:
        """The same hedge as one-venue :class:`CarryParams` whose entry filter prices both venues'
        fees (``venue_costs`` = :meth:`cost_model`; a ``taker_fee`` override is kept)."""
        data = self.model_dump(exclude={"strategy", "spot_venue", "perp_venue", "spot_taker_fee", "perp_taker_fee",
                                        "exit_below_apr"})
        return CarryParams.model_validate(data).model_copy(update={"venue_costs": self.cost_model()})
