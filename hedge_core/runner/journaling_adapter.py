"""The journaling adapter of a hedge: every order answer is journaled, refusals and unknown outcomes too.

Split out of :mod:`hedge_core.runner.hedge` (which re-exports it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hedge_core.errors import DuplicateOrder, ExchangeError, RequestTimeout, TemporaryError
from hedge_core.runner.killpoints import kill_point
from hedge_core.types import Order

if TYPE_CHECKING:
    from hedge_core.runner.hedge import HedgeTask

__all__ = ["JournalingAdapter"]


class JournalingAdapter:
    """Wrap an adapter: journal every order answer, and offer the ``order_sent`` kill point."""

    def __init__(self, inner: Any, task: HedgeTask) -> None:
        self.inner = inner
        self.task = task
        self.venue = inner.venue
        self.mode = inner.mode

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _answer(self, o: Order) -> Order:
        self.task.journal.order_answer(self.task.hedge_id, o)
        return o

    async def create_order(self, request: Any) -> Order:
        try:
            o = await self.inner.create_order(request)
        except (DuplicateOrder, RequestTimeout, TemporaryError):
            self.task.reconcile_due.set()  # unknown outcome: compare with the venue once it is resolved
            raise
        except ExchangeError as exc:  # the venue refused it: no order exists
            self.task.journal.rejected(self.task.hedge_id, request.client_order_id, f"{type(exc).__name__}: {exc}")
            raise
        leg, purpose = self.task.purposes.get(request.client_order_id, ("", ""))
        kill_point("order_sent", leg, purpose)
        return self._answer(o)

    async def fetch_order(self, symbol: str, **kw: Any) -> Order:
        return self._answer(await self.inner.fetch_order(symbol, **kw))

    async def cancel_order(self, symbol: str, **kw: Any) -> Order:
        return self._answer(await self.inner.cancel_order(symbol, **kw))
