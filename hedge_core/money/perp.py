"""Perpetual money: funding, carry costs, maintenance margin, liquidation price, leverage for a
buffer. See :mod:`hedge_core.money` for the conventions."""

from __future__ import annotations

import math

from hedge_core.lazyjit import jitable

__all__ = [
    "HOURS_PER_YEAR",
    "FLAT_MMR",
    "funding_payment",
    "funding_position",
    "funding_apr",
    "funding_pay_apr",
    "basis",
    "round_trip_cost",
    "pair_round_trip_cost",
    "expected_net_carry",
    "bracket_index",
    "maintenance_margin",
    "liquidation_price_in_bracket",
    "liquidation_price",
    "liquidation_distance",
    "max_notional",
    "clip",
    "required_buffer",
    "leverage_for_buffer",
    "whole_leverage",
    "choose_leverage",
    "flat_liquidation_move",
]

#: 365 x 24 (funding APR).
HOURS_PER_YEAR = 365 * 24


# ---- funding ----------------------------------------------------------------------------------


@jitable
def funding_payment(qty: float, mark: float, rate: float) -> float:
    """Funding of a perp position at a settlement, quote: ``-qty x mark x rate`` (+ received /
    - paid; a positive rate makes longs pay shorts)."""
    return -qty * mark * rate


@jitable
def funding_position(amount: float, mark: float, rate: float) -> float:
    """The signed position (base) a funding ``amount`` (quote, + received) was paid on at ``mark`` and
    ``rate``: the inverse of :func:`funding_payment`; NaN when mark x rate is 0 or not finite."""
    prod = mark * rate
    return -amount / prod if prod and math.isfinite(prod) else math.nan


@jitable
def funding_apr(rate: float, interval_hours: float) -> float:
    """Annualised funding ``rate x 365 x 24 / interval_hours`` (simple), of the rate's sign."""
    return rate * HOURS_PER_YEAR / interval_hours


@jitable
def funding_pay_apr(qty: float, rate: float, interval_hours: float) -> float:
    """APR a perp position PAYS at ``rate`` (0 when it receives or is flat or the rate is NaN)."""
    if qty == 0.0 or math.isnan(rate):
        return 0.0
    pay = rate if qty > 0 else -rate  # longs pay positive rates, shorts pay negative ones
    return funding_apr(max(pay, 0.0), interval_hours)


@jitable
def basis(perp: float, spot: float) -> float:
    """Perp premium over spot ``(perp - spot) / spot`` (fraction; + = perp above spot)."""
    return (perp - spot) / spot


@jitable
def round_trip_cost(legs: int, fee_rate: float, slippage_rate: float) -> float:
    """One-off cost of opening and closing ``legs`` legs, fraction of notional:
    ``legs x 2 x (fee_rate + slippage_rate)``."""
    return legs * 2 * (fee_rate + slippage_rate)


@jitable
def pair_round_trip_cost(spot_fee: float, perp_fee: float, slippage_rate: float) -> float:
    """One-off cost of opening and closing one spot leg and one perp leg, fraction of notional,
    each leg at its own taker fee: ``2 x (spot_fee + slippage_rate) + 2 x (perp_fee + slippage_rate)``."""
    return 2 * (spot_fee + slippage_rate) + 2 * (perp_fee + slippage_rate)


@jitable
def expected_net_carry(apr_received: float, borrow_apr: float, hold_days: float, round_trip: float) -> float:
    """Expected net carry over ``hold_days``, fraction of notional:
    ``(apr_received - borrow_apr) x hold_days / 365 - round_trip``."""
    return (apr_received - borrow_apr) * hold_days / 365.0 - round_trip


# ---- maintenance margin, liquidation, leverage -----------------------------------------------


@jitable
def bracket_index(notional: float, caps) -> int:  # noqa: ANN001 - tuple or array
    """Index of the bracket holding ``|notional|``: the first with ``|notional| < cap``, else the last."""
    n = abs(notional)
    for j in range(len(caps)):
        if n < caps[j]:
            return j
    return len(caps) - 1


@jitable
def maintenance_margin(notional: float, mmr: float, cum: float) -> float:
    """Maintenance margin, quote: ``|notional| x MMR - cum`` (Binance; MMR and cum of the bracket
    of ``|notional|``, continuous across bracket edges)."""
    return abs(notional) * mmr - cum


@jitable
def liquidation_price_in_bracket(wb: float, tmm: float, upnl: float, cum: float, side: float, size: float,
                                 ep: float, mmr: float) -> float:
    """Binance one-way liquidation price with one bracket's MMR and cum:
    ``(WB - TMM1 + UPNL1 + cumB - Side1 x Position1 x EP1) / (Position1 x MMR1 - Side1 x Position1)``
    (``side`` +1 long / -1 short, ``size = |qty|``; may be <= 0)."""
    return (wb - tmm + upnl + cum - side * size * ep) / (size * mmr - side * size)


