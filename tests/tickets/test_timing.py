"""Ticket timing: reports joining tickets, the acknowledge clock, faults that persist, overdue marks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from facility.wiring import Relay
from ground.events import AlarmEvent
from ground.severity import Severity
from records.db import Database
from records.states import CauseClass
from tests.tickets.test_escalation import FakeScheduler, Told
from tickets import deadlines
from tickets.changes import ChangeKind
from tickets.deadlines import Deadlines
from tickets.lifecycle import Action, Source
from tickets.notify import Dispatcher
from tickets.service import ActionFields, NewTicket, TicketChange, TicketFilter, TicketService
from tickets.timeline import ticket_point
from tickets.timing import Due, overdue_for

T0 = 1_795_749_124_000
COOLDOWN_S = 600
DONE = ActionFields(
    cause="c",
    measures="m",
    result="r",
    emergency_plan_started=True,
    leadership_informed=True,
    temporary_measures="t",
    cause_class=CauseClass.EQUIPMENT,
)


def alarm(
    rule: str, severity: Severity, kind: str = "raised", ts: int = T0, device: str = "elev-1"
) -> AlarmEvent:
    """An alarm event of the rules engine on an elevator of site s1."""
    return AlarmEvent(
        kind=kind,  # type: ignore[arg-type]
        site="s1",
        device_type="elevator",
        device_id=device,
        rule=rule,
        severity=severity,
        ts=ts,
        title=rule.replace("_", " "),
        detail={"x": 1},
    )


def report(device_id: str | None = "elev-1", location: str | None = None, **more: object) -> NewTicket:
    """An occupant's report."""
    fields: dict[str, object] = {
        "site": "s1",
        "title": "Lift stuck",
        "description": "The lift stopped between floors with a noise",
        "device_id": device_id,
        "location": location,
        "reporter": "Unit 12B",
        "contact": "138-0000-0000",
        **more,
    }
    return NewTicket(**fields)  # type: ignore[arg-type]


@dataclass
class Clocked:
    """Tickets on a fake clock, with the deadline timers over a fake scheduler."""

    tickets: TicketService
    deadlines: Deadlines
    scheduler: FakeScheduler
    told: Told
    now: list[datetime]

    def settle(self) -> None:
        """Wait until the timers' thread and the notifications have caught up."""
        assert self.deadlines.timers.drain() and self.deadlines.dispatcher.drain()

    def later(self, **delta: float) -> None:
        """Move the fake clock on."""
        self.now[0] += timedelta(**delta)

    def work_through(self, ticket_id: int) -> None:
        """Acknowledge, start and resolve."""
        for action, fields in (
            (Action.ACKNOWLEDGE, ActionFields()),
            (Action.START, ActionFields()),
            (Action.RESOLVE, DONE),
        ):
            self.tickets.act(ticket_id, action, fields, "eng")


@pytest.fixture
def clocked(db: Database) -> Iterator[Clocked]:
    """The ticket service on a fake clock starting now, with its deadlines wired as the service does."""
    now = [datetime.now(UTC).replace(microsecond=0)]
    told, scheduler = Told(), FakeScheduler()
    relay = Relay[TicketChange]("deadlines")
    tickets = TicketService(db, reopen_cooldown_s=COOLDOWN_S, listeners=[relay], clock=lambda: now[0])
    dispatcher, timer_jobs = Dispatcher([told]), Dispatcher([], name="timers", maxsize=0)
    dl = Deadlines(scheduler, tickets, dispatcher, timer_jobs, COOLDOWN_S)
    relay.bind(dl.on_change)
    yield Clocked(tickets, dl, scheduler, told, now)
    timer_jobs.stop()
    dispatcher.stop()


# --- occupants' reports and alarms on one ticket ----------------------------------------------


def test_a_report_about_a_device_with_an_alarm_ticket_joins_it(clocked: Clocked) -> None:
    tickets = clocked.tickets
    ticket_id = tickets.apply_alarm(alarm("entrapment", Severity.EMERGENCY))
    clocked.later(minutes=1)
    ticket, joined = tickets.report(report(), "front-desk")
    assert joined and ticket.id == ticket_id
    assert ticket.occurrences == 2 and ticket.last_occurrence_at == clocked.now[0]
    entry = ticket.audit[-1]
    assert (entry.action, entry.actor) == ("occurrence", "front-desk")
    assert entry.detail == {
        "source": "occupant",
        "reporter": "Unit 12B",
        "contact": "138-0000-0000",
        "words": "The lift stopped between floors with a noise",
    }
    assert len(tickets.list(TicketFilter())) == 1
    # Another device's report is a ticket of its own.
    other, joined = tickets.report(report(device_id="elev-2"), "front-desk")
    assert not joined and other.id != ticket_id and other.source == Source.OCCUPANT


