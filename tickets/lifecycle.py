"""The ticket state machine (manual §4.2.3, §4.2.4, §3.1.2): which action is allowed when, and what it needs.

Pure: it reads a ticket's status, class, source and recorded steps, and answers the new status
or raises; the service applies the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ground.severity import Severity
from records.states import Source as Source
from records.states import Status as Status


class Action(StrEnum):
    """What people do to a ticket: `POST /api/v1/tickets/{id}/{action}`."""

    ACKNOWLEDGE = "acknowledge"
    ASSIGN = "assign"
    START = "start"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"


_WORKING = (Status.OPEN, Status.ACKNOWLEDGED, Status.IN_PROGRESS)
TRANSITIONS: dict[Action, dict[Status, Status]] = {
    Action.ACKNOWLEDGE: {Status.OPEN: Status.ACKNOWLEDGED},
    Action.ASSIGN: {s: s for s in _WORKING},
    Action.START: {Status.ACKNOWLEDGED: Status.IN_PROGRESS},
    Action.RESOLVE: {Status.IN_PROGRESS: Status.RESOLVED},
    Action.CLOSE: {Status.RESOLVED: Status.CLOSED},
    Action.REOPEN: {Status.RESOLVED: Status.OPEN, Status.CLOSED: Status.OPEN},
}


class TransitionRefused(Exception):
    """The action is not allowed in the ticket's state (HTTP 409); nothing changes."""


class RecordMissing(Exception):
    """The action needs fields the request did not give (HTTP 422); `fields` names them."""

    def __init__(self, message: str, fields: list[str]) -> None:
        super().__init__(message)
        self.fields = fields


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """What the state machine needs to know of a ticket, after the request's fields are applied."""

    status: Status
    severity: Severity
    source: Source
    emergency_plan_started: bool
    leadership_informed: bool
    temporary_measures: bool
    cause: bool
    measures: bool
    result: bool
    followup: bool
    assignee_given: bool
    # §9.2.1 the problem's class, recorded or given; a satisfaction score given with the request.
    cause_class: bool = False
    satisfaction_given: bool = False


def cause_class_required(severity: Severity) -> bool:
    """Whether resolving a fault of this class needs its cause class (§9.2.1): major and emergency."""
    return severity >= Severity.MAJOR


def required_steps(severity: Severity) -> list[str]:
    """The §4.2.3 steps a ticket of this class must record before it can be resolved."""
    if severity is Severity.EMERGENCY:
        return ["emergency_plan_started", "leadership_informed", "temporary_measures"]
    if severity is Severity.MAJOR:
        return ["emergency_plan_started", "leadership_informed"]
    return []


def next_status(facts: TicketFacts, action: Action) -> Status:
    """The status after `action`, or TransitionRefused / RecordMissing saying why not."""
    target = TRANSITIONS[action].get(facts.status)
    if target is None:
        allowed = ", ".join(s.value for s in TRANSITIONS[action]) or "none"
        raise TransitionRefused(
            f"cannot {action.value} a ticket that is {facts.status.value} (allowed from: {allowed})"
        )
    if action is Action.ASSIGN and not facts.assignee_given:
        raise RecordMissing("assign needs an assignee", ["assignee"])
    if action is Action.RESOLVE:
        missing = [f for f in ("cause", "measures", "result") if not getattr(facts, f)]
        if missing:
            raise RecordMissing("resolving needs the fault's cause, measures and result (§4.2.4)", missing)
        steps = [s for s in required_steps(facts.severity) if not getattr(facts, s)]
        if steps:
            raise TransitionRefused(
                f"a {facts.severity.value} ticket cannot be resolved before these steps are recorded"
                f" (§4.2.3): {', '.join(steps)}"
            )
    if action is Action.RESOLVE and cause_class_required(facts.severity) and not facts.cause_class:
        raise RecordMissing(
            f"resolving a fault of class {facts.severity.value} needs its cause class: process, staff,"
            " equipment or external (§9.2.1)",
            ["cause_class"],
        )
    if facts.satisfaction_given and not (action is Action.CLOSE and facts.source is Source.OCCUPANT):
        raise RecordMissing(
            "a satisfaction score is recorded when an occupant's ticket is closed (§9.1.1)", ["satisfaction"]
        )
    if action is Action.CLOSE and facts.source is Source.OCCUPANT and not facts.followup:
        raise RecordMissing(
            "closing an occupant's ticket needs the follow-up with them (§3.1.2)", ["followup"]
        )
    return target
