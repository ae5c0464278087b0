"""The rate-limit governor against the simulators' documented limits (real ccxt).

- Binance 429 + Retry-After: no request on that account sooner (measured on the venue's log).
- Requests continuing during the back-off (another process on the same IP) -> 418 IP ban ->
  zero requests during the ban, a typed VenueBanned with the ban end, /health "degraded" with
  the end and one ``rate_limit_ban`` alert; cleared when the ban is over.
- Bybit 10006 (X-Bapi-Limit-Reset-Timestamp), 10018 and HTTP 403 likewise.
- One governor per venue + key fingerprint, shared by every adapter in the process.
"""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hedge_core import errors as he
from hedge_core.exchange.base import RetryPolicy
from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter
from hedge_core.exchange.credentials import Credentials
from hedge_core.exchange.governor import RateGovernor, governor_for, key_fingerprint, reset_registry
from hedge_core.runner.ban_watch import BAN_CONDITION
from tests.support.binance_faults import BinanceFaults
from tests.support.bybit_faults import BybitFaults
from tests.support.live_env import TEST_KEY, TEST_SECRET, bybit_env, live_env


@pytest.fixture(autouse=True)
def _fresh_governors():
    reset_registry()
    yield
    reset_registry()


def _requests_between(log, start: float, end: float, prefix: str = "") -> list[str]:
    return [k for t, k in log if start < t < end and k.startswith(prefix)]


def test_one_governor_per_venue_and_key_fingerprint_never_the_key():
    a = governor_for("binance", TEST_KEY)
    assert governor_for("binance", TEST_KEY) is a
    # every adapter of the process on that venue + key shares it (hedges, feeds, dead man's switch)
    creds = Credentials("binance", TEST_KEY, TEST_SECRET, source="test")
    assert CcxtLiveAdapter("binance", creds).governor is a is CcxtLiveAdapter("binance", creds).governor
    assert CcxtLiveAdapter("binance", None).governor is governor_for("binance", None)
    assert governor_for("bybit", TEST_KEY) is not a and governor_for("binance", "other") is not a
    assert a.account == key_fingerprint(TEST_KEY) and TEST_KEY not in a.account and len(a.account) == 12


def test_429_retry_after_is_honoured_on_the_account():
    async def go():
        async with live_env(fast_sleep=False, retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=2.0, seed=1)) as env:
            faults = BinanceFaults(env.sim)
            await env.adapter.load_markets()
            faults.rate_limit(r"GET /api/v3/account", retry_after_s=1)
            # waited Retry-After (1 s) inside the bounded retry, then the answer came
            bal = await env.adapter.fetch_balance("spot")
            assert bal["USDT"].free == pytest.approx(10_000.0)
            (t429,) = [t for t, k in faults.log if k == "GET /api/v3/account"][:1]
            assert not _requests_between(faults.log, t429, t429 + 1.0)
            assert faults.answers_418 == 0 and faults.answers_429 == 1
            # another adapter on the same key shares the back-off: refused without a request
            faults.rate_limit(r"GET /api/v3/account", retry_after_s=3)
            with pytest.raises(he.RateLimited) as ei:
                await env.adapter.fetch_balance("spot")  # 3 s > the policy's max delay: not waited here
            assert 2.5 < ei.value.retry_after <= 3.0
            n = len(faults.log)
            async with live_env(sim=env.sim, governor=env.adapter.governor) as other:
                assert other.adapter.governor is env.adapter.governor
                with pytest.raises(he.RateLimited):
                    await other.adapter.fetch_ticker("BTC/USDT:USDT")
            assert len(faults.log) == n and faults.answers_418 == 0
    asyncio.run(go())


def _supervisor(tmp_path):
    from hedge_core.runner.supervisor import Supervisor
    from hedge_core.store import Store

    return Supervisor(Store(tmp_path / "g.duckdb"), tmp_path / "home")


