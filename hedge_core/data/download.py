"""Incremental, resumable ccxt downloader for spot/perp/mark OHLCV and funding-rate history.

Sync ccxt (``ccxt.<id>({'enableRateLimit': True})``: ccxt itself spaces requests by the exchange's
``rateLimit``). The exchange object is injected, so tests pass a fake honouring ccxt's signatures:
``fetch_ohlcv(symbol, timeframe, since, limit, params)`` -> ``[[ms, o, h, l, c, v], ...]`` and
``fetch_funding_rate_history(symbol, since, limit)`` -> ``[{'timestamp', 'fundingRate', 'symbol'}, ...]``.

Resumable: each series starts at ``store.last_ts + one bar`` (funding: ``+ 1 s``) and every page is
validated and written (idempotent upsert) as soon as it arrives, so a crash loses at most the page in
flight and a re-run requests only what is missing. The still-open last bar (open + bar > now) is
never written. Temporary ccxt errors (network, rate limit) are retried with bounded backoff; when
retries run out a :class:`hedge_core.errors.NetworkError` says to re-run (it resumes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from hedge_core.data.validate import canonical_bars, canonical_funding, timeframe_delta
from hedge_core.errors import ExchangeError, InvalidInput, NetworkError, OperationalError
from hedge_core.types import perp_of, spot_of

KINDS = ("spot", "perp", "mark", "funding")
HAS = {"spot": "fetchOHLCV", "perp": "fetchOHLCV", "mark": "fetchMarkOHLCV", "funding": "fetchFundingRateHistory"}
FUNDING_INTERVALS_H = (1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """Reported after every page. ``fraction`` of the series' time range done, 0..1."""

    venue: str
    symbol: str
    kind: str
    timeframe: str | None
    requests: int
    rows: int  # rows written so far for this series in this run
    cursor: pd.Timestamp  # next timestamp to fetch
    end: pd.Timestamp
    fraction: float
    done: bool


ProgressFn = Callable[[DownloadProgress], None]


def make_exchange(venue: str, **config: Any) -> Any:
    """A sync ccxt exchange with rate limiting on (``venue`` = ccxt id, e.g. 'binance')."""
    import ccxt

    if venue not in ccxt.exchanges:
        raise InvalidInput("venue", venue, "a ccxt exchange id such as 'binance', 'bybit' or 'okx'")
    return getattr(ccxt, venue)({"enableRateLimit": True, **config})


