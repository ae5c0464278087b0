"""The supervisor's exchange-side cancel-all timers, armed and disarmed VENUE BY VENUE (docs/runner.md,
"Exchange-side cancel-all timer").

A hedge arms the timer of every venue its adapter trades the perp symbol on (:func:`timer_legs`):

- one venue (a ``CcxtLiveAdapter``): the spec's perp venue;
- a spot leg and a perp leg on two venues (:class:`~hedge_core.exchange.routed.RoutedAdapter`): the perp leg's
  venue only (the spot venues have no such timer through this adapter: Binance spot, Bybit);
- two perp legs (:class:`~hedge_core.exchange.routed_pair.PerpPairAdapter`, live
  :class:`~hedge_core.exchange.routed_pair_live.PerpPairLive`): BOTH venues, each armed on its own.

Each venue's timer is armed through that venue's own adapter, so:

- an account-wide timer (OKX "Cancel All After", https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-
  cancel-all-after: one timer per account, "Rate Limit: 1 request per second") is re-armed at most every
  :data:`ACCOUNT_TIMER_REARM_S` per VENUE, whichever leg of whichever hedge trades there (a pair whose FIRST leg
  is on OKX and a hedge whose perp leg is on the same OKX account share one throttle);
- a per-symbol timer (Binance USD-M ``POST /fapi/v1/countdownCancelAll``) is re-armed at every beat, never held
  back by another venue's throttle;
- a hedge whose perp leg MOVED to another venue at a flat entry (:mod:`hedge_core.runner.best_entry_live`) has
  its timer on the venue left disarmed there (``seconds = 0``, through the adapter it was armed with) unless
  another unfinished hedge is covered by it (the same venue, and the same perp symbol or an account-wide timer),
  and armed on the new venue at the same beat;
- a COMPLETED hedge's timers are disarmed on every venue it armed, with the same exception.

A failed request is logged and tried again at the next beat; one venue's failure never keeps another's timer
from being (re-/dis)armed.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

from hedge_core.engine.states import State
from hedge_core.runner.logs import log_event

if TYPE_CHECKING:
    from hedge_core.runner.hedge import HedgeTask

__all__ = ["ACCOUNT_TIMER_REARM_S", "Countdowns", "timer_legs"]

log = logging.getLogger("hedge_core.runner.supervisor")

ACCOUNT_TIMER_REARM_S = 2.0  # OKX "Cancel All After": 1 request per second; its countdown is >= 10 s


def timer_legs(h: HedgeTask) -> dict[str, Any]:
    """Venue -> the adapter whose cancel-all timer the hedge arms there for its perp symbol (empty: none)."""
    from hedge_core.exchange.routed import RoutedAdapter
    from hedge_core.exchange.routed_pair import PerpPairAdapter

    ad = h.raw_adapter
    if isinstance(ad, PerpPairAdapter):
        legs = {str(ad.spot_venue): ad.first, str(ad.perp_venue): ad.second}
    elif isinstance(ad, RoutedAdapter):
        legs = {str(ad.venue_of(h.spec.perp_symbol)): ad.adapter_for(h.spec.perp_symbol)}
    else:
        legs = {str(h.spec.leg_venues[1]): ad}
    return {v: a for v, a in legs.items() if callable(getattr(a, "arm_cancel_all_after", None))}


def _scope(adapter: Any, symbol: str | None) -> str:
    """What ``adapter``'s venue timer covers (``symbol`` | ``account`` | ``""``), see ``ExchangeAdapter``."""
    scope = getattr(adapter, "cancel_all_scope", None)
    return str(scope(symbol)) if callable(scope) and symbol else ""


def completed(h: HedgeTask) -> bool:
    """Both legs closed (the engine's ``COMPLETED``)."""
    return h.driver is not None and h.driver.ctx.state is State.COMPLETED


class Countdowns:
    """The timers of a supervisor's hedges. ``account_armed``: venue -> monotonic time its account-wide timer
    was last (re-)armed. Each hedge keeps ``armed_venues`` (venue -> (adapter, symbol) armed there) and
    ``armed_symbol`` (the perp symbol while anything is armed)."""

    def __init__(self, sup: Any) -> None:
        self.sup = sup
        self.account_armed: dict[str, float] = {}

    @staticmethod
    def _armed(h: HedgeTask) -> dict[str, tuple[Any, str]]:
        got = getattr(h, "armed_venues", None)
        if got is None:
            got = {}
            h.armed_venues = got  # type: ignore[attr-defined]
        return got

    def _throttled(self, venue: str) -> bool:
        return time.monotonic() - self.account_armed.get(venue, -math.inf) < ACCOUNT_TIMER_REARM_S

    async def arm(self, h: HedgeTask) -> None:
        """Re-arm the hedge's timers (``2 x dms_timeout_s``) on every venue it trades; disarm them on a venue its
        perp leg left. The first failure is raised once every venue was tried."""
        sym = h.spec.perp_symbol
        legs = timer_legs(h)
        armed = self._armed(h)
        for v in [v for v in armed if v not in legs]:  # the perp leg moved away from v
            await self._release(h, v)
        failed: Exception | None = None
        for v, ad in legs.items():
            account = _scope(ad, sym) == "account"
            if account and self._throttled(v):
                armed[v] = (ad, sym)  # re-armed within the last ACCOUNT_TIMER_REARM_S (by any hedge)
                continue
            try:
                ok = await ad.arm_cancel_all_after(sym, self.sup.dms_timeout_s * 2)
            except Exception as exc:  # noqa: BLE001 - the other venues are still armed; raised below
                failed = failed or exc
                continue
            if ok:
                armed[v] = (ad, sym)
                if account:
                    self.account_armed[v] = time.monotonic()
        if armed:
            h.armed_symbol = sym
        if failed is not None:
            raise failed

    async def disarm(self, h: HedgeTask) -> None:
        """Disarm a COMPLETED hedge's timers on every venue it armed (see :meth:`_release`)."""
        for v in list(self._armed(h)):
            await self._release(h, v)
        if not self._armed(h):
            h.armed_symbol = None

    def _covered(self, h: HedgeTask, venue: str, symbol: str, account: bool) -> bool:
        """Is another unfinished hedge covered by ``venue``'s timer (same symbol, or any: account-wide)?"""
        return any(o is not h and not completed(o) and venue in timer_legs(o)
                   and (account or o.spec.perp_symbol == symbol) for o in self.sup.hedges.values())

    async def _release(self, h: HedgeTask, venue: str) -> None:
        """Disarm ``h``'s timer on ``venue`` (through the adapter it armed it with) unless another unfinished
        hedge is covered by it (that hedge's next beat re-arms it). OKX's one request per second: a later beat
        when the account timer was just armed. A failed request is logged and retried on the next beat."""
        armed = self._armed(h)
        ad, sym = armed[venue]
        account = _scope(ad, sym) == "account"
        if self._covered(h, venue, sym, account):
            armed.pop(venue)  # the other hedge owns the timer now
            return
        if account and self._throttled(venue):
            return
        try:
            await ad.arm_cancel_all_after(sym, 0)
        except Exception as exc:  # noqa: BLE001 - retried next beat; the last arm expires on its own anyway
            log_event(log, "countdown disarm failed", level=logging.WARNING, hedge_id=h.hedge_id, venue=venue,
                      error=str(exc))
            return
        if account:
            self.account_armed.pop(venue, None)  # a new hedge there arms at once
        armed.pop(venue)
        why = "hedge completed" if completed(h) else "perp leg left the venue"
        log_event(log, f"exchange-side countdown disarmed: {why}", hedge_id=h.hedge_id, venue=venue, symbol=sym)
