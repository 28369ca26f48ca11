"""Escalation of unacknowledged tickets on APScheduler timers kept in the database, so a restart keeps them.

Emergency: re-notified every 5 min until acknowledged, escalated after 15 min; major: escalated
after 30 min (defaults; settings change them). The persistent job store keeps jobs as references
to the module functions below, which find the running service through `current`.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler

from rules.severity import Severity
from tickets.notify import Dispatcher
from tickets.service import TicketChange, TicketService

log = logging.getLogger(__name__)

OPENING = ("opened", "reopened", "class_raised")
ENDING = ("acknowledged", "resolve", "close")


@dataclass
class Escalation:
    """Schedules and runs the re-notification and escalation timers of tickets."""

    scheduler: BaseScheduler
    tickets: TicketService
    dispatcher: Dispatcher  # notifications: a slow webhook may hold these up
    timers: Dispatcher  # scheduling, on a thread and an unbounded queue of its own: never dropped
    renotify_s: int = 300
    escalate_emergency_s: int = 900
    escalate_major_s: int = 1800

    def on_change(self, change: TicketChange) -> None:
        """Ticket listener: hands the change to the timers' thread, off the caller's path."""
        self.timers.submit(lambda: self._on_change(change))

    def _on_change(self, change: TicketChange) -> None:
        """Notify at once on opening; start or stop the timers."""
        if change.kind in OPENING:
            self.dispatcher.notify(change, change.kind)
            self._schedule(change)
        elif change.kind in ENDING:
            self._cancel(change.ticket_id)

    def _schedule(self, change: TicketChange) -> None:
        now = datetime.now(UTC)
        common = {
            "args": [change.ticket_id],
            "replace_existing": True,
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": 3600,
        }
        if change.severity is Severity.EMERGENCY:
            self.scheduler.add_job(
                renotify,
                "interval",
                seconds=self.renotify_s,
                id=f"renotify-{change.ticket_id}",
                next_run_time=now + timedelta(seconds=self.renotify_s),
                **common,
            )
        after = {Severity.EMERGENCY: self.escalate_emergency_s, Severity.MAJOR: self.escalate_major_s}
        if change.severity in after:
            self.scheduler.add_job(
                escalate,
                "date",
                run_date=now + timedelta(seconds=after[change.severity]),
                id=f"escalate-{change.ticket_id}",
                **common,
            )

    def _cancel(self, ticket_id: int) -> None:
        for job_id in (f"renotify-{ticket_id}", f"escalate-{ticket_id}"):
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job(job_id)

    def renotify(self, ticket_id: int) -> None:
        """Tell people again about a ticket nobody has acknowledged."""
        change = self.tickets.mark_notified(ticket_id)
        if change is None:
            self._cancel(ticket_id)
        else:
            self.dispatcher.notify(change, "re-notify")

    def escalate(self, ticket_id: int) -> None:
        """Raise an unacknowledged ticket to the next level of people."""
        change = self.tickets.escalate(ticket_id)
        if change is None:
            self._cancel(ticket_id)
        else:
            self.dispatcher.notify(change, "escalated")


current: Escalation | None = None


def renotify(ticket_id: int) -> None:
    """Job: re-notify (see Escalation.renotify)."""
    if current is not None:
        current.renotify(ticket_id)


def escalate(ticket_id: int) -> None:
    """Job: escalate (see Escalation.escalate)."""
    if current is not None:
        current.escalate(ticket_id)
