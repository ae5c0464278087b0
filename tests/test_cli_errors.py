"""No traceback ever reaches a user: the real ``hedge`` commands, run as subprocesses, on broken
databases, held databases, mistyped paths, inverted windows and empty files. Each must exit non-zero
with one clear message that names the file or the field and says what to do."""

from __future__ import annotations

import ast
import asyncio
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli_env import REPO, hedge

pytestmark = pytest.mark.timeout(240)

PARAMS = 'strategy = "carry"\nmin_net_carry = -0.01\n'


def refused(code: int, out: str, *must_name: str) -> None:
    assert code != 0, out
    assert "Traceback" not in out, out
    assert "error" in out.lower(), out
    for s in must_name:
        assert s in out, f"{s!r} not in: {out}"


@pytest.fixture()
def broken(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "empty.duckdb"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.duckdb"
    garbage.write_bytes(b"this is not a database\n" * 50)
    return {"empty": empty, "garbage": garbage}


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hedge_core.data.demo import seed_demo
    from hedge_core.store import Store

    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    with Store(path) as st:
        seed_demo(st, days=10, timeframe="1h", seed=3, assets=("BTC",))
    return path


# ---- a 0-byte or garbage .duckdb, to every command -------------------------------------------------

@pytest.mark.parametrize("which", ["empty", "garbage"])
def test_unreadable_database_is_one_line_naming_the_file(tmp_path: Path, broken: dict[str, Path], which: str) -> None:
    db = broken[which]
    params = tmp_path / "carry.toml"
    params.write_text(PARAMS)
    before = db.read_bytes()
    for args in (["data", "status", "--db", str(db)],
                 ["data", "quality", "--db", str(db)],
                 ["data", "seed", "--demo", "--days", "2", "--db", str(db)],
                 ["backtest", "--params", str(params), "--db", str(db), "--venue", "demo"],
                 ["backtest", "--params", str(params), "--db", str(db), "--venue", "demo", "--save"],
                 ["app", "--db", str(db), "--demo"],
                 ["runner", "start", "--db", str(db), "--home", str(tmp_path / "rh"), "--wait", "20"]):
        code, out = hedge(tmp_path, *args)
        refused(code, out, str(db), "cannot be opened", "not a valid DuckDB database")
        assert len(out.strip().splitlines()) == 1, out
    # the runner process itself (what `hedge runner start` spawns), started by hand: no traceback either
    r = subprocess.run([sys.executable, "-m", "hedge_core.runner", "--db", str(db), "--home", str(tmp_path / "rh")],
                       cwd=REPO, capture_output=True, text=True, timeout=60,
                       env={**{k: v for k, v in os.environ.items() if not k.startswith("HEDGE_")}, "HEDGE_OFFLINE": "1"})
    refused(r.returncode, r.stderr, str(db), "cannot be opened", "not a valid DuckDB database")
    assert db.read_bytes() == before  # left as it was
    assert not (tmp_path / "rh" / "runner.json").exists()


# ---- another process holds the file ----------------------------------------------------------------

HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
time.sleep(120)
"""


@pytest.fixture()
def held(tmp_path: Path, demo_db: Path):
    db = tmp_path / "held.duckdb"
    db.write_bytes(demo_db.read_bytes())
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    try:
        yield db, p
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(10)


def test_held_database_names_the_holder_pid_and_the_fix(tmp_path: Path, held) -> None:
    db, holder = held
    for args in (["data", "status", "--db", str(db)], ["data", "seed", "--demo", "--db", str(db)]):
        code, out = hedge(tmp_path, *args)
        refused(code, out, str(db), f"process {holder.pid}", "one writer", "snapshot")
        assert "Conflicting lock" not in out and "IO Error" not in out  # DuckDB's raw text is translated


def test_held_by_the_runner_says_stop_it_or_read_its_snapshot(tmp_path: Path, held) -> None:
    """The holder is named as the runner when the runner's runner.json says it owns this file."""
    import json

    db, holder = held
    home = tmp_path / "home"
    home.mkdir()
    (home / "runner.json").write_text(json.dumps({"pid": holder.pid, "port": 1, "db": str(db),
                                                  "snapshot_dir": str(db.parent / "snapshots")}))
    code, out = hedge(tmp_path, "data", "status", "--db", str(db))
    refused(code, out, "hedge runner", f"pid {holder.pid}", "hedge runner stop",
            str(db.parent / "snapshots" / "latest.duckdb"))
    t0 = time.monotonic()
    code, out = hedge(tmp_path, "data", "seed", "--demo", "--db", str(db), HEDGE_LOCK_WAIT="30")
    refused(code, out, "hedge runner", "hedge runner stop --keep")
    assert time.monotonic() - t0 < 25  # refused at once: no waiting on a runner, it does not let go


# ---- a mistyped --db on a read never creates anything -------------------------------------------------

def test_mistyped_db_on_a_read_creates_nothing(tmp_path: Path) -> None:
    params = tmp_path / "carry.toml"
    params.write_text(PARAMS)
    grid = tmp_path / "grid.toml"
    grid.write_text("min_funding_rate = [0.0001, 0.0002]\n")
    missing = tmp_path / "typo-folder" / "hedge.duckdbb"
    for args in (["data", "status", "--db", str(missing)],
                 ["data", "quality", "--db", str(missing)],
                 ["backtest", "--params", str(params), "--db", str(missing)],
                 ["sweep", "--params", str(params), "--grid", str(grid), "--db", str(missing), "--workers", "0"],
                 ["params", "promote", "x@1", "--to", "paper", "--db", str(missing)]):
        code, out = hedge(tmp_path, *args)
        refused(code, out, str(missing), "no database", "nothing created")
    assert not missing.parent.exists()


# ---- bad input named by its field ------------------------------------------------------------------

def test_inverted_window_says_so(tmp_path: Path, demo_db: Path) -> None:
    params = tmp_path / "carry.toml"
    params.write_text(PARAMS)
    code, out = hedge(tmp_path, "backtest", "--params", str(params), "--db", str(demo_db), "--venue", "demo",
                      "--start", "2024-01-08", "--end", "2024-01-03")
    refused(code, out, "--start", "2024-01-08", "before --end 2024-01-03")
    assert "at least 3 bars" not in out
    code, out = hedge(tmp_path, "backtest", "--params", str(params), "--db", str(demo_db), "--venue", "demo",
                      "--start", "first of May")
    refused(code, out, "--start", "first of May")


def test_header_only_csv_is_refused_and_writes_nothing(tmp_path: Path, demo_db: Path) -> None:
    csv = tmp_path / "demo_SOLUSDT_spot_1h.csv"
    csv.write_text("ts,open,high,low,close,volume\n")
    fresh = tmp_path / "new" / "h.duckdb"
    code, out = hedge(tmp_path, "data", "import", str(csv), "--db", str(fresh))
    refused(code, out, str(csv), "no data rows")
    assert not fresh.exists()  # validated before the store is opened
    db = tmp_path / "h.duckdb"
    db.write_bytes(demo_db.read_bytes())
    generic = tmp_path / "table.csv"
    generic.write_text("time,o,h,l,c,v\n")
    code, out = hedge(tmp_path, "data", "import", str(generic), "--db", str(db), "--venue", "x", "--kind", "spot",
                      "--symbol", "SOL/USDT", "--timeframe", "1h",
                      "--map", "ts=time,open=o,high=h,low=l,close=c,volume=v")
    refused(code, out, str(generic), "no data rows")
    code, out = hedge(tmp_path, "data", "status", "--db", str(db))
    assert code == 0 and "SOL/USDT" not in out, out  # no empty series registered


# ---- format text that forgot its f ------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{[A-Za-z_][\w.]*(\(\))?(![rsa])?(:[^{}]*)?\}")


def test_no_literal_placeholder_inside_an_f_string() -> None:
    """An f-string continued by a plain string prints ``{name}`` literally (the panel's
    ``{action.lower()}``): inside a JoinedStr, a literal part must not look like a placeholder."""
    bad = []
    files = [*REPO.joinpath("hedge_core").rglob("*.py"), *REPO.joinpath("pages").rglob("*.py"), REPO / "app.py"]
    for f in files:
        if not f.exists():
            continue
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.JoinedStr):
                for part in node.values:
                    literal = part.value if isinstance(part, ast.Constant) else None
                    if isinstance(literal, str) and _PLACEHOLDER.search(literal):
                        bad.append(f"{f.relative_to(REPO)}:{node.lineno}: {part.value!r}")
    assert not bad, bad


