"""Alarms become tickets; people work tickets. Every change is audited, and races cannot open two tickets."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from ground.clock import from_ms, utcnow
from ground.events import AlarmEvent
from ground.severity import Severity
from records.db import Database
from records.models import Alarm, AuditEntry, Device, Ticket
from tickets.lifecycle import (
    Action,
    RecordMissing,
    Source,
    Status,
    TicketFacts,
    TransitionRefused,
    next_status,
)

log = logging.getLogger(__name__)

SYSTEM = "system"
_OPEN_STATUSES = (Status.OPEN, Status.ACKNOWLEDGED, Status.IN_PROGRESS)


class NotFound(Exception):
    """No such ticket or alarm (HTTP 404)."""


@dataclass
class ActionFields:
    """What a person may send with an action."""

    assignee: str | None = None
    note: str | None = None
    cause: str | None = None
    measures: str | None = None
    result: str | None = None
    emergency_plan_started: bool | None = None
    leadership_informed: bool | None = None
    temporary_measures: str | None = None
    followup: str | None = None


@dataclass
class NewTicket:
    """A ticket not from an alarm: an occupant's report (§4.2.1), a patrol finding, a maintenance plan."""

    site: str
    title: str
    severity: Severity = Severity.ROUTINE
    source: Source = Source.OCCUPANT
    description: str | None = None
    device_id: str | None = None
    location: str | None = None
    reporter: str | None = None
    patrol_round_id: int | None = None


@dataclass
class TicketFilter:
    """Filters of `GET /api/v1/tickets`."""

    status: Status | None = None
    severity: Severity | None = None
    site: str | None = None
    device_id: str | None = None
    source: Source | None = None
    limit: int = 100
    offset: int = 0


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


Listener = Callable[[TicketChange], None]


class Unacknowledged(NamedTuple):
    """An open ticket nobody has acknowledged: what its timers are set from."""

    ticket_id: int
    severity: Severity
    response_due: datetime  # its opening (or reopening) plus the class's response time
    escalation_level: int  # 0 until its escalation timer has fired


