"""Fast path: numba kernels of every strategy's core loop (carry, cross-asset, vol-tier loan book, grid), for sweeps.

GUARANTEE: for every run it accepts, the fast path produces the SAME fills (instant, leg, side,
quantity, price, fee) and the same PnL components per instant as the event-driven backtester
(:func:`hedge_core.backtest.event.run_backtest`, i.e. engine ``step`` + ``HedgeDriver`` + paper
venue) to float round-off (tests on real data: ``tests/test_backtest_fastpath.py``,
``tests/test_fastpath_cross.py``, ``tests/test_fastpath_voltier.py``, ``tests/test_fastpath_grid.py``).
A fast path that disagrees is a bug, not an approximation.
Everything it cannot reproduce exactly it REFUSES with :class:`FastPathUnsupported` naming the
reason, either up front (parameters) or at the instant the run reaches a situation it does not
model (the caller then uses the event-driven path; :func:`run_fast_or_event` does that
automatically).

Every money formula a kernel evaluates (fill price, slippage, fee, position average and realised
PnL, isolated margin, funding, maintenance margin, liquidation price, leverage rule, lots, loan
interest/repayment/reserve, hedge target and drift) is a call into :mod:`hedge_core.money`, the
same functions the engine, the ledger and the paper venue call (numba inlines them); the order
rounds, order-rate window and re-arm cooldown are ``engine.constants``. What is left here is the
control flow of the engine's states.

Scope (what the kernel mirrors, line by line, from ``engine/step.py``, ``engine/ledger.py``,
``engine/exits.py``, ``engine/guards.py``, ``engine/sizing.py``, ``engine/strategies/carry.py``,
``engine/strategies/cross.py`` and ``exchange/paper_core.py``):

- strategy ``carry`` with positive funding (long spot / short perp) and strategy ``cross`` (spot
  of one asset, perp of another, perp sized ``ratio x spot notional / perp price``), market
  orders that fill at once at the last close with fixed + square-root-impact slippage and taker
  fees;
- entry: the carry decision (funding threshold, basis cap, expected net carry) or the cross
  decision (beta > 0 known, correlation >= minimum; the entry adopts the clipped beta),
  leverage by the risk rule (``sizing.choose_leverage`` with the bracket table), spot then perp
  hedge rounded down to the venue lots;
- cross: beta re-adopted every ``reestimate_hours`` (clipped to the ratio bounds);
- rebalancing of the perp leg (drift > threshold, cooldown, minimum order notional, reduce-only
  when it shrinks the leg, up to the engine's 6 order rounds);
- exits: stop loss, profit target, trailing stop, basis stop (same base only), unfavourable
  funding, max holding time; re-arm (with the engine's 1 s cooldown) or complete;
- guards: liquidation-distance close (flatten; the isolated margin the guard reads holds the
  funding settled since the position opened, pro rata on partial closes, as
  ``engine.ledger.Leg.margin_funding``), funding-cost flatten, order-rate and position
  limits (refused when they would hold an order); leverage re-checks;
- funding at each settlement at the last known mark; the equity snapshot per instant.
- ``grid`` (same kernel): spot bought at the first update, the anchor's levels
  (``grid.grid_levels``: sigma spacing, support levels, distinct, descending) fixed per cycle, the
  perp short set to ``max_ratio x levels crossed / levels`` by rebalancing, the grid stop below
  the lowest level, and the VaR / drawdown guards flattening.
- ``voltier`` (:func:`voltier_kernel`, ``engine/strategies/voltier.py`` + ``ltv.py``): the
  collateral spot leg (never traded, outside the PnL), entries at the volatility tier's ratio
  with ``PT = pt_k x sigma x notional`` and the fixed ``perp_leverage``, tier changes rebalanced,
  the loan accruing simple interest whenever the strategy decides, realised perp profit repaying
  it (interest first) at the next analysis, the LTV-band guards deploying the reserve (latched by
  the guard's name exactly as the engine does) and flattening at EMERGENCY (also from
  ANALYZING), the LTV per instant (before and after the engine acted) and the loan KPIs.

Refused (up front): a strategy without a kernel, a loan book's ``perp_leverage`` above
the venue's maximum, a ``liq_price`` analytics input, ``allow_spot_short``,
activation triggers, ``enter_within_s_of_funding``, ``exit.defer_within_s_of_funding``,
daily-loss and heartbeat guards, cross margin, ``leverage.target_vol``, a paper venue with
participation caps, slippage noise, hedge position mode or custom brackets, a perp without a
bracket table. Refused (at run time, with the instant): a liquidation-distance REDUCE, a spot
rebalance, a rebalance due at a funding instant without a market update, a paper liquidation (or
coming within 1 % of one), an order the venue would refuse (funds, lot/notional minimums,
leverage cap), an order a guard would hold (order rate, position limits).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from hedge_core import money
from hedge_core.analytics.risk import brackets_for
from hedge_core.backtest.timeline import Market, Timeline, timeline_of
from hedge_core.engine.constants import MAX_ORDER_ROUNDS, ORDER_RATE_WINDOW_S, REARM_COOLDOWN_S
from hedge_core.errors import HedgeError, InvalidInput
from hedge_core.exchange.costs import entry_round_trip, from_paper, resolve_costs
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.types import MarginMode, PositionMode

__all__ = [
    "ERRORS",
    "FastPathUnsupported",
    "FastResult",
    "check_supported",
    "entry_signal",
    "fast_kpis",
    "run_fast",
    "run_fast_or_event",
]


class FastPathUnsupported(HedgeError):
    """The fast path cannot reproduce this run exactly; use the event-driven backtester."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"fast path refuses this run: {reason}; use hedge_core.backtest.event.run_backtest "
                         f"(the event-driven path) instead")
        self.reason = reason


ERRORS = {
    1: "a liquidation-distance REDUCE guard fired (partial reduction is not modelled)",
    2: "a rebalance became due (rebalancing is not modelled)",
    3: "the paper venue would liquidate the perp (or came within 1 % of it)",
    4: "the spot entry order is below the venue minimums",
    5: "the perp hedge is below the venue minimums (the engine would unwind)",
    6: "the spot wallet cannot pay the entry (the venue would reject it)",
    7: "the perp wallet cannot margin the hedge (the venue would reject it)",
    8: "a position limit guard would hold an order",
    9: "a leg is below the venue minimums at close (dust would stay)",
    10: "fill buffer overflow",
    11: "the order-rate guard would hold an order",
    12: "a rebalance became due at a funding instant without a market update",
    13: "a reduce-only rebalance order larger than the position (the venue would cap it)",
}

# transition codes written by the kernel
T_ENTRY, T_EXIT_REARM, T_EXIT_DONE, T_FLATTEN, T_REBAL, T_FLATTEN_IDLE = 1, 2, 3, 4, 5, 6
S_ANALYZING, S_MONITORING, S_COMPLETED = 0, 1, 2
K_CARRY, K_CROSS, K_GRID = 0, 1, 2
Z99 = 2.3263478740408408  # engine.strategies.grid.Z99
NO_TS = -(2 ** 62)  # "never" as an int64 ns instant
STATE_NAMES = ("ANALYZING_MARKET", "MONITORING_POSITIONS", "COMPLETED")


def check_supported(params: Any, paper: PaperConfig, perp_symbol: str | None = None) -> None:
    """Raise :class:`FastPathUnsupported` when the parameters or venue model are outside the kernel's scope."""
    strat = getattr(params, "strategy", None)
    if strat not in ("carry", "cross", "voltier", "grid"):
        raise FastPathUnsupported(f"strategy {strat!r} has no fast kernel")
    why = []
    if strat == "carry":
        if params.allow_spot_short:
            why.append("allow_spot_short=True (spot short on margin)")
        if params.enter_within_s_of_funding is not None:
            why.append("enter_within_s_of_funding")
    a = params.activation
    if a.deviation_z is not None or a.volume_spike is not None:
        why.append("activation triggers")
    if params.exit.defer_within_s_of_funding is not None:
        why.append("exit.defer_within_s_of_funding")
    g = params.guards
    if g.daily_loss_limit is not None:
        why.append("guards.daily_loss_limit")
    if g.heartbeat_timeout_s is not None:
        why.append("guards.heartbeat_timeout_s")
    if params.leverage.margin_mode != MarginMode.ISOLATED:
        why.append("cross margin")
    if params.leverage.target_vol is not None:
        why.append("leverage.target_vol")
    if paper.participation is not None:
        why.append("paper participation cap")
    if paper.slippage_noise_bps > 0:
        why.append("paper slippage noise")
    if paper.position_mode != PositionMode.ONE_WAY:
        why.append("paper hedge position mode")
    if perp_symbol is not None:
        if perp_symbol in paper.brackets:
            why.append(f"custom paper brackets for {perp_symbol}")
        try:
            brackets_for(perp_symbol)
        except InvalidInput:
            why.append(f"no bracket table for {perp_symbol}")
    if why:
        raise FastPathUnsupported(", ".join(why))


