"""Cross-venue carry backtest: spot leg on paper venue A, perp leg on paper venue B, one engine.

The same replay as :mod:`hedge_core.backtest.event` (bars that ended at t are applied, the engine
acts on a :class:`~hedge_core.engine.events.MarketUpdate`, the funding settling at t is applied and
fed back) with TWO paper venues behind a :class:`~hedge_core.exchange.routed.RoutedAdapter`: spot
bars go to venue A (its spot wallet and spot fee), perp and mark bars and the funding settlements
to venue B (its futures wallet, perp fee, margin, liquidation and funding at B's own settlement
interval: 8h, 4h or 1h, per event). Each venue keeps its own wallets; no money moves between them.

Data (:func:`cross_venue_market`): the perp venue's funding rates from the shared cross-venue file
(``crossvenue_funding_*``: Binance, Bybit, OKX side by side), the prices from the venue that has
them. In the shared data only Binance has price bars (the Bybit/OKX bars in the source were built
with an offset and are not shipped), so BOTH legs trade at Binance's spot/perp/mark prices and only
the funding is venue B's. That assumption is written into every run's ``notes`` and onto its
tearsheet (:func:`hedge_core.ui.figures.xvenue.cross_venue_tearsheet`): the basis between venues,
venue-specific slippage and order books, and the cost of moving collateral between venues are NOT
modelled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np
import pandas as pd

from hedge_core.analytics.inputs import InputSpec
from hedge_core.backtest.event import (
    BacktestConfig,
    BacktestResult,
    _assemble,
    _Recorder,
    _report_liquidations,
    capital_of,
    initial_balances,
)
from hedge_core.backtest.timeline import DEFAULT_WARMUP, Market, Timeline, timeline_of
from hedge_core.backtest.xvenue_pair import (
    align_pair_timelines,
    ledger_row,
    pair_market,
    pair_timelines,
    replay_pair,
)
from hedge_core.engine.context import new_hedge
from hedge_core.engine.driver import HedgeDriver
from hedge_core.engine.events import FundingSettled, MarketUpdate
from hedge_core.errors import InvalidInput
from hedge_core.exchange.costs import from_paper, pair_from_paper, resolve_costs
from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.paper.core import PaperConfig, PaperCore
from hedge_core.exchange.routed import RoutedAdapter
from hedge_core.params.xcarry import CrossCarryParams
from hedge_core.types import Bar, FundingEvent, MarketKind

__all__ = [
    "PRICE_ASSUMPTION",
    "CrossVenueConfig",
    "CrossVenueRun",
    "cross_venue_market",
    "funding_of_venue",
    "run_cross_venue_backtest",
]

PRICE_ASSUMPTION = ("prices of both legs (spot, perp, mark) are {prices}'s: the only venue with price bars in "
                    "the data; the perp venue {perp}'s own funding rates and settlement interval are used. "
                    "Basis between venues, venue-specific slippage and moving collateral between venues are "
                    "not modelled.")


def funding_of_venue(crossvenue: pd.DataFrame, venue: str, pair: str) -> pd.DataFrame:
    """One venue's funding from a cross-venue frame, as a backtest funding frame.

    Parameters
    ----------
    crossvenue : DataFrame
        ``ts, venue, symbol, funding_rate[, interval_hours]`` (:meth:`hedge_core.data.shared.
        MarketData.crossvenue_funding`); the rate is a fraction per ITS interval, + = longs pay.
    venue : str
        e.g. ``bybit``.
    pair : str
        The source's own symbol id, e.g. ``BTCUSDT`` (USDT-margined linear perp).

    Returns
    -------
    DataFrame
        Indexed by settlement time (UTC), columns ``funding_rate`` and ``interval_hours``.

    Raises
    ------
    InvalidInput
        Naming the venues/pairs the frame holds when ``(venue, pair)`` is not in it.
    """
    rows = crossvenue[(crossvenue["venue"] == venue) & (crossvenue["symbol"] == pair)]
    if rows.empty:
        have = sorted({f"{v}:{s}" for v, s in zip(crossvenue["venue"], crossvenue["symbol"])})
        raise InvalidInput("venue/pair", f"{venue}:{pair}", f"one of the cross-venue series {have}")
    ih = rows["interval_hours"] if "interval_hours" in rows else pd.Series(8.0, index=rows.index)
    out = pd.DataFrame({"funding_rate": rows["funding_rate"].astype("float64").to_numpy(),
                        "interval_hours": ih.fillna(8.0).astype("float64").to_numpy()},
                       index=pd.DatetimeIndex(pd.to_datetime(rows["ts"], utc=True), name="ts"))
    return out[~out.index.duplicated(keep="last")].sort_index()


def cross_venue_market(prices: Market, crossvenue: pd.DataFrame, *, perp_venue: str,
                       pair: str | None = None, first_venue: str | None = None) -> Market:
    """``prices``' bars (spot, perp, mark: the venue that has them) with ``perp_venue``'s funding.

    ``first_venue`` (two perp legs, ``legs = "perp_perp"``): that venue's funding goes along in
    ``meta['first_funding']`` for the first perp leg (:func:`hedge_core.backtest.xvenue_pair.pair_market`).
    The assumption is recorded in ``meta['notes']`` (and repeated in every run's notes).
    """
    pair = pair or prices.spot_symbol.replace("/", "")
    fund = funding_of_venue(crossvenue, perp_venue, pair)
    if first_venue is not None:
        if first_venue == perp_venue:
            raise InvalidInput("first_venue", first_venue, f"a venue other than perp_venue {perp_venue!r}")
        return pair_market(prices, funding_of_venue(crossvenue, first_venue, pair), fund, first_venue=first_venue,
                           perp_venue=perp_venue)
    meta = {**prices.meta, "prices_from": prices.venue, "funding_from": perp_venue,
            "notes": (PRICE_ASSUMPTION.format(prices=prices.venue, perp=perp_venue),)}
    return Market(prices.venue, prices.spot_symbol, prices.perp_symbol, prices.timeframe, prices.spot, prices.perp,
                  prices.mark, fund, meta)


@dataclass(frozen=True)
class CrossVenueConfig:
    """How a cross-venue backtest is run (the strategy is in its :class:`CrossCarryParams`).

    Attributes
    ----------
    hedge_id : str
    spot_paper, perp_paper : PaperConfig or None
        The two venue models; None = the default paper model renamed to the params' venue with
        that venue's taker fee from the params (``spot_taker_fee`` on A, ``perp_taker_fee`` on B;
        two perp legs: ``first_perp_taker_fee`` as A's perp fee).
    spot_usdt, perp_usdt : float or None
        Initial spot wallet on A / futures wallet on B (quote); None = :func:`initial_balances`.
        Two perp legs: ``spot_usdt`` is A's FUTURES wallet (None: the perp wallet figure, as B's).
    capital : float or None
        Returns denominator (quote); None = the notional.
    spec : InputSpec
    warmup : Timedelta
    """

    hedge_id: str = "xbt-1"
    spot_paper: PaperConfig | None = None
    perp_paper: PaperConfig | None = None
    spot_usdt: float | None = None
    perp_usdt: float | None = None
    capital: float | None = None
    spec: InputSpec = field(default_factory=InputSpec)
    warmup: pd.Timedelta = DEFAULT_WARMUP


@dataclass
class CrossVenueRun:
    """A cross-venue run: the engine's :class:`BacktestResult` (both legs), one row per venue
    (``per_venue``: venue, leg, wallet_start, wallet_end, fees, funding, orders; quote units) and
    the assumptions (``notes``) a tearsheet must show. A perp venue chosen per entry
    (:mod:`hedge_core.backtest.xvenue_best`): ``perp_venue`` is ``"best of a/b"``, ``per_venue`` has a row per
    perp venue and ``choices`` one row per entry (its venue, side, size, fee, each venue's all-in price)."""

    result: BacktestResult
    per_venue: pd.DataFrame
    notes: tuple[str, ...]
    spot_venue: str
    perp_venue: str
    choices: pd.DataFrame | None = None


class _Both:
    """The two paper cores seen as one for the result assembly (orders, funding, liquidations)."""

    def __init__(self, a: PaperCore, b: PaperCore) -> None:
        self.orders = {f"{a.config.venue}:{k}": v for k, v in a.orders.items()}
        self.orders.update({f"{b.config.venue}:{k}": v for k, v in b.orders.items()})
        self.funding_payments = [*a.funding_payments, *b.funding_payments]  # A settles only with a perp first leg
        self.liquidations = [*a.liquidations, *b.liquidations]


def _venue_config(given: PaperConfig | None, venue: str, fees: dict[str, float]) -> PaperConfig:
    pc = given if given is not None else replace(PaperConfig(), **fees)
    if pc.venue != venue:  # another venue's defaults become this venue's own (its lot, contract size, table)
        from hedge_core.data.instruments import instruments_on_venue

        pc = replace(pc, venue=venue, instruments=instruments_on_venue(pc.instruments, pc.venue, venue))
    return pc


def run_cross_venue_backtest(params: CrossCarryParams, market: Market | Timeline, *, start: object | None = None,
                             end: object | None = None, config: CrossVenueConfig = CrossVenueConfig(),
                             notes: tuple[str, ...] = (), perp_markets: Mapping[str, Market | Timeline] | None = None,
                             perp_papers: Mapping[str, PaperConfig] | None = None,
                             first_timeline: Timeline | None = None) -> CrossVenueRun:
    """Backtest a cross-venue carry: spot on ``params.spot_venue``, perp on ``params.perp_venue``; with
    ``params.legs == "perp_perp"`` a perp on EACH venue (:mod:`hedge_core.backtest.xvenue_pair`).

    Parameters
    ----------
    params : CrossCarryParams
    market : Market or Timeline
        Prices and the PERP VENUE's funding (:func:`cross_venue_market`). Two perp legs: a Market
        that also carries the first venue's funding (``cross_venue_market(..., first_venue=...)``).
    start, end : timestamp-like, optional
    config : CrossVenueConfig
    notes : tuple of str
        Extra assumptions to carry into the run's notes (the market's ``meta['notes']`` are added).
    perp_markets : mapping venue -> Market, optional
        Given: the perp venue is chosen at EACH ENTRY among ``params.allowed_perp_venues`` by walked book and
        fee (:func:`hedge_core.backtest.xvenue_best.run_best_perp_backtest`): each allowed venue's market
        (``market`` stands for ``params.perp_venue``'s when missing here).
    perp_papers : mapping venue -> PaperConfig, optional
        With ``perp_markets``: each perp venue's own paper model and fee.
    first_timeline : Timeline, optional
        Two perp legs only: the FIRST venue's funding as a prebuilt timeline on the same instants as
        ``market`` (a sweep's :class:`~hedge_core.backtest.xvenue_sweep.VenueTimelines` entry of
        ``params.spot_venue``); then ``market`` may be a prebuilt Timeline. None: built from
        ``market.meta['first_funding']``.

    Returns
    -------
    CrossVenueRun
    """
    if not isinstance(params, CrossCarryParams):
        raise InvalidInput("params", type(params).__name__, "CrossCarryParams (strategy 'xcarry')")
    if perp_markets is not None:
        from hedge_core.backtest.xvenue_best import run_best_perp_backtest

        return run_best_perp_backtest(params, market, perp_markets, perp_papers=perp_papers, start=start, end=end,
                                      config=config, notes=notes)
    if perp_papers is not None:
        raise InvalidInput("perp_papers", sorted(perp_papers), "only with perp_markets (the venues to choose among)")
    pp = params.perp_perp
    ta: Timeline | None = None
    if pp and first_timeline is None:  # both venues' settlement instants on one timeline (xvenue_pair)
        tl, ta = pair_timelines(market, start=start, end=end, warmup=config.warmup, spec=config.spec)
    else:
        tl = timeline_of(market, start=start, end=end, warmup=config.warmup, spec=config.spec)
        if pp and first_timeline is not None:  # prebuilt (a sweep's): both on the union of their instants
            tl, ta = align_pair_timelines(tl, first_timeline)
    if tl.n < 2:
        raise InvalidInput("window", tl.n, "at least 2 replay instants")
    px0 = tl.first_spot_price
    bal = initial_balances(params, px0)
    spot_usdt = float(config.spot_usdt) if config.spot_usdt is not None else bal["perp" if pp else "spot"]["USDT"]
    perp_usdt = float(config.perp_usdt) if config.perp_usdt is not None else bal["perp"]["USDT"]
    a_fee = {"perp_taker_fee": params.first_perp_taker_fee} if pp else {"spot_taker_fee": params.spot_taker_fee}
    ca = PaperCore(_venue_config(config.spot_paper, params.spot_venue, a_fee),
                   balances={"perp" if pp else "spot": {"USDT": spot_usdt}})
    cb = PaperCore(_venue_config(config.perp_paper, params.perp_venue, {"perp_taker_fee": params.perp_taker_fee}),
                   balances={"perp": {"USDT": perp_usdt}})
    params = resolve_costs(params, pair_from_paper(ca.config, cb.config) if pp else from_paper(ca.config, cb.config))
    pa, pb = PaperExchange(ca, save_on_apply=False), PaperExchange(cb, save_on_apply=False)
    first_sym = tl.perp_symbol if pp else tl.spot_symbol
    spot_inst, perp_inst = ca.instruments.get(first_sym), cb.instruments.get(tl.perp_symbol)
    if spot_inst is None or perp_inst is None:
        raise InvalidInput("symbols", (first_sym, tl.perp_symbol),
                           f"a {'perp' if pp else 'spot'} market of {ca.config.venue} {sorted(ca.instruments)} and a "
                           f"perp market of {cb.config.venue} {sorted(cb.instruments)}")
    rec = _Recorder()
    ctx = new_hedge(config.hedge_id, params.strategy, spot_inst, perp_inst, pd.Timestamp(int(tl.ts[0]), tz="UTC"))
    # two perp legs of one symbol: each venue's own adapter (actions carry their leg's venue); a spot
    # first leg: the routed adapter, by symbol, as the runner uses it
    routed = RoutedAdapter(pa, pb)
    adapters = {ca.config.venue: pa, cb.config.venue: pb} if pp else {ca.config.venue: routed, cb.config.venue: routed}
    driver = HedgeDriver(ctx, params, adapters, hooks=rec.hooks(), poll_external_fills=False)
    snap, states = replay_pair(driver, tl, ta, ca, cb) if ta is not None else _replay(driver, tl, ca, cb)
    capital = config.capital if config.capital is not None else capital_of(params, px0)
    ltv = np.full((tl.n, 2), np.nan)
    bcfg = BacktestConfig(hedge_id=config.hedge_id, paper=cb.config, spot_usdt=spot_usdt, perp_usdt=perp_usdt,
                          capital=capital, spec=config.spec, warmup=config.warmup)
    result = _assemble(params, tl, bcfg, driver, _Both(ca, cb), rec, snap, states, ltv, capital,  # type: ignore[arg-type]
                       keep_timeline=True)
    meta_notes = tuple(getattr(market, "meta", {}).get("notes", ())) if isinstance(market, Market) else ()
    if ta is not None:
        legs = (f"first leg: perp on {ca.config.venue} (taker fee {ca.config.perp_taker_fee:g}, its own funding every "
                f"{ta.interval_hours:g}h), second leg: perp on {cb.config.venue} (taker fee "
                f"{cb.config.perp_taker_fee:g}, its own funding every {tl.interval_hours:g}h); long the perp where "
                "funding is lower, short where it is higher; no transfer between venues: each futures wallet is "
                "funded on its own venue")
    else:
        legs = (f"spot leg on {ca.config.venue} (taker fee {ca.config.spot_taker_fee:g}), perp leg on {cb.config.venue} "
                f"(taker fee {cb.config.perp_taker_fee:g}, funding every {tl.interval_hours:g}h); no transfer between "
                "venues: each wallet is funded on its own venue")
    all_notes = (*meta_notes, *notes, legs)
    return CrossVenueRun(result, _per_venue(ca, cb, spot_usdt, perp_usdt, pp), all_notes, ca.config.venue,
                         cb.config.venue)


def _per_venue(ca: PaperCore, cb: PaperCore, spot0: float, perp0: float, pair: bool = False) -> pd.DataFrame:
    if pair:  # both venues hold a perp leg: futures wallets, fees and each venue's own funding
        rows = [{"venue": c.config.venue, "leg": leg, "wallet_start": w0, "wallet_end": c.wallet,
                 "fees": float(sum(f.fee for f in c.fills)), "funding": float(sum(p.amount for p in c.funding_payments)),
                 "orders": len(c.orders)} for c, leg, w0 in ((ca, "first perp", spot0), (cb, "second perp", perp0))]
        return pd.DataFrame(rows).set_index("venue")
    rows = [{"venue": ca.config.venue, "leg": "spot", "wallet_start": spot0, "wallet_end": ca.spot.get("USDT", 0.0),
             "fees": float(sum(f.fee for f in ca.fills)), "funding": 0.0, "orders": len(ca.orders)},
            {"venue": cb.config.venue, "leg": "perp", "wallet_start": perp0, "wallet_end": cb.wallet,
             "fees": float(sum(f.fee for f in cb.fills)), "funding": float(sum(p.amount for p in cb.funding_payments)),
             "orders": len(cb.orders)}]
    return pd.DataFrame(rows).set_index("venue")


def _replay(driver: HedgeDriver, tl: Timeline, ca: PaperCore, cb: PaperCore) -> tuple[np.ndarray, list[str]]:
    """The replay loop of :mod:`hedge_core.backtest.event` with the legs' bars on their own venues."""
    va, vb = ca.config.venue, cb.config.venue
    spot_sym, perp_sym, tf = tl.spot_symbol, tl.perp_symbol, tl.timeframe
    bar = pd.Timedelta(tf)
    index = tl.index
    names = tl.input_names
    rows: list[tuple[float, ...]] = []
    states: list[str] = []
    reported: set[str] = set()
    n_liq, liq_from = 0, 0
    for i in range(tl.n):
        t = index[i]
        label = t - bar
        if tl.has_spot[i]:
            o, h, lo, cl, v = tl.spot_bar[i].tolist()
            ca.apply(Bar(label, va, spot_sym, MarketKind.SPOT, o, h, lo, cl, v, tf))
        if tl.has_perp[i]:
            o, h, lo, cl, v = tl.perp_bar[i].tolist()
            cb.apply(Bar(label, vb, perp_sym, MarketKind.PERP, o, h, lo, cl, v, tf))
        if tl.has_mark[i]:
            o, h, lo, cl, _v = tl.mark_bar[i].tolist()
            cb.apply(Bar(label, vb, perp_sym, MarketKind.MARK, o, h, lo, cl, 0.0, tf))
        if len(cb.liquidations) > n_liq:  # the perp venue's liquidation fills, booked before the engine acts
            _report_liquidations(driver, cb, liq_from, reported)
            n_liq = len(cb.liquidations)
        liq_from = len(cb.fills)
        if tl.priced[i]:
            an = MappingProxyType({k: float(x) for k, x in zip(names, tl.inputs[i].tolist()) if not math.isnan(x)})
            driver.feed_now(MarketUpdate(ts=t, spot=float(tl.spot[i]), perp=float(tl.perp[i]), mark=float(tl.mark[i]),
                                         spot_volume=float(tl.spot_vol[i]), perp_volume=float(tl.perp_vol[i]),
                                         funding_rate=float(tl.last_rate[i]),
                                         next_funding_ts=pd.Timestamp(int(tl.next_fund_ns[i]), tz="UTC"),
                                         funding_interval_hours=tl.interval_hours, analytics=an))
        rate = float(tl.fund_rate[i])
        if not math.isnan(rate):
            hours = float(tl.fund_hours[i])
            cb.apply(FundingEvent(t, vb, perp_sym, rate, hours))  # venue B settles at ITS interval
            mk = float(tl.mark[i]) if not math.isnan(tl.mark[i]) else float(tl.perp[i])
            if not math.isnan(mk):
                driver.feed_now(FundingSettled(t, rate, mk, interval_hours=hours))
        rows.append(ledger_row(driver.ctx))
        states.append(str(driver.ctx.state))
    return np.array(rows, dtype=float).reshape(tl.n, 14), states
