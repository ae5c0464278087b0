"""The committed snapshot covers every venue's top symbols (Binance, Bybit, OKX: BTC, ETH, SOL, BNB, XRP, DOGE spot
and USDT perp), each row validates and names its source, and paper trading and backtests on Bybit and OKX use the
venue's own figures (OKX: lot and minimum in base units = contracts x ctVal) instead of Binance's relabelled.

Hand-checked figures come from the venues' published answers quoted in the rows' ``source``: OKX's recorded
``GET /api/v5/public/instruments`` (XRP-USDT-SWAP ctVal 100, lotSz 0.01 contracts; BTC-USDT-SWAP ctVal 0.01, lotSz
0.01: ccxt's recording at 97b6415, after OKX's 2024-06 cut from 0.1) and Bybit's "Margin Parameters" page for BTCUSDT (tier 8: risk limit 8,500,000, MMR 1 %, deduction 20,500).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hedge_core.analytics.risk import maintenance_margin
from hedge_core.data.instruments import (
    SNAPSHOT_PATH,
    brackets_from_rows,
    instruments_on_venue,
    pair_instruments,
    snapshot,
    venue_instruments,
)
from hedge_core.errors import InvalidInput, InvalidOrder
from hedge_core.types import MarketKind

ASSETS = ("BTC", "ETH", "SOL", "BNB", "XRP", "DOGE")
VENUES = ("binance", "bybit", "okx")


def _rows() -> list[dict]:
    return json.loads(SNAPSHOT_PATH.read_text())["instruments"]


@pytest.mark.parametrize("venue", VENUES)
def test_every_venue_has_the_six_assets_spot_and_perp_and_each_row_validates(venue):
    rows = {r["symbol"]: r for r in _rows() if r["venue"] == venue}
    want = {f"{a}/USDT" for a in ASSETS} | {f"{a}/USDT:USDT" for a in ASSETS}
    assert set(rows) == want
    snap = snapshot()
    for sym, row in rows.items():
        # every row names a document (a URL or a recorded answer) or says it is not verified
        assert "http" in row["source"] or "NOT VERIFIED" in row["source"], sym
        inst = snap[(venue, sym)]
        if inst.kind is MarketKind.SPOT:
            assert not row["brackets"] and inst.contract_size == 1.0 and inst.max_leverage == 1.0, sym
            continue
        table = brackets_from_rows(row["brackets"], where=f"{venue} {sym}")  # contiguous, MMR rising, cum checked
        assert table == inst.brackets and len(table) >= 5, sym
        assert table[0].max_leverage == inst.max_leverage, sym
        assert "http" in row["brackets_source"], sym
        if venue == "okx":  # OKX's model: the whole position at its tier's rate; the conversion's mark is stated
            assert all(b.cum == 0.0 for b in table) and "mark" in row["brackets_source"], sym
        else:  # Binance, Bybit: continuous tables (cum from the recurrence, checked by brackets_from_rows)
            assert all(b.cum > 0.0 for b in table[1:]), sym


@pytest.mark.parametrize("base, ct_val, lot_contracts, lot_base", [
    ("BTC", 0.01, 0.01, 0.0001), ("ETH", 0.1, 0.01, 0.001), ("XRP", 100.0, 0.01, 1.0), ("DOGE", 1000.0, 0.01, 10.0)])
def test_okx_perp_limits_are_in_base_units_contracts_x_ctval(base, ct_val, lot_contracts, lot_base):
    """OKX's recorded instruments answer gives ctVal and lotSz/minSz in contracts; the snapshot stores base units as
    the ccxt adapter maps them (``precision.amount x contractSize``): by hand, lotSz x ctVal."""
    inst = snapshot()[("okx", f"{base}/USDT:USDT")]
    assert inst.contract_size == ct_val
    assert inst.lot_size == pytest.approx(lot_base, rel=1e-12) == lot_contracts * ct_val
    assert inst.min_qty == pytest.approx(lot_base, rel=1e-12)  # minSz 0.01 contracts, as lotSz


def test_okx_btc_table_is_its_contract_tiers_at_the_stated_mark():
    """Tier 1 up to 5,000 contracts of 0.01 BTC at mark 60,000 USDT -> 3,000,000 USDT (by hand); a 4,000,000 USDT
    position sits in tier 2 (MMR 0.6 %) and pays it on the whole position: 24,000 USDT (a continuous table would
    deduct 3,000,000 x 0.2 % = 6,000)."""
    row = next(r for r in _rows() if r["venue"] == "okx" and r["symbol"] == "BTC/USDT:USDT")
    assert "ctVal 0.01 x mark 60000" in row["brackets_source"] and "up to 5,000 contracts" in row["brackets_source"]
    table = snapshot()[("okx", "BTC/USDT:USDT")].brackets
    assert table[0].notional_cap == 3_000_000.0 and table[1].notional_cap == 6_000_000.0
    assert maintenance_margin(4_000_000.0, table) == pytest.approx(24_000.0)
    assert maintenance_margin(-1_000_000.0, table) == pytest.approx(4_000.0)  # tier 1: 0.4 %


def test_bybit_btc_table_is_the_published_margin_parameters():
    """Bybit's BTCUSDT margin parameters: 20 tiers. By hand from the page: 6,000,000 USDT is in tier 8 (risk limit
    8,500,000, MMR 1 %, deduction 20,500): 60,000 - 20,500 = 39,500 USDT; 1,000,000 USDT in tier 1: 0.5 % = 5,000;
    the last tier (80,000,000, 14x, 4.5 %) carries the published deduction 1,482,000."""
    table = snapshot()[("bybit", "BTC/USDT:USDT")].brackets
    assert len(table) == 20 and table[0].notional_cap == 2_000_000.0 and table[0].max_leverage == 100.0
    assert (table[7].notional_cap, table[7].mmr, table[7].cum) == (8_500_000.0, 0.01, 20_500.0)
    assert (table[-1].notional_cap, table[-1].max_leverage, table[-1].mmr) == (80_000_000.0, 14.0, 0.045)
    assert table[-1].cum == pytest.approx(1_482_000.0)
    assert maintenance_margin(6_000_000.0, table) == pytest.approx(39_500.0)
    assert maintenance_margin(1_000_000.0, table) == pytest.approx(5_000.0)


def test_a_snapshot_venue_refuses_a_symbol_it_lacks_and_only_a_venue_without_rows_borrows_binance():
    with pytest.raises(InvalidInput) as e:
        pair_instruments("ADA/USDT", "ADA/USDT:USDT", "okx")
    assert e.value.field == "instrument" and e.value.value == "okx ADA/USDT, ADA/USDT:USDT"
    assert "hedge data instruments --venue okx --symbols ADA/USDT,ADA/USDT:USDT" in e.value.allowed
    assert "binance" not in e.value.allowed  # nothing of another venue is offered
    okx = venue_instruments("okx")
    assert {i.venue for i in okx} == {"okx"} and okx == tuple(i for (v, _), i in snapshot().items() if v == "okx")
    demo = venue_instruments("demo")  # a data venue: Binance's figures, relabelled
    binance = venue_instruments("binance")
    assert [(i.symbol, i.lot_size) for i in demo] == [(i.symbol, i.lot_size) for i in binance]
    assert {i.venue for i in demo} == {"demo"}


def test_another_venues_defaults_become_this_venues_own_and_explicit_rows_are_kept():
    from dataclasses import replace

    binance = venue_instruments("binance")
    moved = {i.symbol: i for i in instruments_on_venue(binance, "binance", "okx")}
    assert moved["XRP/USDT:USDT"] == snapshot()[("okx", "XRP/USDT:USDT")]  # lot 1 XRP, contract size 100
    mine = replace(snapshot()[("binance", "XRP/USDT:USDT")], lot_size=7.0)  # not a default: the caller's own row
    [kept] = instruments_on_venue((mine,), "binance", "okx")
    assert kept == replace(mine, venue="okx")
    assert instruments_on_venue(binance, "binance", "binance") == binance


def _bar(core, ts, sym, kind, px):
    from hedge_core.types import Bar

    core.apply(Bar(ts, "okx", sym, kind, px, px, px, px, 1e9))


def test_an_okx_perp_order_in_the_paper_venue_trades_okx_lots():
    """OKX XRP-USDT-SWAP: a contract is 100 XRP, the step 0.01 contract = 1 XRP. By hand: 1.5 XRP is 0.015 contract,
    refused naming the lot; 20 XRP (0.2 contract) fills; the engine's lot rounding of 6,104.58 XRP gives 6,104."""
    from hedge_core.exchange.paper.core import PaperConfig, PaperCore
    from hedge_core.money.execution import lot_floor
    from hedge_core.types import OrderRequest, Side

    core = PaperCore(PaperConfig(venue="okx"), balances={"spot": {"USDT": 10_000.0}, "perp": {"USDT": 10_000.0}})
    assert core.instruments["XRP/USDT:USDT"].lot_size == 1.0
    t0 = pd.Timestamp("2024-06-30T00:00Z")
    for sym, kind in (("XRP/USDT", MarketKind.SPOT), ("XRP/USDT:USDT", MarketKind.PERP),
                      ("XRP/USDT:USDT", MarketKind.MARK)):
        _bar(core, t0, sym, kind, 0.5)
    with pytest.raises(InvalidOrder, match="LOT_SIZE.*lot 1"):
        core.create_order(OrderRequest("XRP/USDT:USDT", Side.SELL, 1.5, "x1"))
    core.create_order(OrderRequest("XRP/USDT:USDT", Side.SELL, 20.0, "x2"))
    pos = [p.qty for (s, _), p in core.positions.items() if s == "XRP/USDT:USDT"]
    assert pos == [-20.0]
    assert lot_floor(6_104.578648, 1.0) == 6_104.0


