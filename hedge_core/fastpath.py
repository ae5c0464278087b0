"""Fast path: a numba kernel of the funding-carry hedge's core loop, for sweeps.

GUARANTEE: for every run it accepts, the fast path produces the SAME fills (instant, leg, side,
quantity, price, fee) and the same PnL components per instant as the event-driven backtester
(:func:`hedge_core.backtest.run_backtest`, i.e. engine ``step`` + ``HedgeDriver`` + paper
venue) to float round-off (tests on real data: ``tests/test_backtest_fastpath.py``). A fast
path that disagrees is a bug, not an approximation. Everything it cannot reproduce exactly it
REFUSES with :class:`FastPathUnsupported` naming the reason, either up front (parameters) or at
the instant the run reaches a situation it does not model (the caller then uses the
event-driven path; :func:`run_fast_or_event` does that automatically).

Scope (what the kernel mirrors, line by line, from ``engine/step.py``, ``engine/ledger.py``,
``engine/exits.py``, ``engine/guards.py``, ``engine/sizing.py``, ``engine/strategies/carry.py``
and ``exchange/paper_core.py``):

- strategy ``carry`` with positive funding (long spot / short perp), market orders that fill at
  once at the last close with fixed + square-root-impact slippage and taker fees;
- entry: the carry decision (funding threshold, basis cap, expected net carry), leverage by the
  risk rule, spot then perp hedge rounded down to the venue lots;
- exits: stop loss, profit target, trailing stop, basis stop, unfavourable funding, max
  holding time; re-arm (with the engine's 1 s cooldown) or complete;
- guards: liquidation-distance close (flatten) and funding-cost flatten; leverage re-checks;
- funding at each settlement at the last known mark; the equity snapshot per instant.

Refused (up front): other strategies (cross, voltier, grid — their kernels are not written),
``allow_spot_short``, activation triggers, ``enter_within_s_of_funding``, daily-loss and
heartbeat guards, cross margin, a paper venue with participation caps or slippage noise.
Refused (at run time, with the instant): a liquidation-distance REDUCE, a rebalance becoming
due, a paper liquidation (or coming within 1 % of one), an order the venue would refuse (funds,
lot/notional minimums, position limits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from hedge_core.analytics.risk import brackets_for
from hedge_core.backtest_data import Market, Timeline, build_timeline
from hedge_core.errors import HedgeError, InvalidInput
from hedge_core.exchange.paper_core import PaperConfig
from hedge_core.types import MarginMode

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
        super().__init__(f"fast path refuses this run: {reason}; use hedge_core.backtest.run_backtest "
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
}

# transition codes written by the kernel
T_ENTRY, T_EXIT_REARM, T_EXIT_DONE, T_FLATTEN = 1, 2, 3, 4
S_ANALYZING, S_MONITORING, S_COMPLETED = 0, 1, 2
STATE_NAMES = ("ANALYZING_MARKET", "MONITORING_POSITIONS", "COMPLETED")


def check_supported(params: Any, paper: PaperConfig) -> None:
    """Raise :class:`FastPathUnsupported` when the parameters or venue model are outside the kernel's scope."""
    strat = getattr(params, "strategy", None)
    if strat != "carry":
        raise FastPathUnsupported(f"strategy {strat!r} has no fast kernel (only 'carry')")
    why = []
    if params.allow_spot_short:
        why.append("allow_spot_short=True (spot short on margin)")
    a = params.activation
    if a.deviation_z is not None or a.volume_spike is not None:
        why.append("activation triggers")
    if params.enter_within_s_of_funding is not None:
        why.append("enter_within_s_of_funding")
    g = params.guards
    if g.daily_loss_limit is not None:
        why.append("guards.daily_loss_limit")
    if g.heartbeat_timeout_s is not None:
        why.append("guards.heartbeat_timeout_s")
    if g.max_orders_per_minute < 3:
        why.append("guards.max_orders_per_minute < 3")
    if params.leverage.margin_mode != MarginMode.ISOLATED:
        why.append("cross margin")
    if paper.participation is not None:
        why.append("paper participation cap")
    if paper.slippage_noise_bps > 0:
        why.append("paper slippage noise")
    if why:
        raise FastPathUnsupported(", ".join(why))


