"""Leverage choice at entry (and on re-checks): the risk rule, via ``analytics.risk``."""

from __future__ import annotations

import math

from hedge_core.analytics.risk import (
    bracket_for,
    brackets_for,
    leverage_for_liquidation_buffer,
    leverage_for_target_vol,
)
from hedge_core.errors import InvalidInput
from hedge_core.params import LeverageParams

__all__ = ["choose_leverage", "required_buffer"]


def required_buffer(sigma_24h: float, p: LeverageParams) -> float:
    """Adverse move to liquidation the position must survive: ``max(liq_buffer, k x sigma_24h)``
    (capped at 0.95); NaN sigma uses ``liq_buffer`` alone."""
    req = p.liq_buffer
    if not math.isnan(sigma_24h) and sigma_24h > 0:
        req = max(req, p.target_vol_multiple * sigma_24h)
    return min(req, 0.95)


def choose_leverage(sigma_24h: float, p: LeverageParams, *, symbol: str = "BTC/USDT:USDT",
                    notional: float = 10_000.0, side: int = -1) -> float:
    """Highest whole leverage in ``[min_leverage, max_leverage]`` (and not above the bracket's
    max leverage for ``notional``) whose isolated liquidation price is at least
    :func:`required_buffer` away from entry.

    Uses ``analytics.risk.leverage_for_liquidation_buffer`` with the symbol's Binance bracket table
    (the bracket of ``notional``, side -1 for the short perp of a long-spot hedge); a symbol
    without a table falls back to the plain ``1/L - 0.004 >= buffer``. Rounded DOWN to a whole
    leverage (venues take integers), never below ``min_leverage``.
    """
    buf = required_buffer(sigma_24h, p)
    lo = p.min_leverage
    try:
        table = brackets_for(symbol)
    except InvalidInput:
        lev = min(max(1.0 / (buf + 0.004), p.min_leverage), p.max_leverage)
    else:
        # never above the venue's cap for this notional (the venue would refuse the leverage)
        hi = min(p.max_leverage, bracket_for(max(notional, 1.0), table).max_leverage)
        lo = min(p.min_leverage, hi)
        lev = leverage_for_liquidation_buffer(buf, max(notional, 1.0), table, side=side,
                                              min_leverage=lo, max_leverage=hi)
    if p.target_vol is not None and not math.isnan(sigma_24h) and sigma_24h > 0:
        lev = min(lev, leverage_for_target_vol(p.target_vol, sigma_24h, min_leverage=p.min_leverage,
                                               max_leverage=p.max_leverage))
    return float(max(math.floor(lev + 1e-9), lo))
