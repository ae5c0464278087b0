"""Execution money: slippage, fill price, fee, cash flows, position average and realised PnL,
isolated margin, lots and ticks. See :mod:`hedge_core.money` for the conventions."""

from __future__ import annotations

import math

from hedge_core.lazyjit import jitable

__all__ = [
    "QTY_EPS",
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
    "lot_floor",
    "tick_round",
    "meets_minimums",
]

#: Quantities at or below this (base units) are zero (float noise of lot arithmetic).
QTY_EPS = 1e-12


# ---- execution: slippage, fill price, fee, cash ------------------------------------------------


@jitable
def slippage_bps(base_bps: float, impact_k_bps: float, qty: float, volume: float) -> float:
    """Slippage of a taker fill, bps: ``base + k x sqrt(qty / volume)`` (impact 0 when the bar
    volume is unknown/0 or k is 0). The paper venue's model (``exchange.paper_core``)."""
    bps = base_bps
    if volume > 0 and impact_k_bps > 0:
        bps += impact_k_bps * math.sqrt(qty / volume)
    return bps


@jitable
def fill_price(ref: float, sign: float, bps: float) -> float:
    """Execution price ``ref x (1 + sign x bps / 1e4)``: a buy (+1) pays above ``ref``, a sell below."""
    return ref * (1.0 + sign * bps / 1e4)


@jitable
def slippage_cost(sign: float, qty: float, price: float, ref: float) -> float:
    """Cost of a fill versus its reference price, quote: ``buy: qty x (price - ref)``,
    ``sell: qty x (ref - price)``; >= 0 a cost, < 0 a price improvement."""
    return qty * (price - ref) if sign > 0 else qty * (ref - price)


@jitable
def fee(qty: float, price: float, rate: float) -> float:
    """Fee of a fill, quote: ``qty x price x rate`` (``rate`` maker/taker/liquidation fraction)."""
    return qty * price * rate


@jitable
def buy_cost_with_fee(qty: float, price: float, rate: float) -> float:
    """Quote a buy must have free beforehand: ``qty x price x (1 + rate)`` (funds checks, spot locks)."""
    return qty * price * (1 + rate)


@jitable
def spot_quote_delta(sign: float, qty: float, price: float, fee_: float) -> float:
    """Change of a spot wallet's quote balance on a fill with a quote fee: buy ``-(qty x price +
    fee)``, sell ``qty x price - fee``."""
    return -(qty * price + fee_) if sign > 0 else qty * price - fee_


@jitable
def trade_cash_flow(sign: float, qty: float, price: float) -> float:
    """Quote cash flow of a fill excluding fees: ``-sign x qty x price``."""
    return -(sign * qty) * price


# ---- positions --------------------------------------------------------------------------------


@jitable
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


@jitable
def isolated_margin(qty: float, entry: float, leverage: float) -> float:
    """Initial isolated margin of a position, quote: ``|qty| x entry / leverage``."""
    return abs(qty) * entry / leverage


@jitable
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


@jitable
def unrealized_pnl(qty: float, price: float, entry: float) -> float:
    """Unrealised PnL of a signed position at ``price``, quote: ``qty x (price - entry)``."""
    return qty * (price - entry)


# ---- lots and ticks ---------------------------------------------------------------------------


@jitable
def lot_floor(qty: float, lot: float) -> float:
    """``|qty|`` rounded DOWN to whole lots (never more than asked; a 1e-9-lot tolerance absorbs
    float noise such as 0.3 / 0.1 = 2.9999999999999996), then to 12 decimals."""
    steps = int(abs(qty) / lot + 1e-9)
    return round(steps * lot, 12)


@jitable
def tick_round(price: float, tick: float) -> float:
    """``price`` rounded to the NEAREST tick (half to even), then to 12 decimals."""
    return round(round(price / tick) * tick, 12)


@jitable
def meets_minimums(qty: float, price: float, lot: float, min_qty: float, min_notional: float) -> bool:
    """``qty`` (already lot-rounded, >= 0) meets the venue's lot, min qty and min notional."""
    return qty >= lot - QTY_EPS and qty >= min_qty - QTY_EPS and qty * price >= min_notional - 1e-9
