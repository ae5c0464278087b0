"""The one size rule of a spot/perp hedge: the smallest and the largest amount that can be put on.

An *amount* is the spot notional of the entry, quote units (USDT): the spot order buys
``floor(amount / price)`` base units rounded DOWN to the spot lot, and the perp order shorts
``ratio x that quantity`` rounded DOWN to the perp lot (``engine.step.perp_target``; a hedge of a
different base asset converts through the two prices). Both orders must pass their venue's lot,
minimum quantity and minimum notional (Binance spot ``NOTIONAL``, USD-M ``MIN_NOTIONAL``), or the
spot leg is bought and then cannot be hedged (issue #12: 100 USDT at 40,000 buys 0.002 BTC; the
perp short of 0.002 BTC is 80 USDT < 100 USDT and is refused).

Prices may move between this check and the orders: every bound holds for prices ``price_move``
(fraction) away in the unfavourable direction (spot decided higher -> fewer coins; perp filled
lower -> smaller perp notional; notional and margin computed at the higher price).

Largest amount: the free spot quote balance (amount + taker fee + expected slippage), the free perp
margin for ``ratio x amount`` at ``leverage`` plus the perp taker fee to open and to close, and the
hedge's position limits (``GuardParams.max_position_notional`` / ``max_position_qty`` of either
leg, the limits the engine's ``order_guard`` holds an order at), and optional operator caps.

Pure: data in, numbers out. :func:`check_amount` raises :class:`~hedge_core.errors.InvalidInput`
naming the range and the binding bounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hedge_core.errors import InvalidInput
from hedge_core.types import Instrument

__all__ = ["SizeBounds", "SizeInputs", "check_amount", "perp_margin_cap", "size_bounds"]

_EPS = 1e-9


def perp_margin_cap(perp_free: float, ratio: float, leverage: float, perp_fee: float, price_move: float) -> float:
    """The largest amount (spot notional, quote) a futures wallet with ``perp_free`` quote free can hedge: the
    perp notional ``ratio x amount`` at a price ``price_move`` (fraction) higher needs ``1 / leverage`` of it as
    margin plus the taker fee ``perp_fee`` (fraction) to open and to close. ``inf`` when ``ratio <= 0``."""
    if ratio <= 0:
        return math.inf
    return perp_free / (ratio * (1 + price_move) * (1 / leverage + 2 * perp_fee))


def _ceil_lot(qty: float, lot: float) -> float:
    """Smallest multiple of ``lot`` >= ``qty`` (base units)."""
    return round(math.ceil(qty / lot - _EPS) * lot, 12)


@dataclass(frozen=True)
class SizeInputs:
    """Everything the size rule needs (units in the field comments).

    ``leverage`` is the perp leverage the margin is computed at (use the LOWEST the engine may
    choose, ``LeverageParams.min_leverage``: the most margin). ``ratio`` is the hedge ratio
    (perp notional / spot notional, > 0; 0 = no perp leg at entry, e.g. a grid before its first
    level). ``spot_free`` / ``perp_free`` are free balances in quote units (None = not checked).
    """

    spot: Instrument
    perp: Instrument
    spot_price: float  # quote per base, > 0
    perp_price: float  # quote per base, > 0
    ratio: float = 1.0
    leverage: float = 1.0  # x, >= 1
    spot_fee: float = 0.001  # taker fee, fraction of notional
    perp_fee: float = 0.0005  # taker fee, fraction of notional
    slippage: float = 0.0  # expected slippage, fraction of notional
    spot_free: float | None = None  # quote
    perp_free: float | None = None  # quote (available margin)
    max_position_notional: float = math.inf  # quote, either leg
    max_position_qty: float = math.inf  # base, either leg
    price_move: float = 0.01  # fraction
    cap_min: float = 0.0  # operator's lowest amount, quote
    cap_max: float = math.inf  # operator's highest amount, quote

    def __post_init__(self) -> None:
        for name in ("spot_price", "perp_price"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise InvalidInput(name, v, "a price > 0 (quote per base)")
        if not (math.isfinite(self.ratio) and 0 <= self.ratio <= 5):
            raise InvalidInput("ratio", self.ratio, "a hedge ratio in [0, 5]")
        if not (math.isfinite(self.leverage) and 1 <= self.leverage <= 125):
            raise InvalidInput("leverage", self.leverage, "a leverage in [1, 125]")
        if not (0 <= self.price_move < 0.5):
            raise InvalidInput("price_move", self.price_move, "a fraction in [0, 0.5)")
        for name in ("spot_fee", "perp_fee", "slippage"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0 <= v <= 0.1):
                raise InvalidInput(name, v, "a fraction in [0, 0.1]")


@dataclass(frozen=True)
class SizeBounds:
    """``[min_amount, max_amount]`` in quote units and what binds each end.

    ``min_spot_qty`` / ``min_perp_qty`` (base) are the smallest orders of the smallest amount;
    ``price`` is the spot price the bounds were computed at. ``ok`` is False when nothing fits
    (``min_amount > max_amount``).
    """

    min_amount: float
    max_amount: float
    min_binding: str
    max_binding: str
    min_spot_qty: float
    min_perp_qty: float
    price: float
    perp_price: float

    @property
    def ok(self) -> bool:
        return self.min_amount <= self.max_amount + 1e-9

    def describe(self) -> str:
        """One line: the range and why each end is where it is."""
        return (f"between {self.min_amount:,.2f} and {self.max_amount:,.2f} USDT (smallest hedgeable at price "
                f"{self.price:,.2f}: {self.min_amount:,.2f} = spot {self.min_spot_qty:g} + perp "
                f"{self.min_perp_qty:g}, bound by {self.min_binding}; largest bound by {self.max_binding})")


def size_bounds(x: SizeInputs) -> SizeBounds:
    """Smallest and largest hedgeable amount (quote) for ``x``; see the module docstring.

    Smallest: the spot quantity ``q_s`` must meet the spot lot/min qty/min notional at the lower
    spot price, and ``ratio x q_s`` (perp base) must, once rounded down to the perp lot, meet the
    perp min qty and min notional at the lower perp price. The amount buying ``q_s`` at the higher
    spot price is ``q_s x spot_price x (1 + price_move)``.
    """
    s, p, m = x.spot, x.perp, x.price_move
    ps_lo, ps_hi = x.spot_price * (1 - m), x.spot_price * (1 + m)
    pp_lo, pp_hi = x.perp_price * (1 - m), x.perp_price * (1 + m)
    same_base = s.base == p.base

    # ---- smallest amount
    q_spot = max(s.lot_size, s.min_qty, _ceil_lot(s.min_notional / ps_lo, s.lot_size) if s.min_notional > 0 else 0.0)
    spot_why = (f"spot min notional {s.min_notional:g} USDT (lot {s.lot_size:g})"
                if s.min_notional > 0 and q_spot > max(s.lot_size, s.min_qty) else f"spot min qty {max(s.lot_size, s.min_qty):g}")
    q_perp = 0.0
    min_q, why = _ceil_lot(q_spot, s.lot_size), spot_why
    if x.ratio > 0:
        base_min = max(p.lot_size, p.min_qty)
        q_perp = max(base_min, _ceil_lot(p.min_notional / pp_lo, p.lot_size) if p.min_notional > 0 else 0.0)
        # spot quantity whose hedge, rounded down to the perp lot, is at least q_perp
        per_spot = x.ratio if same_base else x.ratio * ps_lo / pp_hi  # perp base per spot base
        q_from_perp = _ceil_lot(q_perp / per_spot, s.lot_size)
        if q_from_perp > min_q + _EPS:
            min_q = q_from_perp
            why = (f"perp min notional {p.min_notional:g} USDT (lot {p.lot_size:g})"
                   if p.min_notional > 0 and q_perp > base_min + _EPS else f"perp min qty {base_min:g}")
        q_perp = _floor_lot(min_q * per_spot, p.lot_size)
    min_amount = min_q * ps_hi
    if x.cap_min > min_amount:
        min_amount, why = x.cap_min, f"operator minimum {x.cap_min:g} USDT"

    # ---- largest amount
    hedge_per_amount = x.ratio * (1 + m)  # perp notional per unit of amount, at the higher price
    caps: list[tuple[float, str]] = [(x.cap_max, f"operator maximum {x.cap_max:g} USDT")]
    if x.spot_free is not None:
        caps.append((x.spot_free / (1 + x.spot_fee + x.slippage),
                     f"spot balance {x.spot_free:,.2f} USDT free (fee {x.spot_fee:g}, slippage {x.slippage:g})"))
    if x.perp_free is not None and x.ratio > 0:
        caps.append((perp_margin_cap(x.perp_free, x.ratio, x.leverage, x.perp_fee, m), f"perp margin {x.perp_free:,.2f} USDT free at {x.leverage:g}x "
                                        f"(+ fee {x.perp_fee:g} to open and to close)"))
    if math.isfinite(x.max_position_notional):
        caps.append((x.max_position_notional, f"position limit max_position_notional {x.max_position_notional:g} (spot leg)"))
        if x.ratio > 0:
            caps.append((x.max_position_notional / hedge_per_amount,
                         f"position limit max_position_notional {x.max_position_notional:g} (perp leg)"))
    if math.isfinite(x.max_position_qty):
        caps.append((x.max_position_qty * ps_lo, f"position limit max_position_qty {x.max_position_qty:g} (spot leg)"))
        if x.ratio > 0:
            caps.append((x.max_position_qty * ps_lo / x.ratio, f"position limit max_position_qty {x.max_position_qty:g} (perp leg)"))
    max_amount, max_why = min(caps, key=lambda c: c[0])
    return SizeBounds(min_amount=round(min_amount, 8), max_amount=max(max_amount, 0.0), min_binding=why,
                      max_binding=max_why, min_spot_qty=min_q, min_perp_qty=q_perp, price=x.spot_price,
                      perp_price=x.perp_price)


def _floor_lot(qty: float, lot: float) -> float:
    return round(math.floor(qty / lot + _EPS) * lot, 12)


def check_amount(amount: float, bounds: SizeBounds, *, field: str = "amount") -> float:
    """``amount`` (quote) when it lies in ``bounds``; else InvalidInput naming the range, the smallest
    hedgeable amount at the current price and what binds each end."""
    if not (isinstance(amount, (int, float)) and math.isfinite(amount)):
        raise InvalidInput(field, amount, "a finite number of USDT")
    if not bounds.ok:
        raise InvalidInput(field, amount, f"an amount that can be hedged, but none can: the smallest hedgeable "
                           f"{bounds.min_amount:,.2f} USDT ({bounds.min_binding}) exceeds the largest "
                           f"{bounds.max_amount:,.2f} USDT ({bounds.max_binding})")
    if amount < bounds.min_amount - 1e-9 or amount > bounds.max_amount + 1e-9:
        raise InvalidInput(field, amount, bounds.describe())
    return float(amount)
