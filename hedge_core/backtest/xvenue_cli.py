"""The cross-venue carry (``xcarry``) in ``hedge backtest`` / ``hedge sweep``: its venues and its data.

Prices come from the first venue, in this order, that has the pair's spot and perp bars in the store:
the spot venue, the perp venue, then ``--venue`` (in the shared data only Binance has price bars). The
perp leg's funding is the PERP VENUE's own series in the store (``hedge data import
crossvenue_funding_*.csv`` writes one per venue). Missing data raises InvalidInput naming what is
missing and on which venues it was looked for. Two perp legs (``legs = "perp_perp"``): the FIRST venue's
(``spot_venue``'s) funding series is read from the store too, for the first perp leg.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeGuard, cast

import pandas as pd

from hedge_core.backtest.timeline import DEFAULT_WARMUP, Market, load_market, utc
from hedge_core.backtest.xvenue import cross_venue_market
from hedge_core.backtest.xvenue_sweep import VenueMarkets
from hedge_core.errors import InvalidInput
from hedge_core.params.models import StrategyParamsBase
from hedge_core.params.xcarry import CrossCarryParams

__all__ = ["best_perp_venues", "is_xcarry", "perp_venues_of", "store_cross_venue_markets", "sweep_venues_of",
           "with_venues"]

IMPORT_HINT = "import the cross-venue funding file: hedge data import crossvenue_funding_*.csv"


def is_xcarry(params: StrategyParamsBase) -> TypeGuard[CrossCarryParams]:
    """The parameters are a cross-venue carry (legs on two venues)."""
    return isinstance(params, CrossCarryParams)


def with_venues(params: StrategyParamsBase, spot_venue: str | None, perp_venue: str | None) -> StrategyParamsBase:
    """``params`` with ``--spot-venue`` / ``--perp-venue`` applied (validated: two different venues).

    Raises InvalidInput naming the flag when one is given for a strategy other than ``xcarry``.
    """
    given = {k: v for k, v in (("spot_venue", spot_venue), ("perp_venue", perp_venue)) if v is not None}
    if not given:
        return params
    if not is_xcarry(params):
        flag = "--" + next(iter(given)).replace("_", "-")
        raise InvalidInput(flag, next(iter(given.values())),
                           f"only with strategy 'xcarry' (the params are {params.strategy!r}, one venue: --venue)")
    from hedge_core.backtest.sweep import apply_overrides

    return cast(StrategyParamsBase, apply_overrides(params, {k: v.strip().lower() for k, v in given.items()}))


def perp_venues_of(base: CrossCarryParams, points: Sequence[Mapping[str, Any]]) -> list[str]:
    """The perp venues a sweep needs funding for: the base's and every point's ``perp_venue`` (in order)."""
    out: list[str] = []
    for v in [base.perp_venue, *(str(p.get("perp_venue", base.perp_venue)) for p in points)]:
        v = v.strip().lower()
        if v not in out:
            out.append(v)
    return out


def best_perp_venues(base: CrossCarryParams, points: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every perp venue a ``--best-perp`` sweep may choose among: the base's and every point's allowed venues
    (``perp_venue`` and ``perp_venues``), in order."""
    out: list[str] = []
    for p in [{}, *points]:
        pv = str(p.get("perp_venue", base.perp_venue)).strip().lower()
        for v in [pv, *(str(x).strip().lower() for x in p.get("perp_venues", base.perp_venues))]:
            if v not in out:
                out.append(v)
    return out


def sweep_venues_of(base: CrossCarryParams, points: Sequence[Mapping[str, Any]]) -> list[str]:
    """The venues whose funding a sweep's :class:`~hedge_core.backtest.xvenue_sweep.VenueTimelines` must hold:
    every perp venue (:func:`perp_venues_of`) and, for each point with two perp legs (its ``legs``, else the
    base's), its FIRST venue (``spot_venue``, whose funding its first perp leg settles). In order, each once."""
    out = perp_venues_of(base, points)
    for p in [{}, *points]:
        if str(p.get("legs", base.legs)) == "perp_perp":
            v = str(p.get("spot_venue", base.spot_venue)).strip().lower()
            if v not in out:
                out.append(v)
    return out


def _prices(store: Any, venues: Iterable[str], *, spot_symbol: str, perp_symbol: str, timeframe: str,
            start: object | None, end: object | None) -> Market:
    tried: list[str] = []
    for v in venues:
        if v in tried:
            continue
        tried.append(v)
        try:
            return load_market(store, venue=v, spot_symbol=spot_symbol, perp_symbol=perp_symbol, timeframe=timeframe,
                               start=start, end=end)
        except InvalidInput:
            continue
    raise InvalidInput("price bars", f"{spot_symbol} + {perp_symbol} {timeframe}",
                       f"spot and perp bars in the store on one of the venues {tried} (none has them: see `hedge data`)")


def store_cross_venue_markets(store: Any, params: CrossCarryParams, perp_venues: Sequence[str], *,
                              price_venue: str, asset: str, quote: str, timeframe: str, start: object | None,
                              end: object | None, first_funding: bool | None = None) -> VenueMarkets:
    """The store's prices with each perp venue's own funding (one market per perp venue).

    ``first_funding`` (default: ``params.perp_perp``): each market also carries the FIRST venue's
    (``params.spot_venue``'s) funding for a pair's single run (``meta['first_funding']``). A sweep passes
    False and lists the first venues among ``perp_venues`` (:func:`sweep_venues_of`): its timelines are
    keyed by venue, each with that venue's own funding.

    Raises
    ------
    InvalidInput
        No venue among (spot venue, perp venue, ``price_venue``) has the pair's bars; or a perp venue
        has no funding of the perp symbol in the store (named, with how to import it).
    """
    spot_sym, perp_sym = f"{asset}/{quote}", f"{asset}/{quote}:{quote}"
    prices = _prices(store, (params.spot_venue, params.perp_venue, price_venue.strip().lower()), spot_symbol=spot_sym,
                     perp_symbol=perp_sym, timeframe=timeframe, start=start, end=end)
    t0 = None if start is None else utc(start) - DEFAULT_WARMUP
    t1 = None if end is None else utc(end) + pd.Timedelta(seconds=1)
    pair = spot_sym.replace("/", "")

    def funding(v: str) -> pd.DataFrame:
        try:
            fund = store.read_funding(v, perp_sym, start=t0, end=t1)
        except LookupError:
            fund = None
        if fund is None or len(fund) == 0:
            raise InvalidInput("funding", f"{v} {perp_sym}",
                               f"the perp venue's funding series in the store in the window ({IMPORT_HINT})")
        return pd.DataFrame({"ts": fund.index, "venue": v, "symbol": pair,
                             "funding_rate": fund["funding_rate"].to_numpy(),
                             "interval_hours": fund["interval_hours"].to_numpy() if "interval_hours" in fund else 8.0})

    with_first = params.perp_perp if first_funding is None else first_funding
    first = params.spot_venue.strip().lower() if with_first else None
    first_cv = funding(first) if first is not None else None
    by: dict[str, Market] = {}
    for v in perp_venues:
        cv = funding(v)
        if first_cv is not None:  # two perp legs: the first venue's series rides along (meta['first_funding'])
            by[v] = cross_venue_market(prices, pd.concat([cv, first_cv], ignore_index=True), perp_venue=v, pair=pair,
                                       first_venue=first)
        else:
            by[v] = cross_venue_market(prices, cv, perp_venue=v, pair=pair)
    return VenueMarkets(by)
