"""Funding, basis and carry math for perpetual futures.

Conventions
-----------
- A funding rate is a fraction per funding interval (Binance: 8h; some venues 1h); positive means
  longs pay shorts. ``APR = rate x intervals per year = rate x 365 x 24 / interval_hours``
  (simple, not compounded; 24/7 calendar).
- Funding payment at funding time t (quote, + received / - paid)::

      payment(t) = -position(t) x mark(t) x rate(t)

  where position(t) is the signed base quantity after its LAST change at or before t: a position
  opened exactly at t is charged for t; one closed exactly at t is not. Before the first change
  the position is 0.
- mark(t) is the mark price known at t. From 1h mark bars labelled by OPEN time that is the close
  of the bar that ENDED at t (label t - 1h); :func:`mark_known_at` re-labels closes that way.
- Missing mark at a funding time where the position is non-zero: ``missing_mark='raise'``
  (default) raises InvalidInput naming the time; ``missing_mark='last'`` uses the last mark at
  or before t (and raises if there is none). Where the position is 0 the mark is not needed.
- Basis = perp (or future) / spot - 1, a fraction; annualised basis of a dated future
  = basis x 365 days / time to expiry (simple).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from hedge_core import money
from hedge_core.analytics._checks import align, check_index, check_series
from hedge_core.errors import InvalidInput

HOURS_PER_YEAR = money.HOURS_PER_YEAR
BINANCE_INTEREST_PER_8H = 0.0001  # 0.01 % per 8h funding interval (0.03 % per day)
BINANCE_CLAMP = 0.0005  # +/- 0.05 %

__all__ = [
    "funding_apr",
    "infer_interval_hours",
    "mark_known_at",
    "funding_ledger",
    "funding_payments",
    "basis",
    "annualised_basis",
    "future_price_at_basis",
    "premium_index",
    "predicted_funding_rate",
    "predicted_funding",
    "CarryCosts",
    "expected_net_carry",
    "break_even_days",
    "scan_opportunities",
    "should_migrate_to_quarterly",
]


def _check_interval(interval_hours) -> None:
    v = np.asarray(interval_hours, dtype="float64")
    if not (np.isfinite(v).all() and (v > 0).all()):
        raise InvalidInput("interval_hours", interval_hours, "a funding interval in hours > 0 (e.g. 8 or 1)")


def funding_apr(rate: float | pd.Series, interval_hours: float | pd.Series = 8.0) -> float | pd.Series:
    """Annualised funding: ``rate x 365 x 24 / interval_hours`` (simple, 24/7).

    Parameters
    ----------
    rate : float or pd.Series
        Fraction per interval (0.0001 = 0.01 %), + means longs pay shorts.
    interval_hours : float or pd.Series
        Funding interval of each rate in hours (8 for Binance, 1 for hourly venues).

    Returns
    -------
    float or pd.Series
        APR as a fraction (0.1095 = 10.95 %/yr) of the rate's sign.
    """
    _check_interval(interval_hours)
    if isinstance(rate, pd.Series):
        return money.funding_apr(rate.astype("float64"), interval_hours)
    r = float(rate)
    if not math.isfinite(r):
        raise InvalidInput("rate", rate, "a finite funding rate")
    return money.funding_apr(r, float(interval_hours))  # type: ignore[arg-type]


def infer_interval_hours(rates: pd.Series) -> float:
    """Funding interval in hours = median spacing of the rate timestamps."""
    check_index(rates.index, "rates")
    if len(rates) < 2:
        raise InvalidInput("len(rates)", len(rates), ">= 2 funding times to infer the interval")
    return float(np.median(np.diff(rates.index.as_unit("ns").asi8)) / 3.6e12)


def mark_known_at(close: pd.Series, bar: pd.Timedelta | str = "1h") -> pd.Series:
    """Re-label bar closes by the time they become known: ``ts + bar`` (bars labelled by open time).

    ``mark_known_at(mark_bars['close'])[t]`` is then the mark at t as used for funding at t.
    """
    check_series(close, "close", positive=True)
    td = pd.Timedelta(bar)
    if td <= pd.Timedelta(0):
        raise InvalidInput("bar", bar, "a positive bar length")
    out = close.astype("float64").copy()
    out.index = out.index + td
    return out


def _position_at(position: pd.Series, times: pd.DatetimeIndex) -> np.ndarray:
    pv = check_series(position, "position")
    i = position.index.searchsorted(times, side="right") - 1
    return np.where(i >= 0, pv[np.clip(i, 0, None)], 0.0)


def funding_ledger(position: pd.Series, rates: pd.Series, mark: pd.Series, *,
                   missing_mark: Literal["raise", "last"] = "raise") -> pd.DataFrame:
    """Per funding time: position, mark, rate and payment (see :func:`funding_payments`).

    Returns a DataFrame indexed by the funding times with columns ``position`` (base, signed),
    ``mark`` (quote/base; NaN where the position is 0 and no mark was needed), ``rate``
    (fraction/interval) and ``payment`` (quote, + received / - paid).
    """
    rv = check_series(rates, "rates")
    check_series(mark, "mark", positive=True)
    if missing_mark not in ("raise", "last"):
        raise InvalidInput("missing_mark", missing_mark, "'raise' or 'last'")
    t = rates.index
    pos = _position_at(position, t)
    exact = mark.index.get_indexer(t)
    mv = np.full(len(t), np.nan)
    has = exact >= 0
    mvals = mark.to_numpy(dtype="float64")
    mv[has] = mvals[exact[has]]
    need = (pos != 0) & ~has
    if need.any():
        if missing_mark == "raise":
            first = t[int(np.argmax(need))]
            raise InvalidInput("mark", f"missing at funding time {first} ({int(need.sum())} such times)",
                               "a mark price at every funding time with an open position "
                               "(or missing_mark='last' to use the last mark at or before t)")
        j = mark.index.searchsorted(t[need], side="right") - 1
        if (j < 0).any():
            first = t[need][int(np.argmax(j < 0))]
            raise InvalidInput("mark", f"no mark at or before funding time {first}",
                               "a mark price at or before every funding time with an open position")
        mv[need] = mvals[j]
    pay = np.where(pos != 0, money.funding_payment(pos, np.nan_to_num(mv), rv), 0.0)
    return pd.DataFrame({"position": pos, "mark": mv, "rate": rv, "payment": pay}, index=t)


def funding_payments(position: pd.Series, rates: pd.Series, mark: pd.Series, *,
                     missing_mark: Literal["raise", "last"] = "raise") -> pd.Series:
    """Funding received (+) or paid (-) in quote at each funding time.

    ``payment(t) = -position(t) x mark(t) x rate(t)``.

    Parameters
    ----------
    position : pd.Series
        Signed base quantity (+ long / - short) indexed by the UTC times at which it CHANGES
        (a step function). position(t) is the value of the last change at or before t, so a
        position opened exactly at a funding time is charged and one closed exactly then is not;
        0 before the first change.
    rates : pd.Series
        Funding rate (fraction per interval, + longs pay shorts) indexed by funding time.
    mark : pd.Series
        Mark price (quote/base) indexed by the UTC time at which it is the mark; the price used at
        funding time t is mark at t (see :func:`mark_known_at` for 1h bars).
    missing_mark : {'raise', 'last'}
        Policy when the mark is missing at a funding time with a non-zero position: raise naming
        the time (default), or use the last mark at or before t.

    Returns
    -------
    pd.Series
        Indexed by the funding times, named ``funding_payment``; 0.0 where the position is 0.
    """
    return funding_ledger(position, rates, mark, missing_mark=missing_mark)["payment"].rename("funding_payment")


# ---- basis and the premium-index prediction -------------------------------------------------


def basis(perp: pd.Series, spot: pd.Series) -> pd.Series:
    """Basis ``perp / spot - 1`` (fraction; + = perp above spot) on the common timestamps."""
    p, s = align(perp, spot, ("perp", "spot"), min_len=1)
    if (s <= 0).any() or (p <= 0).any():
        raise InvalidInput("prices", "<= 0", "prices > 0")
    return (p / s - 1.0).rename("basis")


def annualised_basis(basis_: float | pd.Series, expiry: pd.Timestamp,
                     at: pd.Timestamp | None = None) -> float | pd.Series:
    """Simple annualised basis of a dated future: ``basis x 365 d / (expiry - t)``.

    For a Series, t is its index; for a scalar pass ``at``. Times at or after expiry give NaN
    (no carry left to annualise).
    """
    exp = pd.Timestamp(expiry)
    if exp.tzinfo is None:
        raise InvalidInput("expiry", expiry, "a tz-aware UTC timestamp")
    year = pd.Timedelta(days=365)
    if isinstance(basis_, pd.Series):
        check_index(basis_.index, "basis")
        tte = (exp - basis_.index) / year
        out = basis_.astype("float64") / np.asarray(tte, dtype="float64")
        out[np.asarray(tte) <= 0] = np.nan
        return out.rename("basis_apr")
    if at is None or pd.Timestamp(at).tzinfo is None:
        raise InvalidInput("at", at, "a tz-aware UTC timestamp for a scalar basis")
    tte = (exp - pd.Timestamp(at)) / year
    return float(basis_) / tte if tte > 0 else math.nan


def future_price_at_basis(spot: float, basis_apr: float, expiry: pd.Timestamp, at: pd.Timestamp) -> float:
    """The dated future's price whose simple annualised basis at ``at`` is ``basis_apr`` (the inverse of
    :func:`annualised_basis`): ``spot x (1 + basis_apr x (expiry - at) / 365 d)``, quote per base; ``spot``
    itself at or after expiry (the future has converged). Used by the paper venue's simulated quarterly."""
    exp, t = pd.Timestamp(expiry), pd.Timestamp(at)
    if exp.tzinfo is None or t.tzinfo is None:
        raise InvalidInput("expiry", expiry, "tz-aware UTC timestamps (expiry and at)")
    tte = (exp - t) / pd.Timedelta(days=365)
    return float(spot) * (1.0 + float(basis_apr) * tte) if tte > 0 else float(spot)


