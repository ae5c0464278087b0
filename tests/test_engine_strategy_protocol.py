"""The Strategy protocol: registry objects, the calls that replaced ``== "voltier"``, the typed
loan state (and old untyped layouts still loading), and the docs' worked example."""

from __future__ import annotations

import math
import re
from pathlib import Path
from types import MappingProxyType

import pandas as pd
import pytest

from hedge_core import ltv as ltvmod
from hedge_core.backtest.event import capital_of, initial_balances, run_backtest
from hedge_core.backtest.kpis import loan_state, ltv_of
from hedge_core.backtest.timeline import market_from_frames
from hedge_core.data.demo import generate_demo_market
from hedge_core.engine import MarketUpdate, PlaceOrder, State, new_hedge, step
from hedge_core.engine.loan_state import LOAN_KEYS, LoanState
from hedge_core.engine.strategies import (
    STRATEGIES,
    Strategy,
    StrategyBase,
    register,
    strategy_for,
    unregister,
)
from hedge_core.engine.strategies.voltier import new_voltier_hedge
from hedge_core.errors import InvalidInput
from hedge_core.exchange.paper.core import default_instruments
from hedge_core.params.models import (
    CarryParams,
    CrossHedgeParams,
    GridParams,
    LeverageParams,
    VolTierLoanParams,
)

ROOT = Path(__file__).resolve().parents[1]
INST = {i.symbol: i for i in default_instruments()}
SPOT, PERP = INST["BTC/USDT"], INST["BTC/USDT:USDT"]
T0 = pd.Timestamp("2024-01-01T00:00Z")
H = pd.Timedelta(hours=1)
BUILTIN = {"carry": CarryParams(), "cross": CrossHedgeParams(), "grid": GridParams(), "voltier": VolTierLoanParams()}


def mkt(ts, spot, **an):
    return MarketUpdate(ts=ts, spot=spot, perp=spot, funding_rate=0.0001, analytics=MappingProxyType(an))


# ---- the registry holds protocol objects -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_builtin_strategy_satisfies_the_protocol(name):
    s = strategy_for(BUILTIN[name])
    assert isinstance(s, Strategy) and s.name == name and STRATEGIES[name] is s
    assert s.fast_kernel in ("hedge", "voltier")


def test_unknown_strategy_names_the_registered_ones():
    class P:
        strategy = "nope"

    with pytest.raises(InvalidInput, match="params.strategy") as e:
        strategy_for(P())
    assert "carry" in str(e.value) and "voltier" in str(e.value)


def test_register_refuses_non_strategies_and_taken_names():
    with pytest.raises(InvalidInput, match="strategy"):
        register(object())  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="strategy.name"):
        register(strategy_for(CarryParams()))


def test_no_strategy_name_branches_left_outside_the_fast_path():
    """Every ``params.strategy == "..."`` / ``== "voltier"`` special case is a protocol call now.
    Allowed: the strategies' own modules, the fast path's kernel choice (``fast/run.py``: by the
    strategy's ``fast_kernel`` name) and entry signals (``fast/signals.py``: per strategy), and the
    params parser (it maps names to params classes)."""
    pat = re.compile(r"""strategy\W{0,12}\s*[!=]=\s*["']|[!=]=\s*["']voltier["']""")
    allowed = ("hedge_core/backtest/fast/signals.py", "hedge_core/backtest/fast/run.py", "hedge_core/engine/strategies/",
               "hedge_core/params/validate.py")
    hits = []
    for f in sorted((ROOT / "hedge_core").rglob("*.py")):
        rel = f.relative_to(ROOT).as_posix()
        if rel.startswith(allowed):
            continue
        hits += [f"{rel}:{n}: {line.strip()}" for n, line in enumerate(f.read_text().splitlines(), 1)
                 if pat.search(line)]
    assert hits == []


# ---- what each protocol member answers ----------------------------------------------------------------


