"""Volatility-tiered delta-neutral book on a collateralised loan.

The spot leg is collateral already held (``collateral_at(first price)`` BTC against a USDT loan: the
``collateral_qty`` override, else sized so the book starts at ``start_ltv``); the engine
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
from dataclasses import replace

import pandas as pd

from hedge_core import ltv as ltvmod
from hedge_core.analytics.volatility import VolTiers, vol_tiered_hedge_ratio
from hedge_core.engine.context import HedgeContext, new_hedge
from hedge_core.engine.events import MarketUpdate
from hedge_core.engine.guards import Verdict
from hedge_core.engine.loan_state import LoanState
from hedge_core.engine.states import State
from hedge_core.engine.strategies.base import Intent
from hedge_core.engine.strategies.protocol import StrategyBase
from hedge_core.params.models import VolTierLoanParams
from hedge_core.types import Instrument

__all__ = ["STRATEGY", "VolTierStrategy", "decide", "loan_state", "ltv_guards", "ltv_params", "new_voltier_hedge",
           "tier_ratio"]


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
    ctx = new_hedge(hedge_id, "voltier", spot, perp, ts, spot_qty=p.collateral_at(price), spot_entry_price=price,
                    collateral_spot=True, target_ratio=0.0)
    loan = ltvmod.Loan(principal=p.loan, apr=p.loan_apr, as_of=ctx.started_at)
    return replace(ctx, loan=LoanState(loan=loan, reserve_left=p.reserve))


def loan_state(ctx: HedgeContext) -> LoanState:
    """The hedge's loan state; a hedge built without one (not by :func:`new_voltier_hedge`) raises."""
    if ctx.loan is None:
        raise KeyError("HedgeContext.loan missing: build the hedge with new_voltier_hedge()")
    return ctx.loan


def _perp_booked(ctx: HedgeContext) -> float:
    """Realised money of the perp leg so far (realised PnL + funding - fees), quote."""
    return ctx.perp.realized + ctx.perp.funding - ctx.perp.fees


def decide(ctx: HedgeContext, market: MarketUpdate, analytics: Mapping[str, float],
           params: VolTierLoanParams) -> Intent:
    book = loan_state(ctx).accrued_to(market.ts)
    sigma = analytics.get("sigma_24h", math.nan)
    if ctx.state is State.ANALYZING_MARKET:
        # a finished cycle: its realised profit repays the loan (interest first, then principal)
        booked = _perp_booked(ctx)
        gained = booked - book.booked
        if gained > 0:
            loan, rep = ltvmod.repay_from_profit(book.loan, gained)
            book = replace(book, loan=loan, repaid=book.repaid + rep.interest + rep.principal)
        book = replace(book, booked=booked)
        if math.isnan(sigma):
            return Intent(loan=book)
        ratio = tier_ratio(sigma, params)
        if ratio <= 0:
            return Intent(loan=book)
        notional = ratio * ctx.spot.qty * market.spot
        return Intent(enter=True, target_ratio=ratio, profit_target=params.pt_k * sigma * notional,
                      leverage=params.perp_leverage, loan=book,
                      reason=f"sigma_24h {sigma:.4f} -> ratio {ratio:.2f}, PT {params.pt_k * sigma * notional:.2f}")
    if not math.isnan(sigma):
        ratio = tier_ratio(sigma, params)
        if ratio != ctx.target_ratio:
            return Intent(target_ratio=ratio, loan=book, reason=f"vol tier -> ratio {ratio:.2f}")
    return Intent(loan=book)


def ltv_guards(ctx: HedgeContext, ts: pd.Timestamp, params: VolTierLoanParams) -> list[Verdict]:
    """LTV band actions: deploy the reserve by band (repaying principal), flatten at EMERGENCY."""
    book = ctx.loan
    if not params.guards.ltv_band_actions or not ctx.spot_price > 0 or book is None:
        return []
    lp = ltv_params(params)
    loan = book.loan
    value = ltvmod.ltv(loan.outstanding, ctx.spot.qty, ctx.spot_price)
    out: list[Verdict] = []
    deployed = book.reserve_deployed
    due = min(ltvmod.reserve_deployment(value, lp), params.reserve) - deployed
    if due > 1e-9 and loan.outstanding > 0:
        new_loan, rep = ltvmod.repay_from_profit(loan, due)
        used = rep.interest + rep.principal
        after = ltvmod.ltv(new_loan.outstanding, ctx.spot.qty, ctx.spot_price)
        # the name carries the cumulative amount: each further deployment is a new guard episode
        out.append(Verdict(f"ltv_reserve_{deployed + used:.0f}", "deploy_reserve",
                           {"ltv": value, "deployed": used, "ltv_after": after},
                           f"LTV {value:.2%} ({ltvmod.ltv_band(value, lp)}): reserve {used:.2f} repays the loan",
                           loan=replace(book, loan=new_loan, reserve_deployed=deployed + used,
                                        reserve_left=book.reserve_left - used)))
    if ltvmod.band_action(ltvmod.ltv_band(value, lp)) == "close_all":
        out.append(Verdict("ltv_emergency", "flatten", {"ltv": value, "limit": params.ltv_flatten},
                           f"LTV {value:.2%} >= {params.ltv_flatten:.2%}: close all"))
    return out