def test_continued_requests_get_a_418_ban_then_nothing_is_sent_and_health_degrades(tmp_path):
    async def go():
        sup = _supervisor(tmp_path)
        async with live_env() as env:
            faults = BinanceFaults(env.sim)
            adapter = sup._register_secrets(env.adapter)  # what _adapter_for does with a live adapter
            await adapter.load_markets()
            faults.rate_limit(r"GET /api/v3/account", retry_after_s=2, ban_s=3)
            with pytest.raises(he.RateLimited):
                await adapter.fetch_balance("spot")
            # a second process on the same IP (its own governor) ignores the back-off -> 418 IP ban
            async with live_env(sim=env.sim, governor=RateGovernor("binance", "proc2")) as rogue:
                with pytest.raises(he.VenueBanned):
                    await rogue.adapter.fetch_ticker("BTC/USDT:USDT")
            assert faults.answers_418 >= 1  # (ccxt asks both hosts for markets at once)
            # our account's next request meets the ban at the venue (after its own back-off)
            await asyncio.sleep(2.05)
            with pytest.raises(he.VenueBanned) as ei:
                await adapter.fetch_balance("spot")
            end = ei.value.until
            assert isinstance(end, pd.Timestamp) and 0 < (end - pd.Timestamp.now(tz="UTC")).total_seconds() <= 3.0
            # during the ban: typed refusals, zero requests of any kind
            n = len(faults.log)
            for call in (adapter.fetch_balance("spot"), adapter.fetch_positions(),
                         adapter.arm_cancel_all_after("BTC/USDT:USDT", 30)):
                with pytest.raises(he.VenueBanned):
                    await call
            assert len(faults.log) == n
            h = sup.health()
            assert h["status"] == "degraded"
            assert end.isoformat() in h["degraded"]["venue:binance"][BAN_CONDITION]
            bans = [m for m in sup.alert_bus.recent if m.kind == BAN_CONDITION]
            assert len(bans) == 1 and bans[0].venue == "binance" and end.isoformat() in bans[0].message
            # the ban ends: health clears, requests flow again
            await asyncio.sleep(max((end - pd.Timestamp.now(tz="UTC")).total_seconds(), 0) + 0.1)
            assert sup.health()["status"] == "ok"
            assert (await adapter.fetch_balance("spot"))["USDT"].free == pytest.approx(10_000.0)
        sup.ban_watch.close()
        sup.store.close()
    asyncio.run(go())


def test_bybit_10006_waits_for_the_reset_timestamp():
    async def go():
        async with bybit_env() as env:
            faults = BybitFaults(env.sim)
            await env.adapter.load_markets()
            faults.too_many_visits(r"/v5/account/wallet-balance", reset_s=2.0)
            with pytest.raises(he.RateLimited) as ei:
                await env.adapter.fetch_balance("spot")
            assert 1.5 < ei.value.retry_after <= 2.0
            n = len(faults.log)
            with pytest.raises(he.RateLimited):
                await env.adapter.fetch_ticker("BTC/USDT")
            assert len(faults.log) == n  # nothing sent before the reset
            await asyncio.sleep(2.05)
            assert "USDT" in await env.adapter.fetch_balance("spot")
    asyncio.run(go())


@pytest.mark.parametrize("kind", ["10018", "403"])
def test_bybit_ip_limit_is_a_ban_with_health_and_alert(kind, tmp_path):
    async def go():
        sup = _supervisor(tmp_path)
        async with bybit_env() as env:
            faults = BybitFaults(env.sim)
            adapter = sup._register_secrets(env.adapter)
            await adapter.load_markets()
            if kind == "10018":
                faults.ip_limit(r"/v5/account/wallet-balance", reset_s=30.0)
            else:
                faults.ip_ban(600.0)
            with pytest.raises(he.VenueBanned) as ei:
                await adapter.fetch_balance("spot")
            left = (ei.value.until - pd.Timestamp.now(tz="UTC")).total_seconds()
            assert (25 < left <= 30) if kind == "10018" else (590 < left <= 600)
            n = len(faults.log)
            with pytest.raises(he.VenueBanned):
                await adapter.fetch_ticker("BTC/USDT")
            assert len(faults.log) == n
            h = sup.health()
            assert h["status"] == "degraded" and BAN_CONDITION in h["degraded"]["venue:bybit"]
            assert [m.kind for m in sup.alert_bus.recent].count(BAN_CONDITION) == 1
        sup.ban_watch.close()
        sup.store.close()
    asyncio.run(go())


