"""Notifiers: the log of notifications, and devices told about alarms (MQTT), off the hot path.

People are told through the outbox (`tickets/outbox.py`, sent by `tickets/courier.py`).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

from tickets.service import TicketChange

log = logging.getLogger(__name__)


class Notifier(Protocol):
    """Something that tells people about a ticket change."""

    def notify(self, change: TicketChange, reason: str) -> None:
        """Deliver one notification; may raise, the dispatcher logs it."""


class LogNotifier:
    """Writes each notification to the log."""

    def notify(self, change: TicketChange, reason: str) -> None:
        """Log one line."""
        log.warning(
            "NOTIFY %s: ticket %d [%s] %s (%s/%s)",
            reason,
            change.ticket_id,
            change.severity.value,
            change.title,
            change.site,
            change.device_id,
        )


class Dispatcher:
    """Runs notifications and other slow side effects on a thread of their own, so no caller waits."""

    def __init__(self, notifiers: list[Notifier], name: str = "notifier", maxsize: int = 10_000) -> None:
        self.notifiers = notifiers
        # maxsize 0: nothing is ever dropped (for work that must happen, like scheduling timers).
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=maxsize)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def notify(self, change: TicketChange, reason: str) -> None:
        """Queue a notification to every notifier."""
        for notifier in self.notifiers:
            self.submit(lambda n=notifier: n.notify(change, reason))  # type: ignore[misc]

    def submit(self, job: Callable[[], None]) -> None:
        """Queue any side effect; dropped with a log line if the queue is full."""
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            log.error("notification queue full; dropping a notification")

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                job()
            except Exception:
                log.exception("notification failed")

    def drain(self, timeout_s: float = 5.0) -> bool:
        """Wait until every job queued before this call has run; False if that took too long."""
        done = threading.Event()
        try:
            self._queue.put(done.set, timeout=timeout_s)
        except queue.Full:
            return False
        return done.wait(timeout_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout_s)


def alarm_payload(device_id: str, alarms: list[dict[str, Any]]) -> bytes:
    """The retained message on facility/v1/{site}/alarms/{device_id}: the device's active alarms."""
    return json.dumps({"device_id": device_id, "alarms": alarms}, default=str).encode()
