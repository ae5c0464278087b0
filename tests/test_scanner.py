"""The funding-carry scanner (hedge_core.analytics.scanner): hand-checked numbers, ranking, intervals, bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hedge_core.analytics.scanner import (
    DEFAULT_FEES,
    PAPER_FEES,
    RESULT_COLUMNS,
    ScanConfig,
    VenueFees,
    scan,
    spread_history,
)
from hedge_core.errors import InvalidInput

T0 = pd.Timestamp("2024-01-01", tz="UTC")
BTC = "BTC/USDT:USDT"


def events(venue: str, rates: list[float] | np.ndarray, *, hours: float = 8.0, symbol: str = BTC,
           start: pd.Timestamp = T0) -> pd.DataFrame:
    """Funding events every ``hours`` from ``start + hours`` (a settlement ends each interval)."""
    ts = start + pd.to_timedelta(np.arange(1, len(rates) + 1) * hours, unit="h")
    return pd.DataFrame({"ts": ts, "venue": venue, "symbol": symbol, "funding_rate": np.asarray(rates, float),
                         "interval_hours": hours})


def row(out: pd.DataFrame, **match: str) -> pd.Series:
    m = np.ones(len(out), bool)
    for k, v in match.items():
        m &= (out[k] == v).to_numpy()
    assert m.sum() == 1, (match, out[list(match)])
    return out[m].iloc[0]


def test_same_venue_spot_perp_hand_checked() -> None:
    # binance BTC perp, 0.01 % every 8h for 10 days (30 settlements)
    # APR = 0.0001 x 8760 / 8 = 0.1095
    # round trip = open+close spot (0.1 % fee + 0.01 % slip) and perp (0.05 % + 0.01 %):
    #   2 x (0.001 + 0.0001) + 2 x (0.0005 + 0.0001) = 0.0022 + 0.0012 = 0.0034
    # net over 30 days = 0.1095 x 30 / 365 - 0.0034 = 0.009 - 0.0034 = 0.0056
    # net APR = 0.0056 x 365 / 30 = 0.0681333; break-even = 0.0034 / 0.1095 x 365 = 11.3333 days
    f = events("binance", [0.0001] * 30)
    out = scan(f, ScanConfig(lookback_days=30, hold_days=30, min_history_days=0))
    assert list(out.columns) == RESULT_COLUMNS and len(out) == 1
    r = out.iloc[0]
    assert (r["kind"], r["direction"], r["long_leg"], r["short_leg"]) == (
        "spot_perp", "long spot binance / short perp binance", "spot", "perp")
    assert r["apr_received"] == pytest.approx(0.1095, rel=1e-12)
    assert r["round_trip"] == pytest.approx(0.0034, rel=1e-12)
    assert r["net_carry"] == pytest.approx(0.0056, rel=1e-9)
    assert r["net_apr"] == pytest.approx(0.0056 * 365 / 30, rel=1e-9)
    assert r["break_even_days"] == pytest.approx(0.0034 / 0.1095 * 365, rel=1e-9)
    assert r["share_favourable"] == 1.0 and r["spread_std"] == pytest.approx(0.0, abs=1e-15)
    assert r["n"] == 30 and r["history_days"] == pytest.approx(10.0)
    assert r["short_interval_h"] == 8.0 and math.isnan(r["long_interval_h"])


def test_negative_funding_shorts_spot_and_pays_borrow() -> None:
    # -0.01 %/8h: the long perp receives 0.1095/yr; shorting spot costs borrow 5 %/yr
    # net = (0.1095 - 0.05) x 30 / 365 - 0.0034 = 0.0048904110 - 0.0034 = 0.0014904110
    f = events("binance", [-0.0001] * 30)
    r = scan(f, ScanConfig(hold_days=30, min_history_days=0, borrow_apr=0.05)).iloc[0]
    assert r["direction"] == "short spot binance / long perp binance"
    assert (r["long_leg"], r["short_leg"], r["borrow_apr"]) == ("perp", "spot", 0.05)
    assert r["apr_received"] == pytest.approx(0.1095)
    assert r["net_carry"] == pytest.approx(0.0595 * 30 / 365 - 0.0034, rel=1e-9)
    assert r["net_carry"] == pytest.approx(0.0014904110, rel=1e-7)


def test_cross_venue_1h_against_8h_hand_checked() -> None:
    # binance settles every 8h: 0.01 %, 0.02 %, 0.01 %, 0.02 % -> APR 0.1095, 0.219, 0.1095, 0.219
    # bybit settles every HOUR: 0.002 %/h -> APR 0.00002 x 8760 = 0.1752 (8 events per 8h bucket)
    # spread per 8h bucket (short bybit - long binance): +0.0657, -0.0438, +0.0657, -0.0438
    #   mean = 0.01095 (>= 0: short bybit, long binance); share > 0 = 0.5
    #   std (ddof 1) = 0.05475 x sqrt(4/3) = 0.0632199
    # round trip = 2 x (0.0005 + 0.0001) + 2 x (0.00055 + 0.0001) = 0.0012 + 0.0013 = 0.0025
    # net over 30 d = 0.01095 x 30 / 365 - 0.0025 = 0.0009 - 0.0025 = -0.0016
    f = pd.concat([events("binance", [0.0001, 0.0002, 0.0001, 0.0002]),
                   events("bybit", [0.00002] * 32, hours=1.0)])
    out = scan(f, ScanConfig(hold_days=30, min_history_days=0, kinds=("perp_perp",)))
    r = row(out, kind="perp_perp")
    assert r["direction"] == "long perp binance / short perp bybit"
    assert (r["long_interval_h"], r["short_interval_h"]) == (8.0, 1.0)
    assert r["apr_received"] == pytest.approx(0.01095, rel=1e-9)
    assert r["share_favourable"] == 0.5
    assert r["spread_std"] == pytest.approx(0.05475 * math.sqrt(4 / 3), rel=1e-9)
    assert r["round_trip"] == pytest.approx(0.0025, rel=1e-12)
    assert r["net_carry"] == pytest.approx(-0.0016, rel=1e-9)
    assert r["n"] == 4 and r["history_days"] == pytest.approx(4 * 8 / 24)
    h = spread_history(f, r)
    np.testing.assert_allclose(h["spread"], [0.0657, -0.0438, 0.0657, -0.0438], rtol=1e-9)
    np.testing.assert_allclose(h["apr_short"], 0.1752, rtol=1e-12)
    assert list(h.index) == list(T0 + pd.to_timedelta([8, 16, 24, 32], unit="h"))


def test_equal_apr_on_1h_and_8h_venues_is_no_spread() -> None:
    # 0.00125 %/h on an hourly venue = 0.01 %/8h on an 8h venue = 10.95 %/yr: the spread is 0,
    # so the perp/perp carry is just minus the round trip (0.0025, see above)
    f = pd.concat([events("binance", [0.0001] * 9), events("bybit", [0.0000125] * 72, hours=1.0)])
    out = scan(f, ScanConfig(min_history_days=0))
    r = row(out, kind="perp_perp")
    assert r["apr_received"] == pytest.approx(0.0, abs=1e-12)
    assert r["net_carry"] == pytest.approx(-0.0025, rel=1e-9)
    sp = {v: row(out, kind="spot_perp", venue_pair=v)["apr_received"] for v in ("binance", "bybit")}
    assert sp["binance"] == pytest.approx(0.1095) and sp["bybit"] == pytest.approx(0.1095)
    # hourly spot/perp pays bybit's own fees: spot 0.1 %, perp 0.055 % -> 0.0022 + 2 x 0.00065 = 0.0035
    assert row(out, kind="spot_perp", venue_pair="bybit")["round_trip"] == pytest.approx(0.0035)


def test_ranking_order_filters_and_top() -> None:
    f = pd.concat([
        events("binance", [0.0003] * 90, symbol="SOL/USDT:USDT"),  # 32.85 %/yr
        events("binance", [0.0001] * 90),  # 10.95 %/yr
        events("binance", [0.0002] * 90, symbol="ETH/USDT:USDT"),  # 21.9 %/yr
        events("binance", [0.0009] * 6, symbol="XRP/USDT:USDT"),  # the best APR but only 2 days of history
    ])
    out = scan(f, ScanConfig(min_history_days=7))
    assert list(out["symbol"]) == ["SOL/USDT:USDT", "ETH/USDT:USDT", BTC]
    assert list(out["rank"]) == [1, 2, 3] and out["net_carry"].is_monotonic_decreasing
    assert "XRP/USDT:USDT" in set(scan(f, ScanConfig(min_history_days=0))["symbol"])
    top = scan(f, ScanConfig(top=2))
    assert list(top["symbol"]) == ["SOL/USDT:USDT", "ETH/USDT:USDT"]
    assert top["row_id"].is_unique and top["row_id"].iloc[0] == "spot_perp|SOL/USDT:USDT|binance:spot|binance:perp"


def test_lookback_window_and_as_of_use_only_known_funding() -> None:
    # 20 days at 0.01 %, then 10 days at 0.05 %; as_of at day 20 must not see the later rates
    f = events("binance", [0.0001] * 60 + [0.0005] * 30)
    at20 = scan(f, ScanConfig(lookback_days=10, as_of=T0 + pd.Timedelta(days=20))).iloc[0]
    assert at20["apr_received"] == pytest.approx(0.1095) and at20["n"] == 30
    assert at20["history_days"] == pytest.approx(20.0)
    last = scan(f, ScanConfig(lookback_days=10)).iloc[0]
    assert last["apr_received"] == pytest.approx(0.0005 * 3 * 365)
    # a 15-day window mixes both: (15 x 0.1095 ... ) = (15 x 3 events: 15 at 0.0001, 30 at 0.0005)
    mixed = scan(f, ScanConfig(lookback_days=15)).iloc[0]
    assert mixed["apr_received"] == pytest.approx((15 * 0.1095 + 30 * 0.5475) / 45)


def test_venue_filter_and_fees_of_an_unknown_venue() -> None:
    f = pd.concat([events("binance", [0.0001] * 30), events("demo", [0.0001] * 30),
                   events("okx", [0.0001] * 30)])
    out = scan(f, ScanConfig(venues=("binance", "DEMO"), min_history_days=0))
    assert set(out["long_venue"]) | set(out["short_venue"]) == {"binance", "demo"}
    demo = row(out, kind="spot_perp", venue_pair="demo")
    assert demo["round_trip"] == pytest.approx(2 * (PAPER_FEES.spot_taker + 1e-4) + 2 * (PAPER_FEES.perp_taker + 1e-4))
    custom = scan(f, ScanConfig(fees={"okx": VenueFees(0.0, 0.0)}, slippage_rate=0.0, venues=("okx",)))
    assert custom.iloc[0]["round_trip"] == 0.0


def test_paper_fees_match_the_paper_venue() -> None:
    from hedge_core.exchange.paper.core import PaperConfig

    cfg = PaperConfig()
    assert (PAPER_FEES.spot_taker, PAPER_FEES.perp_taker) == (cfg.spot_taker_fee, cfg.perp_taker_fee)
    assert DEFAULT_FEES["binance"] == PAPER_FEES  # the paper venue models Binance VIP0


def test_smallest_hedgeable_size_from_both_legs() -> None:
    # price 40 000: spot needs max(0.00001, 5 / 40000 = 0.000125); perp max(0.001, 100 / 40000 = 0.0025)
    # -> 0.0025 base, rounded UP to the coarser lot 0.001 -> 0.003 base = 120 USDT
    inst = pd.DataFrame({"venue": ["binance", "binance", "bybit"], "symbol": ["BTC/USDT", BTC, BTC],
                         "kind": ["spot", "perp", "perp"], "min_qty": [0.00001, 0.001, 0.004],
                         "min_notional": [5.0, 100.0, 5.0], "lot_size": [0.00001, 0.001, 0.001],
                         "source": ["store", "store", "store"]})
    prices = pd.DataFrame({"venue": ["binance"], "symbol": [BTC], "price": [40_000.0]})
    f = pd.concat([events("binance", [0.0001] * 30), events("bybit", [0.0003] * 30)])
    out = scan(f, ScanConfig(min_history_days=0), instruments=inst, prices=prices)
    sp = row(out, kind="spot_perp", venue_pair="binance")
    assert sp["min_size_base"] == pytest.approx(0.003) and sp["min_size_quote"] == pytest.approx(120.0)
    assert sp["size_source"] == "store"
    pp = row(out, kind="perp_perp")  # bybit's min qty 0.004 dominates; price from binance (same base)
    assert pp["min_size_base"] == pytest.approx(0.004) and pp["min_size_quote"] == pytest.approx(160.0)
    bybit_sp = row(out, kind="spot_perp", venue_pair="bybit")  # no bybit spot instrument row
    assert math.isnan(bybit_sp["min_size_base"]) and bybit_sp["size_source"].startswith("unknown")


def test_min_size_needs_a_price_when_a_min_notional_binds() -> None:
    eth = "ETH/USDT:USDT"
    inst = pd.DataFrame({"venue": ["okx", "okx"], "symbol": ["ETH/USDT", eth], "kind": ["spot", "perp"],
                         "min_qty": [0.0001, np.nan], "min_notional": [np.nan, 20.0], "lot_size": [0.0001, 0.01]})
    f = events("okx", [0.0001] * 30, symbol=eth)
    no_price = scan(f, ScanConfig(min_history_days=0), instruments=inst).iloc[0]
    assert math.isnan(no_price["min_size_base"]) and "no price for okx ETH/USDT:USDT" in no_price["size_source"]
    # price 2 500: perp 20 / 2500 = 0.008 (no min qty recorded) vs spot 0.0001 -> 0.008 -> lot 0.01 -> 0.01 ETH
    px = pd.DataFrame({"venue": ["binance"], "symbol": ["ETH/USDT"], "price": [2_500.0]})  # another venue's spot
    r = scan(f, ScanConfig(min_history_days=0), instruments=inst, prices=px).iloc[0]
    assert r["min_size_base"] == pytest.approx(0.01) and r["min_size_quote"] == pytest.approx(25.0)


def test_inverse_perps_only_pair_across_venues() -> None:
    f = pd.concat([events("binance", [0.0001] * 30, symbol="BTC/USD:BTC"),
                   events("okx", [0.0002] * 30, symbol="BTC/USD:BTC")])
    out = scan(f, ScanConfig(min_history_days=0))
    assert list(out["kind"]) == ["perp_perp"] and out.iloc[0]["direction"] == "long perp binance / short perp okx"


@pytest.mark.parametrize("kwargs, field", [
    ({"lookback_days": 0}, "lookback_days"), ({"lookback_days": "x"}, "lookback_days"),
    ({"hold_days": -1}, "hold_days"), ({"hold_days": 1e9}, "hold_days"),
    ({"min_history_days": -1}, "min_history_days"), ({"top": 0}, "top"), ({"top": 2.5}, "top"),
    ({"slippage_rate": 0.5}, "slippage_rate"), ({"borrow_apr": 1.0}, "borrow_apr"),
    ({"kinds": ("spot_spot",)}, "kinds"), ({"venues": ()}, "venues"),
    ({"as_of": pd.Timestamp("2024-01-01")}, "as_of"),
])
def test_bad_config_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as e:
        ScanConfig(**kwargs)
    assert e.value.field == field and e.value.allowed


def test_bad_frames_name_the_field() -> None:
    good = events("binance", [0.0001] * 3)
    with pytest.raises(InvalidInput, match="funding.columns"):
        scan(good.drop(columns="funding_rate"))
    with pytest.raises(InvalidInput, match="funding_rate"):
        scan(good.assign(funding_rate=[0.0001, np.nan, 0.0001]))
    with pytest.raises(InvalidInput, match="interval_hours"):
        scan(good.assign(interval_hours=0.0))
    with pytest.raises(InvalidInput, match="ts"):
        scan(good.assign(ts=good["ts"].dt.tz_localize(None)))
    with pytest.raises(InvalidInput, match="venues.*binance"):
        scan(good, ScanConfig(venues=("kraken",)))
    with pytest.raises(InvalidInput, match="as_of"):
        scan(good, ScanConfig(as_of=T0 - pd.Timedelta(days=1)))
    with pytest.raises(InvalidInput, match="funding"):
        scan(good.iloc[:0])
    with pytest.raises(InvalidInput, match="fees.perp_taker"):
        VenueFees(0.001, -0.1)


def test_iso_strings_and_missing_interval_column_default_to_8h() -> None:
    f = events("binance", [0.0001] * 30).drop(columns="interval_hours")
    f["ts"] = f["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    r = scan(f, ScanConfig(min_history_days=0)).iloc[0]
    assert r["short_interval_h"] == 8.0 and r["apr_received"] == pytest.approx(0.1095)


def test_shared_cross_venue_funding_matches_its_documented_mean() -> None:
    """On the real shared file: Binance BTC's mean funding over the whole sample window is "about 10.5 %"
    a year (../shared/data/README.md, checked properties); every venue pair of a symbol is ranked."""
    from hedge_core.data.shared import require_shared_data
    from hedge_core.data.symbols import unified_symbol

    try:
        root = require_shared_data()
    except FileNotFoundError as exc:  # a fresh clone without ../shared/data
        pytest.skip(f"shared data absent: {exc}")
    path = next(iter(sorted((root / "sample_2023-01_2024-06").glob("crossvenue_funding_*.csv"))), None)
    if path is None:
        pytest.skip("no cross-venue funding file in the shared sample window")
    f = pd.read_csv(path)
    f["symbol"] = [unified_symbol(s, "funding") for s in f["symbol"]]
    out = scan(f, ScanConfig(lookback_days=3650, hold_days=30))
    btc = row(out, kind="spot_perp", venue_pair="binance", symbol=BTC)
    assert btc["apr_received"] == pytest.approx(0.105, abs=0.003)
    assert btc["history_days"] == pytest.approx(547, abs=1)
    assert (out["kind"] == "perp_perp").sum() == 4 * 3  # 4 symbols x 3 venue pairs
    assert (out["kind"] == "spot_perp").sum() == 2 * 3  # linear BTC and ETH on 3 venues
