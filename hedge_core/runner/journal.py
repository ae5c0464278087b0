"""The runner's journal: every intent, order answer, fill, funding payment, transition and guard
firing of every hedge, written to the store BEFORE the runner acts on it.

One :class:`Journal` per runner process, over the store the runner holds (the single writer of
the live database). Writes are idempotent upserts on each table's natural key (see
``hedge_core.store_schema.KEYS``), so a replayed write after a restart changes nothing.

Orders are journaled as full rows kept in memory (an upsert replaces every column), keyed by
the deterministic client order id. Status values: ``intent`` (written before sending),
``open``/``closed``/``canceled``/``expired``/``rejected`` (the venue's answer; ``rejected`` also
when the venue refused the order with an error, its reason in ``reason``), ``never_sent``
(recovery found no such order on the venue).
"""

from __future__ import annotations

import json
import math
import os
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from hedge_core.engine.actions import GuardFired, PlaceOrder, RecordTransition
from hedge_core.engine.events import FillEvent
from hedge_core.store_schema import KEYS
from hedge_core.types import Order

__all__ = ["FINAL_ORDER_STATUSES", "Journal", "wall_now"]

FINAL_ORDER_STATUSES = frozenset({"closed", "canceled", "expired", "rejected", "never_sent"})


def wall_now() -> pd.Timestamp:
    """The runner machine's wall clock: only for "when the operator did this" (``hedge_runs``)."""
    return pd.Timestamp.now(tz="UTC")


_TS_COLS = ("ts", "intent_ts", "updated_ts", "started_at", "ended_at", "created_at", "as_of", "entered_at")


