"""Smoke test of bench/bench_runner_capacity.py at a tiny size (6 hedges across 3 venues).

It runs the bench as a user does (a subprocess, offline) and checks that it cannot silently
measure nothing: every printed figure is there and positive, every hedge journaled its orders and
fills under its own legs' venues (a cross-venue hedge: spot on one, perp on the other), and the
book the bench read at the end (the GET /book path) adds up to the positions, counted
independently from the journal's fills and from the paper venues' own holdings.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli_env import REPO, _env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

NUM = r"([0-9][0-9,]*\.?[0-9]*)"


def _num(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m is not None, f"{pattern!r} not printed:\n{text}"
    return float(m.group(1).replace(",", ""))


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict, Path]:
    tmp = tmp_path_factory.mktemp("capacity")
    p = subprocess.run([sys.executable, "bench/bench_runner_capacity.py", "--hedges", "6", "--hours", "48",
                        "--json", str(tmp / "out.json"), "--keep", str(tmp / "run")],
                       cwd=REPO, env=_env(tmp), capture_output=True, text=True, timeout=110)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout, json.loads((tmp / "out.json").read_text()), tmp / "run" / "bench.duckdb"


def test_every_printed_figure_is_there_and_positive(bench_run):
    out, res, _ = bench_run
    figures = {
        "baseline updates/s": _num(rf"baseline: .*?: {NUM} updates/s", out),
        "start-up s": _num(rf"start-up: 6 hedges started and their feeds built in {NUM} s", out),
        "RSS started MB": _num(rf"{NUM} MB with 6 hedges started", out),
        "RSS peak MB": _num(rf"peak {NUM} MB", out),
        "total updates": _num(rf"total: {NUM} market updates", out),
        "total updates/s": _num(rf"= {NUM} updates/s", out),
        "ratio": _num(rf"\({NUM}x baseline per update\)", out),
        "cycle p50 ms": _num(rf"monitoring cycle per hedge: p50 {NUM} ms", out),
        "cycle p99 ms": _num(rf"monitoring cycle per hedge: .*p99 {NUM} ms", out),
        "book p50 ms": _num(rf"book refresh while running \(.*?\): p50 {NUM} ms", out),
        "book max ms": _num(rf"book refresh while running \(.*?\): p50 [0-9.,]+ ms, max {NUM} ms", out),
    }
    assert re.search(r"the probe waited p50 \S+ ms, max \S+ ms for the event loop", out), out
    assert all(v > 0 for v in figures.values()), figures
    # 6 hedges x 48 bars, less what hedges that completed early did not receive
    assert 0 < figures["total updates"] <= 6 * 48 and figures["total updates"] == res["updates"]
    assert figures["cycle p50 ms"] <= figures["cycle p99 ms"]
    # the per-venue table: every venue and the cross-venue pair processed updates, with latencies
    for label in ("binance", "bybit", "okx", "binance>bybit"):
        m = re.search(rf"^\s*{re.escape(label)}\s+(\d+)\s+(\d+)\s+{NUM}\s+{NUM}\s+{NUM}\s*$", out, re.M)
        assert m is not None, f"no per-venue row for {label}:\n{out}"
        assert all(float(g.replace(",", "")) > 0 for g in m.groups()), m.group(0)
    assert sum(v["updates"] for v in res["per_venue"].values()) == res["updates"]
    for goal in ("updates/s total", "cycle p99 <", "book refresh <"):
        assert re.search(rf"{re.escape(goal)}.* -> (met|NOT met)", out), goal


def test_every_hedge_journaled_on_its_venues(bench_run):
    from hedge_core.store import Store

    _, res, db = bench_run
    plan = {h["hedge_id"]: h for h in res["hedges"]}
    assert len(plan) == 6 and {h["kind"] for h in plan.values()} == {"carry", "cross", "grid", "xvenue"}
    assert {h["venue"] for h in plan.values()} == {"binance", "bybit", "okx"}
    with Store(db, read_only=True) as st:
        runs = st.read_table("hedge_runs").set_index("hedge_id")
        orders, fills = st.read_table("orders"), st.read_table("fills")
    assert set(runs.index) == set(plan)
    for hid, h in plan.items():
        assert (runs.loc[hid, "spot_venue"], runs.loc[hid, "perp_venue"]) == (h["venue"], h["perp_venue"]), hid
        o, f = orders.loc[orders["hedge_id"] == hid], fills.loc[fills["hedge_id"] == hid]
        assert len(o) and len(f), f"{hid} journaled no order or no fill"
        for df in (o, f):
            spot, perp = df.loc[df["symbol"] == h["spot_symbol"]], df.loc[df["symbol"] == h["perp_symbol"]]
            assert len(spot) and set(spot["venue"]) == {h["venue"]}, (hid, set(spot["venue"]))
            if len(perp):
                assert set(perp["venue"]) == {h["perp_venue"]}, (hid, set(perp["venue"]))
    x = next(h for h in plan.values() if h["kind"] == "xvenue")
    assert x["venue"] != x["perp_venue"]
    assert set(fills.loc[fills["hedge_id"] == x["hedge_id"], "venue"]) == {x["venue"], x["perp_venue"]}


def test_book_at_the_end_equals_the_sum_of_the_hedges_positions(bench_run):
    from hedge_core.store import Store

    _, res, db = bench_run
    with Store(db, read_only=True) as st:
        fills = st.read_table("fills")
    sign = fills["side"].map({"buy": 1.0, "sell": -1.0})
    fills = fills.assign(signed=sign * fills["qty"])  # fees are in USDT (checked below): no base deducted
    assert set(fills["fee_currency"]) == {"USDT"}
    book = {a["asset"]: a for a in res["book"]["assets"]}
    hedges = res["hedges"]
    assert res["book"]["hedges"] == len(hedges) == 6
    for asset in {h["spot_symbol"].split("/")[0] for h in hedges}:
        spot_sym = f"{asset}/USDT"
        from_fills = fills.loc[fills["symbol"] == spot_sym, "signed"].sum()
        from_venues = sum(h["spot_qty"] for h in hedges if h["spot_symbol"] == spot_sym)
        assert from_fills > 0 and from_venues == pytest.approx(from_fills, abs=1e-9)
        assert book.get(asset, {}).get("spot_qty", 0.0) == pytest.approx(from_fills, abs=1e-9), asset
    # perps: the book files a hedge's perp under its spot asset (a cross hedge holds ETH spot against a
    # BTC perp), so compare the quantities summed over the book's assets with the fills and the venues
    perp_fills = fills.loc[fills["symbol"].str.endswith(":USDT"), "signed"].sum()
    perp_venues = sum(h["perp_qty"] for h in hedges)
    assert perp_venues == pytest.approx(perp_fills, abs=1e-9)
    assert sum(a["perp_qty"] for a in book.values()) == pytest.approx(perp_fills, abs=1e-9)
    assert perp_fills < 0  # the hedges are short perps: the run put positions on
