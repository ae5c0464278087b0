"""Event-driven backtester: history from the store replayed through the ONE engine and the paper venue.

At each replay instant t (see :mod:`hedge_core.backtest.timeline`): the bars that ended at t are
applied to the :class:`~hedge_core.exchange.paper.PaperExchange` (fills of working orders,
liquidation checks on the mark bar's adverse extreme), then a
:class:`~hedge_core.engine.events.MarketUpdate` goes through
:class:`~hedge_core.engine.driver.HedgeDriver` (``step`` -> actions -> paper orders -> fills
fed back), then the funding settling at t is applied to the paper venue and fed to the engine
as :class:`~hedge_core.engine.events.FundingSettled` (at the last known mark). It is the same
driver and adapter code paper trading uses; only the clock and the feed differ.

Money model (all from the paper simulator and the engine ledger, nothing re-implemented here):
fills at the last bar close with fixed + square-root-impact slippage and taker fees; funding
``-qty x mark x rate`` at each funding time; borrow interest of a spot short accrued per
market update (``CarryParams.borrow_apr``); liquidation by the paper venue (Binance brackets).
A paper liquidation is reported to the engine as the venue's fill (client id ``liq-<n>``), so
the engine books it and re-hedges from the actual book. The slippage figures (per instant, per
leg, per fill) are the engine ledger's, ``engine.ledger.slippage_cost`` against the price
``step()`` decided each order at — the same definition paper and live trading book; with the
venue filling at that same price (a market order at the bar close) they equal the simulator's.

Result: :class:`BacktestResult` with the per-bar equity curve (components, delta, hedge ratio,
LTV after the engine acted and ``ltv_before`` it acted, at the price known at t), per-leg ledger totals, orders, fills, transitions, guard firings, funding payments,
liquidations and KPIs (:mod:`hedge_core.backtest.kpis`). :func:`save_run` writes it to the
store under its run id (``hedge_runs.mode = 'backtest'``).
"""

from __future__ import annotations

import gc
import json
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from hedge_core.backtest.timeline import DEFAULT_WARMUP, Market, Timeline, timeline_of
from hedge_core.backtest.kpis import compute_kpis, ltv_of
from hedge_core.engine.context import HedgeContext
from hedge_core.engine.driver import DriverHooks, HedgeDriver
from hedge_core.engine.events import FillEvent, FundingSettled, MarketUpdate
from hedge_core.engine.strategies import strategy_for
from hedge_core.errors import InvalidInput
from hedge_core.exchange.costs import from_paper, resolve_costs
from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.paper.core import PaperConfig, PaperCore
from hedge_core.analytics.inputs import InputSpec
from hedge_core.params.models import StrategyParamsBase
from hedge_core.types import Bar, FundingEvent, MarketKind

__all__ = [
    "EQUITY_COLUMNS",
    "BacktestConfig",
    "BacktestResult",
    "capital_of",
    "initial_balances",
    "load_run",
    "run_backtest",
    "save_run",
]

EQUITY_COLUMNS = ("price_pnl", "spot_price_pnl", "perp_price_pnl", "funding", "fees", "slippage", "interest",
                  "net", "equity", "delta", "hedge_ratio", "spot_qty", "perp_qty", "spot_price", "perp_price",
                  "mark_price", "basis", "funding_rate", "ltv", "ltv_before", "state")


@dataclass(frozen=True)
class BacktestConfig:
    """How a backtest is run (the strategy itself is in its params).

    Attributes
    ----------
    hedge_id : str
        Run id (also the hedge id: client order ids derive from it).
    paper : PaperConfig
        Venue model: fees, slippage, impact, liquidation fee (default Binance VIP0-like).
    spot_usdt, perp_usdt : float or None
        Initial wallets (quote). None = enough for the strategy's size (:func:`initial_balances`).
    capital : float or None
        Denominator of returns and APR (quote). None = :func:`capital_of` (notional, or the
        collateral value for a loan book).
    spec : InputSpec
        How analytics inputs are estimated.
    warmup : Timedelta
        History before ``start`` used for the analytics (not traded).
    """

    hedge_id: str = "bt-1"
    paper: PaperConfig = field(default_factory=PaperConfig)
    spot_usdt: float | None = None
    perp_usdt: float | None = None
    capital: float | None = None
    spec: InputSpec = field(default_factory=InputSpec)
    warmup: pd.Timedelta = DEFAULT_WARMUP


