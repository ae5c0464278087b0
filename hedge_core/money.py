"""THE scalar money formulas: every place that turns prices, quantities and rates into money calls these.

One source, two compiled forms. Each function is written once, here, and decorated with
:func:`numba.extending.register_jitable`: called from Python it is the plain Python function (no
dispatch overhead: the event engine, the paper venue, the ledger and the analytics call it per fill
or per update), called from an ``@njit`` kernel (``hedge_core.fastpath``) numba compiles it INTO the
kernel (inlined by LLVM, so the fast path pays nothing for the call). There is no hand-written
second copy anywhere: the engine and the fast path agree because they run the same lines, and
each function meets an independent reference in ``tests/test_money.py`` (hand-computed cases,
Binance's documented examples, slow reference formulas).

Because the Python form is duck-typed, the element-wise ones (:func:`funding_payment`,
:func:`loan_to_value`, :func:`unrealized_pnl`) also take numpy arrays (``analytics.funding``,
``ltv.ltv``).

Conventions (float64; quote = USDT, base = the coin)
----------------------------------------------------
- ``qty`` signed base (+ long / - short) where a position is meant; an executed quantity ``qty``
  is > 0 with ``sign`` +1 buy / -1 sell.
- Prices quote per base; rates fractions (0.0005 = 0.05 %); ``bps`` basis points (1e-4).
- Fees >= 0 paid; slippage cost >= 0 is a cost (< 0 a price improvement); funding + received /
  - paid; realised PnL + profit.
- Bracket tables (Binance USDⓈ-M "Leverage & Margin") are passed as parallel sequences
  ``floors, caps, mmrs, cums, maxlevs`` (tuples from Python, arrays from kernels); the table
  itself lives in :mod:`hedge_core.analytics.risk`.
- Nothing here validates: callers validate their inputs (and raise ``InvalidInput``) first.

Changing a formula here changes the kernels too, but numba's on-disk cache of a kernel does not
see a change in this file: ``hedge_core.fastpath`` checks a hash of this file at import and drops
its stale compiled kernels (see ``fastpath._drop_stale_kernel_cache``).
"""

from __future__ import annotations

import math

from numba.extending import register_jitable

__all__ = [
    "QTY_EPS",
    "SECONDS_PER_YEAR",
    "HOURS_PER_YEAR",
    "slippage_bps",
    "fill_price",
    "slippage_cost",
    "fee",
    "buy_cost_with_fee",
    "spot_quote_delta",
    "trade_cash_flow",
    "fill_position",
    "isolated_margin",
    "isolated_margin_after_fill",
    "unrealized_pnl",
    "funding_payment",
    "funding_apr",
    "funding_pay_apr",
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
    "perp_target",
    "hedge_ratio",
    "hedge_drift",
    "FLAT_MMR",
    "flat_liquidation_move",
    "lot_floor",
    "tick_round",
    "meets_minimums",
    "simple_interest",
    "loan_to_value",
    "repayment_split",
    "reserve_deployment",
]

#: Quantities at or below this (base units) are zero (float noise of lot arithmetic).
QTY_EPS = 1e-12
#: ACT/365 in seconds (loan interest).
SECONDS_PER_YEAR = 365 * 86_400
#: 365 x 24 (funding APR).
HOURS_PER_YEAR = 365 * 24


# ---- execution: slippage, fill price, fee, cash ------------------------------------------------


@register_jitable
def slippage_bps(base_bps: float, impact_k_bps: float, qty: float, volume: float) -> float:
    """Slippage of a taker fill, bps: ``base + k x sqrt(qty / volume)`` (impact 0 when the bar
    volume is unknown/0 or k is 0). The paper venue's model (``exchange.paper_core``)."""
    bps = base_bps
    if volume > 0 and impact_k_bps > 0:
        bps += impact_k_bps * math.sqrt(qty / volume)
    return bps


@register_jitable
def fill_price(ref: float, sign: float, bps: float) -> float:
    """Execution price ``ref x (1 + sign x bps / 1e4)``: a buy (+1) pays above ``ref``, a sell below."""
    return ref * (1.0 + sign * bps / 1e4)


