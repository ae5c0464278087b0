"""The strategy contract: what the engine, the backtests and the runner ask of a strategy.

A strategy is an object satisfying :class:`Strategy` (a ``typing.Protocol``). The registry
(:mod:`hedge_core.engine.strategies`) maps ``params.strategy`` to one such object, and every
place that used to test ``params.strategy == "..."`` asks the object instead:

==========================  ==================================================================
member                      asked by
==========================  ==================================================================
``decide``                  ``engine.step`` (ANALYZING_MARKET and MONITORING_POSITIONS)
``guards``                  ``engine.step`` after the generic guards, on every market update
``new_context``             the event backtest (and anyone starting a hedge of this strategy)
``capital``                 the backtests: the denominator of returns and APR
``balances``                the backtests: the paper wallets at the start
``loan_book``               the event backtest: sample the LTV each instant or not
``loan_figures``            ``backtest.kpis.loan_state`` / ``ltv_of`` (LTV series and KPIs)
``extra_kpis``              the event backtest, after the generic KPIs
``rechecks_leverage``       ``engine.step``: re-choose the perp leverage from volatility or not
``fast_kernel``             the fast path: the NAME of its kernel (resolved there, lazily)
``runner_refusal``          the runner's start: None, or why it cannot run this strategy yet
``live_refusal``            the runner's start in live mode: None, or why not live (yet)
==========================  ==================================================================

:class:`StrategyBase` implements the defaults (a notional-sized hedge without a loan); a
strategy overrides what differs. ``docs/strategies.md`` walks through adding one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar, Generic, Protocol, TypeVar, runtime_checkable

import pandas as pd

from hedge_core.engine.context import HedgeContext, new_hedge
from hedge_core.engine.events import MarketUpdate
from hedge_core.engine.guards import Verdict
from hedge_core.engine.strategies.base import Intent
from hedge_core.params.models import StrategyParamsBase
from hedge_core.types import Instrument

__all__ = ["Balances", "Strategy", "StrategyBase"]

#: Paper wallets by account: ``{"spot": {"USDT": 20000.0}, "perp": {"USDT": 15000.0}}`` (asset -> amount).
Balances = dict[str, dict[str, float]]

#: A strategy's own params type (contravariant: a strategy for ``StrategyParamsBase`` serves any).
P_contra = TypeVar("P_contra", bound=StrategyParamsBase, contravariant=True)


@runtime_checkable
class Strategy(Protocol[P_contra]):
    """What a strategy provides. All methods are pure (no I/O, no clock: time comes in).

    Attributes
    ----------
    name : str
        The ``params.strategy`` value that selects it.
    fast_kernel : str or None
        Name of its numba kernel in the fast path (e.g. ``"hedge"``, ``"voltier"``), resolved
        by the fast path itself; None = no fast kernel (the fast path refuses the params).
    loan_book : bool
        True when the hedge carries a loan (:attr:`HedgeContext.loan`): LTV is sampled per instant.
    rechecks_leverage : bool
        True when the engine may lower the perp leverage from volatility while hedged; False when
        the strategy fixes it itself (``Intent.leverage`` at entry).
    runner_refusal : str or None
        None when the runner can start and recover hedges of this strategy; else the reason it
        refuses them at start (research only), shown to the operator.
    live_refusal : str or None
        None when the runner may trade this strategy with real money (mode ``live``); else why
        not, refused at start like ``runner_refusal`` (paper and recommend still run).
    """

    name: str
    fast_kernel: str | None
    loan_book: bool
    rechecks_leverage: bool
    runner_refusal: str | None
    live_refusal: str | None

    def decide(self, ctx: HedgeContext, market: MarketUpdate, analytics: Mapping[str, float],
               params: P_contra) -> Intent:
        """The strategy's wish at ``market.ts`` (targets, enter/exit); never orders."""
        ...

    def guards(self, ctx: HedgeContext, ts: pd.Timestamp, params: P_contra) -> list[Verdict]:
        """Extra guard verdicts beyond the generic ones (``engine.guards.market_guards``)."""
        ...

    def new_context(self, hedge_id: str, spot: Instrument, perp: Instrument, ts: pd.Timestamp,
                    price: float, params: P_contra) -> HedgeContext:
        """A fresh hedge at ``ts``; ``price`` (quote per base) is the first spot price known."""
        ...

    def capital(self, params: P_contra, spot_price: float) -> float:
        """Capital of returns and APR (quote) at the first spot price ``spot_price``."""
        ...

    def balances(self, params: P_contra, spot_price: float) -> Balances:
        """Paper wallets large enough that the strategy's own orders are never refused."""
        ...

    def loan_figures(self, ctx: HedgeContext, t: pd.Timestamp, params: P_contra) -> tuple[float, float]:
        """(loan outstanding at ``t``, cumulative repaid from profit), quote; (NaN, NaN) without a loan."""
        ...

    def extra_kpis(self, ctx: HedgeContext, end: pd.Timestamp, params: P_contra) -> dict[str, float]:
        """KPIs of its own, from the final context at ``end`` (merged into the run's KPIs)."""
        ...