@dataclass
class BacktestResult:
    """Everything a run produced. Frames are indexed/stamped in UTC."""

    hedge_id: str
    params: StrategyParamsBase
    config: BacktestConfig
    start: pd.Timestamp
    end: pd.Timestamp
    capital: float
    equity: pd.DataFrame  # per instant, EQUITY_COLUMNS
    ledger: pd.DataFrame  # per leg: price_pnl realized unrealized funding fees slippage interest net
    orders: pd.DataFrame
    fills: pd.DataFrame
    transitions: pd.DataFrame
    guard_firings: pd.DataFrame
    funding_payments: pd.DataFrame
    liquidations: pd.DataFrame
    alerts: pd.DataFrame
    kpis: dict[str, float]
    final_state: str
    market: Timeline | None = None

    def totals(self) -> dict[str, float]:
        """Ledger totals (quote): price PnL, funding, fees, slippage, interest, net."""
        last = self.equity.iloc[-1]
        return {k: float(last[k]) for k in ("price_pnl", "funding", "fees", "slippage", "interest", "net")}


# ---- sizing -------------------------------------------------------------------------------------


def capital_of(params: StrategyParamsBase, spot_price: float) -> float:
    """Default capital for returns/APR (quote): the strategy's ``capital`` (the hedge notional, or
    the collateral value of a loan book: ``collateral_at(first spot price) x first spot price``)."""
    return strategy_for(params).capital(params, spot_price)


def initial_balances(params: StrategyParamsBase, spot_price: float) -> dict[str, dict[str, float]]:
    """Paper wallets large enough that orders of the strategy's own size are never refused.

    Spot: twice the notional (fees and re-entries after losses), or the collateral for a loan
    book. Perp: 1.5 x the largest hedge notional at the LOWEST allowed leverage. These wallets are
    the venue's cash, not the KPI capital (see :func:`capital_of`). The strategy's ``balances``.
    """
    return strategy_for(params).balances(params, spot_price)


# ---- the run --------------------------------------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.intents: list[dict[str, Any]] = []
        self.fills: list[dict[str, Any]] = []
        self.transitions: list[dict[str, Any]] = []
        self.guards: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []

    def hooks(self) -> DriverHooks:
        return DriverHooks(on_intent=self.on_intent, on_fill=self.on_fill, on_transition=self.on_transition,
                           on_guard=self.on_guard, on_alert=self.on_alert)

    def on_intent(self, hid: str, a: Any) -> None:
        r = a.request
        self.intents.append({"client_order_id": r.client_order_id, "venue": a.venue, "symbol": r.symbol,
                             "leg": a.leg, "side": str(r.side), "type": str(r.type), "qty": r.qty,
                             "reduce_only": bool(r.reduce_only), "purpose": a.purpose})

    def on_fill(self, hid: str, ev: FillEvent) -> None:
        f = ev.fill
        self.fills.append({"trade_id": f.trade_id, "order_id": f.order_id, "client_order_id": f.client_order_id,
                           "symbol": f.symbol, "leg": ev.leg, "side": str(f.side), "qty": f.qty, "price": f.price,
                           "fee": f.fee, "fee_currency": f.fee_currency, "liquidity": str(f.liquidity),
                           "slippage": f.slippage, "ts": f.ts})

    def on_transition(self, hid: str, a: Any) -> None:
        self.transitions.append({"ts": a.ts, "from_state": a.from_state, "to_state": a.to_state,
                                 "trigger_name": a.trigger, "reason": a.reason})

    def on_guard(self, hid: str, a: Any) -> None:
        self.guards.append({"ts": a.ts, "guard": a.name, "action": a.action, "numbers": dict(a.numbers)})

    def on_alert(self, hid: str, a: Any) -> None:
        self.alerts.append({"level": str(a.level), "message": a.message, "numbers": dict(a.numbers)})


