"""A loan book's loan in the runner's journal (hedge_core.runner.loan_journal): which step changes
are events (everything but interest accrual), a row carries the whole state and reads back to it,
and a journal without its start row is refused, naming the table."""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import pytest

from hedge_core import ltv as ltvmod
from hedge_core.engine.strategies.voltier import new_voltier_hedge
from hedge_core.errors import InvalidInput
from hedge_core.exchange.paper.core import default_instruments
from hedge_core.params.models import VolTierLoanParams
from hedge_core.runner.loan_journal import loan_event, loan_from_row, loan_origin, loan_row, reserve_row

INST = {i.symbol: i for i in default_instruments()}
T0 = pd.Timestamp("2024-01-03T00:00Z")
P = VolTierLoanParams(loan=16_200.0, loan_apr=0.06, reserve=10_000.0, collateral_qty=0.6)


def _ctx(price: float = 40_000.0):
    return new_voltier_hedge("v", INST["BTC/USDT"], INST["BTC/USDT:USDT"], T0, price, P)


def test_interest_accrual_alone_is_not_an_event_and_accrues_by_hand() -> None:
    book = _ctx().loan
    later = book.accrued_to(T0 + pd.Timedelta(days=10))
    # 16,200 x 6 % x 10 / 365, by hand
    assert later.loan.accrued_interest == pytest.approx(26.630136986301370, rel=1e-12)
    assert loan_event(book, later, ratio_before=0.4, ratio_after=0.4) is None
    assert loan_event(None, book) == "start"


def test_each_kind_of_change_is_its_own_event() -> None:
    book = _ctx().loan.accrued_to(T0 + pd.Timedelta(days=1))
    loan, _ = ltvmod.repay_from_profit(book.loan, 1_000.0)
    reserve = replace(book, loan=loan, reserve_left=9_000.0, reserve_deployed=1_000.0)
    assert loan_event(book, reserve) == "reserve"
    repaid = replace(book, loan=loan, repaid=1_000.0)
    assert loan_event(book, repaid) == "repay"
    assert loan_event(book, replace(book, booked=-12.5)) == "booked"
    assert loan_event(book, book, ratio_before=0.2, ratio_after=0.4) == "cycle"
    assert loan_event(book, book, ratio_before=0.4, ratio_after=0.4, target_before=None, target_after=300.0) == "cycle"
    assert loan_event(book, book, ratio_before=math.nan, ratio_after=math.nan) is None


def test_a_row_carries_the_whole_loan_and_reads_back_to_it() -> None:
    ctx = _ctx()
    t = T0 + pd.Timedelta(hours=5)
    book = ctx.loan.accrued_to(t)
    loan, rep = ltvmod.repay_from_profit(book.loan, 500.0)
    book = replace(book, loan=loan, reserve_left=9_500.0, reserve_deployed=500.0, booked=3.0, repaid=7.0)
    ctx = replace(ctx, loan=book, target_ratio=0.4, profit_target=250.0, spot_price=40_000.0)
    row = loan_row(ctx, "reserve", t, first_price=40_000.0, started_at=T0)
    assert row["collateral_qty"] == 0.6 and row["first_price"] == 40_000.0 and row["started_at"] == T0
    assert row["initial_principal"] == 16_200.0 and row["as_of"] == t
    # 5 h of interest on 16,200 at 6 %: 11.0958904109589 (hand), paid first out of the 500
    assert rep.interest == pytest.approx(16_200.0 * 0.06 * 5 / (365 * 24), rel=1e-12)
    assert row["principal"] == pytest.approx(16_200.0 - (500.0 - rep.interest), rel=1e-15)
    assert loan_from_row(row) == book
    dep = reserve_row(_ctx().loan, ctx, t)
    # LTV before the deployment: 16,200 / (0.6 x 40,000) = 0.675
    assert dep["ltv"] == pytest.approx(0.675, rel=1e-12) and dep["amount"] == 500.0 and dep["cumulative"] == 500.0


def test_recovery_needs_the_start_row() -> None:
    ctx = _ctx()
    with pytest.raises(InvalidInput, match="loan_events"):
        loan_origin(pd.DataFrame())
    rows = pd.DataFrame([{"seq": 0, **loan_row(ctx, "cycle", T0, first_price=40_000.0, started_at=T0)}])
    with pytest.raises(InvalidInput, match="start"):
        loan_origin(rows)
    rows = pd.DataFrame([{"seq": i, **loan_row(ctx, ev, T0 + pd.Timedelta(hours=i), first_price=40_000.0,
                                               started_at=T0)} for i, ev in ((1, "reserve"), (0, "start"))])
    started, price, last = loan_origin(rows)
    assert started == T0 and price == 40_000.0 and last["event"] == "reserve"