def test_an_order_refused_with_429_holds_the_leg_and_goes_out_under_a_new_id_after_retry_after():
    from hedge_core.engine import MarketUpdate, State, new_hedge
    from hedge_core.engine.actions import Alert, PlaceOrder
    from hedge_core.engine.driver import DriverHooks, HedgeDriver
    from hedge_core.engine.events import Timer
    from hedge_core.params.models import CarryParams

    async def go():
        async with live_env() as env:
            faults = BinanceFaults(env.sim)
            env.sim.set_price("BTCUSDT", 20_000.0)
            inst = await env.adapter.load_markets()
            alerts: list[Alert] = []
            drv = HedgeDriver(new_hedge("gv", "carry", inst["BTC/USDT"], inst["BTC/USDT:USDT"],
                                        pd.Timestamp.now(tz="UTC")),
                              CarryParams(notional=2_000.0, min_net_carry=-1.0), {"binance": env.adapter},
                              hooks=DriverHooks(on_alert=lambda _h, a: alerts.append(a)), poll_external_fills=False)
            faults.rate_limit(r"POST /api/v3/order$", retry_after_s=1)
            await drv.feed(MarketUpdate(pd.Timestamp.now(tz="UTC"), 20_000.0, 20_000.0, funding_rate=0.001))
            (first,) = [a.request.client_order_id for a in drv.actions if isinstance(a, PlaceOrder)]
            assert drv.ctx.pending[first].status == "held" and any(first in a.message for a in alerts)
            t429 = [t for t, k in faults.log if k == "POST /api/v3/order"][0]
            for _ in range(15):
                await asyncio.sleep(0.1)
                await drv.feed(Timer(pd.Timestamp.now(tz="UTC")))
            assert not _requests_between(faults.log, t429, t429 + 1.0)  # nothing at all during Retry-After
            # each re-send is linked to the one before (a re-send the governor still refuses, a few
            # ms early on the hedge's clock, is held again: no request either way)
            retries = [a for a in drv.actions if isinstance(a, PlaceOrder) and a.retry_of]
            assert retries and retries[0].retry_of == first
            assert all(b.retry_of == a.request.client_order_id for a, b in zip(retries, retries[1:]))
            assert all(r.request.client_order_id[:7] == first[:7] for r in retries)
            assert len(faults.executed_for(first)) == 1 and faults.answers_418 == 0
            assert drv.ctx.state is State.MONITORING_POSITIONS
    asyncio.run(go())


class _Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_governor_state_machine_on_a_fake_clock():
    clock = _Clock()
    gov = RateGovernor("binance", "acct", clock=clock, weight_limit_1m=100)
    events = []
    gov.subscribe(events.append)
    gov.after_answer({"x-mbx-used-weight-1m": "40", "X-MBX-ORDER-COUNT-10S": "3"})
    assert (gov.state.used_weight_1m, gov.state.order_count_10s) == (40, 3)
    gov.before("fetch_ticker")  # free
    assert gov.after_error(429, "-1003", "binance 429", {"Retry-After": "5"}) == 5.0
    clock.t += 4.9
    with pytest.raises(he.RateLimited) as ei:
        gov.before("create_order")
    assert ei.value.retry_after == pytest.approx(0.1) and not isinstance(ei.value, he.VenueBanned)
    clock.t += 0.1
    gov.before("create_order")
    # a 418 without Retry-After: the end named in the message
    end_ms = int((clock.t + 120) * 1000)
    gov.after_error(418, "-1003", f"binance 418 IP banned until {end_ms}.", {})
    assert gov.banned and gov.ban_end == pd.Timestamp(end_ms, unit="ms", tz="UTC")
    assert [e.active for e in events] == [True]
    with pytest.raises(he.VenueBanned) as ei:
        gov.before("arm_cancel_all_after")
    assert ei.value.until == gov.ban_end and ei.value.retry_after == pytest.approx(120.0)
    clock.t += 120.0
    gov.before("fetch_balance")  # over: listeners hear the end
    assert [e.active for e in events] == [True, False] and not gov.banned
    # weight at the limit: pause until the next minute starts
    gov.after_answer({"X-MBX-USED-WEIGHT-1M": "100"})
    assert 0 < gov.wait_s() <= 60.0
    # a rate limit naming no wait does not block (the bounded backoff applies)
    g2 = RateGovernor("bybit", "acct", clock=clock)
    assert g2.after_error(None, "10006", "Too many visits!", {}) == 0.0 and g2.wait_s() == 0.0
    reset = int((clock.t + 2.5) * 1000)
    assert g2.after_error(None, "10006", "", {"X-Bapi-Limit-Reset-Timestamp": str(reset)}) == pytest.approx(2.5)
    assert g2.after_error(403, None, "access too frequent", {}) == pytest.approx(600.0) and g2.banned
    assert g2.after_error(200, "1000", "something else", {}) is None


def test_okx_rate_limit_naming_no_reset_waits_one_window_without_blocking_the_account():
    # OKX's 50011 / 50061 name no reset time ("Rate Limits": limits per endpoint, counted per 2 s window): the
    # caller waits one window (an order refused so holds its leg 2 s and goes out under a new id, instead of
    # being held as an unknown outcome for a lookup window); other endpoints' requests are not refused
    from hedge_core.exchange.governor import OKX_LIMIT_WINDOW_S

    clock = _Clock()
    gov = RateGovernor("okx", "acct", clock=clock)
    assert OKX_LIMIT_WINDOW_S == 2.0
    assert gov.after_error(429, "50011", "Rate limit reached", {}) == 2.0
    assert gov.after_error(429, "50061", "Sub-account rate limit exceeded.", {}) == 2.0
    assert gov.wait_s() == 0.0
    gov.before("fetch_balance")  # not blocked
    assert gov.state.backoffs == 2
