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

    Failures count within the lock's length; a successful log-in forgets them. Unknown user names
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
        self._guard = threading.Lock()

    def retry_after(self, username: str, address: str) -> int | None:
        """Seconds until this pair may try again, or None when it is not locked."""
        with self._guard:
            recent = self._recent((username.lower(), address))
            if len(recent) < self._max:
                return None
            return max(1, math.ceil(recent[-self._max] + self._lock_s - self._clock()))

    def failed(self, username: str, address: str) -> None:
        """Count a failed log-in of this pair."""
        key = (username.lower(), address)
        with self._guard:
            if len(self._failures) >= self._max_pairs and key not in self._failures:
                self._forget_stale()
            self._failures[key] = [*self._recent(key), self._clock()]

    def succeeded(self, username: str, address: str) -> None:
        """Forget this pair's failures."""
        with self._guard:
            self._failures.pop((username.lower(), address), None)

    def _recent(self, key: tuple[str, str]) -> list[float]:
        since = self._clock() - self._lock_s
        return [t for t in self._failures.get(key, []) if t > since]

    def _forget_stale(self) -> None:
        for key in list(self._failures):
            if not self._recent(key):
                del self._failures[key]
        if len(self._failures) >= self._max_pairs:
            # Still full of live pairs: drop the oldest half rather than grow without bound.
            oldest = sorted(self._failures, key=lambda k: self._failures[k][-1])
            for key in oldest[: len(oldest) // 2]:
                del self._failures[key]