def entry_signal(params: Any, tl: Timeline) -> np.ndarray:
    """Per instant: would the strategy's ``decide`` say ENTER from the market alone (state ANALYZING)?

    Carry: the same arithmetic as ``engine.strategies.carry`` and ``analytics.funding``
    (element-wise IEEE operations in the same order, so identical doubles). Cross: beta and
    correlation known, correlation >= ``min_correlation``, beta > 0 (``strategies.cross``).
    """
    if params.strategy == "grid":
        return tl.priced.copy()  # the grid starts at the first market update (activation refused)
    if params.strategy == "cross":
        beta, corr = _input(tl, "beta"), _input(tl, "correlation")
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


def _input(tl: Timeline, name: str) -> np.ndarray:
    return tl.column(name) if name in tl.input_names else np.full(tl.n, np.nan)


def entry_ratio(params: Any, tl: Timeline) -> np.ndarray:
    """Per instant: the (clipped) target ratio an entry there adopts (``step._clip_ratio``)."""
    rb = params.rebalance
    if params.strategy == "cross":
        b = _input(tl, "beta")
        return np.minimum(np.maximum(b, rb.ratio_min), rb.ratio_max)
    if params.strategy == "grid":  # the grid starts unhedged (target ratio 0)
        return np.full(tl.n, min(max(0.0, rb.ratio_min), rb.ratio_max))
    return np.full(tl.n, min(max(rb.target_ratio, rb.ratio_min), rb.ratio_max))


@njit(cache=True)
def _tradeable(q, px, lot, min_qty, min_notional, extra_min):
    if abs(q) / lot + 1e-9 < 1.0:
        return False  # rounds down to zero lots (cheap exit before round(x, 12), the hot path)
    r = money.lot_floor(q, lot)
    if not px > 0:
        return False
    return money.meets_minimums(r, px, lot, min_qty, min_notional) and r * px >= extra_min - 1e-9


@njit(cache=True)
def _ledger_fill(q0, avg, realized, fees, cash, traded, mf, sign, qty, price, fee):
    """``engine.ledger.apply_fill`` on a leg's scalars (``mf``: its ``margin_funding``)."""
    q1, avg1, real, closed = money.fill_position(q0, avg, sign, qty, price)
    mf = money.isolated_margin_after_fill(mf, q0, q1, qty, closed, price, math.inf)
    return (q1, avg1, realized + real, fees + fee, cash + money.trade_cash_flow(sign, qty, price),
            traded + qty * price, mf)


@njit(cache=True)
def _unreal(q, last, avg):
    """``engine.ledger.Leg.unrealized``: 0 when flat or unpriced."""
    if q == 0.0 or math.isnan(last):
        return 0.0
    return money.unrealized_pnl(q, last, avg)


@njit(cache=True)
def _mm(notional, caps, mmrs, cums):
    k = money.bracket_index(notional, caps)
    return money.maintenance_margin(notional, mmrs[k], cums[k])


@njit(cache=True)
def _exit_due(cp, notional, peak, sl, pt, pt_abs, tg, tmin, bstop, spot, perp, unfav_n, unfav, maxh, held_h):
    """``engine.exits.exit_reason`` != "" (same rules, same order; NaN = rule off).

    ``pt_abs`` is the strategy's own profit target (quote; ``ctx.profit_target``), NaN = none:
    then ``pt`` x notional."""
    if not math.isnan(sl) and notional > 0 and cp <= -sl * notional:
        return True
    tgt = pt_abs
    if math.isnan(tgt) and not math.isnan(pt) and notional > 0:
        tgt = pt * notional
    if not math.isnan(tgt) and tgt > 0 and cp >= tgt:
        return True
    if (not math.isnan(tg) and notional > 0 and peak > 0 and peak >= tmin * notional
            and cp <= peak * (1.0 - tg)):
        return True
    if not math.isnan(bstop) and spot > 0 and not math.isnan(perp) and abs(money.basis(perp, spot)) * 1e4 >= bstop:
        return True
    if unfav_n >= 0 and unfav >= unfav_n:
        return True
    return not math.isnan(maxh) and held_h >= maxh


@njit(cache=True)
def _fill_px(ref, sign, q, vol, slip_bps, impact_k):
    px = money.fill_price(ref, sign, money.slippage_bps(slip_bps, impact_k, q, vol))
    avg = (0.0 + q * px) / q  # the paper order's average price, then the driver's fill price
    cost = q * avg
    px2 = (cost - 0.0) / q
    if not px2 > 0:
        px2 = avg
    return px, px2, money.slippage_cost(sign, q, px, ref)


@njit(cache=True)
def _pap_perp(papq, pap_entry, pap_margin, wallet, sign, q, px, lev, fee):
    """The paper venue's isolated perp position after a fill (``PaperCore._perp_fill_raw``)."""
    q1, entry, realized, closed = money.fill_position(papq, pap_entry, sign, q, px)
    pap_margin = money.isolated_margin_after_fill(pap_margin, papq, q1, q, closed, px, lev)
    return q1, entry, pap_margin, wallet + realized - fee


@njit(cache=True)
def _recent_orders(order_t, t):
    c = 0
    for k in range(len(order_t)):
        if order_t[k] != NO_TS and (t - order_t[k]) / 1e9 < ORDER_RATE_WINDOW_S:
            c += 1
    return c


@njit(cache=True)
def _grid_levels(anchor, sigma, nlev, spacing_sigma, min_spacing, support, out):
    """``grid.grid_levels``: distinct positive levels below ``anchor``, descending, into ``out``."""
    spacing = min_spacing if math.isnan(sigma) else max(spacing_sigma * sigma, min_spacing)
    m = 0
    for k in range(1, nlev + 1):
        lv = anchor * (1 - k * spacing)
        if lv > 0:
            out[m] = lv
            m += 1
    for sp in support:
        if 0 < sp < anchor:
            out[m] = sp
            m += 1
    v = np.sort(out[:m])[::-1]
    c = 0
    for j in range(m):
        if c == 0 or v[j] != out[c - 1]:
            out[c] = v[j]
            c += 1
    return c


@njit(cache=True)
def _liq_and_funding_guards(pq, mark_px, lp, liq_close, liq_reduce, monitoring, fcost, rate, interval):
    """``engine.guards.market_guards``' liquidation-distance and funding-cost guards, for both
    kernels (scalars only, so LLVM inlines it): (flatten, reduce). ``reduce`` (a partial
    reduction) is outside the kernels' scope: the caller refuses the run."""
    flatten = False
    if pq != 0.0 and mark_px > 0:
        dist = money.liquidation_distance(pq, mark_px, lp)
        if dist <= liq_close:
            flatten = monitoring
        elif dist <= liq_reduce and monitoring:
            return flatten, True
    if not math.isnan(fcost) and pq != 0.0:
        apr = money.funding_pay_apr(pq, rate, interval)
        if apr > 0 and apr >= fcost and monitoring:
            flatten = True
    return flatten, False


@njit(cache=True)
def _settle_funding(rate, mark_i, perp_i, papq, wallet, pap_margin, pq, unfav, pfund, pmf):
    """Funding settling at one instant, for both kernels: the paper venue's isolated wallet
    (``-papq x mark x rate``) and the engine's ledger (the same amount, the count of unfavourable
    settlements in a row, the funding in the open position's margin ``pmf``). Returns (wallet,
    pap_margin, unfav, pfund, pmf, funded: the ledger booked one)."""
    mk = mark_i if not math.isnan(mark_i) else perp_i
    funded = False
    if papq != 0.0 and not math.isnan(mk):
        amt = money.funding_payment(papq, mk, rate)
        wallet += amt
        pap_margin += amt
    if pq != 0.0 and not math.isnan(mk):
        amount = money.funding_payment(pq, mk, rate)
        unfav = unfav + 1 if amount < 0 else 0
        pfund += amount
        pmf += amount
        funded = True
    return wallet, pap_margin, unfav, pfund, pmf, funded


@njit(cache=True)
def _perp_fill(i, t, sign, q, perp_i, perp_vol_i, slip_bps, impact_k, p_fee_r, pap_lev,
               pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf,
               order_t, n_ord, slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf):
    """One taker perp fill of ``q`` base (``sign`` +1 buy / -1 sell), for both kernels: the paper
    venue's price and fee, the fill record, the order-rate clock, the engine's ledger and the
    venue's isolated position. Returns (nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd,
    papq, pap_entry, pap_margin, wallet, pmf)."""
    px, px2, sl_ = _fill_px(perp_i, sign, q, perp_vol_i, slip_bps, impact_k)
    fee = money.fee(q, px, p_fee_r)
    f_i[nf] = i; f_leg[nf] = 1; f_side[nf] = sign; f_qty[nf] = q; f_px[nf] = px2
    f_fee[nf] = fee; f_slip[nf] = sl_
    nf += 1
    slip_tot += sl_
    order_t[n_ord % 64] = t; n_ord += 1
    pq, pavg, preal, pfee, pcash, ptrd, pmf = _ledger_fill(pq, pavg, preal, pfee, pcash, ptrd, pmf, sign, q, px2, fee)
    papq, pap_entry, pap_margin, wallet = _pap_perp(papq, pap_entry, pap_margin, wallet, sign, q, px, pap_lev, fee)
    return nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf


