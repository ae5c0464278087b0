"""A perp pair on live bars does not enter before BOTH venues' rates are known, whatever the time of day.

The runner's market builder for a pair on bars (``MarketBuilder(first_venue=...)``, hedge_core/runner/market.py)
gives the second leg's last settled rate as the update's ``funding_rate``; the first leg's comes from its own
venue's settlements (NaN until one). Before, the second leg's rate was 0.0 until its venue settled, so the
pair's entry rule ("both venues' rates known", ``engine.strategies.xcarry.decide_perp_perp``) saw a KNOWN 0
and entered on the spread against it: with a 4 h first venue and an 8 h second, bars starting at 08:00 gave
the first settlement at 12:00 on the first venue alone and the pair entered short the first venue (its
0.0001 per 4 h against a fake 0), where both rates known give the opposite direction. The pair-on-bars
runner tests entered one way or the other depending on the hour they ran at. Fixed timestamps here.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from hedge_core.engine.strategies.xcarry import pair_aprs
from hedge_core.runner.market import MarketBuilder
from hedge_core.types import Bar, FundingEvent, MarketKind

pytestmark = pytest.mark.unit
P = "BTC/USDT:USDT"
H = pd.Timedelta(hours=1)
T = pd.Timestamp("2026-03-02 08:00", tz="UTC")


def _bars(mb: MarketBuilder, label: pd.Timestamp) -> None:
    """Both venues' perp and mark bars labelled ``label`` (known at ``label + 1h``), in the feed's order."""
    for venue, close in (("binance", 40_010.0), ("bybit", 40_090.0)):
        for kind in (MarketKind.PERP, MarketKind.MARK):
            mb.add_bar(Bar(label, venue, P, kind, close, close, close, close, 1.0, "1h"))


@pytest.mark.parametrize("start_hour", range(24))
def test_the_second_legs_rate_is_unknown_until_its_venue_settles_at_any_start_hour(start_hour):
    # binance (first leg) settles 0.0001 every 4 h, bybit (second) 0.0005 every 8 h, both on the 00:00 grid
    start = T.floor("1D") + start_hour * H
    mb = MarketBuilder(P, P, "1h", first_venue="binance")
    seen_b = False
    for k in range(24):
        _bars(mb, start + k * H)
        t = start + (k + 1) * H  # the instant these bars are known at
        mu = mb.take()
        assert mu is not None and mu.ts == t
        if not seen_b:
            assert math.isnan(mu.funding_rate), (t, mu.funding_rate)  # before: 0.0, a rate never settled
            assert math.isnan(pair_aprs(mu)[1])  # so the pair's entry rule holds (both rates known)
        else:
            assert mu.funding_rate == 0.0005 and mu.funding_interval_hours == 8.0, t
        if t.hour % 4 == 0:  # the first venue's settlement: its own leg's rate, never the market's
            mb.settle(FundingEvent(t, "binance", P, 0.0001, 4.0))
        if t.hour % 8 == 0:
            mb.settle(FundingEvent(t, "bybit", P, 0.0005, 8.0))
            seen_b = True
    assert seen_b  # 24 h of bars always hold an 8 h settlement


def test_a_spot_perp_builder_keeps_its_zero_rate_before_the_first_settlement():
    # one venue's spot and perp (no first_venue): unchanged, the market's rate is 0.0 until a settlement
    mb = MarketBuilder("BTC/USDT", P, "1h")
    for kind, sym in ((MarketKind.SPOT, "BTC/USDT"), (MarketKind.PERP, P)):
        mb.add_bar(Bar(T, "binance", sym, kind, 1.0, 1.0, 1.0, 1.0, 1.0, "1h"))
    mu = mb.take()
    assert mu is not None and mu.funding_rate == 0.0
