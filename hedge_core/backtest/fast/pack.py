"""Parameters, venue model and bracket table of a run, packed for the kernels (named records, arrays).

:func:`pack_hedge` and :func:`pack_voltier` fill the records of :mod:`.records` field by field
(units there); :func:`brackets` gives the perp's maintenance-margin table as the kernels' five
arrays; :func:`tiers` the loan book's tier ratio per instant.
"""

from __future__ import annotations

import math

import numpy as np

from hedge_core.analytics.risk import brackets_for
from hedge_core.backtest.fast.codes import HEDGE_KINDS, Kind
from hedge_core.backtest.fast.records import HEDGE_RECORD, VOLTIER_RECORD, make_record
from hedge_core.backtest.fast.scope import FastPathUnsupported
from hedge_core.backtest.fast.signals import HedgeParams
from hedge_core.backtest.timeline import Timeline
from hedge_core.errors import InvalidInput
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.params.models import StrategyParamsBase, VolTierLoanParams
from hedge_core.types import Instrument

__all__ = ["brackets", "pack_hedge", "pack_voltier", "tiers"]

Balances = dict[str, dict[str, float]]


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


def _instruments(paper: PaperConfig, tl: Timeline) -> tuple[Instrument, Instrument]:
    inst = {i.symbol: i for i in paper.instruments}
    try:
        return inst[tl.spot_symbol], inst[tl.perp_symbol]
    except KeyError:
        raise InvalidInput("symbols", (tl.spot_symbol, tl.perp_symbol),
                           f"instruments of the paper venue: {sorted(inst)}") from None


def _common(params: StrategyParamsBase, paper: PaperConfig, tl: Timeline, balances: Balances,
            pi: Instrument) -> dict[str, float]:
    e, g, rb = params.exit, params.guards, params.rebalance
    return {
        "p_lot": pi.lot_size, "p_min_qty": pi.min_qty, "p_min_notional": pi.min_notional,
        "slippage_bps": paper.slippage_bps, "impact_k_bps": paper.impact_k_bps,
        "perp_taker_fee": paper.perp_taker_fee,
        "stop_loss_pct": _nan(e.stop_loss_pct), "profit_target_pct": _nan(e.profit_target_pct),
        "trailing_giveback": _nan(e.trailing_giveback), "trailing_min_peak_pct": e.trailing_min_peak_pct,
        "basis_stop_bps": _nan(e.basis_stop_bps), "max_holding_hours": _nan(e.max_holding_hours),
        "liq_distance_close": g.liq_distance_close, "liq_distance_reduce": g.liq_distance_reduce,
        "liq_reduce_fraction": g.liq_reduce_fraction,  # a REDUCE's cut (fraction)
        "funding_cost_apr_limit": _nan(g.funding_cost_apr_limit), "interval_hours": tl.interval_hours,
        "drift_threshold": rb.drift_threshold, "min_order_notional": rb.min_order_notional,
        "cooldown_s": rb.cooldown_s, "perp_wallet": balances["perp"]["USDT"],
        "max_position_qty": g.max_position_qty, "max_position_notional": g.max_position_notional,
        "ratio_min": rb.ratio_min, "ratio_max": rb.ratio_max,
        "unfav_intervals": -1 if e.funding_unfavourable_intervals is None else e.funding_unfavourable_intervals,
        "rearm": 1 if e.rearm else 0, "max_orders_per_minute": g.max_orders_per_minute,
        "hedge_retries": params.execution.hedge_retries,  # step._opening_futures: rejected orders re-placed
        "unwind_on_hedge_failure": 1 if params.execution.unwind_on_hedge_failure else 0,
    }


