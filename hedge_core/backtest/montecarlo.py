"""Monte Carlo by block bootstrap, and the stress-window run.

:func:`resample_market` builds a synthetic market from a real one by resampling BLOCKS of
consecutive bars (circular, fixed length, block starts uniform) and applying the SAME block
indices to every per-bar quantity, so the joint behaviour of spot returns, the perp basis, the
mark premium, bar shapes, volumes and the funding regime is kept within each block:

- spot close ``P_j = P_0 x exp(cumsum r[idx_j])`` (log returns of the source bars);
- perp close ``= P_j x (1 + basis[idx_j])``, mark close ``= perp_j x (1 + premium[idx_j])``;
- open/high/low from the source bar's ratios to its close; volumes copied;
- funding keeps its schedule (every ``interval_hours`` on the synthetic grid); the rate settling
  at a synthetic funding time is the rate in force at the END of its source bar (the last rate
  settled at or before it), so funding moves with the sampled price regime.

:func:`monte_carlo` runs one parameter set over ``n_paths`` resampled markets (seed, path) and
returns the distribution of each KPI. Deterministic: the same seed gives the same table.
:func:`stress_run` runs the same parameters over the 2020-2022 stress window and
:func:`stress_summary` lists its liquidations and LTV / guard actions.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hedge_core.backtest.timeline import DEFAULT_WARMUP, Market, build_timeline
from hedge_core.errors import InvalidInput
from hedge_core.analytics.inputs import InputSpec

if TYPE_CHECKING:
    from hedge_core.params.models import StrategyParamsBase

__all__ = [
    "STRESS_WINDOW",
    "block_indices",
    "mc_summary",
    "monte_carlo",
    "resample_market",
    "stress_run",
    "stress_summary",
]

STRESS_WINDOW = "stress_2020-01_2022-12"


def block_indices(n: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` source indices made of circular blocks of ``block`` consecutive bars (starts uniform)."""
    if not (isinstance(block, int) and 1 <= block <= n):
        raise InvalidInput("block", block, f"an integer number of bars in [1, {n}]")
    k = -(-n // block)
    starts = rng.integers(0, n, size=k)
    idx = (starts[:, None] + np.arange(block)[None, :]) % n
    return idx.ravel()[:n]


def _grid(market: Market) -> tuple[pd.DatetimeIndex, dict[str, pd.DataFrame]]:
    bar = market.bar
    idx = market.spot.index.union(market.perp.index)
    full = pd.date_range(idx[0], idx[-1], freq=bar, tz="UTC")
    frames = {}
    for name, df in (("spot", market.spot), ("perp", market.perp), ("mark", market.mark)):
        if df is None:
            continue
        d = df.reindex(full)
        c = d["close"].ffill()
        for col in ("open", "high", "low"):
            d[col] = d[col].fillna(c)
        d["close"] = c
        if "volume" in d.columns:
            d["volume"] = d["volume"].fillna(0.0)
        frames[name] = d.bfill()
    return full, frames


def resample_market(market: Market, *, block: int = 168, seed: int = 0, path: int = 0) -> Market:
    """A synthetic market of the same length and grid, resampled in joint blocks (see module doc).

    Parameters
    ----------
    block : int
        Block length in bars (default one week of 1h bars).
    seed, path : int
        The generator is ``np.random.default_rng([seed, path])``: paths are independent and
        reproducible.
    """
    full, fr = _grid(market)
    n = len(full)
    if n < 3:
        raise InvalidInput("market", n, ">= 3 bars")
    rng = np.random.default_rng([int(seed), int(path)])
    idx = block_indices(n - 1, min(block, n - 1), rng) + 1  # bars 1..n-1 have a return
    s = fr["spot"]
    sc = s["close"].to_numpy()
    r = np.diff(np.log(sc))
    new_close = np.empty(n)
    new_close[0] = sc[0]
    new_close[1:] = sc[0] * np.exp(np.cumsum(r[idx - 1]))
    src = np.concatenate([[0], idx])

    def rebuild(df: pd.DataFrame, close: np.ndarray) -> pd.DataFrame:
        c0 = df["close"].to_numpy()
        out = pd.DataFrame(index=full)
        for col in ("open", "high", "low"):
            out[col] = df[col].to_numpy()[src] / c0[src] * close
        out["close"] = close
        if "volume" in df.columns:
            out["volume"] = df["volume"].to_numpy()[src]
        out.index.name = "ts"
        return out

    spot = rebuild(s, new_close)
    p = fr["perp"]
    basis = p["close"].to_numpy() / sc - 1.0
    perp_close = new_close * (1.0 + basis[src])
    perp = rebuild(p, perp_close)
    mark = None
    if "mark" in fr:
        mk = fr["mark"]
        prem = mk["close"].to_numpy() / p["close"].to_numpy() - 1.0
        mark = rebuild(mk, perp_close * (1.0 + prem[src]))
    fund = None
    if market.funding is not None and len(market.funding):
        f = market.funding.sort_index()
        hours = float(np.median(f["interval_hours"])) if "interval_hours" in f.columns else 8.0
        ends = full + market.bar
        step = pd.Timedelta(hours=hours)
        times = ends[(ends.as_unit("ns").asi8 % step.value) == 0]
        pos_t = full.get_indexer(times - market.bar)  # bar whose end is the funding time
        src_end = (full[src[pos_t]] + market.bar).as_unit("ns").asi8
        k = np.searchsorted(f.index.as_unit("ns").asi8, src_end, side="right") - 1
        rates = np.where(k >= 0, f["funding_rate"].to_numpy()[np.clip(k, 0, None)], 0.0)
        fund = pd.DataFrame({"funding_rate": rates, "interval_hours": hours}, index=pd.DatetimeIndex(times, name="ts"))
    return Market(market.venue, market.spot_symbol, market.perp_symbol, market.timeframe, spot, perp, mark, fund,
                  {"synthetic": True, "seed": seed, "path": path, "block": block})


_MC: dict[str, Any] = {}


def _mc_init(params: StrategyParamsBase, market: Market, block: int, seed: int, config: Any, prefer_fast: bool) -> None:
    _MC.update(params=params, market=market, block=block, seed=seed, config=config, prefer_fast=prefer_fast)


def _mc_one(path: int) -> dict[str, float]:
    from hedge_core.backtest.sweep import Payload, evaluate_backtest

    m = resample_market(_MC["market"], block=_MC["block"], seed=_MC["seed"], path=path)
    cfg = _MC["config"]
    warm = cfg.warmup if cfg is not None else DEFAULT_WARMUP
    tl = build_timeline(m, start=m.first + warm, spec=cfg.spec if cfg is not None else InputSpec())
    try:
        k = evaluate_backtest(_MC["params"], Payload(tl, cfg, prefer_fast=_MC["prefer_fast"]))
        k["path"] = "fast" if k.pop("_fast", 0.0) == 1.0 else "event"
        k["error"] = ""
    except Exception as exc:  # noqa: BLE001 - a failed path is reported in its row
        k = {"error": f"{type(exc).__name__}: {exc}"}
    k["path_id"] = path
    return k


def monte_carlo(params: StrategyParamsBase, market: Market, *, n_paths: int = 100, block: int = 168, seed: int = 0,
                config: Any = None, workers: int = 2, prefer_fast: bool = True,
                progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """KPIs of ``params`` over ``n_paths`` block-bootstrapped markets (one row per path, in path order).

    ``workers=0`` runs in this process. The same (market, block, seed) gives the same table on any
    number of workers.
    """
    if not (isinstance(n_paths, int) and n_paths >= 1):
        raise InvalidInput("n_paths", n_paths, "an integer >= 1")
    args = (params, market, block, seed, config, prefer_fast)
    rows: list[dict[str, float]] = []
    if workers == 0:
        _mc_init(*args)
        for i in range(n_paths):
            rows.append(_mc_one(i))
            if progress:
                progress(i + 1, n_paths)
    else:
        from hedge_core.backtest.sweep import _fork_context, _safe_context

        ctx = _fork_context() or _safe_context()  # never fork a multi-threaded process
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_mc_init, initargs=args) as pool:
            for i, r in enumerate(pool.map(_mc_one, range(n_paths))):
                rows.append(r)
                if progress:
                    progress(i + 1, n_paths)
    df = pd.DataFrame(rows)
    first = ["path_id"]
    return df[first + [c for c in df.columns if c not in first]]


def mc_summary(table: pd.DataFrame, kpis: tuple[str, ...] = ("net_apr", "sharpe", "max_drawdown", "net_pnl"),
               quantiles: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)) -> pd.DataFrame:
    """Quantiles (rows) of each KPI (columns) over the paths, plus mean and the share of paths with
    a positive value (``p_positive``)."""
    cols = [k for k in kpis if k in table.columns]
    if not cols:
        raise InvalidInput("kpis", kpis, f"columns of the Monte Carlo table {sorted(table.columns)}")
    num = table[cols].apply(pd.to_numeric, errors="coerce")
    out = num.quantile(list(quantiles))
    out.index = [f"q{int(q * 100):02d}" for q in quantiles]
    out.loc["mean"] = num.mean()
    out.loc["p_positive"] = (num > 0).mean()
    return out


