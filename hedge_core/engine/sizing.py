"""Leverage choice at entry (and on re-checks): the risk rule.

TODO(analytics): move to / call hedge_core.analytics.risk once it offers a leverage chooser;
the liquidation math itself is ``analytics.risk.liquidation_price``.
"""

from __future__ import annotations

import math

from hedge_core.params import LeverageParams

__all__ = ["choose_leverage", "isolated_liq_move"]


def isolated_liq_move(leverage: float, mmr: float = 0.004) -> float:
    """Adverse move (fraction of entry) that liquidates an isolated position: ``1/L - mmr``."""
    return 1.0 / leverage - mmr


def choose_leverage(sigma_24h: float, p: LeverageParams, mmr: float = 0.004) -> float:
    """Highest leverage in ``[min, max]`` whose liquidation move stays beyond the buffers.

    The isolated liquidation move ``1/L - mmr`` must be >= ``max(liq_buffer,
    target_vol_multiple x sigma_24h)``, i.e. ``L <= 1 / (required + mmr)``. NaN sigma uses
    ``liq_buffer`` alone. Result is rounded down to a whole leverage (venues take integers).
    """
    required = p.liq_buffer
    if not math.isnan(sigma_24h) and sigma_24h > 0:
        required = max(required, p.target_vol_multiple * sigma_24h)
    lev = math.floor(1.0 / (required + mmr))
    return float(min(max(lev, p.min_leverage), p.max_leverage))