@njit(cache=True)
def _rebalance_rounds(i, t, spot_check, same, ratio, target_spot, sq, spot_px, perp_px, perp_i, perp_vol_i,
                      s_lot, s_minq, s_minn, min_order_n, p_lot, p_minq, p_minn, p_fee_r, slip_bps, impact_k,
                      max_pq, max_pn, max_opm, pap_lev, caps, maxlevs,
                      pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf,
                      order_t, n_ord, slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf):
    """The REBALANCING rounds of ``engine.step`` (DRIFT_EXCEEDED already decided by the caller):
    perp orders until the residual is below a lot, at most 6, for both kernels. ``spot_check``: a
    spot leg that could trade refuses the run (code 2; the loan book's collateral never trades).
    Called only when a rebalance is due (a call per instant would cost the kernels ~2x).

    Returns (error code or 0, rounds, nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd,
    papq, pap_entry, pap_margin, wallet, pmf)."""
    err = 0
    rounds = 0
    while True:
        if spot_check and _tradeable(target_spot - sq, spot_px, s_lot, s_minq, s_minn, min_order_n):
            err = 2
            break
        perp_need = money.perp_target(same, ratio, sq, pq, spot_px, perp_px) - pq
        reducing = abs(pq + perp_need) < abs(pq) and pq * perp_need < 0
        oq = money.lot_floor(perp_need, p_lot)
        if reducing:
            ok = perp_px > 0 and oq >= p_lot - 1e-12 and oq >= p_minq - 1e-12
        else:
            ok = _tradeable(perp_need, perp_px, p_lot, p_minq, p_minn, 0.0)
        if rounds >= MAX_ORDER_ROUNDS or not ok:
            break
        sign = 1.0 if perp_need > 0 else -1.0
        if reducing and oq > abs(papq) + 1e-12:
            err = 13
            break
        if _recent_orders(order_t, t) >= max_opm:
            err = 11
            break
        q1 = pq + sign * oq
        if abs(q1) > abs(pq) and (abs(q1) > max_pq or abs(q1) * perp_px > max_pn):
            err = 8
            break
        if not reducing:
            opening = oq
            if papq != 0.0 and (papq > 0) != (sign > 0):
                opening = max(oq - abs(papq), 0.0)
            if opening > 0:
                cur = abs(papq) if papq != 0.0 and (papq > 0) == (sign > 0) else 0.0
                if (cur + opening) * perp_i > money.max_notional(pap_lev, caps, maxlevs):
                    err = 7
                    break
                need_m = money.isolated_margin(opening, perp_i, pap_lev) + money.fee(opening, perp_i, p_fee_r)
                if need_m > (wallet - pap_margin) * 0.999:
                    err = 7
                    break
        if nf >= len(f_i):
            err = 10
            break
        (nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin,
         wallet, pmf) = _perp_fill(
            i, t, sign, oq, perp_i, perp_vol_i, slip_bps, impact_k, p_fee_r, pap_lev, pq, pavg, preal, pfee,
            pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf, order_t, n_ord, slip_tot, f_i, f_leg, f_side,
            f_qty, f_px, f_fee, f_slip, nf)
        rounds += 1
    return (err, rounds, nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin,
            wallet, pmf)


