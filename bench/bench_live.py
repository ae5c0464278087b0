"""Order round-trip latency through the live adapter + real ccxt to the local Binance simulator.

    .venv/bin/python bench/bench_live.py [--quick] [--n N]

Measured in one run, same process, same HTTPS server and redirect session (keep-alive TLS):

- ``adapter``: ``CcxtLiveAdapter.create_order`` (market, perp), ccxt's rate limiter OFF;
- ``baseline``: the same signed ``POST /fapi/v1/order`` sent with bare aiohttp (same server work,
  no ccxt, no adapter) -- the figure the adapter is compared with;
- ``time``: bare aiohttp ``GET /fapi/v1/time`` (network + TLS + server floor);
- ``adapter+limiter``: a few orders with ccxt's rate limiter ON, to show what it costs
  (it spaces calls by the venue's rate limit even against a local server).

Prints p50 / p99 in milliseconds and the ratio adapter / baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hedge_core.types import OrderRequest, Side, client_order_id  # noqa: E402
from tests.support.binance_sim import BinanceSim  # noqa: E402
from tests.support.live_env import TEST_KEY, TEST_SECRET, live_env  # noqa: E402

PERP = "BTC/USDT:USDT"


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    k = min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))
    return s[k]


def summary(name: str, xs: list[float]) -> str:
    return (f"{name:<18} n={len(xs):5d}  p50={pct(xs, 50) * 1e3:7.3f} ms  p99={pct(xs, 99) * 1e3:7.3f} ms  "
            f"mean={statistics.fmean(xs) * 1e3:7.3f} ms")


async def bench(n: int, n_limiter: int) -> dict[str, list[float]]:
    sim = BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET, futures_wallet=1e9)
    out: dict[str, list[float]] = {"adapter": [], "baseline": [], "time": [], "adapter+limiter": []}
    async with live_env(sim=sim, enable_rate_limit=False, timeout_ms=10_000) as env:
        a, session = env.adapter, env.session
        sim.set_price("BTCUSDT", 30_000.0)
        await a.load_markets()
        seq = 0

        async def adapter_once() -> float:
            nonlocal seq
            seq += 1
            side = Side.BUY if seq % 2 else Side.SELL  # keep the position flat
            t = time.perf_counter()
            await a.create_order(OrderRequest(PERP, side, 0.01, client_order_id("bench", "p", seq)))
            return time.perf_counter() - t

        async def bare_order_once() -> float:
            nonlocal seq
            seq += 1
            params = {"symbol": "BTCUSDT", "side": "BUY" if seq % 2 else "SELL", "type": "MARKET",
                      "quantity": "0.01", "newClientOrderId": client_order_id("bench", "b", seq),
                      "newOrderRespType": "RESULT", "timestamp": sim.now_ms(), "recvWindow": 10_000}
            q = urlencode(params)
            body = q + "&signature=" + hmac.new(TEST_SECRET.encode(), q.encode(), hashlib.sha256).hexdigest()
            t = time.perf_counter()
            async with session.post("https://fapi.binance.com/fapi/v1/order", data=body,
                                    headers={"X-MBX-APIKEY": TEST_KEY,
                                             "Content-Type": "application/x-www-form-urlencoded"}) as r:
                await r.json()
                assert r.status == 200, await r.text()
            return time.perf_counter() - t

        async def bare_time_once() -> float:
            t = time.perf_counter()
            async with session.get("https://fapi.binance.com/fapi/v1/time") as r:
                await r.json()
            return time.perf_counter() - t

        for _ in range(min(50, n)):  # warm up connections, parsers, caches
            await adapter_once()
            await bare_order_once()
            await bare_time_once()
        # interleave so drift (GC, other load on the machine) hits all series alike
        for _ in range(n):
            out["adapter"].append(await adapter_once())
            out["baseline"].append(await bare_order_once())
            out["time"].append(await bare_time_once())
        a._ex.enableRateLimit = True
        for _ in range(n_limiter):
            out["adapter+limiter"].append(await adapter_once())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small run (200 round trips)")
    ap.add_argument("--n", type=int, default=None, help="round trips per series (default 2000)")
    args = ap.parse_args()
    n = args.n or (200 if args.quick else 2000)
    res = asyncio.run(bench(n, 10 if args.quick else 30))
    print(f"order round trip, local HTTPS simulator, rate limiter OFF unless noted (n={n})")
    for k in ("adapter", "baseline", "time", "adapter+limiter"):
        print(summary(k, res[k]))
    r50 = pct(res["adapter"], 50) / pct(res["baseline"], 50)
    r99 = pct(res["adapter"], 99) / pct(res["baseline"], 99)
    print(f"ratio adapter/baseline (bare aiohttp signed order): p50 x{r50:.2f}  p99 x{r99:.2f}")
    print(f"adapter overhead over bare aiohttp at p50: "
          f"{(pct(res['adapter'], 50) - pct(res['baseline'], 50)) * 1e3:.3f} ms per order")


if __name__ == "__main__":
    main()
