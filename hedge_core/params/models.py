"""Typed strategy parameters (pydantic v2, frozen, ``extra="forbid"``, bounds on every field).

Every field states its unit. The defaults of the original specification are the defaults here:
rebalance drift 5 %, stop loss 2 % of notional, profit target 1 % of notional, max holding 24 h,
hedge ratio bounds 0.8-1.2 around a target of 1.0. Exceptions, measured on the shared data
(docs/backtests.md "Cost model"): the carry holds 7 days and re-arms (``expected_hold_intervals``
21, ``exit.max_holding_hours`` 168, ``exit.rearm``), because a one-day hold never pays the venue's
real round trip (0.34 %); the loan book sizes its collateral from ``start_ltv``.

Export / import with provenance is a later issue: the models are plain pydantic models, so
``model_dump()`` / ``model_validate()`` round-trip them; a provenance wrapper can hold one of
them unchanged (see :data:`StrategyParams`, a discriminated union on ``strategy``).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from hedge_core import money
from hedge_core.errors import InvalidInput
from hedge_core.exchange.costs import CostModel
from hedge_core.types import MarginMode

__all__ = [
    "ActivationParams",
    "CarryParams",
    "CrossHedgeParams",
    "ExecutionParams",
    "ExitParams",
    "GridParams",
    "GuardParams",
    "LeverageParams",
    "RebalanceParams",
    "RollParams",
    "StrategyParams",
    "StrategyParamsBase",
    "VolTierLoanParams",
    "export",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class ExecutionParams(_Frozen):
    """How orders are sent and what happens when a venue misbehaves."""

    order_timeout_s: float = Field(10.0, gt=0, le=3600, description="seconds without an answer before the order is queried by client order id")
    max_queries: int = Field(5, ge=1, le=100, description="queries of one unanswered order before the hedge goes to ERROR")
    max_resends: int = Field(3, ge=0, le=20, description="re-sends (each under a new client order id linked to the first) of an order the venue has proven it never got (after its recvWindow)")
    hedge_retries: int = Field(2, ge=0, le=20, description="new attempts (new client order id) after a rejected order")
    unwind_on_hedge_failure: bool = Field(True, description="perp hedge rejected after retries: unwind the filled spot leg (True) or go to ERROR and alert (False); never left silently naked")
    entry_retry_cooldown_s: float = Field(3600.0, ge=0, le=7 * 86400, description="seconds to wait after a failed entry before analysing again")


class ExitParams(_Frozen):
    """When to close a hedge. Percentages are fractions of the entry notional (quote)."""

    profit_target_pct: float | None = Field(0.01, gt=0, le=10, description="close when net PnL >= this fraction of entry notional (0.01 = 1 %); None = off")
    stop_loss_pct: float | None = Field(0.02, gt=0, le=10, description="close when net PnL <= -this fraction of entry notional (0.02 = 2 %); None = off")
    trailing_giveback: float | None = Field(None, gt=0, lt=1, description="close when PnL has given back this fraction of its peak (0.3 = 30 %); None = off")
    trailing_min_peak_pct: float = Field(0.002, ge=0, le=10, description="trailing stop arms once peak PnL >= this fraction of entry notional")
    max_holding_hours: float | None = Field(24.0, gt=0, le=24 * 3650, description="close after this many hours in the market; None = off")
    funding_unfavourable_intervals: int | None = Field(3, ge=1, le=1000, description="close after this many consecutive funding settlements against the position; None = off")
    basis_stop_bps: float | None = Field(None, gt=0, le=10_000, description="close when |perp - spot| / spot exceeds this many basis points; None = off")
    rearm: bool = Field(False, description="after a strategy exit, go back to ANALYZING_MARKET instead of COMPLETED")
    defer_within_s_of_funding: float | None = Field(None, gt=0, le=86400, description="hold a profit-target or max-holding exit when a funding the position RECEIVES settles within this many seconds; None = off (stops are never deferred)")


class RebalanceParams(_Frozen):
    """Keeping the hedge ratio h = perp notional / spot notional near its target."""

    target_ratio: float = Field(1.0, ge=0.0, le=5.0, description="target hedge ratio h (dimensionless)")
    ratio_min: float = Field(0.8, ge=0.0, le=5.0, description="lowest hedge ratio a strategy may ask for")
    ratio_max: float = Field(1.2, ge=0.0, le=5.0, description="highest hedge ratio a strategy may ask for")
    drift_threshold: float = Field(0.05, gt=0, le=1.0, description="rebalance when the drift |h - target| exceeds this, in hedge-ratio units (absolute, not relative: 0.05 = 5 % of spot notional; equals |h / target - 1| only at target 1.0)")
    min_order_notional: float = Field(10.0, ge=0, le=1e9, description="skip rebalance orders smaller than this (quote); venue minimums apply as well")
    cooldown_s: float = Field(300.0, ge=0, le=86400 * 7, description="seconds between two rebalances")

    @model_validator(mode="after")
    def _bounds(self) -> RebalanceParams:
        if not self.ratio_min <= self.target_ratio <= self.ratio_max:
            raise ValueError(f"target_ratio={self.target_ratio} must lie in [ratio_min={self.ratio_min}, ratio_max={self.ratio_max}]")
        return self


class GuardParams(_Frozen):
    """Risk guards, checked on every market update and before every order."""

    max_position_qty: float = Field(1e6, gt=0, le=1e9, description="largest |quantity| of either leg, base units")
    max_position_notional: float = Field(1e7, gt=0, le=1e12, description="largest notional of either leg, quote")
    daily_loss_limit: float | None = Field(None, gt=0, le=1e12, description="flatten when PnL since 00:00 UTC falls below -this (quote); None = off")
    liq_distance_reduce: float = Field(0.15, gt=0, lt=1, description="reduce the perp leg when the adverse move to liquidation is below this fraction of mark")
    liq_distance_close: float = Field(0.08, gt=0, lt=1, description="close the hedge when the adverse move to liquidation is below this fraction of mark")
    liq_reduce_fraction: float = Field(0.25, gt=0, le=1, description="fraction of both legs removed by one liquidation-distance reduction")
    funding_cost_apr_limit: float | None = Field(0.5, gt=0, le=100, description="flatten when the position PAYS funding at more than this APR (0.5 = 50 %/yr); None = off")
    max_orders_per_minute: int = Field(20, ge=1, le=10_000, description="orders allowed in any 60 s window; more are held back and alerted")
    heartbeat_timeout_s: float | None = Field(None, gt=0, le=7 * 86400, description="dead man's switch: flatten when no heartbeat for this many seconds; None = off")
    ltv_band_actions: bool = Field(True, description="apply LTV band actions (reserve deployment, flatten) for loan-backed strategies")


class LeverageParams(_Frozen):
    """Perp leverage chosen at entry by the risk rule and re-checked on a schedule."""

    min_leverage: float = Field(1.0, ge=1, le=125, description="lowest leverage (x)")
    max_leverage: float = Field(5.0, ge=1, le=125, description="highest leverage (x)")
    liq_buffer: float = Field(0.5, gt=0, lt=1, description="the liquidation move must be at least this fraction of price (isolated margin)")
    target_vol_multiple: float = Field(6.0, gt=0, le=100, description="the liquidation move must be at least this many 24h sigmas")
    target_vol: float | None = Field(None, gt=0, le=10, description="cap leverage at target_vol / sigma_24h (both daily fractions); None = off")
    margin_mode: MarginMode = Field(MarginMode.ISOLATED, description="perp margin mode set at entry")
    recheck_hours: float = Field(8.0, gt=0, le=24 * 30, description="hours between leverage re-checks")

    @model_validator(mode="after")
    def _order(self) -> LeverageParams:
        if self.min_leverage > self.max_leverage:
            raise ValueError(f"min_leverage={self.min_leverage} must be <= max_leverage={self.max_leverage}")
        return self


class ActivationParams(_Frozen):
    """Hedge activation triggers: open/enlarge on a deviation from a baseline or a volume spike."""

    deviation_z: float | None = Field(None, gt=0, le=20, description="activate when |price - baseline| / baseline_std >= this z-score (analytics inputs 'baseline', 'baseline_std'); None = off")
    volume_spike: float | None = Field(None, gt=1, le=100, description="activate when bar volume >= this multiple of its average (analytics input 'volume_avg'); None = off")
    enlarge_ratio_step: float = Field(0.0, ge=0, le=1, description="while active in the market, a trigger raises the target ratio by this much (bounded by ratio_max)")


class RollParams(_Frozen):
    """The calendar roll of the hedge leg between the perpetual and a dated future of the same venue
    (docs/calendar-roll.md; the rule :func:`hedge_core.engine.calendar_roll.decide_roll`). Off by default;
    acts only where the venue lists a dated future of the asset (live OKX FUTURES, a paper venue given one)."""

    enabled: bool = Field(False, description="let the runner move the hedge leg to a dated future (and back) when the rule says so")
    margin_apr: float = Field(0.02, ge=0, le=1, description="carry advantage a move must show beyond its fees, annualised fraction (0.02 = 2 %/yr): hysteresis against flapping")
    exit_days: float = Field(2.0, ge=0, le=90, description="days before the future's expiry at which the leg returns to the perpetual (and no move onto it is made)")


class _StrategyBase(_Frozen):
    execution: ExecutionParams = ExecutionParams()
    exit: ExitParams = ExitParams()
    rebalance: RebalanceParams = RebalanceParams()
    guards: GuardParams = GuardParams()
    leverage: LeverageParams = LeverageParams()
    activation: ActivationParams = ActivationParams()
    taker_fee: float | None = Field(None, ge=0, le=0.01, description="override: one taker fee per fill on both legs used in entry decisions (fraction of notional); None = the venue's own spot and perp taker fees (exchange.costs)")
    slippage_rate: float | None = Field(None, ge=0, le=0.01, description="override: expected slippage per fill used in entry decisions (fraction of notional); None = the venue's (exchange.costs)")
    venue_costs: SkipJsonSchema[CostModel | None] = Field(None, exclude=True, description="the venue's cost model, attached by exchange.costs.resolve_costs where the hedge meets its venue (backtest, runner); not exported")


class CarryParams(_StrategyBase):
    """Funding carry: long spot / short perp when funding is positive (and the reverse if allowed)."""

    strategy: Literal["carry"] = "carry"
    notional: float = Field(10_000.0, gt=0, le=1e9, description="spot notional to put on at entry (quote)")
    min_funding_rate: float = Field(0.0001, ge=0, le=0.05, description="|funding rate| per interval needed to enter (0.0001 = 0.01 %/8h)")
    min_net_carry: float = Field(0.0, ge=-1, le=1, description="expected net carry over the holding horizon needed to enter (fraction of notional, after fees and basis)")
    expected_hold_intervals: int = Field(21, ge=1, le=10_000, description="funding intervals the entry decision assumes the hedge is held (21 x 8h = 7 days, the default exit.max_holding_hours; see docs/backtests.md 'Cost model')")
    max_entry_basis_bps: float = Field(50.0, ge=0, le=10_000, description="do not enter when |perp - spot| / spot exceeds this (bps)")
    allow_spot_short: bool = Field(False, description="negative funding: short spot on margin (borrow) and long perp; False = stay out")
    borrow_apr: float = Field(0.10, ge=0, le=5, description="interest on borrowed spot for a spot short (fraction per year)")
    enter_within_s_of_funding: float | None = Field(None, gt=0, le=86400, description="only enter within this many seconds before the next funding time; None = any time")
    exit: ExitParams = ExitParams(max_holding_hours=24 * 7, rearm=True)
    roll: RollParams = RollParams()


class CrossHedgeParams(_StrategyBase):
    """Spot holding of one asset hedged with another asset's perp, sized by beta."""

    strategy: Literal["cross"] = "cross"
    notional: float = Field(10_000.0, gt=0, le=1e9, description="spot notional to hold (quote)")
    beta_method: Literal["rolling", "ewma", "kalman"] = Field("ewma", description="estimator of beta (analytics input 'beta' is expected to come from it)")
    beta_window_hours: int = Field(168, ge=10, le=24 * 365, description="estimation window / EWMA span of beta (hours)")
    reestimate_hours: float = Field(24.0, gt=0, le=24 * 30, description="hours between beta re-estimates adopted as target ratio")
    min_correlation: float = Field(0.6, ge=0, le=1, description="do not enter when the analytics input 'correlation' is below this")
    rebalance: RebalanceParams = RebalanceParams(target_ratio=1.0, ratio_min=0.2, ratio_max=3.0)
    exit: ExitParams = ExitParams(max_holding_hours=24 * 7, funding_unfavourable_intervals=None)


