"""THE scalar money formulas: every place that turns prices, quantities and rates into money calls these.

One source, two compiled forms. Each function is written once, in this package, and decorated with
:func:`hedge_core.lazyjit.jitable` (numba's ``register_jitable``, applied when numba is first
imported, so a process that never compiles a kernel never imports numba): called from Python it is
the plain Python function (no dispatch overhead: the event engine, the paper venue, the ledger and
the analytics call it per fill or per update), called from an ``@njit`` kernel (``hedge_core.backtest.fast``) numba compiles it INTO the
kernel (inlined by LLVM, so the fast path pays nothing for the call). There is no hand-written
second copy anywhere: the engine and the fast path agree because they run the same lines, and
each function meets an independent reference in ``tests/test_money.py`` (hand-computed cases,
Binance's documented examples, slow reference formulas).

Because the Python form is duck-typed, the element-wise ones (:func:`funding_payment`,
:func:`loan_to_value`, :func:`unrealized_pnl`) also take numpy arrays (``analytics.funding``,
``ltv.ltv``).

Conventions (float64; quote = USDT, base = the coin)
----------------------------------------------------
- ``qty`` signed base (+ long / - short) where a position is meant; an executed quantity ``qty``
  is > 0 with ``sign`` +1 buy / -1 sell.
- Prices quote per base; rates fractions (0.0005 = 0.05 %); ``bps`` basis points (1e-4).
- Fees >= 0 paid; slippage cost >= 0 is a cost (< 0 a price improvement); funding + received /
  - paid; realised PnL + profit.
- Bracket tables (Binance USDⓈ-M "Leverage & Margin") are passed as parallel sequences
  ``floors, caps, mmrs, cums, maxlevs`` (tuples from Python, arrays from kernels); the table
  itself lives in :mod:`hedge_core.analytics.risk`.
- Nothing here validates: callers validate their inputs (and raise ``InvalidInput``) first.

Changing a formula here changes the kernels too, but numba's on-disk cache of a kernel does not
see a change in this package: ``hedge_core.backtest.fast`` checks a hash of its files at import and drops
its stale compiled kernels (see ``hedge_core.backtest.fast.cache``).

Layout: :mod:`~hedge_core.money.execution` (fills, fees, positions, margin, lots),
:mod:`~hedge_core.money.perp` (funding, carry costs, maintenance, liquidation, leverage),
:mod:`~hedge_core.money.hedge` (perp target, hedge ratio, drift), :mod:`~hedge_core.money.loan`
(interest, LTV, repayment, reserve). Import the package (``from hedge_core import money``) and
call ``money.<name>``: kernels resolve those names at compile time.
"""

from __future__ import annotations

from hedge_core.money import execution, hedge, loan, perp
from hedge_core.money.execution import (
    QTY_EPS,
    slippage_bps,
    fill_price,
    slippage_cost,
    fee,
    buy_cost_with_fee,
    spot_quote_delta,
    trade_cash_flow,
    fill_position,
    isolated_margin,
    isolated_margin_after_fill,
    unrealized_pnl,
    lot_floor,
    tick_round,
    meets_minimums,
)
from hedge_core.money.perp import (
    HOURS_PER_YEAR,
    FLAT_MMR,
    funding_payment,
    funding_position,
    funding_apr,
    funding_pay_apr,
    basis,
    round_trip_cost,
    pair_round_trip_cost,
    expected_net_carry,
    bracket_index,
    maintenance_margin,
    liquidation_price_in_bracket,
    liquidation_price,
    liquidation_distance,
    max_notional,
    clip,
    required_buffer,
    leverage_for_buffer,
    whole_leverage,
    choose_leverage,
    flat_liquidation_move,
)
from hedge_core.money.hedge import (
    perp_target,
    hedge_ratio,
    hedge_drift,
)
from hedge_core.money.loan import (
    SECONDS_PER_YEAR,
    simple_interest,
    loan_to_value,
    collateral_for_ltv,
    repayment_split,
    reserve_deployment,
)

__all__ = [*execution.__all__, *perp.__all__, *hedge.__all__, *loan.__all__]
