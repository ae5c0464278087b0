"""Two perp legs on two venues (``xcarry``, ``legs = "perp_perp"``) on the fast path: :func:`run_fast_pair`,
:func:`fast_pair_kpis`.

The same arguments, and for every run it accepts the same fills, per-instant snapshots, transitions and
KPIs, as :func:`hedge_core.backtest.xvenue.run_cross_venue_backtest` with a pair
(:mod:`hedge_core.backtest.xvenue_pair`): the first venue A's perp (its lot and minimums, perp fee,
futures wallet, margin, liquidation and OWN funding series, ``xvenue_pair.pair_timelines``) and the
second venue B's, both at the one venue's perp and mark bars the data has. The kernel is
:func:`~.pair_kernel.pair_kernel`.

Refused (:class:`~.scope.FastPathUnsupported`, naming why), on top of :func:`~.scope.check_supported` for
EACH venue: a prebuilt Timeline (the first venue's funding travels with a Market). Each leg fills at its own
venue's fixed slippage and impact coefficient (``money.slippage_bps``, as each ``PaperCore`` prices a taker
fill). At run time: the refusals of ``docs/fast-path.md`` (a
paper liquidation or coming within 1 % of one on EITHER venue, a REDUCE guard at the instant an exit or a flatten
fires too, dust, ...) and a leverage
the first venue would refuse (chosen from the second venue's table, as the engine does). Each venue
keeps its own bracket table (Bybit's and OKX's differ).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from hedge_core.backtest.fast.codes import ERROR_MESSAGES, Err
from hedge_core.backtest.fast.pack import brackets, pack_hedge
from hedge_core.backtest.fast.pair_kernel import pair_entry, pair_kernel
from hedge_core.backtest.fast.run import FastResult, _Raw, fills_and_transitions
from hedge_core.backtest.fast.scope import FastPathUnsupported, check_supported
from hedge_core.backtest.fast.signals import input_column, liq_arrays, priced_prices
from hedge_core.backtest.timeline import Market, Timeline, timeline_of
from hedge_core.errors import InvalidInput
from hedge_core.exchange.costs import entry_round_trip, pair_from_paper, resolve_costs
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.params.xcarry import CrossCarryParams

__all__ = ["PairTimelines", "fast_pair_kpis", "pair_timelines", "run_fast_pair"]


@dataclass(frozen=True)
class PairTimelines:
    """The two replay timelines of a pair, built once (a sweep's points share them): ``second`` the prices
    with the second venue's funding (``timeline_of`` of the market), ``first`` the first venue's funding on
    the same instants (:func:`hedge_core.backtest.xvenue_pair.pair_timelines`)."""

    second: Timeline
    first: Timeline


def pair_timelines(market: Market, *, start: object | None = None, end: object | None = None,
                   config: Any = None) -> PairTimelines:
    """Build :class:`PairTimelines` of ``market`` (``cross_venue_market(..., first_venue=...)``) over
    ``[start, end]`` with ``config``'s warmup and analytics spec (a :class:`CrossVenueConfig`; None: defaults).

    Raises
    ------
    FastPathUnsupported
        ``market`` is a prebuilt Timeline (the first venue's funding travels with a Market).
    InvalidInput
        Fewer than 2 instants, or the first venue's funding off the replay's instants.
    """
    from hedge_core.backtest.xvenue import CrossVenueConfig
    from hedge_core.backtest.xvenue_pair import pair_timelines as union_timelines

    config = config if config is not None else CrossVenueConfig()
    if not isinstance(market, Market):
        raise FastPathUnsupported("a prebuilt Timeline for two perp legs (the first venue's funding travels with "
                                  "a Market: backtest.xvenue.cross_venue_market(..., first_venue=...); or pass "
                                  "fast.pair.pair_timelines(market))")
    tl, ta = union_timelines(market, start=start, end=end, warmup=config.warmup, spec=config.spec)
    if tl.n < 2:
        raise InvalidInput("window", tl.n, "at least 2 replay instants")
    return PairTimelines(tl, ta)


def _papers(params: CrossCarryParams, config: Any) -> tuple[PaperConfig, PaperConfig]:
    """A's and B's paper models as ``run_cross_venue_backtest`` builds them for a pair."""
    from hedge_core.backtest.xvenue import _venue_config

    a = _venue_config(config.spot_paper, params.spot_venue, {"perp_taker_fee": params.first_perp_taker_fee})
    b = _venue_config(config.perp_paper, params.perp_venue, {"perp_taker_fee": params.perp_taker_fee})
    return a, b


def _check_pair(params: CrossCarryParams, a: PaperConfig, b: PaperConfig, sym: str) -> None:
    check_supported(params, a, sym, defers_exits=True)
    check_supported(params, b, sym, defers_exits=True)


def _run_pair_raw(params: CrossCarryParams, market: Market | Timeline | PairTimelines, *, start: object | None,
                  end: object | None, config: Any, compact: bool,
                  first_timeline: Timeline | None = None) -> tuple[_Raw, CrossCarryParams]:
    from hedge_core.backtest.event import initial_balances
    from hedge_core.backtest.xvenue import CrossVenueConfig

    config = config if config is not None else CrossVenueConfig()
    if not isinstance(params, CrossCarryParams) or not params.perp_perp:
        raise InvalidInput("params", type(params).__name__, "CrossCarryParams with legs='perp_perp'")
    a, b = _papers(params, config)
    params = resolve_costs(params, pair_from_paper(a, b))
    if isinstance(market, PairTimelines):
        if start is not None or end is not None:
            raise InvalidInput("start/end", (start, end), "None with prebuilt PairTimelines (their window is fixed)")
        pt = market
    elif first_timeline is not None:  # a sweep's VenueTimelines: the first venue's timeline given apart
        from hedge_core.backtest.xvenue_pair import align_pair_timelines

        tl = timeline_of(market, start=start, end=end, warmup=config.warmup, spec=config.spec)
        pt = PairTimelines(*align_pair_timelines(tl, first_timeline))
    else:
        pt = pair_timelines(market, start=start, end=end, config=config)
    tl, ta = pt.second, pt.first
    sym = tl.perp_symbol
    _check_pair(params, a, b, sym)
    if "liq_price" in tl.input_names:
        raise FastPathUnsupported("a 'liq_price' analytics input (the guard would use the feed's price)")
    ai = next((i for i in a.instruments if i.symbol == sym), None)
    if ai is None or not any(i.symbol == sym for i in b.instruments):
        raise InvalidInput("symbols", (sym, sym), f"a perp market of {a.venue} {sorted(i.symbol for i in a.instruments)}"
                           f" and of {b.venue} {sorted(i.symbol for i in b.instruments)}")
    px0 = tl.first_spot_price
    bal = initial_balances(params, px0)
    wa = float(config.spot_usdt) if config.spot_usdt is not None else bal["perp"]["USDT"]
    wb = float(config.perp_usdt) if config.perp_usdt is not None else bal["perp"]["USDT"]
    # one venue view for the record: the first leg's lot, minimums and perp fee in the spot leg's fields (and,
    # through spot_paper, its venue's slippage and impact)
    view = replace(b, spot_taker_fee=a.perp_taker_fee,
                   instruments=(replace(ai, symbol=tl.spot_symbol), *(i for i in b.instruments
                                                                      if i.symbol != tl.spot_symbol)))
    rec = pack_hedge(params, view, tl, {"spot": {"USDT": wa}, "perp": {"USDT": wb}}, spot_paper=a)
    floors, caps, mmrs, cums, maxlevs = brackets(b, sym)
    table_a = brackets(a, sym)
    n = tl.n
    ok = np.empty(n, dtype=np.bool_)
    direction = np.empty(n)
    pair_entry(ta.last_rate, tl.last_rate, tl.priced, tl.perp, float(ta.interval_hours), float(tl.interval_hours),
               float(params.min_funding_rate), float(params.max_entry_basis_bps), entry_round_trip(params.as_carry()),
               float(params.expected_hold_intervals), float(params.min_net_carry), ok, direction)
    liq_check, liq_hi = liq_arrays(tl)
    liq_lo = np.where(tl.has_mark, tl.mark_bar[:, 2], tl.perp_bar[:, 2])  # a long's adverse extreme: the low
    sig = input_column(tl, "sigma_24h")
    snap = np.empty((n, 3 if compact else 14))
    last = np.empty(14)
    states = np.empty(n, dtype=np.int8)
    fund_first = np.empty(n)
    cap = 4096
    while True:
        f_i = np.empty(cap, dtype=np.int64)
        f_leg = np.empty(cap, dtype=np.int64)
        f_side, f_qty, f_px, f_fee, f_slip = (np.empty(cap) for _ in range(5))
        t_i = np.empty(cap, dtype=np.int64)
        t_code = np.empty(cap, dtype=np.int64)
        nf, nt, err, ei = pair_kernel(tl.ts, tl.perp, tl.mark, tl.perp_vol, tl.priced, ta.fund_rate, tl.fund_rate,
                                      ta.last_rate, tl.last_rate, ta.next_fund_ns, tl.next_fund_ns, sig, ok, direction,
                                      liq_check, liq_hi, liq_lo, rec,
                                      float(ta.interval_hours), floors, caps, mmrs, cums, maxlevs, *table_a,
                                      float(ai.max_leverage), snap, last, states, fund_first,
                                      f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, t_i, t_code)
        if err != Err.BUFFER_FULL or cap >= 8 * n + 16:
            break
        cap = 8 * n + 16
    if err:
        at = pd.Timestamp(int(tl.ts[ei]), tz="UTC")
        raise FastPathUnsupported(f"{ERROR_MESSAGES[Err(int(err))]} at {at}")
    if not compact:
        last = snap[-1].copy()
    raw = _Raw(tl, snap, states, last, None, None, int(nf), int(nt), f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip,
               t_i, t_code)
    raw.first_leg_funding = fund_first  # type: ignore[attr-defined]
    return raw, params


def run_fast_pair(params: CrossCarryParams, market: Market | Timeline | PairTimelines, *, start: object | None = None,
                  end: object | None = None, config: Any = None, compact: bool = False,
                  first_timeline: Timeline | None = None) -> FastResult:
    """The fast run of a cross-venue carry with two perp legs: the arguments of
    :func:`~hedge_core.backtest.xvenue.run_cross_venue_backtest` (``market`` from
    ``cross_venue_market(..., first_venue=...)``, or its :func:`pair_timelines` built once; or a Timeline
    of the second venue with ``first_timeline``, the first venue's on the same instants, as a sweep's
    ``VenueTimelines`` hold them), its fills, snapshots and transitions.

    Raises
    ------
    FastPathUnsupported
        Outside the pair kernel's scope (module docstring), with the reason (and the instant).
    """
    raw, _p = _run_pair_raw(params, market, start=start, end=end, config=config, compact=compact,
                            first_timeline=first_timeline)
    fills, trans = fills_and_transitions(raw)
    return FastResult(raw.snap, raw.states, fills, trans, raw.timeline, last=raw.last,
                      first_leg_funding=raw.first_leg_funding)  # type: ignore[attr-defined]


def fast_pair_kpis(params: CrossCarryParams, market: Market | Timeline | PairTimelines, *, config: Any = None,
                   capital: float | None = None, start: object | None = None,
                   end: object | None = None, first_timeline: Timeline | None = None) -> dict[str, float]:
    """KPIs of :func:`run_fast_pair` (the sweep's form): the cross-venue backtest's ``result.kpis``."""
    from hedge_core.backtest.event import capital_of
    from hedge_core.backtest.kpis import _last_of_day, kpis_from_arrays

    r, p = _run_pair_raw(params, market, start=start, end=end, config=config, compact=True,
                         first_timeline=first_timeline)
    tl = r.timeline
    cfg_cap = getattr(config, "capital", None) if config is not None else None
    cap = capital if capital is not None else (cfg_cap if cfg_cap is not None else capital_of(p, tl.first_spot_price))
    last = r.last
    totals = {"price_pnl": float(last[0] + last[1]), "funding": float(last[2]), "fees": float(last[3]),
              "slippage": float(last[4]), "interest": float(last[5])}
    _spot, perp_px = priced_prices(tl)  # both legs at the perp price
    return kpis_from_arrays(tl.ts, r.snap[:, 0], r.snap[:, 1], r.snap[:, 2], perp_px, perp_px, None, totals,
                            r.triggers(), p, capital=cap, n_fills=r.nf,
                            last_of_day=tl.cached("kpis.last_of_day", lambda: _last_of_day(tl.ts)))
