"""Async paper exchange: :class:`~hedge_core.exchange.base.ExchangeAdapter` over :class:`PaperCore`.

A thin shell: every call delegates to the synchronous core (which holds all rules, see
:mod:`hedge_core.exchange.paper.core`) and, when a ``state_path`` is given, saves the core's
state atomically after each mutating call so a restarted paper run continues where it stopped.

Usage::

    core = PaperCore(PaperConfig(), balances={"spot": {"USDT": 10_000}, "perp": {"USDT": 10_000}})
    ex = PaperExchange(core, state_path="data/paper_state.json")
    async for event in feed:            # hedge_core.exchange.feeds.Feed
        await ex.apply(event)           # bars -> fills/liquidations, funding -> payments
        ... engine calls ex.create_order(...) ...
    ex2 = PaperExchange.load("data/paper_state.json")   # after a restart
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from hedge_core.errors import DataError, InvalidInput, OperationalError
from hedge_core.exchange.paper.core import PaperConfig, PaperCore
from hedge_core.types import (
    Balance,
    Bar,
    Fill,
    FundingEvent,
    FundingPayment,
    FundingRate,
    Instrument,
    MarginMode,
    Order,
    OrderRequest,
    Position,
    PositionMode,
    Ticker,
    TradingMode,
)

__all__ = ["PaperExchange", "save_state", "load_state"]


def save_state(state: dict[str, Any], path: str | os.PathLike[str], *, fsync: bool = True) -> Path:
    """Write ``state`` as JSON atomically: temp file in the same folder, fsync, rename.

    A crash leaves either the old file or the new one, never a torn file. ``fsync=False`` skips
    the flush to disk (still atomic against a crash of this process, not against power loss).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            # dumps (one shot) runs the C encoder; dump() to a file iterates the pure-Python one (~10x slower)
            fh.write(json.dumps(state, separators=(",", ":"), allow_nan=False))
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p


