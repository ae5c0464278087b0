"""Property tests of the canonical-frame validation (pure functions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedge_core.data.validate import canonical_bars, canonical_funding, epoch_unit, parse_timestamps, timeframe_delta
from hedge_core.errors import DataError


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), seed=st.integers(0, 10_000), dup=st.integers(0, 5))
def test_shuffled_with_exact_duplicates_gives_sorted_unique(n: int, seed: int, dup: int) -> None:
    rng = np.random.default_rng(seed)
    hours = np.sort(rng.choice(1000, size=n, replace=False))
    ts = pd.Timestamp("2024-01-01T00:00Z") + pd.to_timedelta(hours, unit="h")
    lo = rng.uniform(1, 100, n)
    hi = lo * (1 + rng.uniform(0, 0.1, n))
    truth = pd.DataFrame({"ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": lo, "high": hi, "low": lo,
                          "close": hi, "volume": rng.uniform(0, 5, n)})
    extra = truth.sample(n=min(dup, n), random_state=seed)
    raw = pd.concat([truth, extra]).sample(frac=1.0, random_state=seed + 1)
    out = canonical_bars(raw, timeframe="1h")
    assert out.index.is_monotonic_increasing and out.index.is_unique and len(out) == n
    assert list(out.index) == list(ts)
    np.testing.assert_array_equal(out["close"].to_numpy(), hi)  # values bit-exact


@pytest.mark.parametrize("value,unit", [(1_704_067_200, "s"), (1_704_067_200_000, "ms"),
                                        (1_704_067_200_000_000, "us"), (1_704_067_200_000_000_000, "ns")])
def test_epoch_units_detected(value: int, unit: str) -> None:
    assert epoch_unit(np.array([float(value)])) == unit
    got = parse_timestamps(pd.Series([value]), file=None, column="ts")
    assert got.iloc[0] == pd.Timestamp("2024-01-01T00:00Z")


def test_offsets_normalised_and_compact_form() -> None:
    got = parse_timestamps(pd.Series(["2024-01-01T02:00:00+0200", "2024-01-01T03:00:00+02:00"]), file=None,
                           column="ts")
    assert list(got) == [pd.Timestamp("2024-01-01T00:00Z"), pd.Timestamp("2024-01-01T01:00Z")]


def test_tz_aware_datetimes_accepted_naive_rejected() -> None:
    aware = pd.Series(pd.date_range("2024-01-01", periods=2, freq="h", tz="Europe/Berlin"))
    assert parse_timestamps(aware, file=None, column="ts").iloc[0] == pd.Timestamp("2023-12-31T23:00Z")
    with pytest.raises(DataError, match="naive"):
        parse_timestamps(pd.Series(pd.date_range("2024-01-01", periods=2, freq="h")), file="f", column="ts")


def test_funding_defaults_and_checks() -> None:
    df = pd.DataFrame({"ts": ["2024-01-01T00:00:00.017Z"], "funding_rate": [0.0001]})
    out = canonical_funding(df, interval_hours=4.0)
    assert out.index[0] == pd.Timestamp("2024-01-01T00:00Z") and out["interval_hours"].iloc[0] == 4.0
    with pytest.raises(DataError) as e:
        canonical_funding(pd.DataFrame({"ts": ["2024-01-01T00:00Z"], "funding_rate": [0.0001],
                                        "interval_hours": [0.0]}), file="f")
    assert e.value.column == "interval_hours" and e.value.row == 1


def test_timeframes() -> None:
    assert timeframe_delta("5m") == pd.Timedelta(minutes=5)
    assert timeframe_delta("1d") == pd.Timedelta(days=1)
    for bad in ("1M", "0h", "h", "1y"):
        with pytest.raises(DataError, match="timeframe"):
            timeframe_delta(bad)