@njit(cache=True)
def hedge_kernel(ts, spot, perp, mark, spot_vol, perp_vol, priced, fund_rate, last_rate, sigma, beta, enter_ok,
                 enter_ratio, liq_check, liq_ext, fp, ip, floors, caps, mmrs, cums, maxlevs, support,
                 snap, last, states, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, t_i, t_code):
    """The carry / cross-asset / grid hedge over n instants. ``fp``/``ip`` pack the parameters (see ``_pack``).

    Returns (n_fills, n_transitions, error_code, error_instant); error 0 = none.
    """
    notional, ratio0 = fp[0], fp[1]
    s_lot, s_minq, s_minn, p_lot, p_minq, p_minn = fp[2], fp[3], fp[4], fp[5], fp[6], fp[7]
    slip_bps, impact_k, s_fee_r, p_fee_r = fp[8], fp[9], fp[10], fp[11]
    sl, pt, tg, tmin, bstop, maxh = fp[12], fp[13], fp[14], fp[15], fp[16], fp[17]
    liq_close, liq_reduce, fcost, interval = fp[18], fp[19], fp[20], fp[21]
    min_lev, max_lev, liq_buf, tvm, recheck_h = fp[22], fp[23], fp[24], fp[25], fp[26]
    drift_thr, min_order_n = fp[27], fp[28]
    spot_cash, wallet = fp[29], fp[30]
    max_pq, max_pn = fp[31], fp[32]
    ratio_min, ratio_max, reest_h, cool_s = fp[33], fp[34], fp[35], fp[36]
    g_spacing, g_min_spacing, g_max_ratio, g_stop, g_var, g_dd = fp[37], fp[38], fp[39], fp[40], fp[41], fp[42]
    unfav_n, rearm, kind, max_opm, g_nlev, same = ip[0], ip[1], ip[2], ip[3], ip[4], ip[5]
    levels = np.empty(g_nlev + len(support) + 1)
    nlev = 0
    n = len(ts)
    full = snap.shape[1] == 14  # else compact: net, perp qty, hedge ratio (+ ``last`` full row)
    # engine legs
    sq = 0.0; savg = 0.0; sreal = 0.0; sfee = 0.0; scash = 0.0; strd = 0.0; slast = np.nan
    pq = 0.0; pavg = 0.0; preal = 0.0; pfee = 0.0; pcash = 0.0; ptrd = 0.0; plast = np.nan; pfund = 0.0
    pmf = 0.0  # funding inside the open perp position's isolated margin (engine.ledger margin_funding)
    slip_tot = 0.0
    spot_px = np.nan; perp_px = np.nan; mark_px = np.nan
    state = S_ANALYZING
    cooldown = -1
    has_cool = False
    target_spot = 0.0
    ratio = ratio0
    entered = 0
    entry_notional = 0.0
    pnl_at_entry = 0.0
    peak = 0.0
    lev = 1.0
    last_lev_check = 0
    last_reb = NO_TS
    beta_ts = NO_TS
    unfav = 0
    order_t = np.full(64, NO_TS)
    n_ord = 0
    # paper venue (for refusals only)
    papq = 0.0; pap_entry = 0.0; pap_margin = 0.0; pap_lev = 20.0
    lp_cache = np.nan  # engine guard's liquidation price; depends on qty, entry, leverage, margin funding only
    lp_dirty = True
    nf = 0
    nt = 0
    maxf = len(f_i)
    for i in range(n):
        t = ts[i]
        if nf + 8 > maxf or nt + 3 > maxf:  # at most 8 fills and 3 transition codes per instant
            return nf, nt, 10, i
        if ((state == S_COMPLETED or (state == S_ANALYZING and not enter_ok[i]))
                and pq == 0.0 and sq == 0.0 and papq == 0.0):
            # flat and not entering (or done): only the prices move (no position: no liquidation
            # check, guard, exit, rebalance or funding can act); the same updates as section 2
            if priced[i]:
                mk = mark[i] if not math.isnan(mark[i]) else perp[i]
                if spot[i] > 0:
                    slast = spot[i]
                if mk > 0:
                    plast = mk
                spot_px = spot[i]; perp_px = perp[i]; mark_px = mk
        else:
            # ---- 1. bars ended at t: the paper venue checks liquidation on the adverse extreme ----
            if liq_check[i] and papq != 0.0:
                ext = liq_ext[i]
                mm = _mm(abs(papq) * ext, caps, mmrs, cums)
                if pap_margin + money.unrealized_pnl(papq, ext, pap_entry) < mm * 1.01 + 1e-9:
                    return nf, nt, 3, i
            # ---- 2. market update ----
            if priced[i]:
                mk = mark[i] if not math.isnan(mark[i]) else perp[i]
                if spot[i] > 0:
                    slast = spot[i]
                if mk > 0:
                    plast = mk
                spot_px = spot[i]; perp_px = perp[i]; mark_px = mk
                pnl = (preal + _unreal(pq, plast, pavg) + pfund - pfee - 0.0) + \
                    (sreal + _unreal(sq, slast, savg) + 0.0 - sfee - 0.0)
                if state == S_MONITORING and pnl - pnl_at_entry > peak:
                    peak = pnl - pnl_at_entry
                if pq != 0.0 and mark_px > 0 and lp_dirty:
                    lp_cache = money.liquidation_price(pq, pavg, money.isolated_margin(pq, pavg, lev) + pmf, 0.0, 0.0,
                                                      floors, caps, mmrs, cums)
                    lp_dirty = False
                flatten, reduce = _liq_and_funding_guards(pq, mark_px, lp_cache, liq_close, liq_reduce,
                                                          state == S_MONITORING, fcost, last_rate[i], interval)
                if reduce:
                    return nf, nt, 1, i
                if kind == K_GRID and state == S_MONITORING:  # grid_guards: VaR limit, max drawdown
                    if not math.isnan(g_var) and not math.isnan(sigma[i]) and \
                            Z99 * sigma[i] * abs(sq * spot_px + pq * perp_px) >= g_var:
                        flatten = True
                    if not math.isnan(g_dd) and peak - (pnl - pnl_at_entry) >= g_dd:
                        flatten = True
                exit_now = flatten
                if state == S_MONITORING and not flatten:
                    if kind == K_CROSS and (t - beta_ts) / 1e9 >= reest_h * 3600.0 and \
                            not math.isnan(beta[i]) and beta[i] > 0:
                        beta_ts = t  # strategy state updates come before the exit check
                        new_ratio = min(max(beta[i], ratio_min), ratio_max)
                    else:
                        new_ratio = ratio
                    grid_stop = False
                    if kind == K_GRID and nlev > 0:
                        if spot[i] <= levels[nlev - 1] * (1 - g_stop):
                            grid_stop = True
                        else:
                            crossed = 0
                            for j in range(nlev):
                                if spot[i] <= levels[j]:
                                    crossed += 1
                            new_ratio = min(max(g_max_ratio * crossed / nlev, ratio_min), ratio_max)
                    cp = pnl - pnl_at_entry
                    exit_now = grid_stop or _exit_due(cp, entry_notional, peak, sl, pt, np.nan, tg, tmin, bstop,
                                                      spot[i], perp[i], unfav_n, unfav, maxh,
                                                      (t - entered) / 1e9 / 3600.0)
                    if not exit_now:
                        ratio = new_ratio
                if exit_now:
                    # close: perp (reduce-only) first, then spot; both at once
                    if _recent_orders(order_t, t) + 2 > max_opm:
                        return nf, nt, 11, i
                    for k in range(2):
                        leg = 1 - k  # perp (reduce-only) first, as the engine's _closing does
                        q = pq if leg == 1 else sq
                        if q == 0.0:
                            continue
                        if leg == 1:
                            oq = money.lot_floor(-q, p_lot)
                            if not (perp[i] > 0 and oq >= p_lot - 1e-12 and oq >= p_minq - 1e-12):
                                return nf, nt, 9, i
                        else:
                            if not _tradeable(-q, spot[i], s_lot, s_minq, s_minn, 0.0):
                                return nf, nt, 9, i
                            oq = money.lot_floor(-q, s_lot)
                        sign = 1.0 if -q > 0 else -1.0
                        if nf >= maxf:
                            return nf, nt, 10, i
                        if leg == 1:
                            px, px2, sl_ = _fill_px(perp[i], sign, oq, perp_vol[i], slip_bps, impact_k)
                            fee = money.fee(oq, px, p_fee_r)
                            pq, pavg, preal, pfee, pcash, ptrd, pmf = _ledger_fill(pq, pavg, preal, pfee, pcash, ptrd,
                                                                                   pmf, sign, oq, px2, fee)
                            papq, pap_entry, pap_margin, wallet = _pap_perp(papq, pap_entry, pap_margin, wallet, sign,
                                                                            oq, px, pap_lev, fee)
                        else:
                            px, px2, sl_ = _fill_px(spot[i], sign, oq, spot_vol[i], slip_bps, impact_k)
                            fee = money.fee(oq, px, s_fee_r)
                            sq, savg, sreal, sfee, scash, strd, _ = _ledger_fill(sq, savg, sreal, sfee, scash, strd,
                                                                                 0.0, sign, oq, px2, fee)
                            spot_cash += money.spot_quote_delta(sign, oq, px, fee)
                        f_i[nf] = i; f_leg[nf] = leg; f_side[nf] = sign; f_qty[nf] = oq; f_px[nf] = px2
                        f_fee[nf] = fee; f_slip[nf] = sl_
                        nf += 1
                        slip_tot += sl_
                        order_t[n_ord % 64] = t; n_ord += 1
                    target_spot = 0.0
                    lp_dirty = True
                    if rearm == 1 and not flatten:
                        state = S_ANALYZING
                        has_cool = True
                        cooldown = t + REARM_COOLDOWN_S * 1_000_000_000
                        t_i[nt] = i; t_code[nt] = T_EXIT_REARM
                    else:
                        state = S_COMPLETED
                        t_i[nt] = i; t_code[nt] = T_FLATTEN if flatten else T_EXIT_DONE
                    nt += 1
                elif state == S_MONITORING:
                    if (t - last_lev_check) / 1e9 >= recheck_h * 3600.0:
                        last_lev_check = t
                        sg_ = sigma[i]
                        if not math.isnan(sg_):
                            nl = money.choose_leverage(sg_, abs(pq) * perp[i], -1 if pq <= 0 else 1, liq_buf, tvm,
                                                       min_lev, max_lev, caps, mmrs, cums, maxlevs, math.inf)
                            if nl < lev:
                                lev = nl
                                pap_lev = nl
                                lp_dirty = True
                elif (state == S_ANALYZING and enter_ok[i] and not (has_cool and t < cooldown)
                      and (kind != K_GRID
                           or _grid_levels(spot[i], sigma[i], g_nlev, g_spacing, g_min_spacing, support, levels) > 0)):
                    # a grid with no level above zero waits, as grid.decide does
                    if kind == K_CROSS:
                        beta_ts = t
                    if kind == K_GRID:
                        nlev = _grid_levels(spot[i], sigma[i], g_nlev, g_spacing, g_min_spacing, support, levels)
                    ratio = enter_ratio[i]
                    target_spot = 1.0 * notional / spot[i]
                    lev = money.choose_leverage(sigma[i], abs(target_spot) * spot[i] * ratio,
                                                -1 if target_spot >= 0 else 1, liq_buf, tvm, min_lev, max_lev, caps,
                                                mmrs, cums, maxlevs, math.inf)
                    pap_lev = lev
                    pnl_at_entry = pnl
                    peak = 0.0
                    last_lev_check = t
                    unfav = 0
                    need = target_spot - sq
                    if not _tradeable(need, spot_px, s_lot, s_minq, s_minn, 0.0):
                        return nf, nt, 4, i
                    oq = money.lot_floor(need, s_lot)
                    if abs(sq + oq) > max_pq or abs(sq + oq) * spot_px > max_pn:
                        return nf, nt, 8, i
                    if _recent_orders(order_t, t) + 2 > max_opm:
                        return nf, nt, 11, i
                    px, px2, sl_ = _fill_px(spot[i], 1.0, oq, spot_vol[i], slip_bps, impact_k)
                    # the venue's funds check: the slipped price (noise-free) with the taker fee
                    if money.buy_cost_with_fee(oq, px, s_fee_r) > spot_cash * 0.999:
                        return nf, nt, 6, i
                    fee = money.fee(oq, px, s_fee_r)
                    if nf + 2 > maxf:
                        return nf, nt, 10, i
                    f_i[nf] = i; f_leg[nf] = 0; f_side[nf] = 1.0; f_qty[nf] = oq; f_px[nf] = px2
                    f_fee[nf] = fee; f_slip[nf] = sl_
                    nf += 1
                    slip_tot += sl_
                    order_t[n_ord % 64] = t; n_ord += 1
                    sq, savg, sreal, sfee, scash, strd, _ = _ledger_fill(sq, savg, sreal, sfee, scash, strd, 0.0, 1.0,
                                                                         oq, px2, fee)
                    spot_cash += money.spot_quote_delta(1.0, oq, px, fee)
                    # hedge what filled
                    ptarget = money.perp_target(same, ratio, sq, pq, spot_px, perp_px)
                    pneed = ptarget - pq
                    hedge = _tradeable(pneed, perp_px, p_lot, p_minq, p_minn, 0.0)
                    if not hedge and abs(ptarget) > 1e-12:
                        return nf, nt, 5, i  # the engine would unwind the spot leg (HEDGE_FAILED)
                    if hedge:
                        hq = money.lot_floor(pneed, p_lot)
                        if abs(hq) > max_pq or abs(hq) * perp_px > max_pn:
                            return nf, nt, 8, i
                        sign = 1.0 if pneed > 0 else -1.0
                        if hq * perp[i] > money.max_notional(pap_lev, caps, maxlevs):
                            return nf, nt, 7, i
                        need_m = money.isolated_margin(hq, perp[i], pap_lev) + money.fee(hq, perp[i], p_fee_r)
                        if need_m > (wallet - pap_margin) * 0.999:
                            return nf, nt, 7, i
                        (nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin,
                         wallet, pmf) = _perp_fill(
                            i, t, sign, hq, perp[i], perp_vol[i], slip_bps, impact_k, p_fee_r, pap_lev, pq,
                            pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf, order_t,
                            n_ord, slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf)
                        lp_dirty = True
                    state = S_MONITORING
                    entered = t
                    target_spot = sq
                    entry_notional = abs(sq) * (spot_px if spot_px > 0 else savg)
                    t_i[nt] = i; t_code[nt] = T_ENTRY
                    nt += 1
                # ---- rebalance check (engine: _monitoring after the intent, leverage re-check) ----
                if state == S_MONITORING and not (last_reb != NO_TS and (t <= last_reb or
                                                                          (t - last_reb) / 1e9 < cool_s)):
                    if _tradeable(target_spot - sq, spot_px, s_lot, s_minq, s_minn, min_order_n):
                        return nf, nt, 2, i
                    perp_need = money.perp_target(same, ratio, sq, pq, spot_px, perp_px) - pq
                    if _tradeable(perp_need, perp_px, p_lot, p_minq, p_minn, min_order_n):
                        h = money.hedge_ratio(sq, pq, spot_px, perp_px)
                        drift = money.hedge_drift(h, ratio)
                        if math.isnan(drift) or drift > drift_thr or abs(sq) <= 1e-12:
                            t_i[nt] = i; t_code[nt] = T_REBAL  # DRIFT_EXCEEDED -> REBALANCING
                            nt += 1
                            (err, rounds, nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry,
                             pap_margin, wallet, pmf) = _rebalance_rounds(
                                i, t, True, same, ratio, target_spot, sq, spot_px, perp_px, perp[i], perp_vol[i],
                                s_lot, s_minq, s_minn, min_order_n, p_lot, p_minq, p_minn, p_fee_r, slip_bps,
                                impact_k, max_pq, max_pn, max_opm, pap_lev, caps, maxlevs, pq, pavg, preal, pfee,
                                pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf, order_t, n_ord, slip_tot, f_i,
                                f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf)
                            if err:
                                return nf, nt, err, i
                            if rounds:
                                lp_dirty = True
                            last_reb = t
            # ---- 3. funding settles ----
            if not math.isnan(fund_rate[i]):
                wallet, pap_margin, unfav, pfund, pmf, funded = _settle_funding(
                    fund_rate[i], mark[i], perp[i], papq, wallet, pap_margin, pq, unfav, pfund, pmf)
                if funded:
                    lp_dirty = True
                # the engine looks at the book again after the funding event (no market): a rebalance
                # due there (no market update at this instant) is not modelled
                if state == S_MONITORING and not priced[i] and not (
                        last_reb != NO_TS and (t <= last_reb or (t - last_reb) / 1e9 < cool_s)):
                    perp_need = money.perp_target(same, ratio, sq, pq, spot_px, perp_px) - pq
                    if _tradeable(target_spot - sq, spot_px, s_lot, s_minq, s_minn, min_order_n) or \
                            _tradeable(perp_need, perp_px, p_lot, p_minq, p_minn, min_order_n):
                        return nf, nt, 12, i
        # ---- 4. snapshot ----
        s_pp = sreal + _unreal(sq, slast, savg)
        p_pp = preal + _unreal(pq, plast, pavg)
        pnl = (preal + _unreal(pq, plast, pavg) + pfund - pfee - 0.0) + \
            (sreal + _unreal(sq, slast, savg) + 0.0 - sfee - 0.0)
        hr = money.hedge_ratio(sq, pq, spot_px, perp_px)
        if full:
            snap[i, 0] = s_pp; snap[i, 1] = p_pp; snap[i, 2] = pfund; snap[i, 3] = pfee + sfee
            snap[i, 4] = slip_tot; snap[i, 5] = 0.0; snap[i, 6] = pnl; snap[i, 7] = sq + pq; snap[i, 8] = hr
            snap[i, 9] = sq; snap[i, 10] = pq; snap[i, 11] = spot_px; snap[i, 12] = perp_px; snap[i, 13] = mark_px
        else:  # compact (sweeps): what the KPIs read per instant; the full last row apart
            snap[i, 0] = pnl; snap[i, 1] = pq; snap[i, 2] = hr  # prices: priced_prices(tl)
            if i == n - 1:
                last[0] = s_pp; last[1] = p_pp; last[2] = pfund; last[3] = pfee + sfee; last[4] = slip_tot
                last[5] = 0.0; last[6] = pnl; last[7] = sq + pq; last[8] = hr; last[9] = sq; last[10] = pq
                last[11] = spot_px; last[12] = perp_px; last[13] = mark_px
        states[i] = state
    return nf, nt, 0, -1


