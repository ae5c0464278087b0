"""The original specification's goals for the volatility-tiered loan book, measured by backtest.

Targets (specification): loan coverage > 50 % within 6 months, net APR > 15 %, max drawdown
< 20 %, Sharpe > 1.5, LTV < 65 % more than 90 % of the time.

:func:`spec_goals` backtests ``VolTierLoanParams`` (event-driven: the voltier strategy has no
fast kernel) at each leverage over a window, in three variants, and reports each KPI with
whether it meets its target:

- ``defaults``: the specification's original figures (0.27 BTC collateral against a 16,200 USDT loan —
  sized for a BTC price near 100k, so at 2023 prices the book starts far above 100 % LTV; the model's
  own default now sizes the collateral for ``start_ltv`` 0.50 from the first price);
- ``ltv60``: the same loan and reserve, with the collateral sized to start at 60 % LTV;
- ``ltv60_guards``: as ``ltv60`` with the liquidation-distance guards scaled to the leverage
  (the defaults, 8 % close / 15 % reduce, are tighter than a 15-25x position's own liquidation
  distance of ~3.6-6.3 %, so the default guards close the book at once);
- ``ltv60_noguards``: as ``ltv60`` with the liquidation-distance guards effectively off, so the
  paper venue's liquidations act (and the engine re-hedges after each).

Run ``python bench/backtest_goals.py`` to print the markdown table (needs the shared data).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from hedge_core import money
from hedge_core.backtest.event import BacktestConfig, run_backtest
from hedge_core.backtest.timeline import Market, utc
from hedge_core.params.models import GuardParams, VolTierLoanParams

__all__ = ["TARGETS", "goals_markdown", "shared_market", "spec_goals", "variant_params"]

#: KPI -> (comparison, target)
TARGETS: dict[str, tuple[str, float]] = {
    "loan_coverage_6m": (">", 0.50),
    "net_apr": (">", 0.15),
    "max_drawdown": ("<", 0.20),
    "sharpe": (">", 1.5),
    "ltv_below_65": (">", 0.90),
}


def variant_params(variant: str, leverage: float, start_price: float) -> VolTierLoanParams:
    """The parameter set of one variant (see the module docstring)."""
    d = VolTierLoanParams()
    if variant == "defaults":
        return VolTierLoanParams(perp_leverage=leverage, collateral_qty=0.27)  # the specification's fixed 0.27 BTC
    coll = round(d.loan / (0.6 * start_price), 5)
    if variant == "ltv60":
        return VolTierLoanParams(perp_leverage=leverage, collateral_qty=coll)
    if variant == "ltv60_noguards":
        return VolTierLoanParams(perp_leverage=leverage, collateral_qty=coll,
                                 guards=GuardParams(liq_distance_close=0.001, liq_distance_reduce=0.0015))
    if variant == "ltv60_guards":
        liq = money.flat_liquidation_move(leverage)
        return VolTierLoanParams(perp_leverage=leverage, collateral_qty=coll,
                                 guards=GuardParams(liq_distance_close=round(0.35 * liq, 4),
                                                    liq_distance_reduce=round(0.6 * liq, 4)))
    raise ValueError(f"variant {variant!r}: use 'defaults', 'ltv60', 'ltv60_guards' or 'ltv60_noguards'")


def _ok(kpi: str, v: float) -> bool:
    op, t = TARGETS[kpi]
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return False
    return v > t if op == ">" else v < t


def spec_goals(market: Market, *, start: Any, end: Any, leverages: tuple[float, ...] = (15, 20, 25),
               variants: tuple[str, ...] = ("defaults", "ltv60", "ltv60_guards", "ltv60_noguards")) -> pd.DataFrame:
    """One row per (variant, leverage): the target KPIs, whether each is met, and context numbers."""
    t0 = utc(start)
    p0 = float(market.spot["close"][market.spot.index >= t0].iloc[0])
    rows = []
    for var in variants:
        for lev in leverages:
            p = variant_params(var, lev, p0)
            cfg = BacktestConfig(hedge_id=f"goals-{var}-{lev:g}x")
            full = run_backtest(p, market, start=start, end=end, config=cfg, keep_timeline=False)
            six = run_backtest(p, market, start=start, end=min(utc(end), t0 + pd.DateOffset(months=6)),
                               config=cfg, keep_timeline=False)
            k = full.kpis
            row = {"variant": var, "leverage": lev, "loan_coverage_6m": six.kpis.get("loan_coverage", math.nan),
                   "net_apr": k["net_apr"], "max_drawdown": k["max_drawdown"], "sharpe": k["sharpe"],
                   "ltv_below_65": k.get("ltv_below_65", math.nan), "loan_coverage": k.get("loan_coverage", math.nan),
                   "entries": k["entries"], "net_pnl": k["net_pnl"], "liquidations": k["n_liquidations"],
                   "final_state": full.final_state, "collateral_qty": p.collateral_qty}
            row["targets_met"] = sum(_ok(c, row[c]) for c in TARGETS)
            rows.append(row)
    return pd.DataFrame(rows)


def goals_markdown(table: pd.DataFrame) -> str:
    """The table as markdown: each target KPI with a check mark when it meets the target."""
    def cell(kpi: str, v: float) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "n/a ✗"
        pct = kpi != "sharpe"
        v = v + 0.0  # no "-0.0"
        s = f"{v:.1%}" if pct else f"{v:.2f}"
        return f"{s} {'✓' if _ok(kpi, v) else '✗'}"
    head = ("| variant | leverage | loan coverage 6m (>50%) | net APR (>15%) | max DD (<20%) | Sharpe (>1.5) "
            "| LTV<65% share (>90%) | entries | liquidations | final state |")
    lines = [head, "|" + "---|" * 10]
    for _, r in table.iterrows():
        lines.append(f"| {r['variant']} | {r['leverage']:g}x | {cell('loan_coverage_6m', r['loan_coverage_6m'])} | "
                     f"{cell('net_apr', r['net_apr'])} | {cell('max_drawdown', r['max_drawdown'])} | "
                     f"{cell('sharpe', r['sharpe'])} | {cell('ltv_below_65', r['ltv_below_65'])} | "
                     f"{int(r['entries'])} | {int(r['liquidations'])} | {r['final_state']} |")
    return "\n".join(lines)


def shared_market(window: str = "sample_2023-01_2024-06", asset: str = "BTC") -> Market:
    """The shared-data market of one window (reads /work/shared/data in place)."""
    from hedge_core.data.shared import load_tidy

    pair = f"{asset}USDT"
    fr = {k: load_tidy(window, "binance", pair, k, tf)
          for k, tf in (("spot", "1h"), ("perp", "1h"), ("mark", "1h"), ("funding", "8h"))}
    return Market("binance", f"{asset}/USDT", f"{asset}/USDT:USDT", "1h", fr["spot"], fr["perp"], fr["mark"],
                  fr["funding"])


if __name__ == "__main__":  # pragma: no cover - the README table generator
    m = shared_market()
    t = spec_goals(m, start="2023-01-04T00:00Z", end="2024-06-30T00:00Z")
    print(goals_markdown(t))
    print()
    print(t.to_string())
