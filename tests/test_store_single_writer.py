"""The runner stays the single writer of its database for its whole life, snapshots included.

DuckDB's file lock is a POSIX (fcntl) lock: any open+close of the live file inside the runner
process (e.g. ``shutil.copyfile`` for a snapshot) silently drops it, after which another process can
open the live file read-write. Snapshots are therefore copied by DuckDB itself
(``Store.copy_to``: ATTACH + COPY FROM DATABASE). This test runs a real runner taking several
snapshots and then tries to write into its database from other processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.support.runner_env import DEMO_START, REPO, make_env, wait_for

pytestmark = pytest.mark.timeout(180)

RAW_WRITE = """
import sys, duckdb
try:
    con = duckdb.connect(sys.argv[1])
    con.execute("CREATE TABLE intruder (i INTEGER)")
    con.close()
    print("OPENED")
except duckdb.IOException as exc:
    print("REFUSED", exc)
"""


def test_runner_keeps_its_lock_across_snapshots(tmp_path):
    env = make_env(tmp_path, days=5)
    try:
        p = env.start_runner(args=["--snapshot-every", "0.2"])
        c = env.client(p)
        # journal writes (hedges starting, orders, fills) make the runner take snapshot after snapshot
        for i in range(3):
            c.start("carry-test", mode="paper", start=DEMO_START, speed=72_000, hedge_id=f"w{i}")
            time.sleep(0.3)
        wait_for(lambda: c.health().get("snapshots_taken", 0) >= 3, timeout=60, what="three snapshots")
        snap = env.db.parent / "snapshots" / "latest.duckdb"
        assert snap.exists()

        # 1. another process cannot open the live file read-write: DuckDB's lock error
        raw = subprocess.run([sys.executable, "-c", RAW_WRITE, str(env.db)], cwd=REPO, env=env.env,
                             capture_output=True, text=True, timeout=60)
        assert raw.stdout.startswith("REFUSED"), raw.stdout + raw.stderr
        assert "lock" in raw.stdout.lower() and f"PID {p.pid}" in raw.stdout

        # 2. `hedge data import` is refused with a sentence naming the runner, not a traceback
        csv = tmp_path / "leak_BTCUSDT_spot_1h.csv"
        csv.write_text("ts,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n")
        imp = subprocess.run([sys.executable, "-m", "hedge_core.cli", "data", "import", str(csv), "--db", str(env.db)],
                             cwd=REPO, env={**env.env, "HEDGE_LOCK_WAIT": "1"}, capture_output=True, text=True,
                             timeout=120)
        out = imp.stdout + imp.stderr
        assert imp.returncode != 0, out
        assert "Traceback" not in out
        assert "held by the hedge runner" in out and f"pid {p.pid}" in out and "hedge runner stop" in out

        # 3. the snapshot is a complete database that opens read-only beside the live runner
        from hedge_core.store import Store

        snap_runs = Store(snap, read_only=True, hold=False).read_table("hedge_runs")
        assert {"w0", "w1", "w2"} <= set(snap_runs["hedge_id"])
        meta = json.loads((snap.parent / "latest.json").read_text())
        assert meta["source"] == str(env.db)
        assert c.health()["pid"] == p.pid  # the runner still answers

        c.shutdown(False)
        p.wait(60)
        # nothing from the other processes reached the live database
        st = env.store()
        assert "leak" not in set(st.series()["venue"])
        with st._connection() as con:
            tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert "intruder" not in tables
    finally:
        env.cleanup()