@pytest.mark.slow
@pytest.mark.parametrize("venue, asset, spot0, perp_lot", [("okx", "BTC", 60_000.0, 0.0001), ("okx", "XRP", 0.5, 1.0),
                                                           ("bybit", "SOL", 140.0, 0.1)])
def test_a_backtest_on_bybit_or_okx_runs_from_the_snapshot_alone_in_the_venues_lots(venue, asset, spot0, perp_lot):
    """Demo bars relabelled as the venue's market, no store, the default config: the paper venue is the venue's
    own snapshot rows (not Binance's: BTC perp lot 0.001, XRP 0.1, SOL 0.01), every perp fill is a whole number of the venue's
    lots, and the fast path equals the event path on them."""
    from hedge_core.backtest.event import BacktestConfig, run_backtest
    from hedge_core.backtest.timeline import market_from_frames
    from hedge_core.data.demo import AssetModel, DemoParams, generate_demo_market
    from hedge_core.params.models import CarryParams
    from tests.support.parity import assert_fast_equals_event

    params = DemoParams(assets={asset: AssetModel(spot0=spot0, vol_calm=0.7, volume_per_hour=3e8 / spot0)})
    frames = generate_demo_market(days=10, timeframe="1h", seed=11, assets=(asset,), params=params)
    m = market_from_frames(frames, asset=asset, venue=venue)
    p = CarryParams(min_net_carry=-0.01, notional=3000.0)
    r = run_backtest(p, m)
    perp = snapshot()[(venue, f"{asset}/USDT:USDT")]
    binance_lot = snapshot()[("binance", f"{asset}/USDT:USDT")].lot_size
    assert perp.lot_size == perp_lot != binance_lot

    def whole(q: np.ndarray, lot: float) -> np.ndarray:
        return np.isclose(np.round(q / lot), q / lot, rtol=0, atol=1e-6)

    q = r.fills.loc[r.fills["symbol"] == f"{asset}/USDT:USDT", "qty"].to_numpy()
    assert len(q) >= 1 and whole(q, perp_lot).all()  # the venue's lots ...
    if perp_lot < binance_lot:  # ... finer than Binance's: some fill is no whole number of Binance's lots
        assert not whole(q, binance_lot).all()
    assert r.kpis["entries"] >= 1
    assert_fast_equals_event(p, m, BacktestConfig(), kpis=True)


