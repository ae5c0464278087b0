"""The cross-venue carry with TWO PERP legs (``xcarry``, ``legs = "perp_perp"``) through the engine's states, per instant.

It mirrors, line by line, what :mod:`hedge_core.backtest.xvenue_pair` replays: ``engine/step.py`` with
``engine/perp_legs.py`` (the first leg is a perp on its own venue: its own funding series, its isolated
margin, reduce-only close), ``engine/guards.py`` (liquidation distance of the NEARER leg, each at its
venue's mark; ``guards.pair_pay_apr``), ``engine/exits.py``, ``engine/strategies/xcarry.decide_perp_perp``
(entry on the funding spread, long where funding is lower; exit on the spread the pair receives) and
two paper venues (``exchange/paper/core.py``): venue A holds the first perp leg (its wallet, fee,
margin, liquidation, A's funding), venue B the second. Every money formula is a call into
:mod:`hedge_core.money` through the helpers both other kernels use (:mod:`.helpers`); the control flow
is :mod:`.hedge_kernel`'s carry branch with the first leg margined, plus its own rules: each leg at its own
venue's slippage, deferred exits weighing both legs' next settlements (``perp_legs.pair_defers_exit``) and the
liquidation-distance REDUCE on the nearer leg (``step._run_guards``: the first leg's target cut by
``liq_reduce_fraction``, latched while the guard keeps firing; then ``step._rebalancing``'s rounds: the first
leg's order and the hedge's sized on the positions before the fills, then the hedge's rounds to the new target;
an exit or flatten at the same instant closes both legs from REBALANCING) and an entry whose second leg venue B
rejects (``step._opening_futures``: re-placed ``hedge_retries`` times at the instant, each counted in the order-rate
window, then HEDGE_FAILED closes the first leg at venue A, reduce-only, and the pair is COMPLETED) or whose first
leg venue A rejects (``step._opening_spot``: the same retries, then ENTRY_FAILED with nothing held and the next try
after ``execution.entry_retry_cooldown_s``).

Both legs trade at the same prices (the shared data has one venue's perp and mark bars:
``xvenue_pair.PAIR_PRICE_ASSUMPTION``): ``px`` is the perp close, ``mark`` the mark close (NaN: the
perp's). Engine leg names are kept: ``s*`` is the FIRST leg (the engine's ``spot``), ``p*`` the SECOND.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from hedge_core import money
from hedge_core.backtest.fast.codes import NO_TS, ORDER_RING, Err, St, Tr
from hedge_core.backtest.fast.helpers import (
    EXIT_NONE,
    MARGIN_OK,
    MARGIN_UNSURE,
    _deferrable,
    _entry_margin,
    _exit_rule,
    _exit_transition,
    _fill_px,
    _in_window,
    _ledger_fill,
    _mm,
    _pap_perp,
    _perp_fill,
    _rebalance_rounds,
    _recent_orders,
    _reduce_rounds,
    _settle_funding,
    _tradeable,
    _unreal,
)

__all__ = ["pair_entry", "pair_kernel"]


@njit(cache=True)
def pair_entry(rate_a, rate_b, priced, px, ha, hb, min_rate, max_bps, round_trip, hold_intervals, min_carry,
               ok_out, dir_out):
    """``xcarry.decide_perp_perp`` says ENTER from the market alone (state ANALYZING), per instant, and the
    direction of the FIRST leg (+1 long: its venue's funding APR is the lower; -1 short). The same
    operations in the same order (identical doubles): each venue's last rate annualised at its own
    interval (``ha`` A's, ``hb`` B's, hours), the spread per interval of the slower venue against
    ``min_rate``, the basis cap (both legs at one price: basis 0), the net carry over the hold."""
    hours = max(ha, hb)
    days = hold_intervals * hours / 24.0
    for i in range(len(rate_a)):
        ra = rate_a[i]
        rb = rate_b[i]
        ok = priced[i] and not math.isnan(ra) and not math.isnan(rb)
        d = 0.0
        if ok:
            spread = money.funding_apr(rb, hb) - money.funding_apr(ra, ha)
            ok = not (abs(spread) * hours / 8760.0 < min_rate)
            if ok:
                basis = money.basis(px[i], px[i])
                ok = not (abs(basis) * 1e4 > max_bps)
                if ok:
                    d = 1.0 if spread > 0 else -1.0
                    net = money.expected_net_carry(abs(spread), 0.0, days, round_trip) + d * basis
                    ok = not (net < min_carry)
        ok_out[i] = ok
        dir_out[i] = d


@njit(cache=True)
def _received(q, rate, hours):
    """``xcarry.received_apr``: the funding APR a perp position of ``q`` receives; NaN flat or unknown."""
    if math.isnan(rate) or q == 0.0:
        return np.nan
    return -math.copysign(1.0, q) * money.funding_apr(rate, hours)


@njit(cache=True)
def _pair_exit_rule(cp, notional, peak, sl, pt, tg, tmin, bstop, px_i, unfav_n, unfav, maxh, held_h, defer_s, lead_a,
                    lead_b, rate_a, rate_b, sq, pq, mk):
    """``engine.exits.exit_reason``'s rule (``helpers._exit_rule``) unless ``perp_legs.pair_defers_exit`` holds a
    soft one (profit target, max holding): each leg whose venue's next settlement is ``lead_*`` seconds away, in
    ``(0, defer_s]``, counts ``-qty x mark x last rate`` of its venue; the exit waits when the sum is received."""
    rule = _exit_rule(cp, notional, peak, sl, pt, np.nan, tg, tmin, bstop, px_i, px_i, unfav_n, unfav, maxh, held_h)
    if _deferrable(rule, defer_s):
        net_d = 0.0
        if not math.isnan(rate_a) and not math.isnan(mk) and _in_window(lead_a, defer_s):
            net_d += money.funding_payment(sq, mk, rate_a)
        if not math.isnan(rate_b) and not math.isnan(mk) and _in_window(lead_b, defer_s):
            net_d += money.funding_payment(pq, mk, rate_b)
        if net_d > 0:
            rule = EXIT_NONE
    return rule


@njit(cache=True)
def _leg_lp(q, avg, mf, lev, floors, caps, mmrs, cums):
    """``guards.leg_liquidation_price`` of one isolated perp leg (NaN: flat or no entry price)."""
    if q == 0.0 or not avg > 0:
        return np.nan
    return money.liquidation_price(q, avg, money.isolated_margin(q, avg, lev) + mf, 0.0, 0.0, floors, caps, mmrs,
                                   cums)


@njit(cache=True)
def _paper_near_liq(q, entry, margin, ext_hi, ext_lo, caps, mmrs, cums):
    """The paper venue's isolated liquidation check on the adverse extreme (high for a short, low for a
    long) - or within 1 % of it: refused (the kernels do not model liquidation fills)."""
    ext = ext_hi if q < 0 else ext_lo
    mm = _mm(abs(q) * ext, caps, mmrs, cums)
    return margin + money.unrealized_pnl(q, ext, entry) < mm * 1.01 + 1e-9


@njit(cache=True)
def pair_kernel(ts, px, mark, vol, priced, fund_a, fund_b, last_a, last_b, next_a, next_b, sigma, enter_ok, enter_dir, liq_check,
                liq_hi, liq_lo, hp, first_interval, floors, caps, mmrs, cums, maxlevs,
                floors_a, caps_a, mmrs_a, cums_a, maxlevs_a, a_max_lev, snap, last, states, fund_first, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, t_i, t_code):
    """Two perp legs over n instants. ``hp``: a one-element ``HEDGE_RECORD`` (``pack.pack_hedge`` of the
    pair's one-venue view: ``s_*`` and ``spot_taker_fee`` are the FIRST venue's perp lot, minimums and
    perp fee, ``spot_cash`` its futures wallet; ``interval_hours`` the second venue's interval);
    ``first_interval``: the first venue's (hours). ``floors..maxlevs``: the SECOND venue's bracket table
    (the engine's leverage rule reads the second leg's), ``*_a`` the first venue's (its leg's liquidation
    price, maintenance margin and position cap), ``a_max_lev`` its instrument's maximum leverage. Each leg
    fills at its own venue's slippage (``money.slippage_bps`` on the bar's volume, as each ``PaperCore``):
    the record's ``s_slippage_bps`` / ``s_impact_k_bps`` are A's, ``slippage_bps`` / ``impact_k_bps`` B's.
    ``fund_first`` (n,): out, the first leg's funding to date per instant (quote; the snapshot's funding
    column is both legs'). ``fund_a``/``last_a``: A's settlement (NaN: none) and
    last settled rate per instant; ``fund_b``/``last_b`` B's; ``next_a``/``next_b`` (int64 ns) each venue's next
    settlement per instant (the deferred exit weighs both). Returns (n_fills, n_transitions, error,
    error_instant) as :func:`~.hedge_kernel.hedge_kernel`.
    """
    r = hp[0]
    notional, ratio0 = r.notional, r.ratio0
    s_lot, s_minq, s_minn = r.s_lot, r.s_min_qty, r.s_min_notional
    p_lot, p_minq, p_minn = r.p_lot, r.p_min_qty, r.p_min_notional
    slip_bps, impact_k, s_fee_r, p_fee_r = r.slippage_bps, r.impact_k_bps, r.spot_taker_fee, r.perp_taker_fee
    slip_a, impact_a = r.s_slippage_bps, r.s_impact_k_bps  # venue A's, for the first leg's fills
    sl, pt, tg, tmin = r.stop_loss_pct, r.profit_target_pct, r.trailing_giveback, r.trailing_min_peak_pct
    bstop, maxh = r.basis_stop_bps, r.max_holding_hours
    liq_close, liq_reduce, fcost, interval = (r.liq_distance_close, r.liq_distance_reduce, r.funding_cost_apr_limit,
                                              r.interval_hours)
    min_lev, max_lev, liq_buf, tvm, recheck_h = (r.min_leverage, r.max_leverage, r.liq_buffer, r.target_vol_multiple,
                                                 r.recheck_hours)
    drift_thr, min_order_n = r.drift_threshold, r.min_order_notional
    wallet_a, wallet = r.spot_cash, r.perp_wallet
    max_pq, max_pn = r.max_position_qty, r.max_position_notional
    cool_s = r.cooldown_s
    unfav_n, rearm, max_opm = r.unfav_intervals, r.rearm, r.max_orders_per_minute
    x_apr = r.exit_below_apr
    defer_s = r.exit_defer_s
    red_frac = r.liq_reduce_fraction
    retries, unwind = r.hedge_retries, r.unwind_on_hedge_failure  # a rejected second leg at entry
    entry_cool_s = r.entry_retry_cooldown_s  # after a rejected first leg (ENTRY_FAILED)
    red_latched = False  # the REDUCE verdict is in the engine's active_guards
    n = len(ts)
    full = snap.shape[1] == 14
    # engine legs: s* the first perp (venue A), p* the second (venue B)
    sq = 0.0; savg = 0.0; sreal = 0.0; sfee = 0.0; scash = 0.0; strd = 0.0; slast = np.nan; sfund = 0.0
    smf = 0.0
    pq = 0.0; pavg = 0.0; preal = 0.0; pfee = 0.0; pcash = 0.0; ptrd = 0.0; plast = np.nan; pfund = 0.0
    pmf = 0.0
    slip_tot = 0.0
    spot_px = np.nan; perp_px = np.nan; mark_px = np.nan
    state = St.ANALYZING
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
    unfav = 0
    order_t = np.full(ORDER_RING, NO_TS)
    n_ord = 0
    # the two paper venues (for refusals and their wallets)
    qa = 0.0; ea = 0.0; ma = 0.0
    papq = 0.0; pap_entry = 0.0; pap_margin = 0.0; pap_lev = 20.0
    lp_a = np.nan; lp_b = np.nan
    lp_dirty = True
    nf = 0
    nt = 0
    maxf = len(f_i)
    for i in range(n):
        t = ts[i]
        if nf + 8 > maxf or nt + 3 > maxf:
            return nf, nt, Err.BUFFER_FULL, i
        if ((state == St.COMPLETED or (state == St.ANALYZING and not enter_ok[i]))
                and pq == 0.0 and sq == 0.0 and papq == 0.0 and qa == 0.0):
            if priced[i]:  # flat and not entering: only the prices move
                mk = mark[i] if not math.isnan(mark[i]) else px[i]
                if mk > 0:
                    slast = mk
                    plast = mk
                spot_px = px[i]; perp_px = px[i]; mark_px = mk
        else:
            # ---- 1. bars ended at t: each paper venue checks liquidation on its adverse extreme ----
            if liq_check[i]:
                if qa != 0.0 and _paper_near_liq(qa, ea, ma, liq_hi[i], liq_lo[i], caps_a, mmrs_a, cums_a):
                    return nf, nt, Err.PAPER_LIQUIDATION, i
                if papq != 0.0 and _paper_near_liq(papq, pap_entry, pap_margin, liq_hi[i], liq_lo[i], caps, mmrs,
                                                   cums):
                    return nf, nt, Err.PAPER_LIQUIDATION, i
            # ---- 2. market update (both legs at the perp price, marked at the mark) ----
            if priced[i]:
                mk = mark[i] if not math.isnan(mark[i]) else px[i]
                if mk > 0:
                    slast = mk
                    plast = mk
                spot_px = px[i]; perp_px = px[i]; mark_px = mk
                pnl = (preal + _unreal(pq, plast, pavg) + pfund - pfee - 0.0) + \
                    (sreal + _unreal(sq, slast, savg) + sfund - sfee - 0.0)
                if state == St.MONITORING and pnl - pnl_at_entry > peak:
                    peak = pnl - pnl_at_entry
                # guards.market_guards: the nearer leg's liquidation distance, each at its venue's mark
                mon = state == St.MONITORING
                flatten = False
                if lp_dirty:  # a pure function of the positions, leverage and margin funding
                    lp_b = _leg_lp(pq, pavg, pmf, lev, floors, caps, mmrs, cums)
                    lp_a = _leg_lp(sq, savg, smf, lev, floors_a, caps_a, mmrs_a, cums_a)
                    lp_dirty = False
                d = np.nan
                if pq != 0.0 and mark_px > 0:
                    d = money.liquidation_distance(pq, mark_px, lp_b)
                if sq != 0.0 and mark_px > 0 and lp_a > 0:  # guards._nearer_first_leg
                    d1 = money.liquidation_distance(sq, mark_px, lp_a)
                    if d1 < d or math.isnan(d):
                        d = d1
                reduce_now = False
                if d <= liq_close:
                    flatten = mon
                    red_latched = False  # the reduce verdict did not fire: its latch clears (step._run_guards)
                elif d <= liq_reduce:
                    if mon and not red_latched:  # acted on once, then latched while it keeps firing
                        reduce_now = True
                        red_latched = True
                else:
                    red_latched = False
                if not math.isnan(fcost):  # guards.pair_pay_apr: what the PAIR pays net
                    net_apr = 0.0
                    if sq != 0.0 and not math.isnan(last_a[i]):
                        net_apr += math.copysign(1.0, sq) * money.funding_apr(last_a[i], first_interval)
                    if pq != 0.0 and not math.isnan(last_b[i]):
                        net_apr += math.copysign(1.0, pq) * money.funding_apr(last_b[i], interval)
                    apr = max(net_apr, 0.0)
                    if apr > 0 and apr >= fcost and mon:
                        flatten = True
                exit_now = flatten
                reduced = False
                if reduce_now:
                    # step._run_guards: RISK_REDUCE -> REBALANCING with the first leg's target cut by the fraction;
                    # a flatten verdict after it (funding cost) leaves from REBALANCING at once; else
                    # step._rebalancing runs with the market: the generic exits first (deferred as in _monitoring;
                    # not the spread exit), then orders. An exit closes both legs as they stand (the close below)
                    exit_now = flatten or _pair_exit_rule(
                        pnl - pnl_at_entry, entry_notional, peak, sl, pt, tg, tmin, bstop, px[i], unfav_n, unfav, maxh,
                        (t - entered) / 1e9 / 3600.0, defer_s, (next_a[i] - t) / 1e9, (next_b[i] - t) / 1e9,
                        last_a[i], last_b[i], sq, pq, mk) != EXIT_NONE
                if reduce_now and not exit_now:
                    target_spot = sq * (1.0 - red_frac)
                    t_i[nt] = i; t_code[nt] = Tr.REDUCE
                    nt += 1
                    # round 1: the first leg's order and the second's, both sized on the positions before the fills
                    sq0 = sq
                    k = 0
                    s_need = target_spot - sq
                    if _tradeable(s_need, spot_px, s_lot, s_minq, s_minn, min_order_n):
                        if _recent_orders(order_t, t) >= max_opm:
                            return nf, nt, Err.ORDER_RATE, i
                        oq = money.lot_floor(s_need, s_lot)
                        if oq > abs(qa) + 1e-12:
                            return nf, nt, Err.REDUCE_ONLY_CAPPED, i
                        if nf + 1 > maxf:
                            return nf, nt, Err.BUFFER_FULL, i
                        sign = 1.0 if s_need > 0 else -1.0
                        (nf, n_ord, slip_tot, sq, savg, sreal, sfee, scash, strd, qa, ea, ma, wallet_a,
                         smf) = _perp_fill(
                            i, t, sign, oq, px[i], vol[i], slip_a, impact_a, s_fee_r, pap_lev, sq, savg, sreal, sfee,
                            scash, strd, qa, ea, ma, wallet_a, smf, order_t, n_ord, slip_tot, f_i, f_leg, f_side,
                            f_qty, f_px, f_fee, f_slip, nf)
                        f_leg[nf - 1] = 0
                        k = 1
                    # then the hedge: round 1's order sized before the first leg's fill, the rounds after it
                    (err, nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin,
                     wallet, pmf) = _reduce_rounds(
                        i, t, k, sq0, True, ratio, target_spot, sq, spot_px, perp_px, px[i], vol[i], s_lot, s_minq,
                        s_minn, min_order_n, p_lot, p_minq, p_minn, p_fee_r, slip_bps, impact_k, max_pq, max_pn,
                        max_opm, pap_lev, caps, maxlevs, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry,
                        pap_margin, wallet, pmf, order_t, n_ord, slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee,
                        f_slip, nf)
                    if err != Err.NONE:
                        return nf, nt, err, i
                    lp_dirty = True
                    last_reb = t
                    reduced = True
                if mon and not flatten and not reduce_now:
                    cp = pnl - pnl_at_entry
                    # decide_perp_perp: the spread the pair receives below the floor, before the generic exits
                    x_exit = False
                    if not math.isnan(x_apr):
                        got = _received(sq, last_a[i], first_interval) + _received(pq, last_b[i], interval)
                        x_exit = not math.isnan(got) and got < x_apr
                    exit_now = x_exit
                    if not x_exit:  # the generic exits; a soft one may wait for the funding the pair receives
                        exit_now = _pair_exit_rule(cp, entry_notional, peak, sl, pt, tg, tmin, bstop, px[i], unfav_n,
                                                   unfav, maxh, (t - entered) / 1e9 / 3600.0, defer_s,
                                                   (next_a[i] - t) / 1e9, (next_b[i] - t) / 1e9, last_a[i],
                                                   last_b[i], sq, pq, mk) != EXIT_NONE
                if exit_now:
                    # close: the second leg (reduce-only) first, then the first (reduce-only: a perp too)
                    if _recent_orders(order_t, t) + 2 > max_opm:
                        return nf, nt, Err.ORDER_RATE, i
                    for k in range(2):
                        leg = 1 - k
                        q = pq if leg == 1 else sq
                        if q == 0.0:
                            continue
                        lot = p_lot if leg == 1 else s_lot
                        oq = money.lot_floor(-q, lot)
                        if not (px[i] > 0 and oq >= lot - 1e-12 and oq >= (p_minq if leg == 1 else s_minq) - 1e-12):
                            return nf, nt, Err.DUST_AT_CLOSE, i
                        if oq > abs(papq if leg == 1 else qa) + 1e-12:
                            return nf, nt, Err.REDUCE_ONLY_CAPPED, i
                        sign = 1.0 if -q > 0 else -1.0
                        if nf >= maxf:
                            return nf, nt, Err.BUFFER_FULL, i
                        if leg == 1:
                            (nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin,
                             wallet, pmf) = _perp_fill(
                                i, t, sign, oq, px[i], vol[i], slip_bps, impact_k, p_fee_r, pap_lev, pq, pavg, preal,
                                pfee, pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf, order_t, n_ord,
                                slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf)
                        else:
                            (nf, n_ord, slip_tot, sq, savg, sreal, sfee, scash, strd, qa, ea, ma,
                             wallet_a, smf) = _perp_fill(
                                i, t, sign, oq, px[i], vol[i], slip_a, impact_a, s_fee_r, pap_lev, sq, savg, sreal,
                                sfee, scash, strd, qa, ea, ma, wallet_a, smf, order_t, n_ord, slip_tot, f_i, f_leg,
                                f_side, f_qty, f_px, f_fee, f_slip, nf)
                            f_leg[nf - 1] = 0
                    target_spot = 0.0
                    lp_dirty = True
                    state, has_cool, cooldown, nt = _exit_transition(i, t, rearm, flatten, has_cool, cooldown,
                                                                     t_i, t_code, nt, reduce_now)
                elif mon and not reduced:  # after a REDUCE the engine's _monitoring ran without the market
                    if (t - last_lev_check) / 1e9 >= recheck_h * 3600.0:
                        last_lev_check = t
                        sg_ = sigma[i]
                        if not math.isnan(sg_):
                            nl = money.choose_leverage(sg_, abs(pq) * px[i], -1 if pq <= 0 else 1, liq_buf, tvm,
                                                       min_lev, max_lev, caps, mmrs, cums, maxlevs, math.inf)
                            if nl < lev:  # set on both venues (perp_legs.first_leg_settings)
                                if abs(qa) * mark_px > money.max_notional(nl, caps_a, maxlevs_a):
                                    return nf, nt, Err.FIRST_LEG_LEVERAGE, i  # venue A refuses it (-2027)
                                lev = nl
                                pap_lev = nl
                                lp_dirty = True
                elif state == St.ANALYZING and enter_ok[i] and not (has_cool and t < cooldown):
                    ratio = ratio0
                    target_spot = enter_dir[i] * notional / px[i]
                    lev = money.choose_leverage(sigma[i], abs(target_spot) * px[i] * ratio,
                                                -1 if target_spot >= 0 else 1, liq_buf, tvm, min_lev, max_lev, caps,
                                                mmrs, cums, maxlevs, math.inf)
                    if lev > a_max_lev:  # venue A refuses the leverage (-4028)
                        return nf, nt, Err.FIRST_LEG_LEVERAGE, i
                    pap_lev = lev
                    pnl_at_entry = pnl
                    peak = 0.0
                    last_lev_check = t
                    unfav = 0
                    need = target_spot - sq
                    if not _tradeable(need, spot_px, s_lot, s_minq, s_minn, 0.0):
                        return nf, nt, Err.SPOT_BELOW_MINIMUMS, i
                    oq = money.lot_floor(need, s_lot)
                    if abs(sq + oq) > max_pq or abs(sq + oq) * spot_px > max_pn:
                        return nf, nt, Err.POSITION_LIMIT, i
                    if _recent_orders(order_t, t) + 2 > max_opm:
                        return nf, nt, Err.ORDER_RATE, i
                    # venue A's margin check of the first leg (as the second's on B)
                    answer = _entry_margin(oq, px[i], pap_lev, s_fee_r, wallet_a, ma, caps_a, maxlevs_a)
                    if answer == MARGIN_UNSURE:
                        return nf, nt, Err.FIRST_LEG_MARGIN, i
                    if answer != MARGIN_OK:
                        # step._opening_spot: venue A rejects the first leg and each of its ``retries`` new attempts
                        # at this instant (same wallet, same price), each counted in the order-rate window; then
                        # ENTRY_FAILED: nothing held, analysing again after execution.entry_retry_cooldown_s
                        if _recent_orders(order_t, t) + retries + 1 > max_opm:
                            return nf, nt, Err.ORDER_RATE, i
                        for _k in range(retries + 1):
                            order_t[n_ord % ORDER_RING] = t; n_ord += 1  # a rejected order was placed: it counts
                        target_spot = 0.0
                        has_cool = True
                        cooldown = t + np.int64(round(entry_cool_s * 1e9))
                        t_i[nt] = i; t_code[nt] = Tr.ENTRY_FAILED
                        nt += 1
                    else:
                        if nf + 2 > maxf:
                            return nf, nt, Err.BUFFER_FULL, i
                        sign = 1.0 if need > 0 else -1.0
                        (nf, n_ord, slip_tot, sq, savg, sreal, sfee, scash, strd, qa, ea, ma, wallet_a,
                         smf) = _perp_fill(
                            i, t, sign, oq, px[i], vol[i], slip_a, impact_a, s_fee_r, pap_lev, sq, savg, sreal, sfee,
                            scash, strd, qa, ea, ma, wallet_a, smf, order_t, n_ord, slip_tot, f_i, f_leg, f_side, f_qty,
                            f_px, f_fee, f_slip, nf)
                        f_leg[nf - 1] = 0
                        # hedge what filled, on venue B
                        ptarget = money.perp_target(True, ratio, sq, pq, spot_px, perp_px)
                        pneed = ptarget - pq
                        hedge = _tradeable(pneed, perp_px, p_lot, p_minq, p_minn, 0.0)
                        if not hedge and abs(ptarget) > 1e-12:
                            return nf, nt, Err.HEDGE_BELOW_MINIMUMS, i
                        failed = False  # venue B rejected the second leg: the first leg closed (Tr.HEDGE_FAILED)
                        if hedge:
                            hq = money.lot_floor(pneed, p_lot)
                            if abs(hq) > max_pq or abs(hq) * perp_px > max_pn:
                                return nf, nt, Err.POSITION_LIMIT, i
                            sign = 1.0 if pneed > 0 else -1.0
                            answer = _entry_margin(hq, px[i], pap_lev, p_fee_r, wallet, pap_margin, caps, maxlevs)
                            if answer == MARGIN_UNSURE or (answer != MARGIN_OK and unwind == 0):
                                return nf, nt, Err.PERP_MARGIN, i  # (unwind off: the engine goes to ERROR)
                            if answer != MARGIN_OK:
                                # step._opening_futures: venue B rejects the second leg and each of its ``retries``
                                # new attempts at this instant (same wallet, same price); HEDGE_FAILED closes the
                                # first leg from CLOSING_POSITIONS (_closing: reduce-only at venue A, its fee, slippage
                                # and realised PnL) and, not re-arming, the pair is done
                                if _recent_orders(order_t, t) + retries + 2 > max_opm:
                                    return nf, nt, Err.ORDER_RATE, i  # the first leg's order is in the window already
                                for _k in range(retries + 1):
                                    order_t[n_ord % ORDER_RING] = t; n_ord += 1  # a rejected order counts
                                cq = money.lot_floor(-sq, s_lot)  # as the exit's close of the first leg
                                if not (px[i] > 0 and cq >= s_lot - 1e-12 and cq >= s_minq - 1e-12):
                                    return nf, nt, Err.DUST_AT_CLOSE, i
                                if cq > abs(qa) + 1e-12:
                                    return nf, nt, Err.REDUCE_ONLY_CAPPED, i
                                if nf >= maxf:
                                    return nf, nt, Err.BUFFER_FULL, i
                                sign = -1.0 if sq > 0 else 1.0
                                (nf, n_ord, slip_tot, sq, savg, sreal, sfee, scash, strd, qa, ea, ma, wallet_a,
                                 smf) = _perp_fill(
                                    i, t, sign, cq, px[i], vol[i], slip_a, impact_a, s_fee_r,
                                    pap_lev, sq, savg, sreal, sfee, scash, strd, qa, ea, ma, wallet_a, smf, order_t,
                                    n_ord, slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf)
                                f_leg[nf - 1] = 0
                                target_spot = 0.0
                                state = St.COMPLETED
                                t_i[nt] = i; t_code[nt] = Tr.HEDGE_FAILED
                                nt += 1
                                hedge = False
                                failed = True
                        if hedge:
                            (nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin,
                             wallet, pmf) = _perp_fill(
                                i, t, sign, hq, px[i], vol[i], slip_bps, impact_k, p_fee_r, pap_lev, pq,
                                pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf, order_t,
                                n_ord, slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf)
                        lp_dirty = True
                        if not failed:
                            state = St.MONITORING
                            entered = t
                            target_spot = sq
                            entry_notional = abs(sq) * (spot_px if spot_px > 0 else savg)
                            t_i[nt] = i; t_code[nt] = Tr.ENTRY
                            nt += 1
                # ---- rebalance check (engine: _monitoring after the intent, leverage re-check) ----
                if state == St.MONITORING and not (last_reb != NO_TS and (t <= last_reb or
                                                                          (t - last_reb) / 1e9 < cool_s)):
                    if _tradeable(target_spot - sq, spot_px, s_lot, s_minq, s_minn, min_order_n):
                        return nf, nt, Err.SPOT_REBALANCE, i
                    perp_need = money.perp_target(True, ratio, sq, pq, spot_px, perp_px) - pq
                    if _tradeable(perp_need, perp_px, p_lot, p_minq, p_minn, min_order_n):
                        h = money.hedge_ratio(sq, pq, spot_px, perp_px)
                        drift = money.hedge_drift(h, ratio)
                        if math.isnan(drift) or drift > drift_thr or abs(sq) <= 1e-12:
                            t_i[nt] = i; t_code[nt] = Tr.REBAL
                            nt += 1
                            (err, rounds, nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry,
                             pap_margin, wallet, pmf) = _rebalance_rounds(
                                i, t, True, True, ratio, target_spot, sq, spot_px, perp_px, px[i], vol[i],
                                s_lot, s_minq, s_minn, min_order_n, p_lot, p_minq, p_minn, p_fee_r, slip_bps,
                                impact_k, max_pq, max_pn, max_opm, pap_lev, caps, maxlevs, pq, pavg, preal, pfee,
                                pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf, order_t, n_ord, slip_tot, f_i,
                                f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf, -1)
                            if err != Err.NONE:
                                return nf, nt, err, i
                            if rounds:
                                lp_dirty = True
                            last_reb = t
            # ---- 3. funding: A's settlement on the first leg, then B's on the second (replay_pair's order);
            # the unfavourable counter counts instants whose PAIR net funding is negative (perp_legs) ----
            base = unfav
            net = 0.0
            for leg in range(2):
                rate = fund_a[i] if leg == 0 else fund_b[i]
                if math.isnan(rate):
                    continue
                if leg == 0:
                    f0 = sfund
                    wallet_a, ma, _u, sfund, smf, funded = _settle_funding(rate, mark[i], px[i], qa, wallet_a, ma,
                                                                           sq, 0, sfund, smf)
                    amount = sfund - f0
                else:
                    f0 = pfund
                    wallet, pap_margin, _u, pfund, pmf, funded = _settle_funding(rate, mark[i], px[i], papq, wallet,
                                                                                 pap_margin, pq, 0, pfund, pmf)
                    amount = pfund - f0
                if funded:
                    lp_dirty = True
                    net += amount
                    unfav = base + 1 if net < 0 else 0
            if state == St.MONITORING and not priced[i] and (not math.isnan(fund_a[i]) or not math.isnan(fund_b[i])) \
                    and not (last_reb != NO_TS and (t <= last_reb or (t - last_reb) / 1e9 < cool_s)):
                perp_need = money.perp_target(True, ratio, sq, pq, spot_px, perp_px) - pq
                if _tradeable(target_spot - sq, spot_px, s_lot, s_minq, s_minn, min_order_n) or \
                        _tradeable(perp_need, perp_px, p_lot, p_minq, p_minn, min_order_n):
                    return nf, nt, Err.REBALANCE_AT_FUNDING, i
        # ---- 4. snapshot (xvenue_pair.ledger_row) ----
        s_pp = sreal + _unreal(sq, slast, savg)
        p_pp = preal + _unreal(pq, plast, pavg)
        pnl = (preal + _unreal(pq, plast, pavg) + pfund - pfee - 0.0) + \
            (sreal + _unreal(sq, slast, savg) + sfund - sfee - 0.0)
        hr = money.hedge_ratio(sq, pq, spot_px, perp_px)
        if full:
            snap[i, 0] = s_pp; snap[i, 1] = p_pp; snap[i, 2] = pfund + sfund; snap[i, 3] = pfee + sfee
            snap[i, 4] = slip_tot; snap[i, 5] = 0.0; snap[i, 6] = pnl; snap[i, 7] = sq + pq; snap[i, 8] = hr
            snap[i, 9] = sq; snap[i, 10] = pq; snap[i, 11] = spot_px; snap[i, 12] = perp_px; snap[i, 13] = mark_px
        else:
            snap[i, 0] = pnl; snap[i, 1] = pq; snap[i, 2] = hr
            if i == n - 1:
                last[0] = s_pp; last[1] = p_pp; last[2] = pfund + sfund; last[3] = pfee + sfee; last[4] = slip_tot
                last[5] = 0.0; last[6] = pnl; last[7] = sq + pq; last[8] = hr; last[9] = sq; last[10] = pq
                last[11] = spot_px; last[12] = perp_px; last[13] = mark_px
        fund_first[i] = sfund
        states[i] = state
    return nf, nt, Err.NONE, -1