def _frame(table: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows (possibly read back from JSON, timestamps as text) as a frame for ``write_table``."""
    df = pd.DataFrame(rows)
    for c in _TS_COLS:
        if c in df.columns and not pd.api.types.is_datetime64_any_dtype(df[c]):
            df[c] = pd.to_datetime(df[c], utc=True, format="ISO8601")
    return df


def _nz(x: Any) -> Any:
    return None if isinstance(x, float) and math.isnan(x) else x


class Journal:
    """Typed writes/reads of the runner's ledger tables, through an append-only write-ahead log.

    Every row is first appended to a JSON-lines WAL segment (``<wal_dir>/journal-*.jsonl``, one
    ``write`` + ``flush`` per row, plus ``fsync`` when ``fsync=True``): that append IS the
    "persist before acting" — it survives a SIGKILL of the runner (and, with fsync, a power cut).
    Rows are then upserted into the store in batches by :meth:`flush` (one transaction, one
    upsert per table; the runner flushes every few hundred milliseconds and before every read),
    after which the segment is deleted. On start, :meth:`replay_wal` upserts whatever a killed
    runner left in its segments (idempotent: upserts on natural keys). Without ``wal_dir`` every
    row goes straight to the store (tests, tools).

    Parameters
    ----------
    store : hedge_core.store.Store
        Held open by the runner for its life.
    wal_dir : path, optional
    fsync : bool
    """

    def __init__(self, store: Any, wal_dir: str | os.PathLike[str] | None = None, *, fsync: bool = False) -> None:
        self.store = store
        self._orders: dict[tuple[str, str], dict[str, Any]] = {}
        # hedge id -> its clock (runner.clock): an order row's updated_ts is the hedge's time
        self.clocks: dict[str, Callable[[], pd.Timestamp]] = {}
        self._tseq: dict[str, int] = {}
        self._lseq: dict[str, int] = {}  # next loan_events seq per hedge
        self._mseq: dict[str, int] = {}  # next exit_marks seq per hedge
        self.writes = 0  # counter: snapshots are taken only when something changed
        self.wal_dir = Path(wal_dir) if wal_dir is not None else None
        self.fsync = fsync
        self._buf: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
        self._wal: Any = None
        self._seg = 0
        self._held: dict[str, list[tuple[str, list[dict[str, Any]], bool]]] = {}  # hedge id -> rows of a start
        self.flushes = 0
        if self.wal_dir is not None:
            self.wal_dir.mkdir(parents=True, exist_ok=True)

    def _open_segment(self) -> None:
        self._seg += 1
        name = f"journal-{os.getpid()}-{time.time_ns()}-{self._seg:06d}.jsonl"
        self._wal = open(self.wal_dir / name, "a", encoding="utf-8")
        # a journal dropped without close() (an in-process supervisor never shut down) closes its segment when it is
        # collected: every row in it is already written and flushed, so the next runner's replay_wal finds them
        self._wal_closer = weakref.finalize(self, self._wal.close)

    def _write(self, table: str, rows: list[dict[str, Any]], sync: bool = False) -> None:
        held = self._held.get(rows[0].get("hedge_id")) if rows and self._held else None
        if held is not None:  # a start in progress: kept here until it is committed or dropped
            held.append((table, rows, sync))
            return
        self.writes += 1
        if self.wal_dir is None:
            self.store.write_table(table, pd.DataFrame(rows))
            return
        if self._wal is None:
            self._open_segment()
        keys = KEYS[table]
        buf = self._buf.setdefault(table, {})
        for r in rows:
            self._wal.write(json.dumps({"t": table, "r": r}, default=str) + "\n")
            buf[tuple(r.get(k) for k in keys)] = r
        self._wal.flush()
        if self.fsync or sync:
            os.fsync(self._wal.fileno())

    def flush(self) -> int:
        """Upsert buffered rows into the store (one transaction), then drop the WAL segment."""
        if not self._buf:
            return 0
        n = 0
        with self.store.transaction():
            for table, rows in self._buf.items():
                if rows:
                    self.store.write_table(table, _frame(table, list(rows.values())))
                    n += len(rows)
        self._buf = {}
        if self._wal is not None:
            path = self._wal.name
            self._close_segment()
            os.unlink(path)
        self.flushes += 1
        return n

    def close(self) -> None:
        """Flush, and close the WAL segment (the runner's shutdown; a later write opens a new one). A flush that
        fails (the store refusing the write) is raised after the segment is closed: its rows stay in the segment
        file for the next runner's :meth:`replay_wal`, and no file handle is left open."""
        try:
            self.flush()
        finally:
            if self._wal is not None:
                self._close_segment()

    def _close_segment(self) -> None:
        self._wal_closer.detach()
        self._wal.close()
        self._wal = None

    # ---- a start: all of its rows or none ------------------------------------------------------
    def hold(self, hedge_id: str) -> None:
        """Keep every row of ``hedge_id`` in memory (not in the WAL, not in the store) until :meth:`commit`
        or :meth:`drop`: a start that fails half-way leaves nothing journaled (runner.hedge_start)."""
        self._held[hedge_id] = []

    def commit(self, hedge_id: str) -> int:
        """Journal the rows held for ``hedge_id`` (in their order) and stop holding; returns rows written."""
        rows = self._held.pop(hedge_id, [])
        for table, r, sync in rows:
            self._write(table, r, sync)
        return len(rows)

    def drop(self, hedge_id: str) -> int:
        """Forget the rows held for ``hedge_id`` and its sequences (a failed start); returns rows dropped."""
        rows = self._held.pop(hedge_id, [])
        for seqs in (self._tseq, self._lseq, self._mseq):
            seqs.pop(hedge_id, None)
        for key in [k for k in self._orders if k[0] == hedge_id]:
            del self._orders[key]
        self.clocks.pop(hedge_id, None)
        return len(rows)

    def replay_wal(self) -> int:
        """Upsert the rows of WAL segments left by a previous (killed) runner; returns rows replayed.

        A torn last line (the kill hit mid-write) is ignored: its action was never taken, since
        every action follows the complete write of its row.
        """
        if self.wal_dir is None:
            return 0
        total = 0
        for seg in sorted(self.wal_dir.glob("journal-*.jsonl")):
            if self._wal is not None and seg.name == Path(self._wal.name).name:
                continue
            per: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
            for line in seg.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                t = rec["t"]
                per.setdefault(t, {})[tuple(rec["r"].get(k) for k in KEYS[t])] = rec["r"]
            with self.store.transaction():
                for t, rows in per.items():
                    self.store.write_table(t, _frame(t, list(rows.values())))
                    total += len(rows)
            seg.unlink()
        return total

    def now(self, hedge_id: str) -> pd.Timestamp:
        """The hedge's clock (principle 10); the wall clock only for a hedge that registered none."""
        clock = self.clocks.get(hedge_id)
        return clock() if clock is not None else wall_now()

    # ---- runs ---------------------------------------------------------------------------------
    def run(self, row: Mapping[str, Any]) -> None:
        r = dict(row)
        if isinstance(r.get("info"), (dict, list)):
            r["info"] = json.dumps(r["info"], default=str)
        self._write("hedge_runs", [r])

    def runs(self) -> pd.DataFrame:
        self.flush()
        return self.store.read_table("hedge_runs")

    # ---- orders -------------------------------------------------------------------------------
    def intent(self, hedge_id: str, a: PlaceOrder, ts: pd.Timestamp, mode: str,
               ref_price: float = math.nan) -> dict[str, Any]:
        """Write the order BEFORE it is sent (persist before acting). ``ref_price``: the leg's
        price the engine decided at (quote per base), the slippage reference of its fills."""
        rq = a.request
        key = (hedge_id, rq.client_order_id)
        prev = self._orders.get(key)
        row = {
            "hedge_id": hedge_id, "client_order_id": rq.client_order_id, "order_id": prev and prev["order_id"],
            "venue": a.venue, "symbol": rq.symbol, "leg": a.leg, "side": str(rq.side), "type": str(rq.type),
            "qty": float(rq.qty), "price": rq.price, "reduce_only": bool(rq.reduce_only),
            "status": "intent" if prev is None or prev["status"] in ("intent", "never_sent") else prev["status"],
            "filled": prev["filled"] if prev else 0.0, "avg_price": prev and prev["avg_price"],
            "intent_ts": prev["intent_ts"] if prev else ts, "updated_ts": ts, "mode": mode,
            "ref_price": _nz(ref_price) if prev is None or prev.get("ref_price") is None else prev["ref_price"],
            "retry_of": a.retry_of if prev is None else prev.get("retry_of"),  # unknown-outcome re-send link
        }
        self._orders[key] = row
        self._write("orders", [row], sync=mode == "live")  # real money: the intent is on disk before the send
        return row

    def order_answer(self, hedge_id: str, o: Order) -> None:
        key = (hedge_id, o.client_order_id)
        row = self._orders.get(key)
        if row is None:
            return  # not ours (a liquidation, another program): reconciliation reports it
        new = {**row, "order_id": o.id, "status": str(o.status), "filled": float(o.filled),
               "avg_price": _nz(o.avg_price), "updated_ts": self.now(hedge_id)}
        if (new["order_id"], new["status"], new["filled"]) != (row["order_id"], row["status"], row["filled"]):
            self._orders[key] = new
            self._write("orders", [new])

    def rejected(self, hedge_id: str, coid: str, reason: str) -> None:
        """The venue refused the order (an error answer, no order created): status ``rejected`` with
        the venue's reason. An order it answered as rejected goes through :meth:`order_answer`."""
        row = self._orders.get((hedge_id, coid))
        if row is not None and row["status"] in ("intent", "never_sent"):
            row = {**row, "status": "rejected", "reason": str(reason)[:500], "updated_ts": self.now(hedge_id)}
            self._orders[(hedge_id, coid)] = row
            self._write("orders", [row])

    def mark_never_sent(self, hedge_id: str, coid: str) -> None:
        row = self._orders.get((hedge_id, coid))
        if row is not None:
            row = {**row, "status": "never_sent", "updated_ts": self.now(hedge_id)}
            self._orders[(hedge_id, coid)] = row
            self._write("orders", [row])

    def orders(self, hedge_id: str) -> list[dict[str, Any]]:
        return [r for (h, _), r in self._orders.items() if h == hedge_id]

    def load(self, hedge_id: str) -> None:
        """Load a hedge's journaled orders and transition count (on recovery)."""
        self.flush()
        df = self.store.read_table("orders", hedge_id=hedge_id)
        for r in df.to_dict("records"):
            r = {k: (None if (isinstance(v, float) and math.isnan(v)) or v is pd.NaT else v) for k, v in r.items()}
            r["filled"] = float(r["filled"] or 0.0)
            self._orders[(hedge_id, r["client_order_id"])] = r
        t = self.store.read_table("transitions", hedge_id=hedge_id)
        self._tseq[hedge_id] = int(t["seq"].max()) + 1 if len(t) else 0
        lo = self.store.read_table("loan_events", hedge_id=hedge_id)
        self._lseq[hedge_id] = int(lo["seq"].max()) + 1 if len(lo) else 0
        mk = self.store.read_table("exit_marks", hedge_id=hedge_id)
        self._mseq[hedge_id] = int(mk["seq"].max()) + 1 if len(mk) else 0

    # ---- fills, funding, transitions, guards ---------------------------------------------------
    def fill(self, hedge_id: str, ev: FillEvent, venue: str) -> None:
        f = ev.fill
        self._write("fills", [{
            "hedge_id": hedge_id, "trade_id": f.trade_id, "order_id": f.order_id, "client_order_id": f.client_order_id,
            "venue": venue, "symbol": f.symbol, "leg": ev.leg, "side": str(f.side), "qty": float(f.qty),
            "price": float(f.price), "fee": float(f.fee), "fee_currency": f.fee_currency, "liquidity": str(f.liquidity),
            "slippage": float(f.slippage), "ts": f.ts}])

    def fills(self, hedge_id: str) -> pd.DataFrame:
        self.flush()
        return self.store.read_table("fills", hedge_id=hedge_id)

    def funding(self, hedge_id: str, venue: str, symbol: str, ts: pd.Timestamp, amount: float, rate: float,
                qty: float, mark: float, expected: float = math.nan) -> None:
        """One funding payment: ``amount`` booked (+ received / - paid, quote; live: the venue's income
        record), ``expected`` the engine's own ``-qty x mark x rate`` beside it (NaN: not computed)."""
        self._write("funding_payments", [{"hedge_id": hedge_id, "venue": venue, "symbol": symbol, "ts": ts,
                                          "amount": float(amount), "rate": float(rate), "position_qty": float(qty),
                                          "mark_price": float(mark), "expected": _nz(float(expected))}])

    def transition(self, hedge_id: str, t: RecordTransition | Mapping[str, Any]) -> int:
        seq = self._tseq.get(hedge_id, 0)
        if isinstance(t, RecordTransition):
            row = {"ts": t.ts, "from_state": t.from_state, "to_state": t.to_state, "trigger_name": t.trigger,
                   "reason": t.reason}
        else:
            row = dict(t)
        self._write("transitions", [{"hedge_id": hedge_id, "seq": seq, **row}])
        self._tseq[hedge_id] = seq + 1
        return seq

    def guard(self, hedge_id: str, g: GuardFired) -> None:
        self._write("guard_firings", [{"hedge_id": hedge_id, "ts": g.ts, "guard": g.name, "action": g.action,
                                       "numbers": json.dumps({k: _nz(float(v)) for k, v in g.numbers.items()})}])

    # ---- a loan book's loan (runner.loan_journal) ---------------------------------------------------
    def loan(self, hedge_id: str, row: Mapping[str, Any]) -> int:
        """Append one ``loan_events`` row (``runner.loan_journal.loan_row``); returns its seq."""
        seq = self._lseq.get(hedge_id, 0)
        self._write("loan_events", [{"hedge_id": hedge_id, "seq": seq, **row}])
        self._lseq[hedge_id] = seq + 1
        return seq

    def loan_events(self, hedge_id: str) -> pd.DataFrame:
        self.flush()
        return self.store.read_table("loan_events", hedge_id=hedge_id)

    # ---- the exit rules' cycle memory (runner.exit_marks) ----------------------------------------------
    def exit_marks(self, hedge_id: str, row: Mapping[str, Any]) -> int:
        """Append one ``exit_marks`` row (``runner.exit_marks.marks_row``); returns its seq."""
        seq = self._mseq.get(hedge_id, 0)
        self._write("exit_marks", [{"hedge_id": hedge_id, "seq": seq, **row}])
        self._mseq[hedge_id] = seq + 1
        return seq

    def exit_mark_rows(self, hedge_id: str) -> pd.DataFrame:
        self.flush()
        return self.store.read_table("exit_marks", hedge_id=hedge_id)

    # ---- the book's drawdown marks (book.monitor) -------------------------------------------------
    def book_marks(self, row: Mapping[str, Any]) -> None:
        """Upsert the book's one ``book_marks`` row (``hedge_id`` ``book``: ts, pnl, peak_pnl, max_drawdown,
        closed_pnl; quote)."""
        self._write("book_marks", [dict(row)])

    def reserve(self, hedge_id: str, row: Mapping[str, Any]) -> None:
        """One ``reserve_deployments`` row (``runner.loan_journal.reserve_row``)."""
        self._write("reserve_deployments", [{"hedge_id": hedge_id, **row}])

    def positions(self, hedge_id: str, ts: pd.Timestamp, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._write("position_snapshots", [{"hedge_id": hedge_id, "ts": ts, **r} for r in rows])
