"""The specification-goals table: variants, target checks and markdown (short real window)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from backtest_goals import (  # noqa: E402 - bench/ is not a package
    TARGETS,
    goals_markdown,
    shared_market,
    spec_goals,
    variant_params,
)

pytestmark = pytest.mark.shared_data


def test_variant_params():
    d = variant_params("defaults", 20, 17_000.0)
    assert d.perp_leverage == 20 and d.collateral_qty == 0.27
    v = variant_params("ltv60", 15, 20_000.0)
    assert d.loan / (v.collateral_qty * 20_000.0) == pytest.approx(0.6, rel=1e-4)
    g = variant_params("ltv60_guards", 25, 20_000.0)
    assert g.guards.liq_distance_close < 1 / 25 - 0.004 < 1.0
    with pytest.raises(ValueError, match="variant"):
        variant_params("nope", 15, 1.0)


def test_goals_table_on_a_short_window(shared_data):
    m = shared_market().window("2023-01-04T00:00Z", "2023-02-15T00:00Z")
    t = spec_goals(m, start="2023-01-04T00:00Z", end="2023-02-15T00:00Z", leverages=(20,),
                   variants=("defaults", "ltv60"))
    assert list(t["variant"]) == ["defaults", "ltv60"]
    for c in TARGETS:
        assert c in t.columns
    # defaults: 0.27 BTC against 16,200 USDT at ~17k BTC is far above the emergency LTV -> flattened at once
    assert t.loc[0, "entries"] == 0 and t.loc[0, "ltv_below_65"] < 0.5
    assert t.loc[1, "ltv_below_65"] == pytest.approx(1.0) and t.loc[1, "entries"] >= 1
    md = goals_markdown(t)
    assert md.count("\n") == 3 and "20x" in md and ("✓" in md or "✗" in md)
    assert all(isinstance(x, (int, float)) and not math.isnan(x) for x in t["targets_met"])
