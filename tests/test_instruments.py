"""Instruments: the committed snapshot, the store's instruments table and the store-first resolution."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest

from hedge_core.analytics.risk import (
    BTCUSDT_BRACKETS,
    ETHUSDT_BRACKETS,
    brackets_for,
    maintenance_margin,
)
from hedge_core.data.instruments import (
    SNAPSHOT_PATH,
    brackets_from_rows,
    brackets_to_rows,
    instrument_from_row,
    pair_instruments,
    resolve_instruments,
    snapshot,
    venue_instruments,
)
from hedge_core.errors import InvalidInput
from hedge_core.store import Store
from hedge_core.types import MarketKind

T0 = pd.Timestamp("2026-12-01T00:00Z")


def test_snapshot_rows_name_their_source_and_validate():
    doc = json.loads(SNAPSHOT_PATH.read_text())
    assert len(doc["instruments"]) == len(snapshot()) >= 12
    for row in doc["instruments"]:
        assert row["source"], row["symbol"]
        assert bool(row["brackets"]) == bool(row["brackets_source"]), row["symbol"]
    snap = snapshot()
    # every Binance perp of the snapshot carries a table; its first bracket's leverage is the max leverage
    for (venue, sym), inst in snap.items():
        if venue == "binance" and inst.kind is MarketKind.PERP:
            assert inst.brackets and inst.brackets[0].max_leverage == inst.max_leverage, sym
    # the default BTC/ETH tables are the venue's newer ones (freqtrade's 2024 recording, checked figure by figure in
    # test_instruments_verified); the 2021 tables the Binance FAQ examples use stay in analytics.risk only
    assert snap[("binance", "BTC/USDT:USDT")].brackets != BTCUSDT_BRACKETS
    assert snap[("binance", "ETH/USDT:USDT")].brackets != ETHUSDT_BRACKETS
    assert snap[("binance", "BTC/USDT:USDT")].brackets[1].notional_cap == 600_000.0  # 2021: 250,000
    with pytest.raises(TypeError):
        snap[("binance", "X")] = None  # read-only: nothing at run time changes the committed defaults


def test_brackets_for_reads_the_snapshot_for_any_listed_perp():
    sol = brackets_for("SOL/USDT:USDT")
    assert sol == brackets_for("SOLUSDT") == snapshot()[("binance", "SOL/USDT:USDT")].brackets
    # continuous at every edge (cum from the recurrence)
    for b in sol[1:]:
        assert maintenance_margin(b.notional_floor - 1e-6, sol) == pytest.approx(maintenance_margin(b.notional_floor, sol),
                                                                                abs=1e-4)
    with pytest.raises(InvalidInput, match="PEPE"):
        brackets_for("PEPE/USDT:USDT")


@pytest.mark.parametrize("edit, field", [
    (lambda r: r.__setitem__(1, [1.0, 2e5, 50, 0.01, 0.0]), "b[1].notional_floor"),
    (lambda r: r[1].__setitem__(3, 0.001), "b[1].mmr"),
    (lambda r: r[1].__setitem__(4, 999.0), "b[1].cum"),
    (lambda r: r[0].__setitem__(2, 0.5), "b[0].max_leverage"),
    (lambda r: r.__setitem__(0, ["x"]), "b[0]"),
])
def test_bracket_rows_bad_input_names_the_field(edit, field):
    rows = brackets_to_rows(BTCUSDT_BRACKETS)
    assert brackets_from_rows(rows) == BTCUSDT_BRACKETS
    edit(rows)
    with pytest.raises(InvalidInput) as e:
        brackets_from_rows(rows, where="b")
    assert e.value.field == field


def test_instrument_row_bad_limit_names_the_field():
    row = {"venue": "binance", "symbol": "SOL/USDT", "kind": "spot", "base": "SOL", "quote": "USDT",
           "tick_size": 0.01, "lot_size": 0.0, "min_qty": 0.001, "min_notional": 5.0}
    with pytest.raises(InvalidInput) as e:
        instrument_from_row(row, where="r")
    assert e.value.field == "r.lot_size"
    with pytest.raises(InvalidInput) as e:
        instrument_from_row({**row, "lot_size": 0.001, "kind": "mark"}, where="r")
    assert e.value.field == "r.kind"


def test_store_round_trip_keeps_brackets_and_read_date(tmp_path):
    snap = snapshot()
    sol_perp = replace(snap[("binance", "SOL/USDT:USDT")], venue="demo", lot_size=0.1,
                       brackets=BTCUSDT_BRACKETS[:3])
    sol_spot = replace(snap[("binance", "SOL/USDT")], venue="demo")
    with Store(tmp_path / "s.duckdb") as st:
        assert st.write_instruments([sol_spot, sol_perp], read_at=T0, source="test") == 2
        got = st.read_instruments("demo")
        assert got == [sol_spot, sol_perp]
        table = st.instruments_table()
        assert list(table["source"]) == ["test", "test"] and (table["updated_at"] == T0).all()
        # an upsert on (venue, symbol) replaces the row
        st.write_instruments([replace(sol_perp, lot_size=1.0)], read_at=T0 + pd.Timedelta("1D"), source="again")
        [perp] = st.read_instruments("demo", symbols=["SOL/USDT:USDT"])
        assert perp.lot_size == 1.0 and perp.brackets == BTCUSDT_BRACKETS[:3]
        assert len(st.read_instruments()) == 2
        with pytest.raises(InvalidInput, match="read_at"):
            st.write_instruments([sol_spot], read_at="2026-01-01", source="naive")
        bad = replace(sol_perp, symbol="BAD/USDT:USDT", brackets=(BTCUSDT_BRACKETS[1],))  # not from 0
        with pytest.raises(InvalidInput) as e:
            st.write_instruments([sol_spot, bad], read_at=T0, source="bad")
        assert e.value.field == "instruments[demo BAD/USDT:USDT].brackets[0].notional_floor"
        assert len(st.read_instruments()) == 2  # nothing written


def test_resolution_prefers_the_store_then_the_snapshot_and_names_what_is_missing(tmp_path):
    snap = snapshot()
    mine = replace(snap[("binance", "SOL/USDT:USDT")], lot_size=0.5)
    with Store(tmp_path / "s.duckdb") as st:
        st.write_instruments([mine], read_at=T0, source="test")
        spot, perp = resolve_instruments(("SOL/USDT", "SOL/USDT:USDT"), "binance", st)
        assert perp == mine and spot == snap[("binance", "SOL/USDT")]
        # a data venue without snapshot rows borrows Binance's figures, relabelled
        s2, p2 = pair_instruments("XRP/USDT", "XRP/USDT:USDT", "demo", st)
        assert (s2.venue, p2.venue) == ("demo", "demo") and p2.brackets == snap[("binance", "XRP/USDT:USDT")].brackets
        with pytest.raises(InvalidInput) as e:
            pair_instruments("PEPE/USDT", "PEPE/USDT:USDT", "demo", st)
    assert e.value.field == "instrument" and "PEPE/USDT, PEPE/USDT:USDT" in str(e.value.value)
    assert "hedge data instruments --venue demo --symbols PEPE/USDT,PEPE/USDT:USDT" in e.value.allowed


def test_paper_venue_defaults_to_every_snapshot_symbol_and_uses_the_instruments_brackets():
    from hedge_core.exchange.paper.config import PaperConfig, default_instruments
    from hedge_core.exchange.paper.core import PaperCore

    cfg = PaperConfig(venue="bybit")
    syms = {i.symbol for i in cfg.instruments}
    assert {"SOL/USDT", "SOL/USDT:USDT", "DOGE/USDT:USDT"} <= syms and {i.venue for i in cfg.instruments} == {"bybit"}
    assert cfg.instruments == venue_instruments("bybit")
    assert [i.symbol for i in default_instruments("x")] == ["BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "ETH/USDT:USDT"]
    # a perp instrument's own table is the paper venue's margin table; the JSON state keeps it
    own = replace(snapshot()[("binance", "SOL/USDT:USDT")], brackets=BTCUSDT_BRACKETS[:2])
    cfg2 = PaperConfig(instruments=(snapshot()[("binance", "SOL/USDT")], own))
    assert PaperCore(cfg2)._brackets["SOL/USDT:USDT"] == BTCUSDT_BRACKETS[:2]
    back = PaperConfig.from_dict(json.loads(json.dumps(cfg2.to_dict())))
    assert back == cfg2


def test_engine_leg_carries_the_perp_instruments_brackets():
    from hedge_core.engine.context import new_hedge
    from hedge_core.engine.guards import perp_liquidation_price
    from hedge_core.engine.ledger import apply_fill
    from hedge_core.types import Side

    snap = snapshot()
    spot, perp = snap[("binance", "SOL/USDT")], snap[("binance", "SOL/USDT:USDT")]
    steep = tuple(replace(b, mmr=b.mmr * 4, cum=b.cum * 4) for b in perp.brackets)
    ctxs = []
    for p in (perp, replace(perp, brackets=steep)):
        ctx = new_hedge("h", "carry", spot, p, T0)
        assert ctx.perp.brackets == p.brackets
        ctx = replace(ctx, perp=apply_fill(ctx.perp, Side.SELL, 100.0, 150.0), leverage=5.0)
        ctxs.append(ctx)
    lp_default, lp_steep = (perp_liquidation_price(c) for c in ctxs)
    # a short liquidates earlier (lower price) with a steeper maintenance table; both hedges side by side
    assert lp_steep < lp_default
    from hedge_core.analytics.risk import liquidation_price

    assert lp_default == pytest.approx(liquidation_price(-100.0, 150.0, 100 * 150 / 5.0, perp.brackets))
    assert lp_steep == pytest.approx(liquidation_price(-100.0, 150.0, 100 * 150 / 5.0, steep))


def test_okx_whole_position_table_round_trips_and_a_half_zeroed_table_is_refused():
    """OKX charges the whole position its tier's MMR (https://www.okx.com/help/tier): a table whose every cum is 0.
    Hand-checked: 40,000 USDT in tier 2 (1.5 %) -> 600 USDT; a continuous table would deduct 125 (475)."""
    from hedge_core.analytics.risk import maintenance_margin

    rows = [[0, 25_000, 75, 0.01, 0.0], [25_000, 50_000, 50, 0.015, 0.0], [50_000, 300_000, 20, 0.02, 0.0]]
    table = brackets_from_rows(rows)
    assert [b.cum for b in table] == [0.0, 0.0, 0.0]
    assert brackets_to_rows(table) == [[float(x) for x in r] for r in rows]
    assert maintenance_margin(40_000.0, table) == pytest.approx(600.0)
    continuous = brackets_from_rows([r[:4] + [c] for r, c in zip(rows, (0.0, 125.0, 375.0))])
    assert maintenance_margin(40_000.0, continuous) == pytest.approx(475.0)
    half = [r[:4] + [c] for r, c in zip(rows, (0.0, 125.0, 0.0))]  # neither model
    with pytest.raises(InvalidInput) as e:
        brackets_from_rows(half, where="b")
    assert e.value.field == "b[2].cum"
