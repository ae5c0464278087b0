"""ccxt downloader against an offline fake exchange honouring ccxt's signatures and pagination."""

from __future__ import annotations

import pandas as pd
import pytest

from hedge_core.data.download import (
    download,
    download_bars,
    download_funding,
    infer_interval_hours,
)
from hedge_core.errors import NetworkError, OperationalError
from hedge_core.store import Store
from tests.support.fake_exchange import NOW, T0, FakeExchange, H


@pytest.fixture()
def store() -> Store:
    st = Store(":memory:")
    yield st
    st.close()


def test_full_download_matches_source_and_drops_open_bar(store: Store) -> None:
    ex = FakeExchange(NOW)
    seen = []
    summary = download(store, ex, ["BTC/USDT", "ETH/USDT"], since=pd.Timestamp(T0, unit="ms", tz="UTC"),
                       limit=1000, show_bar=False, progress=seen.append)
    perp = store.read_bars("fakex", "BTC/USDT:USDT", "perp", "1h")
    assert len(perp) == 1500  # the open bar at T0 + 1500h is not stored
    assert perp.index[-1] == pd.Timestamp(T0 + 1499 * H, unit="ms", tz="UTC")
    i = 777
    assert perp["close"].iloc[i] == FakeExchange.price("BTC/USDT:USDT", T0 + i * H, "bar")[3]
    spot = store.read_bars("fakex", "ETH/USDT", "spot", "1h")
    assert spot["open"].iloc[3] == FakeExchange.price("ETH/USDT", T0 + 3 * H, "bar")[0]
    mark = store.read_bars("fakex", "BTC/USDT:USDT", "mark", "1h")
    assert mark["volume"].isna().all() and len(mark) == 1500
    assert all(c[5] == "mark" for c in ex.calls if c[0] == "ohlcv" and c[1] == "BTC/USDT:USDT" and c[5])
    assert sum(1 for c in ex.calls if c[5] == "mark") == 2 * 3  # 500 bars per page, 2 symbols
    fr = store.read_funding("fakex", "ETH/USDT:USDT")
    expected_t = [t for t in ex.funding_times() if t <= NOW]
    assert len(fr) == len(expected_t)
    assert fr.index[1] == pd.Timestamp(T0 + 8 * H, unit="ms", tz="UTC")  # 17 ms late -> on the second
    assert (fr["interval_hours"] == 8.0).all()
    assert set(summary["rows"]) == {1500, len(expected_t)}
    finals = [p for p in seen if p.done]
    assert len(finals) == 8 and all(p.fraction == 1.0 for p in finals)
    fracs = [p.fraction for p in seen if p.kind == "perp" and p.symbol == "BTC/USDT:USDT" and not p.done]
    assert fracs == sorted(fracs) and 0 < fracs[0] < 1


def test_resume_after_crash_requests_only_missing(store: Store) -> None:
    since = pd.Timestamp(T0, unit="ms", tz="UTC")
    ex = FakeExchange(NOW, max_limit=200, fail_calls=(4,))  # the 4th request dies (after 3 pages)
    with pytest.raises(NetworkError, match="resumes"):
        download_bars(store, ex, "BTC/USDT", "perp", "1h", since=since, show_bar=False, max_retries=0)
    assert len(store.read_bars("fakex", "BTC/USDT:USDT", "perp", "1h")) == 600  # 3 pages kept
    ex2 = FakeExchange(NOW, max_limit=200)
    n = download_bars(store, ex2, "BTC/USDT", "perp", "1h", since=since, show_bar=False)
    assert n == 900
    sinces = [c[3] for c in ex2.calls]
    assert sinces[0] == T0 + 600 * H  # starts right after the stored data, never re-asks for it
    assert sinces == [T0 + k * 200 * H for k in range(3, 8)]
    got = store.read_bars("fakex", "BTC/USDT:USDT", "perp", "1h")
    assert len(got) == 1500 and got.index.is_unique and got.index.is_monotonic_increasing
    # nothing new on the venue: no request at all
    ex3 = FakeExchange(NOW, max_limit=200)
    assert download_bars(store, ex3, "BTC/USDT", "perp", "1h", since=since, show_bar=False) == 0
    assert ex3.calls == []
    # five more hours: exactly one request from the next missing bar
    ex4 = FakeExchange(NOW + 5 * H, max_limit=200)
    assert download_bars(store, ex4, "BTC/USDT", "perp", "1h", since=since, show_bar=False) == 5
    assert [c[3] for c in ex4.calls] == [T0 + 1500 * H]


def test_funding_resume_and_incremental(store: Store) -> None:
    since = pd.Timestamp(T0, unit="ms", tz="UTC")
    ex = FakeExchange(NOW, max_limit=50, fail_calls=(2,))
    with pytest.raises(NetworkError):
        download_funding(store, ex, "BTC/USDT", since=since, show_bar=False, max_retries=0)
    assert len(store.read_funding("fakex", "BTC/USDT:USDT")) == 50  # page 1 kept, page 2 died
    ex2 = FakeExchange(NOW, max_limit=50)
    download_funding(store, ex2, "BTC/USDT", since=since, show_bar=False)
    assert ex2.calls[0][3] == T0 + 49 * 8 * H + 1000  # one second after the last stored event
    fr = store.read_funding("fakex", "BTC/USDT:USDT")
    assert len(fr) == len(ex.funding_times())
    rates = {t: x for t, x in zip(fr.index, fr["funding_rate"])}
    t = ex.funding_times()[150]
    assert rates[pd.Timestamp(t // 1000 * 1000, unit="ms", tz="UTC")] == 0.0001 * (1 + (t // H) % 3)


def test_temporary_errors_retried_with_backoff(store: Store) -> None:
    ex = FakeExchange(T0 + 10 * H, fail_calls=(1, 2))
    slept: list[float] = []
    n = download_bars(store, ex, "ETH/USDT", "spot", "1h", since=pd.Timestamp(T0, unit="ms", tz="UTC"),
                      show_bar=False, max_retries=3, sleep=slept.append)
    assert n == 10 and slept == [1.0, 2.0]


def test_unsupported_kind_says_so(store: Store) -> None:
    ex = FakeExchange(NOW, has_mark=False)
    with pytest.raises(OperationalError, match="fetchMarkOHLCV"):
        download(store, ex, ["BTC/USDT"], since=pd.Timestamp(T0, unit="ms", tz="UTC"), show_bar=False)
    assert ex.calls == [] and store.series().empty  # checked before any request


def test_infer_interval_hours() -> None:
    t = [0, 8 * H, 16 * H, 20 * H, 24 * H, 25 * H]
    assert infer_interval_hours(t).tolist() == [8, 8, 8, 4, 4, 1]
    assert infer_interval_hours([10 * H], previous_ms=6 * H).tolist() == [4]
    assert infer_interval_hours([0, 5 * H]).tolist() == [8, 8]  # odd spacing -> default