@register_jitable
def slippage_cost(sign: float, qty: float, price: float, ref: float) -> float:
    """Cost of a fill versus its reference price, quote: ``buy: qty x (price - ref)``,
    ``sell: qty x (ref - price)``; >= 0 a cost, < 0 a price improvement."""
    return qty * (price - ref) if sign > 0 else qty * (ref - price)


@register_jitable
def fee(qty: float, price: float, rate: float) -> float:
    """Fee of a fill, quote: ``qty x price x rate`` (``rate`` maker/taker/liquidation fraction)."""
    return qty * price * rate


@register_jitable
def buy_cost_with_fee(qty: float, price: float, rate: float) -> float:
    """Quote a buy must have free beforehand: ``qty x price x (1 + rate)`` (funds checks, spot locks)."""
    return qty * price * (1 + rate)


@register_jitable
def spot_quote_delta(sign: float, qty: float, price: float, fee_: float) -> float:
    """Change of a spot wallet's quote balance on a fill with a quote fee: buy ``-(qty x price +
    fee)``, sell ``qty x price - fee``."""
    return -(qty * price + fee_) if sign > 0 else qty * price - fee_


@register_jitable
def trade_cash_flow(sign: float, qty: float, price: float) -> float:
    """Quote cash flow of a fill excluding fees: ``-sign x qty x price``."""
    return -(sign * qty) * price


# ---- positions --------------------------------------------------------------------------------


@register_jitable
def fill_position(q0: float, avg: float, sign: float, qty: float,
                  price: float) -> tuple[float, float, float, float]:
    """Position after one fill of ``sign x qty`` at ``price`` on a position ``q0`` at average ``avg``.

    Adding in the same direction re-averages ``(|q0| x avg + qty x price) / |q1|``; reducing
    realises ``closed x (price - avg) x sign(q0)`` and keeps ``avg``; crossing zero realises the
    whole old side and opens the rest AT ``price``; ``|q1| <= QTY_EPS`` is flat (avg 0).

    Returns
    -------
    (q1, avg1, realized, closed)
        New signed quantity, new average entry, realised PnL of this fill (quote, + profit) and
        the base quantity it closed (>= 0).
    """
    dq = sign * qty
    if q0 == 0.0 or (q0 > 0) == (dq > 0):
        q1 = q0 + dq
        return q1, (abs(q0) * avg + qty * price) / abs(q1), 0.0, 0.0
    closed = min(qty, abs(q0))
    realized = closed * (price - avg) * (1.0 if q0 > 0 else -1.0)
    q1 = q0 + dq
    if abs(q1) <= QTY_EPS:
        return 0.0, 0.0, realized, closed
    if (q1 > 0) != (q0 > 0):
        return q1, price, realized, closed
    return q1, avg, realized, closed


@register_jitable
def isolated_margin(qty: float, entry: float, leverage: float) -> float:
    """Initial isolated margin of a position, quote: ``|qty| x entry / leverage``."""
    return abs(qty) * entry / leverage


@register_jitable
def isolated_margin_after_fill(margin: float, q0: float, q1: float, qty: float, closed: float,
                               price: float, leverage: float) -> float:
    """Isolated margin after a fill (Binance isolated margin): a reduction takes the closed share
    out pro rata (``margin x (1 - closed / |q0|)``), the opened quantity ``qty - closed`` brings
    ``opened x price / leverage``; 0 when the position is flat after the fill, and a position
    opened from flat or reversed starts with none carried over.

    ``leverage = inf`` tracks a margin that no fill adds to (the ledger's funding share of the
    isolated margin, ``engine.ledger.Leg.margin_funding``).
    """
    if q0 == 0.0:
        margin = 0.0
    elif closed > 0.0:
        margin -= margin * closed / abs(q0)
    if q1 == 0.0:
        return 0.0
    if closed > 0.0 and (q1 > 0) != (q0 > 0):
        margin = 0.0  # reversed: the old side's margin went with it
    opened = qty - closed
    if opened > 0.0:
        margin += opened * price / leverage
    return margin


@register_jitable
def unrealized_pnl(qty: float, price: float, entry: float) -> float:
    """Unrealised PnL of a signed position at ``price``, quote: ``qty x (price - entry)``."""
    return qty * (price - entry)