def premium_index(perp: pd.Series, spot: pd.Series) -> pd.Series:
    """Premium ``(perp - spot) / spot`` on the common timestamps (fraction).

    Binance's premium index uses impact bid/ask prices against its index price; with bar data we
    approximate it with perp and spot prices (closes). Same sign convention.
    """
    return basis(perp, spot).rename("premium")


def predicted_funding_rate(avg_premium: float | pd.Series, interest: float = BINANCE_INTEREST_PER_8H,
                           clamp: float = BINANCE_CLAMP) -> float | pd.Series:
    """Binance funding formula: ``F = P + clamp(I - P, -0.05 %, +0.05 %)``.

    Source: Binance FAQ "Introduction to Binance Futures Funding Rates"
    (https://www.binance.com/en/support/faq/360033525031): interest rate I = 0.01 % per 8h interval
    (0.03 %/day), P = time-weighted average premium index over the interval, dampener +/-0.05 %.
    So when ``|I - P| <= 0.05 %`` the rate equals I. (Binance additionally caps F per symbol;
    not modelled.) Inputs and output are fractions per interval.
    """
    if not (math.isfinite(interest) and math.isfinite(clamp) and clamp >= 0):
        raise InvalidInput("interest/clamp", (interest, clamp), "finite, clamp >= 0")
    if isinstance(avg_premium, pd.Series):
        return (avg_premium + (interest - avg_premium).clip(-clamp, clamp)).rename("predicted_funding")
    p = float(avg_premium)
    return p + min(max(interest - p, -clamp), clamp)