@pytest.mark.slow
def test_hedge_backtest_on_a_store_of_okx_bars_without_instrument_rows_uses_okx_figures(tmp_path):
    """`hedge backtest --venue okx --asset XRP` on a store holding the venue's bars and no instruments rows: the
    snapshot's OKX rows serve (perp fills in 1-XRP lots); an asset the snapshot lacks for OKX is refused naming
    it and the command that fills it."""
    from dataclasses import replace

    from typer.testing import CliRunner

    from hedge_core.backtest.cli import app
    from hedge_core.data.demo import AssetModel, DemoParams, generate_demo_market
    from hedge_core.data.importers import write_series
    from hedge_core.store import Store

    params = DemoParams(assets={"XRP": AssetModel(spot0=0.5, vol_calm=0.7, volume_per_hour=6e8),
                                "ADA": AssetModel(spot0=0.4, vol_calm=0.7, volume_per_hour=6e8)})
    frames = generate_demo_market(days=10, timeframe="1h", seed=11, assets=("XRP", "ADA"), params=params)
    db = str(tmp_path / "okx.duckdb")
    with Store(db) as st:
        write_series(st, {replace(k, venue="okx"): v for k, v in frames.items()})
    carry = tmp_path / "carry.toml"
    carry.write_text('strategy = "carry"\nmin_net_carry = -0.01\nnotional = 3000.0\n')
    runner = CliRunner()
    res = runner.invoke(app, ["backtest", "--params", str(carry), "--db", db, "--venue", "okx", "--asset", "XRP",
                              "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["kpis"]["entries"] >= 1
    grid = tmp_path / "g.toml"
    grid.write_text('[grid]\n"rebalance.drift_threshold" = [0.05, 0.1]\n')
    res = runner.invoke(app, ["sweep", "--params", str(carry), "--grid", str(grid), "--db", db, "--venue", "okx",
                              "--asset", "XRP", "--workers", "0", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)  # the OKX rows' own tables are the instruments' own: the fast path runs them
    assert len(rows) == 2 and not any(r.get("error") for r in rows) and {r["path"] for r in rows} == {"fast"}
    from hedge_core.backtest.cli import _paper
    from hedge_core.backtest.timeline import load_market

    with Store(db, read_only=True) as st:
        m = load_market(st, venue="okx", spot_symbol="XRP/USDT", perp_symbol="XRP/USDT:USDT")
        pc = _paper(st, m)
    perp = {i.symbol: i for i in pc.instruments}["XRP/USDT:USDT"]
    assert pc.venue == "okx" and perp == snapshot()[("okx", "XRP/USDT:USDT")] and perp.lot_size == 1.0
    res = runner.invoke(app, ["backtest", "--params", str(carry), "--db", db, "--venue", "okx", "--asset", "ADA"])
    assert res.exit_code == 2 and "instrument='okx ADA/USDT, ADA/USDT:USDT'" in res.output
    assert "hedge data instruments --venue okx --symbols ADA/USDT,ADA/USDT:USDT" in res.output
