"""What persisted timer jobs run on: the one live object of a kind in this process.

An APScheduler job is stored by reference to a module-level function and names only its ticket,
so the function finds the live object here. Two services in one process would each run the other's
jobs on their own records, so a second is refused until the first is let go.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class JobTarget(Generic[T]):
    """Holds the live object persisted jobs of one kind run on, at most one per process."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._live: T | None = None
        self._lock = threading.Lock()

    def activate(self, live: T) -> None:
        """Make `live` the one the jobs run on; another one already active is an error."""
        with self._lock:
            if self._live is not None and self._live is not live:
                raise RuntimeError(f"another service's {self._what} is active in this process; stop it first")
            self._live = live

    def deactivate(self, live: T) -> None:
        """Jobs that fire from now on find nothing (and do nothing), unless another is active."""
        with self._lock:
            if self._live is live:
                self._live = None

    @property
    def live(self) -> T | None:
        """The object jobs run on now, if any."""
        return self._live
