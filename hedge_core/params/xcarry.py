"""Parameters of the cross-venue funding carry (spot leg on one venue, perp leg on another).

:class:`CrossCarryParams` is the spot/perp carry (:class:`~hedge_core.params.models.CarryParams`:
notional, entry thresholds, hold, exits, rebalance, guards) with the two legs' venues and each
venue's own taker fee. The entry decision costs the round trip at BOTH venues' fees: opening and
closing each leg once at its own venue's fee plus slippage,
``2 x (spot_taker_fee + slippage) + 2 x (perp_taker_fee + slippage)``
(:class:`~hedge_core.exchange.costs.CostModel`; the scanner, :mod:`hedge_core.analytics.scanner`,
costs its rows the same way at the mean of the two fees, which is the same figure). The funding interval is the perp venue's (8h, 4h or 1h: ``MarketUpdate.funding_interval_hours``).

Two perp legs (``legs = "perp_perp"``; Hummingbot's funding-rate arbitrage): the FIRST leg is a perp on
``spot_venue`` (read it as "the first leg's venue") and the second a perp on ``perp_venue``. At entry the
hedge goes LONG the perp on the venue whose funding APR is lower and SHORT on the higher one (which of the
two is long is decided by the spread's sign and named in the entry reason); ``first_perp_taker_fee`` is the
first venue's perp fee (``spot_taker_fee`` is not used). The entry prices the funding SPREAD, each rate
annualised at its own venue's settlement interval, against the round trip at both venues' perp fees
(:func:`hedge_core.engine.strategies.xcarry.decide_perp_perp`).

The parameter store (:mod:`hedge_core.params.store`, ``hedge params``) reads, saves and promotes it
like the others (``strategy = "xcarry"``: :func:`hedge_core.params.validate.parse`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from hedge_core.exchange.costs import DEFAULT_SLIPPAGE, CostModel
from hedge_core.params.models import CarryParams

__all__ = ["CrossCarryParams"]


class CrossCarryParams(CarryParams):
    """Funding carry with the first leg on ``spot_venue`` and the perp leg on ``perp_venue``.

    ``legs = "spot_perp"`` (default): the first leg is spot. ``legs = "perp_perp"``: the first leg is a
    PERP on ``spot_venue``; the hedge is long the perp where funding is lower, short where it is higher.
    """

    strategy: Literal["xcarry"] = "xcarry"  # type: ignore[assignment]
    legs: Literal["spot_perp", "perp_perp"] = Field("spot_perp", description="spot_perp: spot on spot_venue, perp on perp_venue. perp_perp: a perp on EACH venue (the first on spot_venue), long the perp where funding is lower, short where it is higher (decided at entry from the funding spread)")
    spot_venue: str = Field("binance", min_length=1, max_length=40, description="venue of the FIRST leg (lower case): the spot leg, or with legs=perp_perp the first perp leg")
    perp_venue: str = Field("bybit", min_length=1, max_length=40, description="venue of the perp leg, the second leg (lower case)")
    first_perp_taker_fee: float = Field(0.0005, ge=0, le=0.01, description="legs=perp_perp only: the first venue's (spot_venue's) PERP taker fee per fill (fraction; Binance USD-M VIP0 0.05 %); spot_taker_fee is then unused")
    spot_taker_fee: float = Field(0.001, ge=0, le=0.01, description="the spot venue's taker fee per fill (fraction; Binance spot VIP0 0.1 %)")
    perp_taker_fee: float = Field(0.00055, ge=0, le=0.01, description="the perp venue's taker fee per fill (fraction; Bybit perpetual VIP0 0.055 %)")
    perp_venues: tuple[str, ...] = Field((), max_length=10, description="other perp venues this set allows: the perp leg's venue may be chosen among perp_venue and these by price, fee and depth when the hedge starts and at each entry from flat in paper replays, live and recommend (hedge_core.exchange.best_venue); empty = perp_venue only. Backtests and sweeps use perp_venue unless run with --best-perp")
    exit_below_apr: float | None = Field(None, ge=-5, le=5, description="close when the perp venue's expected funding APR that the position receives falls below this (fraction per year); None = off (the generic exits still apply)")

    @model_validator(mode="after")
    def _two_venues(self) -> CrossCarryParams:
        if self.spot_venue.strip().lower() == self.perp_venue.strip().lower():
            raise ValueError(f"spot_venue={self.spot_venue!r} and perp_venue={self.perp_venue!r}: expected two "
                             "different venues (one venue: use strategy 'carry')")
        for v in self.perp_venues:
            if not v or v != v.strip().lower() or len(v) > 40:
                raise ValueError(f"perp_venues: {v!r}: expected lower-case venue names of 1-40 characters")
            if v == self.spot_venue.strip().lower():
                raise ValueError(f"perp_venues: {v!r} is the spot venue: expected venues other than "
                                 f"spot_venue={self.spot_venue!r}")
        if len(set(self.perp_venues)) != len(self.perp_venues):
            raise ValueError(f"perp_venues: {list(self.perp_venues)}: expected each venue once")
        if self.legs == "perp_perp" and self.perp_venues:
            raise ValueError(f"perp_venues: {list(self.perp_venues)} with legs='perp_perp': expected () (choosing the "
                             "second venue by book price is built for a spot first leg only)")
        return self

    @property
    def perp_perp(self) -> bool:
        """True when both legs are perps (``legs = "perp_perp"``)."""
        return self.legs == "perp_perp"

    @property
    def first_leg_fee(self) -> float:
        """The first leg's taker fee (fraction): ``first_perp_taker_fee`` for two perp legs, else ``spot_taker_fee``."""
        return self.first_perp_taker_fee if self.perp_perp else self.spot_taker_fee

    def long_short_venues(self, first_apr: float, second_apr: float) -> tuple[str, str]:
        """(long venue, short venue) of a perp pair at these funding APRs (fraction per year, + longs pay):
        long where funding is LOWER. Ties go long on the first venue."""
        a, b = self.spot_venue.strip().lower(), self.perp_venue.strip().lower()
        return (a, b) if first_apr <= second_apr else (b, a)

    @property
    def allowed_perp_venues(self) -> tuple[str, ...]:
        """``perp_venue`` then ``perp_venues`` (each once, lower case): where the perp leg may go."""
        out = [self.perp_venue.strip().lower()]
        out += [v for v in self.perp_venues if v not in out]
        return tuple(out)

    def check_legs(self, spot_venue: str, perp_venue: str) -> None:
        """InvalidInput unless a hedge's legs sit where this set says: the spot leg on ``spot_venue``,
        the perp leg on one of :attr:`allowed_perp_venues` (the runner checks a hedge's venues with it)."""
        from hedge_core.errors import InvalidInput

        if spot_venue.strip().lower() != self.spot_venue.strip().lower():
            raise InvalidInput("venue", spot_venue, f"the set's spot_venue {self.spot_venue!r} (an xcarry set names "
                                                    "its spot venue)")
        if perp_venue.strip().lower() not in self.allowed_perp_venues:
            raise InvalidInput("perp_venue", perp_venue, f"one of the set's perp venues {list(self.allowed_perp_venues)}")

    @property
    def leg_fee(self) -> float:
        """Mean of the two venues' taker fees (fraction): the one fee that prices the same round trip."""
        return (self.first_leg_fee + self.perp_taker_fee) / 2.0

    def cost_model(self) -> CostModel:
        """The two venues' cost model (its ``spot_taker_fee`` is the FIRST leg's fee: :attr:`first_leg_fee`): ``venue_costs`` when resolved from the paper venues
        (``backtest.xvenue``), else this set's ``spot_taker_fee`` / ``perp_taker_fee`` with
        :data:`~hedge_core.exchange.costs.DEFAULT_SLIPPAGE`."""
        if self.venue_costs is not None:
            return self.venue_costs
        first = "perp" if self.perp_perp else "spot"
        return CostModel(self.first_leg_fee, self.perp_taker_fee, DEFAULT_SLIPPAGE,
                         source=f"{self.spot_venue} {first} / {self.perp_venue} perp (parameters)")

    def as_carry(self) -> CarryParams:
        """The same hedge as one-venue :class:`CarryParams` whose entry filter prices both venues'
        fees (``venue_costs`` = :meth:`cost_model`; a ``taker_fee`` override is kept)."""
        data = self.model_dump(exclude={"strategy", "spot_venue", "perp_venue", "spot_taker_fee", "perp_taker_fee",
                                        "perp_venues", "exit_below_apr", "legs", "first_perp_taker_fee"})
        return CarryParams.model_validate(data).model_copy(update={"venue_costs": self.cost_model()})