class VolTierStrategy(StrategyBase[VolTierLoanParams]):
    """The loan book through the strategy contract: the collateral is the spot leg, the loan is
    :attr:`HedgeContext.loan`, capital is the collateral's value, the perp leverage is fixed by
    ``perp_leverage`` (never re-chosen), fast kernel ``voltier``."""

    name = "voltier"
    fast_kernel = "voltier"
    loan_book = True
    rechecks_leverage = False
    #: the runner holds the loan book in paper (collateral in the paper spot wallet, the loan journaled in
    #: ``loan_events`` and rebuilt after a restart: runner.loan_journal); live it is refused: the loan and the
    #: collateral are off-venue (the operator's collateral loan) and nothing reconciles them with the lender yet
    live_refusal = ("mode paper or recommend: the loan book (voltier) holds an off-venue collateral loan the "
                    "runner cannot reconcile with the lender, and the venue's own spot balance is not the "
                    "collateral -- live trading of a loan book is not supported yet (docs/known-limits.md)")

    def decide(self, ctx: HedgeContext, market: MarketUpdate, analytics: Mapping[str, float],
               params: VolTierLoanParams) -> Intent:
        return decide(ctx, market, analytics, params)

    def guards(self, ctx: HedgeContext, ts: pd.Timestamp, params: VolTierLoanParams) -> list[Verdict]:
        return ltv_guards(ctx, ts, params)

    def new_context(self, hedge_id: str, spot: Instrument, perp: Instrument, ts: pd.Timestamp,
                    price: float, params: VolTierLoanParams) -> HedgeContext:
        return new_voltier_hedge(hedge_id, spot, perp, ts, price, params)

    def capital(self, params: VolTierLoanParams, spot_price: float) -> float:
        """The collateral's value at the first price: ``collateral_at(spot_price) x spot_price`` (quote)."""
        return params.collateral_at(spot_price) * spot_price

    def spot_wallet(self, params: VolTierLoanParams, spot_price: float) -> dict[str, float]:
        """The collateral itself (base) and 1 quote of dust: the engine never buys spot."""
        return {"BTC": params.collateral_at(spot_price), "USDT": 1.0}

    def loan_figures(self, ctx: HedgeContext, t: pd.Timestamp,
                     params: VolTierLoanParams) -> tuple[float, float]:
        """(outstanding at ``t``, repaid from profit), quote. The strategy accrues only when it
        decides (not once COMPLETED): accrued here to ``t``. Without a loan state on the context:
        the params' loan with simple interest since the hedge started."""
        book = ctx.loan
        if book is None:
            loan0 = float(params.loan)
            return loan0 + ltvmod.money.simple_interest(loan0, float(params.loan_apr),
                                                        (t - ctx.started_at).total_seconds()), 0.0
        return book.outstanding_at(t), book.repaid

    def extra_kpis(self, ctx: HedgeContext, end: pd.Timestamp, params: VolTierLoanParams) -> dict[str, float]:
        """The loan book's own money (not in the hedge's net PnL), to ``end``: interest charged
        (accrued + paid), repaid from profit, reserve deployed, loan outstanding; quote."""
        book = ctx.loan
        if book is None:
            return {}
        loan = book.accrued_to(end).loan  # to the end of the run, also after COMPLETED
        return {"loan_interest": float(loan.accrued_interest) + float(loan.interest_paid),
                "loan_repaid_from_profit": float(book.repaid), "reserve_deployed": float(book.reserve_deployed),
                "loan_outstanding": float(loan.principal) + float(loan.accrued_interest)}


STRATEGY = VolTierStrategy()
