"""What happened to a ticket, as listeners (escalation, notifiers, the timeline, the pipeline) hear it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from ground.severity import Severity
from tickets.lifecycle import Action


class ChangeKind(StrEnum):
    """What happened to a ticket: the `change` tag of the `tickets` measurement, and what listeners hear."""

    OPENED = "opened"
    REOPENED = "reopened"
    CLASS_RAISED = "class_raised"
    RECURRED = "occurrence"  # the name dashboards and stored points already know it by
    CORROBORATED = "corroborated"
    ACKNOWLEDGED = "acknowledged"
    ASSIGNED = "assigned"
    STARTED = "started"
    RESOLVED = "resolved"
    CLOSED = "closed"
    RENOTIFIED = "renotified"
    ESCALATED = "escalated"
    OVERDUE = "overdue"


# What a person's action did to the ticket.
DONE: dict[Action, ChangeKind] = {
    Action.ACKNOWLEDGE: ChangeKind.ACKNOWLEDGED,
    Action.ASSIGN: ChangeKind.ASSIGNED,
    Action.START: ChangeKind.STARTED,
    Action.RESOLVE: ChangeKind.RESOLVED,
    Action.CLOSE: ChangeKind.CLOSED,
    Action.REOPEN: ChangeKind.REOPENED,
}


@dataclass
class TicketChange:
    """What happened to a ticket, for notifiers and timers."""

    ticket_id: int
    kind: ChangeKind
    severity: Severity
    site: str
    device_id: str | None
    title: str
    source: str = ""
    opened_at: datetime | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    # When the acknowledge clock last started (a reopening, a graver class); None: at the opening.
    ack_from: datetime | None = None
    device_type: str | None = None


Listener = Callable[[TicketChange], None]


class Unacknowledged(NamedTuple):
    """An open ticket nobody has acknowledged: what its timers are set from."""

    ticket_id: int
    severity: Severity
    response_due: datetime  # its opening (or reopening) plus the class's response time
    escalation_level: int  # 0 until its escalation timer has fired
