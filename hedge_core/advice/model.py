"""Input, answer and protocol of a risk analyzer.

:class:`RiskInput` is a frozen copy of the figures a hedge's summary already shows
(:meth:`hedge_core.runner.hedge.HedgeTask.summary`); :class:`Opinion` is the strict answer every
analyzer returns (the LLM's JSON answer is validated against it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = ["ACTIONS", "Action", "Analyzer", "Answer", "Level", "Opinion", "RiskInput"]

Level = Literal["ok", "watch", "act"]
Action = Literal["none", "reduce", "pause", "flatten"]
#: Actions from the mildest to the most severe.
ACTIONS: tuple[Action, ...] = ("none", "pause", "reduce", "flatten")
Finding = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Answer(BaseModel):
    """The JSON an analyzer answers: unknown fields refused, types strict, ranges checked."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    score: int = Field(ge=0, le=100)  # 0 = no risk seen, 100 = act now
    level: Level
    findings: list[Finding] = Field(max_length=10)
    action: Action


class Opinion(Answer):
    """An :class:`Answer` plus the name of the analyzer that gave it."""

    analyzer: str = Field(min_length=1, max_length=100)


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(float(x)) else None


@dataclass(frozen=True, slots=True)
class RiskInput:
    """What an analyzer sees of one hedge (None = not known / not applicable).

    Quote-currency amounts: ``pnl``, ``day_pnl`` (PnL since 00:00 UTC, negative = loss),
    ``daily_loss_limit`` (> 0, the guard flattens at ``day_pnl <= -limit``). Fractions:
    ``liq_distance`` (adverse move to liquidation / mark; 0.05 = 5 %), ``liq_distance_reduce`` /
    ``liq_distance_close`` (the guard's levels), ``drift`` (hedge ratio minus target),
    ``funding_rate`` (per funding period, > 0 = longs pay shorts), ``ltv``. ``perp_qty`` > 0 long,
    < 0 short (base units). ``leverage`` x. ``degraded`` maps condition name -> message.
    """

    hedge_id: str
    mode: str = "paper"
    state: str | None = None
    clock_now: str | None = None
    pnl: float | None = None
    day_pnl: float | None = None
    daily_loss_limit: float | None = None
    liq_distance: float | None = None
    liq_distance_reduce: float | None = None
    liq_distance_close: float | None = None
    drift: float | None = None
    funding_rate: float | None = None
    perp_qty: float | None = None
    leverage: float | None = None
    degraded: dict[str, str] = field(default_factory=dict)
    active_guards: tuple[str, ...] = ()
    ltv: float | None = None
    ltv_band: str | None = None

    @classmethod
    def from_summary(cls, s: dict[str, Any]) -> RiskInput:
        """Build from a ``HedgeTask.summary()`` dict (missing or non-finite figures become None)."""
        loan = s.get("loan") or {}
        deg = s.get("degraded") or {}
        return cls(
            hedge_id=str(s.get("hedge_id", "")), mode=str(s.get("mode", "paper")),
            state=None if s.get("state") is None else str(s["state"]),
            clock_now=None if s.get("clock_now") is None else str(s["clock_now"]),
            pnl=_num(s.get("pnl")), day_pnl=_num(s.get("day_pnl")),
            daily_loss_limit=_num(s.get("daily_loss_limit")), liq_distance=_num(s.get("liq_distance")),
            liq_distance_reduce=_num(s.get("liq_distance_reduce")),
            liq_distance_close=_num(s.get("liq_distance_close")), drift=_num(s.get("drift")),
            funding_rate=_num(s.get("funding_rate")), perp_qty=_num(s.get("perp_qty")),
            leverage=_num(s.get("leverage")),
            degraded={str(k): str(v) for k, v in deg.items()} if isinstance(deg, dict) else {},
            active_guards=tuple(str(g) for g in (s.get("active_guards") or ())),
            ltv=_num(loan.get("ltv")), ltv_band=None if loan.get("band") is None else str(loan["band"]))


class Analyzer(Protocol):
    """Anything that gives an :class:`Opinion` on a :class:`RiskInput`; must not raise."""

    name: str

    def analyze(self, x: RiskInput) -> Opinion: ...
