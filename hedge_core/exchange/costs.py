"""The venue's trading costs as one object the strategy's entry filter reads: :class:`CostModel`.

Where the figures come from
---------------------------
- Paper venue (backtests, paper runs): its :class:`~hedge_core.exchange.paper.config.PaperConfig`,
  ``spot_taker_fee``, ``perp_taker_fee`` and the fixed part of its slippage ``slippage_bps / 1e4``
  (:func:`from_paper`). The size-dependent impact ``impact_k_bps x sqrt(qty / bar volume)`` is not in
  the model: it depends on the order size and the bar, which an entry filter does not know yet.
- Live venue (ccxt): the unified market's ``taker`` fee of the spot and of the perp market
  (:func:`from_ccxt_markets`), with :data:`DEFAULT_SLIPPAGE` per fill.
- Anything else (no venue known): :data:`BINANCE_VIP0`, the paper venue's defaults.

One resolver
------------
:func:`resolve_costs` attaches the venue's model to the strategy parameters
(``params.venue_costs``); the event path (``backtest.event.run_backtest``), the fast path
(``backtest.fast``), the sweeps (through those two) and the runner (``runner.hedge``) all call it, and
the entry filters read the round trip from :func:`entry_round_trip`. A parameter set may still
override the figures (``taker_fee``: one fee on both legs; ``slippage_rate``); when the resulting
round trip differs from the venue's, :func:`resolve_costs` warns (:class:`CostModelWarning`) naming
both figures.

Units: every rate is a fraction of the filled notional per fill (0.001 = 0.1 %); a round trip is a
fraction of the spot notional, a cost (>= 0).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from hedge_core import money
from hedge_core.errors import InvalidInput

if TYPE_CHECKING:
    from hedge_core.exchange.paper.config import PaperConfig
    from hedge_core.params.models import StrategyParamsBase

#: A strategy's parameter set (``params.models`` imports this module, so the bound is a forward reference).
P = TypeVar("P", bound="StrategyParamsBase")

__all__ = [
    "BINANCE_VIP0",
    "DEFAULT_SLIPPAGE",
    "CostModel",
    "CostModelWarning",
    "cost_mismatch",
    "entry_costs",
    "entry_round_trip",
    "from_ccxt_markets",
    "from_paper",
    "of_adapter",
    "pair_from_paper",
    "resolve_costs",
]

#: Slippage per fill assumed for a live venue (fraction): the paper venue's default fixed slippage, 1 bp.
DEFAULT_SLIPPAGE = 0.0001

#: Tolerance under which two round trips are the same figure (fraction of notional).
_SAME = 1e-12


@dataclass(frozen=True)
class CostModel:
    """What one spot/perp round trip costs on a venue (frozen).

    Attributes
    ----------
    spot_taker_fee : float
        Spot taker fee per fill, fraction of the filled notional, in [0, 0.01].
    perp_taker_fee : float
        Perp taker fee per fill, fraction of the filled notional, in [0, 0.01].
    slippage_rate : float
        Expected slippage per fill, fraction of the price, in [0, 0.01] (a cost).
    source : str
        Where the figures come from (shown in the warning and the notebook).
    """

    spot_taker_fee: float
    perp_taker_fee: float
    slippage_rate: float
    source: str = "venue"

    def __post_init__(self) -> None:
        for name in ("spot_taker_fee", "perp_taker_fee", "slippage_rate"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and 0.0 <= v <= 0.01):
                raise InvalidInput(name, v, "a fraction per fill in [0, 0.01]")
            object.__setattr__(self, name, float(v))

    @property
    def round_trip(self) -> float:
        """Opening and closing both legs at their own fees plus slippage, fraction of notional:
        ``2 x (spot_taker_fee + slippage_rate) + 2 x (perp_taker_fee + slippage_rate)`` (>= 0, a cost)."""
        return money.pair_round_trip_cost(self.spot_taker_fee, self.perp_taker_fee, self.slippage_rate)

    def describe(self) -> str:
        """``'0.34 % (spot 0.1 %, perp 0.05 %, slippage 1 bps)'``."""
        return (f"{self.round_trip * 100:.4g} % (spot {self.spot_taker_fee * 100:.4g} %, "
                f"perp {self.perp_taker_fee * 100:.4g} %, slippage {self.slippage_rate * 1e4:.4g} bps)")


#: Binance VIP0 taker fees (spot 0.1 %, USD-M perpetual 0.05 %; binance.com/en/fee/schedule) and
#: 1 bp slippage: the paper venue's defaults, used when no venue is known.
BINANCE_VIP0 = CostModel(0.001, 0.0005, DEFAULT_SLIPPAGE, source="Binance VIP0 (paper defaults)")


class CostModelWarning(UserWarning):
    """The parameters' entry filter prices a round trip differently from the venue it trades on."""


def from_paper(spot: PaperConfig, perp: PaperConfig | None = None) -> CostModel:
    """The cost model of a paper venue (``perp``: the perp leg's venue when the legs are on two).

    Spot fee from ``spot``, perp fee from ``perp`` (default ``spot``), slippage the fixed
    ``slippage_bps / 1e4`` of ``spot`` (of the larger of the two when there are two)."""
    p = perp if perp is not None else spot
    slip = max(spot.slippage_bps, p.slippage_bps) / 1e4
    name = spot.venue if p.venue == spot.venue else f"{spot.venue} spot / {p.venue} perp"
    return CostModel(spot.spot_taker_fee, p.perp_taker_fee, min(slip, 0.01), source=f"paper {name}")


