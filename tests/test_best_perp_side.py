"""Best execution walks the book on the side of the ACTUAL entry (issue #15 item 5, step 1).

The carry enters long spot / short perp on positive funding (a perp SELL walks the bids) and short spot /
long perp on negative funding only where the set allows a spot short (a perp BUY walks the asks). Two
venues' books are set so the sell and the buy choose different venues; the expected flows are computed by
hand below, not by a second walk of the book.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pandas as pd
import pytest

from hedge_core.params.xcarry import CrossCarryParams
from hedge_core.runner.best_perp import choose_perp_venue, entry_side, start_funding_rate
from hedge_core.runner.hedge_spec import HedgeSpec
from hedge_core.types import FundingRate, Ticker

SYM = "BTC/USDT:USDT"
# bybit: the higher bid (a sell receives more) and the higher ask (a buy pays more); okx the reverse
BOOKS = {"bybit": {"bids": [[100.0, 20.0]], "asks": [[102.0, 20.0]]},
         "okx": {"bids": [[99.5, 20.0]], "asks": [[100.5, 20.0]]}}
FEE = 0.0005


class FakeVenue:
    """A venue that answers its markets (``taker`` fee), ticker, book and funding rate (ccxt shapes)."""

    def __init__(self, venue: str, rate: float | None) -> None:
        self.venue, self.rate = venue, rate
        self.exchange = type("X", (), {"markets": {SYM: {"taker": FEE}}})()

    async def load_markets(self) -> dict:
        return {}

    async def fetch_ticker(self, symbol: str) -> Ticker:
        return Ticker(symbol, pd.Timestamp("2024-01-01T00:00Z"), 100.0, 102.0, 101.0)

    async def fetch_order_book(self, symbol: str, limit: int | None = None, *, amount: float | None = None) -> dict:
        return BOOKS[self.venue]

    async def fetch_funding_rate(self, symbol: str) -> FundingRate:
        if self.rate is None:
            raise ConnectionError("down")
        return FundingRate(symbol, pd.Timestamp("2024-01-01T08:00Z"), self.rate)


def params(allow_short: bool) -> CrossCarryParams:
    return CrossCarryParams(notional=1010.0, spot_venue="binance", perp_venue="bybit", perp_venues=("okx",),
                            allow_spot_short=allow_short)


def choose(allow_short: bool, rate: float | None, *, venue_rate: float | None = None) -> dict:
    spec = HedgeSpec(hedge_id="s", mode="live", feed="ticker", venue="binance", perp_venue="best")
    ads = {v: FakeVenue(v, venue_rate) for v in ("bybit", "okx")}
    chosen, _ = asyncio.run(choose_perp_venue(spec, params(allow_short), ads, rate=rate))
    return chosen.perp_venue_choice


def test_entry_side_follows_the_carrys_entry_rule() -> None:
    assert entry_side(params(True), -0.0001) == "buy"
    assert entry_side(params(False), -0.0001) == "sell"  # no spot short: the carry stays out, its next entry sells
    assert entry_side(params(True), 0.0001) == "sell"
    assert entry_side(params(True), None) == entry_side(params(True), math.nan) == "sell"


def test_positive_funding_walks_the_bids_and_keeps_the_best_proceeds() -> None:
    rec = choose(True, 0.0001)
    # amount 1010 / 101 (bybit's last, the set's perp_venue first) = 10 BTC; proceeds 10 x bid x (1 - 0.05 %)
    assert rec["side"] == "sell" and rec["amount"] == pytest.approx(10.0) and rec["funding_rate"] == 0.0001
    scores = {s["venue"]: s["net_quote"] for s in rec["ranking"]}
    assert scores == pytest.approx({"bybit": 999.5, "okx": 994.5025})
    assert rec["venue"] == "bybit"


def test_negative_funding_with_a_spot_short_walks_the_asks_and_keeps_the_least_cost() -> None:
    rec = choose(True, -0.0002)
    # a buy pays 10 x ask x (1 + 0.05 %): bybit 1020.51, okx 1005.5025 -> okx
    assert rec["side"] == "buy" and rec["venue"] == "okx" and rec["funding_rate"] == -0.0002
    scores = {s["venue"]: s["net_quote"] for s in rec["ranking"]}
    assert scores == pytest.approx({"okx": -1005.5025, "bybit": -1020.51})
    assert [s["venue"] for s in rec["ranking"]] == ["okx", "bybit"]
    assert "chosen by best execution (buy 10" in __import__("hedge_core.runner.best_perp", fromlist=["x"]).choice_reason(rec)


def test_negative_funding_without_a_spot_short_still_walks_the_sell() -> None:
    rec = choose(False, -0.0002)
    assert rec["side"] == "sell" and rec["venue"] == "bybit"


def test_without_a_given_rate_the_venues_rate_sets_the_side_and_none_answering_means_sell() -> None:
    assert choose(True, None, venue_rate=-0.0003)["side"] == "buy"
    rec = choose(True, None, venue_rate=None)
    assert rec["side"] == "sell" and rec["funding_rate"] is None


@pytest.mark.integration
def test_a_replay_start_rate_is_the_last_stored_rate_settled_by_the_start(tmp_path: Path) -> None:
    from hedge_core.store import Store

    store = Store(tmp_path / "db.duckdb", hold=True)
    try:
        ts = pd.DatetimeIndex(["2024-01-01T00:00Z", "2024-01-01T08:00Z", "2024-01-01T16:00Z"])
        store.write_funding(pd.DataFrame({"funding_rate": [0.0001, -0.0002, 0.0003]}, index=ts),
                            venue="demo", symbol=SYM)
        assert start_funding_rate(store, "demo", SYM, pd.Timestamp("2024-01-01T08:00Z")) == -0.0002  # at: known
        assert start_funding_rate(store, "demo", SYM, pd.Timestamp("2024-01-01T07:59Z")) == 0.0001
        assert start_funding_rate(store, "demo", SYM, pd.Timestamp("2023-12-31T23:00Z")) is None
        assert start_funding_rate(store, "nowhere", SYM, pd.Timestamp("2024-01-02T00:00Z")) is None
    finally:
        store.close()


@pytest.mark.integration
def test_a_paper_replay_on_negative_funding_chooses_on_the_buy_walk(tmp_path: Path) -> None:
    """In the runner (paper, in process): the store's funding is negative at the replay's start and the set
    allows a spot short, so both paper venues' books are walked for a BUY: price close x (1 + (slip + 10 x
    sqrt(amount / volume)) / 1e4), cost amount x price x (1 + fee) (PaperConfig's impact_k_bps = 10)."""
    from hedge_core.data.demo import seed_demo
    from hedge_core.runner.supervisor import Supervisor
    from hedge_core.store import Store
    from tests.support.best_perp import VENUES, XCARRY, request

    start = pd.Timestamp("2024-01-01T13:00Z")  # the demo's first funding settles at 08:00: known at the start

    store = Store(tmp_path / "db.duckdb", hold=True)
    seed_demo(store, days=3)
    fund = store.read_funding("demo", SYM)
    store.write_funding(pd.DataFrame({"funding_rate": -abs(fund["funding_rate"]) - 1e-4}, index=fund.index),
                        venue="demo", symbol=SYM)
    perp = store.read_bars("demo", SYM, "perp", "1h", end=start)
    close, volume = float(perp["close"].iloc[-1]), float(perp["volume"].iloc[-1])
    amount = 1000.0 / close

    async def go() -> dict:
        sup = Supervisor(store, tmp_path / "home", dms_timeout_s=600.0)
        out = await sup.start_hedge(request(params_inline={**XCARRY, "allow_spot_short": True}, dry_run=True,
                                            start=str(start), end=str(start + pd.Timedelta(hours=5))))
        return out["perp_venue_choice"]

    try:
        rec = asyncio.run(go())
    finally:
        store.close()
    assert rec["funding_rate"] is not None and rec["funding_rate"] < 0, rec
    assert rec["side"] == "buy"
    for s in rec["ranking"]:
        v = VENUES[s["venue"]]
        px = close * (1 + (v["slippage_bps"] + 10.0 * math.sqrt(amount / volume)) / 1e4)
        assert s["net_quote"] == pytest.approx(-amount * px * (1 + v["perp_taker_fee"]), rel=1e-9)
    assert rec["venue"] == "bybit"