@dataclass
class TicketService:
    """Applies alarm events and people's actions to the records."""

    db: Database
    reopen_cooldown_s: int = 3600
    listeners: list[Listener] = field(default_factory=list)
    clock: Callable[[], datetime] = utcnow

    # --- alarms -------------------------------------------------------------------------------

    def apply_alarm(self, event: AlarmEvent) -> int | None:
        """Record a raised or cleared alarm; a raise opens or updates the device's ticket. Returns its id."""
        for attempt in range(5):
            changes: list[TicketChange] = []
            try:
                with self.db.session() as s:
                    ticket_id: int | None = (
                        self._raise(s, event, changes) if event.kind == "raised" else self._clear(s, event)
                    )
            except IntegrityError:
                # Another worker inserted the same alarm or ticket first; read it and go on.
                log.debug(
                    "alarm %s/%s/%s raced another worker (try %d)",
                    event.site,
                    event.device_id,
                    event.rule,
                    attempt + 1,
                )
                continue
            self._tell(changes)
            return ticket_id
        raise RuntimeError(f"could not record alarm {event.rule} on {event.device_id} after 5 tries")

    def _raise(self, s: Session, event: AlarmEvent, changes: list[TicketChange]) -> int:
        now = self.clock()
        alarm = s.scalars(
            select(Alarm).where(
                Alarm.site == event.site,
                Alarm.device_id == event.device_id,
                Alarm.rule == event.rule,
                Alarm.active.is_(True),
            )
        ).one_or_none()
        raised_at = from_ms(event.ts)
        if (
            alarm is not None
            and raised_at in (alarm.raised_at, alarm.last_seen)
            and alarm.ticket_id is not None
        ):
            # The same raise again (a redelivery, a replay or a second worker): nothing new.
            return alarm.ticket_id
        ticket = self._ticket_for(s, event, now, changes)
        if alarm is None:
            alarm = Alarm(
                site=event.site,
                device_id=event.device_id,
                device_type=event.device_type,
                rule=event.rule,
                severity=event.severity.value,
                title=event.title,
                active=True,
                raised_at=raised_at,
                last_seen=raised_at,
                count=1,
                detail=_alarm_detail(event),
            )
            s.add(alarm)
        else:
            alarm.count += 1
            alarm.last_seen = raised_at
            alarm.detail = _alarm_detail(event)
        alarm.ticket_id = ticket.id
        s.flush()
        return ticket.id

    def _ticket_for(
        self, s: Session, event: AlarmEvent, now: datetime, changes: list[TicketChange]
    ) -> Ticket:
        """The device's ticket for this alarm: its open one, reopened, or a new one."""
        key = f"{event.site}/{event.device_id}"
        # Locked (PostgreSQL) so a person's action on the same ticket waits for this one.
        ticket = s.scalars(select(Ticket).where(Ticket.alarm_key == key).with_for_update()).one_or_none()
        if ticket is not None and ticket.status == Status.RESOLVED:
            assert ticket.resolved_at is not None
            if now - ticket.resolved_at <= timedelta(seconds=self.reopen_cooldown_s):
                self._audit(s, ticket, SYSTEM, "reopen", {"by_rule": event.rule, "recurrence": True})
                _reopen(ticket, now)
                changes.append(self._change(ticket, ChangeKind.REOPENED))
            else:
                # Resolved long enough ago that this is a new fault: close the old ticket.
                ticket.status, ticket.closed_at, ticket.alarm_key = Status.CLOSED, now, None
                self._audit(s, ticket, SYSTEM, "close", {"reason": "new fault after the cooldown"})
                s.flush()
                ticket = None
        if ticket is None:
            device = self._device(s, event.site, event.device_id)
            label = device.label() if device else event.device_id
            ticket = Ticket(
                site=event.site,
                device_id=event.device_id,
                device_type=event.device_type,
                rule=event.rule,
                severity=event.severity.value,
                status=Status.OPEN,
                source=Source(event.source),
                title=f"{event.title} — {label}",
                location=_location(device) or event.detail.get("location"),
                opened_at=now,
                response_due=now + timedelta(seconds=event.severity.response_due_s),
                occurrences=1,
                last_occurrence_at=now,
                alarm_key=key,
                patrol_round_id=event.round_id,
            )
            s.add(ticket)
            s.flush()
            self._audit(
                s,
                ticket,
                SYSTEM,
                "open",
                {"rule": event.rule, "class": event.severity.value, "detail": event.detail},
            )
            changes.append(self._change(ticket, ChangeKind.OPENED))
            return ticket
        ticket.occurrences += 1
        ticket.last_occurrence_at = now
        if event.severity > Severity(ticket.severity):
            self._raise_class(s, ticket, event.severity, event.rule, changes)
        else:
            self._audit(s, ticket, SYSTEM, "occurrence", {"rule": event.rule, "detail": event.detail})
            changes.append(self._change(ticket, ChangeKind.RECURRED))
        return ticket

    def _raise_class(
        self, s: Session, ticket: Ticket, severity: Severity, rule: str | None, changes: list[TicketChange]
    ) -> None:
        """A ticket's class only rises; its response is due sooner, and a graver fault is acknowledged anew.

        An acknowledgement answers the fault as it was: when a major or emergency fault lands on a
        ticket someone acknowledged as less, it is open again, so it is re-notified and escalated
        until someone acknowledges the graver fault (contract, Classes).
        """
        old = ticket.severity
        ticket.severity, ticket.rule = severity.value, rule or ticket.rule
        detail: dict[str, Any] = {"from": old, "to": severity.value, "rule": rule}
        if ticket.acknowledged_at is None:
            ticket.response_due = min(
                ticket.response_due, ticket.opened_at + timedelta(seconds=severity.response_due_s)
            )
        elif severity >= Severity.MAJOR and ticket.status in (Status.ACKNOWLEDGED, Status.IN_PROGRESS):
            now = self.clock()
            ticket.status, ticket.acknowledged_at = Status.OPEN, None
            ticket.response_due = now + timedelta(seconds=severity.response_due_s)
            detail["acknowledge_again"] = True
        self._audit(s, ticket, SYSTEM, "class_raised", detail)
        changes.append(self._change(ticket, ChangeKind.CLASS_RAISED))

    def _clear(self, s: Session, event: AlarmEvent) -> int | None:
        alarm = s.scalars(
            select(Alarm).where(
                Alarm.site == event.site,
                Alarm.device_id == event.device_id,
                Alarm.rule == event.rule,
                Alarm.active.is_(True),
            )
        ).one_or_none()
        if alarm is None:
            return None
        alarm.active = False
        alarm.cleared_at = from_ms(event.ts)
        if alarm.ticket_id is not None:
            ticket = s.get(Ticket, alarm.ticket_id)
            if ticket is not None:
                self._audit(s, ticket, SYSTEM, "alarm_cleared", {"rule": event.rule})
        return alarm.ticket_id

    def acknowledge_alarm(self, alarm_id: int, actor: str) -> Alarm:
        """Mark an alarm acknowledged (it stays active until its condition clears)."""
        with self.db.session() as s:
            alarm = s.get(Alarm, alarm_id)
            if alarm is None:
                raise NotFound(f"no alarm {alarm_id}")
            if alarm.acknowledged_at is None:
                alarm.acknowledged_at, alarm.acknowledged_by = self.clock(), actor
                if alarm.ticket_id is not None and (ticket := s.get(Ticket, alarm.ticket_id)):
                    self._audit(
                        s, ticket, actor, "alarm_acknowledged", {"alarm": alarm.id, "rule": alarm.rule}
                    )
            return alarm

    # --- people's tickets and actions --------------------------------------------------------

    def open_for_device(self, site: str, device_id: str) -> Ticket | None:
        """The device's newest ticket that is not yet resolved, whatever opened it."""
        with self.db.read() as s:
            return s.scalars(
                select(Ticket)
                .where(
                    Ticket.site == site,
                    Ticket.device_id == device_id,
                    Ticket.status.in_([st.value for st in _OPEN_STATUSES]),
                )
                .order_by(Ticket.id.desc())
                .limit(1)
            ).one_or_none()

    def corroborate(self, ticket_id: int, actor: str, detail: dict[str, Any]) -> None:
        """Add a report of the same fault (a patrol finding) to a ticket rather than open a second."""
        with self.db.session() as s:
            ticket = s.get(Ticket, ticket_id)
            if ticket is None:
                raise NotFound(f"no ticket {ticket_id}")
            ticket.occurrences += 1
            ticket.last_occurrence_at = self.clock()
            self._audit(s, ticket, actor, "corroborated", detail)
            change = self._change(ticket, ChangeKind.CORROBORATED)
        self._tell([change])

    def open_ticket(self, new: NewTicket, actor: str) -> Ticket:
        """Open a ticket that no alarm raised (an occupant's report, a patrol finding, a plan)."""
        now = self.clock()
        with self.db.session() as s:
            device = self._device(s, new.site, new.device_id) if new.device_id else None
            ticket = Ticket(
                site=new.site,
                device_id=new.device_id,
                device_type=device.device_type if device else None,
                severity=new.severity.value,
                status=Status.OPEN,
                source=new.source,
                title=new.title,
                description=new.description,
                location=new.location or _location(device),
                reporter=new.reporter,
                opened_at=now,
                response_due=now + timedelta(seconds=new.severity.response_due_s),
                occurrences=1,
                last_occurrence_at=now,
                patrol_round_id=new.patrol_round_id,
            )
            s.add(ticket)
            s.flush()
            self._audit(s, ticket, actor, "open", {"source": new.source.value, "class": new.severity.value})
            change = self._change(ticket, ChangeKind.OPENED)
        self._tell([change])
        return self.get(ticket.id)

    def act(self, ticket_id: int, action: Action, fields: ActionFields, actor: str) -> Ticket:
        """Apply one action; TransitionRefused (409) or RecordMissing (422) leave the ticket unchanged."""
        now = self.clock()
        with self.db.session() as s:
            ticket = s.get(Ticket, ticket_id, with_for_update=True)
            if ticket is None:
                raise NotFound(f"no ticket {ticket_id}")
            facts = TicketFacts(
                status=Status(ticket.status),
                severity=Severity(ticket.severity),
                source=Source(ticket.source),
                emergency_plan_started=bool(
                    fields.emergency_plan_started or ticket.emergency_plan_started_at
                ),
                leadership_informed=bool(fields.leadership_informed or ticket.leadership_informed_at),
                temporary_measures=bool(fields.temporary_measures or ticket.temporary_measures),
                cause=bool(fields.cause or ticket.cause),
                measures=bool(fields.measures or ticket.measures),
                result=bool(fields.result or ticket.result),
                followup=bool(fields.followup or ticket.followup),
                assignee_given=bool(fields.assignee),
            )
            target = next_status(facts, action)
            recorded = self._record_fields(ticket, fields, now)
            ticket.status = target
            if action is Action.ACKNOWLEDGE:
                ticket.acknowledged_at = now
            elif action is Action.START:
                ticket.started_at = now
            elif action is Action.RESOLVE:
                ticket.resolved_at = now
                for alarm in s.scalars(
                    select(Alarm).where(Alarm.ticket_id == ticket.id, Alarm.active.is_(True))
                ):
                    if alarm.detail.get("latched"):
                        alarm.active, alarm.cleared_at = False, now
            elif action is Action.CLOSE:
                ticket.closed_at, ticket.alarm_key = now, None
            elif action is Action.REOPEN:
                if ticket.source == Source.ALARM and ticket.device_id and ticket.alarm_key is None:
                    ticket.alarm_key = f"{ticket.site}/{ticket.device_id}"
                _reopen(ticket, now)
            self._audit(s, ticket, actor, action.value, recorded)
            try:
                s.flush()
            except IntegrityError:
                raise TransitionRefused("the device has another open ticket for its alarms") from None
            change = self._change(ticket, DONE[action])
        self._tell([change])
        return self.get(ticket_id)

    @staticmethod
    def _record_fields(ticket: Ticket, fields: ActionFields, now: datetime) -> dict[str, Any]:
        """Copy what the request recorded onto the ticket; returns it for the audit trail."""
        recorded: dict[str, Any] = {}
        for name in ("assignee", "cause", "measures", "result", "temporary_measures", "followup"):
            value = getattr(fields, name)
            if value:
                setattr(ticket, name, value)
                recorded[name] = value
        if fields.emergency_plan_started and ticket.emergency_plan_started_at is None:
            ticket.emergency_plan_started_at = now
            recorded["emergency_plan_started"] = True
        if fields.leadership_informed and ticket.leadership_informed_at is None:
            ticket.leadership_informed_at = now
            recorded["leadership_informed"] = True
        if fields.note:
            recorded["note"] = fields.note
        return recorded

    # --- escalation -------------------------------------------------------------------------

    def mark_notified(self, ticket_id: int) -> TicketChange | None:
        """Count a re-notification of an unacknowledged ticket; None once it is acknowledged or gone."""
        with self.db.session() as s:
            ticket = s.get(Ticket, ticket_id, with_for_update=True)
            if ticket is None or ticket.status != Status.OPEN:
                return None
            ticket.notified_count += 1
            self._audit(s, ticket, SYSTEM, "renotified", {"count": ticket.notified_count})
            return self._change(ticket, ChangeKind.RENOTIFIED)

    def escalate(self, ticket_id: int) -> TicketChange | None:
        """Escalate an unacknowledged ticket one level; None once it is acknowledged or gone."""
        with self.db.session() as s:
            ticket = s.get(Ticket, ticket_id, with_for_update=True)
            if ticket is None or ticket.status != Status.OPEN:
                return None
            ticket.escalation_level += 1
            self._audit(s, ticket, SYSTEM, "escalated", {"level": ticket.escalation_level})
            return self._change(ticket, ChangeKind.ESCALATED)

    def unacknowledged(self, severities: Sequence[Severity]) -> list[Unacknowledged]:
        """Open tickets of these classes that nobody has acknowledged yet."""
        q = (
            select(Ticket.id, Ticket.severity, Ticket.response_due, Ticket.escalation_level)
            .where(Ticket.status == Status.OPEN.value, Ticket.severity.in_([sev.value for sev in severities]))
            .order_by(Ticket.id)
        )
        with self.db.read() as s:
            return [
                Unacknowledged(ticket_id, Severity(severity), due, level)
                for ticket_id, severity, due, level in s.execute(q)
            ]

    # --- reading ------------------------------------------------------------------------------

    def get(self, ticket_id: int) -> Ticket:
        """One ticket with its audit trail."""
        with self.db.read() as s:
            ticket = s.scalars(
                select(Ticket).options(selectinload(Ticket.audit)).where(Ticket.id == ticket_id)
            ).one_or_none()
            if ticket is None:
                raise NotFound(f"no ticket {ticket_id}")
            return ticket

    def list(self, f: TicketFilter) -> Sequence[Ticket]:
        """Tickets, newest first."""
        q = select(Ticket)
        if f.status:
            q = q.where(Ticket.status == f.status.value)
        if f.severity:
            q = q.where(Ticket.severity == f.severity.value)
        if f.site:
            q = q.where(Ticket.site == f.site)
        if f.device_id:
            q = q.where(Ticket.device_id == f.device_id)
        if f.source:
            q = q.where(Ticket.source == f.source.value)
        with self.db.read() as s:
            return s.scalars(q.order_by(Ticket.id.desc()).limit(f.limit).offset(f.offset)).all()

    def open_counts(self) -> dict[str, int]:
        """How many tickets are not yet resolved, by site."""
        q = (
            select(Ticket.site, func.count())
            .where(Ticket.status.in_([st.value for st in _OPEN_STATUSES]))
            .group_by(Ticket.site)
        )
        with self.db.read() as s:
            return {site: count for site, count in s.execute(q).all()}

    def alarms(
        self, active_only: bool, limit: int = 200, site: str | None = None, device_id: str | None = None
    ) -> Sequence[Alarm]:
        """Alarms, newest first; of one device when site and device_id are given."""
        q = select(Alarm)
        if active_only:
            q = q.where(Alarm.active.is_(True))
        if site is not None and device_id is not None:
            q = q.where(Alarm.site == site, Alarm.device_id == device_id)
        with self.db.read() as s:
            return s.scalars(q.order_by(Alarm.id.desc()).limit(limit)).all()

    def active_alarm_classes(self) -> Sequence[tuple[str, str, str, str]]:
        """(site, device id, rule, class) of every active alarm, newest first: the columns only."""
        q = (
            select(Alarm.site, Alarm.device_id, Alarm.rule, Alarm.severity)
            .where(Alarm.active.is_(True))
            .order_by(Alarm.id.desc())
        )
        with self.db.read() as s:
            return [(site, device_id, rule, severity) for site, device_id, rule, severity in s.execute(q)]

    # --- helpers ------------------------------------------------------------------------------

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
        )

    def _tell(self, changes: Sequence[TicketChange]) -> None:
        for change in changes:
            for listener in self.listeners:
                try:
                    listener(change)
                except Exception:
                    log.exception("ticket listener %r failed on %s", listener, change)


def _reopen(ticket: Ticket, now: datetime) -> None:
    """Back to open, as a fresh fault: acknowledged anew, its response due again from now."""
    ticket.status = Status.OPEN
    ticket.resolved_at = ticket.closed_at = ticket.acknowledged_at = ticket.started_at = None
    ticket.notified_count = ticket.escalation_level = 0
    ticket.response_due = now + timedelta(seconds=Severity(ticket.severity).response_due_s)


def _alarm_detail(event: AlarmEvent) -> dict[str, Any]:
    """The event's detail; an instantaneous event's alarm is latched until its ticket is resolved."""
    instantaneous = "code" in event.detail and event.detail.get("state") is None
    return {**event.detail, "latched": True} if instantaneous else dict(event.detail)


def _location(device: Device | None) -> str | None:
    if device is None:
        return None
    parts = [p for p in (device.building, device.floor and f"floor {device.floor}", device.location) if p]
    return ", ".join(parts) or None


__all__ = [
    "ActionFields",
    "ChangeKind",
    "NewTicket",
    "NotFound",
    "RecordMissing",
    "TicketChange",
    "TicketFilter",
    "TicketService",
    "TransitionRefused",
]
