"""Escalation's timers: which a ticket gets, when they go, what brings them back; one escalation per process.

The scheduler here is a fake that only keeps the jobs it is given: what escalation asks of it is
the subject. APScheduler's own behaviour (the persistent job store, firing, misfires, a restart)
is covered by the service's tests (tests/facility/test_service.py, test_timer_repair.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apscheduler.jobstores.base import JobLookupError

from facility.wiring import Relay
from ground.events import AlarmEvent
from ground.severity import Severity
from records.db import Database
from tickets import escalation
from tickets.escalation import Escalation
from tickets.lifecycle import Action
from tickets.notify import Dispatcher
from tickets.service import ActionFields, TicketChange, TicketService

RENOTIFY_S, EMERGENCY_S, MAJOR_S = 300, 900, 1800


@dataclass
class FakeJob:
    """A job as the fake scheduler keeps it."""

    id: str
    func: Callable[..., object]
    trigger: str
    args: list[Any]
    options: dict[str, Any] = field(default_factory=dict)


class FakeScheduler:
    """Keeps jobs by id, as `add_job(replace_existing=True)` and `remove_job` would; runs nothing."""

    def __init__(self) -> None:
        self.jobs: dict[str, FakeJob] = {}

    def add_job(self, func: Callable[..., object], trigger: str, **options: Any) -> FakeJob:
        """Add or replace a job."""
        job_id, args = options.pop("id"), options.pop("args")
        job = FakeJob(job_id, func, trigger, args, options)
        self.jobs[job_id] = job
        return job

    def remove_job(self, job_id: str) -> None:
        """Remove a job, or JobLookupError as APScheduler raises."""
        if self.jobs.pop(job_id, None) is None:
            raise JobLookupError(job_id)

    def get_job(self, job_id: str) -> FakeJob | None:
        """One job, or None."""
        return self.jobs.get(job_id)

    def get_jobs(self) -> list[FakeJob]:
        """Every job."""
        return list(self.jobs.values())


class Told:
    """A notifier that keeps (ticket, reason) of each notification."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []

    def notify(self, change: TicketChange, reason: str) -> None:
        """Keep it."""
        self.seen.append((change.ticket_id, reason))


@dataclass
class Timers:
    """Tickets on the records, escalation over the fake scheduler, and the two dispatcher threads."""

    tickets: TicketService
    escalation: Escalation
    scheduler: FakeScheduler
    told: Told

    def settle(self) -> None:
        """Wait until the timers' thread has handled every change so far, then the notifications."""
        assert self.escalation.timers.drain() and self.escalation.dispatcher.drain()

    def open(self, device_id: str, severity: Severity) -> int:
        """Raise an alarm of this class on a device; its ticket's id."""
        event = AlarmEvent(
            kind="raised",
            site="s1",
            device_type="elevator",
            device_id=device_id,
            rule=f"rule_{severity}",
            severity=severity,
            ts=int(time.time() * 1000),
            title="x",
            detail={},
        )
        ticket_id = self.tickets.apply_alarm(event)
        assert ticket_id is not None
        return ticket_id


@pytest.fixture
def timers(db: Database) -> Iterator[Timers]:
    """Escalation wired to tickets as the service wires it, with a fake scheduler."""
    told = Told()
    to_escalation = Relay[TicketChange]("escalation")
    tickets = TicketService(db, listeners=[to_escalation])
    scheduler = FakeScheduler()
    dispatcher, timer_jobs = Dispatcher([told]), Dispatcher([], name="timers", maxsize=0)
    esc = Escalation(scheduler, tickets, dispatcher, timer_jobs, RENOTIFY_S, EMERGENCY_S, MAJOR_S)
    to_escalation.bind(esc.on_change)
    yield Timers(tickets, esc, scheduler, told)
    timer_jobs.stop()
    dispatcher.stop()


def test_opening_notifies_and_schedules_the_timers_of_its_class(timers: Timers) -> None:
    before = datetime.now(UTC)
    emergency = timers.open("elev-1", Severity.EMERGENCY)
    major = timers.open("elev-2", Severity.MAJOR)
    routine = timers.open("elev-3", Severity.ROUTINE)
    timers.settle()
    after = datetime.now(UTC)
    assert timers.told.seen == [(emergency, "opened"), (major, "opened"), (routine, "opened")]
    jobs = timers.scheduler.jobs
    assert set(jobs) == {f"renotify-{emergency}", f"escalate-{emergency}", f"escalate-{major}"}

    renotify = jobs[f"renotify-{emergency}"]
    assert (renotify.func, renotify.trigger, renotify.args) == (escalation.renotify, "interval", [emergency])
    assert renotify.options["seconds"] == RENOTIFY_S
    first = renotify.options["next_run_time"]
    assert before + timedelta(seconds=RENOTIFY_S) <= first <= after + timedelta(seconds=RENOTIFY_S)
    for ticket_id, seconds in ((emergency, EMERGENCY_S), (major, MAJOR_S)):
        job = jobs[f"escalate-{ticket_id}"]
        assert (job.func, job.trigger, job.args) == (escalation.escalate, "date", [ticket_id])
        due = job.options["run_date"]
        assert before + timedelta(seconds=seconds) <= due <= after + timedelta(seconds=seconds)


def test_acknowledging_cancels_the_timers(timers: Timers) -> None:
    emergency = timers.open("elev-1", Severity.EMERGENCY)
    major = timers.open("elev-2", Severity.MAJOR)
    timers.settle()
    timers.tickets.act(emergency, Action.ACKNOWLEDGE, ActionFields(), "eng")
    timers.settle()
    assert set(timers.scheduler.jobs) == {f"escalate-{major}"}


def test_repair_restores_what_is_missing_and_only_that(timers: Timers) -> None:
    emergency = timers.open("elev-1", Severity.EMERGENCY)
    major = timers.open("elev-2", Severity.MAJOR)
    escalated = timers.open("elev-3", Severity.MAJOR)
    timers.settle()
    assert timers.tickets.escalate(escalated) is not None  # its one escalation is spent
    jobs = timers.scheduler.jobs
    for job_id in (f"renotify-{emergency}", f"escalate-{major}", f"escalate-{escalated}"):
        timers.scheduler.remove_job(job_id)
    kept = jobs[f"escalate-{emergency}"]

    assert timers.escalation.repair() == 2
    assert set(jobs) == {f"renotify-{emergency}", f"escalate-{emergency}", f"escalate-{major}"}
    assert jobs[f"escalate-{emergency}"] is kept, "a job present is left alone"
    assert timers.escalation.repair() == 0


def test_one_escalation_per_process_runs_the_persisted_jobs(timers: Timers) -> None:
    other = Escalation(
        FakeScheduler(), timers.tickets, timers.escalation.dispatcher, timers.escalation.timers
    )
    ticket_id = timers.open("elev-1", Severity.EMERGENCY)
    timers.settle()
    escalation.activate(timers.escalation)
    try:
        escalation.activate(timers.escalation)  # the same one again: no harm
        with pytest.raises(RuntimeError, match="another service"):
            escalation.activate(other)
        escalation.deactivate(other)  # not the active one: changes nothing
        escalation.renotify(ticket_id)  # as the job store would call it
        timers.settle()
        assert (ticket_id, "re-notify") in timers.told.seen
    finally:
        escalation.deactivate(timers.escalation)
    escalation.activate(other)  # free again once the first is gone
    escalation.deactivate(other)
    escalation.escalate(ticket_id)  # no escalation active: the job does nothing
    assert timers.tickets.get(ticket_id).escalation_level == 0
