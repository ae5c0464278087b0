"""Shared ``@njit`` helpers of both kernels: minimums, ledger and venue fills, exits and the state after one, guards,
funding, rebalancing.

Scalars in, scalars out (tuples), so LLVM inlines them into the kernels. Every money formula is a
call into :mod:`hedge_core.money`; these helpers only hold the control flow the engine
(``engine/ledger.py``, ``engine/exits.py``, ``engine/guards.py``, ``engine/step.py``) and the paper
venue (``exchange/paper/core.py``) run around those formulas. Error codes returned are
:class:`~hedge_core.backtest.fast.codes.Err` members.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from hedge_core import money
from hedge_core.backtest.fast.codes import NO_TS, ORDER_RING, Err, St, Tr
from hedge_core.engine.constants import MAX_ORDER_ROUNDS, ORDER_RATE_WINDOW_S, REARM_COOLDOWN_S

__all__: list[str] = []  # internal to the fast package


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


# engine.exits.exit_reason's rules, in its order (0: none fires); SOFT_EXITS (profit target, max holding)
# are the ones a funding about to be received may hold back (exit.defer_within_s_of_funding)
EXIT_NONE, EXIT_STOP, EXIT_TARGET, EXIT_TRAILING, EXIT_BASIS, EXIT_UNFAV, EXIT_MAX_HOLD = 0, 1, 2, 3, 4, 5, 6


@njit(cache=True)
def _exit_rule(cp, notional, peak, sl, pt, pt_abs, tg, tmin, bstop, spot, perp, unfav_n, unfav, maxh, held_h):
    """The rule of ``engine.exits.exit_reason`` that fires first (same rules, same order; NaN = rule off):
    one of the ``EXIT_*`` codes, ``EXIT_NONE`` when none does.

    ``pt_abs`` is the strategy's own profit target (quote; ``ctx.profit_target``), NaN = none:
    then ``pt`` x notional."""
    if not math.isnan(sl) and notional > 0 and cp <= -sl * notional:
        return EXIT_STOP
    tgt = pt_abs
    if math.isnan(tgt) and not math.isnan(pt) and notional > 0:
        tgt = pt * notional
    if not math.isnan(tgt) and tgt > 0 and cp >= tgt:
        return EXIT_TARGET
    if (not math.isnan(tg) and notional > 0 and peak > 0 and peak >= tmin * notional
            and cp <= peak * (1.0 - tg)):
        return EXIT_TRAILING
    if not math.isnan(bstop) and spot > 0 and not math.isnan(perp) and abs(money.basis(perp, spot)) * 1e4 >= bstop:
        return EXIT_BASIS
    if unfav_n >= 0 and unfav >= unfav_n:
        return EXIT_UNFAV
    if not math.isnan(maxh) and held_h >= maxh:
        return EXIT_MAX_HOLD
    return EXIT_NONE


@njit(cache=True)
def _exit_due(cp, notional, peak, sl, pt, pt_abs, tg, tmin, bstop, spot, perp, unfav_n, unfav, maxh, held_h):
    """``engine.exits.exit_reason`` != "" (:func:`_exit_rule` fires)."""
    return _exit_rule(cp, notional, peak, sl, pt, pt_abs, tg, tmin, bstop, spot, perp, unfav_n, unfav, maxh,
                      held_h) != EXIT_NONE


@njit(cache=True)
def _deferrable(rule, defer_s):
    """Whether ``rule`` (an ``EXIT_*`` code) is a soft exit (``exits.SOFT_EXITS``: profit target, max holding)
    that ``exit.defer_within_s_of_funding`` (``defer_s`` seconds; NaN = off) may hold back."""
    return (rule == EXIT_TARGET or rule == EXIT_MAX_HOLD) and not math.isnan(defer_s)


@njit(cache=True)
def _in_window(lead_s, defer_s):
    """The next settlement ``lead_s`` seconds away lies in the deferral window ``(0, defer_s]``."""
    return 0 < lead_s <= defer_s


@njit(cache=True)
def _exit_rule_deferred(cp, notional, peak, sl, pt, tg, tmin, bstop, spot, perp, unfav_n, unfav, maxh, held_h,
                        defer_s, lead_s, rate, pq):
    """The generic exit of a hedge whose first leg is spot (``engine.exits.exit_reason`` then
    ``exits.defer_for_funding``): :func:`_exit_rule`, unless a soft one waits because the perp position ``pq``
    RECEIVES the funding settling ``lead_s`` seconds ahead (``-pq x rate > 0`` at the last settled ``rate``;
    NaN rate: no deferral) within ``defer_s`` seconds. Stops, trailing, basis and funding exits never wait."""
    rule = _exit_rule(cp, notional, peak, sl, pt, np.nan, tg, tmin, bstop, spot, perp, unfav_n, unfav, maxh, held_h)
    if _deferrable(rule, defer_s) and not math.isnan(rate) and -pq * rate > 0 and _in_window(lead_s, defer_s):
        return EXIT_NONE
    return rule


# the venue's answer to an opening perp order (``_entry_margin``): it fills, it is rejected, or the kernel cannot tell
MARGIN_OK, MARGIN_REJECTED, MARGIN_UNSURE = 0, 1, 2
MARGIN_TOL = 1e-7  # relative: far above the rounding of the two wallets' sums, far below any real margin call


@njit(cache=True)
def _entry_margin(q, px, lev, p_fee_r, wallet, pap_margin, caps, maxlevs):
    """:func:`_open_margin` of an order opening ``q`` base from a flat position (an entry's hedge)."""
    return _open_margin(q, 0.0, px, lev, p_fee_r, wallet, pap_margin, caps, maxlevs)


@njit(cache=True)
def _open_margin(q, cur, px, lev, p_fee_r, wallet, pap_margin, caps, maxlevs):
    """The paper venue's funds check of an order opening ``q`` base at ``px`` on an isolated position of ``cur``
    base on the same side (``PaperCore._check_perp_funds``: the notional ``(cur + q) x px`` above the leverage
    bracket's cap, or the initial margin and fee of ``q``
    above the available margin ``wallet - pap_margin`` by more than 1e-9 USDT, rejects it): ``MARGIN_OK``,
    ``MARGIN_REJECTED``, or ``MARGIN_UNSURE`` when the margin lies within ``MARGIN_TOL`` (relative, plus 1e-9 USDT) of
    the venue's limit (the kernel's wallet is the venue's up to the order of its sums; the run is then refused
    rather than guessed)."""
    if (cur + q) * px > money.max_notional(lev, caps, maxlevs):
        return MARGIN_REJECTED
    need = money.isolated_margin(q, px, lev) + money.fee(q, px, p_fee_r)
    avail = wallet - pap_margin
    tol = MARGIN_TOL * abs(avail) + 1e-9
    if need <= avail + 1e-9 - tol:
        return MARGIN_OK
    if need > avail + 1e-9 + tol:
        return MARGIN_REJECTED
    return MARGIN_UNSURE


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
def _liq_and_funding_guards(pq, mark_px, lp, liq_close, liq_reduce, monitoring, fcost, rate, interval):
    """``engine.guards.market_guards``' liquidation-distance and funding-cost guards, for the hedge and
    loan-book kernels (scalars only, so LLVM inlines it): (flatten, reduce). ``reduce``: the REDUCE
    verdict fired in MONITORING (the kernels latch and act on it);
    the funding-cost flatten is evaluated after it, as the engine lists its verdicts."""
    flatten = False
    reduce = False
    if pq != 0.0 and mark_px > 0:
        dist = money.liquidation_distance(pq, mark_px, lp)
        if dist <= liq_close:
            flatten = monitoring
        elif dist <= liq_reduce and monitoring:
            reduce = True
    if not math.isnan(fcost) and pq != 0.0:
        apr = money.funding_pay_apr(pq, rate, interval)
        if apr > 0 and apr >= fcost and monitoring:
            flatten = True
    return flatten, reduce


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
    order_t[n_ord % ORDER_RING] = t; n_ord += 1
    pq, pavg, preal, pfee, pcash, ptrd, pmf = _ledger_fill(pq, pavg, preal, pfee, pcash, ptrd, pmf, sign, q, px2, fee)
    papq, pap_entry, pap_margin, wallet = _pap_perp(papq, pap_entry, pap_margin, wallet, sign, q, px, pap_lev, fee)
    return nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf


@njit(cache=True)
def _exit_transition(i, t, rearm, flatten, has_cool, cooldown, t_i, t_code, nt, reduced):
    """The state once both legs are closed, for the hedge and pair kernels (``engine.step``'s exit): analysing
    again after the re-arm cooldown (``REARM_COOLDOWN_S`` from ``t``, ns) when the set re-arms and no guard
    flattened (``Tr.EXIT_REARM``), else completed (``Tr.FLATTEN`` or ``Tr.EXIT_DONE``); the transition is
    recorded at instant ``i``. ``reduced``: a REDUCE verdict moved the hedge to REBALANCING first (its flatten or
    exit leaves from there: ``Tr.REDUCE_FLATTEN``, ``Tr.REDUCE_EXIT_REARM``, ``Tr.REDUCE_EXIT_DONE``).
    Returns (state, has_cool, cooldown, nt)."""
    if rearm == 1 and not flatten:
        t_i[nt] = i; t_code[nt] = Tr.REDUCE_EXIT_REARM if reduced else Tr.EXIT_REARM
        return St.ANALYZING, True, t + REARM_COOLDOWN_S * 1_000_000_000, nt + 1
    if flatten:
        t_i[nt] = i; t_code[nt] = Tr.REDUCE_FLATTEN if reduced else Tr.FLATTEN
    else:
        t_i[nt] = i; t_code[nt] = Tr.REDUCE_EXIT_DONE if reduced else Tr.EXIT_DONE
    return St.COMPLETED, has_cool, cooldown, nt + 1


@njit(cache=True)
def _rebalance_rounds(i, t, spot_check, same, ratio, target_spot, sq, spot_px, perp_px, perp_i, perp_vol_i,
                      s_lot, s_minq, s_minn, min_order_n, p_lot, p_minq, p_minn, p_fee_r, slip_bps, impact_k,
                      max_pq, max_pn, max_opm, pap_lev, caps, maxlevs,
                      pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf,
                      order_t, n_ord, slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf, retries):
    """The REBALANCING rounds of ``engine.step`` (DRIFT_EXCEEDED already decided by the caller):
    perp orders until the residual is below a lot, at most 6, for both kernels. ``spot_check``: a
    spot leg that could trade refuses the run (``Err.SPOT_REBALANCE``; the loan book's collateral never trades).
    Called only when a rebalance is due (a call per instant would cost the kernels ~2x). An order the venue's
    margin check rejects (:func:`_open_margin`) is re-placed as ``step._rebalancing`` does, ``retries``
    (``execution.hedge_retries``) times while the phase has rounds left, each rejected at this instant and counted in
    the order-rate window; the phase then ends (REBALANCED) with the rounds that filled. ``retries`` < 0: refused
    (``Err.PERP_MARGIN``), as within ``MARGIN_TOL`` of the limit.

    Returns (error code or 0, rounds, nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd,
    papq, pap_entry, pap_margin, wallet, pmf)."""
    err = Err.NONE
    rounds = 0
    while True:
        if spot_check and _tradeable(target_spot - sq, spot_px, s_lot, s_minq, s_minn, min_order_n):
            err = Err.SPOT_REBALANCE
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
            err = Err.REDUCE_ONLY_CAPPED
            break
        if _recent_orders(order_t, t) >= max_opm:
            err = Err.ORDER_RATE
            break
        q1 = pq + sign * oq
        if abs(q1) > abs(pq) and (abs(q1) > max_pq or abs(q1) * perp_px > max_pn):
            err = Err.POSITION_LIMIT
            break
        if not reducing:
            opening = oq
            if papq != 0.0 and (papq > 0) != (sign > 0):
                opening = max(oq - abs(papq), 0.0)
            if opening > 0:
                cur = abs(papq) if papq != 0.0 and (papq > 0) == (sign > 0) else 0.0
                answer = _open_margin(opening, cur, perp_i, pap_lev, p_fee_r, wallet, pap_margin, caps, maxlevs)
                if answer != MARGIN_OK:
                    if answer == MARGIN_UNSURE or retries < 0:
                        err = Err.PERP_MARGIN
                        break
                    n_rej = min(retries + 1, MAX_ORDER_ROUNDS - rounds)  # phase_rejects <= retries, rounds left
                    if _recent_orders(order_t, t) + n_rej > max_opm:
                        err = Err.ORDER_RATE
                        break
                    for _k in range(n_rej):
                        order_t[n_ord % ORDER_RING] = t; n_ord += 1  # a rejected order was placed: it counts
                    break
        if nf >= len(f_i):
            err = Err.BUFFER_FULL
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
def _reduce_rounds(i, t, k, sq0, same, ratio, target_spot, sq, spot_px, perp_px, perp_i, perp_vol_i,
                   s_lot, s_minq, s_minn, min_order_n, p_lot, p_minq, p_minn, p_fee_r, slip_bps, impact_k,
                   max_pq, max_pn, max_opm, pap_lev, caps, maxlevs,
                   pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf,
                   order_t, n_ord, slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf):
    """The hedge's orders of a liquidation-distance REDUCE (``step._run_guards`` cut the first leg's target;
    ``step._rebalancing`` trades), for the hedge and pair kernels, once the caller has filled the first leg's
    order of round 1 (``k`` = 1 when it sent one, else 0; ``sq0`` the first leg before it, ``sq`` after).

    Round 1's hedge order is sized on the first leg BEFORE its fill (``perp_target`` reads the book as it stands
    while both orders of the round are working); the rounds after it bring the hedge to the new first leg, a
    first-leg order due again refusing the run (``Err.SPOT_REBALANCE``). Refused (``Err.LIQ_REDUCE``): a round 1
    needing more than one hedge order, or rounds that reach the engine's phase limit (``MAX_ORDER_ROUNDS`` orders
    in the phase, the first leg's counted). Returns (error code or 0, nf, n_ord, slip_tot, pq, pavg, preal,
    pfee, pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf)."""
    err = Err.NONE
    for rnd in range(2):  # round 1's hedge order (on the first leg before its fill), then rounds 2+
        sized = sq0
        spot_chk = False
        if rnd == 1:
            sized = sq
            spot_chk = True
        (err, rounds, nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry,
         pap_margin, wallet, pmf) = _rebalance_rounds(
            i, t, spot_chk, same, ratio, target_spot, sized, spot_px, perp_px, perp_i, perp_vol_i, s_lot, s_minq,
            s_minn, min_order_n, p_lot, p_minq, p_minn, p_fee_r, slip_bps, impact_k, max_pq, max_pn, max_opm,
            pap_lev, caps, maxlevs, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin, wallet, pmf,
            order_t, n_ord, slip_tot, f_i, f_leg, f_side, f_qty, f_px, f_fee, f_slip, nf, -1)
        if err != Err.NONE:
            break
        if rnd == 0:
            if rounds > 1:  # sized on one position, the residual is below a lot after one order
                err = Err.LIQ_REDUCE
                break
            k += rounds
        elif rounds >= MAX_ORDER_ROUNDS - k:  # the engine's phase counts every order of the phase
            err = Err.LIQ_REDUCE
    return (err, nf, n_ord, slip_tot, pq, pavg, preal, pfee, pcash, ptrd, papq, pap_entry, pap_margin, wallet,
            pmf)