@jitable
def liquidation_price(qty: float, ep: float, wb: float, tmm: float, upnl: float,
                      floors, caps, mmrs, cums) -> float:  # noqa: ANN001 - tuples or arrays
    """Binance USDⓈ-M liquidation price (one-way; isolated: ``tmm = upnl = 0`` and ``wb`` the
    position's margin), using the bracket that holds the notional AT the liquidation price (the
    FAQ's rule); if none is self-consistent, the bracket of the entry notional. ``qty != 0``.

    Returns 0.0 when no positive price liquidates (an over-collateralised long).
    """
    side = 1 if qty > 0 else -1
    size = abs(qty)
    nb = len(caps)
    for j in range(nb):
        lp = liquidation_price_in_bracket(wb, tmm, upnl, cums[j], side, size, ep, mmrs[j])
        n = size * max(lp, 0.0)
        if floors[j] <= n and (n < caps[j] or j == nb - 1):
            return max(lp, 0.0)
    k = bracket_index(size * ep, caps)
    return max(liquidation_price_in_bracket(wb, tmm, upnl, cums[k], side, size, ep, mmrs[k]), 0.0)


@jitable
def liquidation_distance(qty: float, mark: float, liq_price: float) -> float:
    """Adverse move from ``mark`` to the liquidation price, fraction: long ``(mark - LP) / mark``,
    short ``(LP - mark) / mark`` (<= 0: at or past liquidation)."""
    return (mark - liq_price) / mark if qty > 0 else (liq_price - mark) / mark


@jitable
def max_notional(leverage: float, caps, maxlevs) -> float:  # noqa: ANN001 - tuples or arrays
    """Largest position notional the bracket table allows at ``leverage`` (Binance -2027), quote:
    the highest cap of the brackets whose max leverage is at least ``leverage``; 0 if none."""
    m = 0.0
    for j in range(len(caps)):
        if maxlevs[j] >= leverage - 1e-9 and caps[j] > m:
            m = caps[j]
    return m


@jitable
def clip(x: float, lo: float, hi: float) -> float:
    """``min(max(x, lo), hi)``."""
    return min(max(x, lo), hi)


@jitable
def required_buffer(sigma_24h: float, liq_buffer: float, vol_multiple: float) -> float:
    """Adverse move to liquidation a position must survive: ``max(liq_buffer, k x sigma_24h)``
    capped at 0.95; a NaN or non-positive sigma uses ``liq_buffer`` alone."""
    req = liq_buffer
    if not math.isnan(sigma_24h) and sigma_24h > 0:
        req = max(req, vol_multiple * sigma_24h)
    return min(req, 0.95)


@jitable
def leverage_for_buffer(buffer: float, notional: float, side: float, mmr: float, cum: float) -> float:
    """Isolated leverage whose liquidation price is exactly ``buffer`` away from entry (unclipped;
    ``inf`` when any leverage keeps that distance). With ``WB = notional / L`` and ``c = cum /
    notional`` (MMR and cum of the bracket of the notional AT the liquidation price):
    long ``1/L = 1 - c - (1 - buffer)(1 - MMR)``; short ``1/L = (1 + buffer)(1 + MMR) - 1 - c``."""
    c = cum / notional
    if side == 1:
        inv = 1.0 - c - (1.0 - buffer) * (1.0 - mmr)
    else:
        inv = (1.0 + buffer) * (1.0 + mmr) - 1.0 - c
    return math.inf if inv <= 0 else 1.0 / inv


@jitable
def whole_leverage(leverage: float, lowest: float) -> float:
    """Rounded DOWN to a whole leverage (venues take integers), never below ``lowest``."""
    return float(max(math.floor(leverage + 1e-9), lowest))


@jitable
def choose_leverage(sigma_24h: float, notional: float, side: float, liq_buffer: float, vol_multiple: float,
                    min_leverage: float, max_leverage: float, caps, mmrs, cums, maxlevs,  # noqa: ANN001
                    cap: float) -> float:
    """The engine's leverage rule with a bracket table (``engine.sizing.choose_leverage``): the
    highest whole leverage in ``[min, max]`` (max also capped by the bracket of ``notional``)
    whose isolated liquidation price is :func:`required_buffer` away from entry, and not above
    ``cap`` (the target-volatility leverage; ``inf`` = none) unless that is below ``min``."""
    buf = required_buffer(sigma_24h, liq_buffer, vol_multiple)
    n = max(notional, 1.0)
    hi = min(max_leverage, maxlevs[bracket_index(n, caps)])
    lo = min(min_leverage, hi)
    k = bracket_index(n * (1.0 - side * buf), caps)
    lev = clip(leverage_for_buffer(buf, n, side, mmrs[k], cums[k]), lo, hi)
    return whole_leverage(min(lev, cap), lo)


#: Maintenance rate assumed for a perp without a bracket table (Binance's first BTC bracket).
FLAT_MMR = 0.004


@jitable
def flat_liquidation_move(leverage: float) -> float:
    """Adverse move to liquidation of an isolated position at ``leverage`` with the flat
    :data:`FLAT_MMR` and no cum: ``1 / leverage - FLAT_MMR`` (fraction of entry; the estimate for
    a symbol without a bracket table)."""
    return 1.0 / leverage - FLAT_MMR