def test_a_report_about_a_place_joins_the_open_ticket_there_and_a_graver_one_raises_it(
    clocked: Clocked,
) -> None:
    tickets = clocked.tickets
    first, joined = tickets.report(report(device_id=None, location="Lobby B, floor 1"), "front-desk")
    assert not joined and [a.detail.get("contact") for a in first.audit] == ["138-0000-0000"]
    again, joined = tickets.report(
        report(device_id=None, location="  lobby b, FLOOR 1 ", severity=Severity.MAJOR), "front-desk"
    )
    assert joined and again.id == first.id and again.severity == Severity.MAJOR
    assert [a.action for a in again.audit] == ["open", "occurrence", "class_raised"]
    elsewhere, joined = tickets.report(report(device_id=None, location="Lobby C"), "front-desk")
    assert not joined and elsewhere.id != first.id
    # Planned work at a place is no fault a report could be another occurrence of.
    planned = tickets.open_ticket(
        NewTicket(site="s1", title="Repaint", source=Source.MAINTENANCE, location="Garage"), "planner"
    )
    fault, joined = tickets.report(report(device_id=None, location="Garage"), "front-desk")
    assert not joined and fault.id != planned.id


def test_a_device_alarm_joins_the_open_report_about_it(clocked: Clocked) -> None:
    tickets = clocked.tickets
    reported, _ = tickets.report(report(), "front-desk")
    clocked.later(minutes=3)
    assert tickets.apply_alarm(alarm("entrapment", Severity.EMERGENCY)) == reported.id
    t = tickets.get(reported.id)
    assert (t.source, t.severity, t.rule, t.occurrences) == ("occupant", "emergency", "entrapment", 2)
    assert [a.action for a in t.audit] == ["open", "alarm_joined", "class_raised"]
    # The device's alarms now come to it, as to any alarm's ticket.
    assert tickets.apply_alarm(alarm("alarm_button", Severity.EMERGENCY, ts=T0 + 1000)) == reported.id
    assert tickets.get(reported.id).occurrences == 3
    assert len(tickets.list(TicketFilter())) == 1
    # The report was open a while: the emergency is due 5 min from when it was reported.
    assert t.response_due == reported.opened_at + timedelta(minutes=5)


# --- the acknowledge clock ----------------------------------------------------------------------


def test_a_graver_class_on_an_acknowledged_ticket_starts_the_acknowledge_clock_again(
    clocked: Clocked,
) -> None:
    tickets = clocked.tickets
    ticket_id = tickets.apply_alarm(alarm("door_fault", Severity.ROUTINE))
    assert ticket_id is not None
    tickets.act(ticket_id, Action.ACKNOWLEDGE, ActionFields(), "eng")
    assert tickets.get(ticket_id).ack_from is None
    clocked.later(hours=2)
    raised_at = clocked.now[0]
    tickets.apply_alarm(alarm("entrapment", Severity.EMERGENCY, ts=T0 + 1000))
    t = tickets.get(ticket_id)
    assert t.ack_from == raised_at and t.resolve_due == raised_at + timedelta(hours=4)
    clocked.later(minutes=3)
    t = tickets.act(ticket_id, Action.ACKNOWLEDGE, ActionFields(), "eng")
    # Time to acknowledge counts from the graver fault, not from the opening two hours before.
    change = tickets._change(t, ChangeKind.ACKNOWLEDGED)
    line, _ = ticket_point(change, clocked.now[0])
    assert "seconds_to_acknowledge=180" in line


# --- a fault that persists ----------------------------------------------------------------------


