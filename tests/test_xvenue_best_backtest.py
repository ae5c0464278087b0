"""Cross-venue backtest with the perp venue chosen at each entry (backtest.xvenue_best), hand-checked.

Spot on binance; the set allows okx (its ``perp_venue``) and bybit. Paper models without slippage or impact
(a fill is at the bar's close), so a venue's all-in sell price is ``close x (1 - taker fee)``:

- hours 0-107: both venues' perp at the same price; bybit's fee 0.02 % beats okx's 0.05 % -> bybit;
- from hour 108: bybit's perp trades 0.1 % below okx's: ``0.999 x (1 - 0.0002) = 0.9988002`` < ``1 - 0.0005 =
  0.9995`` of okx's price -> okx.

The set exits after 24 h and re-arms, so it enters several times; each entry is on the venue best at that
instant and a position is closed where it was opened (never moved while open).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hedge_core.backtest.timeline import Market
from hedge_core.backtest.xvenue import cross_venue_market, run_cross_venue_backtest
from hedge_core.errors import InvalidInput
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.params.models import ExitParams
from hedge_core.params.xcarry import CrossCarryParams

T0 = pd.Timestamp("2024-01-01T00:00Z")
HOURS = 24 * 8
SWITCH_H = 108  # the replay starts after the 72 h warmup
FEES = {"okx": 0.0005, "bybit": 0.0002}


def prices(perp_factor: np.ndarray | float = 1.0) -> Market:
    idx = pd.date_range(T0, periods=HOURS, freq="1h", tz="UTC")
    close = 40_000.0 + 100.0 * np.sin(np.arange(HOURS) / 10.0)
    spot = pd.DataFrame({"open": close, "high": close * 1.0005, "low": close * 0.9995, "close": close,
                         "volume": 5_000.0}, index=idx)
    pc = close * 1.0001 * perp_factor
    perp = spot.assign(open=pc, high=pc * 1.0005, low=pc * 0.9995, close=pc)
    return Market("binance", "BTC/USDT", "BTC/USDT:USDT", "1h", spot, perp, perp, None)


def funding(venue: str) -> pd.DataFrame:
    ft = pd.date_range(T0 + pd.Timedelta(hours=8), T0 + pd.Timedelta(hours=HOURS - 1), freq="8h", tz="UTC")
    return pd.DataFrame({"ts": ft, "venue": venue, "symbol": "BTCUSDT", "funding_rate": 0.0001, "interval_hours": 8.0})


def markets() -> dict[str, Market]:
    factor = np.where(np.arange(HOURS) >= SWITCH_H, 0.999, 1.0)
    return {"okx": cross_venue_market(prices(), funding("okx"), perp_venue="okx"),
            "bybit": cross_venue_market(prices(factor), funding("bybit"), perp_venue="bybit")}


def papers() -> dict[str, PaperConfig]:
    return {v: replace(PaperConfig(), venue=v, perp_taker_fee=f, slippage_bps=0.0, impact_k_bps=0.0)
            for v, f in FEES.items()}


def xparams(**kw) -> CrossCarryParams:
    base = {"notional": 8_000.0, "min_funding_rate": 0.00001, "min_net_carry": -1.0, "spot_venue": "binance",
            "perp_venue": "okx", "perp_venues": ("bybit",), "spot_taker_fee": 0.001, "perp_taker_fee": 0.0005,
            "slippage_rate": 0.0, "exit": ExitParams(max_holding_hours=24, profit_target_pct=None, stop_loss_pct=None,
                                                     funding_unfavourable_intervals=None, rearm=True)}
    base.update(kw)
    return CrossCarryParams(**base)


def run(**kw):
    m = markets()
    return run_cross_venue_backtest(xparams(**kw), m["okx"], perp_markets=m, perp_papers=papers())


def test_each_entry_is_on_the_venue_best_at_that_instant_and_charged_its_fee() -> None:
    xr = run()
    ch = xr.choices
    assert len(ch) >= 3, ch
    hours = ((ch["ts"] - T0) / pd.Timedelta(hours=1)).to_numpy()
    assert set(ch.loc[hours <= SWITCH_H, "venue"]) == {"bybit"}  # same price, the lower fee
    assert set(ch.loc[hours > SWITCH_H, "venue"]) == {"okx"}  # bybit 0.1 % lower: okx's sell receives more
    assert (hours <= SWITCH_H).any() and (hours > SWITCH_H).any()
    assert set(ch["side"]) == {"sell"}  # positive funding: the carry sells the perp
    # the all-in price of each venue at the first entry: close x (1 - fee), same close on both before hour 60
    first = ch.iloc[0]
    h = int(hours[0]) - 1  # the instant's last closed bar opened an hour before it
    close = (40_000.0 + 100.0 * np.sin(h / 10.0)) * 1.0001
    assert first["all_in.bybit"] == pytest.approx(close * (1 - 0.0002), rel=1e-12)
    assert first["amount"] == pytest.approx(8_000.0 / close, rel=1e-12)
    assert first["all_in.okx"] / first["all_in.bybit"] == pytest.approx((1 - 0.0005) / (1 - 0.0002), rel=1e-12)
    late = ch[hours > SWITCH_H].iloc[0]
    assert late["all_in.bybit"] / late["all_in.okx"] == pytest.approx(0.999 * (1 - 0.0002) / (1 - 0.0005), rel=1e-9)
    assert dict(zip(ch["venue"], ch["taker_fee"])) == FEES
    pv = xr.per_venue
    assert list(pv.index) == ["binance", "okx", "bybit"] and set(pv["leg"]) == {"spot", "perp"}
    assert pv.loc["okx", "orders"] > 0 and pv.loc["bybit", "orders"] > 0
    assert "perp leg chosen at each entry among ['okx', 'bybit']" in xr.notes[-1]
    from hedge_core.ui.figures.xvenue import cross_venue_tearsheet  # the tearsheet shows every venue

    assert "perp on best of okx/bybit" in cross_venue_tearsheet(xr).layout.title.text


def test_the_fee_charged_is_the_entry_venues_own() -> None:
    """Fills of each perp venue: fee = its taker fee x qty x price (fills at the bar close, no slippage);
    the per-venue fees are those fills', and every venue's position is closed on that venue."""
    from hedge_core.backtest import xvenue_best

    seen: dict[str, list] = {}
    orig = xvenue_best.PaperCore

    class Spy(orig):  # type: ignore[misc, valid-type]
        def __init__(self, config, *a, **k):
            super().__init__(config, *a, **k)
            seen.setdefault(config.venue, []).append(self)

    xvenue_best.PaperCore = Spy
    try:
        xr = run()
    finally:
        xvenue_best.PaperCore = orig
    for v, fee in FEES.items():
        [core] = seen[v]
        fills = core.fills
        assert fills, v
        for f in fills:
            assert f.fee == pytest.approx(fee * f.qty * f.price, rel=1e-12)
        assert xr.per_venue.loc[v, "fees"] == pytest.approx(sum(f.fee for f in fills), rel=1e-12)
    # a position is closed on the venue it was opened on: the venue not holding now is flat
    holding = {v for v, cs in seen.items() if v in FEES and any(abs(p.qty) > 1e-12 for p in cs[0].positions_view())}
    assert len(holding) <= 1
    assert xr.result.totals()["fees"] == pytest.approx(xr.per_venue["fees"].sum(), rel=1e-9)


def test_bad_venue_markets_are_refused_naming_the_field() -> None:
    m = markets()
    with pytest.raises(InvalidInput, match="perp_markets"):
        run_cross_venue_backtest(xparams(), m["okx"], perp_markets={**m, "gate": m["okx"]})
    with pytest.raises(InvalidInput, match="missing"):
        run_cross_venue_backtest(xparams(perp_venues=("bybit", "gate")), m["okx"], perp_markets=m)
    short = cross_venue_market(Market("binance", "BTC/USDT", "BTC/USDT:USDT", "1h", prices().spot.iloc[:120],
                                      prices().perp.iloc[:120], prices().perp.iloc[:120], None), funding("bybit"),
                               perp_venue="bybit")
    with pytest.raises(InvalidInput, match="perp_markets.bybit"):
        run_cross_venue_backtest(xparams(), m["okx"], perp_markets={"bybit": short})
    with pytest.raises(InvalidInput, match="perp_papers.bybit.venue"):
        run_cross_venue_backtest(xparams(), m["okx"], perp_markets=m, perp_papers={"bybit": PaperConfig()})
    with pytest.raises(InvalidInput, match="perp_papers"):
        run_cross_venue_backtest(xparams(), m["okx"], perp_papers=papers())


# ---- hedge backtest --best-perp [--perp-fee VENUE=FRACTION] -------------------------------------------

@pytest.fixture(scope="module")
def db(tmp_path_factory):
    from hedge_core.data.demo import seed_demo
    from hedge_core.store import Store

    path = tmp_path_factory.mktemp("xbest") / "demo.duckdb"
    st = Store(path)
    seed_demo(st, days=10, timeframe="1h", seed=9, assets=("BTC",))
    first = st.read_bars("demo", "BTC/USDT", "spot", "1h").index[0]
    ts = pd.date_range(first + pd.Timedelta(hours=8), periods=10 * 3 - 1, freq="8h")
    for v in ("okx", "bybit"):  # the same funding on both: only the fee decides
        st.write_funding(pd.DataFrame({"ts": ts, "funding_rate": 0.0003}), venue=v, symbol="BTC/USDT:USDT")
    del st
    return str(path)


@pytest.fixture()
def xfile(tmp_path):
    f = tmp_path / "x.toml"
    f.write_text('strategy = "xcarry"\nspot_venue = "binance"\nperp_venue = "okx"\nperp_venues = ["bybit"]\n'
                 'min_funding_rate = 0.0001\nmin_net_carry = 0.0\nexpected_hold_intervals = 21\nslippage_rate = 0.0\n'
                 'perp_taker_fee = 0.0005\n')
    return str(f)


def cli(db: str, xfile: str, *extra: str):
    from hedge_core.backtest.cli import app

    return CliRunner().invoke(app, ["backtest", "--params", xfile, "--venue", "demo", "--db", db, "--start",
                                    "2024-01-04", "--end", "2024-01-10", *extra])


@pytest.mark.integration
def test_cli_best_perp_enters_on_the_venue_with_the_lower_fee_and_charges_it(db, xfile) -> None:
    res = cli(db, xfile, "--best-perp", "--perp-fee", "bybit=0.0002", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    ch = out["choices"]
    assert ch and {c["venue"] for c in ch} == {"bybit"} and {c["taker_fee"] for c in ch} == {0.0002}
    # the same paper book on both venues (same bars, same model): all-in = avg x (1 - fee)
    for c in ch:
        assert c["all_in.okx"] / c["all_in.bybit"] == pytest.approx((1 - 0.0005) / (1 - 0.0002), rel=1e-12)
    pv = {r["venue"]: r for r in out["per_venue"]}
    assert pv["okx"]["orders"] == 0 and pv["okx"]["fees"] == 0.0 and pv["bybit"]["orders"] > 0
    # bybit's fee on the perp fills: 0.02 % of the perp leg's traded notional (the engine's ledger)
    legs_fee = out["totals"]["fees"] - pv["binance"]["fees"]
    assert pv["bybit"]["fees"] == pytest.approx(legs_fee, rel=1e-9)
    # okx cheaper now: every entry moves there
    res2 = cli(db, xfile, "--best-perp", "--perp-fee", "bybit=0.0002", "--perp-fee", "okx=0.0001", "--json")
    assert res2.exit_code == 0, res2.output
    assert {c["venue"] for c in json.loads(res2.output)["choices"]} == {"okx"}
    text = cli(db, xfile, "--best-perp", "--perp-fee", "bybit=0.0002")
    assert text.exit_code == 0 and "perp on bybit (sell" in text.output and "taker fee 0.02 %" in text.output


@pytest.mark.integration
@pytest.mark.parametrize("extra, says", [
    (("--perp-fee", "bybit=0.0002"), "--perp-fee='bybit=0.0002' is not allowed; expected only with --best-perp"),
    (("--best-perp", "--perp-fee", "gate=0.0002"), "one of the set's perp venues ['okx', 'bybit']"),
    (("--best-perp", "--perp-fee", "bybit=0.5"), "FRACTION a taker fee in [0, 0.01]"),
    (("--best-perp", "--perp-fee", "bybit"), "VENUE=FRACTION"),
])
def test_cli_best_perp_flags_are_checked_naming_the_flag(db, xfile, extra, says) -> None:
    res = cli(db, xfile, *extra)
    assert res.exit_code == 2 and says in res.output, res.output


@pytest.mark.integration
def test_cli_best_perp_needs_a_set_with_several_perp_venues(db, tmp_path) -> None:
    one = tmp_path / "one.toml"
    one.write_text('strategy = "xcarry"\nspot_venue = "binance"\nperp_venue = "okx"\n')
    res = cli(db, str(one), "--best-perp")
    assert res.exit_code == 2 and "--best-perp=True is not allowed; expected an xcarry set naming several" in res.output
