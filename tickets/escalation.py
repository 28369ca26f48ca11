"""Escalation of unacknowledged tickets on APScheduler timers kept in the database, so a restart keeps them.

Emergency: re-notified every 5 min until acknowledged, escalated after 15 min; major: escalated
after 30 min (defaults; settings change them). The persistent job store keeps jobs as references
to the module functions below, which find the running service's escalation through `activate`:
one per process, since a job names only its ticket.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.jobstores.base import JobLookupError

from ground.severity import Severity
from tickets.jobtarget import JobTarget
from tickets.notify import Dispatcher
from tickets.service import ChangeKind, TicketChange, TicketService

log = logging.getLogger(__name__)

OPENING = (ChangeKind.OPENED, ChangeKind.REOPENED, ChangeKind.CLASS_RAISED)
ENDING = (ChangeKind.ACKNOWLEDGED, ChangeKind.RESOLVED, ChangeKind.CLOSED)
_COMMON = {"replace_existing": True, "coalesce": True, "max_instances": 1, "misfire_grace_time": 3600}


class Scheduler(Protocol):
    """What escalation asks of APScheduler's scheduler."""

    def add_job(self, func: Callable[..., object], trigger: str, **options: Any) -> object:
        """Add or replace a job."""

    def remove_job(self, job_id: str) -> None:
        """Remove a job; JobLookupError if there is none."""

    def get_jobs(self) -> Sequence[Any]:
        """Every job, each with its `id`."""


@dataclass
class Escalation:
    """Schedules and runs the re-notification and escalation timers of tickets."""

    scheduler: Scheduler
    tickets: TicketService
    dispatcher: Dispatcher  # notifications: a slow webhook may hold these up
    timers: Dispatcher  # scheduling, on a thread and an unbounded queue of its own: never dropped
    renotify_s: int = 300
    escalate_emergency_s: int = 900
    escalate_major_s: int = 1800
    sites: frozenset[str] | None = None  # a worker's own sites (FACILITY_SITES); None: every site

    def on_change(self, change: TicketChange) -> None:
        """Ticket listener: hands the change to the timers' thread, off the caller's path."""
        if self.sites is not None and change.site not in self.sites:
            return  # another worker's ticket (acted on through this one's API): its own repair sees it
        self.timers.submit(lambda: self._on_change(change))

    def _on_change(self, change: TicketChange) -> None:
        """Notify at once on opening; start or stop the timers."""
        if change.kind in OPENING:
            self.dispatcher.notify(change, change.kind.value)
            self._schedule(change)
        elif change.kind in ENDING:
            self._cancel(change.ticket_id)

    def _schedule(self, change: TicketChange) -> None:
        now = datetime.now(UTC)
        for job_id, seconds in self._timers(change.ticket_id, change.severity).items():
            if job_id.startswith("renotify-"):
                self._add_renotify(change.ticket_id, now + timedelta(seconds=seconds))
            else:
                self._add_escalate(change.ticket_id, now + timedelta(seconds=seconds))

    def _add_renotify(self, ticket_id: int, first: datetime) -> None:
        self.scheduler.add_job(
            renotify,
            "interval",
            seconds=self.renotify_s,
            id=f"renotify-{ticket_id}",
            next_run_time=first,
            **_COMMON,
            args=[ticket_id],
        )

    def _add_escalate(self, ticket_id: int, at: datetime) -> None:
        self.scheduler.add_job(
            escalate, "date", run_date=at, id=f"escalate-{ticket_id}", **_COMMON, args=[ticket_id]
        )

    def repair(self) -> int:
        """Give every open, unacknowledged major or emergency ticket the timers it lacks; returns how many.

        A ticket and its timers are written in two steps (the timers by the timers' thread, after
        the ticket's commit): a process killed in between, or a timer the job store could not take
        (a full disk), would leave an emergency nobody is reminded of. Run at start-up and now and
        then, this puts them back: re-notification from now, escalation when it was due (at once if
        that has passed). A ticket already escalated has had its one escalation.
        """
        present = {job.id for job in self.scheduler.get_jobs()}
        repaired = 0
        now = datetime.now(UTC)
        for ticket in self.tickets.unacknowledged((Severity.MAJOR, Severity.EMERGENCY), self.sites):
            wanted = self._timers(ticket.ticket_id, ticket.severity)
            if ticket.escalation_level > 0:
                wanted.pop(f"escalate-{ticket.ticket_id}", None)
            missing = {job_id: seconds for job_id, seconds in wanted.items() if job_id not in present}
            if not missing:
                continue
            opened = ticket.response_due - timedelta(seconds=ticket.severity.response_due_s)
            for job_id, seconds in missing.items():
                if job_id.startswith("renotify-"):
                    self._add_renotify(ticket.ticket_id, now + timedelta(seconds=seconds))
                else:
                    self._add_escalate(ticket.ticket_id, max(now, opened + timedelta(seconds=seconds)))
            log.warning("ticket %d had lost its timers %s: set again", ticket.ticket_id, sorted(missing))
            repaired += 1
        return repaired

    def _timers(self, ticket_id: int, severity: Severity) -> dict[str, int]:
        """The timers a ticket of this class has while unacknowledged: job id → seconds."""
        timers: dict[str, int] = {}
        if severity is Severity.EMERGENCY:
            timers[f"renotify-{ticket_id}"] = self.renotify_s
        after = {Severity.EMERGENCY: self.escalate_emergency_s, Severity.MAJOR: self.escalate_major_s}
        if severity in after:
            timers[f"escalate-{ticket_id}"] = after[severity]
        return timers

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


_target = JobTarget[Escalation]("escalation")


def activate(escalation: Escalation) -> None:
    """Make `escalation` the one the persisted jobs run on; a second one in the process is refused."""
    _target.activate(escalation)


def deactivate(escalation: Escalation) -> None:
    """Jobs that fire from now on find no escalation (and do nothing), unless another is active."""
    _target.deactivate(escalation)


def renotify(ticket_id: int) -> None:
    """Job: re-notify (see Escalation.renotify)."""
    if (live := _target.live) is not None:
        live.renotify(ticket_id)


def escalate(ticket_id: int) -> None:
    """Job: escalate (see Escalation.escalate)."""
    if (live := _target.live) is not None:
        live.escalate(ticket_id)