def _new_ctx(params: StrategyParamsBase, tl: Timeline, cfg: BacktestConfig, core: PaperCore) -> HedgeContext:
    spot_inst = core.instruments.get(tl.spot_symbol)
    perp_inst = core.instruments.get(tl.perp_symbol)
    if spot_inst is None or perp_inst is None:
        raise InvalidInput("symbols", (tl.spot_symbol, tl.perp_symbol),
                           f"instruments the paper venue knows: {sorted(core.instruments)}")
    t0 = pd.Timestamp(int(tl.ts[0]), tz="UTC")
    px0 = float(tl.spot[np.argmax(~np.isnan(tl.spot))])
    return strategy_for(params).new_context(cfg.hedge_id, spot_inst, perp_inst, t0, px0, params)


def _paper_config(cfg: BacktestConfig, venue: str, symbols: tuple[str, str] = ()) -> PaperConfig:
    pc = cfg.paper
    if pc.venue != venue:  # another venue's defaults become this venue's own (its lot, contract size, table)
        from hedge_core.data.instruments import instruments_on_venue

        pc = replace(pc, venue=venue, instruments=instruments_on_venue(pc.instruments, pc.venue, venue))
    missing = [s for s in symbols if s not in {i.symbol for i in pc.instruments}]
    if missing:  # the committed snapshot's figures, or InvalidInput naming the symbol and the fix
        from hedge_core.data.instruments import pair_instruments

        pc = replace(pc, instruments=pc.instruments + tuple(
            i for i in pair_instruments(*symbols, venue) if i.symbol in missing))
    return pc


_CHUNK = 4096  # instants boxed to Python objects at a time (bounded memory on long runs)


def _event_makers(venue: str, tf: str) -> tuple[Any, Any]:
    """Constructors of the replay's per-instant :class:`Bar` and :class:`MarketUpdate`, the same
    objects as ``Bar(...)`` / ``MarketUpdate(...)`` (every slot set, equal, immutable) at half the
    cost: a frozen dataclass's ``__init__`` goes through ``object.__setattr__`` per field, these
    set each slot through its descriptor (3 bars and 1 update per instant: ~2-3 us of ~40)."""
    new = object.__new__
    b_ts, b_venue, b_sym, b_kind, b_o, b_h, b_l, b_c, b_v, b_tf = (getattr(Bar, f).__set__ for f in _BAR_FIELDS)
    (m_ts, m_spot, m_perp, m_mark, m_svol, m_pvol, m_rate, m_next_rate, m_next_ts, m_hours,
     m_an, m_smark, m_srate, m_shours, m_snext) = (getattr(MarketUpdate, f).__set__ for f in _UPDATE_FIELDS)
    nan = math.nan

    def bar(label: pd.Timestamp, sym: str, kind: MarketKind, o: float, h: float, lo: float, cl: float,
            v: float) -> Bar:
        b = new(Bar)
        b_ts(b, label)
        b_venue(b, venue)
        b_sym(b, sym)
        b_kind(b, kind)
        b_o(b, o)
        b_h(b, h)
        b_l(b, lo)
        b_c(b, cl)
        b_v(b, v)
        b_tf(b, tf)
        return b

    def update(t: pd.Timestamp, spot: float, perp: float, mark: float, svol: float, pvol: float, rate: float,
               next_ts: pd.Timestamp, hours: float, an: Mapping[str, float]) -> MarketUpdate:
        m = new(MarketUpdate)
        m_ts(m, t)
        m_spot(m, spot)
        m_perp(m, perp)
        m_mark(m, mark)
        m_svol(m, svol)
        m_pvol(m, pvol)
        m_rate(m, rate)
        m_next_rate(m, nan)
        m_next_ts(m, next_ts)
        m_hours(m, hours)
        m_an(m, an)
        m_smark(m, nan)  # a spot first leg: no first-leg mark or funding (engine.perp_legs)
        m_srate(m, nan)
        m_shours(m, 8.0)
        m_snext(m, None)
        return m
    return bar, update