# ---- funding ----------------------------------------------------------------------------------


@register_jitable
def funding_payment(qty: float, mark: float, rate: float) -> float:
    """Funding of a perp position at a settlement, quote: ``-qty x mark x rate`` (+ received /
    - paid; a positive rate makes longs pay shorts)."""
    return -qty * mark * rate


@register_jitable
def funding_apr(rate: float, interval_hours: float) -> float:
    """Annualised funding ``rate x 365 x 24 / interval_hours`` (simple), of the rate's sign."""
    return rate * HOURS_PER_YEAR / interval_hours


@register_jitable
def funding_pay_apr(qty: float, rate: float, interval_hours: float) -> float:
    """APR a perp position PAYS at ``rate`` (0 when it receives or is flat or the rate is NaN)."""
    if qty == 0.0 or math.isnan(rate):
        return 0.0
    pay = rate if qty > 0 else -rate  # longs pay positive rates, shorts pay negative ones
    return funding_apr(max(pay, 0.0), interval_hours)


# ---- maintenance margin, liquidation, leverage -----------------------------------------------


@register_jitable
def bracket_index(notional: float, caps) -> int:  # noqa: ANN001 - tuple or array
    """Index of the bracket holding ``|notional|``: the first with ``|notional| < cap``, else the last."""
    n = abs(notional)
    for j in range(len(caps)):
        if n < caps[j]:
            return j
    return len(caps) - 1


@register_jitable
def maintenance_margin(notional: float, mmr: float, cum: float) -> float:
    """Maintenance margin, quote: ``|notional| x MMR - cum`` (Binance; MMR and cum of the bracket
    of ``|notional|``, continuous across bracket edges)."""
    return abs(notional) * mmr - cum


@register_jitable
def liquidation_price_in_bracket(wb: float, tmm: float, upnl: float, cum: float, side: float, size: float,
                                 ep: float, mmr: float) -> float:
    """Binance one-way liquidation price with one bracket's MMR and cum:
    ``(WB - TMM1 + UPNL1 + cumB - Side1 x Position1 x EP1) / (Position1 x MMR1 - Side1 x Position1)``
    (``side`` +1 long / -1 short, ``size = |qty|``; may be <= 0)."""
    return (wb - tmm + upnl + cum - side * size * ep) / (size * mmr - side * size)


@register_jitable
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


@register_jitable
def liquidation_distance(qty: float, mark: float, liq_price: float) -> float:
    """Adverse move from ``mark`` to the liquidation price, fraction: long ``(mark - LP) / mark``,
    short ``(LP - mark) / mark`` (<= 0: at or past liquidation)."""
    return (mark - liq_price) / mark if qty > 0 else (liq_price - mark) / mark


@register_jitable
def max_notional(leverage: float, caps, maxlevs) -> float:  # noqa: ANN001 - tuples or arrays
    """Largest position notional the bracket table allows at ``leverage`` (Binance -2027), quote:
    the highest cap of the brackets whose max leverage is at least ``leverage``; 0 if none."""
    m = 0.0
    for j in range(len(caps)):
        if maxlevs[j] >= leverage - 1e-9 and caps[j] > m:
            m = caps[j]
    return m


@register_jitable
def clip(x: float, lo: float, hi: float) -> float:
    """``min(max(x, lo), hi)``."""
    return min(max(x, lo), hi)


@register_jitable
def required_buffer(sigma_24h: float, liq_buffer: float, vol_multiple: float) -> float:
    """Adverse move to liquidation a position must survive: ``max(liq_buffer, k x sigma_24h)``
    capped at 0.95; a NaN or non-positive sigma uses ``liq_buffer`` alone."""
    req = liq_buffer
    if not math.isnan(sigma_24h) and sigma_24h > 0:
        req = max(req, vol_multiple * sigma_24h)
    return min(req, 0.95)


@register_jitable
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


@register_jitable
def whole_leverage(leverage: float, lowest: float) -> float:
    """Rounded DOWN to a whole leverage (venues take integers), never below ``lowest``."""
    return float(max(math.floor(leverage + 1e-9), lowest))


@register_jitable
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