def predicted_funding(premium: pd.Series, funding_times: pd.DatetimeIndex, interval_hours: float = 8.0,
                      interest: float = BINANCE_INTEREST_PER_8H, clamp: float = BINANCE_CLAMP) -> pd.Series:
    """Predicted funding rate at each funding time from premium samples.

    P(t) = average of the premium samples stamped in ``(t - interval, t]`` with linearly
    increasing weights 1, 2, ..., n (Binance's time-weighted average: later samples weigh more),
    then :func:`predicted_funding_rate`. ``premium`` must be stamped when each sample is KNOWN
    (for 1h bars labelled by open time, shift the index by +1h, e.g. via :func:`mark_known_at`).
    Funding times without samples give NaN.
    """
    pv = check_series(premium, "premium")
    check_index(funding_times, "funding_times")
    _check_interval(interval_hours)
    width = pd.Timedelta(hours=float(interval_hours))
    lo = premium.index.searchsorted(funding_times - width, side="right")
    hi = premium.index.searchsorted(funding_times, side="right")
    out = np.full(len(funding_times), np.nan)
    for k, (a, b) in enumerate(zip(lo, hi)):
        if b > a:
            w = np.arange(1, b - a + 1, dtype="float64")
            out[k] = float(w @ pv[a:b] / w.sum())
    p = pd.Series(out, index=funding_times)
    return predicted_funding_rate(p, interest, clamp)


