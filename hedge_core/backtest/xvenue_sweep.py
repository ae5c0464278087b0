"""Sweeps and walk-forward over the cross-venue carry (``xcarry``): the payload and the evaluator.

A cross-venue run needs the PERP VENUE's funding on the shared prices
(:func:`hedge_core.backtest.xvenue.cross_venue_market`), so a sweep that varies ``perp_venue`` needs
one replay timeline per perp venue. :class:`VenueTimelines` holds them, keyed by venue; the sweep
payload (:class:`hedge_core.backtest.sweep.Payload`) carries it in place of one timeline.
:class:`VenueMarkets` is the same for walk-forward (one market per perp venue, cut per fold).

:func:`evaluate_xvenue` is what :func:`hedge_core.backtest.sweep.evaluate_backtest` runs for ``xcarry``:
the fast path (:func:`hedge_core.backtest.fast.xvenue.fast_xvenue_kpis`, the hedge kernel fed both
venues' models) when it accepts the run, else the cross-venue backtest; both give the single run's
KPIs (:func:`hedge_core.backtest.xvenue.run_cross_venue_backtest` on the same timeline).
:func:`evaluate_event` is the event-path half (also used for a strategy without a fast kernel).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

import pandas as pd

from hedge_core.backtest.event import BacktestConfig
from hedge_core.backtest.timeline import Market, Timeline, build_timeline, utc
from hedge_core.backtest.xvenue import CrossVenueConfig, cross_venue_market, run_cross_venue_backtest
from hedge_core.errors import InvalidInput
from hedge_core.params.models import StrategyParamsBase
from hedge_core.params.xcarry import CrossCarryParams

__all__ = ["VenueMarkets", "VenueTimelines", "cross_venue_config", "evaluate_event", "evaluate_xvenue",
           "venue_markets"]


def _rebuild(cls: type, by_venue: dict) -> object:
    return cls(MappingProxyType(by_venue))


@dataclass(frozen=True)
class VenueTimelines:
    """Replay timelines of the same prices, each with one perp venue's funding (keyed by venue, lower case)."""

    by_venue: Mapping[str, Timeline]

    def for_venue(self, venue: str, field: str = "perp_venue") -> Timeline:
        """The timeline carrying ``venue``'s funding; InvalidInput naming ``field`` and the venues held when absent."""
        tl = self.by_venue.get(venue.strip().lower())
        if tl is None:
            raise InvalidInput(field, venue, f"a venue whose funding the sweep was given: {sorted(self.by_venue)}")
        return tl

    def __reduce__(self) -> tuple:
        # a mappingproxy does not pickle: worker processes started by a fork server receive a dict
        return (_rebuild, (type(self), dict(self.by_venue)))