@njit(cache=True)
def _fmt0(x):
    """``int(f"{x:.0f}")`` for x >= 0: round half to even on the exact binary value."""
    r = math.floor(x)
    frac = x - r
    if frac > 0.5 or (frac == 0.5 and r % 2 == 1):
        r += 1
    return int(r)


@njit(cache=True)
def voltier_kernel(ts, spot, perp, mark, perp_vol, priced, fund_rate, last_rate, sigma, tier, liq_check, liq_ext,
                   fp, ip, lp, floors, caps, mmrs, cums, maxlevs, snap, last, ltv_out, ltv_pre, states, loan_out,
                   asof_out,
                   f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, t_i, t_code):
    """The vol-tiered loan book (``strategies.voltier`` through ``engine.step``) over n instants.

    The spot leg is the collateral (never traded, outside the PnL); the loan accrues simple
    interest when the strategy decides, realised perp profit repays it at the next analysis, LTV
    bands deploy the reserve and flatten at EMERGENCY. Returns (n_fills, n_transitions, error,
    error_instant); ``loan_out`` gets (principal, accrued, as_of ns, interest_paid,
    principal_paid, repaid, reserve_deployed), ``asof_out[0]`` the loan's accrual instant.
    """
    p_lot, p_minq, p_minn = fp[0], fp[1], fp[2]
    slip_bps, impact_k, p_fee_r = fp[3], fp[4], fp[5]
    sl, pt, tg, tmin, bstop, maxh = fp[6], fp[7], fp[8], fp[9], fp[10], fp[11]
    liq_close, liq_reduce, fcost, interval = fp[12], fp[13], fp[14], fp[15]
    drift_thr, min_order_n, cool_s = fp[16], fp[17], fp[18]
    wallet, max_pq, max_pn = fp[19], fp[20], fp[21]
    ratio_min, ratio_max, pt_k, perp_lev = fp[22], fp[23], fp[24], fp[25]
    sq = fp[26]  # fp[27]: the collateral entry price (unused: the collateral is outside the PnL)
    principal, apr, reserve, ltv_flat = fp[28], fp[29], fp[30], fp[31]
    unfav_n, rearm, max_opm, ltv_on = ip[0], ip[1], ip[2], ip[3]
    # ltv_out: the LTV after the engine acted at each instant; ltv_pre: before it acted (the new
    # price against the book and loan as they stood), NaN where no market update came
    n = len(ts)
    full = snap.shape[1] == 14
    pq = 0.0; pavg = 0.0; preal = 0.0; pfee = 0.0; pcash = 0.0; ptrd = 0.0; plast = np.nan; pfund = 0.0
    pmf = 0.0  # funding inside the open perp position's isolated margin (engine.ledger margin_funding)
    slip_tot = 0.0
    spot_px = np.nan; perp_px = np.nan; mark_px = np.nan
    state = S_ANALYZING
    cooldown = -1
    has_cool = False
    ratio = 0.0
    profit_target = np.nan
    entered = 0
    entry_notional = 0.0
    pnl_at_entry = 0.0
    peak = 0.0
    last_reb = NO_TS
    unfav = 0
    order_t = np.full(64, NO_TS)
    n_ord = 0
    # loan book (strategy_state)
    as_of = ts[0]
    accrued = 0.0; int_paid = 0.0; prin_paid = 0.0
    repaid = 0.0; booked = 0.0; deployed = 0.0
    res_active = -1  # name (rounded cumulative) of the latched reserve-deployment guard
    papq = 0.0; pap_entry = 0.0; pap_margin = 0.0; pap_lev = 20.0
    lp_cache = np.nan
    lp_dirty = True
    nf = 0
    nt = 0
    maxf = len(f_i)
    for i in range(n):
        t = ts[i]
        if nf + 8 > maxf or nt + 3 > maxf:
            return nf, nt, 10, i
        if liq_check[i] and papq != 0.0:
            ext = liq_ext[i]
            mm = _mm(abs(papq) * ext, caps, mmrs, cums)
            if pap_margin + money.unrealized_pnl(papq, ext, pap_entry) < mm * 1.01 + 1e-9:
                return nf, nt, 3, i
        ltv_pre[i] = np.nan
        if priced[i]:
            mk = mark[i] if not math.isnan(mark[i]) else perp[i]
            if mk > 0:
                plast = mk
            spot_px = spot[i]; perp_px = perp[i]; mark_px = mk
            acc0 = accrued
            if t > as_of:
                acc0 = accrued + money.simple_interest(principal, apr, (t - as_of) / 1e9)
            value0 = sq * spot_px
            ltv_pre[i] = money.loan_to_value(principal + acc0, sq, spot_px) if value0 > 0 else np.nan
            pnl = preal + _unreal(pq, plast, pavg) + pfund - pfee - 0.0
            if state == S_MONITORING and pnl - pnl_at_entry > peak:
                peak = pnl - pnl_at_entry
            # ---- guards: liquidation distance, funding cost, then the LTV bands ----
            if pq != 0.0 and mark_px > 0 and lp_dirty:
                lp_cache = money.liquidation_price(pq, pavg, money.isolated_margin(pq, pavg, perp_lev) + pmf, 0.0, 0.0,
                                                  floors, caps, mmrs, cums)
                lp_dirty = False
            flatten, reduce = _liq_and_funding_guards(pq, mark_px, lp_cache, liq_close, liq_reduce,
                                                      state == S_MONITORING, fcost, last_rate[i], interval)
            if reduce:
                return nf, nt, 1, i
            if ltv_on == 1 and spot_px > 0:
                value = money.loan_to_value(principal + accrued, sq, spot_px)
                due = min(money.reserve_deployment(value, lp[0], lp[1], lp[2], lp[3], lp[4], lp[5]), reserve) - deployed
                if due > 1e-9 and principal + accrued > 0:
                    to_i, to_p, _ = money.repayment_split(due, accrued, principal)
                    used = to_i + to_p
                    name = _fmt0(deployed + used)
                    if name != res_active:
                        accrued -= to_i; principal -= to_p; int_paid += to_i; prin_paid += to_p
                        deployed = deployed + used
                        res_active = name
                else:
                    res_active = -1
                if value >= ltv_flat and (state == S_MONITORING or state == S_ANALYZING):
                    flatten = True
            exit_now = flatten
            new_ratio = ratio
            if state == S_MONITORING and not flatten:
                if t > as_of:  # decide(): the loan accrues to now
                    accrued = accrued + money.simple_interest(principal, apr, (t - as_of) / 1e9)
                    as_of = t
                if not math.isnan(sigma[i]) and tier[i] != ratio:
                    new_ratio = min(max(tier[i], ratio_min), ratio_max)
                cp = pnl - pnl_at_entry
                exit_now = _exit_due(cp, entry_notional, peak, sl, pt, profit_target, tg, tmin, bstop, spot[i],
                                     perp[i], unfav_n, unfav, maxh, (t - entered) / 1e9 / 3600.0)
                if not exit_now:
                    ratio = new_ratio
            if exit_now:
                was = state
                if pq != 0.0:
                    if _recent_orders(order_t, t) >= max_opm:
                        return nf, nt, 11, i
                    oq = money.lot_floor(-pq, p_lot)
                    if not (perp[i] > 0 and oq >= p_lot - 1e-12 and oq >= p_minq - 1e-12):
                        return nf, nt, 9, i
                    sign = 1.0 if -pq > 0 else -1.0
                    (nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin,
                     wallet, pmf) = _perp_fill(
                        i, t, sign, oq, perp[i], perp_vol[i], slip_bps, impact_k, p_fee_r, pap_lev, pq, pavg,
                        preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf, order_t, n_ord,
                        slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf)
                    if abs(pq) > 1e-12:
                        return nf, nt, 9, i
                lp_dirty = True
                if rearm == 1 and not flatten:
                    state = S_ANALYZING
                    has_cool = True
                    cooldown = t + REARM_COOLDOWN_S * 1_000_000_000
                    t_i[nt] = i; t_code[nt] = T_EXIT_REARM
                else:
                    state = S_COMPLETED
                    if not flatten:
                        t_i[nt] = i; t_code[nt] = T_EXIT_DONE
                    else:
                        t_i[nt] = i; t_code[nt] = T_FLATTEN if was == S_MONITORING else T_FLATTEN_IDLE
                nt += 1
            elif state == S_ANALYZING and not (has_cool and t < cooldown):
                # decide(): accrue, repay from the last cycle's realised profit, then the tier
                if t > as_of:
                    accrued = accrued + money.simple_interest(principal, apr, (t - as_of) / 1e9)
                    as_of = t
                perp_booked = preal + pfund - pfee
                gained = perp_booked - booked
                if gained > 0:
                    to_i, to_p, _ = money.repayment_split(gained, accrued, principal)
                    accrued -= to_i; principal -= to_p; int_paid += to_i; prin_paid += to_p
                    repaid = repaid + to_i + to_p
                booked = perp_booked
                r_t = tier[i]
                if not math.isnan(sigma[i]) and r_t > 0:
                    notional_d = r_t * sq * spot[i]
                    profit_target = pt_k * sigma[i] * notional_d
                    ratio = min(max(r_t, ratio_min), ratio_max)
                    entry_notional = abs(sq) * spot[i] * ratio
                    pap_lev = perp_lev
                    pnl_at_entry = pnl
                    peak = 0.0
                    unfav = 0
                    pneed = money.perp_target(True, ratio, sq, pq, spot_px, perp_px) - pq
                    if not _tradeable(pneed, perp_px, p_lot, p_minq, p_minn, 0.0):
                        return nf, nt, 5, i
                    hq = money.lot_floor(pneed, p_lot)
                    if abs(hq) > max_pq or abs(hq) * perp_px > max_pn:
                        return nf, nt, 8, i
                    if _recent_orders(order_t, t) >= max_opm:
                        return nf, nt, 11, i
                    sign = 1.0 if pneed > 0 else -1.0
                    if hq * perp[i] > money.max_notional(pap_lev, caps, maxlevs):
                        return nf, nt, 7, i
                    need_m = money.isolated_margin(hq, perp[i], pap_lev) + money.fee(hq, perp[i], p_fee_r)
                    if need_m > (wallet - pap_margin) * 0.999:
                        return nf, nt, 7, i
                    (nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin,
                     wallet, pmf) = _perp_fill(
                        i, t, sign, hq, perp[i], perp_vol[i], slip_bps, impact_k, p_fee_r, pap_lev, pq, pavg,
                        preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf, order_t, n_ord,
                        slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf)
                    lp_dirty = True
                    state = S_MONITORING
                    entered = t
                    t_i[nt] = i; t_code[nt] = T_ENTRY
                    nt += 1
            # ---- rebalance (perp only: the collateral never trades) ----
            if state == S_MONITORING and not (last_reb != NO_TS and (t <= last_reb or
                                                                      (t - last_reb) / 1e9 < cool_s)):
                perp_need = money.perp_target(True, ratio, sq, pq, spot_px, perp_px) - pq
                if _tradeable(perp_need, perp_px, p_lot, p_minq, p_minn, min_order_n):
                    h = money.hedge_ratio(sq, pq, spot_px, perp_px)
                    drift = money.hedge_drift(h, ratio)
                    if math.isnan(drift) or drift > drift_thr or abs(sq) <= 1e-12:
                        t_i[nt] = i; t_code[nt] = T_REBAL
                        nt += 1
                        (err, rounds, nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry,
                         pap_margin, wallet, pmf) = _rebalance_rounds(
                            i, t, False, 1, ratio, 0.0, sq, spot_px, perp_px, perp[i], perp_vol[i],
                            0.0, 0.0, 0.0, min_order_n, p_lot, p_minq, p_minn, p_fee_r, slip_bps, impact_k,
                            max_pq, max_pn, max_opm, pap_lev, caps, maxlevs, pq, pavg, preal, pfee, pcash, ptrd,
                            papq, pap_entry, pap_margin, wallet, pmf, order_t, n_ord, slip_tot, f_i, f_leg, f_side,
                            f_qty, f_px, f_fee, f_slip, nf)
                        if err:
                            return nf, nt, err, i
                        if rounds:
                            lp_dirty = True
                        last_reb = t
        # ---- funding settles ----
        if not math.isnan(fund_rate[i]):
            wallet, pap_margin, unfav, pfund, pmf, funded = _settle_funding(
                fund_rate[i], mark[i], perp[i], papq, wallet, pap_margin, pq, unfav, pfund, pmf)
            if funded:
                lp_dirty = True
            if state == S_MONITORING and not priced[i] and not (
                    last_reb != NO_TS and (t <= last_reb or (t - last_reb) / 1e9 < cool_s)) and \
                    _tradeable(money.perp_target(True, ratio, sq, pq, spot_px, perp_px) - pq, perp_px, p_lot, p_minq,
                               p_minn, min_order_n):
                return nf, nt, 12, i
        # ---- snapshot (the collateral leg is outside the PnL) ----
        p_pp = preal + _unreal(pq, plast, pavg)
        pnl = preal + _unreal(pq, plast, pavg) + pfund - pfee - 0.0
        hr = money.hedge_ratio(sq, pq, spot_px, perp_px)
        if full:
            snap[i, 0] = 0.0; snap[i, 1] = p_pp; snap[i, 2] = pfund; snap[i, 3] = pfee
            snap[i, 4] = slip_tot; snap[i, 5] = 0.0; snap[i, 6] = pnl; snap[i, 7] = sq + pq; snap[i, 8] = hr
            snap[i, 9] = sq; snap[i, 10] = pq; snap[i, 11] = spot_px; snap[i, 12] = perp_px; snap[i, 13] = mark_px
        else:  # compact (sweeps): what the KPIs read per instant; the full last row apart
            snap[i, 0] = pnl; snap[i, 1] = pq; snap[i, 2] = hr  # prices: priced_prices(tl)
            if i == n - 1:
                last[0] = 0.0; last[1] = p_pp; last[2] = pfund; last[3] = pfee; last[4] = slip_tot
                last[5] = 0.0; last[6] = pnl; last[7] = sq + pq; last[8] = hr; last[9] = sq; last[10] = pq
                last[11] = spot_px; last[12] = perp_px; last[13] = mark_px
        acc = accrued
        if t > as_of:
            acc = accrued + money.simple_interest(principal, apr, (t - as_of) / 1e9)
        value = sq * spot_px
        ltv_out[i] = money.loan_to_value(principal + acc, sq, spot_px) if value > 0 else np.nan
        states[i] = state
    loan_out[0] = principal; loan_out[1] = accrued; asof_out[0] = as_of; loan_out[3] = int_paid
    loan_out[4] = prin_paid; loan_out[5] = repaid; loan_out[6] = deployed
    return nf, nt, 0, -1


