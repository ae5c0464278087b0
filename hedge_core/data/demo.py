"""Deterministic synthetic market ("demo" venue): spot, perp, mark and funding for BTC and ETH.

Model (all draws from ``numpy.random.default_rng(seed)``; same arguments => identical frames):

- Spot: geometric Brownian motion in log price with two volatility regimes (calm / stressed; the
  regime durations are exponential with means ``calm_days`` / ``stress_days``, shared by both
  assets), plus Poisson jumps (``jumps_per_year``, normal log sizes), correlated across assets
  (``corr`` on the diffusion; ETH jumps are 1.2x BTC's). Drift-free in expectation
  (``-sigma^2/2`` Ito correction).
- Basis ``b = perp/spot - 1``: an Ornstein-Uhlenbeck process (exact discretisation) with mean
  ``basis_mean``, stationary s.d. ``basis_sd`` and mean-reversion half-life ``basis_half_life_hours``,
  simulated on a grid of ``min(bar, 1h)``. Perp = spot x (1 + b).
- Mark = perp x (1 + e), e ~ N(0, ``mark_noise``) per bar (the same factor on O/H/L/C); no volume.
- Funding every 8h at 00/08/16 UTC, Binance-like: ``P`` = mean premium (basis) over the 8h before t,
  ``rate = clip(P + clip(I - P, -0.05 %, +0.05 %), -cap, +cap)`` with interest ``I = 0.01 %``.
- Volume: log-normal noise around a per-hour base, higher on large moves; perp volume ~3x spot.

The result is labelled venue ``demo`` so anything built from it is visibly synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from hedge_core.data.importers import SeriesKey, write_series
from hedge_core.data.validate import TS_DTYPE, timeframe_delta

DEMO_VENUE = "demo"
DEMO_START = pd.Timestamp("2024-01-01T00:00:00Z")
YEAR_S = 365.0 * 86400.0


@dataclass(frozen=True)
class AssetModel:
    """Per-asset parameters. Volatilities are annualised (fraction); volume in base units per hour."""

    spot0: float
    vol_calm: float
    volume_per_hour: float
    jump_scale: float = 1.0


@dataclass(frozen=True)
class DemoParams:
    """Parameters of the demo market (see module docstring). Rates are fractions."""

    assets: dict[str, AssetModel] = field(default_factory=lambda: {
        "BTC": AssetModel(spot0=42_000.0, vol_calm=0.45, volume_per_hour=1_500.0, jump_scale=1.0),
        "ETH": AssetModel(spot0=2_300.0, vol_calm=0.60, volume_per_hour=20_000.0, jump_scale=1.2),
    })
    corr: float = 0.8
    stress_vol_mult: float = 2.2
    calm_days: float = 45.0
    stress_days: float = 8.0
    jumps_per_year: float = 6.0
    jump_mean: float = -0.01
    jump_sd: float = 0.035
    basis_mean: float = 0.0002
    basis_sd: float = 0.0006
    basis_half_life_hours: float = 6.0
    mark_noise: float = 0.00005
    funding_interest: float = 0.0001
    funding_clamp: float = 0.0005
    funding_cap: float = 0.0075
    funding_hours: float = 8.0
    quote: str = "USDT"


def _regimes(rng: np.random.Generator, n: int, dt_days: float, p: DemoParams) -> np.ndarray:
    """Boolean 'stressed' flag per step from alternating exponential regime durations."""
    out = np.zeros(n, dtype=bool)
    i, stressed = 0, False
    while i < n:
        mean = p.stress_days if stressed else p.calm_days
        steps = max(1, int(round(rng.exponential(mean) / dt_days)))
        out[i:i + steps] = stressed
        i += steps
        stressed = not stressed
    return out


def _ou(rng: np.random.Generator, n: int, dt_hours: float, p: DemoParams) -> np.ndarray:
    """OU basis at n+1 grid instants (exact discretisation), started at its mean."""
    kappa = np.log(2.0) / p.basis_half_life_hours  # per hour
    phi = np.exp(-kappa * dt_hours)
    eps = rng.standard_normal(n) * p.basis_sd * np.sqrt(1.0 - phi * phi)
    dev = lfilter([1.0], [1.0, -phi], eps)
    return p.basis_mean + np.concatenate([[0.0], dev])


def binance_like_funding(premium: np.ndarray, *, interest: float = 0.0001, clamp: float = 0.0005,
                         cap: float = 0.0075) -> np.ndarray:
    """Funding rate per interval from the average premium: ``clip(P + clip(I - P, -c, c), -cap, cap)``."""
    return np.clip(premium + np.clip(interest - premium, -clamp, clamp), -cap, cap)


def generate_demo_market(*, days: float = 365.0, timeframe: str = "1h", seed: int = 7,
                         start: pd.Timestamp | str = DEMO_START, assets: tuple[str, ...] = ("BTC", "ETH"),
                         params: DemoParams | None = None) -> dict[SeriesKey, pd.DataFrame]:
    """Generate the demo market. Pure: same arguments, same frames.

    Parameters
    ----------
    days : float
        Length; ``days * 1d / timeframe`` bars (rounded down) per series.
    timeframe : str
        Bar size, ``'1m'`` .. ``'1d'``.
    seed : int
        Seed of the only random generator used.
    start : Timestamp
        First bar open time (UTC, on the timeframe grid).
    assets : tuple of str
        Any of the assets in ``params.assets`` (default BTC and ETH).

    Returns
    -------
    dict SeriesKey -> canonical frame: spot bars on ``BTC/USDT``, perp and mark bars and funding on
    ``BTC/USDT:USDT`` (venue ``demo``).
    """
    p = params or DemoParams()
    step = timeframe_delta(timeframe)
    if step > pd.Timedelta(days=1) or step < pd.Timedelta(minutes=1):
        raise ValueError(f"timeframe {timeframe!r} is not allowed; expected 1m .. 1d")
    start = pd.Timestamp(start)
    if start.tzinfo is None:
        raise ValueError(f"start {start!r} has no timezone; expected UTC")
    start = start.tz_convert("UTC")
    unknown = [a for a in assets if a not in p.assets]
    if unknown:
        raise ValueError(f"assets {unknown} are not allowed; expected some of {list(p.assets)}")
    n = int(pd.Timedelta(days=days) / step)
    if n < 2:
        raise ValueError(f"days={days} gives {n} bars of {timeframe}; expected at least 2")
    rng = np.random.default_rng(seed)
    dt_s = step.total_seconds()
    dt = dt_s / YEAR_S
    idx = pd.DatetimeIndex(start + step * np.arange(n), name="ts").astype(TS_DTYPE)

    stressed = _regimes(rng, n, dt_s / 86400.0, p)
    vol_mult = np.where(stressed, p.stress_vol_mult, 1.0)
    z_common = rng.standard_normal(n)
    jumps = rng.poisson(p.jumps_per_year * dt, n) > 0
    jump_size = np.where(jumps, rng.normal(p.jump_mean, p.jump_sd, n), 0.0)

    # basis grid: min(bar, 1h); bars >= 1h are whole multiples of it
    g = min(step, pd.Timedelta(hours=1))
    k = int(step / g)
    g_h = g.total_seconds() / 3600.0

    out: dict[SeriesKey, pd.DataFrame] = {}
    for j, asset in enumerate(assets):
        a = p.assets[asset]
        z = z_common if j == 0 else p.corr * z_common + np.sqrt(1 - p.corr ** 2) * rng.standard_normal(n)
        sig = a.vol_calm * vol_mult
        r = -0.5 * sig ** 2 * dt + sig * np.sqrt(dt) * z + a.jump_scale * jump_size
        close = a.spot0 * np.exp(np.cumsum(r))
        open_ = np.concatenate([[a.spot0], close[:-1]])
        wick = sig * np.sqrt(dt) * 0.6
        high = np.maximum(open_, close) * np.exp(np.abs(rng.standard_normal(n)) * wick)
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.standard_normal(n)) * wick)
        move = np.abs(r) / (sig * np.sqrt(dt))
        hours = dt_s / 3600.0
        vol_spot = a.volume_per_hour * hours * np.exp(0.35 * rng.standard_normal(n) - 0.06) * (0.6 + 0.4 * move)
        vol_perp = 3.0 * vol_spot * np.exp(0.2 * rng.standard_normal(n) - 0.02)

        basis = _ou(rng, n * k, g_h, p)  # instants start + i*g, i = 0..n*k
        b_open, b_close = basis[0:n * k:k], basis[k::k]
        b_lo, b_hi = np.minimum(b_open, b_close), np.maximum(b_open, b_close)
        p_open, p_close = open_ * (1 + b_open), close * (1 + b_close)
        p_high = np.maximum.reduce([high * (1 + b_hi), p_open, p_close])
        p_low = np.minimum.reduce([low * (1 + b_lo), p_open, p_close])
        m = 1.0 + p.mark_noise * rng.standard_normal(n)

        spot_sym = f"{asset}/{p.quote}"
        perp_sym = f"{asset}/{p.quote}:{p.quote}"
        out[SeriesKey(DEMO_VENUE, spot_sym, "spot", timeframe)] = pd.DataFrame(
            {"open": open_, "high": high, "low": low, "close": close, "volume": vol_spot}, index=idx)
        out[SeriesKey(DEMO_VENUE, perp_sym, "perp", timeframe)] = pd.DataFrame(
            {"open": p_open, "high": p_high, "low": p_low, "close": p_close, "volume": vol_perp}, index=idx)
        out[SeriesKey(DEMO_VENUE, perp_sym, "mark", timeframe)] = pd.DataFrame(
            {"open": p_open * m, "high": p_high * m, "low": p_low * m, "close": p_close * m, "volume": np.nan},
            index=idx)
        out[SeriesKey(DEMO_VENUE, perp_sym, "funding", None)] = _funding(basis, start, g, n * k, p)
    return out


def _funding(basis: np.ndarray, start: pd.Timestamp, g: pd.Timedelta, m: int, p: DemoParams) -> pd.DataFrame:
    """Funding events at multiples of ``funding_hours`` (00/08/16 UTC) after ``start`` up to the end."""
    period = pd.Timedelta(hours=p.funding_hours)
    end = start + g * m
    first = start.floor(period) + period
    times = pd.date_range(first, end, freq=period)
    per = int(period / g) if period >= g else 1
    rates = []
    for t in times:
        hi = int((t - start) / g)  # grid index of instant t
        lo = max(0, hi - per)
        rates.append(basis[lo + 1:hi + 1].mean() if hi > lo else basis[hi])
    rate = binance_like_funding(np.asarray(rates, dtype="float64"), interest=p.funding_interest,
                               clamp=p.funding_clamp, cap=p.funding_cap)
    idx = pd.DatetimeIndex(times, name="ts").astype(TS_DTYPE)
    return pd.DataFrame({"funding_rate": rate, "interval_hours": float(p.funding_hours)}, index=idx)


def seed_demo(store: Any, *, days: float = 365.0, timeframe: str = "1h", seed: int = 7,
              start: pd.Timestamp | str = DEMO_START, assets: tuple[str, ...] = ("BTC", "ETH")) -> pd.DataFrame:
    """Generate the demo market and write it in one transaction. Returns the per-series summary."""
    frames = generate_demo_market(days=days, timeframe=timeframe, seed=seed, start=start, assets=assets)
    return write_series(store, frames)
