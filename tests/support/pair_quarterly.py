"""The SECOND venue of a live perp pair listing a dated future 90 days out (08:00 UTC) at 42,000 against its 40,000
perpetual, on the Bybit, OKX or Binance USD-M simulator, and what each venue's own records say of the money (no tests
here). Used by tests/test_pair_roll_live_venues.py and tests/test_pair_delivery_live.py.

- Bybit: ``BybitSim.list_future`` ("Get Instruments Info" ``contractType`` LinearFutures, ``deliveryTime``);
- OKX: a FUTURES row (``instType`` FUTURES, ``expTime``, contracts of ``ctVal`` 0.01 BTC; "Get instruments");
- Binance USD-M: ``BinanceSim.list_quarterly`` (exchangeInfo ``contractType`` CURRENT_QUARTER, ``deliveryDate``).
All three are ccxt ``BTC/USDT:USDT-YYMMDD``.
"""

from __future__ import annotations

import math
from typing import Any

from tests.support.pair_okx_env import OKX_SWAP, venue_sim
from tests.support.roll_runner import dated_symbol, delivery_ms

__all__ = ["OKX_QTR", "PERP", "QTR_PX", "held", "second_venue", "set_rate", "settle", "venue_cash", "venue_fees"]

PERP = "BTC/USDT:USDT"
QTR_PX = 42_000.0
OKX_QTR = "BTC-USDT-QTR"


def second_venue(venue: str, rate: float) -> tuple[Any, str, str]:
    """The second venue's simulator (10,000 USDT, funding ``rate`` per 8 h) listing a dated future 90 days out at
    42,000: (sim, venue id of the future, ccxt unified symbol)."""
    sim = venue_sim(venue, rate)
    ms = delivery_ms(sim.now_ms())
    if venue == "okx":
        row = {**sim.instrument_rows["FUTURES"][0], "instId": OKX_QTR, "expTime": str(ms)}
        sim.instrument_rows["FUTURES"] = [row]
        sim.register(row)
        sim.set_price(OKX_QTR, QTR_PX)
        sid = OKX_QTR
    elif venue == "bybit":
        sid = sim.list_future("BTC", ms, QTR_PX)
    else:
        sid = sim.list_quarterly("BTC", ms, QTR_PX)
    return sim, sid, dated_symbol(PERP, ms)


def held(venue: str, sim: Any, sid: str) -> float:
    """The venue's signed position on contract ``sid`` in BASE (OKX: contracts x ctVal)."""
    if venue == "okx":
        return sim.positions.get(sid, [0.0, 0.0])[0] * sim.ct_val(sid)
    if venue == "bybit":
        return float(sim.positions.get(sid, [0.0, 0.0])[0])
    return float(sim.position(sid))


def set_rate(venue: str, sim: Any, rate: float) -> None:
    """The venue's funding rate of its BTC perpetual, per 8 h."""
    if venue == "okx":
        sim.funding_rate[OKX_SWAP] = rate
    elif venue == "bybit":
        sim.funding_rate["BTCUSDT"] = rate
    else:
        sim.set_funding_rate("BTCUSDT", rate)


def settle(venue: str, sim: Any, rate: float) -> None:
    """The venue settles its BTC perpetual's funding now at ``rate`` (its own record: Binance ``FUNDING_FEE`` income,
    Bybit a Funding execution, OKX a bill of type 8)."""
    sim.settle_funding(OKX_SWAP if venue == "okx" else "BTCUSDT", rate)


def venue_cash(venue: str, sim: Any) -> float:
    """The venue's USDT wallet balance of the derivatives account, unrealised PnL excluded (quote): Binance USD-M
    ``walletBalance``, Bybit's unified USDT ``walletBalance``, OKX's ``cashBal``."""
    if venue == "okx":
        return float(sim.cash["USDT"])
    if venue == "bybit":
        return float(sim.coins["USDT"])
    return float(sim.wallet)


def venue_fees(venue: str, sim: Any) -> float:
    """Trading and delivery fees in the venue's own records (quote, + paid): Binance USD-M ``userTrades``
    ``commission``; Bybit ``execFee`` of its Trade and Delivery executions; OKX the fills' ``fee`` and the delivery
    bills' (type 3) ``fee`` (negative when charged)."""
    if venue == "okx":
        delivered = [float(b["fee"]) for b in sim.bills if b["type"] == "3"]
        return -math.fsum([float(f["fee"]) for f in sim.fills] + delivered)
    if venue == "bybit":
        return math.fsum(float(e["execFee"]) for e in sim.executions
                         if e["category"] == "linear" and e["execType"] in ("Trade", "Delivery"))
    return math.fsum(float(t["commission"]) for t in sim.trades if t["market"] == "fapi")