def from_ccxt_markets(spot_market: Mapping[str, Any], perp_market: Mapping[str, Any], *,
                      slippage_rate: float = DEFAULT_SLIPPAGE, venue: str = "live") -> CostModel:
    """The cost model from ccxt unified markets (``exchange.markets[symbol]``): their ``taker`` fees.

    Raises
    ------
    InvalidInput
        A market without a numeric ``taker`` fee, or a fee outside [0, 0.01].
    """
    fees = []
    for name, m in (("spot_market.taker", spot_market), ("perp_market.taker", perp_market)):
        v = m.get("taker") if isinstance(m, Mapping) else None
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise InvalidInput(name, v, "the market's taker fee, a fraction per fill in [0, 0.01]")
        fees.append(float(v))
    return CostModel(fees[0], fees[1], slippage_rate, source=f"{venue} taker fees")


def of_adapter(adapter: object, spot_symbol: str | None = None, perp_symbol: str | None = None) -> CostModel:
    """The cost model of the venue behind an exchange adapter.

    Legs on two venues (``adapter.leg_adapters()``): each leg's venue's fee. A paper adapter
    (``adapter.core.config``): :func:`from_paper`. A ccxt adapter with loaded markets
    (``adapter.exchange.markets``) and both symbols: :func:`from_ccxt_markets`. Otherwise
    :data:`BINANCE_VIP0`.
    """
    legs = getattr(adapter, "leg_adapters", None)
    sa, pa = legs() if callable(legs) else (adapter, adapter)
    cs: PaperConfig | None = getattr(getattr(sa, "core", None), "config", None)
    cp: PaperConfig | None = getattr(getattr(pa, "core", None), "config", None)
    if cs is not None and cp is not None:
        return pair_from_paper(cs, cp) if getattr(adapter, "perp_pair", False) else from_paper(cs, cp)
    if getattr(adapter, "perp_pair", False):  # two perp legs (exchange.routed_pair): the first leg is a perp too
        spot_symbol = perp_symbol
    ms = getattr(getattr(sa, "exchange", None), "markets", None)
    mp = getattr(getattr(pa, "exchange", None), "markets", None)
    if isinstance(ms, Mapping) and isinstance(mp, Mapping) and spot_symbol in ms and perp_symbol in mp:
        try:
            return from_ccxt_markets(ms[spot_symbol], mp[perp_symbol], venue=str(getattr(sa, "venue", "live")))
        except InvalidInput:
            pass  # a market without a taker fee: the documented defaults below
    return BINANCE_VIP0


def pair_from_paper(first: PaperConfig, second: PaperConfig) -> CostModel:
    """The cost model of two paper PERP venues (two perp legs): the FIRST venue's perp fee in the first
    leg's place (``spot_taker_fee``), the second's perp fee, the slippage of :func:`from_paper`."""
    from dataclasses import replace

    m = from_paper(replace(first, spot_taker_fee=first.perp_taker_fee), second)
    return replace(m, source=f"{first.venue} perp / {second.venue} perp (paper)")


def entry_costs(params: object, venue: CostModel | None = None) -> CostModel:
    """The cost model the entry filter of ``params`` prices with: ``venue`` (default
    ``params.venue_costs``, else :data:`BINANCE_VIP0`) with the parameters' overrides applied
    (``params.taker_fee`` on both legs, ``params.slippage_rate``; ``None`` = the venue's)."""
    v = venue if venue is not None else (getattr(params, "venue_costs", None) or BINANCE_VIP0)
    fee = getattr(params, "taker_fee", None)
    slip = getattr(params, "slippage_rate", None)
    if fee is None and slip is None:
        return v
    return CostModel(v.spot_taker_fee if fee is None else fee, v.perp_taker_fee if fee is None else fee,
                     v.slippage_rate if slip is None else slip, source="parameters (override)")


def entry_round_trip(params: object) -> float:
    """The round trip (fraction of notional, a cost) the entry filter of ``params`` prices:
    ``entry_costs(params).round_trip``. The event path (``strategies.carry``) and the fast path
    (``backtest.fast.entry_signal``) both read it, so they agree."""
    return entry_costs(params).round_trip


def cost_mismatch(params: object, venue: CostModel) -> str | None:
    """The warning text when the parameters' entry filter prices a round trip differently from
    ``venue``; ``None`` when they agree (within 1e-12)."""
    mine = entry_costs(params, venue)
    if abs(mine.round_trip - venue.round_trip) <= _SAME:
        return None
    return (f"entry filter prices a round trip at {mine.describe()} (taker_fee={getattr(params, 'taker_fee', None)}, "
            f"slippage_rate={getattr(params, 'slippage_rate', None)}) but the venue charges {venue.describe()} "
            f"[{venue.source}]; set taker_fee and slippage_rate to None to price with the venue's figures")


def resolve_costs(params: P, venue: CostModel, *, warn: bool = True) -> P:
    """``params`` with ``venue_costs = venue`` (what every path's entry filter then reads).

    Warns :class:`CostModelWarning` (when ``warn``) if the parameters override the venue's figures
    with a different round trip. Parameters without a ``venue_costs`` field come back unchanged.
    """
    if "venue_costs" not in type(params).model_fields:
        return params
    if warn:
        msg = cost_mismatch(params, venue)
        if msg is not None:
            warnings.warn(msg, CostModelWarning, stacklevel=2)
    if getattr(params, "venue_costs", None) == venue:
        return params
    return params.model_copy(update={"venue_costs": venue})
