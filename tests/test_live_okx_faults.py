"""OKX faults at the adapter: a lost order answer bounded by the ``expTime`` header, and the sub-account rate
limit (50061) typed as a rate limit. Real ccxt against tests/support/okx_sim.py with tests/support/okx_faults.py;
the same faults through a runner process are in tests/test_live_fault_matrix.py."""

from __future__ import annotations

import asyncio

import pytest

from hedge_core import errors as he
from hedge_core.exchange.base import RetryPolicy
from hedge_core.types import OrderRequest, Side, client_order_id
from tests.support.live_env import okx_env
from tests.support.okx_faults import OkxFaults

PERP = "BTC/USDT:USDT"


def cid(n: int) -> str:
    return client_order_id("okx", "x", n)


def test_okx_lost_order_past_its_window_is_never_processed():
    """An order whose answer is lost (HTTP 503) reaches OKX's matching engine only 0.8 s later. The adapter's
    window for it is recvWindow 300 ms + margin 0.1 s: after that it treats "no such order" as final. OKX
    would still process a request up to 30 s after its timestamp, so the adapter must send ``expTime``
    ("Transaction Timeouts": not processed after it) = timestamp + recvWindow; the late order is then
    discarded by the venue instead of executing after being written off. Fails without the header."""
    async def go():
        async with okx_env(ccxt_options={"recvWindow": 300}, outcome_margin_s=0.1,
                           retry=RetryPolicy(max_attempts=1)) as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTC-USDT-SWAP", 30_000.0)
            await a.load_markets()
            faults = OkxFaults(sim)
            faults.lose_answer(inst_id="BTC-USDT-SWAP", mode="503", execute_after_s=0.8)
            with pytest.raises(he.OrderOutcomeUnknown) as err:
                await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, cid(1)))
            window = (err.value.window_end - err.value.sent_at).total_seconds()
            assert window == pytest.approx(0.4)
            [(key, deadline_after_ts)] = [d for d in faults.deadlines if d[0].startswith("POST")]
            assert deadline_after_ts == 300  # expTime = OK-ACCESS-TIMESTAMP + recvWindow
            await asyncio.sleep(1.2)  # past the late execution
            venue_cid = cid(1).replace("-", "")
            assert faults.discarded == [venue_cid] and faults.late == []
            assert sim.order_count(venue_cid) == 0 and sim.positions.get("BTC-USDT-SWAP", [0.0])[0] == 0
            assert await a.find_order(PERP, cid(1)) is None
    asyncio.run(go())


def test_okx_order_within_its_window_is_processed_late_and_found():
    """The same lost answer, executed 0.2 s later (inside the 300 ms deadline): the venue processes it and the
    adapter's look-up by client id finds it (the case the window exists for)."""
    async def go():
        async with okx_env(ccxt_options={"recvWindow": 300}, outcome_margin_s=0.1,
                           retry=RetryPolicy(max_attempts=1)) as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTC-USDT-SWAP", 30_000.0)
            await a.load_markets()
            faults = OkxFaults(sim)
            faults.lose_answer(inst_id="BTC-USDT-SWAP", mode="503", execute_after_s=0.2)
            with pytest.raises(he.OrderOutcomeUnknown):
                await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, cid(2)))
            await asyncio.sleep(0.4)
            found = await a.find_order(PERP, cid(2))
            assert found is not None and found.filled == pytest.approx(0.01)
            assert sim.positions["BTC-USDT-SWAP"][0] == -1  # one contract of 0.01 BTC, once
    asyncio.run(go())


def test_okx_rate_limit_escalation_is_temporary_and_places_nothing():
    """50011 (the instrument's limit, HTTP 429) then 50061 (the sub-account's order limit): both are rate
    limits ("Overview" -> "Rate Limits"), retried later, never an operational stop. ccxt raises a plain
    ExchangeError for 50061: without the code table of errors_map it stopped the hedge."""
    async def go():
        async with okx_env(retry=RetryPolicy(max_attempts=1)) as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTC-USDT-SWAP", 30_000.0)
            await a.load_markets()
            faults = OkxFaults(sim)
            faults.escalate(r"POST /api/v5/trade/order$", "BTC-USDT-SWAP")
            for code in ("50011", "50061"):
                with pytest.raises(he.RateLimited) as err:
                    await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, cid(3)))
                assert code in str(err.value) and isinstance(err.value, he.TemporaryError)
            assert sim.order_count(cid(3).replace("-", "")) == 0
            o = await a.create_order(OrderRequest(PERP, Side.SELL, 0.01, cid(3)))  # the limit is over
            assert o.filled == pytest.approx(0.01) and sim.order_count(cid(3).replace("-", "")) == 1
    asyncio.run(go())


def test_the_rate_limit_code_table_is_per_venue():
    """50061 is OKX's sub-account limit; the same digits from another venue keep ccxt's meaning."""
    import ccxt

    from hedge_core.exchange.errors_map import hedge_error_class

    exc = ccxt.ExchangeError('okx {"code": "50061", "msg": "Sub-account rate limit exceeded.", "data": []}')
    assert hedge_error_class(exc, venue="okx") is he.RateLimited
    assert hedge_error_class(exc, venue="bybit") is he.OperationalError
    assert hedge_error_class(ccxt.ExchangeError('okx {"code": "50062", "msg": "x", "data": []}'),
                             venue="okx") is he.OperationalError