def load_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a state file written by :func:`save_state`; DataError names the file if it is broken."""
    p = Path(path)
    try:
        with open(p, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(f"paper state is not valid JSON: {exc.msg}", file=str(p), row=exc.lineno) from exc


class PaperExchange:
    """The paper venue as an async :class:`~hedge_core.exchange.base.ExchangeAdapter`.

    Parameters
    ----------
    core : PaperCore, optional
        The simulator; default a fresh ``PaperCore(PaperConfig())`` with empty wallets.
    state_path : path, optional
        JSON file the state is saved to (atomically) after every mutating call and, when
        ``save_on_apply``, after every market event.
    save_on_apply : bool
        Also save after each :meth:`apply` (paper runs on a live clock: one write per event is cheap).
    fsync : bool
        Flush each save to disk (default). Tests and fast replays may turn it off.
    """

    mode = TradingMode.PAPER

    #: Its order answers carry every fill (filled, average price, fee): the driver books fills from
    #: them directly, with no trade-record read per order (see hedge_core.engine.driver).
    answers_carry_fills = True

    def __init__(self, core: PaperCore | None = None, *, state_path: str | os.PathLike[str] | None = None,
                 save_on_apply: bool = True, fsync: bool = True) -> None:
        self.core = core if core is not None else PaperCore(PaperConfig())
        self.venue = self.core.config.venue
        self.state_path = Path(state_path) if state_path is not None else None
        self.save_on_apply = save_on_apply
        self.fsync = fsync
        self.closed = False

    # ---- persistence ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Atomically write the core's state to ``path`` (default :attr:`state_path`)."""
        target = path if path is not None else self.state_path
        if target is None:
            raise InvalidInput("path", None, "a file path (or construct with state_path=...)")
        return save_state(self.core.state_dict(), target, fsync=self.fsync)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, save_on_apply: bool = True, fsync: bool = True) -> "PaperExchange":
        """Resume from a state file; later saves go to the same file."""
        return cls(PaperCore.from_state(load_state(path)), state_path=path, save_on_apply=save_on_apply,
                   fsync=fsync)

    @classmethod
    def open(cls, path: str | os.PathLike[str], core_factory: Any = None, **kw: Any) -> "PaperExchange":
        """Resume from ``path`` if it exists, else start from ``core_factory()`` (or a default core)."""
        if Path(path).exists():
            return cls.load(path, **kw)
        core = core_factory() if core_factory is not None else None
        ex = cls(core, state_path=path, **kw)
        ex.save()
        return ex

    def _saved(self) -> None:
        if self.state_path is not None:
            save_state(self.core.state_dict(), self.state_path, fsync=self.fsync)

    # ---- market input -----------------------------------------------------------------------
    async def apply(self, event: Bar | FundingEvent) -> None:
        """Feed one market event to the simulator (see :meth:`PaperCore.apply`)."""
        self.core.apply(event)
        if self.save_on_apply:
            self._saved()

    # ---- ExchangeAdapter ----------------------------------------------------------------------
    async def load_markets(self) -> dict[str, Instrument]:
        return dict(self.core.instruments)

    async def dated_futures(self, base: str, quote: str = "USDT") -> list[tuple[str, pd.Timestamp]]:
        """The simulated dated futures of ``base``/``quote`` (``PaperConfig.quarterlies``) as ``(symbol, expiry)``
        pairs sorted by expiry, like :meth:`hedge_core.exchange.ccxt.adapter.CcxtLiveAdapter.dated_futures`; one
        delivered (``PaperCore.delivered``) is delisted and no longer listed."""
        qs, gone = self.core.config.quarterlies, set(self.core.delivered)
        return sorted(((q.symbol, q.expiry) for q in qs if q.base == base and q.quote == quote and q.symbol not in gone),
                      key=lambda r: r[1])

    async def fetch_ticker(self, symbol: str) -> Ticker:
        return self.core.ticker(symbol)

    async def fetch_order_book(self, symbol: str, limit: int | None = None, *,
                               amount: float | None = None) -> dict[str, list[list[float]]]:
        """The venue's book from its own execution model (:meth:`PaperCore.order_book`): walked for
        ``amount`` (base) it gives the average price a market order of that size fills at now."""
        return self.core.order_book(symbol, limit, amount)

    async def fetch_balance(self, account: str = "spot") -> dict[str, Balance]:
        return self.core.balance(account)

    async def fetch_positions(self, symbols: list[str] | None = None) -> list[Position]:
        return self.core.positions_view(symbols)

    async def create_order(self, request: OrderRequest) -> Order:
        order = self.core.create_order(request)
        self._saved()
        return order

    async def cancel_order(self, symbol: str, *, order_id: str | None = None,
                           client_order_id: str | None = None) -> Order:
        order = self.core.cancel_order(symbol, order_id=order_id, client_order_id=client_order_id)
        self._saved()
        return order

    async def fetch_order(self, symbol: str, *, order_id: str | None = None,
                          client_order_id: str | None = None) -> Order:
        return self.core.fetch_order(symbol, order_id=order_id, client_order_id=client_order_id)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        return self.core.open_orders(symbol)

    async def fetch_my_trades(self, symbol: str, since: pd.Timestamp | None = None) -> list[Fill]:
        return self.core.trades(symbol, since)

    async def fetch_deliveries(self, symbol: str, since: pd.Timestamp | None = None) -> list[Fill]:
        """The venue's deliveries of the dated future ``symbol`` at or after ``since``: one fill each, the
        position closed at the delivery price with the delivery fee (:mod:`hedge_core.exchange.paper.delivery`);
        they are in :meth:`fetch_my_trades` too (client order id ``dlv-<n>``)."""
        from hedge_core.exchange.paper.delivery import is_delivery_fill

        return [f for f in self.core.trades(symbol, since) if is_delivery_fill(f.client_order_id)]

    async def set_leverage(self, symbol: str, leverage: float) -> None:
        self.core.set_leverage(symbol, leverage)
        self._saved()

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> None:
        self.core.set_margin_mode(symbol, mode)
        self._saved()

    async def set_position_mode(self, mode: PositionMode) -> None:
        self.core.set_position_mode(mode)
        self._saved()

    async def transfer(self, currency: str, amount: float, from_account: str, to_account: str) -> dict[str, Any]:
        """Move funds between the ``'spot'`` and ``'perp'`` wallets (see :meth:`PaperCore.transfer`)."""
        rec = self.core.transfer(currency, amount, from_account, to_account)
        self._saved()
        return rec

    async def fetch_funding_rate(self, symbol: str) -> FundingRate:
        """The paper venue only knows settled rates: the last settled rate, stamped with the next
        funding time (last + interval) and the current mark. Binance's "predicted" rate is not modelled."""
        self.core._perp(symbol, "fetch_funding_rate")
        hist = [f for f in self.core.funding_history if f.symbol == symbol]
        if not hist:
            raise OperationalError(f"no funding rate known for {symbol} yet", venue=self.venue,
                                   method="fetch_funding_rate")
        last = hist[-1]
        return FundingRate(symbol, last.ts + pd.Timedelta(hours=last.interval_hours), last.rate,
                           last.interval_hours, self.core.mark_price(symbol))

    async def fetch_funding_rate_history(self, symbol: str, since: pd.Timestamp | None = None,
                                         limit: int | None = None) -> list[FundingRate]:
        out = [f for f in self.core.funding_history
               if f.symbol == symbol and (since is None or f.ts >= since)]
        return out[:limit] if limit is not None else out

    async def fetch_funding_payments(self, symbol: str | None = None,
                                     since: pd.Timestamp | None = None) -> list[FundingPayment]:
        return [f for f in self.core.funding_payments
                if (symbol is None or f.symbol == symbol) and (since is None or f.ts >= since)]

    async def close(self) -> None:
        if not self.closed:
            self._saved()
            self.closed = True