class VolTierLoanParams(_StrategyBase):
    """Volatility-tiered delta-neutral book on a collateralised loan.

    The spot leg is the collateral already held (no spot order at entry); the perp leg shorts a
    fraction of it chosen from 24h-volatility tiers. Profit target PT = k x sigma_24h x notional,
    trailing stop gives back 30 % of peak; realised profit repays the loan; the reserve is
    deployed by LTV band.
    """

    strategy: Literal["voltier"] = "voltier"
    loan: float = Field(16_200.0, ge=0, le=1e9, description="loan outstanding at start, quote (USDT)")
    start_ltv: float = Field(0.50, gt=0, lt=1, description="LTV the book starts at: the collateral is sized from the first spot price as loan / (start_ltv x price); must be below ltv_warn")
    collateral_qty: float | None = Field(None, gt=0, le=1e6, description="override: collateral held, base units (BTC); None = sized from start_ltv and the first price (collateral_at)")
    loan_apr: float = Field(0.06, ge=0, le=5, description="loan interest, fraction per year")
    reserve: float = Field(10_000.0, ge=0, le=1e9, description="USDT reserve deployable as extra collateral")
    perp_leverage: float = Field(25.0, ge=1, le=125, description="perp leverage (x)")
    tier_uppers: tuple[float, ...] = Field((0.02, 0.04), description="sigma_24h tier edges (fraction per day, ascending): sigma < upper_i -> tier_ratios[i]")
    tier_ratios: tuple[float, ...] = Field((0.2, 0.4), description="hedge ratio of each tier below its edge")
    tier_top: float = Field(0.6, ge=0, le=2, description="hedge ratio when sigma_24h is at or above the last edge")
    pt_k: float = Field(1.5, gt=0, le=20, description="profit target = pt_k x sigma_24h x hedge notional")
    ltv_warn: float = Field(0.65, gt=0, lt=1, description="LTV above which the reserve is deployed")
    ltv_flatten: float = Field(0.85, gt=0, lt=1, description="LTV above which the hedge is flattened and an alert raised")
    exit: ExitParams = ExitParams(profit_target_pct=None, stop_loss_pct=None, trailing_giveback=0.3,
                                  max_holding_hours=None, funding_unfavourable_intervals=None, rearm=True)
    rebalance: RebalanceParams = RebalanceParams(target_ratio=1.0, ratio_min=0.0, ratio_max=1.0, drift_threshold=0.1)
    leverage: LeverageParams = LeverageParams(min_leverage=1, max_leverage=25)
    guards: GuardParams = GuardParams(liq_distance_reduce=0.025, liq_distance_close=0.012)

    @model_validator(mode="after")
    def _tiers(self) -> VolTierLoanParams:
        if len(self.tier_uppers) != len(self.tier_ratios):
            raise ValueError(f"tier_uppers {self.tier_uppers} and tier_ratios {self.tier_ratios} must have the same length")
        if list(self.tier_uppers) != sorted(set(self.tier_uppers)) or any(not 0 < u <= 10 for u in self.tier_uppers):
            raise ValueError(f"tier_uppers={self.tier_uppers} must be strictly increasing values in (0, 10]")
        if any(not 0 <= r <= 2 for r in self.tier_ratios):
            raise ValueError(f"tier_ratios={self.tier_ratios} must lie in [0, 2]")
        if self.ltv_warn >= self.ltv_flatten:
            raise ValueError(f"ltv_warn={self.ltv_warn} must be < ltv_flatten={self.ltv_flatten}")
        if self.collateral_qty is None and self.start_ltv >= self.ltv_warn:
            raise ValueError(f"start_ltv={self.start_ltv} must be < ltv_warn={self.ltv_warn} (a book starting in its "
                             "warning band deploys its reserve at once)")
        if self.collateral_qty is None and self.loan <= 0:
            raise ValueError(f"loan={self.loan} must be > 0 to size the collateral from start_ltv (or set collateral_qty)")
        return self

    def collateral_at(self, price: float) -> float:
        """Collateral held, base units: ``collateral_qty`` when set, else sized so the book starts at
        ``start_ltv`` at ``price`` (quote per base, the first spot price):
        ``loan / (start_ltv x price)`` (``money.collateral_for_ltv``).

        Raises
        ------
        InvalidInput
            ``price`` not a finite number > 0 (only when sizing from it).
        """
        if self.collateral_qty is not None:
            return float(self.collateral_qty)
        if isinstance(price, bool) or not isinstance(price, (int, float)) or not (math.isfinite(price) and price > 0):
            raise InvalidInput("price", price, "the first spot price, a finite number > 0 (quote per base), to size "
                               "the collateral from start_ltv")
        return money.collateral_for_ltv(float(self.loan), float(self.start_ltv), float(price))


