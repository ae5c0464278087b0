"""The carry / cross-venue carry / cross-asset / grid kernel: one hedge (spot leg + perp hedge)
through the engine's states, per instant.

It mirrors, line by line, ``engine/step.py``, ``engine/ledger.py``, ``engine/exits.py``,
``engine/guards.py``, ``engine/sizing.py``, ``engine/strategies/carry.py``, ``xcarry.py``,
``cross.py``, ``grid.py`` and the paper venue (``exchange/paper/core.py``; for xcarry the spot
leg's venue and the perp leg's venue, :mod:`.xvenue`); see ``docs/fast-path.md``. It models deferred
exits (``exits.defer_for_funding``: the perp venue's next settlement) and the liquidation-distance REDUCE
(``step._run_guards`` / ``step._rebalancing``: the spot target cut, the hedge following through
``helpers._reduce_rounds``, which the pair kernel shares; an exit or flatten at the same instant leaves from
REBALANCING) and an entry whose perp hedge the venue rejects (``step._opening_futures``: HEDGE_FAILED, the spot leg
unwound). The parameters come as one :data:`~hedge_core.backtest.fast.records.HEDGE_RECORD`; codes are the
enums of :mod:`hedge_core.backtest.fast.codes`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from hedge_core import money
from hedge_core.backtest.fast.codes import NO_TS, ORDER_RING, Z99, Err, Kind, St, Tr
from hedge_core.backtest.fast.helpers import (
    EXIT_NONE,
    MARGIN_OK,
    MARGIN_UNSURE,
    _entry_margin,
    _exit_rule_deferred,
    _exit_transition,
    _fill_px,
    _ledger_fill,
    _liq_and_funding_guards,
    _mm,
    _perp_fill,
    _rebalance_rounds,
    _recent_orders,
    _reduce_rounds,
    _settle_funding,
    _tradeable,
    _unreal,
)

__all__ = ["hedge_kernel"]


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
def _spot_fill(i, t, sign, q, spot_i, spot_vol_i, s_slip, s_impact, s_fee_r, sq, savg, sreal, sfee, scash, strd,
               spot_cash, order_t, n_ord, slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf):
    """One taker spot fill of ``q`` base (``sign`` +1 buy / -1 sell) on the spot leg's venue: its price and fee
    (``s_slip``/``s_impact``/``s_fee_r``), the fill record, the order-rate clock, the engine's ledger and the
    spot wallet (quote). Returns (nf, n_ord, slip_tot, sq, savg, sreal, sfee, scash, strd, spot_cash)."""
    px, px2, sl_ = _fill_px(spot_i, sign, q, spot_vol_i, s_slip, s_impact)
    fee = money.fee(q, px, s_fee_r)
    sq, savg, sreal, sfee, scash, strd, _ = _ledger_fill(sq, savg, sreal, sfee, scash, strd, 0.0, sign, q, px2, fee)
    spot_cash += money.spot_quote_delta(sign, q, px, fee)
    f_i[nf] = i; f_leg[nf] = 0; f_side[nf] = sign; f_qty[nf] = q; f_px[nf] = px2
    f_fee[nf] = fee; f_slip[nf] = sl_
    nf += 1
    slip_tot += sl_
    order_t[n_ord % ORDER_RING] = t; n_ord += 1
    return nf, n_ord, slip_tot, sq, savg, sreal, sfee, scash, strd, spot_cash


@njit(cache=True)
def hedge_kernel(ts, spot, perp, mark, spot_vol, perp_vol, priced, fund_rate, last_rate, next_fund, sigma, beta,
                 enter_ok, enter_ratio, liq_check, liq_ext, hp, floors, caps, mmrs, cums, maxlevs, support,
                 snap, last, states, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, t_i, t_code):
    """The carry / cross-asset / grid hedge over n instants.

    ``hp``: a one-element :data:`~hedge_core.backtest.fast.records.HEDGE_RECORD` array (built by
    ``pack.pack_hedge``). ``next_fund`` (int64 ns): the perp venue's next settlement per instant
    (``Timeline.next_fund_ns``; a deferred exit weighs it). Returns (n_fills, n_transitions, error: ``Err``,
    error_instant); ``Err.NONE`` = none.
    """
    r = hp[0]
    notional, ratio0 = r.notional, r.ratio0
    s_lot, s_minq, s_minn = r.s_lot, r.s_min_qty, r.s_min_notional
    p_lot, p_minq, p_minn = r.p_lot, r.p_min_qty, r.p_min_notional
    slip_bps, impact_k, s_fee_r, p_fee_r = r.slippage_bps, r.impact_k_bps, r.spot_taker_fee, r.perp_taker_fee
    s_slip, s_impact = r.s_slippage_bps, r.s_impact_k_bps  # the spot leg's venue's (fast.xvenue: venue A's)
    sl, pt, tg, tmin = r.stop_loss_pct, r.profit_target_pct, r.trailing_giveback, r.trailing_min_peak_pct
    bstop, maxh = r.basis_stop_bps, r.max_holding_hours
    liq_close, liq_reduce, fcost, interval = (r.liq_distance_close, r.liq_distance_reduce, r.funding_cost_apr_limit,
                                              r.interval_hours)
    min_lev, max_lev, liq_buf, tvm, recheck_h = (r.min_leverage, r.max_leverage, r.liq_buffer, r.target_vol_multiple,
                                                 r.recheck_hours)
    drift_thr, min_order_n = r.drift_threshold, r.min_order_notional
    spot_cash, wallet = r.spot_cash, r.perp_wallet
    max_pq, max_pn = r.max_position_qty, r.max_position_notional
    ratio_min, ratio_max, reest_h, cool_s = r.ratio_min, r.ratio_max, r.reestimate_hours, r.cooldown_s
    g_spacing, g_min_spacing, g_max_ratio = r.grid_spacing_sigma, r.grid_min_spacing_pct, r.grid_max_ratio
    g_stop, g_var, g_dd = r.grid_stop_loss_pct, r.grid_var_limit, r.grid_max_drawdown
    unfav_n, rearm, kind, max_opm = r.unfav_intervals, r.rearm, r.kind, r.max_orders_per_minute
    g_nlev, same = r.grid_levels, r.same_base
    x_apr = r.exit_below_apr  # xcarry: received funding APR floor (NaN = off)
    defer_s = r.exit_defer_s  # exit.defer_within_s_of_funding (NaN = off)
    retries, unwind = r.hedge_retries, r.unwind_on_hedge_failure  # a rejected perp hedge at entry
    red_frac = r.liq_reduce_fraction
    red_latched = False  # the REDUCE verdict is in the engine's active_guards
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
    beta_ts = NO_TS
    unfav = 0
    order_t = np.full(ORDER_RING, NO_TS)
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
            return nf, nt, Err.BUFFER_FULL, i
        if ((state == St.COMPLETED or (state == St.ANALYZING and not enter_ok[i]))
                and pq == 0.0 and sq == 0.0 and papq == 0.0):
            # flat and not entering (or done): only the prices move (no position: no liquidation
            # check, guard, exit, rebalance or funding can act); the same updates as section 2
            if priced[i]:
                red_latched = False  # no verdict fires on a flat book: the latch clears (step._run_guards)
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
                    return nf, nt, Err.PAPER_LIQUIDATION, i
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
                if state == St.MONITORING and pnl - pnl_at_entry > peak:
                    peak = pnl - pnl_at_entry
                if pq != 0.0 and mark_px > 0 and lp_dirty:
                    lp_cache = money.liquidation_price(pq, pavg, money.isolated_margin(pq, pavg, lev) + pmf, 0.0, 0.0,
                                                      floors, caps, mmrs, cums)
                    lp_dirty = False
                flatten, reduce = _liq_and_funding_guards(pq, mark_px, lp_cache, liq_close, liq_reduce,
                                                          state == St.MONITORING, fcost, last_rate[i], interval)
                # the REDUCE verdict is acted on once, then latched while it keeps firing; it clears at the first
                # market update where it does not (a book holding a perp is in MONITORING here: no other state
                # keeps a latch)
                reduce_now = reduce and not red_latched
                red_latched = reduce
                if kind == Kind.GRID and state == St.MONITORING:  # grid_guards: VaR limit, max drawdown
                    if not math.isnan(g_var) and not math.isnan(sigma[i]) and \
                            Z99 * sigma[i] * abs(sq * spot_px + pq * perp_px) >= g_var:
                        flatten = True
                    if not math.isnan(g_dd) and peak - (pnl - pnl_at_entry) >= g_dd:
                        flatten = True
                exit_now = flatten
                reduced = False
                if reduce_now:
                    # step._run_guards: RISK_REDUCE -> REBALANCING, the spot target cut by the fraction; a flatten
                    # verdict after it (funding cost, the grid's) leaves from REBALANCING at once; else
                    # step._rebalancing runs with the market: the generic exits first (deferred as in
                    # _monitoring; not the strategy's own), then orders. An exit closes both legs as they stand
                    # (no reduction order was sent): the close below, recorded after the RISK_REDUCE.
                    exit_now = flatten or _exit_rule_deferred(
                        pnl - pnl_at_entry, entry_notional, peak, sl, pt, tg, tmin, bstop, spot[i], perp[i], unfav_n,
                        unfav, maxh, (t - entered) / 1e9 / 3600.0, defer_s, (next_fund[i] - t) / 1e9, last_rate[i],
                        pq) != EXIT_NONE
                if reduce_now and not exit_now:
                    target_spot = sq * (1.0 - red_frac)
                    t_i[nt] = i; t_code[nt] = Tr.REDUCE
                    nt += 1
                    # round 1: the spot order and the hedge's, both sized on the legs before the fills
                    sq0 = sq
                    k = 0
                    s_need = target_spot - sq
                    if _tradeable(s_need, spot_px, s_lot, s_minq, s_minn, min_order_n):
                        if _recent_orders(order_t, t) >= max_opm:
                            return nf, nt, Err.ORDER_RATE, i
                        oq = money.lot_floor(s_need, s_lot)
                        if nf + 1 > maxf:
                            return nf, nt, Err.BUFFER_FULL, i
                        (nf, n_ord, slip_tot, sq, savg, sreal, sfee, scash, strd, spot_cash) = _spot_fill(
                            i, t, 1.0 if s_need > 0 else -1.0, oq, spot[i], spot_vol[i], s_slip, s_impact, s_fee_r,
                            sq, savg, sreal, sfee, scash, strd, spot_cash, order_t, n_ord, slip_tot, f_i, f_leg,
                            f_side, f_qty, f_px, f_fee, f_slip, nf)
                        k = 1
                    (err, nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin,
                     wallet, pmf) = _reduce_rounds(
                        i, t, k, sq0, same, ratio, target_spot, sq, spot_px, perp_px, perp[i], perp_vol[i], s_lot,
                        s_minq, s_minn, min_order_n, p_lot, p_minq, p_minn, p_fee_r, slip_bps, impact_k, max_pq,
                        max_pn, max_opm, pap_lev, caps, maxlevs, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry,
                        pap_margin, wallet, pmf, order_t, n_ord, slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee,
                        f_slip, nf)
                    if err != Err.NONE:
                        return nf, nt, err, i
                    lp_dirty = True
                    last_reb = t
                    reduced = True
                if state == St.MONITORING and not flatten and not reduce_now:
                    # (after a REDUCE the engine's _monitoring runs without the market: no decide, no exit)
                    if kind == Kind.CROSS and (t - beta_ts) / 1e9 >= reest_h * 3600.0 and \
                            not math.isnan(beta[i]) and beta[i] > 0:
                        beta_ts = t  # strategy state updates come before the exit check
                        new_ratio = min(max(beta[i], ratio_min), ratio_max)
                    else:
                        new_ratio = ratio
                    grid_stop = False
                    if kind == Kind.GRID and nlev > 0:
                        if spot[i] <= levels[nlev - 1] * (1 - g_stop):
                            grid_stop = True
                        else:
                            crossed = 0
                            for j in range(nlev):
                                if spot[i] <= levels[j]:
                                    crossed += 1
                            new_ratio = min(max(g_max_ratio * crossed / nlev, ratio_min), ratio_max)
                    cp = pnl - pnl_at_entry
                    # xcarry.decide: the strategy's exit (received APR below the floor) comes before
                    # the generic exits; both are the same EXIT_SIGNAL transition
                    x_exit = False
                    if not math.isnan(x_apr) and pq != 0.0 and not math.isnan(last_rate[i]):
                        x_exit = -math.copysign(1.0, pq) * money.funding_apr(last_rate[i], interval) < x_apr
                    # the generic exits; a soft one waits for a funding the perp receives (exits.defer_exit)
                    exit_now = grid_stop or x_exit or _exit_rule_deferred(
                        cp, entry_notional, peak, sl, pt, tg, tmin, bstop, spot[i], perp[i], unfav_n, unfav, maxh,
                        (t - entered) / 1e9 / 3600.0, defer_s, (next_fund[i] - t) / 1e9, last_rate[i],
                        pq) != EXIT_NONE
                    if not exit_now:
                        ratio = new_ratio
                if exit_now:
                    # close: perp (reduce-only) first, then spot; both at once
                    if _recent_orders(order_t, t) + 2 > max_opm:
                        return nf, nt, Err.ORDER_RATE, i
                    for k in range(2):
                        leg = 1 - k  # perp (reduce-only) first, as the engine's _closing does
                        q = pq if leg == 1 else sq
                        if q == 0.0:
                            continue
                        if leg == 1:
                            oq = money.lot_floor(-q, p_lot)
                            if not (perp[i] > 0 and oq >= p_lot - 1e-12 and oq >= p_minq - 1e-12):
                                return nf, nt, Err.DUST_AT_CLOSE, i
                        else:
                            if not _tradeable(-q, spot[i], s_lot, s_minq, s_minn, 0.0):
                                return nf, nt, Err.DUST_AT_CLOSE, i
                            oq = money.lot_floor(-q, s_lot)
                        sign = 1.0 if -q > 0 else -1.0
                        if nf >= maxf:
                            return nf, nt, Err.BUFFER_FULL, i
                        if leg == 1:  # the pair kernel's close fills its legs through the same helper
                            (nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin,
                             wallet, pmf) = _perp_fill(
                                i, t, sign, oq, perp[i], perp_vol[i], slip_bps, impact_k, p_fee_r, pap_lev, pq, pavg,
                                preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf, order_t, n_ord,
                                slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf)
                            continue
                        (nf, n_ord, slip_tot, sq, savg, sreal, sfee, scash, strd, spot_cash) = _spot_fill(
                            i, t, sign, oq, spot[i], spot_vol[i], s_slip, s_impact, s_fee_r, sq, savg, sreal, sfee,
                            scash, strd, spot_cash, order_t, n_ord, slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee,
                            f_slip, nf)
                    target_spot = 0.0
                    lp_dirty = True
                    state, has_cool, cooldown, nt = _exit_transition(i, t, rearm, flatten, has_cool, cooldown,
                                                                     t_i, t_code, nt, reduce_now)
                elif state == St.MONITORING and not reduced:
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
                elif (state == St.ANALYZING and enter_ok[i] and not (has_cool and t < cooldown)
                      and (kind != Kind.GRID
                           or _grid_levels(spot[i], sigma[i], g_nlev, g_spacing, g_min_spacing, support, levels) > 0)):
                    # a grid with no level above zero waits, as grid.decide does
                    if kind == Kind.CROSS:
                        beta_ts = t
                    if kind == Kind.GRID:
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
                    failed = False  # the venue rejected the hedge: the spot leg unwound (Tr.HEDGE_FAILED)
                    if not _tradeable(need, spot_px, s_lot, s_minq, s_minn, 0.0):
                        return nf, nt, Err.SPOT_BELOW_MINIMUMS, i
                    oq = money.lot_floor(need, s_lot)
                    if abs(sq + oq) > max_pq or abs(sq + oq) * spot_px > max_pn:
                        return nf, nt, Err.POSITION_LIMIT, i
                    if _recent_orders(order_t, t) + 2 > max_opm:
                        return nf, nt, Err.ORDER_RATE, i
                    px, px2, sl_ = _fill_px(spot[i], 1.0, oq, spot_vol[i], s_slip, s_impact)
                    # the venue's funds check: the slipped price (noise-free) with the taker fee
                    if money.buy_cost_with_fee(oq, px, s_fee_r) > spot_cash * 0.999:
                        return nf, nt, Err.SPOT_FUNDS, i
                    fee = money.fee(oq, px, s_fee_r)
                    if nf + 2 > maxf:
                        return nf, nt, Err.BUFFER_FULL, i
                    f_i[nf] = i; f_leg[nf] = 0; f_side[nf] = 1.0; f_qty[nf] = oq; f_px[nf] = px2
                    f_fee[nf] = fee; f_slip[nf] = sl_
                    nf += 1
                    slip_tot += sl_
                    order_t[n_ord % ORDER_RING] = t; n_ord += 1
                    sq, savg, sreal, sfee, scash, strd, _ = _ledger_fill(sq, savg, sreal, sfee, scash, strd, 0.0, 1.0,
                                                                         oq, px2, fee)
                    spot_cash += money.spot_quote_delta(1.0, oq, px, fee)
                    # hedge what filled
                    ptarget = money.perp_target(same, ratio, sq, pq, spot_px, perp_px)
                    pneed = ptarget - pq
                    hedge = _tradeable(pneed, perp_px, p_lot, p_minq, p_minn, 0.0)
                    if not hedge and abs(ptarget) > 1e-12:
                        # the engine would unwind the spot leg (HEDGE_FAILED)
                        return nf, nt, Err.HEDGE_BELOW_MINIMUMS, i
                    if hedge:
                        hq = money.lot_floor(pneed, p_lot)
                        if abs(hq) > max_pq or abs(hq) * perp_px > max_pn:
                            return nf, nt, Err.POSITION_LIMIT, i
                        sign = 1.0 if pneed > 0 else -1.0
                        answer = _entry_margin(hq, perp[i], pap_lev, p_fee_r, wallet, pap_margin, caps, maxlevs)
                        if answer == MARGIN_UNSURE or (answer != MARGIN_OK and unwind == 0):
                            return nf, nt, Err.PERP_MARGIN, i  # (unwind off: the engine goes to ERROR)
                        if answer != MARGIN_OK:
                            # step._opening_futures: the venue rejects the hedge, and each of its ``retries`` new
                            # attempts at this instant (same wallet, same price); HEDGE_FAILED unwinds the spot
                            # leg from CLOSING_POSITIONS (_closing: the perp is flat) and, not re-arming, is done
                            if _recent_orders(order_t, t) + retries + 2 > max_opm:
                                return nf, nt, Err.ORDER_RATE, i  # the spot order is in the window already
                            for _k in range(retries + 1):
                                order_t[n_ord % ORDER_RING] = t; n_ord += 1  # a rejected order was placed: it counts
                            if not _tradeable(-sq, spot[i], s_lot, s_minq, s_minn, 0.0):
                                return nf, nt, Err.DUST_AT_CLOSE, i
                            if nf >= maxf:
                                return nf, nt, Err.BUFFER_FULL, i
                            (nf, n_ord, slip_tot, sq, savg, sreal, sfee, scash, strd, spot_cash) = _spot_fill(
                                i, t, -1.0 if sq > 0 else 1.0, money.lot_floor(-sq, s_lot), spot[i], spot_vol[i],
                                s_slip, s_impact, s_fee_r, sq, savg, sreal, sfee, scash, strd, spot_cash, order_t,
                                n_ord, slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf)
                            target_spot = 0.0
                            state = St.COMPLETED
                            t_i[nt] = i; t_code[nt] = Tr.HEDGE_FAILED
                            nt += 1
                            hedge = False
                            failed = True
                    if hedge:
                        (nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin,
                         wallet, pmf) = _perp_fill(
                            i, t, sign, hq, perp[i], perp_vol[i], slip_bps, impact_k, p_fee_r, pap_lev, pq,
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
                    perp_need = money.perp_target(same, ratio, sq, pq, spot_px, perp_px) - pq
                    if _tradeable(perp_need, perp_px, p_lot, p_minq, p_minn, min_order_n):
                        h = money.hedge_ratio(sq, pq, spot_px, perp_px)
                        drift = money.hedge_drift(h, ratio)
                        if math.isnan(drift) or drift > drift_thr or abs(sq) <= 1e-12:
                            t_i[nt] = i; t_code[nt] = Tr.REBAL  # DRIFT_EXCEEDED -> REBALANCING
                            nt += 1
                            (err, rounds, nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry,
                             pap_margin, wallet, pmf) = _rebalance_rounds(
                                i, t, True, same, ratio, target_spot, sq, spot_px, perp_px, perp[i], perp_vol[i],
                                s_lot, s_minq, s_minn, min_order_n, p_lot, p_minq, p_minn, p_fee_r, slip_bps,
                                impact_k, max_pq, max_pn, max_opm, pap_lev, caps, maxlevs, pq, pavg, preal, pfee,
                                pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf, order_t, n_ord, slip_tot, f_i,
                                f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf, retries)
                            if err != Err.NONE:
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
                if state == St.MONITORING and not priced[i] and not (
                        last_reb != NO_TS and (t <= last_reb or (t - last_reb) / 1e9 < cool_s)):
                    perp_need = money.perp_target(same, ratio, sq, pq, spot_px, perp_px) - pq
                    if _tradeable(target_spot - sq, spot_px, s_lot, s_minq, s_minn, min_order_n) or \
                            _tradeable(perp_need, perp_px, p_lot, p_minq, p_minn, min_order_n):
                        return nf, nt, Err.REBALANCE_AT_FUNDING, i
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
    return nf, nt, Err.NONE, -1


