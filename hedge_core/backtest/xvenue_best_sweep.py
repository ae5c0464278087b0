"""Sweeps of a cross-venue carry whose perp venue is chosen at EACH ENTRY (``hedge sweep --best-perp``).

A sweep point of an ``xcarry`` set normally runs on its single ``perp_venue``
(:func:`hedge_core.backtest.xvenue_sweep.evaluate_xvenue`). With ``--best-perp`` the sweep's payload carries a
:class:`BestPerpTimelines`: one replay timeline per allowed perp venue (the same prices, each venue's own
funding) and each venue's perp taker fee. Every point then runs
:func:`hedge_core.backtest.xvenue_best.run_best_perp_backtest` (through ``run_cross_venue_backtest(...,
perp_markets=..., perp_papers=...)``, the function ``hedge backtest --best-perp`` runs): the venue is chosen
among the POINT's allowed venues (``perp_venue`` and ``perp_venues``) at each entry from flat, by walked paper
book and that venue's fee. So a sweep point equals the single ``hedge backtest --best-perp`` run with the same
parameters, window and fees (``tests/test_xvenue_best_sweep.py``).

Walk-forward (:func:`hedge_core.backtest.sweep.walk_forward` with ``best_perp=True``, or a
:class:`BestPerpMarkets` market): every fold's train and test windows are :class:`BestPerpTimelines`, so each
point of a fold, and the fold's test run, chooses its perp venue at each entry as above; a fold's test KPIs equal
the single ``--best-perp`` run of the chosen point on the fold's test window.

The per-entry choice has no fast kernel: every point runs the event path (``_fast`` = 0.0).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from hedge_core.backtest.event import BacktestConfig
from hedge_core.backtest.xvenue import CrossVenueConfig, _venue_config, run_cross_venue_backtest
from hedge_core.backtest.xvenue_sweep import VenueMarkets, VenueTimelines, cross_venue_config
from hedge_core.errors import InvalidInput
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.params.xcarry import CrossCarryParams

__all__ = ["BestPerpMarkets", "BestPerpTimelines", "evaluate_best_perp", "perp_papers"]


def _rebuild(by_venue: dict[str, Any], fees: dict[str, float]) -> BestPerpTimelines:
    return BestPerpTimelines(MappingProxyType(by_venue), MappingProxyType(fees))


@dataclass(frozen=True)
class BestPerpTimelines(VenueTimelines):
    """Timelines keyed by perp venue (as :class:`VenueTimelines`) for a sweep choosing the perp venue per entry.

    Attributes
    ----------
    by_venue : mapping venue -> Timeline
        Every perp venue a point may allow, each with that venue's funding on the shared prices.
    fees : mapping venue -> float
        A venue's perp taker fee (fraction per fill, ``--perp-fee VENUE=FRACTION``); a venue without one is
        charged the point's ``perp_taker_fee``.
    """

    fees: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        _checked_fees(self.fees)

    def __reduce__(self) -> tuple:
        # a mappingproxy does not pickle: worker processes receive dicts
        return (_rebuild, (dict(self.by_venue), dict(self.fees)))


def _rebuild_markets(by_venue: dict[str, Any], fees: dict[str, float]) -> BestPerpMarkets:
    return BestPerpMarkets(MappingProxyType(by_venue), MappingProxyType(fees))


def _checked_fees(fees: Mapping[str, float]) -> None:
    for v, f in fees.items():
        if isinstance(f, bool) or not (isinstance(f, (int, float)) and 0.0 <= float(f) <= 0.01):
            raise InvalidInput(f"fees.{v}", f, "a perp taker fee in [0, 0.01] (fraction per fill)")


@dataclass(frozen=True)
class BestPerpMarkets(VenueMarkets):
    """Markets keyed by perp venue (as :class:`~hedge_core.backtest.xvenue_sweep.VenueMarkets`) whose windows are
    :class:`BestPerpTimelines`: a walk-forward over them chooses the perp venue at each entry in every fold.

    Attributes
    ----------
    by_venue : mapping venue -> Market
        Every perp venue a point may allow, each with that venue's funding on the shared prices.
    fees : mapping venue -> float
        A venue's perp taker fee (fraction per fill, in [0, 0.01]); a venue without one is charged the point's
        ``perp_taker_fee``.
    """

    fees: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        super().__post_init__()
        _checked_fees(self.fees)

    def __reduce__(self) -> tuple:
        return (_rebuild_markets, (dict(self.by_venue), dict(self.fees)))

    def fold_builder(self, spec: object) -> Callable[[object, object], BestPerpTimelines]:
        """``build(start, end) -> BestPerpTimelines`` (each venue's analytics inputs computed once)."""
        inner = super().fold_builder(spec)

        def build(start: object, end: object) -> BestPerpTimelines:
            return BestPerpTimelines(inner(start, end).by_venue, self.fees)
        return build

    def timelines(self, *, start: object | None = None, end: object | None = None,
                  config: BacktestConfig | CrossVenueConfig | None = None) -> BestPerpTimelines:
        """One replay window of every venue, as :meth:`VenueMarkets.timelines`, with the fees."""
        return BestPerpTimelines(super().timelines(start=start, end=end, config=config).by_venue, self.fees)


def perp_papers(params: CrossCarryParams, perp_paper: PaperConfig, fees: Mapping[str, float]) -> dict[str, PaperConfig]:
    """Each allowed perp venue's paper model: ``perp_paper`` on that venue with its fee (``fees``, else the set's
    ``perp_taker_fee``), as ``hedge backtest --best-perp`` builds them (``backtest.cli.best_perp_inputs``)."""
    return {v: _venue_config(replace(perp_paper, perp_taker_fee=float(fees.get(v, params.perp_taker_fee))), v, {})
            for v in params.allowed_perp_venues}


def evaluate_best_perp(params: CrossCarryParams, timelines: BestPerpTimelines,
                       config: BacktestConfig | CrossVenueConfig | None,
                       capital: float | None = None) -> dict[str, float]:
    """KPIs of one sweep point whose perp venue is chosen at each entry among ``params.allowed_perp_venues``.

    Raises InvalidInput naming ``perp_venues`` when the set allows fewer than two venues, or a venue the
    payload holds no timeline for (the venues it holds listed).
    """
    allowed = params.allowed_perp_venues
    if params.perp_perp or len(allowed) < 2:
        raise InvalidInput("perp_venues", list(allowed), "an xcarry spot_perp set naming several perp venues "
                           "(perp_venue, perp_venues) to choose among per entry (--best-perp)")
    missing = [v for v in allowed if v not in timelines.by_venue]
    if missing:
        raise InvalidInput("perp_venues", missing, f"venues whose funding the sweep was given: "
                           f"{sorted(timelines.by_venue)}")
    cfg = cross_venue_config(config, params, capital)
    run = run_cross_venue_backtest(params, timelines.for_venue(params.perp_venue), config=cfg,
                                   perp_markets={v: timelines.by_venue[v] for v in allowed},
                                   perp_papers=perp_papers(params, cfg.perp_paper, timelines.fees))
    return dict(run.result.kpis)
