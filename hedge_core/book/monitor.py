"""The runner's book: aggregate its hedges, price the VaR, fire the book guards.

One :class:`BookMonitor` per :class:`~hedge_core.runner.supervisor.Supervisor`. Every
``refresh_s`` it rebuilds the book from the hedges' summaries (pure :func:`aggregate`) and checks
the limits of ``<runner home>/book_limits.toml`` (re-read when the file changes; a bad file keeps
the last good limits and marks the book DEGRADED with ``book_limits``).

What a fired book guard does (never a trade):

1. records a ``guard_firings`` row with hedge id ``book`` (guard ``book_<name>``, the measured
   value and the limit) and puts a ``book_guard`` warning on the runner's alert bus, once per
   episode (again only when the guard clears and fires anew);
2. marks the runner DEGRADED: ``/health`` lists the firing under ``degraded["book"]``;
3. blocks NEW ENTRIES of the hedges it concerns (every hedge for a book-wide limit, the venue's
   for ``venue_gross``, the asset's for ``asset_net_delta``): a hedge waiting to enter
   (``ANALYZING_MARKET``) does not act on market updates, and ``POST /hedges`` refuses a new hedge
   there. Hedges already in positions keep running with their own guards, exits and flatten.

When the value is back under the limit, the block lifts and an ``info`` alert says so.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd

from hedge_core.book.aggregate import aggregate
from hedge_core.book.guards import BookLimits, BookVerdict, check_book, load_limits
from hedge_core.book.model import BookSnapshot, HedgePosition, asset_of, from_summary
from hedge_core.book.returns import asset_closes
from hedge_core.book.var import book_var, check_confidence, check_horizon
from hedge_core.engine.actions import GuardFired
from hedge_core.errors import HedgeError, InvalidInput
from hedge_core.runner.condition import AlertMessage, Conditions

__all__ = ["BOOK_HEDGE_ID", "LIMITS_FILE", "BookMonitor"]

log = logging.getLogger("hedge_core.book.monitor")
BOOK_HEDGE_ID = "book"  # the hedge id of book guard rows in guard_firings
LIMITS_FILE = "book_limits.toml"
CLOSES_TTL_S = 300.0  # the store's closes change once per bar: read them again after 5 minutes


class BookMonitor:
    """The book of one runner (see the module docstring for what a firing does)."""

    def __init__(self, sup: Any, *, refresh_s: float = 2.0, limits_path: str | Path | None = None) -> None:
        self.sup = sup
        self.refresh_s = refresh_s
        self.path = Path(limits_path) if limits_path else Path(sup.home) / LIMITS_FILE
        self.conditions = Conditions()
        self.pnl_history: deque[float] = deque(maxlen=100_000)  # book PnL per refresh (quote), this process
        self.firing: dict[str, BookVerdict] = {}
        self.last: BookSnapshot | None = None
        self._limits = BookLimits()
        self._limits_mtime: float | None = None
        self._closes: dict[tuple[Any, ...], tuple[float, pd.DataFrame]] = {}

    # ---- inputs ----------------------------------------------------------------------------------
    def limits(self) -> BookLimits:
        """The limits file's content (re-read when its mtime changes; a bad file keeps the last good)."""
        try:
            mtime = self.path.stat().st_mtime if self.path.exists() else None
        except OSError:
            mtime = None
        if mtime != self._limits_mtime:
            self._limits_mtime = mtime
            try:
                self._limits = load_limits(self.path)
                if self.conditions.clear("book_limits"):
                    self._alert("info", "book_limits", f"book limits read again from {self.path}")
            except InvalidInput as exc:
                if self.conditions.raise_("book_limits", str(exc)):
                    self._alert("error", "book_limits", f"book limits file refused, last good limits kept: {exc}")
        return self._limits

    def _tasks(self) -> list[Any]:
        return [h for h in self.sup.hedges.values() if getattr(h, "driver", None) is not None]

    def positions(self) -> list[HedgePosition]:
        return [from_summary(h.summary()) for h in self._tasks()]

    def _sources(self, assets: set[str]) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {a: [] for a in assets}
        for h in self._tasks():
            # the perp's asset too (a cross hedge's perp is another asset): its spot symbol is BASE/QUOTE
            sp = h.spec
            spot_of_perp = str(getattr(sp, "perp_symbol", "") or sp.spot_symbol).split(":", 1)[0]
            perp_venue = _legs(sp)[1]
            for sym in (sp.spot_symbol, spot_of_perp):
                a = asset_of(sym)
                if a in out:
                    for venue in (sp.data_venue, sp.venue, perp_venue):
                        if venue and (venue, sym) not in out[a]:
                            out[a].append((venue, sym))
        return out

    def _var(self, book: BookSnapshot, lim: BookLimits, confidence: float, horizon: int) -> dict[str, Any]:
        expo = {a.asset: a.delta_quote for a in book.assets if math.isfinite(a.delta_quote) and a.delta_quote}
        if not expo:
            return book_var({}, pd.DataFrame(), confidence, horizon)
        src = self._sources(set(expo))
        key = (tuple(sorted((a, tuple(s)) for a, s in src.items())), lim.var_timeframe, lim.var_lookback_days)
        hit = self._closes.get(key)
        try:
            if hit is None or time.monotonic() - hit[0] > CLOSES_TTL_S:
                hit = (time.monotonic(), asset_closes(self.sup.store, src, lim.var_timeframe, lim.var_lookback_days))
                self._closes = {key: hit}
            return book_var(expo, hit[1], confidence, horizon)
        except HedgeError as exc:  # no VaR (missing history): said in the answer, the book still shows
            return {"confidence": confidence, "horizon": horizon, "error": str(exc)}

    def _funding_rows(self) -> list[dict[str, Any]]:
        """Funding of this runner's hedges per UTC day: summed in SQL per hedge and day
        (``Store.funding_flows``), then over the hedges: one row per day."""
        ids = {h.hedge_id for h in self._tasks()}
        df = self.sup.store.funding_flows(every="1d")
        if not len(df):
            return []
        per_day = df.loc[df["hedge_id"].isin(ids)].groupby("ts")["amount"].sum()
        return [{"ts": ts, "amount": a} for ts, a in per_day.items()]

    # ---- the book ----------------------------------------------------------------------------------
    def snapshot(self, *, confidence: Any = None, horizon: Any = None, funding: bool = True,
                 var: bool = True) -> BookSnapshot:
        """The book now, with VaR (``confidence``/``horizon`` default to the limits file's) and, with
        ``funding``, the funding earned per UTC day from the ledger. Bad ``confidence``/``horizon``:
        InvalidInput, nothing computed."""
        lim = self.limits()
        c = lim.var_confidence if confidence is None else check_confidence(confidence)
        h = lim.var_horizon if horizon is None else check_horizon(horizon)
        positions = self.positions()
        rows = self._funding_rows() if funding else ()
        book = aggregate(positions, funding_rows=rows, pnl_history=list(self.pnl_history))
        if var:
            book = _with(book, var=self._var(book, lim, c, h))
        firing = [v.as_dict() for v in self.firing.values()]
        return _with(book, guards=tuple(firing))

    def refresh(self) -> BookSnapshot:
        """Rebuild the book, check the limits, record/alert/block what fires and lift what cleared."""
        lim = self.limits()
        book = self.snapshot(funding=False, var=lim.var_limit is not None)  # the VaR only when a limit needs it
        self.pnl_history.append(book.pnl)
        verdicts = {v.key: v for v in check_book(book, lim)}
        ts = pd.Timestamp.now(tz="UTC")
        for key, v in verdicts.items():
            if key not in self.firing:
                self._fire(v, ts)
        for key in [k for k in self.firing if k not in verdicts]:
            v = self.firing.pop(key)
            self.conditions.clear(key)
            self._alert("info", "book_guard", f"book guard {v.name} ({v.scope}) cleared: entries allowed again")
        self.firing.update(verdicts)
        self.last = _with(book, guards=tuple(v.as_dict() for v in self.firing.values()))
        return self.last

    def _fire(self, v: BookVerdict, ts: pd.Timestamp) -> None:
        nums = {"value": v.value, "limit": v.limit, **v.numbers}
        self.sup.journal.guard(BOOK_HEDGE_ID, GuardFired(f"book_{v.name}", "block_entries", MappingProxyType(nums), ts))
        self.conditions.raise_(v.key, v.reason)
        self._alert("warning", "book_guard", f"book guard {v.name} fired ({v.scope}): {v.reason}; new entries "
                    "blocked there, nothing traded", venue=v.scope[6:] if v.scope.startswith("venue:") else "", **nums)

    def _alert(self, level: Any, kind: str, message: str, venue: str = "", **numbers: float) -> None:
        log.warning(message) if level != "info" else log.info(message)
        self.sup.alert_bus.emit(AlertMessage(level, kind, message, venue=venue,
                                             numbers=MappingProxyType({k: float(x) for k, x in numbers.items()})))

    # ---- what the guards block -------------------------------------------------------------------
    def blocking(self, venue: str, asset: str) -> list[BookVerdict]:
        """The firing guards that block new entries of a hedge on ``venue`` trading ``asset``."""
        return [v for v in self.firing.values()
                if v.scope == "book" or v.scope == f"venue:{venue}" or v.scope == f"asset:{asset}"]

    def blocks(self, task: Any) -> bool:
        """Does a firing book guard block this hedge's entry? (``HedgeTask._market`` asks.)"""
        if not self.firing:
            return False
        sp = task.spec
        return bool(self.blocking(sp.venue, asset_of(sp.spot_symbol))
                    or self.blocking(_legs(sp)[1], asset_of(getattr(sp, "perp_symbol", "") or sp.spot_symbol)))

    def check_start(self, request: dict[str, Any]) -> None:
        """Refuse a new hedge where a firing book guard blocks entries (InvalidInput, nothing started)."""
        if not self.firing:
            return
        venue = str(request.get("venue") or "binance")
        asset = asset_of(str(request.get("spot_symbol") or "BTC/USDT"))
        hit = self.blocking(venue, asset)
        if hit:
            raise InvalidInput("book", hit[0].key, f"no book guard firing for {venue} {asset}: {hit[0].reason} "
                               "(reduce the book or raise the limit in book_limits.toml)", where="start")

    async def loop(self) -> None:
        while True:
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - the book must never stop the runner; logged, retried
                log.error("book refresh failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.refresh_s)


def _legs(spec: Any) -> tuple[str, str]:
    """(spot venue, perp venue) of a hedge spec (``HedgeSpec.leg_venues``; one venue when it has none)."""
    legs = getattr(spec, "leg_venues", None)
    return tuple(legs) if legs else (spec.venue, spec.venue)  # type: ignore[return-value]


def _with(book: BookSnapshot, **changes: Any) -> BookSnapshot:
    from dataclasses import replace

    return replace(book, **changes)
