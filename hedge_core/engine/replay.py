"""Step a hedge through historical bars on the paper simulator (the event-driven path).

This is the small, honest loop the notebooks and tests use; the later backtester builds on the
same pieces. At each instant t (a bar END time), in the project's replay order:

1. bars that ended at t become known (fed to the paper venue);
2. the engine acts (``MarketUpdate`` at t -> orders -> fills at t);
3. funding events at t settle (paper venue, then ``FundingSettled`` to the engine).

Market updates use only data known at t: closes of bars labelled t - 1h, the last settled
funding rate (no look-ahead at the next one), analytics rows known at t.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hedge_core.analytics.volatility import trailing_24h_vol
from hedge_core.engine.driver import HedgeDriver
from hedge_core.engine.events import FundingSettled, MarketUpdate, Timer
from hedge_core.errors import ExchangeError, InvalidInput
from hedge_core.types import Bar, FundingEvent, MarketKind

if TYPE_CHECKING:
    from hedge_core.engine.context import HedgeContext
    from hedge_core.params.models import StrategyParamsBase

__all__ = [
    "ReplayStep",
    "build_steps",
    "funding_settled",
    "known_at_analytics",
    "replay_paper",
    "run_paper",
    "snapshot_row",
]


@dataclass(frozen=True, slots=True)
class ReplayStep:
    ts: pd.Timestamp  # the instant t
    bars: tuple[Bar, ...]  # bars that ended at t
    market: MarketUpdate
    funding: FundingEvent | None


def known_at_analytics(spot: pd.DataFrame, hedge: pd.DataFrame | None = None, *, bar: str = "1h",
                       beta_halflife: float = 72.0, baseline_window: int = 48,
                       volume_window: int = 24) -> pd.DataFrame:
    """Analytics inputs indexed by the instant they are KNOWN (label + bar).

    Columns: ``sigma_24h`` (analytics.volatility.trailing_24h_vol of spot closes), ``baseline``
    and ``baseline_std`` (rolling linear-regression fit of the close on time and its residual
    std over ``baseline_window`` bars), ``volume_avg`` (rolling mean volume); with ``hedge``
    also ``beta`` and ``correlation`` (analytics.hedge_ratio EWMA beta and rolling correlation
    of log returns, spot on hedge) and ``var_1d`` is left to the caller.
    """
    from hedge_core.analytics.hedge_ratio import ewma_beta, rolling_correlation

    close = spot["close"]
    out = pd.DataFrame(index=close.index)
    out["sigma_24h"] = trailing_24h_vol(close)
    w = baseline_window
    x = np.arange(len(close), dtype=float)
    xs = pd.Series(x, index=close.index)
    mx, my = xs.rolling(w).mean(), close.rolling(w).mean()
    cov = (xs * close).rolling(w).mean() - mx * my
    var = (xs * xs).rolling(w).mean() - mx * mx
    slope = cov / var
    fit = my + slope * (xs - mx)
    resid = close - (my + slope * (xs - mx))
    out["baseline"] = fit
    out["baseline_std"] = resid.rolling(w).std()
    if "volume" in spot:
        out["volume_avg"] = spot["volume"].rolling(volume_window).mean()
    if hedge is not None:
        both = pd.concat([np.log(close).diff(), np.log(hedge["close"].reindex(close.index)).diff()],
                         axis=1).dropna()  # gaps dropped as rows (a missing bar's return is unknown)
        y, xh = both.iloc[:, 0], both.iloc[:, 1]
        out["beta"] = ewma_beta(y, xh, halflife=beta_halflife).reindex(close.index)
        out["correlation"] = rolling_correlation(y, xh, window=int(beta_halflife * 2)).reindex(close.index)
    out.index = out.index + pd.Timedelta(bar)
    return out


def build_steps(spot: pd.DataFrame, perp: pd.DataFrame, *, venue: str, spot_symbol: str, perp_symbol: str,
                mark: pd.DataFrame | None = None, funding: pd.DataFrame | None = None,
                analytics: pd.DataFrame | None = None, perp_base_symbol: str | None = None,
                bar: str = "1h", interval_hours: float = 8.0) -> list[ReplayStep]:
    """Replay steps over the union of bar end times.

    Parameters
    ----------
    spot, perp, mark : DataFrame
        Bars indexed by UTC open time (open, high, low, close[, volume]). Gaps are kept: a
        missing spot bar leaves the last known spot price in force for that instant.
    funding : DataFrame, optional
        ``funding_rate`` indexed by settlement time.
    analytics : DataFrame, optional
        Indexed by KNOWN time (see :func:`known_at_analytics`); its row at t feeds ``analytics``.
    """
    dt = pd.Timedelta(bar)
    ends = spot.index.union(perp.index) + dt
    fund = funding["funding_rate"] if funding is not None else pd.Series(dtype="float64")
    fund_times = set(fund.index)
    an = analytics.reindex(ends) if analytics is not None else None
    an_cols = list(an.columns) if an is not None else []
    an_vals = an.to_numpy(dtype="float64") if an is not None else None

    def rows(df: pd.DataFrame | None) -> dict[pd.Timestamp, tuple]:
        if df is None:
            return {}
        vol = df["volume"] if "volume" in df else pd.Series(0.0, index=df.index)
        return {t: (o, h, lo, c, v) for t, o, h, lo, c, v in zip(df.index, df["open"], df["high"], df["low"],
                                                                 df["close"], vol)}
    s_rows, p_rows, m_rows = rows(spot), rows(perp), rows(mark)
    steps: list[ReplayStep] = []
    last_s = last_p = last_m = math.nan
    s_vol = p_vol = 0.0
    last_rate = 0.0
    for i, t in enumerate(ends):
        label = t - dt
        bars: list[Bar] = []
        for rowmap, sym, kind in ((s_rows, spot_symbol, MarketKind.SPOT), (p_rows, perp_symbol, MarketKind.PERP),
                                  (m_rows, perp_symbol, MarketKind.MARK)):
            r = rowmap.get(label)
            if r is None:
                continue
            bars.append(Bar(label, venue, sym, kind, float(r[0]), float(r[1]), float(r[2]), float(r[3]),
                            float(r[4]) if kind is not MarketKind.MARK else 0.0, bar))
            if kind is MarketKind.SPOT:
                last_s, s_vol = float(r[3]), float(r[4])
            elif kind is MarketKind.PERP:
                last_p, p_vol = float(r[3]), float(r[4])
            else:
                last_m = float(r[3])
        if math.isnan(last_s) or math.isnan(last_p):
            continue
        fe = None
        if t in fund_times:
            fe = FundingEvent(t, venue, perp_symbol, float(fund[t]), interval_hours)
        nxt = t.floor(f"{int(interval_hours)}h") + pd.Timedelta(hours=interval_hours)
        a = MappingProxyType({c: float(v) for c, v in zip(an_cols, an_vals[i]) if not math.isnan(v)}) \
            if an_vals is not None else MappingProxyType({})
        m = MarketUpdate(ts=t, spot=last_s, perp=last_p, mark=last_m, spot_volume=s_vol, perp_volume=p_vol,
                         funding_rate=last_rate, next_funding_ts=nxt, funding_interval_hours=interval_hours,
                         analytics=a)
        steps.append(ReplayStep(t, tuple(bars), m, fe))
        if fe is not None:
            last_rate = fe.rate  # known only after the settlement at t
    return steps


async def funding_settled(perp_venue: Any, ev: FundingEvent, mark: float) -> FundingSettled:
    """The engine event for a settlement, with the amount the venue actually booked.

    The venue's own figure (``fetch_funding_payments``) is used, not ``-qty x mark x rate`` from
    the engine's book: a fill the engine has not booked yet (an unanswered order) still pays
    funding at the venue, and a position the venue already closed pays nothing. Only when the
    venue cannot be asked is the amount NaN (the engine then computes it from its book).
    """
    try:
        pays = await perp_venue.fetch_funding_payments(ev.symbol, since=ev.ts)
    except ExchangeError:
        return FundingSettled(ev.ts, ev.rate, mark, interval_hours=ev.interval_hours)
    amount = float(sum(p.amount for p in pays if p.ts == ev.ts))
    return FundingSettled(ev.ts, ev.rate, mark, amount=amount, interval_hours=ev.interval_hours)


def snapshot_row(driver: HedgeDriver) -> dict[str, Any]:
    c = driver.ctx
    return {"ts": c.last_ts, "state": str(c.state), "spot_qty": c.spot.qty, "perp_qty": c.perp.qty,
            "delta": c.delta, "hedge_ratio": c.hedge_ratio, "target_ratio": c.target_ratio, "pnl": c.pnl,
            "cycle_pnl": c.cycle_pnl, "funding": c.perp.funding, "fees": c.spot.fees + c.perp.fees,
            "spot_price": c.spot_price, "perp_price": c.perp_price, "pending": len(c.pending)}


async def run_paper(driver: HedgeDriver, venues: Mapping[str, Any], steps: list[ReplayStep], *,
                    heartbeat: bool = False) -> pd.DataFrame:
    """Run ``steps`` through ``driver`` with paper venues (``PaperExchange`` by venue name).

    Returns one snapshot row per step (see :func:`snapshot_row`), indexed by ts.
    """
    if not steps:
        raise InvalidInput("steps", 0, "at least one replay step")
    rows = []
    for s in steps:
        for b in s.bars:
            for ex in venues.values():
                await ex.apply(b)
        if heartbeat:
            await driver.feed(Timer(s.ts))
        await driver.feed(s.market)
        if s.funding is not None:
            for ex in venues.values():
                await ex.apply(s.funding)
            await driver.feed(await funding_settled(venues[driver.ctx.perp.venue], s.funding, s.market.mark_or_perp))
        rows.append(snapshot_row(driver))
    return pd.DataFrame(rows).set_index("ts")


async def replay_paper(ctx: HedgeContext, params: StrategyParamsBase, steps: list[ReplayStep], *,
                       balances: Mapping[str, Mapping[str, float]], config: Any = None,
                       wrap: Any = None) -> tuple[pd.DataFrame, HedgeDriver]:
    """Run one hedge through ``steps`` on a fresh paper venue per venue of its legs.

    ``balances`` seeds every paper venue (``{"spot": {"USDT": ...}, "perp": {"USDT": ...}}``);
    ``config`` is a ``PaperConfig`` (default: Binance-like fees and limits, venue renamed per leg).
    ``wrap(adapter) -> adapter`` wraps what the driver talks to (e.g. a seeded
    ``exchange.faults.FaultInjector``); market data still goes to the paper venue itself.
    Returns the snapshot frame (:func:`snapshot_row` per step) and the driver (its ``ctx``,
    ``actions`` and the venues in ``driver.adapters``). Await it (notebooks: top-level await).
    """
    from dataclasses import replace as _replace

    from hedge_core.exchange.paper import PaperExchange
    from hedge_core.exchange.paper.core import (
        PaperConfig,
        PaperCore,
        default_instruments,
    )

    venues: dict[str, Any] = {}
    for v in dict.fromkeys((ctx.spot.venue, ctx.perp.venue)):
        cfg = config or PaperConfig()
        cfg = _replace(cfg, venue=v, instruments=default_instruments(v))
        venues[v] = PaperExchange(PaperCore(cfg, balances=balances), save_on_apply=False)
    adapters = {v: (wrap(ex) if wrap is not None else ex) for v, ex in venues.items()}
    driver = HedgeDriver(ctx, params, adapters)
    frame = await run_paper(driver, venues, steps)
    return frame, driver
