"""KPIs of a backtest from its equity curve and transitions (math from ``analytics.metrics``).

KPI definitions (capital = the run's capital, quote):

- ``net_pnl`` and its components (quote); ``net_apr`` = ``metrics.net_apr(net, capital, start, end)``.
- ``sharpe``/``sortino``: ``metrics.sharpe``/``sortino`` of DAILY returns of ``capital + net``
  (UTC days, last value of each day), 24/7 annualisation; the first day's return is measured
  from the starting capital (``equity(end of day 1) / capital - 1``), so a run of N UTC days
  has N daily returns.
- ``max_drawdown``: ``metrics.max_drawdown`` of ``capital + net`` per bar (1.0 if it reaches 0;
  Sharpe and Sortino are then NaN: returns of an equity that crossed zero are meaningless).
- ``funding_efficiency``: ``metrics.funding_efficiency(funding paid, gross profit before funding)``
  (NaN when there is no gross profit, the normal case of a pure carry); ``funding_capture`` =
  net / funding received (share of the funding kept after costs and price PnL; NaN if none).
- ``hedge_effectiveness``: ``analytics.hedge_ratio.hedge_effectiveness`` of spot returns hedged
  with perp returns at the realised hedge ratio of the previous bar (bars in the market only).
- ``rebalance_count``: transitions DRIFT_EXCEEDED / REBALANCE_NOW / RISK_REDUCE; ``entries``:
  FILLED entries (transitions SPOT_FILLED; an ENTRY_SIGNAL whose spot order filled nothing,
  ENTRY_FAILED, is an attempt, not an entry);
  ``time_in_market`` (share of instants with a perp position).
- Loan books: the LTV per instant is the HIGHER of the LTV sampled before the engine acted
  (the new price against the book and loan as they stood) and after it acted, so a breach the
  engine handled within the instant still shows; ``ltv_max`` its maximum; ``ltv_below_65`` =
  ``metrics.ltv_stability(ltv, 0.65)``; ``time_in_<BAND>`` per ``ltv.ltv_band`` band;
  ``loan_coverage`` = ``metrics.loan_coverage_ratio(repaid, loan)``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hedge_core.analytics import metrics
from hedge_core.analytics.hedge_ratio import hedge_effectiveness
from hedge_core.errors import InvalidInput
from hedge_core.lazyjit import lazy_njit
from hedge_core.ltv import (
    BANDS,
    DEFAULT_PARAMS,
)

if TYPE_CHECKING:
    from hedge_core.engine.context import HedgeContext
    from hedge_core.params.models import StrategyParamsBase

__all__ = ["KPI_NAMES", "compute_kpis", "hold_pnl", "kpis_from_arrays", "loan_state", "ltv_bands", "ltv_of",
           "max_drawdown_array"]

KPI_NAMES = ("net_pnl", "price_pnl", "funding", "fees", "slippage", "interest", "net_apr", "sharpe", "sortino",
             "max_drawdown", "funding_efficiency", "funding_capture", "hedge_effectiveness", "rebalance_count",
             "entries", "time_in_market", "n_fills", "n_liquidations")
_REBALANCE = {"DRIFT_EXCEEDED", "REBALANCE_NOW", "RISK_REDUCE"}


def loan_state(params: StrategyParamsBase, ctx: HedgeContext, t: pd.Timestamp) -> tuple[float, float]:
    """(loan outstanding, cumulative repaid) in quote for a loan book; (NaN, NaN) otherwise.

    The strategy's ``loan_figures`` (:mod:`hedge_core.engine.strategies.protocol`): for the loan
    book, ``ctx.loan`` (an :class:`~hedge_core.engine.loan_state.LoanState`, as accrued by the
    strategy at its last market update, accrued here to ``t``); without one, the params' loan
    with simple interest.
    """
    from hedge_core.engine.strategies import strategy_for

    return strategy_for(params).loan_figures(ctx, t, params)


def ltv_of(params: StrategyParamsBase, ctx: HedgeContext, t: pd.Timestamp, price: float | None = None) -> float:
    """LTV = loan outstanding at ``t`` / (collateral qty x spot price) for a loan book, else NaN.

    ``price`` (quote per base): the spot price to value the collateral at; default the engine's
    last one (``ctx.spot_price``). The backtester passes the price known at ``t`` to sample the
    LTV before the engine has seen it."""
    out, _ = loan_state(params, ctx, t)
    if math.isnan(out):
        return math.nan
    value = ctx.spot.qty * (ctx.spot_price if price is None else price)
    return out / value if value > 0 else math.nan


def _idx(ns: np.ndarray) -> pd.DatetimeIndex:
    """UTC index from int64 nanoseconds (a view, no parsing)."""
    return pd.DatetimeIndex(np.asarray(ns, dtype="int64").view("datetime64[ns]")).tz_localize("UTC")


def _safe(fn, *a, **k) -> float:
    try:
        v = fn(*a, **k)
        return float(v)
    except InvalidInput:
        return math.nan


def compute_kpis(eq: pd.DataFrame, transitions: pd.DataFrame, params: StrategyParamsBase, *, capital: float,
                 n_liquidations: int = 0, n_fills: int = 0, repaid: float | None = None) -> dict[str, float]:
    """KPIs of one run (see the module docstring). ``eq`` is the per-instant equity frame."""
    last = eq.iloc[-1]
    trig = transitions["trigger_name"].to_numpy() if len(transitions) else np.array([], dtype=object)
    return kpis_from_arrays(
        eq.index.as_unit("ns").asi8, eq["net"].to_numpy(), eq["perp_qty"].to_numpy(), eq["hedge_ratio"].to_numpy(),
        eq["spot_price"].to_numpy(), eq["perp_price"].to_numpy(), eq["ltv"].to_numpy(),
        {c: float(last[c]) for c in ("price_pnl", "funding", "fees", "slippage", "interest")}, trig, params,
        capital=capital, n_liquidations=n_liquidations, n_fills=n_fills, repaid=repaid,
        ltv_before=eq["ltv_before"].to_numpy() if "ltv_before" in eq else None)


def kpis_from_arrays(ts_ns: np.ndarray, net: np.ndarray, perp_qty: np.ndarray, hedge_ratio: np.ndarray,
                     spot_price: np.ndarray, perp_price: np.ndarray, ltv: np.ndarray | None,
                     totals: dict[str, float], triggers: np.ndarray, params: StrategyParamsBase, *, capital: float,
                     n_liquidations: int = 0, n_fills: int = 0, repaid: float | None = None,
                     last_of_day: np.ndarray | None = None, ltv_before: np.ndarray | None = None) -> dict[str, float]:
    """The KPI math on plain arrays (one value per replay instant); shared by both backtest paths.

    ``ltv`` is the loan book's LTV after the engine acted at each instant, ``ltv_before`` the LTV
    before it acted (NaN where no market update came); the LTV KPIs read the higher of the two
    per instant, so a breach the engine handled within the instant still shows.

    ``last_of_day``: the index of each UTC day's last instant, when the caller has it (it depends
    on ``ts_ns`` alone; a sweep computes it once per timeline)."""
    if not (math.isfinite(capital) and capital > 0):
        raise InvalidInput("capital", capital, "> 0 (quote)")
    k: dict[str, float] = dict(totals)
    nv = float(net[-1])
    k["net_pnl"] = nv
    start = pd.Timestamp(int(ts_ns[0]), tz="UTC")
    end = pd.Timestamp(int(ts_ns[-1]), tz="UTC")
    k["net_apr"] = metrics.net_apr(nv, capital, start, end) if end > start else math.nan
    net, hedge_ratio, perp_qty, spot_price, perp_price = _f64(net, hedge_ratio, perp_qty, spot_price, perp_price)
    # one pass over the snapshot: equity, ruin and drawdown; time in market; effectiveness rows
    once = _snapshot_pass(float(capital), net, hedge_ratio, perp_qty, spot_price, perp_price)
    ruined, clean, mdd = once[:3]
    if last_of_day is None:
        last_of_day = _last_of_day(np.asarray(ts_ns, dtype=np.int64))
    day_ns = (np.asarray(ts_ns, dtype=np.int64)[last_of_day] // 86_400_000_000_000) * 86_400_000_000_000
    # day 1's return is measured from the starting capital (the equity before the first instant)
    eq_days = np.concatenate(([float(capital)], capital + net[last_of_day]))
    daily = pd.Series(eq_days, index=_idx(np.concatenate(([day_ns[0] - 86_400_000_000_000], day_ns))))
    rets = daily.pct_change().iloc[1:].dropna()
    # returns of an equity that crossed zero mean nothing
    k["sharpe"] = _safe(metrics.sharpe, rets, bar_seconds=86_400) if len(rets) >= 3 and not ruined else math.nan
    k["sortino"] = _safe(metrics.sortino, rets, bar_seconds=86_400) if len(rets) >= 3 and not ruined else math.nan
    if ruined:
        k["max_drawdown"] = 1.0
    elif clean and len(net):
        k["max_drawdown"] = mdd
    else:
        k["max_drawdown"] = max_drawdown_array(ts_ns, capital + net)
    fpaid = -k["funding"]
    k["funding_efficiency"] = metrics.funding_efficiency(fpaid, nv + fpaid)
    k["funding_capture"] = nv / k["funding"] if k["funding"] > 0 else math.nan
    k["time_in_market"], k["hedge_effectiveness"] = _share_and_effectiveness(ts_ns, hedge_ratio, perp_qty,
                                                                            spot_price, perp_price, once)
    k["rebalance_count"] = float(np.isin(triggers, list(_REBALANCE)).sum())
    k["entries"] = float((triggers == "SPOT_FILLED").sum())  # filled entries, not attempts
    k["n_fills"] = float(n_fills)
    k["n_liquidations"] = float(n_liquidations)
    if ltv is not None and ltv_before is not None:
        ltv = np.fmax(np.asarray(ltv, dtype="float64"), np.asarray(ltv_before, dtype="float64"))
    if ltv is not None and np.isfinite(ltv).any():
        ok = np.isfinite(ltv)
        lt = pd.Series(ltv[ok], index=_idx(ts_ns[ok]))
        k["ltv_below_65"] = metrics.ltv_stability(lt, 0.65)
        k["ltv_max"] = float(lt.max())
        codes = _ltv_band_codes(lt.to_numpy())
        d = np.diff(ts_ns[ok]).astype("float64")
        w = np.append(d, np.median(d) if len(d) else 1.0)
        for j, b in enumerate(BANDS):
            k[f"time_in_{b}"] = float(w[codes == j].sum() / w.sum())
        loan0 = float(getattr(params, "loan", 0.0))
        rep = repaid if repaid is not None else max(nv, 0.0)
        k["loan_coverage"] = metrics.loan_coverage_ratio(rep, loan0) if loan0 > 0 else math.nan
    return k


def ltv_bands(values: np.ndarray) -> np.ndarray:
    """``ltv.ltv_band`` (default bands) of each finite LTV, vectorised (the same comparisons, in
    the same order); negative values count as SAFE."""
    return np.array(BANDS)[_ltv_band_codes(values)]


def _ltv_band_codes(values: np.ndarray) -> np.ndarray:
    """Index into ``ltv.BANDS`` of each LTV (see :func:`ltv_bands`)."""
    p = DEFAULT_PARAMS
    v = np.asarray(values, dtype="float64")
    return np.select([v < 0, v < p.monitor, v < p.warning, v < p.critical, v < p.emergency], [0, 0, 1, 2, 3], 4)


def max_drawdown_array(ts_ns: np.ndarray, equity: np.ndarray) -> float:
    """``metrics.max_drawdown`` of ``equity`` (positive, finite) with the same element-wise
    operations on the bare array: ``-min(equity / running max - 1)``. Running maxima and minima
    are exact, so the result is the same double; anything ``metrics`` would reject goes to it."""
    if len(equity) == 0 or not (np.isfinite(equity).all() and (equity > 0).all()):
        return metrics.max_drawdown(pd.Series(equity, index=_idx(ts_ns)))
    return float(-(equity / np.maximum.accumulate(equity) - 1.0).min())


@lazy_njit(cache=True)
def _last_of_day(ts_ns):  # pragma: no cover - compiled
    """Index of the last instant of each UTC day (instants in time order)."""
    n = len(ts_ns)
    out = np.empty(n, dtype=np.int64)
    m = 0
    for i in range(n - 1):
        if ts_ns[i + 1] // 86_400_000_000_000 != ts_ns[i] // 86_400_000_000_000:
            out[m] = i
            m += 1
    if n:
        out[m] = n - 1
        m += 1
    return out[:m]


@lazy_njit(size_arg=2, cache=True)
def _snapshot_pass(capital, net, h, perp_qty, spot, perp):  # pragma: no cover - compiled
    """One pass over a run's per-instant arrays (the snapshot is read once):

    - equity ``capital + net`` (the same double per instant): ``ruined`` (some equity <= 0),
      ``clean`` (all finite and > 0) and ``mdd``, exactly :func:`max_drawdown_array` when clean
      (the running maximum and minimum are exact, each ratio the same IEEE ``e / peak - 1``);
    - ``n_pos`` instants with a position (time in market) and ``n_in`` of those with a ratio;
    - the kept effectiveness rows: ``y = spot[i+1] / spot[i] - 1``, ``x`` the same on perp, ratio
      ``h[i]``, when instant i was in the market and none is NaN (the numpy lines' operations).
    Pass ``net`` of length 0 to skip the equity part."""
    n = len(h)
    ne = len(net)
    ruined = False
    clean = True
    peak = -np.inf
    low = np.inf  # lowest equity since the running peak was set
    worst = np.inf
    n_in = 0
    n_pos = 0
    cap = 64
    yv = np.empty(cap)
    xv = np.empty(cap)
    hv = np.empty(cap)
    m = 0
    finite = True
    for i in range(max(n, ne)):  # one loop: the snapshot's rows are read once
        if i < ne:
            e = capital + net[i]
            if e <= 0:
                ruined = True
            if not (math.isfinite(e) and e > 0):
                clean = False
            if e > peak:
                # fl(e / peak) is monotone in e for a fixed positive peak, so the lowest ratio under
                # one peak is fl(low / peak): one division per new peak, the same double as per instant
                if low < np.inf:
                    worst = min(worst, low / peak - 1.0)
                peak = e
                low = e
            elif e < low:
                low = e
        if i >= n or not abs(perp_qty[i]) > 0:
            continue
        n_pos += 1
        if math.isnan(h[i]):
            continue
        n_in += 1
        if i == n - 1:
            continue
        y = spot[i + 1] / spot[i] - 1.0
        x = perp[i + 1] / perp[i] - 1.0
        if math.isnan(y) or math.isnan(x):
            continue
        if math.isinf(y) or math.isinf(x) or math.isinf(h[i]):
            finite = False
        if m == cap:  # grow (rows are few: instants in the market)
            cap *= 2
            yv2 = np.empty(cap)
            xv2 = np.empty(cap)
            hv2 = np.empty(cap)
            yv2[:m] = yv
            xv2[:m] = xv
            hv2[:m] = hv
            yv, xv, hv = yv2, xv2, hv2
        yv[m] = y
        xv[m] = x
        hv[m] = h[i]
        m += 1
    if low < np.inf:
        worst = min(worst, low / peak - 1.0)
    return ruined, clean, -worst, n_in, n_pos, yv[:m], xv[:m], hv[:m], finite


def _f64(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(a, dtype=np.float64) for a in arrays)


def _share_and_effectiveness(ts_ns, h, perp_qty, spot, perp, out) -> tuple[float, float]:
    """(time in market, hedge effectiveness) from :func:`_snapshot_pass` output.

    Time in market = ``(abs(perp_qty) > 0).mean()`` (an exact count over n: the same double).
    Effectiveness: ``hedge_effectiveness`` of spot returns hedged with perp returns at the previous
    instant's ratio (only instants whose previous instant was in the market); on the kept rows with
    the ratio already lagged, or through the analytics function when a row is not finite."""
    n_in, n_pos, yv, xv, hv, finite = out[3:]
    share = n_pos / len(h) if len(h) else math.nan
    if n_in < 4 or len(yv) < 3:
        return share, math.nan
    if finite:
        # hedge_effectiveness on already aligned, lagged, finite arrays: its own numpy lines
        vu = yv.var(ddof=1)
        return share, (math.nan if vu == 0 else float(1.0 - (yv - hv * xv).var(ddof=1) / vu))
    inm = ~np.isnan(h) & (np.abs(perp_qty) > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = spot[1:] / spot[:-1] - 1.0
        x = perp[1:] / perp[:-1] - 1.0
    hl = np.where(inm[:-1], h[:-1], np.nan)  # ratio known at the start of each return
    keep = ~np.isnan(y) & ~np.isnan(x) & ~np.isnan(hl)
    idx = _idx(ts_ns[1:][keep])
    try:
        return share, hedge_effectiveness(pd.Series(y[keep], index=idx), pd.Series(x[keep], index=idx),
                                          pd.Series(hl[keep], index=idx), lag=0)
    except InvalidInput:
        return share, math.nan


def hold_pnl(spot_price: pd.Series, notional: float, fee_rate: float = 0.001) -> pd.Series:
    """Benchmark: PnL (quote) of buying ``notional`` of spot at the first price and holding it.

    ``qty = notional / p0``; PnL(t) = ``qty x (p(t) - p0) - notional x fee_rate`` (one taker fee
    paid at the purchase; not sold).
    """
    s = spot_price.dropna()
    if s.empty or not (math.isfinite(notional) and notional > 0):
        raise InvalidInput("spot_price/notional", (len(s), notional), "prices and a notional > 0")
    p0 = float(s.iloc[0])
    return ((notional / p0) * (s - p0) - notional * fee_rate).rename("hold_pnl")