def test_capital_and_balances_by_strategy():
    carry = CarryParams(notional=5_000.0, leverage=LeverageParams(min_leverage=2, max_leverage=5))
    assert capital_of(carry, 40_000.0) == 5_000.0
    # perp: 1.5 x notional x max(ratio_max 1.2, target 1, 1) / min leverage 2
    assert initial_balances(carry, 40_000.0) == {"spot": {"USDT": 10_000.0}, "perp": {"USDT": 5_000.0 * 1.2 * 1.5 / 2}}
    v = VolTierLoanParams(collateral_qty=0.5)
    assert capital_of(v, 40_000.0) == 20_000.0  # the collateral's value, not a notional
    b = initial_balances(v, 40_000.0)
    assert b["spot"] == {"BTC": 0.5, "USDT": 1.0} and b["perp"]["USDT"] == pytest.approx(20_000.0 * 1.0 * 1.5 / 1)


def test_new_context_gives_the_loan_book_its_collateral_and_loan():
    v = VolTierLoanParams(collateral_qty=0.5, loan=10_000.0, reserve=3_000.0)
    ctx = strategy_for(v).new_context("v", SPOT, PERP, T0, 40_000.0, v)
    assert ctx.collateral_spot and ctx.spot.qty == 0.5 and ctx.spot.avg_entry == 40_000.0
    assert ctx.loan == LoanState(loan=ltvmod.Loan(10_000.0, v.loan_apr, T0), reserve_left=3_000.0)
    c = strategy_for(CarryParams()).new_context("c", SPOT, PERP, T0, 40_000.0, CarryParams())
    assert c.loan is None and c.spot.qty == 0.0 and not c.collateral_spot


def test_loan_figures_accrue_to_t_and_are_nan_without_a_loan():
    v = VolTierLoanParams(collateral_qty=0.5, loan=10_000.0, loan_apr=0.0876)
    ctx = new_voltier_hedge("v", SPOT, PERP, T0, 40_000.0, v)
    t = T0 + pd.Timedelta(days=10)
    out, repaid = loan_state(v, ctx, t)
    assert out == pytest.approx(10_000.0 * (1 + 0.0876 * 10 / 365)) and repaid == 0.0
    assert ltv_of(v, ctx, t, price=40_000.0) == pytest.approx(out / 20_000.0)
    carry_ctx = new_hedge("c", "carry", SPOT, PERP, T0)
    assert all(math.isnan(x) for x in loan_state(CarryParams(), carry_ctx, t))
    assert math.isnan(ltv_of(CarryParams(), carry_ctx, t, price=40_000.0))


def test_extra_kpis_of_the_loan_book_and_none_for_others():
    v = VolTierLoanParams(loan=10_000.0, loan_apr=0.0365)
    ctx = new_voltier_hedge("v", SPOT, PERP, T0, 40_000.0, v)
    k = strategy_for(v).extra_kpis(ctx, T0 + pd.Timedelta(days=100), v)
    assert k["loan_interest"] == pytest.approx(10_000.0 * 0.0365 * 100 / 365)
    assert k["loan_outstanding"] == pytest.approx(10_000.0 + k["loan_interest"])
    assert k["reserve_deployed"] == 0.0 and k["loan_repaid_from_profit"] == 0.0
    assert strategy_for(CarryParams()).extra_kpis(new_hedge("c", "carry", SPOT, PERP, T0), T0, CarryParams()) == {}


class _Fixed(StrategyBase):
    """Enters at once with a fixed leverage; whether the engine may lower it is the flag under test."""

    def __init__(self, name: str, rechecks: bool) -> None:
        self.name = name  # type: ignore[misc]
        self.rechecks_leverage = rechecks  # type: ignore[misc]

    def decide(self, ctx, market, analytics, params):
        from hedge_core.engine.strategies.base import HOLD, Intent

        if ctx.state is not State.ANALYZING_MARKET:
            return HOLD
        return Intent(enter=True, target_spot_qty=0.1, target_ratio=1.0, leverage=3.0)


