"""The preflight of a hedge with two PERP legs on two venues (``legs = "perp_perp"``): each venue checked
with its OWN futures wallet against its OWN leg's margin, before the first order.

Like :func:`hedge_core.runner.preflight.preflight` (same report, same refusals: InvalidInput naming the
field, nothing written), but per venue:

| check | where |
|---|---|
| the symbol is a perp market | each venue (``leg_instruments``) |
| a fresh ticker (``max_ticker_age_s``) | each venue's own ticker of the perp (a replay: its first stored bar) |
| free margin for the leg at ``min_leverage`` plus its taker fee to open and to close | each venue's futures wallet |
| position mode (one-way), margin mode and leverage: read, and set at a real start | each venue |

Sizing uses the one size rule (:func:`hedge_core.engine.sizing_bounds.size_bounds`) twice: once for the
second leg (lots, minimums, margin of ``ratio x amount`` on the second venue, position limits), once for the
first leg as a perp on its venue (its margin for ``amount``), each at its own venue's taker fee. A leg short
of margin is refused naming its venue; no money moves between venues (fund that venue yourself).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pandas as pd

from hedge_core.engine.sizing import choose_leverage
from hedge_core.engine.sizing_bounds import SizeInputs, check_amount, size_bounds
from hedge_core.errors import InvalidInput
from hedge_core.exchange.costs import entry_costs, of_adapter
from hedge_core.runner.preflight import PreflightReport, _fees, _free, _position_mode, _settings, _ticker_prices

__all__ = ["preflight_pair"]


async def preflight_pair(adapter: Any, *, perp_symbol: str, params: Any, amount: float | None,
                         prices: tuple[float, float, str] | None = None, apply: bool = False,
                         max_ticker_age_s: float = 10.0, now: pd.Timestamp | None = None,
                         cap_min: float = 0.0, cap_max: float = math.inf,
                         price_move: float = 0.01) -> PreflightReport:
    """Check both perp legs at their venues (see the module docstring).

    Parameters
    ----------
    adapter : PerpPairAdapter
        The pair (paper, live or recommend): ``leg_instruments``, ``leg_adapters`` and the two wallets
        (``fetch_balance('spot')`` = the first venue's futures wallet, ``'perp'`` = the second's).
    perp_symbol : str
        The symbol both legs trade (``BTC/USDT:USDT``).
    amount : float or None
        The first leg's notional (quote); None skips the size check.
    prices : (first, second, source) or None
        Prices to size at (a replay's first bar); None reads each venue's ticker (age-checked).
    apply : bool
        True at a real start: set one-way mode, margin mode and leverage on BOTH venues.

    Returns
    -------
    PreflightReport
        ``spot`` / ``spot_price`` / ``spot_free`` are the FIRST leg's (its venue's perp and futures wallet).

    Raises
    ------
    InvalidInput
        Naming the field (and the venue whose leg is short of margin); nothing was written.
    """
    first, second = await adapter.leg_instruments(perp_symbol)
    a, b = adapter.leg_adapters()
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    if prices is None:
        pa, _, src_a = await _ticker_prices(a, perp_symbol, perp_symbol, max_ticker_age_s, now)
        pb, _, src_b = await _ticker_prices(b, perp_symbol, perp_symbol, max_ticker_age_s, now)
        prices = (pa, pb, f"{a.venue}: {src_a}; {b.venue}: {src_b}")
    pa, pb, source = prices
    free_a = await _free(adapter, "spot", first.quote)  # the first venue's futures wallet
    free_b = await _free(adapter, "perp", second.quote)
    ratio = float(params.rebalance.target_ratio)
    notes: list[str] = []
    modes = []
    lev = math.inf
    for ad, inst, notional in ((a, first, amount or 0.0), (b, second, (amount or 0.0) * max(ratio, 0.0))):
        mode, n = await _position_mode(ad, perp_symbol, apply)
        modes.append(f"{ad.venue} {mode}")
        notes += [f"{ad.venue}: {x}" for x in n]
        lev_v = min(choose_leverage(math.nan, params.leverage, symbol=perp_symbol, notional=max(notional, 1.0),
                                    brackets=inst.brackets), inst.max_leverage)
        lev = min(lev, lev_v)
    for ad in (a, b):  # one leverage on both legs (the engine margins both at the hedge's one leverage)
        await _settings(ad, perp_symbol, params, lev, apply)
    bounds = None
    if amount is not None:
        fa, fb = _fees(adapter, params, perp_symbol, perp_symbol)  # (first venue's perp fee, second's)
        slip = entry_costs(params, of_adapter(adapter, perp_symbol, perp_symbol)).slippage_rate
        common = dict(leverage=float(params.leverage.min_leverage), slippage=slip, price_move=price_move,
                      max_position_notional=float(params.guards.max_position_notional),
                      max_position_qty=float(params.guards.max_position_qty))
        # the second leg: lots and minimums of both legs, its margin on venue B, limits, the operator's caps
        second_b = size_bounds(SizeInputs(spot=first, perp=second, spot_price=pa, perp_price=pb, ratio=ratio,
                                          spot_fee=fa, perp_fee=fb, spot_free=None, perp_free=free_b,
                                          cap_min=cap_min, cap_max=cap_max, **common))
        # the first leg as a perp on venue A: its margin for the amount (hedge ratio 1 onto itself)
        first_a = size_bounds(SizeInputs(spot=first, perp=first, spot_price=pa, perp_price=pa, ratio=1.0,
                                         spot_fee=fa, perp_fee=fa, spot_free=None, perp_free=free_a, **common))
        bounds, venue = second_b, b.venue
        if first_a.max_amount < second_b.max_amount:
            bounds, venue = replace(second_b, max_amount=first_a.max_amount, max_binding=first_a.max_binding), a.venue
        short = "perp margin" in bounds.max_binding  # a leg's margin binds: say on which venue
        if short:
            bounds = replace(bounds, max_binding=f"{venue} {bounds.max_binding}")
        try:
            check_amount(amount, bounds)
        except InvalidInput as exc:
            if not (short and amount > bounds.max_amount):
                raise
            raise InvalidInput(exc.field, exc.value, f"{exc.allowed}; that leg's margin is on {venue}'s futures "
                               f"wallet (no transfer between venues is made: fund {venue} yourself)",
                               where=f"venue {venue}") from None
    return PreflightReport(first, second, pa, pb, source, free_a, free_b, "; ".join(modes),
                           str(params.leverage.margin_mode), lev, bounds, amount, apply, tuple(notes))
