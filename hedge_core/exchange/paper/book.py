"""The paper venue's order book: levels drawn from its own execution model (pure).

A paper venue has no resting liquidity of others; what it charges a taker is its model
(:mod:`hedge_core.exchange.paper.core`): a fill of ``q`` base against a reference price ``ref``
(the instrument's last bar close) with that bar's base volume ``V`` averages

    ``avg(q) = money.fill_price(ref, side, money.slippage_bps(slippage_bps, impact_k_bps, q, V))``

(a buy above ``ref``, a sell below). :func:`model_book` turns that into a ccxt-shaped book whose
WALKED cost equals the model's: level ``i`` spans the cumulative sizes ``Q[i-1] .. Q[i]`` and its
price is the marginal cost ``(C(Q[i]) - C(Q[i-1])) / (Q[i] - Q[i-1])`` with ``C(Q) = Q x avg(Q)``.
Walking the book for a size that is a level boundary therefore gives the model's average price to
round-off; in between, the walk interpolates ``C`` linearly, so there it is a hair WORSE than the fill
(a buy pays more, a sell receives less: the impact term is ``q^1.5``), by less than
``1.2 x impact_k_bps / 1e4 x sqrt(depth / V) / limit`` relative (2.4e-5 at 10 bps, depth V, 50 levels). A caller
that knows its size passes it as ``amount``: it becomes a boundary, so choosing a venue by the book
agrees with the fill the paper venue then gives (``tests/test_paper_book.py``).

Depth: with a participation cap the venue fills at most what is left of ``participation x V`` in
the current bar, so the book is that deep. Without one the venue fills any size at once; the book
then shows ``max(V, 2 x amount)`` (at least 1 base when both are 0) so the asked size always fits.
Slippage noise (``slippage_noise_bps``) is not in the book: it is the noise-free expectation.

Units: prices in quote per base, amounts in base.
"""

from __future__ import annotations

import math

from hedge_core import money
from hedge_core.errors import InvalidInput

__all__ = ["DEFAULT_LEVELS", "model_book"]

#: Levels per side when the caller gives no ``limit`` (ccxt's usual default depth).
DEFAULT_LEVELS = 50


def _boundaries(depth: float, levels: int, amount: float | None) -> list[float]:
    """Cumulative sizes ``0 < Q[1] < ... < Q[n] = depth``: quadratic spacing (fine near the top of the
    book, where most orders end), plus ``amount`` when it lies inside."""
    qs = {depth * (i / levels) ** 2 for i in range(1, levels + 1)}
    if amount is not None and 0.0 < amount < depth:
        qs.add(float(amount))
    return sorted(q for q in qs if q > 0.0)


def model_book(ref: float, volume: float, slippage_bps: float, impact_k_bps: float, *, depth: float,
               limit: int | None = None, amount: float | None = None) -> dict[str, list[list[float]]]:
    """A ccxt order book (``bids`` descending, ``asks`` ascending, ``[price, amount]`` levels) whose walked
    cost is the paper model's fill cost (see the module docstring).

    Parameters
    ----------
    ref : float
        Reference price (the instrument's last bar close), quote per base, > 0.
    volume : float
        That bar's base volume, >= 0 (0: no impact term).
    slippage_bps, impact_k_bps : float
        The venue's fixed slippage and impact coefficient, basis points, >= 0.
    depth : float
        Base quantity each side shows, > 0.
    limit : int, optional
        Levels per side before the ``amount`` boundary is added (1..1000; default :data:`DEFAULT_LEVELS`).
    amount : float, optional
        A size the caller will walk (base, > 0): made a level boundary when inside ``depth``.
    """
    for name, v, lo in (("ref", ref, 0.0), ("depth", depth, 0.0)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > lo):
            raise InvalidInput(name, v, "a finite number > 0")
    for name, v in (("volume", volume), ("slippage_bps", slippage_bps), ("impact_k_bps", impact_k_bps)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise InvalidInput(name, v, "a finite number >= 0")
    n = DEFAULT_LEVELS if limit is None else limit
    if not (isinstance(n, int) and 1 <= n <= 1000):
        raise InvalidInput("limit", limit, "None or an int in 1..1000 (levels per side)")
    if amount is not None and not (math.isfinite(amount) and amount > 0):
        raise InvalidInput("amount", amount, "None or a base quantity > 0")
    qs = _boundaries(float(depth), n, amount)
    book: dict[str, list[list[float]]] = {}
    for key, sign in (("asks", 1.0), ("bids", -1.0)):
        levels: list[list[float]] = []
        q0 = c0 = 0.0
        for q in qs:
            c = q * money.fill_price(ref, sign, money.slippage_bps(slippage_bps, impact_k_bps, q, volume))
            px = (c - c0) / (q - q0)
            if not px > 0.0:  # a sell so large its marginal price would reach 0: the book ends here
                break
            levels.append([px, q - q0])
            q0, c0 = q, c
        book[key] = levels
    return book