@pytest.mark.parametrize("rechecks", [True, False])
def test_rechecks_leverage_decides_whether_the_engine_lowers_leverage(rechecks):
    from hedge_core.engine import FillEvent
    from hedge_core.types import Fill

    name = f"fixed_{rechecks}"
    register(_Fixed(name, rechecks))
    try:
        p = CarryParams(leverage=LeverageParams(min_leverage=1, max_leverage=20, recheck_hours=1))
        p = p.model_copy(update={"strategy": name})
        ctx = new_hedge("f", name, SPOT, PERP, T0)
        ctx, acts = step(ctx, mkt(T0, 40_000.0), p)
        for k in range(3):  # spot, then perp
            for a in [a for a in acts if isinstance(a, PlaceOrder)]:
                f = Fill("t" + a.request.client_order_id, "o", a.request.client_order_id, a.request.symbol,
                         a.request.side, a.request.qty, 40_000.0, 0.0, T0)
                ctx, acts = step(ctx, FillEvent(f, a.leg), p)
        assert ctx.state is State.MONITORING_POSITIONS and ctx.leverage == 3.0
        ctx, _ = step(ctx, mkt(T0 + 2 * H, 40_000.0, sigma_24h=0.2), p)  # very volatile: the rule says 1x
        assert ctx.state is State.MONITORING_POSITIONS and (ctx.leverage < 3.0) is rechecks
    finally:
        unregister(name)


# ---- the typed loan state and old layouts ---------------------------------------------------------------


def test_old_untyped_loan_layout_loads_into_loan_state():
    loan = ltvmod.Loan(16_200.0, 0.06, T0, accrued_interest=12.5)
    old = {"loan": loan, "reserve_left": 8_500.0, "reserve_deployed": 1_500.0, "booked": 40.0, "repaid": 30.0,
           "levels": (1.0, 2.0)}
    ctx = new_hedge("v", "voltier", SPOT, PERP, T0, spot_qty=0.27, spot_entry_price=60_000.0, collateral_spot=True,
                    target_ratio=0.0, strategy_state=old)
    assert ctx.loan == LoanState(loan, 8_500.0, 1_500.0, 40.0, 30.0)
    assert dict(ctx.strategy_state) == {"levels": (1.0, 2.0)}  # no loan keys left untyped
    assert ctx.loan.as_mapping() == {k: old[k] for k in LOAN_KEYS}


def test_old_layout_context_runs_like_a_new_one():
    p = VolTierLoanParams(collateral_qty=0.5, loan=12_000.0, reserve=4_000.0)
    new = new_voltier_hedge("v", SPOT, PERP, T0, 60_000.0, p)
    old = new_hedge("v", "voltier", SPOT, PERP, T0, spot_qty=0.5, spot_entry_price=60_000.0, collateral_spot=True,
                    target_ratio=0.0, strategy_state=new.loan.as_mapping())
    assert old == new
    price = 12_000.0 / (0.5 * 0.70)  # LTV 70 %: reserve deployed by band
    a, acts_a = step(new, mkt(T0 + H, price), p)
    b, acts_b = step(old, mkt(T0 + H, price), p)
    assert a == b and acts_a == acts_b and a.loan.reserve_deployed > 0


def test_from_mapping_bare_number_and_bad_types():
    s = LoanState.from_mapping({"loan": 1_000.0}, as_of=T0, apr=0.05, reserve=500.0)
    assert s.loan == ltvmod.Loan(1_000.0, 0.05, T0) and s.reserve_left == 500.0
    with pytest.raises(InvalidInput, match="strategy_state.loan"):
        LoanState.from_mapping({"loan": 1_000.0})  # a number needs its accrual start
    with pytest.raises(InvalidInput, match="strategy_state.loan"):
        LoanState.from_mapping({"loan": "16200"}, as_of=T0)


