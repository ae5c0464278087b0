"""Fault injection: wrap any :class:`~hedge_core.exchange.base.ExchangeAdapter` and make calls fail.

Per call, one uniform draw ``u`` from a seeded RNG picks at most one fault (cumulative bands in
this order): ``drop`` | ``timeout`` | ``error`` | ``delay`` | none.

- **drop**: the request never reaches the venue; :class:`~hedge_core.errors.RequestTimeout` is raised.
- **timeout**: the request IS sent and executed by the venue, then RequestTimeout is raised — the
  dangerous case (the order exists although the caller saw an error); callers must look it up by
  client order id before re-sending.
- **error**: ``error_cls`` (default NetworkError; RateLimited, OperationalError...) is raised,
  nothing sent.
- **delay**: ``await sleep(delay_s)``, then the call goes through normally.

Exactly one draw is consumed per wrapped call whatever happens, so the fault sequence depends only on
the seed and the sequence of calls: the same run reproduces the same faults. Every decision is
appended to :attr:`FaultInjector.records`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hedge_core.errors import ExchangeError, InvalidInput, NetworkError, RequestTimeout

__all__ = ["FaultInjector", "FaultRecord", "ADAPTER_METHODS"]

#: The coroutine methods of the adapter protocol that can be faulted (``close`` never is).
ADAPTER_METHODS: tuple[str, ...] = (
    "load_markets", "fetch_ticker", "fetch_balance", "fetch_positions", "create_order", "cancel_order",
    "fetch_order", "fetch_open_orders", "fetch_my_trades", "set_leverage", "set_margin_mode",
    "set_position_mode", "fetch_funding_rate", "fetch_funding_rate_history", "fetch_funding_payments",
    "transfer",
)
ACTIONS = ("drop", "timeout", "error", "delay", "pass")


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """One wrapped call: ``seq`` (0-based call number), method, what was done and whether the
    venue received the request."""

    seq: int
    method: str
    action: str  # drop | timeout | error | delay | pass
    sent: bool
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]


def _prob(name: str, v: float) -> float:
    if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
        raise InvalidInput(name, v, "a probability in [0, 1]")
    return float(v)


class FaultInjector:
    """Adapter wrapper that injects seeded faults (see module docstring).

    Parameters
    ----------
    adapter : ExchangeAdapter
        The wrapped adapter (paper, live, recommend...).
    drop, delay, timeout, error : float
        Probabilities per call, each in [0, 1], sum <= 1.
    delay_s : float
        Seconds slept by a delay fault.
    error_cls : type of ExchangeError
        Raised by an error fault (NetworkError, RateLimited, OperationalError, ...).
    seed : int
        RNG seed: same seed and same call sequence -> same faults.
    methods : iterable of str, optional
        Methods that can be faulted (default :data:`ADAPTER_METHODS`); other calls pass through
        without consuming a draw.
    sleep : coroutine function
        Injectable sleep for delays (default :func:`asyncio.sleep`).
    """

    def __init__(self, adapter: Any, *, drop: float = 0.0, delay: float = 0.0, delay_s: float = 1.0,
                 timeout: float = 0.0, error: float = 0.0, error_cls: type[ExchangeError] = NetworkError,
                 seed: int = 0, methods: Iterable[str] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.adapter = adapter
        self.p_drop = _prob("drop", drop)
        self.p_timeout = _prob("timeout", timeout)
        self.p_error = _prob("error", error)
        self.p_delay = _prob("delay", delay)
        total = self.p_drop + self.p_timeout + self.p_error + self.p_delay
        if total > 1.0 + 1e-12:
            raise InvalidInput("drop+timeout+error+delay", total, "a total probability <= 1")
        if not (isinstance(delay_s, (int, float)) and delay_s >= 0):
            raise InvalidInput("delay_s", delay_s, "seconds >= 0")
        if not (isinstance(error_cls, type) and issubclass(error_cls, ExchangeError)):
            raise InvalidInput("error_cls", error_cls, "a subclass of hedge_core.errors.ExchangeError")
        self.delay_s = float(delay_s)
        self.error_cls = error_cls
        self.methods = frozenset(ADAPTER_METHODS if methods is None else methods)
        unknown = self.methods - set(ADAPTER_METHODS)
        if unknown:
            raise InvalidInput("methods", sorted(unknown), f"names from {ADAPTER_METHODS}")
        self._rng = random.Random(seed)
        self._sleep = sleep
        self.records: list[FaultRecord] = []

    @property
    def venue(self) -> str:
        return self.adapter.venue

    @property
    def mode(self) -> Any:
        return self.adapter.mode

    def _decide(self) -> str:
        u = self._rng.random()
        edge = 0.0
        for action, p in (("drop", self.p_drop), ("timeout", self.p_timeout), ("error", self.p_error),
                          ("delay", self.p_delay)):
            edge += p
            if u < edge:
                return action
        return "pass"

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.adapter, name)
        if name not in self.methods:
            return target

        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            action = self._decide()
            seq = len(self.records)
            sent = action in ("timeout", "delay", "pass")
            self.records.append(FaultRecord(seq, name, action, sent, args, tuple(sorted(kwargs.items()))))
            venue = getattr(self.adapter, "venue", "")
            if action == "drop":
                raise RequestTimeout(f"injected drop: request not sent (call #{seq})", venue=venue, method=name)
            if action == "error":
                raise self.error_cls(f"injected {self.error_cls.__name__} (call #{seq})", venue=venue, method=name)
            if action == "delay":
                await self._sleep(self.delay_s)
            result = await target(*args, **kwargs)
            if action == "timeout":
                raise RequestTimeout(f"injected timeout after the venue executed the call (call #{seq})",
                                     venue=venue, method=name)
            return result

        return wrapped

    def counts(self) -> dict[str, int]:
        """How many calls got each action."""
        out = {a: 0 for a in ACTIONS}
        for r in self.records:
            out[r.action] += 1
        return out

    async def close(self) -> None:
        await self.adapter.close()
