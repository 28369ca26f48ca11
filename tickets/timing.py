"""Ticket timing: overdue marks, and a fault that persists past its ticket's resolution reopening it.

A ticket is overdue for its response while open past its response due (nobody acknowledged it),
and for its resolve target while unresolved past it (the project's own targets per class,
ground/severity.py). A ticket resolved while its condition still holds (an active alarm that is
not latched) is reopened: at once when major or emergency, after the reopen cooldown when routine.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from ground.severity import Severity
from records.models import Alarm, Ticket
from tickets.actions import ActionFields, PeopleActions
from tickets.changes import ChangeKind, TicketChange
from tickets.lifecycle import Action, Status
from tickets.outages import OUTAGE
from tickets.store import OPEN_STATUSES, SYSTEM, reopen


class Due(StrEnum):
    """What a ticket can be overdue for."""

    RESPONSE = "response"
    RESOLVE = "resolve"


def overdue_for(ticket: Ticket, now: datetime) -> list[Due]:
    """What the ticket is overdue for at `now`: its response, its resolve target, both or neither."""
    late: list[Due] = []
    if ticket.status == Status.OPEN and ticket.response_due < now:
        late.append(Due.RESPONSE)
    if ticket.status in OPEN_STATUSES and ticket.resolve_due < now:
        late.append(Due.RESOLVE)
    return late


class Timing(NamedTuple):
    """What a ticket's deadline timers are set from."""

    ticket_id: int
    severity: Severity
    status: Status
    response_due: datetime
    resolve_due: datetime
    response_overdue: bool  # marked already
    resolve_overdue: bool
    resolved_at: datetime | None
    persisting: bool  # resolved or closed with its condition still holding, and nothing else holds it


def persisting_rules(s: Session, ticket_id: int) -> list[str]:
    """The rules whose alarms on this ticket are active and not latched: its condition still holds.

    None for an outage incident: a person may resolve it while devices are still silent (their
    offline alarms then stay active and are no longer anyone's fault to chase).
    """
    ticket = s.get(Ticket, ticket_id)
    if ticket is not None and ticket.rule == OUTAGE:
        return []
    alarms = s.scalars(select(Alarm).where(Alarm.ticket_id == ticket_id, Alarm.active.is_(True)))
    return sorted(a.rule for a in alarms if not a.detail.get("latched"))


def _key_taken(s: Session, ticket: Ticket) -> bool:
    """Whether another ticket holds the device's alarms now (a new fault after the cooldown)."""
    key = f"{ticket.site}/{ticket.device_id}"
    other = s.scalars(select(Ticket.id).where(Ticket.alarm_key == key, Ticket.id != ticket.id)).first()
    return other is not None


