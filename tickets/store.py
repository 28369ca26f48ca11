"""What both halves of the ticket service stand on: the records, the listeners, the clock, the audit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session, selectinload

from ground.clock import utcnow
from ground.events import AlarmEvent
from ground.severity import Severity
from records.db import Database
from records.models import Alarm, AuditEntry, Device, Ticket
from tickets.changes import ChangeKind, Listener, TicketChange
from tickets.lifecycle import Status

log = logging.getLogger("tickets.service")

SYSTEM = "system"
OPEN_STATUSES = (Status.OPEN, Status.ACKNOWLEDGED, Status.IN_PROGRESS)


class NotFound(Exception):
    """No such ticket or alarm (HTTP 404)."""


@dataclass
class TicketStore:
    """The records database and who hears of changes; the helpers every ticket operation shares."""

    db: Database
    reopen_cooldown_s: int = 3600
    listeners: list[Listener] = field(default_factory=list)
    clock: Callable[[], datetime] = utcnow
    # Whether a maintenance window holds an alarm's raise (no ticket while it lasts); None: never.
    holds: Callable[[Session, AlarmEvent], bool] | None = None
    # Outages (tickets/outages.py): this many devices of a site offline within the window are one
    # incident; 0 gives every device a ticket of its own.
    outage_devices: int = 3
    outage_window_s: int = 300
    # Hear each change inside the transaction that makes it, so what they write commits with it
    # or not at all (the outbox's notifications).
    in_transaction: list[Callable[[Session, Ticket, TicketChange], None]] = field(default_factory=list)

    def get(self, ticket_id: int) -> Ticket:
        """One ticket with its audit trail."""
        with self.db.read() as s:
            ticket = s.scalars(
                select(Ticket).options(selectinload(Ticket.audit)).where(Ticket.id == ticket_id)
            ).one_or_none()
            if ticket is None:
                raise NotFound(f"no ticket {ticket_id}")
            return ticket

    @staticmethod
    def _device(s: Session, site: str, device_id: str | None) -> Device | None:
        if device_id is None:
            return None
        return s.scalars(
            select(Device).where(Device.site == site, Device.device_id == device_id)
        ).one_or_none()

    def _audit(self, s: Session, ticket: Ticket, actor: str, action: str, detail: dict[str, Any]) -> None:
        s.add(AuditEntry(ticket_id=ticket.id, at=self.clock(), actor=actor, action=action, detail=detail))

    def _change(self, ticket: Ticket, kind: ChangeKind) -> TicketChange:
        change = TicketChange(
            ticket_id=ticket.id,
            kind=kind,
            severity=Severity(ticket.severity),
            site=ticket.site,
            device_id=ticket.device_id,
            title=ticket.title,
            source=ticket.source,
            opened_at=ticket.opened_at,
            acknowledged_at=ticket.acknowledged_at,
            resolved_at=ticket.resolved_at,
            ack_from=ticket.ack_from,
            device_type=ticket.device_type,
        )
        session = object_session(ticket)
        for listener in self.in_transaction:
            assert session is not None, "a change is made inside its ticket's session"
            listener(session, ticket, change)
        return change

    def _raise_class(
        self, s: Session, ticket: Ticket, severity: Severity, rule: str | None, changes: list[TicketChange]
    ) -> None:
        """A ticket's class only rises; its response is due sooner, and a graver fault is acknowledged anew.

        An acknowledgement answers the fault as it was: when a major or emergency fault lands on a
        ticket someone acknowledged as less, it is open again, so it is re-notified and escalated
        until someone acknowledges the graver fault (contract, Classes).
        """
        old = ticket.severity
        ticket.severity, ticket.rule = severity, rule or ticket.rule
        detail: dict[str, Any] = {"from": old, "to": severity.value, "rule": rule}
        if ticket.acknowledged_at is None:
            started = ticket.ack_from or ticket.opened_at
            due = started + timedelta(seconds=severity.response_due_s)
            ticket.response_due = min(ticket.response_due, due)
        elif severity >= Severity.MAJOR and ticket.status in (Status.ACKNOWLEDGED, Status.IN_PROGRESS):
            now = self.clock()
            ticket.status, ticket.acknowledged_at = Status.OPEN, None
            ticket.response_due = now + timedelta(seconds=severity.response_due_s)
            # The acknowledge clock starts again now: the graver fault is answered from here.
            ticket.ack_from, ticket.response_overdue_at = now, None
            detail["acknowledge_again"] = True
        ticket.resolve_due = min(ticket.resolve_due, resolve_due(severity, ticket.response_due))
        self._audit(s, ticket, SYSTEM, "class_raised", detail)
        changes.append(self._change(ticket, ChangeKind.CLASS_RAISED))

    def _recent(self, ticket: Ticket, now: datetime) -> bool:
        """Resolved within the reopen cooldown: a recurrence now is the same fault, not a new one."""
        assert ticket.resolved_at is not None
        return now - ticket.resolved_at <= timedelta(seconds=self.reopen_cooldown_s)

    def _reopen_recurrence(
        self, s: Session, ticket: Ticket, now: datetime, rule: str | None, changes: list[TicketChange]
    ) -> None:
        """A resolved ticket's fault is back within the cooldown: open it again, audited and heard."""
        self._audit(s, ticket, SYSTEM, "reopen", {"by_rule": rule, "recurrence": True})
        reopen(ticket, now)
        changes.append(self._change(ticket, ChangeKind.REOPENED))

    def _close_as_past(self, s: Session, ticket: Ticket, now: datetime, reason: str) -> None:
        """Close a ticket resolved long enough ago that a recurrence is a new fault, freeing its key."""
        ticket.status, ticket.closed_at, ticket.alarm_key = Status.CLOSED, now, None
        self._audit(s, ticket, SYSTEM, "close", {"reason": reason})
        s.flush()

    def _tell(self, changes: Sequence[TicketChange]) -> None:
        for change in changes:
            for listener in self.listeners:
                try:
                    listener(change)
                except Exception:
                    log.exception("ticket listener %r failed on %s", listener, change)


def active_alarm(s: Session, site: str, device_id: str, rule: str) -> Alarm | None:
    """The device's active alarm of a rule, if any (at most one: a partial unique index)."""
    return s.scalars(
        select(Alarm).where(
            Alarm.site == site, Alarm.device_id == device_id, Alarm.rule == rule, Alarm.active.is_(True)
        )
    ).one_or_none()


def reopen(ticket: Ticket, now: datetime) -> None:
    """Back to open, as a fresh fault: acknowledged anew, its response due again from now."""
    ticket.status = Status.OPEN
    ticket.resolved_at = ticket.closed_at = ticket.acknowledged_at = ticket.started_at = None
    ticket.notified_count = ticket.escalation_level = 0
    ticket.response_due = now + timedelta(seconds=Severity(ticket.severity).response_due_s)
    # The acknowledge clock starts again, and with it the resolve target and the overdue marks.
    ticket.ack_from = now
    ticket.resolve_due = resolve_due(Severity(ticket.severity), ticket.response_due)
    ticket.response_overdue_at = ticket.resolve_overdue_at = None


def resolve_due(severity: Severity, response_due: datetime) -> datetime:
    """The resolve target: the class's resolve time from when its response clock started.

    Counted from the response due back, so planned work due at a date of its own is due to be
    done that much after it.
    """
    return response_due + timedelta(seconds=severity.resolve_due_s - severity.response_due_s)


def location_of(device: Device | None) -> str | None:
    if device is None:
        return None
    parts = [p for p in (device.building, device.floor and f"floor {device.floor}", device.location) if p]
    return ", ".join(parts) or None