_BAR_FIELDS = ("ts", "venue", "symbol", "kind", "open", "high", "low", "close", "volume", "timeframe")
_UPDATE_FIELDS = ("ts", "spot", "perp", "mark", "spot_volume", "perp_volume", "funding_rate", "next_funding_rate",
                  "next_funding_ts", "funding_interval_hours", "analytics", "spot_mark", "spot_funding_rate",
                  "spot_funding_interval_hours", "spot_next_funding_ts")


def _replay(params: StrategyParamsBase, tl: Timeline, cfg: BacktestConfig, balances: Mapping[str, Mapping[str, float]]):
    pc = _paper_config(cfg, tl.venue, (tl.spot_symbol, tl.perp_symbol))
    core = PaperCore(pc, balances=balances)
    ex = PaperExchange(core)
    rec = _Recorder()
    ctx = _new_ctx(params, tl, cfg, core)

    async def _nosleep(_: float) -> None:
        return None
    # No external-fill polling: the only fills here the engine did not order are the venue's
    # liquidations, and _report_liquidations feeds those (registered as known orders) BEFORE the
    # next market update, so a poll could never find one; it would only rescan core.fills per bar.
    driver = HedgeDriver(ctx, params, {tl.venue: ex}, hooks=rec.hooks(), sleep=_nosleep, poll_external_fills=False)
    n = tl.n
    rows: list[tuple[float, ...]] = []
    states: list[str] = []
    ltv = np.full(n, np.nan)  # after the engine acted at each instant
    ltv_pre = np.full(n, np.nan)  # before it acted: the price known at t, the book as it stood
    loan_book = strategy_for(params).loan_book  # ltv_of is NaN for anything else
    bar = pd.Timedelta(tl.timeframe)
    names = tl.input_names
    n_liq = 0
    liq_from = 0
    reported: set[str] = set()
    apply = core.apply  # the backtester owns this venue: no state file, so PaperExchange.apply == core.apply
    venue, spot_sym, perp_sym, tf = tl.venue, tl.spot_symbol, tl.perp_symbol, tl.timeframe
    SPOT, PERP, MARK = MarketKind.SPOT, MarketKind.PERP, MarketKind.MARK
    index = tl.index
    interval_hours = tl.interval_hours
    next_ts: dict[int, pd.Timestamp] = {}
    prev_inputs: list[float] | None = None
    an: Mapping[str, float] = MappingProxyType({})
    state_str: dict[Any, str] = {}
    mk_bar, mk_update = _event_makers(venue, tf)
    # Per-instant Python objects are made a chunk at a time from the arrays (same values as
    # float(arr[i]) / pd.Timestamp(ns, tz=UTC), at a fraction of the per-element cost).
    for c0 in range(0, n, _CHUNK):
        c1 = min(c0 + _CHUNK, n)
        ts_c = list(index[c0:c1])
        label_c = list(index[c0:c1] - bar)
        has_s, has_p, has_m = tl.has_spot[c0:c1].tolist(), tl.has_perp[c0:c1].tolist(), tl.has_mark[c0:c1].tolist()
        sb, pb, mb = tl.spot_bar[c0:c1].tolist(), tl.perp_bar[c0:c1].tolist(), tl.mark_bar[c0:c1].tolist()
        priced = tl.priced[c0:c1].tolist()
        spot_c, perp_c, mark_c = tl.spot[c0:c1].tolist(), tl.perp[c0:c1].tolist(), tl.mark[c0:c1].tolist()
        svol_c, pvol_c, rate_c = tl.spot_vol[c0:c1].tolist(), tl.perp_vol[c0:c1].tolist(), tl.last_rate[c0:c1].tolist()
        nf_c = tl.next_fund_ns[c0:c1].tolist()
        fr_c, fh_c = tl.fund_rate[c0:c1].tolist(), tl.fund_hours[c0:c1].tolist()
        in_c = tl.inputs[c0:c1].tolist()
        for j in range(c1 - c0):
            i = c0 + j
            t = ts_c[j]
            label = label_c[j]
            if has_s[j]:
                o, h, lo, cl, v = sb[j]
                apply(mk_bar(label, spot_sym, SPOT, o, h, lo, cl, v))
            if has_p[j]:
                o, h, lo, cl, v = pb[j]
                apply(mk_bar(label, perp_sym, PERP, o, h, lo, cl, v))
            if has_m[j]:
                o, h, lo, cl, _v = mb[j]
                apply(mk_bar(label, perp_sym, MARK, o, h, lo, cl, 0.0))
            if len(core.liquidations) > n_liq:
                _report_liquidations(driver, core, liq_from, reported)
                n_liq = len(core.liquidations)
            liq_from = len(core.fills)
            if priced[j]:
                row = in_c[j]
                if row != prev_inputs:  # same inputs as the last instant: share the same mapping
                    an = MappingProxyType({k: v for k, v in zip(names, row) if not math.isnan(v)})
                    prev_inputs = row
                nf = nf_c[j]
                nts = next_ts.get(nf)
                if nts is None:
                    next_ts.clear()
                    nts = next_ts[nf] = pd.Timestamp(nf, tz="UTC")
                m = mk_update(t, spot_c[j], perp_c[j], mark_c[j], svol_c[j], pvol_c[j], rate_c[j], nts,
                              interval_hours, an)
                if loan_book:
                    ltv_pre[i] = ltv_of(params, driver.ctx, t, spot_c[j])
                driver.feed_now(m)
            rate = fr_c[j]
            if not math.isnan(rate):
                hours = fh_c[j]
                apply(FundingEvent(t, venue, perp_sym, rate, hours))
                mk = mark_c[j] if not math.isnan(mark_c[j]) else perp_c[j]
                if not math.isnan(mk):
                    driver.feed_now(FundingSettled(t, rate, mk, interval_hours=hours))
            c = driver.ctx
            s, p = c.spot, c.perp
            s_pp = 0.0 if c.collateral_spot else s.realized + s.unrealized
            rows.append((s_pp, p.realized + p.unrealized, p.funding + (0.0 if c.collateral_spot else s.funding),
                         p.fees + s.fees, p.slippage + s.slippage, p.interest + s.interest, c.pnl, c.delta,
                         c.hedge_ratio, s.qty, p.qty, c.spot_price, c.perp_price, c.mark_price))
            st = state_str.get(c.state)
            if st is None:
                st = state_str[c.state] = str(c.state)
            states.append(st)
            if loan_book:
                ltv[i] = ltv_of(params, c, t)
    snap = np.array(rows, dtype=float).reshape(n, 14)
    return driver, core, rec, snap, states, np.column_stack([ltv, ltv_pre])


