"""Hedge sizing and rebalancing: the perp target, the hedge ratio and its drift.
See :mod:`hedge_core.money` for the conventions."""

from __future__ import annotations

import math

from hedge_core.lazyjit import jitable

__all__ = [
    "perp_target",
    "hedge_ratio",
    "hedge_drift",
]


# ---- hedge sizing and rebalancing -------------------------------------------------------------


@jitable
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


@jitable
def hedge_ratio(spot_qty: float, perp_qty: float, spot_price: float, perp_price: float) -> float:
    """h = |perp notional| / |spot notional|; NaN when the spot leg is flat or unpriced."""
    sn = abs(spot_qty) * spot_price
    if not sn > 0:
        return math.nan
    return abs(perp_qty) * perp_price / sn


@jitable
def hedge_drift(h: float, ratio: float) -> float:
    """Rebalance drift ``|h - ratio|`` (NaN when h is); above the threshold: rebalance."""
    return math.nan if math.isnan(h) else abs(h - ratio)
