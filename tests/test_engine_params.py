"""Strategy parameter models: spec defaults, frozen, extra fields refused, bounds named."""

from __future__ import annotations

import pydantic
import pytest
from pydantic import TypeAdapter

from hedge_core.params.models import (
    CarryParams,
    CrossHedgeParams,
    ExitParams,
    GridParams,
    RebalanceParams,
    StrategyParams,
    VolTierLoanParams,
)


def test_specification_defaults():
    p = CarryParams()
    assert p.rebalance.drift_threshold == 0.05
    e = ExitParams()
    assert e.stop_loss_pct == 0.02 and e.profit_target_pct == 0.01 and e.max_holding_hours == 24 and not e.rearm
    # the carry's own: a 7-day hold (21 x 8h) that the entry filter assumes, re-armed after each exit
    assert p.exit.stop_loss_pct == 0.02 and p.exit.profit_target_pct == 0.01
    assert (p.exit.max_holding_hours, p.exit.rearm, p.expected_hold_intervals) == (168, True, 21)
    assert (p.rebalance.ratio_min, p.rebalance.target_ratio, p.rebalance.ratio_max) == (0.8, 1.0, 1.2)
    assert p.allow_spot_short is False
    v = VolTierLoanParams()
    assert (v.loan, v.loan_apr, v.reserve, v.perp_leverage, v.pt_k) == (16_200, 0.06, 10_000, 25, 1.5)
    assert v.collateral_qty is None and v.start_ltv == 0.5  # collateral sized from the first price
    assert v.exit.trailing_giveback == 0.3


def test_frozen_and_extra_forbidden():
    p = CarryParams()
    with pytest.raises(pydantic.ValidationError):
        p.notional = 5.0  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError) as ei:
        CarryParams(notionl=5.0)
    assert "notionl" in str(ei.value)


@pytest.mark.parametrize("model,field,value", [
    (CarryParams, "notional", 0.0), (CarryParams, "min_funding_rate", -0.1), (CarryParams, "taker_fee", 0.5),
    (ExitParams, "stop_loss_pct", 0.0), (ExitParams, "trailing_giveback", 1.0),
    (RebalanceParams, "drift_threshold", 0.0), (GridParams, "levels", 0), (VolTierLoanParams, "perp_leverage", 200),
])
def test_bounds_name_the_field(model, field, value):
    with pytest.raises(pydantic.ValidationError) as ei:
        model(**{field: value})
    assert field in str(ei.value)


def test_cross_field_rules():
    with pytest.raises(pydantic.ValidationError, match="target_ratio"):
        RebalanceParams(target_ratio=1.5)
    with pytest.raises(pydantic.ValidationError, match="tier_uppers"):
        VolTierLoanParams(tier_uppers=(0.04, 0.02))
    with pytest.raises(pydantic.ValidationError, match="ltv_warn"):
        VolTierLoanParams(ltv_warn=0.9, ltv_flatten=0.85)


def test_round_trip_through_the_discriminated_union():
    ta = TypeAdapter(StrategyParams)
    for p in (CarryParams(notional=123.0), CrossHedgeParams(), VolTierLoanParams(), GridParams(levels=3)):
        back = ta.validate_python(p.model_dump())
        assert back == p and type(back) is type(p)
    assert ta.validate_json(CarryParams().model_dump_json()) == CarryParams()
