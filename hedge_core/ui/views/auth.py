"""Panel sign-in: the password check, the bind-address policy and the failed-attempt delay.

Pure logic (no Streamlit, no clock of its own: times come in as arguments); ``pages/_auth.py`` draws
the form and keeps the state per browser session.

The password comes only from the environment (``HEDGE_PANEL_PASSWORD``). At start it is turned into
a salted PBKDF2-HMAC-SHA256 digest with a fresh random salt; only the digest is kept in memory, nothing
is written anywhere, and an attempt is compared with :func:`hmac.compare_digest` of its own digest
(constant time). The password is never logged, echoed or shown.

Policy (``hedge app`` and the panel apply the same rule):

- password set: every page shows only the sign-in form until the browser session signs in;
- password unset and the panel bound to loopback only: the panel runs without sign-in (the local
  default, ``make app`` needs no configuration) and says that it is unprotected;
- password unset and any other bind address (including Streamlit's default "every interface"):
  refused, naming what to set.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

PASSWORD_ENV = "HEDGE_PANEL_PASSWORD"
PBKDF2_ITERATIONS = 200_000  # ~0.1 s per check on one core: cheap for a person, slow for a guesser
MIN_PASSWORD_CHARS = 8
BASE_DELAY_S = 1.0  # delay after the first failed attempt, doubled after each further one
MAX_DELAY_S = 60.0  # cap of the delay between attempts


@dataclass(frozen=True, repr=False)
class PasswordCheck:
    """A salted digest of the panel password; the password itself is not kept.

    ``repr`` shows neither salt nor digest (they would let an attacker test guesses offline).
    """

    salt: bytes
    digest: bytes
    iterations: int = PBKDF2_ITERATIONS

    @classmethod
    def from_password(cls, password: str, *, iterations: int = PBKDF2_ITERATIONS) -> PasswordCheck:
        """Hash ``password`` with a fresh 16-byte random salt.

        Raises
        ------
        InvalidInput
            The password is shorter than :data:`MIN_PASSWORD_CHARS` characters (the value is not echoed).
        """
        from hedge_core.errors import InvalidInput

        if len(password) < MIN_PASSWORD_CHARS:
            raise InvalidInput(PASSWORD_ENV, f"<{len(password)} characters>",
                               f"at least {MIN_PASSWORD_CHARS} characters")
        salt = secrets.token_bytes(16)
        return cls(salt, _digest(password, salt, iterations), iterations)

    def verify(self, attempt: str) -> bool:
        """True when ``attempt`` is the password (constant-time comparison of the digests)."""
        return hmac.compare_digest(_digest(attempt, self.salt, self.iterations), self.digest)

    @property
    def fingerprint(self) -> str:
        """A short tag of this digest, stored in a signed-in browser session (not usable to test guesses:
        it is a hash of the salted digest, which changes on every start)."""
        return hashlib.sha256(b"hedge-panel-session" + self.digest).hexdigest()[:16]

    def __repr__(self) -> str:
        return "PasswordCheck(<redacted>)"


def _digest(password: str, salt: bytes, iterations: int) -> bytes:
    # PBKDF2 uses the password as an HMAC key, and HMAC zero-pads keys (and hashes long ones): "pw" and
    # "pw\x00" would give the same digest. A fixed-length SHA-256 of the password first makes every
    # distinct password a distinct key.
    key = hashlib.sha256(password.encode("utf-8")).digest()
    return hashlib.pbkdf2_hmac("sha256", key, salt, iterations)


def password_check(env: Mapping[str, str] | None = None) -> PasswordCheck | None:
    """The check for ``HEDGE_PANEL_PASSWORD``, or None when it is unset or empty.

    Raises
    ------
    InvalidInput
        Set but shorter than :data:`MIN_PASSWORD_CHARS` characters.
    """
    env = os.environ if env is None else env
    password = env.get(PASSWORD_ENV, "")
    return PasswordCheck.from_password(password) if password else None


def is_loopback(address: str | None) -> bool:
    """True when a server bound to ``address`` is reachable from this machine only.

    ``None`` or ``""`` is Streamlit's default, which listens on every interface: not loopback.
    ``localhost``, ``127.0.0.0/8`` and ``::1`` are loopback; ``0.0.0.0``, ``::`` and any other name are not.
    """
    if not address:
        return False
    a = address.strip().strip("[]").lower()
    if a == "localhost":
        return True
    try:
        return ipaddress.ip_address(a).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to a public interface


def bind_refusal(address: str | None, password_set: bool) -> str | None:
    """Why the panel may not run on ``address``, or None when it may.

    Without a password only a loopback address is allowed; with one, any address.
    """
    if password_set or is_loopback(address):
        return None
    shown = address or "every interface (Streamlit's default)"
    return (f"refusing to serve the panel on {shown} without a password: anyone who can reach it could "
            f"start, stop and flatten hedges. Set {PASSWORD_ENV} (at least {MIN_PASSWORD_CHARS} characters) "
            f"in the environment, or bind to loopback only (--address localhost, the default).")


@dataclass(frozen=True)
class Throttle:
    """Failed sign-in attempts and when the next attempt is allowed (monotonic seconds).

    After ``n`` consecutive failures the next attempt waits ``delay_after(n)`` seconds. A success resets it.
    """

    failures: int = 0
    not_before: float = 0.0

    def wait_s(self, now: float) -> float:
        """Seconds to wait before an attempt is accepted (0 when one is accepted now)."""
        return max(0.0, self.not_before - now)

    def failed(self, now: float) -> Throttle:
        """The throttle after a failed attempt at ``now``."""
        n = self.failures + 1
        return Throttle(n, now + delay_after(n))


def delay_after(failures: int, base_s: float = BASE_DELAY_S, cap_s: float = MAX_DELAY_S) -> float:
    """Seconds before the next attempt after ``failures`` consecutive failures: 0, then base, 2 base, 4 base ...
    up to ``cap_s``."""
    if failures <= 0:
        return 0.0
    return min(cap_s, base_s * 2.0 ** min(failures - 1, 30))


@dataclass(frozen=True)
class Attempt:
    """The outcome of one sign-in attempt."""

    ok: bool
    throttles: tuple[Throttle, ...]  # the throttles after it, in the order given
    message: str  # what the form shows; never contains the attempt


def attempt(check: PasswordCheck, password: str, throttles: tuple[Throttle, ...], now: float) -> Attempt:
    """Check ``password`` unless a throttle says to wait; a refused password lengthens every throttle's wait.

    ``throttles`` are e.g. (this browser session's, the whole panel's). An attempt made while any of them
    waits is not checked and changes nothing; a right password resets them all.
    """
    wait = max((t.wait_s(now) for t in throttles), default=0.0)
    if wait > 0:
        return Attempt(False, throttles, f"too many failed attempts: try again in {math.ceil(wait)} s")
    if check.verify(password):
        return Attempt(True, tuple(Throttle() for _ in throttles), "signed in")
    after = tuple(t.failed(now) for t in throttles)
    nxt = max((t.wait_s(now) for t in after), default=0.0)
    return Attempt(False, after, f"wrong password; next attempt in {math.ceil(nxt)} s")
