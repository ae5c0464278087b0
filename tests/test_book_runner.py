"""The book through a real runner process: GET /book equals the sum of GET /hedges (three paper
hedges, two assets, two hedges netted on one asset and venue; the paper venue lists binance
instruments only, so the split across venues is covered by the property test of test_book_aggregate); a book guard fires
from book_limits.toml: recorded in guard_firings (hedge id ``book``), DEGRADED in /health, a new
hedge refused there, nothing traded because of it."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from hedge_core.errors import InvalidInput
from tests.support.runner_env import DEMO_START, make_env, wait_for

pytestmark = pytest.mark.timeout(180)
EXIT_OFF = {"exit": {"max_holding_hours": None, "profit_target_pct": None, "stop_loss_pct": None,
                     "funding_unfavourable_intervals": None}}
END = str(pd.Timestamp(DEMO_START) + pd.Timedelta(hours=30))  # a short replay: the book is still once it ends


def _settled(c, ids):
    hs = {h["hedge_id"]: h for h in c.hedges()}
    # the replay over (or the hedge exited on its own): nothing moves any more
    return all(hs[i].get("phase") == "done" for i in ids)


def test_book_equals_the_sum_of_its_hedges_and_a_book_guard_fires(tmp_path):
    env = make_env(tmp_path, export=EXIT_OFF)
    try:
        p = env.start_runner()
        c = env.client(p)
        legs = [("b1", "binance", "BTC/USDT"), ("b2", "binance", "BTC/USDT"), ("e1", "binance", "ETH/USDT")]
        for hid, venue, sym in legs:
            c.start("carry-test", mode="paper", start=DEMO_START, end=END, speed=36_000, hedge_id=hid, venue=venue,
                    spot_symbol=sym, perp_symbol=sym + ":USDT", data_venue="demo")
        wait_for(lambda: _settled(c, [x[0] for x in legs]), timeout=90, what="three hedges done replaying")
        hs = {h["hedge_id"]: h for h in c.hedges()}
        book = c.book(confidence=0.95, horizon=6)
        assert book["hedges"] == 3
        assets = {a["asset"]: a for a in book["assets"]}
        for asset, ids in (("BTC", ["b1", "b2"]), ("ETH", ["e1"])):
            want = sum(hs[i]["spot_qty"] + hs[i]["perp_qty"] for i in ids)
            assert assets[asset]["delta"] == pytest.approx(want, rel=1e-9, abs=1e-12)
            assert assets[asset]["spot_qty"] == pytest.approx(sum(hs[i]["spot_qty"] for i in ids))
        venues = {v["venue"]: v for v in book["venues"]}
        for venue, ids in (("binance", ["b1", "b2", "e1"]),):
            gross = sum(abs(hs[i]["spot_qty"]) * hs[i]["spot_price"] + abs(hs[i]["perp_qty"]) * hs[i]["mark_price"]
                        for i in ids)
            margin = sum(abs(hs[i]["perp_qty"]) * hs[i]["mark_price"] / hs[i]["leverage"] for i in ids)
            assert venues[venue]["gross"] == pytest.approx(gross, rel=1e-9)
            assert venues[venue]["margin_used"] == pytest.approx(margin, rel=1e-9)
            dists = [hs[i]["liq_distance"] for i in ids if hs[i]["liq_distance"] is not None]
            if dists:
                assert venues[venue]["liq_distance"] == pytest.approx(min(dists), rel=1e-6)
        assert book["pnl"] == pytest.approx(sum(h["pnl"] for h in hs.values()), rel=1e-9)
        assert book["funding"] == pytest.approx(sum(h["funding"] for h in hs.values()), rel=1e-9, abs=1e-12)
        netted = {(r["asset"], r["venue"]): r for r in book["netted"]}
        assert netted[("BTC", "binance")]["hedges"] == 2
        assert netted[("BTC", "binance")]["perp_qty"] == pytest.approx(hs["b1"]["perp_qty"] + hs["b2"]["perp_qty"])
        # funding per day: the ledger's funding rows of these hedges, per UTC day
        f = c.history("funding")
        if len(f):
            per_day = f.groupby(f["ts"].dt.strftime("%Y-%m-%d"))["amount"].sum()
            assert {d["day"]: d["amount"] for d in book["funding_per_day"]} == pytest.approx(per_day.to_dict())
        var = book["var"]
        assert var["confidence"] == 0.95 and var["horizon"] == 6 and "error" not in var, var
        assert var["historical"] >= 0 and var["parametric"] >= 0 and var["observations"] >= 20
        with pytest.raises(InvalidInput, match="confidence"):
            c.book(confidence=1.5)
        # hedge book: the same numbers as a table and as JSON
        from typer.testing import CliRunner

        from hedge_core.cli import app

        r = CliRunner().invoke(app, ["book", "--home", str(env.home), "--json"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["hedges"] == 3
        r = CliRunner().invoke(app, ["book", "--home", str(env.home), "--confidence", "0.95", "--horizon", "6"])
        assert r.exit_code == 0 and "3 hedges" in r.output and "VaR 0.95, 6 bars" in r.output, r.output
        assert "assets" in r.output and "venues" in r.output

        # a book guard: gross exposure above a limit below the book's
        orders_before = len(c.history("orders"))
        limit = book["gross"] * 0.5
        (env.home / "book_limits.toml").write_text(f"max_gross_exposure = {limit}\n")
        wait_for(lambda: "book" in c.health().get("degraded", {}), timeout=30, what="book DEGRADED")
        g = c.history("guards", hedge_id="book")
        assert list(g["guard"]) == ["book_gross_exposure"] and list(g["action"]) == ["block_entries"]
        assert c.book()["guards"][0]["name"] == "gross_exposure"
        with pytest.raises(InvalidInput, match="book"):
            c.start("carry-test", mode="paper", start=DEMO_START, end=END, speed=36_000, hedge_id="x1",
                    data_venue="demo")
        assert "x1" not in {h["hedge_id"] for h in c.hedges()}
        assert len(c.history("orders")) == orders_before  # nothing traded because of it
        # raised above the book: cleared, entries allowed again
        (env.home / "book_limits.toml").write_text(f"max_gross_exposure = {book['gross'] * 10}\n")
        wait_for(lambda: "book" not in c.health().get("degraded", {}), timeout=30, what="book guard cleared")
        assert not math.isnan(c.book()["gross"])
    finally:
        env.cleanup()
