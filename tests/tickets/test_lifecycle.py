"""The ticket state machine: every legal transition, every illegal one refused, and what each needs."""

from __future__ import annotations

import dataclasses

import pytest

from ground.severity import Severity
from tickets.lifecycle import (
    TRANSITIONS,
    Action,
    RecordMissing,
    Source,
    Status,
    TicketFacts,
    TransitionRefused,
    next_status,
    required_steps,
)

COMPLETE = TicketFacts(
    status=Status.OPEN,
    severity=Severity.EMERGENCY,
    source=Source.OCCUPANT,
    emergency_plan_started=True,
    leadership_informed=True,
    temporary_measures=True,
    cause=True,
    measures=True,
    result=True,
    followup=True,
    assignee_given=True,
    cause_class=True,
)

LEGAL = [
    (Action.ACKNOWLEDGE, Status.OPEN, Status.ACKNOWLEDGED),
    (Action.ASSIGN, Status.OPEN, Status.OPEN),
    (Action.ASSIGN, Status.ACKNOWLEDGED, Status.ACKNOWLEDGED),
    (Action.ASSIGN, Status.IN_PROGRESS, Status.IN_PROGRESS),
    (Action.START, Status.ACKNOWLEDGED, Status.IN_PROGRESS),
    (Action.RESOLVE, Status.IN_PROGRESS, Status.RESOLVED),
    (Action.CLOSE, Status.RESOLVED, Status.CLOSED),
    (Action.REOPEN, Status.RESOLVED, Status.OPEN),
    (Action.REOPEN, Status.CLOSED, Status.OPEN),
]


@pytest.mark.parametrize(("action", "before", "after"), LEGAL)
def test_legal_transitions(action: Action, before: Status, after: Status) -> None:
    assert next_status(dataclasses.replace(COMPLETE, status=before), action) is after


ILLEGAL = [(a, s) for a in Action for s in Status if (a, s) not in {(x, y) for x, y, _ in LEGAL}]


@pytest.mark.parametrize(("action", "before"), ILLEGAL)
def test_every_other_transition_is_refused(action: Action, before: Status) -> None:
    with pytest.raises(TransitionRefused, match=f"cannot {action.value}"):
        next_status(dataclasses.replace(COMPLETE, status=before), action)


def test_the_table_and_the_tests_agree() -> None:
    assert {(a, s) for a, m in TRANSITIONS.items() for s in m} == {(a, s) for a, s, _ in LEGAL}
    assert len(ILLEGAL) == len(Action) * len(Status) - len(LEGAL)


@pytest.mark.parametrize("missing", ["cause", "measures", "result"])
def test_resolve_needs_cause_measures_and_result(missing: str) -> None:
    facts = dataclasses.replace(COMPLETE, status=Status.IN_PROGRESS)
    facts = dataclasses.replace(facts, **{missing: False})  # type: ignore[arg-type]
    with pytest.raises(RecordMissing) as err:
        next_status(facts, Action.RESOLVE)
    assert err.value.fields == [missing]


@pytest.mark.parametrize(
    ("severity", "steps"),
    [
        (Severity.ROUTINE, []),
        (Severity.MAJOR, ["emergency_plan_started", "leadership_informed"]),
        (Severity.EMERGENCY, ["emergency_plan_started", "leadership_informed", "temporary_measures"]),
    ],
)
def test_major_and_emergency_need_their_steps_before_resolve(severity: Severity, steps: list[str]) -> None:
    assert required_steps(severity) == steps
    for step in steps:
        facts = dataclasses.replace(COMPLETE, status=Status.IN_PROGRESS, severity=severity)
        facts = dataclasses.replace(facts, **{step: False})  # type: ignore[arg-type]
        with pytest.raises(TransitionRefused, match=step):
            next_status(facts, Action.RESOLVE)
    bare = dataclasses.replace(
        COMPLETE,
        status=Status.IN_PROGRESS,
        severity=severity,
        emergency_plan_started=False,
        leadership_informed=False,
        temporary_measures=False,
    )
    if steps:
        with pytest.raises(TransitionRefused):
            next_status(bare, Action.RESOLVE)
    else:
        assert next_status(bare, Action.RESOLVE) is Status.RESOLVED


def test_occupant_ticket_closes_only_with_a_followup() -> None:
    facts = dataclasses.replace(COMPLETE, status=Status.RESOLVED, followup=False)
    with pytest.raises(RecordMissing) as err:
        next_status(facts, Action.CLOSE)
    assert err.value.fields == ["followup"]
    alarm = dataclasses.replace(facts, source=Source.ALARM)
    assert next_status(alarm, Action.CLOSE) is Status.CLOSED


def test_assign_needs_an_assignee() -> None:
    with pytest.raises(RecordMissing):
        next_status(dataclasses.replace(COMPLETE, assignee_given=False), Action.ASSIGN)
