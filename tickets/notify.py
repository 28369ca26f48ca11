"""Notifiers: tell people about tickets (log, webhook) and devices about alarms (MQTT), off the hot path."""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Protocol

import urllib3

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


class WebhookNotifier:
    """POSTs each notification as JSON to a URL."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url
        self._http = urllib3.PoolManager(timeout=urllib3.Timeout(total=timeout_s), retries=urllib3.Retry(2))

    def notify(self, change: TicketChange, reason: str) -> None:
        """One POST; a non-2xx answer raises."""
        body = {
            "reason": reason,
            "at": datetime.now(UTC).isoformat(),
            **asdict(change),
            "class": change.severity.value,
        }
        body.pop("severity")
        resp = self._http.request(
            "POST",
            self.url,
            body=json.dumps(body, default=_iso).encode(),
            headers={"Content-Type": "application/json"},
        )
        if resp.status >= 300:
            raise RuntimeError(f"webhook {self.url} answered {resp.status}")


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


def _iso(value: object) -> str:
    """Times in a notification as ISO 8601."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def alarm_payload(device_id: str, alarms: list[dict[str, Any]]) -> bytes:
    """The retained message on facility/v1/{site}/alarms/{device_id}: the device's active alarms."""
    return json.dumps({"device_id": device_id, "alarms": alarms}, default=str).encode()