def _nan(v: Any) -> float:
    return math.nan if v is None else float(v)


def _pack(params: Any, paper: PaperConfig, tl: Timeline, balances: dict) -> tuple[np.ndarray, np.ndarray]:
    inst = {i.symbol: i for i in paper.instruments}
    try:
        si, pi = inst[tl.spot_symbol], inst[tl.perp_symbol]
    except KeyError:
        raise InvalidInput("symbols", (tl.spot_symbol, tl.perp_symbol), f"instruments of the paper venue: {sorted(inst)}")
    e, g, lv, rb = params.exit, params.guards, params.leverage, params.rebalance
    ratio = min(max(rb.target_ratio, rb.ratio_min), rb.ratio_max)
    cross = params.strategy == "cross"
    grid = params.strategy == "grid"
    same = si.base == pi.base  # the engine's ctx.same_base: perp sizing and the basis stop follow it
    fp = np.array([
        params.notional, ratio, si.lot_size, si.min_qty, si.min_notional, pi.lot_size, pi.min_qty, pi.min_notional,
        paper.slippage_bps, paper.impact_k_bps, paper.spot_taker_fee, paper.perp_taker_fee,
        _nan(e.stop_loss_pct), _nan(e.profit_target_pct), _nan(e.trailing_giveback), e.trailing_min_peak_pct,
        _nan(e.basis_stop_bps) if same else math.nan, _nan(e.max_holding_hours),  # basis stop: same base only
        g.liq_distance_close, g.liq_distance_reduce, _nan(g.funding_cost_apr_limit), tl.interval_hours,
        lv.min_leverage, lv.max_leverage, lv.liq_buffer, lv.target_vol_multiple, lv.recheck_hours,
        rb.drift_threshold, rb.min_order_notional,
        balances["spot"].get("USDT", 0.0), balances["perp"]["USDT"], g.max_position_qty, g.max_position_notional,
        rb.ratio_min, rb.ratio_max, float(getattr(params, "reestimate_hours", 0.0)), rb.cooldown_s,
        *((params.spacing_sigma, params.min_spacing_pct, params.max_ratio, params.grid_stop_loss_pct,
           _nan(params.var_limit), _nan(params.max_drawdown)) if grid else (0.0, 0.0, 0.0, 0.0, math.nan, math.nan)),
    ], dtype="float64")
    ip = np.array([-1 if e.funding_unfavourable_intervals is None else e.funding_unfavourable_intervals,
                   1 if e.rearm else 0, K_CROSS if cross else (K_GRID if grid else K_CARRY), g.max_orders_per_minute,
                   params.levels if grid else 0, 1 if same else 0], dtype="int64")
    return fp, ip