def _report_liquidations(driver: HedgeDriver, core: PaperCore, start: int, reported: set[str]) -> None:
    """Tell the engine about the venue's liquidation fills since ``core.fills[start]`` (it never sent
    those orders). ``reported`` remembers what was already fed (the engine's own duplicate filter
    only keeps the last few hundred trade ids)."""
    for f in core.fills[start:]:
        if not f.client_order_id.startswith("liq-") or f.trade_id in reported or f.symbol != driver.ctx.perp.symbol:
            continue
        reported.add(f.trade_id)
        # the engine only books fills of orders it knows: register the venue's liquidation id first
        driver.ctx = replace(driver.ctx, known_orders=driver.ctx.known_orders | {f.client_order_id})
        driver.feed_now(FillEvent(f, "perp"))


def run_backtest(params: StrategyParamsBase, market: Market | Timeline, *, start: object | None = None, end: object | None = None,
                 config: BacktestConfig = BacktestConfig(), keep_timeline: bool = True) -> BacktestResult:
    """Backtest one parameter set over ``[start, end]`` (default: the whole market after warm-up).

    Parameters
    ----------
    params : CarryParams | CrossHedgeParams | VolTierLoanParams | GridParams
    market : Market or Timeline
        The history (:func:`hedge_core.backtest.timeline.load_market`), or a prebuilt timeline.
    start, end : timestamp-like, optional
        Replay window (UTC). Bars in the ``config.warmup`` before ``start`` feed analytics only.
    config : BacktestConfig

    Returns
    -------
    BacktestResult
    """
    if isinstance(market, Market) and market.meta.get("instruments"):  # the store's rows (timeline.load_market)
        config = replace(config, paper=config.paper.with_instruments(market.meta["instruments"]))
    params = resolve_costs(params, from_paper(config.paper))  # the entry filter prices the venue's round trip
    tl = timeline_of(market, start=start, end=end, warmup=config.warmup, spec=config.spec)
    if tl.n < 2:
        raise InvalidInput("window", tl.n, "at least 2 replay instants")
    first_px = tl.first_spot_price
    balances = _balances(params, config, first_px)
    with _gc_frozen():
        driver, core, rec, snap, states, ltv = _replay(params, tl, config, balances)
    capital = config.capital if config.capital is not None else capital_of(params, first_px)
    return _assemble(params, tl, config, driver, core, rec, snap, states, ltv, capital, keep_timeline)


