"""First run: real data when reachable (fake exchange here), else the demo market; failures say what to do."""

from __future__ import annotations

import ccxt
import pandas as pd
import pytest

from hedge_core.data.seed import SeedFailed, ensure_seeded
from hedge_core.store import Store
from tests.support.fake_exchange import NOW, FakeExchange


def never_called() -> bool:
    raise AssertionError("the network must not be probed")


@pytest.fixture()
def store() -> Store:
    st = Store(":memory:")
    yield st
    st.close()


def test_existing_data_left_alone(store: Store) -> None:
    from hedge_core.data.demo import seed_demo

    seed_demo(store, days=2, seed=1)
    before = store.series()
    res = ensure_seeded(store, network_probe=never_called, progress=False)
    assert res.source == "existing"
    pd.testing.assert_frame_equal(before, store.series())


def test_offline_falls_back_to_demo(store: Store) -> None:
    made = []
    res = ensure_seeded(store, network_probe=lambda: False, progress=False, days=10,
                        exchange_factory=lambda v: made.append(v))
    assert res.source == "demo" and made == []
    assert "SYNTHETIC" in res.message and "not reachable" in res.message
    s = store.series()
    assert set(s["venue"]) == {"demo"} and len(s) == 8


def test_online_downloads_binance_like(store: Store) -> None:
    ex = FakeExchange(NOW)
    seen = []
    res = ensure_seeded(store, network_probe=lambda: True, progress=seen.append,
                        exchange_factory=lambda venue: ex, days=365)
    assert res.source == "binance"
    s = store.series()
    assert set(s["venue"]) == {"fakex"} and set(s["kind"]) == {"spot", "perp", "mark", "funding"}
    assert len(s) == 8 and seen and seen[-1].done
    assert {c[1] for c in ex.calls} == {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "ETH/USDT:USDT"}


def test_refused_before_any_data_falls_back(store: Store) -> None:
    class Blocked(FakeExchange):
        def fetch_ohlcv(self, *a, **k):  # noqa: ANN002, ANN003
            raise ccxt.ExchangeNotAvailable("451 Service unavailable from a restricted location")

    msgs: list[str] = []
    slept: list[float] = []
    res = ensure_seeded(store, network_probe=lambda: True, progress=False, echo=msgs.append, days=5,
                        exchange_factory=lambda v: Blocked(NOW), sleep=slept.append)
    assert slept == [1.0, 2.0]  # ccxt calls this one temporary: retried twice, briefly
    assert res.source == "demo" and "refused" in res.message and "restricted location" in res.message
    assert any("demo" in m for m in msgs)


def test_failure_mid_way_says_what_to_do(store: Store) -> None:
    ex = FakeExchange(NOW, max_limit=200, fail_calls=(3,))

    with pytest.raises(SeedFailed, match="resumes") as e:
        ensure_seeded(store, network_probe=lambda: True, progress=False, exchange_factory=lambda v: ex,
                      max_retries=0)
    assert "hedge data download" in str(e.value)
    assert int(store.series()["rows"].sum()) == 400  # what arrived is kept for the resume