def _brackets(symbol: str) -> tuple[np.ndarray, ...]:
    br = brackets_for(symbol)
    return tuple(np.array([getattr(b, f) for b in br], dtype="float64") for f in ("notional_floor", "notional_cap",
                                                                                  "mmr", "cum",
                                                                                  "max_leverage"))


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


def _utc_index(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(ns, dtype="int64").view("datetime64[ns]")).tz_localize("UTC")


_TRANS = {
    T_ENTRY: [("ANALYZING_MARKET", "OPENING_SPOT_POSITION", "ENTRY_SIGNAL"),
              ("OPENING_SPOT_POSITION", "OPENING_FUTURES_HEDGE", "SPOT_FILLED"),
              ("OPENING_FUTURES_HEDGE", "MONITORING_POSITIONS", "HEDGE_FILLED")],
    T_EXIT_REARM: [("MONITORING_POSITIONS", "CLOSING_POSITIONS", "EXIT_SIGNAL"),
                   ("CLOSING_POSITIONS", "ANALYZING_MARKET", "REARM")],
    T_EXIT_DONE: [("MONITORING_POSITIONS", "CLOSING_POSITIONS", "EXIT_SIGNAL"),
                  ("CLOSING_POSITIONS", "COMPLETED", "FLAT")],
    T_FLATTEN: [("MONITORING_POSITIONS", "CLOSING_POSITIONS", "FLATTEN"),
                ("CLOSING_POSITIONS", "COMPLETED", "FLAT")],
    T_FLATTEN_IDLE: [("ANALYZING_MARKET", "CLOSING_POSITIONS", "FLATTEN"),
                     ("CLOSING_POSITIONS", "COMPLETED", "FLAT")],
    T_REBAL: [("MONITORING_POSITIONS", "REBALANCING", "DRIFT_EXCEEDED"),
              ("REBALANCING", "MONITORING_POSITIONS", "REBALANCED")],
}


def _pack_voltier(params: Any, paper: PaperConfig, tl: Timeline, balances: dict,
                  first_px: float) -> tuple[np.ndarray, ...]:
    inst = {i.symbol: i for i in paper.instruments}
    try:
        pi = inst[tl.perp_symbol]
        _ = inst[tl.spot_symbol]
    except KeyError:
        raise InvalidInput("symbols", (tl.spot_symbol, tl.perp_symbol), f"instruments of the paper venue: {sorted(inst)}")
    if pi.base != inst[tl.spot_symbol].base:
        raise FastPathUnsupported("a loan book whose collateral is not the perp's base asset")
    if params.perp_leverage > pi.max_leverage:
        raise FastPathUnsupported(f"perp_leverage {params.perp_leverage} above the venue's {pi.max_leverage}")
    e, g, rb = params.exit, params.guards, params.rebalance
    fp = np.array([
        pi.lot_size, pi.min_qty, pi.min_notional, paper.slippage_bps, paper.impact_k_bps, paper.perp_taker_fee,
        _nan(e.stop_loss_pct), _nan(e.profit_target_pct), _nan(e.trailing_giveback), e.trailing_min_peak_pct,
        _nan(e.basis_stop_bps), _nan(e.max_holding_hours),
        g.liq_distance_close, g.liq_distance_reduce, _nan(g.funding_cost_apr_limit), tl.interval_hours,
        rb.drift_threshold, rb.min_order_notional, rb.cooldown_s,
        balances["perp"]["USDT"], g.max_position_qty, g.max_position_notional,
        rb.ratio_min, rb.ratio_max, params.pt_k, params.perp_leverage,
        params.collateral_at(first_px), first_px, params.loan, params.loan_apr, params.reserve, params.ltv_flatten,
    ], dtype="float64")
    ip = np.array([-1 if e.funding_unfavourable_intervals is None else e.funding_unfavourable_intervals,
                   1 if e.rearm else 0, g.max_orders_per_minute, 1 if g.ltv_band_actions else 0], dtype="int64")
    from hedge_core.engine.strategies.voltier import ltv_params

    lp = ltv_params(params)
    lpa = np.array([lp.reserve_start, lp.reserve_mid, lp.reserve_end, lp.reserve_mid_amount, lp.reserve_end_amount,
                    lp.reserve_total], dtype="float64")
    return fp, ip, lpa


def _tiers(params: Any, sigma: np.ndarray) -> np.ndarray:
    """``voltier.tier_ratio`` per instant (NaN where sigma is unknown)."""
    edges = np.asarray(params.tier_uppers, dtype="float64")
    levels = np.asarray((*params.tier_ratios, params.tier_top), dtype="float64")
    out = levels[np.searchsorted(edges, np.nan_to_num(sigma, nan=0.0), side="right")].astype("float64")
    out[~np.isfinite(sigma)] = np.nan
    return out


