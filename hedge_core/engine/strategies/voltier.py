"""Volatility-tiered delta-neutral book on a collateralised loan.

The spot leg is collateral already held (``collateral_qty`` BTC against a USDT loan); the engine
never trades it. The perp leg shorts ``ratio x collateral`` with the ratio from 24h-volatility
tiers (``analytics.volatility.vol_tiered_hedge_ratio``). Each cycle has a profit target
``PT = pt_k x sigma_24h x hedge notional`` and a trailing stop (30 % give-back of peak PnL, via
ExitParams). When the perp is closed with a profit, the profit repays the loan (interest first,
then principal: ``ltv.repay_from_profit``) and the book re-arms. LTV bands (``hedge_core.ltv``)
deploy the USDT reserve against the loan as LTV rises, and flatten the hedge at the EMERGENCY band.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pandas as pd

from hedge_core import ltv as ltvmod
from hedge_core.analytics.volatility import VolTiers, vol_tiered_hedge_ratio
from hedge_core.engine.context import HedgeContext, evolve, new_hedge
from hedge_core.engine.events import MarketUpdate
from hedge_core.engine.guards import Verdict
from hedge_core.engine.states import State
from hedge_core.engine.strategies.base import HOLD, Intent
from hedge_core.params.models import VolTierLoanParams
from hedge_core.types import Instrument

__all__ = ["decide", "loan_state", "ltv_guards", "ltv_params", "new_voltier_hedge", "tier_ratio"]


def tier_ratio(sigma_24h: float, p: VolTierLoanParams) -> float:
    """Hedge ratio of the volatility tier of ``sigma_24h`` (fraction per day)."""
    return float(vol_tiered_hedge_ratio(sigma_24h, VolTiers(tuple(p.tier_uppers), tuple(p.tier_ratios), p.tier_top)))


def ltv_params(p: VolTierLoanParams) -> ltvmod.LtvParams:
    """LTV bands and reserve schedule scaled to this book: WARNING at ``ltv_warn``, EMERGENCY at
    ``ltv_flatten``, the reserve deployed 0 -> 30 % -> 80 % -> 100 % across them (the ltv module's
    default shape)."""
    mid = 0.5 * (p.ltv_warn + p.ltv_flatten)
    return ltvmod.LtvParams(monitor=min(0.5, p.ltv_warn * 0.9), warning=p.ltv_warn, critical=mid,
                            emergency=p.ltv_flatten, reserve_start=p.ltv_warn, reserve_mid=mid,
                            reserve_end=p.ltv_flatten, reserve_mid_amount=0.3 * p.reserve,
                            reserve_end_amount=0.8 * p.reserve, reserve_total=p.reserve)


def new_voltier_hedge(hedge_id: str, spot: Instrument, perp: Instrument, ts: object, price: float,
                      p: VolTierLoanParams) -> HedgeContext:
    """A hedge whose spot leg is the collateral (valued at ``price``) and whose loan starts at ``ts``."""
    ctx = new_hedge(hedge_id, "voltier", spot, perp, ts, spot_qty=p.collateral_qty, spot_entry_price=price,
                    collateral_spot=True, target_ratio=0.0)
    loan = ltvmod.Loan(principal=p.loan, apr=p.loan_apr, as_of=ctx.started_at)
    return evolve(ctx, strategy_state=MappingProxyType({"loan": loan, "reserve_left": p.reserve,
                                                         "reserve_deployed": 0.0, "booked": 0.0, "repaid": 0.0}))


def loan_state(ctx: HedgeContext) -> ltvmod.Loan:
    loan = ctx.strategy_state.get("loan")
    if loan is None:
        raise KeyError("strategy_state['loan'] missing: build the hedge with new_voltier_hedge()")
    return loan


def _perp_booked(ctx: HedgeContext) -> float:
    """Realised money of the perp leg so far (realised PnL + funding - fees), quote."""
    return ctx.perp.realized + ctx.perp.funding - ctx.perp.fees


def decide(ctx: HedgeContext, market: MarketUpdate, analytics: Mapping[str, float],
           params: VolTierLoanParams) -> Intent:
    loan = loan_state(ctx)
    if market.ts > loan.as_of:
        loan = ltvmod.accrue(loan, market.ts)
    updates: dict[str, Any] = {"loan": loan}
    sigma = analytics.get("sigma_24h", math.nan)
    if ctx.state is State.ANALYZING_MARKET:
        # a finished cycle: its realised profit repays the loan (interest first, then principal)
        gained = _perp_booked(ctx) - ctx.strategy_state.get("booked", 0.0)
        if gained > 0:
            loan, rep = ltvmod.repay_from_profit(loan, gained)
            updates.update(loan=loan, repaid=ctx.strategy_state.get("repaid", 0.0) + rep.interest + rep.principal)
        updates["booked"] = _perp_booked(ctx)
        if math.isnan(sigma):
            return Intent(state_updates=updates)
        ratio = tier_ratio(sigma, params)
        if ratio <= 0:
            return Intent(state_updates=updates)
        notional = ratio * ctx.spot.qty * market.spot
        return Intent(enter=True, target_ratio=ratio, profit_target=params.pt_k * sigma * notional,
                      leverage=params.perp_leverage, state_updates=updates,
                      reason=f"sigma_24h {sigma:.4f} -> ratio {ratio:.2f}, PT {params.pt_k * sigma * notional:.2f}")
    if not math.isnan(sigma):
        ratio = tier_ratio(sigma, params)
        if ratio != ctx.target_ratio:
            return Intent(target_ratio=ratio, state_updates=updates, reason=f"vol tier -> ratio {ratio:.2f}")
    return Intent(state_updates=updates) if updates else HOLD


def ltv_guards(ctx: HedgeContext, ts: pd.Timestamp, params: VolTierLoanParams) -> list[Verdict]:
    """LTV band actions: deploy the reserve by band (repaying principal), flatten at EMERGENCY."""
    if not params.guards.ltv_band_actions or not ctx.spot_price > 0 or "loan" not in ctx.strategy_state:
        return []
    lp = ltv_params(params)
    loan = loan_state(ctx)
    value = ltvmod.ltv(loan.outstanding, ctx.spot.qty, ctx.spot_price)
    out: list[Verdict] = []
    deployed = ctx.strategy_state.get("reserve_deployed", 0.0)
    due = min(ltvmod.reserve_deployment(value, lp), params.reserve) - deployed
    if due > 1e-9 and loan.outstanding > 0:
        new_loan, rep = ltvmod.repay_from_profit(loan, due)
        used = rep.interest + rep.principal
        after = ltvmod.ltv(new_loan.outstanding, ctx.spot.qty, ctx.spot_price)
        out.append(Verdict(f"ltv_reserve_{deployed + used:.0f}", "deploy_reserve",
                           {"ltv": value, "deployed": used, "ltv_after": after},
                           f"LTV {value:.2%} ({ltvmod.ltv_band(value, lp)}): reserve {used:.2f} repays the loan",
                           updates={"loan": new_loan, "reserve_deployed": deployed + used,
                                    "reserve_left": ctx.strategy_state.get("reserve_left", params.reserve) - used}))
    if ltvmod.band_action(ltvmod.ltv_band(value, lp)) == "close_all":
        out.append(Verdict("ltv_emergency", "flatten", {"ltv": value, "limit": params.ltv_flatten},
                           f"LTV {value:.2%} >= {params.ltv_flatten:.2%}: close all"))
    return out
