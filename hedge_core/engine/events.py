"""Events fed to :func:`hedge_core.engine.step.step`. Frozen data; time always comes in ``ts``.

The driver (live/paper) or the backtester builds them from feeds and adapter answers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

import pandas as pd

from hedge_core.errors import InvalidInput
from hedge_core.types import Fill, Instrument

__all__ = [
    "Command",
    "Event",
    "FillEvent",
    "FundingSettled",
    "MarketUpdate",
    "OperatorCommand",
    "OrderTimeout",
    "OrderUpdate",
    "OrderUpdateKind",
    "Timer",
]

_EMPTY: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class MarketUpdate:
    """Prices known at ``ts`` (quote per base) for the hedge's two legs.

    ``spot`` is the price of the spot leg's symbol and ``perp`` of the perp leg's symbol (for a
    cross-asset hedge these are different assets). ``mark`` is the perp mark price (NaN = use
    ``perp``). Volumes are the last bar's base volumes. ``funding_rate`` is the last settled
    rate, ``next_funding_rate`` the predicted one (fraction per interval; + longs pay shorts),
    ``next_funding_ts`` the next settlement. ``analytics`` holds precomputed inputs by name
    (e.g. ``beta``, ``sigma_24h``, ``correlation``, ``baseline``, ``baseline_std``,
    ``volume_avg``, ``var_1d``) so strategies stay pure and cheap.

    A hedge whose FIRST ('spot') leg is a perp too (two perp legs on two venues,
    docs/cross-venue.md): ``spot`` is that leg's last price, ``spot_mark`` its venue's mark price
    (NaN = use ``spot``), ``spot_funding_rate`` its venue's last settled rate (fraction per
    ``spot_funding_interval_hours``; + longs pay shorts; NaN = unknown) and ``spot_next_funding_ts``
    its venue's next settlement (None = unknown). A spot first leg leaves the four at their defaults.
    """

    ts: pd.Timestamp
    spot: float
    perp: float
    mark: float = math.nan
    spot_volume: float = 0.0
    perp_volume: float = 0.0
    funding_rate: float = 0.0
    next_funding_rate: float = math.nan
    next_funding_ts: pd.Timestamp | None = None
    funding_interval_hours: float = 8.0
    analytics: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    spot_mark: float = math.nan
    spot_funding_rate: float = math.nan
    spot_funding_interval_hours: float = 8.0
    spot_next_funding_ts: pd.Timestamp | None = None

    @property
    def first_mark(self) -> float:
        """The first leg's mark price: ``spot_mark``, or ``spot`` when no mark is given (quote per base)."""
        return self.spot if math.isnan(self.spot_mark) else self.spot_mark

    @property
    def mark_or_perp(self) -> float:
        return self.perp if math.isnan(self.mark) else self.mark

    @property
    def expected_funding_rate(self) -> float:
        """The predicted next rate when known, else the last settled one."""
        return self.funding_rate if math.isnan(self.next_funding_rate) else self.next_funding_rate


class OrderUpdateKind(StrEnum):
    ACK = "ack"  # accepted and working (or a query found it still open)
    REJECTED = "rejected"  # the venue refused it; nothing filled
    CANCELED = "canceled"  # cancelled or expired; ``filled`` may be > 0 (partial)
    CLOSED = "closed"  # fully filled (fills arrive as FillEvent)
    NOT_FOUND = "not_found"  # a query by client order id (and trade records): the venue has no such order
    NOT_SENT = "not_sent"  # refused before reaching the venue's matching (429/418, governor): retry at ``retry_at``


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An answer about one of our orders (from create/cancel/fetch). Fills come separately."""

    ts: pd.Timestamp
    client_order_id: str
    kind: OrderUpdateKind
    reason: str = ""
    order_id: str | None = None
    filled: float = 0.0  # cumulative base filled as the venue reports it (informational)
    # NOT_FOUND: seconds after sending during which the venue may still execute the order
    # (recvWindow + margin; 0 where orders never execute late, e.g. paper): only a NOT_FOUND at or
    # after sent + window_s proves the order will never exist
    window_s: float = 0.0
    retry_at: pd.Timestamp | None = None  # NOT_SENT: no new request before (hedge clock)


@dataclass(frozen=True, slots=True)
class FillEvent:
    """One execution on leg ``leg`` ('spot' or 'perp').

    ``external=True`` marks an execution the hedge did not order (a venue liquidation or ADL):
    money moved, so it is booked, with a critical alert, and the hedge is re-evaluated.

    ``delivered_to=(instrument, price)`` (with ``external=True``) marks the venue's DELIVERY of the dated
    future the leg is on (the position closed at the delivery price, the fee the delivery fee): once booked,
    the flat leg points at ``instrument`` (the perpetual, priced ``price``) with its money kept
    (:func:`hedge_core.engine.roll_step.delivered`), and the hedge re-hedges there (docs/calendar-roll.md).
    """

    fill: Fill
    leg: str
    external: bool = False
    delivered_to: tuple[Instrument, float] | None = None

    @property
    def ts(self) -> pd.Timestamp:
        return self.fill.ts


@dataclass(frozen=True, slots=True)
class FundingSettled:
    """A funding settlement on leg ``leg`` at ``ts`` at ``rate`` (fraction per interval).

    ``amount`` is what the venue booked (+ received / - paid, quote) when known; NaN means the
    engine computes ``-qty x mark x rate`` itself. ``leg`` is ``"perp"`` (the second leg, the
    default) or ``"spot"``: the FIRST leg when it is a perp on its own venue (two perp legs,
    :mod:`hedge_core.engine.perp_legs`); each leg settles from its own venue's events.
    """

    ts: pd.Timestamp
    rate: float
    mark: float
    amount: float = math.nan
    interval_hours: float = 8.0
    leg: str = "perp"

    def __post_init__(self) -> None:
        if self.leg != "perp" and self.leg != "spot":
            raise InvalidInput("FundingSettled.leg", self.leg, "'perp' (the second leg) or 'spot' (a perp first leg)")


@dataclass(frozen=True, slots=True)
class Timer:
    """A clock tick / heartbeat. ``heartbeat=True`` means the operator side is alive.

    ``prices_stale=True`` (the runner's freshness limit is exceeded: runner.freshness): the tick still
    resolves pending orders and stamps the heartbeat, but nothing new is decided on the last prices (no
    entry, no rebalance, no guard action from a monitored or waiting hedge)."""

    ts: pd.Timestamp
    heartbeat: bool = True
    prices_stale: bool = False


@dataclass(frozen=True, slots=True)
class OrderTimeout:
    """Sending or querying ``client_order_id`` got no answer: it may or may not exist.

    ``window_end`` (when the adapter knows it): the order may still execute until then."""

    ts: pd.Timestamp
    client_order_id: str
    window_end: pd.Timestamp | None = None


class Command(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"  # close positions, then COMPLETED
    REBALANCE_NOW = "rebalance_now"
    FLATTEN = "flatten"  # kill switch: close everything now
    CANCEL = "cancel"  # clear the kill switch's latch / dead man's switch (operator is back)


@dataclass(frozen=True, slots=True)
class OperatorCommand:
    ts: pd.Timestamp
    command: Command
    reason: str = ""


Event = MarketUpdate | OrderUpdate | FillEvent | FundingSettled | Timer | OrderTimeout | OperatorCommand