def _now_ms(exchange: Any, now: pd.Timestamp | None) -> int:
    if now is not None:
        return int(pd.Timestamp(now).value // 1_000_000)
    return int(exchange.milliseconds())


def _call(exchange: Any, method: str, fn: Callable[[], Any], *, max_retries: int,
          sleep: Callable[[float], None]) -> Any:
    """Call ccxt, retrying temporary errors with exponential backoff; translate errors once, here."""
    import ccxt

    venue = getattr(exchange, "id", "?")
    delay = 1.0
    for attempt in range(max_retries + 1):
        try:
            return fn()
        except ccxt.NetworkError as e:  # includes RateLimitExceeded, RequestTimeout, DDoSProtection
            if attempt >= max_retries:
                raise NetworkError(f"{type(e).__name__}: {e}. Nothing is lost: re-run the download, it resumes "
                                   "where it stopped", venue=venue, method=method) from e
            sleep(delay)
            delay = min(delay * 2, 30.0)
        except ccxt.BaseError as e:
            raise ExchangeError(f"{type(e).__name__}: {e}", venue=venue, method=method) from e
    raise AssertionError("unreachable")


def _check_has(exchange: Any, kind: str) -> None:
    cap = HAS[kind]
    has = getattr(exchange, "has", {}) or {}
    if not has.get(cap):
        raise OperationalError(f"{getattr(exchange, 'id', '?')} does not support {cap} (needed for {kind} data); "
                               "import files instead (hedge data import)", venue=getattr(exchange, "id", ""),
                               method=cap)


def download_bars(store: Any, exchange: Any, symbol: str, kind: str, timeframe: str = "1h", *,
                  since: pd.Timestamp, now: pd.Timestamp | None = None, limit: int = 1000,
                  progress: ProgressFn | None = None, show_bar: bool = True, max_retries: int = 5,
                  sleep: Callable[[float], None] = time.sleep) -> int:
    """Download closed OHLCV bars of one series into the store; returns rows written.

    Parameters
    ----------
    symbol : ccxt unified symbol; spot bars are stored on the spot symbol, perp/mark on the perp symbol.
    kind : 'spot', 'perp' or 'mark' (mark: ``fetch_ohlcv(..., params={'price': 'mark'})``).
    since : first bar open time wanted when the store has none of this series (UTC).
    now : the current time (default: the exchange's clock); bars with ``open + bar > now`` are open
        and skipped.
    """
    if kind not in ("spot", "perp", "mark"):
        raise InvalidInput("kind", kind, "'spot', 'perp' or 'mark'")
    _check_has(exchange, kind)
    symbol = spot_of(symbol) if kind == "spot" else perp_of(symbol)
    venue = exchange.id
    step = int(timeframe_delta(timeframe).total_seconds() * 1000)
    now_ms = _now_ms(exchange, now)
    last = store.last_ts(venue, symbol, kind, timeframe)
    start_ms = int(pd.Timestamp(since).value // 1_000_000)
    start_ms = -(-start_ms // step) * step  # first bar boundary at or after since
    cursor = max(start_ms, int(last.value // 1_000_000) + step) if last is not None else start_ms
    end_ms = (now_ms // step) * step  # first still-open bar; everything before it is closed
    params = {"price": "mark"} if kind == "mark" else {}
    total = max(1, (end_ms - cursor) // step)
    first_cursor = cursor
    requests = rows = 0
    bar = tqdm(total=total, desc=f"{venue} {symbol} {kind} {timeframe}", unit="bar", disable=not show_bar,
               leave=False)
    try:
        while cursor < end_ms:
            page = _call(exchange, "fetch_ohlcv",
                         lambda: exchange.fetch_ohlcv(symbol, timeframe, cursor, limit, params),
                         max_retries=max_retries, sleep=sleep)
            requests += 1
            arr = [r for r in (page or []) if cursor <= int(r[0]) < end_ms]
            if not arr:
                break
            frame = pd.DataFrame(
                {"ts": [int(r[0]) for r in arr], "open": [r[1] for r in arr], "high": [r[2] for r in arr],
                 "low": [r[3] for r in arr], "close": [r[4] for r in arr],
                 "volume": [np.nan if kind == "mark" or r[5] is None else r[5] for r in arr]})
            bars = canonical_bars(frame, file=f"{venue} {symbol} {kind} {timeframe} page since {cursor}",
                                  timeframe=timeframe, ts_unit="ms")
            store.write_bars(bars, venue=venue, symbol=symbol, kind=kind, timeframe=timeframe)
            rows += len(bars)
            new_cursor = int(bars.index[-1].value // 1_000_000) + step
            bar.update(min(total, (new_cursor - first_cursor) // step) - bar.n)
            cursor = new_cursor
            _report(progress, venue, symbol, kind, timeframe, requests, rows, cursor, first_cursor, end_ms, False)
    finally:
        bar.close()
    _report(progress, venue, symbol, kind, timeframe, requests, rows, cursor, first_cursor, end_ms, True)
    return rows


def _report(progress: ProgressFn | None, venue: str, symbol: str, kind: str, timeframe: str | None, requests: int,
            rows: int, cursor: int, first: int, end: int, done: bool) -> None:
    if progress is None:
        return
    frac = 1.0 if done or end <= first else min(1.0, max(0.0, (cursor - first) / (end - first)))
    progress(DownloadProgress(venue, symbol, kind, timeframe, requests, rows,
                              pd.Timestamp(cursor, unit="ms", tz="UTC"), pd.Timestamp(end, unit="ms", tz="UTC"),
                              frac, done))


def infer_interval_hours(ts_ms: Sequence[int], previous_ms: int | None = None, default: float = 8.0) -> np.ndarray:
    """Funding interval per event from the spacing to the previous event (1, 2, 4 or 8 h; else ``default``).

    The first event uses ``previous_ms`` (the last stored event) or, failing that, the next event.
    """
    t = np.asarray(ts_ms, dtype="float64")
    if t.size == 0:
        return np.empty(0)
    prev = np.concatenate([[previous_ms if previous_ms is not None else np.nan], t[:-1]])
    d = (t - prev) / 3_600_000.0
    if np.isnan(d[0]):
        d[0] = d[1] if t.size > 1 else np.nan
    out = np.full(t.size, float(default))
    for h in FUNDING_INTERVALS_H:
        out[np.abs(d - h) < 0.05] = h
    return out


def download_funding(store: Any, exchange: Any, symbol: str, *, since: pd.Timestamp,
                     now: pd.Timestamp | None = None, limit: int = 1000, progress: ProgressFn | None = None,
                     show_bar: bool = True, max_retries: int = 5,
                     sleep: Callable[[float], None] = time.sleep) -> int:
    """Download funding-rate history of one perp into the store; returns rows written.

    Times are floored to whole seconds; ``interval_hours`` is inferred from the event spacing.
    Pages until one comes back empty (venues cap ``limit`` differently, so a short page proves nothing).
    """
    _check_has(exchange, "funding")
    symbol = perp_of(symbol)
    venue = exchange.id
    now_ms = _now_ms(exchange, now)
    last = store.last_ts(venue, symbol, "funding")
    start_ms = int(pd.Timestamp(since).value // 1_000_000)
    cursor = max(start_ms, int(last.value // 1_000_000) + 1000) if last is not None else start_ms
    prev_ms = int(last.value // 1_000_000) if last is not None else None
    first_cursor = cursor
    requests = rows = 0
    bar = tqdm(total=max(1, (now_ms - cursor) // 3_600_000), desc=f"{venue} {symbol} funding", unit="h",
               disable=not show_bar, leave=False)
    try:
        while cursor <= now_ms:
            page = _call(exchange, "fetch_funding_rate_history",
                         lambda: exchange.fetch_funding_rate_history(symbol, cursor, limit),
                         max_retries=max_retries, sleep=sleep)
            requests += 1
            items = sorted((x for x in (page or []) if cursor <= int(x["timestamp"]) <= now_ms),
                           key=lambda x: int(x["timestamp"]))
            if not items:
                break
            ts = [int(x["timestamp"]) for x in items]
            frame = pd.DataFrame({"ts": ts, "funding_rate": [x["fundingRate"] for x in items],
                                  "interval_hours": infer_interval_hours(ts, prev_ms)})
            fr = canonical_funding(frame, file=f"{venue} {symbol} funding page since {cursor}", ts_unit="ms")
            store.write_funding(fr, venue=venue, symbol=symbol)
            rows += len(fr)
            prev_ms = ts[-1]
            cursor = int(fr.index[-1].value // 1_000_000) + 1000
            bar.update(min(bar.total, (cursor - first_cursor) // 3_600_000) - bar.n)
            _report(progress, venue, symbol, "funding", None, requests, rows, cursor, first_cursor, now_ms, False)
    finally:
        bar.close()
    _report(progress, venue, symbol, "funding", None, requests, rows, cursor, first_cursor, now_ms, True)
    return rows


def download(store: Any, exchange: Any, symbols: Sequence[str] = ("BTC/USDT", "ETH/USDT"),
             kinds: Sequence[str] = KINDS, timeframe: str = "1h", *, since: pd.Timestamp | None = None,
             days: float = 365.0, now: pd.Timestamp | None = None, limit: int = 1000,
             progress: ProgressFn | None = None, show_bar: bool = True, max_retries: int = 5,
             sleep: Callable[[float], None] = time.sleep) -> pd.DataFrame:
    """Download spot, perp and mark bars and funding for several assets (incremental).

    ``symbols`` are spot pairs or perps; each kind uses the right one (spot -> ``BTC/USDT``, the
    rest -> ``BTC/USDT:USDT``). ``since`` defaults to ``now - days``. Returns one summary row per
    series: venue, symbol, kind, timeframe, rows (written in this run).
    """
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise InvalidInput("kinds", bad, f"a subset of {list(KINDS)}")
    now_t = pd.Timestamp(_now_ms(exchange, now), unit="ms", tz="UTC")
    since_t = pd.Timestamp(since) if since is not None else (now_t - pd.Timedelta(days=days)).floor("D")
    if since_t.tzinfo is None:
        raise InvalidInput("since", since, "a timezone-aware UTC timestamp")
    for k in kinds:
        _check_has(exchange, k)
    out = []
    for sym in symbols:
        for k in kinds:
            kw = dict(since=since_t, now=now_t, limit=limit, progress=progress, show_bar=show_bar,
                      max_retries=max_retries, sleep=sleep)
            if k == "funding":
                n = download_funding(store, exchange, sym, **kw)
                out.append({"venue": exchange.id, "symbol": perp_of(sym), "kind": k, "timeframe": "", "rows": n})
            else:
                n = download_bars(store, exchange, sym, k, timeframe, **kw)
                out.append({"venue": exchange.id, "symbol": spot_of(sym) if k == "spot" else perp_of(sym),
                            "kind": k, "timeframe": timeframe, "rows": n})
    return pd.DataFrame(out, columns=["venue", "symbol", "kind", "timeframe", "rows"])
