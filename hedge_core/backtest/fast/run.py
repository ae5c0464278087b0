"""Running the kernels: arguments in, pandas results and KPIs out (the fast path's public entry points).

:func:`run_fast` (fills, transitions, snapshots), :func:`fast_kpis` (the sweep's form: KPIs only,
no pandas objects per run) and :func:`run_fast_or_event` (the event-driven path when the fast path
refuses). The kernel is chosen by the strategy's ``fast_kernel`` (``"hedge"`` or ``"voltier"``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hedge_core.backtest.fast.codes import ERROR_MESSAGES, Err, Tr
from hedge_core.backtest.fast.hedge_kernel import hedge_kernel
from hedge_core.backtest.fast.pack import brackets, pack_hedge, pack_voltier, tiers
from hedge_core.backtest.fast.scope import FastPathUnsupported, check_supported, kernel_of
from hedge_core.backtest.fast.signals import entry_ratio, entry_signal, input_column, liq_arrays, priced_prices
from hedge_core.backtest.fast.transitions import TRANSITIONS
from hedge_core.backtest.fast.voltier_kernel import voltier_kernel
from hedge_core.backtest.timeline import Market, Timeline, timeline_of
from hedge_core.exchange.costs import CostModel, from_paper, resolve_costs
from hedge_core.params.models import StrategyParamsBase

if TYPE_CHECKING:
    from hedge_core.backtest.event import BacktestConfig
    from hedge_core.exchange.paper.core import PaperConfig

__all__ = ["FastResult", "fast_kpis", "run_fast", "run_fast_or_event"]


@dataclass
class FastResult:
    """Raw outputs of one fast run (arrays over the timeline's instants)."""

    snap: np.ndarray
    states: np.ndarray
    fills: pd.DataFrame  # ts, leg, side, qty, price, fee, slippage
    transitions: pd.DataFrame  # ts, from_state, to_state, trigger_name
    timeline: Timeline
    ltv: np.ndarray | None = None  # loan book: LTV per instant (after the engine acted)
    loan: dict | None = None  # loan book: the loan and reserve at the end of the run
    last: np.ndarray | None = None  # the last instant's full snapshot row (14 columns)
    ltv_before: np.ndarray | None = None  # loan book: LTV before the engine acted (NaN: no market update)
    first_leg_funding: np.ndarray | None = None  # two perp legs: the first leg's funding to date per instant (quote)


def _utc_index(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(ns, dtype="int64").view("datetime64[ns]")).tz_localize("UTC")


def run_fast(params: StrategyParamsBase, market: Market | Timeline, *, start: object | None = None,
             end: object | None = None, config: BacktestConfig | None = None, enter: np.ndarray | None = None,
             compact: bool = False, costs: CostModel | None = None,
             spot_paper: PaperConfig | None = None) -> FastResult:
    """Run the strategy's kernel. Same arguments as :func:`hedge_core.backtest.event.run_backtest`.

    ``compact=True`` (sweeps) keeps per instant only what the KPIs read: ``snap`` columns net,
    perp qty, hedge ratio; the spot and perp prices the kernel saw are :func:`priced_prices` of
    the timeline (the same doubles, shared by every run); the full last row is in ``FastResult.last``.
    ``costs``: the entry filter's cost model when the legs are on two venues (``fast.xvenue``);
    None = the paper venue's (``exchange.costs.from_paper``). ``spot_paper``: the spot leg's venue when the legs
    are on two (``fast.xvenue``: its fixed slippage and impact price the spot fills); None = ``config.paper``.

    Raises
    ------
    FastPathUnsupported
        Outside the kernel's scope (see ``docs/fast-path.md``), with the reason and instant.
    """
    raw = _run_raw(params, market, start=start, end=end, config=config, enter=enter, compact=compact, costs=costs,
                   spot_paper=spot_paper)
    fills, trans = fills_and_transitions(raw)
    return FastResult(raw.snap, raw.states, fills, trans, raw.timeline, raw.ltv, raw.loan, raw.last, raw.ltv_before)


def fills_and_transitions(raw: _Raw) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A kernel run's fill buffers as the fills frame (ts, leg, side, qty base, price and fee and slippage quote)
    and its transition codes as the transitions frame (ts, from_state, to_state, trigger_name)."""
    tl, nf, nt = raw.timeline, raw.nf, raw.nt
    fi = raw.f_i[:nf]
    fills = pd.DataFrame({"ts": _utc_index(tl.ts[fi]), "leg": np.where(raw.f_leg[:nf] == 1, "perp", "spot"),
                          "side": np.where(raw.f_side[:nf] > 0, "buy", "sell"), "qty": raw.f_qty[:nf],
                          "price": raw.f_px[:nf], "fee": raw.f_fee[:nf], "slippage": raw.f_slip[:nf]})
    rows = []
    tix = _utc_index(tl.ts[raw.t_i[:nt]])
    for k in range(nt):
        for fr, to, trig in TRANSITIONS[Tr(int(raw.t_code[k]))]:
            rows.append({"ts": tix[k], "from_state": fr, "to_state": to, "trigger_name": trig})
    return fills, pd.DataFrame(rows, columns=["ts", "from_state", "to_state", "trigger_name"])


@dataclass
class _Raw:
    """Kernel outputs before any pandas object is built (what the sweep KPIs need)."""

    timeline: Timeline
    snap: np.ndarray
    states: np.ndarray
    last: np.ndarray
    ltv: np.ndarray | None
    loan: dict | None
    nf: int
    nt: int
    f_i: np.ndarray
    f_leg: np.ndarray
    f_side: np.ndarray
    f_qty: np.ndarray
    f_px: np.ndarray
    f_fee: np.ndarray
    f_slip: np.ndarray
    t_i: np.ndarray
    t_code: np.ndarray
    ltv_before: np.ndarray | None = None  # loan book: LTV before the engine acted, per instant

    def triggers(self) -> np.ndarray:
        """Trigger names of the transitions, in order (as ``FastResult.transitions['trigger_name']``)."""
        return np.array([trig for k in range(self.nt) for _fr, _to, trig in TRANSITIONS[Tr(int(self.t_code[k]))]],
                        dtype=object)


def _run_raw(params: StrategyParamsBase, market: Market | Timeline, *, start: object | None = None,
             end: object | None = None, config: BacktestConfig | None = None, enter: np.ndarray | None = None,
             compact: bool = False, costs: CostModel | None = None, spot_paper: PaperConfig | None = None) -> _Raw:
    """``costs``: the entry filter's cost model when it is not the one venue's (two venues: ``.xvenue``);
    ``spot_paper``: the spot leg's venue then (its slippage model prices the spot fills)."""
    from hedge_core.backtest.event import BacktestConfig, _balances, _paper_config

    cfg = config if config is not None else BacktestConfig()
    # the entry filter prices the venue's round trip
    params = resolve_costs(params, costs if costs is not None else from_paper(cfg.paper))
    check_supported(params, cfg.paper)
    tl = timeline_of(market, start=start, end=end, warmup=cfg.warmup, spec=cfg.spec)
    if costs is None:  # one venue: the model run_backtest replays this timeline with (another venue's committed
        # defaults become this venue's own lot, contract size and table); two venues (.xvenue) pass their own model
        cfg = replace(cfg, paper=_paper_config(cfg, tl.venue, (tl.spot_symbol, tl.perp_symbol)))
    check_supported(params, cfg.paper, tl.perp_symbol)
    if "liq_price" in tl.input_names:
        raise FastPathUnsupported("a 'liq_price' analytics input (the guard would use the feed's price)")
    first_px = tl.first_spot_price
    balances = _balances(params, cfg, first_px)
    voltier = kernel_of(params) == "voltier"
    if voltier:
        rec = pack_voltier(params, cfg.paper, tl, balances, first_px)
    else:
        rec = pack_hedge(params, cfg.paper, tl, balances, spot_paper=spot_paper)
    floors, caps, mmrs, cums, maxlevs = brackets(cfg.paper, tl.perp_symbol)
    n = tl.n
    sig = input_column(tl, "sigma_24h")
    liq_check, liq_ext = liq_arrays(tl)
    snap = np.empty((n, 3 if compact else 14))  # the kernel writes every row
    last = np.empty(14)
    states = np.empty(n, dtype=np.int8)  # S_* codes per instant
    ltv = None
    ltv_pre = None
    loan = None
    if voltier:
        tier = tiers(params, sig)
        ltv = np.empty(n)
        ltv_pre = np.empty(n)
        loan_out = np.zeros(7)
        asof_out = np.zeros(1, dtype=np.int64)
    else:
        beta = input_column(tl, "beta")
        ok = entry_signal(params, tl) if enter is None else enter
        eratio = entry_ratio(params, tl)
        support = np.asarray(getattr(params, "support_levels", ()), dtype="float64")  # grid only
    cap = 4096
    while True:
        f_i = np.empty(cap, dtype=np.int64)
        f_leg = np.empty(cap, dtype=np.int64)
        f_side, f_qty, f_px, f_fee, f_slip = (np.empty(cap) for _ in range(5))
        t_i = np.empty(cap, dtype=np.int64)
        t_code = np.empty(cap, dtype=np.int64)
        if voltier:
            nf, nt, err, ei = voltier_kernel(tl.ts, tl.spot, tl.perp, tl.mark, tl.perp_vol, tl.priced, tl.fund_rate,
                                             tl.last_rate, sig, tier, liq_check, liq_ext, rec, floors, caps,
                                             mmrs, cums, maxlevs, snap, last, ltv, ltv_pre, states, loan_out, asof_out,
                                             f_i, f_leg,
                                             f_side, f_qty, f_px, f_fee, f_slip, t_i, t_code)
        else:
            nf, nt, err, ei = hedge_kernel(tl.ts, tl.spot, tl.perp, tl.mark, tl.spot_vol, tl.perp_vol, tl.priced,
                                           tl.fund_rate, tl.last_rate, tl.next_fund_ns, sig, beta, ok, eratio,
                                           liq_check, liq_ext, rec,
                                           floors, caps, mmrs, cums, maxlevs, support, snap, last, states, f_i, f_leg,
                                           f_side, f_qty, f_px, f_fee, f_slip, t_i, t_code)
        if err != Err.BUFFER_FULL or cap >= 8 * n + 16:
            break
        cap = 8 * n + 16  # more fills than the first buffer holds: run again with room for all
    if err:
        at = pd.Timestamp(int(tl.ts[ei]), tz="UTC")
        raise FastPathUnsupported(f"{ERROR_MESSAGES[Err(int(err))]} at {at}")
    if voltier:
        loan = {"principal": float(loan_out[0]), "accrued_interest": float(loan_out[1]),
                "as_of": pd.Timestamp(int(asof_out[0]), tz="UTC"), "interest_paid": float(loan_out[3]),
                "principal_paid": float(loan_out[4]), "repaid": float(loan_out[5]),
                "reserve_deployed": float(loan_out[6])}
    if not compact:
        last = snap[-1].copy()
    return _Raw(tl, snap, states, last, ltv, loan, int(nf), int(nt), f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip,
                t_i, t_code, ltv_pre)


def fast_kpis(params: StrategyParamsBase, market: Market | Timeline, *, config: BacktestConfig | None = None,
              capital: float | None = None, **kw: Any) -> dict[str, float]:
    """KPIs of a fast run: the same ``backtest_kpis.kpis_from_arrays`` the event-driven result uses
    (plus, for a loan book, the loan's own money accrued to the end, as ``backtest._assemble``)."""
    from hedge_core.backtest.event import capital_of
    from hedge_core.backtest.kpis import _last_of_day, kpis_from_arrays

    r = _run_raw(params, market, config=config, compact=True, **kw)
    tl = r.timeline
    first_px = tl.first_spot_price
    cap = capital if capital is not None else (
        config.capital if config is not None and config.capital is not None else capital_of(params, first_px))
    last = r.last
    totals = {"price_pnl": float(last[0] + last[1]), "funding": float(last[2]), "fees": float(last[3]),
              "slippage": float(last[4]), "interest": float(last[5])}
    trig = r.triggers()
    repaid = None if r.loan is None else r.loan["repaid"]
    spot_px, perp_px = priced_prices(tl)
    k = kpis_from_arrays(tl.ts, r.snap[:, 0], r.snap[:, 1], r.snap[:, 2], spot_px, perp_px, r.ltv,
                         totals, trig, params, capital=cap, n_fills=r.nf, repaid=repaid, ltv_before=r.ltv_before,
                         last_of_day=tl.cached("kpis.last_of_day", lambda: _last_of_day(tl.ts)))
    if r.loan is not None:
        from hedge_core.ltv import Loan, accrue

        lo = r.loan
        loan = Loan(principal=lo["principal"], apr=params.loan_apr, as_of=lo["as_of"],
                    accrued_interest=lo["accrued_interest"], interest_paid=lo["interest_paid"],
                    principal_paid=lo["principal_paid"])
        end = pd.Timestamp(int(tl.ts[-1]), tz="UTC")
        if end > loan.as_of:
            loan = accrue(loan, end)
        k["loan_interest"] = float(loan.accrued_interest) + float(loan.interest_paid)
        k["loan_repaid_from_profit"] = float(lo["repaid"])
        k["reserve_deployed"] = float(lo["reserve_deployed"])
        k["loan_outstanding"] = float(loan.principal) + float(loan.accrued_interest)
    return k


def run_fast_or_event(params: StrategyParamsBase, market: Market | Timeline,
                      **kw: Any) -> tuple[str, dict[str, float]]:
    """KPIs from the fast path when it accepts the run, else from the event-driven backtester.

    Returns ('fast' | 'event', kpis).
    """
    try:
        return "fast", fast_kpis(params, market, **kw)
    except FastPathUnsupported:
        from hedge_core.backtest.event import run_backtest

        kw2 = {k: v for k, v in kw.items() if k in ("start", "end", "config")}
        if kw2.get("config") is None:
            kw2.pop("config", None)
        return "event", run_backtest(params, market, keep_timeline=False, **kw2).kpis

