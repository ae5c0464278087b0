"""Leverage choice at entry (and on re-checks): the risk rule, via ``hedge_core.money``."""

from __future__ import annotations

import math
from collections.abc import Sequence

from hedge_core import money
from hedge_core.analytics.risk import (
    bracket_columns,
    brackets_for,
    leverage_for_target_vol,
)
from hedge_core.errors import InvalidInput
from hedge_core.params.models import LeverageParams
from hedge_core.types import Bracket

__all__ = ["choose_leverage", "required_buffer"]


def required_buffer(sigma_24h: float, p: LeverageParams) -> float:
    """Adverse move to liquidation the position must survive: ``max(liq_buffer, k x sigma_24h)``
    (capped at 0.95); NaN sigma uses ``liq_buffer`` alone (:func:`hedge_core.money.required_buffer`)."""
    return money.required_buffer(sigma_24h, p.liq_buffer, p.target_vol_multiple)


def choose_leverage(sigma_24h: float, p: LeverageParams, *, symbol: str = "BTC/USDT:USDT",
                    notional: float = 10_000.0, side: int = -1, brackets: Sequence[Bracket] = ()) -> float:
    """Highest whole leverage in ``[min_leverage, max_leverage]`` (and not above the bracket's
    max leverage for ``notional``) whose isolated liquidation price is at least
    :func:`required_buffer` away from entry.

    The rule is :func:`hedge_core.money.choose_leverage` with the perp's bracket table: ``brackets``
    (its instrument's own) when given, else the committed default of ``symbol`` (the bracket of ``notional``, side -1 for the short perp of a long-spot hedge; the fast path
    calls the same function); a symbol without a table falls back to the plain
    ``1/L - 0.004 >= buffer``. Rounded DOWN to a whole leverage (venues take integers), never
    below ``min_leverage``; with ``target_vol`` not above the target-volatility leverage.
    """
    cap = math.inf
    if p.target_vol is not None and not math.isnan(sigma_24h) and sigma_24h > 0:
        cap = leverage_for_target_vol(p.target_vol, sigma_24h, min_leverage=p.min_leverage,
                                      max_leverage=p.max_leverage)
    try:
        table = tuple(brackets) if brackets else brackets_for(symbol)
    except InvalidInput:
        buf = required_buffer(sigma_24h, p)
        # the inverse of money.flat_liquidation_move: 1/L - FLAT_MMR = buffer
        lev = money.clip(1.0 / (buf + money.FLAT_MMR), p.min_leverage, p.max_leverage)
        return money.whole_leverage(min(lev, cap), p.min_leverage)
    _, caps, maxlevs, mmrs, cums = bracket_columns(table)
    return money.choose_leverage(sigma_24h, notional, side, p.liq_buffer, p.target_vol_multiple, p.min_leverage,
                                 p.max_leverage, caps, mmrs, cums, maxlevs, cap)
