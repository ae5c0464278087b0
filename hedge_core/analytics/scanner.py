"""Funding-carry scanner: rank (symbol, venue pair, direction) by expected net carry after costs.

Pure: frames and a config come in, a ranked frame goes out; no store, no clock (``as_of`` defaults to
the last funding time in the input, never the wall clock). The funding and carry formulas are the
ones of :mod:`hedge_core.analytics.funding` and :mod:`hedge_core.money` (APR, round trip, net carry,
break-even); nothing here writes one again.

Inputs (as the store reads them; see :mod:`hedge_core.data.scan_inputs`)
-----------------------------------------------------------------------
funding : pd.DataFrame
    One row per funding event: ``ts`` (funding time, tz-aware UTC or ISO-8601 with an offset),
    ``venue``, ``symbol`` (ccxt unified perp symbol, e.g. ``BTC/USDT:USDT``), ``funding_rate``
    (fraction per settlement interval, + means longs pay shorts) and ``interval_hours`` (that
    event's settlement interval in hours: 8, 4 or 1; 8 when the column is absent).
instruments : pd.DataFrame, optional
    Venue limits: ``venue, symbol, min_qty`` (base), ``min_notional`` (quote), ``lot_size`` (base)
    and optionally ``source`` (where the row came from, e.g. ``store`` or ``paper defaults``).
    Spot rows are keyed by the spot symbol ``BTC/USDT``, perp rows by ``BTC/USDT:USDT``.
prices : pd.DataFrame, optional
    ``venue, symbol, price`` (quote per base; the last close known at ``as_of``). The price of a leg
    is its own (venue, symbol), else any symbol of the same base on that venue, else the same base
    on any venue (perp and spot of one coin trade within basis points of each other).

Candidates
----------
- ``spot_perp`` on one venue V, for a linear perp ``B/Q:Q``: long spot ``B/Q`` + short perp when
  the mean funding APR over the lookback is >= 0 (the short perp receives funding); short spot + long
  perp when it is < 0 (the long perp receives, the borrowed spot costs ``borrow_apr``).
- ``perp_perp`` on two venues A != B for the same perp symbol: short the perp where funding is
  HIGHEST, long it where it is LOWEST (the short receives the high rate, the long pays the low one).

Spread (the APR the row's direction receives, fraction per year, + = income)
----------------------------------------------------------------------------
Every funding event becomes an APR with its OWN interval: ``apr = rate x 8760 / interval_hours``
(:func:`hedge_core.analytics.funding.funding_apr`), so an hourly venue's 0.00125 %/h and an 8h
venue's 0.01 %/8h are both 10.95 %/yr.

- spot_perp: ``spread(t) = sign x apr_V(t)`` at V's funding times (sign +1 short perp, -1 long perp).
- perp_perp: both venues' APRs are averaged into buckets of the LONGER of the two intervals (an 8h
  venue against a 1h venue: 8h buckets ``(t - 8h, t]`` labelled by their end t, each holding one 8h
  event and up to eight 1h events), then ``spread(t) = apr_short(t) - apr_long(t)``. Buckets where
  either venue has no event are dropped (gaps stay gaps).

Per row over the lookback window ``(as_of - lookback, as_of]``
--------------------------------------------------------------
- ``apr_received`` = mean of the spread (the expected APR; >= 0 by the choice of direction);
- ``round_trip`` = opening and closing both legs at taker fee + slippage:
  ``2 x (fee_long + slip) + 2 x (fee_short + slip)`` (``CarryCosts(legs=2, fee_rate=mean of the two
  legs' fees)``, exact because the cost is linear in the fee);
- ``net_carry = (apr_received - borrow) x hold_days / 365 - round_trip``, fraction of the notional of
  one leg (:func:`hedge_core.analytics.funding.expected_net_carry`); ``net_apr = net_carry x 365 /
  hold_days``; ``break_even_days`` = days until the carry pays the round trip (inf if never);
- stability: ``share_favourable`` = share of spread points > 0 (the direction received funding in
  that interval), ``spread_std`` = standard deviation of the spread (APR, ddof=1);
- history: ``n`` = spread points in the window, ``history_days`` = all spread points up to as_of x
  bucket hours / 24 (days of funding history both legs share, gaps excluded);
- smallest hedgeable size: both legs hold the same base quantity, so it is the largest of each
  leg's ``max(min_qty, min_notional / price)``, rounded UP to the coarser lot; ``min_size_quote`` =
  that x price.

Assumptions: the lookback's mean funding persists over the hold; the hold is pro rata in each venue's
settlements (exact when it is a whole number of each interval); taker fills on open and close;
transfers between venues, margin funding and price moves between the legs are not costed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd

from hedge_core.analytics.funding import (
    CarryCosts,
    _ts_column,
    break_even_days,
    expected_net_carry,
    funding_apr,
)
from hedge_core.errors import InvalidInput

__all__ = [
    "DEFAULT_FEES",
    "PAPER_FEES",
    "RESULT_COLUMNS",
    "ScanConfig",
    "VenueFees",
    "scan",
    "split_symbol",
    "spread_history",
]

KINDS = ("spot_perp", "perp_perp")


@dataclass(frozen=True, slots=True)
class VenueFees:
    """Taker fee rates of one venue, fractions of notional (0.001 = 0.1 %)."""

    spot_taker: float
    perp_taker: float

    def __post_init__(self) -> None:
        for name in ("spot_taker", "perp_taker"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and 0.0 <= v <= 0.01):
                raise InvalidInput(f"fees.{name}", v, "a taker fee fraction in [0, 0.01]")


#: Entry-level (VIP 0 / regular) taker fees as the venues publish them:
#: Binance spot 0.1 %, USDⓈ-M 0.05 % (https://www.binance.com/en/fee/schedule);
#: Bybit spot 0.1 %, perpetual 0.055 % (Bybit Help Center "Trading Fee Structure", VIP 0);
#: OKX spot 0.10 %, perpetual 0.05 % (https://www.okx.com/fees, regular user Lv1).
DEFAULT_FEES: Mapping[str, VenueFees] = MappingProxyType({
    "binance": VenueFees(0.001, 0.0005),
    "bybit": VenueFees(0.001, 0.00055),
    "okx": VenueFees(0.001, 0.0005),
})
#: Fees of a venue not in the table (e.g. ``demo``): the paper venue's defaults
#: (:class:`hedge_core.exchange.paper.core.PaperConfig` spot/perp taker; a test keeps them equal).
PAPER_FEES = VenueFees(0.001, 0.0005)

RESULT_COLUMNS = [
    "rank", "row_id", "kind", "symbol", "base", "venue_pair", "direction",
    "long_venue", "long_leg", "short_venue", "short_leg", "long_interval_h", "short_interval_h",
    "apr_received", "borrow_apr", "round_trip", "net_carry", "net_apr", "break_even_days",
    "share_favourable", "spread_std", "n", "history_days", "min_size_base", "min_size_quote", "size_source",
]


def _check_range(name: str, v: float, lo: float, hi: float, *, lo_open: bool = True) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        x = math.nan
    ok = math.isfinite(x) and (x > lo if lo_open else x >= lo) and x <= hi
    if not ok:
        raise InvalidInput(name, v, f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}]")
    return x


@dataclass(frozen=True)
class ScanConfig:
    """What to scan and how to cost it (validated; :class:`InvalidInput` names the field).

    Attributes
    ----------
    lookback_days : float
        Window ``(as_of - lookback, as_of]`` whose mean spread is the expected APR, days in (0, 3650].
    hold_days : float
        Planned holding time, days in (0, 3650].
    min_history_days : float
        Rows whose shared funding history (days) is shorter are dropped, days in [0, 3650].
    venues : tuple of str or None
        Venues a leg may sit on (lower case); None = every venue in the data.
    kinds : tuple of str
        ``spot_perp`` and/or ``perp_perp``.
    top : int or None
        Keep the best ``top`` rows, in [1, 10000]; None = all.
    slippage_rate : float
        Slippage per fill vs mid, fraction in [0, 0.01] (default 1 bp, the paper venue's).
    borrow_apr : float
        Annual cost of borrowing the coin to short spot (spot_perp, long perp), fraction in [0, 1).
    fees : mapping venue -> VenueFees
        Taker fees per venue; a venue not in it pays ``default_fees``.
    default_fees : VenueFees
    as_of : pd.Timestamp or None
        Evaluation time (tz-aware UTC); None = the last funding time in the data.
    """

    lookback_days: float = 30.0
    hold_days: float = 30.0
    min_history_days: float = 7.0
    venues: tuple[str, ...] | None = None
    kinds: tuple[str, ...] = KINDS
    top: int | None = None
    slippage_rate: float = 0.0001
    borrow_apr: float = 0.0
    fees: Mapping[str, VenueFees] = field(default_factory=lambda: DEFAULT_FEES)
    default_fees: VenueFees = PAPER_FEES
    as_of: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "lookback_days", _check_range("lookback_days", self.lookback_days, 0, 3650))
        set_(self, "hold_days", _check_range("hold_days", self.hold_days, 0, 3650))
        set_(self, "min_history_days", _check_range("min_history_days", self.min_history_days, 0, 3650,
                                                    lo_open=False))
        set_(self, "slippage_rate", _check_range("slippage_rate", self.slippage_rate, 0, 0.01, lo_open=False))
        b = _check_range("borrow_apr", self.borrow_apr, 0, 1, lo_open=False)
        if b >= 1:
            raise InvalidInput("borrow_apr", self.borrow_apr, "a fraction in [0, 1)")
        set_(self, "borrow_apr", b)
        t = self.top
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 1 <= t <= 10_000):
            raise InvalidInput("top", self.top, "an integer in [1, 10000] (or None for all rows)")
        if self.venues is not None:
            vs = tuple(str(v).strip().lower() for v in self.venues)
            if not vs or any(not v for v in vs):
                raise InvalidInput("venues", self.venues, "one or more venue names (e.g. binance,bybit,okx)")
            set_(self, "venues", vs)
        kinds = tuple(self.kinds)
        if not kinds or any(k not in KINDS for k in kinds):
            raise InvalidInput("kinds", self.kinds, f"one or more of {list(KINDS)}")
        set_(self, "kinds", kinds)
        if self.as_of is not None:
            t = pd.Timestamp(self.as_of)
            if t.tzinfo is None:
                raise InvalidInput("as_of", self.as_of, "a tz-aware UTC timestamp")
            set_(self, "as_of", t.tz_convert("UTC"))

    def fees_of(self, venue: str) -> VenueFees:
        return self.fees.get(venue, self.default_fees)


def split_symbol(symbol: str) -> tuple[str, str, str]:
    """``(base, quote, settle)`` of a ccxt unified perp symbol (``BTC/USDT:USDT`` -> BTC, USDT, USDT)."""
    pair, _, settle = str(symbol).partition(":")
    base, sep, quote = pair.partition("/")
    if not sep or not base or not quote:
        raise InvalidInput("symbol", symbol, "a ccxt unified perp symbol like BTC/USDT:USDT")
    return base, quote, settle or quote


# ---- input checks -------------------------------------------------------------------------


def _clean_funding(funding: pd.DataFrame) -> pd.DataFrame:
    need = ["ts", "venue", "symbol", "funding_rate"]
    if not isinstance(funding, pd.DataFrame) or any(c not in funding.columns for c in need):
        raise InvalidInput("funding.columns", list(getattr(funding, "columns", [])),
                           f"at least {need} (+ interval_hours)")
    if funding.empty:
        raise InvalidInput("funding", "no rows", "funding events of at least one perp (import or download funding)")
    df = funding.loc[:, [c for c in (*need, "interval_hours") if c in funding.columns]].copy()
    df["ts"] = _ts_column(df)
    df["venue"] = df["venue"].astype("str").str.strip().str.lower()
    df["symbol"] = df["symbol"].astype("str")
    if "interval_hours" not in df.columns:
        df["interval_hours"] = 8.0
    df["interval_hours"] = pd.to_numeric(df["interval_hours"], errors="coerce").astype("float64").fillna(8.0)
    fr = pd.to_numeric(df["funding_rate"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    if not np.isfinite(fr).all():
        i = int(np.argmax(~np.isfinite(fr)))
        raise InvalidInput("funding_rate", f"{df['funding_rate'].iloc[i]!r} at row {i}", "finite rates (drop missing rows)")
    df["funding_rate"] = fr
    # APR of every event with its own interval (validates interval_hours > 0)
    df["apr"] = funding_apr(df["funding_rate"], df["interval_hours"])
    return df.sort_values(["venue", "symbol", "ts"], kind="stable").drop_duplicates(["venue", "symbol", "ts"],
                                                                                     keep="last")


# ---- spreads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Leg:
    venue: str
    symbol: str  # the perp symbol
    interval_h: float
    apr: pd.Series  # APR per funding event, indexed by funding time


def _legs(df: pd.DataFrame) -> dict[tuple[str, str], _Leg]:
    out: dict[tuple[str, str], _Leg] = {}
    for (venue, symbol), g in df.groupby(["venue", "symbol"], sort=True):
        apr = pd.Series(g["apr"].to_numpy(), index=pd.DatetimeIndex(g["ts"]), name="apr")
        out[(str(venue), str(symbol))] = _Leg(str(venue), str(symbol), float(g["interval_hours"].median()), apr)
    return out


def _bucketed(apr: pd.Series, hours: float) -> pd.Series:
    """Mean APR per bucket ``(t - hours, t]`` labelled by its end t (aligned to 00:00 UTC)."""
    label = apr.index.ceil(pd.Timedelta(hours=hours))
    return apr.groupby(label).mean()


def _pair_spread(short: _Leg, long: _Leg) -> tuple[pd.Series, float]:
    """(APR short minus APR long per common bucket, bucket hours)."""
    hours = max(short.interval_h, long.interval_h)
    s, lg = _bucketed(short.apr, hours), _bucketed(long.apr, hours)
    common = s.index.intersection(lg.index)
    return (s.loc[common] - lg.loc[common]).rename("spread"), hours


def spread_history(funding: pd.DataFrame, row: Mapping[str, object], *,
                   as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """The spread one scanner row receives, for its chart (all history up to ``as_of``).

    Parameters
    ----------
    funding : pd.DataFrame
        The scan's funding frame.
    row : mapping
        A row of :func:`scan` (``kind, symbol, long_venue, long_leg, short_venue, short_leg``).

    Returns
    -------
    pd.DataFrame
        Indexed by funding time (spot_perp) or bucket end (perp_perp): ``spread`` (APR the row's
        direction receives, fraction/yr, + = income), ``apr_long`` and ``apr_short`` (each perp leg's
        funding APR on the same points, + = longs pay; NaN for a spot leg).
    """
    kind, symbol = str(row["kind"]), str(row["symbol"])
    if kind not in KINDS:
        raise InvalidInput("kind", kind, f"one of {list(KINDS)}")
    df = _clean_funding(funding)
    if as_of is not None:
        df = df[df["ts"] <= pd.Timestamp(as_of)]
    legs = _legs(df)
    lv, sv = str(row["long_venue"]), str(row["short_venue"])
    for v in (lv, sv):
        if (v, symbol) not in legs:
            raise InvalidInput("venue/symbol", f"{v} {symbol}", "a perp with funding in the data")
    if kind == "perp_perp":
        short, long_ = legs[(sv, symbol)], legs[(lv, symbol)]
        spread, hours = _pair_spread(short, long_)
        return pd.DataFrame({"spread": spread,
                             "apr_long": _bucketed(long_.apr, hours).reindex(spread.index),
                             "apr_short": _bucketed(short.apr, hours).reindex(spread.index)})
    apr = legs[(sv, symbol)].apr
    short_perp = row["short_leg"] == "perp"
    nan = pd.Series(np.nan, index=apr.index)
    return pd.DataFrame({"spread": apr if short_perp else -apr,
                         "apr_long": nan if short_perp else apr, "apr_short": apr if short_perp else nan})


# ---- minimum size -------------------------------------------------------------------------


def _price_of(prices: pd.DataFrame | None, venue: str, symbol: str) -> float:
    if prices is None or prices.empty:
        return math.nan
    base = split_symbol(symbol)[0] if "/" in symbol else symbol
    p = prices
    for mask in ((p["venue"] == venue) & (p["symbol"] == symbol),
                 (p["venue"] == venue) & (p["base"] == base),
                 (p["base"] == base)):
        hit = p.loc[mask, "price"]
        if len(hit):
            return float(hit.iloc[0])
    return math.nan


def _limit(v: object) -> float:
    """A venue limit; missing (None/NaN) means none recorded: 0."""
    try:
        x = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return x if math.isfinite(x) and x > 0 else 0.0


def _min_size(instruments: pd.DataFrame | None, prices: pd.DataFrame | None,
              legs: list[tuple[str, str]]) -> tuple[float, float, str]:
    """(smallest base qty both legs can trade, its quote notional, source) for legs [(venue, symbol)]."""
    if instruments is None or instruments.empty:
        return math.nan, math.nan, "unknown (no instruments)"
    qty, lot, sources, price = 0.0, 0.0, [], math.nan
    for venue, symbol in legs:
        hit = instruments[(instruments["venue"] == venue) & (instruments["symbol"] == symbol)]
        if hit.empty:
            return math.nan, math.nan, f"unknown ({venue} {symbol} has no instrument row)"
        r = hit.iloc[0]
        px = _price_of(prices, venue, symbol)
        price = px if math.isnan(price) else price
        min_qty, min_notional = _limit(r.get("min_qty")), _limit(r.get("min_notional"))
        if min_notional > 0 and not px > 0:
            return math.nan, math.nan, f"unknown (no price for {venue} {symbol} to apply its min notional)"
        qty = max(qty, min_qty, min_notional / px if min_notional > 0 else 0.0)
        lot = max(lot, _limit(r.get("lot_size")))
        sources.append(str(r.get("source", "instruments")))
    if lot > 0:
        qty = round(math.ceil(qty / lot - 1e-9) * lot, 12)  # UP to the coarser lot (never below a minimum)
    return qty, qty * price if price > 0 else math.nan, "/".join(dict.fromkeys(sources))


# ---- the scan -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    spread: pd.Series  # the spread in the lookback window (APR, the candidate's first orientation)
    history_days: float

    @property
    def mean(self) -> float:
        return float(self.spread.mean())


def _window(spread: pd.Series, hours: float, cfg: ScanConfig, end: pd.Timestamp) -> _Window | None:
    upto = spread[spread.index <= end]
    win = upto[upto.index > end - pd.Timedelta(days=cfg.lookback_days)]
    if win.empty:
        return None
    return _Window(win, len(upto) * hours / 24.0)


def _costs(fee_long: float, fee_short: float, cfg: ScanConfig, borrow: bool) -> CarryCosts:
    # legs=2 at the mean fee = 2 x (fee_long + slip) + 2 x (fee_short + slip): the cost is linear in the fee
    return CarryCosts(fee_rate=(fee_long + fee_short) / 2.0, slippage_rate=cfg.slippage_rate, legs=2,
                      borrow_apr=cfg.borrow_apr if borrow else 0.0)


def _finish(rec: dict[str, object], w: _Window, flip: bool, costs: CarryCosts, borrow: bool,
            cfg: ScanConfig) -> dict[str, object]:
    win = -w.spread if flip else w.spread  # the spread the chosen direction receives
    apr = float(win.mean())
    net = expected_net_carry(apr, cfg.hold_days, costs, borrow=borrow)
    rec.update(apr_received=apr, borrow_apr=costs.borrow_apr if borrow else 0.0, round_trip=costs.round_trip,
               net_carry=net, net_apr=net * 365.0 / cfg.hold_days,
               break_even_days=break_even_days(apr, costs, borrow=borrow),
               share_favourable=float((win > 0).mean()),
               spread_std=float(win.std(ddof=1)) if len(win) > 1 else math.nan,
               n=len(win), history_days=w.history_days)
    return rec


def scan(funding: pd.DataFrame, config: ScanConfig = ScanConfig(), *, instruments: pd.DataFrame | None = None,
         prices: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rank carry trades by expected net carry after costs over the hold (best first).

    Parameters
    ----------
    funding, instruments, prices : pd.DataFrame
        See the module docstring for their columns and units.
    config : ScanConfig
        Lookback, hold, filters and costs.

    Returns
    -------
    pd.DataFrame
        :data:`RESULT_COLUMNS`, one row per (kind, symbol, venue pair, direction), sorted by
        ``net_carry`` descending (ties: ``share_favourable`` descending, then symbol and venue pair);
        ``rank`` starts at 1. APRs and carries are fractions (0.1 = 10 %); ``net_carry`` is per unit of
        one leg's notional over ``hold_days``; sizes in base and quote units. Empty (same columns) when
        no pair passes the filters.

    Raises
    ------
    InvalidInput
        A malformed frame, or ``as_of`` before any funding.
    """
    cfg = config
    df = _clean_funding(funding)
    if cfg.venues is not None:
        df = df[df["venue"].isin(cfg.venues)]
        if df.empty:
            raise InvalidInput("venues", ",".join(cfg.venues), "venues that have funding in the data: "
                               + ", ".join(sorted(_clean_funding(funding)["venue"].unique())))
    end = cfg.as_of if cfg.as_of is not None else df["ts"].max()
    if end < df["ts"].min():
        raise InvalidInput("as_of", str(end), f"a time at or after the first funding event {df['ts'].min()}")
    px = None
    if prices is not None and not prices.empty:
        px = prices.copy()
        px["venue"] = px["venue"].astype("str").str.lower()
        px["base"] = [s.split("/")[0] for s in px["symbol"].astype("str")]
    inst = None
    if instruments is not None and not instruments.empty:
        inst = instruments.copy()
        inst["venue"] = inst["venue"].astype("str").str.lower()
    legs = _legs(df)
    rows: list[dict[str, object]] = []
    if "spot_perp" in cfg.kinds:
        for (venue, symbol), leg in legs.items():
            base, quote, settle = split_symbol(symbol)
            if settle != quote:
                continue  # inverse (coin-margined) perps: no same-venue spot/perp row (see the docstring)
            w = _window(leg.apr, leg.interval_h, cfg, end)
            if w is None:
                continue
            short_perp = w.mean >= 0
            spot = f"{base}/{quote}"
            fees = cfg.fees_of(venue)
            costs = _costs(fees.spot_taker, fees.perp_taker, cfg, borrow=not short_perp)
            q, qq, src = _min_size(inst, px, [(venue, spot), (venue, symbol)])
            rows.append(_finish({
                "kind": "spot_perp", "symbol": symbol, "base": base, "venue_pair": venue,
                "direction": (f"long spot {venue} / short perp {venue}" if short_perp
                              else f"short spot {venue} / long perp {venue}"),
                "long_venue": venue, "long_leg": "spot" if short_perp else "perp",
                "short_venue": venue, "short_leg": "perp" if short_perp else "spot",
                "long_interval_h": math.nan if short_perp else leg.interval_h,
                "short_interval_h": leg.interval_h if short_perp else math.nan,
                "min_size_base": q, "min_size_quote": qq, "size_source": src,
            }, w, not short_perp, costs, not short_perp, cfg))
    if "perp_perp" in cfg.kinds:
        by_symbol: dict[str, list[_Leg]] = {}
        for (_, symbol), leg in legs.items():
            by_symbol.setdefault(symbol, []).append(leg)
        for symbol, group in by_symbol.items():
            base = split_symbol(symbol)[0]
            for i in range(len(group)):
                for j in range(i + 1, len(group)):
                    a, b = group[i], group[j]
                    spread, hours = _pair_spread(b, a)  # short b, long a
                    w = _window(spread, hours, cfg, end)
                    if w is None:
                        continue
                    flip = w.mean < 0
                    short, long_ = (a, b) if flip else (b, a)
                    costs = _costs(cfg.fees_of(long_.venue).perp_taker, cfg.fees_of(short.venue).perp_taker, cfg,
                                   borrow=False)
                    q, qq, src = _min_size(inst, px, [(long_.venue, symbol), (short.venue, symbol)])
                    rows.append(_finish({
                        "kind": "perp_perp", "symbol": symbol, "base": base,
                        "venue_pair": f"{long_.venue}/{short.venue}",
                        "direction": f"long perp {long_.venue} / short perp {short.venue}",
                        "long_venue": long_.venue, "long_leg": "perp", "short_venue": short.venue,
                        "short_leg": "perp", "long_interval_h": long_.interval_h, "short_interval_h": short.interval_h,
                        "min_size_base": q, "min_size_quote": qq, "size_source": src,
                    }, w, flip, costs, False, cfg))
    out = pd.DataFrame(rows, columns=[c for c in RESULT_COLUMNS if c not in ("rank", "row_id")])
    out = out[out["history_days"] >= cfg.min_history_days] if len(out) else out
    out = out.sort_values(["net_carry", "share_favourable", "symbol", "venue_pair"],
                          ascending=[False, False, True, True], kind="stable").reset_index(drop=True)
    if cfg.top is not None:
        out = out.head(cfg.top)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out.insert(1, "row_id", [f"{k}|{s}|{lv}:{ll}|{sv}:{sl}" for k, s, lv, ll, sv, sl in
                             zip(out["kind"], out["symbol"], out["long_venue"], out["long_leg"],
                                 out["short_venue"], out["short_leg"])])
    return out[RESULT_COLUMNS]