def run_fast(params: Any, market: Market | Timeline, *, start: object | None = None, end: object | None = None,
             config: Any = None, enter: np.ndarray | None = None, compact: bool = False) -> FastResult:
    """Run the strategy's kernel. Same arguments as :func:`hedge_core.backtest.event.run_backtest`.

    ``compact=True`` (sweeps) keeps per instant only what the KPIs read: ``snap`` columns net,
    perp qty, hedge ratio; the spot and perp prices the kernel saw are :func:`priced_prices` of
    the timeline (the same doubles, shared by every run); the full last row is in ``FastResult.last``.

    Raises
    ------
    FastPathUnsupported
        Outside the kernel's scope (see the module docstring), with the reason and instant.
    """
    raw = _run_raw(params, market, start=start, end=end, config=config, enter=enter, compact=compact)
    tl, nf, nt = raw.timeline, raw.nf, raw.nt
    fi = raw.f_i[:nf]
    fills = pd.DataFrame({"ts": _utc_index(tl.ts[fi]), "leg": np.where(raw.f_leg[:nf] == 1, "perp", "spot"),
                          "side": np.where(raw.f_side[:nf] > 0, "buy", "sell"), "qty": raw.f_qty[:nf],
                          "price": raw.f_px[:nf], "fee": raw.f_fee[:nf], "slippage": raw.f_slip[:nf]})
    rows = []
    tix = _utc_index(tl.ts[raw.t_i[:nt]])
    for k in range(nt):
        for fr, to, trig in _TRANS[int(raw.t_code[k])]:
            rows.append({"ts": tix[k], "from_state": fr, "to_state": to, "trigger_name": trig})
    trans = pd.DataFrame(rows, columns=["ts", "from_state", "to_state", "trigger_name"])
    return FastResult(raw.snap, raw.states, fills, trans, tl, raw.ltv, raw.loan, raw.last, raw.ltv_before)


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
        return np.array([trig for k in range(self.nt) for _fr, _to, trig in _TRANS[int(self.t_code[k])]],
                        dtype=object)


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


def _liq_arrays(tl: Timeline) -> tuple[np.ndarray, np.ndarray]:
    """Where the paper venue checks liquidation (a mark bar, or a perp bar before any mark) and
    the adverse extreme it uses; depends on the timeline only, so it is kept with it."""
    def build() -> tuple[np.ndarray, np.ndarray]:
        seen_mark = np.maximum.accumulate(tl.has_mark)
        liq_check = tl.has_mark | (tl.has_perp & ~seen_mark)
        liq_ext = np.where(tl.has_mark, tl.mark_bar[:, 1], tl.perp_bar[:, 1])  # short perp: adverse = high
        return liq_check, liq_ext

    return tl.cached("fast.liq", build)


def _run_raw(params: Any, market: Market | Timeline, *, start: object | None = None, end: object | None = None,
             config: Any = None, enter: np.ndarray | None = None, compact: bool = False) -> _Raw:
    from hedge_core.backtest.event import BacktestConfig, _balances

    cfg = config if config is not None else BacktestConfig()
    params = resolve_costs(params, from_paper(cfg.paper))  # the entry filter prices the venue's round trip
    check_supported(params, cfg.paper)
    tl = timeline_of(market, start=start, end=end, warmup=cfg.warmup, spec=cfg.spec)
    check_supported(params, cfg.paper, tl.perp_symbol)
    if "liq_price" in tl.input_names:
        raise FastPathUnsupported("a 'liq_price' analytics input (the guard would use the feed's price)")
    first_px = tl.first_spot_price
    balances = _balances(params, cfg, first_px)
    voltier = params.strategy == "voltier"
    if voltier:
        fp, ip, lpa = _pack_voltier(params, cfg.paper, tl, balances, first_px)
    else:
        fp, ip = _pack(params, cfg.paper, tl, balances)
    floors, caps, mmrs, cums, maxlevs = _brackets(tl.perp_symbol)
    n = tl.n
    sig = _input(tl, "sigma_24h")
    liq_check, liq_ext = _liq_arrays(tl)
    snap = np.empty((n, 3 if compact else 14))  # the kernel writes every row
    last = np.empty(14)
    states = np.empty(n, dtype=np.int8)  # S_* codes per instant
    ltv = None
    ltv_pre = None
    loan = None
    if voltier:
        tier = _tiers(params, sig)
        ltv = np.empty(n)
        ltv_pre = np.empty(n)
        loan_out = np.zeros(7)
        asof_out = np.zeros(1, dtype=np.int64)
    else:
        beta = _input(tl, "beta")
        ok = entry_signal(params, tl) if enter is None else enter
        eratio = entry_ratio(params, tl)
        support = np.asarray(params.support_levels if params.strategy == "grid" else (), dtype="float64")
    cap = 4096
    while True:
        f_i = np.empty(cap, dtype=np.int64)
        f_leg = np.empty(cap, dtype=np.int64)
        f_side, f_qty, f_px, f_fee, f_slip = (np.empty(cap) for _ in range(5))
        t_i = np.empty(cap, dtype=np.int64)
        t_code = np.empty(cap, dtype=np.int64)
        if voltier:
            nf, nt, err, ei = voltier_kernel(tl.ts, tl.spot, tl.perp, tl.mark, tl.perp_vol, tl.priced, tl.fund_rate,
                                             tl.last_rate, sig, tier, liq_check, liq_ext, fp, ip, lpa, floors, caps,
                                             mmrs, cums, maxlevs, snap, last, ltv, ltv_pre, states, loan_out, asof_out,
                                             f_i, f_leg,
                                             f_side, f_qty, f_px, f_fee, f_slip, t_i, t_code)
        else:
            nf, nt, err, ei = hedge_kernel(tl.ts, tl.spot, tl.perp, tl.mark, tl.spot_vol, tl.perp_vol, tl.priced,
                                           tl.fund_rate, tl.last_rate, sig, beta, ok, eratio, liq_check, liq_ext, fp,
                                           ip, floors, caps, mmrs, cums, maxlevs, support, snap, last, states, f_i, f_leg,
                                           f_side, f_qty, f_px, f_fee, f_slip, t_i, t_code)
        if err != 10 or cap >= 8 * n + 16:
            break
        cap = 8 * n + 16  # more fills than the first buffer holds: run again with room for all
    if err:
        at = pd.Timestamp(int(tl.ts[ei]), tz="UTC")
        raise FastPathUnsupported(f"{ERRORS[int(err)]} at {at}")
    if voltier:
        loan = {"principal": float(loan_out[0]), "accrued_interest": float(loan_out[1]),
                "as_of": pd.Timestamp(int(asof_out[0]), tz="UTC"), "interest_paid": float(loan_out[3]),
                "principal_paid": float(loan_out[4]), "repaid": float(loan_out[5]),
                "reserve_deployed": float(loan_out[6])}
    if not compact:
        last = snap[-1].copy()
    return _Raw(tl, snap, states, last, ltv, loan, int(nf), int(nt), f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip,
                t_i, t_code, ltv_pre)


def fast_kpis(params: Any, market: Market | Timeline, *, config: Any = None, capital: float | None = None,
              **kw: Any) -> dict[str, float]:
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


def run_fast_or_event(params: Any, market: Market | Timeline, **kw: Any) -> tuple[str, dict[str, float]]:
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


def _drop_stale_kernel_cache(cache_dir: Path, sources: list[Path]) -> bool:
    """Delete this module's compiled kernels in ``cache_dir`` when ``sources`` (the files of the
    :mod:`hedge_core.money` package) changed.

    numba keys a kernel's on-disk cache on the kernel's own file only, but the kernels inline the
    money formulas of :mod:`hedge_core.money`: without this, an edited formula would reach the
    event engine at once and the fast path only after ``backtest/fast.py`` itself changed. A stamp file
    named by the hash of ``sources`` records which version the cached kernels were built from.
    Returns True when it dropped the cache. I/O errors (a read-only install) leave it alone.
    """
    try:
        h = hashlib.sha256()
        for src in sorted(sources):
            h.update(src.name.encode() + b"\0" + src.read_bytes())
        digest = h.hexdigest()[:16]
        stem = Path(__file__).stem  # numba names cache files after the module file
        stamp = cache_dir / f"{stem}.money-{digest}.stamp"
        if stamp.exists() or not cache_dir.is_dir():
            return False
        for f in [*cache_dir.glob(f"{stem}.*.nbi"), *cache_dir.glob(f"{stem}.*.nbc"),
                  *cache_dir.glob(f"{stem}.money-*.stamp")]:
            f.unlink(missing_ok=True)
        stamp.touch()
        return True
    except OSError:
        return False


_cache = getattr(hedge_kernel, "_cache", None)
if getattr(_cache, "_cache_path", None):
    _drop_stale_kernel_cache(Path(_cache._cache_path), list(Path(money.__file__).parent.glob("*.py")))