@dataclass(frozen=True)
class VenueMarkets:
    """Markets of the same prices, each with one perp venue's funding (:func:`cross_venue_market`), keyed by venue."""

    by_venue: Mapping[str, Market]

    def __reduce__(self) -> tuple:
        return (_rebuild, (type(self), dict(self.by_venue)))

    def __post_init__(self) -> None:
        if not self.by_venue:
            raise InvalidInput("perp venues", (), "at least one perp venue's funding")

    @property
    def _any(self) -> Market:
        return next(iter(self.by_venue.values()))

    @property
    def first(self) -> pd.Timestamp:
        """First price bar (UTC); the prices are shared by every venue's market."""
        return self._any.first

    @property
    def last(self) -> pd.Timestamp:
        """End of the last price bar (UTC)."""
        return self._any.last

    def fold_builder(self, spec: object) -> Callable[[object, object], VenueTimelines]:
        """``build(start, end) -> VenueTimelines`` with each venue's analytics inputs computed once."""
        from hedge_core.analytics.inputs import market_inputs

        inputs = {v: market_inputs(m.spot, m.perp, mark=m.mark, funding=m.funding, spec=spec,  # type: ignore[arg-type]
                                   bar_seconds=m.bar.total_seconds()) for v, m in self.by_venue.items()}

        def build(start: object, end: object) -> VenueTimelines:
            return VenueTimelines(MappingProxyType({v: build_timeline(m, start=start, end=end, inputs=inputs[v])
                                                    for v, m in self.by_venue.items()}))
        return build

    def timelines(self, *, start: object | None = None, end: object | None = None,
                  config: BacktestConfig | CrossVenueConfig | None = None) -> VenueTimelines:
        """One replay window ``[start, end]`` (start default: first bar + the config's warm-up) for every venue."""
        cfg = config if config is not None else BacktestConfig()
        t0 = utc(start) if start is not None else self.first + cfg.warmup
        return VenueTimelines(MappingProxyType({v: build_timeline(m, start=t0, end=end, spec=cfg.spec)
                                                for v, m in self.by_venue.items()}))

    @classmethod
    def of(cls, market: Market | VenueMarkets) -> VenueMarkets:
        """``market`` itself, or one cross-venue market keyed by the venue its funding is from
        (``meta['funding_from']``, set by :func:`cross_venue_market`); InvalidInput otherwise.

        A pair market (``cross_venue_market(..., first_venue=...)``) gives TWO entries: the second venue's
        market and the first venue's (the same prices with ``meta['first_funding']`` as its funding)."""
        if isinstance(market, VenueMarkets):
            return market
        meta = getattr(market, "meta", {})
        venue = meta.get("funding_from")
        if not venue:
            raise InvalidInput("market", getattr(market, "venue", type(market).__name__),
                               "a cross-venue market (cross_venue_market / venue_markets): the perp venue's "
                               "funding must be named for an xcarry run")
        by = {str(venue).lower(): market}
        first, fund = meta.get("first_funding_from"), meta.get("first_funding")
        if first and fund is not None:  # two perp legs: the first venue's funding on the same prices
            by[str(first).lower()] = replace(market, funding=fund, meta={**meta, "funding_from": first})
        return cls(MappingProxyType(by))


def venue_markets(prices: Market, crossvenue: pd.DataFrame, perp_venues: Iterable[str],
                  pair: str | None = None) -> VenueMarkets:
    """``prices`` with each of ``perp_venues``' funding from the cross-venue frame (InvalidInput naming
    the series the frame holds when one is missing). Two perp legs: list the FIRST venues too (a pair
    sweep reads ``spot_venue``'s funding from the same :class:`VenueTimelines`)."""
    vs = [v.strip().lower() for v in perp_venues]
    if not vs:
        raise InvalidInput("perp_venues", vs, "at least one venue, e.g. ['bybit', 'okx']")
    return VenueMarkets(MappingProxyType({v: cross_venue_market(prices, crossvenue, perp_venue=v, pair=pair)
                                          for v in vs}))


def cross_venue_config(config: BacktestConfig | CrossVenueConfig | None, params: CrossCarryParams,
                       capital: float | None = None) -> CrossVenueConfig:
    """The cross-venue config of a sweep point: a :class:`CrossVenueConfig` as given, or a
    :class:`BacktestConfig`'s paper model on both venues, each with the params' fee for its leg
    (the default config gives exactly :class:`CrossVenueConfig`'s default venues)."""
    if isinstance(config, CrossVenueConfig):
        return config if capital is None else replace(config, capital=capital)
    cfg = config if config is not None else BacktestConfig()
    first = {"perp_taker_fee": params.first_perp_taker_fee} if params.perp_perp else {}  # A's perp fee (two perps)
    return CrossVenueConfig(hedge_id=cfg.hedge_id, spot_paper=replace(cfg.paper, spot_taker_fee=params.spot_taker_fee,
                                                                      **first),
                            perp_paper=replace(cfg.paper, perp_taker_fee=params.perp_taker_fee),
                            spot_usdt=cfg.spot_usdt, perp_usdt=cfg.perp_usdt,
                            capital=capital if capital is not None else cfg.capital, spec=cfg.spec, warmup=cfg.warmup)


