"""API credentials: read from environment variables or from a keys file OUTSIDE the repository.

Sources, first match wins:

1. environment ``HEDGE_<VENUE>_API_KEY`` / ``HEDGE_<VENUE>_API_SECRET``
   (and ``HEDGE_<VENUE>_API_PASSWORD`` for venues that need a passphrase, e.g. OKX);
2. a JSON or TOML file named by ``HEDGE_KEYS_FILE`` holding
   ``{"binance": {"api_key": "...", "secret": "..."}, "okx": {..., "password": "..."}}``.
   The file must live outside the repository (refused otherwise) and should be mode 0600.

:class:`Credentials` never shows the secret: ``repr``/``str`` redact everything but a short
key prefix, and nothing here logs.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hedge_core.errors import AuthenticationError, InvalidInput

_REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Credentials:
    """API key, secret and optional passphrase of one venue. The repr redacts them."""

    venue: str
    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    password: str | None = field(default=None, repr=False)
    source: str = ""  # "env" or the keys file path (no secret)

    def __repr__(self) -> str:
        return (f"Credentials(venue={self.venue!r}, api_key={_mask(self.api_key)!r}, "
                f"secret='***', password={'***' if self.password else None!r}, source={self.source!r})")

    __str__ = __repr__

    @property
    def secrets(self) -> tuple[str, ...]:
        """The strings that must never appear in logs or messages (for log scrubbers)."""
        return tuple(s for s in (self.api_key, self.secret, self.password) if s)

    def ccxt_config(self) -> dict[str, str]:
        """Keys in ccxt's config spelling (``apiKey``, ``secret``, ``password``)."""
        cfg = {"apiKey": self.api_key, "secret": self.secret}
        if self.password:
            cfg["password"] = self.password
        return cfg


def _mask(key: str) -> str:
    return (key[:4] + "…") if len(key) > 8 else "***"


def _env_prefix(venue: str) -> str:
    return f"HEDGE_{venue.upper()}_API_"


def inside_repo(path: Path, repo_root: Path = _REPO_ROOT) -> bool:
    """True when ``path`` (resolved, symlinks followed) lies inside ``repo_root``."""
    try:
        path.resolve().relative_to(repo_root.resolve())
        return True
    except ValueError:
        return False


def load_credentials(venue: str, *, env: Mapping[str, str] | None = None,
                     repo_root: Path = _REPO_ROOT, required: bool = True) -> Credentials | None:
    """Credentials of ``venue`` from the environment, else from ``$HEDGE_KEYS_FILE``.

    Parameters
    ----------
    venue:
        Lowercase ccxt id (``binance``, ``bybit``, ``okx``).
    env:
        Environment to read (default ``os.environ``); tests pass a dict.
    repo_root:
        Keys files inside this folder are refused.
    required:
        When False, return None instead of raising if no keys are configured.

    Raises
    ------
    InvalidInput
        The keys file is inside the repository, unreadable or malformed, or a value is empty.
    AuthenticationError
        No keys configured and ``required``.
    """
    env = os.environ if env is None else env
    prefix = _env_prefix(venue)
    key, secret = env.get(prefix + "KEY"), env.get(prefix + "SECRET")
    if key or secret:
        if not key or not secret:
            raise InvalidInput(prefix + ("KEY" if not key else "SECRET"), "<empty>",
                               "both the API key and the secret set (non-empty)")
        return _with_passphrase(Credentials(venue, key, secret, env.get(prefix + "PASSWORD") or None, source="env"))
    path_s = env.get("HEDGE_KEYS_FILE")
    if path_s:
        return _from_file(venue, Path(path_s).expanduser(), repo_root)
    if required:
        raise AuthenticationError(
            f"no API keys for {venue}: set {prefix}KEY and {prefix}SECRET, or HEDGE_KEYS_FILE "
            "pointing to a JSON/TOML file outside the repository", venue=venue, method="credentials")
    return None


def _from_file(venue: str, path: Path, repo_root: Path) -> Credentials:
    if inside_repo(path, repo_root):
        raise InvalidInput("HEDGE_KEYS_FILE", str(path),
                           f"a file outside the repository {repo_root} (keys must never be committed)")
    if not path.is_file():
        raise InvalidInput("HEDGE_KEYS_FILE", str(path), "an existing readable JSON or TOML file")
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError):
        raise InvalidInput("HEDGE_KEYS_FILE", str(path), "valid JSON (or TOML for *.toml)") from None
    entry = data.get(venue) if isinstance(data, dict) else None
    if not isinstance(entry, dict):
        raise InvalidInput(f"HEDGE_KEYS_FILE[{venue!r}]", "<missing>",
                           f'a table {{"{venue}": {{"api_key": ..., "secret": ...}}}}')
    key, secret = entry.get("api_key"), entry.get("secret")
    if not isinstance(key, str) or not key or not isinstance(secret, str) or not secret:
        raise InvalidInput(f"HEDGE_KEYS_FILE[{venue!r}]", "<redacted>",
                           "non-empty string fields api_key and secret")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        # readable by others: allowed, but say so without showing anything secret
        warnings.warn(f"keys file {path} is readable by group/others; chmod 600 it", stacklevel=3)
    password = entry.get("password")
    return _with_passphrase(Credentials(venue, key, secret, password if isinstance(password, str) and password else None,
                                        source=str(path)))


#: venues whose API keys come with a passphrase (OKX: the OK-ACCESS-PASSPHRASE header of every signed request)
PASSPHRASE_VENUES = ("okx",)


def _with_passphrase(c: Credentials) -> Credentials:
    """``c``, or InvalidInput naming the missing passphrase of a venue that signs with one (refused here rather
    than by the venue at the first signed request)."""
    if c.venue in PASSPHRASE_VENUES and not c.password:
        where = _env_prefix(c.venue) + "PASSWORD" if c.source == "env" else f"HEDGE_KEYS_FILE[{c.venue!r}].password"
        raise InvalidInput(where, "<empty>", f"the {c.venue} API passphrase set (non-empty)")
    return c
