"""Both backtest paths against ledgers computed BY HAND (issue #13 item 7).

The event-vs-fast parity tests (tests/support/parity.py) prove the two paths agree; they cannot
catch a bug the two share (both call ``hedge_core.money``). Here a tiny synthetic market is
replayed by the event path (``backtest.event.run_backtest``: engine + paper venue) and by the
fast path (``backtest.fast.run_fast`` / ``fast_kpis``), and EACH is compared with a ledger written
out below in plain arithmetic, not through ``hedge_core.money``: fill prices, quantities, fees,
each funding payment, realised PnL per leg, net PnL, KPIs and the paper venue's final wallets.

Conventions used by hand (README "Units and conventions", docs/backtest-edges.md):
- bars are labelled by their OPEN time; at instant t the engine knows the bars that ended at t, so
  the reference price of an order at t is the close of the bar labelled t - 1h;
- at each instant: bars known -> the engine acts (orders fill at once) -> the funding of t settles;
- funding payment = -position x mark x rate (short perp, rate > 0: received), mark = the close of
  the mark bar that ended at t, position = the one after the engine acted at t;
- the carry enters when the last SETTLED rate (strictly before t) is >= ``min_funding_rate``;
  spot qty = notional / spot ref, floored to the spot lot (Binance BTCUSDT LOT_SIZE stepSize
  0.00001), perp qty = spot qty floored to the perp lot (BTCUSDT USD-M stepSize 0.001);
- a taker fill: buy at ref x (1 + bps / 1e4), sell at ref x (1 - bps / 1e4), bps = slippage_bps +
  impact_k_bps x sqrt(qty / bar volume) (docs/paper-exchange.md "Fill model"); fee = qty x fill
  price x taker rate (spot 0.1 %, USD-M perp 0.05 %, quote currency).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from hedge_core.analytics.funding import funding_ledger
from hedge_core.backtest.event import BacktestConfig, run_backtest
from hedge_core.backtest.fast import fast_kpis, run_fast
from hedge_core.backtest.timeline import Market, build_timeline
from hedge_core.exchange.paper.core import PaperConfig
from hedge_core.params.models import CarryParams, ExitParams

T0 = pd.Timestamp("2024-01-01T00:00Z")
H = pd.Timedelta(hours=1)
SPOT_FEE, PERP_FEE = 0.001, 0.0005  # Binance VIP0 spot taker 0.1 %, USD-M taker 0.05 %
SPOT_WALLET, PERP_WALLET = 30_000.0, 20_000.0  # explicit paper wallets, USDT
TOL = 1e-9  # quote (and base) units

# ---- the market: 26 one-hour bars, labelled 00:00 .. 25:00 (= day 2 01:00) -------------------------
# (first label, spot close, perp close, mark close) held until the next row's label
_SEGMENTS = [
    (0, 43_000.0, 43_020.0, 43_018.0),   # known 01:00 .. 08:00: no entry (last settled rate 0)
    (8, 43_210.5, 43_231.7, 43_229.9),   # known at 09:00: first entry reads these closes
    (15, 43_480.0, 43_502.0, 43_500.0),  # known at 16:00: mark of the 16:00 settlement
    (16, 43_600.0, 43_625.0, 43_620.0),  # known 17:00 .. 23:00 (re-arm case: exit 17:00, re-entry 18:00)
    (23, 43_790.0, 43_812.0, 43_800.0),  # known at 24:00: mark of the 24:00 settlement
    (24, 44_000.0, 44_030.0, 44_025.0),  # known at 25:00 (day 2 01:00): the 16 h exit of the one-trip case
    (25, 44_100.0, 44_130.0, 44_125.0),  # known at 26:00 (day 2 02:00): the last instant
]
N_BARS = 26
VOLUME = 25.0  # base units per bar, spot and perp


def _market(rates: tuple[float, float, float, float]) -> Market:
    """The market with funding ``rates`` settling at 00:00, 08:00, 16:00 and 24:00."""
    idx = pd.date_range(T0, periods=N_BARS, freq="1h", tz="UTC")
    cols = np.zeros((N_BARS, 3))
    for k, (first, s, p, m) in enumerate(_SEGMENTS):
        last = _SEGMENTS[k + 1][0] if k + 1 < len(_SEGMENTS) else N_BARS
        cols[first:last] = (s, p, m)

    def frame(c: np.ndarray, volume: bool) -> pd.DataFrame:
        df = pd.DataFrame({"open": c, "high": c, "low": c, "close": c}, index=idx)
        if volume:
            df["volume"] = VOLUME
        return df
    funding = pd.DataFrame({"funding_rate": list(rates)},
                           index=pd.DatetimeIndex([T0, T0 + 8 * H, T0 + 16 * H, T0 + 24 * H]))
    return Market("binance", "BTC/USDT", "BTC/USDT:USDT", "1h", frame(cols[:, 0], True), frame(cols[:, 1], True),
                  frame(cols[:, 2], False), funding)


def _config(impact_k_bps: float) -> BacktestConfig:
    return BacktestConfig(paper=PaperConfig(slippage_bps=2.0, impact_k_bps=impact_k_bps, slippage_noise_bps=0.0,
                                            spot_taker_fee=SPOT_FEE, perp_taker_fee=PERP_FEE),
                          spot_usdt=SPOT_WALLET, perp_usdt=PERP_WALLET)


def _params(max_holding_hours: float, rearm: bool) -> CarryParams:
    return CarryParams(notional=10_000.0, min_funding_rate=0.0001, min_net_carry=-0.01,
                       exit=ExitParams(profit_target_pct=None, stop_loss_pct=None, trailing_giveback=None,
                                       max_holding_hours=max_holding_hours, funding_unfavourable_intervals=None,
                                       rearm=rearm))


# ---- the hand ledger ------------------------------------------------------------------------------

@dataclass(frozen=True)
class HandFill:
    ts: pd.Timestamp
    leg: str
    side: str
    qty: float
    price: float
    fee: float
    slippage: float  # qty x |price - ref|, quote


@dataclass(frozen=True)
class HandLedger:
    fills: list[HandFill]
    funding: list[tuple[pd.Timestamp, float]]  # (settlement time, amount: + received / - paid)
    spot_realized: float
    perp_realized: float
    entries: int
    in_market_instants: int

    @property
    def fees(self) -> float:
        return sum(f.fee for f in self.fills)

    @property
    def slippage(self) -> float:
        return sum(f.slippage for f in self.fills)

    @property
    def funding_total(self) -> float:
        return sum(a for _, a in self.funding)

    @property
    def net(self) -> float:
        return self.spot_realized + self.perp_realized + self.funding_total - self.fees


def _taker(ts: pd.Timestamp, leg: str, side: str, qty: float, ref: float, bps: float) -> HandFill:
    """One taker fill by hand: price = ref x (1 +/- bps / 1e4), fee = qty x price x taker rate."""
    price = ref * (1 + bps / 1e4) if side == "buy" else ref * (1 - bps / 1e4)
    rate = SPOT_FEE if leg == "spot" else PERP_FEE
    return HandFill(ts, leg, side, qty, price, qty * price * rate, qty * abs(price - ref))


def _one_trip_ledger(rate16: float, rate24: float) -> HandLedger:
    """Enter 09:00, hold through the 16:00 and 24:00 settlements, exit at 25:00 (16 h held)."""
    t_in, t_out = T0 + 9 * H, T0 + 25 * H
    # 10_000 / 43_210.5 = 0.2314252...; spot lot 0.00001 -> 0.23142; perp lot 0.001 -> 0.231
    assert 0.23142 <= 10_000 / 43_210.5 < 0.23143
    qs, qp = 0.23142, 0.231
    # entry at 09:00 (slippage 2 bps, no impact): spot first, then the hedge
    spot_in = _taker(t_in, "spot", "buy", qs, 43_210.5, 2.0)    # 43_219.1421; fee 10.00177...
    perp_in = _taker(t_in, "perp", "sell", qp, 43_231.7, 2.0)   # 43_223.05366; fee 4.99226...
    # exit at 25:00: the hedge first, then spot
    perp_out = _taker(t_out, "perp", "buy", qp, 44_030.0, 2.0)   # 44_038.806
    spot_out = _taker(t_out, "spot", "sell", qs, 44_000.0, 2.0)  # 43_991.2
    assert spot_in.price == pytest.approx(43_219.1421, abs=1e-9)
    assert perp_in.price == pytest.approx(43_223.05366, abs=1e-9)
    # funding: -(-0.231) x mark x rate at 16:00 (mark 43_500) and 24:00 (mark 43_800)
    f16 = 0.231 * 43_500.0 * rate16  # rate 0.0003 -> +3.01455 received; -0.0003 -> -3.01455 paid
    f24 = 0.231 * 43_800.0 * rate24  # rate 0.0002 -> +2.02356
    return HandLedger(
        fills=[spot_in, perp_in, perp_out, spot_out],
        funding=[(T0 + 16 * H, f16), (T0 + 24 * H, f24)],
        spot_realized=qs * (spot_out.price - spot_in.price),  # long spot: qty x (sell - buy)
        perp_realized=qp * (perp_in.price - perp_out.price),  # short perp: qty x (sell - buy)
        entries=1,
        in_market_instants=16,  # perp held after acting at 09:00 .. 24:00
    )


def _rearm_ledger() -> HandLedger:
    """Two round trips, 8 h each, re-armed; impact k = 10 bps on a bar volume of 25 base."""
    # trip 1: enter 09:00 (refs 43_210.5 / 43_231.7), funding 16:00 (mark 43_500), exit 17:00 (43_600 / 43_625)
    qs1, qp1 = 0.23142, 0.231  # 10_000 / 43_210.5 = 0.2314252... floored to the lots
    bs1 = 2.0 + 10.0 * math.sqrt(qs1 / 25.0)  # 2 + 10 x sqrt(0.0092568) = 2.96212... bps
    bp1 = 2.0 + 10.0 * math.sqrt(qp1 / 25.0)  # 2 + 10 x sqrt(0.00924) = 2.96125... bps
    # trip 2: re-armed at 17:00, enters at the next instant 18:00 (refs 43_600 / 43_625),
    # funding 24:00 (mark 43_800), exit 26:00 after 8 h (refs 44_100 / 44_130)
    assert 0.22935 <= 10_000 / 43_600.0 < 0.22936  # = 0.2293577...
    qs2, qp2 = 0.22935, 0.229
    bs2 = 2.0 + 10.0 * math.sqrt(qs2 / 25.0)
    bp2 = 2.0 + 10.0 * math.sqrt(qp2 / 25.0)
    t1, t2, t3, t4 = T0 + 9 * H, T0 + 17 * H, T0 + 18 * H, T0 + 26 * H
    s1_in = _taker(t1, "spot", "buy", qs1, 43_210.5, bs1)
    p1_in = _taker(t1, "perp", "sell", qp1, 43_231.7, bp1)
    p1_out = _taker(t2, "perp", "buy", qp1, 43_625.0, bp1)
    s1_out = _taker(t2, "spot", "sell", qs1, 43_600.0, bs1)
    s2_in = _taker(t3, "spot", "buy", qs2, 43_600.0, bs2)
    p2_in = _taker(t3, "perp", "sell", qp2, 43_625.0, bp2)
    p2_out = _taker(t4, "perp", "buy", qp2, 44_130.0, bp2)
    s2_out = _taker(t4, "spot", "sell", qs2, 44_100.0, bs2)
    return HandLedger(
        fills=[s1_in, p1_in, p1_out, s1_out, s2_in, p2_in, p2_out, s2_out],
        funding=[(T0 + 16 * H, 0.231 * 43_500.0 * 0.0003), (T0 + 24 * H, 0.229 * 43_800.0 * 0.0002)],
        spot_realized=qs1 * (s1_out.price - s1_in.price) + qs2 * (s2_out.price - s2_in.price),
        perp_realized=qp1 * (p1_in.price - p1_out.price) + qp2 * (p2_in.price - p2_out.price),
        entries=2,
        in_market_instants=8 + 8,  # 09:00 .. 16:00 and 18:00 .. 25:00
    )


# ---- the checks ---------------------------------------------------------------------------------


def _assert_fills(got: pd.DataFrame, hand: HandLedger, path: str) -> None:
    got = got.reset_index(drop=True)
    assert len(got) == len(hand.fills), path
    for i, f in enumerate(hand.fills):
        row = got.iloc[i]
        assert pd.Timestamp(row["ts"]) == f.ts, (path, i)
        assert (row["leg"], row["side"]) == (f.leg, f.side), (path, i)
        for c in ("qty", "price", "fee", "slippage"):
            assert float(row[c]) == pytest.approx(getattr(f, c), abs=TOL, rel=0), (path, i, c)


def _assert_kpis(kpis: dict[str, float], hand: HandLedger, n_instants: int, path: str) -> None:
    span_days = (n_instants - 1) / 24.0  # first instant 01:00 .. last 26:00
    want = {"net_pnl": hand.net, "fees": hand.fees, "funding": hand.funding_total, "slippage": hand.slippage,
            "price_pnl": hand.spot_realized + hand.perp_realized, "entries": hand.entries,
            "n_fills": len(hand.fills), "n_liquidations": 0, "interest": 0.0,
            "net_apr": hand.net / 10_000.0 * 365.0 / span_days,
            "time_in_market": hand.in_market_instants / n_instants}
    for k, v in want.items():
        assert kpis[k] == pytest.approx(v, abs=TOL, rel=1e-12), (path, k)


def _assert_path(path: str, params: CarryParams, market: Market, config: BacktestConfig, hand: HandLedger) -> None:
    """One path (``event`` or ``fast``) against the hand ledger: fills, funding per instant, per-leg
    realised PnL, net PnL and KPIs. Each path is checked on its own, so a bug shared by both fails both."""
    tl = build_timeline(market, start=T0 + H)
    assert tl.n == N_BARS  # instants 01:00 .. 26:00 (the 00:00 funding is before the first bar end)
    # cumulative funding per instant steps by the hand amounts at their settlement times
    cum = np.zeros(tl.n)
    for t, a in hand.funding:
        cum[tl.index >= t] += a
    if path == "event":
        ev = run_backtest(params, tl, config=config)
        _assert_fills(ev.fills, hand, path)
        fp = ev.funding_payments.reset_index(drop=True)  # the venue's payments, one per settlement held
        assert [pd.Timestamp(t) for t in fp["ts"]] == [t for t, _ in hand.funding]
        np.testing.assert_allclose(fp["amount"].to_numpy(float), [a for _, a in hand.funding], rtol=0, atol=TOL)
        np.testing.assert_allclose(ev.equity["funding"].to_numpy(), cum, rtol=0, atol=TOL)
        assert ev.ledger.loc["spot", "realized"] == pytest.approx(hand.spot_realized, abs=TOL, rel=0)
        assert ev.ledger.loc["perp", "realized"] == pytest.approx(hand.perp_realized, abs=TOL, rel=0)
        assert ev.ledger.loc["perp", "funding"] == pytest.approx(hand.funding_total, abs=TOL, rel=0)
        assert ev.ledger.loc["spot", "fees"] + ev.ledger.loc["perp", "fees"] == pytest.approx(hand.fees, abs=TOL, rel=0)
        _assert_kpis(ev.kpis, hand, tl.n, path)
    else:
        fa = run_fast(params, tl, config=config)
        _assert_fills(fa.fills, hand, path)
        np.testing.assert_allclose(fa.snap[:, 2], cum, rtol=0, atol=TOL)  # snapshot column 2: funding
        assert fa.snap[-1, 0] == pytest.approx(hand.spot_realized, abs=TOL, rel=0)  # flat at the end: realised
        assert fa.snap[-1, 1] == pytest.approx(hand.perp_realized, abs=TOL, rel=0)
        assert fa.snap[-1, 3] == pytest.approx(hand.fees, abs=TOL, rel=0)
        assert fa.snap[-1, 6] == pytest.approx(hand.net, abs=TOL, rel=0)
        _assert_kpis(fast_kpis(params, tl, config=config), hand, tl.n, path)


PATHS = ("event", "fast")


@pytest.mark.parametrize("path", PATHS)
def test_one_round_trip_two_fundings_received_by_hand(path):
    hand = _one_trip_ledger(0.0003, 0.0002)
    # the figures written out once: funding received 3.01455 + 2.02356
    assert hand.funding_total == pytest.approx(5.03811, abs=1e-12)
    _assert_path(path, _params(16, rearm=False), _market((0.0, 0.00015, 0.0003, 0.0002)), _config(0.0), hand)


@pytest.mark.parametrize("path", PATHS)
def test_funding_sign_flip_the_short_pays_by_hand(path):
    hand = _one_trip_ledger(-0.0003, 0.0002)
    assert hand.funding[0][1] == pytest.approx(-3.01455, abs=1e-12)  # short perp, rate < 0: paid
    _assert_path(path, _params(16, rearm=False), _market((0.0, 0.00015, -0.0003, 0.0002)), _config(0.0), hand)


@pytest.mark.parametrize("path", PATHS)
def test_two_round_trips_rearmed_with_impact_by_hand(path):
    _assert_path(path, _params(8, rearm=True), _market((0.0, 0.00015, 0.0003, 0.0002)), _config(10.0),
                 _rearm_ledger())


def test_the_paper_venues_final_wallets_by_hand():
    """The venue's own wallet accounting (``PaperCore``) after the one-trip run: spot USDT moves by
    the fill notionals and quote fees, the perp wallet by realised PnL, fees and funding."""
    from hedge_core.backtest.event import _replay
    from hedge_core.exchange.costs import from_paper, resolve_costs

    hand = _one_trip_ledger(0.0003, 0.0002)
    cfg = _config(0.0)
    params = resolve_costs(_params(16, rearm=False), from_paper(cfg.paper))
    tl = build_timeline(_market((0.0, 0.00015, 0.0003, 0.0002)), start=T0 + H)
    _, core, *_ = _replay(params, tl, cfg, {"spot": {"USDT": SPOT_WALLET}, "perp": {"USDT": PERP_WALLET}})
    spot_in, _, _, spot_out = hand.fills
    spot_usdt = SPOT_WALLET - (spot_in.qty * spot_in.price + spot_in.fee) + (spot_out.qty * spot_out.price - spot_out.fee)
    perp_usdt = PERP_WALLET + hand.perp_realized - (hand.fills[1].fee + hand.fills[2].fee) + hand.funding_total
    bal = core.balance("spot")
    assert bal["USDT"].total == pytest.approx(spot_usdt, abs=TOL, rel=0)
    assert abs(bal["BTC"].total if "BTC" in bal else 0.0) <= 1e-12  # bought and sold the same 0.23142
    assert core.wallet == pytest.approx(perp_usdt, abs=TOL, rel=0)
    # and the wallets' change is the hand net PnL
    assert (bal["USDT"].total - SPOT_WALLET) + (core.wallet - PERP_WALLET) == pytest.approx(hand.net, abs=TOL, rel=0)


@pytest.mark.parametrize("rate16", [0.0003, -0.0003])
def test_funding_column_against_the_analytics_funding_ledger(rate16):
    """``analytics.funding.funding_ledger`` on the hand positions (-0.231 from 09:00, flat from
    25:00) and the market's marks gives the same payments as the hand ledger and both paths."""
    rates = (0.0, 0.00015, rate16, 0.0002)
    m = _market(rates)
    hand = _one_trip_ledger(rate16, 0.0002)
    position = pd.Series([-0.231, 0.0], index=pd.DatetimeIndex([T0 + 9 * H, T0 + 25 * H]))
    mark = pd.Series(m.mark["close"].to_numpy(), index=m.mark.index + H)  # a mark is known at its bar's end
    led = funding_ledger(position, m.funding["funding_rate"], mark)
    paid = led.loc[led["payment"] != 0.0, "payment"]
    assert list(paid.index) == [t for t, _ in hand.funding]
    np.testing.assert_allclose(paid.to_numpy(), [a for _, a in hand.funding], rtol=0, atol=TOL)
    cfg, params = _config(0.0), _params(16, rearm=False)
    tl = build_timeline(m, start=T0 + H)
    ev = run_backtest(params, tl, config=cfg)
    fa = run_fast(params, tl, config=cfg)
    np.testing.assert_allclose(ev.funding_payments["amount"].to_numpy(float), paid.to_numpy(), rtol=0, atol=TOL)
    at = tl.index.get_indexer(paid.index)
    np.testing.assert_allclose(np.diff(np.concatenate([[0.0], fa.snap[at, 2]])), paid.to_numpy(), rtol=0, atol=TOL)