def evaluate_event(params: StrategyParamsBase, timeline: Timeline | VenueTimelines,
                   config: BacktestConfig | CrossVenueConfig | None, capital: float | None = None) -> dict[str, float]:
    """KPIs of the event-driven run of ``params`` (the path of strategies without a fast kernel).

    ``xcarry``: the cross-venue backtest on the timeline of ``params.perp_venue`` (a bare
    :class:`Timeline` is refused: which venue's funding it carries is not known). Two perp legs
    (``legs = "perp_perp"``): the first leg settles the funding of ``params.spot_venue``'s timeline
    (InvalidInput naming ``spot_venue`` when the payload has none).
    Anything else: :func:`hedge_core.backtest.event.run_backtest` on ``timeline``.
    """
    if isinstance(params, CrossCarryParams):
        if not isinstance(timeline, VenueTimelines):
            raise InvalidInput("payload.timeline", type(timeline).__name__,
                               "VenueTimelines keyed by perp venue for an xcarry sweep "
                               "(VenueMarkets.timelines / venue_markets(...).timelines)")
        # two perp legs: the first leg's funding is the timeline of ITS venue (same prices, same instants)
        first = timeline.for_venue(params.spot_venue, "spot_venue") if params.perp_perp else None
        run = run_cross_venue_backtest(params, timeline.for_venue(params.perp_venue),
                                       config=cross_venue_config(config, params, capital), first_timeline=first)
        return dict(run.result.kpis)
    if isinstance(timeline, VenueTimelines):
        raise InvalidInput("payload.timeline", "VenueTimelines", f"one Timeline for strategy {params.strategy!r}")
    from hedge_core.backtest.event import run_backtest

    cfg = config if isinstance(config, BacktestConfig) else BacktestConfig()
    if capital is not None:
        cfg = replace(cfg, capital=capital)
    return dict(run_backtest(params, timeline, config=cfg, keep_timeline=False).kpis)


def evaluate_xvenue(params: StrategyParamsBase, timeline: Timeline | VenueTimelines,
                    config: BacktestConfig | CrossVenueConfig | None, capital: float | None = None, *,
                    prefer_fast: bool = True) -> dict[str, float]:
    """KPIs of a sweep point of ``xcarry`` (anything else: :func:`evaluate_event`), with ``_fast`` = 1.0
    when the fast path ran (:func:`hedge_core.backtest.fast.xvenue.fast_xvenue_kpis`) and 0.0 when it
    refused the run (or ``prefer_fast`` is off) and the cross-venue backtest ran. Same KPIs either way.
    A :class:`~hedge_core.backtest.xvenue_best_sweep.BestPerpTimelines` payload (``--best-perp``): the perp venue
    chosen at each entry (event path, ``_fast`` = 0.0)."""
    from hedge_core.backtest.xvenue_best_sweep import BestPerpTimelines, evaluate_best_perp

    if isinstance(timeline, BestPerpTimelines) and isinstance(params, CrossCarryParams):
        return {**evaluate_best_perp(params, timeline, config, capital), "_fast": 0.0}
    if prefer_fast and isinstance(params, CrossCarryParams) and isinstance(timeline, VenueTimelines):
        from hedge_core.backtest.fast import FastPathUnsupported
        from hedge_core.backtest.fast.xvenue import fast_xvenue_kpis

        cfg = cross_venue_config(config, params, capital)
        # two perp legs: the pair kernel, the first leg's funding from spot_venue's timeline (as evaluate_event)
        first = {"first_timeline": timeline.for_venue(params.spot_venue, "spot_venue")} if params.perp_perp else {}
        try:
            k = fast_xvenue_kpis(params, timeline.for_venue(params.perp_venue), config=cfg, capital=cfg.capital,
                                 **first)
            k["_fast"] = 1.0
            return k
        except FastPathUnsupported:
            pass
    k = evaluate_event(params, timeline, config, capital)
    k["_fast"] = 0.0
    return k