class StrategyBase(Generic[P_contra]):
    """Defaults of :class:`Strategy` for a hedge sized by ``params.notional`` without a loan.

    Subclasses name their params type (``class CarryStrategy(StrategyBase[CarryParams])``), set
    ``name`` (and ``fast_kernel`` when the fast path has a kernel for them) and implement
    :meth:`decide`.
    """

    name: ClassVar[str] = ""
    fast_kernel: ClassVar[str | None] = None
    loan_book: ClassVar[bool] = False
    rechecks_leverage: ClassVar[bool] = True
    runner_refusal: ClassVar[str | None] = None
    live_refusal: ClassVar[str | None] = None

    def decide(self, ctx: HedgeContext, market: MarketUpdate, analytics: Mapping[str, float],
               params: P_contra) -> Intent:
        raise NotImplementedError(f"strategy {self.name!r} does not implement decide()")

    def guards(self, ctx: HedgeContext, ts: pd.Timestamp, params: P_contra) -> list[Verdict]:
        return []

    def new_context(self, hedge_id: str, spot: Instrument, perp: Instrument, ts: pd.Timestamp,
                    price: float, params: P_contra) -> HedgeContext:
        return new_hedge(hedge_id, self.name, spot, perp, ts)

    def capital(self, params: P_contra, spot_price: float) -> float:
        """The hedge notional (quote)."""
        return float(getattr(params, "notional", 10_000.0))

    def spot_wallet(self, params: P_contra, spot_price: float) -> dict[str, float]:
        """The spot account at the start: twice the capital in quote (fees and re-entries after losses)."""
        return {"USDT": self.capital(params, spot_price) * 2.0}

    def balances(self, params: P_contra, spot_price: float) -> Balances:
        """Spot: :meth:`spot_wallet`. Perp: 1.5 x the largest hedge notional at the LOWEST allowed
        leverage (quote). These are the venue's cash, not the KPI capital (:meth:`capital`)."""
        notional = self.capital(params, spot_price)
        rmax = max(params.rebalance.ratio_max, params.rebalance.target_ratio, 1.0)
        perp = notional * rmax * 1.5 / max(params.leverage.min_leverage, 1.0)
        return {"spot": self.spot_wallet(params, spot_price), "perp": {"USDT": perp}}

    def loan_figures(self, ctx: HedgeContext, t: pd.Timestamp, params: P_contra) -> tuple[float, float]:
        return math.nan, math.nan

    def extra_kpis(self, ctx: HedgeContext, end: pd.Timestamp, params: P_contra) -> dict[str, float]:
        return {}

    def __repr__(self) -> str:
        return f"<strategy {self.name}>"
