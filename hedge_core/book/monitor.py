"""The runner's book: aggregate its hedges, price the VaR, fire the book guards.

One :class:`BookMonitor` per :class:`~hedge_core.runner.supervisor.Supervisor`. Every
``refresh_s`` it rebuilds the book from the hedges' summaries (pure :func:`aggregate`) and checks
the limits of ``<runner home>/book_limits.toml`` (re-read when the file changes; a bad file keeps
the last good limits and marks the book DEGRADED with ``book_limits``).

What a fired book guard does:

1. records a ``guard_firings`` row with hedge id ``book`` (guard ``book_<name>``, with ``[venue:X]`` /
   ``[asset:X]`` when the limit is per venue or asset; the action, the
   measured value and the limit) and puts a ``book_guard`` alert on the runner's alert bus, once per
   episode (again only when the guard clears and fires anew): ``warning`` for ``block_entries``,
   ``critical`` for ``flatten``;
2. marks the runner DEGRADED: ``/health`` lists the firing under ``degraded["book"]``;
3. blocks NEW ENTRIES of the hedges it concerns (every hedge for a book-wide limit, the venue's
   for ``venue_gross``, the asset's for ``asset_net_delta``): a hedge waiting to enter
   (``ANALYZING_MARKET``) does not act on market updates, and ``POST /hedges`` refuses a new hedge
   there. With the default action ``block_entries`` nothing is traded: hedges already in positions
   keep running with their own guards, exits and flatten;
4. with ``<name>_action = "flatten"`` (:data:`hedge_core.book.guards.BOOK_ACTIONS`), once per episode,
   every hedge it concerns that is neither finished (``COMPLETED``) nor already closing
   (``CLOSING_POSITIONS``: never flattened twice) gets the operator's per-hedge flatten
   (:meth:`Supervisor.command` ``flatten``, the kill switch the control API and the panel send: latched,
   the hedge completes once flat). No order path of its own. An action changed to ``flatten`` while
   the guard fires acts at the next refresh.

When the value is back under the limit, the block lifts and an ``info`` alert says so.

Drawdown: the monitor keeps the book PnL's peak and max drawdown (not a history) and, once the
supervisor has recovered its hedges (:meth:`restore`, called by ``Supervisor.recover_all``), journals
them in ``book_marks`` whenever they change, with ``closed_pnl``, the PnL of the finished hedges it
holds. The next runner restores them: it does not hold finished hedges again, so the restored peak is
rebased by their PnL (``peak - closed_pnl``); the max drawdown is kept as it was.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import replace
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
from hedge_core.runner.journal import wall_now

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
        self.peak = 0.0  # the book PnL's peak (quote), restored over a restart (restore)
        self.max_drawdown = 0.0  # the largest fall from a peak (quote, >= 0), restored over a restart
        self.closed_pnl = 0.0  # PnL of the finished hedges held (quote): a restart does not hold them again
        self.restored = False  # marks journaled only after restore(): never over the last runner's before
        self._marks: tuple[float, float, float] | None = None  # the last journaled (peak, max drawdown, closed)
        self._flatten: list[tuple[BookVerdict, list[str]]] = []  # fired flatten actions waiting for enforce()
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
        return [from_summary(s) for s in self._summaries()]

    def _summaries(self) -> list[dict[str, Any]]:
        out = [h.summary() for h in self._tasks()]
        self.closed_pnl = sum(float(s.get("pnl") or 0.0) for s in out if s.get("state") == "COMPLETED")
        return out

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
        book = aggregate(positions, funding_rows=rows, drawdown_from=(self.peak, self.max_drawdown))
        if var:
            book = _with(book, var=self._var(book, lim, c, h))
        firing = [v.as_dict() for v in self.firing.values()]
        return _with(book, guards=tuple(firing))

    def refresh(self) -> BookSnapshot:
        """Rebuild the book, check the limits, record/alert/block what fires and lift what cleared."""
        lim = self.limits()
        book = self.snapshot(funding=False, var=lim.var_limit is not None)  # the VaR only when a limit needs it
        self.peak, self.max_drawdown = max(self.peak, book.pnl), book.max_drawdown
        self._journal_marks(book.pnl)
        verdicts = {v.key: v for v in check_book(book, lim)}
        if getattr(self.sup, "recovering", False):
            # the supervisor is bringing its hedges back (recover_all): this book is a part of it, never grounds to
            # flatten. A limit set to flatten fires as block_entries now; the first refresh after the recovery
            # judges the whole book and, still firing, flattens (the new-action rule below)
            verdicts = {k: replace(v, action="block_entries") if v.action == "flatten" else v
                        for k, v in verdicts.items()}
        ts = wall_now()
        for key, v in verdicts.items():
            was = self.firing.get(key)
            if was is None or (v.action == "flatten" and was.action != "flatten"):  # new, or now set to flatten
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
        venue = v.scope[6:] if v.scope.startswith("venue:") else ""
        ids = [h.hedge_id for h in self._tasks() if self.concerns(v, h) and _flattenable(h)] \
            if v.action == "flatten" else []
        if v.action == "flatten":
            nums["hedges"] = float(len(ids))  # the hedges it is about to flatten
        # guard name: the episode key (book_<name>, plus [venue:X] / [asset:X] when scoped): two scopes of one
        # guard firing in the same refresh are two rows (guard_firings' key is hedge id, ts, guard)
        self.sup.journal.guard(BOOK_HEDGE_ID, GuardFired(v.key, v.action, MappingProxyType(nums), ts))
        self.conditions.raise_(v.key, v.reason)
        if v.action == "flatten":  # recorded first (persist before acting); enforce() sends the flattens
            self._flatten.append((v, ids))
            self._alert("critical", "book_guard", f"book guard {v.name} fired ({v.scope}): {v.reason}; flattening "
                        f"{len(ids)} hedge(s) there ({', '.join(ids) or 'none open'}), new entries blocked",
                        venue=venue, **nums)
        else:
            self._alert("warning", "book_guard", f"book guard {v.name} fired ({v.scope}): {v.reason}; new entries "
                        "blocked there, nothing traded", venue=venue, **nums)

    async def enforce(self) -> list[str]:
        """Send the flattens of the ``flatten`` actions fired since the last call, through the operator's
        per-hedge flatten (``Supervisor.command(id, "flatten")``); a hedge finished or already closing by
        now is skipped (never flattened twice). Returns the hedge ids flattened. A failed flatten is logged
        and alerted (``error``), the others still go."""
        done: list[str] = []
        todo, self._flatten = self._flatten, []
        for v, ids in todo:
            for hid in ids:
                h = self.sup.hedges.get(hid)
                if hid in done or h is None or not _flattenable(h):
                    continue
                try:
                    await self.sup.command(hid, "flatten", f"book guard {v.name} ({v.scope}): {v.reason}")
                    done.append(hid)
                except Exception as exc:  # noqa: BLE001 - one hedge's trouble must not keep the others on
                    self._alert("error", "book_guard", f"book guard {v.name}: flatten of {hid} failed: "
                                f"{type(exc).__name__}: {exc} (flatten it by hand)")
        return done

    # ---- drawdown over restarts ----------------------------------------------------------------------
    def restore(self) -> None:
        """Put back the last runner's book marks (``book_marks``): the peak rebased by the PnL of the
        finished hedges it held (this runner does not hold them again), the max drawdown as it was; the
        marks computed before (while hedges were being recovered: part of the book) are dropped. From now
        on the marks are journaled when they change. Called once the hedges are recovered (journaled WAL
        rows are upserted first); idempotent."""
        if self.restored:
            return
        self.sup.journal.replay_wal()
        self.sup.journal.flush()
        df = self.sup.store.read_table("book_marks", hedge_id=BOOK_HEDGE_ID)
        # what the loop saw while the hedges were being recovered (a part of the book) is dropped: the restored
        # marks, or (0, 0) without any, are the starting point
        self.peak, self.max_drawdown = 0.0, 0.0
        if len(df):
            r = df.iloc[-1]
            peak, worst, closed = (_num0(r.get(c)) for c in ("peak_pnl", "max_drawdown", "closed_pnl"))
            self.peak, self.max_drawdown = peak - closed, worst  # rebased: may be < 0 (the finished hedges earned)
            log.info("book marks restored: peak %.2f (rebased by %.2f of finished hedges), max drawdown %.2f",
                     peak - closed, closed, worst)
        self.restored = True

    def _journal_marks(self, pnl: float) -> None:
        marks = (self.peak, self.max_drawdown, self.closed_pnl)
        if not self.restored or marks == self._marks:
            return
        self.sup.journal.book_marks({"hedge_id": BOOK_HEDGE_ID, "ts": wall_now(), "pnl": float(pnl),
                                     "peak_pnl": self.peak, "max_drawdown": self.max_drawdown,
                                     "closed_pnl": self.closed_pnl})
        self._marks = marks

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
        return any(self.concerns(v, task) for v in self.firing.values())

    @staticmethod
    def concerns(v: BookVerdict, task: Any) -> bool:
        """Does the guard ``v`` concern this hedge: every hedge for a book-wide limit, a hedge with a leg on
        the venue for ``venue:NAME``, a hedge with a leg in the asset for ``asset:NAME``."""
        if v.scope == "book":
            return True
        sp = task.spec
        if v.scope.startswith("venue:"):
            return v.scope[6:] in (sp.venue, _legs(sp)[1])
        return v.scope[6:] in (asset_of(sp.spot_symbol), asset_of(getattr(sp, "perp_symbol", "") or sp.spot_symbol))

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
                await self.enforce()  # the flatten actions that fired
            except Exception as exc:  # noqa: BLE001 - the book must never stop the runner; logged, retried
                log.error("book refresh failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.refresh_s)


def _legs(spec: Any) -> tuple[str, str]:
    """(spot venue, perp venue) of a hedge spec (``HedgeSpec.leg_venues``; one venue when it has none)."""
    legs = getattr(spec, "leg_venues", None)
    return tuple(legs) if legs else (spec.venue, spec.venue)  # type: ignore[return-value]


def _flattenable(task: Any) -> bool:
    """A hedge a book flatten may send FLATTEN to: not finished, not already closing (flattening)."""
    state = getattr(getattr(getattr(task, "driver", None), "ctx", None), "state", None)
    return state is not None and str(state) not in ("COMPLETED", "CLOSING_POSITIONS")


def _num0(x: Any) -> float:
    v = float(x) if x is not None else 0.0
    return v if math.isfinite(v) else 0.0


def _with(book: BookSnapshot, **changes: Any) -> BookSnapshot:
    from dataclasses import replace

    return replace(book, **changes)