def stress_run(params: StrategyParamsBase, store: Any = None, *, venue: str = "binance", asset: str = "BTC",
               start: object = "2020-01-04T00:00Z", end: object = "2022-12-31T00:00Z", config: Any = None):
    """The event-driven backtest of ``params`` over the 2020-2022 stress window.

    ``store`` holds the stress data (import ``/work/shared/data/stress_2020-01_2022-12`` with
    ``hedge data import``); None reads the shared CSVs directly.
    """
    from hedge_core.backtest.event import BacktestConfig, run_backtest
    from hedge_core.backtest.timeline import load_market

    cfg = config if config is not None else BacktestConfig(hedge_id="stress-2020-2022")
    spot_sym, perp_sym = f"{asset}/USDT", f"{asset}/USDT:USDT"
    if store is not None:
        m = load_market(store, venue=venue, spot_symbol=spot_sym, perp_symbol=perp_sym, start=start, end=end,
                        warmup=cfg.warmup)
    else:
        from hedge_core.data.shared import load_tidy

        pair = f"{asset}USDT"
        fr = {k: load_tidy(STRESS_WINDOW, venue, pair, k, tf)
              for k, tf in (("spot", "1h"), ("perp", "1h"), ("mark", "1h"), ("funding", "8h"))}
        m = Market(venue, spot_sym, perp_sym, "1h", fr["spot"], fr["perp"], fr["mark"], fr["funding"])
    return run_backtest(params, m, start=start, end=end, config=cfg)