@register_jitable
def flat_liquidation_move(leverage: float) -> float:
    """Adverse move to liquidation of an isolated position at ``leverage`` with the flat
    :data:`FLAT_MMR` and no cum: ``1 / leverage - FLAT_MMR`` (fraction of entry; the estimate for
    a symbol without a bracket table)."""
    return 1.0 / leverage - FLAT_MMR


# ---- hedge sizing and rebalancing -------------------------------------------------------------


@register_jitable
def perp_target(same_base: bool, ratio: float, spot_qty: float, perp_qty: float, spot_price: float,
                perp_price: float) -> float:
    """Signed perp quantity that hedges ``spot_qty`` at hedge ratio ``ratio`` (base of the perp):
    same base ``-ratio x spot_qty``; cross-asset ``-ratio x spot_qty x spot_price / perp_price``
    (``perp_qty`` unchanged while either price is unknown)."""
    if same_base:
        return -ratio * spot_qty
    if not (perp_price > 0 and spot_price > 0):
        return perp_qty
    return -ratio * spot_qty * spot_price / perp_price


@register_jitable
def hedge_ratio(spot_qty: float, perp_qty: float, spot_price: float, perp_price: float) -> float:
    """h = |perp notional| / |spot notional|; NaN when the spot leg is flat or unpriced."""
    sn = abs(spot_qty) * spot_price
    if not sn > 0:
        return math.nan
    return abs(perp_qty) * perp_price / sn


@register_jitable
def hedge_drift(h: float, ratio: float) -> float:
    """Rebalance drift ``|h - ratio|`` (NaN when h is); above the threshold: rebalance."""
    return math.nan if math.isnan(h) else abs(h - ratio)


# ---- lots and ticks ---------------------------------------------------------------------------


@register_jitable
def lot_floor(qty: float, lot: float) -> float:
    """``|qty|`` rounded DOWN to whole lots (never more than asked; a 1e-9-lot tolerance absorbs
    float noise such as 0.3 / 0.1 = 2.9999999999999996), then to 12 decimals."""
    steps = int(abs(qty) / lot + 1e-9)
    return round(steps * lot, 12)


@register_jitable
def tick_round(price: float, tick: float) -> float:
    """``price`` rounded to the NEAREST tick (half to even), then to 12 decimals."""
    return round(round(price / tick) * tick, 12)


@register_jitable
def meets_minimums(qty: float, price: float, lot: float, min_qty: float, min_notional: float) -> bool:
    """``qty`` (already lot-rounded, >= 0) meets the venue's lot, min qty and min notional."""
    return qty >= lot - QTY_EPS and qty >= min_qty - QTY_EPS and qty * price >= min_notional - 1e-9


# ---- loans ------------------------------------------------------------------------------------


@register_jitable
def simple_interest(principal: float, apr: float, seconds: float) -> float:
    """Simple ACT/365 interest, quote: ``principal x apr x seconds / (365 x 86,400)``."""
    return principal * apr * seconds / SECONDS_PER_YEAR


@register_jitable
def loan_to_value(outstanding: float, collateral_qty: float, price: float) -> float:
    """LTV = loan outstanding / (collateral qty x price), a fraction."""
    return outstanding / (collateral_qty * price)


@register_jitable
def repayment_split(amount: float, accrued: float, principal: float) -> tuple[float, float, float]:
    """Waterfall of a repayment ``amount`` (>= 0): accrued interest first, then principal.

    Returns (to_interest, to_principal, leftover)."""
    to_interest = min(amount, accrued)
    rest = amount - to_interest
    to_principal = min(rest, principal)
    return to_interest, to_principal, rest - to_principal


@register_jitable
def reserve_deployment(ltv: float, start: float, mid: float, end: float, mid_amount: float,
                       end_amount: float, total: float) -> float:
    """Reserve to deploy at ``ltv``, quote: 0 below ``start``; linear 0 -> ``mid_amount`` on
    [start, mid); linear ``mid_amount`` -> ``end_amount`` on [mid, end); ``total`` from ``end`` on."""
    if ltv < start:
        return 0.0
    if ltv < mid:
        return mid_amount * (ltv - start) / (mid - start)
    if ltv < end:
        return mid_amount + (end_amount - mid_amount) * ((ltv - mid) / (end - mid))
    return total
