"""The cross-venue carry (``xcarry``) on the fast path: two paper venues as the hedge kernel's venue model.

The hedge kernel keeps the spot wallet and the perp wallet apart, each with its own taker fee, and
moves no money between them: that is what two venues are when nothing is transferred, and the
cross-venue backtest (:func:`hedge_core.backtest.xvenue.run_cross_venue_backtest`) transfers
nothing. So a cross-venue run is the hedge kernel (the carry's branch plus ``exit_below_apr``) with
ONE venue model assembled from the two (:func:`two_venue_paper`): the spot instrument and spot taker
fee of the spot venue A; the perp instrument, bracket table, perp taker fee, margin and
liquidation of the perp venue B. The funding is B's (the timeline of
:func:`~hedge_core.backtest.xvenue.cross_venue_market`). The entry filter prices the round trip at
both venues' fees (:func:`hedge_core.exchange.costs.from_paper` of A and B), as the event path does.

Each leg fills at its own venue's fixed slippage and impact coefficient (``money.slippage_bps`` on its
bar's volume, as each ``PaperCore``): the spot venue's travel to the kernel as the record's
``s_slippage_bps`` / ``s_impact_k_bps`` (``pack_hedge(..., spot_paper=A)``). A spot venue with a
participation cap or slippage noise is refused (the perp venue's are refused by
:func:`~.scope.check_supported`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hedge_core.backtest.event import BacktestConfig
from hedge_core.backtest.fast.run import FastResult, fast_kpis, run_fast
from hedge_core.backtest.fast.scope import FastPathUnsupported
from hedge_core.backtest.timeline import Market, Timeline
from hedge_core.backtest.xvenue import CrossVenueConfig, _venue_config
from hedge_core.errors import InvalidInput
from hedge_core.exchange.costs import CostModel, from_paper
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.params.xcarry import CrossCarryParams

__all__ = ["fast_xvenue_kpis", "run_fast_xvenue", "two_venue_paper", "venue_papers"]


def venue_papers(params: CrossCarryParams, config: CrossVenueConfig) -> tuple[PaperConfig, PaperConfig]:
    """The spot venue's and the perp venue's paper models, as the cross-venue backtest builds them
    (``config.spot_paper`` / ``perp_paper``, or the default model renamed with the params' fee)."""
    a = _venue_config(config.spot_paper, params.spot_venue, {"spot_taker_fee": params.spot_taker_fee})
    b = _venue_config(config.perp_paper, params.perp_venue, {"perp_taker_fee": params.perp_taker_fee})
    return a, b


def two_venue_paper(spot: PaperConfig, perp: PaperConfig, spot_symbol: str) -> PaperConfig:
    """One venue model for the hedge kernel: ``perp`` with ``spot``'s spot instrument and spot taker fee
    (the spot leg's slippage model is passed apart: ``run_fast(..., spot_paper=spot)``).

    Raises
    ------
    FastPathUnsupported
        The spot venue has a participation cap or slippage noise.
    InvalidInput
        ``spot_symbol`` is not a market of the spot venue.
    """
    why: list[str] = []
    if spot.participation is not None:
        why.append(f"paper participation cap on the spot venue {spot.venue!r}")
    if spot.slippage_noise_bps > 0:
        why.append(f"paper slippage noise on the spot venue {spot.venue!r}")
    if why:
        raise FastPathUnsupported(", ".join(why))
    si = next((i for i in spot.instruments if i.symbol == spot_symbol), None)
    if si is None:
        raise InvalidInput("spot symbol", spot_symbol,
                           f"a market of the spot venue {spot.venue!r}: {sorted(i.symbol for i in spot.instruments)}")
    rows = (replace(si, venue=perp.venue), *(i for i in perp.instruments if i.symbol != spot_symbol))
    return replace(perp, spot_taker_fee=spot.spot_taker_fee, instruments=rows)


def _one_venue(params: CrossCarryParams, market: Market | Timeline,
               config: CrossVenueConfig) -> tuple[BacktestConfig, CostModel, PaperConfig]:
    if not isinstance(params, CrossCarryParams):
        raise InvalidInput("params", type(params).__name__, "CrossCarryParams (strategy 'xcarry')")
    a, b = venue_papers(params, config)
    paper = two_venue_paper(a, b, market.spot_symbol)
    cfg = BacktestConfig(hedge_id=config.hedge_id, paper=paper, spot_usdt=config.spot_usdt,
                         perp_usdt=config.perp_usdt, capital=config.capital, spec=config.spec, warmup=config.warmup)
    return cfg, from_paper(a, b), a


def run_fast_xvenue(params: CrossCarryParams, market: Market | Timeline, *, start: object | None = None,
                    end: object | None = None, config: CrossVenueConfig = CrossVenueConfig(),
                    compact: bool = False, first_timeline: Timeline | None = None) -> FastResult:
    """The fast run of a cross-venue carry: same arguments and same fills, snapshots and transitions
    as :func:`~hedge_core.backtest.xvenue.run_cross_venue_backtest` (``market``: prices and the
    PERP VENUE's funding). Two perp legs (``legs = "perp_perp"``): the pair kernel
    (:func:`hedge_core.backtest.fast.pair.run_fast_pair`; ``first_timeline``: the first venue's).

    Raises
    ------
    FastPathUnsupported
        Outside the kernel's scope (``docs/fast-path.md``; :func:`two_venue_paper`), with the reason.
    """
    if isinstance(params, CrossCarryParams) and params.perp_perp:  # two perp legs: the pair kernel
        from hedge_core.backtest.fast.pair import run_fast_pair

        return run_fast_pair(params, market, start=start, end=end, config=config, compact=compact,
                             first_timeline=first_timeline)
    if first_timeline is not None:
        raise InvalidInput("first_timeline", "given", "None unless legs='perp_perp' (a spot first leg settles no funding)")
    cfg, costs, spot = _one_venue(params, market, config)
    return run_fast(params, market, start=start, end=end, config=cfg, compact=compact, costs=costs, spot_paper=spot)


def fast_xvenue_kpis(params: CrossCarryParams, market: Market | Timeline, *,
                     config: CrossVenueConfig = CrossVenueConfig(), capital: float | None = None,
                     **kw: Any) -> dict[str, float]:
    """KPIs of :func:`run_fast_xvenue` (the sweep's form): the cross-venue backtest's ``result.kpis``."""
    if isinstance(params, CrossCarryParams) and params.perp_perp:  # two perp legs: the pair kernel
        from hedge_core.backtest.fast.pair import fast_pair_kpis

        return fast_pair_kpis(params, market, config=config, capital=capital, **kw)
    cfg, costs, spot = _one_venue(params, market, config)
    return fast_kpis(params, market, config=cfg, capital=capital, costs=costs, spot_paper=spot, **kw)

