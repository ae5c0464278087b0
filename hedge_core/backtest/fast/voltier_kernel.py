"""The vol-tiered loan book kernel (``strategies.voltier`` through ``engine.step`` and ``ltv.py``), per instant.

The spot leg is the loan's collateral (never traded, outside the PnL); the perp short is sized
by the volatility tier; the loan accrues simple interest whenever the strategy decides, realised
perp profit repays it, LTV bands deploy the reserve and flatten at EMERGENCY; the liquidation-distance REDUCE cuts
the target ratio (``step._run_guards`` for a collateral book) and an entry hedge the venue rejects ends the book
(HEDGE_FAILED). See
``docs/fast-path.md``. The parameters come as one
:data:`~hedge_core.backtest.fast.records.VOLTIER_RECORD`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from hedge_core import money
from hedge_core.backtest.fast.codes import NO_TS, ORDER_RING, Err, St, Tr
from hedge_core.backtest.fast.helpers import (
    MARGIN_OK,
    MARGIN_UNSURE,
    _entry_margin,
    _exit_due,
    _exit_transition,
    _liq_and_funding_guards,
    _mm,
    _perp_fill,
    _rebalance_rounds,
    _recent_orders,
    _settle_funding,
    _tradeable,
    _unreal,
)

__all__ = ["voltier_kernel"]


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
                   vp, floors, caps, mmrs, cums, maxlevs, snap, last, ltv_out, ltv_pre, states, loan_out,
                   asof_out, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, t_i, t_code):
    """The vol-tiered loan book (``strategies.voltier`` through ``engine.step``) over n instants.

    ``vp``: a one-element :data:`~hedge_core.backtest.fast.records.VOLTIER_RECORD` array (built
    by ``pack.pack_voltier``). The spot leg is the collateral (never traded, outside the PnL); the
    loan accrues simple interest when the strategy decides, realised perp profit repays it at the
    next analysis, LTV bands deploy the reserve and flatten at EMERGENCY. Returns (n_fills,
    n_transitions, error: ``Err``, error_instant); ``loan_out`` gets (principal, accrued, as_of
    ns, interest_paid, principal_paid, repaid, reserve_deployed), ``asof_out[0]`` the loan's
    accrual instant.
    """
    r = vp[0]
    p_lot, p_minq, p_minn = r.p_lot, r.p_min_qty, r.p_min_notional
    slip_bps, impact_k, p_fee_r = r.slippage_bps, r.impact_k_bps, r.perp_taker_fee
    sl, pt, tg, tmin = r.stop_loss_pct, r.profit_target_pct, r.trailing_giveback, r.trailing_min_peak_pct
    bstop, maxh = r.basis_stop_bps, r.max_holding_hours
    liq_close, liq_reduce, fcost, interval = (r.liq_distance_close, r.liq_distance_reduce, r.funding_cost_apr_limit,
                                              r.interval_hours)
    drift_thr, min_order_n, cool_s = r.drift_threshold, r.min_order_notional, r.cooldown_s
    wallet, max_pq, max_pn = r.perp_wallet, r.max_position_qty, r.max_position_notional
    ratio_min, ratio_max, pt_k, perp_lev = r.ratio_min, r.ratio_max, r.pt_k, r.perp_leverage
    red_frac = r.liq_reduce_fraction
    retries, unwind = r.hedge_retries, r.unwind_on_hedge_failure  # a rejected perp hedge at entry
    red_latched = False  # the REDUCE verdict is in the engine's active_guards
    sq = r.collateral_qty  # r.first_px (the collateral's entry price) is unused: the collateral is outside the PnL
    principal, apr, reserve, ltv_flat = r.loan, r.loan_apr, r.reserve, r.ltv_flatten
    unfav_n, rearm, max_opm, ltv_on = r.unfav_intervals, r.rearm, r.max_orders_per_minute, r.ltv_band_actions
    b_start, b_mid, b_end = r.reserve_start, r.reserve_mid, r.reserve_end
    b_mid_amt, b_end_amt, b_total = r.reserve_mid_amount, r.reserve_end_amount, r.reserve_total
    # ltv_out: the LTV after the engine acted at each instant; ltv_pre: before it acted (the new
    # price against the book and loan as they stood), NaN where no market update came
    n = len(ts)
    full = snap.shape[1] == 14
    pq = 0.0; pavg = 0.0; preal = 0.0; pfee = 0.0; pcash = 0.0; ptrd = 0.0; plast = np.nan; pfund = 0.0
    pmf = 0.0  # funding inside the open perp position's isolated margin (engine.ledger margin_funding)
    slip_tot = 0.0
    spot_px = np.nan; perp_px = np.nan; mark_px = np.nan
    state = St.ANALYZING
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
    order_t = np.full(ORDER_RING, NO_TS)
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
            return nf, nt, Err.BUFFER_FULL, i
        if liq_check[i] and papq != 0.0:
            ext = liq_ext[i]
            mm = _mm(abs(papq) * ext, caps, mmrs, cums)
            if pap_margin + money.unrealized_pnl(papq, ext, pap_entry) < mm * 1.01 + 1e-9:
                return nf, nt, Err.PAPER_LIQUIDATION, i
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
            if state == St.MONITORING and pnl - pnl_at_entry > peak:
                peak = pnl - pnl_at_entry
            # ---- guards: liquidation distance, funding cost, then the LTV bands ----
            if pq != 0.0 and mark_px > 0 and lp_dirty:
                lp_cache = money.liquidation_price(pq, pavg, money.isolated_margin(pq, pavg, perp_lev) + pmf, 0.0, 0.0,
                                                  floors, caps, mmrs, cums)
                lp_dirty = False
            flatten, reduce = _liq_and_funding_guards(pq, mark_px, lp_cache, liq_close, liq_reduce,
                                                      state == St.MONITORING, fcost, last_rate[i], interval)
            # the REDUCE verdict is acted on once, then latched while it keeps firing; it clears at the first market
            # update where it does not (as the hedge kernel's)
            reduce_now = reduce and not red_latched
            red_latched = reduce
            if ltv_on == 1 and spot_px > 0:
                value = money.loan_to_value(principal + accrued, sq, spot_px)
                due = min(money.reserve_deployment(value, b_start, b_mid, b_end, b_mid_amt, b_end_amt, b_total),
                          reserve) - deployed
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
                if value >= ltv_flat and (state == St.MONITORING or state == St.ANALYZING):
                    flatten = True
            exit_now = flatten
            if reduce_now:
                # step._run_guards: RISK_REDUCE -> REBALANCING with the target ratio cut by the fraction (the collateral
                # never trades); a flatten verdict listed after it (funding cost, the LTV's EMERGENCY) leaves from
                # REBALANCING at once; else step._rebalancing runs with the market: the generic exits first (the
                # cycle's own profit target among them), then the perp's orders. An exit closes the perp as held.
                exit_now = flatten or _exit_due(pnl - pnl_at_entry, entry_notional, peak, sl, pt, profit_target, tg,
                                                tmin, bstop, spot[i], perp[i], unfav_n, unfav, maxh,
                                                (t - entered) / 1e9 / 3600.0)
                if not exit_now:  # the perp's rounds below (the rebalance's), without its drift test
                    ratio = ratio * (1.0 - red_frac)
                    t_i[nt] = i; t_code[nt] = Tr.REDUCE
                    nt += 1
            new_ratio = ratio
            if state == St.MONITORING and not flatten and not reduce_now:
                # (after a REDUCE the engine's _monitoring runs without the market: no decide, no accrual, no exit)
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
                        return nf, nt, Err.ORDER_RATE, i
                    oq = money.lot_floor(-pq, p_lot)
                    if not (perp[i] > 0 and oq >= p_lot - 1e-12 and oq >= p_minq - 1e-12):
                        return nf, nt, Err.DUST_AT_CLOSE, i
                    sign = 1.0 if -pq > 0 else -1.0
                    (nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin,
                     wallet, pmf) = _perp_fill(
                        i, t, sign, oq, perp[i], perp_vol[i], slip_bps, impact_k, p_fee_r, pap_lev, pq, pavg,
                        preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf, order_t, n_ord,
                        slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf)
                    if abs(pq) > 1e-12:
                        return nf, nt, Err.DUST_AT_CLOSE, i
                lp_dirty = True
                if was == St.MONITORING:  # the hedge and pair kernels' rule (a REDUCE first: from REBALANCING)
                    state, has_cool, cooldown, nt = _exit_transition(i, t, rearm, flatten, has_cool, cooldown, t_i,
                                                                     t_code, nt, reduce_now)
                else:  # the LTV's EMERGENCY from ANALYZING (a perp left over in ANALYZING: none is)
                    state = St.COMPLETED
                    t_i[nt] = i; t_code[nt] = Tr.FLATTEN_IDLE
                    nt += 1
            elif state == St.ANALYZING and not (has_cool and t < cooldown):
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
                        return nf, nt, Err.HEDGE_BELOW_MINIMUMS, i
                    hq = money.lot_floor(pneed, p_lot)
                    if abs(hq) > max_pq or abs(hq) * perp_px > max_pn:
                        return nf, nt, Err.POSITION_LIMIT, i
                    if _recent_orders(order_t, t) >= max_opm:
                        return nf, nt, Err.ORDER_RATE, i
                    sign = 1.0 if pneed > 0 else -1.0
                    answer = _entry_margin(hq, perp[i], pap_lev, p_fee_r, wallet, pap_margin, caps, maxlevs)
                    if answer == MARGIN_UNSURE or (answer != MARGIN_OK and unwind == 0):
                        return nf, nt, Err.PERP_MARGIN, i  # (unwind off: the engine goes to ERROR)
                    if answer != MARGIN_OK:
                        # step._opening_futures: the hedge and its ``retries`` new attempts rejected at this instant;
                        # HEDGE_FAILED, then _closing keeps the collateral (nothing to sell) and, not re-arming, done
                        if _recent_orders(order_t, t) + retries + 1 > max_opm:
                            return nf, nt, Err.ORDER_RATE, i
                        for _k in range(retries + 1):
                            order_t[n_ord % ORDER_RING] = t; n_ord += 1  # a rejected order was placed: it counts
                        state = St.COMPLETED
                        t_i[nt] = i; t_code[nt] = Tr.HEDGE_FAILED
                        nt += 1
                    else:
                        (nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin,
                         wallet, pmf) = _perp_fill(
                            i, t, sign, hq, perp[i], perp_vol[i], slip_bps, impact_k, p_fee_r, pap_lev, pq, pavg,
                            preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf, order_t, n_ord,
                            slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf)
                        lp_dirty = True
                        state = St.MONITORING
                        entered = t
                        t_i[nt] = i; t_code[nt] = Tr.ENTRY
                        nt += 1
            # ---- rebalance (perp only: the collateral never trades); a REDUCE's rounds (RISK_REDUCE, then
            # step._rebalancing at once: no cooldown, no drift or minimum-notional test) ----
            reducing_now = reduce_now and not exit_now
            if state == St.MONITORING and (reducing_now or not (last_reb != NO_TS and (
                    t <= last_reb or (t - last_reb) / 1e9 < cool_s))):
                due = reducing_now
                if not due:
                    perp_need = money.perp_target(True, ratio, sq, pq, spot_px, perp_px) - pq
                    if _tradeable(perp_need, perp_px, p_lot, p_minq, p_minn, min_order_n):
                        drift = money.hedge_drift(money.hedge_ratio(sq, pq, spot_px, perp_px), ratio)
                        if math.isnan(drift) or drift > drift_thr or abs(sq) <= 1e-12:
                            due = True
                            t_i[nt] = i; t_code[nt] = Tr.REBAL
                            nt += 1
                if due:
                    (err, rounds, nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry,
                     pap_margin, wallet, pmf) = _rebalance_rounds(
                        i, t, False, 1, ratio, 0.0, sq, spot_px, perp_px, perp[i], perp_vol[i],
                        0.0, 0.0, 0.0, min_order_n, p_lot, p_minq, p_minn, p_fee_r, slip_bps, impact_k,
                        max_pq, max_pn, max_opm, pap_lev, caps, maxlevs, pq, pavg, preal, pfee, pcash, ptrd,
                        papq, pap_entry, pap_margin, wallet, pmf, order_t, n_ord, slip_tot, f_i, f_leg, f_side,
                        f_qty, f_px, f_fee, f_slip, nf, retries)
                    if err != Err.NONE:
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
            if state == St.MONITORING and not priced[i] and not (
                    last_reb != NO_TS and (t <= last_reb or (t - last_reb) / 1e9 < cool_s)) and \
                    _tradeable(money.perp_target(True, ratio, sq, pq, spot_px, perp_px) - pq, perp_px, p_lot, p_minq,
                               p_minn, min_order_n):
                return nf, nt, Err.REBALANCE_AT_FUNDING, i
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
    return nf, nt, Err.NONE, -1