# ---- carry ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CarryCosts:
    """Costs of a delta-neutral carry trade (fractions of notional).

    Attributes
    ----------
    fee_rate : float
        Trading fee per fill (taker 0.04 % default), charged on each leg when opening AND closing.
    slippage_rate : float
        Slippage per fill versus mid (0.02 % default).
    legs : int
        Legs traded (2: spot and perp).
    borrow_apr : float
        Annual cost of borrowing the base asset to short spot (only for the long-perp / short-spot
        direction, i.e. when funding is negative).
    """

    fee_rate: float = 0.0004
    slippage_rate: float = 0.0002
    legs: int = 2
    borrow_apr: float = 0.0

    def __post_init__(self) -> None:
        for name in ("fee_rate", "slippage_rate", "borrow_apr"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0 <= v < 1):
                raise InvalidInput(name, v, "a fraction in [0, 1)")
        if self.legs not in (1, 2):
            raise InvalidInput("legs", self.legs, "1 or 2")

    @property
    def round_trip(self) -> float:
        """One-off cost of opening and closing every leg, fraction of notional."""
        return money.round_trip_cost(self.legs, self.fee_rate, self.slippage_rate)


def expected_net_carry(funding_apr_received: float, hold_days: float, costs: CarryCosts = CarryCosts(),
                       *, borrow: bool = False) -> float:
    """Expected net carry over ``hold_days`` as a fraction of notional.

    ``net = (apr - borrow_apr * borrow) * hold_days / 365 - round_trip_cost``, where
    ``funding_apr_received`` is the APR the carry position RECEIVES (+ income).
    """
    if not (math.isfinite(hold_days) and hold_days > 0):
        raise InvalidInput("hold_days", hold_days, "a holding time in days > 0")
    return money.expected_net_carry(funding_apr_received, costs.borrow_apr if borrow else 0.0, hold_days,
                                    costs.round_trip)


def break_even_days(funding_apr_received: float, costs: CarryCosts = CarryCosts(), *,
                    borrow: bool = False) -> float:
    """Holding time in days after which the carry pays back the round-trip cost (inf if never)."""
    carry = funding_apr_received - (costs.borrow_apr if borrow else 0.0)
    if carry <= 0:
        return math.inf
    return costs.round_trip / carry * 365.0


def _ts_column(frame: pd.DataFrame) -> pd.Series:
    ts = frame["ts"]
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        return ts.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(ts.dtype):
        raise InvalidInput("ts", "naive datetimes", "tz-aware UTC timestamps (or ISO strings with 'Z')")
    try:
        parsed = pd.to_datetime(ts, format="ISO8601")
    except (ValueError, TypeError) as e:
        raise InvalidInput("ts", str(e)[:80], "ISO-8601 UTC timestamps") from None
    if getattr(parsed.dt, "tz", None) is None:
        raise InvalidInput("ts", "timestamps without a timezone", "ISO-8601 with 'Z' or an offset")
    return parsed.dt.tz_convert("UTC")


