"""Research and parameter-set view models: sweep grid validation, pivot, a real backtest on the demo
market, version choices and provenance rows."""

from __future__ import annotations

import pandas as pd
import pytest

from hedge_core.params import store as param_store
from hedge_core.data.demo import seed_demo
from hedge_core.errors import InvalidInput
from hedge_core.params.models import CarryParams
from hedge_core.store import Store
from hedge_core.ui.views.params import choices, provenance_table
from hedge_core.ui.views.research import (
    MAX_SWEEP_RUNS, SweepResult, kpi_columns, numeric_fields, parse_values, run_sweep, set_field, sweep_grid, sweep_pivot,
)


def test_set_field_validates_and_names_the_field() -> None:
    p = CarryParams()
    assert set_field(p, "rebalance.drift_threshold", 0.03).rebalance.drift_threshold == 0.03
    assert "rebalance.drift_threshold" in numeric_fields(p) and "allow_spot_short" not in numeric_fields(p)
    with pytest.raises(InvalidInput) as e:
        set_field(p, "rebalance.drift_threshold", 5.0)  # le=1
    assert "drift_threshold" in e.value.field
    with pytest.raises(InvalidInput) as e:
        set_field(p, "nope.x", 1)
    assert e.value.field == "nope.x"


def test_grid_size_and_values() -> None:
    p = CarryParams()
    g = sweep_grid(p, "notional", [1000, 2000], "min_funding_rate", [1e-5, 1e-4, 2e-4])
    assert len(g) == 6 and g[0][0] == {"notional": 1000.0, "min_funding_rate": 1e-5}
    assert g[5][1].notional == 2000.0 and g[5][1].min_funding_rate == 2e-4
    with pytest.raises(InvalidInput) as e:
        sweep_grid(p, "notional", list(range(1, MAX_SWEEP_RUNS + 2)))
    assert e.value.field == "grid"
    assert parse_values("0.1, 0.2;0.3") == [0.1, 0.2, 0.3]
    with pytest.raises(InvalidInput) as e:
        parse_values("0.1, x", "X values")
    assert e.value.field == "X values"


def test_pivot_two_fields() -> None:
    t = pd.DataFrame({"a": [1.0, 2.0, 1.0, 2.0], "b": [5.0, 5.0, 6.0, 6.0], "k": [1.0, 2.0, 3.0, 4.0], "error": ""})
    pv = sweep_pivot(SweepResult(t, "a", "b"), "k")
    assert pv.loc[6.0, 2.0] == 4.0 and pv.loc[5.0, 1.0] == 1.0
    with pytest.raises(InvalidInput):
        sweep_pivot(SweepResult(t, "a", "b"), "zzz")


def test_small_sweep_on_demo_market(tmp_path) -> None:
    st = Store(tmp_path / "d.duckdb")
    seed_demo(st, days=8)
    p = CarryParams(notional=1000.0, min_funding_rate=1e-5, min_net_carry=-1.0)
    grid = sweep_grid(p, "notional", [1000.0, 3000.0])
    seen = []
    out = run_sweep(st, grid, venue="demo", spot_symbol="BTC/USDT", timeframe="1h",
                    start=pd.Timestamp("2024-01-04", tz="UTC"), end=pd.Timestamp("2024-01-08", tz="UTC"),
                    progress=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 2), (2, 2)]
    assert (out.table["error"] == "").all(), out.table["error"].tolist()
    assert "net_pnl" in kpi_columns(out) and "notional" not in kpi_columns(out)
    # a bigger book trades more: its fees-driven net PnL differs (3x size, not identical runs)
    assert out.table["net_pnl"].iloc[0] != out.table["net_pnl"].iloc[1]


def test_choices_and_provenance(tmp_path) -> None:
    root = tmp_path / "params"
    param_store.export(CarryParams(), "a", created_from="test", root=root, kpis={"sharpe": 2.0}, index=False)
    param_store.export(CarryParams(notional=5.0), "a", created_from="test", root=root, index=False)
    (root / "bad").mkdir()
    (root / "bad" / "v1.toml").write_text("not toml [")
    c = choices(param_store.list_sets(root))
    assert c["ref"].tolist() == ["a@2", "a@1"] and "sharpe=2" in c.loc[1, "label"]
    prov = provenance_table(param_store.load("a@1", root=root))
    assert {"status", "created_from", "code_version"} <= set(prov["field"]) and "kpis" not in set(prov["field"])
    assert choices(pd.DataFrame()).empty


def test_default_sweep_varies_what_the_strategy_trades_on(tmp_path) -> None:
    from hedge_core.params.models import CrossHedgeParams, GridParams
    from hedge_core.ui.views.research import DEFAULT_SWEEPS, default_sweep

    for p in (CarryParams(), CrossHedgeParams(), GridParams()):
        field, values = default_sweep(p)
        assert field == DEFAULT_SWEEPS[p.strategy][0] and field in numeric_fields(p)
        sweep_grid(p, field, parse_values(values))  # every proposed value is valid for the model
    # on the demo market the default carry sweep gives cells that differ (the old default, a drift
    # threshold, gave three identical cells: the carry barely rebalances)
    st = Store(tmp_path / "d.duckdb")
    seed_demo(st, days=20)
    p = CarryParams(notional=1000.0)
    field, values = default_sweep(p)
    out = run_sweep(st, sweep_grid(p, field, parse_values(values)), venue="demo", spot_symbol="BTC/USDT",
                    timeframe="1h", start=pd.Timestamp("2024-01-02", tz="UTC"), end=pd.Timestamp("2024-01-20", tz="UTC"))
    assert (out.table["error"] == "").all(), out.table["error"].tolist()
    assert out.table["net_pnl"].round(9).nunique() > 1, out.table[[field, "net_pnl"]]
