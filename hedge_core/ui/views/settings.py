"""What the Settings page shows: which exchange keys are present (never their values), paths, addresses."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from hedge_core.errors import HedgeError
from hedge_core.exchange.credentials import load_credentials

VENUES = ("binance", "bybit", "okx")


@dataclass(frozen=True)
class KeyStatus:
    """Presence of a venue's API keys. Holds no key material at all, not even a prefix."""

    venue: str
    present: bool
    source: str  # "environment", "keys file", or "" when absent
    problem: str = ""  # why configured keys cannot be used (e.g. a keys file inside the repository)


def key_status(venues: tuple[str, ...] = VENUES, env: Mapping[str, str] | None = None) -> list[KeyStatus]:
    """Whether each venue has usable credentials, and from where. Secrets never leave this function."""
    env = os.environ if env is None else env
    out = []
    for venue in venues:
        try:
            creds = load_credentials(venue, env=env, required=False)
        except HedgeError as exc:  # misconfigured: say what is wrong, not what the keys are
            out.append(KeyStatus(venue, False, "", _scrub(str(exc), env)))
            continue
        if creds is None:
            out.append(KeyStatus(venue, False, ""))
        else:
            out.append(KeyStatus(venue, True, "environment" if creds.source == "env" else "keys file"))
    return out


def _scrub(message: str, env: Mapping[str, str]) -> str:
    for name, value in env.items():
        if value and any(w in name.upper() for w in ("KEY", "SECRET", "PASSWORD")) and len(value) >= 4:
            message = message.replace(value, "***")
    return message