def entry_signal(params: Any, tl: Timeline) -> np.ndarray:
    """Per instant: would ``carry.decide`` say ENTER from the market alone (state ANALYZING)?

    The same arithmetic as ``engine.strategies.carry`` and ``analytics.funding`` (element-wise
    IEEE operations in the same order, so identical doubles).
    """
    rate = tl.last_rate
    spot, perp = tl.spot, tl.perp
    hours = float(tl.interval_hours)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = ~np.isnan(rate) & ~(np.abs(rate) < params.min_funding_rate)
        ok &= ~(rate < 0)  # negative funding needs a spot short: refused up front, stays out here
        basis = (perp - spot) / spot
        ok &= ~(np.abs(basis) * 1e4 > params.max_entry_basis_bps)
        round_trip = (2 * 2) * (params.taker_fee + params.slippage_rate)
        days = params.expected_hold_intervals * hours / 24.0
        apr = np.abs(rate) * (365 * 24) / hours
        net = (apr - 0.0) * days / 365.0 - round_trip
        direction = np.where(rate >= 0, 1.0, -1.0)
        carry = net + direction * basis
        ok &= ~(carry < params.min_net_carry)
    return ok & tl.priced


@njit(cache=True)
def _round_qty(q, lot):
    steps = int(abs(q) / lot + 1e-9)
    return round(steps * lot, 12)


@njit(cache=True)
def _tradeable(q, px, lot, min_qty, min_notional, extra_min):
    r = _round_qty(q, lot)
    if not px > 0:
        return False
    ok = r >= lot - 1e-12 and r >= min_qty - 1e-12 and r * px >= min_notional - 1e-9
    return ok and r * px >= extra_min - 1e-9


@njit(cache=True)
def _apply_fill(q0, avg, realized, fees, cash, traded, sign, qty, price, fee):
    dq = sign * qty
    if q0 == 0.0 or (q0 > 0) == (dq > 0):
        q1 = q0 + dq
        avg = (abs(q0) * avg + qty * price) / abs(q1)
    else:
        closed = min(qty, abs(q0))
        realized += closed * (price - avg) * (1.0 if q0 > 0 else -1.0)
        q1 = q0 + dq
        if abs(q1) <= 1e-12:
            q1 = 0.0
            avg = 0.0
        elif (q1 > 0) != (q0 > 0):
            avg = price
    return q1, avg, realized, fees + fee, cash - dq * price, traded + qty * price


@njit(cache=True)
def _unreal(q, last, avg):
    if q == 0.0 or math.isnan(last):
        return 0.0
    return q * (last - avg)


@njit(cache=True)
def _mm(notional, caps, mmrs, cums):
    n = abs(notional)
    k = len(caps) - 1
    for j in range(len(caps)):
        if n < caps[j]:
            k = j
            break
    return n * mmrs[k] - cums[k]


@njit(cache=True)
def _liq_price_iso(q, ep, wb, floors, caps, mmrs, cums):
    side = 1 if q > 0 else -1
    size = abs(q)
    nb = len(caps)
    for j in range(nb):
        lp = (wb - 0.0 + 0.0 + cums[j] - side * size * ep) / (size * mmrs[j] - side * size)
        n = size * max(lp, 0.0)
        if floors[j] <= n and (n < caps[j] or j == nb - 1):
            return max(lp, 0.0)
    n = abs(size * ep)
    k = nb - 1
    for j in range(nb):
        if n < caps[j]:
            k = j
            break
    lp = (wb - 0.0 + 0.0 + cums[k] - side * size * ep) / (size * mmrs[k] - side * size)
    return max(lp, 0.0)


@njit(cache=True)
def _exit_due(cp, notional, peak, sl, pt, tg, tmin, bstop, spot, perp, unfav_n, unfav, maxh, held_h):
    """``engine.exits.exit_reason`` != "" (same rules, same order; NaN = rule off)."""
    if not math.isnan(sl) and notional > 0 and cp <= -sl * notional:
        return True
    if not math.isnan(pt) and notional > 0 and pt * notional > 0 and cp >= pt * notional:
        return True
    if (not math.isnan(tg) and notional > 0 and peak > 0 and peak >= tmin * notional
            and cp <= peak * (1.0 - tg)):
        return True
    if not math.isnan(bstop) and spot > 0 and not math.isnan(perp) and abs(perp - spot) / spot * 1e4 >= bstop:
        return True
    if unfav_n >= 0 and unfav >= unfav_n:
        return True
    return not math.isnan(maxh) and held_h >= maxh


