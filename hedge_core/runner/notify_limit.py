"""Rate limits of the alert channels (pure: the caller passes the monotonic time in seconds).

Two limits, so a storm of alerts cannot bury the one that matters nor get the channel banned
(Telegram allows about one message per second per chat, Slack one per second per webhook):

- per key ``(kind, hedge_id)``: at most one message per ``per_key_s`` seconds. The rest are
  counted; when the window ends with a count, a digest says how many were held back (and the
  last of them), and that digest opens the next window. A message of a higher level than the
  last one sent for its key (an LTV band going from WARNING to EMERGENCY) is never held back;
- overall: at most ``burst`` messages per ``burst_window_s`` seconds. Critical alerts pass
  regardless. What the cap holds back is counted and reported in one digest once there is room.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from hedge_core.runner.condition import LEVELS, Level

__all__ = ["Digest", "RateLimiter"]

Key = tuple[str, str]  # (kind, hedge_id)
CAP_KEY: Key = ("burst_cap", "")


@dataclass(frozen=True)
class Digest:
    """``count`` messages of ``key`` were held back; ``last`` is the text of the newest one and
    ``level`` the highest level among them (the digest goes where they would have gone)."""

    key: Key
    count: int
    last: str
    window_s: float
    level: Level


@dataclass
class _Window:
    opened: float
    sent_level: Level = "info"
    held: int = 0
    last: str = ""
    level: Level = "info"

    def hold(self, text: str, level: Level) -> None:
        self.held += 1
        self.last = text
        if LEVELS.index(level) > LEVELS.index(self.level):
            self.level = level


class RateLimiter:
    """Decide which alerts go out now. Not thread-safe: the caller holds a lock."""

    def __init__(self, per_key_s: float = 60.0, burst: int = 20, burst_window_s: float = 60.0) -> None:
        if per_key_s < 0 or burst < 1 or burst_window_s <= 0:
            raise ValueError("per_key_s >= 0, burst >= 1, burst_window_s > 0")
        self.per_key_s = per_key_s
        self.burst = burst
        self.burst_window_s = burst_window_s
        self._windows: dict[Key, _Window] = {}
        self._sent: deque[float] = deque()
        self._capped = _Window(0.0)

    def _room(self, now: float) -> bool:
        while self._sent and now - self._sent[0] >= self.burst_window_s:
            self._sent.popleft()
        return len(self._sent) < self.burst

    def admit(self, key: Key, text: str, now: float, level: Level = "warning") -> tuple[bool, int]:
        """``(send, held_before)``: whether this message goes out now and, when it does, how many
        of its key were held back since the last message of that key that went out (not yet
        reported in a digest)."""
        w = self._windows.get(key)
        if self.per_key_s > 0 and w is not None and now - w.opened < self.per_key_s \
                and LEVELS.index(level) <= LEVELS.index(w.sent_level):
            w.hold(text, level)
            return False, 0
        if level != "critical" and not self._room(now):
            self._capped.hold(text, level)
            return False, 0
        held = w.held if w is not None else 0
        self._windows[key] = _Window(now, level)
        self._sent.append(now)
        return True, held

    def due(self, now: float) -> list[Digest]:
        """Digests whose window has ended: one per key with held messages, and one for the cap."""
        out: list[Digest] = []
        for key, w in list(self._windows.items()):
            if now - w.opened < self.per_key_s:
                continue
            if w.held and self._room(now):
                out.append(Digest(key, w.held, w.last, self.per_key_s, w.level))
                self._windows[key] = _Window(now, w.level)
                self._sent.append(now)
            elif not w.held:
                del self._windows[key]  # idle key: forget it (bounded memory)
        if self._capped.held and self._room(now):
            out.append(Digest(CAP_KEY, self._capped.held, self._capped.last, self.burst_window_s,
                              self._capped.level))
            self._capped = _Window(now)
            self._sent.append(now)
        return out

    def next_due(self, now: float) -> float | None:
        """Seconds until :meth:`due` may have something (None when nothing is held)."""
        waits = [w.opened + self.per_key_s - now for w in self._windows.values() if w.held]
        if self._capped.held or (waits and len(self._sent) >= self.burst):
            waits.append(self._sent[0] + self.burst_window_s - now if self._sent else 0.0)
        return max(min(waits), 0.0) if waits else None
