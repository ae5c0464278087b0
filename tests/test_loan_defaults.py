"""The loan book's collateral is sized from the price at its start (``VolTierLoanParams.start_ltv``).

The specification's fixed 0.27 BTC against 16,200 USDT starts at LTV 16,200 / (0.27 x ~60,000) ~ 1.0 on
2024 prices; the default now starts at ``start_ltv`` 0.50 at the first spot price.
"""

from __future__ import annotations

import pandas as pd
import pytest

from hedge_core.backtest.event import BacktestConfig, run_backtest
from hedge_core.backtest.timeline import Market
from hedge_core.engine.strategies.voltier import STRATEGY, new_voltier_hedge
from hedge_core.errors import InvalidInput
from hedge_core.exchange.paper.core import default_instruments
from hedge_core.params.models import VolTierLoanParams

T0 = pd.Timestamp("2024-03-01", tz="UTC")


def test_collateral_sized_for_the_start_ltv_hand_case():
    p = VolTierLoanParams()
    assert p.collateral_at(64_800.0) == pytest.approx(0.5, rel=1e-15)  # 16,200 / (0.5 x 64,800)
    assert VolTierLoanParams(start_ltv=0.3).collateral_at(54_000.0) == pytest.approx(1.0, rel=1e-15)  # 16,200 / 16,200
    assert VolTierLoanParams(collateral_qty=0.27).collateral_at(64_800.0) == 0.27  # the override wins
    inst = {i.symbol: i for i in default_instruments()}
    ctx = new_voltier_hedge("v", inst["BTC/USDT"], inst["BTC/USDT:USDT"], T0, 64_800.0, p)
    assert ctx.spot.qty == pytest.approx(0.5, rel=1e-15)
    assert STRATEGY.capital(p, 64_800.0) == pytest.approx(32_400.0, rel=1e-15)
    assert STRATEGY.spot_wallet(p, 64_800.0)["BTC"] == pytest.approx(0.5, rel=1e-15)


def test_bad_start_ltv_and_price_are_named():
    with pytest.raises(ValueError, match=r"start_ltv=0.7 must be < ltv_warn=0.65"):
        VolTierLoanParams(start_ltv=0.7)
    with pytest.raises(ValueError, match="start_ltv"):
        VolTierLoanParams(start_ltv=0.0)
    with pytest.raises(ValueError, match="loan=0.0 must be > 0"):
        VolTierLoanParams(loan=0.0)
    VolTierLoanParams(start_ltv=0.7, collateral_qty=1.0)  # explicit collateral: start_ltv unused
    with pytest.raises(InvalidInput, match="price"):
        VolTierLoanParams().collateral_at(float("nan"))
    with pytest.raises(InvalidInput, match="price"):
        VolTierLoanParams().collateral_at(0.0)


@pytest.mark.shared_data
@pytest.mark.slow
def test_default_loan_book_on_2024_prices_starts_at_half_ltv_and_trades(shared_data):
    from hedge_core.data.shared import load_tidy

    fr = {k: load_tidy("sample_2023-01_2024-06", "binance", "BTCUSDT", k, tf)
          for k, tf in (("spot", "1h"), ("perp", "1h"), ("mark", "1h"), ("funding", "8h"))}
    m = Market("binance", "BTC/USDT", "BTC/USDT:USDT", "1h", fr["spot"], fr["perp"], fr["mark"], fr["funding"])
    p = VolTierLoanParams()
    start, end = "2024-01-04T00:00Z", "2024-03-01T00:00Z"
    ev = run_backtest(p, m, start=start, end=end, config=BacktestConfig())
    eq = ev.equity
    first = eq["ltv"].first_valid_index()
    px0 = ev.market.first_spot_price
    qty = 16_200.0 / (0.5 * px0)  # hand: loan / (start LTV x first spot price)
    assert eq["ltv"].loc[first] == pytest.approx(16_200.0 / (qty * px0), rel=1e-3)
    assert eq["ltv"].loc[first] == pytest.approx(0.5, rel=1e-3)  # interest of the first hour only
    perp_fills = ev.fills[ev.fills["leg"] == "perp"]
    assert len(perp_fills) > 0  # the book hedges