def stress_summary(result: Any) -> pd.DataFrame:
    """Liquidations, guard firings (LTV bands, reserve deployments, liquidation distance, funding)
    and risk transitions of a run, one row per event in time order."""
    rows = []
    for _, r in result.liquidations.iterrows():
        rows.append({"ts": pd.Timestamp(r.get("ts")) if "ts" in r else pd.NaT, "event": "liquidation",
                     "detail": ", ".join(f"{k}={v}" for k, v in r.items() if k != "ts")})
    for _, g in result.guard_firings.iterrows():
        nums = ", ".join(f"{k}={v:.4g}" for k, v in dict(g["numbers"]).items() if isinstance(v, (int, float)))
        rows.append({"ts": g["ts"], "event": f"guard {g['guard']} -> {g['action']}", "detail": nums})
    t = result.transitions
    if len(t):
        risk = t[t["trigger_name"].isin(["FLATTEN", "RISK_REDUCE", "EXIT_SIGNAL"])]
        for _, x in risk.iterrows():
            rows.append({"ts": x["ts"], "event": f"{x['trigger_name']}", "detail": x["reason"]})
    df = pd.DataFrame(rows, columns=["ts", "event", "detail"])
    if len(df):
        df["ts"] = pd.to_datetime(df["ts"], utc=True)
        df = df.sort_values("ts", kind="stable").reset_index(drop=True)
    return df
