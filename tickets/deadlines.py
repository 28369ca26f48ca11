"""The timers of ticket deadlines on APScheduler, kept in the database like escalation's.

A routine ticket nobody acknowledged by its response due is marked overdue and notified once; any
ticket unresolved at its resolve target likewise; a ticket resolved while its fault persists is
reopened when tickets/timing.py says. Jobs name only their ticket and find the running service's
deadlines through `activate`, one per process, as tickets/escalation.py does.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.jobstores.base import JobLookupError

from tickets.escalation import Scheduler
from tickets.jobtarget import JobTarget
from tickets.notify import Dispatcher
from tickets.service import ChangeKind, TicketChange, TicketService
from tickets.timing import JOB_PREFIXES, Due, Timing, deadlines

log = logging.getLogger(__name__)

# The changes that move a ticket's deadlines; the others (an occurrence, a re-notification) do not.
MOVING = (
    ChangeKind.OPENED,
    ChangeKind.REOPENED,
    ChangeKind.CLASS_RAISED,
    ChangeKind.ACKNOWLEDGED,
    ChangeKind.RESOLVED,
    ChangeKind.CLOSED,
)
_COMMON = {"replace_existing": True, "coalesce": True, "max_instances": 1, "misfire_grace_time": None}


@dataclass
class Deadlines:
    """Schedules and runs the overdue and persisting-fault timers of tickets."""

    scheduler: Scheduler
    tickets: TicketService
    dispatcher: Dispatcher  # notifications
    timers: Dispatcher  # scheduling, off the caller's path and never dropped
    reopen_cooldown_s: int = 3600
    sites: frozenset[str] | None = None  # a worker's own sites (FACILITY_SITES); None: every site

    def on_change(self, change: TicketChange) -> None:
        """Ticket listener: set the ticket's timers again, on the timers' thread."""
        if self.sites is not None and change.site not in self.sites:
            return  # another worker's ticket: its own repair sees it
        if change.kind in MOVING:
            self.timers.submit(lambda: self._sync(change.ticket_id))

    def _sync(self, ticket_id: int) -> None:
        timing = self.tickets.timing(ticket_id)
        wanted = {} if timing is None else deadlines(timing, self.reopen_cooldown_s)
        now = datetime.now(UTC)
        for job_id, at in wanted.items():
            self._add(job_id, max(now, at))
        for prefix in JOB_PREFIXES:
            if f"{prefix}{ticket_id}" not in wanted:
                with contextlib.suppress(JobLookupError):
                    self.scheduler.remove_job(f"{prefix}{ticket_id}")

    def _add(self, job_id: str, at: datetime) -> None:
        prefix, _, ticket = job_id.rpartition("-")
        self.scheduler.add_job(
            fire, "date", run_date=at, id=job_id, **_COMMON, args=[f"{prefix}-", int(ticket)]
        )

    def repair(self) -> int:
        """Give every ticket the deadline timers it lacks (at start-up and now and then); returns how many.

        As with escalation, a ticket and its timers are written in two steps: a process killed in
        between would leave a deadline nobody is told of, or a persisting fault without a ticket.
        """
        present = {job.id for job in self.scheduler.get_jobs()}
        now, repaired = datetime.now(UTC), 0
        for timing in self.tickets.timings(self.sites):
            missing = {
                job_id: at
                for job_id, at in deadlines(timing, self.reopen_cooldown_s).items()
                if job_id not in present
            }
            for job_id, at in missing.items():
                self._add(job_id, max(now, at))
            if missing:
                log.warning("ticket %d lacked its timers %s: set again", timing.ticket_id, sorted(missing))
                repaired += 1
        return repaired

    def fire(self, prefix: str, ticket_id: int) -> None:
        """A deadline has come: mark overdue and notify once, or reopen a persisting fault."""
        if prefix == "persists-":
            self.tickets.reopen_if_persisting(ticket_id)
            return
        due = Due.RESPONSE if prefix == "overdue-" else Due.RESOLVE
        change = self.tickets.mark_overdue(ticket_id, due)
        if change is not None:
            self.dispatcher.notify(change, "overdue")
            return
        # Not overdue yet (its due moved later since): set the timer for the due it has now.
        timing = self.tickets.timing(ticket_id)
        if timing is not None:
            self._resync(timing)

    def _resync(self, timing: Timing) -> None:
        for job_id, at in deadlines(timing, self.reopen_cooldown_s).items():
            if job_id.endswith(f"-{timing.ticket_id}") and at > datetime.now(UTC):
                self._add(job_id, at)


_target = JobTarget[Deadlines]("deadlines")


def activate(deadlines_: Deadlines) -> None:
    """Make these the deadlines the persisted jobs run on; a second one in the process is refused."""
    _target.activate(deadlines_)


def deactivate(deadlines_: Deadlines) -> None:
    """Jobs that fire from now on find no deadlines (and do nothing), unless others are active."""
    _target.deactivate(deadlines_)


def fire(prefix: str, ticket_id: int) -> None:
    """Job: a ticket's deadline (see Deadlines.fire)."""
    if (live := _target.live) is not None:
        live.fire(prefix, ticket_id)
