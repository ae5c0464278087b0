"""The DuckDB store: the only module that speaks SQL.

- One file (default ``$HEDGE_DB`` or ``<repo>/data/hedge.duckdb``); schema migrations applied on open.
- DataFrames in and out, timestamps tz-aware UTC (naive timestamps are rejected).
- Writes are idempotent upserts (MERGE on each table's natural key): importing the same rows twice
  leaves the same rows; a changed value for an existing key replaces the old one.
- Market data goes in through Arrow in one statement (never row by row).
- Reads never reindex: gaps stay gaps. ``read_bars(..., resample='1h')`` aggregates in SQL.
- DuckDB allows one read-write process per file. With ``hold=False`` (the panel, the CLI) the store
  opens the file only for the duration of each call and waits, bounded, for another process's
  brief hold to end, so short-lived users never see a lock error.
- The lock is a POSIX (fcntl) lock: ANY open+close of the file inside the holding process releases
  it silently. So this process never opens the live file by path besides DuckDB's own connection;
  :meth:`Store.copy_to` copies the database with DuckDB (``ATTACH`` + ``COPY FROM DATABASE``).
- Opening fails with a typed error that says what to do: :class:`StoreBusy` (held by another
  process, its pid named), :class:`StoreUnreadable` (not a DuckDB database), :class:`StoreMissing`
  (``must_exist=True`` and no such file: nothing is created).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from hedge_core.errors import DataError, HedgeError, InvalidInput
from hedge_core.store_paths import REPO_ROOT, StoreBusy, StoreMissing, StoreUnreadable, default_db_path  # noqa: F401
from hedge_core.store_schema import KEYS, MARKET_KINDS, MIGRATIONS
from hedge_core.types import timeframe_seconds

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
TradingTable = Literal[
    "instruments", "hedge_runs", "transitions", "orders", "fills", "funding_payments",
    "position_snapshots", "ltv_history", "reserve_deployments", "guard_firings", "param_sets",
    "loan_events", "exit_marks", "book_marks",
]


_HOLDER_PID = re.compile(r"\(PID (\d+)\)")


def _lock_error(path: str, exc: duckdb.Error, waited: float) -> StoreBusy:
    """DuckDB's raw lock text -> :class:`StoreBusy` naming the holder and the fix."""
    m = _HOLDER_PID.search(str(exc))
    pid = int(m.group(1)) if m else None
    who = f"process {pid}" if pid is not None else "another process"
    return StoreBusy(f"database {path} is held read-write by {who} (waited {waited:g}s; DuckDB allows one "
                     "writer per file). Let it finish or stop it, then run this again; to read meanwhile, "
                     "use the runner's API (hedge runner status) or the runner's snapshot "
                     f"{Path(path).parent / 'snapshots' / 'latest.duckdb'} (read-only copy)",
                     path=path, holder_pid=pid)


class MissingSeries(HedgeError, LookupError):
    """The asked-for series is not in the store."""


def _utc_index(df: pd.DataFrame, *, what: str) -> pd.DatetimeIndex:
    ts = df.index if "ts" not in df.columns else pd.Index(df["ts"])
    if not isinstance(ts, pd.DatetimeIndex):
        try:
            ts = pd.DatetimeIndex(ts)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{what}: timestamps are not parseable ({exc})", column="ts") from exc
    if ts.tz is None:
        raise DataError(f"{what}: timestamps have no timezone; give UTC (tz-aware)", column="ts")
    if ts.hasnans:
        raise DataError(f"{what}: missing timestamps", row=int(np.flatnonzero(ts.isna())[0]) + 1, column="ts")
    return ts.tz_convert("UTC").as_unit("us")


def _ts_param(value: Any, field: str) -> pd.Timestamp | None:
    if value is None:
        return None
    t = pd.Timestamp(value)
    if t.tzinfo is None:
        raise InvalidInput(field, value, "a timezone-aware UTC timestamp, e.g. '2024-01-01T00:00Z'")
    return t.tz_convert("UTC")


