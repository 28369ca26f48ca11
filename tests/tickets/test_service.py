"""Alarms become tickets and people work them, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from ground.events import AlarmEvent
from ground.severity import Severity
from records.db import Database
from records.states import CauseClass
from tickets.lifecycle import Action, RecordMissing, Source, Status, TransitionRefused
from tickets.service import ActionFields, NewTicket, TicketFilter, TicketService

T0 = 1_795_749_124_000


def alarm(
    rule: str, severity: Severity, ts: int = T0, kind: str = "raised", device: str = "elev-1"
) -> AlarmEvent:
    """An alarm event of the rules engine."""
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


def test_a_raised_alarm_opens_one_ticket_with_its_class_and_due_time(tickets: TicketService) -> None:
    ticket_id = tickets.apply_alarm(alarm("entrapment", Severity.EMERGENCY))
    assert ticket_id is not None
    t = tickets.get(ticket_id)
    assert (t.source, t.status, t.severity, t.rule, t.occurrences) == (
        "alarm",
        "open",
        "emergency",
        "entrapment",
        1,
    )
    assert t.response_due - t.opened_at == timedelta(minutes=5)
    assert [a.action for a in t.audit] == ["open"]
    [a] = tickets.alarms(active_only=True)
    assert (a.rule, a.count, a.ticket_id, a.active) == ("entrapment", 1, ticket_id, True)


def test_the_same_raise_twice_changes_nothing_and_a_repeat_counts(tickets: TicketService) -> None:
    first = tickets.apply_alarm(alarm("alarm_button", Severity.EMERGENCY))
    assert tickets.apply_alarm(alarm("alarm_button", Severity.EMERGENCY)) == first  # a replay
    assert tickets.get(first).occurrences == 1  # type: ignore[arg-type]
    tickets.apply_alarm(alarm("alarm_button", Severity.EMERGENCY, ts=T0 + 30_000))  # pressed again
    [a] = tickets.alarms(active_only=True)
    assert a.count == 2 and a.last_seen == datetime.fromtimestamp((T0 + 30_000) / 1000, UTC)
    assert tickets.get(first).occurrences == 2  # type: ignore[arg-type]
    # That repeat delivered again (the broker resends what a crash left unacknowledged).
    tickets.apply_alarm(alarm("alarm_button", Severity.EMERGENCY, ts=T0 + 30_000))
    [a] = tickets.alarms(active_only=True)
    assert a.count == 2 and tickets.get(first).occurrences == 2  # type: ignore[arg-type]
    assert len(tickets.list(TicketFilter())) == 1


def test_a_higher_class_rule_raises_the_device_ticket_and_a_lower_one_never_lowers_it(
    tickets: TicketService,
) -> None:
    ticket_id = tickets.apply_alarm(alarm("stop_outside_door_zone", Severity.MAJOR))
    assert ticket_id is not None
    due_major = tickets.get(ticket_id).response_due
    assert tickets.apply_alarm(alarm("entrapment", Severity.EMERGENCY, ts=T0 + 1000)) == ticket_id
    t = tickets.get(ticket_id)
    assert t.severity == "emergency" and t.rule == "entrapment" and t.response_due < due_major
    assert tickets.apply_alarm(alarm("offline", Severity.MAJOR, ts=T0 + 2000)) == ticket_id
    t = tickets.get(ticket_id)
    assert t.severity == "emergency" and t.occurrences == 3
    assert [a.action for a in t.audit] == ["open", "class_raised", "occurrence"]
    assert len(tickets.alarms(active_only=True)) == 3


def test_a_graver_fault_on_an_acknowledged_ticket_must_be_acknowledged_again(tickets: TicketService) -> None:
    ticket_id = tickets.apply_alarm(alarm("door_fault", Severity.ROUTINE))
    assert ticket_id is not None
    tickets.act(ticket_id, Action.ACKNOWLEDGE, ActionFields(), "eng")
    tickets.act(ticket_id, Action.START, ActionFields(), "eng")
    assert tickets.apply_alarm(alarm("entrapment", Severity.EMERGENCY, ts=T0 + 1000)) == ticket_id
    t = tickets.get(ticket_id)
    assert (t.status, t.severity, t.acknowledged_at) == ("open", "emergency", None)
    assert t.audit[-1].action == "class_raised" and t.audit[-1].detail["acknowledge_again"] is True
    assert t.response_due - t.last_occurrence_at < timedelta(minutes=5, seconds=1)
    # Until someone acknowledges the entrapment, its timers re-notify and escalate it.
    assert tickets.mark_notified(ticket_id) is not None
    tickets.act(ticket_id, Action.ACKNOWLEDGE, ActionFields(), "eng")
    assert tickets.get(ticket_id).status == "acknowledged"
    # A routine fault on top changes nothing of that.
    tickets.apply_alarm(alarm("lamp", Severity.ROUTINE, ts=T0 + 2000))
    assert tickets.get(ticket_id).status == "acknowledged"


def test_a_cleared_alarm_leaves_its_ticket_for_people_to_close(tickets: TicketService) -> None:
    ticket_id = tickets.apply_alarm(alarm("breaker_tripped", Severity.MAJOR))
    assert (
        tickets.apply_alarm(alarm("breaker_tripped", Severity.MAJOR, ts=T0 + 5000, kind="cleared"))
        == ticket_id
    )
    assert tickets.alarms(active_only=True) == []
    [a] = tickets.alarms(active_only=False)
    assert a.cleared_at is not None
    assert tickets.get(ticket_id).status == "open"  # type: ignore[arg-type]


def _work_through(tickets: TicketService, ticket_id: int) -> None:
    for action, fields in [
        (Action.ACKNOWLEDGE, ActionFields()),
        (Action.START, ActionFields(assignee="eng-7")),
        (
            Action.RESOLVE,
            ActionFields(
                cause="door operator board failed",
                measures="board replaced",
                result="lift back in service",
                emergency_plan_started=True,
                leadership_informed=True,
                temporary_measures="passengers released",
                cause_class=CauseClass.EQUIPMENT,
            ),
        ),
    ]:
        tickets.act(ticket_id, action, fields, "eng-7")


def test_recurrence_within_the_cooldown_reopens_the_ticket_after_it_a_new_one(db: Database) -> None:
    now = [datetime(2026, 11, 27, 2, 0, tzinfo=UTC)]
    tickets = TicketService(db, reopen_cooldown_s=600, clock=lambda: now[0])
    first = tickets.apply_alarm(alarm("entrapment", Severity.EMERGENCY))
    assert first is not None
    tickets.apply_alarm(alarm("entrapment", Severity.EMERGENCY, ts=T0 + 1000, kind="cleared"))
    _work_through(tickets, first)
    assert tickets.get(first).status == "resolved"
    now[0] += timedelta(minutes=5)
    assert tickets.apply_alarm(alarm("entrapment", Severity.EMERGENCY, ts=T0 + 300_000)) == first
    t = tickets.get(first)
    assert t.status == "open" and t.occurrences == 2 and t.resolved_at is None
    tickets.apply_alarm(alarm("entrapment", Severity.EMERGENCY, ts=T0 + 301_000, kind="cleared"))
    _work_through(tickets, first)
    now[0] += timedelta(minutes=11)
    second = tickets.apply_alarm(alarm("entrapment", Severity.EMERGENCY, ts=T0 + 960_000))
    assert second is not None and second != first
    assert tickets.get(first).status == "closed"
    assert tickets.get(second).status == "open"


def test_two_workers_racing_on_one_alarm_open_one_ticket(db_url: str, db: Database) -> None:
    workers = [TicketService(Database(db_url)) for _ in range(4)]
    barrier = threading.Barrier(len(workers))
    results: list[int | None] = []

    def work(service: TicketService) -> None:
        barrier.wait()
        results.append(service.apply_alarm(alarm("sump_flooding", Severity.EMERGENCY)))

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(set(results)) == 1 and None not in results
    assert len(TicketService(db).list(TicketFilter())) == 1
    assert len(TicketService(db).alarms(active_only=False)) == 1
    for w in workers:
        w.db.close()


@pytest.mark.parametrize(
    ("status_path", "action"),
    [
        ([], Action.START),
        ([], Action.RESOLVE),
        ([], Action.CLOSE),
        ([], Action.REOPEN),
        ([Action.ACKNOWLEDGE], Action.ACKNOWLEDGE),
        ([Action.ACKNOWLEDGE], Action.RESOLVE),
        ([Action.ACKNOWLEDGE, Action.START], Action.CLOSE),
    ],
)
def test_an_illegal_transition_is_refused_and_changes_nothing(
    tickets: TicketService, status_path: list[Action], action: Action
) -> None:
    ticket_id = tickets.apply_alarm(alarm("fire_panel_fault", Severity.ROUTINE))
    assert ticket_id is not None
    for step in status_path:
        tickets.act(ticket_id, step, ActionFields(), "eng")
    before = tickets.get(ticket_id)
    full = ActionFields(cause="c", measures="m", result="r", followup="f")
    with pytest.raises(TransitionRefused):
        tickets.act(ticket_id, action, full, "eng")
    after = tickets.get(ticket_id)
    assert (after.status, len(after.audit), after.cause) == (before.status, len(before.audit), before.cause)


def test_emergency_cannot_be_resolved_without_the_manuals_steps(tickets: TicketService) -> None:
    ticket_id = tickets.apply_alarm(alarm("entrapment", Severity.EMERGENCY))
    assert ticket_id is not None
    tickets.act(ticket_id, Action.ACKNOWLEDGE, ActionFields(), "eng")
    tickets.act(ticket_id, Action.START, ActionFields(), "eng")
    tickets.apply_alarm(alarm("entrapment", Severity.EMERGENCY, ts=T0 + 1000, kind="cleared"))
    record = ActionFields(cause="c", measures="m", result="r")
    with pytest.raises(
        TransitionRefused, match="emergency_plan_started, leadership_informed, temporary_measures"
    ):
        tickets.act(ticket_id, Action.RESOLVE, record, "eng")
    # Steps recorded along the way count at resolve time.
    tickets.act(ticket_id, Action.ASSIGN, ActionFields(assignee="eng", emergency_plan_started=True), "mgr")
    with pytest.raises(RecordMissing) as missing:
        tickets.act(
            ticket_id, Action.RESOLVE, ActionFields(leadership_informed=True, temporary_measures="x"), "eng"
        )
    assert missing.value.fields == ["cause", "measures", "result"]
    record = ActionFields(
        cause="c", measures="m", result="r", leadership_informed=True, temporary_measures="x"
    )
    # §9.2.1: a major or emergency fault is classed when resolved.
    with pytest.raises(RecordMissing) as missing:
        tickets.act(ticket_id, Action.RESOLVE, record, "eng")
    assert missing.value.fields == ["cause_class"]
    record.cause_class = CauseClass.EQUIPMENT
    t = tickets.act(ticket_id, Action.RESOLVE, record, "eng")
    assert t.cause_class == CauseClass.EQUIPMENT
    assert t.status == "resolved" and t.emergency_plan_started_at and t.leadership_informed_at
    assert [a.actor for a in t.audit][-2:] == ["mgr", "eng"]


def test_an_occupant_ticket_needs_a_follow_up_to_close(tickets: TicketService) -> None:
    t = tickets.open_ticket(
        NewTicket(site="s1", title="Water leaking in lobby", reporter="Unit 12B, 138-0000-0000"), "front-desk"
    )
    assert (t.source, t.severity, t.status) == (Source.OCCUPANT, "routine", Status.OPEN)
    tickets.act(t.id, Action.ACKNOWLEDGE, ActionFields(), "eng")
    tickets.act(t.id, Action.START, ActionFields(), "eng")
    tickets.act(t.id, Action.RESOLVE, ActionFields(cause="pipe", measures="sealed", result="dry"), "eng")
    with pytest.raises(RecordMissing) as missing:
        tickets.act(t.id, Action.CLOSE, ActionFields(), "eng")
    assert missing.value.fields == ["followup"]
    closed = tickets.act(t.id, Action.CLOSE, ActionFields(followup="called back; satisfied"), "desk")
    assert closed.status == "closed" and closed.followup == "called back; satisfied"


def test_escalation_counts_only_while_nobody_acknowledged(tickets: TicketService) -> None:
    ticket_id = tickets.apply_alarm(alarm("sos", Severity.EMERGENCY))
    assert ticket_id is not None
    assert tickets.mark_notified(ticket_id) is not None
    change = tickets.escalate(ticket_id)
    assert change is not None and change.kind == "escalated"
    t = tickets.get(ticket_id)
    assert (t.notified_count, t.escalation_level) == (1, 1)
    tickets.act(ticket_id, Action.ACKNOWLEDGE, ActionFields(), "eng")
    assert tickets.mark_notified(ticket_id) is None and tickets.escalate(ticket_id) is None


def test_resolving_clears_a_latched_alarm_but_not_a_condition_that_still_holds(
    tickets: TicketService,
) -> None:
    button = AlarmEvent(
        kind="raised",
        site="s1",
        device_type="elevator",
        device_id="elev-1",
        rule="alarm_button",
        severity=Severity.EMERGENCY,
        ts=T0,
        title="alarm button",
        detail={"code": "ALARM_BUTTON", "state": None, "detail": {}},
    )
    ticket_id = tickets.apply_alarm(button)
    tickets.apply_alarm(alarm("stop_outside_door_zone", Severity.MAJOR, ts=T0 + 1000))
    assert ticket_id is not None
    _work_through(tickets, ticket_id)
    [still] = tickets.alarms(active_only=True)
    assert still.rule == "stop_outside_door_zone"
    [button_alarm] = [a for a in tickets.alarms(active_only=False) if a.rule == "alarm_button"]
    assert button_alarm.detail["latched"] is True and button_alarm.cleared_at is not None


def test_a_manual_reopen_is_a_fresh_fault_to_acknowledge_again(db: Database) -> None:
    now = [datetime(2026, 11, 27, 2, 0, tzinfo=UTC)]
    tickets = TicketService(db, clock=lambda: now[0])
    seen: list[str] = []
    tickets.listeners.append(lambda change: seen.append(change.kind))
    ticket_id = tickets.apply_alarm(alarm("entrapment", Severity.EMERGENCY))
    assert ticket_id is not None
    tickets.apply_alarm(alarm("entrapment", Severity.EMERGENCY, ts=T0 + 1000, kind="cleared"))
    _work_through(tickets, ticket_id)
    now[0] += timedelta(hours=2)
    t = tickets.act(ticket_id, Action.REOPEN, ActionFields(note="still stuck"), "mgr")
    assert t.status == "open" and t.acknowledged_at is None and t.started_at is None
    assert t.response_due == now[0] + timedelta(minutes=5)
    # The acknowledge clock starts again at the reopening, and the resolve target with it.
    assert t.ack_from == now[0] and t.resolve_due == now[0] + timedelta(hours=4)
    assert seen[-1] == "reopened"