class GridParams(_StrategyBase):
    """Grid hedge: a spot holding whose perp short grows one step per grid level the price falls."""

    strategy: Literal["grid"] = "grid"
    notional: float = Field(10_000.0, gt=0, le=1e9, description="spot notional held (quote)")
    levels: int = Field(5, ge=1, le=100, description="grid levels below the anchor price")
    spacing_sigma: float = Field(1.0, gt=0, le=20, description="level spacing in 24h sigmas (analytics input 'sigma_24h')")
    min_spacing_pct: float = Field(0.005, gt=0, le=0.5, description="lower bound of the level spacing (fraction of price)")
    support_levels: tuple[Annotated[float, Field(gt=0, le=1e9)], ...] = Field((), max_length=100, description="optional support/resistance prices (quote) used as extra levels")
    max_ratio: float = Field(1.0, gt=0, le=2, description="largest hedge ratio the grid builds (max position)")
    grid_stop_loss_pct: float = Field(0.05, gt=0, le=1, description="close everything when price is this fraction below the lowest level")
    var_limit: float | None = Field(None, gt=0, le=1e12, description="flatten when 1-day 99 % VaR of the net book exceeds this (quote)")
    max_drawdown: float | None = Field(None, gt=0, le=1e12, description="flatten when PnL is this far below its peak (quote)")
    rebalance: RebalanceParams = RebalanceParams(target_ratio=0.0, ratio_min=0.0, ratio_max=2.0, drift_threshold=0.05)
    exit: ExitParams = ExitParams(profit_target_pct=None, stop_loss_pct=None, max_holding_hours=None,
                                  funding_unfavourable_intervals=None)


#: The base type every strategy's parameters derive from (``params.strategy`` names the strategy).
StrategyParamsBase = _StrategyBase

StrategyParams = Annotated[CarryParams | CrossHedgeParams | VolTierLoanParams | GridParams,
                           Field(discriminator="strategy")]


def export(params: "StrategyParams", name: str, backtest: object = None, **provenance: object) -> object:
    """Export ``params`` as the next immutable version of ``name`` with provenance, in one call.

    ``hedge_core.params.models.export(params, name="carry-btc", backtest=run)`` from a notebook writes
    ``data/params/<name>/v<N>.toml`` and a ``param_sets`` row; see :func:`hedge_core.params.store.export`
    (imported here lazily: param_store imports these models).
    """
    from hedge_core.params.store import export as _export

    return _export(params, name, backtest, **provenance)  # type: ignore[arg-type]