@njit(cache=True)
def _choose_lev(sigma, liq_buffer, tvm, min_lev, max_lev):
    required = liq_buffer
    if not math.isnan(sigma) and sigma > 0:
        required = max(required, tvm * sigma)
    lev = math.floor(1.0 / (required + 0.004))
    return float(min(max(lev, min_lev), max_lev))


@njit(cache=True)
def _fill_px(ref, sign, q, vol, slip_bps, impact_k):
    bps = slip_bps
    if vol > 0 and impact_k > 0:
        bps += impact_k * math.sqrt(q / vol)
    px = ref * (1.0 + sign * bps / 1e4)
    avg = (0.0 + q * px) / q  # the paper order's average price, then the driver's fill price
    cost = q * avg
    px2 = (cost - 0.0) / q
    if not px2 > 0:
        px2 = avg
    return px, px2, abs(px - ref) * q


@njit(cache=True)
def carry_kernel(ts, spot, perp, mark, spot_vol, perp_vol, priced, fund_rate, last_rate, sigma, enter_ok,
                 liq_check, liq_ext, fp, ip, floors, caps, mmrs, cums,
                 snap, states, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, t_i, t_code):
    """The carry hedge over n instants. ``fp``/``ip`` pack the float/int parameters (see ``_pack``).

    Returns (n_fills, n_transitions, error_code, error_instant); error 0 = none.
    """
    notional, ratio = fp[0], fp[1]
    s_lot, s_minq, s_minn, p_lot, p_minq, p_minn = fp[2], fp[3], fp[4], fp[5], fp[6], fp[7]
    slip_bps, impact_k, s_fee_r, p_fee_r = fp[8], fp[9], fp[10], fp[11]
    sl, pt, tg, tmin, bstop, maxh = fp[12], fp[13], fp[14], fp[15], fp[16], fp[17]
    liq_close, liq_reduce, fcost, interval = fp[18], fp[19], fp[20], fp[21]
    min_lev, max_lev, liq_buf, tvm, recheck_h = fp[22], fp[23], fp[24], fp[25], fp[26]
    drift_thr, min_order_n = fp[27], fp[28]
    spot_cash, wallet = fp[29], fp[30]
    max_pq, max_pn = fp[31], fp[32]
    unfav_n, rearm = ip[0], ip[1]
    n = len(ts)
    # engine legs
    sq = 0.0; savg = 0.0; sreal = 0.0; sfee = 0.0; scash = 0.0; strd = 0.0; slast = np.nan
    pq = 0.0; pavg = 0.0; preal = 0.0; pfee = 0.0; pcash = 0.0; ptrd = 0.0; plast = np.nan; pfund = 0.0
    slip_tot = 0.0
    spot_px = np.nan; perp_px = np.nan; mark_px = np.nan
    state = S_ANALYZING
    cooldown = -1
    has_cool = False
    target_spot = 0.0
    entered = 0
    entry_notional = 0.0
    pnl_at_entry = 0.0
    peak = 0.0
    lev = 1.0
    last_lev_check = 0
    unfav = 0
    # paper venue (for refusals only)
    papq = 0.0; pap_entry = 0.0; pap_margin = 0.0; pap_lev = 20.0
    lp_cache = np.nan  # engine guard's liquidation price; depends on qty, entry, leverage, funding only
    lp_dirty = True
    rq_cache = 0.0  # rounded perp residual of the hedge; depends on the legs only
    rq_dirty = True
    nf = 0
    nt = 0
    maxf = len(f_i)
    for i in range(n):
        t = ts[i]
        # ---- 1. bars ended at t: the paper venue checks liquidation on the adverse extreme ----
        if liq_check[i] and papq != 0.0:
            ext = liq_ext[i]
            mm = _mm(abs(papq) * ext, caps, mmrs, cums)
            if pap_margin + papq * (ext - pap_entry) < mm * 1.01 + 1e-9:
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
            flatten = False
            if pq != 0.0 and mark_px > 0:
                if lp_dirty:
                    margin = abs(pq) * pavg / lev + pfund
                    lp_cache = _liq_price_iso(pq, pavg, margin, floors, caps, mmrs, cums)
                    lp_dirty = False
                lp = lp_cache
                dist = (mark_px - lp) / mark_px if pq > 0 else (lp - mark_px) / mark_px
                if dist <= liq_close:
                    flatten = state == S_MONITORING
                elif dist <= liq_reduce and state == S_MONITORING:
                    return nf, nt, 1, i
            if not math.isnan(fcost) and pq != 0.0:
                r = last_rate[i]
                apr = 0.0
                if not math.isnan(r):
                    pay = r if pq > 0 else -r
                    apr = max(pay, 0.0) * 8760.0 / interval
                if apr > 0 and apr >= fcost and state == S_MONITORING:
                    flatten = True
            exit_now = flatten
            if state == S_MONITORING and not flatten:
                cp = pnl - pnl_at_entry
                nt_ = entry_notional
                exit_now = _exit_due(cp, nt_, peak, sl, pt, tg, tmin, bstop, spot[i], perp[i], unfav_n, unfav,
                                     maxh, (t - entered) / 1e9 / 3600.0)
            if exit_now:
                # close: perp (reduce-only) first, then spot; both at once
                for k in range(2):
                    leg = 1 - k  # perp (reduce-only) first, as the engine's _closing does
                    q = pq if leg == 1 else sq
                    if q == 0.0:
                        continue
                    lot = p_lot if leg == 1 else s_lot
                    px_ref = perp[i] if leg == 1 else spot[i]
                    if not _tradeable(-q, px_ref, lot, p_minq if leg == 1 else s_minq,
                                      p_minn if leg == 1 else s_minn, 0.0):
                        return nf, nt, 9, i
                    oq = _round_qty(-q, lot)
                    sign = 1.0 if -q > 0 else -1.0
                    vol = perp_vol[i] if leg == 1 else spot_vol[i]
                    px, px2, sl_ = _fill_px(px_ref, sign, oq, vol, slip_bps, impact_k)
                    fee = oq * px * (p_fee_r if leg == 1 else s_fee_r)
                    if nf >= maxf:
                        return nf, nt, 10, i
                    f_i[nf] = i; f_leg[nf] = leg; f_side[nf] = sign; f_qty[nf] = oq; f_px[nf] = px2
                    f_fee[nf] = fee; f_slip[nf] = sl_
                    nf += 1
                    slip_tot += sl_
                    if leg == 1:
                        pq, pavg, preal, pfee, pcash, ptrd = _apply_fill(pq, pavg, preal, pfee, pcash, ptrd, sign,
                                                                         oq, px2, fee)
                        closed = min(oq, abs(papq))
                        sg = 1.0 if papq > 0 else -1.0
                        wallet += closed * (px - pap_entry) * sg
                        pap_margin -= pap_margin * closed / abs(papq)
                        papq -= sg * closed
                        if abs(papq) < 1e-12:
                            papq = 0.0; pap_entry = 0.0; pap_margin = 0.0
                        wallet -= fee
                    else:
                        sq, savg, sreal, sfee, scash, strd = _apply_fill(sq, savg, sreal, sfee, scash, strd, sign,
                                                                         oq, px2, fee)
                        spot_cash += oq * px - fee
                target_spot = 0.0
                lp_dirty = True
                rq_dirty = True
                if rearm == 1 and not flatten:
                    state = S_ANALYZING
                    has_cool = True
                    cooldown = t + 1_000_000_000
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
                        nl = _choose_lev(sg_, liq_buf, tvm, min_lev, max_lev)
                        if nl < lev:
                            lev = nl
                            pap_lev = nl
                            lp_dirty = True
            elif state == S_ANALYZING and enter_ok[i] and not (has_cool and t < cooldown):
                target_spot = 1.0 * notional / spot[i]
                lev = _choose_lev(sigma[i], liq_buf, tvm, min_lev, max_lev)
                pap_lev = lev
                pnl_at_entry = pnl
                peak = 0.0
                last_lev_check = t
                unfav = 0
                need = target_spot - sq
                if not _tradeable(need, spot_px, s_lot, s_minq, s_minn, 0.0):
                    return nf, nt, 4, i
                oq = _round_qty(need, s_lot)
                if abs(sq + oq) > max_pq or abs(sq + oq) * spot_px > max_pn:
                    return nf, nt, 8, i
                px, px2, sl_ = _fill_px(spot[i], 1.0, oq, spot_vol[i], slip_bps, impact_k)
                est = spot[i] * (1.0 + 1.0 * (slip_bps + (impact_k * math.sqrt(oq / spot_vol[i])
                                                          if spot_vol[i] > 0 and impact_k > 0 else 0.0)) / 1e4)
                if oq * est * (1 + s_fee_r) > spot_cash * 0.999:
                    return nf, nt, 6, i
                fee = oq * px * s_fee_r
                if nf + 2 > maxf:
                    return nf, nt, 10, i
                f_i[nf] = i; f_leg[nf] = 0; f_side[nf] = 1.0; f_qty[nf] = oq; f_px[nf] = px2
                f_fee[nf] = fee; f_slip[nf] = sl_
                nf += 1
                slip_tot += sl_
                sq, savg, sreal, sfee, scash, strd = _apply_fill(sq, savg, sreal, sfee, scash, strd, 1.0, oq, px2, fee)
                spot_cash -= oq * px + fee
                # hedge what filled
                pneed = -ratio * sq - pq
                if not _tradeable(pneed, perp_px, p_lot, p_minq, p_minn, 0.0):
                    return nf, nt, 5, i
                hq = _round_qty(pneed, p_lot)
                if abs(hq) > max_pq or abs(hq) * perp_px > max_pn:
                    return nf, nt, 8, i
                sign = 1.0 if pneed > 0 else -1.0
                need_m = hq * perp[i] / pap_lev + hq * perp[i] * p_fee_r
                if need_m > (wallet - pap_margin) * 0.999:
                    return nf, nt, 7, i
                px, px2, sl_ = _fill_px(perp[i], sign, hq, perp_vol[i], slip_bps, impact_k)
                fee = hq * px * p_fee_r
                f_i[nf] = i; f_leg[nf] = 1; f_side[nf] = sign; f_qty[nf] = hq; f_px[nf] = px2
                f_fee[nf] = fee; f_slip[nf] = sl_
                nf += 1
                slip_tot += sl_
                pq, pavg, preal, pfee, pcash, ptrd = _apply_fill(pq, pavg, preal, pfee, pcash, ptrd, sign, hq, px2, fee)
                a = abs(papq)
                pap_entry = (a * pap_entry + hq * px) / (a + hq)
                papq += sign * hq
                pap_margin += hq * px / pap_lev
                wallet -= fee
                lp_dirty = True
                rq_dirty = True
                state = S_MONITORING
                entered = t
                target_spot = sq
                entry_notional = abs(sq) * (spot_px if spot_px > 0 else savg)
                t_i[nt] = i; t_code[nt] = T_ENTRY
                nt += 1
            if state == S_MONITORING:
                if rq_dirty:
                    rq_cache = _round_qty(-ratio * sq - pq, p_lot)
                    rq_dirty = False
                due = (perp_px > 0 and rq_cache >= p_lot - 1e-12 and rq_cache >= p_minq - 1e-12
                       and rq_cache * perp_px >= p_minn - 1e-9 and rq_cache * perp_px >= min_order_n - 1e-9)
                if due:
                    h = abs(pq) * perp_px / (abs(sq) * spot_px) if abs(sq) * spot_px > 0 else np.nan
                    drift = abs(h - ratio) if not math.isnan(h) else np.nan
                    if math.isnan(drift) or drift > drift_thr or abs(sq) <= 1e-12:
                        return nf, nt, 2, i
        # ---- 3. funding settles ----
        if not math.isnan(fund_rate[i]):
            mk = mark[i] if not math.isnan(mark[i]) else perp[i]
            if papq != 0.0 and not math.isnan(mk):
                amt = -papq * mk * fund_rate[i]
                wallet += amt
                pap_margin += amt
            if pq != 0.0 and not math.isnan(mk):
                amount = -pq * mk * fund_rate[i]
                unfav = unfav + 1 if amount < 0 else 0
                pfund += amount
                lp_dirty = True
        # ---- 4. snapshot ----
        s_pp = sreal + _unreal(sq, slast, savg)
        p_pp = preal + _unreal(pq, plast, pavg)
        pnl = (preal + _unreal(pq, plast, pavg) + pfund - pfee - 0.0) + \
            (sreal + _unreal(sq, slast, savg) + 0.0 - sfee - 0.0)
        hr = abs(pq) * perp_px / (abs(sq) * spot_px) if abs(sq) * spot_px > 0 else np.nan
        snap[i, 0] = s_pp; snap[i, 1] = p_pp; snap[i, 2] = pfund; snap[i, 3] = pfee + sfee
        snap[i, 4] = slip_tot; snap[i, 5] = 0.0; snap[i, 6] = pnl; snap[i, 7] = sq + pq; snap[i, 8] = hr
        snap[i, 9] = sq; snap[i, 10] = pq; snap[i, 11] = spot_px; snap[i, 12] = perp_px; snap[i, 13] = mark_px
        states[i] = state
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
    fp = np.array([
        params.notional, ratio, si.lot_size, si.min_qty, si.min_notional, pi.lot_size, pi.min_qty, pi.min_notional,
        paper.slippage_bps, paper.impact_k_bps, paper.spot_taker_fee, paper.perp_taker_fee,
        _nan(e.stop_loss_pct), _nan(e.profit_target_pct), _nan(e.trailing_giveback), e.trailing_min_peak_pct,
        _nan(e.basis_stop_bps), _nan(e.max_holding_hours),
        g.liq_distance_close, g.liq_distance_reduce, _nan(g.funding_cost_apr_limit), tl.interval_hours,
        lv.min_leverage, lv.max_leverage, lv.liq_buffer, lv.target_vol_multiple, lv.recheck_hours,
        rb.drift_threshold, rb.min_order_notional,
        balances["spot"].get("USDT", 0.0), balances["perp"]["USDT"], g.max_position_qty, g.max_position_notional,
    ], dtype="float64")
    ip = np.array([-1 if e.funding_unfavourable_intervals is None else e.funding_unfavourable_intervals,
                   1 if e.rearm else 0], dtype="int64")
    return fp, ip


