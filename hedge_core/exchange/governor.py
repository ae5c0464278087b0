"""A rate-limit governor per venue account, shared by every hedge, feed and dead man's switch
that uses the same venue + API key in this process.

Why: a venue's limits are per account/IP, not per hedge. Binance (spot and USD-M "General Info" →
"LIMITS", https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits): every answer
carries the used weight (``X-MBX-USED-WEIGHT-1M``) and order counts (``X-MBX-ORDER-COUNT-10S`` /
``-1D``); a 429 carries ``Retry-After`` (seconds to wait *to prevent a ban*); continuing during that
back-off gets an automated IP ban, HTTP 418, whose ``Retry-After`` is the time *until the ban is
over* (2 minutes to 3 days). Bybit v5 ("Rate Limit Rules", https://bybit-exchange.github.io/docs/v5/rate-limit):
``retCode 10006`` "Too many visits!" with ``X-Bapi-Limit-Reset-Timestamp`` (ms, when the limit
resets); ``10018`` / HTTP 403 "access too frequent" is the IP limit: stop and wait (at least 10
minutes when the venue gives no reset time).

What it does (hooked into ``CcxtLiveAdapter._once``):

- :meth:`RateGovernor.before` runs before every request of the account: during a back-off it raises
  :class:`~hedge_core.errors.RateLimited` with ``retry_after``, during a ban
  :class:`~hedge_core.errors.VenueBanned` with the ban's end — the venue is never contacted then.
- :meth:`RateGovernor.after_answer` reads the weight/count headers of every answer;
  :meth:`RateGovernor.after_error` turns a 429/418/10006/10018 answer into a back-off or a ban.
- Listeners (:meth:`RateGovernor.subscribe`) hear when a ban starts and ends; the supervisor turns
  that into a ``rate_limit_ban`` venue condition (``/health`` degraded) and an alert.

The registry (:func:`governor_for`) is keyed by venue + a fingerprint of the API key (sha256 prefix),
never by the key itself. Time is the wall clock (seconds since the epoch), injectable for tests.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd

from hedge_core import errors as he

__all__ = ["BanEvent", "GovernorState", "RateGovernor", "governor_for", "key_fingerprint", "reset_registry"]

#: Bybit's IP ban ("403, access too frequent"): "wait for at least 10 minutes" (v5 Rate Limit Rules)
BYBIT_IP_BAN_S = 600.0
#: a 418 without Retry-After nor "banned until": Binance's shortest ban
DEFAULT_BAN_S = 120.0
#: OKX's limit windows: its answers 50011 / 50061 name no reset time, and its limits are counted per 2 s window
#: and per endpoint ("Overview" -> "Rate Limits", https://www.okx.com/docs-v5/en/#overview-rate-limits: e.g.
#: Place order "60 requests per 2 seconds", the sub-account's "1000 order requests per 2 seconds")
OKX_LIMIT_WINDOW_S = 2.0

_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")


@dataclass(frozen=True)
class BanEvent:
    """A ban started (``active=True``, ``until`` its end, UTC) or ended (``active=False``)."""

    venue: str
    account: str  # key fingerprint
    active: bool
    until: pd.Timestamp
    reason: str


@dataclass
class GovernorState:
    """What the governor knows of one account (for health views and tests)."""

    blocked_until: float = 0.0  # epoch s: no request before (429 back-off or ban)
    ban_until: float = 0.0  # epoch s: end of a ban (418 / 10018); 0 when none
    reason: str = ""
    used_weight_1m: int | None = None
    order_count_10s: int | None = None
    order_count_1d: int | None = None
    bybit_limit_status: int | None = None  # X-Bapi-Limit-Status: requests left on the endpoint
    refused: int = 0  # requests the governor refused (never sent)
    bans: int = 0
    backoffs: int = 0


def key_fingerprint(api_key: str | None) -> str:
    """A short, non-reversible name for an API key (sha256 prefix); ``"public"`` without a key."""
    if not api_key:
        return "public"
    return hashlib.sha256(api_key.encode()).hexdigest()[:12]


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    low = name.lower()
    for k, v in headers.items():
        if str(k).lower() == low:
            return str(v)
    return None


def _int(v: str | None) -> int | None:
    try:
        return int(float(v)) if v is not None else None
    except ValueError:
        return None


class RateGovernor:
    """Back-off and ban state of one venue account (see module docstring).

    Parameters
    ----------
    venue : str
    account : str
        Key fingerprint (:func:`key_fingerprint`).
    clock : callable
        Wall time, seconds since the epoch (tests inject a fake one).
    weight_limit_1m : int, optional
        When set, a used weight at or above it blocks requests until the next minute starts
        (Binance counts weight per calendar minute).
    """

    def __init__(self, venue: str, account: str, *, clock: Callable[[], float] = time.time,
                 weight_limit_1m: int | None = None) -> None:
        self.venue, self.account = venue, account
        self.clock = clock
        self.weight_limit_1m = weight_limit_1m
        self.state = GovernorState()
        self._listeners: list[Callable[[BanEvent], None]] = []
        self._lock = threading.Lock()

    # ---- listeners ------------------------------------------------------------------------
    def subscribe(self, fn: Callable[[BanEvent], None]) -> Callable[[], None]:
        """Call ``fn(BanEvent)`` when a ban starts or ends; returns the unsubscribe function."""
        self._listeners.append(fn)

        def unsubscribe() -> None:
            if fn in self._listeners:
                self._listeners.remove(fn)
        return unsubscribe

    def _emit(self, ev: BanEvent) -> None:
        for fn in list(self._listeners):
            fn(ev)

    # ---- queries --------------------------------------------------------------------------
    @property
    def banned(self) -> bool:
        return self.state.ban_until > self.clock()

    @property
    def ban_end(self) -> pd.Timestamp | None:
        """End of the current ban (UTC), None when not banned."""
        return _utc(self.state.ban_until) if self.banned else None

    def wait_s(self) -> float:
        """Seconds before the next request may go out (0 when free)."""
        return max(0.0, self.state.blocked_until - self.clock())

    # ---- hooks ----------------------------------------------------------------------------
    def before(self, method: str) -> None:
        """Refuse a request while backing off or banned (typed error; nothing is sent)."""
        now = self.clock()
        st = self.state
        if st.ban_until and st.ban_until <= now:
            self._end_ban()
        if st.blocked_until > now:
            st.refused += 1
            wait = st.blocked_until - now
            if st.ban_until > now:
                raise he.VenueBanned(
                    f"banned by the venue until {_utc(st.ban_until).isoformat()} ({st.reason}); "
                    f"no request is sent before then", venue=self.venue, method=method,
                    retry_after=wait, until=_utc(st.ban_until))
            raise he.RateLimited(f"backing off for {wait:.2f} s more ({st.reason}); nothing sent",
                                 venue=self.venue, method=method, retry_after=wait)

    def after_answer(self, headers: Mapping[str, str] | None) -> None:
        """Record the venue's usage headers of a successful answer."""
        st = self.state
        w = _int(_header(headers, "X-MBX-USED-WEIGHT-1M"))
        if w is not None:
            st.used_weight_1m = w
            if self.weight_limit_1m is not None and w >= self.weight_limit_1m:
                now = self.clock()
                self._block(now - (now % 60.0) + 60.0, f"used weight {w} >= {self.weight_limit_1m}/min")
        st.order_count_10s = _int(_header(headers, "X-MBX-ORDER-COUNT-10S")) or st.order_count_10s
        st.order_count_1d = _int(_header(headers, "X-MBX-ORDER-COUNT-1D")) or st.order_count_1d
        left = _int(_header(headers, "X-Bapi-Limit-Status"))
        if left is not None:
            st.bybit_limit_status = left

    def after_error(self, status: int | None, code: str | None, message: str,
                    headers: Mapping[str, str] | None) -> float | None:
        """Turn a rate-limit answer into a back-off or a ban; the seconds to wait, or None when
        the error is not a rate limit.

        ``status`` is the HTTP status (None when unknown), ``code`` the venue's error code.
        """
        now = self.clock()
        self.after_answer(headers)
        retry_after = _int(_header(headers, "Retry-After"))
        reset_ms = _int(_header(headers, "X-Bapi-Limit-Reset-Timestamp"))
        if status == 418:
            m = _BANNED_UNTIL.search(message)
            if retry_after is not None:
                until = now + retry_after
            elif m:
                until = int(m.group(1)) / 1000.0
            else:
                until = now + DEFAULT_BAN_S
            self._ban(until, "HTTP 418 IP ban (requests continued during a 429 back-off)")
            return until - now
        if code == "10018" or (self.venue == "bybit" and status == 403):
            # 403 "access too frequent": "wait for at least 10 minutes"; 10018 names its reset
            reset = reset_ms / 1000.0 if reset_ms and reset_ms / 1000.0 > now else 0.0
            until = max(reset, now + BYBIT_IP_BAN_S) if status == 403 or not reset else reset
            self._ban(until, f"Bybit IP rate limit ({code or status})")
            return until - now
        # OKX 50011 (HTTP 429) / 50061 (the sub-account's order limit): no reset time is named
        if status == 429 or code in ("-1003", "-1015", "10006") or (self.venue == "okx" and code in ("50011", "50061")):
            self.state.backoffs += 1
            if retry_after is not None:
                until = now + retry_after
            elif reset_ms and reset_ms / 1000.0 > now:
                until = reset_ms / 1000.0
            elif self.venue == "okx":
                # no reset named: the caller waits one window of the limit (a refused order did not reach the
                # matching engine, so the leg holds that long, then a new client id goes out). The account is
                # not blocked: OKX counts each endpoint's limit on its own
                return OKX_LIMIT_WINDOW_S
            else:
                return 0.0  # the venue named no wait: the caller's bounded backoff applies
            self._block(until, f"rate limited ({status or code}), Retry-After {until - now:.1f} s")
            return until - now
        return None

    # ---- internals ------------------------------------------------------------------------
    def _block(self, until: float, reason: str) -> None:
        with self._lock:
            if until > self.state.blocked_until:
                self.state.blocked_until = until
                self.state.reason = reason

    def _ban(self, until: float, reason: str) -> None:
        started = self.state.ban_until <= self.clock()
        with self._lock:
            before = self.state.ban_until
            self.state.ban_until = max(before, until)
            self.state.bans += 1 if started else 0
        self._block(until, reason)
        # listeners hear a new ban, or an end moved by a second or more (not every 418 of a burst)
        if started or self.state.ban_until - before >= 1.0:
            self._emit(BanEvent(self.venue, self.account, True, _utc(self.state.ban_until), reason))

    def _end_ban(self) -> None:
        until = self.state.ban_until
        self.state.ban_until = 0.0
        self._emit(BanEvent(self.venue, self.account, False, _utc(until), "ban over"))


def _utc(epoch_s: float) -> pd.Timestamp:
    return pd.Timestamp(int(epoch_s * 1000), unit="ms", tz="UTC")


_REGISTRY: dict[tuple[str, str], RateGovernor] = {}
_REG_LOCK = threading.Lock()


def governor_for(venue: str, api_key: str | None, *, clock: Callable[[], float] | None = None) -> RateGovernor:
    """The process-wide governor of ``venue`` + this key (created on first use).

    ``clock`` is used only when the governor is created (tests pass a fake clock, after
    :func:`reset_registry`).
    """
    key = (venue, key_fingerprint(api_key))
    with _REG_LOCK:
        gov = _REGISTRY.get(key)
        if gov is None:
            gov = RateGovernor(venue, key[1], **({"clock": clock} if clock else {}))
            _REGISTRY[key] = gov
        return gov


def reset_registry() -> None:
    """Forget every governor (tests; a fresh process starts empty)."""
    with _REG_LOCK:
        _REGISTRY.clear()

