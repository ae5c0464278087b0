"""The panel's Research page runs a cross-venue carry set (``xcarry``) the way ``hedge backtest`` does: the
store's prices with the perp venue's OWN funding from the store (ui/views/research.py).

A demo store holds one venue's prices and two perp venues' funding: okx pays 0.0003 per 8h, bybit 0.00001.
With a 21-interval hold okx's 21 x 0.0003 = 0.0063 beats the 0.0031 round trip (2 x 0.1 % spot + 2 x 0.055 %
perp taker fees of the paper venues, slippage 0): it enters; 3 x 0.0003 = 0.0009 does not; bybit's 0.00001 is below
``min_funding_rate`` 0.0001: never.
"""

from __future__ import annotations

import pandas as pd
import pytest

from hedge_core.data.demo import seed_demo
from hedge_core.params.xcarry import CrossCarryParams
from hedge_core.store import Store
from hedge_core.ui.views.research import run_set, run_sweep, sweep_grid

pytestmark = pytest.mark.integration  # a DuckDB store file

START, END = pd.Timestamp("2024-01-04", tz="UTC"), pd.Timestamp("2024-01-18", tz="UTC")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    st = Store(tmp_path_factory.mktemp("xresearch") / "r.duckdb")
    seed_demo(st, days=20, timeframe="1h", seed=9, assets=("BTC",))
    first = st.read_bars("demo", "BTC/USDT", "spot", "1h").index[0]
    ts = pd.date_range(first + pd.Timedelta(hours=8), periods=59, freq="8h")
    for venue, rate in (("okx", 0.0003), ("bybit", 0.00001)):
        st.write_funding(pd.DataFrame({"ts": ts, "funding_rate": rate}), venue=venue, symbol="BTC/USDT:USDT")
    return st


def _params(perp_venue: str, hold: int = 21) -> CrossCarryParams:
    return CrossCarryParams(spot_venue="binance", perp_venue=perp_venue, min_funding_rate=0.0001, min_net_carry=0.0,
                            expected_hold_intervals=hold, slippage_rate=0.0)


def test_research_backtest_of_an_xcarry_set_uses_its_perp_venues_funding(store):
    kw = dict(venue="demo", spot_symbol="BTC/USDT", timeframe="1h", start=START, end=END)
    okx = run_set(store, _params("okx"), **kw)
    assert okx.kpis["entries"] >= 1
    # funding booked = what okx's 0.0003 pays the short perp on its notional at each settlement held
    f = okx.funding_payments
    assert len(f) > 0 and (f["rate"] - 0.0003).abs().max() < 1e-15 and okx.kpis["funding"] > 0
    bybit = run_set(store, _params("bybit"), **kw)
    assert bybit.kpis["entries"] == 0 and bybit.kpis["funding"] == 0


def test_research_sweep_of_an_xcarry_set(store):
    kw = dict(venue="demo", spot_symbol="BTC/USDT", timeframe="1h", start=START, end=END)
    grid = sweep_grid(_params("okx"), "expected_hold_intervals", [3, 21])
    out = run_sweep(store, grid, **kw)
    t = out.table.set_index("expected_hold_intervals")
    assert (t["error"] == "").all()
    assert t.loc[3, "entries"] == 0
    single = run_set(store, _params("okx", 21), **kw)
    assert t.loc[21, "entries"] == single.kpis["entries"] >= 1
    assert t.loc[21, "net_pnl"] == pytest.approx(single.kpis["net_pnl"], rel=1e-9, abs=1e-9)


def test_research_sweep_of_a_perp_pair_reads_both_venues_funding(store):
    # long bybit (0.00001) / short okx (0.0003): 21 x 0.00029 = 0.0061 beats the 0.0025 round trip at both
    # venues' perp fees (2 x 0.05 % + 2 x 0.055 % + 4 x 1 bp paper slippage); 3 x 0.00029 = 0.00087 does not
    kw = dict(venue="demo", spot_symbol="BTC/USDT", timeframe="1h", start=START, end=END)
    pair = CrossCarryParams(legs="perp_perp", spot_venue="bybit", perp_venue="okx", min_funding_rate=0.0001,
                            min_net_carry=0.0, expected_hold_intervals=21, slippage_rate=0.0)
    out = run_sweep(store, sweep_grid(pair, "expected_hold_intervals", [3, 21]), **kw)
    t = out.table.set_index("expected_hold_intervals")
    assert (t["error"] == "").all() and (t["path"] == "fast").all()  # the pair kernel
    assert t.loc[3, "entries"] == 0
    single = run_set(store, pair, **kw)
    assert t.loc[21, "entries"] == single.kpis["entries"] >= 1
    for k in ("net_pnl", "funding", "fees"):
        assert t.loc[21, k] == pytest.approx(single.kpis[k], rel=1e-12, abs=1e-12), k
    assert t.loc[21, "funding"] > 0  # the short okx leg receives more than the long bybit leg pays
