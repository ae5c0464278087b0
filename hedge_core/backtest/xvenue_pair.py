"""The cross-venue backtest with TWO PERP legs (``CrossCarryParams.legs = "perp_perp"``).

Venue A (``params.spot_venue``: the first leg's venue) and venue B (``params.perp_venue``) are both paper
PERP venues: each gets the perp and mark bars (the same prices: in the shared data only Binance has price
bars, so both legs trade at Binance's perp and mark, the stated assumption), each its own futures wallet,
perp fee, margin and liquidation, and each settles its OWN funding series (``md.crossvenue_funding()``)
at its own interval. The engine hears A's settlements on its first leg (``FundingSettled(leg="spot")``)
and B's on the second; the market update carries A's mark, last rate and next settlement (``spot_mark``,
``spot_funding_rate``, ``spot_next_funding_ts``). The first venue's funding travels with the market as ``meta['first_funding']``
(:func:`pair_market`). The replay's instants are the bar ends and the UNION of both venues' settlement times
(:func:`pair_timelines`): venues settling at different intervals (8h, 4h, 1h) and clock times each settle
exactly at their own times, and each announces its own next settlement.
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import MappingProxyType

import numpy as np
import pandas as pd

from hedge_core.backtest.timeline import Market, Timeline, build_timeline
from hedge_core.engine.context import HedgeContext
from hedge_core.engine.driver import HedgeDriver
from hedge_core.engine.events import FillEvent, FundingSettled, MarketUpdate
from hedge_core.errors import InvalidInput
from hedge_core.exchange.paper.core import PaperCore
from hedge_core.types import Bar, FundingEvent, MarketKind

__all__ = ["PAIR_PRICE_ASSUMPTION", "align_pair_timelines", "check_first_leg_timeline", "ledger_row",
           "own_next_settlement", "pair_market", "pair_timelines", "replay_pair"]

PAIR_PRICE_ASSUMPTION = ("prices of both perp legs (perp, mark) are {prices}'s perp and mark bars: the only venue with "
                         "price bars in the data; each perp venue's own funding rates and settlement interval are used "
                         "({first} on the first leg, {perp} on the second). Basis between venues, venue-specific "
                         "slippage and moving collateral between venues are not modelled.")



def ledger_row(c: HedgeContext) -> tuple[float, ...]:
    """One instant of a cross-venue replay's ledger, quote unless named: first-leg PnL, second-leg PnL, funding,
    fees, slippage, interest, total PnL, delta (base), hedge ratio, first/second leg qty (base), spot, perp and
    mark prices (quote per base): the 14 columns both cross-venue replays record."""
    s, p = c.spot, c.perp
    return (s.realized + s.unrealized, p.realized + p.unrealized, p.funding + s.funding, p.fees + s.fees,
            p.slippage + s.slippage, p.interest + s.interest, c.pnl, c.delta, c.hedge_ratio, s.qty, p.qty,
            c.spot_price, c.perp_price, c.mark_price)

def pair_market(prices: Market, first_funding: pd.DataFrame, second_funding: pd.DataFrame, *, first_venue: str,
                perp_venue: str) -> Market:
    """``prices``' bars with the SECOND venue's funding as the market's funding and the FIRST venue's in
    ``meta['first_funding']`` (frames indexed by settlement time: ``funding_rate``, ``interval_hours``)."""
    meta = {**prices.meta, "prices_from": prices.venue, "funding_from": perp_venue, "first_funding_from": first_venue,
            "first_funding": first_funding,
            "notes": (PAIR_PRICE_ASSUMPTION.format(prices=prices.venue, first=first_venue, perp=perp_venue),)}
    return Market(prices.venue, prices.spot_symbol, prices.perp_symbol, prices.timeframe, prices.spot, prices.perp,
                  prices.mark, second_funding, meta)


def _times(fund: pd.DataFrame | None) -> np.ndarray:
    """Settlement times of a funding frame, int64 ns UTC (empty without one)."""
    if fund is None or not len(fund):
        return np.empty(0, dtype="int64")
    return pd.DatetimeIndex(fund.index).as_unit("ns").asi8


def own_next_settlement(tl: Timeline) -> Timeline:
    """``tl`` whose ``next_fund_ns`` is, at each instant, the next settlement of THIS timeline's venue (its
    ``fund_rate`` instants) strictly after it; past its last one, that time plus whole intervals
    (``tl.interval_hours``). A venue settling at 02:00, 06:00, ... (4h) thus announces 06:00 at 03:00, not
    the 00:00-aligned grid's 04:00. Without a settlement in the window: ``tl`` unchanged (the grid)."""
    ts = np.asarray(tl.ts, dtype="int64")
    ft = ts[~np.isnan(tl.fund_rate)]
    if not len(ft):
        return tl
    step = int(tl.interval_hours * 3600e9)
    pos = np.searchsorted(ft, ts, side="right")
    past = ft[-1] + ((ts - ft[-1]) // step + 1) * step
    nxt = np.where(pos < len(ft), ft[np.clip(pos, 0, len(ft) - 1)], past)
    return replace(tl, next_fund_ns=nxt.astype("int64"))


def _onto(t: Timeline, u: np.ndarray) -> Timeline:
    """``t`` on the instants ``u`` (a superset of ``t.ts`` holding only settlement instants more): at an added
    instant no bar ends and ``t``'s venue settles nothing; prices, volumes and inputs are the last known,
    ``last_rate`` the last settled before it."""
    pos = np.searchsorted(t.ts, u, side="right") - 1
    if (pos < 0).any():
        raise InvalidInput("first_funding", [str(pd.Timestamp(int(x), tz="UTC")) for x in u[pos < 0][:3]],
                           "settlement times after the replay's first instant")
    exact = t.ts[pos] == u

    def on(a: np.ndarray, fill: float = np.nan) -> np.ndarray:
        v = a[pos]
        return np.where(exact if v.ndim == 1 else exact[:, None], v, fill)

    settled = np.where(np.isnan(t.fund_rate[pos]), t.last_rate[pos], t.fund_rate[pos])
    return replace(t, ts=u, spot=t.spot[pos], perp=t.perp[pos], mark=t.mark[pos], spot_vol=t.spot_vol[pos],
                   perp_vol=t.perp_vol[pos], has_spot=t.has_spot[pos] & exact, has_perp=t.has_perp[pos] & exact,
                   has_mark=t.has_mark[pos] & exact, spot_bar=on(t.spot_bar), perp_bar=on(t.perp_bar),
                   mark_bar=on(t.mark_bar), fund_rate=on(t.fund_rate), fund_hours=on(t.fund_hours),
                   last_rate=np.where(exact, t.last_rate[pos], settled), next_fund_ns=t.next_fund_ns[pos],
                   inputs=np.ascontiguousarray(t.inputs[pos]), priced=t.priced[pos] & exact)


def align_pair_timelines(tl: Timeline, ta: Timeline) -> tuple[Timeline, Timeline]:
    """Two prebuilt timelines of the same prices (the second venue's ``tl``, the first's ``ta``, e.g. a sweep's
    :class:`~hedge_core.backtest.xvenue_sweep.VenueTimelines`) on the UNION of their instants, each venue
    settling at its own times and announcing its own next settlement (:func:`own_next_settlement`).

    Raises
    ------
    InvalidInput
        Naming ``first_funding`` when the two differ in their bar ends (timelines cut to different windows)
        or one venue settles before the other timeline's first instant.
    """
    bars_l = tl.ts[tl.has_spot | tl.has_perp | tl.has_mark]
    bars_a = ta.ts[ta.has_spot | ta.has_perp | ta.has_mark]
    if not np.array_equal(bars_l, bars_a):
        extra = pd.DatetimeIndex(np.setxor1d(bars_l, bars_a)[:3].view("datetime64[ns]"), tz="UTC").tolist()
        raise InvalidInput("first_funding", extra, "a timeline of the same prices over the same window as the "
                           "second venue's (the same bar ends)")
    u = np.union1d(tl.ts, ta.ts)
    if len(u) != tl.n:
        tl = _onto(tl, u)
    if len(u) != ta.n:
        ta = _onto(ta, u)
    return own_next_settlement(tl), own_next_settlement(ta)


def pair_timelines(market: Market | Timeline, *, start: object | None, end: object | None,
                   warmup: pd.Timedelta, spec: object) -> tuple[Timeline, Timeline]:
    """The replay timelines of a perp pair: ``(tl, ta)``, the second venue's funding (``market.funding``)
    and the first's (``market.meta['first_funding']``) on ONE set of instants: the bar ends and the UNION
    of both venues' settlement times (e.g. A every 4h at 02:00, 06:00, ... and B every 8h at 00:00, 08:00,
    ...). Each settles only at its own times (``fund_rate`` NaN at the other's), each announces its own
    next settlement (:func:`own_next_settlement`).

    Raises
    ------
    InvalidInput
        ``market`` is a prebuilt Timeline or has no ``first_funding``.
    """
    meta = market.meta if isinstance(market, Market) else {}
    fund_a = meta.get("first_funding")
    if not isinstance(market, Market) or fund_a is None:
        raise InvalidInput("market", type(market).__name__, "a Market carrying the first venue's funding in "
                           "meta['first_funding'] (backtest.xvenue.cross_venue_market(..., first_venue=...))")
    if start is None:
        start = market.first + warmup
    fund_b = market.funding
    tl = build_timeline(market, start=start, end=end, spec=spec, extra_instants=_times(fund_a))
    ta = build_timeline(replace(market, funding=fund_a), start=start, end=end, spec=spec,
                        extra_instants=_times(fund_b))
    return own_next_settlement(tl), check_first_leg_timeline(own_next_settlement(ta), tl)


def check_first_leg_timeline(ta: Timeline, tl: Timeline) -> Timeline:
    """``ta`` (the FIRST venue's funding on the replay's instants) when its instants are ``tl``'s.

    Raises
    ------
    InvalidInput
        Naming ``first_funding`` and up to three instants one timeline has and the other lacks (e.g. a
        first venue settling off the bar ends, or timelines cut to different windows).
    """
    if ta.n != tl.n or not np.array_equal(ta.ts, tl.ts):
        extra = ta.index.symmetric_difference(tl.index)[:3].tolist()
        raise InvalidInput("first_funding", extra, "settlement times on the replay's instants (bar ends or the "
                           "second venue's settlements), over the same window as the second venue's timeline")
    return ta


def report_first_leg_liquidations(driver: HedgeDriver, core: PaperCore, start: int, reported: set[str]) -> None:
    """The first venue's liquidation fills since ``core.fills[start]``, booked on the FIRST leg (the engine
    never sent those orders: their ids are registered first)."""
    for f in core.fills[start:]:
        if not f.client_order_id.startswith("liq-") or f.trade_id in reported or f.symbol != driver.ctx.spot.symbol:
            continue
        reported.add(f.trade_id)
        driver.ctx = replace(driver.ctx, known_orders=driver.ctx.known_orders | {f.client_order_id})
        driver.feed_now(FillEvent(f, "spot"))


def replay_pair(driver: HedgeDriver, tl: Timeline, ta: Timeline, ca: PaperCore,
                cb: PaperCore) -> tuple[np.ndarray, list[str]]:
    """The replay loop of :mod:`hedge_core.backtest.xvenue` with a perp on each venue: perp and mark bars to
    both, A's funding (``ta``) on the first leg, B's (``tl``) on the second. Rows as ``xvenue._replay``."""
    from hedge_core.backtest.event import _report_liquidations

    va, vb = ca.config.venue, cb.config.venue
    sym, tf = tl.perp_symbol, tl.timeframe
    bar = pd.Timedelta(tf)
    index, names = tl.index, tl.input_names
    rows: list[tuple[float, ...]] = []
    states: list[str] = []
    rep_a: set[str] = set()
    rep_b: set[str] = set()
    for i in range(tl.n):
        t = index[i]
        label = t - bar
        na, nb = len(ca.fills), len(cb.fills)
        if tl.has_perp[i]:
            o, h, lo, cl, v = tl.perp_bar[i].tolist()
            ca.apply(Bar(label, va, sym, MarketKind.PERP, o, h, lo, cl, v, tf))
            cb.apply(Bar(label, vb, sym, MarketKind.PERP, o, h, lo, cl, v, tf))
        if tl.has_mark[i]:
            o, h, lo, cl, _v = tl.mark_bar[i].tolist()
            ca.apply(Bar(label, va, sym, MarketKind.MARK, o, h, lo, cl, 0.0, tf))
            cb.apply(Bar(label, vb, sym, MarketKind.MARK, o, h, lo, cl, 0.0, tf))
        if ca.liquidations:  # each venue's liquidation fills, booked on its leg before the engine acts
            report_first_leg_liquidations(driver, ca, na, rep_a)
        if cb.liquidations:
            _report_liquidations(driver, cb, nb, rep_b)
        mk = float(tl.mark[i]) if not math.isnan(tl.mark[i]) else float(tl.perp[i])
        if tl.priced[i]:
            an = MappingProxyType({k: float(x) for k, x in zip(names, tl.inputs[i].tolist()) if not math.isnan(x)})
            px = float(tl.perp[i])
            driver.feed_now(MarketUpdate(ts=t, spot=px, perp=px, mark=float(tl.mark[i]), spot_volume=float(tl.perp_vol[i]),
                                         perp_volume=float(tl.perp_vol[i]), funding_rate=float(tl.last_rate[i]),
                                         next_funding_ts=pd.Timestamp(int(tl.next_fund_ns[i]), tz="UTC"),
                                         funding_interval_hours=tl.interval_hours, analytics=an,
                                         spot_mark=float(tl.mark[i]), spot_funding_rate=float(ta.last_rate[i]),
                                         spot_funding_interval_hours=ta.interval_hours,
                                         spot_next_funding_ts=pd.Timestamp(int(ta.next_fund_ns[i]), tz="UTC")))
        for core, tline, venue, leg in ((ca, ta, va, "spot"), (cb, tl, vb, "perp")):
            rate = float(tline.fund_rate[i])
            if not math.isnan(rate):
                hours = float(tline.fund_hours[i])
                core.apply(FundingEvent(t, venue, sym, rate, hours))  # each venue settles at ITS interval
                if not math.isnan(mk):
                    driver.feed_now(FundingSettled(t, rate, mk, interval_hours=hours, leg=leg))
        rows.append(ledger_row(driver.ctx))
        states.append(str(driver.ctx.state))
    return np.array(rows, dtype=float).reshape(tl.n, 14), states