def test_a_major_or_emergency_resolved_while_its_alarm_is_active_reopens_at_once(clocked: Clocked) -> None:
    tickets = clocked.tickets
    ticket_id = tickets.apply_alarm(alarm("entrapment", Severity.EMERGENCY))
    assert ticket_id is not None
    clocked.later(minutes=20)
    clocked.work_through(ticket_id)
    t = tickets.get(ticket_id)
    assert t.status == "open" and t.resolved_at is None and t.ack_from == clocked.now[0]
    assert [a.action for a in t.audit][-2:] == ["resolve", "reopen"]
    assert t.audit[-1].detail == {"reason": "condition still holds", "rules": ["entrapment"]}
    # Once the condition has cleared, resolving holds.
    tickets.apply_alarm(alarm("entrapment", Severity.EMERGENCY, kind="cleared", ts=T0 + 60_000))
    clocked.work_through(ticket_id)
    assert tickets.get(ticket_id).status == "resolved"


def test_a_latched_event_is_no_condition_that_holds(clocked: Clocked) -> None:
    tickets = clocked.tickets
    event = alarm("alarm_button", Severity.EMERGENCY)
    event.detail.update({"code": "ALARM_BUTTON"})  # instantaneous: latched until its ticket is resolved
    ticket_id = tickets.apply_alarm(event)
    assert ticket_id is not None
    clocked.work_through(ticket_id)
    assert tickets.get(ticket_id).status == "resolved"


def test_a_routine_ticket_resolved_while_its_fault_persists_reopens_after_the_cooldown(
    clocked: Clocked,
) -> None:
    tickets = clocked.tickets
    ticket_id = tickets.apply_alarm(alarm("water_pump_fault", Severity.ROUTINE))
    assert ticket_id is not None
    clocked.work_through(ticket_id)
    resolved_at = clocked.now[0]
    assert tickets.get(ticket_id).status == "resolved"
    clocked.settle()
    job = clocked.scheduler.jobs[f"persists-{ticket_id}"]
    assert (job.func, job.args) == (deadlines.fire, ["persists-", ticket_id])
    assert job.options["run_date"] == resolved_at + timedelta(seconds=COOLDOWN_S)
    clocked.later(seconds=COOLDOWN_S)
    clocked.deadlines.fire("persists-", ticket_id)  # as the job store would call it
    t = tickets.get(ticket_id)
    assert t.status == "open" and t.ack_from == clocked.now[0]
    assert t.audit[-1].detail["reason"] == "condition still holds"
    clocked.settle()
    assert f"persists-{ticket_id}" not in clocked.scheduler.jobs


def test_a_fault_that_cleared_before_the_cooldown_leaves_its_ticket_resolved(clocked: Clocked) -> None:
    tickets = clocked.tickets
    ticket_id = tickets.apply_alarm(alarm("water_pump_fault", Severity.ROUTINE))
    assert ticket_id is not None
    clocked.work_through(ticket_id)
    tickets.apply_alarm(alarm("water_pump_fault", Severity.ROUTINE, kind="cleared", ts=T0 + 5000))
    clocked.later(seconds=COOLDOWN_S)
    clocked.deadlines.fire("persists-", ticket_id)
    assert tickets.get(ticket_id).status == "resolved"


def test_a_ticket_closed_while_its_fault_persists_is_reopened_and_takes_the_alarms_back(
    clocked: Clocked,
) -> None:
    tickets = clocked.tickets
    ticket_id = tickets.apply_alarm(alarm("water_pump_fault", Severity.ROUTINE))
    assert ticket_id is not None
    clocked.work_through(ticket_id)
    tickets.act(ticket_id, Action.CLOSE, ActionFields(), "mgr")
    clocked.settle()
    assert clocked.deadlines.repair() == 0, "the closed ticket kept its timer"
    clocked.scheduler.jobs.clear()  # lost: a process killed before the timer was written
    assert clocked.deadlines.repair() == 1
    clocked.later(seconds=COOLDOWN_S)
    clocked.deadlines.fire("persists-", ticket_id)
    t = tickets.get(ticket_id)
    assert t.status == "open" and t.alarm_key == "s1/elev-1"
    # Its alarms come to it again.
    assert tickets.apply_alarm(alarm("water_pump_fault", Severity.ROUTINE, ts=T0 + 9000)) == ticket_id


# --- overdue --------------------------------------------------------------------------------------