def test_loan_state_accrual_matches_ltv_module():
    s = LoanState(ltvmod.Loan(10_000.0, 0.1, T0), 0.0)
    t = T0 + pd.Timedelta(days=30)
    assert s.accrued_to(t).loan == ltvmod.accrue(s.loan, t)
    assert s.accrued_to(T0 - H) is s  # never backwards
    assert s.outstanding_at(t) == pytest.approx(ltvmod.accrue(s.loan, t).outstanding)


# ---- the docs' worked example ---------------------------------------------------------------------------


def _doc_example() -> str:
    text = (ROOT / "docs" / "strategies.md").read_text()
    part = text.split("## Adding a strategy: a worked example", 1)[1]
    return re.search(r"```python\n(.*?)```", part, re.DOTALL).group(1)


def test_docs_worked_example_runs():
    ns: dict = {}
    exec(compile(_doc_example(), "docs/strategies.md", "exec", dont_inherit=True), ns)  # noqa: S102 - our own documentation
    try:
        p = ns["AlwaysHedgedParams"](notional=2_000.0)
        assert strategy_for(p).name == "always_hedged"
        ctx = new_hedge("d", "always_hedged", SPOT, PERP, T0)
        ctx, acts = step(ctx, mkt(T0, 40_000.0), p)
        assert ctx.state is State.OPENING_SPOT_POSITION
        assert [(a.leg, a.request.qty) for a in acts if isinstance(a, PlaceOrder)] == [("spot", pytest.approx(0.05))]
        demo = market_from_frames(generate_demo_market(days=5, timeframe="1h", seed=3, assets=("BTC",)))
        r = run_backtest(p, demo)
        assert r.capital == 2_000.0 and r.kpis["entries"] >= 1  # capital and wallets from StrategyBase
        hedged = r.transitions[r.transitions["trigger_name"] == "HEDGE_FILLED"]
        assert len(hedged) >= 1
        at = r.equity.loc[hedged["ts"].iloc[0]]
        assert abs(at["hedge_ratio"] - 1.0) <= p.rebalance.drift_threshold and at["spot_qty"] * at["spot_price"] == pytest.approx(
            2_000.0, rel=0.01)
    finally:
        unregister("always_hedged")


def test_runner_summary_reads_the_typed_loan_with_the_old_keys():
    """The panel / hedge_watch read ``summary()["loan"]``: same keys as before, from ``ctx.loan``."""
    from types import SimpleNamespace

    from hedge_core.runner.hedge import HedgeTask

    p = VolTierLoanParams(collateral_qty=0.5, loan=12_000.0, reserve=4_000.0)
    ctx = new_voltier_hedge("v", SPOT, PERP, T0, 60_000.0, p)
    ctx, _ = step(ctx, mkt(T0 + H, 12_000.0 / (0.5 * 0.70)), p)  # LTV 70 %: reserve deployed by band
    me = SimpleNamespace(params=p, alerts=[], spec=SimpleNamespace(venue="paper"), started_at=T0)
    loan = HedgeTask._panel_fields(me, ctx)["loan"]
    assert loan["outstanding"] == pytest.approx(ctx.loan.outstanding)
    assert ctx.loan.reserve_deployed > 0 and loan["reserve_deployed"] == pytest.approx(ctx.loan.reserve_deployed)
    assert loan["reserve_left"] == pytest.approx(4_000.0 - ctx.loan.reserve_deployed)
    assert loan["ltv"] == pytest.approx(ctx.loan.outstanding / (0.5 * ctx.spot_price))
    assert {"accrued_interest", "collateral_qty", "band", "bands"} <= set(loan)
    assert "loan" not in HedgeTask._panel_fields(SimpleNamespace(params=CarryParams(), alerts=[],
                                                                  spec=SimpleNamespace(venue="paper"), started_at=T0),
                                                  new_hedge("c", "carry", SPOT, PERP, T0))
