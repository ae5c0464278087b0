"""Step a hedge through historical bars on the paper simulator (the event-driven path).

This is the small, honest loop the notebooks and tests use; the later backtester builds on the
same pieces. At each instant t (a bar END time), in the project's replay order:

1. bars that ended at t become known (fed to the paper venue);
2. the engine acts (``MarketUpdate`` at t -> orders -> fills at t);
3. funding events at t settle (paper venue, then ``FundingSettled`` to the engine).

Market updates use only data known at t: closes of bars labelled t - 1h, the last settled
funding rate (no look-ahead at the next one), analytics rows known at t
(:func:`hedge_core.analytics.inputs.market_inputs`, as the backtests and the runner).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pandas as pd

from hedge_core.analytics.inputs import InputSpec, market_inputs
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


def build_steps(spot: pd.DataFrame, perp: pd.DataFrame, *, venue: str, spot_symbol: str, perp_symbol: str,
                mark: pd.DataFrame | None = None, funding: pd.DataFrame | None = None,
                spec: InputSpec | None = None, hedge: pd.DataFrame | None = None, perp_base_symbol: str | None = None,
                bar: str = "1h", interval_hours: float = 8.0) -> list[ReplayStep]:
    """Replay steps over the union of bar end times.

    Parameters
    ----------
    spot, perp, mark : DataFrame
        Bars indexed by UTC open time (open, high, low, close[, volume]). Gaps are kept: a
        missing spot bar leaves the last known spot price in force for that instant.
    funding : DataFrame, optional
        ``funding_rate`` indexed by settlement time.
    spec : InputSpec, optional
        When given, each step's ``analytics`` is the row known at t of
        :func:`hedge_core.analytics.inputs.market_inputs` (the one function the backtests and the
        runner use) over these frames; None = no analytics inputs.
    hedge : DataFrame, optional
        Bars of the hedge asset for a cross hedge's beta (``market_inputs``' ``hedge``; default the perp).
    """
    dt = pd.Timedelta(bar)
    ends = spot.index.union(perp.index) + dt
    analytics = None if spec is None else market_inputs(spot, perp, mark=mark, funding=funding, hedge=hedge,
                                                        spec=spec, bar_seconds=dt.total_seconds())
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