def test_a_routine_ticket_past_its_response_due_is_marked_overdue_and_notified_once(clocked: Clocked) -> None:
    tickets = clocked.tickets
    ticket_id = tickets.apply_alarm(alarm("water_pump_fault", Severity.ROUTINE))
    major = tickets.apply_alarm(alarm("breaker_tripped", Severity.MAJOR, device="light-1"))
    assert ticket_id is not None and major is not None
    clocked.settle()
    t = tickets.get(ticket_id)
    jobs = clocked.scheduler.jobs
    assert jobs[f"overdue-{ticket_id}"].options["run_date"] == t.response_due
    assert (
        jobs[f"resolve-due-{ticket_id}"].options["run_date"]
        == t.resolve_due
        == t.opened_at + timedelta(hours=72)
    )
    # Major and emergency have escalation instead; their resolve target is timed all the same.
    assert f"overdue-{major}" not in jobs and f"resolve-due-{major}" in jobs
    assert overdue_for(t, clocked.now[0]) == []

    clocked.later(hours=24, seconds=1)
    assert overdue_for(tickets.get(ticket_id), clocked.now[0]) == [Due.RESPONSE]
    assert ticket_id in [x.id for x in tickets.list(TicketFilter(overdue=True))]
    clocked.deadlines.fire("overdue-", ticket_id)
    clocked.deadlines.fire("overdue-", ticket_id)  # a second firing (a restart) tells nobody again
    clocked.settle()
    assert clocked.told.seen.count((ticket_id, "overdue")) == 1
    t = tickets.get(ticket_id)
    assert t.response_overdue_at == clocked.now[0]
    assert (t.audit[-1].action, t.audit[-1].detail["for"]) == ("overdue", "response")

    # Acknowledged: no longer late to respond, but still due to be resolved.
    tickets.act(ticket_id, Action.ACKNOWLEDGE, ActionFields(), "eng")
    clocked.settle()
    assert f"overdue-{ticket_id}" not in jobs and f"resolve-due-{ticket_id}" in jobs
    assert ticket_id not in [x.id for x in tickets.list(TicketFilter(overdue=True))]
    clocked.later(hours=48)
    assert overdue_for(tickets.get(ticket_id), clocked.now[0]) == [Due.RESOLVE]
    assert ticket_id in [x.id for x in tickets.list(TicketFilter(overdue=True))]
    clocked.deadlines.fire("resolve-due-", ticket_id)
    clocked.settle()
    assert clocked.told.seen.count((ticket_id, "overdue")) == 2


def test_a_timer_that_fires_before_its_moved_due_waits_for_it(clocked: Clocked) -> None:
    tickets = clocked.tickets
    ticket_id = tickets.apply_alarm(alarm("water_pump_fault", Severity.ROUTINE))
    assert ticket_id is not None
    clocked.settle()
    clocked.scheduler.jobs.clear()
    clocked.deadlines.fire("overdue-", ticket_id)  # early: nothing is overdue yet
    clocked.settle()
    assert clocked.told.seen == [] and tickets.get(ticket_id).response_overdue_at is None
    assert (
        clocked.scheduler.jobs[f"overdue-{ticket_id}"].options["run_date"]
        == tickets.get(ticket_id).response_due
    )


def test_repair_restores_lost_deadline_timers(clocked: Clocked) -> None:
    tickets = clocked.tickets
    ticket_id = tickets.apply_alarm(alarm("water_pump_fault", Severity.ROUTINE))
    clocked.settle()
    kept = dict(clocked.scheduler.jobs)
    assert set(kept) == {f"overdue-{ticket_id}", f"resolve-due-{ticket_id}"}
    clocked.scheduler.jobs.pop(f"overdue-{ticket_id}")
    assert clocked.deadlines.repair() == 1
    assert set(clocked.scheduler.jobs) == set(kept)
    assert clocked.deadlines.repair() == 0


def test_one_deadlines_per_process_runs_the_persisted_jobs(clocked: Clocked) -> None:
    other = Deadlines(
        FakeScheduler(), clocked.tickets, clocked.deadlines.dispatcher, clocked.deadlines.timers
    )
    deadlines.activate(clocked.deadlines)
    try:
        with pytest.raises(RuntimeError, match="another service"):
            deadlines.activate(other)
    finally:
        deadlines.deactivate(clocked.deadlines)
    deadlines.activate(other)
    deadlines.deactivate(other)
