"""What both halves of the ticket service stand on: the records, the listeners, the clock, the audit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ground.clock import utcnow
from ground.events import AlarmEvent
from ground.severity import Severity
from records.db import Database
from records.models import AuditEntry, Device, Ticket
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

    @staticmethod
    def _change(ticket: Ticket, kind: ChangeKind) -> TicketChange:
        return TicketChange(
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
            device_type=ticket.device_type,
        )

    def _tell(self, changes: Sequence[TicketChange]) -> None:
        for change in changes:
            for listener in self.listeners:
                try:
                    listener(change)
                except Exception:
                    log.exception("ticket listener %r failed on %s", listener, change)


def reopen(ticket: Ticket, now: datetime) -> None:
    """Back to open, as a fresh fault: acknowledged anew, its response due again from now."""
    ticket.status = Status.OPEN
    ticket.resolved_at = ticket.closed_at = ticket.acknowledged_at = ticket.started_at = None
    ticket.notified_count = ticket.escalation_level = 0
    ticket.response_due = now + timedelta(seconds=Severity(ticket.severity).response_due_s)


def location_of(device: Device | None) -> str | None:
    if device is None:
        return None
    parts = [p for p in (device.building, device.floor and f"floor {device.floor}", device.location) if p]
    return ", ".join(parts) or None
