"""Per-instant arrays the kernels read that depend on the market (and few parameters) only: entry
signals, entry ratios, the priced prices and the paper venue's liquidation checks.

Computed once per timeline (or per entry-parameter set) and kept with the timeline, so a sweep
over exit or sizing parameters does not compute them again.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from hedge_core import money
from hedge_core.backtest.timeline import Timeline
from hedge_core.exchange.costs import entry_round_trip
from hedge_core.params.models import CarryParams, CrossHedgeParams, GridParams

#: the params the hedge kernel runs (``codes.KERNELS['hedge']``)
HedgeParams = CarryParams | CrossHedgeParams | GridParams

__all__ = ["HedgeParams", "entry_ratio", "entry_signal", "input_column", "liq_arrays", "priced_prices"]


def entry_signal(params: HedgeParams, tl: Timeline) -> np.ndarray:
    """Per instant: would the strategy's ``decide`` say ENTER from the market alone (state ANALYZING)?

    Carry: the same arithmetic as ``engine.strategies.carry`` and ``analytics.funding``
    (element-wise IEEE operations in the same order, so identical doubles). Cross: beta and
    correlation known, correlation >= ``min_correlation``, beta > 0 (``strategies.cross``).
    """
    if params.strategy == "grid":
        return tl.priced.copy()  # the grid starts at the first market update (activation refused)
    if params.strategy == "cross":
        beta, corr = input_column(tl, "beta"), input_column(tl, "correlation")
        with np.errstate(invalid="ignore"):
            ok = ~np.isnan(beta) & ~np.isnan(corr) & ~(corr < params.min_correlation) & ~(beta <= 0)
        return ok & tl.priced
    hours = float(tl.interval_hours)
    round_trip = entry_round_trip(params)  # the venue's cost model (exchange.costs), as carry.decide
    days = params.expected_hold_intervals * hours / 24.0
    args = (float(params.min_funding_rate), float(params.max_entry_basis_bps), round_trip, days, hours,
            float(params.min_net_carry))

    # a sweep over exit or sizing parameters meets the same entry inputs again: keep the last few
    memo: dict = tl.cached("fast.carry_entry", dict)
    out = memo.pop(args, None)
    if out is None:
        out = np.empty(tl.n, dtype=np.bool_)
        _carry_entry(tl.last_rate, tl.spot, tl.perp, tl.priced, *args, out)
        while len(memo) >= 8:
            memo.pop(next(iter(memo)))  # least recently used first
    memo[args] = out
    return out.copy()


@njit(cache=True)
def _carry_entry(rate, spot, perp, priced, min_rate, max_bps, round_trip, days, hours, min_carry, out):
    """``carry.decide`` says ENTER (positive funding only), per instant: the operations of
    ``analytics.funding.expected_net_carry`` in the same order (identical doubles)."""
    for i in range(len(rate)):
        r = rate[i]
        ok = priced[i] and not math.isnan(r) and not (abs(r) < min_rate) and not (r < 0)
        if ok:  # negative funding needs a spot short: refused up front, stays out here
            basis = money.basis(perp[i], spot[i])
            ok = not (abs(basis) * 1e4 > max_bps)
            if ok:
                apr = money.funding_apr(abs(r), hours)
                net = money.expected_net_carry(apr, 0.0, days, round_trip)
                direction = 1.0 if r >= 0 else -1.0
                ok = not (net + direction * basis < min_carry)
        out[i] = ok


def input_column(tl: Timeline, name: str) -> np.ndarray:
    """The analytics input column ``name`` of the timeline, or NaN throughout when it has none."""
    return tl.column(name) if name in tl.input_names else np.full(tl.n, np.nan)


def entry_ratio(params: HedgeParams, tl: Timeline) -> np.ndarray:
    """Per instant: the (clipped) target ratio an entry there adopts (``step._clip_ratio``)."""
    rb = params.rebalance
    if params.strategy == "cross":
        b = input_column(tl, "beta")
        return np.minimum(np.maximum(b, rb.ratio_min), rb.ratio_max)
    if params.strategy == "grid":  # the grid starts unhedged (target ratio 0)
        return np.full(tl.n, min(max(0.0, rb.ratio_min), rb.ratio_max))
    return np.full(tl.n, min(max(rb.target_ratio, rb.ratio_min), rb.ratio_max))

def priced_prices(tl: Timeline) -> tuple[np.ndarray, np.ndarray]:
    """The spot and perp prices of the kernels' snapshots: the last priced instant's spot and
    perp close at each instant (NaN before the first), as the kernels keep them (copies of the
    timeline's doubles). Computed once per timeline."""
    def build() -> tuple[np.ndarray, np.ndarray]:
        s, p = np.empty(tl.n), np.empty(tl.n)
        _priced_ffill(tl.spot, tl.perp, tl.priced, s, p)
        return s, p

    return tl.cached("fast.priced_prices", build)


@njit(cache=True)
def _priced_ffill(spot, perp, priced, s_out, p_out):  # pragma: no cover - compiled
    sp = np.nan
    pp = np.nan
    for i in range(len(spot)):
        if priced[i]:
            sp = spot[i]
            pp = perp[i]
        s_out[i] = sp
        p_out[i] = pp


def liq_arrays(tl: Timeline) -> tuple[np.ndarray, np.ndarray]:
    """Where the paper venue checks liquidation (a mark bar, or a perp bar before any mark) and
    the adverse extreme it uses; depends on the timeline only, so it is kept with it."""
    def build() -> tuple[np.ndarray, np.ndarray]:
        seen_mark = np.maximum.accumulate(tl.has_mark)
        liq_check = tl.has_mark | (tl.has_perp & ~seen_mark)
        liq_ext = np.where(tl.has_mark, tl.mark_bar[:, 1], tl.perp_bar[:, 1])  # short perp: adverse = high
        return liq_check, liq_ext

    return tl.cached("fast.liq", build)


