"""Alert channel configuration from the environment (never stored, never shown): which Apprise
URLs hear which alert levels, and how often.

Variables (see ``docs/alerts.md``):

``HEDGE_ALERT_URLS``
    Apprise URLs (comma or whitespace separated) that receive every alert at or above
    ``HEDGE_ALERT_MIN_LEVEL``.
``HEDGE_ALERT_URLS_INFO`` / ``_WARNING`` / ``_ERROR`` / ``_CRITICAL``
    URLs that receive alerts of that level **and above** (a threshold per URL): a URL in
    ``HEDGE_ALERT_URLS_CRITICAL`` hears only critical alerts; one in ``HEDGE_ALERT_URLS_WARNING``
    hears warning, error and critical. A URL listed in several variables gets each alert once,
    with the lowest threshold.
``HEDGE_ALERT_MIN_LEVEL``
    ``info|warning|error|critical`` (default ``warning``): nothing below it leaves the process.
``HEDGE_ALERT_RATE_S``
    Seconds (default 60, 0 = off): at most one message per ``(kind, hedge_id)`` per window; the
    rest are counted and the count is sent when the window ends.
``HEDGE_ALERT_BURST``
    Messages per minute over all keys (default 20; critical alerts are never held back by it).

URLs carry tokens (a Telegram bot token, a Slack webhook, a mail password): every text this
module produces shows them through :func:`redact_url` only.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote

from hedge_core.errors import InvalidInput
from hedge_core.runner.condition import LEVELS, Level

if TYPE_CHECKING:
    import apprise

__all__ = ["AlertConfig", "Channel", "load_config", "redact_url", "scrub", "quiet_apprise", "ENV_PREFIX"]

ENV_PREFIX = "HEDGE_ALERT_"
URLS = "HEDGE_ALERT_URLS"
MIN_LEVEL = "HEDGE_ALERT_MIN_LEVEL"
RATE = "HEDGE_ALERT_RATE_S"
BURST = "HEDGE_ALERT_BURST"
LEVEL_VARS = {f"{URLS}_{lv.upper()}": lv for lv in LEVELS}
KNOWN = (URLS, *LEVEL_VARS, MIN_LEVEL, RATE, BURST)
URL_EXAMPLES = ("an Apprise URL of a supported service, e.g. tgram://BOT_TOKEN/CHAT_ID, "
                "slack://TOKEN_A/TOKEN_B/TOKEN_C/#channel, discord://WEBHOOK_ID/WEBHOOK_TOKEN, "
                "mailtos://USER:PASSWORD@smtp.example.com?to=ops@example.com, json://HOST:PORT/PATH "
                "(see docs/alerts.md and https://github.com/caronc/apprise/wiki)")

log = logging.getLogger("hedge_core.runner.notify")
_DOMAIN = re.compile(r"^(localhost|[a-z0-9-]+(\.[a-z0-9-]+)+)(:\d{1,5})?$")  # lower-case names/IPs only
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]{0,20}$")
_PIECES: set[str] = set()  # parts of configured URLs that may be tokens (scrubbed from Apprise's log text)
_PIECES_LOCK = threading.Lock()


def redact_url(url: str) -> str:
    """A URL with every part that may hold a token replaced by ``***``.

    Kept: the scheme, and the host when it is a lower-case DNS name or IP (``smtp.gmail.com``,
    ``127.0.0.1:8080``). Hidden: user and password, a host that is not a DNS name (Telegram puts
    the bot token there, Discord the webhook id), the whole path and the whole query.

    Examples
    --------
    >>> redact_url("tgram://123456789:ABCdef/4242")
    'tgram://***/***'
    >>> redact_url("mailtos://ops:hunter22@smtp.example.com?to=a@example.com")
    'mailtos://***@smtp.example.com?***'
    """
    scheme, sep, rest = url.strip().partition("://")
    if not sep or not _SCHEME.match(scheme.lower()):
        return "***"
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    tail = rest[len(netloc):]
    user, at, hostport = netloc.rpartition("@")
    out = f"{scheme.lower()}://" + ("***@" if at else "")
    out += hostport if _DOMAIN.match(hostport) else "***"
    path, _, query = tail.partition("?")
    if path.strip("/#"):
        out += "/***"
    if query:
        out += "?***"
    return out


def _secret_pieces(url: str) -> set[str]:
    """Every piece of ``url`` that could be a token, plain and URL-decoded (6+ characters, as
    :func:`hedge_core.runner.logs.register_secret`: shorter ones are too likely to be words)."""
    out = {url}
    scheme, _, rest = url.partition("://")
    for part in re.split(r"[/?&#@:=,]", rest):
        for p in (part, unquote(part)):
            if len(p) >= 6 and not _DOMAIN.match(p):
                out.add(p)
    return out


def scrub(text: str) -> str:
    """``text`` with every piece of a configured URL replaced by ``***`` (longest first)."""
    with _PIECES_LOCK:
        pieces = sorted(_PIECES, key=len, reverse=True)
    for p in pieces:
        if p in text:
            text = text.replace(p, "***")
    return text


@dataclass(frozen=True)
class Channel:
    """One Apprise destination. ``name`` is the variable, the URL's place in it and the redacted
    URL (``HEDGE_ALERT_URLS[2] json://127.0.0.1:8080/***``); ``target`` is an ``apprise.Apprise``
    holding just this URL (so each delivery has its own yes/no)."""

    name: str
    var: str
    threshold: Level
    target: apprise.Apprise = field(repr=False, compare=False)

    def hears(self, level: Level) -> bool:
        return LEVELS.index(level) >= LEVELS.index(self.threshold)


@dataclass(frozen=True)
class AlertConfig:
    """Parsed alert configuration. ``rate_s`` in seconds (0 = no per-key limit); ``burst`` in
    messages per ``burst_window_s`` seconds over all keys."""

    channels: tuple[Channel, ...]
    min_level: Level = "warning"
    rate_s: float = 60.0
    burst: int = 20
    burst_window_s: float = 60.0
    queue_size: int = 200

    def channels_for(self, level: Level) -> list[Channel]:
        """Channels an alert of ``level`` goes to (none below ``min_level``)."""
        if LEVELS.index(level) < LEVELS.index(self.min_level):
            return []
        return [c for c in self.channels if c.hears(level)]


class _ScrubbedBridge(logging.Handler):
    """Apprise's own log records (warnings and errors: a failed delivery, an unparseable URL),
    re-logged on ``hedge_core.runner.notify`` with every URL piece scrubbed. Apprise's logger
    stops propagating, so nothing of it reaches stderr unscrubbed."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = scrub(record.getMessage())
        except Exception:  # noqa: BLE001 - a log line must never break a delivery
            text = "(apprise log line not shown)"
        log.log(record.levelno, "apprise: %s", text)


_BRIDGE = _ScrubbedBridge(level=logging.WARNING)


def quiet_apprise() -> None:
    """Route Apprise's logger through :class:`_ScrubbedBridge` (idempotent)."""
    lg = logging.getLogger("apprise")
    if _BRIDGE not in lg.handlers:
        lg.addHandler(_BRIDGE)
    lg.setLevel(logging.WARNING)
    lg.propagate = False


def split_urls(value: str) -> list[str]:
    """URLs of one variable: comma or whitespace separated, as Apprise itself splits them."""
    return [u for u in re.split(r"[,\s]+", value.strip()) if u]


def _level(var: str, value: str) -> Level:
    v = value.strip().lower()
    if v not in LEVELS:
        raise InvalidInput(var, value, f"one of {', '.join(LEVELS)}")
    return v  # type: ignore[return-value]


def _number(var: str, value: str, *, integer: bool, minimum: float) -> float:
    try:
        x = int(value) if integer else float(value)
    except ValueError:
        x = float("nan")
    if not x >= minimum:
        kind = "an integer" if integer else "a number of seconds"
        raise InvalidInput(var, value, f"{kind} >= {minimum:g}")
    return x


def _instantiate(var: str, index: int, url: str) -> apprise.Apprise:
    import apprise  # noqa: F811 - imported here: 0.2 s of plugin loading only when alerts are configured

    quiet_apprise()
    obj = apprise.Apprise()
    try:
        ok = obj.add(url)
    except Exception:  # noqa: BLE001 - a plugin constructor error is a bad URL too
        ok = False
    if not ok:
        raise InvalidInput(var, f"entry {index}: {redact_url(url)}", URL_EXAMPLES) from None
    return obj


def load_config(environ: Mapping[str, str]) -> AlertConfig | None:
    """The alert configuration of ``environ`` (``os.environ``), or None when no URL is set.

    Raises
    ------
    InvalidInput
        An unknown ``HEDGE_ALERT_*`` variable, an unknown level, a bad number, a URL Apprise cannot
        parse (shown redacted), or a per-level variable below ``HEDGE_ALERT_MIN_LEVEL``.
    """
    ours = {k: v for k, v in environ.items() if k.startswith(ENV_PREFIX)}
    for k in ours:
        if k not in KNOWN:
            raise InvalidInput(k, "(set)", f"one of the alert variables {', '.join(KNOWN)}")
    min_level = _level(MIN_LEVEL, ours[MIN_LEVEL]) if ours.get(MIN_LEVEL, "").strip() else "warning"
    rate_s = _number(RATE, ours[RATE], integer=False, minimum=0) if ours.get(RATE, "").strip() else 60.0
    burst = int(_number(BURST, ours[BURST], integer=True, minimum=1)) if ours.get(BURST, "").strip() else 20
    wanted: dict[str, tuple[str, Level]] = {}  # url -> (var, threshold): the lowest threshold wins
    for var in (URLS, *LEVEL_VARS):
        urls = split_urls(ours.get(var, ""))
        if not urls:
            continue
        threshold: Level = min_level if var == URLS else LEVEL_VARS[var]
        if LEVELS.index(threshold) < LEVELS.index(min_level):
            raise InvalidInput(var, "(set)", f"a level at or above {MIN_LEVEL}={min_level} (it would never be "
                               f"sent): lower {MIN_LEVEL} to {threshold} or move the URLs")
        for u in urls:
            with _PIECES_LOCK:
                _PIECES.update(_secret_pieces(u))
            if u not in wanted or LEVELS.index(threshold) < LEVELS.index(wanted[u][1]):
                wanted[u] = (var, threshold)
    if not wanted:
        return None
    channels = []
    for u, (var, threshold) in wanted.items():
        idx = split_urls(ours[var]).index(u) + 1
        channels.append(Channel(f"{var}[{idx}] {redact_url(u)}", var, threshold, _instantiate(var, idx, u)))
    return AlertConfig(tuple(channels), min_level=min_level, rate_s=rate_s, burst=burst)