@contextmanager
def _gc_frozen() -> Iterator[None]:
    """Move the objects alive before the replay (market frames, timeline, modules) out of the
    cyclic GC's sight while it runs: the replay allocates millions of short-lived objects, and
    each older-generation collection would otherwise traverse everything (~15-25 % of a run).
    Only when nobody else froze objects; performance only, no effect on results."""
    mine = gc.isenabled() and gc.get_freeze_count() == 0
    if mine:
        gc.freeze()
    try:
        yield
    finally:
        if mine:
            gc.unfreeze()


def _balances(params: StrategyParamsBase, config: BacktestConfig, px: float) -> dict[str, dict[str, float]]:
    b = initial_balances(params, px)
    if config.spot_usdt is not None:
        b["spot"]["USDT"] = float(config.spot_usdt)
    if config.perp_usdt is not None:
        b["perp"]["USDT"] = float(config.perp_usdt)
    return b


def equity_frame(tl: Timeline, snap: np.ndarray, states: list[str], ltv: np.ndarray, capital: float) -> pd.DataFrame:
    """The per-instant equity curve from raw snapshot columns (shared with the fast path).

    ``ltv``: the LTV per instant after the engine acted, shape (n,), or (n, 2) with the LTV
    before it acted as the second column (``ltv_before``; NaN otherwise)."""
    idx = tl.index
    eq = pd.DataFrame(snap[:, :14], index=idx, columns=[
        "spot_price_pnl", "perp_price_pnl", "funding", "fees", "slippage", "interest", "net", "delta", "hedge_ratio",
        "spot_qty", "perp_qty", "spot_price", "perp_price", "mark_price"])
    eq.insert(0, "price_pnl", eq["spot_price_pnl"] + eq["perp_price_pnl"])
    eq["equity"] = capital + eq["net"]
    eq["basis"] = (eq["perp_price"] - eq["spot_price"]) / eq["spot_price"]
    eq["funding_rate"] = tl.last_rate
    lt = np.asarray(ltv, dtype="float64")
    eq["ltv"] = lt[:, 0] if lt.ndim == 2 else lt
    eq["ltv_before"] = lt[:, 1] if lt.ndim == 2 else np.nan
    eq["state"] = pd.array(states, dtype="str") if states else pd.array([""] * len(idx), dtype="str")
    return eq[list(EQUITY_COLUMNS)]


