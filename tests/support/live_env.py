"""One-call test environment: simulator over HTTPS + redirect session + live adapter.

    async with live_env() as env:
        await env.adapter.create_order(...)
        env.sim.set_price("BTCUSDT", 101.0)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import trustme

from hedge_core.exchange.base import RetryPolicy
from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter
from hedge_core.exchange.credentials import Credentials
from hedge_core.exchange.governor import RateGovernor
from tests.support.binance_sim import HOSTS, BinanceSim, SimServer
from tests.support.bybit_sim import HOSTS as BYBIT_HOSTS
from tests.support.bybit_sim import BybitSim
from tests.support.redirect import redirect_session

TEST_KEY = "simKEY-4f1c9a7e2b8d4c6a9e0f1b2c3d4e5f60"
TEST_SECRET = "simSECRET-9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"

_CA: trustme.CA | None = None


def test_ca() -> trustme.CA:
    """One CA per test process (making keys is the slow part)."""
    global _CA
    if _CA is None:
        _CA = trustme.CA()
    return _CA


@dataclass
class LiveEnv:
    sim: BinanceSim
    server: SimServer
    session: Any
    adapter: CcxtLiveAdapter
    credentials: Credentials


async def _noop_sleep(_s: float) -> None:
    return None


@contextlib.asynccontextmanager
async def live_env(*, sim: BinanceSim | None = None, retry: RetryPolicy = RetryPolicy(seed=1),
                   timeout_ms: int = 3000, fast_sleep: bool = True, enable_rate_limit: bool = False,
                   **adapter_kw: Any) -> AsyncIterator[LiveEnv]:
    sim = sim or BinanceSim(api_key=TEST_KEY, secret=TEST_SECRET)
    creds = Credentials("binance", TEST_KEY, TEST_SECRET, source="test")
    async with SimServer(sim, test_ca()) as server:
        session = redirect_session({h: server.port for h in HOSTS}, server.client_ssl)
        kw: dict[str, Any] = {"sleep": _noop_sleep} if fast_sleep else {}
        # each environment is its own account (a rate-limit state never leaks between tests);
        # pass governor= to share one
        kw["governor"] = RateGovernor("binance", "test-env")
        kw.update(adapter_kw)
        adapter = CcxtLiveAdapter("binance", creds, session=session, retry=retry, timeout_ms=timeout_ms,
                                  enable_rate_limit=enable_rate_limit, fill_poll_interval=0.01, **kw)
        try:
            yield LiveEnv(sim, server, session, adapter, creds)
        finally:
            await adapter.close()
            await session.close()


@dataclass
class BybitEnv:
    sim: BybitSim
    server: SimServer
    session: Any
    adapter: CcxtLiveAdapter


@contextlib.asynccontextmanager
async def bybit_env(*, sim: BybitSim | None = None, retry: RetryPolicy = RetryPolicy(seed=1),
                    timeout_ms: int = 3000, **adapter_kw: Any) -> AsyncIterator[BybitEnv]:
    """The Bybit simulator behind the same kind of redirect session, with a bybit adapter."""
    sim = sim or BybitSim(api_key=TEST_KEY, secret=TEST_SECRET)
    creds = Credentials("bybit", TEST_KEY, TEST_SECRET, source="test")
    async with SimServer(sim, test_ca(), hosts=BYBIT_HOSTS) as server:  # type: ignore[arg-type]
        session = redirect_session({h: server.port for h in BYBIT_HOSTS}, server.client_ssl)
        adapter_kw.setdefault("governor", RateGovernor("bybit", "test-env"))
        adapter = CcxtLiveAdapter("bybit", creds, session=session, retry=retry, timeout_ms=timeout_ms,
                                  enable_rate_limit=False, fill_poll_interval=0.01, sleep=_noop_sleep,
                                  **adapter_kw)
        try:
            yield BybitEnv(sim, server, session, adapter)
        finally:
            await adapter.close()
            await session.close()


TEST_PASSPHRASE = "simPASS-okx-7e2b"


@dataclass
class OkxEnv:
    sim: Any  # tests.support.okx_sim.OkxSim
    server: SimServer
    session: Any
    adapter: CcxtLiveAdapter


@contextlib.asynccontextmanager
async def okx_env(*, sim: Any = None, retry: RetryPolicy = RetryPolicy(seed=1),
                  timeout_ms: int = 3000, **adapter_kw: Any) -> AsyncIterator[OkxEnv]:
    """The OKX simulator behind a redirect session (``www.okx.com``), with an okx adapter holding the
    key, secret and passphrase (OK-ACCESS-PASSPHRASE)."""
    from tests.support.okx_sim import HOSTS as OKX_HOSTS
    from tests.support.okx_sim import OkxSim

    sim = sim or OkxSim(api_key=TEST_KEY, secret=TEST_SECRET, passphrase=TEST_PASSPHRASE)
    creds = Credentials("okx", TEST_KEY, TEST_SECRET, TEST_PASSPHRASE, source="test")
    async with SimServer(sim, test_ca(), hosts=OKX_HOSTS) as server:  # type: ignore[arg-type]
        session = redirect_session({h: server.port for h in OKX_HOSTS}, server.client_ssl)
        adapter_kw.setdefault("governor", RateGovernor("okx", "test-env"))
        adapter = CcxtLiveAdapter("okx", creds, session=session, retry=retry, timeout_ms=timeout_ms,
                                  enable_rate_limit=False, fill_poll_interval=0.01, sleep=_noop_sleep,
                                  **adapter_kw)
        try:
            yield OkxEnv(sim, server, session, adapter)
        finally:
            await adapter.close()
            await session.close()


OKX_QTR = "BTC-USDT-QTR"  # the OKX simulator's FUTURES instrument (ctVal 0.01 BTC)


def okx_quarterly(sim: Any, *, days: int = 90, spot: float = 30_000.0, price: float = 30_300.0) -> int:
    """Make the OKX simulator's FUTURES row ``BTC-USDT-QTR`` a quarterly expiring ``days`` days out at 08:00 UTC
    (OKX's delivery time; "Get instruments" ``expTime``), priced ``price`` against ``spot`` for BTC-USDT and the
    swap (default: a 1 % basis). Returns the expiry in ms since the epoch."""
    from tests.support.roll_runner import delivery_ms

    expiry_ms = delivery_ms(sim.now_ms(), days)
    row = {**sim.instrument_rows["FUTURES"][0], "instId": OKX_QTR, "expTime": str(expiry_ms)}
    sim.instrument_rows["FUTURES"] = [row]
    sim.register(row)
    for iid, px in (("BTC-USDT", spot), ("BTC-USDT-SWAP", spot), (OKX_QTR, price)):
        sim.set_price(iid, px)
    return expiry_ms


async def okx_carry_entered(adapter: Any, sim: Any, hedge_id: str, notional: float) -> tuple[Any, dict, str, Any, Any]:
    """A carry HedgeDriver (``notional`` USDT, any carry accepted) on the OKX ``adapter`` holding BTC/USDT spot and
    the BTC/USDT:USDT swap, entered on one market update (30,000 both, funding 0.1 %/8 h) at the simulator's now,
    after :func:`okx_quarterly`. Returns (driver, markets, the quarterly's ccxt symbol, its expiry, now)."""
    import pandas as pd

    from hedge_core.engine import MarketUpdate, new_hedge
    from hedge_core.engine.driver import HedgeDriver
    from hedge_core.params.models import CarryParams

    m = await adapter.load_markets()
    [(fut, expiry)] = await adapter.dated_futures("BTC")
    now = pd.Timestamp(sim.now_ms(), unit="ms", tz="UTC")
    drv = HedgeDriver(new_hedge(hedge_id, "carry", m["BTC/USDT"], m["BTC/USDT:USDT"], now),
                      CarryParams(notional=notional, min_net_carry=-1.0), {"okx": adapter})
    await drv.feed(MarketUpdate(now, 30_000.0, 30_000.0, funding_rate=0.001))
    return drv, m, fut, expiry, now