class Store:
    """Typed access to the DuckDB database.

    Parameters
    ----------
    path : database file, ``":memory:"`` for a throw-away store; default :func:`default_db_path`.
    read_only : open read-only (fails while another process writes; prefer ``hold=False``).
    hold : keep the connection open for the object's life (scripts, notebooks, the runner).
        ``False`` opens and closes the file around each call (panel, CLI).
    lock_timeout : seconds to wait for another process's hold to end before :class:`StoreBusy`.
    must_exist : refuse (:class:`StoreMissing`) instead of creating a missing file and its folder;
        for commands that only read.

    Raises
    ------
    StoreBusy, StoreUnreadable, StoreMissing
        Each message names the file and what to do.
    """

    def __init__(self, path: str | Path | None = None, *, read_only: bool = False, hold: bool = True,
                 lock_timeout: float = 15.0, must_exist: bool = False) -> None:
        self.path = str(path) if path is not None else str(default_db_path())
        self.read_only = read_only
        self.memory = self.path == ":memory:"
        self.hold = hold or self.memory
        self.lock_timeout = lock_timeout
        self._con: duckdb.DuckDBPyConnection | None = None
        self._tx_depth = 0
        if not self.memory:
            if (must_exist or read_only) and not Path(self.path).exists():
                raise StoreMissing(self.path)
            if Path(self.path).is_dir():
                raise StoreUnreadable(self.path, "it is a folder, not a file")
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        con = self._open()
        try:
            if not read_only:
                self._migrate(con)
        finally:
            if self.hold:
                self._con = con
            else:
                con.close()

    # ---- connections ------------------------------------------------------------------
    def _open(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.02
        while True:
            try:
                con = duckdb.connect(self.path, read_only=self.read_only)
                con.execute("SET TimeZone='UTC'")
                return con
            except duckdb.IOException as exc:
                if not _is_lock_error(exc):
                    raise StoreUnreadable(self.path, _duckdb_reason(exc)) from None
                if time.monotonic() >= deadline:
                    raise _lock_error(self.path, exc, self.lock_timeout) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
            except (duckdb.SerializationException, duckdb.InternalException, duckdb.InvalidInputException) as exc:
                raise StoreUnreadable(self.path, _duckdb_reason(exc)) from None

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._con is not None:
            yield self._con
            return
        con = self._open()
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator["Store"]:
        """All writes inside happen together or not at all. Nested calls join the outer one."""
        if self._tx_depth:
            self._tx_depth += 1
            try:
                yield self
            finally:
                self._tx_depth -= 1
            return
        opened_here = self._con is None
        if opened_here:
            self._con = self._open()
        con = self._con
        con.execute("BEGIN TRANSACTION")
        self._tx_depth = 1
        try:
            yield self
        except BaseException:
            con.execute("ROLLBACK")
            raise
        else:
            con.execute("COMMIT")
        finally:
            self._tx_depth = 0
            if opened_here:
                con.close()
                self._con = None

    def copy_to(self, dst: str | Path) -> Path:
        """Write a complete, consistent copy of this database to ``dst`` (replaced atomically).

        DuckDB itself copies (``ATTACH`` a new file, ``COPY FROM DATABASE``, ``DETACH``), through
        this store's own connection: the live file is never opened by path in this process, which
        would silently release the holder's POSIX lock. The copy is written to a temporary file
        next to ``dst`` and renamed over it, so readers see the old copy or the new one, never half.

        Returns
        -------
        Path
            ``dst``.
        """
        if self.memory:
            raise InvalidInput("path", self.path, "a database file (an in-memory store has no snapshot)")
        dst = Path(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
        tmp_wal = tmp.with_name(tmp.name + ".wal")
        for p in (tmp, tmp_wal):  # ATTACH needs a file that does not exist yet
            p.unlink(missing_ok=True)
        alias = "hedge_copy"
        quoted = str(tmp).replace("'", "''")
        try:
            with self._connection() as con:
                live = con.execute("SELECT current_database()").fetchall()[0][0]
                con.execute(f"ATTACH '{quoted}' AS {alias}")
                try:
                    con.execute(f'COPY FROM DATABASE "{live}" TO {alias}')
                    con.execute(f"CHECKPOINT {alias}")
                finally:
                    con.execute(f"DETACH {alias}")
            os.replace(tmp, dst)
        finally:
            for p in (tmp, tmp_wal):
                p.unlink(missing_ok=True)
        return dst

    def checkpoint(self) -> None:
        """Flush the write-ahead log into the database file, so a byte copy of the file is complete."""
        with self._connection() as con:
            con.execute("CHECKPOINT")

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, note VARCHAR, "
                    "applied_at TIMESTAMPTZ DEFAULT now())")
        current = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0]
        for version, note, statements in MIGRATIONS:
            if version <= current:
                continue
            con.execute("BEGIN TRANSACTION")
            try:
                for sql in statements:
                    con.execute(sql)
                con.execute("INSERT INTO schema_version (version, note) VALUES (?, ?)", [version, note])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def schema_version(self) -> int:
        with self._connection() as con:
            return int(con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0])

    # ---- series registry -----------------------------------------------------------------
    def _series_id(self, con: duckdb.DuckDBPyConnection, venue: str, symbol: str, kind: str,
                   timeframe: str, *, create: bool) -> int | None:
        row = _first(con.execute("SELECT series_id FROM series WHERE venue=? AND symbol=? AND kind=? AND timeframe=?",
                                 [venue, symbol, kind, timeframe]).fetchall())
        if row is not None:
            return int(row[0])
        if not create:
            return None
        new_id = con.execute("SELECT coalesce(max(series_id), 0) + 1 FROM series").fetchall()[0][0]
        con.execute("INSERT INTO series VALUES (?, ?, ?, ?, ?)", [new_id, venue, symbol, kind, timeframe])
        return int(new_id)

    @staticmethod
    def _funding_series_id(con: duckdb.DuckDBPyConnection, venue: str, symbol: str) -> int | None:
        row = _first(con.execute("SELECT series_id FROM series WHERE venue=? AND symbol=? AND kind='funding'",
                                 [venue, symbol]).fetchall())
        return None if row is None else int(row[0])

    def _require_series(self, con: duckdb.DuckDBPyConnection, venue: str, symbol: str, kind: str,
                        timeframe: str) -> int:
        sid = self._series_id(con, venue, symbol, kind, timeframe, create=False)
        if sid is None:
            have = con.execute("SELECT venue, symbol, kind, timeframe FROM series ORDER BY ALL").fetchall()
            listing = ", ".join("/".join(map(str, r)) for r in have) or "none (import or download data first)"
            raise MissingSeries(f"no {kind} series {venue} {symbol} {timeframe} in {self.path}; "
                                f"series present: {listing}")
        return sid

    # ---- market data: bars ---------------------------------------------------------------
    def write_bars(self, df: pd.DataFrame, *, venue: str, symbol: str, kind: str, timeframe: str) -> int:
        """Upsert OHLCV bars of one series; returns the number of rows in ``df``.

        ``df``: UTC DatetimeIndex (or ``ts`` column) of bar OPEN times; float columns open, high, low,
        close and optionally volume (base units; NaN when unknown). Duplicate timestamps in ``df`` are
        rejected (the importers resolve exact duplicates before calling).
        """
        if kind not in MARKET_KINDS:
            raise InvalidInput("kind", kind, f"one of {MARKET_KINDS}")
        timeframe_seconds(timeframe)
        ts = _utc_index(df, what=f"{venue} {symbol} {kind} {timeframe}")
        missing = [c for c in BAR_COLUMNS[:4] if c not in df.columns]
        if missing:
            raise DataError(f"bars for {venue} {symbol} {kind}: missing columns {missing}", column=missing[0])
        if ts.has_duplicates:
            dup = int(np.flatnonzero(ts.duplicated())[0]) + 1
            raise DataError(f"bars for {venue} {symbol} {kind}: duplicate timestamp {ts[dup - 1]}",
                            row=dup, column="ts")
        cols = {c: np.asarray(df[c], dtype="float64") if c in df.columns else np.full(len(df), np.nan)
                for c in BAR_COLUMNS}
        with self.transaction(), self._connection() as con:
            sid = self._series_id(con, venue, symbol, kind, timeframe, create=True)
            src = pa.table({"series_id": pa.array(np.full(len(df), sid, dtype=np.int32)),
                            "ts": pa.array(ts), **{c: pa.array(v) for c, v in cols.items()}})
            if self._appends(con, "bars", sid, ts):
                self._insert(con, "bars", src)
            else:
                self._merge(con, "bars", src, ("series_id", "ts"), BAR_COLUMNS)
        return len(df)

    def read_bars(self, venue: str, symbol: str, kind: str, timeframe: str, start: Any = None,
                  end: Any = None, *, resample: str | None = None) -> pd.DataFrame:
        """Bars of one series in ``[start, end)``, indexed by UTC open time; gaps are not filled.

        ``resample`` (a multiple of ``timeframe``) aggregates in SQL: first open, max high, min low,
        last close, summed volume; buckets are labelled by their open time, aligned to the Unix epoch,
        and a bucket exists when at least one source bar falls in it (partial buckets are kept).
        """
        start_t, end_t = _ts_param(start, "start"), _ts_param(end, "end")
        where, params = self._window(start_t, end_t)
        with self._connection() as con:
            sid = self._require_series(con, venue, symbol, kind, timeframe)
            if resample is None:
                sql = (f"SELECT ts, open, high, low, close, volume FROM bars "
                       f"WHERE series_id = ? {where} ORDER BY ts")
            else:
                src_s, dst_s = timeframe_seconds(timeframe), timeframe_seconds(resample)
                if dst_s % src_s:
                    raise InvalidInput("resample", resample, f"a multiple of the series timeframe {timeframe}")
                # integer epoch buckets: ~2x faster than time_bucket() on TIMESTAMPTZ
                step_us = dst_s * 1_000_000
                sql = (f"SELECT make_timestamptz(b * {step_us}) AS ts, open, high, low, close, volume FROM ("
                       f"SELECT epoch_us(ts) // {step_us} AS b, arg_min(open, ts) AS open, max(high) AS high, "
                       "min(low) AS low, arg_max(close, ts) AS close, sum(volume) AS volume "
                       f"FROM bars WHERE series_id = ? {where} GROUP BY b) ORDER BY b")
            out = con.execute(sql, [sid, *params]).df()
        return out.set_index("ts")

    # ---- market data: funding -------------------------------------------------------------
    def write_funding(self, df: pd.DataFrame, *, venue: str, symbol: str, interval_hours: float = 8.0) -> int:
        """Upsert funding events of one perp: ``ts`` (funding time, UTC), ``funding_rate`` (fraction per
        interval, + longs pay shorts) and optionally ``interval_hours`` per row (else the argument)."""
        ts = _utc_index(df, what=f"funding {venue} {symbol}")
        if "funding_rate" not in df.columns:
            raise DataError(f"funding for {venue} {symbol}: missing column 'funding_rate'", column="funding_rate")
        if ts.has_duplicates:
            dup = int(np.flatnonzero(ts.duplicated())[0]) + 1
            raise DataError(f"funding for {venue} {symbol}: duplicate timestamp {ts[dup - 1]}", row=dup, column="ts")
        hours = (np.asarray(df["interval_hours"], dtype="float64") if "interval_hours" in df.columns
                 else np.full(len(df), float(interval_hours)))
        if not (hours > 0).all():
            raise InvalidInput("interval_hours", float(hours[~(hours > 0)][0]), "> 0 hours")
        timeframe = f"{float(np.median(hours)) if len(hours) else interval_hours:g}h"
        with self.transaction(), self._connection() as con:
            sid = self._funding_series_id(con, venue, symbol)
            if sid is None:  # a funding series is one per (venue, symbol) whatever its interval
                sid = self._series_id(con, venue, symbol, "funding", timeframe, create=True)
            src = pa.table({"series_id": pa.array(np.full(len(df), sid, dtype=np.int32)), "ts": pa.array(ts),
                            "funding_rate": pa.array(np.asarray(df["funding_rate"], dtype="float64")),
                            "interval_hours": pa.array(hours)})
            if self._appends(con, "funding", sid, ts):
                self._insert(con, "funding", src)
            else:
                self._merge(con, "funding", src, ("series_id", "ts"), ("funding_rate", "interval_hours"))
        return len(df)

    def read_funding(self, venue: str, symbol: str, start: Any = None, end: Any = None) -> pd.DataFrame:
        """Funding events in ``[start, end)`` indexed by funding time (UTC): funding_rate, interval_hours."""
        start_t, end_t = _ts_param(start, "start"), _ts_param(end, "end")
        where, params = self._window(start_t, end_t)
        with self._connection() as con:
            sid = self._funding_series_id(con, venue, symbol)
            if sid is None:
                self._require_series(con, venue, symbol, "funding", "8h")
            out = con.execute(f"SELECT ts, funding_rate, interval_hours FROM funding WHERE series_id = ? "
                              f"{where} ORDER BY ts", [sid, *params]).df()
        return out.set_index("ts")

    def read_funding_all(self, start: Any = None, end: Any = None) -> pd.DataFrame:
        """Funding events of EVERY stored perp in ``[start, end)``, one long frame in one query:
        ``ts`` (UTC), ``venue``, ``symbol``, ``funding_rate`` (fraction per interval, + longs pay shorts),
        ``interval_hours``; sorted by venue, symbol, ts (the cross-venue scanner's input)."""
        start_t, end_t = _ts_param(start, "start"), _ts_param(end, "end")
        where, params = self._window(start_t, end_t)
        with self._connection() as con:
            return con.execute("SELECT f.ts, s.venue, s.symbol, f.funding_rate, f.interval_hours FROM funding f "
                               f"JOIN series s USING (series_id) WHERE s.kind = 'funding' {where} "
                               "ORDER BY s.venue, s.symbol, f.ts", params).df()

    @staticmethod
    def _window(start: pd.Timestamp | None, end: pd.Timestamp | None) -> tuple[str, list[Any]]:
        where, params = "", []
        if start is not None:
            where += " AND ts >= ?"
            params.append(start.to_pydatetime())
        if end is not None:
            where += " AND ts < ?"
            params.append(end.to_pydatetime())
        return where, params

    def last_ts(self, venue: str, symbol: str, kind: str, timeframe: str | None = None) -> pd.Timestamp | None:
        """Latest timestamp of a series (``kind='funding'`` for funding; timeframe ignored there)."""
        with self._connection() as con:
            if kind == "funding":
                row = _first(con.execute("SELECT epoch_us(max(f.ts)) FROM funding f JOIN series s USING (series_id) "
                                         "WHERE s.venue=? AND s.symbol=? AND s.kind='funding'",
                                         [venue, symbol]).fetchall())
            else:
                row = _first(con.execute("SELECT epoch_us(max(b.ts)) FROM bars b JOIN series s USING (series_id) "
                                         "WHERE s.venue=? AND s.symbol=? AND s.kind=? AND s.timeframe=?",
                                         [venue, symbol, kind, timeframe]).fetchall())
        return None if row is None or row[0] is None else pd.Timestamp(int(row[0]), unit="us", tz="UTC")

    def series(self) -> pd.DataFrame:
        """One row per series: venue, symbol, kind, timeframe, first, last, rows, gaps.

        ``gaps`` counts holes: consecutive timestamps further apart than one timeframe (for funding,
        than the row's interval).
        """
        with self._connection() as con:
            meta = con.execute("SELECT series_id, venue, symbol, kind, timeframe FROM series").df()
            if meta.empty:
                return pd.DataFrame(columns=["venue", "symbol", "kind", "timeframe", "first", "last",
                                             "rows", "gaps"])
            steps = pa.table({"series_id": pa.array(meta["series_id"].astype("int32")),
                              "step": pa.array([timeframe_seconds(tf) if tf else 0 for tf in meta["timeframe"]],
                                               type=pa.float64())})
            con.register("_steps", steps)
            try:
                stats = con.execute("""
                    WITH b AS (
                        SELECT series_id, ts,
                               epoch(ts) - epoch(lag(ts) OVER (PARTITION BY series_id ORDER BY ts)) AS d,
                               NULL::DOUBLE AS ih FROM bars
                        UNION ALL
                        SELECT series_id, ts,
                               epoch(ts) - epoch(lag(ts) OVER (PARTITION BY series_id ORDER BY ts)) AS d,
                               interval_hours * 3600 AS ih FROM funding)
                    SELECT b.series_id, min(ts) AS first, max(ts) AS last, count(*) AS rows,
                           count(*) FILTER (WHERE d > coalesce(ih, s.step) + 1e-6) AS gaps
                    FROM b JOIN _steps s USING (series_id) GROUP BY b.series_id""").df()
            finally:
                con.unregister("_steps")
        out = meta.merge(stats, on="series_id", how="left")
        out["rows"] = out["rows"].fillna(0).astype("int64")
        out["gaps"] = out["gaps"].fillna(0).astype("int64")
        return (out.drop(columns="series_id").sort_values(["venue", "symbol", "kind", "timeframe"])
                .reset_index(drop=True))

    # ---- trading ledger and everything else ----------------------------------------------
    def write_table(self, table: TradingTable, df: pd.DataFrame) -> int:
        """Upsert rows into a ledger/run/parameter table on its natural key (see ``store_schema.KEYS``).

        Columns must be a subset of the table's; missing ones are NULL. Timestamp columns must be
        tz-aware. JSON columns accept dicts. Returns the number of rows in ``df``.
        """
        if table not in KEYS:
            raise InvalidInput("table", table, f"one of {sorted(KEYS)}")
        key = KEYS[table]
        if df.empty:
            return 0
        with self.transaction(), self._connection() as con:
            schema = con.execute(f"DESCRIBE {table}").fetchall()
            columns = [r[0] for r in schema]
            types = {r[0]: r[1] for r in schema}
            unknown = [c for c in df.columns if c not in columns]
            if unknown:
                raise DataError(f"{table}: unknown columns {unknown}; allowed: {columns}", column=unknown[0])
            absent_key = [k for k in key if k not in df.columns]
            if absent_key:
                raise DataError(f"{table}: key columns {absent_key} are required", column=absent_key[0])
            data: dict[str, pa.Array] = {}
            for c in columns:
                typ = types[c]
                if c not in df.columns:
                    values: Any = [None] * len(df)
                    data[c] = pa.array(values, type=_ARROW_TYPES.get(typ, pa.string()))
                    continue
                col = df[c]
                if typ.startswith("TIMESTAMP"):
                    idx = pd.DatetimeIndex(pd.to_datetime(col))
                    if idx.tz is None and idx.notna().any():
                        raise DataError(f"{table}: column {c!r} has naive timestamps; give UTC", column=c)
                    data[c] = pa.array(idx.tz_convert("UTC").as_unit("us") if idx.tz is not None else idx)
                elif typ == "JSON":
                    data[c] = pa.array([None if v is None else (v if isinstance(v, str) else json.dumps(v, default=str))
                                        for v in col], type=pa.string())
                else:
                    data[c] = pa.array(col.tolist(), type=_ARROW_TYPES.get(typ, pa.string()), from_pandas=True)
            src = pa.table(data)
            dups = pd.DataFrame({k: df[k].tolist() for k in key}).duplicated()
            if dups.any():
                row = int(np.flatnonzero(dups.to_numpy())[0]) + 1
                raise DataError(f"{table}: duplicate key {key} in the input", row=row, column=key[0])
            self._merge(con, table, src, key, tuple(c for c in columns if c not in key))
        return len(df)

    def write_instruments(self, instruments: Any, *, read_at: Any, source: str) -> int:
        """Upsert instruments (limits and brackets) on (venue, symbol); ``read_at`` (tz-aware) is when the
        venue was read, ``source`` where the figures came from (e.g. ``'binance load_markets + fetch_leverage_tiers'``).
        Returns the number of rows."""
        from hedge_core.data.instruments import instrument_from_row, instrument_to_row

        t = _ts_param(read_at, "read_at")
        rows = [instrument_to_row(i) for i in instruments]
        for r in rows:  # validated before anything is written (InvalidInput names the row and field)
            instrument_from_row(r, where=f"instruments[{r['venue']} {r['symbol']}]")
        if not rows:
            return 0
        df = pd.DataFrame(rows)
        df["updated_at"], df["source"] = t, str(source)
        return self.write_table("instruments", df)

    def read_instruments(self, venue: str | None = None, *, symbols: list[str] | None = None) -> list[Any]:
        """Stored instruments (:class:`hedge_core.types.Instrument`, brackets attached), optionally of one venue
        and some symbols; a malformed stored row raises InvalidInput naming the row and field."""
        from hedge_core.data.instruments import instrument_from_row

        where, args = ["TRUE"], []
        if venue is not None:
            where.append("venue = ?")
            args.append(venue)
        if symbols is not None:
            if not symbols:
                return []
            where.append(f"symbol IN ({', '.join('?' * len(symbols))})")
            args.extend(symbols)
        with self._connection() as con:
            df = con.execute(f"SELECT * FROM instruments WHERE {' AND '.join(where)} ORDER BY venue, kind DESC, symbol",
                             args).df()
        return [instrument_from_row(r, where=f"instruments[{r['venue']} {r['symbol']}]")
                for r in df.to_dict("records")]

    def instruments_table(self) -> pd.DataFrame:
        """The instruments table as stored (brackets as JSON text), for listings."""
        with self._connection() as con:
            df = con.execute("SELECT * FROM instruments ORDER BY venue, kind DESC, symbol").df()
        if "updated_at" in df and len(df):
            df["updated_at"] = pd.to_datetime(df["updated_at"], utc=True)
        return df

    def read_table(self, table: TradingTable, *, hedge_id: str | None = None, start: Any = None,
                   end: Any = None, limit: int | None = None, latest: int | None = None,
                   **equals: Any) -> pd.DataFrame:
        """Rows of a ledger table, optionally for one hedge and a ``[start, end)`` window on ``ts``.

        Extra keyword arguments filter on equality (e.g. ``name='carry'``). Ordered by the natural key;
        ``latest=n`` returns only the last ``n`` rows by ``ts`` (ascending), for "recent fills" views.
        """
        if table not in KEYS:
            raise InvalidInput("table", table, f"one of {sorted(KEYS)}")
        start_t, end_t = _ts_param(start, "start"), _ts_param(end, "end")
        with self._connection() as con:
            columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
            clauses, params = [], []
            if hedge_id is not None:
                clauses.append("hedge_id = ?")
                params.append(hedge_id)
            for k, v in equals.items():
                if k not in columns:
                    raise InvalidInput(k, v, f"a column of {table}: {columns}")
                clauses.append(f'"{k}" = ?')
                params.append(v)
            tcol = "ts" if "ts" in columns else None
            order_time = tcol or _TIME_COLUMN.get(table)
            for bound, op in ((start_t, ">="), (end_t, "<")):
                if bound is not None:
                    if tcol is None:
                        raise InvalidInput("start/end", bound, f"only for tables with a ts column, not {table}")
                    clauses.append(f"ts {op} ?")
                    params.append(bound.to_pydatetime())
            where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
            order = ", ".join(KEYS[table])
            if latest is not None:
                if order_time is None:
                    raise InvalidInput("latest", latest, f"only for tables with a time column, not {table}")
                return con.execute(f"SELECT * FROM (SELECT * FROM {table} {where} ORDER BY {order_time} DESC, "
                                   f"{order} DESC LIMIT {int(latest)}) ORDER BY {order_time}, {order}", params).df()
            lim = f"LIMIT {int(limit)}" if limit else ""
            return con.execute(f"SELECT * FROM {table} {where} ORDER BY {order} {lim}", params).df()

    def table_counts(self, table: TradingTable, by: str = "hedge_id") -> pd.DataFrame:
        """Rows per value of column ``by``: columns ``by`` and ``rows``."""
        with self._connection() as con:
            self._check_column(con, table, by)
            return con.execute(f'SELECT "{by}", count(*) AS rows FROM {table} GROUP BY 1 ORDER BY 1').df()

    def fill_flows(self, hedge_id: str | None = None, every: str | None = None) -> pd.DataFrame:
        """Fills aggregated in SQL per hedge and leg (and per ``every`` bucket of time when given).

        Columns: hedge_id, leg, ts (bucket start; the last fill's time when ``every`` is None), n,
        qty (signed base: + buy, - sell), cash (quote: - signed qty x price, + when selling),
        fees (quote paid), last_price (price of the bucket's last fill).
        """
        bucket, group = self._bucket(every)
        where, params = ("WHERE hedge_id = ?", [hedge_id]) if hedge_id is not None else ("", [])
        sql = (f"SELECT hedge_id, leg, {bucket} AS ts, count(*) AS n, sum(sq) AS qty, sum(-sq * price) AS cash, "
               "sum(fee) AS fees, arg_max(price, ts) AS last_price FROM ("
               "SELECT *, CASE WHEN side = 'sell' THEN -qty ELSE qty END AS sq FROM fills "
               f"{where}) GROUP BY hedge_id, leg{group} ORDER BY hedge_id, leg, ts")
        with self._connection() as con:
            return con.execute(sql, params).df()

    def funding_flows(self, hedge_id: str | None = None, every: str | None = None) -> pd.DataFrame:
        """Own funding aggregated in SQL per hedge (and ``every`` bucket): hedge_id, ts, n, amount
        (quote, + received / - paid)."""
        bucket, group = self._bucket(every)
        where, params = ("WHERE hedge_id = ?", [hedge_id]) if hedge_id is not None else ("", [])
        sql = (f"SELECT hedge_id, {bucket} AS ts, count(*) AS n, sum(amount) AS amount FROM funding_payments "
               f"{where} GROUP BY hedge_id{group} ORDER BY hedge_id, ts")
        with self._connection() as con:
            return con.execute(sql, params).df()

    @staticmethod
    def _bucket(every: str | None) -> tuple[str, str]:
        if every is None:
            return "max(ts)", ""
        step_us = timeframe_seconds(every) * 1_000_000
        expr = f"make_timestamptz((epoch_us(ts) // {step_us}) * {step_us})"
        return expr, f", {expr}"

    @staticmethod
    def _check_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> list[str]:
        if table not in KEYS:
            raise InvalidInput("table", table, f"one of {sorted(KEYS)}")
        columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        if column not in columns:
            raise InvalidInput("column", column, f"a column of {table}: {columns}")
        return columns

    # ---- internals -------------------------------------------------------------------------
    @staticmethod
    def _appends(con: duckdb.DuckDBPyConnection, table: str, sid: int, ts: pd.DatetimeIndex) -> bool:
        """True when every incoming row is newer than the series' last stored row (downloads, fresh
        imports): then a plain INSERT keeps keys unique and runs at raw insert speed."""
        if len(ts) == 0:
            return False
        last = con.execute(f"SELECT epoch_us(max(ts)) FROM {table} WHERE series_id = ?", [sid]).fetchall()[0][0]
        return last is None or int(ts.min().value // 1000) > int(last)

    @staticmethod
    def _insert(con: duckdb.DuckDBPyConnection, table: str, src: pa.Table) -> None:
        name = f"_src_{table}"
        con.register(name, src)
        try:
            cols = ", ".join(f'"{c}"' for c in src.column_names)
            con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {name}")
        finally:
            con.unregister(name)

    @staticmethod
    def _merge(con: duckdb.DuckDBPyConnection, table: str, src: pa.Table, key: tuple[str, ...],
               values: tuple[str, ...]) -> None:
        name = f"_src_{table}"
        con.register(name, src)
        try:
            on = " AND ".join(f't."{k}" = s."{k}"' for k in key)
            changed = " OR ".join(f't."{v}" IS DISTINCT FROM s."{v}"' for v in values) or "false"
            sets = ", ".join(f'"{v}" = s."{v}"' for v in values)
            cols = ", ".join(f'"{c}"' for c in src.column_names)
            scols = ", ".join(f's."{c}"' for c in src.column_names)
            update = f"WHEN MATCHED AND ({changed}) THEN UPDATE SET {sets}" if values else ""
            con.execute(f"MERGE INTO {table} AS t USING {name} AS s ON {on} {update} "
                        f"WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({scols})")
        finally:
            con.unregister(name)


# Tables without a ``ts`` column: the time that orders their rows for ``read_table(latest=n)``.
_TIME_COLUMN = {"orders": "intent_ts", "hedge_runs": "started_at", "param_sets": "created_at"}


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "could not set lock" in text or "conflicting lock" in text


def _duckdb_reason(exc: BaseException) -> str:
    """DuckDB's message without its class prefix ('IO Error: ...')."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"^[A-Za-z ]+Error: ", "", text).rstrip("!. ")


def _first(rows: list[tuple[Any, ...]]) -> tuple[Any, ...] | None:
    return rows[0] if rows else None


_ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(), "DOUBLE": pa.float64(), "INTEGER": pa.int32(), "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(), "JSON": pa.string(), "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
}
