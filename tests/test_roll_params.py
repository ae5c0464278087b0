"""The opt-in ``roll`` section of the carry parameters (hedge_core.params.models.RollParams): off by default,
bounds named in the error, round trip through the discriminated union."""

from __future__ import annotations

import pydantic
import pytest

from hedge_core.params.models import CarryParams, RollParams, StrategyParams


def test_off_by_default_with_the_rules_defaults():
    r = CarryParams().roll
    assert (r.enabled, r.margin_apr, r.exit_days) == (False, 0.02, 2.0)


@pytest.mark.parametrize("field, value", [("margin_apr", -0.01), ("margin_apr", 1.5), ("exit_days", -1.0),
                                          ("exit_days", 91.0), ("enabled", "maybe")])
def test_bad_values_name_the_field(field, value):
    with pytest.raises(pydantic.ValidationError) as e:
        CarryParams(roll={field: value})
    assert e.value.errors()[0]["loc"] == ("roll", field)


def test_unknown_key_refused_and_round_trip():
    with pytest.raises(pydantic.ValidationError) as e:
        RollParams(enable=True)
    assert "enable" in str(e.value)
    p = CarryParams(roll={"enabled": True, "margin_apr": 0.03, "exit_days": 3})
    back = pydantic.TypeAdapter(StrategyParams).validate_python(p.model_dump())
    assert back.roll == RollParams(enabled=True, margin_apr=0.03, exit_days=3.0)
