"""Rule-based analyzer and the analyzer's configuration: hand-computed cases."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hedge_core.advice import (
    LLMAnalyzer,
    Opinion,
    RiskInput,
    RuleAnalyzer,
    advisor_from_env,
)
from hedge_core.advice.config import interval_from_env
from hedge_core.errors import InvalidInput

GUARDS = {"liq_distance_reduce": 0.15, "liq_distance_close": 0.08}


def op(**kw: object) -> Opinion:
    return RuleAnalyzer().analyze(RiskInput(hedge_id="h1", **kw))  # type: ignore[arg-type]


def test_quiet_hedge_is_ok() -> None:
    o = op(liq_distance=0.5, day_pnl=10.0, daily_loss_limit=1000.0, drift=0.01, funding_rate=0.0001,
           perp_qty=-1.0, leverage=2.0, **GUARDS)
    assert (o.score, o.level, o.action, o.findings, o.analyzer) == (0, "ok", "none", [], "rules")


def test_liquidation_levels() -> None:
    assert (op(liq_distance=0.25, **GUARDS).score, op(liq_distance=0.25, **GUARDS).level) == (15, "ok")
    r = op(liq_distance=0.12, **GUARDS)
    assert (r.score, r.level, r.action) == (35, "act", "reduce")
    c = op(liq_distance=0.08, **GUARDS)  # at the close level: flatten
    assert (c.score, c.level, c.action) == (60, "act", "flatten")
    assert "8.0% away" in c.findings[0]
    assert op(liq_distance=0.31, **GUARDS).score == 0  # beyond 2 x reduce


def test_daily_loss_fractions() -> None:
    assert op(day_pnl=-400.0, daily_loss_limit=1000.0).score == 0
    half = op(day_pnl=-500.0, daily_loss_limit=1000.0)
    assert (half.score, half.level, half.action) == (15, "ok", "none")
    high = op(day_pnl=-750.0, daily_loss_limit=1000.0)
    assert (high.score, high.action, high.level) == (35, "pause", "act")
    hit = op(day_pnl=-1000.0, daily_loss_limit=1000.0)
    assert (hit.score, hit.action) == (60, "flatten")
    assert op(day_pnl=-5000.0, daily_loss_limit=None).score == 0  # limit off


def test_drift_funding_leverage_add_up_to_watch() -> None:
    o = op(drift=-0.12, funding_rate=-0.0006, perp_qty=-2.0, leverage=12.0)  # short pays negative funding
    assert (o.score, o.level, o.action) == (20 + 15 + 10, "watch", "none")
    assert len(o.findings) == 3
    assert op(funding_rate=-0.002, perp_qty=2.0).score == 0  # a long receives negative funding
    assert op(funding_rate=0.0012, perp_qty=2.0).score == 25  # a long pays positive funding


def test_degraded_and_ltv_and_cap() -> None:
    d = op(degraded={"venue": "ticker stale", "records": "behind", "third": "not counted"})
    assert (d.score, d.action, d.level) == (40, "pause", "act")
    assert d.findings[0].startswith("DEGRADED venue")
    assert op(ltv_band="WARNING", ltv=0.7).score == 20
    assert op(ltv_band="CRITICAL").action == "reduce"
    worst = op(liq_distance=0.05, day_pnl=-2000.0, daily_loss_limit=1000.0, ltv_band="EMERGENCY", **GUARDS)
    assert (worst.score, worst.action) == (100, "flatten")  # 180 capped


def test_from_summary_reads_the_runner_fields() -> None:
    s = {"hedge_id": "h", "mode": "paper", "state": "State.HEDGED", "pnl": 12.0, "day_pnl": -3.0,
         "daily_loss_limit": None, "liq_distance": float("nan"), "liq_distance_reduce": 0.15,
         "liq_distance_close": 0.08, "drift": 0.02, "funding_rate": 0.0001, "perp_qty": -1.0, "leverage": 3.0,
         "degraded": {"venue": "down"}, "active_guards": ["daily_loss"], "clock_now": "2026-01-01",
         "loan": {"ltv": 0.5, "band": "SAFE"}}
    x = RiskInput.from_summary(s)
    assert x.liq_distance is None and x.ltv == 0.5 and x.ltv_band == "SAFE" and x.active_guards == ("daily_loss",)
    assert x.degraded == {"venue": "down"}


def test_opinion_schema_is_strict() -> None:
    good = {"score": 10, "level": "ok", "findings": [], "action": "none", "analyzer": "x"}
    Opinion.model_validate(good)
    for bad in ({"score": 150}, {"action": "sell"}, {"level": "panic"}, {"findings": ["x" * 201]},
                {"findings": ["a"] * 11}, {"extra": 1}, {"score": "10"}):
        with pytest.raises(ValidationError):
            Opinion.model_validate({**good, **bad})


def test_config_from_env() -> None:
    assert isinstance(advisor_from_env({}), RuleAnalyzer)
    a = advisor_from_env({"HEDGE_ADVISOR": "llm", "HEDGE_ADVISOR_URL": "http://127.0.0.1:11434/v1",
                          "HEDGE_ADVISOR_MODEL": "qwen", "HEDGE_ADVISOR_KEY": "sk-secret",
                          "HEDGE_ADVISOR_TIMEOUT_S": "3"})
    assert isinstance(a, LLMAnalyzer) and a.timeout_s == 3.0 and "sk-secret" not in repr(a)
    cases = [({"HEDGE_ADVISOR": "gpt"}, "HEDGE_ADVISOR"),
             ({"HEDGE_ADVISOR": "llm", "HEDGE_ADVISOR_URL": "ftp://x"}, "HEDGE_ADVISOR_URL"),
             ({"HEDGE_ADVISOR": "llm", "HEDGE_ADVISOR_URL": "http://h/v1"}, "HEDGE_ADVISOR_MODEL"),
             ({"HEDGE_ADVISOR": "llm", "HEDGE_ADVISOR_URL": "http://h/v1", "HEDGE_ADVISOR_MODEL": "m",
               "HEDGE_ADVISOR_TIMEOUT_S": "0"}, "HEDGE_ADVISOR_TIMEOUT_S")]
    for env, var in cases:
        with pytest.raises(InvalidInput) as ei:
            advisor_from_env(env)
        assert ei.value.field == var
    assert interval_from_env({}) == 60.0
    with pytest.raises(InvalidInput) as ei:
        interval_from_env({"HEDGE_ADVISOR_INTERVAL_S": "abc"})
    assert ei.value.field == "HEDGE_ADVISOR_INTERVAL_S"
