"""PARITY: one scripted order sequence on the paper exchange and, through the live adapter and real
ccxt, on the local Binance simulator gives the same fills, orders, positions, balances and funding.

Settings are made equal: zero slippage and impact on the paper side, the same fee rates, and the
paper venue trades the instruments the live adapter loaded from the simulator's exchangeInfo.
Prices move the same way on both: each step publishes spot/perp/mark bars to the paper exchange
and sets the same closes as the simulator's last/mark prices. A resting limit fills on the paper
side when a bar trades through it; on the simulator when the new price crosses it; the script's
bars are chosen so both rules agree (close beyond the limit).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pandas as pd
import pytest

from hedge_core.exchange.paper import PaperExchange
from hedge_core.exchange.paper.core import PaperConfig, PaperCore
from hedge_core.types import (
    Bar,
    FundingEvent,
    MarketKind,
    OrderRequest,
    OrderType,
    Side,
    client_order_id,
)
from tests.support.binance_sim import BinanceSim, MarketSpec
from tests.support.live_env import TEST_KEY, TEST_SECRET, live_env

SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"
T0 = pd.Timestamp("2024-03-01T00:00Z")
H = pd.Timedelta(hours=1)
FEES = {"spot": 0.001, "perp_taker": 0.0005, "perp_maker": 0.0002}


@dataclass(frozen=True)
class Px:
    """One hour: spot and perp bars (o, h, l, c) and the mark close."""

    spot: tuple[float, float, float, float]
    perp: tuple[float, float, float, float]
    mark: float


def cid(n: int) -> str:
    return client_order_id("parity", "x", n)


SCRIPT: list[tuple] = [
    ("prices", Px((30_000, 30_000, 30_000, 30_000), (30_010, 30_010, 30_010, 30_010), 30_005)),
    ("leverage", PERP, 5),
    ("order", OrderRequest(SPOT, Side.BUY, 0.2, cid(1))),
    ("order", OrderRequest(PERP, Side.SELL, 0.2, cid(2))),
    ("prices", Px((30_000, 31_200, 29_900, 31_000), (30_010, 31_220, 29_910, 31_020), 31_010)),
    ("funding", 0.0001),
    ("order", OrderRequest(PERP, Side.BUY, 0.05, cid(3), type=OrderType.LIMIT, price=30_500.0)),
    ("order", OrderRequest(SPOT, Side.SELL, 0.1, cid(4), type=OrderType.LIMIT, price=31_500.0)),
    ("order", OrderRequest(SPOT, Side.BUY, 0.01, cid(5), type=OrderType.LIMIT, price=31_100.0)),  # marketable
    # perp trades through 30 500 (close below it): the resting perp buy fills as maker at its limit;
    # spot stays below 31 500: the resting spot sell keeps resting
    ("prices", Px((31_000, 31_100, 30_100, 30_200), (31_020, 31_120, 30_100, 30_250), 30_240)),
    ("order", OrderRequest(PERP, Side.BUY, 0.05, cid(6), reduce_only=True)),
    ("cancel", SPOT, cid(4)),
    ("funding", -0.0002),
    ("order", OrderRequest(SPOT, Side.SELL, 0.05, cid(7))),
    ("order", OrderRequest(PERP, Side.SELL, 0.03, cid(8), type=OrderType.LIMIT, price=31_900.0)),
    ("prices", Px((30_200, 32_000, 30_150, 31_950), (30_250, 32_050, 30_200, 31_990), 31_980)),
    ("funding", 0.0003),
    ("order", OrderRequest(PERP, Side.BUY, 0.13, cid(9), reduce_only=True)),
    ("prices", Px((31_950, 32_000, 31_500, 31_800), (31_990, 32_010, 31_520, 31_810), 31_805)),
    ("funding", 0.00005),
]


async def run_paper(instruments, script: list[tuple] = SCRIPT) -> PaperExchange:
    cfg = PaperConfig(spot_maker_fee=FEES["spot"], spot_taker_fee=FEES["spot"],
                      perp_maker_fee=FEES["perp_maker"], perp_taker_fee=FEES["perp_taker"],
                      slippage_bps=0.0, impact_k_bps=0.0, slippage_noise_bps=0.0,
                      default_leverage=20.0, instruments=tuple(instruments))
    ex = PaperExchange(PaperCore(cfg, balances={"spot": {"USDT": 10_000.0}, "perp": {"USDT": 10_000.0}}),
                       save_on_apply=False)
    hour = 0
    for step in script:
        kind = step[0]
        if kind == "prices":
            px: Px = step[1]
            label = T0 + hour * H
            for sym, k, ohlc in ((SPOT, MarketKind.SPOT, px.spot), (PERP, MarketKind.PERP, px.perp),
                                 (PERP, MarketKind.MARK, (px.mark,) * 4)):
                await ex.apply(Bar(label, "binance", sym, k, *ohlc, volume=1_000.0 if k != MarketKind.MARK else 0.0))
            hour += 1
        elif kind == "funding":
            await ex.apply(FundingEvent(T0 + hour * H, "binance", PERP, step[1]))
        else:
            await _account_step(ex, step)
    return ex


async def run_live(env, script: list[tuple] = SCRIPT) -> None:
    sim, a = env.sim, env.adapter
    hour = 0
    for step in script:
        kind = step[0]
        if kind == "prices":
            px: Px = step[1]
            sim.set_price("BTCUSDT", px.spot[3], perp=px.perp[3], mark=px.mark)
            hour += 1
        elif kind == "funding":  # settled at the same (historical) funding time as on paper
            sim.settle_funding("BTCUSDT", step[1], ts_ms=int((T0 + hour * H).value // 1_000_000))
        else:
            await _account_step(a, step)


async def _account_step(ex, step) -> None:
    kind = step[0]
    if kind == "leverage":
        await ex.set_leverage(step[1], step[2])
    elif kind == "order":
        await ex.create_order(step[1])
    elif kind == "cancel":
        await ex.cancel_order(step[1], client_order_id=step[2])
    else:  # pragma: no cover - script typo
        raise AssertionError(step)


async def snapshot(ex, script: list[tuple] = SCRIPT) -> dict:
    cids = [s[1].client_order_id for s in script if s[0] == "order"]
    syms = {s[1].client_order_id: s[1].symbol for s in script if s[0] == "order"}
    orders = {}
    for c in cids:
        o = await ex.fetch_order(syms[c], client_order_id=c)
        orders[c] = (o.status.value, round(o.filled, 9), None if o.avg_price is None else round(o.avg_price, 6))
    fills = []
    for sym in (SPOT, PERP):
        for f in await ex.fetch_my_trades(sym):
            fills.append((f.client_order_id, f.symbol, f.side.value, round(f.qty, 9), round(f.price, 6),
                          round(f.fee, 8), f.liquidity.value))
    spot = {c: (round(b.free, 6), round(b.used, 6)) for c, b in (await ex.fetch_balance("spot")).items()
            if abs(b.free) > 1e-12 or abs(b.used) > 1e-12}
    perp = {c: (round(b.free, 6), round(b.used, 6)) for c, b in (await ex.fetch_balance("perp")).items()
            if abs(b.free) > 1e-12 or abs(b.used) > 1e-12}
    positions = [(p.symbol, round(p.qty, 9), round(p.entry_price, 6), p.leverage, p.margin_mode.value,
                  p.position_side.value, round(p.unrealized_pnl, 6))
                 for p in await ex.fetch_positions()]
    funding = [(p.symbol, round(p.amount, 8), p.rate, round(p.position_qty, 9), p.mark_price)
               for p in await ex.fetch_funding_payments(PERP)]
    open_orders = sorted(o.client_order_id for o in await ex.fetch_open_orders())
    return {"orders": orders, "fills": fills, "spot": spot, "perp": perp, "positions": positions,
            "funding": funding, "open": open_orders}


def test_paper_and_live_give_the_same_account():
    async def go():
        # spot fees in the quote, as the paper exchange models them (an account paying fees in another
        # asset); Binance's no-BNB default (commission in the asset received) is tested elsewhere
        sim = BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET, spot_fee=FEES["spot"], spot_fee_in_received=False,
                         futures_taker_fee=FEES["perp_taker"], futures_maker_fee=FEES["perp_maker"],
                         markets=[MarketSpec("BTC", tick="0.01", step="0.00001", min_qty="0.00001",
                                             min_notional="5", perp_min_notional="100")],
                         spot_balances={"USDT": 10_000.0}, futures_wallet=10_000.0, default_leverage=20)
        async with live_env(sim=sim) as env:
            instruments = (await env.adapter.load_markets()).values()
            await run_live(env)
            live = await snapshot(env.adapter)
        paper = await run_paper(instruments)
        return live, await snapshot(paper)

    live, paper = asyncio.run(go())
    # the script exercised every dimension: taker and maker fills on both legs, a cancel,
    # funding received and paid, a position closed by reduce-only orders
    assert len(live["fills"]) == 8 and {f[6] for f in live["fills"]} == {"taker", "maker"}
    assert live["orders"][cid(4)][0] == "canceled"
    assert len(live["funding"]) == 3 and {p[1] > 0 for p in live["funding"]} == {True, False}
    assert live["positions"] == [] and live["spot"]["BTC"] == (0.16, 0.0)
    for key in ("orders", "fills", "spot", "perp", "positions", "funding", "open"):
        assert live[key] == paper[key], key


def test_parity_mid_script_with_an_open_position_and_resting_orders():
    """Stop before the 4th price step: an open short, a resting perp limit sell, uPnL != 0."""
    cut = [i for i, s in enumerate(SCRIPT) if s[0] == "prices"][3]
    script = SCRIPT[:cut]

    async def go():
        # spot fees in the quote, as the paper exchange models them (an account paying fees in another
        # asset); Binance's no-BNB default (commission in the asset received) is tested elsewhere
        sim = BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET, spot_fee=FEES["spot"], spot_fee_in_received=False,
                         futures_taker_fee=FEES["perp_taker"], futures_maker_fee=FEES["perp_maker"],
                         markets=[MarketSpec("BTC", tick="0.01", step="0.00001", min_qty="0.00001")])
        async with live_env(sim=sim) as env:
            instruments = (await env.adapter.load_markets()).values()
            await run_live(env, script)
            live = await snapshot(env.adapter, script)
        return live, await snapshot(await run_paper(instruments, script), script)

    live, paper = asyncio.run(go())
    assert live["positions"][0][1] == pytest.approx(-0.1) and live["open"] == [cid(8)]
    assert live["positions"][0][6] != 0.0  # unrealised PnL at the mark
    assert live["perp"]["USDT"][1] > 0  # margin in use (position + resting order)
    for key in ("orders", "fills", "spot", "perp", "positions", "funding", "open"):
        assert live[key] == paper[key], key
