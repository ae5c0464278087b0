"""A runner replay of two perp legs gives each leg the funding its OWN venue announces
(``PerpPairPaper.replay_funding``, used by ``runner.hedge.HedgeTask._market``): the last rate that venue settled
strictly before the instant, its interval and its NEXT settlement on its own grid, whatever the replayed data
venue's grid is. Hand-checked on a first venue settling every 8h at 00:00 and a second every 4h at 02:00, and
equal, instant by instant, to what the pair backtest gives its market updates (``xvenue_pair.pair_timelines``)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hedge_core.exchange.routed_pair import PerpPairPaper
from tests.support.perp_pair import PERP, T0, perp_venue

pytestmark = pytest.mark.unit
H = pd.Timedelta(hours=1)


def _funding(hours: list[int], rates: list[float], interval: float) -> pd.DataFrame:
    return pd.DataFrame({"funding_rate": rates, "interval_hours": interval},
                        index=pd.DatetimeIndex([T0 + h * H for h in hours]))


# A (first leg): every 8h at 00:00 from day 0; B (second): every 4h at 02:00, ..., 22:00, a new rate each time
FA = _funding([0, 8, 16, 24], [0.0001, 0.0002, 0.0003, 0.0004], 8.0)
FB = _funding(list(range(2, 24, 4)), [0.00001 * (k + 1) for k in range(6)], 4.0)


def _pair(second: pd.DataFrame | None = FB) -> PerpPairPaper:
    return PerpPairPaper(perp_venue("bybit", 1.0), perp_venue("okx", 1.0), first_funding=FA, second_funding=second)


def test_each_leg_announces_its_own_venues_next_settlement_and_rate_by_hand():
    f = _pair().replay_funding(T0 + 3 * H)
    # the data venue's 8h grid would say 08:00 for the second leg; its venue settles next at 06:00
    assert f["next_funding_ts"] == T0 + 6 * H and f["funding_interval_hours"] == 4.0
    assert f["funding_rate"] == 0.00001  # B's 02:00 rate, settled before 03:00
    assert f["spot_next_funding_ts"] == T0 + 8 * H and f["spot_funding_interval_hours"] == 8.0
    assert f["spot_funding_rate"] == 0.0001  # A's 00:00 rate
    # AT a settlement time the engine acts before the venue settles: the rate is the one before, the next the one after
    at6 = _pair().replay_funding(T0 + 6 * H)
    assert at6["funding_rate"] == 0.00001 and at6["next_funding_ts"] == T0 + 10 * H
    # before the second venue's first settlement in its series its rate is unknown (no pair enters on it)
    early = _pair().replay_funding(T0 + 1 * H)
    assert math.isnan(early["funding_rate"]) and early["next_funding_ts"] == T0 + 2 * H
    # past B's last time (22:00): its own grid goes on (02:00 next day, not the data venue's 00:00)
    late = _pair().replay_funding(T0 + 25 * H)
    assert late["next_funding_ts"] == T0 + 26 * H and late["funding_rate"] == pytest.approx(0.00006, abs=1e-15)
    assert late["spot_next_funding_ts"] == T0 + 32 * H and late["spot_funding_rate"] == 0.0004


def test_a_second_venue_without_its_own_series_is_known_by_the_data_venues_series_it_settles():
    f = _pair(second=None).replay_funding(T0 + 3 * H)  # no data venue series either: the market builder's stand
    assert set(f) == {"spot_funding_rate", "spot_funding_interval_hours", "spot_next_funding_ts"}
    data = _funding([8, 16], [0.0007, 0.0008], 8.0)
    fb = PerpPairPaper(perp_venue("bybit", 1.0), perp_venue("okx", 1.0), first_funding=FA, data_funding=data)
    assert fb.second_funding is None  # B still settles the replay's data venue events (runner.supervisor warns)
    early, later = fb.replay_funding(T0 + 3 * H), fb.replay_funding(T0 + 9 * H)
    assert math.isnan(early["funding_rate"]) and early["next_funding_ts"] == T0 + 8 * H
    assert later["funding_rate"] == 0.0007 and later["next_funding_ts"] == T0 + 16 * H
    assert later["funding_interval_hours"] == 8.0


def test_the_replays_funding_fields_equal_the_pair_backtests_at_every_instant(tmp_path):
    from hedge_core.analytics.inputs import InputSpec
    from hedge_core.backtest.timeline import load_market
    from hedge_core.backtest.xvenue_pair import pair_market, pair_timelines
    from hedge_core.data.demo import seed_demo
    from hedge_core.store import Store

    with Store(tmp_path / "db.duckdb") as st:
        seed_demo(st, days=3)
        prices = load_market(st, venue="demo", perp_symbol=PERP)
    market = pair_market(prices, FA, FB, first_venue="bybit", perp_venue="okx")
    start = pd.Timestamp("2024-01-01T01:00Z")
    tl, ta = pair_timelines(market, start=start, end=None, warmup=pd.Timedelta(0), spec=InputSpec())
    pair = _pair()
    checked = 0
    for i in np.flatnonzero(tl.priced):
        t = pd.Timestamp(int(tl.ts[i]), tz="UTC")
        f = pair.replay_funding(t)
        assert f["next_funding_ts"] == pd.Timestamp(int(tl.next_fund_ns[i]), tz="UTC"), t
        assert f["spot_next_funding_ts"] == pd.Timestamp(int(ta.next_fund_ns[i]), tz="UTC"), t
        assert f["funding_interval_hours"] == tl.interval_hours and f["spot_funding_interval_hours"] == ta.interval_hours
        rb = f["funding_rate"] if math.isfinite(f["funding_rate"]) else 0.0  # the timeline's 0.0: nothing settled yet
        assert rb == pytest.approx(tl.last_rate[i], abs=1e-15), t
        assert f["spot_funding_rate"] == pytest.approx(ta.last_rate[i], abs=1e-15), t
        assert math.isfinite(f["spot_funding_rate"])
        checked += 1
    assert checked > 40