def pack_hedge(params: HedgeParams, paper: PaperConfig, tl: Timeline, balances: Balances,
               spot_paper: PaperConfig | None = None) -> np.ndarray:
    """The :data:`~.records.HEDGE_RECORD` of a carry / xcarry / cross / grid run (a one-element array).

    ``balances``: the starting wallets (``{"spot": {asset: qty}, "perp": {"USDT": qty}}``, quote units).
    ``spot_paper``: the first (spot) leg's venue when the legs trade on two (its fixed slippage and impact
    coefficient price that leg's fills, as its own ``PaperCore`` does); None: ``paper``'s.
    """
    si, pi = _instruments(paper, tl)
    lv, rb = params.leverage, params.rebalance
    kind = HEDGE_KINDS[params.strategy]
    grid = kind == Kind.GRID
    same = si.base == pi.base  # the engine's ctx.same_base: perp sizing and the basis stop follow it
    rec = _common(params, paper, tl, balances, pi)
    if not same:
        rec["basis_stop_bps"] = math.nan  # basis stop: same base only
    rec.update({
        "notional": params.notional, "ratio0": min(max(rb.target_ratio, rb.ratio_min), rb.ratio_max),
        "s_lot": si.lot_size, "s_min_qty": si.min_qty, "s_min_notional": si.min_notional,
        "spot_taker_fee": paper.spot_taker_fee,
        "s_slippage_bps": (spot_paper or paper).slippage_bps, "s_impact_k_bps": (spot_paper or paper).impact_k_bps,
        "min_leverage": lv.min_leverage, "max_leverage": lv.max_leverage, "liq_buffer": lv.liq_buffer,
        "target_vol_multiple": lv.target_vol_multiple, "recheck_hours": lv.recheck_hours,
        "spot_cash": balances["spot"].get("USDT", 0.0),
        "reestimate_hours": float(getattr(params, "reestimate_hours", 0.0)),
        "grid_spacing_sigma": params.spacing_sigma if grid else 0.0,
        "grid_min_spacing_pct": params.min_spacing_pct if grid else 0.0,
        "grid_max_ratio": params.max_ratio if grid else 0.0,
        "grid_stop_loss_pct": params.grid_stop_loss_pct if grid else 0.0,
        "grid_var_limit": _nan(params.var_limit) if grid else math.nan,
        "grid_max_drawdown": _nan(params.max_drawdown) if grid else math.nan,
        "exit_below_apr": _nan(getattr(params, "exit_below_apr", None)),  # xcarry only
        "exit_defer_s": _nan(params.exit.defer_within_s_of_funding),  # exits.defer_exit (seconds; NaN = off)
        "entry_retry_cooldown_s": params.execution.entry_retry_cooldown_s,  # step._opening_spot: ENTRY_FAILED
        "kind": int(kind), "grid_levels": params.levels if grid else 0, "same_base": 1 if same else 0,
    })
    return make_record(HEDGE_RECORD, rec)


def pack_voltier(params: VolTierLoanParams, paper: PaperConfig, tl: Timeline, balances: Balances,
                 first_px: float) -> np.ndarray:
    """The :data:`~.records.VOLTIER_RECORD` of a loan book run (a one-element array).

    Raises
    ------
    FastPathUnsupported
        The collateral is not the perp's base asset, or ``perp_leverage`` is above the venue's maximum.
    """
    si, pi = _instruments(paper, tl)
    if pi.base != si.base:
        raise FastPathUnsupported("a loan book whose collateral is not the perp's base asset")
    if params.perp_leverage > pi.max_leverage:
        raise FastPathUnsupported(f"perp_leverage {params.perp_leverage} above the venue's {pi.max_leverage}")
    from hedge_core.engine.strategies.voltier import ltv_params

    lp = ltv_params(params)
    rec = _common(params, paper, tl, balances, pi)
    rec.update({
        "pt_k": params.pt_k, "perp_leverage": params.perp_leverage, "collateral_qty": params.collateral_at(first_px),
        "first_px": first_px, "loan": params.loan, "loan_apr": params.loan_apr, "reserve": params.reserve,
        "ltv_flatten": params.ltv_flatten,
        "reserve_start": lp.reserve_start, "reserve_mid": lp.reserve_mid, "reserve_end": lp.reserve_end,
        "reserve_mid_amount": lp.reserve_mid_amount, "reserve_end_amount": lp.reserve_end_amount,
        "reserve_total": lp.reserve_total,
        "ltv_band_actions": 1 if params.guards.ltv_band_actions else 0,
    })
    return make_record(VOLTIER_RECORD, rec)


def brackets(paper: PaperConfig, symbol: str) -> tuple[np.ndarray, ...]:
    """The perp's maintenance-margin table as (floors, caps, mmrs, cums, max leverages) arrays.

    The perp instrument's own table (``Instrument.brackets``: store, venue or snapshot) when the
    paper venue lists one, else the committed default :func:`hedge_core.analytics.risk.brackets_for`
    (InvalidInput naming the symbol when there is neither).
    """
    own = next((i.brackets for i in paper.instruments if i.symbol == symbol and i.brackets), ())
    br = own or brackets_for(symbol)
    return tuple(np.array([getattr(b, f) for b in br], dtype="float64")
                 for f in ("notional_floor", "notional_cap", "mmr", "cum", "max_leverage"))


def tiers(params: VolTierLoanParams, sigma: np.ndarray) -> np.ndarray:
    """``voltier.tier_ratio`` per instant (NaN where sigma is unknown)."""
    edges = np.asarray(params.tier_uppers, dtype="float64")
    levels = np.asarray((*params.tier_ratios, params.tier_top), dtype="float64")
    out = levels[np.searchsorted(edges, np.nan_to_num(sigma, nan=0.0), side="right")].astype("float64")
    out[~np.isfinite(sigma)] = np.nan
    return out
