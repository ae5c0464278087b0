"""The built-in rule-based analyzer: pure, deterministic, thresholds documented below.

Each rule adds points (the score is their sum, capped at 100) and may recommend an action; the
opinion's action is the most severe one recommended (none < pause < reduce < flatten). Level:
``act`` when an action is recommended or the score is >= :data:`ACT_SCORE`, ``watch`` when the
score is >= :data:`WATCH_SCORE`, else ``ok``.

=====================  =================================================  ======  =========
rule                   when                                               points  action
=====================  =================================================  ======  =========
liquidation close      liq_distance <= liq_distance_close                 60      flatten
liquidation reduce     liq_distance <= liq_distance_reduce                35      reduce
liquidation near       liq_distance <= 2 x liq_distance_reduce            15      -
daily loss hit         -day_pnl >= daily_loss_limit                       60      flatten
daily loss high        -day_pnl >= 0.75 x daily_loss_limit                35      pause
daily loss half        -day_pnl >= 0.5 x daily_loss_limit                 15      -
drift large            abs(drift) >= 0.10                                 20      -
drift                  abs(drift) >= 0.05                                 10      -
degraded               per DEGRADED condition (at most 2 counted)         20      pause
funding against        rate against the perp side, abs >= 0.001/period    25      -
funding against        same, abs >= 0.0005/period                         15      -
LTV band               WARNING / CRITICAL / EMERGENCY                     20/40/60  -/reduce/flatten
leverage               leverage >= 10 x                                   10      -
=====================  =================================================  ======  =========
"""

from __future__ import annotations

from hedge_core.advice.model import ACTIONS, Action, Level, Opinion, RiskInput

__all__ = ["ACT_SCORE", "WATCH_SCORE", "RuleAnalyzer"]

WATCH_SCORE = 25
ACT_SCORE = 60
DRIFT_WATCH, DRIFT_HIGH = 0.05, 0.10  # fraction of the target hedge ratio
FUNDING_WATCH, FUNDING_HIGH = 0.0005, 0.001  # per funding period
LEVERAGE_HIGH = 10.0
LTV_BANDS: dict[str, tuple[int, Action]] = {"WARNING": (20, "none"), "CRITICAL": (40, "reduce"),
                                            "EMERGENCY": (60, "flatten")}


def _liquidation(x: RiskInput) -> tuple[int, Action, str] | None:
    d, red, close = x.liq_distance, x.liq_distance_reduce, x.liq_distance_close
    if d is None or red is None or close is None:
        return None
    if d <= close:
        return 60, "flatten", f"liquidation {d:.1%} away, at or inside the close level {close:.1%}"
    if d <= red:
        return 35, "reduce", f"liquidation {d:.1%} away, at or inside the reduce level {red:.1%}"
    if d <= 2 * red:
        return 15, "none", f"liquidation {d:.1%} away, within twice the reduce level {red:.1%}"
    return None


def _daily_loss(x: RiskInput) -> tuple[int, Action, str] | None:
    if x.day_pnl is None or x.daily_loss_limit is None or x.daily_loss_limit <= 0 or x.day_pnl >= 0:
        return None
    used = -x.day_pnl / x.daily_loss_limit
    text = f"daily loss {-x.day_pnl:,.2f} is {used:.0%} of the limit {x.daily_loss_limit:,.2f}"
    if used >= 1.0:
        return 60, "flatten", text
    if used >= 0.75:
        return 35, "pause", text
    if used >= 0.5:
        return 15, "none", text
    return None


def _drift(x: RiskInput) -> tuple[int, Action, str] | None:
    if x.drift is None:
        return None
    a = abs(x.drift)
    if a >= DRIFT_HIGH:
        return 20, "none", f"hedge drift {x.drift:+.1%} (>= {DRIFT_HIGH:.0%})"
    if a >= DRIFT_WATCH:
        return 10, "none", f"hedge drift {x.drift:+.1%} (>= {DRIFT_WATCH:.0%})"
    return None


def _funding(x: RiskInput) -> tuple[int, Action, str] | None:
    r, q = x.funding_rate, x.perp_qty
    if r is None or q is None or q == 0 or (r > 0) != (q > 0) or r == 0:
        return None  # positive rate: longs pay; negative: shorts pay
    side = "long" if q > 0 else "short"
    if abs(r) >= FUNDING_HIGH:
        return 25, "none", f"funding {r:+.4%} per period is paid by the {side} perp"
    if abs(r) >= FUNDING_WATCH:
        return 15, "none", f"funding {r:+.4%} per period is paid by the {side} perp"
    return None


def _ltv(x: RiskInput) -> tuple[int, Action, str] | None:
    if x.ltv_band not in LTV_BANDS:
        return None
    pts, act = LTV_BANDS[x.ltv_band]
    ltv = f" (LTV {x.ltv:.1%})" if x.ltv is not None else ""
    return pts, act, f"loan LTV band {x.ltv_band}{ltv}"


def _leverage(x: RiskInput) -> tuple[int, Action, str] | None:
    if x.leverage is not None and x.leverage >= LEVERAGE_HIGH:
        return 10, "none", f"leverage {x.leverage:.1f}x (>= {LEVERAGE_HIGH:.0f}x)"
    return None


class RuleAnalyzer:
    """Deterministic rules over a :class:`RiskInput` (see the module table)."""

    name = "rules"

    def analyze(self, x: RiskInput) -> Opinion:
        """Score 0..100, findings in rule order, the most severe recommended action."""
        hits = [h for h in (_liquidation(x), _daily_loss(x), _drift(x), _funding(x), _ltv(x), _leverage(x))
                if h is not None]
        for name, msg in list(x.degraded.items())[:2]:
            hits.append((20, "pause", f"DEGRADED {name}: {msg}"[:200]))
        score = min(100, sum(h[0] for h in hits))
        action: Action = max((h[1] for h in hits), key=ACTIONS.index, default="none")
        level: Level = "act" if action != "none" or score >= ACT_SCORE else \
            "watch" if score >= WATCH_SCORE else "ok"
        return Opinion(score=score, level=level, findings=[h[2][:200] for h in hits][:10], action=action,
                       analyzer=self.name)