def _brackets(symbol: str) -> tuple[np.ndarray, ...]:
    br = brackets_for(symbol)
    return tuple(np.array([getattr(b, f) for b in br], dtype="float64") for f in ("notional_floor", "notional_cap",
                                                                                  "mmr", "cum"))


@dataclass
class FastResult:
    """Raw outputs of one fast run (arrays over the timeline's instants)."""

    snap: np.ndarray
    states: np.ndarray
    fills: pd.DataFrame  # ts, leg, side, qty, price, fee, slippage
    transitions: pd.DataFrame  # ts, from_state, to_state, trigger_name
    timeline: Timeline


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
}


def run_fast(params: Any, market: Market | Timeline, *, start: object | None = None, end: object | None = None,
             config: Any = None, enter: np.ndarray | None = None) -> FastResult:
    """Run the carry kernel. Same arguments as :func:`hedge_core.backtest.run_backtest`.

    Raises
    ------
    FastPathUnsupported
        Outside the kernel's scope (see the module docstring), with the reason and instant.
    """
    from hedge_core.backtest import BacktestConfig, _balances

    cfg = config if config is not None else BacktestConfig()
    check_supported(params, cfg.paper)
    if isinstance(market, Timeline):
        tl = market
    else:
        if start is None:
            start = market.first + cfg.warmup
        tl = build_timeline(market, start=start, end=end, spec=cfg.spec)
    first_px = float(tl.spot[np.argmax(~np.isnan(tl.spot))])
    fp, ip = _pack(params, cfg.paper, tl, _balances(params, cfg, first_px))
    floors, caps, mmrs, cums = _brackets(tl.perp_symbol)
    n = tl.n
    sig = tl.column("sigma_24h") if "sigma_24h" in tl.input_names else np.full(n, np.nan)
    ok = entry_signal(params, tl) if enter is None else enter
    seen_mark = np.maximum.accumulate(tl.has_mark)
    liq_check = tl.has_mark | (tl.has_perp & ~seen_mark)
    liq_ext = np.where(tl.has_mark, tl.mark_bar[:, 1], tl.perp_bar[:, 1])  # short perp: adverse = high
    snap = np.empty((n, 14))  # the kernel writes every row
    states = np.empty(n, dtype=np.int64)
    cap = 4096
    while True:
        f_i = np.empty(cap, dtype=np.int64)
        f_leg = np.empty(cap, dtype=np.int64)
        f_side, f_qty, f_px, f_fee, f_slip = (np.empty(cap) for _ in range(5))
        t_i = np.empty(cap, dtype=np.int64)
        t_code = np.empty(cap, dtype=np.int64)
        nf, nt, err, ei = carry_kernel(tl.ts, tl.spot, tl.perp, tl.mark, tl.spot_vol, tl.perp_vol, tl.priced,
                                       tl.fund_rate, tl.last_rate, sig, ok, liq_check, liq_ext, fp, ip, floors,
                                       caps, mmrs, cums, snap, states, f_i, f_leg, f_side, f_qty, f_px, f_fee,
                                       f_slip, t_i, t_code)
        if err != 10 or cap >= 4 * n + 8:
            break
        cap = 4 * n + 8  # more fills than the first buffer holds: run again with room for all
    if err:
        at = pd.Timestamp(int(tl.ts[ei]), tz="UTC")
        raise FastPathUnsupported(f"{ERRORS[int(err)]} at {at}")
    fi = f_i[:nf]
    fills = pd.DataFrame({"ts": _utc_index(tl.ts[fi]), "leg": np.where(f_leg[:nf] == 1, "perp", "spot"),
                          "side": np.where(f_side[:nf] > 0, "buy", "sell"), "qty": f_qty[:nf], "price": f_px[:nf],
                          "fee": f_fee[:nf], "slippage": f_slip[:nf]})
    rows = []
    tix = _utc_index(tl.ts[t_i[:nt]])
    for k in range(nt):
        for fr, to, trig in _TRANS[int(t_code[k])]:
            rows.append({"ts": tix[k], "from_state": fr, "to_state": to, "trigger_name": trig})
    trans = pd.DataFrame(rows, columns=["ts", "from_state", "to_state", "trigger_name"])
    return FastResult(snap, states, fills, trans, tl)


