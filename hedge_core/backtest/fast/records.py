"""The kernels' parameters as named records (numpy structured dtypes, read as numba ``Record``s).

A run's parameters travel to a kernel as ONE record: a one-element structured array whose
fields are named here, with units. The kernel reads ``p = rec[0]`` and then ``p.stop_loss_pct``
(numba types a structured array's element as a ``Record``: a field read is a load at a fixed
offset, the same cost as the former ``fp[12]``; the kernels read each field once, before their
loop). Compiled kernels over records are cached on disk like any other (the record's dtype is
part of the signature).

:func:`make_record` fills a record from a mapping and refuses a missing or unknown field, so a
field added here and not packed (or packed under a wrong name) fails at once instead of reading 0.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["HEDGE_RECORD", "VOLTIER_RECORD", "make_record"]

# shared by both kernels: venue model, exits, guards, rebalancing (units in the comments)
_COMMON_F8 = [
    ("p_lot", "perp lot size (base)"),
    ("p_min_qty", "perp minimum order quantity (base)"),
    ("p_min_notional", "perp minimum order notional (quote)"),
    ("slippage_bps", "paper fixed slippage (bps of the reference price)"),
    ("impact_k_bps", "paper square-root impact coefficient (bps)"),
    ("perp_taker_fee", "perp taker fee rate (fraction of notional)"),
    ("stop_loss_pct", "exit: stop loss (fraction of entry notional; NaN = off)"),
    ("profit_target_pct", "exit: profit target (fraction of entry notional; NaN = off)"),
    ("trailing_giveback", "exit: trailing stop giveback (fraction of the peak; NaN = off)"),
    ("trailing_min_peak_pct", "exit: peak (fraction of notional) before the trailing stop arms"),
    ("basis_stop_bps", "exit: |basis| stop (bps; NaN = off)"),
    ("max_holding_hours", "exit: maximum holding time (hours; NaN = off)"),
    ("liq_distance_close", "guard: flatten at this liquidation distance (fraction of mark)"),
    ("liq_distance_reduce", "guard: reduce at this liquidation distance (fraction of mark)"),
    ("liq_reduce_fraction", "guard: fraction one REDUCE removes: of the first leg (the hedge follows; hedge and pair "
                            "kernels) or of the target hedge ratio (the loan book)"),
    ("funding_cost_apr_limit", "guard: flatten when paying funding at this APR (fraction; NaN = off)"),
    ("interval_hours", "funding interval (hours)"),
    ("drift_threshold", "rebalance: |hedge ratio - target| above which it rebalances"),
    ("min_order_notional", "rebalance: smallest rebalance order (quote)"),
    ("cooldown_s", "rebalance: cooldown between rebalances (seconds)"),
    ("perp_wallet", "perp wallet at the start (quote)"),
    ("max_position_qty", "guard: largest position per leg (base)"),
    ("max_position_notional", "guard: largest position notional per leg (quote)"),
    ("ratio_min", "hedge ratio lower bound"),
    ("ratio_max", "hedge ratio upper bound"),
]
_COMMON_I8 = [
    ("unfav_intervals", "exit: unfavourable funding settlements in a row (-1 = off)"),
    ("rearm", "1: analyse again after a strategy exit, 0: complete"),
    ("max_orders_per_minute", "guard: order-rate limit (orders per ORDER_RATE_WINDOW_S)"),
    ("hedge_retries", "execution: new attempts after a rejected perp hedge order (each is rejected again at the "
                      "same instant: the wallet and the price are unchanged)"),
    ("unwind_on_hedge_failure", "execution: 1: a perp hedge the venue rejects after its retries ends the entry "
                                "(HEDGE_FAILED: the spot leg unwound, a loan book's collateral kept; then COMPLETED); "
                                "0: the run is refused (the engine goes to ERROR)"),
]

_HEDGE_F8 = [
    ("notional", "spot notional at entry (quote)"),
    ("entry_retry_cooldown_s", "execution: after a failed entry (its first order rejected after its retries), "
                               "seconds before analysing again (the pair kernel's first leg)"),
    ("ratio0", "initial (clipped) target hedge ratio"),
    ("s_lot", "spot lot size (base)"),
    ("s_min_qty", "spot minimum order quantity (base)"),
    ("s_min_notional", "spot minimum order notional (quote)"),
    ("spot_taker_fee", "spot taker fee rate (fraction of notional)"),
    ("s_slippage_bps", "spot (first) leg's venue: fixed slippage (bps of the reference price; the perp's venue's "
                       "unless the legs trade on two venues)"),
    ("s_impact_k_bps", "spot (first) leg's venue: square-root impact coefficient (bps; as s_slippage_bps)"),
    ("min_leverage", "leverage rule: lower bound"),
    ("max_leverage", "leverage rule: upper bound"),
    ("liq_buffer", "leverage rule: liquidation buffer (multiples of sigma)"),
    ("target_vol_multiple", "leverage rule: volatility multiple"),
    ("recheck_hours", "leverage re-check period (hours)"),
    ("spot_cash", "spot wallet at the start (quote)"),
    ("reestimate_hours", "cross: beta re-adoption period (hours; 0 for the others)"),
    ("grid_spacing_sigma", "grid: level spacing (multiples of sigma)"),
    ("grid_min_spacing_pct", "grid: smallest level spacing (fraction of the anchor)"),
    ("grid_max_ratio", "grid: hedge ratio with every level crossed"),
    ("grid_stop_loss_pct", "grid: stop below the lowest level (fraction)"),
    ("grid_var_limit", "grid: 99 % one-interval VaR limit (quote; NaN = off)"),
    ("grid_max_drawdown", "grid: drawdown from the peak PnL (quote; NaN = off)"),
    ("exit_defer_s", "exit: a profit-target or max-holding exit waits for a funding the position receives within "
                     "this many seconds (NaN = off; the hedge and pair kernels, the loan book's refuses it)"),
    ("exit_below_apr", "xcarry: exit when the funding APR the perp receives is below this (fraction/yr; NaN = off)"),
]
_HEDGE_I8 = [
    ("kind", "codes.Kind: CARRY, CROSS or GRID"),
    ("grid_levels", "grid: number of sigma-spaced levels (0 for the others)"),
    ("same_base", "1 when spot and perp share the base asset (ctx.same_base)"),
]

_VOLTIER_F8 = [
    ("pt_k", "profit target: multiples of sigma x notional"),
    ("perp_leverage", "the fixed perp leverage"),
    ("collateral_qty", "collateral spot quantity (base; never traded)"),
    ("first_px", "spot price at the start (quote; informational, the collateral is outside the PnL)"),
    ("loan", "loan principal at the start (quote)"),
    ("loan_apr", "loan simple-interest APR (fraction)"),
    ("reserve", "reserve available for deployment (quote)"),
    ("ltv_flatten", "LTV at which the book flattens (EMERGENCY)"),
    ("reserve_start", "LTV band: reserve deployment starts"),
    ("reserve_mid", "LTV band: the middle deployment"),
    ("reserve_end", "LTV band: the last deployment"),
    ("reserve_mid_amount", "reserve deployed by the middle band (quote)"),
    ("reserve_end_amount", "reserve deployed by the last band (quote)"),
    ("reserve_total", "reserve total (quote)"),
]
_VOLTIER_I8 = [
    ("ltv_band_actions", "1: the LTV-band guards act"),
]

#: field name -> meaning and unit, for docs and error messages
FIELD_DOCS: dict[str, str] = {n: d for n, d in (*_COMMON_F8, *_COMMON_I8, *_HEDGE_F8, *_HEDGE_I8, *_VOLTIER_F8,
                                                 *_VOLTIER_I8)}


def _dtype(f8: list[tuple[str, str]], i8: list[tuple[str, str]]) -> np.dtype:
    return np.dtype([(n, "f8") for n, _ in f8] + [(n, "i8") for n, _ in i8])


#: the carry / cross / grid kernel's parameters (``hedge_kernel``)
HEDGE_RECORD = _dtype(_COMMON_F8 + _HEDGE_F8, _COMMON_I8 + _HEDGE_I8)
#: the loan book kernel's parameters (``voltier_kernel``)
VOLTIER_RECORD = _dtype(_COMMON_F8 + _VOLTIER_F8, _COMMON_I8 + _VOLTIER_I8)


def make_record(dtype: np.dtype, values: Mapping[str, float | int | bool]) -> np.ndarray:
    """A one-element structured array of ``dtype`` holding ``values`` (one per field, by name).

    Raises
    ------
    ValueError
        A field of ``dtype`` missing from ``values``, or a name in ``values`` that is no field.
    """
    names = set(dtype.names or ())
    missing, extra = names - set(values), set(values) - names
    if missing or extra:
        raise ValueError(f"record fields: missing {sorted(missing)}, unknown {sorted(extra)}; "
                         f"the fields are {list(dtype.names or ())}")
    rec = np.zeros(1, dtype=dtype)
    rec[0] = tuple(values[n] for n in dtype.names or ())  # one assignment, in the dtype's field order
    return rec
