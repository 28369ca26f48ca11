"""Locks a user name at one address after repeated wrong passwords."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

MAX_FAILURES = 5
LOCK_S = 15 * 60


class LoginLocks:
    """After 5 failed log-ins for one user from one address, that pair is locked for 15 minutes.

    Failures count within 15 minutes of each other; the 5th locks the pair for 15 minutes from
    then, and the count starts again. A successful log-in forgets the failures. Unknown user names
    lock the same way, so a lock says nothing of whether a name exists. The pairs live in memory:
    a restart forgets them, which costs a guesser at most one more round of five.
    """

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        lock_s: float = LOCK_S,
        clock: Callable[[], float] = time.monotonic,
        max_pairs: int = 100_000,
    ) -> None:
        self._max = max_failures
        self._lock_s = lock_s
        self._clock = clock
        self._max_pairs = max_pairs
        self._failures: dict[tuple[str, str], list[float]] = {}
        self._locked_until: dict[tuple[str, str], float] = {}
        self._guard = threading.Lock()

    def retry_after(self, username: str, address: str) -> int | None:
        """Seconds until this pair may try again, or None when it is not locked."""
        key = (username.lower(), address)
        with self._guard:
            until = self._locked_until.get(key)
            now = self._clock()
            if until is None or until <= now:
                self._locked_until.pop(key, None)
                return None
            return max(1, math.ceil(until - now))

    def failed(self, username: str, address: str) -> None:
        """Count a failed log-in of this pair; the 5th within 15 minutes locks it."""
        key = (username.lower(), address)
        with self._guard:
            now = self._clock()
            if len(self._failures) >= self._max_pairs and key not in self._failures:
                self._forget_stale(now)
            recent = [t for t in self._failures.get(key, []) if t > now - self._lock_s]
            recent.append(now)
            if len(recent) >= self._max:
                self._locked_until[key] = now + self._lock_s
                self._failures.pop(key, None)
            else:
                self._failures[key] = recent

    def succeeded(self, username: str, address: str) -> None:
        """Forget this pair's failures."""
        with self._guard:
            self._failures.pop((username.lower(), address), None)

    def _forget_stale(self, now: float) -> None:
        """Make room: failures too old to count, then (still full) the oldest half of the rest.

        Locks are kept apart and only ever leave when they end, so making room never unlocks.
        """
        for key, times in list(self._failures.items()):
            if times[-1] <= now - self._lock_s:
                del self._failures[key]
        for key, until in list(self._locked_until.items()):
            if until <= now:
                del self._locked_until[key]
        if len(self._failures) >= self._max_pairs:
            oldest = sorted(self._failures, key=lambda k: self._failures[k][-1])
            for key in oldest[: len(oldest) // 2]:
                del self._failures[key]
