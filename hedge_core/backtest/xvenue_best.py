"""Cross-venue carry backtest whose perp venue is chosen at EACH ENTRY among the set's allowed venues.

:func:`run_best_perp_backtest` (reached through ``run_cross_venue_backtest(..., perp_markets=...)``) runs
the replay of :mod:`hedge_core.backtest.xvenue` with one paper venue per allowed perp venue
(``CrossCarryParams.allowed_perp_venues``), each fed its OWN market (its bars and its funding at its own
interval: ``perp_markets``) and its own model and fee (``perp_papers``). The spot leg stays on
``params.spot_venue``.

While the hedge is flat (``ANALYZING_MARKET``, both legs 0), before each priced instant is stepped, every
venue's paper book (:meth:`~hedge_core.exchange.paper.core.PaperCore.order_book`, the fill its model gives) is
walked for the entry that instant may make (``notional / perp price`` base, on the side of
:func:`hedge_core.runner.best_perp.entry_side` at the current venue's expected funding rate) with the venue's
perp taker fee, and the best all-in quote flow wins (:func:`hedge_core.exchange.best_venue.choose_venue`; ties:
the lower fee, then the order of ``allowed_perp_venues``; a venue whose futures wallet cannot carry the entry,
:func:`hedge_core.engine.sizing_bounds.perp_margin_cap` at the set's minimum leverage, is ranked last). The
engine's perp leg is then on that venue: its
orders, fills, fee, margin and funding are that venue's, and the strategy sees that venue's funding. Never
mid-position: once the hedge holds a position it stays where it entered until it is flat again, as the
runner does (:mod:`hedge_core.runner.best_entry`). When no venue can fill the size, the current venue stays.

``CrossVenueRun.choices`` has one row per ENTRY (the instant the engine left ``ANALYZING_MARKET``): ``ts``,
``venue``, ``side``, ``amount`` (base), ``taker_fee`` and each venue's all-in price (``all_in.<venue>``,
quote per base after the fee; NaN where the book was too thin). ``per_venue`` has the spot venue and every
perp venue (its futures wallet start/end, fees, funding, orders). Each perp venue's futures wallet starts with
the same ``perp_usdt`` (no money moves between venues).

The data assumption of :mod:`hedge_core.backtest.xvenue` holds: in the shared data the venues' markets share
Binance's prices and differ in funding; then only the fees and the paper models (slippage, impact) decide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from hedge_core.backtest.event import (
    BacktestConfig,
    _assemble,
    _Recorder,
    _report_liquidations,
    capital_of,
    initial_balances,
)
from hedge_core.backtest.timeline import Market, Timeline, timeline_of
from hedge_core.backtest.xvenue import CrossVenueConfig, CrossVenueRun, _venue_config
from hedge_core.backtest.xvenue_pair import ledger_row
from hedge_core.engine.context import new_hedge
from hedge_core.engine.driver import HedgeDriver
from hedge_core.engine.events import FundingSettled, MarketUpdate
from hedge_core.engine.ledger import QTY_EPS
from hedge_core.engine.states import State
from hedge_core.errors import InvalidInput
from hedge_core.exchange.best_venue import VenueBook, choose_venue
from hedge_core.exchange.costs import from_paper, resolve_costs
from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.paper.core import PaperConfig, PaperCore
from hedge_core.exchange.routed import RoutedAdapter
from hedge_core.params.xcarry import CrossCarryParams
from hedge_core.types import Bar, FundingEvent, MarketKind

__all__ = ["run_best_perp_backtest"]


class _All:
    """Every paper core seen as one for the result assembly (orders, funding, liquidations)."""

    def __init__(self, cores: list[PaperCore]) -> None:
        self.orders = {f"{c.config.venue}:{k}": v for c in cores for k, v in c.orders.items()}
        self.funding_payments = [p for c in cores for p in c.funding_payments]
        self.liquidations = [x for c in cores for x in c.liquidations]


def _markets(params: CrossCarryParams, market: Market | Timeline,
             perp_markets: Mapping[str, Market | Timeline]) -> dict[str, Market | Timeline]:
    allowed = params.allowed_perp_venues
    given = {str(k).strip().lower(): m for k, m in perp_markets.items()}
    bad = sorted(set(given) - set(allowed))
    if bad:
        raise InvalidInput("perp_markets", bad, f"markets of the set's allowed perp venues {list(allowed)}")
    out = {v: given.get(v, market if v == params.perp_venue else None) for v in allowed}
    missing = [v for v, m in out.items() if m is None]
    if missing:
        raise InvalidInput("perp_markets", sorted(given), f"a market (its bars and its funding) for every allowed perp "
                           f"venue {list(allowed)}: missing {missing}")
    return out  # type: ignore[return-value]


def _timelines(params: CrossCarryParams, markets: Mapping[str, Market | Timeline], *, start: object | None,
               end: object | None, config: CrossVenueConfig) -> dict[str, Timeline]:
    tls = {v: timeline_of(m, start=start, end=end, warmup=config.warmup, spec=config.spec) for v, m in markets.items()}
    ref = tls[params.perp_venue]
    if ref.n < 2:
        raise InvalidInput("window", ref.n, "at least 2 replay instants")
    for v, tl in tls.items():
        if tl.n != ref.n or not np.array_equal(np.asarray(tl.index), np.asarray(ref.index)):
            raise InvalidInput(f"perp_markets.{v}", f"{tl.n} instants", f"the replay instants of {params.perp_venue}'s "
                               f"market ({ref.n}, {ref.index[0]} .. {ref.index[-1]}): the venues' bars on one clock")
    return tls


def _mu(tl: Timeline, i: int) -> MarketUpdate:
    an = MappingProxyType({k: float(x) for k, x in zip(tl.input_names, tl.inputs[i].tolist()) if not math.isnan(x)})
    return MarketUpdate(ts=tl.index[i], spot=float(tl.spot[i]), perp=float(tl.perp[i]), mark=float(tl.mark[i]),
                        spot_volume=float(tl.spot_vol[i]), perp_volume=float(tl.perp_vol[i]),
                        funding_rate=float(tl.last_rate[i]),
                        next_funding_ts=pd.Timestamp(int(tl.next_fund_ns[i]), tz="UTC"),
                        funding_interval_hours=tl.interval_hours, analytics=an)


def _choose(params: CrossCarryParams, cores: Mapping[str, PaperCore], mu: MarketUpdate, symbol: str,
            order: tuple[str, ...]) -> Any:
    """The venue with the best all-in flow for the entry ``mu`` may make (None: none can fill it)."""
    from hedge_core.runner.best_perp import entry_side

    if not (mu.perp > 0):
        return None
    from hedge_core.engine.sizing_bounds import perp_margin_cap

    amount = float(params.notional) / float(mu.perp)
    books, unread = [], {}
    for v in order:
        bal = cores[v].balance("perp").get("USDT")
        free = float(bal.free) if bal is not None else 0.0
        cap = perp_margin_cap(free, float(params.rebalance.target_ratio), float(params.leverage.min_leverage),
                              float(cores[v].config.perp_taker_fee), 0.01)
        if cap < float(params.notional):  # this venue's futures wallet cannot carry the entry: ranked last
            unread[v] = f"perp margin {free:,.2f} USDT free carries {cap:,.2f} < notional {params.notional:,.2f}"
            continue
        try:
            books.append(VenueBook(v, cores[v].order_book(symbol, None, amount), float(cores[v].config.perp_taker_fee)))
        except InvalidInput as exc:  # no bar of this venue yet: ranked last with why
            unread[v] = str(exc)
    try:
        return choose_venue(entry_side(params, mu.expected_funding_rate), amount, books, allowed=list(order),
                            unread=unread)
    except InvalidInput:
        return None


def run_best_perp_backtest(params: CrossCarryParams, market: Market | Timeline,
                           perp_markets: Mapping[str, Market | Timeline], *,
                           perp_papers: Mapping[str, PaperConfig] | None = None, start: object | None = None,
                           end: object | None = None, config: CrossVenueConfig = CrossVenueConfig(),
                           notes: tuple[str, ...] = ()) -> CrossVenueRun:
    """Backtest a cross-venue carry whose perp venue is chosen at each entry (see the module docstring).

    Parameters
    ----------
    params : CrossCarryParams
        ``spot_perp`` legs; ``allowed_perp_venues`` (``perp_venue`` and ``perp_venues``) are the candidates.
    market : Market or Timeline
        ``params.perp_venue``'s market (used when ``perp_markets`` has none for it).
    perp_markets : mapping venue -> Market or Timeline
        Every other allowed venue's market: its prices and its own funding (:func:`~hedge_core.backtest.xvenue.
        cross_venue_market`), on the same replay instants.
    perp_papers : mapping venue -> PaperConfig, optional
        A venue's paper model (fees, slippage, impact); a venue without one gets ``config.perp_paper`` (else
        the default model) with ``params.perp_taker_fee``, renamed to the venue.
    start, end, config, notes
        As :func:`~hedge_core.backtest.xvenue.run_cross_venue_backtest`.

    Raises
    ------
    InvalidInput
        Two perp legs; a market of a venue the set does not allow, or none for an allowed venue; markets on
        different instants; a paper config naming another venue.
    """
    if params.perp_perp:
        raise InvalidInput("legs", params.legs, "'spot_perp' to choose the perp venue per entry (two perp legs: "
                           "both venues are fixed)")
    allowed = params.allowed_perp_venues
    tls = _timelines(params, _markets(params, market, perp_markets), start=start, end=end, config=config)
    tl = tls[params.perp_venue]
    px0 = tl.first_spot_price
    bal = initial_balances(params, px0)
    spot_usdt = float(config.spot_usdt) if config.spot_usdt is not None else bal["spot"]["USDT"]
    perp_usdt = float(config.perp_usdt) if config.perp_usdt is not None else bal["perp"]["USDT"]
    papers = {str(k).strip().lower(): c for k, c in (perp_papers or {}).items()}
    for v, c in papers.items():
        if v not in allowed:
            raise InvalidInput("perp_papers", v, f"paper configs of the allowed perp venues {list(allowed)}")
        if c.venue != v:
            raise InvalidInput(f"perp_papers.{v}.venue", c.venue, f"{v!r} (the config of that venue)")
    ca = PaperCore(_venue_config(config.spot_paper, params.spot_venue, {"spot_taker_fee": params.spot_taker_fee}),
                   balances={"spot": {"USDT": spot_usdt}})
    cores = {v: PaperCore(papers.get(v) or _venue_config(config.perp_paper, v, {"perp_taker_fee": params.perp_taker_fee}),
                          balances={"perp": {"USDT": perp_usdt}}) for v in allowed}
    exchanges = {v: PaperExchange(c, save_on_apply=False) for v, c in cores.items()}
    pa = PaperExchange(ca, save_on_apply=False)
    perp_sym = tl.perp_symbol
    spot_inst = ca.instruments.get(tl.spot_symbol)
    insts = {v: c.instruments.get(perp_sym) for v, c in cores.items()}
    if spot_inst is None or any(i is None for i in insts.values()):
        raise InvalidInput("symbols", (tl.spot_symbol, perp_sym), f"a spot market of {ca.config.venue} and a perp market "
                           f"of every venue {list(allowed)}")

    def costed(v: str) -> CrossCarryParams:
        p = params.model_copy(update={"perp_venue": v, "perp_taker_fee": float(cores[v].config.perp_taker_fee)})
        return resolve_costs(p, from_paper(ca.config, cores[v].config))

    cur = params.perp_venue
    rec = _Recorder()
    ctx = new_hedge(config.hedge_id, params.strategy, spot_inst, insts[cur], pd.Timestamp(int(tl.ts[0]), tz="UTC"))
    routed = RoutedAdapter(pa, exchanges[cur])
    driver = HedgeDriver(ctx, costed(cur), {ca.config.venue: routed, **{v: routed for v in allowed}},
                         hooks=rec.hooks(), poll_external_fills=False)
    choices: list[dict[str, Any]] = []
    bar = pd.Timedelta(tl.timeframe)
    rows: list[tuple[float, ...]] = []
    states: list[str] = []
    reported: set[str] = set()
    n_liq, liq_from = 0, 0
    for i in range(tl.n):
        t = tl.index[i]
        label = t - bar
        if tl.has_spot[i]:
            o, h, lo, cl, vol = tl.spot_bar[i].tolist()
            ca.apply(Bar(label, ca.config.venue, tl.spot_symbol, MarketKind.SPOT, o, h, lo, cl, vol, tl.timeframe))
        for v, c in cores.items():
            tv = tls[v]
            if tv.has_perp[i]:
                o, h, lo, cl, vol = tv.perp_bar[i].tolist()
                c.apply(Bar(label, v, perp_sym, MarketKind.PERP, o, h, lo, cl, vol, tl.timeframe))
            if tv.has_mark[i]:
                o, h, lo, cl, _v = tv.mark_bar[i].tolist()
                c.apply(Bar(label, v, perp_sym, MarketKind.MARK, o, h, lo, cl, 0.0, tl.timeframe))
        cb = cores[cur]
        if len(cb.liquidations) > n_liq:  # the holding venue's liquidation fills, booked before the engine acts
            _report_liquidations(driver, cb, liq_from, reported)
            n_liq = len(cb.liquidations)
        liq_from = len(cb.fills)
        if tls[cur].priced[i]:
            c0 = driver.ctx
            choice = None
            if c0.state is State.ANALYZING_MARKET and abs(c0.spot.qty) <= QTY_EPS and abs(c0.perp.qty) <= QTY_EPS:
                choice = _choose(params, cores, _mu(tls[cur], i), perp_sym, allowed)
                if choice is not None and choice.venue != cur:  # the flat perp leg moves to the best venue
                    cur, cb = choice.venue, cores[choice.venue]
                    inst = insts[cur]
                    routed.perp, routed.perp_venue, routed.venue = exchanges[cur], cur, f"{ca.config.venue}+{cur}"
                    leg = replace(c0.perp, venue=cur, lot_size=inst.lot_size, min_qty=inst.min_qty,  # type: ignore[union-attr]
                                  min_notional=inst.min_notional, brackets=inst.brackets)  # type: ignore[union-attr]
                    driver.ctx = replace(c0, perp=leg)
                    driver.params = costed(cur)
                    n_liq, liq_from = len(cb.liquidations), len(cb.fills)
            driver.feed_now(_mu(tls[cur], i))
            if choice is not None and driver.ctx.state is not State.ANALYZING_MARKET:  # an entry: its venue
                choices.append({"ts": t, "venue": cur, "side": choice.side, "amount": choice.amount,
                                "taker_fee": float(cores[cur].config.perp_taker_fee),
                                **{f"all_in.{s.venue}": s.all_in_price for s in choice.ranking}})
        for v, c in cores.items():  # each venue settles its own funding at its own interval
            tv = tls[v]
            rate = float(tv.fund_rate[i])
            if math.isnan(rate):
                continue
            hours = float(tv.fund_hours[i])
            c.apply(FundingEvent(t, v, perp_sym, rate, hours))
            mk = float(tv.mark[i]) if not math.isnan(tv.mark[i]) else float(tv.perp[i])
            if v == cur and not math.isnan(mk):
                driver.feed_now(FundingSettled(t, rate, mk, interval_hours=hours))
        rows.append(ledger_row(driver.ctx))
        states.append(str(driver.ctx.state))
    snap = np.array(rows, dtype=float).reshape(tl.n, 14)
    capital = config.capital if config.capital is not None else capital_of(params, px0)
    ltv = np.full((tl.n, 2), np.nan)
    bcfg = BacktestConfig(hedge_id=config.hedge_id, paper=cores[params.perp_venue].config, spot_usdt=spot_usdt,
                          perp_usdt=perp_usdt, capital=capital, spec=config.spec, warmup=config.warmup)
    result = _assemble(driver.params, tl, bcfg, driver, _All([ca, *cores.values()]), rec, snap, states,  # type: ignore[arg-type]
                       ltv, capital, keep_timeline=True)
    meta_notes = tuple(getattr(market, "meta", {}).get("notes", ())) if isinstance(market, Market) else ()
    used = sorted({str(c["venue"]) for c in choices})
    legs = (f"spot leg on {ca.config.venue} (taker fee {ca.config.spot_taker_fee:g}); perp leg chosen at each entry "
            f"among {list(allowed)} by walked book and taker fee ("
            + ", ".join(f"{v} {cores[v].config.perp_taker_fee:g}" for v in allowed)
            + f"), never mid-position; entries on {used or 'no venue'}; no transfer between venues: each wallet is "
              "funded on its own venue")
    per = [{"venue": ca.config.venue, "leg": "spot", "wallet_start": spot_usdt, "wallet_end": ca.spot.get("USDT", 0.0),
            "fees": float(sum(f.fee for f in ca.fills)), "funding": 0.0, "orders": len(ca.orders)}]
    per += [{"venue": v, "leg": "perp", "wallet_start": perp_usdt, "wallet_end": c.wallet,
             "fees": float(sum(f.fee for f in c.fills)), "funding": float(sum(p.amount for p in c.funding_payments)),
             "orders": len(c.orders)} for v, c in cores.items()]
    return CrossVenueRun(result, pd.DataFrame(per).set_index("venue"), (*meta_notes, *notes, legs), ca.config.venue,
                         f"best of {'/'.join(allowed)}",
                         pd.DataFrame(choices, columns=["ts", "venue", "side", "amount", "taker_fee",
                                                        *(f"all_in.{v}" for v in allowed)]))