# ---- recommend mode with the venue unreachable -------------------------------------------------------

def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_recommend_mode_explains_an_unreachable_venue() -> None:
    """The real ccxt client against a closed 127.0.0.1 port: ccxt raises ExchangeNotAvailable; recommend
    mode says the venue is unreachable and that it needs the venue's public API."""
    from hedge_core.errors import NetworkError
    from hedge_core.exchange.base import RetryPolicy
    from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter
    from hedge_core.exchange.recommend import RecommendAdapter
    from tests.support.binance_sim import HOSTS
    from tests.support.live_env import test_ca
    from tests.support.redirect import redirect_session

    async def run() -> str:
        port = _closed_port()
        ctx = ssl.create_default_context()
        test_ca().configure_trust(ctx)
        session = redirect_session({h: port for h in HOSTS}, ctx)  # nothing listens there: connection refused

        async def no_sleep(_s: float) -> None:
            return None

        md = CcxtLiveAdapter("binance", None, session=session, retry=RetryPolicy(max_attempts=2, seed=1),
                             timeout_ms=2000, enable_rate_limit=False, sleep=no_sleep)
        ad = RecommendAdapter(md)
        try:
            with pytest.raises(NetworkError) as ei:
                await ad.load_markets()
            with pytest.raises(NetworkError) as ei2:
                await ad.fetch_ticker("BTC/USDT")
            assert "venue unreachable" in str(ei2.value)
            return str(ei.value)
        finally:
            await ad.close()
            await session.close()

    msg = asyncio.run(run())
    assert "venue unreachable" in msg and "public API" in msg and "binance" in msg
    assert "ExchangeNotAvailable" in msg  # the cause stays visible, inside the sentence
    assert "paper" in msg  # what to do without the venue


def test_recommend_translates_a_raw_ccxt_error_from_a_hook_adapter() -> None:
    import ccxt

    from hedge_core.errors import NetworkError, TemporaryError
    from hedge_core.exchange.recommend import RecommendAdapter

    class Offline:
        venue = "binance"

        async def load_markets(self) -> dict:
            raise ccxt.ExchangeNotAvailable("binance GET https://api.binance.com/api/v3/exchangeInfo")

        async def close(self) -> None:
            return None

    with pytest.raises(NetworkError) as ei:
        asyncio.run(RecommendAdapter(Offline()).load_markets())
    assert isinstance(ei.value, TemporaryError)  # still retried with backoff by the caller
    assert "venue unreachable" in str(ei.value) and "recommend mode" in str(ei.value)