def _assemble(params: StrategyParamsBase, tl: Timeline, config: BacktestConfig, driver: HedgeDriver, core: PaperCore,
              rec: _Recorder, snap: np.ndarray, states: list[str], ltv: np.ndarray, capital: float,
              keep_timeline: bool) -> BacktestResult:
    eq = equity_frame(tl, snap, states, ltv, capital)
    c = driver.ctx
    legs = []
    for lg in (c.spot, c.perp):
        collateral = lg.name == "spot" and c.collateral_spot
        legs.append({"leg": lg.name, "symbol": lg.symbol, "qty": lg.qty, "realized": lg.realized,
                     "unrealized": lg.unrealized, "price_pnl": lg.realized + lg.unrealized, "funding": lg.funding,
                     "fees": lg.fees, "slippage": lg.slippage, "interest": lg.interest,
                     "net": lg.net_pnl, "in_pnl": not collateral, "traded_notional": lg.traded_notional})
    # slippage is the engine ledger's (engine.ledger.slippage_cost against the price step()
    # decided at), per leg and per fill; a venue liquidation fill keeps the venue's own figure
    ledger = pd.DataFrame(legs).set_index("leg")
    fills = pd.DataFrame(rec.fills, columns=["trade_id", "order_id", "client_order_id", "symbol", "leg", "side", "qty",
                                             "price", "fee", "fee_currency", "liquidity", "slippage", "ts"])
    orders = _orders(rec, core, tl)
    trans = pd.DataFrame(rec.transitions, columns=["ts", "from_state", "to_state", "trigger_name", "reason"])
    guards = pd.DataFrame(rec.guards, columns=["ts", "guard", "action", "numbers"])
    fp = pd.DataFrame([{"ts": f.ts, "symbol": f.symbol, "amount": f.amount, "rate": f.rate,
                        "position_qty": f.position_qty, "mark_price": f.mark_price}
                       for f in core.funding_payments],
                      columns=["ts", "symbol", "amount", "rate", "position_qty", "mark_price"])
    liq = pd.DataFrame([dict(r) for r in core.liquidations])
    alerts = pd.DataFrame(rec.alerts, columns=["level", "message", "numbers"])
    start, end = eq.index[0], eq.index[-1]
    kpis = compute_kpis(eq, trans, params, capital=capital, n_liquidations=len(liq), n_fills=len(fills),
                        repaid=None if c.loan is None else float(c.loan.repaid))
    kpis.update(strategy_for(params).extra_kpis(c, end, params))  # e.g. the loan book's own money
    return BacktestResult(config.hedge_id, params, config, start, end, capital, eq, ledger, orders, fills, trans,
                          guards, fp, liq, alerts, kpis, str(c.state), tl if keep_timeline else None)


def _orders(rec: _Recorder, core: PaperCore, tl: Timeline) -> pd.DataFrame:
    rows = []
    by_cid = {o.cid: o for o in core.orders.values()}
    for it in rec.intents:
        o = by_cid.get(it["client_order_id"])
        rows.append({**it, "order_id": o.id if o else None,
                     "status": str(o.status) if o else "rejected", "filled": o.filled if o else 0.0,
                     "avg_price": (o.cost / o.filled) if o and o.filled > 0 else math.nan,
                     "intent_ts": o.ts if o else pd.NaT})
    cols = ["client_order_id", "order_id", "venue", "symbol", "leg", "side", "type", "qty", "reduce_only", "status",
            "filled", "avg_price", "intent_ts", "purpose"]
    return pd.DataFrame(rows, columns=cols)


# ---- persistence --------------------------------------------------------------------------------


