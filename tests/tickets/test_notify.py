"""The dispatcher: side effects in order on a thread of their own, never fatal, bounded, drained at stop."""

from __future__ import annotations

import logging
import threading

import pytest

from ground.severity import Severity
from tickets.notify import Dispatcher
from tickets.service import ChangeKind, TicketChange

CHANGE = TicketChange(
    ticket_id=1,
    kind=ChangeKind.OPENED,
    severity=Severity.EMERGENCY,
    site="s1",
    device_id="elev-1",
    title="entrapment",
)


class Told:
    """A notifier that keeps (ticket, reason) of each notification."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []

    def notify(self, change: TicketChange, reason: str) -> None:
        """Keep it."""
        self.seen.append((change.ticket_id, reason))


class Broken:
    """A notifier whose every delivery fails, like a webhook that is down."""

    def notify(self, change: TicketChange, reason: str) -> None:
        """Fail."""
        raise ConnectionError("webhook down")


def test_jobs_run_in_order_on_the_dispatchers_thread() -> None:
    ran: list[tuple[int, str]] = []
    dispatcher = Dispatcher([], name="notifier-under-test")
    for i in range(50):
        dispatcher.submit(lambda i=i: ran.append((i, threading.current_thread().name)))  # type: ignore[misc]
    dispatcher.stop()
    assert ran == [(i, "notifier-under-test") for i in range(50)]


def test_a_failing_notifier_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    told = Told()
    dispatcher = Dispatcher([Broken(), told])
    dispatcher.notify(CHANGE, "opened")
    dispatcher.notify(CHANGE, "re-notify")
    dispatcher.stop()
    assert told.seen == [(1, "opened"), (1, "re-notify")]
    failed = [r for r in caplog.records if r.message == "notification failed"]
    assert len(failed) == 2 and all(r.exc_info for r in failed)


def test_a_full_queue_drops_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []
    dispatcher = Dispatcher([], maxsize=1)

    def busy() -> None:
        started.set()
        release.wait(5)
        ran.append("busy")

    dispatcher.submit(busy)
    assert started.wait(5)  # the thread holds the first job; the queue is empty
    dispatcher.submit(lambda: ran.append("queued"))
    with caplog.at_level(logging.ERROR, logger="tickets.notify"):
        dispatcher.submit(lambda: ran.append("dropped"))
    release.set()
    dispatcher.stop()
    assert ran == ["busy", "queued"]
    assert [r.message for r in caplog.records] == ["notification queue full; dropping a notification"]


def test_stop_delivers_what_is_queued() -> None:
    release = threading.Event()
    ran: list[int] = []
    dispatcher = Dispatcher([])

    def held() -> None:
        release.wait(5)

    dispatcher.submit(held)
    for i in range(100):
        dispatcher.submit(lambda i=i: ran.append(i))  # type: ignore[misc]
    threading.Timer(0.1, release.set).start()  # stop() is called while all of them wait
    dispatcher.stop()
    assert ran == list(range(100))


def test_drain_waits_for_what_was_queued_before_it() -> None:
    ran: list[int] = []
    dispatcher = Dispatcher([])
    for i in range(100):
        dispatcher.submit(lambda i=i: ran.append(i))  # type: ignore[misc]
    assert dispatcher.drain()
    assert ran == list(range(100))
    dispatcher.stop()