class TicketTiming(PeopleActions):
    """Marks tickets overdue, and reopens a ticket resolved while its fault persists."""

    def act(self, ticket_id: int, action: Action, fields: ActionFields, actor: str) -> Ticket:
        """As PeopleActions.act; a major or emergency resolved while its condition holds opens again."""
        ticket = super().act(ticket_id, action, fields, actor)
        grave = Severity(ticket.severity) >= Severity.MAJOR
        if action is Action.RESOLVE and grave and self.reopen_if_persisting(ticket_id) is not None:
            return self.get(ticket_id)
        return ticket

    def reopen_if_persisting(self, ticket_id: int) -> TicketChange | None:
        """Reopen a resolved (or closed) ticket whose condition still holds; None if it need not be."""
        now = self.clock()
        with self.db.session() as s:
            ticket = s.get(Ticket, ticket_id, with_for_update=True)
            if ticket is None or ticket.status not in (Status.RESOLVED, Status.CLOSED):
                return None
            rules = persisting_rules(s, ticket_id)
            if not rules or ticket.device_id is None or _key_taken(s, ticket):
                return None
            # A closed ticket gave up the device's alarms: it takes them back.
            ticket.alarm_key = f"{ticket.site}/{ticket.device_id}"
            self._audit(s, ticket, SYSTEM, "reopen", {"reason": "condition still holds", "rules": rules})
            reopen(ticket, now)
            change = self._change(ticket, ChangeKind.REOPENED)
        self._tell([change])
        return change

    def mark_overdue(self, ticket_id: int, due: Due) -> TicketChange | None:
        """Mark a ticket overdue for its response or its resolve target, once; None if it is not (yet)."""
        now = self.clock()
        with self.db.session() as s:
            ticket = s.get(Ticket, ticket_id, with_for_update=True)
            if ticket is None or due not in overdue_for(ticket, now):
                return None
            if due is Due.RESPONSE:
                if ticket.response_overdue_at is not None:
                    return None
                ticket.response_overdue_at = now
                target = ticket.response_due
            else:
                if ticket.resolve_overdue_at is not None:
                    return None
                ticket.resolve_overdue_at = now
                target = ticket.resolve_due
            self._audit(s, ticket, SYSTEM, "overdue", {"for": due.value, "due": target.isoformat()})
            change = self._change(ticket, ChangeKind.OVERDUE)
        self._tell([change])
        return change

    def timing(self, ticket_id: int) -> Timing | None:
        """One ticket's deadlines, or None when it is gone."""
        with self.db.read() as s:
            ticket = s.get(Ticket, ticket_id)
            return None if ticket is None else self._timing(s, ticket)

    def timings(self, sites: frozenset[str] | None = None) -> list[Timing]:
        """The deadlines of every ticket that may need a timer: unresolved, or resolved with its fault on.

        Of these sites only, when given (a worker's own).
        """
        with self.db.read() as s:
            working = Ticket.status.in_([st.value for st in OPEN_STATUSES])
            mine = true() if sites is None else Ticket.site.in_(sorted(sites))
            unresolved = s.scalars(select(Ticket).where(working, mine).order_by(Ticket.id)).all()
            on = select(Alarm.ticket_id).where(Alarm.active.is_(True), Alarm.ticket_id.is_not(None))
            done = s.scalars(
                select(Ticket)
                .where(
                    Ticket.status.in_([Status.RESOLVED.value, Status.CLOSED.value]), Ticket.id.in_(on), mine
                )
                .order_by(Ticket.id)
            ).all()
            return [self._timing(s, t) for t in (*unresolved, *done)]

    @staticmethod
    def _timing(s: Session, ticket: Ticket) -> Timing:
        status = Status(ticket.status)
        persisting = (
            status in (Status.RESOLVED, Status.CLOSED)
            and ticket.device_id is not None
            and bool(persisting_rules(s, ticket.id))
            and not _key_taken(s, ticket)
        )
        return Timing(
            ticket.id,
            Severity(ticket.severity),
            status,
            ticket.response_due,
            ticket.resolve_due,
            ticket.response_overdue_at is not None,
            ticket.resolve_overdue_at is not None,
            ticket.resolved_at or ticket.closed_at,
            persisting,
        )


def reopen_at(timing: Timing, cooldown_s: int) -> datetime | None:
    """When a ticket whose fault persists reopens: major and emergency at once, routine after the cooldown."""
    if not timing.persisting or timing.resolved_at is None:
        return None
    wait = 0 if timing.severity >= Severity.MAJOR else cooldown_s
    return timing.resolved_at + timedelta(seconds=wait)


def deadlines(timing: Timing, cooldown_s: int) -> dict[str, datetime]:
    """The timers a ticket needs now: job id → when it fires."""
    wanted: dict[str, datetime] = {}
    # Major and emergency have their escalation timers until acknowledged; routine is marked overdue.
    if timing.status == Status.OPEN and timing.severity is Severity.ROUTINE and not timing.response_overdue:
        wanted[f"overdue-{timing.ticket_id}"] = timing.response_due
    if timing.status in OPEN_STATUSES and not timing.resolve_overdue:
        wanted[f"resolve-due-{timing.ticket_id}"] = timing.resolve_due
    if (at := reopen_at(timing, cooldown_s)) is not None:
        wanted[f"persists-{timing.ticket_id}"] = at
    return wanted


JOB_PREFIXES: Sequence[str] = ("overdue-", "resolve-due-", "persists-")