def fast_kpis(params: Any, market: Market | Timeline, *, config: Any = None, capital: float | None = None,
              **kw: Any) -> dict[str, float]:
    """KPIs of a fast run: the same ``backtest_kpis.kpis_from_arrays`` the event-driven result uses."""
    from hedge_core.backtest import capital_of
    from hedge_core.backtest_kpis import kpis_from_arrays

    r = run_fast(params, market, config=config, **kw)
    tl = r.timeline
    first_px = float(tl.spot[np.argmax(~np.isnan(tl.spot))])
    cap = capital if capital is not None else (
        config.capital if config is not None and config.capital is not None else capital_of(params, first_px))
    last = r.snap[-1]
    totals = {"price_pnl": float(last[0] + last[1]), "funding": float(last[2]), "fees": float(last[3]),
              "slippage": float(last[4]), "interest": float(last[5])}
    trig = r.transitions["trigger_name"].to_numpy() if len(r.transitions) else np.array([], dtype=object)
    return kpis_from_arrays(tl.ts, r.snap[:, 6], r.snap[:, 10], r.snap[:, 8], r.snap[:, 11], r.snap[:, 12], None,
                            totals, trig, params, capital=cap, n_fills=len(r.fills))


def run_fast_or_event(params: Any, market: Market | Timeline, **kw: Any) -> tuple[str, dict[str, float]]:
    """KPIs from the fast path when it accepts the run, else from the event-driven backtester.

    Returns ('fast' | 'event', kpis).
    """
    try:
        return "fast", fast_kpis(params, market, **kw)
    except FastPathUnsupported:
        from hedge_core.backtest import run_backtest

        kw2 = {k: v for k, v in kw.items() if k in ("start", "end", "config")}
        if kw2.get("config") is None:
            kw2.pop("config", None)
        return "event", run_backtest(params, market, keep_timeline=False, **kw2).kpis
