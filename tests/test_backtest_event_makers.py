"""The event-driven replay's fast constructors build the same Bar / MarketUpdate as the dataclasses."""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType

import pandas as pd
import pytest

from hedge_core.backtest.event import _BAR_FIELDS, _UPDATE_FIELDS, _event_makers
from hedge_core.engine.events import MarketUpdate
from hedge_core.types import Bar, MarketKind


def test_field_lists_are_the_dataclasses_fields():
    assert _BAR_FIELDS == tuple(f.name for f in dataclasses.fields(Bar))
    assert _UPDATE_FIELDS == tuple(f.name for f in dataclasses.fields(MarketUpdate))


def test_made_objects_equal_the_constructed_ones_and_stay_frozen():
    bar, update = _event_makers("demo", "1m")
    t = pd.Timestamp("2024-03-01T00:01Z")
    b = bar(t - pd.Timedelta(minutes=1), "BTC/USDT:USDT", MarketKind.MARK, 1.0, 2.0, 0.5, 1.5, 0.0)
    ref = Bar(t - pd.Timedelta(minutes=1), "demo", "BTC/USDT:USDT", MarketKind.MARK, 1.0, 2.0, 0.5, 1.5, 0.0, "1m")
    assert type(b) is Bar and b == ref and hash(b) == hash(ref) and repr(b) == repr(ref)
    an = MappingProxyType({"beta": 1.1})
    nts = pd.Timestamp("2024-03-01T08:00Z")
    m = update(t, 60_000.0, 60_010.0, 60_005.0, 3.0, 4.0, 0.0001, nts, 8.0, an)
    ref_m = MarketUpdate(ts=t, spot=60_000.0, perp=60_010.0, mark=60_005.0, spot_volume=3.0, perp_volume=4.0,
                         funding_rate=0.0001, next_funding_ts=nts, funding_interval_hours=8.0, analytics=an)
    assert type(m) is MarketUpdate and m == ref_m and math.isnan(m.next_funding_rate)
    assert m.mark_or_perp == 60_005.0 and m.expected_funding_rate == 0.0001
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.spot = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.close = 1.0  # type: ignore[misc]
