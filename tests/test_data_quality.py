"""Quality report against hand-built frames with known gaps, duplicates, outliers and off-schedule funding."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hedge_core.data.demo import seed_demo
from hedge_core.data.importers import SeriesKey
from hedge_core.data.quality import bar_quality, funding_quality, report, robust_z, store_report
from hedge_core.store import Store


def bars(ts: list[str], close: list[float] | None = None) -> pd.DataFrame:
    idx = pd.DatetimeIndex(pd.to_datetime(ts, utc=True), name="ts")
    c = np.asarray(close if close is not None else np.linspace(100, 101, len(ts)), dtype=float)
    return pd.DataFrame({"open": c, "high": c * 1.001, "low": c * 0.999, "close": c, "volume": 1.0}, index=idx)


def test_gaps_coverage_duplicates() -> None:
    hours = [f"2024-01-01T{h:02d}:00Z" for h in (0, 1, 2, 5, 6, 6, 7, 10)]  # missing 3,4 and 8,9; 6 twice
    q = bar_quality(bars(hours), "1h")
    assert q["expected"] == 11 and q["present"] == 7 and q["rows"] == 8
    assert q["duplicates"] == 1
    assert q["coverage"] == pytest.approx(7 / 11)
    assert [(g["start"].hour, g["end"].hour, g["missing"]) for g in q["gaps"]] == [(3, 4, 2), (8, 9, 2)]
    assert q["missing"] == 4


def test_outlier_by_robust_z() -> None:
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.001, 500)
    r[300] = 0.05  # a 5 % hourly jump: about 50 robust sigmas
    close = 100 * np.exp(np.cumsum(r))
    ts = pd.date_range("2024-01-01T00:00Z", periods=500, freq="h")
    q = bar_quality(bars(list(ts.astype(str)), list(close)), "1h", z_threshold=15)
    assert [o["ts"] for o in q["outliers"]] == [ts[300]]
    # independent robust z: scipy's MAD (normal-scaled) on the same returns
    from scipy.stats import median_abs_deviation

    lr = np.diff(np.log(close))
    z_ref = (lr - np.median(lr)) / median_abs_deviation(lr, scale="normal")
    assert q["outliers"][0]["z"] == pytest.approx(z_ref[299], rel=1e-3)
    np.testing.assert_allclose(robust_z(lr), z_ref, rtol=1e-3)
    assert bar_quality(bars(list(ts.astype(str)), list(close)), "1h", z_threshold=1e9)["outliers"] == []


def test_ohlc_errors_counted() -> None:
    df = bars(["2024-01-01T00:00Z", "2024-01-01T01:00Z"])
    df.loc[df.index[1], "high"] = df["close"].iloc[1] * 0.9
    assert bar_quality(df, "1h")["ohlc_errors"] == 1


def test_funding_schedule() -> None:
    t = pd.to_datetime(["2024-01-01T00:00Z", "2024-01-01T08:00Z", "2024-01-01T11:00Z", "2024-01-02T00:00Z"],
                       utc=True)
    df = pd.DataFrame({"funding_rate": 0.0001, "interval_hours": 8.0}, index=pd.DatetimeIndex(t, name="ts"))
    q = funding_quality(df)
    assert [o["ts"].hour for o in q["off_schedule"]] == [11]
    assert q["expected"] == 4 and q["missing"] == 1  # 16:00 missing
    assert q["gaps"][0]["start"] == pd.Timestamp("2024-01-01T16:00Z")
    # a 4h venue: 04:00 is on its schedule
    t4 = pd.date_range("2024-01-01T00:00Z", periods=4, freq="4h")
    df4 = pd.DataFrame({"funding_rate": 0.0001, "interval_hours": 4.0}, index=pd.DatetimeIndex(t4, name="ts"))
    q4 = funding_quality(df4)
    assert q4["off_schedule"] == [] and q4["coverage"] == 1.0
    assert len(funding_quality(df4, interval_hours=8.0)["off_schedule"]) == 2  # 04:00 and 12:00 under 8h


def test_report_table_and_json() -> None:
    k1 = SeriesKey("x", "BTC/USDT", "spot", "1h")
    k2 = SeriesKey("x", "BTC/USDT:USDT", "funding", None)
    fr = pd.DataFrame({"funding_rate": [0.0001, 0.0002], "interval_hours": 8.0},
                      index=pd.DatetimeIndex(pd.to_datetime(["2024-01-01T00:00Z", "2024-01-01T09:00Z"], utc=True),
                                             name="ts"))
    table, details = report({k1: bars(["2024-01-01T00:00Z", "2024-01-01T02:00Z"]), k2: fr})
    assert table.loc[0, "n_gaps"] == 1 and table.loc[0, "missing"] == 1
    assert table.loc[1, "off_schedule"] == 1
    text = json.dumps(details)  # JSON-ready
    assert json.loads(text)[0]["gaps"][0]["start"] == "2024-01-01T01:00:00+00:00"


def test_store_report_on_demo() -> None:
    st = Store(":memory:")
    seed_demo(st, days=3, timeframe="1h", seed=5)
    table, _ = store_report(st)
    assert len(table) == 8
    assert (table["coverage"] == 1.0).all() and (table["off_schedule"] == 0).all()
