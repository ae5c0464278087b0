"""Margin and liquidation math for Binance USDⓈ-M perpetuals, plus portfolio risk measures.

Pure functions, float64 money (quote units, USDT), signed base quantities (+ long / - short).

Sources
-------
- Liquidation price, one-way mode: Binance FAQ "How to Calculate Liquidation Price of USDⓈ-M
  Futures Contracts" (https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93)::

      LP = (WB - TMM1 + UPNL1 + cumB - Side1 * Position1 * EP1)
           / (Position1 * MMR1 - Side1 * Position1)

  WB wallet balance (isolated: the position's isolated margin), TMM1 / UPNL1 maintenance margin
  and unrealised PnL of all OTHER contracts (both 0 in isolated mode), cumB maintenance amount
  of the bracket, Side1 = +1 long / -1 short, Position1 = |qty|, EP1 entry price, MMR1 the
  bracket's maintenance margin rate. The FAQ adds: when the notional at the liquidation price
  falls in a different bracket than at entry, use the bracket at the liquidation price.
  The FAQ's cross-margin example (wallet 1,535,443.01 USDT; BTCUSDT long 109.488 @ 32,481.98 and
  ETHUSDT long 3,683.979 @ 1,456.84 -> liquidation 26,316.89 and 1,153.26) is reproduced to the
  cent in tests/test_analytics_risk_margin.py, as is a second Binance FAQ example (500 USDT,
  1,000 USDT long at 20x from 50,000 -> 25,100.40).
- Maintenance amount ("cum"): same FAQ, ``cum_n = floor_n * (MMR_n - MMR_{n-1}) + cum_{n-1}``
  (their example: 250,000 * (1% - 0.5%) + 50 = 1,300 USDT), so that
  ``maintenance_margin = notional * MMR - cum`` is continuous across bracket edges.
- Margin ratio = maintenance margin / margin balance (Binance FAQ "Margin ratio"); liquidation
  at 100 %.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from hedge_core import money
from hedge_core.errors import InvalidInput
from hedge_core.types import Bracket, MarginMode

__all__ = [
    "BTCUSDT_BRACKETS",
    "ETHUSDT_BRACKETS",
    "Bracket",
    "bracket_columns",
    "bracket_for",
    "brackets_for",
    "brackets_from_tiers",
    "okx_tiers_to_notional",
    "cvar_historical",
    "cvar_parametric",
    "leverage_for_liquidation_buffer",
    "leverage_for_target_vol",
    "liquidation_distance",
    "liquidation_price",
    "maintenance_margin",
    "margin_ratio",
    "table_key",
    "table_of",
    "var_historical",
    "var_parametric",
]


def _table(rows: Sequence[tuple[float, float, float, float, float]]) -> tuple[Bracket, ...]:
    return tuple(Bracket(i + 1, *map(float, r)) for i, r in enumerate(rows))


# Binance USDⓈ-M "Leverage & Margin" tables for BTCUSDT (125x) and ETHUSDT (100x) as of 2021, the
# generation the liquidation FAQ's examples use (BTC: 264,000 USDT -> MMR 1 %, 500,000 -> cum 1,300).
# Rows as reproduced by public Binance liquidation calculators (read from Binance's futures web
# app); every cum is checked in the tests against Binance's published recurrence. The cap of the
# last ETH bracket is not stated by those sources (they use an open-ended sentinel): 50,000,000 is
# our choice. These are the FAQ examples' tables only: the committed defaults (:func:`brackets_for`, the
# instruments snapshot) are the venue's 2024 tables as recorded by freqtrade (docs/instruments.md, "Sources"),
# and an account's own table comes from GET /fapi/v1/leverageBracket.
# Columns: notional floor, notional cap (USDT), max leverage, maintenance margin rate, cum (USDT).
BTCUSDT_BRACKETS: tuple[Bracket, ...] = _table([
    (0, 50_000, 125, 0.004, 0),
    (50_000, 250_000, 100, 0.005, 50),
    (250_000, 1_000_000, 50, 0.01, 1_300),
    (1_000_000, 10_000_000, 20, 0.025, 16_300),
    (10_000_000, 20_000_000, 10, 0.05, 266_300),
    (20_000_000, 50_000_000, 5, 0.10, 1_266_300),
    (50_000_000, 100_000_000, 4, 0.125, 2_516_300),
    (100_000_000, 200_000_000, 3, 0.15, 5_016_300),
    (200_000_000, 300_000_000, 2, 0.25, 25_016_300),
    (300_000_000, 500_000_000, 1, 0.50, 100_016_300),
])

ETHUSDT_BRACKETS: tuple[Bracket, ...] = _table([
    (0, 10_000, 100, 0.005, 0),
    (10_000, 100_000, 75, 0.0065, 15),
    (100_000, 500_000, 50, 0.01, 365),
    (500_000, 1_000_000, 25, 0.02, 5_365),
    (1_000_000, 2_000_000, 10, 0.05, 35_365),
    (2_000_000, 5_000_000, 5, 0.10, 135_365),
    (5_000_000, 10_000_000, 4, 0.125, 260_365),
    (10_000_000, 20_000_000, 3, 0.15, 510_365),
    (20_000_000, 50_000_000, 2, 0.25, 2_510_365),
])

def brackets_for(symbol: str, venue: str = "binance") -> tuple[Bracket, ...]:
    """The committed default bracket table of a perp (``'BTC/USDT:USDT'`` or its Binance id ``'BTCUSDT'``).

    A pure lookup in the committed instruments snapshot (:mod:`hedge_core.data.instruments`), never
    changed at run time. An instrument's own table (``Instrument.brackets``: from the store or the
    venue) takes precedence wherever one is at hand; this is the fallback for callers that only know a
    symbol (the fast path). InvalidInput naming the symbol when the snapshot has no table for it.
    """
    from hedge_core.data.instruments import snapshot

    snap = snapshot()
    inst = snap.get((venue, symbol))
    if inst is None and "/" not in symbol:  # a venue id such as BTCUSDT
        inst = next((i for (v, s), i in snap.items() if v == venue and ":" in s
                     and s.split(":")[0].replace("/", "") == symbol), None)
    if inst is None or not inst.brackets:
        known = sorted(s for (v, s), i in snap.items() if v == venue and i.brackets)
        raise InvalidInput("symbol", symbol, f"a perp with a committed {venue} bracket table: one of {known} "
                                             "(or give the instrument its own brackets: `hedge data instruments`)")
    return inst.brackets


_TABLES: dict[int, tuple[Bracket, ...]] = {}  # id -> table, kept alive so an id is never reused


def table_key(brackets: tuple[Bracket, ...]) -> int:
    """A cheap, stable hashable key of an immutable bracket table (memoised callers key on it;
    hashing the tuple itself costs microseconds). Inverse: :func:`table_of`."""
    k = id(brackets)
    if _TABLES.get(k) is not brackets:
        _TABLES[k] = brackets
    return k


def table_of(key: int) -> tuple[Bracket, ...]:
    """The table a :func:`table_key` stands for."""
    return _TABLES[key]


def okx_tiers_to_notional(tiers: Sequence[Mapping[str, Any]], contract_size: float, price: float
                          ) -> list[dict[str, Any]]:
    """OKX position tiers (ccxt ``fetch_market_leverage_tiers`` rows, whose ``minNotional``/``maxNotional`` are
    OKX's ``minSz``/``maxSz``: CONTRACTS for SWAP/FUTURES, "Get position tiers",
    https://www.okx.com/docs-v5/en/#public-data-rest-api-get-position-tiers) as notional tiers for
    :func:`brackets_from_tiers`.

    ``notional = contracts x contract_size (base per contract, ``ctVal``) x price`` (quote, USDT); ``price`` is
    the mark at read time, so the table's edges in USDT move with the price (the venue's edges are fixed in
    contracts). A tier starts one contract above the previous one's ``maxSz`` (OKX publishes 0-2,000,
    2,001-22,000, ...): the floor of each tier is put at the previous tier's cap, so the table is contiguous.
    OKX charges the WHOLE position its tier's rate (maintenance = position value x MMR, "Tiered maintenance
    margin ratio", https://www.okx.com/help/tier): pass the result to :func:`brackets_from_tiers` with
    ``whole_position=True`` (every ``cum`` 0), not the continuous model of Binance and Bybit.
    """
    if not (contract_size > 0 and math.isfinite(contract_size)):
        raise InvalidInput("contract_size", contract_size, "base per contract > 0 (OKX ctVal)")
    if not (price > 0 and math.isfinite(price)):
        raise InvalidInput("price", price, "a mark price > 0 (quote per base)")
    rows = sorted(tiers, key=lambda t: float(t.get("minNotional") or 0.0))
    out: list[dict[str, Any]] = []
    for k, t in enumerate(rows):
        try:
            lo, hi = float(t["minNotional"]), float(t["maxNotional"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"tiers[{k}]", t, f"minNotional and maxNotional in contracts ({exc})")
        if out and not (0 <= lo - float(rows[k - 1]["maxNotional"]) <= 1):
            raise InvalidInput(f"tiers[{k}].minSz", lo, f"the previous tier's maxSz {rows[k - 1]['maxNotional']} "
                                                        "(+ at most one contract)")
        floor = out[-1]["maxNotional"] if out else lo * contract_size * price
        out.append({**t, "minNotional": floor, "maxNotional": hi * contract_size * price})
    return out


def brackets_from_tiers(tiers: Sequence[Mapping[str, Any]], *, whole_position: bool = False) -> tuple[Bracket, ...]:
    """A bracket table from ccxt's ``fetch_leverage_tiers`` rows of one symbol (the venue's own table).

    ``whole_position=True`` (OKX): the venue charges the whole position its tier's MMR, so every ``cum`` is 0
    (maintenance = |notional| x MMR of the tier holding it, discontinuous at the edges); a row carrying a
    non-zero ``cum`` / ``mmDeduction`` is then refused.

    Each row needs ``minNotional``, ``maxNotional`` (USDT), ``maintenanceMarginRate`` (fraction) and
    ``maxLeverage`` (Binance's leverage brackets and Bybit's risk-limit tiers both come so from ccxt);
    the maintenance amount is Binance's ``info['cum']`` or Bybit's ``info['mmDeduction']`` when given, else derived
    with the FAQ's recurrence. Raises InvalidInput naming the row and field when the rows are not a
    contiguous table from 0 with increasing rates, or when a given ``cum`` contradicts the
    recurrence by more than 0.01 USDT (then the table would not be continuous).
    """
    if not tiers:
        raise InvalidInput("tiers", 0, "at least one leverage tier")
    rows = sorted(tiers, key=lambda t: float(t.get("minNotional") or 0.0))
    out: list[Bracket] = []
    for k, t in enumerate(rows):
        try:
            floor, cap = float(t["minNotional"]), float(t["maxNotional"])
            mmr, lev = float(t["maintenanceMarginRate"]), float(t["maxLeverage"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"tiers[{k}]", t, f"minNotional, maxNotional, maintenanceMarginRate, maxLeverage ({exc})")
        prev = out[-1] if out else None
        if (prev is None and floor != 0) or (prev is not None and floor != prev.notional_cap):
            raise InvalidInput(f"tiers[{k}].minNotional", floor, f"{0.0 if prev is None else prev.notional_cap} (contiguous)")
        if not (cap > floor):
            raise InvalidInput(f"tiers[{k}].maxNotional", cap, f"> minNotional {floor}")
        if not (0 < mmr < 1) or (prev is not None and mmr <= prev.mmr):
            raise InvalidInput(f"tiers[{k}].maintenanceMarginRate", mmr,
                               f"in (0, 1) and above the previous tier's {prev.mmr if prev else 0}")
        if not lev >= 1:
            raise InvalidInput(f"tiers[{k}].maxLeverage", lev, ">= 1")
        cum = 0.0 if prev is None or whole_position else floor * (mmr - prev.mmr) + prev.cum
        info = t.get("info") if isinstance(t.get("info"), Mapping) else {}
        # Binance's "cum"; Bybit's "mmDeduction" (v5 risk-limit, "" when not published): the same amount
        given = next((info[k] for k in ("cum", "mmDeduction") if info.get(k) not in (None, "")), None)
        if given is not None:
            if abs(float(given) - cum) > 0.01:
                raise InvalidInput(f"tiers[{k}].info.cum", given, "0 (the whole position at its tier's rate)" if whole_position
                                   else f"{cum:.2f} (floor x (MMR - previous MMR) + previous cum)")
            cum = float(given)
        out.append(Bracket(int(t.get("tier") or k + 1), floor, cap, lev, mmr, cum))
    return tuple(out)


def _check_brackets(brackets: Sequence[Bracket]) -> None:
    if len(brackets) == 0:
        raise InvalidInput("brackets", brackets, "a non-empty bracket table")


_COLUMNS: dict[int, tuple[Sequence[Bracket], tuple[tuple[float, ...], ...]]] = {}


def bracket_columns(brackets: Sequence[Bracket]) -> tuple[tuple[float, ...], ...]:
    """The table as the parallel columns :mod:`hedge_core.money` takes:
    ``(floors, caps, max_leverages, mmrs, cums)``, tuples of floats (memoised per table object)."""
    hit = _COLUMNS.get(id(brackets))
    if hit is not None and hit[0] is brackets:
        return hit[1]
    _check_brackets(brackets)
    cols = tuple(tuple(float(getattr(b, f)) for b in brackets)
                 for f in ("notional_floor", "notional_cap", "max_leverage", "mmr", "cum"))
    if len(_COLUMNS) > 64:
        _COLUMNS.clear()
    if isinstance(brackets, tuple):  # immutable: safe to memoise; holding it keeps its id unique
        _COLUMNS[id(brackets)] = (brackets, cols)
    return cols


def bracket_for(notional: float, brackets: Sequence[Bracket]) -> Bracket:
    """The bracket holding ``|notional|`` (USDT): ``floor <= |notional| < cap``.

    A notional at or above the last cap maps to the last bracket (Binance refuses such a
    position; callers that open positions must check ``max_leverage``/cap themselves).
    """
    n = abs(float(notional))
    if not math.isfinite(n):
        raise InvalidInput("notional", notional, "a finite number (USDT)")
    return brackets[money.bracket_index(n, bracket_columns(brackets)[1])]


def maintenance_margin(notional: float, brackets: Sequence[Bracket]) -> float:
    """Maintenance margin in USDT of a position of ``notional`` USDT (sign ignored).

    ``MM = |notional| * MMR - cum`` with the bracket of ``|notional|``; continuous in notional for Binance's and
    Bybit's tables, a step at each tier edge for OKX's (every ``cum`` 0: the whole position at its tier's rate).

    Parameters
    ----------
    notional : float
        Position notional, quote (USDT) = |qty| x mark price. Sign is ignored.
    brackets : sequence of Bracket
        E.g. :data:`BTCUSDT_BRACKETS`.

    Returns
    -------
    float
        Maintenance margin, USDT, >= 0.
    """
    b = bracket_for(notional, brackets)
    return money.maintenance_margin(float(notional), b.mmr, b.cum)


def liquidation_price(
    qty: float,
    entry_price: float,
    wallet_balance: float,
    brackets: Sequence[Bracket],
    *,
    margin_mode: MarginMode | str = MarginMode.ISOLATED,
    other_maintenance_margin: float = 0.0,
    other_unrealized_pnl: float = 0.0,
) -> float:
    """Binance USDⓈ-M liquidation price (one-way mode), quote per base.

    ``LP = (WB - TMM1 + UPNL1 + cumB - Side1*Position1*EP1) / (Position1*MMR1 - Side1*Position1)``
    (Binance FAQ, see module docstring). The bracket is the one that contains the notional AT the
    liquidation price (``|qty| * LP``), as the FAQ prescribes; if no bracket is self-consistent
    the bracket of the entry notional is used.

    Parameters
    ----------
    qty : float
        Signed position, base units (+ long, - short). Zero returns NaN (no position).
    entry_price : float
        Average entry price, quote per base, > 0.
    wallet_balance : float
        Isolated: the margin assigned to this position (incl. added margin), USDT.
        Cross: the cross wallet balance, USDT.
    brackets : sequence of Bracket
        Maintenance table of the symbol.
    margin_mode : MarginMode or str
        ``'isolated'`` (TMM1 and UPNL1 forced to 0) or ``'cross'``.
    other_maintenance_margin, other_unrealized_pnl : float
        Cross only: TMM1 and UPNL1 of all other contracts, USDT (UPNL + is a profit).

    Returns
    -------
    float
        Liquidation price, quote per base. ``0.0`` when the position cannot be liquidated at any
        positive price (an over-collateralised long; Binance's UI shows "--"). NaN if qty == 0.
    """
    _check_brackets(brackets)
    mode = MarginMode(margin_mode) if not isinstance(margin_mode, MarginMode) else margin_mode
    q = float(qty)
    ep = float(entry_price)
    wb = float(wallet_balance)
    if not math.isfinite(q):
        raise InvalidInput("qty", qty, "a finite signed base quantity")
    if not (math.isfinite(ep) and ep > 0):
        raise InvalidInput("entry_price", entry_price, "a finite price > 0 (quote per base)")
    if not math.isfinite(wb):
        raise InvalidInput("wallet_balance", wallet_balance, "a finite amount in USDT")
    if q == 0.0:
        return math.nan
    if mode is MarginMode.ISOLATED:
        tmm, upnl = 0.0, 0.0
    else:
        tmm, upnl = float(other_maintenance_margin), float(other_unrealized_pnl)
        if not (math.isfinite(tmm) and tmm >= 0):
            raise InvalidInput("other_maintenance_margin", other_maintenance_margin, "finite and >= 0 (USDT)")
        if not math.isfinite(upnl):
            raise InvalidInput("other_unrealized_pnl", other_unrealized_pnl, "a finite amount in USDT")
    floors, caps, _, mmrs, cums = bracket_columns(brackets)
    return money.liquidation_price(q, ep, wb, tmm, upnl, floors, caps, mmrs, cums)


def liquidation_distance(qty: float, mark_price: float, liq_price: float) -> float:
    """Fractional distance from the mark to the liquidation price, in the adverse direction.

    Long: ``(mark - LP) / mark``; short: ``(LP - mark) / mark``. ``0.05`` means a 5 % adverse
    move liquidates; <= 0 means at or past liquidation. A long with ``LP == 0`` gives 1.0.
    NaN when qty == 0.
    """
    m = float(mark_price)
    if not (math.isfinite(m) and m > 0):
        raise InvalidInput("mark_price", mark_price, "a finite price > 0")
    if qty == 0 or not math.isfinite(float(liq_price)):
        return math.nan
    return money.liquidation_distance(qty, m, liq_price)


def margin_ratio(maintenance: float, margin_balance: float) -> float:
    """Binance margin ratio = maintenance margin / margin balance (1.0 = 100 % = liquidation).

    ``margin_balance`` = wallet balance + unrealised PnL (USDT). A balance <= 0 gives ``inf``.
    """
    mm = float(maintenance)
    mb = float(margin_balance)
    if not (math.isfinite(mm) and mm >= 0):
        raise InvalidInput("maintenance", maintenance, "finite and >= 0 (USDT)")
    if not math.isfinite(mb):
        raise InvalidInput("margin_balance", margin_balance, "a finite amount in USDT")
    if mb <= 0:
        return math.inf
    return mm / mb


# ---- leverage choice ------------------------------------------------------------------------


def _clip_leverage(lev: float, min_leverage: float, max_leverage: float) -> float:
    if not (math.isfinite(min_leverage) and min_leverage >= 1.0):
        raise InvalidInput("min_leverage", min_leverage, ">= 1")
    if not (math.isfinite(max_leverage) and max_leverage >= min_leverage):
        raise InvalidInput("max_leverage", max_leverage, f">= min_leverage ({min_leverage})")
    return float(money.clip(lev, min_leverage, max_leverage))


def leverage_for_liquidation_buffer(buffer: float, notional: float, brackets: Sequence[Bracket], *,
                                    side: int = -1, min_leverage: float = 1.0,
                                    max_leverage: float | None = None) -> float:
    """Highest isolated leverage whose liquidation price is at least ``buffer`` away from entry.

    With isolated margin ``WB = notional / L`` the Binance formula gives, with MMR and cum of the
    bracket of the notional AT the liquidation price and ``c = cum / notional``:

    - long:  ``LP / EP = (1 - 1/L - c) / (1 - MMR)``, so ``1/L = 1 - c - (1 - buffer)(1 - MMR)``;
    - short: ``LP / EP = (1 + 1/L + c) / (1 + MMR)``, so ``1/L = (1 + buffer)(1 + MMR) - 1 - c``.

    Parameters
    ----------
    buffer : float
        Required adverse move to liquidation, fraction of entry in (0, 1) (0.3 = 30 %).
    notional : float
        Position notional at entry, USDT (> 0): picks the bracket.
    side : int
        +1 long, -1 short (default: the short perp of a hedge).
    min_leverage, max_leverage : float
        Bounds of the answer; ``max_leverage`` defaults to the bracket's max leverage.

    Returns
    -------
    float
        Leverage in ``[min_leverage, max_leverage]``. When the bound binds the buffer is larger
        (at ``max``) or cannot be reached (at ``min``); check with :func:`liquidation_price`.
    """
    b_ = float(buffer)
    if not (math.isfinite(b_) and 0 < b_ < 1):
        raise InvalidInput("buffer", buffer, "a fraction in (0, 1)")
    n = float(notional)
    if not (math.isfinite(n) and n > 0):
        raise InvalidInput("notional", notional, "a notional > 0 (USDT)")
    if side not in (1, -1):
        raise InvalidInput("side", side, "+1 (long) or -1 (short)")
    # MMR and cum of the bracket AT the liquidation price (Binance FAQ), leverage cap at entry
    br = bracket_for(n * (1.0 - side * b_), brackets)
    hi = bracket_for(n, brackets).max_leverage if max_leverage is None else float(max_leverage)
    return _clip_leverage(money.leverage_for_buffer(b_, n, side, br.mmr, br.cum), min_leverage, hi)


def leverage_for_target_vol(target_vol: float, asset_vol: float, *, min_leverage: float = 1.0,
                            max_leverage: float = 10.0) -> float:
    """Leverage that scales the asset's volatility to ``target_vol``: ``clip(target / asset, min, max)``.

    Both volatilities on the same horizon and annualisation (fractions > 0).
    """
    t, a = float(target_vol), float(asset_vol)
    if not (math.isfinite(t) and t > 0):
        raise InvalidInput("target_vol", target_vol, "a volatility > 0")
    if not (math.isfinite(a) and a > 0):
        raise InvalidInput("asset_vol", asset_vol, "a volatility > 0")
    return _clip_leverage(t / a, min_leverage, max_leverage)


# ---- VaR / CVaR -----------------------------------------------------------------------------


def _returns(returns: pd.Series | np.ndarray, name: str = "returns") -> np.ndarray:
    v = np.asarray(returns, dtype="float64")
    if v.ndim != 1 or len(v) < 2:
        raise InvalidInput(f"len({name})", len(v) if v.ndim else 0, ">= 2 observations (1-D)")
    if not np.isfinite(v).all():
        raise InvalidInput(name, f"{int((~np.isfinite(v)).sum())} non-finite values", "finite returns (dropna first)")
    return v


def _level(level: float) -> float:
    lv = float(level)
    if not (math.isfinite(lv) and 0.5 <= lv < 1.0):
        raise InvalidInput("level", level, "a confidence level in [0.5, 1), e.g. 0.95 or 0.99")
    return lv


def var_historical(returns: pd.Series | np.ndarray, level: float = 0.99) -> float:
    """Historical Value-at-Risk: the loss not exceeded with probability ``level``.

    ``VaR = -quantile(returns, 1 - level)`` (linear interpolation, numpy default), a POSITIVE
    number for a loss (0.05 = 5 % of value), per the returns' horizon.
    """
    v = _returns(returns)
    return float(-np.quantile(v, 1.0 - _level(level)))


def cvar_historical(returns: pd.Series | np.ndarray, level: float = 0.99) -> float:
    """Historical CVaR (expected shortfall): ``-mean(returns <= -VaR)``, positive for a loss."""
    v = _returns(returns)
    q = np.quantile(v, 1.0 - _level(level))
    return float(-v[v <= q].mean())


def var_parametric(returns: pd.Series | np.ndarray, level: float = 0.99) -> float:
    """Gaussian VaR: ``-(mu + sigma * z_{1-level})`` with sample mean and std (ddof=1)."""
    from scipy.stats import norm

    v = _returns(returns)
    return float(-(v.mean() + v.std(ddof=1) * norm.ppf(1.0 - _level(level))))


def cvar_parametric(returns: pd.Series | np.ndarray, level: float = 0.99) -> float:
    """Gaussian CVaR: ``-(mu - sigma * pdf(z) / (1 - level))``, z = ``ppf(1 - level)``."""
    from scipy.stats import norm

    lv = _level(level)
    v = _returns(returns)
    z = norm.ppf(1.0 - lv)
    return float(-(v.mean() - v.std(ddof=1) * norm.pdf(z) / (1.0 - lv)))