def scan_opportunities(frame: pd.DataFrame, *, lookback_days: float = 30.0, hold_days: float = 30.0,
                       costs: CarryCosts = CarryCosts(), as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """Rank (venue, symbol) pairs by expected net carry of a delta-neutral funding trade.

    Parameters
    ----------
    frame : pd.DataFrame
        Long frame ``ts, venue, symbol, funding_rate[, interval_hours]`` (interval 8h when absent),
        e.g. ``crossvenue_funding_8h_binance_bybit_okx.csv`` read with pandas.
    lookback_days : float
        Window ``(as_of - lookback, as_of]`` whose mean APR is the expected APR.
    hold_days : float
        Planned holding time for the net carry.
    costs : CarryCosts
        Fees, slippage and borrow cost.
    as_of : pd.Timestamp or None
        Evaluation time (UTC); default the last ``ts`` in the frame (never the wall clock).

    Returns
    -------
    pd.DataFrame
        One row per (venue, symbol), sorted by ``net_carry`` descending, with columns
        ``venue, symbol, n, interval_hours, mean_rate, apr`` (signed, + longs pay),
        ``share_positive, direction`` ('short_perp' receives positive funding, 'long_perp' receives
        negative funding and pays borrow), ``gross_apr`` (|apr|), ``net_carry`` (fraction of
        notional over ``hold_days``), ``net_apr`` and ``break_even_days``.
    """
    need = ["ts", "venue", "symbol", "funding_rate"]
    if not isinstance(frame, pd.DataFrame) or any(c not in frame.columns for c in need):
        raise InvalidInput("frame.columns", list(getattr(frame, "columns", [])), f"at least {need}")
    df = frame.copy()
    df["ts"] = _ts_column(df)
    if "interval_hours" not in df.columns:
        df["interval_hours"] = 8.0
    df["interval_hours"] = df["interval_hours"].astype("float64").fillna(8.0)
    _check_interval(df["interval_hours"].to_numpy())
    fr = df["funding_rate"].to_numpy(dtype="float64", na_value=np.nan)
    if not np.isfinite(fr).all():
        i = int(np.argmax(~np.isfinite(fr)))
        raise InvalidInput("funding_rate", f"{fr[i]} at row {i}", "finite rates (drop missing rows)")
    if not (math.isfinite(lookback_days) and lookback_days > 0):
        raise InvalidInput("lookback_days", lookback_days, "> 0 days")
    end = df["ts"].max() if as_of is None else pd.Timestamp(as_of)
    if end.tzinfo is None:
        raise InvalidInput("as_of", as_of, "a tz-aware UTC timestamp")
    win = df[(df["ts"] > end - pd.Timedelta(days=lookback_days)) & (df["ts"] <= end)].copy()
    if win.empty:
        raise InvalidInput("as_of/lookback_days", (str(end), lookback_days), "a window containing funding rows")
    win["apr"] = money.funding_apr(win["funding_rate"], win["interval_hours"])
    g = win.groupby(["venue", "symbol"], sort=True)
    out = g.agg(n=("apr", "size"), interval_hours=("interval_hours", "median"),
                mean_rate=("funding_rate", "mean"), apr=("apr", "mean"),
                share_positive=("funding_rate", lambda s: float((s > 0).mean()))).reset_index()
    out["direction"] = np.where(out["apr"] >= 0, "short_perp", "long_perp")
    out["gross_apr"] = out["apr"].abs()
    out["net_carry"] = [expected_net_carry(a, hold_days, costs, borrow=(d == "long_perp"))
                        for a, d in zip(out["gross_apr"], out["direction"])]
    out["net_apr"] = out["net_carry"] * 365.0 / hold_days
    out["break_even_days"] = [break_even_days(a, costs, borrow=(d == "long_perp"))
                              for a, d in zip(out["gross_apr"], out["direction"])]
    return out.sort_values(["net_carry", "venue", "symbol"], ascending=[False, True, True]).reset_index(drop=True)


def should_migrate_to_quarterly(perp_funding_apr: float | pd.Series, quarterly_basis_apr: float | pd.Series,
                                buffer_apr: float = 0.0) -> bool | pd.Series:
    """Calendar-migration rule: move the hedge to the dated (quarterly) future when the perp's
    funding APR exceeds the quarterly's annualised basis APR by more than ``buffer_apr``.

    Both are the annual cost (or yield) of holding the same exposure in each instrument, as
    fractions; the comparison is ``perp_funding_apr > quarterly_basis_apr + buffer_apr``.
    Series are aligned on their common timestamps.
    """
    if not math.isfinite(buffer_apr):
        raise InvalidInput("buffer_apr", buffer_apr, "a finite APR")
    if isinstance(perp_funding_apr, pd.Series) and isinstance(quarterly_basis_apr, pd.Series):
        f, b = align(perp_funding_apr, quarterly_basis_apr, ("perp_funding_apr", "quarterly_basis_apr"), 1)
        return (f > b + buffer_apr).rename("migrate")
    if isinstance(perp_funding_apr, pd.Series) or isinstance(quarterly_basis_apr, pd.Series):
        raise InvalidInput("perp_funding_apr/quarterly_basis_apr", "mixed Series and scalar", "both Series or both scalars")
    f, b = float(perp_funding_apr), float(quarterly_basis_apr)
    if not (math.isfinite(f) and math.isfinite(b)):
        raise InvalidInput("apr", (f, b), "finite APRs")
    return f > b + buffer_apr