def save_run(store: Any, result: BacktestResult, *, params_name: str | None = None,
             params_version: int | None = None, synthetic: bool = False) -> str:
    """Write a run to the store under ``result.hedge_id`` (hedge_runs mode 'backtest', orders,
    fills, transitions, funding payments, guard firings, ltv history). Idempotent (upserts)."""
    hid = result.hedge_id
    tl_venue = result.fills["symbol"].iloc[0] if len(result.fills) else None  # noqa: F841
    p = result.params
    info = {"kpis": {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.kpis.items()},
            "totals": result.totals(), "capital": result.capital, "params": p.model_dump(mode="json")}
    venue = result.config.paper.venue if result.market is None else result.market.venue
    spot_sym = result.market.spot_symbol if result.market is not None else None
    perp_sym = result.market.perp_symbol if result.market is not None else None
    run = pd.DataFrame([{"hedge_id": hid, "mode": "backtest", "strategy": p.strategy, "params_name": params_name,
                         "params_version": params_version, "spot_venue": venue, "spot_symbol": spot_sym,
                         "perp_venue": venue, "perp_symbol": perp_sym, "state": result.final_state,
                         "started_at": result.start, "ended_at": result.end, "synthetic": synthetic,
                         "info": json.dumps(info, default=float)}])
    with store.transaction():
        store.write_table("hedge_runs", run)
        if len(result.transitions):
            t = result.transitions.copy()
            t.insert(0, "seq", np.arange(len(t), dtype="int64"))
            t.insert(0, "hedge_id", hid)
            store.write_table("transitions", t)
        if len(result.orders):
            o = result.orders.drop(columns=["purpose"]).copy()
            o["hedge_id"] = hid
            o["mode"] = "backtest"
            o["updated_ts"] = o["intent_ts"]
            o["price"] = math.nan
            store.write_table("orders", o)
        if len(result.fills):
            f = result.fills.copy()
            f["hedge_id"] = hid
            f["venue"] = venue
            store.write_table("fills", f)
        if len(result.funding_payments):
            fp = result.funding_payments.copy()
            fp["hedge_id"] = hid
            fp["venue"] = venue
            store.write_table("funding_payments", fp)
        if len(result.guard_firings):
            g = result.guard_firings.drop_duplicates(["ts", "guard"]).copy()
            g["hedge_id"] = hid
            g["numbers"] = [json.dumps(x, default=float) for x in g["numbers"]]
            store.write_table("guard_firings", g)
        snaps = _position_snapshots(result, hid, venue, spot_sym, perp_sym)
        if len(snaps):
            store.write_table("position_snapshots", snaps)
        dep = _reserve_deployments(result, hid)
        if len(dep):
            store.write_table("reserve_deployments", dep)
        lt = result.equity["ltv"].dropna()
        if len(lt):
            from hedge_core.ltv import ltv_band
            store.write_table("ltv_history", pd.DataFrame({
                "hedge_id": hid, "ts": lt.index, "ltv": lt.to_numpy(),
                "price": result.equity.loc[lt.index, "spot_price"].to_numpy(),
                "band": [_band(v, ltv_band) for v in lt.to_numpy()]}))
    return hid


def _position_snapshots(result: BacktestResult, hid: str, venue: str, spot_sym: str | None,
                        perp_sym: str | None) -> pd.DataFrame:
    """Both legs at every instant with a fill, and at the end (quantities, marks; uPnL of the perp)."""
    e = result.equity
    times = pd.DatetimeIndex(result.fills["ts"]).unique().union(e.index[[-1]]) if len(result.fills) else e.index[[-1]]
    rows = []
    for t in times:
        r = e.loc[t]
        for sym, qty, px in ((spot_sym, r["spot_qty"], r["spot_price"]), (perp_sym, r["perp_qty"], r["mark_price"])):
            if sym is None:
                continue
            rows.append({"hedge_id": hid, "ts": t, "venue": venue, "symbol": sym, "qty": float(qty),
                         "mark_price": float(px)})
    return pd.DataFrame(rows)


def _reserve_deployments(result: BacktestResult, hid: str) -> pd.DataFrame:
    g = result.guard_firings
    if not len(g):
        return pd.DataFrame()
    d = g[g["action"] == "deploy_reserve"].drop_duplicates("ts", keep="last")
    if not len(d):
        return pd.DataFrame()
    amt = [float(dict(n).get("deployed", math.nan)) for n in d["numbers"]]
    return pd.DataFrame({"hedge_id": hid, "ts": d["ts"].to_numpy(), "ltv": [float(dict(n).get("ltv", math.nan))
                                                                          for n in d["numbers"]],
                         "amount": amt, "cumulative": np.nancumsum(amt), "reason": d["guard"].to_numpy()})


def _band(v: float, fn: Any) -> str:
    try:
        return str(fn(float(v)))
    except Exception:  # noqa: BLE001 - an LTV outside the band table's domain (e.g. > 1) is reported as such
        return "out_of_range"


def load_run(store: Any, hedge_id: str) -> dict[str, pd.DataFrame]:
    """Read a saved run back: ``{'run', 'transitions', 'orders', 'fills', 'funding_payments', 'guard_firings',
    'ltv_history'}`` frames."""
    out = {"run": store.read_table("hedge_runs", hedge_id=hedge_id)}
    if not len(out["run"]):
        raise InvalidInput("hedge_id", hedge_id, "a run id saved in this store (hedge_runs)")
    for t in ("transitions", "orders", "fills", "funding_payments", "guard_firings", "ltv_history"):
        out[t] = store.read_table(t, hedge_id=hedge_id)
    return out
