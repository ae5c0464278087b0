"""Rate-limit bans made visible: a venue account's governor -> a ``rate_limit_ban`` DEGRADED
condition on ``Supervisor.venue_conditions[venue]`` (so ``/health`` says "degraded" with the
ban's end) and one ``rate_limit_ban`` alert on the supervisor's alert bus per ban.

The governor (:mod:`hedge_core.exchange.governor`) is shared by every adapter of the same venue +
key in the process; it is watched once however many hedges use it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import MappingProxyType

import pandas as pd

from hedge_core.exchange.governor import BanEvent, RateGovernor
from hedge_core.runner.condition import AlertBus, AlertMessage, Conditions

__all__ = ["BAN_CONDITION", "BanWatch"]

BAN_CONDITION = "rate_limit_ban"


class BanWatch:
    """Subscribe the governors of adapters to one supervisor's conditions and alert bus.

    Parameters
    ----------
    conditions_for : callable
        venue -> its :class:`Conditions` (created on first use by the caller).
    bus : AlertBus
    """

    def __init__(self, conditions_for: Callable[[str], Conditions], bus: AlertBus) -> None:
        self._conditions_for = conditions_for
        self._bus = bus
        self._watched: dict[int, Callable[[], None]] = {}

    def watch(self, adapter: object) -> None:
        """Watch ``adapter``'s governor (adapters without one, e.g. paper, are ignored)."""
        for ad in (adapter, getattr(adapter, "adapter", None), getattr(adapter, "market_data", None)):
            gov = getattr(ad, "governor", None)
            if isinstance(gov, RateGovernor) and id(gov) not in self._watched:
                self._watched[id(gov)] = gov.subscribe(self._on_ban)
                if gov.banned:  # banned before we watched (a shared account)
                    end = gov.ban_end
                    assert end is not None
                    self._on_ban(BanEvent(gov.venue, gov.account, True, end, gov.state.reason))

    def close(self) -> None:
        for unsubscribe in self._watched.values():
            unsubscribe()
        self._watched.clear()

    def _on_ban(self, ev: BanEvent) -> None:
        cond = self._conditions_for(ev.venue)
        if not ev.active:
            cond.clear(BAN_CONDITION)
            return
        msg = (f"{ev.venue} account {ev.account}: rate-limit ban until {ev.until.isoformat()} ({ev.reason}); "
               "no request of any kind is sent before then")
        if cond.raise_(BAN_CONDITION, msg):
            secs = max((ev.until - pd.Timestamp.now(tz="UTC")).total_seconds(), 0.0)
            self._bus.emit(AlertMessage("critical", BAN_CONDITION, msg, venue=ev.venue,
                                        numbers=MappingProxyType({"ban_s": secs})))
            self._clear_later(cond, ev.until, secs)

    @staticmethod
    def _clear_later(cond: Conditions, until: pd.Timestamp, secs: float) -> None:
        """Clear the condition when the ban is over even if no request asks the governor."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        expected = cond.as_dict().get(BAN_CONDITION)
        loop.call_later(secs, lambda: cond.as_dict().get(BAN_CONDITION) == expected and cond.clear(BAN_CONDITION))

