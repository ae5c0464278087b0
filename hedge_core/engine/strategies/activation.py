"""Hedge activation triggers: a price deviation from a regression baseline, or a volume spike."""

from __future__ import annotations

import math
from collections.abc import Mapping

from hedge_core.params.models import ActivationParams

__all__ = ["activation_configured", "activation_fired"]


def activation_configured(p: ActivationParams) -> bool:
    return p.deviation_z is not None or p.volume_spike is not None


def activation_fired(price: float, volume: float, analytics: Mapping[str, float],
                     p: ActivationParams) -> tuple[bool, str]:
    """Whether an activation trigger fires now, and why.

    Parameters
    ----------
    price : float
        Spot price, quote per base.
    volume : float
        Last bar's base volume.
    analytics : mapping
        ``baseline`` (regression fit of price, quote), ``baseline_std`` (residual std, quote),
        ``volume_avg`` (average bar volume, base). Missing inputs mean "cannot fire".
    p : ActivationParams

    Returns
    -------
    (bool, str)
        Fired and a reason with the numbers. Thresholds are inclusive (z >= deviation_z).
    """
    if p.deviation_z is not None:
        base, sd = analytics.get("baseline", math.nan), analytics.get("baseline_std", math.nan)
        if sd > 0 and not math.isnan(base):
            z = abs(price - base) / sd
            if z >= p.deviation_z:
                return True, f"price deviation z={z:.2f} >= {p.deviation_z}"
    if p.volume_spike is not None:
        avg = analytics.get("volume_avg", math.nan)
        if avg > 0 and volume / avg >= p.volume_spike:
            return True, f"volume spike {volume / avg:.2f}x >= {p.volume_spike}x"
    return False, ""
