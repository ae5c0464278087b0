"""View models of the Overview / Hedge detail / Risk / Start pages: hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hedge_core.errors import InvalidInput
from hedge_core.store import Store
from hedge_core.ui.views.hedges import (
    health_view,
    hedge_window,
    legs_table,
    live_confirmation_phrase,
    overview_table,
    pnl_series,
    replay_options,
    risk_table,
    timeline_table,
    totals,
    validate_start,
)
from hedge_core.ui.views.ledger import hedge_flows, recent_rows, row_count, run_info

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def fill_flows(fills: pd.DataFrame) -> pd.DataFrame:
    """Reference (pandas, one row per fill) for Store.fill_flows: fills as money flows: ts, leg, qty (signed base: + buy), cash (-qty x price, quote), fees (quote), price.

    The same columns as ``Store.fill_flows`` (SQL aggregate) so :func:`pnl_series` takes either.
    """
    cols = ["ts", "leg", "qty", "cash", "fees", "last_price"]
    if fills is None or not len(fills):
        return pd.DataFrame(columns=cols)
    sign = np.where(fills["side"].astype(str).str.lower() == "buy", 1.0, -1.0)
    q = sign * fills["qty"].to_numpy(dtype="float64")
    px = fills["price"].to_numpy(dtype="float64")
    fee = fills["fee"].fillna(0.0).to_numpy(dtype="float64") if "fee" in fills else np.zeros(len(fills))
    return pd.DataFrame({"ts": pd.to_datetime(fills["ts"], utc=True), "leg": fills["leg"].astype(str).to_numpy(),
                         "qty": q, "cash": -q * px, "fees": fee, "last_price": px})[cols]



def _summary(**kw):
    base = {"hedge_id": "h1", "mode": "paper", "state": "MONITORING_POSITIONS", "status": "running",
            "spot_symbol": "BTC/USDT", "perp_symbol": "BTC/USDT:USDT", "params": "c@1", "delta": 0.001,
            "hedge_ratio": 0.99, "target_ratio": 1.0, "drift": 0.01, "pnl": 5.0, "price_pnl": 2.0, "funding": 4.0,
            "fees": 1.0, "spot_qty": 0.1, "perp_qty": -0.1, "spot_entry": 100.0, "perp_entry": 101.0,
            "spot_price": 110.0, "mark_price": 111.0}
    base.update(kw)
    return base


def test_overview_live_then_journal_rows_and_totals() -> None:
    runs = pd.DataFrame([
        {"hedge_id": "h1", "mode": "paper", "state": "X", "spot_symbol": "BTC/USDT", "perp_symbol": "p",
         "params_name": "c", "params_version": 1, "started_at": T0},
        {"hedge_id": "old", "mode": "live", "state": "COMPLETED", "spot_symbol": "ETH/USDT", "perp_symbol": "q",
         "params_name": "c", "params_version": 2, "started_at": T0},
        {"hedge_id": "bt", "mode": "backtest", "state": "COMPLETED", "spot_symbol": "a", "perp_symbol": "b",
         "params_name": None, "params_version": None, "started_at": T0}])
    t = overview_table([_summary(), _summary(hedge_id="h2", mode="live", pnl=-2.0, funding=1.0, fees=0.5,
                                             price_pnl=-2.5, state="PAUSED")], runs)
    assert t["hedge_id"].tolist() == ["h1", "h2", "old"]  # runner's first; journal row of h1 not repeated; no backtest
    assert t.loc[2, "params"] == "c@2" and not t.loc[2, "running"] and math.isnan(t.loc[2, "pnl"])
    tot = totals(t)
    assert tot["pnl"] == pytest.approx(3.0) and tot["funding"] == pytest.approx(5.0) and tot["fees"] == 1.5
    assert tot["active"] == 2 and tot["live_mode"] == 1 and tot["hedges"] == 3


def test_health_view_stale_and_absent() -> None:
    assert not health_view(None).ok
    h = health_view({"ok": True, "pid": 7, "heartbeat_age_s": 0.4, "dms_timeout_s": 10.0, "hedges": 2})
    assert h.ok and "0.4 s" in h.label and h.hedges == 2
    s = health_view({"ok": True, "pid": 7, "heartbeat_age_s": 12.0, "dms_timeout_s": 10.0, "hedges": 1})
    assert not s.ok and "STALE" in s.label


def test_legs_and_timeline() -> None:
    legs = legs_table(_summary())
    assert legs["notional"].tolist() == pytest.approx([0.1 * 110.0, 0.1 * 111.0])
    tr = pd.DataFrame({"seq": [1, 2], "ts": [T0, T0 + pd.Timedelta(hours=1)], "from_state": [None, "A"],
                       "to_state": ["A", "B"], "trigger_name": ["START", "GO"], "reason": ["r1", "r2"]})
    tl = timeline_table(tr)
    assert tl["to_state"].tolist() == ["B", "A"] and "trigger" in tl


def test_risk_table_statuses_and_daily_loss() -> None:
    rows = risk_table([
        _summary(hedge_id="a", liq_distance=0.5, liq_distance_reduce=0.15, liq_distance_close=0.08,
                 day_pnl=-50.0, daily_loss_limit=200.0),
        _summary(hedge_id="b", liq_distance=0.10, liq_distance_reduce=0.15, liq_distance_close=0.08, day_pnl=30.0,
                 daily_loss_limit=200.0),
        _summary(hedge_id="c", liq_distance=0.08, liq_distance_reduce=0.15, liq_distance_close=0.08),
        _summary(hedge_id="d", liq_distance=None, loan={"outstanding": 16200.0, "ltv": 0.6, "band": "MONITOR",
                                                         "collateral_qty": 0.27, "reserve_left": 1e4,
                                                         "reserve_deployed": 0.0})])
    assert rows["liq_status"].tolist() == ["ok", "reduce", "close", ""]
    assert rows.loc[0, "daily_loss_used"] == pytest.approx(0.25)
    assert rows.loc[1, "daily_loss_used"] == 0.0 and math.isnan(rows.loc[2, "daily_loss_used"])
    assert rows.loc[3, "ltv_band"] == "MONITOR" and rows.loc[3, "loan"] == 16200.0


def _fills() -> pd.DataFrame:
    # buy 1 spot @100 (fee 0.1) at t0; sell 1 perp @101 (fee 0.1) at t0; sell 0.5 spot @110 at t0+2h (fee 0.05)
    return pd.DataFrame({
        "hedge_id": "h", "trade_id": ["1", "2", "3"], "leg": ["spot", "perp", "spot"], "side": ["buy", "sell", "sell"],
        "qty": [1.0, 1.0, 0.5], "price": [100.0, 101.0, 110.0], "fee": [0.1, 0.1, 0.05],
        "ts": [T0, T0, T0 + pd.Timedelta(hours=2)]})


def test_pnl_series_by_hand() -> None:
    idx = pd.date_range(T0 - pd.Timedelta(hours=1), periods=4, freq="1h", tz="UTC")
    prices = pd.DataFrame({"spot": [99.0, 100.0, 105.0, 110.0], "perp": [100.0, 101.0, 106.0, 111.0]}, index=idx)
    funding = pd.DataFrame({"ts": [T0 + pd.Timedelta(hours=1)], "amount": [0.3]})
    s = pnl_series(fill_flows(_fills()), funding, prices)
    # before any fill: nothing
    assert s.iloc[0][["price_pnl", "funding", "fees", "pnl"]].tolist() == [0.0, 0.0, 0.0, 0.0]
    # t0: spot +1 @100 valued 100 -> 0; perp -1 @101 valued 101 -> 0; fees 0.2
    assert s.iloc[1]["price_pnl"] == pytest.approx(0.0) and s.iloc[1]["pnl"] == pytest.approx(-0.2)
    # t0+1h: spot +5, perp -5, funding 0.3
    assert s.iloc[2]["price_pnl"] == pytest.approx(0.0) and s.iloc[2]["pnl"] == pytest.approx(0.1)
    # t0+2h: spot sold 0.5 @110: spot cash -100+55, qty 0.5 x110=55 -> +10; perp -1: 101-111 = -10 -> 0
    last = s.iloc[3]
    assert last["price_pnl"] == pytest.approx(0.0) and last["fees"] == pytest.approx(0.25)
    assert last["delta"] == pytest.approx(-0.5) and last["hedge_ratio"] == pytest.approx(111.0 / 55.0)
    assert last["pnl"] == pytest.approx(0.3 - 0.25)


def test_sql_flows_give_the_same_pnl_as_raw_fills(tmp_path) -> None:
    st = Store(tmp_path / "f.duckdb")
    rng = np.random.default_rng(1)
    n = 400
    f = pd.DataFrame({"hedge_id": "h", "trade_id": [str(i) for i in range(n)],
                      "leg": rng.choice(["spot", "perp"], n), "side": rng.choice(["buy", "sell"], n),
                      "qty": rng.uniform(0.01, 1, n), "price": rng.uniform(90, 110, n), "fee": rng.uniform(0, 0.1, n),
                      "ts": T0 + pd.to_timedelta(np.sort(rng.integers(0, 48 * 3600, n)) + 0.5, unit="s")})  # no ties on the hour
    st.write_table("fills", f)
    idx = pd.date_range(T0, periods=48, freq="1h", tz="UTC")
    prices = pd.DataFrame({"spot": np.linspace(95, 105, 48), "perp": np.linspace(96, 104, 48)}, index=idx)
    empty = pd.DataFrame({"ts": pd.DatetimeIndex([], tz="UTC"), "amount": []})
    # SQL bucket t holds the fills of [t, t+1h): the same as raw fills up to t+1h valued at the same prices
    raw = pnl_series(fill_flows(st.read_table("fills", hedge_id="h")), empty, prices.shift(1, freq="1h"))
    sql = pnl_series(hedge_flows(st, "h", "1h"), empty, prices)
    np.testing.assert_allclose(sql["pnl"].to_numpy(), raw["pnl"].to_numpy(), rtol=1e-9, atol=1e-9)
    assert sql["pnl"].abs().max() > 0
    assert row_count(st, "fills", "h") == n and row_count(st, "fills", "other") == 0
    rec = recent_rows(st, "fills", "h", 5)
    assert len(rec) == 5 and rec["ts"].is_monotonic_decreasing and rec["ts"].iloc[0] == f["ts"].max()


@pytest.mark.parametrize("kw, field", [
    ({"ref": None}, "parameter set"), ({"mode": "yolo"}, "mode"), ({"size": -1}, "size"), ({"size": "abc"}, "size"),
    ({"size": float("nan")}, "size"), ({"size": 2e9}, "size"), ({"spot_symbol": "BTC-USDT"}, "spot symbol"),
    ({"mode": "live", "status": "paper"}, "mode"),
    ({"mode": "live", "status": "live", "typed_confirmation": "yes"}, "confirmation"),
])
def test_validate_start_names_the_field(kw, field) -> None:
    args = {"ref": "c@1", "status": "draft", "mode": "paper", "size": 1000.0, "spot_symbol": "BTC/USDT"}
    args.update(kw)
    with pytest.raises(InvalidInput) as e:
        validate_start(args.pop("ref"), args.pop("status"), args.pop("mode"), args.pop("size"), args.pop("spot_symbol"),
                       **args)
    assert e.value.field == field


def test_validate_start_accepts_and_builds_the_body() -> None:
    r = validate_start("c@1", "live", "live", 500, "ETH/USDT", typed_confirmation=live_confirmation_phrase("c@1"))
    assert r.body() == {"params": "c@1", "mode": "live", "notional": 500.0, "spot_symbol": "ETH/USDT",
                        "perp_symbol": "ETH/USDT:USDT", "created_from": "panel", "confirm_live": True}
    assert "confirm_live" not in validate_start("c@1", "draft", "paper", 1, "BTC/USDT").body()


def test_hedge_window_ignores_wall_clock_start_rows() -> None:
    first, last = T0, T0 + pd.Timedelta(days=10)
    tr = pd.DataFrame({"ts": [pd.Timestamp("2026-11-22", tz="UTC"), T0 + pd.Timedelta(hours=9),
                              T0 + pd.Timedelta(days=2)]})
    s, e = hedge_window(tr, str(T0 + pd.Timedelta(days=3)), first, last)
    assert s == T0 and e == T0 + pd.Timedelta(days=3, hours=12)
    s, e = hedge_window(tr.iloc[:1], None, first, last)  # nothing inside the data: its last week
    assert s == last - pd.Timedelta(days=7) and e == last + pd.Timedelta(hours=1)


def test_run_info() -> None:
    assert run_info(pd.DataFrame({"info": ['{"timeframe": "1m"}']})) == {"timeframe": "1m"}
    assert run_info(pd.DataFrame({"info": ["not json"]})) == {} and run_info(pd.DataFrame()) == {}


def test_replay_options() -> None:
    assert replay_options(3600, "") == {"speed": 3600.0}
    assert replay_options("10", "2024-01-01 05:00") == {"speed": 10.0, "start": "2024-01-01T05:00:00+00:00"}
    for speed, start, field in ((0, "", "replay speed"), ("x", "", "replay speed"), (1, "not a time", "replay start")):
        with pytest.raises(InvalidInput) as e:
            replay_options(speed, start)
        assert e.value.field == field


def test_commands_follow_the_engine_transition_table() -> None:
    from hedge_core.ui.views.hedges import commands_for

    assert commands_for("COMPLETED") == []
    assert commands_for("MONITORING_POSITIONS") == ["pause", "rebalance_now", "stop"]
    assert commands_for("PAUSED") == ["resume", "stop"]
    assert commands_for("ERROR") == ["resume", "stop"]
    assert commands_for("ANALYZING_MARKET") == ["pause", "stop"]
    assert commands_for("OPENING_SPOT_POSITION") == ["stop"]  # pause refused mid-entry by the engine too
    assert commands_for("nonsense") == []


def test_degraded_marks_reach_the_overview_and_the_health_line() -> None:
    t = overview_table([_summary(degraded={"stale_price": "ticker 30 s old", "reconcile": "perp 0.01 apart"})])
    assert t.loc[0, "degraded"] == "stale_price: ticker 30 s old; reconcile: perp 0.01 apart"
    assert list(t.columns[:3]) == ["hedge_id", "pnl", "state"]  # PnL first: what an operator looks for
    h = health_view({"ok": True, "pid": 7, "heartbeat_age_s": 0.4, "dms_timeout_s": 10.0, "hedges": 1,
                     "status": "degraded", "degraded": {"venue:binance": {"rate_limit_ban": "until 12:00"}}})
    assert h.ok and h.degraded and "DEGRADED: venue:binance rate_limit_ban" in h.label
